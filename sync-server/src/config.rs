//! The server's configuration: strict TOML with documented defaults.
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub agency: AgencyConfig,
    pub server: ServerConfig,
    pub broker: BrokerConfig,
    pub http: HttpConfig,
    pub bca: BcaConfig,
    pub review: ReviewConfig,
    pub acp: AcpConfig,
    pub pki: PkiConfig,
    pub limits: crate::limits::LimitsConfig,
    /// The agency's dispatch systems that hits are sent to as they arrive (`[[forward]]`, one
    /// table each). None by default.
    pub forward: Vec<ForwardConfig>,
}

/// One dispatch system that hits are sent to: each hit of its categories POSTed as JSON to
/// its webhook, mailed, or published on the agency's broker, and the delivery recorded in the
/// audit trail (a hit delivered to a person is an access to it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// The target's name in the audit trail (A-Z a-z 0-9 - _ .).
    pub name: String,
    /// Where hits are POSTed as JSON: `https://host[:port]/path` (or `http://` to a receiver
    /// on this machine). Give this, `mail_to` or `mqtt_client`.
    #[serde(default)]
    pub webhook: String,
    /// Where hits are mailed instead: a dispatch centre's mailbox, through the agency's mail
    /// relay (`[bca] smtp_host`, `smtp_port`, `smtp_security`, `from`, and its credentials).
    #[serde(default)]
    pub mail_to: String,
    /// Or the dispatch system's name at the agency's broker: its certificate's CN (`sync-server
    /// pki issue --role dispatch NAME`). Each hit is published to `dispatch/NAME/hits` as JSON
    /// (QoS 1) and sent again every `resend_s` until the system answers on `dispatch/NAME/ack`
    /// with `{"trailer": ..., "alert_id": ...}`.
    #[serde(default)]
    pub mqtt_client: String,
    /// Seconds before a hit the dispatch system has not acknowledged on the broker is
    /// published again (`mqtt_client` only).
    #[serde(default = "default_resend")]
    pub resend_s: u64,
    /// The hit categories it takes (`stolen-vehicle`, `stolen-plate`, `warrant`,
    /// `suspended-revoked-licence`, `missing-person-amber`, `active-investigation`); empty:
    /// every category.
    #[serde(default)]
    pub categories: Vec<String>,
    /// The CA certificate (PEM) that signs the receiver's certificate; empty: the public web
    /// roots.
    #[serde(default)]
    pub ca: PathBuf,
    /// Hits received longer ago than this are not sent (a dispatcher acts on fresh ones; the
    /// console has the rest), seconds.
    #[serde(default = "default_forward_age")]
    pub max_age_s: u64,
}

fn default_forward_age() -> u64 {
    600
}

fn default_resend() -> u64 {
    60
}

/// A hit category as the configuration and the records may write it, compared without case,
/// spaces or dashes (`stolen-vehicle`, `StolenVehicle`).
pub fn category_key(c: &str) -> String {
    c.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

const CATEGORIES: [&str; 6] = [
    "stolen-vehicle",
    "stolen-plate",
    "warrant",
    "suspended-revoked-licence",
    "missing-person-amber",
    "active-investigation",
];

/// The agency's PKI directory (`sync-server pki init`), from which the server signs the
/// renewal requests trailers send over the link, and enrolment signs trailers' requests. Empty:
/// no renewal (certificates are issued and renewed by hand).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PkiConfig {
    /// The PKI directory (`sync-server pki init`); empty: none.
    pub dir: PathBuf,
    /// Days a trailer's certificate is valid when issued or renewed.
    pub trailer_days: u32,
    /// The broker's name as trailers reach it (over the cellular network), written into the
    /// starting configuration enrolment hands out. Empty: `[broker] host` and `port`.
    pub trailer_broker_host: String,
    /// The port that goes with `trailer_broker_host` (0: 8883).
    pub trailer_broker_port: u16,
}

impl Default for PkiConfig {
    fn default() -> Self {
        PkiConfig {
            dir: PathBuf::new(),
            trailer_days: 365,
            trailer_broker_host: String::new(),
            trailer_broker_port: 0,
        }
    }
}

/// The Address Confidentiality Program key: the same file as the trailers' `store.acp_key_file`
/// (`sync-server pki init` makes one, `acp.key`). Empty: no participant can be added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AcpConfig {
    /// The agency's ACP key (hex), readable by the server only. Empty: no participant can be
    /// added.
    pub key_file: PathBuf,
}

