//! Development probe: how often does the engine read rendered vehicles?
use appliance::engine::{Engine, EngineConfig};
use e2e_tests::scene::{Renderer, random_plate, random_vehicle};
use rand::{SeedableRng, rngs::StdRng};

fn main() -> anyhow::Result<()> {
    let r = Renderer::new(1280, 720, 1)?;
    let mut engine = Engine::load(&EngineConfig::default())?;
    let mut rng = StdRng::seed_from_u64(7);
    let mut ok = 0;
    for i in 0..20 {
        let plate = random_plate(&mut rng);
        let v = random_vehicle(&mut rng, plate);
        let still = r.still(&v);
        if i == 0 {
            still.save("/tmp/scene0.png")?;
        }
        let reading = engine.read(&still)?;
        let got: Vec<_> = reading.plates.iter().map(|p| p.text.clone()).collect();
        let hit = got.first() == Some(&v.plate);
        ok += usize::from(hit);
        println!("{} {:?} w={} -> {:?} boxes={}", v.plate, v.body, v.plate_w, got, reading.boxes.len());
    }
    println!("{ok}/20");
    Ok(())
}
