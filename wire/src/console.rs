//! JSON shapes for people-facing output: what operators and the public read.
//!
//! These are deliberately separate from the binary messages: people-facing JSON is stable,
//! self-describing, and never carries more than its audience may see.
use serde::{Deserialize, Serialize};

/// A read as shown to an authorised operator (never public).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadView {
    pub trailer_id: String,
    pub read_id: u64,
    pub plate: String,
    pub confidence: f32,
    /// RFC 3339 UTC.
    pub seen_at: String,
    pub lat: f64,
    pub lon: f64,
    pub has_plate_crop: bool,
    pub has_context: bool,
    /// The agency it came from, when another agency shared it (else ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// One entry of the public list of reader locations (Minn. Stat. 13.824 subd. 5(b)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicLocation {
    pub reader: String,
    pub place: String,
    pub lat: f64,
    pub lon: f64,
    /// First and last day at this location (ISO dates); `until` is absent while current.
    pub from: String,
    pub until: Option<String>,
}
