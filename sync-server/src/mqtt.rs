//! The server's broker connection.
//!
//! Each instance joins the shared subscription `$share/ingest/trailer/+/up/+`, so the broker
//! splits trailers' messages between instances. For each message: validate, apply in one
//! transaction, then publish the end-to-end ack to the trailer and only then acknowledge the
//! MQTT delivery (manual acks). A crash before the commit loses nothing: the trailer keeps every
//! item until its end-to-end ack and sends it again.
use crate::config::Config;
use crate::ingest;
use crate::records::Records;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS, TlsConfiguration, Transport};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use trailer_wire::client::Poller;
use trailer_wire::{Ack, AckRef, Message, Topic};

pub use trailer_wire::client::ClientError as MqttError;

/// Mutual-TLS client configuration with the agency CA pinned.
pub fn tls_config(ca: &Path, cert: &Path, key: &Path) -> Result<rustls::ClientConfig, MqttError> {
    trailer_wire::client::tls_config(ca, cert, key)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Messages committed together at most (the broker's in-flight window bounds it too).
const MAX_BATCH: usize = 500;

pub async fn run(
    config: Config,
    records: Records,
    live_figures: Arc<crate::monitor::Live>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), MqttError> {
    let b = &config.broker;
    let tls = tls_config(&b.ca_file, &b.cert_file, &b.key_file)?;
    let mut opts =
        MqttOptions::new(format!("sync-server-{}", config.server.instance), b.host.clone(), b.port);
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(tls))))
        .set_keep_alive(Duration::from_secs(30))
        // A clean session: an instance that leaves (or dies) must not keep a queue of its own.
        // Mosquitto goes on handing a shared subscription's messages to an offline member with
        // a persistent session, where they would wait until it came back. Whatever an instance
        // received and did not commit is sent again by its trailer (no end-to-end ack).
        .set_clean_session(true)
        .set_manual_acks(true)
        .set_max_packet_size(crate::broker::MAX_PACKET_BYTES, crate::broker::MAX_PACKET_BYTES);
    let (client, events) = AsyncClient::new(opts, 1024);
    let mut poller = Poller::spawn(events, 256);
    // The event loop only receives; a writer task commits what arrived meanwhile as one batch,
    // then acks. Both queues are bounded: when the writer is behind, the event loop waits, and
    // the broker holds the rest (it hands this client no more than its in-flight window).
    let (to_writer, from_loop) = mpsc::channel(2 * MAX_BATCH);
    crate::records::set_dead_letter_limit(config.limits.dead_letter_bytes);
    // A stored hit wakes the live topics at once: an operator sees it within a second or two,
    // not at the next round.
    let hits = Arc::new(tokio::sync::Notify::new());
    // Dispatch systems on the broker have a task of their own, woken by stored hits too.
    let dispatch_wake = Arc::new(tokio::sync::Notify::new());
    let writer = tokio::spawn(writer(
        client.clone(),
        records.clone(),
        config.clone(),
        from_loop,
        vec![hits.clone(), dispatch_wake.clone(), live_figures.hits_stored.clone()],
        live_figures.clone(),
    ));
    let dispatching = config.forward.iter().any(|t| !t.mqtt_client.is_empty());
    let (to_dispatch, dispatch_rx) = mpsc::channel(64);
    let dispatch = dispatching.then(|| {
        tokio::spawn(crate::forward::mqtt::task(
            client.clone(),
            records.clone(),
            config.clone(),
            dispatch_rx,
            dispatch_wake,
        ))
    });
    let dispatchers: Vec<String> = config
        .forward
        .iter()
        .filter(|t| !t.mqtt_client.is_empty())
        .map(|t| t.mqtt_client.clone())
        .collect();
    // Console requests have a task of their own: an operator's answer never waits for a batch.
    let (to_console, console_rx) = mpsc::channel(256);
    let mut admin = crate::broker::access::Admin::default();
    let mut resubscribe_at: Option<tokio::time::Instant> = None;
    let console =
        tokio::spawn(console_task(client.clone(), records.clone(), config.clone(), console_rx));
    let mut backoff =
        trailer_wire::backoff::Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    let mut connected = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut live = crate::console::live::Publisher::default();
    let mut ticks: u64 = 0;
    loop {
        live_figures.broker_loop_turns.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::select! {
            _ = shutdown.changed() => if *shutdown.borrow() { break },
            ev = poller.next() => match ev {
                None => break,
                Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                    tracing::info!(host = %b.host, port = b.port, "connected to the broker");
                    connected = true;
                    live_figures.broker_connected.store(true, std::sync::atomic::Ordering::Relaxed);
                    backoff.succeeded();
                    live.reset();
                    admin.on_connected();
                    subscribe(&client, dispatching);
                }
                Some(Ok(Event::Incoming(Packet::SubAck(ack)))) => {
                    if ack.return_codes.iter().all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_))) {
                        tracing::info!("subscribed to trailer uplinks");
                    } else {
                        // An instance whose certificate the broker does not know yet: another
                        // instance's access pass admits it within seconds.
                        tracing::warn!("the broker refused this instance's subscriptions: is its certificate one the PKI issued to a server? asking again");
                        resubscribe_at = Some(tokio::time::Instant::now() + Duration::from_secs(2));
                    }
                }
                Some(Ok(Event::Incoming(Packet::Publish(p)))) if p.topic == CONTROL_RESPONSE => {
                    for e in admin.on_response(&p.payload) {
                        tracing::error!(error = %e, "the broker refused an access change; retrying");
                    }
                }
                Some(Ok(Event::Incoming(Packet::Publish(p)))) if p.topic.starts_with("dispatch/") => {
                    if !dispatching {
                        let _ = client.ack(&p).await;
                    } else if to_dispatch.send(p).await.is_err() {
                        tracing::error!("the dispatch task stopped");
                        break;
                    }
                }
                Some(Ok(Event::Incoming(Packet::Publish(p)))) if p.topic.starts_with("console/") => {
                    if to_console.send(p).await.is_err() {
                        tracing::error!("the console task stopped");
                        break;
                    }
                }
                Some(Ok(Event::Incoming(Packet::Publish(p)))) => {
                    if p.retain && p.topic.contains("/up/") && !p.payload.is_empty() {
                        // Only statuses are retained: a trailer's retained uplink is cleared.
                        tracing::warn!(topic = %p.topic, "cleared a retained uplink (only statuses are retained)");
                        let _ = client.try_publish(p.topic.clone(), QoS::AtLeastOnce, true, Vec::new());
                    }
                    if p.payload.is_empty() {
                        // The clearing of a retained message, echoed back.
                        let _ = client.ack(&p).await;
                        continue;
                    }
                    if to_writer.send(p).await.is_err() {
                        tracing::error!("the ingest writer stopped");
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    connected = false;
                    live_figures.broker_connected.store(false, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(error = %e, "broker connection failed; retrying");
                    poller.resume_after(backoff.failed(0.0)).await;
                }
            },
            _ = hits.notified(), if connected => publish_live(&client, &records, &mut live).await,
            _ = tick.tick() => if connected {
                if resubscribe_at.is_some_and(|at| tokio::time::Instant::now() >= at) {
                    resubscribe_at = None;
                    subscribe(&client, dispatching);
                }
                send_downlinks(&client, &records).await;
                if ticks.is_multiple_of(ACCESS_EVERY_S) {
                    sync_access(&client, &records, &mut admin, &server_names(&config), &dispatchers).await;
                }
                ticks += 1;
                if ticks % LIVE_EVERY_S == 1 {
                    publish_live(&client, &records, &mut live).await;
                }
            }
        }
    }
    drop(to_writer);
    drop(to_console);
    drop(to_dispatch);
    if let Some(d) = dispatch {
        let _ = tokio::time::timeout(Duration::from_secs(10), d).await;
    }
    // What was received is committed and acknowledged before the connection closes.
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), console).await;
    poller.disconnect(&client, Duration::from_secs(2)).await;
    Ok(())
}

