//! Alerts: the list (filtered), and an operator's acknowledgement with its outcome.
use super::{Call, Done, Failure, to_json};
use crate::records::{Acknowledgement, Records, Session};
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
    /// The plate's picture of each hit held here, inline (the console saves it as a file).
    #[serde(default)]
    pictures: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ack {
    trailer: String,
    alert_id: i64,
    outcome: String,
    check: String,
    note: Option<String>,
}

/// How many bytes of pictures one `alerts.list` answer carries at most.
const ALERT_PICTURE_BYTES: usize = 160 * 1024;

pub(super) async fn list(records: &Records, c: &Call<'_>) -> Done {
    use base64::Engine;
    let a: Filter = c.args()?;
    let limit = a.limit.unwrap_or(1000).clamp(1, 10_000);
    let rows = records.list_alerts(limit, a.open).await?;
    let n = rows.len() as i64;
    if !a.pictures {
        return Ok((to_json(&rows), n));
    }
    let mut budget = ALERT_PICTURE_BYTES;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut v = serde_json::to_value(row).unwrap_or(Value::Null);
        let mut pictures = serde_json::Map::new();
        if row.has_plate_crop {
            for (kind, jpeg) in records.pictures_of(&row.trailer_id, row.read_id).await? {
                if kind != "plate_crop" {
                    continue;
                }
                let value = if jpeg.len() <= budget {
                    budget -= jpeg.len();
                    Value::String(base64::engine::general_purpose::STANDARD.encode(&jpeg))
                } else {
                    Value::String("(over this answer's size: ask with a smaller limit)".into())
                };
                pictures.insert(kind, value);
            }
        }
        if let Some(o) = v.as_object_mut() {
            o.insert("pictures".into(), Value::Object(pictures));
        }
        out.push(v);
    }
    Ok((Value::Array(out), n))
}

pub(super) async fn ack(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Ack = c.args()?;
    let how = Acknowledgement { outcome: &a.outcome, check: &a.check, note: a.note.as_deref() };
    if !s.acknowledge_alert(&a.trailer, a.alert_id, how, &c.actor, c.now).await? {
        return Err(Failure::Refused(format!("no open alert {} from {}", a.alert_id, a.trailer)));
    }
    Ok((Value::Null, 1))
}
