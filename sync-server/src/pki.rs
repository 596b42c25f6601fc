//! The agency's certificate authority: it signs the broker's certificate, the server's client
//! certificate (CN `sync-server`), each trailer's (CN = trailer id) and each operator's.
//!
//! Files in the PKI directory: `ca.pem`/`ca.key`, `broker.pem`/`.key`, `<name>.pem`/`.key`, and
//! `acp.key`, the agency's key for Address Confidentiality Program digests (server and trailers).
//! Keys are written with mode 0600.
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Names a trailer or operator may not take: they carry the server's and broker's privileges.
pub const RESERVED_NAMES: [&str; 3] = ["sync-server", "broker", "ca"];

#[derive(Debug, Error)]
pub enum PkiError {
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("invalid name {0:?}: use 1-64 of A-Z a-z 0-9 - _ . and not a reserved name")]
    BadName(String),
    #[error("no CA in {0}: run `sync-server pki init` first")]
    NoCa(PathBuf),
}

fn write(path: &Path, data: &str, secret: bool) -> Result<(), PkiError> {
    let io = |source| PkiError::Io { path: path.to_path_buf(), source };
    std::fs::write(path, data).map_err(io)?;
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path)
        .map_err(|source| PkiError::Io { path: path.to_path_buf(), source })
}

/// Creates the CA, the broker certificate (for `broker_hosts`) and the server's client
/// certificate. Existing files are kept: running it twice changes nothing.
pub fn init(dir: &Path, agency: &str, broker_hosts: &[String]) -> Result<(), PkiError> {
    std::fs::create_dir_all(dir)
        .map_err(|source| PkiError::Io { path: dir.to_path_buf(), source })?;
    if !dir.join("ca.pem").exists() {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, format!("{agency} ALPR CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        write(&dir.join("ca.key"), &key.serialize_pem(), true)?;
        write(&dir.join("ca.pem"), &cert.pem(), false)?;
    }
    if !dir.join("broker.pem").exists() {
        issue_with(dir, "broker", broker_hosts, true)?;
    }
    if !dir.join("sync-server.pem").exists() {
        issue_with(dir, "sync-server", &[], false)?;
    }
    if !dir.join("acp.key").exists() {
        // The Address Confidentiality Program key, shared by the server and every trailer.
        write(&dir.join("acp.key"), &hex::encode(rand::random::<[u8; 32]>()), true)?;
    }
    Ok(())
}

/// Issues a client certificate for a trailer or operator (CN = `name`).
pub fn issue(dir: &Path, name: &str) -> Result<PathBuf, PkiError> {
    if !trailer_wire::topic::valid_id(name) || RESERVED_NAMES.contains(&name) {
        return Err(PkiError::BadName(name.to_string()));
    }
    issue_with(dir, name, &[], false)
}

fn issue_with(dir: &Path, name: &str, hosts: &[String], server: bool) -> Result<PathBuf, PkiError> {
    if !dir.join("ca.pem").exists() {
        return Err(PkiError::NoCa(dir.to_path_buf()));
    }
    let ca_key = KeyPair::from_pem(&read(&dir.join("ca.key"))?)?;
    let ca_params = CertificateParams::from_ca_cert_pem(&read(&dir.join("ca.pem"))?)?;
    let ca = ca_params.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    for h in hosts {
        params.subject_alt_names.push(match h.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(h.clone().try_into()?),
        });
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let cert = params.signed_by(&key, &ca, &ca_key)?;
    let pem = dir.join(format!("{name}.pem"));
    write(&dir.join(format!("{name}.key")), &key.serialize_pem(), true)?;
    write(&pem, &cert.pem(), false)?;
    Ok(pem)
}
