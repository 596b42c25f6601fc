//! The agency's ALPR server: receives what every trailer of one agency collects, keeps the
//! records the law requires, and publishes what the public may see.
//!
//! # Stages and data flow
//! ```text
//!  broker ─($share/ingest/trailer/+/up/+)─► mqtt ─► ingest ─(one transaction)─► records (SQL)
//!     ▲                                      │                                      │
//!     └──────(trailer/{id}/down/ack)─────────┘ ack after commit                     ▼
//!                                                                public (HTTP: location list)
//!  operators/CLI ─► audit (hash-chained trail of every access)
//! ```
//! - [`config`]: strict TOML configuration.
//! - [`records`]: the database (SQLite embedded by default), its migrations and queries, and
//!   retention (`Records::purge`, run by the server's retention duty at start and every
//!   `purge_interval_s`).
//! - [`ingest`]: validates and applies uplink messages; idempotent on `(trailer, id)`.
//! - [`mqtt`]: the broker connection: shared subscription, commit-then-ack.
//! - [`public`]: the public location list over HTTP; never a plate, a picture or a read.
//! - [`audit`]: the append-only, hash-chained audit trail.
//! - [`pki`] and [`broker`]: the agency CA, certificates, and the Mosquitto configuration and
//!   the broker's clients (brought in line with the registry by [`mqtt`]).
//! - [`renewal`]: trailers' certificates renewed over the link.
//! - [`limits`]: what one identity may send (uplinks, console requests, refused bytes).
//! - [`commands`]: every operator action, whichever transport asks: role, command and its
//!   audit entry on one transaction.
//! - [`forward`]: hits sent to the agency's dispatch systems (webhooks) as they arrive, each
//!   delivery audited.
pub mod atomic;
pub mod audit;
pub mod bca;
pub mod broker;
pub mod commands;
pub mod config;
pub mod console;
pub mod csvfile;
pub mod downlink;
pub mod forward;
pub mod ingest;
pub mod limits;
pub mod monitor;
pub mod mqtt;
pub mod pki;
pub mod public;
pub mod records;
pub mod renewal;
pub mod report;

pub use config::Config;

use thiserror::Error;
use tokio::sync::watch;

#[derive(Debug, Error)]
pub enum ServerError {
    #[error(transparent)]
    Records(#[from] records::RecordsError),
    #[error(transparent)]
    Mqtt(#[from] mqtt::MqttError),
    #[error("{0}")]
    Config(String),
    #[error("HTTP listener on {addr}: {reason}")]
    Http { addr: String, reason: String },
}

/// The time now, in milliseconds since the epoch: the clock the duties pass to the records.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Waits `every` between two runs of a duty, or until `shutdown`; false when the duty stops.
pub(crate) async fn next_run(
    every: std::time::Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(every) => {}
        _ = shutdown.changed() => {}
    }
    !*shutdown.borrow()
}

/// Destroys what is past retention at start and every `every` until `shutdown`. Several
/// instances may run it at once: deletes are idempotent.
async fn retention_duty(
    db: records::Records,
    days: u32,
    backups: std::path::PathBuf,
    every: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match db.prune_backups(&backups, now_ms()).await {
            Ok(gone) if !gone.is_empty() => {
                tracing::info!(backups = ?gone, "retention destroyed backups past their day");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "backup retention failed; retrying later"),
        }
        match db.purge(now_ms(), days).await {
            Ok(p) if p.reads + p.pictures + p.alerts + p.dead_letters > 0 => {
                tracing::info!(
                    reads = p.reads,
                    pictures = p.pictures,
                    alerts = p.alerts,
                    refused_messages = p.dead_letters,
                    "retention destroyed data past {days} days"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "retention failed; retrying at the next run"),
        }
        if !next_run(every, &mut shutdown).await {
            return;
        }
    }
}

/// Serves `app` on `listener` until `stop` turns true.
async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
}

/// Runs the server until `shutdown` turns true.
pub async fn run(config: Config, shutdown: watch::Receiver<bool>) -> Result<(), ServerError> {
    let rules = config.rules().map_err(|e| ServerError::Config(e.to_string()))?;
    let db = records::Records::open(&config.database_url()).await?.with_rules(rules);
    let listener = tokio::net::TcpListener::bind(&config.http.listen).await.map_err(|e| {
        ServerError::Http { addr: config.http.listen.clone(), reason: e.to_string() }
    })?;
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(%addr, "public pages at http://{addr}/public/locations");
    // The public read on a pool of their own, read-only, and within limits: a crowd there can
    // never take the connections or the time ingestion needs.
    let public_db = db.read_only(config.http.public_connections).await?;
    let app = public::limited_router(
        public_db,
        config.public_agency(),
        public::Limits::from_config(&config.http),
    );
    let http = tokio::spawn(serve(listener, app, shutdown.clone()));
    // Monitoring, on its own (loopback) address: metrics, liveness and readiness.
    let live = monitor::Live::new();
    let monitor = if config.http.monitor_listen.is_empty() {
        None
    } else {
        let listener =
            tokio::net::TcpListener::bind(&config.http.monitor_listen).await.map_err(|e| {
                ServerError::Http {
                    addr: config.http.monitor_listen.clone(),
                    reason: e.to_string(),
                }
            })?;
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(%addr, "metrics at http://{addr}/metrics, /healthz, /readyz");
        let app = monitor::router(db.clone(), live.clone());
        Some(tokio::spawn(serve(listener, app, shutdown.clone())))
    };
    let audit_check = tokio::spawn(monitor::audit_duty(
        db.clone(),
        live.clone(),
        std::time::Duration::from_secs(600),
        shutdown.clone(),
    ));
    let retention = tokio::spawn(retention_duty(
        db.clone(),
        config.server.retention_days,
        config.server.backups(),
        std::time::Duration::from_secs(config.server.purge_interval_s),
        shutdown.clone(),
    ));
    let notices =
        tokio::spawn(bca::Sender::from_config(&config).duty(db.clone(), shutdown.clone()));
    let forwards = tokio::spawn(forward::duty(
        db.clone(),
        config.clone(),
        live.hits_stored.clone(),
        shutdown.clone(),
    ));
    // Under systemd (Type=notify): ready once the database is open and the pages are served
    // (the broker may come later: /readyz says so); the watchdog fed while it makes progress.
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("serving"),
    ]);
    let watchdog = tokio::spawn(monitor::watchdog_duty(db.clone(), live.clone(), shutdown.clone()));
    let result = mqtt::run(config, db.clone(), live, shutdown).await;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    watchdog.abort();
    http.abort();
    if let Some(m) = monitor {
        m.abort();
    }
    audit_check.abort();
    let _ = retention.await;
    let _ = notices.await;
    let _ = forwards.await;
    db.close().await;
    result.map_err(ServerError::from)
}
