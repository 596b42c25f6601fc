//! Injected time. Everything that decides by age (retention, resend timers, periods) asks a
//! [`Clock`], so tests can run 60 days in milliseconds.
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Unix milliseconds, UTC.
pub type UnixMs = i64;

pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> UnixMs;
}

/// The system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> UnixMs {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock tests move by hand.
#[derive(Debug, Default, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: UnixMs) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(start)))
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn set(&self, ms: UnixMs) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> UnixMs {
        self.0.load(Ordering::SeqCst)
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// The earliest time a set clock can show: the release's date (or the build's
/// `SOURCE_DATE_EPOCH`, as a reproducible image build sets it). A trailer whose real-time clock
/// lost its battery boots in 1970 or 2000; reads stamped then would be wrong evidence, and
/// retention would count their age from the wrong day.
pub fn clock_floor_ms() -> UnixMs {
    const RELEASED_MS: UnixMs = 1_796_083_200_000; // 2026-12-01T00:00:00Z
    let built = option_env!("SOURCE_DATE_EPOCH")
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map_or(0, |s| s.saturating_mul(1000));
    // Raised, never lowered, from the environment (a test of the wait).
    let raised = std::env::var("TRAILER_CLOCK_FLOOR_MS")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(0);
    RELEASED_MS.max(built).max(raised)
}

/// Whether `now` can be a set clock's reading.
pub fn plausible(now: UnixMs, floor: UnixMs) -> bool {
    now >= floor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_before_the_release_is_not_set() {
        let floor = clock_floor_ms();
        assert!(floor >= 1_796_083_200_000);
        assert!(!plausible(0, floor), "1970: a real-time clock without its battery");
        assert!(!plausible(946_684_800_000, floor), "2000-01-01");
        assert!(plausible(floor, floor));
        assert!(plausible(SystemClock.now_ms(), floor), "this machine's clock is set");
    }
}
