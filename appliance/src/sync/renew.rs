//! The trailer's certificate, renewed over the link before it expires.
//!
//! Every certificate the agency issues expires (a trailer's after about a year). Within
//! `renew_before_days` of expiry the trailer makes a new key, keeps it beside its current one as
//! `KEY.pending` (mode 0600: it never leaves the trailer) and sends a certificate request
//! signed with it; the server signs it (only for the trailer's own name, only while it is
//! enrolled) and sends the certificate back as a downlink. The trailer checks it (its name, its
//! new key, the agency's CA, not expired), and installs the pair:
//!
//! 1. the certificate is written as `CERT.next`, the pending key renamed to `KEY.next`;
//! 2. `KEY.next` is renamed over `KEY`, then `CERT.next` over `CERT`.
//!
//! A power cut anywhere leaves files from which [`Identity::recover`] (run before every
//! connection) finishes the install: a `CERT.next` means step 2 is due, whatever of it was done.
//! The old pair is kept as `.previous`. The link then reconnects with the new certificate.
use crate::store::seal::Seal;
use rcgen::{CertificateParams, DnType, KeyPair};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the trailer's certificate and key live (the sync configuration's files). A key file
/// named `*.sealed` is encrypted with the store's key (`store::seal`): a trailer's own key on
/// its data volume is then never in clear, and renewal keeps it so.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    pub seal: Option<Arc<Seal>>,
}

/// The associated data of a sealed key.
const KEY_TREE: &str = "tls-key";

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes a new file (0600 for a key), synced.
fn write_new(path: &Path, data: &[u8], secret: bool) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

