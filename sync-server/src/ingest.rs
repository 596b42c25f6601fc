//! Ingestion of uplink messages: validate (pure), then apply to the records.
//!
//! Validation refuses, with a reason, anything that is not a well-formed message of the topic's
//! kind from the trailer the topic names. Refused messages go to the dead-letter table; they never
//! stop the server.
use crate::records::{Records, RecordsError, Rules, write};
use sqlx::AnyConnection;
use std::collections::HashSet;
use trailer_wire::{AckRef, Message, Topic, UpKind};

/// A message that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub topic: String,
    pub trailer: String,
    pub message: Message,
}

/// Why a message was refused (kept with the payload in the dead-letter table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

fn kind_matches(kind: UpKind, m: &Message) -> bool {
    matches!(
        (kind, m),
        (UpKind::Reads, Message::ReadBatch(_))
            | (UpKind::Pictures, Message::Picture(_))
            | (UpKind::Alerts, Message::Alert(_))
            | (UpKind::Health, Message::Health(_))
            | (UpKind::Usage, Message::ActiveUse(_))
            | (UpKind::Deployments, Message::Deployment(_))
            | (UpKind::DownlinkAcks, Message::DownlinkAck(_))
            | (UpKind::CertRequest, Message::CertRequest(_))
    )
}

/// Validates one publish: topic, frame, kind, and the trailer id in the payload.
pub fn validate(topic: &str, payload: &[u8]) -> Result<Accepted, Refused> {
    let parsed = Topic::parse(topic).map_err(|e| Refused(e.to_string()))?;
    let (trailer, kind) = match parsed {
        Topic::Up { trailer, kind } => (trailer, Some(kind)),
        Topic::Status { trailer } => (trailer, None),
        other => return Err(Refused(format!("not an uplink topic: {other:?}"))),
    };
    let mut message = trailer_wire::decode(payload).map_err(|e| Refused(e.to_string()))?;
    message.sanitise().map_err(Refused)?;
    match (kind, &message) {
        (Some(k), m) if !kind_matches(k, m) => {
            return Err(Refused(format!(
                "a {} topic does not carry this message kind",
                k.as_str()
            )));
        }
        (None, Message::Status(_)) | (Some(_), _) => {}
        (None, _) => return Err(Refused("status topic carries a non-status message".into())),
    }
    match message.trailer_id() {
        Some(id) if id == trailer => Ok(Accepted { topic: topic.to_string(), trailer, message }),
        Some(id) => Err(Refused(format!(
            "payload trailer id {id:?} does not match topic trailer {trailer:?}"
        ))),
        None => Err(Refused("message carries no trailer id".into())),
    }
}

/// What a batch is applied under, looked up once for all its messages.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The enrolled trailers among the batch's senders.
    pub enrolled: HashSet<String>,
    /// A suspension order is in force.
    pub suspended: bool,
}

impl Context {
    /// The context of `batch`, inside the caller's transaction.
    pub async fn of(c: &mut AnyConnection, batch: &[Accepted]) -> Result<Context, RecordsError> {
        Ok(Context {
            enrolled: enrolled_of(c, batch).await?,
            suspended: crate::records::oversight::in_force(c).await?.is_some(),
        })
    }
}

/// Applies an accepted message inside the caller's transaction, if its trailer is enrolled;
/// a message from any other trailer goes to the dead letters, unacknowledged. Returns what to
/// acknowledge to the trailer once that transaction commits.
pub async fn apply(
    c: &mut AnyConnection,
    rules: &Rules,
    a: &Accepted,
    ctx: &Context,
    now: i64,
) -> Result<Vec<AckRef>, RecordsError> {
    if !ctx.enrolled.contains(&a.trailer) {
        let reason = format!(
            "{} is not an enrolled trailer (or was revoked): enrol it with `sync-server trailer \
             enroll` before it sends",
            a.trailer
        );
        let payload = trailer_wire::encode(&a.message).unwrap_or_default();
        crate::records::dead_letter_on(c, &a.topic, &reason, &payload, now).await?;
        tracing::warn!(trailer = %a.trailer, topic = %a.topic, "message from a trailer that is not enrolled; kept as a dead letter");
        return Ok(Vec::new());
    }
    // Under a suspension order no hit or picture is stored: it waits on the trailer,
    // unacknowledged, until the order is lifted (reads are sorted read by read, in
    // `write::reads`: one collected under the order is refused whenever it arrives).
    if ctx.suspended && matches!(a.message, Message::Alert(_) | Message::Picture(_)) {
        tracing::debug!(trailer = %a.trailer, "held back by a suspension order");
        return Ok(Vec::new());
    }
    Ok(match &a.message {
        Message::ReadBatch(b) => write::reads(c, rules, &a.trailer, &b.reads, now).await?,
        Message::Picture(p) => {
            vec![write::picture(c, &a.trailer, p.read_id, p.kind, &p.jpeg, now).await?]
        }
        Message::ActiveUse(u) => vec![write::usage(c, rules, &a.trailer, u, now).await?],
        Message::Status(s) => {
            write::status(c, rules, &a.trailer, s, now).await?;
            Vec::new()
        }
        Message::Alert(al) => {
            if write::alert(c, rules, &a.trailer, al, now).await? {
                // The plate stays out of the log: the alert is in the records, for operators.
                tracing::warn!(trailer = %a.trailer, alert_id = al.alert_id, list = %al.list_name,
                    category = ?al.category, "hotlist hit: verify against state systems before acting");
            }
            vec![AckRef::Alert(al.alert_id), AckRef::Read(al.read.read_id)]
        }
        Message::Health(h) => {
            write::health(c, h).await?;
            Vec::new()
        }
        Message::Deployment(d) => vec![write::deployment(c, rules, &a.trailer, d, now).await?],
        Message::DownlinkAck(d) => vec![write::downlink_answer(c, &a.trailer, d, now).await?],
        // Certificate requests are signed outside the records (`crate::renewal`).
        Message::Ack(_) | Message::Downlink(_) | Message::CertRequest(_) => Vec::new(),
    })
}

