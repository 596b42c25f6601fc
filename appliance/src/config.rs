//! The appliance's configuration: strict TOML (unknown keys are errors), documented defaults,
//! and a [`Config::validate`] step that runs before anything starts.
use crate::engine::EngineConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// An `f32` setting as the decimal it was written as: 0.45, not 0.44999998807907104 (TOML
/// writes f64).
fn shortest(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// `serialize_with` for an `f32` setting; see [`shortest`].
pub fn short_f32<S: serde::Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(shortest(*v))
}

/// `serialize_with` for a list of `f32` settings; see [`shortest`].
pub fn short_f32s<S: serde::Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|x| shortest(*x)))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub trailer: TrailerConfig,
    pub location: LocationConfig,
    pub deployment: crate::deployment::DeploymentConfig,
    pub capture: CaptureConfig,
    pub gate: crate::gate::GateConfig,
    pub engine: EngineConfig,
    pub pass: PassConfig,
    pub store: StoreConfig,
    pub sync: SyncConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrailerConfig {
    /// This trailer's id: the CN of its certificate and a segment of its MQTT topics.
    pub id: String,
    /// The camera's id, recorded with every read.
    pub camera_id: String,
    /// Where the store lives (a directory of its own: nothing else may be put there).
    pub data_dir: PathBuf,
    /// After a stop request the daemon finishes the passes in view, stores their reads and
    /// stops its tasks; if that takes longer than this (a source or a link that hangs), it
    /// exits anyway: everything stored is already durable. Keep it below systemd's
    /// `TimeoutStopSec`.
    pub stop_deadline_s: u64,
}

impl Default for TrailerConfig {
    fn default() -> Self {
        TrailerConfig {
            id: "trailer-01".into(),
            camera_id: "cam0".into(),
            data_dir: PathBuf::from("/var/lib/trailer-alpr/store"),
            stop_deadline_s: 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LocationConfig {
    /// The deployment's position, used when no GPS fix is available (WGS84 degrees).
    pub latitude: f64,
    /// The deployment's longitude, used when no GPS fix is available (WGS84 degrees, east positive).
    pub longitude: f64,
    /// gpsd's address (`host:port`); empty: no GPS, the configured position only.
    pub gpsd: String,
    /// A fix older than this falls back to the configured position.
    pub fix_stale_s: u64,
}

impl Default for LocationConfig {
    fn default() -> Self {
        // Mankato, Minnesota: a harmless default that is obviously not a real deployment.
        LocationConfig {
            latitude: 44.1636,
            longitude: -93.9994,
            gpsd: "127.0.0.1:2947".into(),
            fix_stale_s: 10,
        }
    }
}

/// How frames are paced into the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Pacing {
    /// Live camera: always analyse the newest frame, drop the rest (counted).
    Live,
    /// Evidence replay: decode every frame, analyse at `analyse_fps` of video time, drop none.
    EveryFrame,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// `rtsp://…`, `file:///…` (or a plain path), or `v4l2:///dev/video0`.
    pub source: String,
    /// Frames are scaled (by GStreamer) to this width for the engine; height keeps the aspect.
    pub width: u32,
    /// Frames analysed per second of video at most.
    pub analyse_fps: f32,
    /// `live` or `every-frame`; by default `every-frame` for files, `live` otherwise.
    pub pacing: Option<Pacing>,
    /// Frames per second handed to the appliance at most; the rest are dropped by GStreamer
    /// right after decoding, before colour conversion and scaling (0: all).
    pub max_fps: u32,
    /// A source that gives no frame and no end for this long has failed: a damaged file, or
    /// a camera to reconnect.
    pub stall_ms: u64,
    /// While the scene is quiet, decode only keyframes (the rest of each group of pictures is
    /// skipped before the decoder). Set the camera's keyframe interval to a second or less: a
    /// vehicle is noticed at the first keyframe it is in.
    pub keyframes_when_quiet: bool,
    /// Reconnect backoff for live sources, first and maximum delay.
    pub reconnect_initial_ms: u64,
    /// The longest wait between reconnect attempts, however long the source stays away.
    pub reconnect_max_ms: u64,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            source: "rtsp://192.0.2.10:554/stream1".into(),
            width: 1280,
            analyse_fps: 8.0,
            max_fps: 30,
            stall_ms: 10_000,
            keyframes_when_quiet: true,
            pacing: None,
            reconnect_initial_ms: 500,
            reconnect_max_ms: 30_000,
        }
    }
}

