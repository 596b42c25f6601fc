//! The server's configuration: strict TOML with documented defaults.
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub agency: AgencyConfig,
    pub server: ServerConfig,
    pub broker: BrokerConfig,
    pub http: HttpConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgencyConfig {
    /// The agency's name as the public pages and BCA notices show it.
    pub name: String,
}

impl Default for AgencyConfig {
    fn default() -> Self {
        AgencyConfig { name: "Example Police Department".into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("/var/lib/trailer-alpr-server"),
            database_url: String::new(),
            instance: "a".into(),
            retention_days: 60,
            purge_interval_s: 600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    pub host: String,
    pub port: u16,
    /// The agency CA (pinned), and the server's own client certificate (CN `sync-server`).
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address of the public pages (location list).
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { listen: "127.0.0.1:8080".into() }
    }
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

    pub fn default_toml() -> String {
        toml::to_string_pretty(&Config::default()).unwrap_or_default()
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
        Ok(())
    }

    pub fn database_url(&self) -> String {
        if self.server.database_url.is_empty() {
            format!("sqlite://{}?mode=rwc", self.server.data_dir.join("server.db").display())
        } else {
            self.server.database_url.clone()
        }
    }
}
