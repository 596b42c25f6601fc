//! Power cuts: a child process writes reads into a store while this test kills it with SIGKILL
//! at random moments, 50 times over the same store. Every read the store acknowledged as durable
//! must be there afterwards, whole (metadata, both pictures, its outbox entries), and the store's
//! own check must find nothing to repair.
use appliance::clock::SystemClock;
use appliance::store::Store;
use e2e_tests::stack::bin;
use rand::Rng;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trailer_wire::{AckRef, PictureKind};

#[test]
fn kill_dash_nine_loses_no_acknowledged_read() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut acked: Vec<(u64, String)> = Vec::new();
    let mut rng = rand::rng();
    for round in 0..50 {
        let mut child =
            Command::new(bin("store-writer")).arg(dir.path()).stdout(Stdio::piped()).spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the child's own start-up check, then let it write for a random while.
        let first = rx.recv_timeout(Duration::from_secs(30))?;
        let check: Vec<u64> =
            first.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        anyhow::ensure!(first.starts_with("CHECK"), "unexpected first line {first:?}");
        anyhow::ensure!(check[1..] == [0, 0, 0], "round {round}: the store needed repair: {first}");
        let until = Instant::now() + Duration::from_millis(rng.random_range(5..150));
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill()?; // SIGKILL
        child.wait()?;
        reader.join().map_err(|_| anyhow::anyhow!("reader panicked"))?;
        for line in rx.try_iter() {
            let mut parts = line.split_whitespace();
            if let (Some("ACK"), Some(id), Some(plate)) = (parts.next(), parts.next(), parts.next())
            {
                acked.push((id.parse()?, plate.to_string()));
            }
        }
    }
    assert!(
        acked.len() > 50,
        "the writer acknowledged too few reads ({}) to prove anything",
        acked.len()
    );
    let store = Store::open(dir.path(), 60, Arc::new(SystemClock))?;
    let report = store.check()?;
    assert!(report.clean(), "{report:?}");
    let pending = store.pending(usize::MAX, &|_| false)?;
    for (id, plate) in &acked {
        let read =
            store.read(*id)?.ok_or_else(|| anyhow::anyhow!("acknowledged read {id} lost"))?;
        assert_eq!(&read.meta.plate, plate);
        assert_eq!(store.picture(*id, PictureKind::PlateCrop)?.map(|p| p.len()), Some(4096));
        assert_eq!(store.picture(*id, PictureKind::Context)?.map(|p| p.len()), Some(50_000));
        assert!(pending.contains(&AckRef::Read(*id)), "read {id} is still queued for sync");
    }
    Ok(())
}
