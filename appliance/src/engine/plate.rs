//! Text normalisation: from what the recogniser read to a plate number.
//!
//! A plate number is what hotlists and the state's plate data file key on: upper-case A-Z and
//! 0-9, no spaces or dashes. The rules here are the same on the trailer and for hotlist entries,
//! so a hotlist plate and a read of it compare equal.

/// Normalises free text (a hotlist entry, an operator's search) to plate characters.
pub fn normalise_text(s: &str, us_o_as_zero: bool) -> String {
    s.chars()
        .filter_map(|c| {
            let u = c.to_ascii_uppercase();
            match u {
                'O' if us_o_as_zero => Some('0'),
                'A'..='Z' | '0'..='9' => Some(u),
                _ => None,
            }
        })
        .collect()
}

/// Shortest and longest plate numbers accepted (US plates are 1-8 characters; a read of fewer
/// than 2 is too often a fragment).
pub const MIN_LEN: usize = 2;
pub const MAX_LEN: usize = 8;

/// Characters at either end read below this confidence are dropped: they are usually a bolt, a
/// frame edge or a sticker, not a character.
pub const EDGE_CONFIDENCE: f32 = 0.5;

/// Normalises a recogniser read (characters with their confidences). `None` when what is left
/// cannot be a plate.
pub fn normalise(raw: &[(char, f32)], us_o_as_zero: bool) -> Option<(String, Vec<f32>)> {
    let mut chars: Vec<(char, f32)> = raw
        .iter()
        .filter_map(|&(c, p)| {
            let u = c.to_ascii_uppercase();
            match u {
                'O' if us_o_as_zero => Some(('0', p)),
                'A'..='Z' | '0'..='9' => Some((u, p)),
                _ => None,
            }
        })
        .collect();
    if chars.len() > MIN_LEN + 2 {
        if chars.last().is_some_and(|c| c.1 < EDGE_CONFIDENCE) {
            chars.pop();
        }
        if chars.first().is_some_and(|c| c.1 < EDGE_CONFIDENCE) {
            chars.remove(0);
        }
    }
    if !(MIN_LEN..=MAX_LEN).contains(&chars.len()) {
        return None;
    }
    Some((chars.iter().map(|c| c.0).collect(), chars.iter().map(|c| c.1).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str, p: f32) -> Vec<(char, f32)> {
        s.chars().map(|c| (c, p)).collect()
    }

    #[test]
    fn keeps_only_plate_characters() {
        let (t, c) = normalise(&raw("ab-c 12.3", 0.9), false).expect("plate");
        assert_eq!(t, "ABC123");
        assert_eq!(c.len(), 6);
    }

    #[test]
    fn us_option_writes_o_as_zero() {
        assert_eq!(normalise(&raw("GO0D", 0.9), true).expect("plate").0, "G00D");
        assert_eq!(normalise(&raw("GO0D", 0.9), false).expect("plate").0, "GO0D");
        assert_eq!(normalise_text("abc-1o2", true), "ABC102");
    }

    #[test]
    fn unsure_edges_are_dropped() {
        let mut r = raw("XABC123Y", 0.95);
        r[0].1 = 0.3;
        r[7].1 = 0.2;
        assert_eq!(normalise(&r, false).expect("plate").0, "ABC123");
    }

    #[test]
    fn rejects_fragments_and_slogans() {
        assert!(normalise(&raw("A", 0.9), false).is_none());
        assert!(normalise(&raw("LANDOF10000LAKES", 0.9), false).is_none());
        assert!(normalise(&raw("---", 0.9), false).is_none());
    }
}
