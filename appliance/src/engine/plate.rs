//! Text normalisation: from what the recogniser read to a plate number.
//!
//! A plate number is what hotlists and the state's plate data file key on: upper-case A-Z and
//! 0-9, no spaces or dashes. The rules here are the same on the trailer and for hotlist entries,
//! so a hotlist plate and a read of it compare equal.

/// Normalises free text (a hotlist entry, an operator's search) to plate characters.
pub use trailer_wire::hotlist::plate_text as normalise_text;

/// Shortest and longest plate numbers accepted (US plates are 1-8 characters; a read of fewer
/// than 2 is too often a fragment).
pub const MIN_LEN: usize = 2;
pub const MAX_LEN: usize = 8;

/// Characters at either end read below this confidence are dropped: they are usually a bolt, a
/// frame edge or a sticker, not a character.
pub const EDGE_CONFIDENCE: f32 = 0.5;

/// How plausible a read's length is for a US plate, as a weight on its confidence when crops of
/// one box disagree: standard plates have 5 to 8 characters; a shorter read is usually a crop
/// that cut characters off, though vanity plates can be that short.
pub fn length_prior(text: &str) -> f32 {
    if text.len() >= 5 { 1.0 } else { SHORT_READ_WEIGHT }
}

/// See [`length_prior`].
pub const SHORT_READ_WEIGHT: f32 = 0.9;

/// What a read of one box weighs against the other crops' reads: its confidence times
/// [`length_prior`].
pub fn weighed(text: &str, confidence: f32) -> f32 {
    confidence * length_prior(text)
}

/// Plate characters a glyph's alternatives cover: 0-9 then A-Z.
pub const SLOTS: usize = 36;

/// The slot of a plate character (either case), if it is one.
pub fn slot(c: char) -> Option<usize> {
    match c.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as usize - '0' as usize),
        l @ 'A'..='Z' => Some(10 + l as usize - 'A' as usize),
        _ => None,
    }
}

/// One character as the recogniser read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Glyph {
    pub ch: char,
    /// Its probability.
    pub p: f32,
    /// How probable each plate character ([`slot`]) was at the same point of the line.
    pub alts: [f32; SLOTS],
}

impl Glyph {
    /// A glyph without alternatives (tests, hand-made reads).
    pub fn plain(ch: char, p: f32) -> Glyph {
        let mut alts = [0.0; SLOTS];
        if let Some(s) = slot(ch) {
            alts[s] = p;
        }
        Glyph { ch, p, alts }
    }
}

/// Normalises a recogniser read: plate characters only, upper case, O written 0 for US plates,
/// unsure edge characters dropped. `None` when what is left cannot be a plate.
pub fn normalise(raw: &[Glyph], us_o_as_zero: bool) -> Option<Vec<Glyph>> {
    let (o, zero) = (10 + ('O' as usize - 'A' as usize), 0);
    let mut chars: Vec<Glyph> = raw
        .iter()
        .filter_map(|g| {
            let u = g.ch.to_ascii_uppercase();
            let mut g = Glyph { ch: u, ..g.clone() };
            if us_o_as_zero {
                g.alts[zero] = g.alts[zero].max(g.alts[o]);
                g.alts[o] = 0.0;
            }
            match u {
                'O' if us_o_as_zero => Some(Glyph { ch: '0', ..g }),
                'A'..='Z' | '0'..='9' => Some(g),
                _ => None,
            }
        })
        .collect();
    if chars.len() > MIN_LEN + 2 {
        if chars.last().is_some_and(|c| c.p < EDGE_CONFIDENCE) {
            chars.pop();
        }
        if chars.first().is_some_and(|c| c.p < EDGE_CONFIDENCE) {
            chars.remove(0);
        }
    }
    if !(MIN_LEN..=MAX_LEN).contains(&chars.len()) {
        return None;
    }
    Some(chars)
}

/// Standard US passenger plate layouts, `L` a letter and `D` a digit: California's 1ABC234,
/// the ABC1234 most large states issue, Illinois' AB12345, and the six-character ABC123 and
/// 123ABC.
pub const US_FORMATS: [&str; 5] = ["DLLLDDD", "LLLDDDD", "LLDDDDD", "LLLDDD", "DDDLLL"];

/// A look-alike the recogniser gave less than this probability where it read the character is
/// not considered.
pub const MIN_LOOK_ALIKE_P: f32 = 0.01;

