//! Holds that keep reads past retention: placed (on named reads, or on a plate over a period,
//! on the server and on every trailer, by this one command), released, listed.
use super::{Call, Done, Failure, to_json};
use crate::records::{NewHold, PlatePeriod, Records, Session};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Place {
    kind: String,
    #[serde(default)]
    note: String,
    /// The written request: who asked, on which day (YYYY-MM-DD), and for an exculpatory
    /// hold the charge or complaint.
    requester: String,
    request_date: String,
    #[serde(default)]
    charge: String,
    /// `[["trailer-01", 4711], ...]`; or `plate` with `from` and `to` (local days).
    #[serde(default)]
    reads: Vec<(String, i64)>,
    plate: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Release {
    id: i64,
    /// Why it ends (resolved, dismissed, ...).
    reason: String,
}

pub(super) async fn list(records: &Records) -> Done {
    let rows = records.holds().await?;
    Ok((to_json(&rows), rows.len() as i64))
}

pub(super) async fn place(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Place = c.args()?;
    let plate = match (a.plate, a.from, a.to) {
        (None, None, None) => None,
        (Some(plate), Some(from), Some(to)) => {
            let tz = &s.rules().time_zone;
            let (Some((from_ms, _)), Some((_, to_ms))) = (
                crate::report::local_day_bounds(tz, &from),
                crate::report::local_day_bounds(tz, &to),
            ) else {
                return Err(Failure::Refused("args: from and to are YYYY-MM-DD days".into()));
            };
            Some(PlatePeriod { plate, from_ms, to_ms: to_ms.min(c.now) })
        }
        _ => {
            return Err(Failure::Refused(
                "args: a plate goes with its period: plate, from and to".into(),
            ));
        }
    };
    let hold = NewHold {
        kind: a.kind,
        case_number: c.request.case.to_string(),
        note: a.note,
        requester: a.requester,
        request_date: a.request_date,
        charge: a.charge,
        reads: a.reads,
        plate,
    };
    let (id, present) = s.place_hold(&hold, &c.actor, c.now).await?;
    Ok((json!({"hold": id, "reads_on_server": present}), present))
}

pub(super) async fn release(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Release = c.args()?;
    if !s.release_hold(a.id, &a.reason, &c.actor, c.now).await? {
        return Err(Failure::Refused(format!("no active hold {}", a.id)));
    }
    Ok((Value::Null, 1))
}
