//! The server's broker connection.
//!
//! Each instance joins the shared subscription `$share/ingest/trailer/+/up/+`, so the broker
//! splits trailers' messages between instances. For each message: validate, apply in one
//! transaction, then publish the end-to-end ack to the trailer and only then acknowledge the
//! MQTT delivery (manual acks): a crash before the commit leaves the message with the broker.
use crate::config::Config;
use crate::ingest;
use crate::records::Records;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;
use trailer_wire::{Ack, Message, Topic};

#[derive(Debug, Error)]
pub enum MqttError {
    #[error("cannot read {what} {path}: {reason}")]
    Credentials { what: &'static str, path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Tls(String),
}

fn certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, MqttError> {
    let err =
        |reason: String| MqttError::Credentials { what, path: path.display().to_string(), reason };
    let v: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if v.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(v)
}

/// Mutual-TLS client configuration with the agency CA pinned.
pub fn tls_config(ca: &Path, cert: &Path, key: &Path) -> Result<rustls::ClientConfig, MqttError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca, "CA certificate")? {
        roots.add(c).map_err(|e| MqttError::Tls(e.to_string()))?;
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| MqttError::Credentials {
        what: "private key",
        path: key.display().to_string(),
        reason: e.to_string(),
    })?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| MqttError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs(cert, "client certificate")?, key)
        .map_err(|e| MqttError::Tls(e.to_string()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub async fn run(
    config: Config,
    records: Records,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), MqttError> {
    let b = &config.broker;
    let tls = tls_config(&b.ca_file, &b.cert_file, &b.key_file)?;
    let mut opts =
        MqttOptions::new(format!("sync-server-{}", config.server.instance), b.host.clone(), b.port);
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(tls))))
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(
            trailer_wire::codec::MAX_FRAME_BYTES + 1024,
            trailer_wire::codec::MAX_FRAME_BYTES + 1024,
        );
    let (client, mut events) = AsyncClient::new(opts, 1024);
    let mut backoff = Duration::from_millis(250);
    loop {
        tokio::select! {
            _ = shutdown.changed() => if *shutdown.borrow() { break },
            ev = events.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!(host = %b.host, port = b.port, "connected to the broker");
                    backoff = Duration::from_millis(250);
                    let _ = client.try_subscribe(Topic::ingest_filter(), QoS::AtLeastOnce);
                    let _ = client.try_subscribe(Topic::status_filter(), QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    tracing::info!("subscribed to trailer uplinks");
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    handle(&client, &records, &p).await;
                    if let Err(e) = client.ack(&p).await {
                        tracing::warn!(error = %e, "cannot acknowledge delivery");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "broker connection failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => if *shutdown.borrow() { break },
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
    let _ = client.try_disconnect();
    Ok(())
}

async fn handle(client: &AsyncClient, records: &Records, p: &rumqttc::Publish) {
    let now = now_ms();
    let accepted = match ingest::validate(&p.topic, &p.payload) {
        Ok(a) => a,
        Err(refused) => {
            tracing::warn!(topic = %p.topic, bytes = p.payload.len(), reason = %refused.0, "message refused; kept as a dead letter");
            if let Err(e) = records.dead_letter(&p.topic, &refused.0, &p.payload, now).await {
                tracing::error!(error = %e, "cannot store a dead letter");
            }
            return;
        }
    };
    // Commit, then ack. A database error leaves the trailer without an ack: it will resend.
    let mut attempt = 0;
    let refs = loop {
        match ingest::apply(records, &accepted, now).await {
            Ok(refs) => break refs,
            Err(e) if attempt < 3 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "cannot store a message; retrying");
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, trailer = %accepted.trailer, "cannot store a message; the trailer will resend it");
                return;
            }
        }
    };
    if refs.is_empty() {
        return;
    }
    match trailer_wire::encode(&Message::Ack(Ack { refs })) {
        Ok(bytes) => {
            if let Err(e) = client
                .publish(Topic::down_ack(&accepted.trailer), QoS::AtLeastOnce, false, bytes)
                .await
            {
                tracing::warn!(error = %e, "cannot publish an ack; the trailer will resend");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot encode an ack"),
    }
}
