//! Encryption at rest of what a stolen trailer would give away.
//!
//! A trailer stands alone by a road. Its data partition is a LUKS2 volume unlocked by a key the
//! TPM2 seals to the trailer's boot (the image, `image-build/`), and the store encrypts on top of
//! it what holds a plate, a picture or a place: the values of the reads, alerts, periods of use,
//! deployment events, holds and staged hotlist chunks, every picture in the day segments, and the
//! hotlist snapshot files. Keys of records (ids), counts, and the outbox stay readable: they
//! order and size the store, and tell nothing about a vehicle.
//!
//! The scheme is XChaCha20-Poly1305 with a random 24-byte nonce per value (no counter to keep
//! across power cuts and copies); the tree's name is the associated data, so a value moved to
//! another tree does not open. The 32-byte key comes from `store.key_file`; on the image that is
//! a systemd credential (`LoadCredentialEncrypted=`, sealed by the TPM2, or by the host key on a
//! box without one), decrypted into memory when the daemon starts and never written in clear.
//! A store is encrypted from its creation, or not at all: its key's fingerprint is recorded, so
//! a wrong key is refused at open instead of reading as damage.
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

const NONCE: usize = 24;

/// Seals and opens the store's values; without a key it passes them through.
pub struct Seal {
    cipher: Option<XChaCha20Poly1305>,
    fingerprint: Option<[u8; 8]>,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seal").field("encrypted", &self.cipher.is_some()).finish()
    }
}

/// A value that does not open: damaged, or sealed with another key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unopened;

impl Seal {
    /// No encryption.
    pub fn none() -> Seal {
        Seal { cipher: None, fingerprint: None }
    }

    /// Encryption with a 32-byte key.
    pub fn with_key(key: &[u8; 32]) -> Seal {
        Seal {
            cipher: Some(XChaCha20Poly1305::new(key.into())),
            fingerprint: Some(fingerprint(key)),
        }
    }

    pub fn encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// The key's fingerprint, as the store records it.
    pub fn fingerprint(&self) -> Option<[u8; 8]> {
        self.fingerprint
    }

    /// `plain` sealed for `tree`.
    pub fn seal(&self, tree: &str, plain: &[u8]) -> Vec<u8> {
        let Some(cipher) = &self.cipher else { return plain.to_vec() };
        let nonce: [u8; NONCE] = rand::random();
        let sealed = cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plain, aad: tree.as_bytes() })
            // Encryption fails only for messages beyond 256 GiB.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// A value of `tree` opened.
    pub fn open(&self, tree: &str, sealed: &[u8]) -> Result<Vec<u8>, Unopened> {
        let Some(cipher) = &self.cipher else { return Ok(sealed.to_vec()) };
        if sealed.len() < NONCE {
            return Err(Unopened);
        }
        let (nonce, body) = sealed.split_at(NONCE);
        let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| Unopened)?;
        cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: body, aad: tree.as_bytes() })
            .map_err(|_| Unopened)
    }
}

/// Names a store key without revealing it.
pub fn fingerprint(key: &[u8]) -> [u8; 8] {
    let d = Sha256::new().chain_update(b"trailer-alpr store key").chain_update(key).finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// Reads a store key file: 64 hex digits, or 32 raw bytes.
pub fn read_key(path: &std::path::Path) -> Result<[u8; 32], String> {
    let bytes = std::fs::read(path).map_err(|e| format!("store key {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let hex = text.trim();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut key = [0u8; 32];
        for (i, k) in key.iter_mut().enumerate() {
            *k = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        return Ok(key);
    }
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| format!("store key {}: 64 hex digits or 32 bytes", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_key_and_in_their_tree() {
        let seal = Seal::with_key(&[7; 32]);
        let sealed = seal.seal("reads", b"ABC123 at Main St");
        assert!(!sealed.windows(6).any(|w| w == b"ABC123"), "no plate in the sealed value");
        assert_eq!(seal.open("reads", &sealed).expect("opens"), b"ABC123 at Main St");
        assert_eq!(seal.open("alerts", &sealed), Err(Unopened), "bound to its tree");
        assert_eq!(Seal::with_key(&[8; 32]).open("reads", &sealed), Err(Unopened));
        assert_ne!(seal.seal("reads", b"x"), seal.seal("reads", b"x"), "a fresh nonce each time");
        let plain = Seal::none();
        assert_eq!(plain.seal("reads", b"x"), b"x");
        assert_ne!(fingerprint(&[7; 32]), fingerprint(&[8; 32]));
    }
}
