//! The motion gate: decides, per frame, whether the engine runs. A trailer watches an empty road
//! most of the time; running the detector on every frame of it would spend the battery on
//! nothing. The gate compares a small grey thumbnail of each frame with the previous one (a few
//! thousand samples, microseconds) and lets a frame through when:
//! - enough of the thumbnail changed (something moves), or
//! - something moved within the last `hold_ms` (a vehicle that stops at a light), or
//! - a vehicle pass is still open (the caller says so), or
//! - `idle_interval_ms` passed since the last analysed frame (the detector at a low rate, so a
//!   vehicle that arrived slowly, or parked in view, is still seen).
//!
//! Pure logic: no I/O, time passed in. Its decisions are counted for health and benchmarks.
use crate::engine::RgbImage;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GateConfig {
    /// Off: every paced frame is analysed.
    pub enabled: bool,
    /// Thumbnail width in samples (height keeps the aspect).
    pub thumb_width: u32,
    /// A sample "changed" when its grey level moved by more than this (0-255).
    pub pixel_threshold: u8,
    /// Motion: at least this share of the samples changed.
    #[serde(serialize_with = "crate::config::short_f32")]
    pub min_changed: f32,
    /// Keep analysing this long after the last motion.
    pub hold_ms: i64,
    /// Analyse at least one frame this often even when nothing moves.
    pub idle_interval_ms: i64,
    /// Frames per second the pipeline delivers while the gate is idle (nothing moved within
    /// `hold_ms`, no pass open); the first frame that moves lifts the limit (0: no idle limit).
    pub idle_fps: u32,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            enabled: true,
            thumb_width: 64,
            pixel_threshold: 18,
            min_changed: 0.004,
            hold_ms: 1500,
            idle_interval_ms: 30_000,
            idle_fps: 4,
        }
    }
}

/// Why a frame was let through, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Motion,
    Hold,
    OpenPass,
    Idle,
    Skip,
}

impl Decision {
    pub fn analyse(self) -> bool {
        self != Decision::Skip
    }
}

/// How often each decision was taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateCounts {
    pub motion: u64,
    pub hold: u64,
    pub open_pass: u64,
    pub idle: u64,
    pub skipped: u64,
}

#[derive(Debug)]
pub struct MotionGate {
    cfg: GateConfig,
    previous: Vec<u8>,
    last_motion: Option<i64>,
    last_analysed: Option<i64>,
    last: Decision,
    counts: GateCounts,
}

/// A grey thumbnail: each sample averages a 2x2 block at its cell's centre.
pub fn thumbnail(img: &RgbImage, width: u32) -> Vec<u8> {
    let (w, h) = img.dimensions();
    if w < 2 || h < 2 {
        return Vec::new();
    }
    let tw = width.clamp(1, w / 2);
    let th = ((u64::from(h) * u64::from(tw) / u64::from(w)) as u32).max(1);
    let raw = img.as_raw();
    let grey = |x: u32, y: u32| {
        let i = (y as usize * w as usize + x as usize) * 3;
        let (r, g, b) = (u32::from(raw[i]), u32::from(raw[i + 1]), u32::from(raw[i + 2]));
        (r * 77 + g * 150 + b * 29) >> 8
    };
    let mut out = Vec::with_capacity((tw * th) as usize);
    for ty in 0..th {
        let y = ((u64::from(ty) * 2 + 1) * u64::from(h) / (u64::from(th) * 2)) as u32;
        let y = y.min(h - 2);
        for tx in 0..tw {
            let x = ((u64::from(tx) * 2 + 1) * u64::from(w) / (u64::from(tw) * 2)) as u32;
            let x = x.min(w - 2);
            let s = grey(x, y) + grey(x + 1, y) + grey(x, y + 1) + grey(x + 1, y + 1);
            out.push((s / 4) as u8);
        }
    }
    out
}

impl MotionGate {
    pub fn new(cfg: GateConfig) -> MotionGate {
        MotionGate {
            cfg,
            previous: Vec::new(),
            last_motion: None,
            last_analysed: None,
            last: Decision::Skip,
            counts: GateCounts::default(),
        }
    }