fn sync_dir(p: &Path) {
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// The first certificate of a PEM chain, parsed.
fn first_cert(pem: &[u8]) -> Result<x509_parser::pem::Pem, String> {
    x509_parser::pem::parse_x509_pem(pem)
        .map(|(_, p)| p)
        .map_err(|e| format!("no certificate in the PEM: {e}"))
}

/// All certificates of a PEM text, as DER.
fn all_certs(pem: &[u8]) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .filter_map(Result::ok)
        .filter(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
        .collect()
}

impl Identity {
    /// An identity whose key file is in clear.
    pub fn plain(cert: PathBuf, key: PathBuf, ca: PathBuf) -> Identity {
        Identity { cert, key, ca, seal: None }
    }

    fn pending(&self) -> PathBuf {
        with_suffix(&self.key, ".pending")
    }

    fn sealed(&self) -> bool {
        self.key.extension().is_some_and(|e| e == "sealed")
    }

    /// A key's file contents as written: sealed with the store key when the key file is.
    fn key_bytes(&self, pem: &str) -> Result<Vec<u8>, String> {
        if !self.sealed() {
            return Ok(pem.as_bytes().to_vec());
        }
        match &self.seal {
            Some(seal) if seal.encrypted() => Ok(seal.seal(KEY_TREE, pem.as_bytes())),
            _ => Err(format!("{} is sealed: set store.key_file", self.key.display())),
        }
    }

    /// A key file read (and opened, if sealed) as PEM.
    fn read_key_file(&self, path: &Path) -> Result<String, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let plain = if self.sealed() {
            let seal = self
                .seal
                .as_ref()
                .filter(|s| s.encrypted())
                .ok_or_else(|| format!("{} is sealed: set store.key_file", path.display()))?;
            seal.open(KEY_TREE, &bytes)
                .map_err(|_| format!("{} does not open with the store key", path.display()))?
        } else {
            bytes
        };
        String::from_utf8(plain).map_err(|_| format!("{} is not PEM", path.display()))
    }

    /// The TLS client configuration: the agency CA, this certificate and its key.
    pub fn tls(&self) -> Result<rustls::ClientConfig, trailer_wire::client::ClientError> {
        let pem = self.read_key_file(&self.key).map_err(|reason| {
            trailer_wire::client::ClientError::Credentials {
                what: "private key",
                path: self.key.clone(),
                reason,
            }
        })?;
        trailer_wire::client::tls_config_with_key(&self.ca, &self.cert, &self.key, pem.as_bytes())
    }

    /// Makes the trailer's first key (at enrolment): never overwrites one. Returns a request
    /// for `trailer` signed with it.
    pub fn enroll(&self, trailer: &str) -> Result<Vec<u8>, String> {
        if self.key.exists() {
            return Err(format!("{} exists: this trailer has a key already", self.key.display()));
        }
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        if let Some(dir) = self.key.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        write_new(&self.key, &self.key_bytes(&key.serialize_pem())?, true)
            .map_err(|e| format!("{}: {e}", self.key.display()))?;
        sync_dir(&self.key);
        request_for(&key, trailer)
    }

    /// The second step of enrolment, on the trailer: installs the certificate the agency signed
    /// for the key [`Identity::enroll`] made here, and the agency CA it came with. Refused
    /// unless the certificate names `trailer`, carries this trailer's key, is signed by that CA
    /// and has not expired. Each file is written whole (a synced temporary file and a rename).
    pub fn complete(
        &self,
        trailer: &str,
        chain_pem: &str,
        ca_pem: &str,
        now: i64,
    ) -> Result<String, String> {
        let key_pem = self.read_key_file(&self.key).map_err(|e| {
            format!("{e} (run `appliance enroll` first: the key is made on the trailer)")
        })?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| e.to_string())?;
        let block = first_cert(chain_pem.as_bytes())?;
        let cert = block.parse_x509().map_err(|e| format!("not a certificate: {e}"))?;
        let cn = cert.subject().iter_common_name().next().and_then(|a| a.as_str().ok());
        if cn != Some(trailer) {
            return Err(format!("the certificate is for {cn:?}, not {trailer}"));
        }
        if cert.public_key().raw != key.public_key_der().as_slice() {
            return Err("the certificate is not for the key this trailer made".into());
        }
        let not_after = cert.validity().not_after.timestamp() * 1000;
        if not_after <= now {
            return Err("the certificate has expired already".into());
        }
        let trusted = all_certs(ca_pem.as_bytes()).into_iter().any(|der| {
            x509_parser::parse_x509_certificate(&der)
                .is_ok_and(|(_, issuer)| cert.verify_signature(Some(issuer.public_key())).is_ok())
        });
        if !trusted {
            return Err("the certificate is not signed by the CA it came with".into());
        }
        for (path, data) in [(&self.ca, ca_pem), (&self.cert, chain_pem)] {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            let tmp = with_suffix(path, ".new");
            write_new(&tmp, data.as_bytes(), false)
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            sync_dir(path);
        }
        Ok(format!(
            "{trailer} enrolled: certificate at {} (valid {} more days), agency CA at {}",
            self.cert.display(),
            (not_after - now) / 86_400_000,
            self.ca.display()
        ))
    }

    /// Finishes an install a power cut or a crash interrupted (see the module doc).
    pub fn recover(&self) -> std::io::Result<()> {
        let (next_cert, next_key) =
            (with_suffix(&self.cert, ".next"), with_suffix(&self.key, ".next"));
        if !next_cert.exists() {
            return Ok(());
        }
        if next_key.exists() {
            let _ = std::fs::copy(&self.key, with_suffix(&self.key, ".previous"));
            std::fs::rename(&next_key, &self.key)?;
            sync_dir(&self.key);
        }
        let _ = std::fs::copy(&self.cert, with_suffix(&self.cert, ".previous"));
        std::fs::rename(&next_cert, &self.cert)?;
        sync_dir(&self.cert);
        Ok(())
    }

    /// The certificate's expiry (Unix ms).
    pub fn expiry(&self) -> Result<i64, String> {
        let pem = std::fs::read(&self.cert).map_err(|e| format!("{}: {e}", self.cert.display()))?;
        let block = first_cert(&pem)?;
        let cert = block.parse_x509().map_err(|e| format!("{}: {e}", self.cert.display()))?;
        Ok(cert.validity().not_after.timestamp() * 1000)
    }

    /// Whether the certificate expires within `before_days` of `now`.
    pub fn due(&self, now: i64, before_days: u32) -> bool {
        self.expiry().is_ok_and(|exp| exp - now < i64::from(before_days) * 86_400_000)
    }

    /// A certificate request for `trailer` (DER), signed by the pending key, made now if there
    /// is none (a request sent again after a restart uses the same key).
    pub fn request(&self, trailer: &str) -> Result<Vec<u8>, String> {
        let pending = self.pending();
        let key = match std::fs::read_to_string(&pending) {
            Ok(pem) => {
                KeyPair::from_pem(&pem).map_err(|e| format!("{}: {e}", pending.display()))?
            }
            Err(_) => {
                let key = KeyPair::generate().map_err(|e| e.to_string())?;
                write_new(&pending, key.serialize_pem().as_bytes(), true)
                    .map_err(|e| format!("{}: {e}", pending.display()))?;
                sync_dir(&pending);
                key
            }
        };
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.distinguished_name.push(DnType::CommonName, trailer);
        let csr = params.serialize_request(&key).map_err(|e| e.to_string())?;
        Ok(csr.der().to_vec())
    }

    /// Checks the certificate the server signed and installs it with the pending key. `Ok` says
    /// what was done, `Err` why it was refused (the pending key stays for the next request).
    pub fn install(&self, trailer: &str, chain_pem: &str, now: i64) -> Result<String, String> {
        let pending = self.pending();
        if !pending.exists() {
            return Err("no renewal is pending here".into());
        }
        let key_pem = self.read_key_file(&pending)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| e.to_string())?;
        let block = first_cert(chain_pem.as_bytes())?;
        let cert = block.parse_x509().map_err(|e| format!("not a certificate: {e}"))?;
        let cn = cert.subject().iter_common_name().next().and_then(|a| a.as_str().ok());
        if cn != Some(trailer) {
            return Err(format!("the certificate is for {cn:?}, not {trailer}"));
        }
        if cert.public_key().raw != key.public_key_der().as_slice() {
            return Err("the certificate is not for the key this trailer made".into());
        }
        let not_after = cert.validity().not_after.timestamp() * 1000;
        if not_after <= now {
            return Err("the certificate has expired already".into());
        }
        // Signed by the agency: by a CA certificate the trailer already trusts.
        let ca = std::fs::read(&self.ca).map_err(|e| format!("{}: {e}", self.ca.display()))?;
        let trusted = all_certs(&ca).into_iter().any(|der| {
            x509_parser::parse_x509_certificate(&der)
                .is_ok_and(|(_, issuer)| cert.verify_signature(Some(issuer.public_key())).is_ok())
        });
        if !trusted {
            return Err("the certificate is not signed by the agency's CA".into());
        }
        let (next_cert, next_key) =
            (with_suffix(&self.cert, ".next"), with_suffix(&self.key, ".next"));
        write_new(&next_cert, chain_pem.as_bytes(), false).map_err(|e| e.to_string())?;
        std::fs::rename(&pending, &next_key).map_err(|e| e.to_string())?;
        sync_dir(&next_key);
        self.recover().map_err(|e| format!("installing the certificate: {e}"))?;
        Ok(format!("certificate renewed, valid until {} (days since 1970)", not_after / 86_400_000))
    }
}

