//! A trailer's backlog, made fast for the sync tests and the benchmark: a store filled with reads
//! the way the daemon writes them (batches, real day partitions over the given days, a plate crop
//! each if asked), and an in-process trailer that runs the appliance's own sync link on it.
use appliance::clock::{DAY_MS, ManualClock, SystemClock};
use appliance::config::SyncConfig;
use appliance::health::HealthState;
use appliance::store::hotlist::HotEntry;
use appliance::store::{Inserted, NewPictures, PictureSync, Store, sample_read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use trailer_wire::{AckRef, HitCategory};

/// The plate of the `n`th backlog read: unique, so a count at the server shows losses and
/// duplicates.
pub fn plate(n: u64) -> String {
    format!("B{n:07}")
}

/// A plate crop of a realistic size (a small JPEG is 2-4 KB), different per read.
pub fn crop(n: u64) -> Vec<u8> {
    (0..3000u64).map(|i| ((i * 31 + n * 7) % 251) as u8).collect()
}

/// Writes `count` reads into the store at `dir`, spread evenly over the `days` days that end
/// now, 500 per batch; every `crop_every`th read with a plate crop (0: none). Returns the read
/// ids.
pub fn fill(dir: &Path, count: u64, days: u32, crop_every: u64) -> anyhow::Result<Vec<u64>> {
    fill_with(dir, count, days, crop_every, PictureSync::All)
}

/// [`fill`], with pictures queued for the server as `mode` says.
pub fn fill_with(
    dir: &Path,
    count: u64,
    days: u32,
    crop_every: u64,
    mode: PictureSync,
) -> anyhow::Result<Vec<u64>> {
    let now = appliance::clock::Clock::now_ms(&SystemClock);
    let start = now - i64::from(days.saturating_sub(1)) * DAY_MS;
    let clock = ManualClock::new(start);
    let store = Store::open(dir, 60, Arc::new(clock.clone()))?.with_picture_sync(mode);
    let per_day = count.div_ceil(u64::from(days.max(1)));
    let mut ids = Vec::with_capacity(count as usize);
    let mut n = 0;
    while n < count {
        let day_end = (n + per_day).min(count);
        while n < day_end {
            let batch: Vec<_> = (n..day_end.min(n + 500))
                .map(|i| {
                    let mut m = sample_read(&plate(i));
                    let t = appliance::clock::Clock::now_ms(&clock) + i as i64;
                    (m.first_seen, m.best_seen) = (t, t + 400);
                    m.camera_id = "cam0".into();
                    let with_crop = crop_every > 0 && i % crop_every == 0;
                    let pics =
                        NewPictures { plate_crop: with_crop.then(|| crop(i)), context: None };
                    (m, pics)
                })
                .collect();
            n += batch.len() as u64;
            for r in store.insert_reads(batch)? {
                if let Inserted::Stored(id) = r {
                    ids.push(id);
                }
            }
        }
        clock.advance(DAY_MS);
    }
    store.flush()?;
    Ok(ids)
}

/// The sync settings of a trailer talking to the broker at `port` with `cert`/`key`.
pub fn sync_config(port: u16, ca: &Path, cert: &Path, key: &Path) -> SyncConfig {
    SyncConfig {
        broker_host: "localhost".into(),
        broker_port: port,
        ca_file: ca.to_path_buf(),
        cert_file: cert.to_path_buf(),
        key_file: key.to_path_buf(),
        ..SyncConfig::default()
    }
}

/// The appliance's sync link on a store, in this process, on its own runtime thread.
pub struct Trailer {
    pub store: Store,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub id: String,
    pub dir: PathBuf,
}

impl std::fmt::Debug for Trailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trailer").field("id", &self.id).field("dir", &self.dir).finish()
    }
}

impl Trailer {
    /// Opens the store at `dir` and starts syncing it as trailer `id`.
    pub fn start(id: &str, dir: &Path, cfg: SyncConfig) -> anyhow::Result<Trailer> {
        Trailer::start_on(id, dir, Store::open(dir, 60, Arc::new(SystemClock))?, cfg)
    }

    /// Starts syncing `store` (opened from `dir` by the caller, e.g. with an ACP key).
    pub fn start_on(
        id: &str,
        dir: &Path,
        store: Store,
        cfg: SyncConfig,
    ) -> anyhow::Result<Trailer> {
        let wake = Arc::new(Notify::new());
        let (stop, stop_rx) = watch::channel(false);
        let health = Arc::new(HealthState::new(sample_read("X").position));
        let (s, w, t) = (store.clone(), wake.clone(), id.to_string());
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("trailer runtime: {e}");
                    return;
                }
            };
            if let Err(e) = rt.block_on(appliance::sync::run_link(
                cfg,
                t,
                s,
                w,
                stop_rx,
                health,
                Default::default(),
            )) {
                eprintln!("trailer link: {e}");
            }
        });
        Ok(Trailer {
            store,
            wake,
            stop,
            thread: Some(thread),
            id: id.into(),
            dir: dir.to_path_buf(),
        })
    }

    /// Puts `plate` on a hotlist and stores a read of it, raising an alert. Returns the alert id.
    pub fn raise_alert(&self, plate: &str) -> anyhow::Result<u64> {
        let entry = HotEntry {
            plate: plate.into(),
            state: "MN".into(),
            category: HitCategory::StolenVehicle,
            source: "test list".into(),
            case_number: None,
        };
        let version = self.store.hotlist_meta("test-list")?.map_or(1, |m| m.version + 1);
        self.store.import_hotlist("test-list", version, "test list", &[entry])?;
        // Collected now: a fixed date would fall past the server's retention as the calendar
        // moves on, and the server would rightly destroy it.
        let now = appliance::clock::Clock::now_ms(&SystemClock);
        let read =
            trailer_wire::ReadMeta { first_seen: now, best_seen: now + 400, ..sample_read(plate) };
        let ids = self.store.insert_reads(vec![(read, NewPictures::default())])?;
        let Some(Inserted::Stored(id)) = ids.first() else {
            anyhow::bail!("the alert's read was not stored");
        };
        let alerts = self.store.raise_alerts(&self.id, *id, false)?;
        self.wake.notify_one();
        alerts.first().map(|a| a.alert_id).ok_or_else(|| anyhow::anyhow!("no alert raised"))
    }

    /// Tells the link that the outbox has something new (as the daemon's store task does).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Whether the alert still waits in the outbox. Alerts are sent first, so a waiting alert
    /// is among the first items; this does not scan a long backlog.
    pub fn alert_pending(&self, alert_id: u64) -> bool {
        self.store
            .pending(64, &|_| false)
            .map(|p| p.contains(&AckRef::Alert(alert_id)))
            .unwrap_or(true)
    }

    /// Waits until the outbox is empty; returns how long it took, or `None` at the timeout.
    pub fn wait_drained(&self, timeout: Duration) -> Option<Duration> {
        let t = Instant::now();
        while t.elapsed() < timeout {
            if self.store.backlog_empty() {
                return Some(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Stops the link (a clean shutdown: the status goes offline, the session stays).
    pub fn stop(self) -> Store {
        let store = self.store.clone();
        drop(self);
        store
    }
}

impl Drop for Trailer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
