//! The agency's records, through sqlx. SQLite (embedded) by default.
//!
//! Every write that a trailer's ack depends on happens in one transaction per message, and the
//! ack is published only after it commits. Inserts are idempotent on `(trailer_id, id)`, so a
//! message sent twice (after a lost ack, a reconnect, a restart) is stored once.
use crate::audit::{self, Entry};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool};
use sqlx::{Executor, Row};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::Mutex;
use trailer_wire::console::{PublicLocation, ReadView};
use trailer_wire::{FixQuality, PictureKind};

mod downlinks;
pub mod write;

pub use downlinks::{DownlinkView, Due};

/// A transaction on the records; ingestion's writes ([`write`]) run inside one.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

#[derive(Debug, Error)]
pub enum RecordsError {
    #[error("database {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
}

/// An alert as an authorised operator sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertView {
    pub trailer_id: String,
    pub alert_id: u64,
    pub plate: String,
    pub list_name: String,
    pub category: String,
    pub case_number: Option<String>,
    pub seen_at: String,
}

/// What the server holds from one trailer ([`Records::counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub reads: i64,
    /// Distinct plates among the reads.
    pub plates: i64,
    pub alerts: i64,
    pub pictures: i64,
}

/// Distance beyond which a trailer is at a new location, metres.
pub const NEW_LOCATION_M: f64 = 150.0;

/// What one retention run destroyed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub reads: u64,
    pub pictures: u64,
    pub alerts: u64,
}

#[derive(Debug, Clone)]
pub struct Records {
    pool: AnyPool,
    /// PostgreSQL (else the embedded SQLite): the queries are written once, with `?`
    /// placeholders, and [`sql`] numbers them for PostgreSQL.
    pg: bool,
    /// Audit appends are serialised: each entry chains to the one before it.
    audit_lock: Arc<Mutex<()>>,
}

fn fix_name(f: FixQuality) -> &'static str {
    match f {
        FixQuality::None => "none",
        FixQuality::Configured => "configured",
        FixQuality::Fix2d => "2d",
        FixQuality::Fix3d => "3d",
    }
}

fn picture_kind(k: PictureKind) -> &'static str {
    match k {
        PictureKind::PlateCrop => "plate_crop",
        PictureKind::Context => "context",
    }
}

/// Great-circle distance in metres.
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * a.sqrt().asin()
}

