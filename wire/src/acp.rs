//! Address Confidentiality Program plates, shared by both ends as keyed digests.
//!
//! Neither end keeps an ACP participant's plate in the clear: the agency's server turns the
//! plate a records supervisor enters into HMAC-SHA-256(agency ACP key, plate) at once, keeps
//! only the digest, and sends it to every trailer, which compares the same digest of each read.
//! Without the key, a list of digests on a stolen box is a set of random-looking values.
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The digest of `plate` (already plate characters) under `key`.
pub fn acp_digest(key: &[u8], plate: &str) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(plate.as_bytes());
    mac.finalize().into_bytes().into()
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
        let d = acp_digest(b"Jefe", "what do ya want for nothing?");
        assert_eq!(
            hex::encode(d),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_key_matters() {
        assert_ne!(acp_digest(b"k1", "ABC123"), acp_digest(b"k2", "ABC123"));
    }

    #[test]
    fn typed_plates_become_every_form_a_trailer_may_read() {
        assert_eq!(plate_forms("abc-123"), vec!["ABC123"]);
        assert_eq!(plate_forms(" bob 404 "), vec!["BOB404", "B0B404"]);
    }
}
