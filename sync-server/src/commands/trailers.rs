//! The fleet: the registry with each trailer's latest health, enrolment (a request made on the
//! trailer signed, its certificate, the agency CA and a starting configuration handed back),
//! revocation, and the commands an administrator sends a trailer (a health report now, a new
//! configuration) with the list of what was sent and answered.
use super::{Call, Done, Failure, to_json};
use crate::records::{Records, Session};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Enroll {
    trailer: String,
    /// The certificate request (PEM) `appliance enroll` printed on the trailer.
    request: String,
    #[serde(default)]
    note: String,
    days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    trailer: String,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailers {
    /// A JSON list of trailer ids, or one id.
    trailers: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewConfig {
    trailers: Value,
    /// The whole appliance configuration (TOML).
    toml: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Downlinks {
    trailer: Option<String>,
    limit: Option<i64>,
}

/// A configuration sent to a trailer at most (it is one downlink frame).
const MAX_CONFIG_BYTES: usize = 512 * 1024;

/// `trailers.list`: every trailer enrolled (revoked ones too), with what its latest health
/// report says, and those heard from that are not enrolled.
pub(super) async fn list(records: &Records) -> Done {
    let registry = records.trailers().await?;
    let health = records.health().await?;
    let mut rows: Vec<Value> = Vec::with_capacity(registry.len());
    for t in &registry {
        let mut row = serde_json::to_value(t).unwrap_or(Value::Null);
        if let (Some(o), Some(h)) = (
            row.as_object_mut(),
            health.iter().find(|h| h["trailer"].as_str() == Some(t.trailer_id.as_str())),
        ) {
            o.insert("health".into(), h.clone());
        }
        rows.push(row);
    }
    for h in health
        .iter()
        .filter(|h| !registry.iter().any(|t| h["trailer"].as_str() == Some(t.trailer_id.as_str())))
    {
        rows.push(json!({"trailer_id": h["trailer"], "enrolled_at": Value::Null,
                         "note": "NOT ENROLLED: heard from, refused", "health": h}));
    }
    let n = rows.len() as i64;
    Ok((Value::Array(rows), n))
}

/// `trailers.enroll`: the trailer's own request signed (its key never leaves it), the trailer
/// known as enrolled, and what it needs to connect handed back.
pub(super) async fn enroll(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Enroll = c.args()?;
    let dir = &c.config.pki.dir;
    if dir.as_os_str().is_empty() {
        return Err(Failure::Refused(
            "this server has no PKI directory (pki.dir): enrol with `sync-server trailer enroll` \
             where the agency CA is"
                .into(),
        ));
    }
    let new = s.enroll_trailer(&a.trailer, &c.actor, &a.note, c.now).await?;
    let days = a.days.unwrap_or(c.config.pki.trailer_days).clamp(1, 825);
    let chain = crate::pki::sign_request(
        dir,
        a.request.as_bytes(),
        &a.trailer,
        crate::pki::Role::Trailer,
        days,
    )
    .map_err(|e| Failure::Refused(format!("request: {e}")))?;
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let ca = read("ca.pem");
    let signing = read("config-signing.pub").trim().to_string();
    Ok((
        json!({
            "trailer": a.trailer,
            "newly_enrolled": new,
            "certificate": chain,
            "ca": ca,
            "config_signing_key": signing,
            "config": starting_config(c.config, &a.trailer),
        }),
        1,
    ))
}

/// The settings a newly enrolled trailer takes from the agency: its id and how it reaches the
/// broker (the rest are the appliance's defaults, and its own hardware's).
fn starting_config(config: &crate::Config, trailer: &str) -> String {
    let (host, port) = match (&config.pki.trailer_broker_host, config.pki.trailer_broker_port) {
        (h, p) if !h.is_empty() => (h.clone(), if p == 0 { 8883 } else { p }),
        _ => (config.broker.host.clone(), config.broker.port),
    };
    let mut doc = toml::Table::new();
    let mut t = toml::Table::new();
    t.insert("id".into(), toml::Value::String(trailer.into()));
    doc.insert("trailer".into(), toml::Value::Table(t));
    let mut sync = toml::Table::new();
    sync.insert("broker_host".into(), toml::Value::String(host));
    sync.insert("broker_port".into(), toml::Value::Integer(i64::from(port)));
    doc.insert("sync".into(), toml::Value::Table(sync));
    toml::to_string(&doc).unwrap_or_default()
}

/// `trailers.revoke`: refused from now on; the running server disables it at the broker and
/// its certificates go on the revocation list.
pub(super) async fn revoke(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Revoke = c.args()?;
    if !s.revoke_trailer(&a.trailer, &c.actor, &a.reason, c.now).await? {
        return Err(Failure::Refused(format!("{} is not an enrolled trailer", a.trailer)));
    }
    let dir = &c.config.pki.dir;
    let serials = if dir.as_os_str().is_empty() {
        Vec::new()
    } else {
        crate::pki::revoke(dir, &a.trailer, &a.reason)
            .map_err(|e| Failure::Refused(format!("the revocation list: {e}")))?
    };
    Ok((json!({"revoked": a.trailer, "certificates": serials}), 1))
}

fn trailer_ids(v: &Value) -> Result<Vec<String>, Failure> {
    let ids: Vec<String> = match v {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().filter_map(|t| t.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    };
    if ids.is_empty() || ids.len() != v.as_array().map_or(1, Vec::len) {
        return Err(Failure::Refused("trailers: a trailer id, or a list of them".into()));
    }
    if let Some(bad) = ids.iter().find(|t| !trailer_wire::topic::valid_id(t)) {
        return Err(Failure::Refused(format!("invalid trailer id {bad:?}")));
    }
    Ok(ids)
}

async fn queue_for(
    s: &mut Session,
    c: &Call<'_>,
    trailers: &[String],
    command: crate::downlink::Command,
) -> Done {
    let summary = command.summary();
    let mut queued = Vec::with_capacity(trailers.len());
    for t in trailers {
        let id = crate::downlink::queue_in(s, t, command.clone(), &c.actor, c.now).await?;
        queued.push(json!({"trailer": t, "downlink": id}));
    }
    let n = queued.len() as i64;
    Ok((json!({"queued": queued, "summary": summary}), n))
}

/// `trailers.health`: a health report asked of each trailer now.
pub(super) async fn health(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Trailers = c.args()?;
    let ids = trailer_ids(&a.trailers)?;
    queue_for(s, c, &ids, crate::downlink::Command::SendHealth).await
}

/// `trailers.config`: a whole new configuration, signed with the agency's key; each trailer
/// refuses changes to its id, store or link and restarts on the rest.
pub(super) async fn config(s: &mut Session, c: &Call<'_>) -> Done {
    let a: NewConfig = c.args()?;
    let ids = trailer_ids(&a.trailers)?;
    if a.toml.len() > MAX_CONFIG_BYTES {
        return Err(Failure::Refused("toml: too large for a configuration".into()));
    }
    if let Err(e) = a.toml.parse::<toml::Table>() {
        return Err(Failure::Refused(format!("toml: not TOML: {e}")));
    }
    queue_for(s, c, &ids, crate::downlink::Command::Config { toml: a.toml }).await
}

/// `trailers.downlinks`: what was sent to the trailers, newest first, with each answer.
pub(super) async fn downlinks(records: &Records, c: &Call<'_>) -> Done {
    let a: Downlinks = c.args()?;
    let rows =
        records.downlinks(a.trailer.as_deref(), a.limit.unwrap_or(100).clamp(1, 1000)).await?;
    Ok((to_json(&rows), rows.len() as i64))
}
