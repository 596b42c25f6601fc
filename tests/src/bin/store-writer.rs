//! Test helper for the power-cut test: writes reads into a store as fast as it can and prints
//! `ACK <read id> <plate>` after each one the store acknowledged as durable. The test kills it
//! with SIGKILL at random moments and checks every acknowledged read survived.
use appliance::clock::SystemClock;
use appliance::store::{Inserted, NewPictures, Store, sample_read};
use std::io::Write;
use std::sync::Arc;

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
        let meta = sample_read(&plate);
        let pics =
            NewPictures { plate_crop: Some(vec![n as u8; 4096]), context: Some(vec![7; 50_000]) };
        if let Inserted::Stored(id) = store.insert_read(meta, pics)? {
            writeln!(out, "ACK {id} {plate}")?;
            out.flush()?;
        }
    }
    Ok(())
}
