//! Health at a glance: what a field crew and the operators need to see (camera, GPS fix,
//! storage, sync backlog, last read, dropped frames). One shared [`HealthState`] that the stages
//! update; the sync link turns it into `Health` messages, on change and periodically.
use crate::store::Store;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use trailer_wire::{CameraState, Health, Position};

#[derive(Debug)]
pub struct HealthState {
    camera: Mutex<CameraState>,
    position: Mutex<Position>,
    last_read: AtomicI64,
    pub dropped_frames: AtomicU64,
    /// Entries the store repaired or quarantined at start.
    pub store_repairs: AtomicU64,
    pub link_connected: AtomicBool,
    /// Bumped on every change worth an immediate report.
    generation: AtomicU64,
    /// The configuration file, for the time of its last rollback ([`crate::trial`]).
    pub config_file: Option<std::path::PathBuf>,
}

impl HealthState {
    pub fn new(position: Position) -> HealthState {
        HealthState {
            camera: Mutex::new(CameraState::NotConfigured),
            position: Mutex::new(position),
            last_read: AtomicI64::new(0),
            dropped_frames: AtomicU64::new(0),
            store_repairs: AtomicU64::new(0),
            link_connected: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            config_file: None,
        }
    }

    /// The same, reporting the rollbacks of the configuration `file`.
    pub fn with_config_file(mut self, file: Option<std::path::PathBuf>) -> HealthState {
        self.config_file = file;
        self
    }

    pub fn set_camera(&self, state: CameraState) {
        if let Ok(mut c) = self.camera.lock()
            && *c != state
        {
            *c = state;
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn camera(&self) -> CameraState {
        self.camera.lock().map(|c| *c).unwrap_or(CameraState::Down)
    }

    pub fn set_position(&self, p: Position) {
        if let Ok(mut c) = self.position.lock() {
            *c = p;
        }
    }

    pub fn position(&self) -> Position {
        self.position.lock().map(|p| *p).unwrap_or(Position::from_degrees(
            0.0,
            0.0,
            trailer_wire::FixQuality::None,
        ))
    }

    pub fn note_read(&self, at: i64) {
        self.last_read.store(at, Ordering::Relaxed);
    }

    /// Marks a change that should be reported now (storage full, repairs, camera).
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The health message as of now.
    pub fn snapshot(&self, trailer_id: &str, store: &Store, now: i64) -> Health {
        let backlog = store.backlog_len();
        let used = store.disk_bytes().unwrap_or(0);
        let limit = store.limit_bytes(used).unwrap_or(0).max(1);
        let last = self.last_read.load(Ordering::Relaxed);
        let (acp_key_fingerprint, acp_entries) = store.acp_state();
        Health {
            trailer_id: trailer_id.into(),
            time: now,
            camera: self.camera(),
            position: self.position(),
            disk_used_pm: ((used as f64 / limit as f64) * 1000.0).min(1000.0) as u16,
            storage_full: store.storage_full(),
            store_repairs: self.store_repairs.load(Ordering::Relaxed) as u32,
            battery_mv: None,
            solar_mw: None,
            modem_rssi_dbm: None,
            backlog_items: backlog as u32,
            backlog_oldest: store.backlog_oldest(),
            last_read: (last > 0).then_some(last),
            dropped_frames: self.dropped_frames.load(Ordering::Relaxed),
            software_version: crate::VERSION.into(),
            acp_key_fingerprint,
            acp_entries,
            config_rolled_back: self.config_file.as_deref().and_then(crate::trial::rolled_back_at),
            destroyed: retention_counts(store),
        }
    }
}

/// The store's retention destruction counts per day, the newest days the health report may
/// carry (ACP destructions stay on the trailer: that a plate was one is private).
fn retention_counts(store: &Store) -> Vec<(u32, u64)> {
    let mut days: Vec<(u32, u64)> = store
        .destruction_counts()
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, why, _)| *why == crate::store::Destruction::Retention)
        .map(|(day, _, n)| (day, n))
        .collect();
    days.sort_unstable();
    let skip = days.len().saturating_sub(trailer_wire::message::DESTROYED_DAYS);
    days.split_off(skip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{DAY_MS, ManualClock};
    use crate::store::{NewPictures, sample_read};
    use std::sync::Arc;
    use trailer_wire::FixQuality;

    /// The health report carries the store's retention counts per day, for the audit report;
    /// never a count of ACP destruction.
    #[test]
    fn health_carries_retention_counts_and_never_an_acp_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(1_000 * DAY_MS);
        let key = b"agency-acp-key".to_vec();
        let store = Store::open(dir.path(), 60, Arc::new(clock.clone()))
            .expect("open")
            .with_acp_key(key.clone());
        for plate in ["AAA111", "BBB222", "ACP123"] {
            store.insert_read(sample_read(plate), NewPictures::default()).expect("insert");
        }
        let fp = trailer_wire::acp::key_fingerprint(&key);
        let digest = trailer_wire::acp::acp_digest(&key, "ACP123");
        let probe = trailer_wire::acp::acp_probe(&key, "ACP123");
        assert_eq!(store.acp_add(fp, &[digest], &[probe]).expect("store"), Ok(1));
        store.insert_read(sample_read("ACP123"), NewPictures::default()).expect("at collection");
        clock.advance(61 * DAY_MS);
        assert_eq!(store.purge().expect("purge"), 2);
        let state = HealthState::new(Position::from_degrees(44.1, -93.9, FixQuality::Fix3d));
        let h = state.snapshot("t1", &store, 1_061 * DAY_MS);
        assert_eq!(h.destroyed, [(1_061, 2)], "retention's count of the day it destroyed");
    }
}
