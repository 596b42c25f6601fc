//! Messages exchanged over the cellular link.
//!
//! Times are Unix milliseconds (UTC). Positions are WGS84 in units of 1e-7 degree, which is
//! compact on the wire and exact enough (about 1 cm). Identifiers chosen by the trailer (`read_id`,
//! `alert_id`, `period_id`, `event_id`) are unique for the life of the trailer id, whatever
//! happens to its store (see [`StoreInfo`]); the server keys everything by `(trailer_id, id)`, and
//! tells a resend (the same record again) from a collision (the same id, other content).
use serde::{Deserialize, Serialize};

/// Unix time in milliseconds, UTC.
pub type UnixMs = i64;

/// A trailer's identifier: the CN of its client certificate and a segment of its topics.
pub type TrailerId = String;

/// Quality of the position a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FixQuality {
    /// No position is known.
    None,
    /// The configured fixed position of the deployment (no live GPS fix).
    Configured,
    /// A 2D GPS fix.
    Fix2d,
    /// A 3D GPS fix.
    Fix3d,
}

/// A WGS84 position with its quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub lat_e7: i32,
    pub lon_e7: i32,
    pub fix: FixQuality,
}

impl Position {
    pub fn from_degrees(lat: f64, lon: f64, fix: FixQuality) -> Position {
        Position { lat_e7: (lat * 1e7).round() as i32, lon_e7: (lon * 1e7).round() as i32, fix }
    }
    pub fn lat(&self) -> f64 {
        f64::from(self.lat_e7) / 1e7
    }
    pub fn lon(&self) -> f64 {
        f64::from(self.lon_e7) / 1e7
    }
}

/// One plate read: one vehicle pass, as the trailer decided it. Pictures travel separately
/// ([`Picture`]) so that metadata and alerts are never held up by image bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadMeta {
    pub read_id: u64,
    pub camera_id: String,
    /// Normalised plate text, A-Z and 0-9 only.
    pub plate: String,
    /// Confidence of the plate text, 0-1000 (per mille).
    pub confidence_pm: u16,
    pub first_seen: UnixMs,
    pub best_seen: UnixMs,
    pub position: Position,
    /// Plate box in the context picture, pixels: x, y, w, h.
    pub plate_box: [u16; 4],
    /// Which pictures the trailer holds for this read.
    pub pictures: PictureSet,
}

/// Which pictures exist for a read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PictureSet {
    pub plate_crop: bool,
    pub context: bool,
}

/// A batch of read metadata from one trailer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadBatch {
    pub trailer_id: TrailerId,
    pub reads: Vec<ReadMeta>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PictureKind {
    PlateCrop,
    Context,
}

/// A JPEG picture belonging to a read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Picture {
    pub trailer_id: TrailerId,
    pub read_id: u64,
    pub kind: PictureKind,
    pub jpeg: Vec<u8>,
}

/// Hotlist categories, as the public log of use counts them (Minn. Stat. 13.824 subd. 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HitCategory {
    StolenVehicle,
    StolenPlate,
    Warrant,
    SuspendedRevokedLicence,
    MissingPersonAmber,
    ActiveInvestigation,
}

/// A hotlist hit raised on the trailer. The plate still has to be verified against the state
/// systems (MNJIS/NLETS) before any enforcement action: consoles must say so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub trailer_id: TrailerId,
    pub alert_id: u64,
    pub read: ReadMeta,
    pub list_name: String,
    pub list_version: u64,
    pub category: HitCategory,
    pub case_number: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CameraState {
    Up,
    Down,
    NotConfigured,
}

/// Trailer health, sent on change and periodically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub trailer_id: TrailerId,
    pub time: UnixMs,
    pub camera: CameraState,
    pub position: Position,
    pub disk_used_pm: u16,
    pub storage_full: bool,
    /// Entries the store repaired or quarantined at its last start (0 after a clean stop).
    pub store_repairs: u32,
    pub battery_mv: Option<u32>,
    pub solar_mw: Option<u32>,
    pub modem_rssi_dbm: Option<i16>,
    pub backlog_items: u32,
    pub backlog_oldest: Option<UnixMs>,
    pub last_read: Option<UnixMs>,
    pub dropped_frames: u64,
    pub software_version: String,
    /// The fingerprint of the trailer's ACP key (`None`: it has none, and cannot honour an
    /// ACP request), and how many ACP digests its list holds.
    pub acp_key_fingerprint: Option<[u8; 8]>,
    pub acp_entries: u32,
    /// When a configuration the server sent was last rolled back by the trailer, because the
    /// daemon never started on it.
    pub config_rolled_back: Option<UnixMs>,
    /// Reads the trailer destroyed by retention, per day it destroyed them: (days since
    /// 1970, reads), for the last [`DESTROYED_DAYS`] days at most. For the audit report: the
    /// trailer's own destruction is part of the agency's. ACP destructions are never reported
    /// (that a plate was one is private).
    pub destroyed: Vec<(u32, u64)>,
}

