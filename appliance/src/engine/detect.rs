//! Plate detection: letterbox, a YOLO-style detector, score threshold, NMS, image boxes.
//!
//! The detector takes a square-ish RGB input scaled by `1/255`, the picture scaled to fit and
//! centred on grey (114) padding. Its first output is `[1, 4 + classes (+ mask coefficients), N]`:
//! rows 0-3 are the box centre and size in input pixels, the class rows are scores in 0-1.
use super::{EngineError, PlateBox, RgbImage, runtime};
use half::f16;
use ort::session::Session;
use ort::value::{Tensor, TensorElementType, ValueType};
use std::path::{Path, PathBuf};

/// How a picture was placed into the detector's input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub scale: f32,
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
}

impl Letterbox {
    /// Scale to fit `(in_w, in_h)`, keep the aspect ratio, centre.
    pub fn fit(pic_w: u32, pic_h: u32, in_w: u32, in_h: u32) -> Letterbox {
        let scale = (in_w as f32 / pic_w as f32).min(in_h as f32 / pic_h as f32);
        let width = ((pic_w as f32 * scale).round() as u32).clamp(1, in_w);
        let height = ((pic_h as f32 * scale).round() as u32).clamp(1, in_h);
        let left = ((in_w - width) as f32 / 2.0 - 0.1).round().max(0.0) as u32;
        let top = ((in_h - height) as f32 / 2.0 - 0.1).round().max(0.0) as u32;
        Letterbox { scale, left, top, width, height }
    }

    /// Maps a box given in input pixels (centre, size) back to picture pixels, clipped.
    pub fn to_picture(&self, cx: f32, cy: f32, w: f32, h: f32, pic_w: u32, pic_h: u32) -> PlateBox {
        let x1 = ((cx - w / 2.0 - self.left as f32) / self.scale).clamp(0.0, pic_w as f32);
        let y1 = ((cy - h / 2.0 - self.top as f32) / self.scale).clamp(0.0, pic_h as f32);
        let x2 = ((cx + w / 2.0 - self.left as f32) / self.scale).clamp(0.0, pic_w as f32);
        let y2 = ((cy + h / 2.0 - self.top as f32) / self.scale).clamp(0.0, pic_h as f32);
        PlateBox { x: x1, y: y1, w: x2 - x1, h: y2 - y1 }
    }
}

/// Writes the letterboxed picture as planar RGB / 255 (bilinear, half-pixel centres).
pub fn letterbox_chw(pic: &RgbImage, lb: &Letterbox, in_w: u32, in_h: u32) -> Vec<f32> {
    let plane = (in_w * in_h) as usize;
    let mut out = vec![114.0 / 255.0; plane * 3];
    let (pw, ph) = pic.dimensions();
    let src = pic.as_raw();
    let stride = pw as usize * 3;
    // Precompute horizontal taps once per column.
    let xs: Vec<(usize, usize, f32)> = (0..lb.width)
        .map(|ox| {
            let sx = ((ox as f32 + 0.5) / lb.scale - 0.5).clamp(0.0, (pw - 1) as f32);
            let x0 = sx.floor() as usize;
            let x1 = (x0 + 1).min(pw as usize - 1);
            (x0 * 3, x1 * 3, sx - x0 as f32)
        })
        .collect();
    for oy in 0..lb.height {
        let sy = ((oy as f32 + 0.5) / lb.scale - 0.5).clamp(0.0, (ph - 1) as f32);
        let y0 = sy.floor() as usize;
        let y1 = (y0 + 1).min(ph as usize - 1);
        let fy = sy - y0 as f32;
        let r0 = &src[y0 * stride..y0 * stride + stride];
        let r1 = &src[y1 * stride..y1 * stride + stride];
        let row = ((oy + lb.top) * in_w + lb.left) as usize;
        for (ox, &(a, b, fx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let top = f32::from(r0[a + c]) * (1.0 - fx) + f32::from(r0[b + c]) * fx;
                let bot = f32::from(r1[a + c]) * (1.0 - fx) + f32::from(r1[b + c]) * fx;
                out[c * plane + row + ox] = (top * (1.0 - fy) + bot * fy) * (1.0 / 255.0);
            }
        }
    }
    out
}

/// Greedy non-maximum suppression; `dets` sorted best first on return.
pub fn nms(mut dets: Vec<(PlateBox, f32)>, iou: f32) -> Vec<(PlateBox, f32)> {
    dets.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut keep: Vec<(PlateBox, f32)> = Vec::new();
    for d in dets {
        if keep.iter().all(|k| k.0.iou(&d.0) <= iou) {
            keep.push(d);
        }
    }
    keep
}

