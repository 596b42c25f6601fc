//! `bench-server`: the agency server's compliance figures on this machine. Ends with one JSON
//! line:
//!
//! - `destroy_1m_s_sqlite`: retention destroying one day of a 50-trailer agency (1,000,000
//!   reads) from the embedded SQLite store, beside 200,000 younger reads, while a writer keeps
//!   ingesting batches of 100 reads; `ingest_max_ms_during_destroy_sqlite` is that writer's
//!   longest batch meanwhile (the destruction must not block ingestion);
//! - `destroy_1m_s_postgres` and `ingest_max_ms_during_destroy_postgres`: the same on
//!   PostgreSQL (a scratch database at `TRAILER_PG_ADMIN_URL`), where the day is a partition;
//! - `public_log_year_ms`: the public log of use for a year of 50 trailers (one period of use
//!   per trailer and day), queried and rendered as its HTML page, on SQLite;
//! - `audit_verify_1m_s`: `audit verify` over 1,000,000 chained entries, on SQLite.
//!
//! Sizes (environment): BENCH_DESTROY (default 1000000), BENCH_AUDIT (default 1000000).
use std::time::{Duration, Instant};
use sync_server::audit::{Entry, GENESIS, chain_hash};
use sync_server::records::{self, Records, Rules, write};
use trailer_wire::{FixQuality, PictureSet, Position, ReadMeta};

