//! The audit trail: every query, response and action that enters, updates, accesses, shares or
//! disseminates data is an entry (Minn. Stat. 13.824 subd. 7).
//!
//! Entries are append-only and hash-chained: `hash = SHA-256(prev_hash | seq | at | actor |
//! action | purpose | case | detail | count)`, so `verify` detects an altered, removed or
//! reordered entry.
use sha2::{Digest, Sha256};

/// One audit entry before it is chained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub purpose: String,
    pub case_number: String,
    pub detail: String,
    pub result_count: i64,
}

/// The chain's starting hash.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of entry `seq` chained after `prev`.
pub fn chain_hash(prev: &str, seq: i64, e: &Entry) -> String {
    let mut h = Sha256::new();
    for part in [
        prev,
        &seq.to_string(),
        &e.at.to_string(),
        &e.actor,
        &e.action,
        &e.purpose,
        &e.case_number,
        &e.detail,
        &e.result_count.to_string(),
    ] {
        // Length-prefix each field so no two entries serialise alike.
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(detail: &str) -> Entry {
        Entry {
            at: 1,
            actor: "cli:root".into(),
            action: "reads.list".into(),
            purpose: "demo".into(),
            case_number: "C-1".into(),
            detail: detail.into(),
            result_count: 3,
        }
    }

    #[test]
    fn chain_depends_on_every_field_and_order() {
        let h1 = chain_hash(GENESIS, 1, &e("a"));
        assert_ne!(h1, chain_hash(GENESIS, 1, &e("b")));
        assert_ne!(h1, chain_hash(GENESIS, 2, &e("a")));
        assert_ne!(chain_hash(&h1, 2, &e("b")), chain_hash(GENESIS, 2, &e("b")));
        let mut f = e("a");
        f.actor = "cli:ro".into();
        f.action = "otreads.list".into();
        assert_ne!(h1, chain_hash(GENESIS, 1, &f), "field boundaries matter");
    }
}
