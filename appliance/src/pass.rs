//! Vehicle passes: one read per vehicle that passes, not one per frame.
//!
//! Each analysed frame's plate candidates are matched to the open passes (same plate text give or
//! take OCR slips, or the same place in the picture just after the last sighting: a misread of
//! the same plate, where a vehicle seen there a second later is the next one); a pass ends when
//! its plate has not been seen for `gap_ms` of video time, and then becomes one read: the text
//! voted over its sightings (a confidence-weighted vote per character position), the best
//! sighting's plate crop and a context picture. A vehicle whose plate stands still for
//! `settle_ms` (stopped, parked) gives its read then, so the motion gate can go back to its idle
//! rate; one that stays in view and moves gives its read after `max_pass_ms`. Either way, no more
//! reads of it while it stays: the read pass is remembered and absorbs its later sightings, also
//! as it drives off.
use crate::config::PassConfig;
use crate::engine::{PlateBox, PlateCandidate, RgbImage};
use std::collections::HashMap;

/// A pass that ended: everything the store needs for one read.
#[derive(Debug, Clone)]
pub struct PassRead {
    pub plate: String,
    pub confidence: f32,
    pub first_seen: i64,
    pub best_seen: i64,
    pub sightings: usize,
    /// The plate box in the context picture's pixels.
    pub plate_box: PlateBox,
    pub plate_crop_jpeg: Vec<u8>,
    pub context_jpeg: Vec<u8>,
}

#[derive(Debug)]
struct Sighting {
    text: String,
    char_conf: Vec<f32>,
}

#[derive(Debug)]
struct OpenPass {
    sightings: Vec<Sighting>,
    first_seen: i64,
    last_seen: i64,
    last_box: PlateBox,
    best_score: f32,
    best_seen: i64,
    best_box: PlateBox,
    best_frame: RgbImage,
    /// Since when the plate box has stood still, and where.
    still_since: i64,
    still_box: PlateBox,
    /// Already emitted (a parked vehicle): absorb sightings, emit nothing more.
    emitted: bool,
}

/// A box that overlaps the one the plate stood still in this much has not moved.
const STILL_IOU: f32 = 0.7;

/// Groups sightings into passes. Pure logic over frames and candidates: no I/O, no clock.
#[derive(Debug)]
pub struct PassTracker {
    config: PassConfig,
    open: Vec<OpenPass>,
}

/// Levenshtein distance over bytes (plates are ASCII).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = (row[j + 1] + 1).min(row[j] + 1).min(prev + usize::from(ca != cb));
            prev = row[j + 1];
            row[j + 1] = cur;
        }
    }
    row[b.len()]
}

/// Confidence-weighted vote per character position over the sightings of the most common length.
/// Returns the text and its confidence (mean over positions of the winner's share of the weight
/// times its mean character confidence).
pub fn vote(sightings: &[(&str, &[f32])]) -> Option<(String, f32)> {
    let mut by_len: HashMap<usize, f32> = HashMap::new();
    for (t, c) in sightings {
        *by_len.entry(t.len()).or_default() += c.iter().sum::<f32>() / c.len().max(1) as f32;
    }
    let len = by_len.into_iter().max_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))?.0;
    let same: Vec<_> = sightings.iter().filter(|(t, _)| t.len() == len).collect();
    let mut text = String::with_capacity(len);
    let mut conf = 0.0;
    for pos in 0..len {
        let mut weights: HashMap<u8, (f32, f32, usize)> = HashMap::new();
        let mut total = 0.0;
        for (t, c) in &same {
            let ch = t.as_bytes()[pos];
            let p = c.get(pos).copied().unwrap_or(0.0);
            let e = weights.entry(ch).or_default();
            e.0 += p;
            e.1 += p;
            e.2 += 1;
            total += p;
        }
        let (ch, (w, sum_p, n)) =
            weights.into_iter().max_by(|a, b| a.1.0.total_cmp(&b.1.0).then(b.0.cmp(&a.0)))?;
        text.push(ch as char);
        let share = if total > 0.0 { w / total } else { 0.0 };
        conf += share * (sum_p / n as f32);
    }
    Some((text, if len > 0 { conf / len as f32 } else { 0.0 }))
}

impl PassTracker {
    pub fn new(config: PassConfig) -> PassTracker {
        PassTracker { config, open: Vec::new() }
    }

    pub fn open_passes(&self) -> usize {
        self.open.iter().filter(|p| !p.emitted).count()
    }

