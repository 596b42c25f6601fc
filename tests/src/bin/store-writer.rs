//! Test helper for the power-cut test: writes reads into a store as fast as it can and prints
//! `ACK <read id> <plate>` after each one the store acknowledged as durable. The test kills it
//! with SIGKILL at random moments and checks every acknowledged read survived.
use appliance::clock::SystemClock;
use appliance::store::{Inserted, NewPictures, Store};
use std::io::Write;
use std::sync::Arc;
use trailer_wire::{FixQuality, PictureSet, Position, ReadMeta};

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: store-writer DIR"))?;
    let store = Store::open(std::path::Path::new(&dir), 60, Arc::new(SystemClock))?;
    let report = store.check()?;
    println!(
        "CHECK {} {} {} {}",
        report.reads, report.quarantined, report.dangling_outbox, report.orphan_pictures
    );
    let mut out = std::io::stdout().lock();
    for n in 0u64.. {
        let plate = format!("W{:06}", n % 1_000_000);
        let meta = ReadMeta {
            read_id: 0,
            camera_id: "cam0".into(),
            plate: plate.clone(),
            confidence_pm: 900,
            first_seen: 0,
            best_seen: 0,
            position: Position::from_degrees(44.0, -93.0, FixQuality::Configured),
            plate_box: [1, 2, 3, 4],
            pictures: PictureSet::default(),
        };
        let pics =
            NewPictures { plate_crop: Some(vec![n as u8; 4096]), context: Some(vec![7; 50_000]) };
        if let Inserted::Stored(id) = store.insert_read(meta, pics)? {
            writeln!(out, "ACK {id} {plate}")?;
            out.flush()?;
        }
    }
    Ok(())
}
