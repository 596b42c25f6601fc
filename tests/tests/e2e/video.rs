//! The capture path on video as a roadside camera records it (GStreamer decode, the motion gate,
//! the real engine, the pass tracker): photos of cars give the stills' reads, a parked car costs
//! the idle rate once it is read, and a car that arrives beside a parked one gets its own read.
use appliance::analyse::{Replay, replay};
use appliance::engine::{Engine, EngineConfig};
use e2e_tests::photo_video::{Photo, PhotoCar, PhotoPlan, make_photo_video};
use e2e_tests::scene::{Renderer, Vehicle, readable_vehicle};
use e2e_tests::video::{Encoding, encode_mp4};
use image::RgbImage;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// `n` rendered vehicles the engine reads exactly on their stills.
fn vehicles(renderer: &Renderer, n: usize, seed: u64) -> anyhow::Result<Vec<Vehicle>> {
    let mut engine = Engine::load(&EngineConfig::default())?;
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| readable_vehicle(renderer, &mut rng, &mut engine)).collect()
}

fn play(path: &std::path::Path) -> anyhow::Result<(Replay, appliance::Config)> {
    let mut cfg = appliance::Config::default();
    cfg.capture.source = path.display().to_string();
    let run = replay(&cfg, Engine::load(&cfg.engine)?)?;
    Ok((run, cfg))
}

fn plates(run: &Replay) -> Vec<&str> {
    run.reads.iter().map(|r| r.plate.as_str()).collect()
}

/// Photos of cars, each in view for 2 s of a 1080p15 video with a keyframe every 2 s and road
/// between (as `photo-video` makes them from the benchmark photos): one read per car, with the
/// text the engine reads on the still, in the order they came.
#[test]
fn a_video_of_photo_cars_gives_one_read_per_car_with_the_stills_texts() -> anyhow::Result<()> {
    let renderer = Renderer::new(1280, 720, 41)?;
    let cars = vehicles(&renderer, 4, 41)?;
    let photos: Vec<PhotoCar> = cars
        .iter()
        .map(|v| PhotoCar { photo: Photo::Image(renderer.still(v)), plate: v.plate.clone() })
        .collect();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("photos.mp4");
    let passes = make_photo_video(&path, &photos, &PhotoPlan::default())?;
    assert_eq!(passes.len(), 4);
    let (run, _) = play(&path)?;
    let expected: Vec<&str> = cars.iter().map(|v| v.plate.as_str()).collect();
    assert_eq!(plates(&run), expected, "{:?}", run.gate);
    for (read, pass) in run.reads.iter().zip(&passes) {
        assert!(
            (pass.start_ms..pass.end_ms).contains(&read.first_seen),
            "{} first seen at {} ms, in view {}-{} ms",
            read.plate,
            read.first_seen,
            pass.start_ms,
            pass.end_ms
        );
    }
    Ok(())
}

/// Frames at `fps` for `secs` seconds, each drawn by `draw` from its time in seconds.
fn timeline(fps: u32, secs: f32, draw: impl Fn(f32) -> RgbImage) -> impl Iterator<Item = RgbImage> {
    let n = (secs * fps as f32) as u32;
    (0..n).map(move |i| draw(i as f32 / fps as f32))
}

/// A car parks in view for two minutes: one read, out within seconds of its stopping, and from
/// then on the engine runs at the gate's idle interval, not at the analysis rate.
#[test]
fn a_parked_car_is_read_once_then_looked_at_at_the_idle_rate() -> anyhow::Result<()> {
    let renderer = Renderer::new(1280, 720, 43)?;
    let car = vehicles(&renderer, 1, 43)?.remove(0);
    let road = renderer.background();
    let w = renderer.width as i32;
    // 2 s of road, 2 s driving in to the middle, 120 s parked, 2 s of road after it left.
    let draw = |t: f32| {
        let mut img = road.clone();
        if (2.0..124.0).contains(&t) {
            let x = if t < 4.0 { w / 4 + ((t - 2.0) / 2.0 * (w / 4) as f32) as i32 } else { w / 2 };
            renderer.draw_vehicle(&mut img, &car, x);
        }
        img
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("parked.mp4");
    encode_mp4(
        &path,
        &Encoding { keyframe_every: 20, ..Encoding::quick(10) },
        timeline(10, 126.0, draw),
    )?;
    let (run, cfg) = play(&path)?;
    assert_eq!(plates(&run), [car.plate.as_str()], "{:?}", run.gate);
    let out = run.read_out_ms[0];
    // Stopped at 4 s: read once it has stood still for `settle_ms`, give or take the gate.
    assert!(out <= 4000 + cfg.pass.settle_ms + 2000, "read out at {out} ms");
    // After the read, until it leaves, only the idle looks (and a frame or two as the gate
    // settles).
    let parked: Vec<i64> =
        run.analysed_ms.iter().copied().filter(|t| (out + 2000..124_000).contains(t)).collect();
    let idle_looks = (124_000 - out - 2000) / cfg.gate.idle_interval_ms + 1;
    assert!(
        parked.len() as i64 <= idle_looks + 2,
        "{} frames analysed while parked after the read (idle rate: {idle_looks}): {parked:?}",
        parked.len()
    );
    Ok(())
}

/// A car parked at the left for a minute; another drives across the right half and is gone; then
/// the parked one drives off. Two reads: the parked car's (once, also as it leaves) and the
/// newcomer's, caught although the gate had gone quiet.
#[test]
fn a_car_arriving_beside_a_parked_one_gets_its_own_read() -> anyhow::Result<()> {
    let renderer = Renderer::new(1280, 720, 47)?;
    let cars = vehicles(&renderer, 2, 47)?;
    let (parked, newcomer) = (&cars[0], &cars[1]);
    let road = renderer.background();
    let w = renderer.width as i32;
    let draw = |t: f32| {
        let mut img = road.clone();
        // Parked at w/4 from the start; drives off to the left from 70 s to 72 s.
        if t < 72.0 {
            let x =
                if t < 70.0 { w / 4 } else { w / 4 - ((t - 70.0) / 2.0 * (w / 2) as f32) as i32 };
            renderer.draw_vehicle(&mut img, parked, x);
        }
        // The newcomer crosses from the middle to the right edge from 40 s to 43 s.
        if (40.0..43.0).contains(&t) {
            renderer.draw_vehicle(
                &mut img,
                newcomer,
                w / 2 + 100 + ((t - 40.0) / 3.0 * (w / 3) as f32) as i32,
            );
        }
        img
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("beside.mp4");
    encode_mp4(&path, &Encoding::quick(10), timeline(10, 75.0, draw))?;
    let (run, _) = play(&path)?;
    assert_eq!(plates(&run), [parked.plate.as_str(), newcomer.plate.as_str()], "{:?}", run.gate);
    assert!(
        (40_000..43_000).contains(&run.reads[1].first_seen),
        "the newcomer was seen while it crossed: {} ms",
        run.reads[1].first_seen
    );
    Ok(())
}
