//! Notices to the BCA: the list (due, overdue, sent), sending one, recording one sent by hand.
use super::{Call, Done, Failure, to_json};
use crate::records::{Records, Session};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Id {
    id: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkSent {
    id: i64,
    how: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    /// Only those not sent yet.
    #[serde(default)]
    unsent: bool,
}

pub(super) async fn list(records: &Records, c: &Call<'_>) -> Done {
    let a: ListArgs = c.args()?;
    let rows = records.notices(c.now, a.unsent).await?;
    Ok((to_json(&rows), rows.len() as i64))
}

/// Sends a notice the configured way. It reaches outside (mail, or the outbox for staff),
/// which no transaction takes back: claimed, sent and recorded as it goes.
pub(super) async fn send(records: &Records, c: &Call<'_>) -> Done {
    let a: Id = c.args()?;
    let Some(n) = records.notices(c.now, true).await?.into_iter().find(|n| n.id == a.id) else {
        return Err(Failure::Refused(format!("no unsent notice {}", a.id)));
    };
    if !records.claim_notice(n.id, c.now).await? {
        return Err(Failure::Refused(format!("notice {} is being sent right now", n.id)));
    }
    let sender = crate::bca::Sender::from_config(c.config);
    match sender.send(records, &n, &c.actor, c.now).await {
        Ok(via) => Ok((json!({"via": via}), 1)),
        Err(crate::bca::NoticeError::Records(e)) => Err(e.into()),
        Err(e) => {
            records.notice_failed(n.id, &e.to_string()).await?;
            Err(Failure::Refused(format!("not sent: {e}")))
        }
    }
}

pub(super) async fn mark_sent(s: &mut Session, c: &Call<'_>) -> Done {
    let a: MarkSent = c.args()?;
    if a.how.trim().is_empty() {
        return Err(Failure::Refused("args: say how it was sent (how)".into()));
    }
    let first = s.notice_sent(a.id, c.now, &format!("manual: {}", a.how)).await?;
    Ok((json!({"recorded": first}), i64::from(first)))
}
