//! Enrolment, the trailer's side: one command before the agency signs, one after.
//!
//! 1. [`request`]: the trailer makes its key (it never leaves the box) and a certificate
//!    request for its id, which a crew or an administrator takes to the agency
//!    (`sync-server trailer enroll --request FILE --bundle OUT ID`, or the console's
//!    `trailers.enroll`). The server signs it and knows the trailer as enrolled from then on.
//! 2. [`complete`]: the agency's answer (one JSON file: the certificate, the agency CA, the
//!    configuration signing key, the starting settings) installed. The certificate must be for
//!    this trailer's key and name, signed by the CA it came with; the starting settings are
//!    merged into the trailer's configuration and checked before anything is written.
use crate::config::Config;
use crate::sync::renew::Identity;
use crate::trial::ConfigFiles;
use anyhow::Context;
use std::io::Write;
use std::path::Path;

/// The agency's answer to an enrolment request, as `trailers.enroll` returns it.
#[derive(Debug, serde::Deserialize)]
pub struct Bundle {
    pub trailer: String,
    /// The trailer's certificate chain (PEM).
    pub certificate: String,
    /// The agency CA (PEM).
    pub ca: String,
    /// The key a configuration from the server must be signed with (hex); may be empty.
    #[serde(default)]
    pub config_signing_key: String,
    /// The starting settings (TOML): the trailer's id and how it reaches the broker.
    #[serde(default)]
    pub config: String,
}

/// A PEM block of `der` under `label`.
fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Step 1: the key made here and the request for `id` (default: the configuration's
/// `trailer.id`), written to `out` or printed.
pub fn request(
    config: &Config,
    identity: &Identity,
    id: Option<&str>,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let id = id.unwrap_or(&config.trailer.id);
    anyhow::ensure!(
        trailer_wire::topic::valid_id(id),
        "trailer id {id:?}: use 1-64 of A-Z a-z 0-9 - _ ."
    );
    let der = identity.enroll(id).map_err(anyhow::Error::msg)?;
    let pem = pem_block("CERTIFICATE REQUEST", &der);
    match out {
        Some(out) => {
            std::fs::write(out, pem).with_context(|| format!("cannot write {}", out.display()))?
        }
        None => print!("{pem}"),
    }
    eprintln!(
        "key made at {}; give the request to the agency (sync-server trailer enroll --request \
         FILE --bundle ANSWER {id}), then run: appliance enroll --complete ANSWER",
        identity.key.display()
    );
    Ok(())
}

/// Step 2: installs the agency's answer at `bundle`. Returns what was done, for the crew.
pub fn complete(
    files: &ConfigFiles,
    config: &Config,
    identity: &Identity,
    bundle: &Path,
) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(bundle)
        .with_context(|| format!("cannot read {}", bundle.display()))?;
    let b: Bundle = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an enrolment answer", bundle.display()))?;
    // The settings first: a starting configuration that would not start is refused before
    // the certificate is installed.
    let signing_file = config.sync.config_key_file.clone().unwrap_or_else(|| {
        identity.cert.parent().unwrap_or(Path::new(".")).join("config-signing.pub")
    });
    let merged = merge(
        &std::fs::read_to_string(files.active())
            .with_context(|| format!("cannot read {}", files.active().display()))?,
        &b,
        (!b.config_signing_key.is_empty()).then_some(signing_file.as_path()),
    )?;
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    let installed =
        identity.complete(&b.trailer, &b.certificate, &b.ca, now).map_err(anyhow::Error::msg)?;
    if !b.config_signing_key.is_empty() {
        write_whole(&signing_file, format!("{}\n", b.config_signing_key.trim()).as_bytes())?;
    }
    write_whole(files.target(), merged.as_bytes())?;
    Ok(format!("{installed}; settings written to {}", files.target().display()))
}

/// The configuration `current` with the agency's starting settings laid over it, table by
/// table, and the signing key's file named; checked as the daemon would load it.
fn merge(current: &str, b: &Bundle, signing_file: Option<&Path>) -> anyhow::Result<String> {
    let mut doc: toml::Table = toml::from_str(current).context("the current configuration")?;
    let start: toml::Table =
        toml::from_str(&b.config).context("the starting settings in the agency's answer")?;
    for (section, values) in start {
        match (doc.get_mut(&section), values) {
            (Some(toml::Value::Table(have)), toml::Value::Table(new)) => have.extend(new),
            (_, v) => {
                doc.insert(section, v);
            }
        }
    }
    let trailer = doc.entry("trailer").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(t) = trailer {
        t.insert("id".into(), toml::Value::String(b.trailer.clone()));
    }
    if let Some(file) = signing_file {
        let sync = doc.entry("sync").or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = sync {
            t.insert("config_key_file".into(), toml::Value::String(file.display().to_string()));
        }
    }
    let text = toml::to_string(&doc).context("the merged configuration")?;
    Config::parse(&text).context("the configuration with the agency's settings")?;
    Ok(text)
}

/// Writes `data` over `path` through a synced temporary file and a rename.
fn write_whole(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".new");
    let tmp = std::path::PathBuf::from(tmp);
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(config: &str) -> Bundle {
        Bundle {
            trailer: "trailer-07".into(),
            certificate: String::new(),
            ca: String::new(),
            config_signing_key: "ab".into(),
            config: config.into(),
        }
    }

    /// The agency's settings win over the installed ones key by key; the rest is kept.
    #[test]
    fn the_starting_settings_are_laid_over_the_installed_ones() {
        let current = "[trailer]\nid = \"unset\"\ncamera_id = \"mast\"\n[sync]\nbroker_port = 1\n";
        let start = "[trailer]\nid = \"trailer-07\"\n[sync]\nbroker_host = \"mqtt.agency\"\n\
                     broker_port = 8883\n";
        let text = merge(current, &bundle(start), Some(Path::new("/id/config-signing.pub")))
            .expect("merged");
        let c = Config::parse(&text).expect("parses");
        assert_eq!(c.trailer.id, "trailer-07");
        assert_eq!(c.trailer.camera_id, "mast", "kept");
        assert_eq!((c.sync.broker_host.as_str(), c.sync.broker_port), ("mqtt.agency", 8883));
        assert_eq!(c.sync.config_key_file.as_deref(), Some(Path::new("/id/config-signing.pub")));
    }

    #[test]
    fn starting_settings_that_would_not_start_are_refused() {
        let e = merge("", &bundle("[store]\nretention_days = 90\n"), None).expect_err("illegal");
        assert!(format!("{e:#}").contains("retention_days"), "{e:#}");
        let e = merge("", &bundle("[sync\n"), None).expect_err("not TOML");
        assert!(format!("{e:#}").contains("starting settings"), "{e:#}");
    }
}
