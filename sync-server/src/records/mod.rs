//! The agency's records, through sqlx. SQLite (embedded) by default.
//!
//! Every write that a trailer's ack depends on happens in one transaction per message, and the
//! ack is published only after it commits. Inserts are idempotent on `(trailer_id, id)`, so a
//! message sent twice (after a lost ack, a reconnect, a restart) is stored once.
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool};
use sqlx::{Executor, Row};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::Mutex;
use trailer_wire::console::ReadView;
use trailer_wire::{FixQuality, PictureKind};

/// `NOT EXISTS` clause: the row's read (`X.trailer_id`, `X.read_id`) is under no active hold.
macro_rules! unheld {
    ($x:literal) => {
        concat!(
            " AND NOT EXISTS (SELECT 1 FROM held_reads h JOIN holds d ON d.id = h.hold_id \
             WHERE d.released_ms IS NULL AND h.trailer_id = ",
            $x,
            ".trailer_id AND h.read_id = ",
            $x,
            ".read_id)"
        )
    };
}

mod acp;
pub mod audit;
pub mod backup;
mod downlinks;
mod forwards;
pub mod hotlists;
pub mod imports;
mod locations;
pub mod notices;
pub mod oversight;
pub mod releases;
mod repeats;
mod retention;
mod session;
mod stores;
mod trailers;
pub mod uselog;
mod users;
pub mod write;

pub use acp::AcpAdded;
pub use audit::{AuditEntryView, AuditSummary, PublicAuditEntry};
pub(crate) use downlinks::enqueue as enqueue_on;
pub use downlinks::{DownlinkView, Due};
pub use hotlists::{HotlistVersion, Upload};
pub use locations::{Determination, LocationView, Places};
pub use notices::{Notice, NoticeKind, NoticeState};
pub use oversight::{AuditResult, Suspension};
pub use releases::{Bundle, BundleFile, NewRelease, Release};
pub use repeats::Tally;
pub use retention::{HOLD_KINDS, HoldView, NewHold, PlatePeriod, Purged};
pub use session::Session;
pub use stores::StoreEvent;
pub use trailers::TrailerView;
pub(crate) use trailers::enrolled_among;
pub use uselog::UseLog;
pub use users::UserView;

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
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertView {
    pub trailer_id: String,
    pub alert_id: u64,
    pub plate: String,
    pub list_name: String,
    pub category: String,
    pub case_number: Option<String>,
    pub seen_at: String,
    /// The outcome an operator recorded on acknowledging it (absent while open).
    #[serde(default)]
    pub outcome: Option<String>,
    /// Where the trailer read it (absent once its read is destroyed).
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
    /// The read it was raised on.
    #[serde(default)]
    pub read_id: u64,
    /// Whether the plate's picture is here (`alerts.list pictures=true` brings it).
    #[serde(default)]
    pub has_plate_crop: bool,
    /// Who acknowledged it and when.
    #[serde(default)]
    pub acknowledged_by: Option<String>,
    #[serde(default)]
    pub acknowledged_at: Option<String>,
    /// The check against the state's systems the acknowledgement records (which system,
    /// its answer, the query's reference).
    #[serde(default)]
    pub state_check: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// The columns [`alert_view`] reads, over `alerts a LEFT JOIN reads r`.
macro_rules! alert_columns {
    () => {
        "a.trailer_id, a.alert_id, a.plate, a.list_name, a.category, a.case_number, a.seen_at, \
         a.outcome, r.lat, r.lon, a.read_id, COALESCE(r.has_crop, 0), a.acknowledged_by, \
         a.acknowledged_ms, a.state_check, a.ack_note"
    };
}
pub(crate) use alert_columns;

/// An operator's acknowledgement of a hit.
#[derive(Debug, Clone, Copy)]
pub struct Acknowledgement<'a> {
    /// One of [`ALERT_OUTCOMES`].
    pub outcome: &'a str,
    /// How it was verified with the state's systems (MNJIS, NCIC through NLETS): which
    /// system, what it answered, the query's reference. Required (Minn. Stat. 13.824 and the
    /// BCA's rule that a hit alone is no ground to act).
    pub check: &'a str,
    pub note: Option<&'a str>,
}

