//! Renders road scenes with vehicles carrying readable plates.
//!
//! The default plate detector was trained on photographs, so a scene has to look enough like one:
//! a white plate with a dark border and a state name above dark characters, on a car body of a
//! colour the detector knows, with shading and a little noise. The generator does not assume it
//! worked: [`SceneCheck`] callers read a still of each vehicle with the real engine and re-roll
//! the vehicle until the plate reads exactly.
use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// The font for plate characters (Debian's fonts-dejavu-core, installed by set-up).
pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

/// How one vehicle looks.
#[derive(Debug, Clone, PartialEq)]
pub struct Vehicle {
    pub plate: String,
    pub body: [u8; 3],
    /// Plate width in pixels at 1280x720.
    pub plate_w: u32,
    /// Vertical position of the car's bottom edge, in pixels.
    pub baseline: u32,
}

/// Plate-like strings: three letters and three or four digits (no O, no I: they are ambiguous on
/// real plates too).
pub fn random_plate(rng: &mut impl Rng) -> String {
    const L: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ";
    const D: &[u8] = b"0123456789";
    let mut s = String::new();
    for _ in 0..3 {
        s.push(L[rng.random_range(0..L.len())] as char);
    }
    for _ in 0..rng.random_range(3..=4) {
        s.push(D[rng.random_range(0..D.len())] as char);
    }
    s
}

/// Colours the detector finds well on rendered scenes (reds, purples, greys, white).
const BODIES: [[u8; 3]; 6] =
    [[170, 25, 30], [120, 30, 110], [200, 200, 205], [90, 90, 95], [150, 20, 60], [230, 230, 225]];

pub fn random_vehicle(rng: &mut impl Rng, plate: String) -> Vehicle {
    Vehicle {
        plate,
        body: BODIES[rng.random_range(0..BODIES.len())],
        plate_w: rng.random_range(90..=135),
        baseline: rng.random_range(560..=660),
    }
}

pub struct Renderer {
    font: FontRef<'static>,
    pub width: u32,
    pub height: u32,
    background: RgbImage,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").field("width", &self.width).finish_non_exhaustive()
    }
}

fn fill(img: &mut RgbImage, x0: i32, y0: i32, x1: i32, y1: i32, c: [u8; 3]) {
    let (w, h) = (img.width() as i32, img.height() as i32);
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            img.put_pixel(x as u32, y as u32, Rgb(c));
        }
    }
}

fn shade(c: [u8; 3], f: f32) -> [u8; 3] {
    c.map(|v| (f32::from(v) * f).clamp(0.0, 255.0) as u8)
}

impl Renderer {
    pub fn new(width: u32, height: u32, seed: u64) -> anyhow::Result<Renderer> {
        let bytes = std::fs::read(FONT_PATH)
            .map_err(|e| anyhow::anyhow!("font {FONT_PATH}: {e} (run make setup)"))?;
        let font = FontRef::try_from_slice(Box::leak(bytes.into_boxed_slice()))
            .map_err(|e| anyhow::anyhow!("font {FONT_PATH}: {e}"))?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut bg = RgbImage::new(width, height);
        let horizon = height * 2 / 5;
        for y in 0..height {
            for x in 0..width {
                let c = if y < horizon {
                    let t = y as f32 / horizon as f32;
                    [(150.0 + 60.0 * t) as u8, (180.0 + 40.0 * t) as u8, 225]
                } else {
                    let n: i16 = rng.random_range(-6..=6);
                    let g = (105 + n) as u8;
                    [g, g, g.saturating_add(3)]
                };
                bg.put_pixel(x, y, Rgb(c));
            }
        }
        // Trees and a kerb so the scene is not a flat field.
        for i in 0..12 {
            let x = i * width as i32 / 12 + rng.random_range(0..40);
            fill(&mut bg, x, horizon as i32 - 90, x + 70, horizon as i32, [40, 90, 45]);
        }
        fill(&mut bg, 0, horizon as i32, width as i32, horizon as i32 + 12, [170, 170, 165]);
        Ok(Renderer { font, width, height, background: bg })
    }

    pub fn background(&self) -> RgbImage {
        self.background.clone()
    }

