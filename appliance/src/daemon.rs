//! The daemon: wires capture → engine → passes → store → sync, and owns shutdown.
//!
//! Threads and tasks:
//! - `capture` thread (blocking): pulls frames, paces them, runs the engine and the pass tracker,
//!   and hands each finished read to the store task. Reads are never dropped: the hand-over
//!   channel is bounded and the thread waits when it is full (frames are dropped instead).
//! - store task: writes each read durably, then wakes the sync link.
//! - sync task: the MQTT link (when a broker is configured).
//! - retention task: the store's purge duty.
//!
//! Shutdown: one `watch` signal. The capture thread stops first and closes its passes; the store
//! task drains the channel when it closes; the sync link gets a last chance to drain, then stops.
use crate::analyse::{Analyser, Counters};
use crate::capture::{Capture, CaptureError, Next};
use crate::clock::{Clock, SharedClock, SystemClock};
use crate::config::Config;
use crate::deployment::DeploymentTracker;
use crate::engine::{Engine, EngineError};
use crate::health::HealthState;
use crate::location::{Location, run_gpsd};
use crate::pass::PassRead;
use crate::store::{Inserted, NewPictures, Quota, Store, StoreError};
use crate::sync::link::run_link;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{Notify, mpsc, watch};
use trailer_wire::{
    ActiveUse, CameraState, DeploymentEvent, DeploymentEventKind, PictureSet, ReadMeta, UsageReason,
};

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Link(#[from] crate::sync::LinkError),
    #[error("internal: {0}")]
    Internal(String),
}

fn notify(state: &[sd_notify::NotifyState]) {
    let _ = sd_notify::notify(state);
}

/// Opens the store with the configured retention and ACP key.
pub fn open_store(config: &Config, clock: SharedClock) -> Result<Store, DaemonError> {
    let seal = match &config.store.key_file {
        Some(path) => crate::store::seal::Seal::with_key(
            &crate::store::seal::read_key(path).map_err(DaemonError::Internal)?,
        ),
        None => {
            tracing::warn!("store.key_file is not set: the store is not encrypted at rest");
            crate::store::seal::Seal::none()
        }
    };
    let dir = &config.trailer.data_dir;
    let mut store = Store::open_sealed(dir, config.store.retention_days, clock, seal)?
        .with_quota(Quota {
            max_bytes: config.store.max_disk_bytes,
            max_fraction: config.store.max_disk_fraction,
            min_free_bytes: config.store.min_free_bytes,
        })
        .with_picture_sync(
            crate::store::PictureSync::parse(&config.sync.pictures).unwrap_or_default(),
        );
    if let Some(path) = &config.store.acp_key_file {
        let key = std::fs::read(path)
            .map_err(|e| DaemonError::Internal(format!("ACP key {}: {e}", path.display())))?;
        store = store.with_acp_key(key);
    }
    Ok(store)
}

/// Waits until the clock reads after [`crate::clock::clock_floor_ms`] (chrony set it, from GPS
/// time or the network), before the store opens: nothing is stamped, and no age counted for
/// retention, by a clock that is not set. systemd is told why the start takes long, and its
/// start timeout extended meanwhile. False if a stop came first.
async fn wait_for_set_clock(clock: &dyn Clock, shutdown: &mut watch::Receiver<bool>) -> bool {
    let floor = crate::clock::clock_floor_ms();
    if crate::clock::plausible(clock.now_ms(), floor) {
        return true;
    }
    tracing::warn!(
        now_ms = clock.now_ms(),
        floor_ms = floor,
        "the clock is not set: waiting for it (chrony, from GPS or network time) before \
         anything is stamped"
    );
    loop {
        notify(&[
            sd_notify::NotifyState::Status("waiting for a set clock"),
            sd_notify::NotifyState::ExtendTimeoutUsec(10_000_000),
        ]);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => if *shutdown.borrow() { return false },
        }
        if crate::clock::plausible(clock.now_ms(), floor) {
            tracing::info!("the clock is set: starting");
            return true;
        }
    }
}

