//! Sync to the agency's server over MQTT.
//!
//! - [`state`]: the outbox/ack state machine. No I/O: it is told what is pending, what was sent
//!   and acknowledged, and when the link came and went, and says what to send next.
//! - [`link`]: the thin loop around rumqttc and rustls (mutual TLS, pinned agency CA) that drives it.
//! - [`downlink`]: applying the server's commands to the store, each once.
//! - [`renew`]: the trailer's certificate renewed over the link, with a key made here.
pub mod downlink;
pub mod link;
pub mod renew;
pub mod state;

pub use link::{LinkError, run_link};
