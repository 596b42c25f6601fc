//! Alerts: the list (filtered), and an operator's acknowledgement with its outcome.
use super::{Call, Done, Failure, to_json};
use crate::records::{Records, Session};
use serde::Deserialize;
use serde_json::Value;

/// `alerts.list` arguments: at most `limit` (default 1,000), only those not acknowledged when
/// `open`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Filter {
    limit: Option<i64>,
    #[serde(default)]
    open: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ack {
    trailer: String,
    alert_id: i64,
    outcome: String,
}

pub(super) async fn list(records: &Records, c: &Call<'_>) -> Done {
    let a: Filter = c.args()?;
    let limit = a.limit.unwrap_or(1000).clamp(1, 10_000);
    let rows: Vec<_> = records
        .list_alerts(if a.open { 10_000 } else { limit })
        .await?
        .into_iter()
        .filter(|x| !a.open || x.outcome.is_none())
        .take(limit as usize)
        .collect();
    Ok((to_json(&rows), rows.len() as i64))
}

pub(super) async fn ack(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Ack = c.args()?;
    if !s.acknowledge_alert(&a.trailer, a.alert_id, &a.outcome, &c.actor, c.now).await? {
        return Err(Failure::Refused(format!("no open alert {} from {}", a.alert_id, a.trailer)));
    }
    Ok((Value::Null, 1))
}