/// Every subscription of an instance, in one request (one answer says whether all were granted);
/// dispatch systems' answers when the server has any on the broker.
fn subscribe(client: &AsyncClient, dispatching: bool) {
    let mut filters = vec![
        CONTROL_RESPONSE.to_string(),
        Topic::ingest_filter(),
        Topic::status_filter().to_string(),
        CONSOLE_FILTER.to_string(),
    ];
    if dispatching {
        filters.push(crate::forward::mqtt::ACK_FILTER.to_string());
    }
    let filters = filters.into_iter().map(|t| rumqttc::SubscribeFilter::new(t, QoS::AtLeastOnce));
    let _ = client.try_subscribe_many(filters);
}

/// Operators' requests, shared between server instances: each is handled once.
const CONSOLE_FILTER: &str = "$share/console/console/+/req";

/// Answers console requests one by one: the user is the one the broker authenticated and bound
/// to the topic (`console/{user}/req`, by its ACL); the answer goes to `console/{user}/resp`
/// before the request's delivery is acknowledged.
async fn console_task(
    client: AsyncClient,
    records: Records,
    config: Config,
    mut rx: mpsc::Receiver<Publish>,
) {
    let mut limit =
        crate::limits::Buckets::new(config.limits.console_per_s, config.limits.console_burst);
    let mut minute = tokio::time::interval(Duration::from_secs(10));
    loop {
        let p = tokio::select! {
            p = rx.recv() => match p { Some(p) => p, None => break },
            _ = minute.tick() => {
                audit_rate_limited(&records, &mut limit).await;
                continue;
            }
        };
        let topic = p.topic.clone();
        let user = match topic.split('/').collect::<Vec<_>>()[..] {
            ["console", user, "req"] if trailer_wire::topic::valid_id(user) => user.to_string(),
            _ => {
                tracing::warn!(%topic, "console request on an unexpected topic; ignored");
                let _ = client.ack(&p).await;
                continue;
            }
        };
        let response = if limit.allow(&user, now_ms()) {
            crate::console::dispatch::handle(&records, &config, &user, &p.payload, now_ms()).await
        } else {
            let id = serde_json::from_slice::<serde_json::Value>(&p.payload)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
                .unwrap_or_default();
            let per_s = config.limits.console_per_s;
            crate::console::protocol::Response::error(
                &id,
                format!("too many requests: at most {per_s} a second; wait and ask again"),
            )
        };
        // An answer larger than the broker carries is paged, never sent whole.
        let page = serde_json::from_slice::<serde_json::Value>(&p.payload)
            .ok()
            .and_then(|v| v["page"].as_u64())
            .unwrap_or(0) as usize;
        let resp_topic = format!("console/{user}/resp");
        let room = crate::broker::MAX_PACKET_BYTES - resp_topic.len() - 64;
        let response = crate::console::protocol::fit(response, page, room);
        let body = serde_json::to_vec(&response).unwrap_or_default();
        if let Err(e) = client.publish(resp_topic, QoS::AtLeastOnce, false, body).await {
            tracing::error!(error = %e, "cannot answer a console request");
        }
        let _ = client.ack(&p).await;
    }
}