/// Runs the appliance until `shutdown` turns true, or — for a file source — until the video ended
/// and the outbox drained (or its drain timeout passed).
pub async fn run(
    config: Config,
    mut shutdown: watch::Receiver<bool>,
    remote: crate::sync::downlink::Remote,
) -> Result<(), DaemonError> {
    let clock: SharedClock = Arc::new(SystemClock);
    let config_file_on_trial = remote.on_ready.clone();
    if !wait_for_set_clock(clock.as_ref(), &mut shutdown).await {
        return Ok(());
    }
    let store = open_store(&config, clock.clone())?;
    let report = store.check()?;
    let location = Arc::new(Location::new(
        config.location.latitude,
        config.location.longitude,
        Duration::from_secs(config.location.fix_stale_s.max(1)),
    ));
    let health =
        Arc::new(HealthState::new(location.configured()).with_config_file(remote.on_ready.clone()));
    let (gps_stop_tx, gps_stop_rx) = watch::channel(false);
    let gps = (!config.location.gpsd.is_empty()).then(|| {
        tokio::spawn(run_gpsd(
            config.location.gpsd.clone(),
            location.clone(),
            health.clone(),
            gps_stop_rx,
        ))
    });
    health.store_repairs.store(
        report.quarantined + report.dangling_outbox + report.orphan_pictures,
        Ordering::Relaxed,
    );
    if report.clean() {
        tracing::info!(reads = report.reads, "store checked");
    } else {
        tracing::warn!(
            reads = report.reads,
            quarantined = report.quarantined,
            dangling = report.dangling_outbox,
            orphans = report.orphan_pictures,
            "store repaired after an unclean stop"
        );
    }
    let engine_cfg = config.engine.clone();
    let engine = tokio::task::spawn_blocking(move || Engine::load(&engine_cfg))
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))??;

    // Stop signal for the blocking capture thread, raised from the async side.
    let stop_capture = Arc::new(AtomicBool::new(false));
    // Cleared between deployments (the trailer is being moved): frames are not analysed.
    let collecting = Arc::new(AtomicBool::new(true));
    let (reads_tx, mut reads_rx) = mpsc::channel::<CaptureEvent>(64);
    let counters = Arc::new(Counters::default());
    // What the watchdog asks of the capture thread and the store task: progress.
    let beats = crate::watchdog::Beats::new();
    let capture_thread = {
        let beats = beats.clone();
        let cfg = config.clone();
        let stop = stop_capture.clone();
        let collecting = collecting.clone();
        let counters = counters.clone();
        let clock = clock.clone();
        let health = health.clone();
        std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || {
                let flags = Flags { stop, collecting, beats: beats.clone() };
                let result = capture_loop(cfg, engine, reads_tx, flags, counters, clock, &health);
                beats.capture_ended();
                if result.is_err() {
                    health.set_camera(CameraState::Down);
                }
                result
            })
            .map_err(|e| DaemonError::Internal(e.to_string()))?
    };

    // Active-use periods: one opens when frames flow (first at start, then after each camera
    // outage or move) and closes when the camera goes down, the trailer moves or capture stops.
    let suspended = store.suspension()?;
    if let Some(order) = &suspended {
        tracing::warn!(%order, "a suspension order is in force: not collecting until it is lifted");
        collecting.store(false, Ordering::Relaxed);
        notify(&[sd_notify::NotifyState::Status("suspended: not collecting")]);
    }
    let mut periods = Periods {
        open: None,
        started: false,
        camera: false,
        moving: false,
        suspended: suspended.is_some(),
    };
    // Deployments from the GPS fix, looked at once a second.
    let mut deployments = DeploymentTracker::new(config.deployment.clone());
    let mut gps_tick = tokio::time::interval(Duration::from_secs(1));
    gps_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let wake = Arc::new(Notify::new());
    let (link_stop_tx, link_stop_rx) = watch::channel(false);
    let link = if config.sync.broker_host.is_empty() {
        tracing::warn!("sync.broker_host is empty: reads stay on the trailer");
        None
    } else {
        let (cfg, id, st, w) =
            (config.sync.clone(), config.trailer.id.clone(), store.clone(), wake.clone());
        let remote = crate::sync::downlink::Remote {
            us_o_as_zero: config.engine.us_o_as_zero,
            config: Some(config.clone()),
            ..remote
        };
        Some(tokio::spawn(run_link(cfg, id, st, w, link_stop_rx, health.clone(), remote)))
    };
    let retention =
        store.spawn_retention(Duration::from_secs(config.store.purge_interval_s.max(1)))?;

    notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status("collecting")]);
    if let Some(file) = &config_file_on_trial {
        crate::trial::confirm(file);
    }
    let watchdog = tokio::spawn(crate::watchdog::run(beats.clone(), shutdown.clone()));

    // The store task: every read the capture thread finished is written durably here.
    let trailer_id = config.trailer.id.clone();
    let camera_id = config.trailer.camera_id.clone();
    let mut stopping = false;
    loop {
        beats.store();
        tokio::select! {
            read = reads_rx.recv() => match read {
                Some(CaptureEvent::Camera { up, at }) => {
                    if up {
                        periods.camera_up(&store, &trailer_id, at, location.current())?;
                    } else {
                        periods.camera_down(&store, at)?;
                    }
                    wake.notify_one();
                }
                // A read finished as a suspension order arrived is not kept: collection
                // stopped when the order was recorded.
                Some(CaptureEvent::Read(_)) if periods.suspended => {
                    tracing::info!("a read under a suspension order was not stored");
                }
                Some(CaptureEvent::Read(r)) => {
                    let meta = ReadMeta {
                        read_id: 0,
                        camera_id: camera_id.clone(),
                        plate: r.plate.clone(),
                        confidence_pm: (r.confidence.clamp(0.0, 1.0) * 1000.0).round() as u16,
                        first_seen: r.first_seen,
                        best_seen: r.best_seen,
                        position: location.current(),
                        plate_box: [r.plate_box.x as u16, r.plate_box.y as u16, r.plate_box.w as u16, r.plate_box.h as u16],
                        pictures: PictureSet::default(),
                    };
                    let pics = NewPictures { plate_crop: Some(r.plate_crop_jpeg), context: Some(r.context_jpeg) };
                    let (inserted, alerts) = loop {
                        let (st, m, p) = (store.clone(), meta.clone(), pics.clone());
                        let (tid, tolerance) = (trailer_id.clone(), config.store.hotlist_ocr_tolerance);
                        // Store first (durable), then match: an alert always refers to a stored read.
                        let result = tokio::task::spawn_blocking(move || {
                            let inserted = st.insert_read(m, p)?;
                            let alerts = match inserted {
                                Inserted::Stored(id) => st.raise_alerts(&tid, id, tolerance)?,
                                Inserted::DestroyedAcp => Vec::new(),
                            };
                            Ok::<_, StoreError>((inserted, alerts))
                        })
                        .await
                        .map_err(|e| DaemonError::Internal(e.to_string()))?;
                        match result {
                            Ok(done) => break done,
                            // Never drop an unsynced read: hold it and wait for the outbox to drain.
                            // The capture thread blocks meanwhile and drops frames instead.
                            Err(StoreError::Full { used, limit }) => {
                                tracing::warn!(used, limit, "storage full: capture paused until synced data can be dropped");
                                health.changed();
                                notify(&[sd_notify::NotifyState::Status("storage full")]);
                                // Waiting is progress: the watchdog is fed meanwhile.
                                for _ in 0..5 {
                                    beats.store();
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                }
                            }
                            Err(e) => return Err(e.into()),
                        }
                    };
                    match inserted {
                        Inserted::Stored(id) => {
                            counters.reads.fetch_add(1, Ordering::Relaxed);
                            health.note_read(r.best_seen);
                            tracing::info!(read_id = id, confidence = r.confidence, sightings = r.sightings, trailer = %trailer_id, "read stored");
                            for a in &alerts {
                                tracing::warn!(alert_id = a.alert_id, read_id = id, list = %a.list_name, category = ?a.category, "hotlist hit: verify against state systems before acting");
                            }
                            wake.notify_one();
                        }
                        // Never logged with its plate: the participant's plate must leave no trace.
                        Inserted::DestroyedAcp => tracing::info!("read destroyed at collection (ACP)"),
                    }
                }
                None => break,
            },
            _ = gps_tick.tick(), if !stopping => {
                let here = location.current();
                let at = clock.now_ms();
                let order = store.suspension()?;
                if order.is_some() != periods.suspended {
                    if let Some(order) = order {
                        periods.suspend(&store, at)?;
                        collecting.store(false, Ordering::Relaxed);
                        tracing::warn!(%order, "suspension order: collection stopped");
                        notify(&[sd_notify::NotifyState::Status("suspended: not collecting")]);
                    } else {
                        periods.lift(&store, &trailer_id, at, here)?;
                        collecting.store(!periods.moving, Ordering::Relaxed);
                        tracing::info!("suspension lifted: collection resumes");
                        notify(&[sd_notify::NotifyState::Status("collecting")]);
                    }
                    wake.notify_one();
                }
                if let Some(kind) = deployments.observe(at, here) {
                    let event = DeploymentEvent {
                        trailer_id: trailer_id.clone(),
                        event_id: store.next_id()?,
                        kind,
                        time: at,
                        position: here,
                        note: "from the GPS fix".into(),
                    };
                    store.record_deployment(&event)?;
                    match kind {
                        DeploymentEventKind::End => {
                            collecting.store(false, Ordering::Relaxed);
                            periods.deployment_end(&store, at)?;
                            tracing::info!("the trailer is moving: deployment ended, collection stopped");
                            notify(&[sd_notify::NotifyState::Status("moving: not collecting")]);
                        }
                        DeploymentEventKind::Start => {
                            periods.deployment_start(&store, &trailer_id, at, here)?;
                            collecting.store(!periods.suspended, Ordering::Relaxed);
                            tracing::info!(lat = here.lat(), lon = here.lon(), "the trailer stands at a new place: deployment started, collecting");
                            notify(&[sd_notify::NotifyState::Status("collecting")]);
                        }
                    }
                    wake.notify_one();
                }
            }
            _ = shutdown.changed(), if !stopping => {
                if *shutdown.borrow() {
                    tracing::info!("shutting down: stopping capture");
                    stopping = true;
                    stop_capture.store(true, Ordering::Relaxed);
                }
            }
        }
    }
    let capture_result = capture_thread
        .join()
        .map_err(|_| DaemonError::Internal("capture thread panicked".into()))?;
    let end_reason = match &capture_result {
        Ok(true) => UsageReason::EndOfStream,
        Ok(false) => UsageReason::DaemonStop,
        Err(_) => UsageReason::CameraDown,
    };
    periods.close(&store, clock.now_ms(), end_reason)?;
    wake.notify_one();
    notify(&[sd_notify::NotifyState::Stopping]);

    // A file replay ends by itself: give the outbox its chance to drain first.
    if let Some(link) = link {
        if matches!(capture_result, Ok(true)) && !*shutdown.borrow() {
            let deadline = Instant::now() + Duration::from_secs(config.sync.drain_timeout_s);
            while !store.backlog_empty() && Instant::now() < deadline && !*shutdown.borrow() {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = shutdown.changed() => {}
                }
            }
            let left = store.backlog_len();
            if left > 0 {
                tracing::warn!(
                    left,
                    "outbox not drained before exit; it will sync on the next start"
                );
            } else {
                tracing::info!("outbox drained");
            }
        }
        let _ = link_stop_tx.send(true);
        link.await.map_err(|e| DaemonError::Internal(e.to_string()))??;
    }
    drop(retention);
    let _ = gps_stop_tx.send(true);
    if let Some(gps) = gps {
        let _ = gps.await;
    }
    watchdog.abort();
    store.mark_clean()?;
    tracing::info!(
        frames_decoded = counters.frames_decoded.load(Ordering::Relaxed),
        frames_analysed = counters.frames_analysed.load(Ordering::Relaxed),
        frames_gated = counters.frames_gated.load(Ordering::Relaxed),
        reads = counters.reads.load(Ordering::Relaxed),
        "appliance stopped"
    );
    capture_result.map(|_| ()).map_err(DaemonError::from)
}