/// What the detector's outputs hold.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Head {
    /// One output `[1, 4 + classes (+ mask coefficients), N]` with boxes already decoded (a
    /// stock YOLOv8 export).
    Decoded { classes: usize },
    /// The raw YOLOv8 head, one output per stride: `[1, 4 * BINS + classes, H/s, W/s]`, distance
    /// bins and class logits (what `scripts/prepare-detector.py` makes). Decoded here, which
    /// spares the runtime the in-graph decoding and lets the input be any multiple of 32.
    Raw { classes: usize },
}

/// Distance bins per box side in a YOLOv8 head (its `reg_max`).
pub const BINS: usize = 16;

/// One detection in detector-input pixels, before NMS: centre, size, score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputBox {
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
    pub score: f32,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The expected distance (in grid cells) of one side: a softmax over its bins, then their mean.
fn expected_bin(logits: impl Iterator<Item = f32> + Clone) -> f32 {
    let max = logits.clone().fold(f32::NEG_INFINITY, f32::max);
    let (mut sum, mut weighted) = (0.0f32, 0.0f32);
    for (i, l) in logits.enumerate() {
        let e = (l - max).exp();
        sum += e;
        weighted += e * i as f32;
    }
    weighted / sum
}

/// Decodes one raw head level: `values` is `[4 * BINS + classes, gh, gw]` (batch 1), `stride` the
/// input pixels per grid cell. Only cells whose best class clears `threshold` are decoded.
pub fn decode_raw_level(
    values: &[f32],
    classes: usize,
    gh: usize,
    gw: usize,
    stride: f32,
    threshold: f32,
    out: &mut Vec<InputBox>,
) {
    let plane = gh * gw;
    // Compare logits, not probabilities: sigmoid is monotonic, so one inverse per level suffices.
    let logit_threshold = (threshold / (1.0 - threshold).max(f32::EPSILON)).ln();
    for cell in 0..plane {
        let best = (0..classes)
            .map(|c| values[(4 * BINS + c) * plane + cell])
            .fold(f32::NEG_INFINITY, f32::max);
        if best < logit_threshold {
            continue;
        }
        let side =
            |k: usize| expected_bin((0..BINS).map(move |b| values[(k * BINS + b) * plane + cell]));
        let (l, t, r, b) = (side(0), side(1), side(2), side(3));
        let ax = (cell % gw) as f32 + 0.5;
        let ay = (cell / gw) as f32 + 0.5;
        let (x1, y1, x2, y2) = (ax - l, ay - t, ax + r, ay + b);
        out.push(InputBox {
            cx: (x1 + x2) / 2.0 * stride,
            cy: (y1 + y2) / 2.0 * stride,
            w: (x2 - x1) * stride,
            h: (y2 - y1) * stride,
            score: sigmoid(best),
        });
    }
}

/// Decodes a stock export's `[4 + classes (+ masks), n]` rows (batch 1).
pub fn decode_flat(values: &[f32], classes: usize, n: usize, threshold: f32) -> Vec<InputBox> {
    let at = |row: usize, i: usize| values[row * n + i];
    (0..n)
        .filter_map(|i| {
            let score = (0..classes).map(|c| at(4 + c, i)).fold(0.0f32, f32::max);
            (score >= threshold).then(|| InputBox {
                cx: at(0, i),
                cy: at(1, i),
                w: at(2, i),
                h: at(3, i),
                score,
            })
        })
        .collect()
}

pub struct Detector {
    session: Session,
    path: PathBuf,
    input_name: String,
    in_w: u32,
    in_h: u32,
    half: bool,
    head: Head,
}

fn tensor_dims(v: &ValueType) -> Option<Vec<i64>> {
    match v {
        ValueType::Tensor { shape, .. } => Some(shape.to_vec()),
        _ => None,
    }
}

fn to_f32(v: &ort::value::DynValue) -> Result<(Vec<i64>, Vec<f32>), ort::Error> {
    match v.try_extract_tensor::<f16>() {
        Ok((s, d)) => Ok((s.to_vec(), d.iter().map(|x| x.to_f32()).collect())),
        Err(_) => {
            let (s, d) = v.try_extract_tensor::<f32>()?;
            Ok((s.to_vec(), d.to_vec()))
        }
    }
}