impl CaptureConfig {
    pub fn is_file(&self) -> bool {
        self.source.starts_with("file://") || !self.source.contains("://")
    }
    pub fn effective_pacing(&self) -> Pacing {
        self.pacing.unwrap_or(if self.is_file() { Pacing::EveryFrame } else { Pacing::Live })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PassConfig {
    /// A pass ends when its plate has not been seen for this long (video time).
    pub gap_ms: i64,
    /// A sighting in the same place as a pass's last but with another text (a misread) joins the
    /// pass only this soon after that last sighting; later, only a text close to the pass's does
    /// (the next vehicle to pass the same spot is a new pass).
    pub track_gap_ms: i64,
    /// A pass needs at least this many sightings to become a read.
    pub min_sightings: usize,
    /// A vehicle that stays in view without standing still gives its read after this long, and
    /// no more reads.
    pub max_pass_ms: i64,
    /// A vehicle whose plate stands still this long (stopped, parked) gives its read then, and
    /// the motion gate goes back to looking at the scene at its idle rate (0: off, wait for
    /// `max_pass_ms`).
    pub settle_ms: i64,
    /// A parked vehicle already read is remembered this long between sightings (the motion
    /// gate looks at a still scene only every `gate.idle_interval_ms`; keep this above it).
    pub parked_gap_ms: i64,
    /// Context picture width (pixels) and JPEG quality.
    pub context_width: u32,
    /// JPEG quality of context pictures and plate crops (1-100).
    pub jpeg_quality: u8,
}

impl Default for PassConfig {
    fn default() -> Self {
        PassConfig {
            gap_ms: 2000,
            track_gap_ms: 600,
            min_sightings: 2,
            max_pass_ms: 60_000,
            settle_ms: 3000,
            parked_gap_ms: 120_000,
            context_width: 960,
            jpeg_quality: 80,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Reads are destroyed this many days after collection unless held (the law's maximum is 60).
    pub retention_days: u32,
    /// How often the retention duty runs.
    pub purge_interval_s: u64,
    /// The agency's ACP key (provisioned with the certificate); without it, ACP matching is off
    /// and the trailer refuses ACP requests (health says so).
    pub acp_key_file: Option<PathBuf>,
    /// The store's encryption key (32 bytes, or 64 hex digits): what holds a plate, a picture or
    /// a place is encrypted with it (`store::seal`). On the image a systemd credential, sealed
    /// by the TPM2: `"${CREDENTIALS_DIRECTORY}/store-key"`. None: the store is not encrypted.
    pub key_file: Option<PathBuf>,
    /// Hotlist matching also accepts one known OCR confusion (O/0, B/8, ...). More hits to
    /// verify, fewer missed.
    pub hotlist_ocr_tolerance: bool,
    /// Disk quota: at most this many bytes (0: no absolute limit) ...
    pub max_disk_bytes: u64,
    /// ... and at most this share of the filesystem ...
    pub max_disk_fraction: f64,
    /// ... always leaving this much free.
    pub min_free_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            retention_days: 60,
            purge_interval_s: 600,
            acp_key_file: None,
            key_file: None,
            hotlist_ocr_tolerance: false,
            max_disk_bytes: 0,
            max_disk_fraction: 0.8,
            min_free_bytes: 512 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// The agency's broker (TLS); an empty host disables sync (reads stay in the outbox).
    pub broker_host: String,
    /// The broker's TLS port.
    pub broker_port: u16,
    /// The agency CA that signed the broker's certificate (pinned: no system roots).
    pub ca_file: PathBuf,
    /// This trailer's certificate and key (the certificate's CN is the trailer id).
    pub cert_file: PathBuf,
    /// This trailer's private key (made on the trailer at enrolment; it never leaves).
    pub key_file: PathBuf,
    /// MQTT keep-alive, seconds: a link silent this long is probed; a dead one is noticed in about one and a half times this.
    pub keep_alive_s: u64,
    /// Outbox items sent but not yet acknowledged end to end, at most.
    pub max_in_flight: usize,
    /// Bytes sent but not yet acknowledged, at most (alerts pass): keeps the link's queue short,
    /// so an alert never waits behind a backlog of pictures.
    pub max_in_flight_bytes: usize,
    /// Items not acknowledged after this long, with no ack at all meanwhile, are sent again.
    pub ack_timeout_ms: i64,
    /// Reconnect backoff to the broker: first delay, doubling up to the maximum (jittered).
    pub reconnect_initial_ms: u64,
    /// The longest wait between reconnect attempts.
    pub reconnect_max_ms: u64,
    /// Bytes per rolling hour the link may spend on reads and pictures (a metered plan); alerts,
    /// periods of use and deployment events always go. 0: no limit.
    pub budget_bytes_per_hour: u64,
    /// Which pictures go to the server on their own: "all", "plate-crops" (context pictures
    /// only when the server asks for one), or "on-request" (none unless asked).
    pub pictures: String,
    /// Read metadata per batch message.
    pub batch_reads: usize,
    /// For file sources: after the end of the video, wait this long for the outbox to drain.
    pub drain_timeout_s: u64,
    /// Health is sent on every change and at least this often while the link is up.
    pub health_interval_s: u64,
    /// The trailer asks the server for a new certificate (with a key it makes) once its own
    /// expires within this many days.
    pub renew_before_days: u32,
    /// The public half of the agency's configuration signing key (`config-signing.pub`, 64 hex
    /// digits): a configuration from the server is applied only with the agency's signature.
    /// None: remote configuration changes are refused.
    pub config_key_file: Option<PathBuf>,
}

impl SyncConfig {
    pub fn limits(&self) -> crate::sync::state::Limits {
        crate::sync::state::Limits {
            max_in_flight: self.max_in_flight,
            max_in_flight_bytes: self.max_in_flight_bytes,
            ack_timeout_ms: self.ack_timeout_ms,
            reconnect_initial_ms: self.reconnect_initial_ms,
            reconnect_max_ms: self.reconnect_max_ms,
            budget_bytes_per_hour: self.budget_bytes_per_hour,
        }
    }
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            broker_host: String::new(),
            broker_port: 8883,
            // Enrolment writes them (the key is made on the trailer): the writable state
            // directory, not /etc, which is read-only on the image.
            ca_file: PathBuf::from("/var/lib/trailer-alpr/identity/agency-ca.pem"),
            cert_file: PathBuf::from("/var/lib/trailer-alpr/identity/trailer.pem"),
            key_file: PathBuf::from("/var/lib/trailer-alpr/identity/trailer.key"),
            keep_alive_s: 30,
            max_in_flight: 64,
            max_in_flight_bytes: 128 * 1024,
            ack_timeout_ms: 30_000,
            reconnect_initial_ms: 500,
            reconnect_max_ms: 60_000,
            budget_bytes_per_hour: 0,
            pictures: "all".into(),
            batch_reads: 50,
            drain_timeout_s: 60,
            health_interval_s: 60,
            renew_before_days: 30,
            config_key_file: None,
        }
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
        let config: Config = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        let config = config.with_credentials();
        config.validate()?;
        Ok(config)
    }

    /// A configuration from TOML text, validated (a remote change arrives as text).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let config = config.with_credentials();
        config.validate()?;
        Ok(config)
    }

    /// Key files given as `${CREDENTIALS_DIRECTORY}/NAME` are systemd credentials: decrypted
    /// by systemd (with the TPM2) into a directory only the service sees, in memory.
    fn with_credentials(mut self) -> Config {
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY");
        let expand = |p: &mut PathBuf| {
            if let (Ok(rest), Some(dir)) = (p.strip_prefix("${CREDENTIALS_DIRECTORY}"), &dir) {
                *p = Path::new(dir).join(rest);
            }
        };
        for p in [&mut self.sync.key_file, &mut self.sync.cert_file] {
            expand(p);
        }
        for p in [&mut self.store.acp_key_file, &mut self.store.key_file].into_iter().flatten() {
            expand(p);
        }
        self
    }

    /// Why `new` may not replace this configuration from afar, if it may not: the trailer's
    /// identity, its store and its link to the server change only on the trailer itself, so a
    /// remote change can never cut it off.
    pub fn remote_change_refused(&self, new: &Config) -> Option<String> {
        let (a, b) = (&self.sync, &new.sync);
        let fixed = [
            ("trailer.id", self.trailer.id != new.trailer.id),
            ("trailer.data_dir", self.trailer.data_dir != new.trailer.data_dir),
            ("sync.broker_host", a.broker_host != b.broker_host),
            ("sync.broker_port", a.broker_port != b.broker_port),
            ("sync.ca_file", a.ca_file != b.ca_file),
            ("sync.cert_file", a.cert_file != b.cert_file),
            ("sync.key_file", a.key_file != b.key_file),
            ("sync.config_key_file", a.config_key_file != b.config_key_file),
            // Neither the ACP key nor the store's encryption can be switched off from afar.
            ("store.acp_key_file", self.store.acp_key_file != new.store.acp_key_file),
            ("store.key_file", self.store.key_file != new.store.key_file),
        ];
        let changed: Vec<&str> = fixed.iter().filter(|(_, c)| *c).map(|(n, _)| *n).collect();
        (!changed.is_empty())
            .then(|| format!("{} can be changed only on the trailer itself", changed.join(", ")))
    }

    /// The default configuration, each section and key with its documentation (the doc
    /// comments of the configuration's types): what `print-default-config` prints and
    /// `appliance/appliance.example.toml` holds.
    pub fn default_toml() -> String {
        // The models' paths depend on where set-up put them: shown as packaged, commented out.
        let mut shown = Config::default();
        let installed = std::path::Path::new("/usr/share/trailer-alpr/models");
        let name = |p: &std::path::Path| installed.join(p.file_name().unwrap_or_default());
        shown.engine.runtime_library = name(&shown.engine.runtime_library);
        shown.engine.detector_model = name(&shown.engine.detector_model);
        shown.engine.recogniser_model = name(&shown.engine.recogniser_model);
        shown.engine.recogniser_dictionary =
            shown.engine.recogniser_dictionary.as_deref().map(name);
        let rendered = toml::to_string_pretty(&shown).unwrap_or_default();
        trailer_wire::config_docs::commented_leaving_out::<Config>(
            &rendered,
            "The trailer's appliance (appliance run --config FILE). Every key is optional: what \
             is left out takes the value shown here. Unknown keys are refused.\n\n\
             Generated from the documentation in the code (appliance print-default-config).",
            &[
                "engine.runtime_library",
                "engine.detector_model",
                "engine.recogniser_model",
                "engine.recogniser_dictionary",
            ],
        )
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !trailer_wire::topic::valid_id(&self.trailer.id) {
            return bad(format!("trailer.id {:?}: use 1-64 of A-Z a-z 0-9 - _ .", self.trailer.id));
        }
        if !(1..=60).contains(&self.store.retention_days) {
            return bad(format!(
                "store.retention_days = {}: must be 1-60 (Minn. Stat. 13.824 subd. 3)",
                self.store.retention_days
            ));
        }
        if !(-90.0..=90.0).contains(&self.location.latitude)
            || !(-180.0..=180.0).contains(&self.location.longitude)
        {
            return bad("location: latitude/longitude out of range".into());
        }
        if !self.deployment.move_m.is_finite()
            || self.deployment.move_m <= 0.0
            || self.deployment.settle_s == 0
        {
            return bad("deployment: move_m and settle_s must be positive".into());
        }
        if self.trailer.stop_deadline_s == 0 {
            return bad("trailer.stop_deadline_s must be at least 1".into());
        }
        if !(0.1..=60.0).contains(&self.capture.analyse_fps) || self.capture.width < 64 {
            return bad("capture: analyse_fps must be 0.1-60 and width at least 64".into());
        }
        if !(0.01..=0.99).contains(&self.store.max_disk_fraction) {
            return bad("store.max_disk_fraction must lie between 0.01 and 0.99".into());
        }
        if crate::store::PictureSync::parse(&self.sync.pictures).is_none() {
            return bad(format!(
                "sync.pictures = {:?}: use \"all\", \"plate-crops\" or \"on-request\"",
                self.sync.pictures
            ));
        }
        if self.sync.max_in_flight == 0
            || self.sync.batch_reads == 0
            || self.sync.max_in_flight_bytes == 0
        {
            return bad(
                "sync: max_in_flight, max_in_flight_bytes and batch_reads must be at least 1"
                    .into(),
            );
        }
        if self.pass.min_sightings == 0 || self.pass.gap_ms <= 0 {
            return bad("pass: min_sightings and gap_ms must be positive".into());
        }
        if !(0..=self.pass.gap_ms).contains(&self.pass.track_gap_ms) {
            return bad("pass.track_gap_ms must lie between 0 and gap_ms".into());
        }
        if self.pass.settle_ms < 0 {
            return bad("pass.settle_ms must be 0 (off) or more".into());
        }
        if self.gate.enabled && self.pass.parked_gap_ms <= self.gate.idle_interval_ms {
            return bad(
                "pass.parked_gap_ms must exceed gate.idle_interval_ms, or a parked vehicle is \
                 read again at every idle look"
                    .into(),
            );
        }
        self.engine.validate().map_err(|e| ConfigError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_prints_settings_as_written() {
        let text = Config::default_toml();
        assert!(text.contains("nms_iou = 0.45\n"), "{text}");
        assert!(text.contains("min_changed = 0.004\n"), "{text}");
        assert!(!text.contains("0000000"), "no float noise:\n{text}");
    }

    #[test]
    fn the_shipped_example_is_the_generated_one() {
        let shipped = include_str!("../appliance.example.toml");
        assert!(
            shipped == Config::default_toml(),
            "appliance/appliance.example.toml is stale: make example-configs"
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

    #[test]
    fn default_config_round_trips_through_toml() {
        let text = Config::default_toml();
        let parsed: Config = toml::from_str(&text).expect("parses");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn unknown_keys_and_illegal_retention_are_refused() {
        let e = toml::from_str::<Config>("[trailer]\nid = \"x\"\ncolour = \"red\"\n");
        assert!(e.is_err());
        let mut c = Config::default();
        c.store.retention_days = 90;
        let err = c.validate().expect_err("90 days is illegal");
        assert!(err.to_string().contains("retention_days"), "{err}");
    }
}
