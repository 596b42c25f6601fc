//! The wire protocol between a trailer (the appliance) and the agency's sync server.
//!
//! Pure types and codec: no I/O, no async runtime. Both ends depend on this crate, so a change
//! here is a protocol change and must bump [`PROTOCOL_VERSION`] or stay backward compatible.
//! With the `client` feature, `client` adds the MQTT client plumbing both ends share.
//!
//! # Layout
//! - [`topic`]: the MQTT topic tree and its parser (who publishes where).
//! - [`message`]: every message the appliance and the server exchange over the cellular link.
//! - [`codec`]: the compact binary frame (`version`, `kind`, postcard body), size limits, and
//!   decode errors that say what was wrong.
//! - [`acp`]: the keyed digests of Address Confidentiality Program plates.
//! - [`backoff`]: how long a reconnecting loop waits, one rule for both ends.
//! - [`hotlist`]: hotlist files (CSV) and plate characters, parsed alike at both ends.
//! - [`console`]: JSON types for people-facing topics (the operator console, public output).
//! - [`signed`]: the agency's signature on configurations sent to trailers.
//! - [`text`]: a trailer's strings made safe for people's terminals.
//!
//! # Frame
//! ```text
//! +---------+------+------------------------------+
//! | version | kind | postcard-encoded body         |
//! |   u8    |  u8  | (varints, length-prefixed)    |
//! +---------+------+------------------------------+
//! ```
//! A frame is one MQTT payload. Every kind has its own size limit, checked before decoding.

pub mod acp;
pub mod backoff;
#[cfg(feature = "client")]
pub mod client;
pub mod codec;
#[cfg(feature = "config-docs")]
pub mod config_docs;
pub mod console;
pub mod hotlist;
pub mod message;
pub mod signed;
pub mod text;
pub mod topic;

pub use codec::{DecodeError, EncodeError, decode, encode};
pub use message::*;
pub use topic::{Topic, TopicError, UpKind};

/// The protocol version carried in the first byte of every binary frame.
/// Version 2: `Status` carries the store's identity ([`StoreInfo`]); record ids are unique for
/// the life of a trailer id. Version 1 peers are refused with an error that names both versions.
pub const PROTOCOL_VERSION: u8 = 2;
