//! What monitoring tools watch (Prometheus and the like): `/metrics` in the Prometheus text
//! format, `/healthz` (the process answers) and `/readyz` (the database answers and the broker
//! is connected). Served on their own address (`[http] monitor_listen`, loopback by default),
//! apart from the public pages. Nothing here is data about a person: counts, ages and trailer
//! ids only.
use crate::records::{Records, RecordsError, sql};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sqlx::Row;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// What the running server knows besides the records: counted as it works.
#[derive(Debug, Default)]
pub struct Live {
    /// Uplink messages taken from the broker and handled (stored, or refused as dead letters).
    pub ingested: AtomicU64,
    pub broker_connected: AtomicBool,
    /// The audit chain at its last check: 1 intact, 0 broken, -1 not checked yet.
    pub audit_intact: AtomicI64,
    pub audit_checked_ms: AtomicI64,
    /// Woken when the writer stored a batch with hits: the dispatch forwarder's cue.
    pub hits_stored: Arc<tokio::sync::Notify>,
    /// Turns of the broker loop (at least one a second): the watchdog's proof that it runs.
    pub broker_loop_turns: AtomicU64,
}

impl Live {
    pub fn new() -> Arc<Live> {
        let live = Live::default();
        live.audit_intact.store(-1, Ordering::Relaxed);
        Arc::new(live)
    }
}

/// One trailer's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct TrailerFigures {
    pub trailer: String,
    pub online: bool,
    /// The newest of its status change and its health report (ms).
    pub last_contact_ms: Option<i64>,
    pub backlog_items: Option<i64>,
    pub disk_used_pm: Option<i64>,
    pub storage_full: bool,
}

/// The records' figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub trailers: Vec<TrailerFigures>,
    pub enrolled: i64,
    pub reads_stored: i64,
    pub dead_letters: i64,
    pub notices_overdue: i64,
    pub alerts_open: i64,
    /// Hits held now, by category.
    pub hits: Vec<(String, i64)>,
}

/// The figures from the records at `now`.
pub async fn figures(records: &Records, now: i64) -> Result<Figures, RecordsError> {
    let pool = records.pool();
    let pg = records.is_postgres();
    let rows = sqlx::query(
        "SELECT t.trailer_id, s.online, s.last_change, h.reported_at, h.backlog_items, \
         h.disk_used_pm, h.storage_full FROM trailers t \
         LEFT JOIN trailer_status s ON s.trailer_id = t.trailer_id \
         LEFT JOIN trailer_health h ON h.trailer_id = t.trailer_id \
         WHERE t.revoked_ms IS NULL ORDER BY t.trailer_id",
    )
    .fetch_all(pool)
    .await?;
    let trailers: Vec<TrailerFigures> = rows
        .iter()
        .map(|r| TrailerFigures {
            trailer: r.get(0),
            online: r.get::<Option<i64>, _>(1).is_some_and(|o| o != 0),
            last_contact_ms: r.get::<Option<i64>, _>(2).max(r.get::<Option<i64>, _>(3)),
            backlog_items: r.get(4),
            disk_used_pm: r.get(5),
            storage_full: r.get::<Option<i64>, _>(6).is_some_and(|f| f != 0),
        })
        .collect();
    let count = |text: &'static str| async move {
        sqlx::query(text).fetch_one(pool).await.map(|r| r.get::<i64, _>(0))
    };
    let hits = sqlx::query(
        "SELECT category, CAST(COUNT(*) AS BIGINT) FROM alerts GROUP BY category ORDER BY category",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
    .collect();
    let overdue: i64 = sqlx::query(sql(
        pg,
        "SELECT CAST(COUNT(*) AS BIGINT) FROM bca_notices WHERE sent_ms IS NULL AND due_ms < ?",
    ))
    .bind(now)
    .fetch_one(pool)
    .await?
    .get(0);
    Ok(Figures {
        enrolled: trailers.len() as i64,
        trailers,
        reads_stored: count("SELECT CAST(COUNT(*) AS BIGINT) FROM reads").await?,
        dead_letters: count("SELECT CAST(COUNT(*) AS BIGINT) FROM dead_letters").await?,
        notices_overdue: overdue,
        alerts_open: count("SELECT CAST(COUNT(*) AS BIGINT) FROM alerts WHERE outcome IS NULL")
            .await?,
        hits,
    })
}

