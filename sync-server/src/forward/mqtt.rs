//! Hits to a dispatch system on the agency's own broker, acknowledged end to end.
//!
//! The dispatch system connects with a certificate of the agency's PKI (role `dispatch`, CN
//! `D`, named by `[[forward]] mqtt_client`); the broker lets it subscribe to
//! `dispatch/D/hits` and publish to `dispatch/D/ack` only ([`crate::broker::access`]).
//!
//! - Each hit due to the target ([`super::due`]) is published to `dispatch/D/hits` as the same
//!   JSON a webhook gets (QoS 1, not retained). Its audit entry (`alerts.forwarded`) is
//!   committed first, as for the live console: a hit reaches a person only through an audited
//!   delivery, so a lost acknowledgement can never leave an unrecorded one.
//! - The dispatch system answers `{"trailer": ..., "alert_id": ...}` on `dispatch/D/ack`. Only
//!   then is the hit marked delivered (`alert_forwards`) and no longer sent. Until then it is
//!   published again every `resend_s` while it is due (receivers key hits by trailer and alert
//!   id). An answer for a hit not due to it (another category, already answered, unknown) is
//!   ignored.
//!
//! [`Outbox`] is the protocol's state, without I/O; [`task`] runs it on the server's broker
//! connection (a second connection with the server's certificate would take the first one's
//! client id).
use super::ForwardError;
use crate::config::{Config, ForwardConfig};
use crate::records::{AlertView, Records};
use rumqttc::{AsyncClient, Publish, QoS};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// What the server subscribes to: every dispatch system's acknowledgements.
pub const ACK_FILTER: &str = "dispatch/+/ack";

/// Where the dispatch system `client` takes its hits.
pub fn hits_topic(client: &str) -> String {
    format!("dispatch/{client}/hits")
}

/// Where the dispatch system `client` acknowledges them.
pub fn ack_topic(client: &str) -> String {
    format!("dispatch/{client}/ack")
}

/// The largest acknowledgement read (a trailer id and a number).
const MAX_ACK_BYTES: usize = 1024;

/// A dispatch system's answer: it has the hit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct DispatchAck {
    pub trailer: String,
    pub alert_id: u64,
}

/// Reads an acknowledgement; an error says what is wrong with it, for the log.
pub fn parse_ack(payload: &[u8]) -> Result<DispatchAck, String> {
    if payload.len() > MAX_ACK_BYTES {
        return Err(format!("{} bytes, more than an acknowledgement has", payload.len()));
    }
    let ack: DispatchAck = serde_json::from_slice(payload)
        .map_err(|e| format!("not {{\"trailer\": ..., \"alert_id\": ...}}: {e}"))?;
    if !trailer_wire::topic::valid_id(&ack.trailer) {
        return Err("trailer: not a trailer id".into());
    }
    Ok(ack)
}

/// The target whose acknowledgement topic `topic` is.
pub fn target_of<'a>(config: &'a Config, topic: &str) -> Option<&'a ForwardConfig> {
    let client = topic.strip_prefix("dispatch/")?.strip_suffix("/ack")?;
    config.forward.iter().find(|t| !t.mqtt_client.is_empty() && t.mqtt_client == client)
}

/// What to do with a due hit now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Not yet sent by this process: audit it, then publish it.
    First,
    /// Sent `resend_s` ago and not answered: publish it again.
    Again,
    /// Sent lately: wait for the answer.
    Wait,
}

type Key = (String, String, u64);

/// The hits each target was sent by this process and not yet answered: whether the sending was
/// audited, and when it was last published.
#[derive(Debug, Default)]
pub struct Outbox {
    sent: HashMap<Key, Option<i64>>,
}

impl Outbox {
    fn key(target: &str, trailer: &str, alert_id: u64) -> Key {
        (target.to_string(), trailer.to_string(), alert_id)
    }

