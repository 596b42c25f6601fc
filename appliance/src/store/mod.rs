//! The trailer's store, on sled. It is also the sync outbox: nothing leaves it because it was
//! sent, only because the server acknowledged it, or because the law says it must be destroyed.
//!
//! # Trees and keys
//! | tree       | key                                   | value                               |
//! |------------|---------------------------------------|-------------------------------------|
//! | `reads`    | read id (u64 BE)                      | postcard [`StoredRead`]             |
//! | `pictures` | read id (u64 BE) + kind (u8)          | postcard [`pictures::PictureRef`]   |
//! | `picture_days` | day (u32 BE)                      | live pictures of that day (u64 BE)  |
//!
//! Picture bytes live in per-day segment files under `pictures/` ([`pictures`] says why).
//! | `usage`    | period id (u64 BE)                    | postcard `ActiveUse`                |
//! | `outbox`   | priority (u8) + item tag (u8) + id (u64 BE) + sub (u8) | empty          |
//! | `holds`    | hold id (u64 BE)                      | postcard [`HoldRecord`]             |
//! | `held`     | read id (u64 BE) + hold id (u64 BE)   | empty (index: which reads are held) |
//! | `acp`      | HMAC-SHA-256 digest (32 bytes)        | empty                               |
//! | `destroyed`| day (u32 BE, days since epoch) + reason (u8) | count (u64 BE)               |
//! | `hotlist_meta` | list name                         | postcard [`hotlist::ListMeta`]      |
//! | `hotlist`  | list name + 0x00 + version (u64 BE) + plate | postcard [`hotlist::HotEntry`] |
//! | `alerts`   | alert id (u64 BE)                     | postcard `Alert`                    |
//!
//! Ids come from `Db::generate_id`, which is unique and increasing across restarts, so big-endian
//! keys iterate in collection order. The outbox key starts with the priority, so one ordered scan
//! yields alerts first, then activity records, read metadata, plate crops, context pictures.
//!
//! # Invariants
//! - A read, its pictures and its outbox entries are written in one transaction and flushed
//!   before [`Store::insert_read`] returns: an acknowledged read survives a power cut whole.
//! - Retention: [`Store::purge`] destroys every read collected more than `retention_days` ago,
//!   with its pictures and outbox entries, synced or not (the law's limit wins over the backlog),
//!   unless a hold names it (active investigation, exculpatory request).
//! - ACP: a read whose plate digest is on the ACP list is never written ([`Store::insert_read`]
//!   refuses it and counts it); adding digests destroys existing matching reads unless held.
//! - Destruction is counted per day and reason in `destroyed`, never logged with plate text.
pub mod acp;
pub mod hotlist;
pub mod pictures;

use crate::clock::{DAY_MS, SharedClock, UnixMs};
use hotlist::{HotEntry, HotlistError, ListMeta};
use pictures::{PictureLog, PictureRef};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;
use trailer_wire::{
    AckRef, ActiveUse, Alert, HoldKind, Message, Picture, PictureKind, PictureSet, ReadMeta,
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

/// Why reads were destroyed (counted per day for the audit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destruction {
    /// Past the retention age.
    Retention = 1,
    /// An ACP participant's plate, destroyed at collection (never written).
    AcpAtCollection = 2,
    /// An existing read destroyed when its plate joined the ACP list.
    AcpExisting = 3,
}

impl Destruction {
    fn from_byte(b: u8) -> Option<Destruction> {
        Some(match b {
            1 => Destruction::Retention,
            2 => Destruction::AcpAtCollection,
            3 => Destruction::AcpExisting,
            _ => return None,
        })
    }
}

/// What happened to a read handed to [`Store::insert_read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored durably under this id.
    Stored(u64),
    /// An ACP participant's plate: destroyed at collection, only counted.
    DestroyedAcp,
}

/// Key in the default tree, present only between a clean shutdown and the next open.
const CLEAN_MARK: &[u8] = b"clean-shutdown";

/// Outbox priorities: lower goes first.
fn priority(r: &AckRef) -> u8 {
    match r {
        AckRef::Alert(_) => 0,
        AckRef::ActiveUse(_) | AckRef::Deployment(_) | AckRef::Downlink(_) => 1,
        AckRef::Read(_) => 2,
        AckRef::Picture(_, PictureKind::PlateCrop) => 3,
        AckRef::Picture(_, PictureKind::Context) => 4,
    }
}

fn kind_byte(k: PictureKind) -> u8 {
    match k {
        PictureKind::PlateCrop => 0,
        PictureKind::Context => 1,
    }
}

fn outbox_key(r: &AckRef) -> [u8; 11] {
    let (tag, id, sub) = match *r {
        AckRef::Read(id) => (1, id, 0),
        AckRef::Picture(id, k) => (2, id, kind_byte(k)),
        AckRef::Alert(id) => (3, id, 0),
        AckRef::ActiveUse(id) => (4, id, 0),
        AckRef::Deployment(id) => (5, id, 0),
        AckRef::Downlink(id) => (6, id, 0),
    };
    let mut k = [0u8; 11];
    k[0] = priority(r);
    k[1] = tag;
    k[2..10].copy_from_slice(&id.to_be_bytes());
    k[10] = sub;
    k
}

