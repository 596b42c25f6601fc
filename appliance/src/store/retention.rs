//! Retention: the store's own duty of destroying what the law no longer lets it keep.
//!
//! A purge destroys every read collected before `now - retention`, synced or not, unless a hold
//! names it. Whole expired days without holds are dropped at once (the day's tree and picture
//! segment); the day that straddles the limit, and expired days that hold a held read, are
//! purged read by read. Counts per day and reason go to `destroyed` for the audit; plate text
//! is never logged. An alert lives no longer than its read, and a quarantined record no
//! longer than the oldest data it can hold.
use super::days::{Change, Part};
use super::keys::{self, read_key};
use super::{Store, StoreError, StoredRead, be_u64, dropped};
use crate::clock::DAY_MS;
use keys::outbox_key;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use trailer_wire::AckRef;
use trailer_wire::PictureKind;

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

/// Reads destroyed per batch on the read-by-read path.
const BATCH: usize = 1024;

fn count_key(day: u32, why: Destruction) -> [u8; 5] {
    let mut key = [0u8; 5];
    key[..4].copy_from_slice(&day.to_be_bytes());
    key[4] = why as u8;
    key
}

impl Store {
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
        if cutoff < 0 {
            return Ok(0);
        }
        let cut_day = cutoff.div_euclid(DAY_MS) as u32;
        let mut destroyed = 0;
        for (day, part) in self.days.all() {
            if day > cut_day {
                break;
            }
            // A day wholly before the limit with nothing held goes at once.
            destroyed += if day < cut_day && !self.day_has_holds(day)? {
                self.drop_day(day, &part)?
            } else {
                let n = self.purge_day_by_read(&part, cutoff)?;
                // A past day left without reads goes too (with its segment).
                if day < self.today() && part.count()? == 0 {
                    self.drop_day(day, &part)?;
                }
                n
            };
        }
        // Segments of expired days whose partition is gone (a crash after the drop).
        for day in self.picture_log.days()? {
            if day < cut_day && self.days.get(day).is_none() {
                self.picture_log.remove_day(day)?;
            }
        }
        let alerts = self.purge_alerts()?;
        let quarantined = self.purge_quarantine(cutoff)?;
        if destroyed > 0 || alerts > 0 || quarantined > 0 {
            self.db.flush()?;
            tracing::info!(
                destroyed,
                alerts,
                quarantined,
                "retention: destroyed reads past the retention age, their alerts and \
                 quarantined records as old"
            );
        }
        Ok(destroyed)
    }

    /// Destroys each alert whose read is gone (past retention, or an ACP plate's), with its
    /// outbox entry: a hit holds the plate, the time and the place of its read, and lives no
    /// longer than the read does. A held read keeps its alerts. Returns how many went.
    pub(super) fn purge_alerts(&self) -> Result<usize, StoreError> {
        let mut gone = 0;
        for kv in self.alerts.iter() {
            let (k, v) = kv?;
            let Some(id) = be_u64(&k) else { continue };
            // An undecodable one is the start-up check's (it quarantines it).
            let Some(alert) = self.open_alert(id, &v) else { continue };
            if self.read(alert.read.read_id)?.is_some() {
                continue;
            }
            let out = outbox_key(&AckRef::Alert(id));
            (&self.alerts, &self.outbox).transaction(|(a, o)| {
                a.remove(&*k)?;
                o.remove(&out)?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })?;
            gone += 1;
        }
        Ok(gone)
    }

    /// Destroys quarantined records from before the retention limit. Each is keyed by the
    /// earliest time its data can date from (see `check`); one of the earlier layout, keyed
    /// by its tree's name and undated, goes at once: nothing says it is young enough to keep.
    fn purge_quarantine(&self, cutoff: i64) -> Result<usize, StoreError> {
        let quarantine = self.db.open_tree("quarantine")?;
        let latest = self.now() + DAY_MS;
        let mut gone = 0;
        for kv in quarantine.iter() {
            let (k, _) = kv?;
            let dated = keys::id_in(&k).map(|t| t as i64).filter(|t| *t <= latest);
            if dated.is_none_or(|t| t < cutoff) {
                quarantine.remove(&k)?;
                gone += 1;
            }
        }
        Ok(gone)
    }

    /// Drops a whole day. The count and a marker are committed first, in one batch; a crash
    /// before the drop finishes leaves the marker, and the next purge completes the drop
    /// without counting the day again.
    fn drop_day(&self, day: u32, part: &Part) -> Result<usize, StoreError> {
        let marker = day.to_be_bytes();
        let n = if let Some(v) = self.destroyed.get(marker)? {
            be_u64(&v).unwrap_or(0) as usize
        } else {
            let n = part.count()? as usize;
            // An empty day (its reads destroyed one by one before) has nothing to count.
            if n > 0 {
                let key = count_key(self.today(), Destruction::Retention);
                let prev = self.destroyed.get(key)?.and_then(|v| be_u64(&v)).unwrap_or(0);
                let mut batch = sled::Batch::default();
                batch.insert(&key, &(prev + n as u64).to_be_bytes());
                batch.insert(&marker, &(n as u64).to_be_bytes());
                self.destroyed.apply_batch(batch)?;
                self.db.flush()?;
            }
            n
        };
        self.days.drop_day(day)?;
        self.picture_log.remove_day(day)?;
        self.db.flush()?;
        self.destroyed.remove(marker)?;
        Ok(n)
    }

    /// Destroys the expired, unheld reads of one day read by read, in atomic batches.
    fn purge_day_by_read(&self, part: &Part, cutoff: i64) -> Result<usize, StoreError> {
        let any_holds = !self.held.is_empty();
        let mut expired = Vec::with_capacity(BATCH);
        let mut destroyed = 0;
        let mut iter = part.read_records();
        loop {
            expired.clear();
            let mut done = true;
            for kv in iter.by_ref() {
                let (k, v) = match kv {
                    Err(e) if dropped(&e) => return Ok(destroyed),
                    kv => kv?,
                };
                let Some(id) = keys::id_in(&k) else { continue };
                let collected = self.peek::<StoredRead>("reads", &v).map_or(0, |s| s.collected);
                if collected >= cutoff || (any_holds && self.is_held(id)?) {
                    continue;
                }
                expired.push(id);
                if expired.len() == BATCH {
                    done = false;
                    break;
                }
            }
            if !expired.is_empty() {
                let _writer = self.part_writer();
                // A concurrent destruction (ACP) may have taken some meanwhile.
                let mut live = Vec::with_capacity(expired.len());
                for &id in &expired {
                    if part.reads.contains_key(read_key(id))? {
                        live.push(id);
                    }
                }
                let mut change = Change::default();
                let mut bytes = Vec::new();
                for &id in &live {
                    for kind in [PictureKind::PlateCrop, PictureKind::Context] {
                        bytes.extend(self.picture_ref(id, kind)?);
                    }
                }
                Store::remove_reads(&mut change, &live);
                Store::add_to_count(part, &mut change, -(live.len() as i64))?;
                part.commit(&change)?;
                drop(_writer);
                for r in &bytes {
                    self.picture_log.punch(r)?;
                }
                self.count_destroyed(Destruction::Retention, live.len() as u64)?;
                destroyed += live.len();
            }
            if done {
                return Ok(destroyed);
            }
        }
    }

    pub(super) fn count_destroyed(&self, why: Destruction, n: u64) -> Result<(), StoreError> {
        self.destroyed.update_and_fetch(count_key(self.today(), why), |old| {
            let prev = old.and_then(be_u64).unwrap_or(0);
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
            let n = be_u64(&v).unwrap_or(0);
            if let Some(why) = Destruction::from_byte(k[4]) {
                out.push((day, why, n));
            }
        }
        Ok(out)
    }
}