/// How many days of destruction counts a health report carries at most.
pub const DESTROYED_DAYS: usize = 120;

/// Why collection started or stopped (for the public log of use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UsageReason {
    DaemonStart,
    DaemonStop,
    CameraUp,
    CameraDown,
    DeploymentStart,
    DeploymentEnd,
    EndOfStream,
    /// A suspension order (Minn. Stat. 13.824 subd. 6) stopped collection, or its lift resumed it.
    Suspended,
    SuspensionLifted,
}

/// A period of active use: the reader was collecting between `start` and `end`.
/// Sent when it opens (with `end = None`) and again when it closes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveUse {
    pub trailer_id: TrailerId,
    pub period_id: u64,
    pub start: UnixMs,
    pub end: Option<UnixMs>,
    pub start_reason: UsageReason,
    pub end_reason: Option<UsageReason>,
    pub position: Position,
    /// The hotlists the reads of this period were compared against (source names).
    pub lists_compared: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentEventKind {
    Start,
    End,
}

/// A field crew marked a deployment started or ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentEvent {
    pub trailer_id: TrailerId,
    pub event_id: u64,
    pub kind: DeploymentEventKind,
    pub time: UnixMs,
    pub position: Position,
    pub note: String,
}

/// The trailer's connection status: retained, and set offline by the broker (last will).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub trailer_id: TrailerId,
    pub online: bool,
    pub time: UnixMs,
    pub software_version: String,
    /// Which store the trailer runs on, so that the server notices a store replaced or restored.
    pub store: StoreInfo,
}

/// The identity of a trailer's store and of the current run on it.
///
/// Stores get replaced in the field (a failed disk, a re-flash, a spare unit taking over a
/// trailer's id) and restored from older copies. Record ids never collide across those lives
/// (they are time-ordered with random low bits, see the appliance's `store::ids`), but the
/// server must still learn that the store it talks to lacks what it was sent before (ACP
/// digests, hotlists, holds, configuration):
/// - `store_id` is drawn when a store is created: a new value is a new store;
/// - `opens` counts the store's opens and `run` is drawn at each open: the same store with an
///   `opens` the server has already seen, under a `run` it has not, is a restored older copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreInfo {
    pub store_id: u64,
    /// When the store was created.
    pub created: UnixMs,
    pub opens: u64,
    pub run: u64,
}

/// What an acknowledgement refers to. The `id` space is the trailer's outbox item id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AckRef {
    Read(u64),
    Picture(u64, PictureKind),
    Alert(u64),
    ActiveUse(u64),
    Deployment(u64),
    Downlink(u64),
}

/// End-to-end acknowledgement: the server has committed these items. Until the trailer sees an
/// ack, the item stays in its outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub refs: Vec<AckRef>,
}

/// The trailer's acknowledgement of a downlink it applied (or refused, with a reason).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DownlinkAck {
    pub trailer_id: TrailerId,
    pub downlink_id: u64,
    pub applied: bool,
    pub reason: Option<String>,
}

/// A chunk of a hotlist version. Chunks are applied only when all arrived and the digest of the
/// whole matches (SHA-256 of the concatenated chunks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotlistChunk {
    pub downlink_id: u64,
    pub list_name: String,
    pub version: u64,
    pub index: u32,
    pub count: u32,
    pub sha256: [u8; 32],
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldKind {
    ActiveInvestigation,
    Exculpatory,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HoldCommand {
    Place {
        hold_id: u64,
        kind: HoldKind,
        case_number: String,
        read_ids: Vec<u64>,
    },
    Release {
        hold_id: u64,
    },
    /// Every read of one of `plates` (the forms of one plate) collected in
    /// `[from_ms, to_ms)`: the trailer finds and holds its own.
    PlacePlate {
        hold_id: u64,
        kind: HoldKind,
        case_number: String,
        plates: Vec<String>,
        from_ms: i64,
        to_ms: i64,
    },
}

/// A trailer's request for a new certificate: a PKCS#10 request (DER) signed by a key the
/// trailer made for it, which never leaves the trailer. Sent when its certificate nears expiry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertRequest {
    pub trailer_id: TrailerId,
    pub csr_der: Vec<u8>,
}