/// A certificate request for `trailer` signed with `key` (DER).
fn request_for(key: &KeyPair, trailer: &str) -> Result<Vec<u8>, String> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.distinguished_name.push(DnType::CommonName, trailer);
    let csr = params.serialize_request(key).map_err(|e| e.to_string())?;
    Ok(csr.der().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA, and a trailer certificate it signed for `days`.
    fn agency(dir: &Path, days: i64) -> (Identity, rcgen::Certificate, KeyPair) {
        let ca_key = KeyPair::generate().expect("key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).expect("ca");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("ca");
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, "t1");
        p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
        let cert = p.signed_by(&key, &ca, &ca_key).expect("cert");
        std::fs::write(dir.join("t1.pem"), cert.pem()).expect("cert");
        std::fs::write(dir.join("t1.key"), key.serialize_pem()).expect("key");
        let id = Identity::plain(dir.join("t1.pem"), dir.join("t1.key"), dir.join("ca.pem"));
        (id, ca, ca_key)
    }

    /// Enrolment on the trailer: the key made here, the agency's certificate for it and the
    /// CA installed; a certificate for another name, another key, or from another CA refused.
    #[test]
    fn enrolment_installs_only_a_certificate_for_this_trailers_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, ca, ca_key) = agency(dir.path(), 365);
        let ca_pem = ca.pem();
        let fresh = dir.path().join("identity");
        let id = Identity::plain(fresh.join("t2.pem"), fresh.join("t2.key"), fresh.join("ca.pem"));
        let csr = id.enroll("t2").expect("a key made here");
        assert!(id.enroll("t2").is_err(), "never a second key over the first");
        let chain = sign(&csr, "t2", &ca, &ca_key);
        let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
        let wrong_name = sign(&csr, "t3", &ca, &ca_key);
        let e = id.complete("t2", &wrong_name, &ca_pem, now).expect_err("another name");
        assert!(e.contains("not t2"), "{e}");
        let (_, other_ca, other_key) = agency(dir.path(), 365);
        let foreign = sign(&csr, "t2", &other_ca, &other_key);
        let e = id.complete("t2", &foreign, &ca_pem, now).expect_err("another CA");
        assert!(e.contains("not signed"), "{e}");
        let other = KeyPair::generate().expect("key");
        let theirs = sign(&request_for(&other, "t2").expect("csr"), "t2", &ca, &ca_key);
        let e = id.complete("t2", &theirs, &ca_pem, now).expect_err("another key");
        assert!(e.contains("not for the key"), "{e}");
        assert!(!id.cert.exists() && !id.ca.exists(), "nothing installed by a refusal");
        let said = id.complete("t2", &chain, &ca_pem, now).expect("installed");
        assert!(said.contains("t2 enrolled"), "{said}");
        assert_eq!(std::fs::read_to_string(&id.cert).expect("cert"), chain);
        assert_eq!(std::fs::read_to_string(&id.ca).expect("ca"), ca_pem);
        id.tls().expect("the trailer can connect with it");
    }

    fn sign(csr: &[u8], name: &str, ca: &rcgen::Certificate, ca_key: &KeyPair) -> String {
        let mut req =
            rcgen::CertificateSigningRequestParams::from_der(&csr.to_vec().into()).expect("csr");
        req.params.distinguished_name = rcgen::DistinguishedName::new();
        req.params.distinguished_name.push(DnType::CommonName, name);
        req.params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(365);
        req.signed_by(ca, ca_key).expect("sign").pem()
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp() * 1000
    }

    #[test]
    fn a_certificate_near_expiry_is_renewed_with_a_key_made_here() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (id, ca, ca_key) = agency(dir.path(), 10);
        assert!(id.due(now(), 30) && !id.due(now(), 5));
        let csr = id.request("t1").expect("request");
        let pending = std::fs::read(id.pending()).expect("pending");
        id.request("t1").expect("again");
        assert_eq!(std::fs::read(id.pending()).expect("pending"), pending, "the same pending key");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(id.pending()).expect("pending").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let old_key = std::fs::read(&id.key).expect("key");
        let wrong = sign(&csr, "t2", &ca, &ca_key);
        assert!(id.install("t1", &wrong, now()).expect_err("name").contains("not t1"));
        let other = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, "t1");
        let foreign_csr = p.serialize_request(&other).expect("csr").der().to_vec();
        let not_mine = sign(&foreign_csr, "t1", &ca, &ca_key);
        assert!(id.install("t1", &not_mine, now()).expect_err("key").contains("not for the key"));
        let (_, stranger, stranger_key) = agency(tempfile::tempdir().expect("dir").path(), 10);
        let forged = sign(&csr, "t1", &stranger, &stranger_key);
        assert!(id.install("t1", &forged, now()).expect_err("ca").contains("agency's CA"));
        let good = sign(&csr, "t1", &ca, &ca_key);
        id.install("t1", &good, now()).expect("install");
        assert!(!id.due(now(), 30), "a year ahead now");
        assert_ne!(std::fs::read(&id.key).expect("key"), old_key);
        assert!(!id.pending().exists() && with_suffix(&id.key, ".previous").exists());
    }

    /// A power cut after the new pair was staged, or between the two renames: the next start
    /// finishes the install, and the certificate matches the key.
    #[test]
    fn an_interrupted_install_is_finished() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (id, ca, ca_key) = agency(dir.path(), 10);
        let csr = id.request("t1").expect("request");
        let good = sign(&csr, "t1", &ca, &ca_key);
        let pending = std::fs::read(id.pending()).expect("pending");
        // Staged, then the key renamed, then the power went.
        std::fs::write(with_suffix(&id.cert, ".next"), &good).expect("next");
        std::fs::rename(id.pending(), &id.key).expect("key");
        id.recover().expect("recover");
        assert_eq!(std::fs::read(&id.key).expect("key"), pending);
        assert_eq!(std::fs::read_to_string(&id.cert).expect("cert"), good);
        assert!(!with_suffix(&id.cert, ".next").exists());
    }
}