/// Counts the uplinks refused over their trailers' rates since the last count (for health).
async fn count_rate_limited(records: &Records, uplinks: &mut crate::limits::Buckets) {
    for (trailer, n) in uplinks.take_refused() {
        tracing::warn!(trailer, refused = n, "uplinks over the trailer's rate: not stored");
        if let Err(e) = records.count_rate_limited(&trailer, n).await {
            tracing::warn!(error = %e, "cannot count refused uplinks");
        }
    }
}

/// One audit entry per user for the requests refused over their rate in the last ten seconds.
async fn audit_rate_limited(records: &Records, limit: &mut crate::limits::Buckets) {
    for (user, n) in limit.take_refused() {
        let entry = crate::audit::Entry {
            at: now_ms(),
            actor: format!("console:{user}"),
            action: "console.rate_limited".into(),
            purpose: String::new(),
            case_number: String::new(),
            detail: format!("{n} requests refused over the user's rate in the last ten seconds"),
            result_count: 0,
        };
        if let Err(e) = records.audit(&entry).await {
            tracing::error!(error = %e, "cannot audit refused console requests");
        }
    }
}

/// How often the live console topics are brought up to date (seconds).
const LIVE_EVERY_S: u64 = 5;
/// How often the broker's clients are compared with the registry (seconds).
const ACCESS_EVERY_S: u64 = 2;

use crate::broker::access::{CONTROL_RESPONSE, CONTROL_TOPIC};

/// The server instances the broker should know: every server certificate the PKI issued and
/// did not revoke, and this instance's own.
fn server_names(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if !config.pki.dir.as_os_str().is_empty()
        && let Ok(issued) = crate::pki::issued(&config.pki.dir)
    {
        out.extend(
            issued
                .into_iter()
                .filter(|e| e.role == crate::pki::Role::Server && e.revoked.is_none())
                .map(|e| e.name),
        );
    }
    if let Ok(pem) = std::fs::read_to_string(&config.broker.cert_file)
        && let Ok((cn, _, _)) = crate::pki::describe(&pem)
    {
        out.push(cn);
    }
    out.sort();
    out.dedup();
    out
}

