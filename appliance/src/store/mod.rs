//! The trailer's store, on sled. It is also the sync outbox: nothing leaves it because it was
//! sent, only because the server acknowledged it, or because the law says it must be destroyed.
//!
//! # Trees and keys
//! Reads live in **day partitions** ([`days`]): three trees per collection day (days since the
//! Unix epoch, UTC), so retention frees a whole expired day at once. A read id carries its day
//! in its top 24 bits ([`keys::read_id`]), so a read is found from its id alone.
//!
//! | tree           | key                                          | value                          |
//! |----------------|----------------------------------------------|--------------------------------|
//! | `day-D-r`      | read id (u64 BE)                             | postcard [`StoredRead`]        |
//! | `day-D-r`      | `FF FF` ([`keys::COUNT`])                    | reads in the day (u64 BE)      |
//! | `day-D-p`      | read id (u64 BE) + kind (u8)                 | postcard [`pictures::PictureRef`] |
//! | `day-D-o`      | outbox key of a read or picture              | empty                          |
//! | `outbox`       | outbox key of an alert or activity record    | empty                          |
//! | `usage`        | period id (u64 BE)                           | postcard `ActiveUse`           |
//! | `alerts`       | alert id (u64 BE)                            | postcard `Alert`               |
//! | `holds`        | hold id (u64 BE)                             | postcard [`HoldRecord`]        |
//! | `held`         | read id (u64 BE) + hold id (u64 BE)          | empty (which reads are held)   |
//! | `acp`          | HMAC-SHA-256 digest (32 bytes)               | empty                          |
//! | `destroyed`    | day (u32 BE) + reason (u8)                   | count (u64 BE)                 |
//! | `destroyed`    | day (u32 BE) (a whole-day drop under way)    | reads in it (u64 BE)           |
//! | `hotlist_meta` | list name                                    | postcard [`hotlist::ListMeta`] |
//! | `downlinks`    | downlink id (u64 BE)                         | postcard `DownlinkAck` (the answer given) |
//! | `chunks`       | list name + 0x00 + version (u64 BE) + index (u32 BE) | a hotlist chunk's bytes |
//! | `quarantine`   | time (u64 BE ms) + tree name + 0x00 + key    | the undecodable record         |
//! | default        | `format`, `clean-shutdown`                   | format version; clean marker   |
//! | default        | `store-id`, `store-created`, `opens`         | the store's identity (u64/i64 BE) |
//! | default        | `suspension`                                 | the suspension order in force  |
//!
//! The outbox key is priority (u8) + item tag (u8) + id (u64 BE) + sub (u8). Priorities: alerts
//! 0, activity records 1, read metadata 2, plate crops 3, context pictures 4; sending order is
//! the global outbox, then each priority across the day partitions oldest day first.
//!
//! Picture bytes live in per-day segment files under `pictures/` ([`pictures`] says why), one
//! segment per day partition. Hotlist versions are snapshot files under `hotlists/` ([`lists`]).
//!
//! # Invariants
//! - A read, its picture references and its outbox entries are one atomic commit across its
//!   day's trees, flushed (after the picture bytes are synced) before [`Store::insert_reads`] returns:
//!   an acknowledged read survives a power cut whole.
//! - Retention ([`retention`]): nothing collected more than `retention_days` ago survives a purge,
//!   synced or not (the law's limit wins over the backlog), unless a hold names it.
//! - ACP: a read whose plate digest is on the ACP list is never written; adding digests destroys
//!   existing matching reads unless held.
//! - Destruction is counted per day and reason in `destroyed`, never logged with plate text.
pub mod acp;
mod check;
mod days;
pub mod hotlist;
mod ids;
pub mod keys;
mod lists;
pub mod pictures;
mod quota;
mod retention;
pub mod seal;

pub use check::CheckReport;
pub use quota::Quota;
pub use retention::{Destruction, RetentionGuard};

use crate::clock::{DAY_MS, SharedClock, UnixMs};
use days::{Change, Days, Part, dropped};
use hotlist::HotlistError;
use keys::{be_u64, held_key, outbox_key, parse_outbox_key, partition_of, picture_key, read_key};
use pictures::{PictureLog, PictureRef};
use seal::Seal;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;
use trailer_wire::{
    AckRef, ActiveUse, Alert, DeploymentEvent, DownlinkAck, HoldKind, Message, Picture,
    PictureKind, PictureSet, ReadMeta, StoreInfo,
};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open store at {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("store I/O: {0}")]
    Io(#[from] sled::Error),
    #[error("picture segment I/O: {0}")]
    Pictures(#[from] std::io::Error),
    #[error(transparent)]
    Hotlist(#[from] HotlistError),
    #[error("storage full: {used} of {limit} bytes in use and nothing synced left to drop")]
    Full { used: u64, limit: u64 },
    #[error("corrupt record in tree {tree} (key {key}): {reason}")]
    Corrupt { tree: &'static str, key: String, reason: String },
}

impl From<TransactionError<()>> for StoreError {
    fn from(e: TransactionError<()>) -> Self {
        match e {
            TransactionError::Storage(e) => StoreError::Io(e),
            TransactionError::Abort(()) => {
                StoreError::Io(sled::Error::Unsupported("aborted".into()))
            }
        }
    }
}

/// A value as the store writes it: postcard, sealed for its tree ([`seal`]).
fn encode<T: Serialize>(
    seal: &Seal,
    tree: &'static str,
    key: &dyn std::fmt::Display,
    v: &T,
) -> Result<Vec<u8>, StoreError> {
    let plain = postcard::to_allocvec(v).map_err(|e| StoreError::Corrupt {
        tree,
        key: key.to_string(),
        reason: e.to_string(),
    })?;
    Ok(seal.seal(tree, &plain))
}

fn decode<T: serde::de::DeserializeOwned>(
    seal: &Seal,
    tree: &'static str,
    key: &dyn std::fmt::Display,
    v: &[u8],
) -> Result<T, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { tree, key: key.to_string(), reason };
    let plain =
        seal.open(tree, v).map_err(|_| corrupt("does not open with the store key".into()))?;
    postcard::from_bytes(&plain).map_err(|e| corrupt(e.to_string()))
}

/// A read as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRead {
    pub meta: ReadMeta,
    /// When it was collected (the clock at insertion): retention counts from here.
    pub collected: UnixMs,
    /// The server acknowledged the metadata.
    pub synced: bool,
}

/// A hold placed by the server: these reads are kept past the retention age until released.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldRecord {
    pub kind: HoldKind,
    pub case_number: String,
    pub read_ids: Vec<u64>,
}

/// What happened to a read handed to [`Store::insert_read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored durably under this id.
    Stored(u64),
    /// An ACP participant's plate: destroyed at collection, only counted.
    DestroyedAcp,
}

/// A plausible read as capture hands it to the store (which assigns the id and the picture
/// flags). One fixture for the store's tests, its benchmark and the power-cut writer.
pub fn sample_read(plate: &str) -> ReadMeta {
    ReadMeta {
        read_id: 0,
        camera_id: "cam0".into(),
        plate: plate.into(),
        confidence_pm: 950,
        first_seen: 1_790_000_000_000,
        best_seen: 1_790_000_000_400,
        position: trailer_wire::Position::from_degrees(
            44.1636,
            -93.9994,
            trailer_wire::FixQuality::Fix3d,
        ),
        plate_box: [640, 400, 120, 60],
        pictures: PictureSet::default(),
    }
}

fn chunk_prefix(name: &str, version: u64) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// Key in the default tree, present only between a clean shutdown and the next open.
const CLEAN_MARK: &[u8] = b"clean-shutdown";
/// Key in the default tree naming the layout this code reads.
const FORMAT_KEY: &[u8] = b"format";
const FORMAT: &[u8] = b"2-day-partitions";
/// The value of an outbox entry whose record changed after it was queued.
const CHANGED: &[u8] = &[1];
/// Keys in the default tree of the store's identity ([`StoreInfo`]).
const STORE_ID_KEY: &[u8] = b"store-id";
const STORE_CREATED_KEY: &[u8] = b"store-created";
const OPENS_KEY: &[u8] = b"opens";
/// The suspension order in force, if any (its reference, UTF-8).
const SUSPENSION_KEY: &[u8] = b"suspension";
/// Key in the default tree: the store key's fingerprint, in an encrypted store.
const SEAL_KEY: &[u8] = b"seal";

/// Which pictures are queued for the server when a read is stored. Pictures not queued stay on
/// the trailer (the server can ask for one) and, not waiting for sync, are the first the quota
/// drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PictureSync {
    #[default]
    All,
    PlateCrops,
    OnRequest,
}

impl PictureSync {
    pub fn parse(s: &str) -> Option<PictureSync> {
        match s {
            "all" => Some(PictureSync::All),
            "plate-crops" => Some(PictureSync::PlateCrops),
            "on-request" => Some(PictureSync::OnRequest),
            _ => None,
        }
    }

    fn queues(self, kind: PictureKind) -> bool {
        match self {
            PictureSync::All => true,
            PictureSync::PlateCrops => kind == PictureKind::PlateCrop,
            PictureSync::OnRequest => false,
        }
    }
}

