//! `bench-store`: the trailer store's figures. Ends with one JSON line with `reads_per_s`
//! (encrypted at rest, as on a trailer), `reads_per_s_unencrypted` and their ratio
//! `encryption_cost_ratio`, `reads_per_s_with_acp` (each read checked against an ACP list) and
//! `acp_digest_ms` (the slow digest of one plate), `disk_ratio`, `purge_s`, `open_s` (after a clean stop), `check_s` (the full check after a power
//! cut), `hotlist_match_us`, `hotlist_import_s`, and the same
//! write figures for the alternative of keeping pictures inside sled (`sled_inline_*`), which is
//! how the store's picture layout was chosen.
//!
//! Sizes (environment): BENCH_READS (default 10000 reads of 4 KB + 50 KB, batches of 100),
//! BENCH_PURGE_READS (default 1500000 small reads over 60 days), BENCH_HOTLIST (default 1000000).
use appliance::clock::{DAY_MS, ManualClock};
use appliance::store::hotlist::HotEntry;
use appliance::store::seal::Seal;
use appliance::store::{NewPictures, Quota, Store, sample_read};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::sync::Arc;
use std::time::Instant;
use trailer_wire::HitCategory;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn plate(rng: &mut StdRng) -> String {
    const C: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
    (0..7).map(|_| C[rng.random_range(0..C.len())] as char).collect()
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if let Ok(m) = e.metadata() {
                total += if m.is_dir() { dir_bytes(&e.path()) } else { m.blocks() * 512 };
            }
        }
    }
    total
}