/// A new location waits before it is published or notified to the BCA, so an operator can mark
/// it security information first (a notice still goes out a day before it is due).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// Hours a new location waits before it is public or notified.
    pub hours: u32,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig { hours: 24 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AgencyConfig {
    /// The agency's name as the public pages and BCA notices show it.
    pub name: String,
    /// The agency's IANA time zone: the public log's days and hours are local.
    pub time_zone: String,
    /// Who to contact about the agency's ALPR program (printed on BCA notices).
    pub contact: String,
    /// The hotlist names that are the state's plate data file (Minn. Stat. 13.824 subd. 2);
    /// every other list is an active investigation's, loaded only with its case number and a
    /// second supervisor's approval.
    pub state_lists: Vec<String>,
    /// Where the agency publishes its written ALPR policy (Minn. Stat. 626.8472), linked from
    /// the public pages.
    pub policy_url: String,
}

/// The state list's name by default.
pub const STATE_LIST: &str = "mn-state";

impl Default for AgencyConfig {
    fn default() -> Self {
        AgencyConfig {
            name: "Example Police Department".into(),
            time_zone: "America/Chicago".into(),
            contact: "Records unit, (555) 555-0100".into(),
            state_lists: vec![STATE_LIST.into()],
            policy_url: String::new(),
        }
    }
}

/// How notices reach the Bureau of Criminal Apprehension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// By e-mail through `smtp_host`.
    Smtp,
    /// As files in `outbox_dir` (for an agency that sends them another way); marked sent when
    /// written.
    Outbox,
    /// Not sent by the server: operators send them and mark them sent.
    Manual,
}

/// SMTP connection security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpSecurity {
    /// Implicit TLS (port 465).
    Tls,
    /// STARTTLS, required (port 587).
    Starttls,
    /// None: only for a relay on the same host or a test sink.
    Plain,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BcaConfig {
    pub delivery: Delivery,
    /// Where notices go (the BCA's ALPR notification address).
    pub to: String,
    /// The agency's sending address on notices (and on hits mailed to dispatch).
    pub from: String,
    /// The agency's mail relay (empty: no mail; notices go to the outbox).
    pub smtp_host: String,
    /// The mail relay's port (587 for STARTTLS, 465 for implicit TLS).
    pub smtp_port: u16,
    pub smtp_security: SmtpSecurity,
    /// User name for SMTP authentication (empty: none); the password is read from
    /// `smtp_password_file`.
    pub smtp_user: String,
    /// A file holding the SMTP password alone, readable by the server only.
    pub smtp_password_file: PathBuf,
    /// Outbox folder (empty: `data_dir/bca-outbox`).
    pub outbox_dir: PathBuf,
    /// How often the notice duty looks for notices to send.
    pub check_interval_s: u64,
}

