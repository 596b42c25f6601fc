//! Greedy CTC decoding restricted to an allowed character set.
//!
//! The recogniser scores every class at every time step; class 0 is the CTC blank. Restricting the
//! arg-max to the blank plus the characters a plate can hold keeps a Chinese or symbol class from
//! winning a step that a plate character nearly won.

/// Decodes `[steps, classes]` probabilities: arg-max over `allowed` per step, merge repeats,
/// drop blanks. Returns `(class index, probability, time step)` per emitted character.
pub fn greedy_decode(probs: &[f32], classes: usize, allowed: &[usize]) -> Vec<(usize, f32, usize)> {
    let mut out = Vec::new();
    let mut prev = usize::MAX;
    for (t, step) in probs.chunks_exact(classes).enumerate() {
        let mut best = 0usize;
        let mut best_p = f32::MIN;
        for &c in allowed {
            let p = step[c];
            if p > best_p {
                best_p = p;
                best = c;
            }
        }
        if best != prev && best != 0 {
            out.push((best, best_p, t));
        }
        prev = best;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(seq: &[usize], classes: usize) -> Vec<f32> {
        let mut v = vec![0.0; seq.len() * classes];
        for (t, &c) in seq.iter().enumerate() {
            v[t * classes + c] = 0.9;
        }
        v
    }

    #[test]
    fn merges_repeats_and_drops_blanks() {
        // "a a _ a b b _" -> "a a b" with classes 1=a, 2=b.
        let p = steps(&[1, 1, 0, 1, 2, 2, 0], 4);
        let out: Vec<usize> = greedy_decode(&p, 4, &[0, 1, 2, 3]).iter().map(|x| x.0).collect();
        assert_eq!(out, vec![1, 1, 2]);
    }

    #[test]
    fn disallowed_classes_never_win() {
        let mut p = steps(&[3, 0, 1], 4);
        p[2] = 0.5; // class 2 is the best allowed at step 0
        let out = greedy_decode(&p, 4, &[0, 1, 2]);
        assert_eq!(out, vec![(2, 0.5, 0), (1, 0.9, 2)]);
    }
}
