//! Deployments and the fixed-location history: list, start one where an operator set a
//! trailer up, end one, name a place, mark it security information.
use super::{Call, Done, Failure, to_json};
use crate::records::{Records, Session};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Start {
    reader: String,
    lat: f64,
    lon: f64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    security: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    id: i64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    security: Option<bool>,
    /// Why a location is (or is no longer) security information.
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reader {
    reader: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    #[serde(default)]
    reader: Option<String>,
}

pub(super) async fn list(records: &Records, c: &Call<'_>) -> Done {
    let a: ListArgs = c.args()?;
    let rows = records.locations(a.reader.as_deref()).await?;
    Ok((to_json(&rows), rows.len() as i64))
}

pub(super) async fn start(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Start = c.args()?;
    let by = a.security.then_some(c.actor.as_str());
    let id = s.start_deployment(&a.reader, a.lat, a.lon, a.name.as_deref(), by, c.now).await?;
    Ok((json!({"location": id}), 1))
}

pub(super) async fn end(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Reader = c.args()?;
    let ended = s.end_deployment(&a.reader, c.now).await?;
    Ok((json!({"ended": ended}), i64::from(ended)))
}

/// `deployments.rename` (id, name) and `deployments.security` (id, security, reason).
pub(super) async fn change(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Change = c.args()?;
    match (c.request.command, a.name, a.security) {
        ("deployments.rename", Some(name), None) => {
            s.rename_location(a.id, &name).await?;
            Ok((Value::Null, 1))
        }
        ("deployments.security", None, Some(on)) => {
            let reason = a.reason.unwrap_or_default();
            let correction = s.set_location_security(a.id, on, &c.actor, &reason, c.now).await?;
            Ok((json!({"correction_notice": correction}), 1))
        }
        _ => Err(Failure::Refused(
            "args: rename takes id and name; security takes id, security and reason".into(),
        )),
    }
}

/// `deployments.determinations`: every security determination (who decided, when, why), for
/// an in-camera review of the withheld locations.
pub(super) async fn determinations(records: &crate::records::Records) -> Done {
    let all = records.security_determinations().await?;
    Ok((super::to_json(&all), all.len() as i64))
}