    /// Draws `s` centred on `cx`, at most `px` high and `max_w` wide.
    #[allow(clippy::too_many_arguments)]
    fn text(
        &self,
        img: &mut RgbImage,
        s: &str,
        cx: f32,
        top: f32,
        px: f32,
        max_w: f32,
        colour: [u8; 3],
    ) {
        let measure = |px: f32| {
            let sf = self.font.as_scaled(PxScale::from(px));
            s.chars().map(|c| sf.h_advance(sf.glyph_id(c))).sum::<f32>()
        };
        let w0 = measure(px);
        let px = if w0 > max_w { px * max_w / w0 } else { px };
        let sf = self.font.as_scaled(PxScale::from(px));
        let width = measure(px);
        let mut x = cx - width / 2.0;
        for c in s.chars() {
            let g = sf.scaled_glyph(c);
            let adv = sf.h_advance(g.id);
            let g = ab_glyph::Glyph { position: ab_glyph::point(x, top + sf.ascent()), ..g };
            if let Some(outline) = self.font.outline_glyph(g) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, cov| {
                    let px_ = b.min.x as i32 + gx as i32;
                    let py = b.min.y as i32 + gy as i32;
                    if px_ >= 0
                        && py >= 0
                        && (px_ as u32) < img.width()
                        && (py as u32) < img.height()
                    {
                        let p = img.get_pixel_mut(px_ as u32, py as u32);
                        for (c, &target) in p.0.iter_mut().zip(&colour) {
                            *c = (f32::from(*c) * (1.0 - cov) + f32::from(target) * cov) as u8;
                        }
                    }
                });
            }
            x += adv;
        }
    }

    /// Draws the rear of a vehicle with its centre at `cx`. Returns the plate box (x, y, w, h).
    pub fn draw_vehicle(&self, img: &mut RgbImage, v: &Vehicle, cx: i32) -> (i32, i32, i32, i32) {
        let pw = v.plate_w as i32;
        let ph = pw / 2;
        let car_w = pw * 3;
        let car_h = pw * 3 / 2;
        let bottom = v.baseline as i32;
        let left = cx - car_w / 2;
        let top = bottom - car_h;
        // Shadow, wheels, body, rear window, lights, bumper.
        fill(img, left - 10, bottom - 10, left + car_w + 10, bottom + 12, [50, 50, 52]);
        fill(img, left + 20, bottom - 40, left + 90, bottom + 8, [20, 20, 20]);
        fill(img, left + car_w - 90, bottom - 40, left + car_w - 20, bottom + 8, [20, 20, 20]);
        for y in top..bottom - 20 {
            let f = 0.75 + 0.35 * ((y - top) as f32 / car_h as f32);
            let inset = if y < top + car_h / 3 { (top + car_h / 3 - y) / 2 } else { 0 };
            fill(img, left + inset, y, left + car_w - inset, y + 1, shade(v.body, f));
        }
        fill(img, left + car_w / 6, top + 12, left + car_w * 5 / 6, top + car_h / 3, [45, 55, 65]);
        fill(img, left + 15, top + car_h / 2 - 20, left + 75, top + car_h / 2 + 15, [200, 30, 20]);
        fill(
            img,
            left + car_w - 75,
            top + car_h / 2 - 20,
            left + car_w - 15,
            top + car_h / 2 + 15,
            [200, 30, 20],
        );
        fill(img, left, bottom - 45, left + car_w, bottom - 20, [35, 35, 38]);
        // The plate: border, white field, state name, characters.
        let px = cx - pw / 2;
        let py = bottom - 60 - ph;
        fill(img, px - 4, py - 4, px + pw + 4, py + ph + 4, [25, 25, 30]);
        fill(img, px, py, px + pw, py + ph, [242, 242, 238]);
        let (fx, fy) = (cx as f32, py as f32);
        self.text(
            img,
            "MINNESOTA",
            fx,
            fy + ph as f32 * 0.04,
            ph as f32 * 0.2,
            pw as f32 * 0.6,
            [30, 60, 140],
        );
        let chars = ph as f32 * 0.56;
        self.text(img, &v.plate, fx, fy + ph as f32 * 0.3, chars, pw as f32 * 0.86, [20, 25, 60]);
        (px, py, pw, ph)
    }

    /// A still of the vehicle at the centre of the scene (what a check reads).
    pub fn still(&self, v: &Vehicle) -> RgbImage {
        let mut img = self.background();
        self.draw_vehicle(&mut img, v, self.width as i32 / 2);
        img
    }
}

