//! The agency's certificate authority.
//!
//! Two levels, as appliance vendors run it: a **root** CA whose key signs only the issuing CA
//! (and can be moved off the server once `pki init` has run: nothing else needs it), and an
//! **issuing** CA that signs every other certificate and the revocation list, day to day. Every
//! certificate expires; the role it was issued for (trailer, operator, server, broker,
//! dispatch) is its organisational unit (OU), and the server checks it before renewing one.
//!
//! Files in the PKI directory:
//!
//! | file | what |
//! |---|---|
//! | `root.pem`, `root.key` | the root CA (the key may be moved offline) |
//! | `ca.pem` | the trust bundle every party pins: the issuing CA, then the root |
//! | `ca.key` | the issuing CA's key |
//! | `<name>.pem`, `<name>.key` | a certificate (with the issuing CA after it, the chain a peer is shown) and its key |
//! | `crl.pem` | the revocation list the broker checks (`crlfile`), signed by the issuing CA |
//! | `index.json` | every certificate issued: serial, name, role, expiry, revocation |
//! | `acp.key` | the agency's key for Address Confidentiality Program digests (server and trailers) |
//! | `config-signing.key`, `.pub` | the key configurations sent to trailers are signed with, and its public half the trailers hold |
//!
//! Keys are created with mode 0600 (never made readable and narrowed afterwards), and no file is
//! ever overwritten: issuing a name that exists is refused, renewal writes the new certificate
//! next to the old one's name only through [`sign_request`]'s caller. The index is changed under
//! an exclusive lock on `index.lock`, so the command line and a running server (which renews
//! trailers' certificates over the link) do not lose each other's entries.
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams,
    CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;
use time::OffsetDateTime;

/// Names a trailer or operator may not take: they carry the server's and broker's privileges.
pub const RESERVED_NAMES: [&str; 4] = ["sync-server", "broker", "ca", "root"];

/// What a certificate is for: its OU, and the broker role the server gives its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Trailer,
    Operator,
    Server,
    Broker,
    /// A dispatch system that takes hits from the agency's broker (`[[forward]] mqtt_client`).
    Dispatch,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Trailer => "trailer",
            Role::Operator => "operator",
            Role::Server => "server",
            Role::Broker => "broker",
            Role::Dispatch => "dispatch",
        }
    }

    /// Days a certificate of this role is valid unless asked otherwise: trailers renew theirs
    /// over the link a month before expiry; operators' lapse sooner, as people change duties.
    pub fn default_days(self) -> u32 {
        match self {
            Role::Trailer | Role::Server | Role::Broker | Role::Dispatch => 365,
            Role::Operator => 90,
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Trailer, Role::Operator, Role::Server, Role::Broker, Role::Dispatch]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Days the CAs are valid.
const ROOT_DAYS: u32 = 20 * 365;
const ISSUING_DAYS: u32 = 5 * 365;
/// How long a revocation list is valid; `pki revoke` (and every renewal) writes a new one.
const CRL_DAYS: i64 = 30;

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
    #[error(
        "{0} exists: a certificate or key is never overwritten (revoke it and issue another name, or move it away)"
    )]
    Exists(PathBuf),
    #[error("the request is for {got:?}, not {expected:?}")]
    WrongName { expected: String, got: String },
    #[error("{0}")]
    Invalid(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io { path: path.to_path_buf(), source }
}

/// Creates `path` with `data`; never overwrites. A secret is created with mode 0600.
fn create(path: &Path, data: &str, secret: bool) -> Result<(), PkiError> {
    create_bytes(path, data.as_bytes(), secret)
}

fn create_bytes(path: &Path, data: &[u8], secret: bool) -> Result<(), PkiError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                PkiError::Exists(path.to_path_buf())
            } else {
                PkiError::Io { path: path.to_path_buf(), source: e }
            }
        })?;
    f.write_all(data).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// Replaces a public file atomically (the revocation list, the index).