impl Default for BcaConfig {
    fn default() -> Self {
        BcaConfig {
            delivery: Delivery::Outbox,
            to: "alpr-notices@bca.example".into(),
            from: "alpr@agency.example".into(),
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_security: SmtpSecurity::Starttls,
            smtp_user: String::new(),
            smtp_password_file: PathBuf::new(),
            outbox_dir: PathBuf::new(),
            check_interval_s: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where the embedded database and exports live.
    pub data_dir: PathBuf,
    /// The database: empty for the embedded SQLite file in `data_dir`.
    pub database_url: String,
    /// This instance's name: several instances of one agency split ingestion between them.
    pub instance: String,
    /// Reads, pictures and alerts are destroyed this many days after collection (1-60; Minn.
    /// Stat. 13.824 allows at most 60).
    pub retention_days: u32,
    /// How often the retention duty runs.
    pub purge_interval_s: u64,
    /// A trailer that moved further than this (metres) stands at a new location: the current
    /// deployment ends and a new one (and its BCA notice) begins.
    pub new_location_m: f64,
    /// Where `sync-server backup` writes backups (empty: `data_dir/backups`). The retention
    /// duty destroys each one when its oldest read passes retention.
    pub backup_dir: PathBuf,
}

impl ServerConfig {
    /// The backup folder.
    pub fn backups(&self) -> PathBuf {
        if self.backup_dir.as_os_str().is_empty() {
            self.data_dir.join("backups")
        } else {
            self.backup_dir.clone()
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("/var/lib/trailer-alpr-server"),
            database_url: String::new(),
            instance: "a".into(),
            retention_days: 60,
            purge_interval_s: 600,
            new_location_m: 150.0,
            backup_dir: PathBuf::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// The agency's Mosquitto (mutual TLS), as this server reaches it.
    pub host: String,
    /// The broker's TLS port.
    pub port: u16,
    /// The agency CA that signed the broker's certificate (pinned: no system roots).
    pub ca_file: PathBuf,
    /// This instance's client certificate (CN `sync-server`, or `sync-server-INSTANCE`).
    pub cert_file: PathBuf,
    /// Its key, readable by the server only.
    pub key_file: PathBuf,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            host: "127.0.0.1".into(),
            port: 8883,
            ca_file: PathBuf::from("/etc/trailer-alpr-server/agency-ca.pem"),
            cert_file: PathBuf::from("/etc/trailer-alpr-server/sync-server.pem"),
            key_file: PathBuf::from("/etc/trailer-alpr-server/sync-server.key"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address of the public pages (location list).
    pub listen: String,
    /// Address of `/metrics`, `/healthz` and `/readyz` for monitoring tools (empty: none).
    /// Loopback by default: put a scraper beside it, not the public in front of it.
    pub monitor_listen: String,
    /// Public requests answered at once at most; more are told to come back (503). The pages
    /// read on a pool of their own, so they can never take ingestion's connections.
    pub public_max_in_flight: usize,
    /// A public request that takes longer is cut off (503).
    pub public_timeout_ms: u64,
    /// Database connections the public pages read on (read-only).
    pub public_connections: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            monitor_listen: "127.0.0.1:9187".into(),
            public_max_in_flight: 16,
            public_timeout_ms: 10_000,
            public_connections: 2,
        }
    }
}

/// Whether `host` is this machine.
fn is_local(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]") || host.starts_with('/')
}

/// The host of a PostgreSQL URL when it is another machine (`None`: SQLite, a socket, or this
/// machine).
fn remote_database(url: &str) -> Option<String> {
    let rest = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = if host_port.starts_with('[') {
        host_port.split(']').next().map(|h| format!("{h}]")).unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default().to_string()
    };
    // No host: the default socket, on this machine.
    (!host.is_empty() && !is_local(&host)).then_some(host)
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let c: Config = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        c.validate()?;
        Ok(c)
    }

    /// The default configuration, each section and key with its documentation (the doc
    /// comments of this module's types): what `print-default-config` prints and
    /// `sync-server/server.example.toml` holds.
    pub fn default_toml() -> String {
        let rendered = toml::to_string_pretty(&Config::default()).unwrap_or_default();
        trailer_wire::config_docs::commented::<Config>(
            &rendered,
            "The agency's sync server (sync-server run --config FILE). Every key is optional: \
             what is left out takes the value shown here. Unknown keys are refused. The server \
             will not start under the example agency's name or contact.\n\n\
             Generated from the documentation in the code (sync-server print-default-config).",
        )
    }

    /// Refuses to serve under the example agency's name or contact: the public pages and the
    /// BCA notices would carry them.
    pub fn refuse_placeholders(&self) -> Result<(), ConfigError> {
        let example = AgencyConfig::default();
        let mut left = Vec::new();
        if self.agency.name.trim() == example.name {
            left.push("agency.name");
        }
        if self.agency.contact.trim() == example.contact {
            left.push("agency.contact");
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(format!(
                "{} still the example's: the public pages and the BCA notices show them; set the \
                 agency's own",
                left.join(" and ")
            )))
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !trailer_wire::topic::valid_id(&self.server.instance) {
            return Err(ConfigError::Invalid("server.instance: use A-Z a-z 0-9 - _ .".into()));
        }
        if !(1..=60).contains(&self.server.retention_days) {
            return Err(ConfigError::Invalid(
                "server.retention_days must be 1-60 (the law's maximum is 60)".into(),
            ));
        }
        if self.server.purge_interval_s == 0 {
            return Err(ConfigError::Invalid("server.purge_interval_s must be at least 1".into()));
        }
        if self.agency.name.trim().is_empty() {
            return Err(ConfigError::Invalid("agency.name is empty".into()));
        }
        let url = &self.agency.policy_url;
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError::Invalid(
                "agency.policy_url: an http:// or https:// address, or empty".into(),
            ));
        }
        self.rules()?;
        for f in &self.forward {
            let bad =
                |what: String| Err(ConfigError::Invalid(format!("forward {:?}: {what}", f.name)));
            if !trailer_wire::topic::valid_id(&f.name) {
                return bad("name: 1-64 of A-Z a-z 0-9 - _ .".into());
            }
            match (f.webhook.is_empty(), f.mail_to.is_empty(), f.mqtt_client.is_empty()) {
                (false, true, true) => {}
                (true, false, true) if f.mail_to.parse::<lettre::message::Mailbox>().is_err() => {
                    return bad(format!("mail_to {:?}: not an e-mail address", f.mail_to));
                }
                (true, false, true) if self.bca.smtp_host.is_empty() => {
                    return bad(
                        "mail_to goes through the agency's mail relay: set bca.smtp_host".into()
                    );
                }
                (true, false, true) => {}
                (true, true, false) if !trailer_wire::topic::valid_id(&f.mqtt_client) => {
                    return bad("mqtt_client: a certificate's CN, 1-64 of A-Z a-z 0-9 - _ .".into());
                }
                (true, true, false) if !(1..=86_400).contains(&f.resend_s) => {
                    return bad("resend_s: 1-86400".into());
                }
                (true, true, false) => {}
                _ => {
                    return bad(
                        "give a webhook, a mail_to address or an mqtt_client, one of them".into()
                    );
                }
            }
            let web = ["https://", "http://"].iter().any(|p| f.webhook.starts_with(p));
            if !(f.webhook.is_empty() || web) {
                return bad("webhook: an https:// address".into());
            }
            if f.webhook.starts_with("http://") && !is_local(crate::forward::host_of(&f.webhook)) {
                return bad(
                    "webhook: a receiver on another machine is reached over https://".into()
                );
            }
            let known = CATEGORIES.map(category_key);
            if let Some(c) = f.categories.iter().find(|c| !known.contains(&category_key(c))) {
                return bad(format!("category {c:?}: use {}", CATEGORIES.join(", ")));
            }
        }
        if !(10.0..=100_000.0).contains(&self.server.new_location_m) {
            return Err(ConfigError::Invalid("server.new_location_m must be 10-100000".into()));
        }
        let l = &self.limits;
        if !(l.uplink_per_s > 0.0
            && l.uplink_burst >= 1.0
            && l.console_per_s > 0.0
            && l.console_burst >= 1.0)
        {
            return Err(ConfigError::Invalid(
                "limits: rates must be positive, bursts at least 1".into(),
            ));
        }
        if !(7..=825).contains(&self.pki.trailer_days) {
            return Err(ConfigError::Invalid("pki.trailer_days must be 7-825".into()));
        }
        if self.bca.check_interval_s == 0 {
            return Err(ConfigError::Invalid("bca.check_interval_s must be at least 1".into()));
        }
        if let Some(host) = remote_database(&self.server.database_url)
            && !self.server.database_url.contains("sslmode=verify-full")
        {
            return Err(ConfigError::Invalid(format!(
                "server.database_url: the database at {host} is reached over the network: add \
                 sslmode=verify-full (and sslrootcert=CA-FILE) so the connection is encrypted and \
                 the server's certificate checked"
            )));
        }
        if self.bca.delivery == Delivery::Smtp {
            if self.bca.smtp_host.is_empty() {
                return Err(ConfigError::Invalid("bca.delivery = smtp needs bca.smtp_host".into()));
            }
            if self.bca.smtp_security == SmtpSecurity::Plain && !is_local(&self.bca.smtp_host) {
                return Err(ConfigError::Invalid(format!(
                    "bca.smtp_security = plain sends notices in clear: only to a relay on this \
                     host, not {}; use tls or starttls",
                    self.bca.smtp_host
                )));
            }
            for (key, addr) in [("bca.to", &self.bca.to), ("bca.from", &self.bca.from)] {
                if addr.parse::<lettre::message::Mailbox>().is_err() {
                    return Err(ConfigError::Invalid(format!("{key}: {addr:?} is no address")));
                }
            }
        }
        Ok(())
    }

    /// The rules ingestion applies (new-location distance, the agency's time zone).
    pub fn rules(&self) -> Result<crate::records::Rules, ConfigError> {
        let time_zone = jiff::tz::TimeZone::get(&self.agency.time_zone).map_err(|e| {
            ConfigError::Invalid(format!("agency.time_zone {:?}: {e}", self.agency.time_zone))
        })?;
        if self.review.hours > 24 * 8 {
            return Err(ConfigError::Invalid(
                "review.hours must leave time to notify the BCA within 10 days (at most 192)"
                    .into(),
            ));
        }
        let acp_key = if self.acp.key_file.as_os_str().is_empty() {
            None
        } else {
            let key = std::fs::read(&self.acp.key_file).map_err(|e| {
                ConfigError::Invalid(format!("acp.key_file {}: {e}", self.acp.key_file.display()))
            })?;
            if key.len() < 16 {
                return Err(ConfigError::Invalid(
                    "acp.key_file holds under 16 bytes: too short for a key".into(),
                ));
            }
            Some(key.into())
        };
        let config_key = if self.pki.dir.as_os_str().is_empty() {
            None
        } else {
            let path = self.pki.dir.join("config-signing.key");
            std::fs::read(&path).ok().map(Into::into)
        };
        Ok(crate::records::Rules {
            new_location_m: self.server.new_location_m,
            time_zone,
            review_ms: i64::from(self.review.hours) * 3_600_000,
            acp_key,
            config_key,
            state_lists: self.agency.state_lists.clone().into(),
        })
    }

    /// Who publishes the public pages.
    pub fn public_agency(&self) -> crate::public::Agency {
        crate::public::Agency {
            name: self.agency.name.clone(),
            contact: self.agency.contact.clone(),
            policy_url: self.agency.policy_url.clone(),
        }
    }

    /// Where notices are written when delivered to the outbox.
    pub fn outbox_dir(&self) -> PathBuf {
        if self.bca.outbox_dir.as_os_str().is_empty() {
            self.server.data_dir.join("bca-outbox")
        } else {
            self.bca.outbox_dir.clone()
        }
    }

    pub fn database_url(&self) -> String {
        if self.server.database_url.is_empty() {
            format!("sqlite://{}?mode=rwc", self.server.data_dir.join("server.db").display())
        } else {
            self.server.database_url.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minn. Stat. 13.824 subd. 3: reads go no later than 60 days after collection.
    #[test]
    fn retention_beyond_sixty_days_is_refused() {
        let mut c = Config::default();
        c.server.retention_days = 61;
        let e = c.validate().expect_err("61 days");
        assert!(e.to_string().contains("1-60"), "{e}");
        c.server.retention_days = 0;
        assert!(c.validate().is_err());
        c.server.retention_days = 60;
        c.validate().expect("60 days");
    }

    #[test]
    fn the_shipped_example_is_the_generated_one() {
        let shipped = include_str!("../server.example.toml");
        assert!(
            shipped == Config::default_toml(),
            "sync-server/server.example.toml is stale: make example-configs"
        );
        let parsed: Config = toml::from_str(shipped).expect("the example parses");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn every_key_of_the_example_is_documented() {
        let text = Config::default_toml();
        let mut previous = "";
        for line in text.lines() {
            if !line.starts_with('#') && line.contains(" = ") {
                assert!(previous.starts_with('#'), "undocumented key: {line}\n{text}");
            }
            previous = line;
        }
    }

    /// The server does not start under the example agency's name or contact.
    #[test]
    fn the_example_agency_is_refused_at_start() {
        let mut c = Config::default();
        let e = c.refuse_placeholders().expect_err("the example");
        assert!(e.to_string().contains("agency.name and agency.contact"), "{e}");
        c.agency.name = "Rochester Police Department".into();
        assert!(c.refuse_placeholders().is_err(), "the contact is still the example's");
        c.agency.contact = "Records, (507) 328-6800".into();
        c.refuse_placeholders().expect("the agency's own");
    }

    /// The public pages link the policy: only a web address, never a script.
    #[test]
    fn the_policy_link_is_a_web_address() {
        let mut c = Config::default();
        c.agency.policy_url = "javascript:alert(1)".into();
        assert!(c.validate().is_err());
        c.agency.policy_url = "https://city.example/alpr-policy.pdf".into();
        c.validate().expect("https");
    }

    #[test]
    fn a_remote_database_needs_verified_tls_and_plain_smtp_only_a_local_relay() {
        let mut c = Config::default();
        c.server.database_url = "postgres://alpr@db.agency.example/alpr".into();
        let e = c.validate().expect_err("plain over the network");
        assert!(e.to_string().contains("sslmode=verify-full"), "{e}");
        c.server.database_url =
            "postgres://alpr@db.agency.example/alpr?sslmode=verify-full&sslrootcert=/etc/ca.pem"
                .into();
        c.validate().expect("verified TLS");
        c.server.database_url = "postgres://alpr@localhost:5433/alpr".into();
        c.validate().expect("this machine");
        c.bca.delivery = Delivery::Smtp;
        c.bca.smtp_host = "smtp.agency.example".into();
        c.bca.smtp_security = SmtpSecurity::Plain;
        let e = c.validate().expect_err("plain SMTP across the network");
        assert!(e.to_string().contains("only to a relay on this host"), "{e}");
        c.bca.smtp_host = "127.0.0.1".into();
        c.validate().expect("a local relay");
    }
}