/// What a generated video holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneVideo {
    /// Plates in the order the vehicles appear (the parked one last).
    pub plates: Vec<String>,
}

/// A plan for a generated video.
#[derive(Debug, Clone)]
pub struct ScenePlan {
    pub vehicles: usize,
    pub seed: u64,
    pub fps: u32,
    /// A vehicle parked in view for this many seconds after the passes (0: none).
    pub parked_s: u32,
    /// Seconds of empty road at the end (a static scene when there are no vehicles).
    pub idle_s: u32,
    /// Milliseconds of empty road before each pass (long enough, and the motion gate has gone
    /// quiet when the vehicle arrives).
    pub lead_ms: u32,
    pub width: u32,
    pub height: u32,
}

impl Default for ScenePlan {
    fn default() -> Self {
        ScenePlan {
            vehicles: 3,
            seed: 1,
            fps: 10,
            parked_s: 0,
            idle_s: 0,
            lead_ms: 500,
            width: 1280,
            height: 720,
        }
    }
}

/// A random vehicle whose plate the real engine reads exactly on a still of it (re-rolled until
/// it does).
pub fn readable_vehicle(
    renderer: &Renderer,
    rng: &mut impl Rng,
    engine: &mut appliance::engine::Engine,
) -> anyhow::Result<Vehicle> {
    for _ in 0..60 {
        let plate = random_plate(rng);
        let v = random_vehicle(rng, plate);
        let reading = engine.read(&renderer.still(&v))?;
        if reading.plates.first().map(|p| p.text.as_str()) == Some(v.plate.as_str()) {
            return Ok(v);
        }
    }
    anyhow::bail!("no readable vehicle in 60 tries: is the engine set up?")
}

/// Renders the plan into an H.264 MP4 at `out`. Each vehicle is first checked on a still with the
/// real engine and re-rolled until its plate reads exactly.
pub fn make_video(
    out: &std::path::Path,
    plan: &ScenePlan,
    engine: &mut appliance::engine::Engine,
) -> anyhow::Result<SceneVideo> {
    let renderer = Renderer::new(plan.width, plan.height, plan.seed)?;
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let mut pick = |rng: &mut StdRng| readable_vehicle(&renderer, rng, engine);
    let mut vehicles = Vec::new();
    for _ in 0..plan.vehicles {
        vehicles.push(pick(&mut rng)?);
    }
    let parked = if plan.parked_s > 0 { Some(pick(&mut rng)?) } else { None };
    let fps = plan.fps as i32;
    let w = renderer.width as i32;
    // Each pass: `lead_ms` of empty road (0.5 s by default), the vehicle crossing the middle half of the picture in 3 s,
    // then 1 s of empty road (the pass ends when the plate has gone).
    let mut frames: Vec<(Option<usize>, i32)> = Vec::new();
    for i in 0..vehicles.len() {
        frames.extend((0..fps * plan.lead_ms as i32 / 1000).map(|_| (None, 0)));
        let steps = 3 * fps;
        frames.extend((0..steps).map(|s| (Some(i), w / 4 + (w / 2) * s / steps)));
        frames.extend((0..fps).map(|_| (None, 0)));
    }
    let parked_frames = if parked.is_some() { plan.parked_s as i32 * fps } else { 0 };
    let bg = renderer.background();
    let with = |v: Option<&Vehicle>, x: i32| {
        let mut img = bg.clone();
        if let Some(v) = v {
            renderer.draw_vehicle(&mut img, v, x);
        }
        img
    };
    // A parked vehicle does not move: its picture is drawn once.
    let parked_picture = parked.as_ref().map(|v| with(Some(v), w / 2));
    let render = frames
        .into_iter()
        .map(|(v, x)| with(v.map(|i| &vehicles[i]), x))
        .chain(parked_picture.iter().flat_map(|p| (0..parked_frames).map(|_| p.clone())))
        .chain((0..fps * (1 + plan.idle_s as i32)).map(|_| with(None, 0)));
    crate::video::write_mp4(out, plan.fps, render)?;
    let mut plates: Vec<String> = vehicles.into_iter().map(|v| v.plate).collect();
    plates.extend(parked.map(|p| p.plate));
    Ok(SceneVideo { plates })
}