    /// Feeds one analysed frame. Returns the reads of passes that ended by this frame's time.
    pub fn observe(
        &mut self,
        time: i64,
        frame: &RgbImage,
        plates: &[PlateCandidate],
    ) -> Vec<PassRead> {
        for cand in plates {
            let score = cand.confidence * cand.detect_score;
            // Of the passes it could belong to, the one seen last (the vehicle in view now).
            let matched = self.open.iter_mut().filter(|p| {
                // Two slips are a misread only of a plate just seen; across a longer gap they
                // are as likely the next vehicle (plates of one place and series differ little).
                let recent = time - p.last_seen <= self.config.track_gap_ms;
                let text_close = p.sightings.iter().any(|s| {
                    let d = edit_distance(&s.text, &cand.text);
                    d <= 1 || (recent && d <= 2 && cand.text.len() >= 6)
                });
                let near = p.last_box.iou(&cand.bbox) > 0.2;
                if p.emitted {
                    // A vehicle already read: the motion gate looks at a parked one only now and
                    // then, so it is remembered longer, but only the same plate in the same
                    // place is it (another vehicle stopping there is a new pass); seen again
                    // within the gap, it is the same vehicle wherever it is (driving off).
                    let since = time - p.last_seen;
                    text_close
                        && ((since <= self.config.parked_gap_ms && near)
                            || since <= self.config.gap_ms)
                } else {
                    time - p.last_seen <= self.config.gap_ms && (text_close || (near && recent))
                }
            });
            let matched = matched.max_by_key(|p| p.last_seen);
            let sighting =
                Sighting { text: cand.text.clone(), char_conf: cand.char_confidences.clone() };
            match matched {
                Some(p) => {
                    p.sightings.push(sighting);
                    p.last_seen = time;
                    p.last_box = cand.bbox;
                    if p.still_box.iou(&cand.bbox) < STILL_IOU {
                        p.still_since = time;
                        p.still_box = cand.bbox;
                    }
                    if score > p.best_score && !p.emitted {
                        p.best_score = score;
                        p.best_seen = time;
                        p.best_box = cand.bbox;
                        p.best_frame = frame.clone();
                    }
                }
                None => self.open.push(OpenPass {
                    sightings: vec![sighting],
                    first_seen: time,
                    last_seen: time,
                    last_box: cand.bbox,
                    best_score: score,
                    best_seen: time,
                    best_box: cand.bbox,
                    best_frame: frame.clone(),
                    still_since: time,
                    still_box: cand.bbox,
                    emitted: false,
                }),
            }
        }
        self.close(Some(time))
    }

    /// Ends every open pass (end of stream, shutdown) and returns their reads.
    pub fn finish(&mut self) -> Vec<PassRead> {
        self.close(None)
    }

    fn close(&mut self, now: Option<i64>) -> Vec<PassRead> {
        let mut out = Vec::new();
        let cfg = self.config.clone();
        let mut keep = Vec::with_capacity(self.open.len());
        for mut p in self.open.drain(..) {
            let gap = if p.emitted { cfg.parked_gap_ms.max(cfg.gap_ms) } else { cfg.gap_ms };
            let ended = now.is_none_or(|t| t - p.last_seen > gap);
            let too_long = now.is_some_and(|t| t - p.first_seen >= cfg.max_pass_ms);
            let settled =
                cfg.settle_ms > 0 && now.is_some_and(|t| t - p.still_since >= cfg.settle_ms);
            let due = ended || too_long || settled;
            if !p.emitted && due && p.sightings.len() >= cfg.min_sightings {
                if let Some(read) = emit(&p, &cfg) {
                    out.push(read);
                }
                p.emitted = true;
            }
            if !ended {
                keep.push(p);
            }
        }
        self.open = keep;
        out
    }
}

fn emit(p: &OpenPass, cfg: &PassConfig) -> Option<PassRead> {
    let votes: Vec<(&str, &[f32])> =
        p.sightings.iter().map(|s| (s.text.as_str(), s.char_conf.as_slice())).collect();
    let (plate, confidence) = vote(&votes)?;
    tracing::debug!(
        %plate,
        confidence,
        sightings = ?votes.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        "pass read"
    );
    let (fw, fh) = p.best_frame.dimensions();
    let b = p.best_box;
    // Plate crop: the box with a small margin, at full resolution.
    let mx = b.w * 0.1;
    let my = b.h * 0.2;
    let x0 = (b.x - mx).max(0.0) as u32;
    let y0 = (b.y - my).max(0.0) as u32;
    let x1 = ((b.x + b.w + mx) as u32).min(fw);
    let y1 = ((b.y + b.h + my) as u32).min(fh);
    let crop = image::imageops::crop_imm(
        &p.best_frame,
        x0,
        y0,
        x1.saturating_sub(x0).max(1),
        y1.saturating_sub(y0).max(1),
    )
    .to_image();
    // Context: the whole frame, scaled down to the configured width.
    let scale = (cfg.context_width as f32 / fw as f32).min(1.0);
    let context = if scale < 1.0 {
        image::imageops::resize(
            &p.best_frame,
            (fw as f32 * scale).round() as u32,
            (fh as f32 * scale).round() as u32,
            image::imageops::FilterType::Triangle,
        )
    } else {
        p.best_frame.clone()
    };
    Some(PassRead {
        plate,
        confidence,
        first_seen: p.first_seen,
        best_seen: p.best_seen,
        sightings: p.sightings.len(),
        plate_box: PlateBox { x: b.x * scale, y: b.y * scale, w: b.w * scale, h: b.h * scale },
        plate_crop_jpeg: jpeg(&crop, cfg.jpeg_quality),
        context_jpeg: jpeg(&context, cfg.jpeg_quality),
    })
}

fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(10, 100));
    if let Err(e) = img.write_with_encoder(enc) {
        tracing::warn!(error = %e, "cannot encode a read's picture as JPEG");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(text: &str, x: f32, conf: f32) -> PlateCandidate {
        PlateCandidate {
            text: text.into(),
            confidence: conf,
            char_confidences: vec![conf; text.len()],
            detect_score: 0.8,
            bbox: PlateBox { x, y: 100.0, w: 60.0, h: 20.0 },
        }
    }

    fn cfg() -> PassConfig {
        PassConfig { gap_ms: 1000, min_sightings: 2, max_pass_ms: 60_000, ..PassConfig::default() }
    }

    #[test]
    fn vote_fixes_single_frame_slips() {
        let a = [0.9f32; 6];
        let b = [0.6f32; 6];
        let (t, c) = vote(&[("ABC123", &a), ("A8C123", &b), ("ABC123", &a), ("ABC12", &a[..5])])
            .expect("vote");
        assert_eq!(t, "ABC123");
        assert!(c > 0.5 && c <= 1.0, "{c}");
    }

    #[test]
    fn one_read_per_pass_and_two_vehicles_give_two() {
        let frame = RgbImage::new(320, 240);
        let mut t = PassTracker::new(cfg());
        let mut reads = Vec::new();
        for i in 0..10 {
            reads.extend(t.observe(i * 100, &frame, &[cand("ABC123", 10.0 + i as f32 * 5.0, 0.9)]));
        }
        // A second vehicle, after a gap.
        for i in 0..10 {
            reads.extend(t.observe(3000 + i * 100, &frame, &[cand("XYZ789", 200.0, 0.9)]));
        }
        reads.extend(t.finish());
        let plates: Vec<_> = reads.iter().map(|r| r.plate.as_str()).collect();
        assert_eq!(plates, vec!["ABC123", "XYZ789"]);
        assert_eq!(reads[0].first_seen, 0);
        assert!(!reads[0].context_jpeg.is_empty() && !reads[0].plate_crop_jpeg.is_empty());
    }

    #[test]
    fn parked_vehicle_gives_one_read() {
        let frame = RgbImage::new(320, 240);
        let mut t = PassTracker::new(cfg());
        let mut reads = Vec::new();
        // Ten minutes in view, one sighting a second.
        for s in 0..600 {
            reads.extend(t.observe(s * 1000, &frame, &[cand("PARK01", 50.0, 0.8)]));
        }
        reads.extend(t.finish());
        assert_eq!(reads.len(), 1);
    }

    #[test]
    fn a_parked_vehicle_seen_only_at_the_idle_rate_gives_one_read() {
        let frame = RgbImage::new(320, 240);
        let mut t = PassTracker::new(cfg());
        let mut reads = Vec::new();
        // Seen at the full rate until its read, then (the gate quiet) once every 30 s.
        for i in 0..=600 {
            reads.extend(t.observe(i * 100, &frame, &[cand("PARK01", 50.0, 0.8)]));
        }
        assert_eq!(reads.len(), 1, "the read came out once the plate stood still");
        // The gate's rule, as in `gate`: analyse while a pass is open, else every 30 s.
        let (mut time, mut last) = (60_000, 60_000);
        while time < 660_000 {
            time += 100;
            if t.open_passes() > 0 || time - last >= 30_000 {
                last = time;
                reads.extend(t.observe(time, &frame, &[cand("PARK01", 50.0, 0.8)]));
            }
        }
        assert_eq!(reads.len(), 1, "ten minutes parked, still one read");
        // Another vehicle stops at the same place: its own read.
        for i in 1..=5 {
            reads.extend(t.observe(700_000 + i * 100, &frame, &[cand("NEW777", 50.0, 0.9)]));
        }
        reads.extend(t.finish());
        let plates: Vec<_> = reads.iter().map(|r| r.plate.as_str()).collect();
        assert_eq!(plates, ["PARK01", "NEW777"]);
    }

    /// Sightings every 100 ms from `from` to `to` (ms), the box at `x(time)`.
    fn seen(
        t: &mut PassTracker,
        text: &str,
        (from, to): (i64, i64),
        x: impl Fn(i64) -> f32,
    ) -> Vec<(i64, String)> {
        let frame = RgbImage::new(320, 240);
        let mut out = Vec::new();
        for time in (from..=to).step_by(100) {
            for r in t.observe(time, &frame, &[cand(text, x(time), 0.8)]) {
                out.push((time, r.plate));
            }
        }
        out
    }

    #[test]
    fn a_vehicle_that_stands_still_is_read_once_settled_and_not_again_as_it_drives_off() {
        let cfg = PassConfig { settle_ms: 3000, ..cfg() };
        let mut t = PassTracker::new(cfg);
        // It drives in (the box moves 20 px a sighting), stops at x=150 from 2 s on.
        let x = |time: i64| if time < 2000 { time as f32 / 100.0 * 7.5 } else { 150.0 };
        let reads = seen(&mut t, "STOP42", (0, 20_000), x);
        assert_eq!(reads, [(5000, "STOP42".to_string())], "read 3 s after it stopped");
        assert_eq!(t.open_passes(), 0, "read: nothing open keeps the gate busy");
        // It drives off, across the picture: the same vehicle, no second read.
        let off = seen(&mut t, "STOP42", (20_100, 23_000), |time| 150.0 + (time - 20_000) as f32);
        assert!(off.is_empty(), "{off:?}");
        assert!(t.finish().is_empty());
    }

    #[test]
    fn a_moving_vehicle_is_not_settled() {
        let cfg = PassConfig { settle_ms: 3000, ..cfg() };
        let mut t = PassTracker::new(cfg);
        // Slowly across the picture for 10 s (a box width every 3 s), then gone.
        let reads = seen(&mut t, "SLOW11", (0, 10_000), |time| time as f32 / 50.0);
        assert!(reads.is_empty(), "no read while it moves: {reads:?}");
        let frame = RgbImage::new(320, 240);
        let reads = t.observe(13_000, &frame, &[]);
        assert_eq!(reads.len(), 1, "read when it has gone");
    }

    #[test]
    fn with_settling_off_a_standing_vehicle_waits_for_max_pass() {
        let cfg = PassConfig { settle_ms: 0, ..cfg() };
        let mut t = PassTracker::new(cfg);
        let reads = seen(&mut t, "WAIT77", (0, 61_000), |_| 80.0);
        assert_eq!(reads, [(60_000, "WAIT77".to_string())]);
    }

    #[test]
    fn the_next_vehicle_at_the_same_spot_is_a_new_pass_and_a_misread_is_not() {
        let frame = RgbImage::new(320, 240);
        let mut t = PassTracker::new(cfg());
        let mut reads = Vec::new();
        // One vehicle held at x=50 for 2 s, with a wild misread in the middle of it ...
        for i in 0..20 {
            let text = if i == 10 { "RN0" } else { "FHH2244" };
            reads.extend(t.observe(i * 100, &frame, &[cand(text, 50.0, 0.9)]));
        }
        // ... then 0.8 s of empty road (within the pass gap) and the next one at the same spot.
        for i in 0..20 {
            reads.extend(t.observe(2700 + i * 100, &frame, &[cand("HWF598", 50.0, 0.9)]));
        }
        // Two more of one series, two characters apart, at the same spot 0.8 s apart; the
        // second read once with two slips (a misread, just after a sighting of it).
        for i in 0..20 {
            reads.extend(t.observe(5400 + i * 100, &frame, &[cand("RK855AP", 50.0, 0.9)]));
        }
        for i in 0..20 {
            let text = if i == 5 { "RK855AP" } else { "RK875AE" };
            reads.extend(t.observe(8100 + i * 100, &frame, &[cand(text, 50.0, 0.9)]));
        }
        reads.extend(t.finish());
        let plates: Vec<_> = reads.iter().map(|r| (r.plate.as_str(), r.sightings)).collect();
        assert_eq!(plates, [("FHH2244", 20), ("HWF598", 20), ("RK855AP", 20), ("RK875AE", 20)]);
    }

    #[test]
    fn lone_glimpse_is_not_a_read() {
        let frame = RgbImage::new(320, 240);
        let mut t = PassTracker::new(cfg());
        let mut reads = t.observe(0, &frame, &[cand("ABC123", 10.0, 0.9)]);
        reads.extend(t.finish());
        assert!(reads.is_empty());
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("ABC123", "ABC123"), 0);
        assert_eq!(edit_distance("ABC123", "A8C123"), 1);
        assert_eq!(edit_distance("ABC123", "ABC12"), 1);
        assert_eq!(edit_distance("", "AB"), 2);
    }
}
