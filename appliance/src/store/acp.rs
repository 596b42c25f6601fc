//! Address Confidentiality Program plates, kept only as keyed hashes.
//!
//! The trailer never holds an ACP participant's plate in the clear: the server sends
//! HMAC-SHA-256(agency key, normalised plate) and the trailer compares the same digest of each
//! read's plate. Without the agency key, the list on a stolen box is a set of random-looking
//! 32-byte values.
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The digest the ACP list holds for `plate` (already normalised).
pub fn acp_digest(key: &[u8], plate: &str) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(plate.as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let d = acp_digest(b"Jefe", "what do ya want for nothing?");
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn key_matters() {
        assert_ne!(acp_digest(b"k1", "ABC123"), acp_digest(b"k2", "ABC123"));
    }
}
