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

pub struct Detector {
    session: Session,
    path: PathBuf,
    input_name: String,
    in_w: u32,
    in_h: u32,
    half: bool,
    classes: usize,
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
        let output = session.outputs().first().ok_or_else(|| shape_err("no output".into()))?;
        let out_dims = match output.dtype() {
            ValueType::Tensor { shape, .. } => shape.to_vec(),
            other => return Err(shape_err(format!("output is {other:?}, not a tensor"))),
        };
        if out_dims.len() != 3 || out_dims[1] < 5 {
            return Err(shape_err(format!(
                "detector output must be [1,4+classes,N] (YOLO), found {out_dims:?}"
            )));
        }
        // A segmentation export carries 32 mask coefficients after the class scores.
        let rows = out_dims[1] as usize;
        let classes = if session.outputs().len() > 1 && rows > 36 { rows - 36 } else { rows - 4 };
        Ok(Detector {
            input_name: input.name().to_string(),
            in_w: side(dims[3]),
            in_h: side(dims[2]),
            half,
            classes,
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
        let out = &outputs[0];
        let (dims, values): (Vec<i64>, Vec<f32>) = match out.try_extract_tensor::<f16>() {
            Ok((s, v)) => (s.to_vec(), v.iter().map(|x| x.to_f32()).collect()),
            Err(_) => {
                let (s, v) = out.try_extract_tensor::<f32>().map_err(fail)?;
                (s.to_vec(), v.to_vec())
            }
        };
        if dims.len() != 3 || (dims[1] as usize) < 4 + self.classes {
            return Err(EngineError::ModelShape {
                path: self.path.clone(),
                reason: format!("detector produced {dims:?}"),
            });
        }
        let n = dims[2] as usize;
        let at = |row: usize, i: usize| values[row * n + i];
        let mut dets = Vec::new();
        for i in 0..n {
            let score = (0..self.classes).map(|c| at(4 + c, i)).fold(0.0f32, f32::max);
            if score < threshold {
                continue;
            }
            let b = lb.to_picture(at(0, i), at(1, i), at(2, i), at(3, i), pw, ph);
            if b.w >= 4.0 && b.h >= 4.0 {
                dets.push((b, score));
            }
        }
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
}