    /// Decides for a frame at `now_ms`; `pass_open` says whether a vehicle pass is still open.
    pub fn decide(&mut self, now_ms: i64, frame: &RgbImage, pass_open: bool) -> Decision {
        let decision = if self.cfg.enabled {
            let thumb = thumbnail(frame, self.cfg.thumb_width);
            let first = self.previous.is_empty();
            let moved = !first && self.changed_share(&thumb) >= self.cfg.min_changed;
            self.previous = thumb;
            if first {
                // Nothing to compare with: look once, without assuming motion.
                Decision::Idle
            } else if moved {
                self.last_motion = Some(now_ms);
                Decision::Motion
            } else if self.last_motion.is_some_and(|t| now_ms - t < self.cfg.hold_ms) {
                Decision::Hold
            } else if pass_open {
                Decision::OpenPass
            } else if self.last_analysed.is_none_or(|t| now_ms - t >= self.cfg.idle_interval_ms) {
                Decision::Idle
            } else {
                Decision::Skip
            }
        } else {
            Decision::Motion
        };
        let c = &mut self.counts;
        match decision {
            Decision::Motion => c.motion += 1,
            Decision::Hold => c.hold += 1,
            Decision::OpenPass => c.open_pass += 1,
            Decision::Idle => c.idle += 1,
            Decision::Skip => c.skipped += 1,
        }
        if decision.analyse() {
            self.last_analysed = Some(now_ms);
        }
        self.last = decision;
        decision
    }

    /// Whether the scene is quiet: the last frame showed no motion, no hold and no open pass,
    /// so the pipeline may deliver frames at `idle_fps` only.
    pub fn quiet(&self) -> bool {
        self.cfg.enabled && matches!(self.last, Decision::Idle | Decision::Skip)
    }

    /// The share of samples that changed since the previous thumbnail (1 for the first one).
    fn changed_share(&self, thumb: &[u8]) -> f32 {
        if self.previous.len() != thumb.len() || thumb.is_empty() {
            return 1.0;
        }
        let t = self.cfg.pixel_threshold;
        let changed = thumb.iter().zip(&self.previous).filter(|(a, b)| a.abs_diff(**b) > t).count();
        changed as f32 / thumb.len() as f32
    }

    pub fn counts(&self) -> GateCounts {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn road(w: u32, h: u32, car_at: Option<u32>) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            // Sensor noise of a few levels that must not count as motion.
            let noise = ((x * 7 + y * 13) % 5) as u8;
            match car_at {
                Some(cx) if (cx..cx + w / 8).contains(&x) && y > h / 2 => Rgb([200, 30, 30]),
                _ => Rgb([100 + noise, 100 + noise, 104]),
            }
        })
    }

    #[test]
    fn an_empty_road_is_skipped_except_at_the_idle_rate() {
        let cfg = GateConfig { idle_interval_ms: 2000, ..GateConfig::default() };
        let mut gate = MotionGate::new(cfg);
        let empty = road(640, 360, None);
        let decisions: Vec<_> = (0..100).map(|i| gate.decide(i * 100, &empty, false)).collect();
        assert_eq!(decisions[0], Decision::Idle, "the first frame has nothing to compare with");
        assert!(gate.quiet());
        let analysed = decisions.iter().filter(|d| d.analyse()).count();
        // 10 s of video: the first frame, the hold after it, then one frame per 2 s.
        assert!(analysed <= 1 + 5, "{analysed} of 100 analysed");
        assert!(gate.counts().skipped >= 75, "{:?}", gate.counts());
        assert!(gate.counts().idle >= 3, "the detector still runs at a low rate");
    }

    #[test]
    fn a_vehicle_entering_opens_the_gate_at_once_and_it_holds() {
        let mut gate = MotionGate::new(GateConfig { hold_ms: 500, ..GateConfig::default() });
        let empty = road(640, 360, None);
        for i in 0..30 {
            gate.decide(i * 100, &empty, false);
        }
        assert_eq!(gate.decide(3000, &empty, false), Decision::Skip);
        assert_eq!(gate.decide(3100, &road(640, 360, Some(0)), false), Decision::Motion);
        assert!(!gate.quiet(), "motion raises the frame rate at once");
        assert_eq!(gate.decide(3200, &road(640, 360, Some(40)), false), Decision::Motion);
        // The vehicle stops: held for 500 ms, then kept open while its pass is.
        let stopped = road(640, 360, Some(40));
        assert_eq!(gate.decide(3300, &stopped, false), Decision::Hold);
        assert_eq!(gate.decide(3800, &stopped, true), Decision::OpenPass);
        assert_eq!(gate.decide(3900, &stopped, false), Decision::Skip);
    }

    #[test]
    fn a_disabled_gate_lets_everything_through_and_odd_sizes_are_safe() {
        let mut gate = MotionGate::new(GateConfig { enabled: false, ..GateConfig::default() });
        let empty = road(64, 36, None);
        assert!((0..10).all(|i| gate.decide(i, &empty, false).analyse()));
        assert!(thumbnail(&RgbImage::new(1, 1), 64).is_empty());
        assert_eq!(thumbnail(&RgbImage::new(3, 2000), 64).len(), 666, "one sample wide");
        let mut gate = MotionGate::new(GateConfig::default());
        assert!(gate.decide(0, &RgbImage::new(0, 0), false).analyse());
    }
}