    /// What to do with the hit `a`, due to `target`, at `now`.
    pub fn step(&self, target: &ForwardConfig, a: &AlertView, now: i64) -> Step {
        match self.sent.get(&Self::key(&target.name, &a.trailer_id, a.alert_id)) {
            None => Step::First,
            Some(None) => Step::Again,
            Some(Some(at)) if now - at >= (target.resend_s as i64).saturating_mul(1000) => {
                Step::Again
            }
            Some(Some(_)) => Step::Wait,
        }
    }

    /// Its sending is in the audit trail (it has not been published yet).
    pub fn audited(&mut self, target: &str, a: &AlertView) {
        self.sent.entry(Self::key(target, &a.trailer_id, a.alert_id)).or_insert(None);
    }

    /// It was handed to the broker connection at `now`.
    pub fn published(&mut self, target: &str, a: &AlertView, now: i64) {
        self.sent.insert(Self::key(target, &a.trailer_id, a.alert_id), Some(now));
    }

    /// Keeps only `target`'s hits that are still due (the rest were answered or aged out).
    pub fn keep_due(&mut self, target: &str, due: &[AlertView]) {
        self.sent.retain(|(t, trailer, id), _| {
            t != target || due.iter().any(|a| a.trailer_id == *trailer && a.alert_id == *id)
        });
    }

    /// The dispatch system answered.
    pub fn answered(&mut self, target: &str, trailer: &str, alert_id: u64) {
        self.sent.remove(&Self::key(target, trailer, alert_id));
    }
}

/// Publishes what is due to each broker target. Returns how many hits were published.
pub async fn publish_due(
    client: &AsyncClient,
    records: &Records,
    config: &Config,
    outbox: &mut Outbox,
    now: i64,
) -> Result<usize, ForwardError> {
    let mut published = 0;
    for target in config.forward.iter().filter(|t| !t.mqtt_client.is_empty()) {
        let due = super::due(records, target, now).await?;
        outbox.keep_due(&target.name, &due);
        for a in &due {
            match outbox.step(target, a, now) {
                Step::Wait => continue,
                Step::First => {
                    let mut s = records.session().await?;
                    s.audit(&super::entry(target, a, now)).await?;
                    s.commit().await?;
                    outbox.audited(&target.name, a);
                }
                Step::Again => {}
            }
            let body = serde_json::to_vec(&super::payload(&config.agency.name, a))
                .map_err(|e| ForwardError::Delivery(e.to_string()))?;
            client
                .try_publish(hits_topic(&target.mqtt_client), QoS::AtLeastOnce, false, body)
                .map_err(|e| ForwardError::Delivery(format!("broker connection: {e}")))?;
            outbox.published(&target.name, a, now);
            published += 1;
        }
    }
    Ok(published)
}

/// A dispatch system's answer on `topic`: the hit it names is marked delivered. Returns the
/// alert id, or `None` when the answer names no hit awaiting it.
pub async fn on_ack(
    records: &Records,
    config: &Config,
    outbox: &mut Outbox,
    topic: &str,
    payload: &[u8],
    now: i64,
) -> Result<Option<u64>, ForwardError> {
    let Some(target) = target_of(config, topic) else {
        return Ok(None);
    };
    let ack = parse_ack(payload).map_err(ForwardError::Delivery)?;
    // However old: a hit that was sent and is answered late is still recorded as delivered.
    let Some(a) = records.alert_awaiting(&target.name, &ack.trailer, ack.alert_id).await? else {
        return Ok(None);
    };
    if !super::takes(target, &a) {
        return Ok(None);
    }
    let mut s = records.session().await?;
    s.alert_forwarded(&target.name, &a.trailer_id, a.alert_id, now).await?;
    s.commit().await?;
    outbox.answered(&target.name, &a.trailer_id, a.alert_id);
    Ok(Some(a.alert_id))
}