/// Brings the broker's clients in line with the registry (enrolled trailers, console users)
/// and the dispatch systems hits are published to.
async fn sync_access(
    client: &AsyncClient,
    records: &Records,
    admin: &mut crate::broker::access::Admin,
    servers: &[String],
    dispatchers: &[String],
) {
    use crate::broker::access::Kind;
    let mut desired = match records.broker_clients(servers).await {
        Ok(d) => d,
        Err(e) => return tracing::warn!(error = %e, "cannot read the registry for the broker"),
    };
    for d in dispatchers {
        let (kind, _) = desired.entry(d.clone()).or_insert((Kind::Dispatch, true));
        if *kind != Kind::Dispatch {
            tracing::error!(name = %d, "a dispatch system's name is a trailer's, user's or server's; not admitted as dispatch");
        }
    }
    if let Some(request) = admin.pass(desired) {
        if let Err(e) = client.publish(CONTROL_TOPIC, QoS::AtLeastOnce, false, request).await {
            tracing::warn!(error = %e, "cannot send the broker its clients");
            admin.on_connected();
        } else {
            tracing::info!("broker access brought in line with the registry");
        }
    }
}

/// Publishes what changed in the live console topics, retained.
async fn publish_live(
    client: &AsyncClient,
    records: &Records,
    live: &mut crate::console::live::Publisher,
) {
    let users = match records.users().await {
        Ok(u) => u.into_iter().map(|u| (u.name, u.active.then_some(u.role))).collect::<Vec<_>>(),
        Err(e) => return tracing::warn!(error = %e, "live console topics: no users"),
    };
    let snapshot = match crate::console::live::snapshot(records, now_ms()).await {
        Ok(s) => s,
        Err(e) => return tracing::warn!(error = %e, "live console topics: no snapshot"),
    };
    let now = now_ms();
    for (topic, payload) in live.plan(&users, &snapshot) {
        // Hits reach a person only through an audited delivery.
        if let Some(entry) = crate::console::live::delivery_entry(&topic, &payload, now)
            && let Err(e) = records.audit(&entry).await
        {
            tracing::warn!(error = %e, "cannot audit a delivery of alerts; not delivered");
            live.reset();
            return;
        }
        if let Err(e) = client.publish(topic, QoS::AtLeastOnce, true, payload).await {
            tracing::warn!(error = %e, "cannot publish a live console topic");
            live.reset();
            return;
        }
    }
}

/// Downlinks outstanding per trailer, and how long before an unanswered one is sent again.
const DOWNLINK_WINDOW: usize = 4;
const DOWNLINK_RESEND_MS: i64 = 60_000;

/// Publishes the downlinks that are due (QoS 1 to the trailer's persistent session: the broker
/// keeps them for a trailer that is offline).
async fn send_downlinks(client: &AsyncClient, records: &Records) {
    let now = now_ms();
    let due = match records.due_downlinks(now, DOWNLINK_RESEND_MS, DOWNLINK_WINDOW).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the downlink queue");
            return;
        }
    };
    for d in due {
        if client
            .try_publish(Topic::down_cmd(&d.trailer_id), QoS::AtLeastOnce, false, d.frame)
            .is_err()
        {
            break;
        }
        if let Err(e) = records.mark_downlink_sent(d.id, now).await {
            tracing::error!(error = %e, "cannot record a downlink as sent");
        }
    }
}