fn iso_date(ms: i64) -> String {
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let days = ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// RFC 3339 UTC with seconds.
pub fn iso_time(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{}T{:02}:{:02}:{:02}Z", iso_date(ms), s / 3600, s / 60 % 60, s % 60)
}

impl Records {
    /// Opens the records at `url`: `sqlite://PATH?mode=rwc` (embedded; WAL, synchronous FULL)
    /// or `postgres://…`. Runs the migrations of that database.
    pub async fn open(url: &str) -> Result<Records, RecordsError> {
        let err = |e: sqlx::Error| RecordsError::Open { url: redact(url), reason: e.to_string() };
        sqlx::any::install_default_drivers();
        let pg = url.starts_with("postgres://") || url.starts_with("postgresql://");
        if let Some(path) = url.strip_prefix("sqlite://") {
            let file = path.split('?').next().unwrap_or(path);
            if let Some(dir) = std::path::Path::new(file).parent() {
                std::fs::create_dir_all(dir).map_err(|e| RecordsError::Open {
                    url: url.to_string(),
                    reason: e.to_string(),
                })?;
            }
        } else if !pg {
            return Err(RecordsError::Open {
                url: redact(url),
                reason: "use sqlite://PATH?mode=rwc or postgres://USER@HOST/DB".into(),
            });
        }
        let mut options = AnyPoolOptions::new().max_connections(if pg { 8 } else { 4 });
        if !pg {
            options = options.after_connect(|c: &mut AnyConnection, _| {
                Box::pin(async move {
                    c.execute("PRAGMA journal_mode = WAL").await?;
                    c.execute("PRAGMA synchronous = FULL").await?;
                    c.execute("PRAGMA busy_timeout = 10000").await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(url).await.map_err(err)?;
        // Another process (the server, a CLI) may hold the write lock for a moment.
        let mut attempt = 0;
        loop {
            let run = if pg {
                sqlx::migrate!("./migrations/postgres").run(&pool).await
            } else {
                sqlx::migrate!("./migrations/sqlite").run(&pool).await
            };
            match run {
                Ok(()) => break,
                Err(e) if attempt < 20 && e.to_string().contains("locked") => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Records { pool, pg, audit_lock: Arc::new(Mutex::new(())) })
    }

    /// Opens a transaction: a batch of ingested messages is written in one and committed once.
    pub async fn begin(&self) -> Result<Tx, RecordsError> {
        Ok(self.pool.begin().await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Latest health per trailer as JSON objects (status, not data: no plate or read).
    pub async fn health(&self) -> Result<Vec<serde_json::Value>, RecordsError> {
        let rows = sqlx::query(sql(self.pg, "SELECT trailer_id, reported_at, camera, fix, disk_used_pm, storage_full, backlog_items, last_read, \
             dropped_frames, software_version, store_repairs FROM trailer_health ORDER BY trailer_id"),
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "trailer": r.get::<String, _>(0),
                    "reported_at": iso_time(r.get(1)),
                    "camera": r.get::<String, _>(2),
                    "gps_fix": r.get::<String, _>(3),
                    "disk_used_pct": r.get::<i64, _>(4) as f64 / 10.0,
                    "storage_full": r.get::<i64, _>(5) != 0,
                    "backlog_items": r.get::<i64, _>(6),
                    "last_read": r.get::<Option<i64>, _>(7).map(iso_time),
                    "dropped_frames": r.get::<i64, _>(8),
                    "software_version": r.get::<String, _>(9),
                    "store_repairs": r.get::<i64, _>(10),
                })
            })
            .collect())
    }

    pub async fn dead_letter(
        &self,
        topic: &str,
        reason: &str,
        payload: &[u8],
        now: i64,
    ) -> Result<(), RecordsError> {
        sqlx::query(sql(
            self.pg,
            "INSERT INTO dead_letters (received_at, topic, reason, payload) VALUES (?, ?, ?, ?)",
        ))
        .bind(now)
        .bind(topic)
        .bind(reason)
        .bind(payload)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What the server holds from one trailer: reads, distinct plates among them, alerts,
    /// pictures. A count, not an access: no plate leaves the database.
    pub async fn counts(&self, trailer: &str) -> Result<Counts, RecordsError> {
        let r = sqlx::query(sql(
            self.pg,
            "SELECT (SELECT COUNT(*) FROM reads WHERE trailer_id = ?), \
             (SELECT COUNT(DISTINCT plate) FROM reads WHERE trailer_id = ?), \
             (SELECT COUNT(*) FROM alerts WHERE trailer_id = ?), \
             (SELECT COUNT(*) FROM pictures WHERE trailer_id = ?)",
        ))
        .bind(trailer)
        .bind(trailer)
        .bind(trailer)
        .bind(trailer)
        .fetch_one(&self.pool)
        .await?;
        Ok(Counts { reads: r.get(0), plates: r.get(1), alerts: r.get(2), pictures: r.get(3) })
    }

    /// `(topic, reason)` of the dead letters, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<(String, String)>, RecordsError> {
        let rows = sqlx::query(sql(self.pg, "SELECT topic, reason FROM dead_letters ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Reads, newest first, for an authorised and audited request.
    pub async fn list_reads(&self, limit: i64) -> Result<Vec<ReadView>, RecordsError> {
        let rows = sqlx::query(sql(self.pg, "SELECT trailer_id, read_id, plate, confidence, best_seen, lat, lon, has_crop, has_context \
             FROM reads ORDER BY best_seen DESC, read_id DESC LIMIT ?"),
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ReadView {
                trailer_id: r.get(0),
                read_id: r.get::<i64, _>(1) as u64,
                plate: r.get(2),
                confidence: r.get::<f64, _>(3) as f32,
                seen_at: iso_time(r.get(4)),
                lat: r.get(5),
                lon: r.get(6),
                has_plate_crop: r.get::<i64, _>(7) != 0,
                has_context: r.get::<i64, _>(8) != 0,
            })
            .collect())
    }

    /// Alerts, newest first: (trailer, plate, list, category, case number, seen at).
    pub async fn list_alerts(&self, limit: i64) -> Result<Vec<AlertView>, RecordsError> {
        let rows = sqlx::query(sql(self.pg, "SELECT trailer_id, alert_id, plate, list_name, category, case_number, seen_at FROM alerts \
             ORDER BY seen_at DESC LIMIT ?"),
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| AlertView {
                trailer_id: r.get(0),
                alert_id: r.get::<i64, _>(1) as u64,
                plate: r.get(2),
                list_name: r.get(3),
                category: r.get(4),
                case_number: r.get(5),
                seen_at: iso_time(r.get(6)),
            })
            .collect())
    }

    /// The public list of reader locations: current and previous, with dates, except those
    /// marked security information.
    pub async fn public_locations(&self) -> Result<Vec<PublicLocation>, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT trailer_id, place, lat, lon, first_ms, last_ms, current FROM locations \
             WHERE security = 0 ORDER BY trailer_id, first_ms",
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let (lat, lon): (f64, f64) = (r.get(2), r.get(3));
                let place: String = r.get(1);
                PublicLocation {
                    reader: r.get(0),
                    place: if place.is_empty() { format!("{lat:.5}, {lon:.5}") } else { place },
                    lat,
                    lon,
                    from: iso_date(r.get(4)),
                    until: if r.get::<i64, _>(6) == 1 { None } else { Some(iso_date(r.get(5))) },
                }
            })
            .collect())
    }

    /// Destroys what was collected more than `retention_days` before `now_ms`: reads, their
    /// pictures (and pictures whose read never arrived, by arrival time) and alerts, in batches
    /// so ingestion keeps its turn at the write lock. The location history, the periods of use
    /// and the audit trail stay. The counts go into the audit trail (one entry per run that
    /// destroyed anything). `now_ms` is the caller's clock: the duty passes the system time,
    /// tests any time they like.
    pub async fn purge(&self, now_ms: i64, retention_days: u32) -> Result<Purged, RecordsError> {
        let cutoff = now_ms - i64::from(retention_days) * 86_400_000;
        let mut done = Purged::default();
        loop {
            let mut tx = self.pool.begin().await?;
            let pictures = delete_batch(
                &mut tx,
                "DELETE FROM pictures WHERE (trailer_id, read_id, kind) IN \
                 (SELECT p.trailer_id, p.read_id, p.kind FROM pictures p \
                 JOIN reads r ON r.trailer_id = p.trailer_id AND r.read_id = p.read_id \
                 WHERE r.first_seen < ? LIMIT ?)",
                cutoff,
            )
            .await?;
            // A read goes only once its pictures have: none may outlive it as an orphan.
            let reads = if pictures < BATCH as u64 {
                delete_batch(
                    &mut tx,
                    "DELETE FROM reads WHERE (trailer_id, read_id) IN \
                     (SELECT trailer_id, read_id FROM reads WHERE first_seen < ? LIMIT ?)",
                    cutoff,
                )
                .await?
            } else {
                0
            };
            let orphans = delete_batch(
                &mut tx,
                "DELETE FROM pictures WHERE (trailer_id, read_id, kind) IN \
                 (SELECT p.trailer_id, p.read_id, p.kind FROM pictures p \
                 WHERE p.received_at < ? AND NOT EXISTS (SELECT 1 FROM reads r \
                 WHERE r.trailer_id = p.trailer_id AND r.read_id = p.read_id) LIMIT ?)",
                cutoff,
            )
            .await?;
            let alerts = delete_batch(
                &mut tx,
                "DELETE FROM alerts WHERE (trailer_id, alert_id) IN \
                 (SELECT trailer_id, alert_id FROM alerts WHERE seen_at < ? LIMIT ?)",
                cutoff,
            )
            .await?;
            tx.commit().await?;
            done.reads += reads;
            done.pictures += pictures + orphans;
            done.alerts += alerts;
            if reads + pictures + orphans + alerts == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        let total = done.reads + done.pictures + done.alerts;
        if total > 0 {
            self.audit(&Entry {
                at: now_ms,
                actor: "retention".into(),
                action: "destroy".into(),
                purpose: format!("retention: collected more than {retention_days} days ago"),
                case_number: String::new(),
                detail: format!(
                    "{} reads, {} pictures, {} alerts collected before {}",
                    done.reads,
                    done.pictures,
                    done.alerts,
                    iso_time(cutoff)
                ),
                result_count: total as i64,
            })
            .await?;
        }
        Ok(done)
    }

    /// Appends an audit entry, chained to the previous one. Returns its sequence number.
    pub async fn audit(&self, e: &Entry) -> Result<i64, RecordsError> {
        let _guard = self.audit_lock.lock().await;
        // IMMEDIATE: take the write lock before reading the chain's head. A deferred transaction
        // would read first and then fail at once (SQLITE_BUSY_SNAPSHOT) if another process (the
        // server, a CLI) appended meanwhile; with the lock taken first, SQLite's busy timeout
        // simply waits its turn, and no two entries can chain to the same head.
        let mut tx = if self.pg {
            let mut tx = self.pool.begin().await?;
            // Serialises appends across processes for the rest of the transaction.
            sqlx::query(sql(true, "SELECT pg_advisory_xact_lock(1324)")).execute(&mut *tx).await?;
            tx
        } else {
            self.pool.begin_with("BEGIN IMMEDIATE").await?
        };
        let last =
            sqlx::query(sql(self.pg, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"))
                .fetch_optional(&mut *tx)
                .await?;
        let (seq, prev) = match last {
            Some(r) => (r.get::<i64, _>(0) + 1, r.get::<String, _>(1)),
            None => (1, audit::GENESIS.to_string()),
        };
        let hash = audit::chain_hash(&prev, seq, e);
        sqlx::query(sql(self.pg, "INSERT INTO audit (seq, at, actor, action, purpose, case_number, detail, result_count, prev_hash, hash) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        )
        .bind(seq)
        .bind(e.at)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.purpose)
        .bind(&e.case_number)
        .bind(&e.detail)
        .bind(e.result_count)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Checks the whole chain. `Ok(n)` with the number of entries, or the first broken entry.
    pub async fn audit_verify(&self) -> Result<Result<i64, String>, RecordsError> {
        let rows = sqlx::query(sql(self.pg, "SELECT seq, at, actor, action, purpose, case_number, detail, result_count, prev_hash, hash \
             FROM audit ORDER BY seq"),
        )
        .fetch_all(&self.pool)
        .await?;
        let mut prev = audit::GENESIS.to_string();
        for (expected_seq, r) in (1i64..).zip(rows.iter()) {
            let seq: i64 = r.get(0);
            if seq != expected_seq {
                return Ok(Err(format!("entry {expected_seq} is missing (next is {seq})")));
            }
            let e = Entry {
                at: r.get(1),
                actor: r.get(2),
                action: r.get(3),
                purpose: r.get(4),
                case_number: r.get(5),
                detail: r.get(6),
                result_count: r.get(7),
            };
            let stored_prev: String = r.get(8);
            let stored: String = r.get(9);
            if stored_prev != prev || audit::chain_hash(&prev, seq, &e) != stored {
                return Ok(Err(format!("entry {seq} was altered or reordered")));
            }
            prev = stored;
        }
        Ok(Ok(rows.len() as i64))
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the records are on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.pg
    }
}

/// Scratch PostgreSQL databases for tests and benchmarks: made on the server at
/// `TRAILER_PG_ADMIN_URL` (default: the role `scripts/setup.sh` creates,
/// `postgres://trailer_test:trailer_test@127.0.0.1:5432/postgres`), dropped by
/// [`drop_scratch_postgres`].
pub async fn scratch_postgres(hint: &str) -> Result<String, RecordsError> {
    use sqlx::Connection;
    let admin = std::env::var("TRAILER_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://trailer_test:trailer_test@127.0.0.1:5432/postgres".into());
    let err = |e: sqlx::Error| RecordsError::Open { url: redact(&admin), reason: e.to_string() };
    let mut c = sqlx::PgConnection::connect(&admin).await.map_err(err)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name: String = format!("trailer_{hint}_{}_{stamp}", std::process::id())
        .chars()
        .map(|ch| if ch.is_ascii_alphanumeric() { ch.to_ascii_lowercase() } else { '_' })
        .collect();
    c.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.map_err(err)?;
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

/// Drops a database made by [`scratch_postgres`].
pub async fn drop_scratch_postgres(url: &str) -> Result<(), RecordsError> {
    use sqlx::Connection;
    let Some((base, name)) = url.rsplit_once('/') else { return Ok(()) };
    if !name.starts_with("trailer_") {
        return Ok(());
    }
    let admin = format!("{base}/postgres");
    let err = |e: sqlx::Error| RecordsError::Open { url: redact(&admin), reason: e.to_string() };
    let mut c = sqlx::PgConnection::connect(&admin).await.map_err(err)?;
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    c.execute(sqlx::AssertSqlSafe(drop)).await.map_err(err)?;
    Ok(())
}

/// A query written with `?` placeholders, numbered `$1, $2, …` for PostgreSQL.
pub fn sql(pg: bool, text: &'static str) -> sqlx::AssertSqlSafe<String> {
    if !pg {
        return sqlx::AssertSqlSafe(text.to_string());
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut n = 0;
    for ch in text.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    sqlx::AssertSqlSafe(out)
}

/// Whether a connection is to PostgreSQL.
pub fn is_pg(c: &AnyConnection) -> bool {
    c.backend_name() == "PostgreSQL"
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let cred = &url[s + 3..at];
            match cred.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &cred[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Rows one retention statement deletes at most, so ingestion keeps its turn at the write lock.
const BATCH: i64 = 5_000;

/// Runs one of retention's batch deletes (`?` the cutoff, then the batch size); rows deleted.
async fn delete_batch(tx: &mut Tx, text: &'static str, cutoff: i64) -> Result<u64, RecordsError> {
    let pg = is_pg(tx);
    let done = sqlx::query(sql(pg, text)).bind(cutoff).bind(BATCH).execute(&mut **tx).await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailer_wire::{ActiveUse, ReadMeta};

    /// Two processes (here: two pools) appending to one audit trail at once: every entry lands,
    /// chained, none fails with "database is locked".
    /// The test runs on the embedded SQLite and on a scratch PostgreSQL database.
    async fn on_both<F: std::future::Future<Output = ()>>(name: &str, test: impl Fn(String) -> F) {
        let dir = tempfile::tempdir().expect("tempdir");
        test(format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display())).await;
        let pg = scratch_postgres(name).await.expect("PostgreSQL for tests (TRAILER_PG_ADMIN_URL)");
        test(pg.clone()).await;
        drop_scratch_postgres(&pg).await.expect("drop the scratch database");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_audit_appends_from_two_processes_chain_cleanly() {
        on_both("audit", concurrent_audit).await;
    }

    async fn concurrent_audit(url: String) {
        let a = Records::open(&url).await.expect("open a");
        let b = Records::open(&url).await.expect("open b");
        let entry = |actor: &str| Entry {
            at: 1,
            actor: actor.into(),
            action: "reads.list".into(),
            purpose: "test".into(),
            case_number: "C".into(),
            detail: String::new(),
            result_count: 0,
        };
        let (ea, eb) = (entry("a"), entry("b"));
        let ta = tokio::spawn(async move {
            for _ in 0..40 {
                a.audit(&ea).await.expect("append a");
            }
        });
        let tb = tokio::spawn(async move {
            for _ in 0..40 {
                b.audit(&eb).await.expect("append b");
            }
        });
        ta.await.expect("a");
        tb.await.expect("b");
        let c = Records::open(&url).await.expect("open c");
        assert_eq!(c.audit_verify().await.expect("verify"), Ok(80));
    }

    fn read_at(read_id: u64, plate: &str, seen: i64) -> ReadMeta {
        ReadMeta {
            read_id,
            camera_id: "cam0".into(),
            plate: plate.into(),
            confidence_pm: 950,
            first_seen: seen,
            best_seen: seen + 500,
            position: trailer_wire::Position::from_degrees(44.16, -93.99, FixQuality::Fix3d),
            plate_box: [1, 2, 3, 4],
            pictures: trailer_wire::PictureSet { plate_crop: true, context: true },
        }
    }

    async fn count(db: &Records, table: &str) -> i64 {
        let sql = match table {
            "pictures" => "SELECT COUNT(*) FROM pictures",
            "alerts" => "SELECT COUNT(*) FROM alerts",
            "usage_periods" => "SELECT COUNT(*) FROM usage_periods",
            "locations" => "SELECT COUNT(*) FROM locations",
            "audit" => "SELECT COUNT(*) FROM audit",
            "deployment_events" => "SELECT COUNT(*) FROM deployment_events",
            other => panic!("no count for {other}"),
        };
        sqlx::query(sql).fetch_one(db.pool()).await.expect("count").get(0)
    }

    /// Reads, their pictures and alerts collected more than the retention period ago are
    /// destroyed by the clock the caller passes; younger ones, the periods of use and the
    /// location history stay; the destruction is counted in the audit trail, which verifies.
    /// Deployment events make the location history: an end closes the current place, a start
    /// opens a new one; a repeated event changes nothing; the public list shows both places.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deployment_events_make_the_location_history() {
        on_both("deploy", deployments).await;
    }

    async fn deployments(url: String) {
        use trailer_wire::{DeploymentEvent, DeploymentEventKind, Position};
        const DAY: i64 = 86_400_000;
        let db = Records::open(&url).await.expect("open");
        let event = |event_id, kind, time, lat: f64| DeploymentEvent {
            trailer_id: "t1".into(),
            event_id,
            kind,
            time,
            position: Position::from_degrees(lat, -93.99, FixQuality::Fix3d),
            note: String::new(),
        };
        let t0 = 20_000 * DAY;
        let mut tx = db.begin().await.expect("begin");
        write::deployment(&mut tx, "t1", &event(1, DeploymentEventKind::Start, t0, 44.16), t0)
            .await
            .expect("start");
        write::reads(&mut tx, "t1", &[read_at(1, "AAA111", t0 + DAY)], t0 + DAY)
            .await
            .expect("read");
        let end = event(2, DeploymentEventKind::End, t0 + 3 * DAY, 44.17);
        write::deployment(&mut tx, "t1", &end, t0).await.expect("end");
        tx.commit().await.expect("commit");
        let locs = db.public_locations().await.expect("locations");
        assert_eq!(locs.len(), 1);
        assert!(locs[0].until.is_some(), "the end closed the place: {locs:?}");
        let mut tx = db.begin().await.expect("begin");
        // The same end again (a resend) and a start 11 km north.
        write::deployment(&mut tx, "t1", &end, t0).await.expect("end again");
        let start = event(3, DeploymentEventKind::Start, t0 + 4 * DAY, 44.26);
        write::deployment(&mut tx, "t1", &start, t0).await.expect("start");
        tx.commit().await.expect("commit");
        let locs = db.public_locations().await.expect("locations");
        assert_eq!(locs.len(), 2, "{locs:?}");
        assert_eq!((locs[0].until.is_some(), locs[1].until.is_none()), (true, true), "{locs:?}");
        assert!((locs[1].lat - 44.26).abs() < 1e-6, "{locs:?}");
        assert_eq!(count(&db, "deployment_events").await, 3);
        db.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retention_destroys_what_is_past_its_days_and_audits_the_counts() {
        on_both("retention", retention).await;
    }

    async fn retention(url: String) {
        const DAY: i64 = 86_400_000;
        let db = Records::open(&url).await.expect("open");
        let now = 20_000 * DAY;
        let (old, young) = (now - 61 * DAY, now - 59 * DAY);
        let mut tx = db.begin().await.expect("begin");
        write::reads(&mut tx, "t1", &[read_at(1, "OLD111", old), read_at(2, "NEW222", young)], old)
            .await
            .expect("reads");
        for id in [1, 2] {
            for kind in [PictureKind::PlateCrop, PictureKind::Context] {
                write::picture(&mut tx, "t1", id, kind, b"jpeg", young).await.expect("picture");
            }
        }
        // A picture whose read never arrived, received long ago.
        write::picture(&mut tx, "t1", 99, PictureKind::Context, b"jpeg", old)
            .await
            .expect("orphan");
        let alert = |alert_id, read| trailer_wire::Alert {
            trailer_id: "t1".into(),
            alert_id,
            read,
            list_name: "mn-state".into(),
            list_version: 1,
            category: trailer_wire::HitCategory::StolenVehicle,
            case_number: None,
        };
        write::alert(&mut tx, "t1", &alert(1, read_at(1, "OLD111", old)), old)
            .await
            .expect("alert");
        write::alert(&mut tx, "t1", &alert(2, read_at(2, "NEW222", young)), young)
            .await
            .expect("alert");
        let period = ActiveUse {
            trailer_id: "t1".into(),
            period_id: 5,
            start: old - DAY,
            end: Some(old + DAY),
            start_reason: trailer_wire::UsageReason::DaemonStart,
            end_reason: Some(trailer_wire::UsageReason::DaemonStop),
            position: trailer_wire::Position::from_degrees(44.16, -93.99, FixQuality::Fix3d),
            lists_compared: vec!["MN BCA".into()],
        };
        write::usage(&mut tx, "t1", &period).await.expect("usage");
        tx.commit().await.expect("commit");

        // Nothing is due a day early.
        assert_eq!(db.purge(now - 2 * DAY, 60).await.expect("purge"), Purged::default());
        let purged = db.purge(now, 60).await.expect("purge");
        assert_eq!(purged, Purged { reads: 1, pictures: 3, alerts: 1 });
        let plates: Vec<String> =
            db.list_reads(10).await.expect("reads").into_iter().map(|r| r.plate).collect();
        assert_eq!(plates, ["NEW222"]);
        assert_eq!(count(&db, "pictures").await, 2);
        assert_eq!(count(&db, "alerts").await, 1);
        assert_eq!(count(&db, "usage_periods").await, 1, "the log of use outlives the reads");
        assert!(count(&db, "locations").await >= 1, "the location history outlives the reads");
        // Run again: nothing more, and no second audit entry.
        assert_eq!(db.purge(now, 60).await.expect("purge"), Purged::default());
        let (action, result): (String, i64) =
            sqlx::query_as("SELECT action, result_count FROM audit ORDER BY seq DESC LIMIT 1")
                .fetch_one(db.pool())
                .await
                .expect("audit");
        assert_eq!((action.as_str(), result), ("destroy", 5));
        assert_eq!(count(&db, "audit").await, 1);
        assert_eq!(db.audit_verify().await.expect("verify"), Ok(1));
    }

    #[test]
    fn dates_and_distances() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_time(1_790_000_000_000), "2026-09-21T14:13:20Z");
        assert_eq!(iso_date(951_782_400_000), "2000-02-29");
        let d = distance_m(44.1636, -93.9994, 44.1636, -93.9994 + 0.01);
        assert!((790.0..810.0).contains(&d), "{d}");
    }
}