/// Letters and digits plate fonts make look alike.
const LOOK_ALIKE: [(char, char); 12] = [
    ('0', 'D'),
    ('0', 'Q'),
    ('1', 'I'),
    ('1', 'T'),
    ('2', 'Z'),
    ('4', 'A'),
    ('4', 'L'),
    ('5', 'S'),
    ('6', 'G'),
    ('7', 'Z'),
    ('7', 'T'),
    ('8', 'B'),
];

/// Letter/digit disambiguation where a format makes it certain: a read that fits no standard
/// layout, but would fit one if exactly one character were its look-alike (a letter where the
/// layout needs a digit or the reverse), gets that look-alike; where a letter has two digit
/// look-alikes the recogniser's own probabilities choose, and a look-alike it gave under
/// [`MIN_LOOK_ALIKE_P`] is not one. Anything else is left as read (vanity
/// plates fit no layout). Returns whether it changed a character.
pub fn fit_us_format(glyphs: &mut [Glyph]) -> bool {
    let kind = |c: char| if c.is_ascii_digit() { 'D' } else { 'L' };
    let layout: Vec<u8> = glyphs.iter().map(|g| kind(g.ch) as u8).collect();
    // On US plates O and 0 are one character (written 0): it fits a letter or a digit place.
    let fits = |layout: &[u8], format: &str| {
        layout.len() == format.len()
            && glyphs
                .iter()
                .zip(layout.iter().zip(format.bytes()))
                .all(|(g, (&k, f))| k == f || g.ch == '0')
    };
    if US_FORMATS.iter().any(|f| fits(&layout, f)) {
        return false;
    }
    let mut fixes = Vec::new();
    for (i, g) in glyphs.iter().enumerate() {
        let partners = LOOK_ALIKE.iter().filter_map(|&(d, l)| match g.ch {
            c if c == d => Some(l),
            c if c == l => Some(d),
            _ => None,
        });
        let p = |c: char| slot(c).map_or(0.0, |s| g.alts[s]);
        let Some(swap) = partners.max_by(|a, b| p(*a).total_cmp(&p(*b))) else {
            continue;
        };
        // The recogniser must have considered the look-alike at all.
        if p(swap) < MIN_LOOK_ALIKE_P {
            continue;
        }
        if g.ch == '0' {
            // O/0 fits either place already: nothing to swap it for.
            continue;
        }
        let mut fixed = layout.clone();
        fixed[i] = kind(swap) as u8;
        if US_FORMATS.iter().any(|f| fits(&fixed, f)) {
            fixes.push((i, swap));
        }
    }
    match fixes.as_slice() {
        // The glyph keeps its probability: the shape was read that surely, the layout only
        // says which of two look-alikes it is.
        [(i, swap)] => {
            glyphs[*i].ch = *swap;
            true
        }
        _ => false,
    }
}

/// Reads of two crops of one plate overlap by at least this many characters to be joined.
pub const JOIN_OVERLAP: usize = 4;
/// A joined read is at most this long (the longest standard US plate).
pub const JOIN_MAX_LEN: usize = 7;
/// Every character of a joined read was read at least this surely.
pub const JOIN_MIN_P: f32 = 0.8;

/// The best read joined with another crop's read of the same plate where one ends as the
/// other begins (`7366J1` and `47366` overlap in `7366`: `47366J1`), or where the best read is
/// the whole of the other but its first or last character (`AMW240` in `1AMW240`): a tight crop
/// loses an edge character a padded or less trimmed one keeps, and the other way round. The
/// longest such join, if it is longer than the best read, no longer than [`JOIN_MAX_LEN`] and
/// sure of every character.
pub fn join_overlapping(best: &[Glyph], others: &[Vec<Glyph>]) -> Option<Vec<Glyph>> {
    let chars = |g: &[Glyph]| g.iter().map(|x| x.ch).collect::<Vec<char>>();
    let b = chars(best);
    let mut joined: Option<Vec<Glyph>> = None;
    for other in others {
        let o = chars(other);
        for k in (JOIN_OVERLAP..=b.len().min(o.len())).rev() {
            let candidate = if b.ends_with(&o[..k]) {
                // The best read, then what the other read beyond the overlap.
                best.iter().chain(&other[k..]).cloned().collect::<Vec<_>>()
            } else if o.ends_with(&b[..k]) {
                // What the other read before the overlap, then the best read.
                other[..o.len() - k].iter().chain(best).cloned().collect()
            } else {
                continue;
            };
            if candidate.len() > b.len()
                && candidate.len() <= JOIN_MAX_LEN
                && candidate.iter().all(|g| g.p >= JOIN_MIN_P)
                && joined.as_ref().is_none_or(|j| j.len() < candidate.len())
            {
                joined = Some(candidate);
            }
            break;
        }
    }
    joined
}

