//! The MQTT client plumbing both ends share (feature `client`): mutual TLS with the agency CA as
//! the only trust root, and rumqttc's event loop polled in a task of its own.
//!
//! Why a task: `EventLoop::poll` is not safe to drop half-way. As one branch of a `select!` that
//! loses to a timer, it abandons the connection attempt in progress; over a link with a few
//! hundred milliseconds of latency every TLS handshake was abandoned that way and the trailer
//! never connected. [`Poller::next`] only receives from a channel, which any `select!` may drop.
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::mpsc;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot read {what} {path}: {reason}")]
    Credentials { what: &'static str, path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Tls(String),
}

fn load_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let err = |reason: String| ClientError::Credentials { what, path: path.to_path_buf(), reason };
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// A rustls client configuration: the agency CA pinned (no system roots), and this client's
/// certificate, whose CN the broker takes as its user name.
pub fn tls_config(ca: &Path, cert: &Path, key: &Path) -> Result<rustls::ClientConfig, ClientError> {
    let pem = std::fs::read(key).map_err(|e| ClientError::Credentials {
        what: "private key",
        path: key.to_path_buf(),
        reason: e.to_string(),
    })?;
    tls_config_with_key(ca, cert, key, &pem)
}

/// [`tls_config`] with the key's PEM given (read from `key_path`, e.g. opened from an encrypted
/// file, which the path names in errors).
pub fn tls_config_with_key(
    ca: &Path,
    cert: &Path,
    key_path: &Path,
    key_pem: &[u8],
) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in load_certs(ca, "CA certificate")? {
        roots
            .add(c)
            .map_err(|e| ClientError::Tls(format!("CA certificate {}: {e}", ca.display())))?;
    }
    let chain = load_certs(cert, "client certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| ClientError::Credentials {
        what: "private key",
        path: key_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| ClientError::Tls(format!("client certificate and key do not match: {e}")))
}

type Polled = Result<Event, ConnectionError>;

/// rumqttc's event loop, polled in its own task; stops the task when dropped.
#[derive(Debug)]
pub struct Poller {
    events: mpsc::Receiver<Polled>,
    resume: mpsc::Sender<Duration>,
    task: tokio::task::JoinHandle<()>,
}

impl Poller {
    /// Starts polling `events` (with `TCP_NODELAY`: small acks go out at once, not after
    /// Nagle's wait for a delayed TCP ack, about 40 ms a round trip). After an error the task
    /// waits for [`Poller::resume_after`] before its next poll, which reconnects.
    pub fn spawn(mut events: EventLoop, queue: usize) -> Poller {
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        events.set_network_options(net);
        let (event_tx, event_rx) = mpsc::channel::<Polled>(queue.max(1));
        let (resume_tx, mut resume_rx) = mpsc::channel::<Duration>(1);
        let task = tokio::spawn(async move {
            loop {
                let event = events.poll().await;
                let failed = event.is_err();
                if event_tx.send(event).await.is_err() {
                    break;
                }
                if failed {
                    match resume_rx.recv().await {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => break,
                    }
                }
            }
        });
        Poller { events: event_rx, resume: resume_tx, task }
    }

    /// The next event; `None` once the task has ended. Safe to drop half-way.
    pub async fn next(&mut self) -> Option<Polled> {
        self.events.recv().await
    }

    /// After an error: the next connection attempt comes after `wait`.
    pub async fn resume_after(&self, wait: Duration) {
        let _ = self.resume.send(wait).await;
    }

    /// Disconnects and lets the event loop send what was queued before it, for up to `within`.
    pub async fn disconnect(&mut self, client: &AsyncClient, within: Duration) {
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(within, async {
            while let Some(Ok(ev)) = self.events.recv().await {
                if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.task.abort();
    }
}