/// What the capture thread hands to the store task, in order.
#[derive(Debug)]
enum CaptureEvent {
    Read(PassRead),
    /// Frames started (`up`) or stopped flowing at `at`.
    Camera {
        up: bool,
        at: i64,
    },
}

/// The open active-use period, owned by the store task: open while frames flow and the trailer
/// stands (is deployed).
struct Periods {
    open: Option<ActiveUse>,
    /// A period was opened before (the next one starts because the camera came back).
    started: bool,
    /// Frames are flowing.
    camera: bool,
    /// The trailer is between deployments.
    moving: bool,
    /// A suspension order is in force.
    suspended: bool,
}

impl Periods {
    fn camera_up(
        &mut self,
        store: &Store,
        trailer_id: &str,
        at: i64,
        position: trailer_wire::Position,
    ) -> Result<(), StoreError> {
        self.camera = true;
        let why = if self.started { UsageReason::CameraUp } else { UsageReason::DaemonStart };
        self.open_if_collecting(store, trailer_id, at, position, why)
    }

    fn camera_down(&mut self, store: &Store, at: i64) -> Result<(), StoreError> {
        self.camera = false;
        self.close(store, at, UsageReason::CameraDown)
    }

    fn deployment_end(&mut self, store: &Store, at: i64) -> Result<(), StoreError> {
        self.moving = true;
        self.close(store, at, UsageReason::DeploymentEnd)
    }