/// A label value, escaped as the text format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The Prometheus text format (version 0.0.4) of `f` and `live` at `now`.
pub fn render(f: &Figures, live: &Live, now: i64) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let one = |v: f64| vec![(String::new(), v)];
    let per = |pick: &dyn Fn(&TrailerFigures) -> Option<f64>| -> Vec<(String, f64)> {
        f.trailers
            .iter()
            .filter_map(|t| pick(t).map(|v| (format!("{{trailer=\"{}\"}}", label(&t.trailer)), v)))
            .collect()
    };
    metric(
        "alpr_uplink_messages_total",
        "counter",
        "Uplink messages the server took from the broker and handled.",
        &one(live.ingested.load(Ordering::Relaxed) as f64),
    );
    metric(
        "alpr_broker_connected",
        "gauge",
        "1 while the server is connected to the broker.",
        &one(f64::from(u8::from(live.broker_connected.load(Ordering::Relaxed)))),
    );
    metric(
        "alpr_trailers_enrolled",
        "gauge",
        "Trailers enrolled (not revoked).",
        &one(f.enrolled as f64),
    );
    metric(
        "alpr_trailers_online",
        "gauge",
        "Trailers whose last status says online.",
        &one(f.trailers.iter().filter(|t| t.online).count() as f64),
    );
    metric(
        "alpr_trailer_online",
        "gauge",
        "1 when the trailer's last status says online.",
        &per(&|t| Some(f64::from(u8::from(t.online)))),
    );
    metric(
        "alpr_trailer_last_contact_age_seconds",
        "gauge",
        "Seconds since the trailer's last status or health report.",
        &per(&|t| t.last_contact_ms.map(|c| ((now - c).max(0) / 1000) as f64)),
    );
    metric(
        "alpr_trailer_backlog_items",
        "gauge",
        "Items waiting on the trailer for the server, as its last health report said.",
        &per(&|t| t.backlog_items.map(|b| b as f64)),
    );
    metric(
        "alpr_trailer_disk_used_ratio",
        "gauge",
        "The trailer's store, as a share of its quota.",
        &per(&|t| t.disk_used_pm.map(|d| d as f64 / 1000.0)),
    );
    metric(
        "alpr_trailer_storage_full",
        "gauge",
        "1 when the trailer's store is full (capture waits).",
        &per(&|t| Some(f64::from(u8::from(t.storage_full)))),
    );
    metric(
        "alpr_reads_stored",
        "gauge",
        "Reads held (within retention).",
        &one(f.reads_stored as f64),
    );
    metric(
        "alpr_dead_letters",
        "gauge",
        "Refused messages kept for inspection.",
        &one(f.dead_letters as f64),
    );
    metric(
        "alpr_bca_notices_overdue",
        "gauge",
        "BCA notices past their 10-day due date and not sent.",
        &one(f.notices_overdue as f64),
    );
    metric(
        "alpr_alerts_open",
        "gauge",
        "Hotlist hits no operator has acknowledged.",
        &one(f.alerts_open as f64),
    );
    let hits: Vec<(String, f64)> =
        f.hits.iter().map(|(c, n)| (format!("{{category=\"{}\"}}", label(c)), *n as f64)).collect();
    metric("alpr_hits_held", "gauge", "Hotlist hits held (within retention), by category.", &hits);
    let intact = live.audit_intact.load(Ordering::Relaxed);
    if intact >= 0 {
        metric(
            "alpr_audit_chain_intact",
            "gauge",
            "1 when the audit trail's hash chain verified at its last check.",
            &one(intact as f64),
        );
        let at = live.audit_checked_ms.load(Ordering::Relaxed);
        metric(
            "alpr_audit_chain_checked_age_seconds",
            "gauge",
            "Seconds since the audit chain was last verified.",
            &one(((now - at).max(0) / 1000) as f64),
        );
    }
    out
}

#[derive(Clone)]
struct AppState {
    records: Records,
    live: Arc<Live>,
}

pub fn router(records: Records, live: Arc<Live>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(AppState { records, live })
}

async fn metrics(State(s): State<AppState>) -> Response {
    let now = crate::now_ms();
    match figures(&s.records, now).await {
        Ok(f) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            render(&f, &s.live, now),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the records did not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "the records did not answer\n").into_response()
        }
    }
}

async fn readyz(State(s): State<AppState>) -> Response {
    let db = sqlx::query("SELECT 1").fetch_one(s.records.pool()).await.is_ok();
    let broker = s.live.broker_connected.load(Ordering::Relaxed);
    match (db, broker) {
        (true, true) => (StatusCode::OK, "ready\n").into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: database {}, broker {}\n",
                if db { "answers" } else { "DOES NOT ANSWER" },
                if broker { "connected" } else { "NOT CONNECTED" }
            ),
        )
            .into_response(),
    }
}

/// Why the watchdog is not fed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stalled {
    Database,
    BrokerLoop,
}

/// Whether the server makes progress: the database answered, and the broker loop turned
/// since the last look within `stall` (it turns at least once a second). No I/O.
#[derive(Debug)]
pub struct Progress {
    stall: std::time::Duration,
    turns: u64,
    turned_at: std::time::Instant,
}

impl Progress {
    pub fn new(stall: std::time::Duration, now: std::time::Instant) -> Progress {
        Progress { stall, turns: 0, turned_at: now }
    }

