//! Vehicle passes: one read per vehicle that passes, not one per frame.
//!
//! Each analysed frame's plate candidates are matched to the open passes (same plate text give or
//! take OCR slips, or the same place in the picture); a pass ends when its plate has not been seen
//! for `gap_ms` of video time, and then becomes one read: the text voted over its sightings (a
//! confidence-weighted vote per character position), the best sighting's plate crop and a context
//! picture. A vehicle that stays in view gives its read after `max_pass_ms` and no more.
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
    /// Already emitted (a parked vehicle): absorb sightings, emit nothing more.
    emitted: bool,
}

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
            let matched = self.open.iter_mut().find(|p| {
                let text_close = p.sightings.iter().any(|s| {
                    let d = edit_distance(&s.text, &cand.text);
                    d <= 1 || (d <= 2 && cand.text.len() >= 6)
                });
                let near = p.last_box.iou(&cand.bbox) > 0.2;
                if p.emitted {
                    // A parked vehicle already read: the motion gate looks at it only now and
                    // then, so it is remembered longer, but only the same plate in the same
                    // place is it (another vehicle stopping there is a new pass).
                    time - p.last_seen <= self.config.parked_gap_ms && text_close && near
                } else {
                    time - p.last_seen <= self.config.gap_ms && (text_close || near)
                }
            });
            let sighting =
                Sighting { text: cand.text.clone(), char_conf: cand.char_confidences.clone() };
            match matched {
                Some(p) => {
                    p.sightings.push(sighting);
                    p.last_seen = time;
                    p.last_box = cand.bbox;
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
            if !p.emitted && (ended || too_long) && p.sightings.len() >= cfg.min_sightings {
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
        assert_eq!(reads.len(), 1, "the read comes after max_pass_ms");
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
