//! Keyframe-only decoding while the scene is quiet: the decoder is most of what an empty road
//! costs, and a delta frame cannot be decoded without the frames before it, so frames are skipped
//! a group of pictures (GOP) at a time, before the decoder.
//!
//! While the motion gate says quiet, each keyframe is decoded and handed to the gate. The probe
//! in front of the decoder holds the first delta frame after it until the gate has judged that
//! keyframe (a rendezvous): if the gate saw motion, the whole GOP is decoded from there with its
//! references intact; if not, the rest of the GOP is skipped. So a vehicle is noticed at the
//! first keyframe it is in (cameras on trailers are set to a keyframe a second or faster) and
//! nothing after that is lost. A stream whose decoder holds frames back (B-frames, frame
//! threading) would make every rendezvous wait out its limit: after the first such timeout the
//! decision falls back to the gate's latest verdict.
//!
//! This is the state machine only; `capture` wires it to a pad probe and to the analyser.
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct State {
    /// The gate's latest verdict.
    quiet: bool,
    /// Presentation time (ms) of the latest keyframe that entered the decoder.
    key_pts: Option<u64>,
    /// Presentation time of the latest frame the gate judged (or the rate limit dropped).
    judged_pts: Option<u64>,
    /// The rest of this GOP is skipped: the decoder lacks its references.
    skipping: bool,
    /// A rendezvous timed out: stop waiting, decide from the latest verdict.
    no_rendezvous: bool,
    closing: bool,
    skipped: u64,
}

#[derive(Debug)]
pub struct QuietDecoding {
    state: Mutex<State>,
    changed: Condvar,
    /// How long the probe waits for the gate's verdict on a keyframe.
    wait: Duration,
}

impl QuietDecoding {
    pub fn new(wait: Duration) -> QuietDecoding {
        QuietDecoding { state: Mutex::new(State::default()), changed: Condvar::new(), wait }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The probe in front of the decoder: should this compressed frame be decoded?
    pub fn admit(&self, keyframe: bool, pts_ms: Option<u64>) -> bool {
        let mut s = self.lock();
        if keyframe {
            s.skipping = false;
            s.key_pts = pts_ms;
            return true;
        }
        if !s.skipping
            && s.quiet
            && !s.no_rendezvous
            && let Some(key) = s.key_pts
        {
            let deadline = Instant::now() + self.wait;
            while s.quiet && !s.closing && s.judged_pts.is_none_or(|j| j < key) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    tracing::info!(
                        wait_ms = self.wait.as_millis() as u64,
                        "the gate's verdict on a keyframe did not come in time (a decoder that \
                         holds frames back?): quiet decoding now follows the previous verdict"
                    );
                    s.no_rendezvous = true;
                    break;
                }
                s = self.changed.wait_timeout(s, left).map(|r| r.0).unwrap_or_else(|p| {
                    // A poisoned lock only means a panicking holder; the state is plain data.
                    p.into_inner().0
                });
            }
        }
        if s.skipping || (s.quiet && !s.closing) {
            s.skipping = true;
            s.skipped += 1;
            return false;
        }
        true
    }

    /// The gate judged the frame at `pts_ms`: `quiet` is its verdict now.
    pub fn judged(&self, pts_ms: Option<u64>, quiet: bool) {
        let mut s = self.lock();
        s.quiet = quiet;
        if let Some(p) = pts_ms {
            s.judged_pts = Some(s.judged_pts.map_or(p, |j| j.max(p)));
        }
        drop(s);
        self.changed.notify_all();
    }

    /// A frame never reached the gate (the rate limit dropped it): nothing to wait for.
    pub fn passed_over(&self, pts_ms: u64) {
        let mut s = self.lock();
        s.judged_pts = Some(s.judged_pts.map_or(pts_ms, |j| j.max(pts_ms)));
        drop(s);
        self.changed.notify_all();
    }

    /// The pipeline is stopping: release a waiting probe.
    pub fn close(&self) {
        self.lock().closing = true;
        self.changed.notify_all();
    }

    /// Compressed frames skipped before the decoder so far.
    pub fn skipped(&self) -> u64 {
        self.lock().skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const LONG: Duration = Duration::from_secs(5);

    #[test]
    fn everything_is_decoded_while_the_scene_is_busy() {
        let q = QuietDecoding::new(LONG);
        q.judged(Some(0), false);
        assert!(q.admit(true, Some(1000)));
        for pts in 1001..1030 {
            assert!(q.admit(false, Some(pts)));
        }
        assert_eq!(q.skipped(), 0);
    }

    #[test]
    fn a_quiet_keyframe_skips_the_rest_of_its_gop_until_the_next_keyframe() {
        let q = QuietDecoding::new(LONG);
        q.judged(Some(900), true);
        assert!(q.admit(true, Some(1000)));
        q.judged(Some(1000), true);
        assert!(!q.admit(false, Some(1033)));
        // The gate wakes up (an idle look saw something): the GOP stays skipped, its references
        // are gone; the next keyframe is decoded, and everything after it.
        q.judged(None, false);
        assert!(!q.admit(false, Some(1066)));
        assert!(q.admit(true, Some(2000)));
        assert!(q.admit(false, Some(2033)));
        assert_eq!(q.skipped(), 2);
    }

    #[test]
    fn the_first_delta_waits_for_the_verdict_on_its_keyframe() {
        let q = Arc::new(QuietDecoding::new(LONG));
        q.judged(Some(900), true);
        assert!(q.admit(true, Some(1000)));
        // The gate sees motion on that keyframe a moment later, on another thread.
        let gate = {
            let q = q.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                q.judged(Some(1000), false);
            })
        };
        // The delta waits for it and is decoded: the GOP keeps its references.
        assert!(q.admit(false, Some(1033)));
        gate.join().expect("gate thread");
        assert!(q.admit(false, Some(1066)));
        assert_eq!(q.skipped(), 0);
    }

    #[test]
    fn a_verdict_that_never_comes_stops_the_waiting() {
        let q = QuietDecoding::new(Duration::from_millis(20));
        q.judged(Some(900), true);
        assert!(q.admit(true, Some(1000)));
        assert!(!q.admit(false, Some(1033)), "timed out, still quiet: skipped");
        // From now on no waits: decisions follow the latest verdict at once.
        assert!(q.admit(true, Some(2000)));
        let t = Instant::now();
        assert!(!q.admit(false, Some(2033)));
        assert!(t.elapsed() < Duration::from_millis(20));
        q.judged(Some(2000), false);
        assert!(q.admit(true, Some(3000)));
        assert!(q.admit(false, Some(3033)));
    }

    #[test]
    fn a_frame_the_rate_limit_dropped_releases_the_wait() {
        let q = QuietDecoding::new(LONG);
        q.judged(Some(900), true);
        assert!(q.admit(true, Some(1000)));
        q.passed_over(1000);
        let t = Instant::now();
        assert!(!q.admit(false, Some(1033)));
        assert!(t.elapsed() < Duration::from_secs(1));
        // Closing lets everything through without waiting.
        q.close();
        assert!(q.admit(true, Some(2000)));
    }
}
