//! Hotlists: the state's plate data file and agency lists tied to an active investigation.
//!
//! A list is imported from CSV (`plate,state,category,source,case_number`, header optional) as a
//! new version that replaces the old one atomically: entries are written under the new version,
//! then the list's meta record is switched to it, then the old version's entries are removed.
//! Matching looks the read's normalised plate up in every list's current version; with
//! `ocr_tolerance` it also tries each single substitution of a character the recogniser is known
//! to confuse (O/0, I/1, B/8, S/5, Z/2, G/6, D/0, Q/0).
use crate::engine::plate::normalise_text;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use trailer_wire::HitCategory;

/// One hotlist entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotEntry {
    pub plate: String,
    pub state: String,
    pub category: HitCategory,
    pub source: String,
    pub case_number: Option<String>,
}

/// A list's current version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListMeta {
    pub name: String,
    pub version: u64,
    /// The database this list comes from, as the public log of use names it.
    pub source: String,
    pub entries: u64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum HotlistError {
    #[error("hotlist line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("hotlist {name}: version {version} is not newer than the current {current}")]
    Stale { name: String, version: u64, current: u64 },
    #[error("hotlist name {0:?}: use 1-64 of A-Z a-z 0-9 - _ .")]
    BadName(String),
}

pub fn parse_category(s: &str) -> Option<HitCategory> {
    let k: String =
        s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    Some(match k.as_str() {
        "stolenvehicle" | "stolen" => HitCategory::StolenVehicle,
        "stolenplate" => HitCategory::StolenPlate,
        "warrant" => HitCategory::Warrant,
        "suspendedrevokedlicence" | "suspendedrevokedlicense" | "suspended" | "revoked" => {
            HitCategory::SuspendedRevokedLicence
        }
        "missingperson" | "amber" | "missingpersonamber" => HitCategory::MissingPersonAmber,
        "activeinvestigation" | "investigation" => HitCategory::ActiveInvestigation,
        _ => return None,
    })
}

fn split_csv_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

/// Parses a hotlist CSV. Plates are normalised like reads (`us_o_as_zero` must match the
/// engine's setting). Active-investigation entries need a case number (Minn. Stat. 13.824
/// subd. 3: lists beyond the state file only for an active criminal investigation).
pub fn parse_csv(text: &str, us_o_as_zero: bool) -> Result<Vec<HotEntry>, HotlistError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let f = split_csv_line(raw);
        if line == 1 && f.first().is_some_and(|h| h.eq_ignore_ascii_case("plate")) {
            continue;
        }
        if f.len() < 4 {
            return Err(HotlistError::Line {
                line,
                reason: "expected plate,state,category,source[,case_number]".into(),
            });
        }
        let plate = normalise_text(&f[0], us_o_as_zero);
        if plate.is_empty() || plate.len() > 10 {
            return Err(HotlistError::Line { line, reason: format!("{:?} is not a plate", f[0]) });
        }
        let category = parse_category(&f[2]).ok_or_else(|| HotlistError::Line {
            line,
            reason: format!("unknown category {:?}", f[2]),
        })?;
        let case_number = f.get(4).filter(|c| !c.is_empty()).cloned();
        if category == HitCategory::ActiveInvestigation && case_number.is_none() {
            return Err(HotlistError::Line {
                line,
                reason: "an active-investigation entry needs a case number".into(),
            });
        }
        out.push(HotEntry {
            plate,
            state: f[1].to_ascii_uppercase(),
            category,
            source: f[3].clone(),
            case_number,
        });
    }
    Ok(out)
}

/// Characters the recogniser confuses, both ways.
const CONFUSIONS: [(u8, u8); 8] = [
    (b'O', b'0'),
    (b'I', b'1'),
    (b'B', b'8'),
    (b'S', b'5'),
    (b'Z', b'2'),
    (b'G', b'6'),
    (b'D', b'0'),
    (b'Q', b'0'),
];

/// The plate itself, then every single substitution of a confusable character.
pub fn variants(plate: &str, ocr_tolerance: bool) -> Vec<String> {
    let mut out = vec![plate.to_string()];
    if !ocr_tolerance {
        return out;
    }
    let bytes = plate.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        for &(a, b) in &CONFUSIONS {
            let other = if c == a {
                b
            } else if c == b {
                a
            } else {
                continue;
            };
            let mut v = bytes.to_vec();
            v[i] = other;
            if let Ok(s) = String::from_utf8(v)
                && !out.contains(&s)
            {
                out.push(s);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_with_header_quotes_and_comments() {
        let csv = "plate,state,category,source,case_number\n\
                   # the state's file\n\
                   abc-123,mn,stolen vehicle,MN BCA hotlist,\n\
                   \"XYZ 789\",WI,Warrant,\"NCIC, wanted persons\",\n\
                   CASE1,MN,active investigation,Agency list,27-CR-26-100\n";
        let e = parse_csv(csv, true).expect("parses");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].plate, "ABC123");
        assert_eq!(e[0].category, HitCategory::StolenVehicle);
        assert_eq!(e[1].source, "NCIC, wanted persons");
        assert_eq!(e[2].case_number.as_deref(), Some("27-CR-26-100"));
    }

    #[test]
    fn refuses_bad_lines_by_number() {
        assert_eq!(
            parse_csv("ABC1,MN,parking,X\n", true),
            Err(HotlistError::Line { line: 1, reason: "unknown category \"parking\"".into() })
        );
        let e = parse_csv("ABC1,MN,stolen,X\nINV1,MN,investigation,Agency\n", true)
            .expect_err("no case");
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn variants_cover_known_confusions_only() {
        let v = variants("AB0", true);
        assert!(v.contains(&"AB0".to_string()));
        assert!(v.contains(&"A80".to_string()));
        assert!(v.contains(&"ABO".to_string()));
        assert!(v.contains(&"ABD".to_string()));
        assert!(!v.contains(&"XB0".to_string()));
        assert_eq!(variants("AB0", false), vec!["AB0".to_string()]);
    }
}
