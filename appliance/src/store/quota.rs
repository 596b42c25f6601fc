//! The disk quota: the store never grows past its share of the disk. Making room drops, oldest
//! day first, context pictures already synced, then plate crops already synced, then synced
//! reads; never anything unsynced. When only unsynced data is left, "storage full" is raised.
use super::days::Part;
use super::keys::{self, outbox_key};
use super::{Store, StoreError, StoredRead, dropped};
use std::sync::atomic::Ordering;
use trailer_wire::{AckRef, PictureKind};

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

/// Room kept beyond the incoming bytes: sled's log grows in steps of its own, so the estimate
/// of a read's metadata alone could overshoot the limit by a few KiB.
const HEADROOM: u64 = 256 << 10;

/// What a drop stage removes.
#[derive(Clone, Copy)]
enum Stage {
    SyncedPictures(PictureKind),
    SyncedReads,
}

impl Store {
    pub fn with_quota(mut self, quota: Quota) -> Store {
        self.quota = quota;
        self
    }

    /// Whether unsynced data alone fills the quota (capture must slow or stop).
    pub fn storage_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
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

    /// Makes room for `incoming` bytes, or raises "storage full" and refuses.
    pub fn make_room(&self, incoming: u64) -> Result<(), StoreError> {
        let mut used = self.disk_bytes()?;
        let limit = self.limit_bytes(used)?;
        if used + incoming + HEADROOM <= limit {
            self.full.store(false, Ordering::Relaxed);
            return Ok(());
        }
        let mut dropped_n = 0u64;
        'stages: for stage in [
            Stage::SyncedPictures(PictureKind::Context),
            Stage::SyncedPictures(PictureKind::PlateCrop),
            Stage::SyncedReads,
        ] {
            for (_, part) in self.days.all() {
                for id in self.droppable(&part, stage)? {
                    let freed = match stage {
                        Stage::SyncedPictures(kind) => self.drop_picture(id, kind)?,
                        Stage::SyncedReads => {
                            self.destroy_read(id)?;
                            true
                        }
                    };
                    if freed {
                        dropped_n += 1;
                        if dropped_n.is_multiple_of(16) {
                            used = self.disk_bytes()?;
                            if used + incoming + HEADROOM <= limit {
                                break 'stages;
                            }
                        }
                    }
                }
            }
            used = self.disk_bytes()?;
            if used + incoming + HEADROOM <= limit {
                break;
            }
        }
        if dropped_n > 0 {
            self.db.flush()?;
            tracing::info!(
                dropped = dropped_n,
                used,
                limit,
                "quota: dropped synced data to make room"
            );
        }
        if used + incoming + HEADROOM > limit {
            self.full.store(true, Ordering::Relaxed);
            return Err(StoreError::Full { used, limit });
        }
        self.full.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Reads of one day whose data this stage may drop, oldest first.
    fn droppable(&self, part: &Part, stage: Stage) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        let synced = |r: AckRef| !part.outbox.contains_key(outbox_key(&r)).unwrap_or(true);
        let records = match stage {
            Stage::SyncedPictures(_) => part.pictures.iter(),
            Stage::SyncedReads => part.read_records(),
        };
        for kv in records {
            let (k, v) = match kv {
                Err(e) if dropped(&e) => break,
                kv => kv?,
            };
            let Some(id) = keys::id_in(&k) else { continue };
            let ok = match stage {
                Stage::SyncedPictures(kind) => {
                    k.get(8) == Some(&keys::kind_byte(kind)) && synced(AckRef::Picture(id, kind))
                }
                Stage::SyncedReads => {
                    self.peek::<StoredRead>("reads", &v).is_some_and(|r| r.synced)
                        && !self.is_held(id)?
                        && self.picture_ref(id, PictureKind::Context)?.is_none()
                        && self.picture_ref(id, PictureKind::PlateCrop)?.is_none()
                }
            };
            if ok {
                out.push(id);
            }
        }
        Ok(out)
    }
}
