//! Hotlist files as agencies write them: CSV `plate,state,category,source[,case_number]`, a
//! header optional, `#` comments. Shared so that the server refuses a bad upload with the same
//! reason a trailer would give, before sending it to any trailer.
use crate::HitCategory;
use serde::{Deserialize, Serialize};

/// The longest plate number a list may hold.
pub const MAX_PLATE: usize = 10;

/// One hotlist entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotEntry {
    pub plate: String,
    pub state: String,
    pub category: HitCategory,
    pub source: String,
    pub case_number: Option<String>,
}

/// Why a line of a hotlist file is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "hotlist line {}: {}", self.line, self.reason)
    }
}

/// Plate characters of free text (a hotlist entry, an operator's search): capitals and digits;
/// with `us_o_as_zero`, the letter O as the digit 0 (one character on US plates).
pub fn plate_text(s: &str, us_o_as_zero: bool) -> String {
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
pub fn parse_csv(text: &str, us_o_as_zero: bool) -> Result<Vec<HotEntry>, LineError> {
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
            return Err(LineError {
                line,
                reason: "expected plate,state,category,source[,case_number]".into(),
            });
        }
        let plate = plate_text(&f[0], us_o_as_zero);
        if plate.is_empty() || plate.len() > MAX_PLATE {
            return Err(LineError { line, reason: format!("{:?} is not a plate", f[0]) });
        }
        let category = parse_category(&f[2])
            .ok_or_else(|| LineError { line, reason: format!("unknown category {:?}", f[2]) })?;
        let case_number = f.get(4).filter(|c| !c.is_empty()).cloned();
        if category == HitCategory::ActiveInvestigation && case_number.is_none() {
            return Err(LineError {
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
