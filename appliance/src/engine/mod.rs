//! The plate reading engine: picture in, plate candidates out.
//!
//! ```text
//!  RGB picture ──► detect (letterbox → YOLO plate detector → score threshold → NMS → image boxes)
//!                     │ top-k boxes
//!                     ▼
//!              recognise (trim/pad variants → resize to 48 px high, BGR → CTC recogniser → greedy
//!                     │    decode over plate characters → best variant by confidence, joined
//!                     │    with an overlapping read of another variant)
//!                     ▼
//!              plate (normalise to A-Z 0-9, drop unsure edge characters, reject non-plates)
//! ```
//! Both models run on ONNX Runtime, loaded from paths in [`EngineConfig`] so an agency can swap
//! in better models of the same kinds. The engine is synchronous and owns its sessions: callers
//! run it on a dedicated thread, never on the async runtime.
pub mod ctc;
pub mod detect;
pub mod plate;
pub mod recognise;
pub mod runtime;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use thiserror::Error;

pub use image::RgbImage;

/// Where the models and the runtime are, and how they are used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// The ONNX Runtime shared library (`libonnxruntime.so.*`). Left out, it and the models
    /// are looked for where set-up put them: `$TRAILER_MODELS`, `./models`, the checkout's
    /// `models/`, or `/usr/share/trailer-alpr/models` as packaged.
    pub runtime_library: PathBuf,
    /// A YOLO-style plate detector: input [1,3,H,W] RGB/255 (f16 or f32), output [1,4+C(+M),N].
    pub detector_model: PathBuf,
    /// A CTC text recogniser: input [N,3,48,W] BGR normalised to [-1,1], output [N,T,classes].
    pub recogniser_model: PathBuf,
    /// Dictionary for the recogniser, one character per line. Empty: the model's own metadata
    /// (`character` key, as PaddleOCR exports carry).
    pub recogniser_dictionary: Option<PathBuf>,
    /// Minimum detector score for a plate box (0-1).
    #[serde(serialize_with = "crate::config::short_f32")]
    pub detect_threshold: f32,
    /// Boxes overlapping a better one by more than this IoU are dropped.
    #[serde(serialize_with = "crate::config::short_f32")]
    pub nms_iou: f32,
    /// At most this many boxes per picture are read.
    pub max_plates: usize,
    /// Minimum confidence of a read plate (mean character probability, 0-1).
    #[serde(serialize_with = "crate::config::short_f32")]
    pub read_threshold: f32,
    /// Recogniser input is right-padded to at least this width (pixels at height 48).
    pub recogniser_min_width: u32,
    /// Fractions of the box height trimmed off top and bottom; each is read, the best wins.
    #[serde(serialize_with = "crate::config::short_f32s")]
    pub trims: Vec<f32>,
    /// Angles (degrees) each trim is also read at when the level reads are unsure; the most
    /// confident read wins. Plates on trailers' pictures are rarely level to the degree.
    #[serde(serialize_with = "crate::config::short_f32s")]
    pub angles: Vec<f32>,
    /// A level read at least this confident is taken without trying the other angles; a trim
    /// whose pads all read the same text, each at least this confident, settles the box.
    #[serde(serialize_with = "crate::config::short_f32")]
    pub settle_confidence: f32,
    /// Fractions of the box width added at each side before cropping, each read: a box that
    /// clips the first or last character reads short.
    #[serde(serialize_with = "crate::config::short_f32s")]
    pub pads: Vec<f32>,
    /// US plates: hotlists and state files treat the letter O and the digit 0 alike; write 0.
    pub us_o_as_zero: bool,
    /// US plates: where a read fits no standard layout but would with one letter/digit
    /// look-alike swapped (I/1, Z/7, S/5...), and only one such swap fits, take it. Off by
    /// default: layouts differ too much between states (on 751 plate crops from many states it
    /// cost more reads than it fixed).
    pub us_formats: bool,
    /// Intra-op threads per model. 2 on a 2-core trailer: while a vehicle passes the engine is
    /// the bottleneck (decode takes a third of a core), and on an empty road it hardly runs.
    pub threads: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let models = default_models_dir();
        EngineConfig {
            runtime_library: models.join("libonnxruntime.so.1.31.1"),
            detector_model: models.join("platedet-384x640-int8.onnx"),
            recogniser_model: models.join("ppocrv6_rec.onnx"),
            recogniser_dictionary: Some(models.join("ppocrv6_dict.txt")),
            detect_threshold: 0.25,
            nms_iou: 0.45,
            max_plates: 3,
            read_threshold: 0.5,
            recogniser_min_width: 160,
            trims: vec![0.05, 0.15],
            angles: vec![-4.0, 4.0],
            settle_confidence: 0.97,
            pads: vec![0.0, 0.08, 0.15],
            us_o_as_zero: true,
            us_formats: false,
            threads: 2,
        }
    }
}

