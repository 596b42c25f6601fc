//! The trailer's store, on sled. It is also the sync outbox: nothing leaves it because it was
//! sent, only because the server acknowledged it, or because the law says it must be destroyed.
//!
//! # Trees and keys
//! | tree       | key                                   | value                               |
//! |------------|---------------------------------------|-------------------------------------|
//! | `reads`    | read id (u64 BE)                      | postcard [`StoredRead`]             |
//! | `pictures` | read id (u64 BE) + kind (u8)          | JPEG bytes                          |
//! | `usage`    | period id (u64 BE)                    | postcard `ActiveUse`                |
//! | `outbox`   | priority (u8) + item tag (u8) + id (u64 BE) + sub (u8) | empty          |
//!
//! Ids come from `Db::generate_id`, which is unique and increasing across restarts, so big-endian
//! keys iterate in collection order. The outbox key starts with the priority, so one ordered scan
//! yields alerts first, then activity records, read metadata, plate crops, context pictures.
//!
//! # Invariants
//! - A read, its pictures and its outbox entries are written in one transaction and flushed
//!   before [`Store::insert_read`] returns: an acknowledged read survives a power cut whole.
//! - Retention: [`Store::purge`] destroys every read collected more than `retention_days` ago,
//!   with its pictures and outbox entries, synced or not (the law's limit wins over the backlog).
use crate::clock::{DAY_MS, SharedClock, UnixMs};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::path::{Path, PathBuf};
use thiserror::Error;
use trailer_wire::{AckRef, ActiveUse, Message, Picture, PictureKind, PictureSet, ReadMeta};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open store at {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("store I/O: {0}")]
    Io(#[from] sled::Error),
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

fn picture_key(id: u64, k: PictureKind) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[..8].copy_from_slice(&id.to_be_bytes());
    key[8] = kind_byte(k);
    key
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
    usage: sled::Tree,
    outbox: sled::Tree,
    clock: SharedClock,
    retention_ms: i64,
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
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(Some(500))
            .open()
            .map_err(|e| open_err(e.to_string()))?;
        let store = Store {
            reads: db.open_tree("reads")?,
            pictures: db.open_tree("pictures")?,
            usage: db.open_tree("usage")?,
            outbox: db.open_tree("outbox")?,
            db,
            clock,
            retention_ms: i64::from(retention_days) * DAY_MS,
        };
        Ok(store)
    }

    pub fn now(&self) -> UnixMs {
        self.clock.now_ms()
    }

    /// A new id, unique and increasing across restarts.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()? + 1)
    }

    /// Stores a read with its pictures and queues it for sync; durable when this returns.
    pub fn insert_read(&self, mut meta: ReadMeta, pics: NewPictures) -> Result<u64, StoreError> {
        let id = self.next_id()?;
        meta.read_id = id;
        meta.pictures =
            PictureSet { plate_crop: pics.plate_crop.is_some(), context: pics.context.is_some() };
        let record = StoredRead { meta, collected: self.now(), synced: false };
        let bytes = postcard::to_allocvec(&record).map_err(|e| StoreError::Corrupt {
            tree: "reads",
            key: id.to_string(),
            reason: e.to_string(),
        })?;
        (&self.reads, &self.pictures, &self.outbox).transaction(|(r, p, o)| {
            r.insert(&id.to_be_bytes(), bytes.as_slice())?;
            o.insert(&outbox_key(&AckRef::Read(id)), &[])?;
            for (kind, pic) in
                [(PictureKind::PlateCrop, &pics.plate_crop), (PictureKind::Context, &pics.context)]
            {
                if let Some(jpeg) = pic {
                    p.insert(&picture_key(id, kind), jpeg.as_slice())?;
                    o.insert(&outbox_key(&AckRef::Picture(id, kind)), &[])?;
                }
            }
            Ok::<_, ConflictableTransactionError<()>>(())
        })?;
        self.db.flush()?;
        Ok(id)
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

    pub fn picture(&self, id: u64, kind: PictureKind) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.pictures.get(picture_key(id, kind))?.map(|v| v.to_vec()))
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
            AckRef::Alert(_) | AckRef::Deployment(_) | AckRef::Downlink(_) => None,
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

    /// Destroys every read collected before the retention limit, with its pictures and outbox
    /// entries. Returns how many reads were destroyed.
    pub fn purge(&self) -> Result<usize, StoreError> {
        let cutoff = self.now() - self.retention_ms;
        let mut destroyed = 0;
        for kv in self.reads.iter() {
            let (k, v) = kv?;
            let Some(id) = k.as_ref().try_into().ok().map(u64::from_be_bytes) else { continue };
            let collected =
                postcard::from_bytes::<StoredRead>(&v).map(|s| s.collected).unwrap_or(0);
            if collected >= cutoff {
                // Keys are in collection order: everything after is younger.
                break;
            }
            (&self.reads, &self.pictures, &self.outbox).transaction(|(r, p, o)| {
                r.remove(&id.to_be_bytes())?;
                o.remove(&outbox_key(&AckRef::Read(id)))?;
                for kind in [PictureKind::PlateCrop, PictureKind::Context] {
                    p.remove(&picture_key(id, kind))?;
                    o.remove(&outbox_key(&AckRef::Picture(id, kind)))?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })?;
            destroyed += 1;
        }
        if destroyed > 0 {
            self.db.flush()?;
            tracing::info!(destroyed, "retention: destroyed reads past the retention age");
        }
        Ok(destroyed)
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

    #[test]
    fn outbox_orders_by_priority_and_acks_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let store = Store::open(dir.path(), 60, Arc::new(clock)).expect("open");
        let a = store.insert_read(meta("AAA111"), pics()).expect("insert");
        let b = store.insert_read(meta("BBB222"), NewPictures::default()).expect("insert");
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
            old = store.insert_read(meta("OLD1"), pics()).expect("insert");
        }
        let store = Store::open(dir.path(), 60, Arc::new(clock.clone())).expect("reopen");
        assert_eq!(store.read(old).expect("read").expect("survived").meta.plate, "OLD1");
        clock.advance(30 * DAY_MS);
        let young = store.insert_read(meta("NEW1"), pics()).expect("insert");
        clock.advance(30 * DAY_MS + 1);
        assert_eq!(store.purge().expect("purge"), 1);
        assert!(store.read(old).expect("read").is_none());
        assert!(store.picture(old, PictureKind::Context).expect("pic").is_none());
        assert!(store.pending(10, &|_| false).expect("pending").iter().all(|r| match r {
            AckRef::Read(id) | AckRef::Picture(id, _) => *id == young,
            _ => true,
        }));
        assert!(store.read(young).expect("read").is_some());
    }
}