/// Pictures of a new read.
#[derive(Debug, Default, Clone)]
pub struct NewPictures {
    pub plate_crop: Option<Vec<u8>>,
    pub context: Option<Vec<u8>>,
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    days: Arc<Days>,
    picture_log: Arc<PictureLog>,
    usage: sled::Tree,
    /// Deployment events (a trailer moved away, or stands at a new place), by event id.
    deployments: sled::Tree,
    outbox: sled::Tree,
    holds: sled::Tree,
    held: sled::Tree,
    acp: sled::Tree,
    destroyed: sled::Tree,
    hotlist_meta: sled::Tree,
    lists: Arc<lists::Lists>,
    alerts: sled::Tree,
    /// The answer given to each downlink: a redelivered downlink is answered again, not applied
    /// twice.
    downlinks: sled::Tree,
    /// Hotlist chunks received, until their version is complete.
    chunks: sled::Tree,
    clock: SharedClock,
    retention_ms: i64,
    /// The agency key the ACP digests are made with; `None` disables ACP matching.
    acp_key: Option<Vec<u8>>,
    /// The previous run ended with [`Store::mark_clean`]: the full check can be skipped.
    was_clean: bool,
    quota: Quota,
    /// Raised when unsynced data alone fills the quota (health shows "storage full").
    full: Arc<std::sync::atomic::AtomicBool>,
    /// Held while a batch adds or removes reads in a partition, so its count stays exact.
    part_writes: Arc<std::sync::Mutex<()>>,
    picture_sync: PictureSync,
    /// Encryption at rest ([`seal`]).
    seal: Arc<Seal>,
    /// Where record ids come from ([`ids`]).
    ids: Arc<ids::Ids>,
    /// This store's identity and this run's, as the status tells the server.
    info: StoreInfo,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("retention_ms", &self.retention_ms).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) an unencrypted store; [`Store::open_sealed`] with a key.
    pub fn open(dir: &Path, retention_days: u32, clock: SharedClock) -> Result<Store, StoreError> {
        Store::open_sealed(dir, retention_days, clock, Seal::none())
    }

    /// Opens (or creates) the store at `dir`, encrypted with `seal`'s key ([`seal`]). A store is
    /// encrypted from its creation or not at all, and opens only with its own key.
    pub fn open_sealed(
        dir: &Path,
        retention_days: u32,
        clock: SharedClock,
        seal: Seal,
    ) -> Result<Store, StoreError> {
        let open_err = |reason: String| StoreError::Open { path: dir.to_path_buf(), reason };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        // sled panics on some foreign files; refuse a directory that is clearly not a store.
        let conf = dir.join("conf");
        if conf.exists() && std::fs::read(&conf).map(|b| b.is_empty()).unwrap_or(true) {
            return Err(open_err("`conf` is empty or unreadable: not a store".into()));
        }
        // sled may panic instead of failing on a damaged or foreign file: turn that into an error
        // that names the directory, never a crash of the daemon.
        let path = dir.to_path_buf();
        let opened = std::panic::catch_unwind(move || {
            sled::Config::new().path(path).flush_every_ms(Some(500)).open()
        });
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(open_err(format!("{e} (damaged or not a store?)"))),
            Err(_) => return Err(open_err("the store's files are damaged or foreign".into())),
        };
        match db.get(FORMAT_KEY)? {
            Some(f) if f.as_ref() == FORMAT => {}
            Some(f) => {
                return Err(open_err(format!(
                    "store format {:?}; this build reads {:?}",
                    String::from_utf8_lossy(&f),
                    String::from_utf8_lossy(FORMAT)
                )));
            }
            None if db.tree_names().iter().any(|n| n.as_ref() == b"reads") => {
                return Err(open_err("an older store format without day partitions".into()));
            }
            None => {
                db.insert(FORMAT_KEY, FORMAT)?;
                if let Some(fp) = seal.fingerprint() {
                    db.insert(SEAL_KEY, &fp)?;
                }
            }
        }
        let recorded = db.get(SEAL_KEY)?.map(|v| v.to_vec());
        match (recorded.as_deref(), seal.fingerprint()) {
            (None, None) => {}
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(_)) => {
                return Err(open_err(format!(
                    "the store is encrypted with another key (fingerprint {})",
                    acp::hex(a)
                )));
            }
            (Some(_), None) => {
                return Err(open_err(
                    "the store is encrypted: set store.key_file to its key".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(open_err(
                    "the store was created unencrypted and opens only so; move it away (after \
                     its outbox drained) to start an encrypted one"
                        .into(),
                ));
            }
        }
        // The clean-shutdown marker is consumed at open: a crash from now on leaves none.
        let was_clean = db.remove(CLEAN_MARK)?.is_some();
        let info = Store::identify(&db, clock.now_ms())?;
        db.flush()?;
        let days = Arc::new(Days::open(&db)?);
        let usage = db.open_tree("usage")?;
        let deployments = db.open_tree("deployments")?;
        let alerts = db.open_tree("alerts")?;
        let ids = Arc::new(Store::ids_after(&days, [&usage, &deployments, &alerts])?);
        let seal = Arc::new(seal);
        let store = Store {
            was_clean,
            days,
            picture_log: Arc::new(
                PictureLog::open(&dir.join("pictures"), seal.clone())
                    .map_err(|e| open_err(e.to_string()))?,
            ),
            usage,
            deployments,
            outbox: db.open_tree("outbox")?,
            holds: db.open_tree("holds")?,
            held: db.open_tree("held")?,
            acp: db.open_tree("acp")?,
            destroyed: db.open_tree("destroyed")?,
            lists: Arc::new(lists::Lists::open(
                &dir.join("hotlists"),
                &db.open_tree("hotlist_meta")?,
                seal.clone(),
            )?),
            hotlist_meta: db.open_tree("hotlist_meta")?,
            alerts,
            downlinks: db.open_tree("downlinks")?,
            chunks: db.open_tree("chunks")?,
            db,
            clock,
            retention_ms: i64::from(retention_days) * DAY_MS,
            acp_key: None,
            quota: Quota::default(),
            full: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            part_writes: Arc::new(std::sync::Mutex::new(())),
            picture_sync: PictureSync::All,
            seal,
            ids,
            info,
        };
        Ok(store)
    }

    /// The store's identity, made when it is created, and this open counted with a new run.
    /// Durable before the store is used: a run's records must not be told apart from an
    /// earlier run's by an `opens` that a power cut took back.
    fn identify(db: &sled::Db, now: UnixMs) -> Result<StoreInfo, StoreError> {
        let get = |k: &[u8]| -> Result<Option<u64>, StoreError> {
            Ok(db.get(k)?.and_then(|v| be_u64(&v)))
        };
        let store_id = match get(STORE_ID_KEY)? {
            Some(id) => id,
            None => {
                let id = rand::random::<u64>();
                db.insert(STORE_CREATED_KEY, &now.to_be_bytes())?;
                db.insert(STORE_ID_KEY, &id.to_be_bytes())?;
                id
            }
        };
        let created = get(STORE_CREATED_KEY)?.map_or(now, |c| c as i64);
        let opens = get(OPENS_KEY)?.unwrap_or(0) + 1;
        db.insert(OPENS_KEY, &opens.to_be_bytes())?;
        Ok(StoreInfo { store_id, created, opens, run: rand::random() })
    }

    /// The id sources, continuing after the largest ids the store holds.
    fn ids_after(days: &Days, trees: [&sled::Tree; 3]) -> Result<ids::Ids, StoreError> {
        let last_read = match days.all().last() {
            Some((_, part)) => match part.read_records().next_back() {
                Some(kv) => keys::id_in(&kv?.0).unwrap_or(0),
                None => 0,
            },
            None => 0,
        };
        let mut last_other = 0;
        for t in trees {
            if let Some((k, _)) = t.last()? {
                last_other = last_other.max(be_u64(&k).unwrap_or(0));
            }
        }
        Ok(ids::Ids::starting_after(last_read, last_other))
    }

    /// This store's identity and run (sent in the trailer's status).
    pub fn info(&self) -> StoreInfo {
        self.info
    }

    /// Whether the store is encrypted at rest.
    pub fn encrypted(&self) -> bool {
        self.seal.encrypted()
    }

    /// The store's encryption, for what else the trailer keeps sealed (its TLS key).
    pub fn seal(&self) -> Arc<Seal> {
        self.seal.clone()
    }

    /// A value of `tree` opened and decoded, or `None` if it does not (checks and scans skip
    /// it; the start-up check quarantines it).
    fn peek<T: serde::de::DeserializeOwned>(&self, tree: &str, v: &[u8]) -> Option<T> {
        postcard::from_bytes(&self.seal.open(tree, v).ok()?).ok()
    }

    /// Alert `id` as stored, or `None` if it does not decode.
    fn open_alert(&self, id: u64, v: &[u8]) -> Option<Alert> {
        decode(&self.seal, "alerts", &id, v).ok()
    }

    /// Which pictures are queued for the server as reads are stored.
    pub fn with_picture_sync(mut self, mode: PictureSync) -> Store {
        self.picture_sync = mode;
        self
    }

    /// Enables ACP matching with the agency's key.
    pub fn with_acp_key(mut self, key: Vec<u8>) -> Store {
        self.acp_key = Some(key);
        self
    }

    fn part_writer(&self) -> std::sync::MutexGuard<'_, ()> {
        self.part_writes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds the day's new read count to a change (call with the writer lock held).
    fn add_to_count(part: &Part, change: &mut Change, delta: i64) -> Result<(), StoreError> {
        let n = part.count()?.saturating_add_signed(delta);
        change.reads.insert(keys::COUNT, &n.to_be_bytes());
        Ok(())
    }

    pub fn now(&self) -> UnixMs {
        self.clock.now_ms()
    }

    fn today(&self) -> u32 {
        self.now().div_euclid(DAY_MS).max(0) as u32
    }

    /// A new id for alerts and activity records: increasing, and unique for the life of the
    /// trailer id ([`ids`]).
    pub fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.ids.next_other(self.now(), rand::random()))
    }

    /// A new read id for a read collected now, in `day` ([`ids`]).
    fn next_read_id(&self, now: UnixMs) -> u64 {
        let taken = |id: u64| -> bool {
            // An error reading the day counts as taken: the next id is tried.
            self.days
                .get(keys::day_of(id))
                .is_some_and(|p| !matches!(p.reads.contains_key(read_key(id)), Ok(false)))
        };
        self.ids.next_read(now, rand::random(), &taken)
    }

    /// Stores a read with its pictures and queues it for sync; durable when this returns.
    /// An ACP participant's plate is not written at all: it is counted and dropped.
    pub fn insert_read(&self, meta: ReadMeta, pics: NewPictures) -> Result<Inserted, StoreError> {
        let mut out = self.insert_reads(vec![(meta, pics)])?;
        out.pop().ok_or_else(|| StoreError::Corrupt {
            tree: "reads",
            key: String::new(),
            reason: "batch of one returned nothing".into(),
        })
    }

    /// Stores reads in one group commit: pictures appended and synced, then one atomic batch in
    /// the day's partition and one flush. Durable when this returns.
    pub fn insert_reads(
        &self,
        reads: Vec<(ReadMeta, NewPictures)>,
    ) -> Result<Vec<Inserted>, StoreError> {
        let incoming: u64 = reads
            .iter()
            .map(|(_, p)| {
                512 + p.plate_crop.as_ref().map_or(0, Vec::len) as u64
                    + p.context.as_ref().map_or(0, Vec::len) as u64
            })
            .sum();
        self.make_room(incoming)?;
        let now = self.now();
        let day = now.div_euclid(DAY_MS).max(0) as u32;
        let mut out = Vec::with_capacity(reads.len());
        let mut change = Change::default();
        let mut stored = 0;
        let mut acp_destroyed = 0;
        for (mut meta, pics) in reads {
            if self.is_acp(&meta.plate)? {
                acp_destroyed += 1;
                out.push(Inserted::DestroyedAcp);
                continue;
            }
            let id = self.next_read_id(now);
            meta.read_id = id;
            meta.pictures = PictureSet {
                plate_crop: pics.plate_crop.is_some(),
                context: pics.context.is_some(),
            };
            for (kind, pic) in
                [(PictureKind::PlateCrop, &pics.plate_crop), (PictureKind::Context, &pics.context)]
            {
                if let Some(jpeg) = pic {
                    let pref = self.picture_log.append(day, jpeg)?;
                    change.pictures.insert(
                        &picture_key(id, kind),
                        encode(&self.seal, "pictures", &id, &pref)?,
                    );
                    if self.picture_sync.queues(kind) {
                        change.outbox.insert(&outbox_key(&AckRef::Picture(id, kind)), &[]);
                    }
                }
            }
            let record = StoredRead { meta, collected: now, synced: false };
            change.reads.insert(&read_key(id), encode(&self.seal, "reads", &id, &record)?);
            change.outbox.insert(&outbox_key(&AckRef::Read(id)), &[]);
            stored += 1;
            out.push(Inserted::Stored(id));
        }
        if stored > 0 {
            // The pictures are durable before anything points to them.
            self.picture_log.sync(day)?;
            let part = self.days.get_or_create(day)?;
            let _writer = self.part_writer();
            Store::add_to_count(&part, &mut change, stored)?;
            part.commit(&change)?;
        }
        if acp_destroyed > 0 {
            self.count_destroyed(Destruction::AcpAtCollection, acp_destroyed)?;
        }
        self.db.flush()?;
        Ok(out)
    }

    /// Records an active-use period (opened or closed) and queues it for sync.
    pub fn record_usage(&self, period: &ActiveUse) -> Result<(), StoreError> {
        let id = period.period_id;
        self.record_queued(&self.usage, "usage", id, period, AckRef::ActiveUse(id))
    }

    /// Records a deployment event and queues it for sync.
    pub fn record_deployment(&self, event: &DeploymentEvent) -> Result<(), StoreError> {
        let id = event.event_id;
        self.record_queued(&self.deployments, "deployments", id, event, AckRef::Deployment(id))
    }

    /// Writes `value` under `id` in `tree` and its outbox entry in one transaction, durably.
    fn record_queued<T: Serialize>(
        &self,
        tree: &sled::Tree,
        name: &'static str,
        id: u64,
        value: &T,
        ack: AckRef,
    ) -> Result<(), StoreError> {
        let bytes = encode(&self.seal, name, &id, value)?;
        (tree, &self.outbox).transaction(|(t, o)| {
            t.insert(&id.to_be_bytes(), bytes.as_slice())?;
            // A record changed while an earlier version waits (or is in flight) is marked
            // [`CHANGED`]: the ack of that earlier version must not take the change off the
            // outbox (a period closed just after it opened would stay open at the server).
            let mark: &[u8] = if o.get(outbox_key(&ack))?.is_some() { CHANGED } else { &[] };
            o.insert(&outbox_key(&ack), mark)?;
            Ok::<_, ConflictableTransactionError<()>>(())
        })?;
        self.db.flush()?;
        Ok(())
    }

    /// The answer already given to downlink `id`, if any.
    pub fn downlink_answer(&self, id: u64) -> Result<Option<DownlinkAck>, StoreError> {
        match self.downlinks.get(id.to_be_bytes())? {
            Some(v) => Ok(Some(decode(&self.seal, "downlinks", &id, &v)?)),
            None => Ok(None),
        }
    }

    /// Records the answer to a downlink and queues it for the server, durably.
    pub fn record_downlink_answer(&self, ack: &DownlinkAck) -> Result<(), StoreError> {
        let id = ack.downlink_id;
        self.record_queued(&self.downlinks, "downlinks", id, ack, AckRef::Downlink(id))
    }

    /// Queues the answer to downlink `id` again (the server asked again: its ack was lost).
    pub fn requeue_downlink_answer(&self, id: u64) -> Result<(), StoreError> {
        if self.downlinks.contains_key(id.to_be_bytes())? {
            self.outbox.insert(outbox_key(&AckRef::Downlink(id)), &[])?;
        }
        Ok(())
    }

    /// Keeps one chunk of a hotlist version. When every chunk of that version is here, returns
    /// them joined in order (the caller verifies, imports and then calls [`Store::drop_chunks`]).
    pub fn stage_chunk(
        &self,
        name: &str,
        version: u64,
        index: u32,
        count: u32,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let prefix = chunk_prefix(name, version);
        let mut key = prefix.clone();
        key.extend_from_slice(&index.to_be_bytes());
        self.chunks.insert(key, self.seal.seal("chunks", bytes))?;
        self.db.flush()?;
        let have = self.chunks.scan_prefix(&prefix).count();
        if have < count as usize {
            return Ok(None);
        }
        let mut whole = Vec::new();
        for (i, kv) in self.chunks.scan_prefix(&prefix).enumerate() {
            let (k, v) = kv?;
            let opened = self.seal.open("chunks", &v);
            if i >= count as usize
                || k[prefix.len()..] != (i as u32).to_be_bytes()[..]
                || opened.is_err()
            {
                // Chunks of a different count under the same version (or damaged): start again.
                self.drop_chunks(name, version)?;
                return Ok(None);
            }
            whole.extend_from_slice(&opened.unwrap_or_default());
        }
        Ok(Some(whole))
    }

    /// Forgets the staged chunks of a hotlist version, and those of older versions of the list.
    pub fn drop_chunks(&self, name: &str, version: u64) -> Result<(), StoreError> {
        let mut list = name.as_bytes().to_vec();
        list.push(0);
        for kv in self.chunks.scan_prefix(&list) {
            let (k, _) = kv?;
            let v = k.get(list.len()..list.len() + 8).and_then(be_u64).unwrap_or(0);
            if v <= version {
                self.chunks.remove(k)?;
            }
        }
        self.db.flush()?;
        Ok(())
    }

    /// Queues a stored picture for sending because the server asked for it: in the global
    /// outbox, so it goes after alerts and before the day backlog. Returns whether it exists.
    pub fn queue_picture(&self, read_id: u64, kind: PictureKind) -> Result<bool, StoreError> {
        if self.picture_ref(read_id, kind)?.is_none() {
            return Ok(false);
        }
        self.outbox.insert(outbox_key(&AckRef::Picture(read_id, kind)), &[])?;
        self.db.flush()?;
        Ok(true)
    }

    /// Whether `r` is a picture the server asked for (sent even when the hour's budget is spent).
    pub fn is_requested(&self, r: &AckRef) -> bool {
        matches!(r, AckRef::Picture(..)) && self.outbox.contains_key(outbox_key(r)).unwrap_or(false)
    }

    /// Every deployment event recorded, oldest first.
    pub fn deployment_events(&self) -> Result<Vec<DeploymentEvent>, StoreError> {
        let mut out = Vec::new();
        for kv in self.deployments.iter() {
            let (k, v) = kv?;
            out.push(decode(&self.seal, "deployments", &hex_key(&k), &v)?);
        }
        Ok(out)
    }

    /// Every active-use period recorded (open and closed), oldest first.
    pub fn usage_periods(&self) -> Result<Vec<ActiveUse>, StoreError> {
        let mut out = Vec::new();
        for kv in self.usage.iter() {
            let (k, v) = kv?;
            out.push(decode(&self.seal, "usage", &hex_key(&k), &v)?);
        }
        Ok(out)
    }

    /// A record from a read's day partition; `None` when the day is gone.
    fn part_get(
        &self,
        read_id: u64,
        tree: impl Fn(&Part) -> &sled::Tree,
        key: &[u8],
    ) -> Result<Option<sled::IVec>, StoreError> {
        let Some(part) = self.days.get(keys::day_of(read_id)) else { return Ok(None) };
        match tree(&part).get(key) {
            Err(e) if dropped(&e) => Ok(None),
            r => Ok(r?),
        }
    }

    pub fn read(&self, id: u64) -> Result<Option<StoredRead>, StoreError> {
        match self.part_get(id, |p| &p.reads, &read_key(id))? {
            None => Ok(None),
            Some(v) => decode(&self.seal, "reads", &id, &v).map(Some),
        }
    }

    fn picture_ref(&self, id: u64, kind: PictureKind) -> Result<Option<PictureRef>, StoreError> {
        match self.part_get(id, |p| &p.pictures, &picture_key(id, kind))? {
            None => Ok(None),
            Some(v) => decode(&self.seal, "pictures", &format!("{id}/{kind:?}"), &v).map(Some),
        }
    }

    pub fn picture(&self, id: u64, kind: PictureKind) -> Result<Option<Vec<u8>>, StoreError> {
        match self.picture_ref(id, kind)? {
            None => Ok(None),
            Some(r) => match self.picture_log.read(&r) {
                Ok(bytes) => Ok(Some(bytes)),
                // Retention unlinked the day between the lookup and the read: destroyed.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// Removes one picture (its reference and outbox entry, atomically) and frees its bytes.
    fn drop_picture(&self, id: u64, kind: PictureKind) -> Result<bool, StoreError> {
        let Some(pref) = self.picture_ref(id, kind)? else { return Ok(false) };
        let Some(part) = self.days.get(keys::day_of(id)) else { return Ok(false) };
        let mut change = Change::default();
        change.pictures.remove(&picture_key(id, kind));
        change.outbox.remove(&outbox_key(&AckRef::Picture(id, kind)));
        match part.commit(&change) {
            Err(e) if dropped(&e) => return Ok(false),
            r => r?,
        }
        self.picture_log.punch(&pref)?;
        Ok(true)
    }

    /// Destroys one read with its pictures and outbox entries in one atomic batch, then frees
    /// the pictures' bytes.
    fn destroy_read(&self, id: u64) -> Result<(), StoreError> {
        let Some(part) = self.days.get(keys::day_of(id)) else { return Ok(()) };
        let mut change = Change::default();
        let mut bytes = Vec::new();
        for kind in [PictureKind::PlateCrop, PictureKind::Context] {
            bytes.extend(self.picture_ref(id, kind)?);
        }
        Store::remove_reads(&mut change, &[id]);
        let writer = self.part_writer();
        match part.reads.contains_key(read_key(id)) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) if dropped(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        Store::add_to_count(&part, &mut change, -1)?;
        part.commit(&change)?;
        drop(writer);
        for r in bytes {
            self.picture_log.punch(&r)?;
        }
        Ok(())
    }

    /// Adds the removal of reads with their pictures and outbox entries to a change.
    fn remove_reads(change: &mut Change, ids: &[u64]) {
        for &id in ids {
            for kind in [PictureKind::PlateCrop, PictureKind::Context] {
                change.pictures.remove(&picture_key(id, kind));
                change.outbox.remove(&outbox_key(&AckRef::Picture(id, kind)));
            }
            change.reads.remove(&read_key(id));
            change.outbox.remove(&outbox_key(&AckRef::Read(id)));
        }
    }

    /// Bytes the store occupies on disk: sled's files and the picture segments.
    pub fn disk_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()? + self.picture_log.disk_bytes()?)
    }

    /// All stored reads, oldest first.
    pub fn reads(&self) -> Result<Vec<StoredRead>, StoreError> {
        let mut out = Vec::new();
        for (_, part) in self.days.all() {
            for kv in part.read_records() {
                let (k, v) = kv?;
                out.push(decode(&self.seal, "reads", &hex_key(&k), &v)?);
            }
        }
        Ok(out)
    }

    /// Outbox items in sending order (alerts first), at most `limit`, skipping `skip`.
    pub fn pending(
        &self,
        limit: usize,
        skip: &dyn Fn(&AckRef) -> bool,
    ) -> Result<Vec<AckRef>, StoreError> {
        let mut out = Vec::new();
        let mut take = |tree: &sled::Tree, k: &[u8]| -> Result<bool, StoreError> {
            match parse_outbox_key(k) {
                Some(r) if !skip(&r) => out.push(r),
                Some(_) => {}
                None => {
                    tracing::warn!(key = %hex_key(k), "dropping unparseable outbox key");
                    tree.remove(k)?;
                }
            }
            Ok(out.len() >= limit)
        };
        for kv in self.outbox.iter() {
            if take(&self.outbox, &kv?.0)? {
                return Ok(out);
            }
        }
        let parts = self.days.all();
        for prio in 2u8..=4 {
            for (_, part) in &parts {
                for kv in part.outbox.scan_prefix([prio]) {
                    let k = match kv {
                        Err(e) if dropped(&e) => break,
                        kv => kv?.0,
                    };
                    if take(&part.outbox, &k)? {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Records a suspension order in force (`Some(reference)`) or its lift (`None`), durably:
    /// a trailer restarted under an order stays stopped.
    pub fn set_suspension(&self, order: Option<&str>) -> Result<(), StoreError> {
        match order {
            Some(o) => self.db.insert(SUSPENSION_KEY, o.as_bytes())?,
            None => self.db.remove(SUSPENSION_KEY)?,
        };
        self.db.flush()?;
        Ok(())
    }

    /// The suspension order in force, if any.
    pub fn suspension(&self) -> Result<Option<String>, StoreError> {
        Ok(self.db.get(SUSPENSION_KEY)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Whether anything waits for the server (one probe per day, unlike [`Store::backlog_len`]).
    pub fn backlog_empty(&self) -> bool {
        self.outbox.is_empty()
            && self
                .days
                .all()
                .iter()
                .all(|(_, p)| matches!(p.outbox.iter().next(), None | Some(Err(_))))
    }

    /// When the oldest read still waiting for the server was collected (one probe per day).
    pub fn backlog_oldest(&self) -> Option<UnixMs> {
        for (_, part) in self.days.all() {
            let Some(Ok((k, _))) = part.outbox.iter().next() else { continue };
            let oldest =
                part.outbox.scan_prefix([2u8]).next().and_then(Result::ok).map_or(k, |(k2, _)| k2);
            if let Some(AckRef::Read(id) | AckRef::Picture(id, _)) = parse_outbox_key(&oldest)
                && let Ok(Some(r)) = self.read(id)
            {
                return Some(r.collected);
            }
        }
        None
    }

    /// Items waiting for the server (counts the whole outbox).
    pub fn backlog_len(&self) -> usize {
        self.outbox.len() + self.days.all().iter().map(|(_, p)| p.outbox.len()).sum::<usize>()
    }

    fn remove_outbox(&self, r: &AckRef) -> Result<(), StoreError> {
        match partition_of(r) {
            None => {
                self.outbox.remove(outbox_key(r))?;
            }
            Some(day) => {
                if matches!(r, AckRef::Picture(..)) {
                    // A requested picture waits in the global outbox.
                    self.outbox.remove(outbox_key(r))?;
                }
                if let Some(part) = self.days.get(day) {
                    match part.outbox.remove(outbox_key(r)) {
                        Err(e) if dropped(&e) => {}
                        res => {
                            res?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Builds the wire message for an outbox item; `None` if the item no longer exists (destroyed
    /// by retention meanwhile), in which case it is dropped from the outbox.
    pub fn message_for(&self, trailer_id: &str, r: &AckRef) -> Result<Option<Message>, StoreError> {
        let msg = match *r {
            AckRef::Read(id) => self.read(id)?.map(|s| {
                Message::ReadBatch(trailer_wire::ReadBatch {
                    trailer_id: trailer_id.into(),
                    reads: vec![s.meta],
                })
            }),
            AckRef::Picture(id, kind) => self.picture(id, kind)?.map(|jpeg| {
                Message::Picture(Picture { trailer_id: trailer_id.into(), read_id: id, kind, jpeg })
            }),
            AckRef::ActiveUse(id) => match self.usage.get(id.to_be_bytes())? {
                Some(v) => Some(Message::ActiveUse(decode(&self.seal, "usage", &id, &v)?)),
                None => None,
            },
            AckRef::Alert(id) => match self.alerts.get(id.to_be_bytes())? {
                Some(v) => Some(Message::Alert(decode(&self.seal, "alerts", &id, &v)?)),
                None => None,
            },
            AckRef::Deployment(id) => match self.deployments.get(id.to_be_bytes())? {
                Some(v) => Some(Message::Deployment(decode(&self.seal, "deployments", &id, &v)?)),
                None => None,
            },
            AckRef::Downlink(id) => match self.downlinks.get(id.to_be_bytes())? {
                Some(v) => Some(Message::DownlinkAck(decode(&self.seal, "downlinks", &id, &v)?)),
                None => None,
            },
        };
        if msg.is_none() {
            self.remove_outbox(r)?;
        }
        Ok(msg)
    }

    /// The server committed these items: take them off the outbox. Reads stay (retention
    /// decides when they go), marked synced. A record changed since it was queued stays queued
    /// once more, for its newer version.
    pub fn ack(&self, refs: &[AckRef]) -> Result<(), StoreError> {
        for r in refs {
            if matches!(r, AckRef::ActiveUse(_) | AckRef::Deployment(_)) {
                let key = outbox_key(r);
                let kept = self.outbox.compare_and_swap(key, Some(CHANGED), Some(&[][..]))?;
                if kept.is_ok() {
                    continue;
                }
            }
            self.remove_outbox(r)?;
            if let AckRef::Read(id) = r
                && let Some(mut s) = self.read(*id)?
                && !s.synced
                && let Some(part) = self.days.get(keys::day_of(*id))
            {
                s.synced = true;
                match part.reads.insert(read_key(*id), encode(&self.seal, "reads", id, &s)?) {
                    Err(e) if dropped(&e) => {}
                    res => {
                        res?;
                    }
                }
            }
        }
        // Losing an ack in a power cut only means the item is sent again; the server is
        // idempotent. No synchronous flush here.
        Ok(())
    }

    /// Places (or replaces) a hold on reads.
    pub fn place_hold(&self, hold_id: u64, hold: &HoldRecord) -> Result<(), StoreError> {
        let bytes = encode(&self.seal, "holds", &hold_id, hold)?;
        self.release_hold(hold_id)?;
        (&self.holds, &self.held).transaction(|(h, idx)| {
            h.insert(&hold_id.to_be_bytes(), bytes.as_slice())?;
            for r in &hold.read_ids {
                idx.insert(&held_key(*r, hold_id), &[])?;
            }
            Ok::<_, ConflictableTransactionError<()>>(())
        })?;
        self.db.flush()?;
        Ok(())
    }

    /// Places a hold on every stored read of one of `plates` collected in `[from, to)`
    /// (a hold on a plate and a period). Returns how many reads it holds.
    pub fn hold_plate(
        &self,
        hold_id: u64,
        kind: HoldKind,
        case_number: &str,
        plates: &[String],
        (from, to): (UnixMs, UnixMs),
    ) -> Result<usize, StoreError> {
        // A read is in the partition of the day it was stored, a little after it was first
        // seen: the day after the period is looked at too.
        let day = |t: UnixMs| t.div_euclid(DAY_MS).max(0) as u32;
        let (first, last) = (day(from), day(to) + 1);
        let mut read_ids = Vec::new();
        for (day, part) in self.days.all() {
            if day < first || day > last {
                continue;
            }
            for kv in part.read_records() {
                let (k, v) = kv?;
                let r: StoredRead = decode(&self.seal, "reads", &hex_key(&k), &v)?;
                if plates.contains(&r.meta.plate) && (from..to).contains(&r.meta.first_seen) {
                    read_ids.push(r.meta.read_id);
                }
            }
        }
        let held = read_ids.len();
        self.place_hold(hold_id, &HoldRecord { kind, case_number: case_number.into(), read_ids })?;
        Ok(held)
    }

    /// Releases a hold; its reads fall back under retention (other holds still apply).
    pub fn release_hold(&self, hold_id: u64) -> Result<bool, StoreError> {
        let Some(v) = self.holds.get(hold_id.to_be_bytes())? else { return Ok(false) };
        let hold: HoldRecord = decode(&self.seal, "holds", &hold_id, &v)?;
        (&self.holds, &self.held).transaction(|(h, idx)| {
            h.remove(&hold_id.to_be_bytes())?;
            for r in &hold.read_ids {
                idx.remove(&held_key(*r, hold_id))?;
            }
            Ok::<_, ConflictableTransactionError<()>>(())
        })?;
        self.db.flush()?;
        Ok(true)
    }

    pub fn is_held(&self, read_id: u64) -> Result<bool, StoreError> {
        Ok(self.held.scan_prefix(read_id.to_be_bytes()).next().transpose()?.is_some())
    }

    /// Whether an active-investigation hold names the read: the one exception to an ACP
    /// participant's request (Minn. Stat. 13.824 subd. 3(c): "unless the data are active
    /// criminal investigative data"). An exculpatory hold does not keep an ACP read; the server
    /// follows the same rule.
    pub fn is_held_for_investigation(&self, read_id: u64) -> Result<bool, StoreError> {
        for kv in self.held.scan_prefix(read_id.to_be_bytes()) {
            let (k, _) = kv?;
            let Some(hold_id) = k.get(8..16).and_then(be_u64) else { continue };
            let Some(v) = self.holds.get(hold_id.to_be_bytes())? else { continue };
            let hold: HoldRecord = decode(&self.seal, "holds", &hold_id, &v)?;
            if hold.kind == HoldKind::ActiveInvestigation {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether a hold names any read of this collection day.
    fn day_has_holds(&self, day: u32) -> Result<bool, StoreError> {
        let from = held_key(keys::day_ids(day).0, 0);
        let to = held_key(keys::day_ids(day).1, u64::MAX);
        Ok(self.held.range(from..=to).next().transpose()?.is_some())
    }

    fn is_acp(&self, plate: &str) -> Result<bool, StoreError> {
        match &self.acp_key {
            Some(key) if !self.acp.is_empty() => {
                Ok(self.acp.contains_key(acp::acp_digest(key, plate))?)
            }
            _ => Ok(false),
        }
    }

    /// The ACP key's fingerprint (`None`: no key) and the number of digests on the list.
    pub fn acp_state(&self) -> (Option<[u8; 8]>, u32) {
        (self.acp_key.as_deref().map(acp::key_fingerprint), self.acp.len() as u32)
    }

    /// Adds ACP digests (slow, kept) and destroys the stored reads of those plates (unless
    /// held). The reads are found by `probes`, the plates' fast digests, which are not kept;
    /// without them (the list sent again to a new or restored store) by the slow digest of each
    /// distinct stored plate. Refused without the server's key. Returns how many reads were
    /// destroyed.
    pub fn acp_add(
        &self,
        fingerprint: [u8; 8],
        digests: &[[u8; 32]],
        probes: &[[u8; 32]],
    ) -> Result<Result<usize, String>, StoreError> {
        if let Some(refused) = acp::refusal(self.acp_key.as_deref(), fingerprint) {
            return Ok(Err(refused));
        }
        let Some(key) = &self.acp_key else { return Ok(Ok(0)) };
        for d in digests {
            self.acp.insert(d, &[])?;
        }
        self.db.flush()?;
        let wanted: std::collections::HashSet<[u8; 32]> = digests.iter().copied().collect();
        let probes: std::collections::HashSet<[u8; 32]> = probes.iter().copied().collect();
        // The slow digest of each distinct plate, once.
        let mut slow: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
        let mut destroyed = 0;
        for (_, part) in self.days.all() {
            for kv in part.read_records() {
                let (k, v) = match kv {
                    Err(e) if dropped(&e) => break,
                    kv => kv?,
                };
                let Some(id) = keys::id_in(&k) else { continue };
                let Some(read) = self.peek::<StoredRead>("reads", &v) else { continue };
                let plate = &read.meta.plate;
                let listed = if probes.is_empty() {
                    *slow
                        .entry(plate.clone())
                        .or_insert_with(|| wanted.contains(&acp::acp_digest(key, plate)))
                } else {
                    probes.contains(&acp::acp_probe(key, plate))
                };
                if listed && !self.is_held_for_investigation(id)? {
                    self.destroy_read(id)?;
                    destroyed += 1;
                }
            }
        }
        if destroyed > 0 {
            self.count_destroyed(Destruction::AcpExisting, destroyed as u64)?;
            // Their hits name the plate too.
            self.purge_alerts()?;
        }
        self.db.flush()?;
        Ok(Ok(destroyed))
    }

    /// Matches a stored read against the hotlists and raises an alert per hit, queued ahead of
    /// everything else. Returns the alerts raised.
    pub fn raise_alerts(
        &self,
        trailer_id: &str,
        read_id: u64,
        ocr_tolerance: bool,
    ) -> Result<Vec<Alert>, StoreError> {
        let mut alerts = Vec::new();
        let Some(stored) = self.read(read_id)? else { return Ok(alerts) };
        let read = &stored.meta;
        for (list, entry) in self.match_plate(&read.plate, ocr_tolerance)? {
            let alert = Alert {
                trailer_id: trailer_id.into(),
                alert_id: self.next_id()?,
                read: read.clone(),
                list_name: list.name,
                list_version: list.version,
                category: entry.category,
                case_number: entry.case_number,
            };
            let id = alert.alert_id;
            let bytes = encode(&self.seal, "alerts", &id, &alert)?;
            (&self.alerts, &self.outbox).transaction(|(a, o)| {
                a.insert(&id.to_be_bytes(), bytes.as_slice())?;
                o.insert(&outbox_key(&AckRef::Alert(id)), &[])?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })?;
            alerts.push(alert);
        }
        if !alerts.is_empty() {
            self.db.flush()?;
        }
        Ok(alerts)
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

fn hex_key(k: &[u8]) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;

    fn pics() -> NewPictures {
        NewPictures { plate_crop: Some(vec![1; 10]), context: Some(vec![2; 20]) }
    }

    /// Opens the store again after the test dropped it. Sled's flusher thread lets go of the
    /// directory's lock a moment after the last handle drops; on a loaded machine the next
    /// open can come first and find it still held.
    pub(crate) fn reopen(dir: &Path, days: u32, clock: SharedClock) -> Store {
        let mut tries = 0;
        loop {
            match Store::open(dir, days, clock.clone()) {
                Ok(s) => return s,
                Err(e) if tries < 100 && e.to_string().contains("could not acquire lock") => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("reopen: {e}"),
            }
        }
    }

    fn put(store: &Store, plate: &str) -> u64 {
        match store.insert_read(sample_read(plate), pics()).expect("insert") {
            Inserted::Stored(id) => id,
            Inserted::DestroyedAcp => panic!("{plate} was destroyed as ACP"),
        }
    }

    #[test]
    fn hotlist_hits_raise_alerts_first_in_the_outbox() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Store::open(dir.path(), 60, Arc::new(ManualClock::new(1_000 * DAY_MS))).expect("open");
        let v1 = hotlist::parse_csv("ABC123,MN,stolen vehicle,MN BCA\n", true).expect("csv");
        store.import_hotlist("mn-state", 1, "MN BCA plate data file", &v1).expect("import");
        assert_eq!(store.hotlists().expect("lists")[0].version, 1, "now cached");
        let v2 =
            hotlist::parse_csv("XYZ789,MN,warrant,MN BCA\nA8C123,MN,stolen plate,MN BCA\n", true)
                .expect("csv");
        store.import_hotlist("mn-state", 2, "MN BCA plate data file", &v2).expect("import");
        assert!(matches!(
            store.import_hotlist("mn-state", 2, "x", &v2),
            Err(StoreError::Hotlist(HotlistError::Stale { .. }))
        ));
        assert_eq!(store.hotlists().expect("lists")[0].entries, 2);
        // Version 1's entry is gone; version 2's match exactly and within one confusion.
        assert!(store.match_plate("ABC123", false).expect("match").is_empty());
        assert_eq!(store.match_plate("ABC123", true).expect("match").len(), 1, "B/8 tolerance");
        let id = put(&store, "XYZ789");
        let alerts = store.raise_alerts("t1", id, false).expect("alerts");
        assert!(
            alerts[0].read.pictures.context && alerts[0].read.pictures.plate_crop,
            "the read as stored"
        );
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].category, trailer_wire::HitCategory::Warrant);
        assert_eq!(alerts[0].list_version, 2);
        let pending = store.pending(10, &|_| false).expect("pending");
        assert_eq!(pending[0], AckRef::Alert(alerts[0].alert_id));
        assert!(matches!(
            store.message_for("t1", &pending[0]).expect("msg"),
            Some(Message::Alert(_))
        ));
    }

    #[test]
    fn check_quarantines_corrupt_records_and_drops_dangling_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Store::open(dir.path(), 60, Arc::new(ManualClock::new(1_000 * DAY_MS))).expect("open");
        let good = put(&store, "GOOD1");
        let part = store.days.get(keys::day_of(good)).expect("today's partition");
        let id = |n| keys::read_id(1000, n);
        part.reads.insert(read_key(id(99)), &b"\xff\xff\xff"[..]).expect("corrupt");
        part.outbox.insert(outbox_key(&AckRef::Read(id(12345))), &[]).expect("dangling");
        store.outbox.insert(outbox_key(&AckRef::Alert(4242)), &[]).expect("dangling alert");
        part.pictures
            .insert(
                picture_key(id(777), PictureKind::Context),
                postcard::to_allocvec(&PictureRef { day: 1000, offset: 0, len: 4, checksum: 0 })
                    .expect("ref"),
            )
            .expect("orphan");
        let r = store.check().expect("check");
        assert_eq!(
            r,
            CheckReport {
                reads: 1,
                quarantined: 1,
                dangling_outbox: 2,
                orphan_pictures: 1,
                skipped: false
            }
        );
        assert!(store.read(good).expect("read").is_some());
        assert!(store.check().expect("check").clean(), "a second check finds nothing");
    }

    #[test]
    fn only_an_unclean_stop_costs_a_full_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(1_000 * DAY_MS));
        let store = Store::open(dir.path(), 60, clock.clone()).expect("open");
        put(&store, "AAA1");
        store.mark_clean().expect("clean");
        drop(store);
        let store = reopen(dir.path(), 60, clock.clone());
        assert_eq!(
            store.check().expect("check"),
            CheckReport { reads: 1, skipped: true, ..CheckReport::default() }
        );
        drop(store); // no mark: as after a power cut
        let store = reopen(dir.path(), 60, clock);
        assert!(!store.check().expect("check").skipped);
    }

    #[test]
    fn damaged_or_foreign_store_files_give_an_error_not_a_panic() {
        for garbage in [&b""[..], &b"not a sled config"[..], &[0xffu8; 4096][..]] {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::write(dir.path().join("conf"), garbage).expect("conf");
            std::fs::write(dir.path().join("db"), [0x5au8; 8192]).expect("db");
            let r = Store::open(dir.path(), 60, Arc::new(ManualClock::new(0)));
            let err = r.expect_err("foreign files are refused");
            assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
        }
    }

    #[test]
    fn quota_is_never_exceeded_and_unsynced_reads_are_never_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let store = Store::open(dir.path(), 60, Arc::new(clock.clone())).expect("open");
        let base = store.disk_bytes().expect("du");
        let limit = base + 3_000_000;
        let store =
            store.with_quota(Quota { max_bytes: limit, max_fraction: 1.0, min_free_bytes: 0 });
        let big =
            || NewPictures { plate_crop: Some(vec![3; 4096]), context: Some(vec![5; 50_000]) };
        let mut synced = Vec::new();
        let mut unsynced = Vec::new();
        // Half of what arrives is synced; keep going well past the quota.
        for i in 0..200 {
            clock.advance(60_000);
            match store.insert_read(sample_read(&format!("Q{i:04}")), big()) {
                Ok(Inserted::Stored(id)) => {
                    if i % 2 == 0 {
                        let refs = [
                            AckRef::Read(id),
                            AckRef::Picture(id, PictureKind::PlateCrop),
                            AckRef::Picture(id, PictureKind::Context),
                        ];
                        store.ack(&refs).expect("ack");
                        synced.push(id);
                    } else {
                        unsynced.push(id);
                    }
                }
                Ok(Inserted::DestroyedAcp) => panic!("not ACP"),
                Err(StoreError::Full { used, limit: l }) => {
                    assert!(used <= l + 60_000, "full only near the limit: {used} of {l}");
                    assert!(store.storage_full());
                    break;
                }
                Err(e) => panic!("{e}"),
            }
            let used = store.disk_bytes().expect("du");
            assert!(used <= limit, "quota exceeded after read {i}: {used} > {limit}");
        }
        assert!(
            store.storage_full(),
            "200 reads of 54 KB cannot fit in 3 MB without dropping unsynced ones"
        );
        for id in &unsynced {
            let r = store.read(*id).expect("read").expect("an unsynced read is never dropped");
            assert!(!r.synced);
            assert!(store.picture(*id, PictureKind::Context).expect("pic").is_some());
        }
        // Synced context pictures went first.
        assert!(
            synced
                .iter()
                .any(|id| store.picture(*id, PictureKind::Context).expect("pic").is_none())
        );
    }

    #[test]
    fn retention_duty_runs_until_its_guard_drops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let store = Store::open(dir.path(), 1, Arc::new(clock.clone())).expect("open");
        let old = put(&store, "OLD1");
        clock.advance(DAY_MS + 1);
        let guard = store.spawn_retention(std::time::Duration::from_millis(5)).expect("spawn");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.read(old).expect("read").is_some() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(store.read(old).expect("read").is_none(), "the duty purged without being asked");
        drop(guard);
        let late = put(&store, "LATE1");
        clock.advance(DAY_MS + 1);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(store.read(late).expect("read").is_some(), "a stopped duty purges nothing");
    }

    #[test]
    fn holds_keep_exactly_what_they_name_until_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let store = Store::open(dir.path(), 60, Arc::new(clock.clone())).expect("open");
        let ids: Vec<u64> = ["AAA1", "BBB2", "CCC3"].iter().map(|p| put(&store, p)).collect();
        let hold = HoldRecord {
            kind: HoldKind::Exculpatory,
            case_number: "27-CR-26-1".into(),
            read_ids: vec![ids[1]],
        };
        store.place_hold(7, &hold).expect("hold");
        clock.advance(61 * DAY_MS);
        assert_eq!(store.purge().expect("purge"), 2);
        assert!(store.read(ids[0]).expect("read").is_none());
        assert!(store.read(ids[1]).expect("read").is_some(), "held read survives");
        assert!(store.picture(ids[1], PictureKind::Context).expect("pic").is_some());
        assert!(store.read(ids[2]).expect("read").is_none());
        assert!(store.release_hold(7).expect("release"));
        assert_eq!(store.purge().expect("purge"), 1);
        assert!(store.read(ids[1]).expect("read").is_none());
        let counts = store.destruction_counts().expect("counts");
        assert_eq!(counts.iter().map(|c| c.2).sum::<u64>(), 3);
        assert!(counts.iter().all(|c| c.1 == Destruction::Retention));
    }

    /// A hit holds its read's plate, time and place: it goes with its read (by retention or
    /// an ACP addition) and stays while the read is held. A quarantined record goes by the age
    /// of the data it can hold; one of the earlier, undated layout goes at once.
    #[test]
    fn alerts_and_quarantined_records_live_no_longer_than_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let key = b"agency-acp-key".to_vec();
        let store = Store::open(dir.path(), 60, Arc::new(clock.clone()))
            .expect("open")
            .with_acp_key(key.clone());
        let csv = "AAA111,MN,warrant,MN BCA\nBBB222,MN,warrant,MN BCA\nCCC333,MN,warrant,MN BCA\n";
        let list = hotlist::parse_csv(csv, true).expect("csv");
        store.import_hotlist("mn-state", 1, "MN BCA plate data file", &list).expect("import");
        let ids: Vec<u64> = ["AAA111", "BBB222", "CCC333"].iter().map(|p| put(&store, p)).collect();
        let alert_of =
            |read: u64| store.raise_alerts("t1", read, false).expect("alerts")[0].alert_id;
        let alerts: Vec<u64> = ids.iter().map(|id| alert_of(*id)).collect();
        let alive = |alert: u64| store.alerts.contains_key(alert.to_be_bytes()).expect("alerts");
        let queued = |alert: u64| {
            store.outbox.contains_key(outbox_key(&AckRef::Alert(alert))).expect("outbox")
        };
        // An ACP addition destroys the read of CCC333, and its hit with it.
        let fp = acp::key_fingerprint(&key);
        let probe = [acp::acp_probe(&key, "CCC333")];
        store.acp_add(fp, &[acp::acp_digest(&key, "CCC333")], &probe).expect("acp").expect("ok");
        assert!(!alive(alerts[2]) && !queued(alerts[2]), "an ACP plate's hit is gone");
        assert!(alive(alerts[0]) && alive(alerts[1]));
        // BBB222's read is held; quarantine holds one record from today and one undated.
        let hold = HoldRecord {
            kind: HoldKind::ActiveInvestigation,
            case_number: "C".into(),
            read_ids: vec![ids[1]],
        };
        store.place_hold(1, &hold).expect("hold");
        store.alerts.insert(store.next_id().expect("id").to_be_bytes(), &b"\xff"[..]).expect("bad");
        let quarantine = store.db.open_tree("quarantine").expect("quarantine");
        quarantine.insert(b"alerts\x00old-layout", &b"?"[..]).expect("undated");
        assert_eq!(store.full_check().expect("check").quarantined, 1);
        clock.advance(DAY_MS);
        store.purge().expect("purge");
        assert_eq!(quarantine.len(), 1, "the undated one went, today's stays");
        assert!(alive(alerts[0]), "young hits stay");
        clock.advance(60 * DAY_MS);
        store.purge().expect("purge");
        assert!(!alive(alerts[0]) && !queued(alerts[0]), "a hit goes with its read");
        assert!(alive(alerts[1]), "a held read keeps its hit");
        assert_eq!(quarantine.len(), 0, "quarantined data goes by its age");
    }

    #[test]
    fn acp_plates_are_never_written_and_existing_ones_destroyed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let key = b"agency-acp-key".to_vec();
        let store =
            Store::open(dir.path(), 60, Arc::new(clock)).expect("open").with_acp_key(key.clone());
        let before = put(&store, "ACP123");
        let held = put(&store, "ACP123");
        let exculpatory = put(&store, "ACP123");
        let other = put(&store, "XYZ789");
        for (hold_id, kind, read) in
            [(1, HoldKind::ActiveInvestigation, held), (2, HoldKind::Exculpatory, exculpatory)]
        {
            let hold = HoldRecord { kind, case_number: "C".into(), read_ids: vec![read] };
            store.place_hold(hold_id, &hold).expect("hold");
        }
        let fp = acp::key_fingerprint(&key);
        let add = |plate: &str, probe: bool| {
            let probes = if probe { vec![acp::acp_probe(&key, plate)] } else { vec![] };
            store.acp_add(fp, &[acp::acp_digest(&key, plate)], &probes).expect("acp")
        };
        // Another agency's key, or none: refused, and nothing is destroyed.
        let other_key = acp::key_fingerprint(b"another agency");
        let refused = store.acp_add(other_key, &[acp::acp_digest(&key, "ACP123")], &[]);
        assert!(refused.expect("store").expect_err("refused").contains("not the server's"));
        assert_eq!(store.acp_state(), (Some(fp), 0), "nothing added");
        let destroyed = add("ACP123", true).expect("applied");
        assert_eq!(destroyed, 2, "only active criminal investigative data stays (subd. 3(c))");
        assert!(store.read(before).expect("read").is_none());
        assert!(store.read(exculpatory).expect("read").is_none());
        assert!(
            store.read(held).expect("read").is_some(),
            "an investigation hold defers destruction"
        );
        assert!(store.read(other).expect("read").is_some());
        assert_eq!(
            store.insert_read(sample_read("ACP123"), pics()).expect("insert"),
            Inserted::DestroyedAcp
        );
        assert!(
            store
                .pending(100, &|_| false)
                .expect("pending")
                .iter()
                .all(|r| !matches!(r, AckRef::Read(id) if *id == before))
        );
        // The list on disk holds digests, never plates: a participant who was never read leaves
        // no plaintext anywhere in the store.
        add("SECRET9", false).expect("applied");
        assert_eq!(store.acp_state(), (Some(fp), 2));
        drop(store);
        for entry in std::fs::read_dir(dir.path()).expect("dir").flatten() {
            if let Ok(bytes) = std::fs::read(entry.path()) {
                assert!(
                    !bytes.windows(7).any(|w| w == b"SECRET9"),
                    "plaintext in {:?}",
                    entry.path()
                );
            }
        }
        let counts: Vec<_> = {
            let store = reopen(dir.path(), 60, Arc::new(ManualClock::new(1_000 * DAY_MS)));
            store.destruction_counts().expect("counts")
        };
        assert!(counts.contains(&(1000, Destruction::AcpExisting, 2)));
        assert!(counts.contains(&(1000, Destruction::AcpAtCollection, 1)));
    }

    /// A trailer without a key cannot recognise an ACP participant's plate: it refuses the
    /// addition rather than answer "applied".
    #[test]
    fn an_acp_addition_without_a_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 60, Arc::new(ManualClock::new(DAY_MS))).expect("open");
        let fp = acp::key_fingerprint(b"k");
        let r = store.acp_add(fp, &[[1; 32]], &[]).expect("store");
        assert!(r.expect_err("refused").contains("no ACP key"));
        assert_eq!(store.acp_state(), (None, 0));
    }

    #[test]
    fn outbox_orders_by_priority_and_acks_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let store = Store::open(dir.path(), 60, Arc::new(clock)).expect("open");
        let a = put(&store, "AAA111");
        let b =
            match store.insert_read(sample_read("BBB222"), NewPictures::default()).expect("insert")
            {
                Inserted::Stored(id) => id,
                Inserted::DestroyedAcp => panic!("not ACP"),
            };
        let pending = store.pending(10, &|_| false).expect("pending");
        assert_eq!(
            pending,
            vec![
                AckRef::Read(a),
                AckRef::Read(b),
                AckRef::Picture(a, PictureKind::PlateCrop),
                AckRef::Picture(a, PictureKind::Context)
            ]
        );
        store.ack(&[AckRef::Read(a)]).expect("ack");
        assert!(store.read(a).expect("read").expect("kept").synced);
        assert_eq!(store.pending(10, &|_| false).expect("pending").len(), 3);
    }

    /// Health reports when the oldest read still waiting was collected: a day-old backlog shows
    /// its first day until that day is acknowledged.
    #[test]
    fn backlog_oldest_is_the_first_unacknowledged_collection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let store = Store::open(dir.path(), 60, Arc::new(clock.clone())).expect("open");
        assert_eq!(store.backlog_oldest(), None);
        let a = put(&store, "AAA111");
        clock.advance(DAY_MS + 5);
        let b = put(&store, "BBB222");
        assert_eq!(store.backlog_oldest(), Some(1_000 * DAY_MS));
        let pics = [PictureKind::PlateCrop, PictureKind::Context];
        store.ack(&[AckRef::Read(a)]).expect("ack");
        assert_eq!(store.backlog_oldest(), Some(1_000 * DAY_MS), "its pictures still wait");
        store.ack(&pics.map(|k| AckRef::Picture(a, k))).expect("ack");
        assert_eq!(store.backlog_oldest(), Some(1_001 * DAY_MS + 5));
        store.ack(&[AckRef::Read(b)]).expect("ack");
        store.ack(&pics.map(|k| AckRef::Picture(b, k))).expect("ack");
        assert_eq!(store.backlog_oldest(), None);
    }

    /// Which pictures are queued follows the mode; a picture not queued is there for a request.
    #[test]
    fn picture_sync_modes_queue_what_they_say() {
        let pending_pictures = |mode| {
            let dir = tempfile::tempdir().expect("tempdir");
            let clock = Arc::new(ManualClock::new(DAY_MS));
            let store = Store::open(dir.path(), 60, clock).expect("open").with_picture_sync(mode);
            let id = put(&store, "AAA111");
            let kinds: Vec<PictureKind> = store
                .pending(10, &|_| false)
                .expect("pending")
                .into_iter()
                .filter_map(|r| match r {
                    AckRef::Picture(_, k) => Some(k),
                    _ => None,
                })
                .collect();
            assert!(store.queue_picture(id, PictureKind::Context).expect("request"));
            assert!(store.is_requested(&AckRef::Picture(id, PictureKind::Context)));
            kinds
        };
        use PictureKind::{Context, PlateCrop};
        assert_eq!(pending_pictures(PictureSync::All), vec![PlateCrop, Context]);
        assert_eq!(pending_pictures(PictureSync::PlateCrops), vec![PlateCrop]);
        assert_eq!(pending_pictures(PictureSync::OnRequest), vec![]);
    }

    /// A downlink's answer is kept and queued; hotlist chunks are staged until complete, in
    /// order whatever order they came in, and dropped with older versions.
    #[test]
    fn downlink_answers_and_hotlist_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 60, Arc::new(ManualClock::new(DAY_MS))).expect("open");
        let ack = DownlinkAck {
            trailer_id: "t1".into(),
            downlink_id: 9,
            applied: true,
            reason: Some("done".into()),
        };
        store.record_downlink_answer(&ack).expect("answer");
        assert_eq!(store.downlink_answer(9).expect("get"), Some(ack.clone()));
        assert_eq!(
            store.message_for("t1", &AckRef::Downlink(9)).expect("message"),
            Some(Message::DownlinkAck(ack))
        );
        store.ack(&[AckRef::Downlink(9)]).expect("ack");
        assert!(store.pending(10, &|_| false).expect("pending").is_empty());
        store.requeue_downlink_answer(9).expect("requeue");
        assert_eq!(store.pending(10, &|_| false).expect("pending"), vec![AckRef::Downlink(9)]);

        assert_eq!(store.stage_chunk("l", 2, 1, 3, b"bb").expect("stage"), None);
        assert_eq!(store.stage_chunk("l", 2, 2, 3, b"cc").expect("stage"), None);
        assert_eq!(store.stage_chunk("l", 1, 0, 2, b"old").expect("stage"), None);
        let whole = store.stage_chunk("l", 2, 0, 3, b"aa").expect("stage");
        assert_eq!(whole.as_deref(), Some(&b"aabbcc"[..]));
        store.drop_chunks("l", 2).expect("drop");
        assert_eq!(store.chunks.len(), 0, "version 2 and the older version 1 are gone");
    }

    /// A period closed while its opening waits for the server's ack: that ack does not take the
    /// closing off the outbox; the closed period is sent, and its own ack does.
    #[test]
    fn a_record_changed_in_flight_is_sent_again_after_the_ack() {
        use trailer_wire::{FixQuality, Position, UsageReason};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 60, Arc::new(ManualClock::new(DAY_MS))).expect("open");
        let mut period = ActiveUse {
            trailer_id: "t1".into(),
            period_id: store.next_id().expect("id"),
            start: DAY_MS,
            end: None,
            start_reason: UsageReason::DaemonStart,
            end_reason: None,
            position: Position::from_degrees(45.0, -93.0, FixQuality::Fix3d),
            lists_compared: vec![],
        };
        let r = AckRef::ActiveUse(period.period_id);
        store.record_usage(&period).expect("open");
        assert_eq!(store.pending(10, &|_| false).expect("pending"), [r]);
        // The opening is in flight; the period closes.
        (period.end, period.end_reason) = (Some(DAY_MS + 5), Some(UsageReason::DaemonStop));
        store.record_usage(&period).expect("close");
        store.ack(&[r]).expect("ack of the opening");
        assert_eq!(store.pending(10, &|_| false).expect("pending"), [r], "the closing waits");
        match store.message_for("t1", &r).expect("message") {
            Some(Message::ActiveUse(u)) => assert_eq!(u.end, Some(DAY_MS + 5)),
            other => panic!("the closed period: {other:?}"),
        }
        store.ack(&[r]).expect("ack of the closing");
        assert!(store.pending(10, &|_| false).expect("pending").is_empty());
    }

    #[test]
    fn deployment_events_are_kept_and_synced_until_acknowledged() {
        use trailer_wire::{DeploymentEventKind, FixQuality, Position};
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let event = |id, kind| DeploymentEvent {
            trailer_id: "t1".into(),
            event_id: id,
            kind,
            time: 1_000 * DAY_MS,
            position: Position::from_degrees(45.01, -93.27, FixQuality::Fix3d),
            note: "from the GPS fix".into(),
        };
        {
            let store = Store::open(dir.path(), 60, Arc::new(clock.clone())).expect("open");
            store.record_deployment(&event(7, DeploymentEventKind::End)).expect("record");
            store.record_deployment(&event(9, DeploymentEventKind::Start)).expect("record");
        }
        let store = reopen(dir.path(), 60, Arc::new(clock));
        let kept: Vec<_> =
            store.deployment_events().expect("events").into_iter().map(|e| e.kind).collect();
        assert_eq!(kept, [DeploymentEventKind::End, DeploymentEventKind::Start]);
        let pending = store.pending(10, &|_| false).expect("pending");
        assert_eq!(pending, vec![AckRef::Deployment(7), AckRef::Deployment(9)]);
        match store.message_for("t1", &AckRef::Deployment(9)).expect("message") {
            Some(Message::Deployment(e)) => assert_eq!(e, event(9, DeploymentEventKind::Start)),
            other => panic!("a deployment message: {other:?}"),
        }
        store.ack(&[AckRef::Deployment(7)]).expect("ack");
        assert_eq!(store.pending(10, &|_| false).expect("pending"), vec![AckRef::Deployment(9)]);
        assert_eq!(store.deployment_events().expect("events").len(), 2, "kept after sync");
    }

    #[test]
    fn reads_survive_reopen_and_retention_destroys_old_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let old;
        {
            let store = Store::open(dir.path(), 60, Arc::new(clock.clone())).expect("open");
            old = put(&store, "OLD1");
        }
        let store = reopen(dir.path(), 60, Arc::new(clock.clone()));
        assert_eq!(store.read(old).expect("read").expect("survived").meta.plate, "OLD1");
        clock.advance(30 * DAY_MS);
        let young = put(&store, "NEW1");
        clock.advance(30 * DAY_MS + 1);
        assert_eq!(store.purge().expect("purge"), 1);
        assert!(store.read(old).expect("read").is_none());
        assert!(store.picture(old, PictureKind::Context).expect("pic").is_none());
        // The old day's picture segment is gone from the disk, the young day's stays.
        assert!(!dir.path().join("pictures/day-00001000.seg").exists());
        assert!(dir.path().join("pictures/day-00001030.seg").exists());
        assert!(store.pending(10, &|_| false).expect("pending").iter().all(|r| match r {
            AckRef::Read(id) | AckRef::Picture(id, _) => *id == young,
            _ => true,
        }));
        assert!(store.read(young).expect("read").is_some());
    }

    #[test]
    fn whole_days_go_at_once_and_an_interrupted_drop_is_counted_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let store = Store::open(dir.path(), 2, Arc::new(clock.clone())).expect("open");
        let mut ids = Vec::new();
        for day in 0..4 {
            ids.push(put(&store, &format!("DAY{day}A")));
            ids.push(put(&store, &format!("DAY{day}B")));
            clock.advance(DAY_MS);
        }
        // Now day 1004 00:00: the limit is day 1002 00:00, so day 1002's reads are just young
        // enough to stay.
        // As if a purge had committed day 1000's count and then lost power before the drop.
        store.destroyed.insert(1000u32.to_be_bytes(), &2u64.to_be_bytes()).expect("marker");
        store.count_destroyed(Destruction::Retention, 2).expect("count");
        assert_eq!(store.purge().expect("purge"), 4, "days 1000 and 1001 whole");
        assert_eq!(store.days.all().iter().map(|d| d.0).collect::<Vec<_>>(), vec![1002, 1003]);
        assert!(!dir.path().join("pictures/day-00001001.seg").exists());
        assert!(ids[..4].iter().all(|id| store.read(*id).expect("read").is_none()));
        assert!(ids[4..].iter().all(|id| store.read(*id).expect("read").is_some()));
        let counted: u64 = store.destruction_counts().expect("counts").iter().map(|c| c.2).sum();
        assert_eq!(counted, 4, "day 1000 was counted before the interruption, not again");
        assert!(store.destroyed.get(1000u32.to_be_bytes()).expect("get").is_none(), "marker gone");
        let pending = store.pending(100, &|_| false).expect("pending");
        assert_eq!(pending.len(), 3 * 4, "the young days' reads, crops and pictures");
        assert_eq!(pending[0], AckRef::Read(ids[4]), "oldest day first");
    }

    #[test]
    fn an_older_store_format_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = sled::open(dir.path()).expect("sled");
            db.open_tree("reads").expect("tree").insert(b"k", b"v").expect("insert");
            db.flush().expect("flush");
        }
        let err = Store::open(dir.path(), 60, Arc::new(ManualClock::new(0))).expect_err("refused");
        assert!(err.to_string().contains("older store format"), "{err}");
    }

    #[test]
    fn hotlists_survive_reopen_and_a_damaged_file_only_disables_its_list() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(1_000 * DAY_MS));
        {
            let store = Store::open(dir.path(), 60, clock.clone()).expect("open");
            let a = hotlist::parse_csv("ABC123,MN,stolen vehicle,MN BCA\n", true).expect("csv");
            let b = hotlist::parse_csv("XYZ789,MN,warrant,Agency\n", true).expect("csv");
            store.import_hotlist("state", 1, "MN BCA", &a).expect("import");
            store.import_hotlist("agency", 4, "Agency", &b).expect("import");
            store.import_hotlist("agency", 5, "Agency", &b).expect("import");
        }
        let lists = dir.path().join("hotlists");
        std::fs::write(lists.join(".leftover.tmp"), b"half a file").expect("leftover");
        let store = reopen(dir.path(), 60, clock.clone());
        assert_eq!(store.match_plate("ABC123", false).expect("match").len(), 1);
        assert_eq!(store.match_plate("XYZ789", false).expect("match")[0].0.version, 5);
        let mut files: Vec<_> = std::fs::read_dir(&lists)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["agency.00000000000000000005.hl", "state.00000000000000000001.hl"]);
        drop(store);
        let state = lists.join("state.00000000000000000001.hl");
        let mut bytes = std::fs::read(&state).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&state, bytes).expect("damage");
        let store =
            Store::open(dir.path(), 60, clock).expect("a damaged list is not a failed start");
        assert!(store.match_plate("ABC123", false).expect("match").is_empty());
        assert_eq!(store.hotlists().expect("lists").len(), 1, "only the intact list is compared");
        assert_eq!(store.hotlist_meta("state").expect("meta").map(|m| m.version), Some(1));
        // The server resends it as a new version.
        let a = hotlist::parse_csv("ABC123,MN,stolen vehicle,MN BCA\n", true).expect("csv");
        store.import_hotlist("state", 2, "MN BCA", &a).expect("import");
        assert_eq!(store.match_plate("ABC123", false).expect("match").len(), 1);
    }

    #[test]
    fn a_picture_whose_day_was_just_unlinked_reads_as_destroyed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Store::open(dir.path(), 60, Arc::new(ManualClock::new(1_000 * DAY_MS))).expect("open");
        let id = put(&store, "RACE01");
        // As if retention removed the segment between the reference lookup and the read.
        std::fs::remove_file(dir.path().join("pictures/day-00001000.seg")).expect("unlink");
        assert_eq!(store.picture(id, PictureKind::Context).expect("no error"), None);
        let msg = store.message_for("t1", &AckRef::Picture(id, PictureKind::Context));
        assert!(msg.expect("no error").is_none(), "the sync link skips it");
    }
}