/// Runs the broker targets until `acks` closes: answers as they come (each acknowledged to
/// the broker once handled), hits when the writer stores some (`wake`) and every second.
pub async fn task(
    client: AsyncClient,
    records: Records,
    config: Config,
    mut acks: mpsc::Receiver<Publish>,
    wake: Arc<Notify>,
) {
    let mut outbox = Outbox::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            p = acks.recv() => {
                let Some(p) = p else { return };
                match on_ack(&records, &config, &mut outbox, &p.topic, &p.payload, crate::now_ms()).await {
                    Ok(Some(id)) => tracing::info!(topic = %p.topic, alert_id = id, "dispatch has the hit"),
                    Ok(None) => tracing::warn!(topic = %p.topic, "an answer from dispatch for no hit awaiting it; ignored"),
                    Err(e) => tracing::warn!(topic = %p.topic, error = %e, "an answer from dispatch not taken"),
                }
                let _ = client.ack(&p).await;
                continue;
            }
            _ = wake.notified() => {}
            _ = tick.tick() => {}
        }
        if let Err(e) = publish_due(&client, &records, &config, &mut outbox, crate::now_ms()).await
        {
            tracing::warn!(error = %e, "cannot publish hits to dispatch; trying again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(resend_s: u64) -> ForwardConfig {
        ForwardConfig {
            name: "cad".into(),
            webhook: String::new(),
            mail_to: String::new(),
            mqtt_client: "cad-gateway".into(),
            resend_s,
            categories: Vec::new(),
            ca: Default::default(),
            max_age_s: 600,
        }
    }

    fn alert(id: u64) -> AlertView {
        AlertView { trailer_id: "t1".into(), alert_id: id, ..AlertView::default() }
    }

    #[test]
    fn a_hit_is_audited_once_then_sent_again_until_answered() {
        let t = target(30);
        let mut o = Outbox::default();
        let a = alert(7);
        assert_eq!(o.step(&t, &a, 1_000), Step::First);
        o.audited("cad", &a);
        assert_eq!(o.step(&t, &a, 1_000), Step::Again, "audited, not yet published");
        o.published("cad", &a, 1_000);
        assert_eq!(o.step(&t, &a, 30_999), Step::Wait);
        assert_eq!(o.step(&t, &a, 31_000), Step::Again);
        o.answered("cad", "t1", 7);
        assert_eq!(o.step(&t, &a, 31_000), Step::First, "forgotten once answered");
    }

    #[test]
    fn hits_no_longer_due_are_forgotten() {
        let t = target(30);
        let mut o = Outbox::default();
        for id in [1, 2] {
            o.audited("cad", &alert(id));
            o.audited("other", &alert(id));
        }
        o.keep_due("cad", &[alert(2)]);
        assert_eq!(o.step(&t, &alert(1), 0), Step::First);
        assert_eq!(o.step(&t, &alert(2), 0), Step::Again);
        let mut other = t.clone();
        other.name = "other".into();
        assert_eq!(o.step(&other, &alert(1), 0), Step::Again, "another target's kept");
    }

    #[test]
    fn an_answer_is_read_strictly() {
        assert_eq!(
            parse_ack(br#"{"trailer":"t1","alert_id":41}"#),
            Ok(DispatchAck { trailer: "t1".into(), alert_id: 41 })
        );
        for bad in [&b"not json"[..], br#"{"trailer":"t1"}"#, br#"{"trailer":"../x","alert_id":1}"#]
        {
            assert!(parse_ack(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse_ack(&vec![b' '; MAX_ACK_BYTES + 1]).is_err());
        let mut config = Config::default();
        config.forward.push(target(30));
        assert_eq!(
            target_of(&config, "dispatch/cad-gateway/ack").map(|t| t.name.as_str()),
            Some("cad")
        );
        assert!(target_of(&config, "dispatch/other/ack").is_none());
        assert!(target_of(&config, "dispatch/cad-gateway/hits").is_none());
    }
}