    fn deployment_start(
        &mut self,
        store: &Store,
        trailer_id: &str,
        at: i64,
        position: trailer_wire::Position,
    ) -> Result<(), StoreError> {
        self.moving = false;
        self.open_if_collecting(store, trailer_id, at, position, UsageReason::DeploymentStart)
    }

    /// A suspension order arrived: the open period ends, and none opens until it is lifted.
    fn suspend(&mut self, store: &Store, at: i64) -> Result<(), StoreError> {
        self.suspended = true;
        self.close(store, at, UsageReason::Suspended)
    }

    fn lift(
        &mut self,
        store: &Store,
        trailer_id: &str,
        at: i64,
        position: trailer_wire::Position,
    ) -> Result<(), StoreError> {
        self.suspended = false;
        self.open_if_collecting(store, trailer_id, at, position, UsageReason::SuspensionLifted)
    }

    /// Opens a period if frames flow, the trailer stands, no suspension order is in force and
    /// none is open; it records the hotlists loaded now as the databases compared against.
    fn open_if_collecting(
        &mut self,
        store: &Store,
        trailer_id: &str,
        at: i64,
        position: trailer_wire::Position,
        why: UsageReason,
    ) -> Result<(), StoreError> {
        if !self.camera || self.moving || self.suspended || self.open.is_some() {
            return Ok(());
        }
        let period = ActiveUse {
            trailer_id: trailer_id.into(),
            period_id: store.next_id()?,
            start: at,
            end: None,
            start_reason: why,
            end_reason: None,
            position,
            lists_compared: store.hotlists()?.into_iter().map(|l| l.source).collect(),
        };
        store.record_usage(&period)?;
        self.open = Some(period);
        self.started = true;
        Ok(())
    }

