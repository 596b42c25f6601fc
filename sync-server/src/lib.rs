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
//! - [`records`]: the database (SQLite embedded by default), its migrations and queries.
//! - [`ingest`]: validates and applies uplink messages; idempotent on `(trailer, id)`.
//! - [`mqtt`]: the broker connection: shared subscription, commit-then-ack.
//! - [`public`]: the public location list over HTTP; never a plate, a picture or a read.
//! - [`audit`]: the append-only, hash-chained audit trail.
//! - [`pki`] and [`broker`]: the agency CA, certificates, and the Mosquitto configuration.
pub mod audit;
pub mod broker;
pub mod config;
pub mod ingest;
pub mod mqtt;
pub mod pki;
pub mod public;
pub mod records;

pub use config::Config;

use thiserror::Error;
use tokio::sync::watch;

#[derive(Debug, Error)]
pub enum ServerError {
    #[error(transparent)]
    Records(#[from] records::RecordsError),
    #[error(transparent)]
    Mqtt(#[from] mqtt::MqttError),
    #[error("HTTP listener on {addr}: {reason}")]
    Http { addr: String, reason: String },
}

/// Runs the server until `shutdown` turns true.
pub async fn run(config: Config, shutdown: watch::Receiver<bool>) -> Result<(), ServerError> {
    let db = records::Records::open(&config.database_url()).await?;
    let listener = tokio::net::TcpListener::bind(&config.http.listen).await.map_err(|e| {
        ServerError::Http { addr: config.http.listen.clone(), reason: e.to_string() }
    })?;
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(%addr, "public pages at http://{addr}/public/locations");
    let app = public::router(db.clone(), config.agency.name.clone());
    let mut http_stop = shutdown.clone();
    let http = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                while !*http_stop.borrow() {
                    if http_stop.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await;
    });
    let result = mqtt::run(config, db.clone(), shutdown).await;
    http.abort();
    db.close().await;
    result.map_err(ServerError::from)
}
