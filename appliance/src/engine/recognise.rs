//! Plate text recognition: crop, resize to the recogniser's height, CTC decode.
//!
//! PaddleOCR-style recognisers take BGR, normalised to [-1, 1], 48 pixels high, right-padded with
//! zeros; padding narrow crops to ~160 px reads plates better than batching them to the widest.
use super::plate::{self, Glyph};
use super::{EngineError, PlateBox, RgbImage, ctc, runtime};
use ort::session::Session;
use ort::value::{Tensor, ValueType};
use std::path::{Path, PathBuf};

pub const INPUT_HEIGHT: u32 = 48;

/// The crop of `bbox`, trimmed by `trim` of its height at top and bottom (state names, slogans and
/// frames above and below the characters make recognisers add characters).
pub fn crop_trimmed(pic: &RgbImage, bbox: PlateBox, trim: f32) -> Option<RgbImage> {
    let (pw, ph) = pic.dimensions();
    let x1 = bbox.x.floor().max(0.0) as u32;
    let x2 = ((bbox.x + bbox.w).ceil() as u32).min(pw);
    let y1 = (bbox.y + trim * bbox.h).floor().max(0.0) as u32;
    let y2 = ((bbox.y + bbox.h - trim * bbox.h).ceil() as u32).min(ph);
    if x2 < x1 + 4 || y2 < y1 + 4 {
        return None;
    }
    Some(image::imageops::crop_imm(pic, x1, y1, x2 - x1, y2 - y1).to_image())
}