fn parse_outbox_key(k: &[u8]) -> Option<AckRef> {
    if k.len() != 11 {
        return None;
    }
    let id = u64::from_be_bytes(k[2..10].try_into().ok()?);
    Some(match (k[1], k[10]) {
        (1, _) => AckRef::Read(id),
        (2, 0) => AckRef::Picture(id, PictureKind::PlateCrop),
        (2, 1) => AckRef::Picture(id, PictureKind::Context),
        (3, _) => AckRef::Alert(id),
        (4, _) => AckRef::ActiveUse(id),
        (5, _) => AckRef::Deployment(id),
        (6, _) => AckRef::Downlink(id),
        _ => return None,
    })
}

fn held_key(read_id: u64, hold_id: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&read_id.to_be_bytes());
    k[8..].copy_from_slice(&hold_id.to_be_bytes());
    k
}

fn picture_key(id: u64, k: PictureKind) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[..8].copy_from_slice(&id.to_be_bytes());
    key[8] = kind_byte(k);
    key
}

/// Keeps the retention duty running; dropping it stops the duty and waits for it.
#[derive(Debug)]
pub struct RetentionGuard {
    stop: Option<std::sync::mpsc::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for RetentionGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What [`Store::check`] found and repaired.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CheckReport {
    pub reads: u64,
    pub quarantined: u64,
    pub dangling_outbox: u64,
    pub orphan_pictures: u64,
    /// The last shutdown was clean, so only counts were taken.
    pub skipped: bool,
}

impl CheckReport {
    pub fn clean(&self) -> bool {
        self.quarantined == 0 && self.dangling_outbox == 0 && self.orphan_pictures == 0
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
    reads: sled::Tree,
    pictures: sled::Tree,
    picture_days: sled::Tree,
    picture_log: Arc<PictureLog>,
    usage: sled::Tree,
    outbox: sled::Tree,
    holds: sled::Tree,
    held: sled::Tree,
    acp: sled::Tree,
    destroyed: sled::Tree,
    hotlist_meta: sled::Tree,
    hotlist: sled::Tree,
    /// The lists' current versions, read once: matching runs for every read.
    hotlist_cache: Arc<std::sync::RwLock<Option<Vec<ListMeta>>>>,
    alerts: sled::Tree,
    clock: SharedClock,
    retention_ms: i64,
    /// The agency key the ACP digests are made with; `None` disables ACP matching.
    acp_key: Option<Vec<u8>>,
    /// The previous run ended with [`Store::mark_clean`]: the full check can be skipped.
    was_clean: bool,
    quota: Quota,
    /// Raised when unsynced data alone fills the quota (health shows "storage full").
    full: Arc<std::sync::atomic::AtomicBool>,
}

/// How much of the disk the store may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    /// Absolute limit in bytes (0: none).
    pub max_bytes: u64,
    /// At most this share of the filesystem's size.
    pub max_fraction: f64,
    /// Always leave this much free on the filesystem.
    pub min_free_bytes: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Quota { max_bytes: 0, max_fraction: 0.8, min_free_bytes: 512 << 20 }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("retention_ms", &self.retention_ms).finish_non_exhaustive()
    }
}