const DAY: i64 = 86_400_000;

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Loads `n` reads collected on the day starting at `day_ms`, spread over 50 trailers, with ids
/// from `first_id`, in SQL (the fastest way in: one statement per backend).
async fn load_reads(db: &Records, n: i64, first_id: i64, day_ms: i64) -> anyhow::Result<()> {
    let text = if db.is_postgres() {
        "INSERT INTO reads (trailer_id, read_id, camera_id, plate, confidence, first_seen, \
         best_seen, lat, lon, fix, plate_box, has_crop, has_context, received_at) \
         SELECT 'bench-' || (x % 50), x, 'cam0', 'P' || x, 0.9, $1 + (x * 86) % 86400000, \
         $1 + (x * 86) % 86400000 + 400, 44.16, -93.99, '3d', '[0, 0, 10, 5]', 0, 0, $1 \
         FROM generate_series($2::bigint, $3::bigint) AS x"
    } else {
        "WITH RECURSIVE c(x) AS (SELECT ?2 UNION ALL SELECT x + 1 FROM c WHERE x < ?3) \
         INSERT INTO reads (trailer_id, read_id, camera_id, plate, confidence, first_seen, \
         best_seen, lat, lon, fix, plate_box, has_crop, has_context, received_at) \
         SELECT 'bench-' || (x % 50), x, 'cam0', 'P' || x, 0.9, ?1 + (x * 86) % 86400000, \
         ?1 + (x * 86) % 86400000 + 400, 44.16, -93.99, '3d', '[0, 0, 10, 5]', 0, 0, ?1 FROM c"
    };
    sqlx::query(sqlx::AssertSqlSafe(text))
        .bind(day_ms)
        .bind(first_id)
        .bind(first_id + n - 1)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Destroys one day of `n` reads while a writer ingests; returns (seconds, the writer's
/// longest batch in ms).
async fn destroy(db: &Records, n: i64) -> anyhow::Result<(f64, f64)> {
    let now = 20_400 * DAY + 12 * 3_600_000;
    let old_day = now - 61 * DAY - 12 * 3_600_000;
    db.prepare_partitions(old_day, 60).await;
    db.prepare_partitions(now, 60).await;
    load_reads(db, n, 1, old_day).await?;
    load_reads(db, n / 5, n + 1, now - 10 * DAY).await?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        tokio::spawn(async move {
            let rules = Rules::default();
            let mut longest = Duration::ZERO;
            let mut id = 10_000_000u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let batch: Vec<ReadMeta> = (0..100)
                    .map(|i| ReadMeta {
                        read_id: id + i,
                        camera_id: "cam0".into(),
                        plate: format!("N{}", id + i),
                        confidence_pm: 900,
                        first_seen: now,
                        best_seen: now,
                        position: Position::from_degrees(44.16, -93.99, FixQuality::Fix3d),
                        plate_box: [0, 0, 10, 5],
                        pictures: PictureSet::default(),
                    })
                    .collect();
                id += 100;
                let t = Instant::now();
                let mut tx = db.begin().await?;
                write::reads(&mut tx, &rules, "live-1", &batch, now).await?;
                tx.commit().await?;
                longest = longest.max(t.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::Ok(longest)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    let purged = db.purge(now, 60).await?;
    let took = t.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let longest = writer.await??;
    anyhow::ensure!(purged.reads == n as u64, "destroyed {} of {n} reads", purged.reads);
    eprintln!(
        "bench-server: destroyed {n} reads in {took:.1} s on {}; longest ingest batch meanwhile {:.0} ms",
        if db.is_postgres() { "PostgreSQL" } else { "SQLite" },
        longest.as_secs_f64() * 1000.0
    );
    Ok((took, longest.as_secs_f64() * 1000.0))
}

/// A year of the log of use for 50 trailers: one period per trailer and day, its tallies and
/// a location per trailer per month.
async fn public_log_year(db: &Records) -> anyhow::Result<f64> {
    let start = 20_000 * DAY;
    let statements = [
        "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 18249) \
         INSERT INTO usage_periods (trailer_id, period_id, start_ms, end_ms, start_reason, \
         end_reason, lat, lon, lists) SELECT 'bench-' || (x % 50), x / 50 + 1, \
         ?1 + (x / 50) * 86400000 + 6 * 3600000, ?1 + (x / 50) * 86400000 + 22 * 3600000, \
         'DaemonStart', 'DaemonStop', 44.1 + (x % 50) * 0.01 + ((x / 50) / 30) * 0.002, -93.99, \
         'MN BCA hotlist,agency list' FROM c",
        "INSERT INTO use_log (trailer_id, period_id, day, hours, reads, stolen_vehicle, \
         stolen_plate, warrant, suspended_revoked, missing_person, investigative) \
         SELECT trailer_id, period_id, date(start_ms / 1000, 'unixepoch'), 65535 * 64, \
         1500 + period_id % 700, period_id % 3, period_id % 2, period_id % 5, period_id % 4, 0, \
         period_id % 7 FROM usage_periods",
        "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 599) \
         INSERT INTO locations (trailer_id, lat, lon, place, first_ms, last_ms, current, security) \
         SELECT 'bench-' || (x % 50), 44.1 + (x % 50) * 0.01 + (x / 50) * 0.002, -93.99, \
         'Place ' || x, ?1 + (x / 50) * 30 * 86400000, ?1 + ((x / 50) * 30 + 29) * 86400000, \
         CASE WHEN x / 50 = 11 THEN 1 ELSE 0 END, CASE WHEN x % 17 = 0 THEN 1 ELSE 0 END FROM c",
    ];
    for s in statements {
        let q = sqlx::query(sqlx::AssertSqlSafe(s));
        let q = if s.contains("?1") { q.bind(start) } else { q };
        q.execute(db.pool()).await?;
    }
    let (from, to) = (records::iso_date(start), records::iso_date(start + 364 * DAY));
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let log = db.use_log(&from, &to, i64::MAX).await?;
        let html = sync_server::public::log::html(
            &log,
            &sync_server::public::Agency { name: "Bench PD".into(), ..Default::default() },
            sync_server::public::Links(""),
        );
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(log.periods.len() == 18_250, "{} periods", log.periods.len());
        anyhow::ensure!(html.len() > 1_000_000, "page of {} bytes", html.len());
        best = best.min(ms);
    }
    eprintln!("bench-server: public log of a year of 50 trailers (18,250 periods) in {best:.0} ms");
    Ok(best)
}

/// `n` chained audit entries, then one verification.
async fn audit_verify(db: &Records, n: i64) -> anyhow::Result<f64> {
    let mut prev = GENESIS.to_string();
    let mut seq = 0i64;
    while seq < n {
        let chunk = (n - seq).min(1_000);
        let mut text = String::from(
            "INSERT INTO audit (seq, at, actor, action, purpose, case_number, detail, \
             result_count, prev_hash, hash) VALUES ",
        );
        let mut rows = Vec::with_capacity(chunk as usize);
        for i in 0..chunk {
            seq += 1;
            let e = Entry {
                at: 1_790_000_000_000 + seq,
                actor: format!("console:user{}", seq % 40),
                action: ["reads.list", "plates.search", "destroy", "hotlist.upload"]
                    [seq as usize % 4]
                    .into(),
                purpose: "investigation".into(),
                case_number: format!("24-{:06}", seq % 9_000),
                detail: format!("limit={}", seq % 100),
                result_count: seq % 50,
            };
            let hash = chain_hash(&prev, seq, &e);
            text.push_str(if i == 0 { "(?,?,?,?,?,?,?,?,?,?)" } else { ",(?,?,?,?,?,?,?,?,?,?)" });
            rows.push((seq, e, prev.clone(), hash.clone()));
            prev = hash;
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(text));
        for (s, e, p, h) in rows {
            q = q
                .bind(s)
                .bind(e.at)
                .bind(e.actor)
                .bind(e.action)
                .bind(e.purpose)
                .bind(e.case_number)
                .bind(e.detail)
                .bind(e.result_count)
                .bind(p)
                .bind(h);
        }
        q.execute(db.pool()).await?;
    }
    let t = Instant::now();
    let verified = db.audit_verify().await?;
    let took = t.elapsed().as_secs_f64();
    anyhow::ensure!(verified == Ok(n), "verify: {verified:?}");
    eprintln!("bench-server: verified {n} audit entries in {took:.1} s");
    Ok(took)
}

async fn sqlite(dir: &std::path::Path, name: &str) -> anyhow::Result<Records> {
    Ok(Records::open(&format!("sqlite://{}?mode=rwc", dir.join(name).display())).await?)
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let destroy_n = env("BENCH_DESTROY", 1_000_000);
    let audit_n = env("BENCH_AUDIT", 1_000_000);
    let dir = tempfile::tempdir()?;

    let db = sqlite(dir.path(), "destroy.db").await?;
    let (destroy_sqlite, ingest_sqlite) = destroy(&db, destroy_n).await?;
    db.close().await;

    let url = records::scratch_postgres("bench").await?;
    let db = Records::open(&url).await?;
    let result = destroy(&db, destroy_n).await;
    db.close().await;
    records::drop_scratch_postgres(&url).await?;
    let (destroy_pg, ingest_pg) = result?;

    let db = sqlite(dir.path(), "log.db").await?;
    let log_ms = public_log_year(&db).await?;
    db.close().await;

    let db = sqlite(dir.path(), "audit.db").await?;
    let verify_s = audit_verify(&db, audit_n).await?;
    db.close().await;

    println!(
        "{}",
        serde_json::json!({
            "destroy_1m_s_postgres": round(destroy_pg, 2),
            "destroy_1m_s_sqlite": round(destroy_sqlite, 2),
            "public_log_year_ms": round(log_ms, 1),
            "audit_verify_1m_s": round(verify_s, 2),
            "ingest_max_ms_during_destroy_sqlite": round(ingest_sqlite, 1),
            "ingest_max_ms_during_destroy_postgres": round(ingest_pg, 1),
        })
    );
    Ok(())
}
