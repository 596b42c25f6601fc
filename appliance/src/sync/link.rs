//! The thin loop that connects the outbox state machine to the broker.
//!
//! Mutual TLS with rustls: the agency CA is the only trust root (pinned), and the trailer proves
//! itself with its own certificate, whose CN the broker uses as its MQTT user name. The session is
//! persistent (`clean_session = false`) and the broker publishes the retained "offline" status if
//! the trailer vanishes (last will).
use super::state::SyncState;
use super::{downlink, renew};
use crate::config::SyncConfig;
use crate::health::HealthState;
use crate::store::Store;
use rumqttc::{
    AsyncClient, Event, LastWill, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use trailer_wire::client::Poller;
use trailer_wire::{AckRef, CertRequest, Message, ReadBatch, Status, Topic, UpKind};

pub use trailer_wire::client::ClientError as LinkError;

/// A rustls client configuration: pinned CA, client certificate.
pub fn client_tls(ca: &Path, cert: &Path, key: &Path) -> Result<rustls::ClientConfig, LinkError> {
    trailer_wire::client::tls_config(ca, cert, key)
}

fn now_ms() -> i64 {
    crate::clock::Clock::now_ms(&crate::clock::SystemClock)
}

fn status_payload(trailer: &str, online: bool, store: &Store) -> Vec<u8> {
    trailer_wire::encode(&Message::Status(Status {
        trailer_id: trailer.into(),
        online,
        time: now_ms(),
        software_version: crate::VERSION.into(),
        store: store.info(),
    }))
    .unwrap_or_default()
}

/// How a session with the broker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Shutdown,
    /// The certificate was renewed: connect again with it.
    Renewed,
}

/// Runs the sync link until `shutdown` turns true: one session with the broker after another
/// (a renewed certificate needs a new TLS configuration, so a new connection).
pub async fn run_link(
    cfg: SyncConfig,
    trailer: String,
    store: Store,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
    health: Arc<HealthState>,
    mut remote: downlink::Remote,
) -> Result<(), LinkError> {
    let identity = renew::Identity {
        cert: cfg.cert_file.clone(),
        key: cfg.key_file.clone(),
        ca: cfg.ca_file.clone(),
        seal: Some(store.seal()),
    };
    remote.identity = Some(identity.clone());
    let mut renewal = Renewal { identity, asked: None, before_days: cfg.renew_before_days };
    loop {
        if let Err(e) = renewal.identity.recover() {
            tracing::error!(error = %e, "cannot finish installing a renewed certificate");
        }
        let tls = renewal.identity.tls()?;
        let mut s = Session::new(&cfg, &trailer, &store, &health, &remote, tls);
        match s.run(&wake, &mut shutdown, &mut renewal).await {
            Ended::Shutdown => return Ok(()),
            Ended::Renewed => {
                tracing::info!(trailer, "connecting again with the renewed certificate")
            }
        }
    }
}

/// When the trailer last asked for a new certificate (at most once an hour).
struct Renewal {
    identity: renew::Identity,
    asked: Option<std::time::Instant>,
    before_days: u32,
}

impl Renewal {
    /// The request to send, if the certificate is due and none was sent within the hour.
    fn request(&mut self, trailer: &str) -> Option<Vec<u8>> {
        if !self.identity.due(now_ms(), self.before_days)
            || self.asked.is_some_and(|t| t.elapsed() < Duration::from_secs(3600))
        {
            return None;
        }
        self.asked = Some(std::time::Instant::now());
        match self.identity.request(trailer) {
            Ok(csr_der) => {
                tracing::info!(
                    trailer,
                    "certificate expires soon: asking the agency for a new one"
                );
                let m = Message::CertRequest(CertRequest { trailer_id: trailer.into(), csr_der });
                trailer_wire::encode(&m).ok()
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot make a certificate request");
                None
            }
        }
    }
}