impl Store {
    pub fn open(dir: &Path, retention_days: u32, clock: SharedClock) -> Result<Store, StoreError> {
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
        // The clean-shutdown marker is consumed at open: a crash from now on leaves none.
        let was_clean = db.remove(CLEAN_MARK)?.is_some();
        db.flush()?;
        let store = Store {
            was_clean,
            reads: db.open_tree("reads")?,
            pictures: db.open_tree("pictures")?,
            picture_days: db.open_tree("picture_days")?,
            picture_log: Arc::new(
                PictureLog::open(&dir.join("pictures")).map_err(|e| open_err(e.to_string()))?,
            ),
            usage: db.open_tree("usage")?,
            outbox: db.open_tree("outbox")?,
            holds: db.open_tree("holds")?,
            held: db.open_tree("held")?,
            acp: db.open_tree("acp")?,
            destroyed: db.open_tree("destroyed")?,
            hotlist_meta: db.open_tree("hotlist_meta")?,
            hotlist: db.open_tree("hotlist")?,
            hotlist_cache: Arc::new(std::sync::RwLock::new(None)),
            alerts: db.open_tree("alerts")?,
            db,
            clock,
            retention_ms: i64::from(retention_days) * DAY_MS,
            acp_key: None,
            quota: Quota::default(),
            full: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        Ok(store)
    }

    /// Enables ACP matching with the agency's key.
    pub fn with_acp_key(mut self, key: Vec<u8>) -> Store {
        self.acp_key = Some(key);
        self
    }

    pub fn with_quota(mut self, quota: Quota) -> Store {
        self.quota = quota;
        self
    }

    /// Whether unsynced data alone fills the quota (capture must slow or stop).
    pub fn storage_full(&self) -> bool {
        self.full.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The byte limit now: the configured limit, the share of the filesystem, and what keeps
    /// `min_free_bytes` free, whichever is smallest.
    pub fn limit_bytes(&self, used: u64) -> Result<u64, StoreError> {
        let st = nix::sys::statvfs::statvfs(self.picture_log.dir())
            .map_err(|e| StoreError::Pictures(std::io::Error::from(e)))?;
        let frag = st.fragment_size();
        let total = st.blocks() * frag;
        let free = st.blocks_available() * frag;
        let mut limit = (total as f64 * self.quota.max_fraction) as u64;
        if self.quota.max_bytes > 0 {
            limit = limit.min(self.quota.max_bytes);
        }
        Ok(limit.min((used + free).saturating_sub(self.quota.min_free_bytes)))
    }

    /// Makes room for `incoming` bytes by dropping, oldest first: context pictures already
    /// synced, then plate crops already synced, then synced reads. Never anything unsynced.
    pub fn make_room(&self, incoming: u64) -> Result<(), StoreError> {
        let mut used = self.disk_bytes()?;
        let limit = self.limit_bytes(used)?;
        if used + incoming <= limit {
            self.full.store(false, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        let mut dropped = 0u64;
        'stages: for stage in 0..3 {
            for kv in self.reads.iter() {
                let (k, v) = kv?;
                let Some(id) = k.as_ref().try_into().ok().map(u64::from_be_bytes) else { continue };
                let Ok(read) = postcard::from_bytes::<StoredRead>(&v) else { continue };
                let done = |r| !self.outbox.contains_key(outbox_key(&r)).unwrap_or(true);
                let freed = match stage {
                    0 if done(AckRef::Picture(id, PictureKind::Context)) => {
                        self.drop_picture(id, PictureKind::Context)?
                    }
                    1 if done(AckRef::Picture(id, PictureKind::PlateCrop)) => {
                        self.drop_picture(id, PictureKind::PlateCrop)?
                    }
                    // A synced read whose pictures are gone (or were synced and dropped above).
                    2 if read.synced
                        && !self.is_held(id)?
                        && self.picture_ref(id, PictureKind::Context)?.is_none()
                        && self.picture_ref(id, PictureKind::PlateCrop)?.is_none() =>
                    {
                        self.destroy_read(id)?;
                        true
                    }
                    _ => false,
                };
                if freed {
                    dropped += 1;
                    if dropped.is_multiple_of(16) {
                        used = self.disk_bytes()?;
                        if used + incoming <= limit {
                            break 'stages;
                        }
                    }
                }
            }
            used = self.disk_bytes()?;
            if used + incoming <= limit {
                break;
            }
        }
        if dropped > 0 {
            self.db.flush()?;
            tracing::info!(dropped, used, limit, "quota: dropped synced data to make room");
        }
        if used + incoming > limit {
            self.full.store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(StoreError::Full { used, limit });
        }
        self.full.store(false, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    pub fn now(&self) -> UnixMs {
        self.clock.now_ms()
    }

    /// A new id, unique and increasing across restarts.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()? + 1)
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

    /// Stores reads in one group commit: pictures appended and synced, then one sled batch
    /// of transactions and one flush. Durable when this returns.
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
        let day = now.div_euclid(DAY_MS) as u32;
        let mut out = Vec::with_capacity(reads.len());
        let mut staged = Vec::with_capacity(reads.len());
        let mut acp_destroyed = 0;
        for (mut meta, pics) in reads {
            if self.is_acp(&meta.plate)? {
                acp_destroyed += 1;
                out.push(Inserted::DestroyedAcp);
                continue;
            }
            let id = self.next_id()?;
            meta.read_id = id;
            meta.pictures = PictureSet {
                plate_crop: pics.plate_crop.is_some(),
                context: pics.context.is_some(),
            };
            let mut refs = Vec::new();
            for (kind, pic) in
                [(PictureKind::PlateCrop, &pics.plate_crop), (PictureKind::Context, &pics.context)]
            {
                if let Some(jpeg) = pic {
                    refs.push((kind, self.picture_log.append(day, jpeg)?));
                }
            }
            let record = StoredRead { meta, collected: now, synced: false };
            let bytes = postcard::to_allocvec(&record).map_err(|e| StoreError::Corrupt {
                tree: "reads",
                key: id.to_string(),
                reason: e.to_string(),
            })?;
            staged.push((id, bytes, refs));
            out.push(Inserted::Stored(id));
        }
        if !staged.is_empty() {
            // The pictures are durable before anything points to them.
            self.picture_log.sync(day)?;
            let added: u64 = staged.iter().map(|s| s.2.len() as u64).sum();
            (&self.reads, &self.pictures, &self.outbox, &self.picture_days).transaction(
                |(r, p, o, d)| {
                    for (id, bytes, refs) in &staged {
                        r.insert(&id.to_be_bytes(), bytes.as_slice())?;
                        o.insert(&outbox_key(&AckRef::Read(*id)), &[])?;
                        for (kind, pref) in refs {
                            let v = postcard::to_allocvec(pref).unwrap_or_default();
                            p.insert(&picture_key(*id, *kind), v)?;
                            o.insert(&outbox_key(&AckRef::Picture(*id, *kind)), &[])?;
                        }
                    }
                    let live = d
                        .get(day.to_be_bytes())?
                        .and_then(|v| v.as_ref().try_into().ok())
                        .map(u64::from_be_bytes)
                        .unwrap_or(0);
                    d.insert(&day.to_be_bytes(), &(live + added).to_be_bytes())?;
                    Ok::<_, ConflictableTransactionError<()>>(())
                },
            )?;
        }
        if acp_destroyed > 0 {
            self.count_destroyed(Destruction::AcpAtCollection, acp_destroyed)?;
        }
        self.db.flush()?;
        Ok(out)
    }

    /// Records an active-use period (opened or closed) and queues it for sync.
    pub fn record_usage(&self, period: &ActiveUse) -> Result<(), StoreError> {
        let bytes = postcard::to_allocvec(period).map_err(|e| StoreError::Corrupt {
            tree: "usage",
            key: period.period_id.to_string(),
            reason: e.to_string(),
        })?;
        let id = period.period_id;
        (&self.usage, &self.outbox).transaction(|(u, o)| {
            u.insert(&id.to_be_bytes(), bytes.as_slice())?;
            o.insert(&outbox_key(&AckRef::ActiveUse(id)), &[])?;
            Ok::<_, ConflictableTransactionError<()>>(())
        })?;
        self.db.flush()?;
        Ok(())
    }

    pub fn read(&self, id: u64) -> Result<Option<StoredRead>, StoreError> {
        match self.reads.get(id.to_be_bytes())? {
            None => Ok(None),
            Some(v) => postcard::from_bytes(&v).map(Some).map_err(|e| StoreError::Corrupt {
                tree: "reads",
                key: id.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    fn picture_ref(&self, id: u64, kind: PictureKind) -> Result<Option<PictureRef>, StoreError> {
        match self.pictures.get(picture_key(id, kind))? {
            None => Ok(None),
            Some(v) => postcard::from_bytes(&v).map(Some).map_err(|e| StoreError::Corrupt {
                tree: "pictures",
                key: format!("{id}/{kind:?}"),
                reason: e.to_string(),
            }),
        }
    }

    pub fn picture(&self, id: u64, kind: PictureKind) -> Result<Option<Vec<u8>>, StoreError> {
        match self.picture_ref(id, kind)? {
            None => Ok(None),
            Some(r) => Ok(Some(self.picture_log.read(&r)?)),
        }
    }

    /// Removes one picture: its reference and outbox entry, and its bytes from the disk.
    fn drop_picture(&self, id: u64, kind: PictureKind) -> Result<bool, StoreError> {
        match self.unref_picture(id, kind)? {
            Some(pref) => {
                self.picture_log.punch(&pref)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Removes a picture's reference and outbox entry; the caller frees its bytes.
    fn unref_picture(&self, id: u64, kind: PictureKind) -> Result<Option<PictureRef>, StoreError> {
        let Some(pref) = self.picture_ref(id, kind)? else { return Ok(None) };
        (&self.pictures, &self.outbox, &self.picture_days).transaction(|(p, o, d)| {
            p.remove(&picture_key(id, kind))?;
            o.remove(&outbox_key(&AckRef::Picture(id, kind)))?;
            let key = pref.day.to_be_bytes();
            let live = d
                .get(key)?
                .and_then(|v| v.as_ref().try_into().ok())
                .map(u64::from_be_bytes)
                .unwrap_or(1);
            d.insert(&key, &live.saturating_sub(1).to_be_bytes())?;
            Ok::<_, ConflictableTransactionError<()>>(())
        })?;
        Ok(Some(pref))
    }

    /// Unlinks the segment of every past day that has no live picture left.
    fn remove_empty_days(&self) -> Result<(), StoreError> {
        let today = self.now().div_euclid(DAY_MS) as u32;
        for day in self.picture_log.days()? {
            if day >= today {
                continue;
            }
            let live = self
                .picture_days
                .get(day.to_be_bytes())?
                .and_then(|v| v.as_ref().try_into().ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if live == 0 {
                self.picture_log.remove_day(day)?;
                self.picture_days.remove(day.to_be_bytes())?;
            }
        }
        Ok(())
    }

    /// Bytes the store occupies on disk: sled's files and the picture segments.
    pub fn disk_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()? + self.picture_log.disk_bytes()?)
    }

    /// All stored reads, oldest first.
    pub fn reads(&self) -> Result<Vec<StoredRead>, StoreError> {
        let mut out = Vec::new();
        for kv in self.reads.iter() {
            let (k, v) = kv?;
            out.push(postcard::from_bytes(&v).map_err(|e| StoreError::Corrupt {
                tree: "reads",
                key: hex_key(&k),
                reason: e.to_string(),
            })?);
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
        for kv in self.outbox.iter() {
            let (k, _) = kv?;
            match parse_outbox_key(&k) {
                Some(r) if !skip(&r) => out.push(r),
                Some(_) => {}
                None => {
                    tracing::warn!(key = %hex_key(&k), "dropping unparseable outbox key");
                    self.outbox.remove(k)?;
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Whether anything waits for the server (O(1), unlike [`Store::backlog_len`]).
    pub fn backlog_empty(&self) -> bool {
        self.outbox.is_empty()
    }

    /// Items waiting for the server (counts the whole outbox).
    pub fn backlog_len(&self) -> usize {
        self.outbox.len()
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
                Some(v) => Some(Message::ActiveUse(postcard::from_bytes(&v).map_err(|e| {
                    StoreError::Corrupt {
                        tree: "usage",
                        key: id.to_string(),
                        reason: e.to_string(),
                    }
                })?)),
                None => None,
            },
            AckRef::Alert(id) => match self.alerts.get(id.to_be_bytes())? {
                Some(v) => Some(Message::Alert(postcard::from_bytes(&v).map_err(|e| {
                    StoreError::Corrupt {
                        tree: "alerts",
                        key: id.to_string(),
                        reason: e.to_string(),
                    }
                })?)),
                None => None,
            },
            AckRef::Deployment(_) | AckRef::Downlink(_) => None,
        };
        if msg.is_none() {
            self.outbox.remove(outbox_key(r))?;
        }
        Ok(msg)
    }

    /// The server committed these items: take them off the outbox. Reads stay (retention
    /// decides when they go), marked synced.
    pub fn ack(&self, refs: &[AckRef]) -> Result<(), StoreError> {
        for r in refs {
            self.outbox.remove(outbox_key(r))?;
            if let AckRef::Read(id) = r
                && let Some(mut s) = self.read(*id)?
                && !s.synced
            {
                s.synced = true;
                if let Ok(bytes) = postcard::to_allocvec(&s) {
                    self.reads.insert(id.to_be_bytes(), bytes)?;
                }
            }
        }
        // Losing an ack in a power cut only means the item is sent again; the server is
        // idempotent. No synchronous flush here.
        Ok(())
    }

    /// Starts the store's retention duty: a purge now and every `every`, on its own thread,
    /// until the returned guard is dropped.
    pub fn spawn_retention(
        &self,
        every: std::time::Duration,
    ) -> Result<RetentionGuard, StoreError> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let store = self.clone();
        let handle = std::thread::Builder::new().name("retention".into()).spawn(move || loop {
            if let Err(e) = store.purge() {
                tracing::error!(error = %e, "retention purge failed; retrying at the next interval");
            }
            match stopped.recv_timeout(every) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                _ => break,
            }
        })?;
        Ok(RetentionGuard { stop: Some(stop), handle: Some(handle) })
    }

    /// Destroys every read collected before the retention limit, with its pictures and outbox
    /// entries, unless a hold names it. Returns how many reads were destroyed.
    pub fn purge(&self) -> Result<usize, StoreError> {
        let cutoff = self.now() - self.retention_ms;
        let any_holds = !self.held.is_empty();
        let mut destroyed = 0;
        // Bytes are freed by unlinking whole days; only pictures on days that stay (because a
        // held read keeps them) are punched out one by one.
        let mut punch_later = Vec::new();
        let mut expired = Vec::with_capacity(1024);
        let mut done = false;
        let mut iter = self.reads.iter();
        while !done {
            expired.clear();
            for kv in iter.by_ref() {
                let (k, v) = kv?;
                let Some(id) = k.as_ref().try_into().ok().map(u64::from_be_bytes) else { continue };
                let collected =
                    postcard::from_bytes::<StoredRead>(&v).map(|s| s.collected).unwrap_or(0);
                if collected >= cutoff {
                    // Keys are in collection order: everything after is younger.
                    done = true;
                    break;
                }
                if any_holds && self.is_held(id)? {
                    continue;
                }
                expired.push(id);
                if expired.len() == 1024 {
                    break;
                }
            }
            if expired.is_empty() {
                break;
            }
            punch_later.extend(self.destroy_batch(&expired)?);
            destroyed += expired.len();
            if expired.len() < 1024 {
                done = true;
            }
        }
        if destroyed > 0 {
            self.count_destroyed(Destruction::Retention, destroyed as u64)?;
            self.db.flush()?;
            tracing::info!(destroyed, "retention: destroyed reads past the retention age");
        }
        self.remove_empty_days()?;
        let remaining: std::collections::HashSet<u32> =
            self.picture_log.days()?.into_iter().collect();
        for r in punch_later.iter().filter(|r| remaining.contains(&r.day)) {
            self.picture_log.punch(r)?;
        }
        Ok(destroyed)
    }

    /// Destroys many reads with one batch per tree (retention's bulk path). Order of the
    /// batches: picture references, outbox entries, reads: a crash between them leaves reads
    /// without pictures or dangling outbox entries, which [`Store::check`] clears; never a
    /// picture that cannot be found and destroyed. Returns the pictures whose bytes remain.
    fn destroy_batch(&self, ids: &[u64]) -> Result<Vec<PictureRef>, StoreError> {
        let (mut pics, mut outbox, mut reads) =
            (sled::Batch::default(), sled::Batch::default(), sled::Batch::default());
        let mut refs = Vec::new();
        let mut per_day: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
        let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else { return Ok(refs) };
        let wanted: std::collections::HashSet<u64> = ids.iter().copied().collect();
        // Sequential range scans instead of a lookup per read: ids are ascending, and so are
        // the picture and outbox keys within each (priority, tag).
        let id_of = |k: &[u8], at: usize| {
            k.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
        };
        for kv in self.pictures.range(
            picture_key(first, PictureKind::PlateCrop)..=picture_key(last, PictureKind::Context),
        ) {
            let (k, v) = kv?;
            if id_of(&k, 0).is_some_and(|id| wanted.contains(&id)) {
                if let Ok(r) = postcard::from_bytes::<PictureRef>(&v) {
                    *per_day.entry(r.day).or_default() += 1;
                    refs.push(r);
                }
                pics.remove(k);
            }
        }
        for probe in [
            AckRef::Read(0),
            AckRef::Picture(0, PictureKind::PlateCrop),
            AckRef::Picture(0, PictureKind::Context),
        ] {
            let lo = outbox_key(&probe);
            let mut from = lo;
            from[2..10].copy_from_slice(&first.to_be_bytes());
            let mut to = lo;
            to[2..10].copy_from_slice(&last.to_be_bytes());
            to[10] = 0xff;
            for kv in self.outbox.range(from..=to) {
                let (k, _) = kv?;
                if id_of(&k, 2).is_some_and(|id| wanted.contains(&id)) {
                    outbox.remove(k);
                }
            }
        }
        for &id in ids {
            reads.remove(&id.to_be_bytes());
        }
        self.pictures.apply_batch(pics)?;
        for (day, n) in per_day {
            self.picture_days.update_and_fetch(day.to_be_bytes(), |old| {
                let live = old.and_then(|v| v.try_into().ok()).map(u64::from_be_bytes).unwrap_or(0);
                Some(live.saturating_sub(n).to_be_bytes().to_vec())
            })?;
        }
        self.outbox.apply_batch(outbox)?;
        self.reads.apply_batch(reads)?;
        Ok(refs)
    }

    fn destroy_read(&self, id: u64) -> Result<(), StoreError> {
        for r in self.destroy_read_keep_bytes(id)? {
            self.picture_log.punch(&r)?;
        }
        Ok(())
    }

    /// Destroys a read and its picture references; returns the pictures whose bytes are still
    /// on disk. Pictures go first: a crash in between leaves a read without pictures (shown as
    /// such), never a picture nobody can find to destroy.
    fn destroy_read_keep_bytes(&self, id: u64) -> Result<Vec<PictureRef>, StoreError> {
        let mut bytes = Vec::new();
        for kind in [PictureKind::PlateCrop, PictureKind::Context] {
            bytes.extend(self.unref_picture(id, kind)?);
        }
        (&self.reads, &self.outbox).transaction(|(r, o)| {
            r.remove(&id.to_be_bytes())?;
            o.remove(&outbox_key(&AckRef::Read(id)))?;
            Ok::<_, ConflictableTransactionError<()>>(())
        })?;
        Ok(bytes)
    }

    fn count_destroyed(&self, why: Destruction, n: u64) -> Result<(), StoreError> {
        let day = (self.now().div_euclid(DAY_MS)) as u32;
        let mut key = [0u8; 5];
        key[..4].copy_from_slice(&day.to_be_bytes());
        key[4] = why as u8;
        self.destroyed.update_and_fetch(key, |old| {
            let prev = old.and_then(|b| b.try_into().ok()).map(u64::from_be_bytes).unwrap_or(0);
            Some((prev + n).to_be_bytes().to_vec())
        })?;
        Ok(())
    }

    /// Destruction counts: (day since epoch, reason, reads).
    pub fn destruction_counts(&self) -> Result<Vec<(u32, Destruction, u64)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.destroyed.iter() {
            let (k, v) = kv?;
            if k.len() != 5 {
                continue;
            }
            let day = u32::from_be_bytes([k[0], k[1], k[2], k[3]]);
            let n = v.as_ref().try_into().ok().map(u64::from_be_bytes).unwrap_or(0);
            if let Some(why) = Destruction::from_byte(k[4]) {
                out.push((day, why, n));
            }
        }
        Ok(out)
    }

    /// Places (or replaces) a hold on reads.
    pub fn place_hold(&self, hold_id: u64, hold: &HoldRecord) -> Result<(), StoreError> {
        let bytes = postcard::to_allocvec(hold).map_err(|e| StoreError::Corrupt {
            tree: "holds",
            key: hold_id.to_string(),
            reason: e.to_string(),
        })?;
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

    /// Releases a hold; its reads fall back under retention (other holds still apply).
    pub fn release_hold(&self, hold_id: u64) -> Result<bool, StoreError> {
        let Some(v) = self.holds.get(hold_id.to_be_bytes())? else { return Ok(false) };
        let hold: HoldRecord = postcard::from_bytes(&v).map_err(|e| StoreError::Corrupt {
            tree: "holds",
            key: hold_id.to_string(),
            reason: e.to_string(),
        })?;
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

    fn is_acp(&self, plate: &str) -> Result<bool, StoreError> {
        match &self.acp_key {
            Some(key) if !self.acp.is_empty() => {
                Ok(self.acp.contains_key(acp::acp_digest(key, plate))?)
            }
            _ => Ok(false),
        }
    }

    /// Adds ACP digests and destroys existing reads of those plates (unless held). Returns how
    /// many reads were destroyed.
    pub fn acp_add(&self, digests: &[[u8; 32]]) -> Result<usize, StoreError> {
        for d in digests {
            self.acp.insert(d, &[])?;
        }
        let mut destroyed = 0;
        if let Some(key) = &self.acp_key {
            let wanted: std::collections::HashSet<[u8; 32]> = digests.iter().copied().collect();
            for kv in self.reads.iter() {
                let (k, v) = kv?;
                let Some(id) = k.as_ref().try_into().ok().map(u64::from_be_bytes) else { continue };
                let Ok(read) = postcard::from_bytes::<StoredRead>(&v) else { continue };
                if wanted.contains(&acp::acp_digest(key, &read.meta.plate)) && !self.is_held(id)? {
                    self.destroy_read(id)?;
                    destroyed += 1;
                }
            }
        }
        if destroyed > 0 {
            self.count_destroyed(Destruction::AcpExisting, destroyed as u64)?;
        }
        self.db.flush()?;
        Ok(destroyed)
    }

    /// Imports a new version of a hotlist, replacing the current one atomically.
    pub fn import_hotlist(
        &self,
        name: &str,
        version: u64,
        source: &str,
        entries: &[HotEntry],
    ) -> Result<ListMeta, StoreError> {
        if !trailer_wire::topic::valid_id(name) {
            return Err(HotlistError::BadName(name.to_string()).into());
        }
        let current = self.hotlist_meta(name)?;
        if let Some(c) = &current
            && c.version >= version
        {
            return Err(
                HotlistError::Stale { name: name.into(), version, current: c.version }.into()
            );
        }
        let prefix = |v: u64| {
            let mut k = name.as_bytes().to_vec();
            k.push(0);
            k.extend_from_slice(&v.to_be_bytes());
            k
        };
        // 1. The new version's entries, in batches (invisible until the meta switches).
        let new_prefix = prefix(version);
        let mut batch = sled::Batch::default();
        for (i, e) in entries.iter().enumerate() {
            let mut k = new_prefix.clone();
            k.extend_from_slice(e.plate.as_bytes());
            let v = postcard::to_allocvec(e).map_err(|err| StoreError::Corrupt {
                tree: "hotlist",
                key: e.plate.clone(),
                reason: err.to_string(),
            })?;
            batch.insert(k, v);
            if i % 10_000 == 9_999 {
                self.hotlist.apply_batch(std::mem::take(&mut batch))?;
            }
        }
        self.hotlist.apply_batch(batch)?;
        self.db.flush()?;
        // 2. Switch.
        let meta = ListMeta {
            name: name.into(),
            version,
            source: source.into(),
            entries: entries.len() as u64,
        };
        let bytes = postcard::to_allocvec(&meta).map_err(|e| StoreError::Corrupt {
            tree: "hotlist_meta",
            key: name.into(),
            reason: e.to_string(),
        })?;
        self.hotlist_meta.insert(name.as_bytes(), bytes)?;
        self.db.flush()?;
        if let Ok(mut cache) = self.hotlist_cache.write() {
            *cache = None;
        }
        // 3. The old version's entries go.
        if let Some(c) = current {
            let mut batch = sled::Batch::default();
            for kv in self.hotlist.scan_prefix(prefix(c.version)) {
                batch.remove(kv?.0);
            }
            self.hotlist.apply_batch(batch)?;
        }
        Ok(meta)
    }

    pub fn hotlist_meta(&self, name: &str) -> Result<Option<ListMeta>, StoreError> {
        match self.hotlist_meta.get(name.as_bytes())? {
            None => Ok(None),
            Some(v) => postcard::from_bytes(&v).map(Some).map_err(|e| StoreError::Corrupt {
                tree: "hotlist_meta",
                key: name.into(),
                reason: e.to_string(),
            }),
        }
    }

    /// The current version of every list (the databases reads are compared against).
    pub fn hotlists(&self) -> Result<Vec<ListMeta>, StoreError> {
        if let Ok(cache) = self.hotlist_cache.read()
            && let Some(lists) = cache.as_ref()
        {
            return Ok(lists.clone());
        }
        let lists = self.load_hotlists()?;
        if let Ok(mut cache) = self.hotlist_cache.write() {
            *cache = Some(lists.clone());
        }
        Ok(lists)
    }

    fn load_hotlists(&self) -> Result<Vec<ListMeta>, StoreError> {
        let mut out = Vec::new();
        for kv in self.hotlist_meta.iter() {
            let (k, v) = kv?;
            out.push(postcard::from_bytes(&v).map_err(|e| StoreError::Corrupt {
                tree: "hotlist_meta",
                key: String::from_utf8_lossy(&k).into(),
                reason: e.to_string(),
            })?);
        }
        Ok(out)
    }

    /// Every list entry the plate matches (exactly, or within one known OCR confusion).
    pub fn match_plate(
        &self,
        plate: &str,
        ocr_tolerance: bool,
    ) -> Result<Vec<(ListMeta, HotEntry)>, StoreError> {
        let mut hits = Vec::new();
        let candidates = hotlist::variants(plate, ocr_tolerance);
        for list in self.hotlists()? {
            for p in &candidates {
                let mut k = list.name.as_bytes().to_vec();
                k.push(0);
                k.extend_from_slice(&list.version.to_be_bytes());
                k.extend_from_slice(p.as_bytes());
                if let Some(v) = self.hotlist.get(&k)? {
                    let entry: HotEntry =
                        postcard::from_bytes(&v).map_err(|e| StoreError::Corrupt {
                            tree: "hotlist",
                            key: p.clone(),
                            reason: e.to_string(),
                        })?;
                    hits.push((list.clone(), entry));
                    break;
                }
            }
        }
        Ok(hits)
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
            let bytes = postcard::to_allocvec(&alert).map_err(|e| StoreError::Corrupt {
                tree: "alerts",
                key: alert.alert_id.to_string(),
                reason: e.to_string(),
            })?;
            let id = alert.alert_id;
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

    /// Checks the store after a start: every record decodes, every outbox entry points to an
    /// item that exists, every picture belongs to a read. Undecodable records are moved to the
    /// `quarantine` tree (kept for inspection, never synced); dangling entries are removed.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        if self.was_clean {
            return Ok(CheckReport {
                reads: self.reads.len() as u64,
                skipped: true,
                ..CheckReport::default()
            });
        }
        self.full_check()
    }

    /// Records a clean shutdown (everything flushed): the next open may skip the full check.
    pub fn mark_clean(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.db.insert(CLEAN_MARK, &[1u8])?;
        self.db.flush()?;
        Ok(())
    }

    /// The full check, whatever the last shutdown was.
    pub fn full_check(&self) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        let quarantine = self.db.open_tree("quarantine")?;
        for (name, tree) in
            [("reads", &self.reads), ("usage", &self.usage), ("alerts", &self.alerts)]
        {
            for kv in tree.iter() {
                let (k, v) = kv?;
                let ok = match name {
                    "reads" => postcard::from_bytes::<StoredRead>(&v).is_ok(),
                    "usage" => postcard::from_bytes::<ActiveUse>(&v).is_ok(),
                    _ => postcard::from_bytes::<Alert>(&v).is_ok(),
                } && k.len() == 8;
                if ok {
                    if name == "reads" {
                        report.reads += 1;
                    }
                } else {
                    let mut qk = name.as_bytes().to_vec();
                    qk.push(0);
                    qk.extend_from_slice(&k);
                    quarantine.insert(qk, v)?;
                    tree.remove(&k)?;
                    report.quarantined += 1;
                }
            }
        }
        for kv in self.outbox.iter() {
            let (k, _) = kv?;
            let exists = match parse_outbox_key(&k) {
                Some(AckRef::Read(id)) => self.reads.contains_key(id.to_be_bytes())?,
                Some(AckRef::Picture(id, kind)) => {
                    self.pictures.contains_key(picture_key(id, kind))?
                }
                Some(AckRef::ActiveUse(id)) => self.usage.contains_key(id.to_be_bytes())?,
                Some(AckRef::Alert(id)) => self.alerts.contains_key(id.to_be_bytes())?,
                Some(AckRef::Deployment(_)) | Some(AckRef::Downlink(_)) => true,
                None => false,
            };
            if !exists {
                self.outbox.remove(&k)?;
                report.dangling_outbox += 1;
            }
        }
        for kv in self.pictures.iter() {
            let (k, _) = kv?;
            let owner = k.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
            let owned = match owner {
                Some(id) => self.reads.contains_key(id.to_be_bytes())?,
                None => false,
            };
            if !owned {
                match (owner, k.get(8)) {
                    (Some(id), Some(0)) => self.drop_picture(id, PictureKind::PlateCrop)?,
                    (Some(id), Some(1)) => self.drop_picture(id, PictureKind::Context)?,
                    _ => self.pictures.remove(&k)?.is_some(),
                };
                report.orphan_pictures += 1;
            }
        }
        self.db.flush()?;
        Ok(report)
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
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;
    use trailer_wire::{FixQuality, Position};

    fn meta(plate: &str) -> ReadMeta {
        ReadMeta {
            read_id: 0,
            camera_id: "cam0".into(),
            plate: plate.into(),
            confidence_pm: 900,
            first_seen: 0,
            best_seen: 0,
            position: Position::from_degrees(44.0, -93.0, FixQuality::Configured),
            plate_box: [0, 0, 10, 5],
            pictures: PictureSet::default(),
        }
    }

    fn pics() -> NewPictures {
        NewPictures { plate_crop: Some(vec![1; 10]), context: Some(vec![2; 20]) }
    }

    fn put(store: &Store, plate: &str) -> u64 {
        match store.insert_read(meta(plate), pics()).expect("insert") {
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
        store.reads.insert(99u64.to_be_bytes(), &b"\xff\xff\xff"[..]).expect("corrupt");
        store.outbox.insert(outbox_key(&AckRef::Read(12345)), &[]).expect("dangling");
        store
            .pictures
            .insert(
                picture_key(777, PictureKind::Context),
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
                dangling_outbox: 1,
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
        let store = Store::open(dir.path(), 60, clock.clone()).expect("reopen");
        assert_eq!(
            store.check().expect("check"),
            CheckReport { reads: 1, skipped: true, ..CheckReport::default() }
        );
        drop(store); // no mark: as after a power cut
        let store = Store::open(dir.path(), 60, clock).expect("reopen");
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
            match store.insert_read(meta(&format!("Q{i:04}")), big()) {
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

    #[test]
    fn acp_plates_are_never_written_and_existing_ones_destroyed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let key = b"agency-acp-key".to_vec();
        let store =
            Store::open(dir.path(), 60, Arc::new(clock)).expect("open").with_acp_key(key.clone());
        let before = put(&store, "ACP123");
        let held = put(&store, "ACP123");
        let other = put(&store, "XYZ789");
        store
            .place_hold(
                1,
                &HoldRecord {
                    kind: HoldKind::ActiveInvestigation,
                    case_number: "C".into(),
                    read_ids: vec![held],
                },
            )
            .expect("hold");
        let destroyed = store.acp_add(&[acp::acp_digest(&key, "ACP123")]).expect("acp");
        assert_eq!(destroyed, 1);
        assert!(store.read(before).expect("read").is_none());
        assert!(
            store.read(held).expect("read").is_some(),
            "an investigation hold defers destruction"
        );
        assert!(store.read(other).expect("read").is_some());
        assert_eq!(
            store.insert_read(meta("ACP123"), pics()).expect("insert"),
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
        store.acp_add(&[acp::acp_digest(&key, "SECRET9")]).expect("acp");
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
            let store = Store::open(dir.path(), 60, Arc::new(ManualClock::new(1_000 * DAY_MS)))
                .expect("reopen");
            store.destruction_counts().expect("counts")
        };
        assert!(counts.contains(&(1000, Destruction::AcpExisting, 1)));
        assert!(counts.contains(&(1000, Destruction::AcpAtCollection, 1)));
    }

    #[test]
    fn outbox_orders_by_priority_and_acks_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let store = Store::open(dir.path(), 60, Arc::new(clock)).expect("open");
        let a = put(&store, "AAA111");
        let b = match store.insert_read(meta("BBB222"), NewPictures::default()).expect("insert") {
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

    #[test]
    fn reads_survive_reopen_and_retention_destroys_old_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let old;
        {
            let store = Store::open(dir.path(), 60, Arc::new(clock.clone())).expect("open");
            old = put(&store, "OLD1");
        }
        let store = Store::open(dir.path(), 60, Arc::new(clock.clone())).expect("reopen");
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
}