    fn close(&mut self, store: &Store, at: i64, why: UsageReason) -> Result<(), StoreError> {
        if let Some(p) = self.open.take() {
            store.record_usage(&ActiveUse { end: Some(at), end_reason: Some(why), ..p })?;
        }
        Ok(())
    }
}

/// The capture thread's signals from the async side.
struct Flags {
    /// Stop capturing (the daemon is stopping).
    stop: Arc<AtomicBool>,
    /// Analyse frames (cleared while the trailer is between deployments).
    collecting: Arc<AtomicBool>,
    /// Beaten at every turn of the loop, frame or not: the watchdog's proof of progress.
    beats: Arc<crate::watchdog::Beats>,
}

/// The capture thread. Returns `Ok(true)` at the end of a file, `Ok(false)` when stopped. A live
/// source that fails or stalls is reopened with jittered exponential backoff; while it is away
/// the health state says "camera down" and no active-use period is open.
fn capture_loop(
    cfg: Config,
    engine: Engine,
    events: mpsc::Sender<CaptureEvent>,
    flags: Flags,
    counters: Arc<Counters>,
    clock: SharedClock,
    health: &HealthState,
) -> Result<bool, CaptureError> {
    let analyser = Analyser::new(&cfg, engine, counters.clone(), clock.now_ms());
    let mut camera = Camera {
        cfg,
        analyser,
        events,
        flags,
        counters,
        clock,
        health,
        flowing: false,
        paused: false,
    };
    // Jitter: between half and all of the step, so a fleet does not reconnect in step.
    let mut backoff = trailer_wire::backoff::Backoff::new(
        Duration::from_millis(camera.cfg.capture.reconnect_initial_ms),
        Duration::from_millis(camera.cfg.capture.reconnect_max_ms),
    )
    .with_jitter(0.5);
    loop {
        let result = camera.stream();
        // A pass cannot continue across a gap: what was seen so far becomes reads.
        for r in camera.analyser.finish() {
            camera.send(CaptureEvent::Read(r));
        }
        let error = match result {
            Ok(ended) => return Ok(ended),
            Err(e) if camera.cfg.capture.is_file() => return Err(e),
            Err(e) => e,
        };
        camera.health.set_camera(CameraState::Down);
        if camera.flowing {
            camera.flowing = false;
            backoff.succeeded();
            camera.send(CaptureEvent::Camera { up: false, at: camera.clock.now_ms() });
        }
        let wait = backoff.failed(rand::random::<f64>());
        tracing::warn!(error = %error, retry_in_ms = wait.as_millis() as u64, "camera down");
        let until = Instant::now() + wait;
        while Instant::now() < until {
            camera.flags.beats.capture();
            if camera.flags.stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
        }
    }
}