fn main() -> anyhow::Result<()> {
    let n = env("BENCH_READS", 10_000);
    let purge_n = env("BENCH_PURGE_READS", 1_500_000);
    let hot_n = env("BENCH_HOTLIST", 1_000_000);
    let mut rng = StdRng::seed_from_u64(1);
    let crop = vec![0x11u8; 4096];
    let context: Vec<u8> = (0..50_000).map(|i| (i * 7 % 251) as u8).collect();
    let unlimited = Quota { max_bytes: 0, max_fraction: 0.99, min_free_bytes: 0 };

    // 1. Write throughput and space, the store as built (pictures in day segments): encrypted
    // at rest (as on a trailer), unencrypted, and encrypted with an ACP list to check each read
    // against (its slow digest per read), in that order, in one run.
    let key = Seal::with_key(&[9u8; 32]);
    let mut write = |seal: Seal, acp: bool| -> anyhow::Result<(f64, f64, u64)> {
        let dir = tempfile::tempdir()?;
        let clock = ManualClock::new(20_000 * DAY_MS);
        let mut store = Store::open_sealed(dir.path(), 60, Arc::new(clock.clone()), seal)?
            .with_quota(unlimited);
        if acp {
            let acp_key = b"bench agency ACP key".to_vec();
            store = store.with_acp_key(acp_key.clone());
            let fp = appliance::store::acp::key_fingerprint(&acp_key);
            let digests: Vec<[u8; 32]> = (0..20)
                .map(|i| appliance::store::acp::acp_digest(&acp_key, &format!("ACP{i:03}")))
                .collect();
            let _ = store.acp_add(fp, &digests, &[])?;
        }
        let t = Instant::now();
        let mut payload = 0u64;
        for _ in 0..n.div_ceil(100) {
            let batch: Vec<_> = (0..100)
                .map(|_| {
                    let m = sample_read(&plate(&mut rng));
                    payload += (crop.len() + context.len()) as u64
                        + postcard::to_allocvec(&m).map(|v| v.len() as u64).unwrap_or(0);
                    let pics = NewPictures {
                        plate_crop: Some(crop.clone()),
                        context: Some(context.clone()),
                    };
                    (m, pics)
                })
                .collect();
            store.insert_reads(batch)?;
        }
        let per_s = n as f64 / t.elapsed().as_secs_f64();
        store.flush()?;
        let ratio = dir_bytes(dir.path()) as f64 / payload as f64;
        eprintln!(
            "store ({}{}): {n} reads at {per_s:.0}/s, {:.1} MB on disk for {:.1} MB payload",
            if store.encrypted() { "encrypted" } else { "unencrypted" },
            if acp { ", ACP list of 20" } else { "" },
            dir_bytes(dir.path()) as f64 / 1e6,
            payload as f64 / 1e6
        );
        Ok((per_s, ratio, payload))
    };
    let (reads_per_s, disk_ratio, payload) = write(key, false)?;
    let (plain_per_s, _, _) = write(Seal::none(), false)?;
    let (acp_per_s, _, _) = write(Seal::with_key(&[9u8; 32]), true)?;
    // The slow digest alone, median of 50.
    let mut times: Vec<f64> = (0..50)
        .map(|i| {
            let t = Instant::now();
            appliance::store::acp::acp_digest(b"bench agency ACP key", &format!("ABC{i:03}"));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let acp_digest_ms = times[times.len() / 2];
    eprintln!("ACP slow digest: {acp_digest_ms:.2} ms per read checked");

    // 1b. The alternative: pictures as sled values, same batches, one flush per batch.
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let t = Instant::now();
    for b in 0..n.div_ceil(100) {
        let mut batch = sled::Batch::default();
        for i in 0..100u64 {
            let id = (b as u64) * 100 + i;
            batch.insert([&id.to_be_bytes()[..], b"c"].concat(), crop.as_slice());
            batch.insert([&id.to_be_bytes()[..], b"x"].concat(), context.as_slice());
        }
        db.apply_batch(batch)?;
        db.flush()?;
    }
    let inline_per_s = n as f64 / t.elapsed().as_secs_f64();
    drop(db);
    let inline_ratio = dir_bytes(dir.path()) as f64 / payload as f64;
    eprintln!("sled inline: {inline_per_s:.0}/s, disk ratio {inline_ratio:.2}");
    drop(dir);

    // 2. Retention: a busy trailer's 60 days of small reads, purged at once.
    let dir = tempfile::tempdir()?;
    let clock = ManualClock::new(20_000 * DAY_MS);
    let store = Store::open(dir.path(), 60, Arc::new(clock.clone()))?.with_quota(unlimited);
    let per_day = purge_n.div_ceil(60);
    let small = vec![0x22u8; 64];
    let mut written = 0;
    for _day in 0..60 {
        let mut left = per_day.min(purge_n - written);
        while left > 0 {
            let k = left.min(1000);
            let batch: Vec<_> = (0..k)
                .map(|_| {
                    (
                        sample_read(&plate(&mut rng)),
                        NewPictures { plate_crop: Some(small.clone()), context: None },
                    )
                })
                .collect();
            store.insert_reads(batch)?;
            left -= k;
            written += k;
        }
        clock.advance(DAY_MS);
    }
    store.mark_clean()?;
    drop(store);
    let t = Instant::now();
    let store = Store::open(dir.path(), 60, Arc::new(clock.clone()))?.with_quota(unlimited);
    let sled_open_s = t.elapsed().as_secs_f64();
    let report = store.check()?;
    eprintln!("sled open {sled_open_s:.2} s, then the clean check");
    let open_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    store.full_check()?;
    let check_s = t.elapsed().as_secs_f64();
    eprintln!(
        "open of {} reads after a clean stop: {open_s:.2} s; full check (after a power cut): {check_s:.2} s",
        report.reads
    );
    clock.advance(61 * DAY_MS);
    let t = Instant::now();
    let purged = store.purge()?;
    let purge_s = t.elapsed().as_secs_f64();
    eprintln!("purge of {purged} reads: {purge_s:.2} s");
    drop(store);
    drop(dir);

    // 3. Hotlists: import a million entries, match reads against them.
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), 60, Arc::new(ManualClock::new(20_000 * DAY_MS)))?;
    let entries: Vec<HotEntry> = (0..hot_n)
        .map(|_| HotEntry {
            plate: plate(&mut rng),
            state: "MN".into(),
            category: HitCategory::StolenVehicle,
            source: "MN BCA".into(),
            case_number: None,
        })
        .collect();
    let t = Instant::now();
    store.import_hotlist("mn-state", 1, "MN BCA plate data file", &entries)?;
    let hotlist_import_s = t.elapsed().as_secs_f64();
    let probes: Vec<String> =
        (0..20_000)
            .map(|i| {
                if i % 10 == 0 { entries[i % entries.len()].plate.clone() } else { plate(&mut rng) }
            })
            .collect();
    let t = Instant::now();
    let mut hits = 0;
    for p in &probes {
        hits += store.match_plate(p, false)?.len();
    }
    let hotlist_match_us = t.elapsed().as_secs_f64() * 1e6 / probes.len() as f64;
    eprintln!(
        "hotlist: {hot_n} imported in {hotlist_import_s:.2} s; {hits} hits in {} probes",
        probes.len()
    );

    let r = |x: f64, d: f64| (x * d).round() / d;
    println!(
        "{}",
        serde_json::json!({
            "reads_per_s": r(reads_per_s, 1.0),
            "reads_per_s_unencrypted": r(plain_per_s, 1.0),
            "encryption_cost_ratio": r(plain_per_s / reads_per_s, 1000.0),
            "reads_per_s_with_acp": r(acp_per_s, 1.0),
            "acp_digest_ms": r(acp_digest_ms, 100.0),
            "disk_ratio": r(disk_ratio, 1000.0),
            "purge_s": r(purge_s, 100.0),
            "purge_reads": purged,
            "open_s": r(open_s, 100.0),
            "check_s": r(check_s, 100.0),
            "hotlist_match_us": r(hotlist_match_us, 100.0),
            "hotlist_import_s": r(hotlist_import_s, 100.0),
            "sled_inline_reads_per_s": r(inline_per_s, 1.0),
            "sled_inline_disk_ratio": r(inline_ratio, 1000.0),
        })
    );
    Ok(())
}
