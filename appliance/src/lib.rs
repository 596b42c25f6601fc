//! The ALPR trailer appliance: one daemon that turns a camera stream into plate reads, keeps them
//! for at most 60 days, and syncs them to the agency's server whenever a link exists.
//!
//! # Stages and data flow
//! ```text
//!  camera ─► capture ─(newest frame)─► pass ─(one read per vehicle pass)─► store ─► sync ─► MQTT
//!  (RTSP,     GStreamer     engine:     tracker: track, vote, pick the      sled:     outbox
//!   V4L2,     decode,       detect +    best sighting, crop pictures        reads,    state
//!   file)     scale         read                                            outbox    machine
//!                                                                  gps ──► position on each read
//! ```
//! - [`capture`]: the GStreamer pipeline; hands over the newest frame, counts drops.
//! - [`analyse`]: the per-frame path: pacing, gate, engine, pass tracker.
//! - [`gate`]: the motion gate that keeps the engine off while nothing moves.
//! - [`engine`]: picture in, plate candidates out (ONNX Runtime).
//! - [`pass`]: groups sightings into vehicle passes and emits one read per pass.
//! - [`store`]: the sled store: reads, pictures, the outbox, retention.
//! - [`sync`]: the outbox/ack state machine and the thin MQTT loop around it.
//! - [`location`]: gpsd fixes with the configured position as fallback.
//! - [`health`]: the shared health state the sync link reports.
//! - [`daemon`]: wires the stages together; owns shutdown.
//! - [`enrol`]: enrolment on the trailer: the key made here, the agency's answer installed.
//! - [`watchdog`]: systemd's watchdog, fed only while capture and the store make progress.
//! - [`config`]: the strict TOML configuration and its defaults.
//! - [`trial`]: a configuration the server sent, on trial until the daemon starts on it.
//! - [`clock`]: injected time, so retention is testable in milliseconds.
pub mod analyse;
pub mod capture;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod deployment;
pub mod engine;
pub mod enrol;
pub mod gate;
pub mod health;
pub mod location;
pub mod pass;
pub mod store;
pub mod sync;
pub mod trial;
pub mod watchdog;

pub use config::Config;
pub use daemon::run;

/// The software version reported in health and status.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