/// What the capture thread works with across the lives of its pipeline.
struct Camera<'a> {
    cfg: Config,
    analyser: Analyser,
    events: mpsc::Sender<CaptureEvent>,
    flags: Flags,
    counters: Arc<Counters>,
    clock: SharedClock,
    health: &'a HealthState,
    /// Frames are flowing (an "up" event was sent and no "down" since).
    flowing: bool,
    /// Frames are passed over: the trailer is between deployments.
    paused: bool,
}

impl Camera<'_> {
    /// Hands an event to the store task; false once it is gone (the daemon is stopping).
    fn send(&self, e: CaptureEvent) -> bool {
        self.events.blocking_send(e).is_ok()
    }

    /// One life of the pipeline: until the end of a file, a stop, or an error.
    fn stream(&mut self) -> Result<bool, CaptureError> {
        let mut capture = Capture::open(&self.cfg.capture)?;
        let result = loop {
            self.flags.beats.capture();
            if self.flags.stop.load(Ordering::Relaxed) {
                break Ok(false);
            }
            let frame = match capture.next(Duration::from_millis(500)) {
                Ok(Next::Frame(f)) => f,
                Ok(Next::Idle) => continue,
                Ok(Next::EndOfStream) if self.cfg.capture.is_file() => break Ok(true),
                Ok(Next::EndOfStream) => {
                    break Err(CaptureError::Stream {
                        element: "source".into(),
                        message: "the camera ended its stream".into(),
                    });
                }
                Err(e) => break Err(e),
            };
            if !self.flowing {
                self.flowing = true;
                self.health.set_camera(CameraState::Up);
                tracing::info!(source = %self.cfg.capture.source, "camera up: frames flowing");
                self.send(CaptureEvent::Camera { up: true, at: self.clock.now_ms() });
            }
            self.counters.frames_decoded.store(capture.decoded(), Ordering::Relaxed);
            if !self.flags.collecting.load(Ordering::Relaxed) {
                // Between deployments: the passes in view end, nothing new is analysed, and the
                // pipeline decodes as little as it does on an empty road.
                if !self.paused {
                    self.paused = true;
                    tracing::info!("capture paused: no frame is analysed until the trailer stands");
                }
                if !self.analyser.finish().into_iter().all(|r| self.send(CaptureEvent::Read(r))) {
                    break Ok(false);
                }
                capture.judged(frame.pts_ms, self.cfg.gate.idle_fps.max(1));
                continue;
            }
            if self.paused {
                self.paused = false;
                tracing::info!("capture resumed: analysing frames again");
            }
            let reads = self.analyser.frame(&frame, self.clock.now_ms());
            if !reads.into_iter().all(|r| self.send(CaptureEvent::Read(r))) {
                break Ok(false);
            }
            capture.judged(frame.pts_ms, self.analyser.idle_fps(&self.cfg));
        };
        self.counters.frames_decoded.store(capture.decoded(), Ordering::Relaxed);
        tracing::info!(frames = capture.frames(), gate = ?self.analyser.gate_counts(), "capture stopped");
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{DAY_MS, ManualClock};
    use trailer_wire::{FixQuality, Position};

    /// A suspension order ends the open period of active use (the public log shows the gap and
    /// why); nothing reopens one while it is in force, not the camera coming back nor a new
    /// deployment; its lift opens the next period.
    #[test]
    fn a_suspension_is_a_gap_in_active_use_until_lifted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 60, Arc::new(ManualClock::new(DAY_MS))).expect("open");
        let here = Position::from_degrees(44.9, -93.2, FixQuality::Fix3d);
        let mut p =
            Periods { open: None, started: false, camera: false, moving: false, suspended: false };
        p.camera_up(&store, "t1", DAY_MS + 1, here).expect("up");
        assert!(p.open.is_some());
        p.suspend(&store, DAY_MS + 10).expect("suspend");
        assert!(p.open.is_none());
        p.camera_down(&store, DAY_MS + 20).expect("down");
        p.camera_up(&store, "t1", DAY_MS + 30, here).expect("up");
        p.deployment_end(&store, DAY_MS + 40).expect("end");
        p.deployment_start(&store, "t1", DAY_MS + 50, here).expect("start");
        assert!(p.open.is_none(), "nothing opens under the order");
        p.lift(&store, "t1", DAY_MS + 60, here).expect("lift");
        let reasons: Vec<_> = store
            .usage_periods()
            .expect("periods")
            .into_iter()
            .map(|u| (u.start, u.start_reason, u.end, u.end_reason))
            .collect();
        assert_eq!(
            reasons,
            [
                (
                    DAY_MS + 1,
                    UsageReason::DaemonStart,
                    Some(DAY_MS + 10),
                    Some(UsageReason::Suspended)
                ),
                (DAY_MS + 60, UsageReason::SuspensionLifted, None, None),
            ]
        );
    }
}
