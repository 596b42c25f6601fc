//! The per-frame path from a decoded frame to finished vehicle passes: pacing, the motion gate,
//! the engine and the pass tracker. The daemon's capture thread and `bench-capture` both drive
//! it, so the benchmark measures exactly what the trailer runs.
use crate::capture::{Capture, CaptureError, Frame, Next};
use crate::config::{Config, Pacing};
use crate::engine::Engine;
use crate::gate::{GateCounts, MotionGate};
use crate::pass::{PassRead, PassTracker};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters shared by the stages (the health module and the benchmark read them).
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames the decoder produced.
    pub frames_decoded: AtomicU64,
    /// Frames handed over by the pipeline (after its rate limit and drops).
    pub frames_delivered: AtomicU64,
    pub frames_analysed: AtomicU64,
    /// Frames the motion gate kept from the engine.
    pub frames_gated: AtomicU64,
    pub reads: AtomicU64,
}

pub struct Analyser {
    engine: Engine,
    tracker: PassTracker,
    gate: MotionGate,
    pacing: Pacing,
    interval_ms: i64,
    start_wall: i64,
    next_due: i64,
    counters: Arc<Counters>,
}

impl Analyser {
    /// `start_wall`: the wall clock when the stream started (replays map stream time onto it).
    pub fn new(cfg: &Config, engine: Engine, counters: Arc<Counters>, start_wall: i64) -> Analyser {
        Analyser {
            engine,
            tracker: PassTracker::new(cfg.pass.clone()),
            gate: MotionGate::new(cfg.gate.clone()),
            pacing: cfg.capture.effective_pacing(),
            interval_ms: (1000.0 / cfg.capture.analyse_fps) as i64,
            start_wall,
            next_due: i64::MIN,
            counters,
        }
    }

    /// Takes one delivered frame (`now`: the wall clock at arrival); returns the passes it ended.
    pub fn frame(&mut self, frame: &Frame, now: i64) -> Vec<PassRead> {
        self.counters.frames_delivered.fetch_add(1, Ordering::Relaxed);
        // Video time: replays use stream time; live frames are stamped on arrival.
        let time = match (self.pacing, frame.pts_ms) {
            (Pacing::EveryFrame, Some(pts)) => self.start_wall + pts,
            _ => now,
        };
        if time < self.next_due {
            return Vec::new();
        }
        if !self.gate.decide(time, &frame.image, self.tracker.open_passes() > 0).analyse() {
            self.counters.frames_gated.fetch_add(1, Ordering::Relaxed);
            return Vec::new();
        }
        self.next_due = time + self.interval_ms;
        self.counters.frames_analysed.fetch_add(1, Ordering::Relaxed);
        match self.engine.read(&frame.image) {
            Ok(reading) => self.tracker.observe(time, &frame.image, &reading.plates),
            Err(e) => {
                tracing::warn!(error = %e, "engine failed on a frame");
                Vec::new()
            }
        }
    }

    /// Ends every open pass (end of stream or shutdown).
    pub fn finish(&mut self) -> Vec<PassRead> {
        self.tracker.finish()
    }

    /// The frame rate the pipeline should keep to now: `idle_fps` while the scene is quiet,
    /// 0 (no extra limit) otherwise.
    pub fn idle_fps(&self, cfg: &Config) -> u32 {
        if self.gate.quiet() { cfg.gate.idle_fps } else { 0 }
    }

    pub fn gate_counts(&self) -> GateCounts {
        self.gate.counts()
    }
}

/// What a replay of a video file produced.
#[derive(Debug)]
pub struct Replay {
    pub reads: Vec<PassRead>,
    /// When each read came out, in video time (milliseconds from the start).
    pub read_out_ms: Vec<i64>,
    /// The video time of each frame the engine ran on.
    pub analysed_ms: Vec<i64>,
    /// Frames the decoder produced.
    pub decoded: u64,
    /// Compressed frames skipped before the decoder (keyframe-only decoding while quiet).
    pub skipped_undecoded: u64,
    pub delivered: u64,
    pub analysed: u64,
    pub gate: GateCounts,
    /// The last frame's presentation time: the video's length, near enough.
    pub video_ms: i64,
}

/// Plays a video file through the whole capture path (decode, rate limits, gate, engine, passes)
/// as fast as it decodes, every frame in order, and returns the reads with the counts. The
/// source in `cfg.capture` must be a file.
pub fn replay(cfg: &Config, engine: Engine) -> Result<Replay, CaptureError> {
    let mut cfg = cfg.clone();
    cfg.capture.pacing = Some(Pacing::EveryFrame);
    let counters = Arc::new(Counters::default());
    let mut analyser = Analyser::new(&cfg, engine, counters.clone(), 0);
    let mut capture = Capture::open(&cfg.capture)?;
    let (mut reads, mut read_out_ms, mut analysed_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut video_ms = 0;
    loop {
        match capture.next(Duration::from_secs(5))? {
            Next::Frame(f) => {
                let at = f.pts_ms.unwrap_or(0);
                video_ms = at.max(video_ms);
                let before = counters.frames_analysed.load(Ordering::Relaxed);
                let out = analyser.frame(&f, 0);
                if counters.frames_analysed.load(Ordering::Relaxed) > before {
                    analysed_ms.push(at);
                }
                read_out_ms.extend(out.iter().map(|_| at));
                reads.extend(out);
                capture.judged(f.pts_ms, analyser.idle_fps(&cfg));
            }
            // `next` turns a long silence into `Stalled`; a short one is waited out.
            Next::Idle => {}
            Next::EndOfStream => break,
        }
    }
    let last = analyser.finish();
    read_out_ms.extend(last.iter().map(|_| video_ms));
    reads.extend(last);
    Ok(Replay {
        reads,
        read_out_ms,
        analysed_ms,
        decoded: capture.decoded(),
        skipped_undecoded: capture.skipped(),
        delivered: counters.frames_delivered.load(Ordering::Relaxed),
        analysed: counters.frames_analysed.load(Ordering::Relaxed),
        gate: analyser.gate_counts(),
        video_ms,
    })
}