/// Commands from the server to one trailer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Downlink {
    Hotlist(HotlistChunk),
    Hold {
        downlink_id: u64,
        command: HoldCommand,
    },
    /// Address Confidentiality Program plates ([`crate::acp`]): the slow digests the trailer
    /// keeps, and the fast ones it uses once to find the plates' stored reads and never keeps
    /// (empty when the list is sent again to a new store). A trailer whose key has another
    /// fingerprint refuses it.
    AcpAdd {
        downlink_id: u64,
        key_fingerprint: [u8; 8],
        hashes: Vec<[u8; 32]>,
        probes: Vec<[u8; 32]>,
    },
    /// A whole appliance configuration, signed by the agency's configuration key
    /// ([`crate::signed`]).
    Config {
        downlink_id: u64,
        toml: String,
        /// Ed25519, 64 bytes.
        signature: Vec<u8>,
    },
    SendPicture {
        downlink_id: u64,
        read_id: u64,
        kind: PictureKind,
    },
    SendHealth {
        downlink_id: u64,
    },
    /// The certificate signed for the trailer's renewal request (PEM, the issuing CA after it).
    Certificate {
        downlink_id: u64,
        chain_pem: String,
    },
    /// A suspension order in force (`in_force`): stop collecting until it is lifted (the same
    /// downlink with `in_force` false). The trailer keeps the state across restarts.
    Suspension {
        downlink_id: u64,
        order: String,
        in_force: bool,
    },
    /// A hotlist withdrawn by the agency: the trailer drops it and matches against it no more.
    HotlistWithdraw {
        downlink_id: u64,
        list_name: String,
        /// Every version up to this one is withdrawn (a chunk still on its way is refused).
        through_version: u64,
    },
}

/// Every binary message, with its kind byte on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    ReadBatch(ReadBatch),
    Picture(Picture),
    Alert(Alert),
    Health(Health),
    ActiveUse(ActiveUse),
    Deployment(DeploymentEvent),
    Status(Status),
    Ack(Ack),
    Downlink(Downlink),
    DownlinkAck(DownlinkAck),
    CertRequest(CertRequest),
}

/// Longest free text kept from a trailer (a note, an answer), in characters.
const TEXT_MAX: usize = 500;
/// Longest name kept from a trailer (a camera, a list, a version, a case number).
const NAME_MAX: usize = 64;

impl ReadMeta {
    fn sanitise(&mut self) -> Result<(), String> {
        if !crate::text::is_plate(&self.plate) {
            return Err(format!("read {}: a plate of capitals and digits (1-12)", self.read_id));
        }
        self.camera_id = crate::text::clean(&self.camera_id, NAME_MAX);
        Ok(())
    }
}

impl Message {
    /// Makes every string a trailer sent safe to keep and to show a person ([`crate::text`]):
    /// control characters go, lengths are bounded; a plate that is not one refuses the message.
    pub fn sanitise(&mut self) -> Result<(), String> {
        use crate::text::clean;
        match self {
            Message::ReadBatch(b) => b.reads.iter_mut().try_for_each(ReadMeta::sanitise)?,
            Message::Alert(a) => {
                a.read.sanitise()?;
                a.list_name = clean(&a.list_name, NAME_MAX);
                a.case_number = a.case_number.as_deref().map(|c| clean(c, NAME_MAX));
            }
            Message::Health(h) => {
                h.software_version = clean(&h.software_version, NAME_MAX);
                h.destroyed.truncate(DESTROYED_DAYS);
            }
            Message::Status(s) => s.software_version = clean(&s.software_version, NAME_MAX),
            Message::ActiveUse(u) => {
                for l in &mut u.lists_compared {
                    *l = clean(l, TEXT_MAX);
                }
            }
            Message::Deployment(d) => d.note = clean(&d.note, TEXT_MAX),
            Message::DownlinkAck(a) => a.reason = a.reason.as_deref().map(|r| clean(r, TEXT_MAX)),
            Message::Picture(_)
            | Message::Ack(_)
            | Message::Downlink(_)
            | Message::CertRequest(_) => {}
        }
        Ok(())
    }

    /// The trailer a message from a trailer claims to come from (checked against its topic).
    pub fn trailer_id(&self) -> Option<&str> {
        match self {
            Message::ReadBatch(m) => Some(&m.trailer_id),
            Message::Picture(m) => Some(&m.trailer_id),
            Message::Alert(m) => Some(&m.trailer_id),
            Message::Health(m) => Some(&m.trailer_id),
            Message::ActiveUse(m) => Some(&m.trailer_id),
            Message::Deployment(m) => Some(&m.trailer_id),
            Message::Status(m) => Some(&m.trailer_id),
            Message::DownlinkAck(m) => Some(&m.trailer_id),
            Message::CertRequest(m) => Some(&m.trailer_id),
            Message::Ack(_) | Message::Downlink(_) => None,
        }
    }
}
