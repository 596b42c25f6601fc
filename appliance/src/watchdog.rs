//! systemd's watchdog, fed only while the daemon makes progress.
//!
//! A timer that pings `WATCHDOG=1` from the async runtime proves only that the runtime turns:
//! a capture thread stuck inside GStreamer, or a store task waiting forever on a write, would be
//! kept alive by it. Instead each stage beats where its work goes round (the capture thread at
//! every frame, every idle wait and every reconnect pause; the store task at every event and
//! every second's tick), and the ping is sent only while both have beaten within the last
//! `stall`. A stage stuck longer than that lets the watchdog expire, and systemd restarts the
//! daemon (the store is crash-safe: what was stored survives).
//!
//! [`Progress`] decides (no I/O, time handed in); [`run`] is the task that asks it and pings.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The beats of the stages that must make progress. Shared: the capture thread and the store
/// task beat, the watchdog task reads.
#[derive(Debug, Default)]
pub struct Beats {
    capture: AtomicU64,
    store: AtomicU64,
    /// The capture thread has ended (a file played out, or a stop): it is no longer asked to
    /// beat while the daemon drains its outbox.
    capture_done: AtomicBool,
}

impl Beats {
    pub fn new() -> Arc<Beats> {
        Arc::new(Beats::default())
    }

    pub fn capture(&self) {
        self.capture.fetch_add(1, Ordering::Relaxed);
    }

    pub fn store(&self) {
        self.store.fetch_add(1, Ordering::Relaxed);
    }

    pub fn capture_ended(&self) {
        self.capture_done.store(true, Ordering::Relaxed);
    }

    fn read(&self) -> (u64, u64, bool) {
        (
            self.capture.load(Ordering::Relaxed),
            self.store.load(Ordering::Relaxed),
            self.capture_done.load(Ordering::Relaxed),
        )
    }
}

/// A stage that has not beaten within the allowed time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stalled {
    Capture,
    Store,
}

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stalled::Capture => "the capture pipeline",
            Stalled::Store => "the store",
        })
    }
}

/// When each stage last beat, as seen by the watchdog's looks.
#[derive(Debug)]
pub struct Progress {
    stall: Duration,
    last: (u64, u64),
    capture_at: Instant,
    store_at: Instant,
}

impl Progress {
    pub fn new(stall: Duration, now: Instant) -> Progress {
        Progress { stall, last: (0, 0), capture_at: now, store_at: now }
    }

    /// A look at the beats at `now`: `Ok` if every stage that should beat has beaten within
    /// `stall`, else the first that has not.
    pub fn look(&mut self, beats: &Beats, now: Instant) -> Result<(), Stalled> {
        let (capture, store, capture_done) = beats.read();
        if capture != self.last.0 || capture_done {
            self.capture_at = now;
        }
        if store != self.last.1 {
            self.store_at = now;
        }
        self.last = (capture, store);
        if now.saturating_duration_since(self.capture_at) > self.stall {
            return Err(Stalled::Capture);
        }
        if now.saturating_duration_since(self.store_at) > self.stall {
            return Err(Stalled::Store);
        }
        Ok(())
    }
}

/// The shortest stall noticed: the stages beat at least every half second (the capture thread)
/// and every second (the store task).
pub const MIN_STALL: Duration = Duration::from_millis(2500);

/// How long a stage may go without a beat under a watchdog of `period`: half of it (the ping is
/// withheld with time to spare before systemd's deadline), at least [`MIN_STALL`].
pub fn stall_for(period: Duration) -> Duration {
    (period / 2).max(MIN_STALL)
}

/// Pings `WATCHDOG=1` at a quarter of the watchdog's period while [`Progress`] allows it, until
/// `stop`. Without a watchdog (no `WATCHDOG_USEC`), returns at once.
pub async fn run(beats: Arc<Beats>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(period) = sd_notify::watchdog_enabled().filter(|p| !p.is_zero()) else { return };
    let stall = stall_for(period);
    let mut progress = Progress::new(stall, Instant::now());
    let mut tick = tokio::time::interval(period / 4);
    let mut reported = None;
    loop {
        tokio::select! {
            _ = tick.tick() => match progress.look(&beats, Instant::now()) {
                Ok(()) => {
                    reported = None;
                    let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                }
                Err(stage) => {
                    if reported != Some(stage) {
                        tracing::error!(%stage, stalled_for_ms = stall.as_millis() as u64,
                            "no progress: the watchdog is no longer fed, systemd will restart the daemon");
                        reported = Some(stage);
                    }
                }
            },
            _ = stop.changed() => if *stop.borrow() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(10);

    #[test]
    fn stages_that_beat_keep_the_watchdog_fed() {
        let t0 = Instant::now();
        let beats = Beats::default();
        let mut p = Progress::new(STALL, t0);
        for s in 1..=10 {
            beats.capture();
            beats.store();
            assert_eq!(p.look(&beats, t0 + Duration::from_secs(5 * s)), Ok(()));
        }
    }

    /// A wedged pipeline (the capture thread stops beating while the store task goes on) is
    /// reported once the stall is longer than allowed, and the watchdog is fed again when it
    /// beats again.
    #[test]
    fn a_wedged_pipeline_stops_the_pings() {
        let t0 = Instant::now();
        let beats = Beats::default();
        let mut p = Progress::new(STALL, t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        beats.capture();
        beats.store();
        assert_eq!(p.look(&beats, at(1)), Ok(()));
        beats.store();
        assert_eq!(p.look(&beats, at(8)), Ok(()), "within the allowed stall");
        beats.store();
        assert_eq!(p.look(&beats, at(12)), Err(Stalled::Capture));
        beats.capture();
        beats.store();
        assert_eq!(p.look(&beats, at(13)), Ok(()));
    }

    #[test]
    fn a_stuck_store_stops_the_pings() {
        let t0 = Instant::now();
        let beats = Beats::default();
        let mut p = Progress::new(STALL, t0);
        beats.capture();
        beats.store();
        assert_eq!(p.look(&beats, t0 + Duration::from_secs(1)), Ok(()));
        beats.capture();
        assert_eq!(p.look(&beats, t0 + Duration::from_secs(12)), Err(Stalled::Store));
    }

    /// Once the capture thread has ended (a file played out), the daemon drains its outbox
    /// without it: only the store must go on beating.
    #[test]
    fn an_ended_capture_is_not_waited_for() {
        let t0 = Instant::now();
        let beats = Beats::default();
        let mut p = Progress::new(STALL, t0);
        beats.capture_ended();
        for s in 1..=5 {
            beats.store();
            assert_eq!(p.look(&beats, t0 + Duration::from_secs(9 * s)), Ok(()));
        }
    }
}
