//! Hotlists: the state's plate data file and agency lists tied to an active investigation.
//!
//! A list is imported from CSV (`plate,state,category,source,case_number`, header optional) as a
//! new version that replaces the old one atomically (the store writes the version's
//! [`Snapshot`] file, then switches the list's meta record to it, then removes the old file).
//! A list version is immutable, so it is kept as one sorted file, not as keys in sled: measured
//! with a million entries, sled took 12-16 s to import and tens of µs to match, the snapshot
//! about a second and well under a µs (binary search over fixed-width keys held in memory,
//! about 30 bytes per entry).
//!
//! Matching looks the read's normalised plate up in every list's current version; with
//! `ocr_tolerance` it also tries each single substitution of a character the recogniser is known
//! to confuse (O/0, I/1, B/8, S/5, Z/2, G/6, D/0, Q/0).
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;
use trailer_wire::HitCategory;

pub use trailer_wire::hotlist::{HotEntry, parse_category};

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
    #[error("hotlist snapshot: {0}")]
    Snapshot(String),
}

/// Parses a hotlist CSV ([`trailer_wire::hotlist::parse_csv`]: the server checks an upload by
/// the same rules before it sends it here).
pub fn parse_csv(text: &str, us_o_as_zero: bool) -> Result<Vec<HotEntry>, HotlistError> {
    trailer_wire::hotlist::parse_csv(text, us_o_as_zero)
        .map_err(|e| HotlistError::Line { line: e.line, reason: e.reason })
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

/// Plates are at most this long (the CSV parser refuses longer ones).
pub use trailer_wire::hotlist::MAX_PLATE;
const MAGIC: &[u8; 8] = b"TRHOTL01";
/// An index slot: the plate, zero-padded, then its details' offset (u32 LE).
const SLOT: usize = MAX_PLATE + 4;
const DIGEST: usize = 32;

/// What an entry says besides its plate.
#[derive(Debug, Serialize, Deserialize)]
struct Detail {
    state: String,
    category: HitCategory,
    source: String,
    case_number: Option<String>,
}

fn slot_key(plate: &str) -> Option<[u8; MAX_PLATE]> {
    let b = plate.as_bytes();
    if b.is_empty() || b.len() > MAX_PLATE {
        return None;
    }
    let mut k = [0u8; MAX_PLATE];
    k[..b.len()].copy_from_slice(b);
    Some(k)
}

/// One version of a list as the trailer keeps it: a file of
/// `magic, meta length (u32 LE), postcard meta, count (u64 LE), sorted index slots, details,
/// SHA-256 of everything before it`, loaded whole and searched in place.
#[derive(Debug)]
pub struct Snapshot {
    meta: ListMeta,
    bytes: Vec<u8>,
    count: usize,
    index_at: usize,
    details_at: usize,
}

impl Snapshot {
    /// Encodes a list version; entries need not be sorted.
    pub fn encode(meta: &ListMeta, entries: &[HotEntry]) -> Result<Vec<u8>, HotlistError> {
        let bad = |reason: String| HotlistError::Snapshot(reason);
        let mut keyed = Vec::with_capacity(entries.len());
        for e in entries {
            let k =
                slot_key(&e.plate).ok_or_else(|| bad(format!("{:?} is not a plate", e.plate)))?;
            keyed.push((k, e));
        }
        keyed.sort_unstable_by_key(|k| k.0);
        let meta_bytes = postcard::to_allocvec(meta).map_err(|e| bad(e.to_string()))?;
        let mut details = Vec::with_capacity(entries.len() * 16);
        let mut out = Vec::with_capacity(64 + meta_bytes.len() + entries.len() * (SLOT + 16));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(meta_bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&meta_bytes);
        out.extend_from_slice(&(keyed.len() as u64).to_le_bytes());
        for (k, e) in &keyed {
            let at = u32::try_from(details.len()).map_err(|_| bad("list too large".into()))?;
            out.extend_from_slice(k);
            out.extend_from_slice(&at.to_le_bytes());
            let d = Detail {
                state: e.state.clone(),
                category: e.category,
                source: e.source.clone(),
                case_number: e.case_number.clone(),
            };
            details.extend(postcard::to_allocvec(&d).map_err(|e| bad(e.to_string()))?);
        }
        out.extend_from_slice(&details);
        let digest: [u8; DIGEST] = Sha256::digest(&out).into();
        out.extend_from_slice(&digest);
        Ok(out)
    }

    /// Checks and opens a snapshot file's bytes: magic, digest, bounds and order.
    pub fn decode(bytes: Vec<u8>) -> Result<Snapshot, HotlistError> {
        let bad = |reason: &str| HotlistError::Snapshot(reason.to_string());
        if bytes.len() < MAGIC.len() + 4 + 8 + DIGEST || &bytes[..MAGIC.len()] != MAGIC {
            return Err(bad("not a hotlist snapshot"));
        }
        let body = bytes.len() - DIGEST;
        let digest: [u8; DIGEST] = Sha256::digest(&bytes[..body]).into();
        if digest[..] != bytes[body..] {
            return Err(bad("digest mismatch (damaged file)"));
        }
        let u32_at = |at: usize| -> Option<u32> {
            bytes.get(at..at + 4)?.try_into().ok().map(u32::from_le_bytes)
        };
        let meta_len = u32_at(MAGIC.len()).ok_or_else(|| bad("truncated header"))? as usize;
        let meta_at = MAGIC.len() + 4;
        let meta: ListMeta = bytes
            .get(meta_at..meta_at + meta_len)
            .and_then(|m| postcard::from_bytes(m).ok())
            .ok_or_else(|| bad("unreadable list meta"))?;
        let count_at = meta_at + meta_len;
        let count = bytes
            .get(count_at..count_at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .and_then(|c| usize::try_from(c).ok())
            .ok_or_else(|| bad("truncated header"))?;
        let index_at = count_at + 8;
        let details_at = count
            .checked_mul(SLOT)
            .and_then(|n| n.checked_add(index_at))
            .filter(|&d| d <= body)
            .ok_or_else(|| bad("index larger than the file"))?;
        let snap = Snapshot { meta, bytes, count, index_at, details_at };
        for i in 1..count {
            if snap.key(i - 1) > snap.key(i) {
                return Err(bad("index out of order"));
            }
        }
        Ok(snap)
    }

    pub fn meta(&self) -> &ListMeta {
        &self.meta
    }

    fn key(&self, i: usize) -> &[u8] {
        let at = self.index_at + i * SLOT;
        &self.bytes[at..at + MAX_PLATE]
    }

    fn entry(&self, i: usize) -> Option<HotEntry> {
        let at = self.index_at + i * SLOT + MAX_PLATE;
        let off = u32::from_le_bytes(self.bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        let end = self.bytes.len() - DIGEST;
        let (d, _) =
            postcard::take_from_bytes::<Detail>(self.bytes.get(self.details_at + off..end)?)
                .ok()?;
        let plate = self.key(i).iter().take_while(|&&b| b != 0).map(|&b| b as char).collect();
        Some(HotEntry {
            plate,
            state: d.state,
            category: d.category,
            source: d.source,
            case_number: d.case_number,
        })
    }

    /// Every entry for exactly this plate.
    pub fn lookup(&self, plate: &str) -> Vec<HotEntry> {
        let Some(k) = slot_key(plate) else { return Vec::new() };
        let first = partition_point(self.count, |i| self.key(i) < &k[..]);
        (first..self.count)
            .take_while(|&i| self.key(i) == k)
            .filter_map(|i| self.entry(i))
            .collect()
    }
}

/// The first index in `0..n` for which `before` is false (`before` must be monotone).
fn partition_point(n: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_round_trip_and_refuse_damage() {
        let entries = parse_csv(
            "ZZZ999,MN,warrant,MN BCA\nABC123,MN,stolen vehicle,MN BCA\n\
             ABC123,WI,stolen plate,WI DOJ\nC1,MN,active investigation,Agency,27-CR-1\n",
            true,
        )
        .expect("csv");
        let meta = ListMeta { name: "mn".into(), version: 3, source: "MN BCA".into(), entries: 4 };
        let bytes = Snapshot::encode(&meta, &entries).expect("encode");
        let snap = Snapshot::decode(bytes.clone()).expect("decode");
        assert_eq!(snap.meta(), &meta);
        let abc = snap.lookup("ABC123");
        assert_eq!(abc.len(), 2, "both states' entries");
        assert!(abc.iter().any(|e| e.state == "WI" && e.category == HitCategory::StolenPlate));
        assert_eq!(snap.lookup("C1")[0].case_number.as_deref(), Some("27-CR-1"));
        assert_eq!(snap.lookup("ZZZ999")[0], entries[0]);
        assert!(snap.lookup("ABC12").is_empty() && snap.lookup("").is_empty());
        assert!(snap.lookup("ABCDEFGHIJKLMNOP").is_empty());
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert!(matches!(Snapshot::decode(flipped), Err(HotlistError::Snapshot(_))));
        assert!(Snapshot::decode(bytes[..bytes.len() - 1].to_vec()).is_err());
        assert!(Snapshot::decode(b"TRHOTL01".to_vec()).is_err());
        assert!(Snapshot::decode(Vec::new()).is_err());
    }

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