/// The crop of `bbox` as [`crop_trimmed`] makes it, turned by `degrees` about the box centre
/// (positive degrees turn the content counter-clockwise as seen on screen, levelling a plate whose
/// text falls to the right).
/// Pixels are sampled from the whole picture, so the corners show what surrounds the plate, not
/// black.
pub fn crop_rotated(pic: &RgbImage, bbox: PlateBox, trim: f32, degrees: f32) -> Option<RgbImage> {
    if degrees == 0.0 {
        return crop_trimmed(pic, bbox, trim);
    }
    let (pw, ph) = pic.dimensions();
    let w = bbox.w.round() as u32;
    let h = (bbox.h * (1.0 - 2.0 * trim)).round() as u32;
    if w < 4 || h < 4 || pw < 2 || ph < 2 {
        return None;
    }
    let (cx, cy) = bbox.centre();
    let (sin, cos) = degrees.to_radians().sin_cos();
    let src = pic.as_raw();
    let stride = pw as usize * 3;
    let mut out = RgbImage::new(w, h);
    for (ox, oy, px) in out.enumerate_pixels_mut() {
        let dx = ox as f32 + 0.5 - w as f32 / 2.0;
        let dy = oy as f32 + 0.5 - h as f32 / 2.0;
        let sx = (cx + dx * cos - dy * sin - 0.5).clamp(0.0, (pw - 1) as f32);
        let sy = (cy + dx * sin + dy * cos - 0.5).clamp(0.0, (ph - 1) as f32);
        let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(pw as usize - 1), (y0 + 1).min(ph as usize - 1));
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        for c in 0..3 {
            let p = |x: usize, y: usize| f32::from(src[y * stride + x * 3 + c]);
            let v = (p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx) * (1.0 - fy)
                + (p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx) * fy;
            px.0[c] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    Some(out)
}

/// The recogniser's input for one crop: `[3, 48, W]` BGR in [-1, 1], zero-padded on the right.
pub fn prepare(crop: &RgbImage, min_width: u32) -> (Vec<f32>, u32) {
    let (w, h) = crop.dimensions();
    let rw = ((INPUT_HEIGHT as f32 * w as f32 / h as f32).ceil() as u32).max(8);
    let width = rw.max(min_width).div_ceil(8) * 8;
    let rw = rw.min(width);
    let plane = (INPUT_HEIGHT * width) as usize;
    let mut out = vec![0.0f32; plane * 3];
    let sx = w as f32 / rw as f32;
    let sy = h as f32 / INPUT_HEIGHT as f32;
    let src = crop.as_raw();
    let stride = w as usize * 3;
    for oy in 0..INPUT_HEIGHT {
        let fy = ((oy as f32 + 0.5) * sy - 0.5).clamp(0.0, (h - 1) as f32);
        let y0 = fy.floor() as usize;
        let y1 = (y0 + 1).min(h as usize - 1);
        let dy = fy - y0 as f32;
        for ox in 0..rw {
            let fx = ((ox as f32 + 0.5) * sx - 0.5).clamp(0.0, (w - 1) as f32);
            let x0 = fx.floor() as usize;
            let x1 = (x0 + 1).min(w as usize - 1);
            let dx = fx - x0 as f32;
            for c in 0..3 {
                let p = |x: usize, y: usize| f32::from(src[y * stride + x * 3 + c]);
                let v = (p(x0, y0) * (1.0 - dx) + p(x1, y0) * dx) * (1.0 - dy)
                    + (p(x0, y1) * (1.0 - dx) + p(x1, y1) * dx) * dy;
                // RGB source channel c goes to BGR plane 2 - c.
                out[(2 - c) * plane + (oy * width + ox) as usize] = v / 127.5 - 1.0;
            }
        }
    }
    (out, width)
}

pub struct Recogniser {
    session: Session,
    path: PathBuf,
    input_name: String,
    /// Class index -> character; 0 is the CTC blank.
    chars: Vec<char>,
    /// Blank plus the classes a plate may contain (printable ASCII).
    allowed: Vec<usize>,
    /// `(class index, plate character slot)` for the classes that are A-Z, a-z or 0-9 (a few
    /// dozen of the dictionary's thousands): what a glyph's alternatives are read from.
    slots: Vec<(usize, usize)>,
}

impl Recogniser {
    pub fn load(
        path: &Path,
        dictionary: Option<&Path>,
        threads: usize,
    ) -> Result<Recogniser, EngineError> {
        let session = runtime::session(path, threads)?;
        let shape_err =
            |reason: String| EngineError::ModelShape { path: path.to_path_buf(), reason };
        let input = session.inputs().first().ok_or_else(|| shape_err("no input".into()))?;
        match input.dtype() {
            ValueType::Tensor { shape, .. }
                if shape.len() == 4 && shape[1] == 3 && (shape[2] == 48 || shape[2] < 0) => {}
            other => {
                return Err(shape_err(format!(
                    "recogniser input must be [N,3,48,W] (a text line), found {other:?}"
                )));
            }
        }
        let input_name = input.name().to_string();
        let text = match dictionary {
            Some(d) => std::fs::read_to_string(d).map_err(|e| EngineError::Model {
                path: d.to_path_buf(),
                reason: format!("cannot read dictionary: {e}"),
            })?,
            None => {
                session.metadata().ok().and_then(|m| m.custom("character")).ok_or_else(|| {
                    shape_err(
                        "no dictionary: the model has no `character` metadata; set \
                               recogniser_dictionary"
                            .into(),
                    )
                })?
            }
        };
        let mut chars = vec!['\0'];
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            // Multi-character entries cannot be plate characters: keep their slot, never allow.
            let mut it = line.chars();
            chars.push(match (it.next(), it.next()) {
                (Some(c), None) => c,
                _ => '\u{fffd}',
            });
        }
        if text.ends_with('\n') {
            chars.pop();
        }
        chars.push(' ');
        let allowed = std::iter::once(0)
            .chain((1..chars.len()).filter(|&i| chars[i].is_ascii_graphic()))
            .collect();
        let slots =
            chars.iter().enumerate().filter_map(|(i, &c)| Some((i, plate::slot(c)?))).collect();
        Ok(Recogniser { session, path: path.to_path_buf(), input_name, chars, allowed, slots })
    }

    /// Reads one crop: characters with their probabilities and, for each, how probable every
    /// plate character was at that point (what a plate format may choose instead).
    pub fn recognise(
        &mut self,
        crop: &RgbImage,
        min_width: u32,
    ) -> Result<Vec<Glyph>, EngineError> {
        let fail =
            |e: ort::Error| EngineError::Inference { stage: "recognise", reason: e.to_string() };
        let (data, width) = prepare(crop, min_width);
        let t = Tensor::from_array(([1usize, 3, INPUT_HEIGHT as usize, width as usize], data))
            .map_err(fail)?;
        let outputs =
            self.session.run(ort::inputs![self.input_name.as_str() => t]).map_err(fail)?;
        let (dims, probs) = outputs[0].try_extract_tensor::<f32>().map_err(fail)?;
        let classes = dims.last().copied().unwrap_or(0) as usize;
        if dims.len() != 3 || classes != self.chars.len() {
            return Err(EngineError::ModelShape {
                path: self.path.clone(),
                reason: format!(
                    "recogniser output {dims:?} does not match its dictionary of {} classes",
                    self.chars.len()
                ),
            });
        }
        Ok(ctc::greedy_decode(probs, classes, &self.allowed)
            .into_iter()
            .map(|(i, p, t)| {
                let mut alts = [0.0f32; plate::SLOTS];
                let step = &probs[t * classes..(t + 1) * classes];
                for &(class, slot) in &self.slots {
                    alts[slot] = alts[slot].max(step[class]);
                }
                Glyph { ch: self.chars[i], p, alts }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_pads_and_swaps_channels() {
        let crop = RgbImage::from_pixel(96, 24, image::Rgb([255, 0, 0]));
        let (t, w) = prepare(&crop, 160);
        assert_eq!(w, 192, "96x24 at height 48 is 192 wide");
        let plane = (48 * w) as usize;
        assert!((t[0] - -1.0).abs() < 1e-6, "blue plane of a red pixel");
        assert!((t[2 * plane] - 1.0).abs() < 1e-6, "red plane of a red pixel");
        let (_, w) = prepare(&RgbImage::new(20, 48), 160);
        assert_eq!(w, 160, "narrow crops are padded to the minimum width");
    }

    #[test]
    fn a_widened_box_keeps_its_centre_and_crops_inside_the_picture() {
        let b = PlateBox { x: 100.0, y: 40.0, w: 50.0, h: 20.0 };
        let w = b.widened(0.25);
        assert_eq!((w.x, w.w, w.y, w.h), (87.5, 75.0, 40.0, 20.0));
        assert_eq!(w.centre(), b.centre());
        // At the picture's edge the crop is clipped, not refused.
        let pic = RgbImage::new(120, 80);
        let crop = crop_trimmed(&pic, b.widened(0.15), 0.0).expect("crop");
        assert_eq!(crop.dimensions(), (120 - 92, 20));
    }

    #[test]
    fn trimmed_crop_stays_inside() {
        let pic = RgbImage::new(100, 50);
        let c =
            crop_trimmed(&pic, PlateBox { x: 90.0, y: 40.0, w: 30.0, h: 20.0 }, 0.1).expect("crop");
        // x 90..100 (clipped), y 42..50 (trimmed 2 px at the top, clipped at the bottom).
        assert_eq!(c.dimensions(), (10, 8));
        assert!(crop_trimmed(&pic, PlateBox { x: 99.0, y: 0.0, w: 1.0, h: 1.0 }, 0.0).is_none());
    }

    #[test]
    fn rotated_crop_turns_about_the_box_centre() {
        // A white picture with a dark horizontal bar through (50, 50); the box is centred there.
        let mut pic = RgbImage::from_pixel(100, 100, image::Rgb([255, 255, 255]));
        for x in 20..80 {
            pic.put_pixel(x, 50, image::Rgb([0, 0, 0]));
        }
        let bbox = PlateBox { x: 30.0, y: 40.0, w: 40.0, h: 20.0 };
        let level = crop_rotated(&pic, bbox, 0.0, 0.0).expect("crop");
        let turned = crop_rotated(&pic, bbox, 0.0, 10.0).expect("crop");
        assert_eq!(level.dimensions(), turned.dimensions());
        let dark_rows = |img: &RgbImage, x: u32| {
            (0..img.height()).filter(|&y| img.get_pixel(x, y).0[0] < 128).collect::<Vec<_>>()
        };
        // Level: the bar is on row 10 at both ends. Turned 10 degrees: the bar's left end sits
        // lower in the crop than its right end (the content turns the other way).
        assert_eq!(dark_rows(&level, 2), vec![10]);
        assert_eq!(dark_rows(&level, 37), vec![10]);
        let (left, right) = (dark_rows(&turned, 2), dark_rows(&turned, 37));
        assert!(left.iter().all(|&y| y > 11) && right.iter().all(|&y| y < 9), "{left:?} {right:?}");
    }
}
