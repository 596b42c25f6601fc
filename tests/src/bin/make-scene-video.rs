//! Renders a road scene video with vehicles passing, for tests and the demo. Prints the plates the
//! video holds as JSON. Each vehicle is checked against the real engine before it goes in.
use appliance::engine::{Engine, EngineConfig};
use clap::Parser;
use e2e_tests::scene::{ScenePlan, make_video};
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
    /// A vehicle parked in view for this many seconds after the passes (0: none).
    #[arg(long, default_value_t = 0)]
    parked_s: u32,
    /// Seconds of empty road at the end (with `--vehicles 0`: a static scene).
    #[arg(long, default_value_t = 0)]
    idle_s: u32,
    /// Milliseconds of empty road before each pass.
    #[arg(long, default_value_t = 500)]
    lead_ms: u32,
    #[arg(long, default_value_t = 1280)]
    width: u32,
    #[arg(long, default_value_t = 720)]
    height: u32,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let mut engine = Engine::load(&EngineConfig::default())?;
    let plan = ScenePlan {
        vehicles: a.vehicles,
        seed: a.seed,
        fps: a.fps,
        parked_s: a.parked_s,
        idle_s: a.idle_s,
        lead_ms: a.lead_ms,
        width: a.width,
        height: a.height,
    };
    let video = make_video(&a.out, &plan, &mut engine)?;
    println!("{}", serde_json::json!({ "plates": video.plates }));
    Ok(())
}