impl Detector {
    pub fn load(path: &Path, threads: usize) -> Result<Detector, EngineError> {
        let session = runtime::session(path, threads)?;
        let shape_err =
            |reason: String| EngineError::ModelShape { path: path.to_path_buf(), reason };
        let input = session.inputs().first().ok_or_else(|| shape_err("no input".into()))?;
        let (ty, dims) = match input.dtype() {
            ValueType::Tensor { ty, shape, .. } => (*ty, shape.to_vec()),
            other => return Err(shape_err(format!("input is {other:?}, not a tensor"))),
        };
        if dims.len() != 4 || dims[1] != 3 {
            return Err(shape_err(format!(
                "detector input must be [1,3,H,W] (an RGB picture), found {dims:?}"
            )));
        }
        let half = match ty {
            TensorElementType::Float16 => true,
            TensorElementType::Float32 => false,
            other => {
                return Err(shape_err(format!("detector input type {other:?} is not f16/f32")));
            }
        };
        let side = |d: i64| if d > 0 { d as u32 } else { 640 };
        let (in_w, in_h) = (side(dims[3]), side(dims[2]));
        if in_w % 32 != 0 || in_h % 32 != 0 {
            return Err(shape_err(format!("detector input {in_h}x{in_w} is not a multiple of 32")));
        }
        let outs: Vec<Vec<i64>> = session
            .outputs()
            .iter()
            .map(|o| {
                tensor_dims(o.dtype()).ok_or_else(|| shape_err("an output is not a tensor".into()))
            })
            .collect::<Result<_, _>>()?;
        let first = outs.first().ok_or_else(|| shape_err("no output".into()))?;
        let head = if outs.len() == 3
            && outs.iter().all(|d| d.len() == 4 && d[1] > (4 * BINS) as i64 && d[1] == first[1])
        {
            Head::Raw { classes: first[1] as usize - 4 * BINS }
        } else if first.len() == 3 && first[1] >= 5 {
            // A segmentation export carries 32 mask coefficients after the class scores.
            let rows = first[1] as usize;
            Head::Decoded {
                classes: if outs.len() > 1 && rows > 36 { rows - 36 } else { rows - 4 },
            }
        } else {
            return Err(shape_err(format!(
                "detector outputs must be [1,4+classes,N] (a YOLO export) or three raw YOLOv8 \
                 head levels [1,64+classes,H/s,W/s], found {outs:?}"
            )));
        };
        Ok(Detector {
            input_name: input.name().to_string(),
            in_w,
            in_h,
            half,
            head,
            session,
            path: path.to_path_buf(),
        })
    }

    pub fn input_size(&self) -> (u32, u32) {
        (self.in_w, self.in_h)
    }