/// What can come of an alert once an operator verified it.
pub const ALERT_OUTCOMES: [&str; 4] =
    ["confirmed-acted", "confirmed-no-action", "not-confirmed", "misread"];

/// What the server holds from one trailer ([`Records::counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub reads: i64,
    /// Distinct plates among the reads.
    pub plates: i64,
    pub alerts: i64,
    pub pictures: i64,
}

/// Distance beyond which a trailer is at a new location, metres, unless configured.
pub const NEW_LOCATION_M: f64 = 150.0;

/// The agency's rules that ingestion applies: where a new location begins, and the time zone
/// of the public log's days and hours.
#[derive(Debug, Clone)]
pub struct Rules {
    /// A trailer that moved further than this (metres) stands at a new location.
    pub new_location_m: f64,
    pub time_zone: jiff::tz::TimeZone,
    /// How long a new location stays out of the public pages (and its BCA notice waits), so an
    /// operator can mark it security information first.
    pub review_ms: i64,
    /// The agency's ACP key (the trailers hold the same): without it no participant can be
    /// added, and none is dropped at ingest.
    pub acp_key: Option<Arc<[u8]>>,
    /// The agency's configuration signing key (PKCS#8): every configuration sent to a trailer
    /// is signed with it (`trailer_wire::signed`).
    pub config_key: Option<Arc<[u8]>>,
    /// The hotlists that are the state's plate data file: any other list is an active
    /// investigation's, loaded only with a case number and a second supervisor's approval.
    pub state_lists: Arc<[String]>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            new_location_m: NEW_LOCATION_M,
            review_ms: 0,
            acp_key: None,
            config_key: None,
            state_lists: Arc::from(vec![crate::config::STATE_LIST.to_string()]),
            time_zone: jiff::tz::TimeZone::get("America/Chicago")
                .unwrap_or(jiff::tz::TimeZone::UTC),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Records {
    pool: AnyPool,
    /// PostgreSQL (else the embedded SQLite): the queries are written once, with `?`
    /// placeholders, and [`sql`] numbers them for PostgreSQL.
    pg: bool,
    /// Audit appends are serialised: each entry chains to the one before it.
    audit_lock: Arc<Mutex<()>>,
    rules: Arc<Rules>,
    /// Where the records are (for a backup of PostgreSQL by `pg_dump`).
    url: Arc<str>,
}

fn fix_name(f: FixQuality) -> &'static str {
    match f {
        FixQuality::None => "none",
        FixQuality::Configured => "configured",
        FixQuality::Fix2d => "2d",
        FixQuality::Fix3d => "3d",
    }
}

pub(crate) fn picture_kind(k: PictureKind) -> &'static str {
    match k {
        PictureKind::PlateCrop => "plate_crop",
        PictureKind::Context => "context",
    }
}

/// A typed plate as the engine may have written it: as typed, and with O read as 0 (the same
/// when it has no O), for `plate IN (?, ?)`.
pub(crate) fn plate_pair(plate: &str) -> (String, String) {
    let forms = trailer_wire::acp::plate_forms(plate);
    let typed = forms[0].clone();
    let zeroed = forms.last().cloned().unwrap_or_else(|| typed.clone());
    (typed, zeroed)
}

/// An alert's row (`trailer_id, alert_id, plate, list_name, category, case_number, seen_at,
/// outcome`, and its read's `lat, lon`).
fn alert_view(r: &sqlx::any::AnyRow) -> AlertView {
    AlertView {
        trailer_id: r.get(0),
        alert_id: r.get::<i64, _>(1) as u64,
        plate: r.get(2),
        list_name: r.get(3),
        category: r.get(4),
        case_number: r.get(5),
        seen_at: iso_time(r.get(6)),
        outcome: r.get(7),
        lat: r.get(8),
        lon: r.get(9),
        read_id: r.get::<i64, _>(10) as u64,
        has_plate_crop: r.get::<i64, _>(11) != 0,
        acknowledged_by: r.get(12),
        acknowledged_at: r.get::<Option<i64>, _>(13).map(iso_time),
        state_check: r.get(14),
        note: r.get(15),
    }
}

