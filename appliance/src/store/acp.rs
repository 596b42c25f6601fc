//! Address Confidentiality Program plates, kept only as slow keyed digests (see
//! [`trailer_wire::acp`]: the server computes the same digests from the plates it is given).
pub use trailer_wire::acp::{acp_digest, acp_probe, key_fingerprint};

/// Why an ACP addition was refused: the trailer could not honour it, and must say so rather
/// than answer "applied".
pub fn refusal(own_key: Option<&[u8]>, theirs: [u8; 8]) -> Option<String> {
    match own_key {
        None => Some(
            "refused: this trailer has no ACP key (store.acp_key_file): it cannot recognise \
             the plates"
                .into(),
        ),
        Some(key) if key_fingerprint(key) != theirs => Some(format!(
            "refused: this trailer's ACP key (fingerprint {}) is not the server's ({}): it \
             cannot recognise the plates",
            hex(&key_fingerprint(key)),
            hex(&theirs)
        )),
        Some(_) => None,
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