/// Whether one trim's reads settle the box, so the other trims and angles need not be read:
/// every pad gave a distinct crop (`reads` has one read per pad; at the picture's edge pads
/// crop the same pixels and prove nothing), there are at least two, and all read the same text,
/// each at least `settle` sure. Measured on `eu` (long plates, wide crops): half the reading
/// time, one plate of 108 lost; on `us-dev` and `us-plates` no read changed.
pub fn trim_settles(reads: &[(String, f32)], pads: usize, settle: f32) -> bool {
    pads >= 2 && reads.len() == pads && reads.iter().all(|(t, c)| *t == reads[0].0 && *c >= settle)
}

/// The text of a read.
pub fn text(glyphs: &[Glyph]) -> String {
    glyphs.iter().map(|g| g.ch).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str, p: f32) -> Vec<Glyph> {
        s.chars().map(|c| Glyph::plain(c, p)).collect()
    }

    fn read(s: &str) -> String {
        text(&normalise(&raw(s, 0.9), true).expect("plate"))
    }

    #[test]
    fn keeps_only_plate_characters() {
        let g = normalise(&raw("ab-c 12.3", 0.9), false).expect("plate");
        assert_eq!(text(&g), "ABC123");
        assert_eq!(g.len(), 6);
    }

    #[test]
    fn us_option_writes_o_as_zero() {
        assert_eq!(read("GO0D"), "G00D");
        assert_eq!(text(&normalise(&raw("GO0D", 0.9), false).expect("plate")), "GO0D");
        assert_eq!(normalise_text("abc-1o2", true), "ABC102");
    }

    #[test]
    fn unsure_edges_are_dropped() {
        let mut r = raw("XABC123Y", 0.95);
        r[0].p = 0.3;
        r[7].p = 0.2;
        assert_eq!(text(&normalise(&r, false).expect("plate")), "ABC123");
    }

    #[test]
    fn rejects_fragments_and_slogans() {
        assert!(normalise(&raw("A", 0.9), false).is_none());
        assert!(normalise(&raw("LANDOF10000LAKES", 0.9), false).is_none());
        assert!(normalise(&raw("---", 0.9), false).is_none());
    }

    /// Reads `s` as if the recogniser gave every look-alike of every character 5%.
    fn fitted(s: &str) -> String {
        let mut g = normalise(&raw(s, 0.9), true).expect("plate");
        for glyph in &mut g {
            for &(d, l) in &LOOK_ALIKE {
                for c in [d, l] {
                    if let Some(s) = slot(c).filter(|_| glyph.ch == d || glyph.ch == l) {
                        glyph.alts[s] = glyph.alts[s].max(0.05);
                    }
                }
            }
        }
        fit_us_format(&mut g);
        text(&g)
    }

    #[test]
    fn a_look_alike_is_swapped_only_where_one_format_makes_it_certain() {
        // California's 1ABC234: the first character is a digit.
        assert_eq!(fitted("ZEAV033"), "7EAV033");
        assert_eq!(fitted("LGLX168"), "4GLX168");
        // LGLS168 could be 4GLS168 or LGL5168 (ABC1234): not certain, left alone.
        assert_eq!(fitted("LGLS168"), "LGLS168");
        // ABC1234: a 5 among the letters is an S, an I among the digits a 1.
        assert_eq!(fitted("K5M4455"), "KSM4455");
        assert_eq!(fitted("KIM44I5"), "KIM4415");
        // Reads that fit a layout, or fit none within one look-alike, are left alone.
        assert_eq!(fitted("ABC1234"), "ABC1234");
        assert_eq!(fitted("SH0LR7X"), "SH0LR7X");
        assert_eq!(fitted("GR8TFUN"), "GR8TFUN");
        // O and 0 are one on US plates: 5A0J230 fits 1ABC234 as it is, and a 0 is never
        // swapped for D or Q.
        assert_eq!(fitted("5A0J230"), "5A0J230");
        assert_eq!(fitted("0AM1456"), "0AM1456");
    }

    #[test]
    fn the_recogniser_chooses_between_two_look_alikes() {
        // Z before EAV033 could be 2 or 7; the recogniser thought 2 more likely.
        let mut g = normalise(&raw("ZEAV033", 0.9), true).expect("plate");
        g[0].alts[slot('7').expect("slot")] = 0.01;
        g[0].alts[slot('2').expect("slot")] = 0.05;
        assert!(fit_us_format(&mut g));
        assert_eq!(text(&g), "2EAV033");
        // A look-alike the recogniser never considered is not taken.
        let mut g = normalise(&raw("ZEAV033", 0.9), true).expect("plate");
        g[0].alts[slot('7').expect("slot")] = 0.001;
        assert!(!fit_us_format(&mut g));
        assert_eq!(text(&g), "ZEAV033");
    }

    #[test]
    fn a_short_read_loses_to_a_longer_one_unless_far_more_confident() {
        // A padded crop that read three characters surely, and the plain one that read six.
        assert!(weighed("627WNI", 0.946) > weighed("627", 0.989));
        // Among reads of plausible length, confidence alone decides.
        assert!(weighed("627WWI", 0.956) > weighed("627WNI", 0.946));
        // A short vanity plate still wins when the longer reads are unsure.
        assert!(weighed("AB1", 0.99) > weighed("XAB1Y", 0.7));
    }

    #[test]
    fn a_trim_settles_only_on_distinct_sure_agreeing_reads() {
        let r = |t: &str, c: f32| (t.to_string(), c);
        assert!(trim_settles(&[r("ABC123", 0.99), r("ABC123", 0.98), r("ABC123", 0.97)], 3, 0.97));
        // One pad read otherwise, one read unsure, or a pad that cropped nothing new: read on.
        assert!(!trim_settles(&[r("ABC123", 0.99), r("BC123", 0.99), r("ABC123", 0.99)], 3, 0.97));
        assert!(!trim_settles(&[r("ABC123", 0.99), r("ABC123", 0.96), r("ABC123", 0.99)], 3, 0.97));
        assert!(!trim_settles(&[r("ABC123", 0.99), r("ABC123", 0.99)], 3, 0.97));
        // A single pad proves nothing by agreeing with itself.
        assert!(!trim_settles(&[r("ABC123", 0.99)], 1, 0.97));
    }

    #[test]
    fn overlapping_reads_of_two_crops_join_into_the_whole_plate() {
        let best = raw("7366J1", 0.99);
        let wide = raw("47366", 0.95);
        let joined = join_overlapping(&best, &[best.clone(), wide]).expect("joined");
        assert_eq!(text(&joined), "47366J1");
        // The other way round: the best read lost its last characters.
        let joined = join_overlapping(&raw("47366", 0.95), &[raw("7366J1", 0.99)]);
        assert_eq!(joined.map(|j| text(&j)), Some("47366J1".into()));
        // The best read whole inside another's, at its end or its start: a crop that kept the
        // edge character another lost.
        let joined = join_overlapping(&raw("AMW240", 0.98), &[raw("1AMW240", 0.97)]);
        assert_eq!(joined.map(|j| text(&j)), Some("1AMW240".into()));
        let joined = join_overlapping(&raw("12132", 0.99), &[raw("12132W", 0.98)]);
        assert_eq!(joined.map(|j| text(&j)), Some("12132W".into()));
        // Too short an overlap, too long a result, or an unsure character: left alone.
        assert!(join_overlapping(&raw("ABC123", 0.99), &[raw("123XYZ", 0.99)]).is_none());
        assert!(join_overlapping(&raw("ABC1234", 0.99), &[raw("C1234XY", 0.99)]).is_none());
        let mut unsure = raw("47366", 0.95);
        unsure[0].p = 0.5;
        assert!(join_overlapping(&raw("7366J1", 0.99), &[unsure]).is_none());
    }

    #[test]
    fn two_possible_fixes_leave_the_read_alone() {
        // 8BC1234: B for the 8 gives ABC1234's layout, I for the 1 California's 1ABC234.
        let mut g = normalise(&raw("8BC1234", 0.9), true).expect("plate");
        assert!(!fit_us_format(&mut g));
        assert_eq!(text(&g), "8BC1234");
    }
}
