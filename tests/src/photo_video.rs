//! Photos of vehicles turned into a video the way a roadside camera records them: each photo scaled
//! into the camera's frame and held there for a while (the car in view), empty road between the
//! cars, H.264 at a camera's bitrate and keyframe interval. The list of the passes it holds (when
//! each car is in view, and its plate) goes beside it, so that what the capture path reads can be
//! scored per car (`bench-capture --expected`).
use crate::video::{Encoding, encode_mp4};
use image::{Rgb, RgbImage};
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// A vehicle's photo: a file, or a picture made in memory (tests).
#[derive(Debug, Clone)]
pub enum Photo {
    File(PathBuf),
    Image(RgbImage),
}

/// One car of the video: its photo and the plate it carries.
#[derive(Debug, Clone)]
pub struct PhotoCar {
    pub photo: Photo,
    pub plate: String,
}

/// How the video is laid out in time and encoded.
#[derive(Debug, Clone)]
pub struct PhotoPlan {
    pub width: u32,
    pub height: u32,
    /// Each car is in view this long ...
    pub hold_ms: u32,
    /// ... with this much empty road after it ...
    pub gap_ms: u32,
    /// ... and this much before the first.
    pub lead_ms: u32,
    pub encoding: Encoding,
}

impl Default for PhotoPlan {
    /// 1080p at 15 fps, a keyframe every 2 s and 4 Mbit/s, as IP cameras are commonly set; each car
    /// in view for 2 s with 1 s of road between.
    fn default() -> Self {
        PhotoPlan {
            width: 1920,
            height: 1080,
            hold_ms: 2000,
            gap_ms: 1000,
            lead_ms: 1000,
            encoding: Encoding {
                fps: 15,
                keyframe_every: 30,
                bitrate_kbps: 4000,
                preset: "veryfast",
                bframes: 0,
                zerolatency: false,
            },
        }
    }
}

/// A car's time in view, in video time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedPass {
    pub start_ms: i64,
    pub end_ms: i64,
    pub plate: String,
    /// Where the photo came from (a file name), for reports.
    pub source: String,
}

/// The empty road: a grey, slightly textured surface that does not change from frame to frame.
pub fn road(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        // A fixed texture (a hash of the position), darker towards the bottom of the picture.
        let h = x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(2_246_822_519);
        let grain = ((h >> 13) % 9) as u8;
        let v = 88u8.saturating_sub((y * 24 / height.max(1)) as u8) + grain;
        Rgb([v, v, v.saturating_add(3)])
    })
}

/// `photo` scaled to fit the road's frame, keeping its aspect, at the centre of the road.
pub fn framed(photo: &RgbImage, road: &RgbImage) -> RgbImage {
    let (fw, fh) = road.dimensions();
    let (pw, ph) = photo.dimensions();
    let mut out = road.clone();
    if pw == 0 || ph == 0 {
        return out;
    }
    let scale = (f64::from(fw) / f64::from(pw)).min(f64::from(fh) / f64::from(ph));
    let w = ((f64::from(pw) * scale).round() as u32).clamp(1, fw);
    let h = ((f64::from(ph) * scale).round() as u32).clamp(1, fh);
    let scaled = image::imageops::resize(photo, w, h, image::imageops::FilterType::CatmullRom);
    image::imageops::replace(&mut out, &scaled, i64::from((fw - w) / 2), i64::from((fh - h) / 2));
    out
}

fn load(photo: &Photo) -> anyhow::Result<RgbImage> {
    match photo {
        Photo::Image(img) => Ok(img.clone()),
        Photo::File(path) => Ok(image::ImageReader::open(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .with_guessed_format()?
            .decode()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .to_rgb8()),
    }
}

fn source(photo: &Photo, index: usize) -> String {
    match photo {
        Photo::File(p) => p
            .file_name()
            .map_or_else(|| p.display().to_string(), |f| f.to_string_lossy().into_owned()),
        Photo::Image(_) => format!("car-{index}"),
    }
}

/// Writes the video of `cars` to `out` as `plan` lays it out; returns the passes it holds.
pub fn make_photo_video(
    out: &Path,
    cars: &[PhotoCar],
    plan: &PhotoPlan,
) -> anyhow::Result<Vec<ExpectedPass>> {
    anyhow::ensure!(!cars.is_empty(), "no photos to make a video of");
    let fps = plan.encoding.fps.max(1);
    let frames_of = |ms: u32| (u64::from(ms) * u64::from(fps)).div_ceil(1000).max(1) as usize;
    let (lead, hold, gap) =
        (frames_of(plan.lead_ms), frames_of(plan.hold_ms), frames_of(plan.gap_ms));
    let at = |frame: usize| (frame as u64 * 1000 / u64::from(fps)) as i64;
    let mut expected = Vec::with_capacity(cars.len());
    for (i, car) in cars.iter().enumerate() {
        let first = lead + i * (hold + gap);
        expected.push(ExpectedPass {
            start_ms: at(first),
            end_ms: at(first + hold),
            plate: car.plate.clone(),
            source: source(&car.photo, i),
        });
    }
    let road = road(plan.width, plan.height);
    // One car's framed photo at a time is in memory; a photo that cannot be read ends the video
    // early and is the error returned.
    let failed = RefCell::new(None);
    let road_frames = |n: usize| std::iter::repeat_n(road.clone(), n);
    let car_frames = cars.iter().flat_map(|car| {
        let photo = match load(&car.photo) {
            Ok(p) => Some(framed(&p, &road)),
            Err(e) => {
                failed.borrow_mut().get_or_insert(e);
                None
            }
        };
        let shown: Box<dyn Iterator<Item = RgbImage>> = match photo {
            Some(p) => Box::new(std::iter::repeat_n(p, hold).chain(road_frames(gap))),
            None => Box::new(std::iter::empty()),
        };
        shown
    });
    let frames = road_frames(lead).chain(car_frames).take_while(|_| failed.borrow().is_none());
    encode_mp4(out, &plan.encoding, frames)?;
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    Ok(expected)
}

/// The expected passes as CSV: `start_ms,end_ms,plate,source` under a header line.
pub fn expected_csv(passes: &[ExpectedPass]) -> String {
    let mut s = String::from("start_ms,end_ms,plate,source\n");
    for p in passes {
        let src = p.source.replace([',', '\n', '\r'], "_");
        s.push_str(&format!("{},{},{},{src}\n", p.start_ms, p.end_ms, p.plate));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_is_scaled_to_fit_and_centred_on_the_road() {
        let road = road(192, 108);
        let photo = RgbImage::from_pixel(40, 40, Rgb([250, 0, 0]));
        let f = framed(&photo, &road);
        // 40x40 to fit 192x108 is 108x108, from x=42.
        assert_eq!(f.get_pixel(96, 54), &Rgb([250, 0, 0]));
        assert_eq!(f.get_pixel(43, 1), &Rgb([250, 0, 0]));
        assert_eq!(f.get_pixel(41, 54), road.get_pixel(41, 54));
        assert_eq!(f.get_pixel(151, 54), road.get_pixel(151, 54));
    }

    #[test]
    fn the_list_is_csv_that_a_source_name_cannot_break() {
        let p = ExpectedPass {
            start_ms: 1000,
            end_ms: 3000,
            plate: "ABC123".into(),
            source: "a,b".into(),
        };
        assert_eq!(expected_csv(&[p]), "start_ms,end_ms,plate,source\n1000,3000,ABC123,a_b\n");
    }
}
