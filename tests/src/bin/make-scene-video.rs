//! Renders a road scene video with vehicles passing, for tests and the demo.
//!
//! Each vehicle is checked against the real engine on a still before it goes into the video and
//! re-rolled (colour, size, plate) until the engine reads its plate exactly, so the video's
//! expected plates are ones the engine can read. Prints the expected plates as JSON.
use appliance::engine::{Engine, EngineConfig};
use clap::Parser;
use e2e_tests::scene::{Renderer, random_plate, random_vehicle};
use rand::{SeedableRng, rngs::StdRng};
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    /// Output MP4 file.
    #[arg(long)]
    out: PathBuf,
    /// Vehicles that pass, one after the other.
    #[arg(long, default_value_t = 3)]
    vehicles: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 10)]
    fps: u32,
    /// A parked vehicle stays in view for this many seconds after the passes (0: none).
    #[arg(long, default_value_t = 0)]
    parked_s: u32,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let renderer = Renderer::new(1280, 720, args.seed)?;
    let mut engine = Engine::load(&EngineConfig::default())?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut pick = |rng: &mut StdRng| -> anyhow::Result<_> {
        for _ in 0..60 {
            let plate = random_plate(rng);
            let v = random_vehicle(rng, plate);
            let reading = engine.read(&renderer.still(&v))?;
            if reading.plates.first().map(|p| p.text.as_str()) == Some(v.plate.as_str()) {
                return Ok(v);
            }
        }
        anyhow::bail!("no readable vehicle in 60 tries: is the engine set up?")
    };
    let mut vehicles = Vec::new();
    for _ in 0..args.vehicles {
        vehicles.push(pick(&mut rng)?);
    }
    let parked = if args.parked_s > 0 { Some(pick(&mut rng)?) } else { None };
    let fps = args.fps as i32;
    let w = renderer.width as i32;
    let mut frames: Vec<(Option<usize>, i32)> = Vec::new();
    // Each pass: 0.5 s of empty road, then the vehicle drives from left of centre to right of
    // centre over 3 s, then 1 s of empty road (the pass ends when the plate is gone).
    for i in 0..vehicles.len() {
        frames.extend((0..fps / 2).map(|_| (None, 0)));
        let steps = 3 * fps;
        for s in 0..steps {
            frames.push((Some(i), w / 4 + (w / 2) * s / steps));
        }
        frames.extend((0..fps).map(|_| (None, 0)));
    }
    let parked_frames = parked.as_ref().map(|_| args.parked_s as i32 * fps).unwrap_or(0);
    let bg = renderer.background();
    let render = frames
        .into_iter()
        .map(|(v, x)| {
            let mut img = bg.clone();
            if let Some(i) = v {
                renderer.draw_vehicle(&mut img, &vehicles[i], x);
            }
            img
        })
        .chain((0..parked_frames).map(|_| {
            let mut img = bg.clone();
            if let Some(p) = &parked {
                renderer.draw_vehicle(&mut img, p, w / 2);
            }
            img
        }));
    e2e_tests::video::write_mp4(&args.out, args.fps, render)?;
    let mut plates: Vec<&str> = vehicles.iter().map(|v| v.plate.as_str()).collect();
    if let Some(p) = &parked {
        plates.push(&p.plate);
    }
    println!("{}", serde_json::json!({ "plates": plates }));
    Ok(())
}