/// Applies a batch of accepted messages in one transaction (one commit, one fsync for all).
/// Returns each message's acks, in order. On any error nothing of the batch is stored, and the
/// caller falls back to one transaction per message so that one bad message cannot hold back
/// the rest.
pub async fn apply_batch(
    records: &Records,
    batch: &[Accepted],
    now: i64,
) -> Result<Vec<Vec<AckRef>>, RecordsError> {
    let mut tx = records.begin().await?;
    let ctx = Context::of(&mut tx, batch).await?;
    let mut out = Vec::with_capacity(batch.len());
    for a in batch {
        out.push(apply(&mut tx, records.rules(), a, &ctx, now).await?);
    }
    tx.commit().await?;
    Ok(out)
}

/// The enrolled trailers among the senders of `batch`.
pub async fn enrolled_of(
    c: &mut AnyConnection,
    batch: &[Accepted],
) -> Result<HashSet<String>, RecordsError> {
    let mut ids: Vec<&str> = batch.iter().map(|a| a.trailer.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    crate::records::enrolled_among(c, &ids).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailer_wire::{Ack, ReadBatch, Status};

    fn batch(trailer: &str) -> Vec<u8> {
        trailer_wire::encode(&Message::ReadBatch(ReadBatch {
            trailer_id: trailer.into(),
            reads: vec![],
        }))
        .expect("encodes")
    }

    #[test]
    fn accepts_matching_trailer_and_kind() {
        let a = validate("trailer/t1/up/reads", &batch("t1")).expect("accepted");
        assert_eq!(a.trailer, "t1");
        let s = trailer_wire::encode(&Message::Status(Status {
            trailer_id: "t1".into(),
            online: true,
            time: 0,
            software_version: "x".into(),
            store: trailer_wire::StoreInfo { store_id: 1, created: 0, opens: 1, run: 2 },
        }))
        .expect("encodes");
        assert!(validate("trailer/t1/status", &s).is_ok());
    }

    #[test]
    fn refuses_spoofed_trailer_wrong_kind_and_garbage() {
        let r = validate("trailer/t1/up/reads", &batch("t2")).expect_err("spoofed");
        assert!(r.0.contains("does not match"), "{}", r.0);
        let r = validate("trailer/t1/up/pictures", &batch("t1")).expect_err("kind");
        assert!(r.0.contains("pictures topic"), "{}", r.0);
        let v = trailer_wire::PROTOCOL_VERSION;
        let r = validate("trailer/t1/up/reads", &[v, 1, 0xff]).expect_err("garbage");
        assert!(r.0.contains("corrupt"), "{}", r.0);
        // A trailer of the previous protocol version is refused, saying so.
        let r = validate("trailer/t1/up/reads", &[1, 1, 0]).expect_err("version 1");
        assert!(r.0.contains("unsupported protocol version 1"), "{}", r.0);
        let r = validate("trailer/t1/up/reads", &[7, 1]).expect_err("version");
        assert!(r.0.contains("unsupported protocol version 7"), "{}", r.0);
        let ack = trailer_wire::encode(&Message::Ack(Ack { refs: vec![] })).expect("encodes");
        assert!(validate("trailer/t1/up/reads", &ack).is_err());
        // A plate that is not one (here, with an escape sequence) refuses the batch.
        let mut read = crate::records::tests::read_at(1, "AB\x1b[2J", 0);
        let forged = |r: trailer_wire::ReadMeta| {
            trailer_wire::encode(&Message::ReadBatch(ReadBatch {
                trailer_id: "t1".into(),
                reads: vec![r],
            }))
            .expect("encodes")
        };
        let r = validate("trailer/t1/up/reads", &forged(read.clone())).expect_err("plate");
        assert!(r.0.contains("capitals and digits"), "{}", r.0);
        // Other strings are cleaned, not refused.
        read.plate = "ABC123".into();
        read.camera_id = "cam\x1b]0;owned\x07".into();
        let a = validate("trailer/t1/up/reads", &forged(read)).expect("accepted");
        let Message::ReadBatch(b) = a.message else { panic!("a batch") };
        assert_eq!(b.reads[0].camera_id, "cam]0;owned");
        assert!(validate("elsewhere", &batch("t1")).is_err());
    }
}
