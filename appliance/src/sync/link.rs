//! The thin loop that connects the outbox state machine to the broker.
//!
//! Mutual TLS with rustls: the agency CA is the only trust root (pinned), and the trailer proves
//! itself with its own certificate, whose CN the broker uses as its MQTT user name. The session is
//! persistent (`clean_session = false`) and the broker publishes the retained "offline" status if
//! the trailer vanishes (last will).
use super::downlink;
use super::state::SyncState;
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
use trailer_wire::{AckRef, Message, ReadBatch, Status, Topic, UpKind};

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

/// Runs the sync link until `shutdown` turns true.
pub async fn run_link(
    cfg: SyncConfig,
    trailer: String,
    store: Store,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
    health: Arc<HealthState>,
    remote: downlink::Remote,
) -> Result<(), LinkError> {
    let tls = client_tls(&cfg.ca_file, &cfg.cert_file, &cfg.key_file)?;
    let mut opts = MqttOptions::new(trailer.clone(), cfg.broker_host.clone(), cfg.broker_port);
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(tls))))
        .set_keep_alive(Duration::from_secs(cfg.keep_alive_s.max(5)))
        .set_clean_session(false)
        .set_max_packet_size(
            trailer_wire::codec::MAX_FRAME_BYTES + 1024,
            trailer_wire::codec::MAX_FRAME_BYTES + 1024,
        )
        .set_last_will(LastWill::new(
            Topic::status(&trailer),
            status_payload(&trailer, false, &store),
            QoS::AtLeastOnce,
            true,
        ));
    let (client, events) = AsyncClient::new(opts, 512);
    let mut poller = Poller::spawn(events, 64);
    let mut state = SyncState::new(cfg.limits());
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let ack_topic = Topic::down_ack(&trailer);
    let cmd_topic = Topic::down_cmd(&trailer);
    let health_every = Duration::from_secs(cfg.health_interval_s.max(1));
    let mut reported = u64::MAX;
    let mut last_report = std::time::Instant::now();
    // The broker refuses the downlink subscription of a trailer it does not know (not enrolled
    // yet, or revoked): asked again every few seconds, said in the log.
    let mut subscribe_again: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
            event = poller.next() => match event.unwrap_or(Err(rumqttc::ConnectionError::RequestsDone)) {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!(trailer, "connected to the agency broker");
                    state.on_connected(now_ms());
                    publish_health(&client, &store, &health, &trailer);
                    reported = health.generation();
                    last_report = std::time::Instant::now();
                    let _ = client.try_subscribe(format!("trailer/{trailer}/down/#"), QoS::AtLeastOnce);
                    pump(&client, &store, &mut state, &trailer, &cfg);
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    if ack.return_codes.iter().all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_))) {
                        subscribe_again = None;
                        health.link_connected.store(true, Ordering::Relaxed);
                        // Online once the broker lets it hear the server: the status tells the
                        // server which store it runs on.
                        let _ = client.try_publish(Topic::status(&trailer), QoS::AtLeastOnce, true, status_payload(&trailer, true, &store));
                    } else {
                        tracing::warn!(trailer, "the broker refused trailer/{trailer}/down/#: is this trailer enrolled, and its certificate current? asking again");
                        subscribe_again = Some(std::time::Instant::now() + Duration::from_secs(3));
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if p.topic == ack_topic {
                        match trailer_wire::decode(&p.payload) {
                            Ok(Message::Ack(ack)) => {
                                let done = state.on_ack(&ack.refs, now_ms());
                                if let Err(e) = store.ack(&done) {
                                    tracing::error!(error = %e, "cannot record acknowledgements");
                                }
                                pump(&client, &store, &mut state, &trailer, &cfg);
                            }
                            Ok(other) => tracing::warn!(kind = ?std::mem::discriminant(&other), "unexpected message on the ack topic"),
                            Err(e) => tracing::warn!(error = %e, "corrupt acknowledgement ignored"),
                        }
                    } else if p.topic == cmd_topic {
                        match trailer_wire::decode(&p.payload) {
                            Ok(Message::Downlink(d)) => match downlink::apply(&store, &trailer, &d, &remote) {
                                Ok((answer, follow)) => {
                                    tracing::info!(downlink = answer.downlink_id, applied = answer.applied,
                                        result = answer.reason.as_deref().unwrap_or(""), "downlink from the server");
                                    if follow == downlink::Follow::SendHealth {
                                        publish_health(&client, &store, &health, &trailer);
                                    }
                                    pump(&client, &store, &mut state, &trailer, &cfg);
                                    if follow == downlink::Follow::Restart
                                        && let Some(restart) = &remote.restart
                                    {
                                        tracing::warn!("configuration changed by the server: restarting to apply it");
                                        restart.notify_one();
                                    }
                                }
                                // Not answered: the server sends it again.
                                Err(e) => tracing::error!(error = %e, "cannot apply a downlink"),
                            },
                            Ok(_) => tracing::warn!("unexpected message on the command topic"),
                            Err(e) => tracing::warn!(error = %e, "corrupt downlink ignored"),
                        }
                    } else {
                        tracing::warn!(topic = %p.topic, "message on an unknown topic ignored");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if state.connected() {
                        tracing::warn!(error = %e, "link to the agency broker lost");
                    } else {
                        tracing::warn!(error = %e, broker = %cfg.broker_host, port = cfg.broker_port, "cannot connect to the agency broker");
                    }
                    let backoff = state.on_disconnected();
                    health.link_connected.store(false, Ordering::Relaxed);
                    // Jitter: between the backoff and half as much again, so a fleet coming back
                    // after an outage does not reconnect in step.
                    let jitter = rand::random::<u64>() % (backoff / 2 + 1);
                    poller.resume_after(Duration::from_millis(backoff + jitter)).await;
                }
            },
            _ = wake.notified() => pump(&client, &store, &mut state, &trailer, &cfg),
            _ = tick.tick() => {
                if state.connected() && subscribe_again.is_some_and(|at| std::time::Instant::now() >= at) {
                    subscribe_again = Some(std::time::Instant::now() + Duration::from_secs(3));
                    let _ = client.try_subscribe(format!("trailer/{trailer}/down/#"), QoS::AtLeastOnce);
                }
                if state.connected() && (health.generation() != reported || last_report.elapsed() >= health_every) {
                    publish_health(&client, &store, &health, &trailer);
                    reported = health.generation();
                    last_report = std::time::Instant::now();
                }
                let expired = state.expire(now_ms());
                if expired > 0 {
                    tracing::debug!(expired, "acknowledgements timed out; sending again");
                }
                pump(&client, &store, &mut state, &trailer, &cfg);
            }
        }
    }
    if state.connected() {
        let _ = client.try_publish(
            Topic::status(&trailer),
            QoS::AtLeastOnce,
            true,
            status_payload(&trailer, false, &store),
        );
        // Let the event loop flush the last publish and the disconnect.
        poller.disconnect(&client, Duration::from_secs(2)).await;
    }
    Ok(())
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
