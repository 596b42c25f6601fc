//! Address Confidentiality Program plates, shared by both ends as keyed digests.
//!
//! Neither end keeps an ACP participant's plate in the clear: the agency's server turns the
//! plate a records supervisor enters into digests under the agency's ACP key at once and sends
//! them to every trailer, which compares the digest of each read before storing it.
//!
//! A trailer stands alone by a road, and its key is on the same box: a thief who takes both
//! could try every plate (at most 36^7) against the list. So the list a trailer keeps holds
//! **slow** digests ([`acp_digest`]: Argon2id keyed with the agency key, a few milliseconds
//! each), which turns an afternoon's enumeration into years; the trailer pays it once per read,
//! and only while the list is not empty. The **fast** keyed digest ([`acp_probe`], HMAC-SHA-256)
//! is only ever in transit: an ACP addition carries it so that the trailer finds the plate's
//! stored reads without a slow digest of each, and the trailer never stores it. The server,
//! which checks every ingested read, keeps fast digests in its own database, inside the agency.
//!
//! Both ends must hold the same key: its [`key_fingerprint`] travels with every addition and in
//! the trailer's health, and a trailer whose key differs refuses the addition, saying so.
use argon2::{Algorithm, Argon2, Params, Version};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The salt of the slow digest: fixed (both ends must compute the same digest of a plate);
/// the agency key is Argon2's secret, so the digests of two agencies never match.
const SALT: &[u8] = b"trailer-alpr ACP plate digest v2";
/// Argon2id parameters: 4 MiB and 3 passes, about 5 ms on a trailer's CPU (`make bench-store`
/// measures it as `acp_digest_ms`).
const MEMORY_KIB: u32 = 4096;
const PASSES: u32 = 3;

/// The slow digest of `plate` (already plate characters) under `key`: what a trailer's list
/// holds.
pub fn acp_digest(key: &[u8], plate: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    let hashed = Params::new(MEMORY_KIB, PASSES, 1, Some(32))
        .and_then(|params| {
            Argon2::new_with_secret(key, Algorithm::Argon2id, Version::V0x13, params)
        })
        .and_then(|a| a.hash_password_into(plate.as_bytes(), SALT, &mut out));
    match hashed {
        Ok(()) => out,
        // Only an empty or over-long key fails; the configuration refuses those.
        Err(_) => [0; 32],
    }
}

/// The fast keyed digest of `plate`: HMAC-SHA-256 under `key`. Never stored on a trailer.
pub fn acp_probe(key: &[u8], plate: &str) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(plate.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Names the key without revealing it: the first 8 bytes of a SHA-256 over it.
pub fn key_fingerprint(key: &[u8]) -> [u8; 8] {
    let d = Sha256::new()
        .chain_update(b"trailer-alpr ACP key fingerprint")
        .chain_update(key)
        .finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// The plate numbers a trailer may write for `text`: as typed, and with the letter O read as
/// the digit 0 (the engine's rule for US plates, where O and 0 are one character).
pub fn plate_forms(text: &str) -> Vec<String> {
    let plain = crate::hotlist::plate_text(text, false);
    let zeroed = plain.replace('O', "0");
    if zeroed == plain { vec![plain] } else { vec![plain, zeroed] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let d = acp_probe(b"Jefe", "what do ya want for nothing?");
        assert_eq!(
            hex::encode(d),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_key_matters_and_the_digest_is_stable() {
        assert_ne!(acp_digest(b"key one", "ABC123"), acp_digest(b"key two", "ABC123"));
        assert_eq!(acp_digest(b"key one", "ABC123"), acp_digest(b"key one", "ABC123"));
        assert_ne!(acp_digest(b"key one", "ABC123"), acp_probe(b"key one", "ABC123"));
        assert_ne!(key_fingerprint(b"key one"), key_fingerprint(b"key two"));
    }

    #[test]
    fn typed_plates_become_every_form_a_trailer_may_read() {
        assert_eq!(plate_forms("abc-123"), vec!["ABC123"]);
        assert_eq!(plate_forms(" bob 404 "), vec!["BOB404", "B0B404"]);
    }
}
