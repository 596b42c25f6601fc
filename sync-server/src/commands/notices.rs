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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Send {
    id: i64,
    /// Send one that was sent already, again.
    #[serde(default)]
    resend: bool,
}

async fn find(records: &Records, id: i64, now: i64) -> Result<crate::records::Notice, Failure> {
    records
        .notices(now, false)
        .await?
        .into_iter()
        .find(|n| n.id == id)
        .ok_or_else(|| Failure::Refused(format!("no notice {id}")))
}

/// Sends a notice the configured way. It reaches outside (mail, or the outbox for staff),
/// which no transaction takes back: claimed, sent and recorded as it goes.
pub(super) async fn send(records: &Records, c: &Call<'_>) -> Done {
    let a: Send = c.args()?;
    let n = find(records, a.id, c.now).await?;
    if n.sent_ms.is_some() && !a.resend {
        return Err(Failure::Refused(format!(
            "notice {} was sent already ({}); resend=true sends it again",
            n.id,
            n.sent_via.as_deref().unwrap_or_default()
        )));
    }
    if n.sent_ms.is_none() && !records.claim_notice(n.id, c.now).await? {
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

/// `notices.render`: the notice's text, HTML document and e-mail, handed to the user as
/// files with their SHA-256 (the console saves them in its downloads folder).
pub(super) async fn render(records: &Records, c: &Call<'_>) -> Done {
    let a: Id = c.args()?;
    let n = find(records, a.id, c.now).await?;
    let agency = &c.config.agency;
    let doc = crate::bca::render(&n, &agency.name, &agency.contact);
    let files = crate::bca::files(&n, &doc, &c.config.bca)
        .map_err(|e| Failure::Refused(format!("cannot render notice {}: {e}", n.id)))?;
    Ok((json!({"notice": n.id, "files": super::files_json("notices", &files)}), 1))
}

pub(super) async fn mark_sent(s: &mut Session, c: &Call<'_>) -> Done {
    let a: MarkSent = c.args()?;
    if a.how.trim().is_empty() {
        return Err(Failure::Refused("args: say how it was sent (how)".into()));
    }
    let first = s.notice_sent(a.id, c.now, &format!("manual: {}", a.how)).await?;
    Ok((json!({"recorded": first}), i64::from(first)))
}
