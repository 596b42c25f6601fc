//! `bench-sync`: the sync link's figures through the real parts (a private Mosquitto with mutual
//! TLS, the sync server binary, the appliance's own sync code). Ends with one JSON line:
//!
//! - `ingest_reads_per_s`: reads (metadata and a 3 KB plate crop each) committed and acknowledged
//!   end to end per second, four trailers draining at once into the embedded store;
//! - `ingest_reads_per_s_postgres`: the same into PostgreSQL (a scratch database on the server
//!   at `TRAILER_PG_ADMIN_URL`, default `postgres://trailer_test:trailer_test@127.0.0.1:5432/postgres`);
//! - `drain_100k_s`: one trailer's backlog of 100,000 reads with crops, over loopback;
//! - `alert_during_drain_ms`: an alert raised in the middle of that drain, until its ack is back
//!   at the trailer (so at most this long until the server had it);
//! - `wire_bytes_per_read`: every byte both ways through a counting proxy (TLS, MQTT, acks,
//!   health and status included) while a trailer syncs metadata-only reads, per read.
//!
//! Sizes (environment): BENCH_DRAIN (default 100000), BENCH_INGEST (default 20000 per trailer),
//! BENCH_WIRE (default 20000).
use e2e_tests::backlog::{Trailer, fill, sync_config};
use e2e_tests::proxy::Proxy;
use e2e_tests::stack::Stack;
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let drain_n = env("BENCH_DRAIN", 100_000);
    let ingest_n = env("BENCH_INGEST", 20_000);
    let wire_n = env("BENCH_WIRE", 20_000);
    let stack = Stack::start()?;
    let ca = stack.pki().join("ca.pem");
    let limit = Duration::from_secs(600);

    // 1. Wire cost: metadata only, through a counting proxy.
    let (cert, key) = stack.enroll("wire-1")?;
    let dir = stack.path("wire-1-store");
    fill(&dir, wire_n, 1, 0)?;
    let proxy = Proxy::start(stack.broker_port)?;
    let trailer = Trailer::start("wire-1", &dir, sync_config(proxy.port, &ca, &cert, &key))?;
    let took = trailer.wait_drained(limit).ok_or_else(|| anyhow::anyhow!("wire run stalled"))?;
    drop(trailer.stop());
    let (up, down) = proxy.bytes();
    let wire_bytes_per_read = (up + down) as f64 / wire_n as f64;
    eprintln!(
        "wire: {wire_n} reads (metadata only) in {:.1} s; {up} bytes up, {down} down: {wire_bytes_per_read:.1} bytes per read",
        took.as_secs_f64()
    );

    // 2. Server ingest: four trailers at once, reads with plate crops; SQLite, then PostgreSQL.
    let ingest_reads_per_s = ingest(&stack, ingest_n, limit)?;
    eprintln!("ingest (SQLite): {ingest_reads_per_s:.0} reads/s");
    let ingest_reads_per_s_postgres = {
        let pg = Stack::start_postgres()?;
        ingest(&pg, ingest_n, limit)?
    };
    eprintln!("ingest (PostgreSQL): {ingest_reads_per_s_postgres:.0} reads/s");

    // 3. One trailer's backlog, and an alert raised in the middle of its drain.
    let (cert, key) = stack.enroll("drain-1")?;
    let dir = stack.path("drain-1-store");
    let t = Instant::now();
    fill(&dir, drain_n, 7, 1)?;
    eprintln!(
        "drain: {drain_n} reads with crops over 7 days written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let trailer =
        Trailer::start("drain-1", &dir, sync_config(stack.broker_port, &ca, &cert, &key))?;
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let before = trailer.store.backlog_len();
    let raised = Instant::now();
    let alert = trailer.raise_alert("ALERT01")?;
    while trailer.alert_pending(alert) {
        anyhow::ensure!(raised.elapsed() < limit, "the alert never arrived");
        std::thread::sleep(Duration::from_millis(2));
    }
    let alert_during_drain_ms = raised.elapsed().as_secs_f64() * 1000.0;
    eprintln!(
        "drain: alert acknowledged {alert_during_drain_ms:.0} ms after it was raised, with {before} items still waiting"
    );
    trailer.wait_drained(limit).ok_or_else(|| anyhow::anyhow!("drain stalled"))?;
    let drain_100k_s = t.elapsed().as_secs_f64();
    drop(trailer.stop());
    eprintln!("drain: {drain_n} reads in {drain_100k_s:.1} s");

    // The server holds each read exactly once (reads = distinct plates = what was sent).
    let expect = vec![("wire-1".to_string(), wire_n), ("drain-1".to_string(), drain_n + 1)];
    for (trailer, n) in expect {
        let c = stack.counts(&trailer)?;
        let (reads, distinct) = (c.reads, c.plates);
        anyhow::ensure!(
            (reads, distinct) == (n as i64, n as i64),
            "{trailer}: the server holds {reads} reads ({distinct} distinct), expected {n}"
        );
    }
    let r = |v: f64, scale: f64| (v * scale).round() / scale;
    println!(
        "{}",
        serde_json::json!({
            "ingest_reads_per_s": r(ingest_reads_per_s, 1.0),
            "ingest_reads_per_s_postgres": r(ingest_reads_per_s_postgres, 1.0),
            "drain_100k_s": r(drain_100k_s, 10.0),
            "alert_during_drain_ms": r(alert_during_drain_ms, 1.0),
            "wire_bytes_per_read": r(wire_bytes_per_read, 10.0),
        })
    );
    Ok(())
}

/// Four trailers drain `n` reads each (with plate crops) into `stack` at once; reads per second,
/// after checking the server holds each read once.
fn ingest(stack: &Stack, n: u64, limit: Duration) -> anyhow::Result<f64> {
    let ca = stack.pki().join("ca.pem");
    let mut trailers = Vec::new();
    for i in 1..=4 {
        let id = format!("ingest-{i}");
        let (cert, key) = stack.enroll(&id)?;
        let dir = stack.path(&format!("{id}-store"));
        fill(&dir, n, 1, 1)?;
        trailers.push((id, dir, cert, key));
    }
    let t = Instant::now();
    let running: Vec<Trailer> = trailers
        .iter()
        .map(|(id, dir, cert, key)| {
            Trailer::start(id, dir, sync_config(stack.broker_port, &ca, cert, key))
        })
        .collect::<anyhow::Result<_>>()?;
    for tr in &running {
        tr.wait_drained(limit).ok_or_else(|| anyhow::anyhow!("ingest run stalled"))?;
    }
    let secs = t.elapsed().as_secs_f64();
    drop(running);
    for (id, ..) in &trailers {
        let c = stack.counts(id)?;
        anyhow::ensure!(
            (c.reads, c.plates, c.pictures) == (n as i64, n as i64, n as i64),
            "{id}: the server holds {c:?}, expected {n} reads and crops, each once"
        );
    }
    Ok((4 * n) as f64 / secs)
}