/// Where set-up puts the models: `$TRAILER_MODELS`, else `./models`, else `models/` in the
/// checkout this binary was built from, else `models/` above the executable
/// (`target/<profile>/appliance` → `../../models`), else `/usr/share/trailer-alpr/models` (the
/// appliance image).
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TRAILER_MODELS") {
        return PathBuf::from(dir);
    }
    let marker = "platedet.onnx";
    let mut candidates =
        vec![PathBuf::from("models"), Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")];
    if let Ok(exe) = std::env::current_exe() {
        for up in exe.ancestors().skip(1).take(4) {
            candidates.push(up.join("models"));
        }
    }
    candidates
        .into_iter()
        .find(|d| d.join(marker).is_file())
        .map(|d| d.canonicalize().unwrap_or(d))
        .unwrap_or_else(|| PathBuf::from("/usr/share/trailer-alpr/models"))
}

impl EngineConfig {
    pub fn validate(&self) -> Result<(), EngineError> {
        for (what, p) in [
            ("ONNX Runtime library", &self.runtime_library),
            ("detector model", &self.detector_model),
            ("recogniser model", &self.recogniser_model),
        ] {
            if !p.is_file() {
                return Err(EngineError::MissingFile { what, path: p.clone() });
            }
        }
        let in_unit = |v: f32| (0.0..=1.0).contains(&v);
        if !in_unit(self.detect_threshold)
            || !in_unit(self.nms_iou)
            || !in_unit(self.read_threshold)
            || !in_unit(self.settle_confidence)
        {
            return Err(EngineError::Config("thresholds must lie between 0 and 1".into()));
        }
        if self.pads.is_empty() || self.pads.iter().any(|p| !(0.0..0.5).contains(p)) {
            return Err(EngineError::Config("pads: one or more fractions in [0, 0.5)".into()));
        }
        if self.trims.is_empty() || self.trims.iter().any(|t| !(0.0..0.4).contains(t)) {
            return Err(EngineError::Config("trims: one or more fractions in [0, 0.4)".into()));
        }
        if self.angles.iter().any(|a| !(-30.0..=30.0).contains(a)) {
            return Err(EngineError::Config("angles: degrees between -30 and 30".into()));
        }
        if self.threads == 0 || self.max_plates == 0 {
            return Err(EngineError::Config("threads and max_plates must be at least 1".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("{what} not found at {path} (run `make setup`, or set its path in the config)")]
    MissingFile { what: &'static str, path: PathBuf },
    #[error("cannot load ONNX Runtime from {path}: {reason}")]
    Runtime { path: PathBuf, reason: String },
    #[error("cannot load model {path}: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error("model {path} has the wrong shape: {reason}")]
    ModelShape { path: PathBuf, reason: String },
    #[error("inference failed in {stage}: {reason}")]
    Inference { stage: &'static str, reason: String },
    #[error("picture of {width}x{height} cannot be read: {reason}")]
    Picture { width: u32, height: u32, reason: &'static str },
    #[error("engine configuration: {0}")]
    Config(String),
}

/// A plate box in picture pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlateBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl PlateBox {
    pub fn iou(&self, o: &PlateBox) -> f32 {
        let ix = (self.x + self.w).min(o.x + o.w) - self.x.max(o.x);
        let iy = (self.y + self.h).min(o.y + o.h) - self.y.max(o.y);
        if ix <= 0.0 || iy <= 0.0 {
            return 0.0;
        }
        let inter = ix * iy;
        inter / (self.w * self.h + o.w * o.h - inter)
    }
    pub fn centre(&self) -> (f32, f32) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }
    /// The box with `pad` of its width added at each side (the same centre).
    pub fn widened(&self, pad: f32) -> PlateBox {
        PlateBox { x: self.x - pad * self.w, w: self.w * (1.0 + 2.0 * pad), ..*self }
    }
}

/// One plate the engine found and read.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateCandidate {
    /// Normalised text (A-Z, 0-9).
    pub text: String,
    /// Confidence of the text, 0-1.
    pub confidence: f32,
    /// Per-character confidences, aligned with `text`.
    pub char_confidences: Vec<f32>,
    /// Detector score of the box, 0-1.
    pub detect_score: f32,
    pub bbox: PlateBox,
}

/// The result of reading one picture, with where the time went.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// Plates, best first.
    pub plates: Vec<PlateCandidate>,
    /// Boxes found (read or not), for detection-recall benchmarks.
    pub boxes: Vec<(PlateBox, f32)>,
    pub detect_ms: f64,
    pub read_ms: f64,
}

/// Pictures larger than this (either side) are refused rather than risk memory on the box.
pub const MAX_PICTURE_SIDE: u32 = 16384;

/// The engine: both models loaded, ready to read pictures.
pub struct Engine {
    detector: detect::Detector,
    recogniser: recognise::Recogniser,
    config: EngineConfig,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Engine {
    pub fn load(config: &EngineConfig) -> Result<Engine, EngineError> {
        config.validate()?;
        runtime::init(&config.runtime_library)?;
        let detector = detect::Detector::load(&config.detector_model, config.threads)?;
        let recogniser = recognise::Recogniser::load(
            &config.recogniser_model,
            config.recogniser_dictionary.as_deref(),
            config.threads,
        )?;
        Ok(Engine { detector, recogniser, config: config.clone() })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Finds the plate boxes in a picture (no reading).
    pub fn detect(&mut self, picture: &RgbImage) -> Result<Vec<(PlateBox, f32)>, EngineError> {
        check_picture(picture)?;
        self.detector.detect(picture, self.config.detect_threshold, self.config.nms_iou)
    }

    /// Reads the plate inside a box found by [`Engine::detect`].
    pub fn read_box(
        &mut self,
        picture: &RgbImage,
        bbox: PlateBox,
        detect_score: f32,
    ) -> Result<Option<PlateCandidate>, EngineError> {
        // Every crop is read, a trim's pads in turn; the most confident read of a plausible
        // length wins. A trim whose distinct pad crops all read the same text surely settles
        // the box; the other angles are tried only while the winner is unsure.
        let mut best: Option<(PlateCandidate, Vec<plate::Glyph>)> = None;
        let mut reads: Vec<Vec<plate::Glyph>> = Vec::new();
        let score = |c: &PlateCandidate| plate::weighed(&c.text, c.confidence);
        let level = std::iter::once(0.0f32);
        let angles: Vec<f32> = level.chain(self.config.angles.iter().copied()).collect();
        'angles: for (i, &angle) in angles.iter().enumerate() {
            if i > 0
                && best.as_ref().is_some_and(|(b, _)| b.confidence >= self.config.settle_confidence)
            {
                break;
            }
            for &trim in &self.config.trims {
                // This trim's reads, one per distinct crop.
                let mut trim_reads: Vec<(String, f32)> = Vec::new();
                let mut previous: Option<RgbImage> = None;
                for &pad in &self.config.pads {
                    let Some(crop) =
                        recognise::crop_rotated(picture, bbox.widened(pad), trim, angle)
                    else {
                        continue;
                    };
                    // At the picture's edge a wider pad crops the same pixels: no new evidence.
                    if previous.as_ref() == Some(&crop) {
                        continue;
                    }
                    let read = Self::read_crop(
                        &mut self.recogniser,
                        &self.config,
                        &crop,
                        bbox,
                        detect_score,
                    )?;
                    previous = Some(crop);
                    let Some((read, glyphs)) = read else {
                        continue;
                    };
                    trim_reads.push((read.text.clone(), read.confidence));
                    reads.push(glyphs.clone());
                    if best.as_ref().is_none_or(|(b, _)| score(&read) > score(b)) {
                        best = Some((read, glyphs));
                    }
                }
                let (pads, settle) = (self.config.pads.len(), self.config.settle_confidence);
                if plate::trim_settles(&trim_reads, pads, settle) {
                    break 'angles;
                }
            }
        }
        // A tight crop that lost a first character and a padded one that lost a last one: the
        // two overlapping reads joined read the whole plate.
        if let Some((c, glyphs)) = best.as_mut()
            && let Some(joined) = plate::join_overlapping(glyphs, &reads)
        {
            c.char_confidences = joined.iter().map(|g| g.p).collect();
            c.confidence = c.char_confidences.iter().sum::<f32>() / joined.len() as f32;
            c.text = plate::text(&joined);
            *glyphs = joined;
        }
        // The layout rule relabels the winner only: it must not change which crop wins.
        Ok(best
            .map(|(mut c, mut glyphs)| {
                if self.config.us_formats && plate::fit_us_format(&mut glyphs) {
                    c.text = plate::text(&glyphs);
                }
                c
            })
            .filter(|c| c.confidence >= self.config.read_threshold))
    }

    /// Reads one crop of a box: the recogniser, then normalisation to plate characters.
    fn read_crop(
        recogniser: &mut recognise::Recogniser,
        config: &EngineConfig,
        crop: &RgbImage,
        bbox: PlateBox,
        detect_score: f32,
    ) -> Result<Option<(PlateCandidate, Vec<plate::Glyph>)>, EngineError> {
        let raw = recogniser.recognise(crop, config.recogniser_min_width)?;
        let Some(glyphs) = plate::normalise(&raw, config.us_o_as_zero) else {
            return Ok(None);
        };
        let char_confidences: Vec<f32> = glyphs.iter().map(|g| g.p).collect();
        let confidence = char_confidences.iter().sum::<f32>() / char_confidences.len() as f32;
        let read = PlateCandidate {
            text: plate::text(&glyphs),
            confidence,
            char_confidences,
            detect_score,
            bbox,
        };
        Ok(Some((read, glyphs)))
    }

    /// Detects and reads every plate in a picture, best first.
    pub fn read(&mut self, picture: &RgbImage) -> Result<Reading, EngineError> {
        let t0 = Instant::now();
        let boxes = self.detect(picture)?;
        let t1 = Instant::now();
        let mut plates = Vec::new();
        for &(bbox, score) in boxes.iter().take(self.config.max_plates) {
            if let Some(c) = self.read_box(picture, bbox, score)? {
                plates.push(c);
            }
        }
        plates.sort_by(|a, b| {
            (b.confidence * b.detect_score).total_cmp(&(a.confidence * a.detect_score))
        });
        let t2 = Instant::now();
        Ok(Reading {
            plates,
            boxes,
            detect_ms: (t1 - t0).as_secs_f64() * 1e3,
            read_ms: (t2 - t1).as_secs_f64() * 1e3,
        })
    }
}

fn check_picture(p: &RgbImage) -> Result<(), EngineError> {
    let (width, height) = p.dimensions();
    if width < 16 || height < 16 {
        return Err(EngineError::Picture { width, height, reason: "smaller than 16x16 pixels" });
    }
    if width > MAX_PICTURE_SIDE || height > MAX_PICTURE_SIDE {
        return Err(EngineError::Picture { width, height, reason: "larger than 16384 pixels" });
    }
    Ok(())
}

/// Decodes a JPEG or PNG file into an RGB picture, refusing absurd sizes before decoding.
pub fn load_picture(path: &Path) -> Result<RgbImage, String> {
    let reader = image::ImageReader::open(path)
        .map_err(|e| format!("cannot open: {e}"))?
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    let mut reader = reader;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_PICTURE_SIDE);
    limits.max_image_height = Some(MAX_PICTURE_SIDE);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| format!("cannot decode: {e}"))?;
    Ok(img.to_rgb8())
}