fn replace(path: &Path, data: &str) -> Result<(), PkiError> {
    crate::atomic::write(path, data.as_bytes()).map_err(io_err(path))
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

/// One certificate issued, as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    /// Hex of the serial number.
    pub serial: String,
    pub name: String,
    pub role: Role,
    pub issued: i64,
    pub not_after: i64,
    #[serde(default)]
    pub revoked: Option<i64>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Every certificate issued, under the index lock.
struct Index {
    path: PathBuf,
    entries: Vec<Issued>,
    _lock: std::fs::File,
}

impl Index {
    fn open(dir: &Path) -> Result<Index, PkiError> {
        let lock_path = dir.join("index.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        let path = dir.join("index.json");
        let entries = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| PkiError::Invalid(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(PkiError::Io { path, source: e }),
        };
        Ok(Index { path, entries, _lock: lock })
    }

    fn save(&self) -> Result<(), PkiError> {
        let text = serde_json::to_string_pretty(&self.entries)
            .map_err(|e| PkiError::Invalid(e.to_string()))?;
        replace(&self.path, &text)
    }
}

/// Every certificate issued from `dir`, oldest first.
pub fn issued(dir: &Path) -> Result<Vec<Issued>, PkiError> {
    Ok(Index::open(dir)?.entries)
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn validity(params: &mut CertificateParams, days: u32) {
    // A minute back: a peer whose clock is a little behind still accepts it at once.
    params.not_before = now() - time::Duration::minutes(1);
    params.not_after = now() + time::Duration::days(i64::from(days));
}

/// A random serial of 16 bytes whose DER integer is exactly those bytes: positive (top bit
/// clear) and minimal (first byte not zero). A leading zero byte would be stripped in the CRL
/// and make the certificate's own encoding non-minimal, so its revocation could be missed.
fn serial() -> SerialNumber {
    let mut bytes = rand::random::<[u8; 16]>();
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from(bytes.to_vec())
}

fn serial_hex(params: &CertificateParams) -> String {
    params.serial_number.as_ref().map(|s| hex::encode(s.as_ref())).unwrap_or_default()
}

/// The issuing CA, ready to sign.
struct Issuer {
    cert: rcgen::Certificate,
    key: KeyPair,
    pem: String,
}

fn issuer(dir: &Path) -> Result<Issuer, PkiError> {
    if !dir.join("ca.key").exists() {
        return Err(PkiError::NoCa(dir.to_path_buf()));
    }
    let key = KeyPair::from_pem(&read(&dir.join("ca.key"))?)?;
    let bundle = read(&dir.join("ca.pem"))?;
    // The bundle's first certificate is the issuing CA.
    let first = bundle
        .split_inclusive("-----END CERTIFICATE-----")
        .next()
        .ok_or_else(|| PkiError::Invalid("ca.pem holds no certificate".into()))?
        .trim()
        .to_string();
    let params = CertificateParams::from_ca_cert_pem(&first)?;
    // Re-signed only to have an issuer to sign with: its name and key are the issuing CA's.
    let cert = params.self_signed(&key)?;
    Ok(Issuer { cert, key, pem: first })
}

fn dn(params: &mut CertificateParams, name: &str, role: Role) {
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.distinguished_name.push(DnType::OrganizationalUnitName, role.as_str());
}

fn leaf_usages(params: &mut CertificateParams, role: Role) {
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![if role == Role::Broker {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method = KeyIdMethod::Sha256;
}

/// Creates the root and issuing CAs, the broker certificate (for `broker_hosts`), the server's
/// certificate, the ACP key and an empty revocation list. What exists is kept: running it twice
/// changes nothing.
pub fn init(dir: &Path, agency: &str, broker_hosts: &[String]) -> Result<(), PkiError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    if !dir.join("ca.pem").exists() {
        let root_key = KeyPair::generate()?;
        let mut root = CertificateParams::new(Vec::<String>::new())?;
        root.distinguished_name.push(DnType::CommonName, format!("{agency} ALPR root CA"));
        root.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        root.serial_number = Some(serial());
        validity(&mut root, ROOT_DAYS);
        let root = root.self_signed(&root_key)?;
        let key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name.push(DnType::CommonName, format!("{agency} ALPR issuing CA"));
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.serial_number = Some(serial());
        ca.use_authority_key_identifier_extension = true;
        validity(&mut ca, ISSUING_DAYS);
        let ca = ca.signed_by(&key, &root, &root_key)?;
        create(&dir.join("root.key"), &root_key.serialize_pem(), true)?;
        create(&dir.join("root.pem"), &root.pem(), false)?;
        create(&dir.join("ca.key"), &key.serialize_pem(), true)?;
        create(&dir.join("ca.pem"), &format!("{}{}", ca.pem(), root.pem()), false)?;
    }
    if !dir.join("broker.pem").exists() {
        issue_with(dir, "broker", Role::Broker, broker_hosts, Role::Broker.default_days())?;
    }
    if !dir.join("sync-server.pem").exists() {
        issue_with(dir, "sync-server", Role::Server, &[], Role::Server.default_days())?;
    }
    if !dir.join("acp.key").exists() {
        // The Address Confidentiality Program key, shared by the server and every trailer.
        create(&dir.join("acp.key"), &hex::encode(rand::random::<[u8; 32]>()), true)?;
    }
    if !dir.join("crl.pem").exists() {
        write_crl(dir, &Index::open(dir)?)?;
    }
    if !dir.join("config-signing.key").exists() {
        // The key configurations sent to trailers are signed with; trailers hold its public
        // half (`config-signing.pub`, 64 hex digits).
        let pkcs8 = trailer_wire::signed::generate().map_err(PkiError::Invalid)?;
        let public = trailer_wire::signed::public_key(&pkcs8).map_err(PkiError::Invalid)?;
        create_bytes(&dir.join("config-signing.key"), &pkcs8, true)?;
        create(&dir.join("config-signing.pub"), &hex::encode(public), false)?;
    }
    Ok(())
}

/// Whether `name` may be taken by a trailer or an operator.
pub fn valid_name(name: &str) -> bool {
    trailer_wire::topic::valid_id(name)
        && !RESERVED_NAMES.contains(&name)
        && !name.starts_with("sync-server")
}

/// Issues a certificate and its key for a trailer or an operator (CN = `name`), valid for
/// `days`. Refused if the name's files exist.
pub fn issue(dir: &Path, name: &str, role: Role, days: u32) -> Result<PathBuf, PkiError> {
    if !valid_name(name) || matches!(role, Role::Server | Role::Broker) {
        return Err(PkiError::BadName(name.to_string()));
    }
    issue_with(dir, name, role, &[], days)
}

/// Issues the certificate of another server instance: CN `sync-server-<instance>` (each
/// instance has its own: the broker binds a client id to its certificate).
pub fn issue_server(dir: &Path, instance: &str, days: u32) -> Result<PathBuf, PkiError> {
    let name = format!("sync-server-{instance}");
    if !trailer_wire::topic::valid_id(&name) {
        return Err(PkiError::BadName(name));
    }
    issue_with(dir, &name, Role::Server, &[], days)
}

fn issue_with(
    dir: &Path,
    name: &str,
    role: Role,
    hosts: &[String],
    days: u32,
) -> Result<PathBuf, PkiError> {
    let issuer = issuer(dir)?;
    let (pem_path, key_path) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    for p in [&pem_path, &key_path] {
        if p.exists() {
            return Err(PkiError::Exists(p.clone()));
        }
    }
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    dn(&mut params, name, role);
    for h in hosts {
        params.subject_alt_names.push(match h.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(h.clone().try_into()?),
        });
    }
    leaf_usages(&mut params, role);
    params.serial_number = Some(serial());
    validity(&mut params, days);
    let mut index = Index::open(dir)?;
    let cert = params.signed_by(&key, &issuer.cert, &issuer.key)?;
    create(&key_path, &key.serialize_pem(), true)?;
    create(&pem_path, &format!("{}{}\n", cert.pem(), issuer.pem), false)?;
    index.entries.push(Issued {
        serial: serial_hex(cert.params()),
        name: name.into(),
        role,
        issued: unix_ms(now()),
        not_after: unix_ms(cert.params().not_after),
        revoked: None,
        reason: None,
    });
    index.save()?;
    Ok(pem_path)
}

/// Signs a certificate signing request (PEM or DER) for `name` in `role`, valid for `days`:
/// the key was made where it is used (a trailer at enrolment or renewal) and never leaves it.
/// The request must name `name` as its CN; everything else in it is ignored. Returns the
/// certificate with the issuing CA after it (PEM).
pub fn sign_request(
    dir: &Path,
    request: &[u8],
    name: &str,
    role: Role,
    days: u32,
) -> Result<String, PkiError> {
    let issuer = issuer(dir)?;
    let mut csr = parse_request(request, name)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    dn(&mut params, name, role);
    leaf_usages(&mut params, role);
    params.serial_number = Some(serial());
    validity(&mut params, days);
    csr.params = params;
    let mut index = Index::open(dir)?;
    let cert = csr.signed_by(&issuer.cert, &issuer.key)?;
    index.entries.push(Issued {
        serial: serial_hex(cert.params()),
        name: name.into(),
        role,
        issued: unix_ms(now()),
        not_after: unix_ms(cert.params().not_after),
        revoked: None,
        reason: None,
    });
    index.save()?;
    Ok(format!("{}{}\n", cert.pem(), issuer.pem))
}

/// A certificate request (PEM or DER) parsed, its signature checked, for `name` only.
pub fn parse_request(
    request: &[u8],
    name: &str,
) -> Result<CertificateSigningRequestParams, PkiError> {
    let csr = match std::str::from_utf8(request) {
        Ok(text) if text.contains("-----BEGIN") => CertificateSigningRequestParams::from_pem(text)?,
        _ => CertificateSigningRequestParams::from_der(&request.to_vec().into())?,
    };
    let got = csr.params.distinguished_name.get(&DnType::CommonName).map_or(String::new(), dn_text);
    if got != name {
        return Err(PkiError::WrongName { expected: name.into(), got });
    }
    Ok(csr)
}

/// A name attribute as text (the encodings a CN may come in; others are not a name we issue).
fn dn_text(v: &rcgen::DnValue) -> String {
    match v {
        rcgen::DnValue::Utf8String(s) => s.clone(),
        rcgen::DnValue::PrintableString(s) => s.as_str().to_string(),
        rcgen::DnValue::Ia5String(s) => s.as_str().to_string(),
        rcgen::DnValue::TeletexString(s) => s.as_str().to_string(),
        _ => String::new(),
    }
}

/// Revokes every unexpired certificate of `name` and writes the revocation list anew. Returns
/// the serials revoked (empty when none was valid). The broker reads the list again on SIGHUP,
/// without dropping the clients it has.
pub fn revoke(dir: &Path, name: &str, reason: &str) -> Result<Vec<String>, PkiError> {
    let mut index = Index::open(dir)?;
    let at = unix_ms(now());
    let mut serials = Vec::new();
    for e in index.entries.iter_mut() {
        if e.name == name && e.revoked.is_none() && e.not_after > at {
            e.revoked = Some(at);
            e.reason = Some(reason.to_string());
            serials.push(e.serial.clone());
        }
    }
    index.save()?;
    write_crl(dir, &index)?;
    Ok(serials)
}

/// Writes `crl.pem` from the index: every revoked certificate not yet expired.
fn write_crl(dir: &Path, index: &Index) -> Result<(), PkiError> {
    let issuer = issuer(dir)?;
    let at = unix_ms(now());
    let revoked_certs = index
        .entries
        .iter()
        .filter(|e| e.revoked.is_some() && e.not_after > at)
        .filter_map(|e| {
            let serial = hex::decode(&e.serial).ok()?;
            let when = OffsetDateTime::from_unix_timestamp(e.revoked.unwrap_or(at) / 1000).ok()?;
            Some(RevokedCertParams {
                serial_number: SerialNumber::from(serial),
                revocation_time: when,
                reason_code: Some(RevocationReason::CessationOfOperation),
                invalidity_date: None,
            })
        })
        .collect();
    let crl = CertificateRevocationListParams {
        this_update: now() - time::Duration::minutes(1),
        next_update: now() + time::Duration::days(CRL_DAYS),
        crl_number: SerialNumber::from(at.to_be_bytes().to_vec()),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&issuer.cert, &issuer.key)?;
    replace(&dir.join("crl.pem"), &crl.pem()?)
}

/// A certificate's CN, OU and expiry (Unix ms), read from its PEM (the first certificate).
pub fn describe(pem: &str) -> Result<(String, Option<String>, i64), PkiError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| PkiError::Invalid(format!("no certificate in PEM: {e}")))?;
    let cert =
        block.parse_x509().map_err(|e| PkiError::Invalid(format!("not a certificate: {e}")))?;
    let subject = cert.subject();
    let cn = subject.iter_common_name().next().and_then(|a| a.as_str().ok()).unwrap_or("");
    let ou = subject.iter_organizational_unit().next().and_then(|a| a.as_str().ok());
    let not_after = cert.validity().not_after.timestamp() * 1000;
    Ok((cn.to_string(), ou.map(str::to_string), not_after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn certificates_expire_carry_their_role_and_are_never_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        init(dir.path(), "Test PD", &["localhost".into()]).expect("init");
        let pem = issue(dir.path(), "t1", Role::Trailer, 30).expect("issue");
        let (cn, ou, not_after) = describe(&read(&pem).expect("pem")).expect("describe");
        assert_eq!((cn.as_str(), ou.as_deref()), ("t1", Some("trailer")));
        let days = (not_after - unix_ms(now())) as f64 / 86_400_000.0;
        assert!((29.9..30.1).contains(&days), "{days} days");
        for key in ["t1.key", "ca.key", "root.key", "acp.key", "broker.key"] {
            let mode = std::fs::metadata(dir.path().join(key)).expect("key").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        let again = issue(dir.path(), "t1", Role::Trailer, 30).expect_err("exists");
        assert!(matches!(again, PkiError::Exists(_)), "{again}");
        assert!(issue(dir.path(), "sync-server-x", Role::Operator, 30).is_err(), "reserved");
        // The chain: the certificate, then the issuing CA; both CAs in the bundle.
        assert_eq!(read(&pem).expect("pem").matches("BEGIN CERTIFICATE").count(), 2);
        assert_eq!(
            read(&dir.path().join("ca.pem")).expect("ca").matches("BEGIN CERTIFICATE").count(),
            2
        );
        init(dir.path(), "Test PD", &[]).expect("init again changes nothing");
    }

    #[test]
    fn serials_are_positive_minimal_sixteen_byte_integers() {
        for _ in 0..2000 {
            let s = serial();
            let b = s.as_ref();
            assert_eq!(b.len(), 16);
            assert!((0x01..0x80).contains(&b[0]), "{b:02x?}");
        }
    }

    #[test]
    fn a_request_is_signed_for_its_own_name_only_and_revocation_lists_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        init(dir.path(), "Test PD", &[]).expect("init");
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, "t2");
        let csr = params.serialize_request(&key).expect("csr").pem().expect("pem");
        let wrong = sign_request(dir.path(), csr.as_bytes(), "t3", Role::Trailer, 30);
        assert!(matches!(wrong, Err(PkiError::WrongName { .. })));
        let chain =
            sign_request(dir.path(), csr.as_bytes(), "t2", Role::Trailer, 30).expect("sign");
        let (cn, ou, _) = describe(&chain).expect("describe");
        assert_eq!((cn.as_str(), ou.as_deref()), ("t2", Some("trailer")));
        let serial = issued(dir.path())
            .expect("index")
            .into_iter()
            .find(|e| e.name == "t2")
            .expect("t2")
            .serial;
        assert_eq!(
            revoke(dir.path(), "t2", "stolen").expect("revoke"),
            std::slice::from_ref(&serial)
        );
        assert!(revoke(dir.path(), "t2", "again").expect("revoke").is_empty(), "once");
        let crl = std::fs::read(dir.path().join("crl.pem")).expect("crl");
        let (_, pem) = x509_parser::pem::parse_x509_pem(&crl).expect("pem");
        let (_, list) = x509_parser::parse_x509_crl(&pem.contents).expect("crl");
        let listed: Vec<String> =
            list.iter_revoked_certificates().map(|r| hex::encode(r.raw_serial())).collect();
        assert_eq!(listed, [serial]);
    }
}