    pub fn detect(
        &mut self,
        pic: &RgbImage,
        threshold: f32,
        iou: f32,
    ) -> Result<Vec<(PlateBox, f32)>, EngineError> {
        let fail =
            |e: ort::Error| EngineError::Inference { stage: "detect", reason: e.to_string() };
        let (pw, ph) = pic.dimensions();
        let lb = Letterbox::fit(pw, ph, self.in_w, self.in_h);
        let chw = letterbox_chw(pic, &lb, self.in_w, self.in_h);
        let shape = [1usize, 3, self.in_h as usize, self.in_w as usize];
        let outputs = if self.half {
            let data: Vec<f16> = chw.iter().map(|&v| f16::from_f32(v)).collect();
            let t = Tensor::from_array((shape, data)).map_err(fail)?;
            self.session.run(ort::inputs![self.input_name.as_str() => t]).map_err(fail)?
        } else {
            let t = Tensor::from_array((shape, chw)).map_err(fail)?;
            self.session.run(ort::inputs![self.input_name.as_str() => t]).map_err(fail)?
        };
        let wrong = |dims: &[i64]| EngineError::ModelShape {
            path: self.path.clone(),
            reason: format!("detector produced {dims:?}"),
        };
        let mut found = Vec::new();
        match self.head {
            Head::Decoded { classes } => {
                let (dims, values) = to_f32(&outputs[0]).map_err(fail)?;
                if dims.len() != 3 || (dims[1] as usize) < 4 + classes {
                    return Err(wrong(&dims));
                }
                found = decode_flat(&values, classes, dims[2] as usize, threshold);
            }
            Head::Raw { classes } => {
                for i in 0..3 {
                    let (dims, values) = to_f32(&outputs[i]).map_err(fail)?;
                    if dims.len() != 4 || dims[1] as usize != 4 * BINS + classes || dims[2] <= 0 {
                        return Err(wrong(&dims));
                    }
                    let (gh, gw) = (dims[2] as usize, dims[3] as usize);
                    let stride = self.in_h as f32 / gh as f32;
                    decode_raw_level(&values, classes, gh, gw, stride, threshold, &mut found);
                }
            }
        }
        let dets = found
            .into_iter()
            .map(|d| (lb.to_picture(d.cx, d.cy, d.w, d.h, pw, ph), d.score))
            .filter(|(b, _)| b.w >= 4.0 && b.h >= 4.0)
            .collect();
        Ok(nms(dets, iou))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_landscape_is_centred_vertically() {
        let lb = Letterbox::fit(1280, 720, 640, 640);
        assert_eq!((lb.width, lb.height), (640, 360));
        assert_eq!((lb.left, lb.top), (0, 140));
        assert!((lb.scale - 0.5).abs() < 1e-6);
        // The input box centred at (320, 320) of size 100x50 is the picture box at (540, 310).
        let b = lb.to_picture(320.0, 320.0, 100.0, 50.0, 1280, 720);
        assert_eq!((b.x, b.y, b.w, b.h), (540.0, 310.0, 200.0, 100.0));
    }

    #[test]
    fn letterbox_portrait_and_clipping() {
        let lb = Letterbox::fit(300, 600, 640, 640);
        assert_eq!((lb.width, lb.height), (320, 640));
        assert_eq!((lb.left, lb.top), (160, 0));
        // A box hanging off the left edge is clipped to the picture: of its 40 input pixels,
        // the 20 right of the padding are 18.75 picture pixels.
        let b = lb.to_picture(160.0, 100.0, 40.0, 20.0, 300, 600);
        assert_eq!(b.x, 0.0);
        assert!((b.w - 18.75).abs() < 1e-3, "{b:?}");
    }

    #[test]
    fn letterbox_pixels_land_in_place() {
        let mut pic = RgbImage::from_pixel(64, 32, image::Rgb([255, 0, 0]));
        pic.put_pixel(0, 0, image::Rgb([0, 255, 0]));
        let lb = Letterbox::fit(64, 32, 64, 64);
        let t = letterbox_chw(&pic, &lb, 64, 64);
        let plane = 64 * 64;
        // Padding rows are grey, the picture starts at row 16.
        assert!((t[0] - 114.0 / 255.0).abs() < 1e-6);
        assert!((t[16 * 64] - 0.0).abs() < 1e-6, "green pixel's red channel");
        assert!((t[plane + 16 * 64] - 1.0).abs() < 1e-6, "green pixel's green channel");
        assert!((t[20 * 64 + 10] - 1.0).abs() < 1e-6, "red elsewhere");
    }

    #[test]
    fn nms_keeps_best_of_overlaps() {
        let b = |x: f32| PlateBox { x, y: 0.0, w: 10.0, h: 10.0 };
        let kept = nms(vec![(b(0.0), 0.5), (b(1.0), 0.9), (b(50.0), 0.3)], 0.45);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0], (b(1.0), 0.9));
        assert_eq!(kept[1], (b(50.0), 0.3));
    }

    #[test]
    fn raw_head_decodes_distances_and_scores() {
        // A 2x3 grid at stride 8 with one class: only cell (x=1, y=1) clears the threshold.
        let (gh, gw, classes) = (2usize, 3usize, 1usize);
        let plane = gh * gw;
        let mut v = vec![0.0f32; (4 * BINS + classes) * plane];
        v[4 * BINS * plane..].fill(-5.0);
        let cell = gw + 1;
        v[4 * BINS * plane + cell] = 2.0;
        // Sides left, top, right, bottom peak sharply at bins 2, 1, 3, 1 (in grid cells).
        for (side, bin) in [(0, 2), (1, 1), (2, 3), (3, 1)] {
            v[(side * BINS + bin) * plane + cell] = 30.0;
        }
        let mut out = Vec::new();
        decode_raw_level(&v, classes, gh, gw, 8.0, 0.5, &mut out);
        assert_eq!(out.len(), 1);
        let d = out[0];
        // Anchor (1.5, 1.5): x -0.5 .. 4.5 (centre 2), y 0.5 .. 2.5 (centre 1.5), times 8.
        assert!((d.cx - 16.0).abs() < 1e-3 && (d.cy - 12.0).abs() < 1e-3, "{d:?}");
        assert!((d.w - 40.0).abs() < 1e-3 && (d.h - 16.0).abs() < 1e-3, "{d:?}");
        assert!((d.score - sigmoid(2.0)).abs() < 1e-6);
        // Flat bins give the mean distance, 7.5 cells.
        assert!((expected_bin([0.0f32; BINS].into_iter()) - 7.5).abs() < 1e-5);
    }

    #[test]
    fn decoded_head_keeps_rows_over_threshold() {
        // Two candidates, rows cx, cy, w, h, score: only the second clears 0.5.
        let v = [10.0, 20.0, 30.0, 40.0, 5.0, 6.0, 7.0, 8.0, 0.2, 0.9];
        let d = decode_flat(&v, 1, 2, 0.5);
        assert_eq!(d, vec![InputBox { cx: 20.0, cy: 40.0, w: 6.0, h: 8.0, score: 0.9 }]);
    }
}