/// Bytes of refused messages kept per sender (`[limits] dead_letter_bytes`); set once at start.
static DEAD_LETTER_BYTES: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(16 * 1024 * 1024);

/// Sets how many bytes of refused messages are kept per sender.
pub fn set_dead_letter_limit(bytes: u64) {
    DEAD_LETTER_BYTES.store(bytes, std::sync::atomic::Ordering::Relaxed);
}

/// Who sent a message, from its topic: the trailer or the console user it names.
fn sender_of(topic: &str) -> &str {
    match topic.split('/').collect::<Vec<_>>()[..] {
        ["trailer", t, ..] | ["console", t, ..] => t,
        _ => "",
    }
}

/// [`Records::dead_letter`] on the caller's connection (inside an ingest transaction). Past the
/// sender's limit of kept bytes, only the topic, reason and size are kept.
pub(crate) async fn dead_letter_on(
    c: &mut AnyConnection,
    topic: &str,
    reason: &str,
    payload: &[u8],
    now: i64,
) -> Result<(), RecordsError> {
    let pg = is_pg(c);
    let sender = sender_of(topic);
    let kept: i64 = sqlx::query(sql(
        pg,
        "SELECT CAST(COALESCE(SUM(LENGTH(payload)), 0) AS BIGINT) FROM dead_letters WHERE sender = ?",
    ))
    .bind(sender)
    .fetch_one(&mut *c)
    .await?
    .get(0);
    let limit = DEAD_LETTER_BYTES.load(std::sync::atomic::Ordering::Relaxed);
    let (reason, payload) = if (kept as u64).saturating_add(payload.len() as u64) > limit {
        let why = format!(
            "{reason} (payload of {} bytes not kept: {sender}'s refused messages are over their limit)",
            payload.len()
        );
        (why, &[][..])
    } else {
        (reason.to_string(), payload)
    };
    sqlx::query(sql(
        pg,
        "INSERT INTO dead_letters (received_at, topic, reason, payload, sender) VALUES (?, ?, ?, ?, ?)",
    ))
    .bind(now)
    .bind(topic)
    .bind(reason)
    .bind(payload)
    .bind(sender)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// The enrolled trailers the server has heard from (each sent its status on connecting), by id.
/// One enrolled but never heard from is sent everything when it first connects.
async fn known_trailers(c: &mut AnyConnection) -> Result<Vec<String>, RecordsError> {
    let pg = is_pg(c);
    let rows = sqlx::query(sql(
        pg,
        "SELECT s.trailer_id FROM trailer_status s JOIN trailers t ON t.trailer_id = s.trailer_id \
         WHERE t.revoked_ms IS NULL ORDER BY s.trailer_id",
    ))
    .fetch_all(&mut *c)
    .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Great-circle distance in metres.
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * a.sqrt().asin()
}

pub fn iso_date(ms: i64) -> String {
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
                    // Destroyed means gone from the file too: deleted rows are overwritten
                    // with zeros, not left on free pages.
                    c.execute("PRAGMA secure_delete = ON").await?;
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
        Ok(Records {
            pool,
            pg,
            audit_lock: Arc::new(Mutex::new(())),
            rules: Arc::default(),
            url: Arc::from(url),
        })
    }

    /// The same records on a pool of their own that can only read, of at most `connections`
    /// connections: what the public pages read on, so that no public request takes a
    /// connection ingestion needs, and none can write (SQLite opened read-only with
    /// `query_only`; PostgreSQL sessions read-only, each statement cut off after 5 s). The
    /// schema must exist already ([`Records::open`] made it).
    pub async fn read_only(&self, connections: u32) -> Result<Records, RecordsError> {
        let url = self.url.to_string();
        let err = |e: sqlx::Error| RecordsError::Open { url: redact(&url), reason: e.to_string() };
        let options = AnyPoolOptions::new().max_connections(connections.max(1));
        let pool = if self.pg {
            options
                .after_connect(|c: &mut AnyConnection, _| {
                    Box::pin(async move {
                        c.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY").await?;
                        c.execute("SET statement_timeout = '5s'").await?;
                        Ok(())
                    })
                })
                .connect(&url)
                .await
                .map_err(err)?
        } else {
            let base = url.split('?').next().unwrap_or(&url);
            options
                .after_connect(|c: &mut AnyConnection, _| {
                    Box::pin(async move {
                        c.execute("PRAGMA busy_timeout = 5000").await?;
                        c.execute("PRAGMA query_only = ON").await?;
                        Ok(())
                    })
                })
                .connect(&format!("{base}?mode=ro"))
                .await
                .map_err(err)?
        };
        Ok(Records {
            pool,
            pg: self.pg,
            audit_lock: Arc::new(Mutex::new(())),
            rules: self.rules.clone(),
            url: self.url.clone(),
        })
    }

    /// The same records under the agency's own rules (the default: 150 m, America/Chicago).
    pub fn with_rules(mut self, rules: Rules) -> Records {
        self.rules = Arc::new(rules);
        self
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Opens a transaction: a batch of ingested messages is written in one and committed once.
    pub async fn begin(&self) -> Result<Tx, RecordsError> {
        self.begin_write().await
    }

    /// A transaction that will write. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), waiting its turn under the busy timeout: a deferred transaction that read
    /// first would fail at once (SQLITE_BUSY) when another writer (retention, a CLI) committed
    /// meanwhile.
    pub(crate) async fn begin_write(&self) -> Result<Tx, RecordsError> {
        Ok(if self.pg {
            self.pool.begin().await?
        } else {
            self.pool.begin_with("BEGIN IMMEDIATE").await?
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Latest health per trailer as JSON objects (status, not data: no plate or read).
    pub async fn health(&self) -> Result<Vec<serde_json::Value>, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT t.trailer_id, h.reported_at, h.camera, h.fix, h.disk_used_pm, h.storage_full, \
             h.backlog_items, h.last_read, h.dropped_frames, \
             COALESCE(h.software_version, s.software_version), h.store_repairs, \
             s.online, s.last_change, s.store_id, s.store_event, s.store_event_ms, \
             COALESCE(n.resends, 0), COALESCE(n.collisions, 0), h.acp_fingerprint, \
             COALESCE(h.acp_entries, 0), (SELECT COUNT(*) FROM acp_digests), \
             h.config_rolled_back, COALESCE(n.rate_limited, 0), COALESCE(n.clock_refused, 0) FROM \
             (SELECT trailer_id FROM trailer_status UNION SELECT trailer_id FROM trailer_health \
              UNION SELECT trailer_id FROM ingest_counts) t \
             LEFT JOIN trailer_health h ON h.trailer_id = t.trailer_id \
             LEFT JOIN trailer_status s ON s.trailer_id = t.trailer_id \
             LEFT JOIN ingest_counts n ON n.trailer_id = t.trailer_id ORDER BY t.trailer_id",
        ))
        .fetch_all(&self.pool)
        .await?;
        // A trailer heard of only by its status (or its refused records) has no report yet.
        let ours = self
            .rules
            .acp_key
            .as_deref()
            .map(|k| hex::encode(trailer_wire::acp::key_fingerprint(k)));
        Ok(rows
            .iter()
            .map(|r| {
                let (theirs, entries, listed): (Option<String>, i64, i64) =
                    (r.get(18), r.get(19), r.get(20));
                // Whether the trailer can honour ACP requests: the server's key, and the list.
                let acp = match (&ours, &theirs) {
                    (None, _) => "no key on the server".to_string(),
                    (_, None) if r.get::<Option<i64>, _>(1).is_none() => "not reported yet".into(),
                    (_, None) => "NO KEY on the trailer: ACP requests cannot be honoured".into(),
                    (Some(o), Some(t)) if o != t => {
                        format!(
                            "KEY DIFFERS (trailer {t}, server {o}): ACP requests cannot be honoured"
                        )
                    }
                    _ if entries < listed => {
                        format!("key matches; {entries} of {listed} digests (more on the way)")
                    }
                    _ => format!("key matches; {entries} digests"),
                };
                serde_json::json!({
                    "trailer": r.get::<String, _>(0),
                    "reported_at": r.get::<Option<i64>, _>(1).map(iso_time),
                    "camera": r.get::<Option<String>, _>(2),
                    "gps_fix": r.get::<Option<String>, _>(3),
                    "disk_used_pct": r.get::<Option<i64>, _>(4).map(|d| d as f64 / 10.0),
                    "storage_full": r.get::<Option<i64>, _>(5).map(|f| f != 0),
                    "backlog_items": r.get::<Option<i64>, _>(6),
                    "last_read": r.get::<Option<i64>, _>(7).map(iso_time),
                    "dropped_frames": r.get::<Option<i64>, _>(8),
                    "software_version": r.get::<Option<String>, _>(9),
                    "store_repairs": r.get::<Option<i64>, _>(10),
                    "online": r.get::<Option<i64>, _>(11).map(|o| o != 0),
                    "since": r.get::<Option<i64>, _>(12).map(iso_time),
                    "store": r.get::<Option<String>, _>(13),
                    // A new or restored store: it was sent again what it must hold.
                    "store_event": r.get::<Option<String>, _>(14),
                    "store_event_at": r.get::<Option<i64>, _>(15).map(iso_time),
                    "resends": r.get::<i64, _>(16),
                    // Records under an id held for other content: kept in the dead letters.
                    "collisions": r.get::<i64, _>(17),
                    "acp": acp,
                    // A configuration the server sent that never started, put back by the trailer.
                    "config_rolled_back_at": r.get::<Option<i64>, _>(21).map(iso_time),
                    // Uplinks over the trailer's rate: not stored, sent again by a trailer
                    // that means well.
                    "rate_limited": r.get::<i64, _>(22),
                    // Records stamped by a clock ahead of the server's or reset: kept apart.
                    "clock_refused": r.get::<i64, _>(23),
                })
            })
            .collect())
    }

    /// Keeps a refused message with its reason (destroyed by retention like the reads).
    pub async fn dead_letter(
        &self,
        topic: &str,
        reason: &str,
        payload: &[u8],
        now: i64,
    ) -> Result<(), RecordsError> {
        let mut c = self.pool.acquire().await?;
        dead_letter_on(&mut c, topic, reason, payload, now).await
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

    /// Counts uplinks refused over a trailer's rate (for health).
    pub async fn count_rate_limited(&self, trailer: &str, n: u64) -> Result<(), RecordsError> {
        sqlx::query(sql(
            self.pg,
            "INSERT INTO ingest_counts (trailer_id, rate_limited) VALUES (?, ?) \
             ON CONFLICT (trailer_id) DO UPDATE SET \
             rate_limited = ingest_counts.rate_limited + excluded.rate_limited",
        ))
        .bind(trailer)
        .bind(n as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
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
        let rows = sqlx::query(sql(self.pg, "SELECT trailer_id, read_id, plate, confidence, best_seen, lat, lon, has_crop, has_context, source_agency \
             FROM reads ORDER BY best_seen DESC, read_id DESC LIMIT ?"),
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(read_view).collect())
    }

    /// Reads of one plate, newest first, for an authorised and audited search. The plate is
    /// compared in every form the engine may have written it ([`trailer_wire::acp::plate_forms`]:
    /// capitals and digits, the letter O also as 0).
    pub async fn search_reads(
        &self,
        plate: &str,
        since: i64,
        limit: i64,
    ) -> Result<Vec<ReadView>, RecordsError> {
        let (typed, zeroed) = plate_pair(plate);
        let rows = sqlx::query(sql(self.pg, "SELECT trailer_id, read_id, plate, confidence, best_seen, lat, lon, has_crop, has_context, source_agency \
             FROM reads WHERE plate IN (?, ?) AND best_seen >= ? ORDER BY best_seen DESC, read_id DESC LIMIT ?"),
        )
        .bind(typed)
        .bind(zeroed)
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(read_view).collect())
    }

    /// The pictures of one read held here, as (kind, JPEG).
    pub async fn pictures_of(
        &self,
        trailer: &str,
        read_id: u64,
    ) -> Result<Vec<(String, Vec<u8>)>, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT kind, jpeg FROM pictures WHERE trailer_id = ? AND read_id = ? ORDER BY kind",
        ))
        .bind(trailer)
        .bind(read_id as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Alerts, newest first: at most `limit`, only those not acknowledged when `open`.
    pub async fn list_alerts(
        &self,
        limit: i64,
        open: bool,
    ) -> Result<Vec<AlertView>, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            concat!(
                "SELECT ",
                alert_columns!(),
                " FROM alerts a LEFT JOIN reads r \
                 ON r.trailer_id = a.trailer_id AND r.read_id = a.read_id \
                 WHERE (? = 0 OR a.acknowledged = 0) ORDER BY a.seen_at DESC LIMIT ?"
            ),
        ))
        .bind(i64::from(open))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(alert_view).collect())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the records are on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.pg
    }
}

