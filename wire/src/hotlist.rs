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

/// Parses a hotlist CSV. Plates are normalised like reads (`us_o_as_zero` must match the
/// engine's setting). Active-investigation entries need a case number (Minn. Stat. 13.824
/// subd. 3: lists beyond the state file only for an active criminal investigation).
pub fn parse_csv(text: &str, us_o_as_zero: bool) -> Result<Vec<HotEntry>, LineError> {
    // A spreadsheet's export: a UTF-8 byte-order mark, quoted fields (a comma or a line
    // break inside quotes), `#` comment lines, blank lines, fields padded with spaces.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    let mut first = true;
    for record in reader.records() {
        let f = record.map_err(|e| LineError {
            line: e.position().map_or(0, |p| p.line() as usize),
            reason: match e.kind() {
                csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".into(),
                _ => format!("not CSV: {e}"),
            },
        })?;
        let line = f.position().map_or(0, |p| p.line() as usize);
        let header =
            std::mem::take(&mut first) && f.get(0).is_some_and(|h| h.eq_ignore_ascii_case("plate"));
        if header || f.iter().all(str::is_empty) {
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
            return Err(LineError { line, reason: format!("{:?} is not a plate", &f[0]) });
        }
        let category = parse_category(&f[2])
            .ok_or_else(|| LineError { line, reason: format!("unknown category {:?}", &f[2]) })?;
        let case_number = f.get(4).filter(|c| !c.is_empty()).map(str::to_string);
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
            source: f[3].to_string(),
            case_number,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spreadsheet_export_is_read_whole() {
        // A byte-order mark, a header, a quoted source with a comma, a quoted case number
        // broken over two lines, a comment and a blank line, fields padded with spaces.
        let text = "\u{feff}Plate,State,Category,Source,Case_Number\r\n\
                    # exported 2026-12-01\r\n\
                    ABC123 , mn , stolen vehicle ,\"MN BCA, Stolen Vehicle File\"\r\n\
                    \r\n\
                    XYZ789,MN,investigation,Agency,\"24-0017\n(burglary series)\"\r\n";
        let got = parse_csv(text, false).expect("parses");
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].plate, "ABC123");
        assert_eq!(got[0].state, "MN");
        assert_eq!(got[0].category, HitCategory::StolenVehicle);
        assert_eq!(got[0].source, "MN BCA, Stolen Vehicle File");
        assert_eq!(got[1].case_number.as_deref(), Some("24-0017\n(burglary series)"));
    }

    #[test]
    fn a_refused_line_is_named_by_its_line_in_the_file() {
        let text = "plate,state,category,source\n# note\nABC123,MN,stolen,X\nQ1,MN,parking,X\n";
        let e = parse_csv(text, false).expect_err("parking is no category");
        assert_eq!(e.line, 4, "{e}");
        assert!(e.reason.contains("parking"), "{e}");
        let e = parse_csv("ABC123,MN\n", false).expect_err("too few fields");
        assert_eq!(e.line, 1);
        let e = parse_csv("INV1,MN,investigation,Agency\n", false).expect_err("needs a case");
        assert!(e.reason.contains("case number"), "{e}");
    }

    #[test]
    fn a_header_is_only_a_header_on_the_first_line() {
        let e = parse_csv("ABC123,MN,stolen,X\nplate,state,category,source\n", false)
            .expect_err("a second header is a bad line");
        assert_eq!(e.line, 2);
    }
}