/// One connection to the broker and the state that lives as long as it.
struct Session<'a> {
    cfg: &'a SyncConfig,
    trailer: &'a str,
    store: &'a Store,
    health: &'a HealthState,
    remote: &'a downlink::Remote,
    client: AsyncClient,
    poller: Poller,
    state: SyncState,
    /// The health generation last published, and when.
    reported: u64,
    last_report: std::time::Instant,
    /// The broker refuses the downlink subscription of a trailer it does not know (not enrolled
    /// yet, or revoked): asked again every few seconds, said in the log.
    subscribe_again: Option<std::time::Instant>,
}

impl<'a> Session<'a> {
    fn new(
        cfg: &'a SyncConfig,
        trailer: &'a str,
        store: &'a Store,
        health: &'a HealthState,
        remote: &'a downlink::Remote,
        tls: rustls::ClientConfig,
    ) -> Session<'a> {
        let mut opts = MqttOptions::new(trailer, cfg.broker_host.clone(), cfg.broker_port);
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(tls))))
            .set_keep_alive(Duration::from_secs(cfg.keep_alive_s.max(5)))
            .set_clean_session(false)
            .set_max_packet_size(
                trailer_wire::codec::MAX_FRAME_BYTES + 1024,
                trailer_wire::codec::MAX_FRAME_BYTES + 1024,
            )
            .set_last_will(LastWill::new(
                Topic::status(trailer),
                status_payload(trailer, false, store),
                QoS::AtLeastOnce,
                true,
            ));
        let (client, events) = AsyncClient::new(opts, 512);
        Session {
            cfg,
            trailer,
            store,
            health,
            remote,
            client,
            poller: Poller::spawn(events, 64),
            state: SyncState::new(cfg.limits()),
            reported: u64::MAX,
            last_report: std::time::Instant::now(),
            subscribe_again: None,
        }
    }

    async fn run(
        &mut self,
        wake: &Notify,
        shutdown: &mut watch::Receiver<bool>,
        renewal: &mut Renewal,
    ) -> Ended {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let ended = loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        break Ended::Shutdown;
                    }
                }
                event = self.poller.next() => {
                    let event = event.unwrap_or(Err(rumqttc::ConnectionError::RequestsDone));
                    if let Some(ended) = self.on_event(event, renewal).await {
                        break ended;
                    }
                }
                _ = wake.notified() => self.pump(),
                _ = tick.tick() => self.on_tick(renewal),
            }
        };
        if self.state.connected() {
            if ended == Ended::Shutdown {
                let offline = status_payload(self.trailer, false, self.store);
                let _ = self.client.try_publish(
                    Topic::status(self.trailer),
                    QoS::AtLeastOnce,
                    true,
                    offline,
                );
            }
            // Let the event loop flush the last publish and the disconnect.
            self.poller.disconnect(&self.client, Duration::from_secs(2)).await;
        }
        ended
    }

    async fn on_event(
        &mut self,
        event: Result<Event, rumqttc::ConnectionError>,
        renewal: &mut Renewal,
    ) -> Option<Ended> {
        let trailer = self.trailer;
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                tracing::info!(trailer, "connected to the agency broker");
                self.state.on_connected(now_ms());
                self.publish_health();
                let _ = self
                    .client
                    .try_subscribe(format!("trailer/{trailer}/down/#"), QoS::AtLeastOnce);
                self.pump();
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_)))
                {
                    self.subscribe_again = None;
                    self.health.link_connected.store(true, Ordering::Relaxed);
                    // Online once the broker lets it hear the server: the status tells the
                    // server which store it runs on.
                    let online = status_payload(trailer, true, self.store);
                    let _ = self.client.try_publish(
                        Topic::status(trailer),
                        QoS::AtLeastOnce,
                        true,
                        online,
                    );
                    if let Some(request) = renewal.request(trailer) {
                        let topic = Topic::up(trailer, UpKind::CertRequest);
                        let _ = self.client.try_publish(topic, QoS::AtLeastOnce, false, request);
                    }
                } else {
                    tracing::warn!(
                        trailer,
                        "the broker refused trailer/{trailer}/down/#: is this trailer enrolled, and its certificate current? asking again"
                    );
                    self.subscribe_again = Some(std::time::Instant::now() + Duration::from_secs(3));
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => return self.on_publish(&p),
            Ok(_) => {}
            Err(e) => {
                if self.state.connected() {
                    tracing::warn!(error = %e, "link to the agency broker lost");
                } else {
                    tracing::warn!(error = %e, broker = %self.cfg.broker_host, port = self.cfg.broker_port, "cannot connect to the agency broker");
                }
                let wait = self.state.on_disconnected(rand::random::<f64>());
                self.health.link_connected.store(false, Ordering::Relaxed);
                self.poller.resume_after(Duration::from_millis(wait)).await;
            }
        }
        None
    }

    /// An acknowledgement or a downlink from the server.
    fn on_publish(&mut self, p: &rumqttc::Publish) -> Option<Ended> {
        let trailer = self.trailer;
        if p.topic == Topic::down_ack(trailer) {
            match trailer_wire::decode(&p.payload) {
                Ok(Message::Ack(ack)) => {
                    let done = self.state.on_ack(&ack.refs, now_ms());
                    if let Err(e) = self.store.ack(&done) {
                        tracing::error!(error = %e, "cannot record acknowledgements");
                    }
                    self.pump();
                }
                Ok(other) => {
                    tracing::warn!(kind = ?std::mem::discriminant(&other), "unexpected message on the ack topic")
                }
                Err(e) => tracing::warn!(error = %e, "corrupt acknowledgement ignored"),
            }
        } else if p.topic == Topic::down_cmd(trailer) {
            match trailer_wire::decode(&p.payload) {
                Ok(Message::Downlink(d)) => {
                    match downlink::apply(self.store, trailer, &d, self.remote) {
                        Ok((answer, follow)) => {
                            tracing::info!(
                                downlink = answer.downlink_id,
                                applied = answer.applied,
                                result = answer.reason.as_deref().unwrap_or(""),
                                "downlink from the server"
                            );
                            if follow == downlink::Follow::SendHealth {
                                self.publish_health();
                            }
                            self.pump();
                            match follow {
                                downlink::Follow::Restart => {
                                    if let Some(restart) = &self.remote.restart {
                                        tracing::warn!(
                                            "configuration changed by the server: restarting to apply it"
                                        );
                                        restart.notify_one();
                                    }
                                }
                                downlink::Follow::Reconnect => return Some(Ended::Renewed),
                                _ => {}
                            }
                        }
                        // Not answered: the server sends it again.
                        Err(e) => tracing::error!(error = %e, "cannot apply a downlink"),
                    }
                }
                Ok(_) => tracing::warn!("unexpected message on the command topic"),
                Err(e) => tracing::warn!(error = %e, "corrupt downlink ignored"),
            }
        } else {
            tracing::warn!(topic = %p.topic, "message on an unknown topic ignored");
        }
        None
    }

    fn on_tick(&mut self, renewal: &mut Renewal) {
        let connected = self.state.connected();
        if connected && self.subscribe_again.is_some_and(|at| std::time::Instant::now() >= at) {
            self.subscribe_again = Some(std::time::Instant::now() + Duration::from_secs(3));
            let _ = self
                .client
                .try_subscribe(format!("trailer/{}/down/#", self.trailer), QoS::AtLeastOnce);
        }
        let every = Duration::from_secs(self.cfg.health_interval_s.max(1));
        if connected
            && (self.health.generation() != self.reported || self.last_report.elapsed() >= every)
        {
            self.publish_health();
            // A trailer that stays connected for weeks asks for its new certificate too.
            if self.subscribe_again.is_none()
                && let Some(request) = renewal.request(self.trailer)
            {
                let topic = Topic::up(self.trailer, UpKind::CertRequest);
                let _ = self.client.try_publish(topic, QoS::AtLeastOnce, false, request);
            }
        }
        let expired = self.state.expire(now_ms());
        if expired > 0 {
            tracing::debug!(expired, "acknowledgements timed out; sending again");
        }
        self.pump();
    }

    fn publish_health(&mut self) {
        publish_health(&self.client, self.store, self.health, self.trailer);
        self.reported = self.health.generation();
        self.last_report = std::time::Instant::now();
    }

    fn pump(&mut self) {
        pump(&self.client, self.store, &mut self.state, self.trailer, self.cfg);
    }
}