/// A read row (`trailer_id, read_id, plate, confidence, best_seen, lat, lon, has_crop,
/// has_context, source_agency`) as an authorised operator sees it.
fn read_view(r: &sqlx::any::AnyRow) -> ReadView {
    ReadView {
        trailer_id: r.get(0),
        read_id: r.get::<i64, _>(1) as u64,
        plate: r.get(2),
        confidence: r.get::<f64, _>(3) as f32,
        seen_at: iso_time(r.get(4)),
        lat: r.get(5),
        lon: r.get(6),
        has_plate_crop: r.get::<i64, _>(7) != 0,
        has_context: r.get::<i64, _>(8) != 0,
        source: r.get(9),
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

session::committed! {
    /// Acknowledges an open alert with its outcome (a one-action session).
    fn acknowledge_alert(trailer: &str, alert_id: i64, how: Acknowledgement<'_>, by: &str, now: i64) -> bool;
}

impl Session {
    /// Acknowledges an open alert with its outcome. False if there is no such open alert.
    pub async fn acknowledge_alert(
        &mut self,
        trailer: &str,
        alert_id: i64,
        Acknowledgement { outcome, check, note }: Acknowledgement<'_>,
        by: &str,
        now: i64,
    ) -> Result<bool, RecordsError> {
        if check.trim().is_empty() {
            return Err(RecordsError::Invalid(
                "check: say how the hit was verified with the state's systems (which system, \
                 its answer, the query's reference) before acknowledging it"
                    .into(),
            ));
        }
        if !ALERT_OUTCOMES.contains(&outcome) {
            return Err(RecordsError::Invalid(format!(
                "outcome {outcome:?}: use {}",
                ALERT_OUTCOMES.join(", ")
            )));
        }
        let done = sqlx::query(sql(
            self.pg,
            "UPDATE alerts SET acknowledged = 1, outcome = ?, state_check = ?, ack_note = ?, \
             acknowledged_by = ?, acknowledged_ms = ? \
             WHERE trailer_id = ? AND alert_id = ? AND acknowledged = 0",
        ))
        .bind(outcome)
        .bind(check.trim())
        .bind(note.map(str::trim).filter(|n| !n.is_empty()))
        .bind(by)
        .bind(now)
        .bind(trailer)
        .bind(alert_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_console;
