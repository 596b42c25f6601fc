//! The start-up check: after a clean stop only counts are taken; after a crash every record is
//! decoded, every outbox entry must point to an item that exists, and every picture reference
//! must belong to a read. Undecodable records go to the `quarantine` tree (kept for inspection,
//! never synced, destroyed by retention as reads are: keyed by the earliest time their data can
//! date from); dangling entries are removed.
use super::keys::{self, parse_outbox_key, read_key};
use super::{CLEAN_MARK, Store, StoreError, StoredRead, partition_of};
use crate::clock::DAY_MS;
use trailer_wire::{AckRef, ActiveUse, Alert, PictureKind};

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

/// The earliest time a quarantined record of `tree` under `key` can hold data from: the start
/// of its day (a day's trees), the time in its id (alerts and periods of use), else `now`.
fn dated(tree: &str, key: &[u8], now: i64) -> i64 {
    let day =
        tree.strip_prefix("day-").and_then(|r| r.get(..8)).and_then(|d| d.parse::<i64>().ok());
    if let Some(day) = day {
        return (day * DAY_MS).min(now);
    }
    match keys::id_in(key) {
        // Ids of the timed scheme carry their ms in the top 48 bits (see `ids`).
        Some(id) if id >= 1 << 56 => ((id >> 16) as i64).min(now),
        _ => now,
    }
}

impl Store {
    /// Checks the store after a start (the full check only if the last stop was not clean).
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        if self.was_clean {
            let mut reads = 0;
            for (_, part) in self.days.all() {
                reads += part.count()?;
            }
            return Ok(CheckReport { reads, skipped: true, ..CheckReport::default() });
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
        let now = self.now();
        let move_out =
            |tree: &sled::Tree, name: &str, k: &[u8], v: &[u8]| -> Result<(), StoreError> {
                let mut qk = (dated(name, k, now) as u64).to_be_bytes().to_vec();
                qk.extend_from_slice(name.as_bytes());
                qk.push(0);
                qk.extend_from_slice(k);
                quarantine.insert(qk, v)?;
                tree.remove(k)?;
                Ok(())
            };
        for (name, tree) in [("usage", &self.usage), ("alerts", &self.alerts)] {
            for kv in tree.iter() {
                let (k, v) = kv?;
                let ok = k.len() == 8
                    && match name {
                        "usage" => self.peek::<ActiveUse>(name, &v).is_some(),
                        _ => self.peek::<Alert>(name, &v).is_some(),
                    };
                if !ok {
                    move_out(tree, name, &k, &v)?;
                    report.quarantined += 1;
                }
            }
        }
        for kv in self.outbox.iter() {
            let (k, _) = kv?;
            let exists = match parse_outbox_key(&k) {
                Some(AckRef::ActiveUse(id)) => self.usage.contains_key(id.to_be_bytes())?,
                Some(AckRef::Alert(id)) => self.alerts.contains_key(id.to_be_bytes())?,
                Some(AckRef::Downlink(id)) => self.downlinks.contains_key(id.to_be_bytes())?,
                Some(AckRef::Deployment(_)) => true,
                // A picture the server asked for waits here; reads are queued in their day.
                Some(AckRef::Picture(id, kind)) => self.picture_ref(id, kind)?.is_some(),
                Some(AckRef::Read(_)) | None => false,
            };
            if !exists {
                self.outbox.remove(&k)?;
                report.dangling_outbox += 1;
            }
        }
        for (day, part) in self.days.all() {
            let name = format!("day-{day:08}-r");
            let mut live = 0u64;
            for kv in part.read_records() {
                let (k, v) = kv?;
                let ok = k.len() == 8
                    && keys::id_in(&k).is_some_and(|id| keys::day_of(id) == day)
                    && self.peek::<StoredRead>("reads", &v).is_some();
                if ok {
                    live += 1;
                } else {
                    move_out(&part.reads, &name, &k, &v)?;
                    report.quarantined += 1;
                }
            }
            report.reads += live;
            if part.count()? != live {
                part.reads.insert(keys::COUNT, &live.to_be_bytes())?;
            }
            for kv in part.outbox.iter() {
                let (k, _) = kv?;
                let exists = match parse_outbox_key(&k) {
                    Some(r @ (AckRef::Read(id) | AckRef::Picture(id, _)))
                        if partition_of(&r) == Some(day) =>
                    {
                        match r {
                            AckRef::Picture(_, kind) => self.picture_ref(id, kind)?.is_some(),
                            _ => part.reads.contains_key(read_key(id))?,
                        }
                    }
                    _ => false,
                };
                if !exists {
                    part.outbox.remove(&k)?;
                    report.dangling_outbox += 1;
                }
            }
            for kv in part.pictures.iter() {
                let (k, _) = kv?;
                let owned = match keys::id_in(&k) {
                    Some(id) => part.reads.contains_key(read_key(id))?,
                    None => false,
                };
                if !owned {
                    match (keys::id_in(&k), k.get(8)) {
                        (Some(id), Some(0)) => self.drop_picture(id, PictureKind::PlateCrop)?,
                        (Some(id), Some(1)) => self.drop_picture(id, PictureKind::Context)?,
                        _ => part.pictures.remove(&k)?.is_some(),
                    };
                    report.orphan_pictures += 1;
                }
            }
        }
        self.db.flush()?;
        Ok(report)
    }
}
