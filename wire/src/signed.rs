//! Configurations the server sends a trailer are signed (Ed25519, the agency's configuration
//! key; its public half is installed on every trailer with the CA). Whoever could publish on a
//! trailer's command topic (a broker misconfigured, a server instance's certificate stolen)
//! still cannot change how a trailer collects. The signature covers the trailer's id, the
//! downlink's id and the text, so a configuration signed for one trailer, or one command, is
//! refused for any other.
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

/// What is signed.
fn message(trailer: &str, downlink_id: u64, toml: &str) -> Vec<u8> {
    let mut m = b"trailer-alpr configuration v1\0".to_vec();
    m.extend_from_slice(trailer.as_bytes());
    m.push(0);
    m.extend_from_slice(&downlink_id.to_be_bytes());
    m.extend_from_slice(toml.as_bytes());
    m
}

/// A new signing key, as PKCS#8 (DER).
pub fn generate() -> Result<Vec<u8>, String> {
    Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .map(|d| d.as_ref().to_vec())
        .map_err(|e| format!("cannot make a signing key: {e}"))
}

/// The public half of a PKCS#8 signing key (32 bytes).
pub fn public_key(pkcs8: &[u8]) -> Result<[u8; 32], String> {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| format!("signing key: {e}"))?;
    pair.public_key().as_ref().try_into().map_err(|_| "signing key: not Ed25519".into())
}

/// The signature of a configuration for `trailer` in downlink `downlink_id`.
pub fn sign(pkcs8: &[u8], trailer: &str, downlink_id: u64, toml: &str) -> Result<Vec<u8>, String> {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| format!("signing key: {e}"))?;
    Ok(pair.sign(&message(trailer, downlink_id, toml)).as_ref().to_vec())
}

/// Whether `signature` is the agency's (public key `public`) over this configuration.
pub fn verify(
    public: &[u8; 32],
    trailer: &str,
    downlink_id: u64,
    toml: &str,
    signature: &[u8],
) -> bool {
    UnparsedPublicKey::new(&ED25519, public)
        .verify(&message(trailer, downlink_id, toml), signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_for_its_trailer_command_and_text_only() {
        let key = generate().expect("key");
        let public = public_key(&key).expect("public");
        let sig = sign(&key, "t1", 7, "[trailer]\n").expect("sign");
        assert!(verify(&public, "t1", 7, "[trailer]\n", &sig));
        assert!(!verify(&public, "t2", 7, "[trailer]\n", &sig), "another trailer");
        assert!(!verify(&public, "t1", 8, "[trailer]\n", &sig), "another command");
        assert!(!verify(&public, "t1", 7, "[trailer]\nx = 1\n", &sig), "another text");
        let other = public_key(&generate().expect("key")).expect("public");
        assert!(!verify(&other, "t1", 7, "[trailer]\n", &sig), "another agency's key");
    }
}