/// Commits what arrived as batches; after each commit publishes the end-to-end acks (one message
/// per trailer) and then acknowledges the MQTT deliveries.
async fn writer(
    client: AsyncClient,
    records: Records,
    config: Config,
    mut rx: mpsc::Receiver<Publish>,
    on_hits: Vec<Arc<tokio::sync::Notify>>,
    figures: Arc<crate::monitor::Live>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let limits = &config.limits;
    let mut uplinks = crate::limits::Buckets::new(limits.uplink_per_s, limits.uplink_burst);
    let mut count = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, MAX_BATCH) => if n == 0 { break },
            _ = count.tick() => {
                count_rate_limited(&records, &mut uplinks).await;
                continue;
            }
        }
        // Over its trailer's rate: acknowledged to the broker, neither stored nor acknowledged
        // end to end (a trailer that means well sends it again).
        let now = now_ms();
        let (within, over): (Vec<Publish>, Vec<Publish>) = batch.drain(..).partition(|p| {
            let who = p.topic.split('/').nth(1).unwrap_or_default();
            uplinks.allow(who, now)
        });
        batch = within;
        for p in &over {
            let _ = client.ack(p).await;
        }
        if batch.is_empty() {
            continue;
        }
        let acks = ingest_batch(&records, &config.pki, &batch).await;
        figures.ingested.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if batch.iter().any(|p| p.topic.ends_with("/up/alerts")) {
            on_hits.iter().for_each(|n| n.notify_one());
        }
        for (trailer, refs) in acks {
            match trailer_wire::encode(&Message::Ack(Ack { refs })) {
                Ok(bytes) => {
                    if let Err(e) = client
                        .publish(Topic::down_ack(&trailer), QoS::AtLeastOnce, false, bytes)
                        .await
                    {
                        tracing::warn!(error = %e, "cannot publish an ack; the trailer will resend");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot encode an ack"),
            }
        }
        for p in batch.drain(..) {
            if let Err(e) = client.ack(&p).await {
                tracing::warn!(error = %e, "cannot acknowledge delivery");
            }
        }
    }
}

/// Validates and stores a batch; returns the acks to publish, per trailer. Refused messages go to
/// the dead letters. A batch that fails as a whole is retried one message per transaction.
async fn ingest_batch(
    records: &Records,
    pki: &crate::config::PkiConfig,
    batch: &[Publish],
) -> Vec<(String, Vec<AckRef>)> {
    let now = now_ms();
    let mut accepted = Vec::with_capacity(batch.len());
    for p in batch {
        match ingest::validate(&p.topic, &p.payload) {
            Ok(ingest::Accepted { trailer, message: Message::CertRequest(req), .. }) => {
                match crate::renewal::renew(records, pki, &trailer, &req, now).await {
                    Ok(id) => {
                        tracing::info!(trailer = %trailer, downlink = id, "certificate renewed")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "certificate request refused");
                        if let Err(e) =
                            records.dead_letter(&p.topic, &e.to_string(), &p.payload, now).await
                        {
                            tracing::error!(error = %e, "cannot store a dead letter");
                        }
                    }
                }
            }
            Ok(a) => accepted.push(a),
            Err(refused) => {
                tracing::warn!(topic = %p.topic, bytes = p.payload.len(), reason = %refused.0, "message refused; kept as a dead letter");
                if let Err(e) = records.dead_letter(&p.topic, &refused.0, &p.payload, now).await {
                    tracing::error!(error = %e, "cannot store a dead letter");
                }
            }
        }
    }
    let results: Vec<Option<Vec<AckRef>>> = match ingest::apply_batch(records, &accepted, now).await
    {
        Ok(all) => all.into_iter().map(Some).collect(),
        Err(e) => {
            tracing::warn!(error = %e, messages = accepted.len(), "cannot store a batch; storing its messages one by one");
            let mut one_by_one = Vec::with_capacity(accepted.len());
            for a in &accepted {
                one_by_one.push(apply_one(records, a, now).await);
            }
            one_by_one
        }
    };
    let mut per_trailer: Vec<(String, Vec<AckRef>)> = Vec::new();
    for (a, refs) in accepted.iter().zip(results) {
        let Some(refs) = refs.filter(|r| !r.is_empty()) else { continue };
        match per_trailer.iter_mut().find(|(t, _)| *t == a.trailer) {
            Some((_, all)) => all.extend(refs),
            None => per_trailer.push((a.trailer.clone(), refs)),
        }
    }
    per_trailer
}

/// One message in its own transaction, with a few retries; `None` if it could not be stored
/// (no ack: the trailer sends it again).
async fn apply_one(records: &Records, a: &ingest::Accepted, now: i64) -> Option<Vec<AckRef>> {
    for attempt in 0..4u64 {
        let result = async {
            let mut tx = records.begin().await?;
            let ctx = ingest::Context::of(&mut tx, std::slice::from_ref(a)).await?;
            let refs = ingest::apply(&mut tx, records.rules(), a, &ctx, now).await?;
            tx.commit().await?;
            Ok::<_, crate::records::RecordsError>(refs)
        }
        .await;
        match result {
            Ok(refs) => return Some(refs),
            Err(e) => {
                tracing::warn!(error = %e, attempt, trailer = %a.trailer, "cannot store a message");
                tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
            }
        }
    }
    tracing::error!(trailer = %a.trailer, "giving up on a message; the trailer will resend it");
    None
}