    pub fn look(
        &mut self,
        database_answers: bool,
        turns: u64,
        now: std::time::Instant,
    ) -> Result<(), Stalled> {
        if turns != self.turns {
            self.turns = turns;
            self.turned_at = now;
        }
        if !database_answers {
            return Err(Stalled::Database);
        }
        if now.saturating_duration_since(self.turned_at) > self.stall {
            return Err(Stalled::BrokerLoop);
        }
        Ok(())
    }
}

/// systemd's watchdog (`WatchdogSec=` of a `Type=notify` unit), fed at a quarter of its period
/// while [`Progress`] allows it: the database answers `SELECT 1` within that quarter, and the
/// broker loop turns. A server whose database hangs, or whose broker loop is stuck, lets it
/// expire, and systemd restarts it. Returns at once without a watchdog.
pub async fn watchdog_duty(
    records: Records,
    live: Arc<Live>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let Some(period) = sd_notify::watchdog_enabled().filter(|p| !p.is_zero()) else { return };
    let stall = (period / 2).max(std::time::Duration::from_millis(2500));
    let mut progress = Progress::new(stall, std::time::Instant::now());
    let mut tick = tokio::time::interval(period / 4);
    let mut said = None;
    loop {
        tokio::select! {
            _ = shutdown.changed() => if *shutdown.borrow() { return },
            _ = tick.tick() => {
                let answers = tokio::time::timeout(
                    period / 4,
                    sqlx::query("SELECT 1").fetch_one(records.pool()),
                )
                .await
                .is_ok_and(|r| r.is_ok());
                let turns = live.broker_loop_turns.load(Ordering::Relaxed);
                match progress.look(answers, turns, std::time::Instant::now()) {
                    Ok(()) => {
                        said = None;
                        let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                    }
                    Err(why) => {
                        if said.as_ref() != Some(&why) {
                            tracing::error!(?why, "no progress: the watchdog is no longer fed, systemd will restart the server");
                            said = Some(why);
                        }
                    }
                }
            }
        }
    }
}

/// Verifies the audit chain now and every `every` until `shutdown`, for `/metrics`.
pub async fn audit_duty(
    records: Records,
    live: Arc<Live>,
    every: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match records.audit_verify().await {
            Ok(verdict) => {
                live.audit_intact.store(i64::from(verdict.is_ok()), Ordering::Relaxed);
                live.audit_checked_ms.store(crate::now_ms(), Ordering::Relaxed);
                if let Err(e) = verdict {
                    tracing::error!(%e, "the audit trail's chain is BROKEN");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot verify the audit chain now"),
        }
        if !crate::next_run(every, &mut shutdown).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_fed_only_while_the_server_makes_progress() {
        let t0 = std::time::Instant::now();
        let at = |s: u64| t0 + std::time::Duration::from_secs(s);
        let mut p = Progress::new(std::time::Duration::from_secs(10), t0);
        assert_eq!(p.look(true, 1, at(1)), Ok(()));
        assert_eq!(p.look(false, 2, at(2)), Err(Stalled::Database));
        assert_eq!(p.look(true, 3, at(3)), Ok(()));
        assert_eq!(p.look(true, 3, at(12)), Ok(()), "within the allowed stall");
        assert_eq!(p.look(true, 3, at(14)), Err(Stalled::BrokerLoop));
        assert_eq!(p.look(true, 4, at(15)), Ok(()));
    }

    /// The text format: a HELP and TYPE per metric, a sample per trailer with its label
    /// escaped, and the audit chain only once checked.
    #[test]
    fn figures_render_as_prometheus_text() {
        let f = Figures {
            trailers: vec![TrailerFigures {
                trailer: "t\"1".into(),
                online: true,
                last_contact_ms: Some(1_000),
                backlog_items: Some(7),
                disk_used_pm: Some(250),
                storage_full: false,
            }],
            enrolled: 1,
            hits: vec![("Warrant".into(), 2)],
            ..Figures::default()
        };
        let live = Live::new();
        live.ingested.store(5, Ordering::Relaxed);
        let text = render(&f, &live, 61_000);
        for line in [
            "# TYPE alpr_uplink_messages_total counter",
            "alpr_uplink_messages_total 5",
            "alpr_trailer_online{trailer=\"t\\\"1\"} 1",
            "alpr_trailer_last_contact_age_seconds{trailer=\"t\\\"1\"} 60",
            "alpr_trailer_backlog_items{trailer=\"t\\\"1\"} 7",
            "alpr_trailer_disk_used_ratio{trailer=\"t\\\"1\"} 0.25",
            "alpr_hits_held{category=\"Warrant\"} 2",
            "alpr_broker_connected 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}:\n{text}");
        }
        assert!(!text.contains("alpr_audit_chain_intact"), "not checked yet");
        live.audit_intact.store(1, Ordering::Relaxed);
        assert!(render(&f, &live, 61_000).contains("alpr_audit_chain_intact 1"));
    }
}