/// Health is not queued: only the latest matters, and it is sent whenever the link is up.
fn publish_health(client: &AsyncClient, store: &Store, health: &HealthState, trailer: &str) {
    let msg = Message::Health(health.snapshot(trailer, store, now_ms()));
    match trailer_wire::encode(&msg) {
        Ok(bytes) => {
            let _ = client.try_publish(
                Topic::up(trailer, UpKind::Health),
                QoS::AtLeastOnce,
                false,
                bytes,
            );
        }
        Err(e) => tracing::warn!(error = %e, "cannot encode health"),
    }
}

/// Sends what the state machine lets through, in the outbox's order (alerts first).
fn pump(
    client: &AsyncClient,
    store: &Store,
    state: &mut SyncState,
    trailer: &str,
    cfg: &SyncConfig,
) {
    if !state.connected() {
        return;
    }
    let pending = match store.pending(cfg.max_in_flight + 16, &|r| state.is_in_flight(r)) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the outbox");
            return;
        }
    };
    let mut i = 0;
    while i < pending.len() {
        if !matches!(pending[i], AckRef::Alert(_)) && !state.has_room() {
            break;
        }
        // Consecutive reads travel as one batch.
        let mut group = vec![pending[i]];
        if matches!(pending[i], AckRef::Read(_)) {
            while i + group.len() < pending.len()
                && group.len() < cfg.batch_reads
                && matches!(pending[i + group.len()], AckRef::Read(_))
            {
                group.push(pending[i + group.len()]);
            }
        }
        i += group.len();
        let (msg, kind) = match build(store, trailer, &group) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(error = %e, "cannot load an outbox item");
                continue;
            }
        };
        let bytes = match trailer_wire::encode(&msg) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an outbox item");
                continue;
            }
        };
        if !state.may_send(&group[0], bytes.len(), now_ms(), store.is_requested(&group[0])) {
            break;
        }
        let len = bytes.len();
        if client.try_publish(Topic::up(trailer, kind), QoS::AtLeastOnce, false, bytes).is_err() {
            // The client's queue is full: the rest waits for the next pump.
            break;
        }
        state.on_sent(&group, len, now_ms());
    }
}

fn build(
    store: &Store,
    trailer: &str,
    group: &[AckRef],
) -> Result<Option<(Message, UpKind)>, crate::store::StoreError> {
    if group.len() > 1 || matches!(group.first(), Some(AckRef::Read(_))) {
        let mut reads = Vec::with_capacity(group.len());
        for r in group {
            if let AckRef::Read(id) = r {
                match store.read(*id)? {
                    Some(s) => reads.push(s.meta),
                    None => {
                        store.message_for(trailer, r)?;
                    }
                }
            }
        }
        if reads.is_empty() {
            return Ok(None);
        }
        return Ok(Some((
            Message::ReadBatch(ReadBatch { trailer_id: trailer.into(), reads }),
            UpKind::Reads,
        )));
    }
    let Some(r) = group.first() else { return Ok(None) };
    let kind = match r {
        AckRef::Picture(..) => UpKind::Pictures,
        AckRef::Alert(_) => UpKind::Alerts,
        AckRef::ActiveUse(_) => UpKind::Usage,
        AckRef::Deployment(_) => UpKind::Deployments,
        AckRef::Downlink(_) => UpKind::DownlinkAcks,
        AckRef::Read(_) => UpKind::Reads,
    };
    Ok(store.message_for(trailer, r)?.map(|m| (m, kind)))
}
