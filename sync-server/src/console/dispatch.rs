//! Runs one console request for one user: the user's role from the users table, the role
//! matrix, the command on the records, and one audit entry for the request and its response
//! (refusals included), with the operator, the purpose and the case number.
use super::protocol::{Request, Response};
use super::roles::{Role, allowed};
use crate::audit::Entry;
use crate::records::{Records, RecordsError};
use serde::Deserialize;
use serde_json::{Value, json};

/// Why a request got no data.
enum Failure {
    /// The request was refused (role, arguments); said to the operator as it is.
    Refused(String),
    Records(RecordsError),
}

impl From<RecordsError> for Failure {
    fn from(e: RecordsError) -> Failure {
        match e {
            RecordsError::Invalid(m) => Failure::Refused(m),
            other => Failure::Records(other),
        }
    }
}

fn args<T: for<'de> Deserialize<'de>>(v: &Value) -> Result<T, Failure> {
    let v = if v.is_null() { json!({}) } else { v.clone() };
    serde_json::from_value(v).map_err(|e| Failure::Refused(format!("args: {e}")))
}

fn to_json<T: serde::Serialize>(rows: &[T]) -> Value {
    serde_json::to_value(rows).unwrap_or(Value::Null)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Search {
    plate: String,
    #[serde(default = "default_limit")]
    limit: i64,
    /// The legal basis (Minn. Stat. 13.824 subd. 2(d)): a warrant's number, or the facts of
    /// the exigency; exactly one.
    #[serde(default)]
    warrant: Option<String>,
    #[serde(default)]
    exigency: Option<String>,
    /// How many days back to search (default and cap: [`EXIGENCY_DAYS`] without a warrant,
    /// the retention period with one).
    #[serde(default)]
    days: Option<i64>,
    /// The pictures too: those here inline (base64), those still on a trailer asked for.
    #[serde(default)]
    pictures: bool,
}

/// A search under exigency reaches this many days back at most, and returns at most
/// [`EXIGENCY_RESULTS`] reads: tracking a person further needs a warrant.
pub const EXIGENCY_DAYS: i64 = 3;
pub const EXIGENCY_RESULTS: i64 = 50;

impl Search {
    /// The reads' earliest `best_seen` and the result cap the legal basis allows, or why the
    /// search is refused.
    fn scope(&self, retention_days: i64, now: i64) -> Result<(i64, i64), Failure> {
        let given = |s: &Option<String>| s.as_deref().is_some_and(|t| t.trim().len() >= 3);
        let (max_days, max_results) = match (given(&self.warrant), given(&self.exigency)) {
            (true, false) => (retention_days, 10_000),
            (false, true) => (EXIGENCY_DAYS, EXIGENCY_RESULTS),
            _ => {
                return Err(Failure::Refused(
                    "a plate search tracks a person: give its legal basis, warrant=NUMBER or \
                     exigency=FACTS (Minn. Stat. 13.824 subd. 2(d)), one of them"
                        .into(),
                ));
            }
        };
        let days = self.days.unwrap_or(max_days);
        if !(1..=max_days).contains(&days) {
            let why = if max_days == EXIGENCY_DAYS { "under exigency" } else { "of retention" };
            return Err(Failure::Refused(format!(
                "days: 1-{max_days} {why}; a longer search needs a warrant"
            )));
        }
        Ok((now - days * 86_400_000, self.limit.clamp(1, max_results)))
    }
}

/// Pictures returned inline by one search at most (beyond, the reads say what exists).
const SEARCH_PICTURE_BYTES: usize = 160 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartArgs {
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
struct HotlistUpload {
    name: String,
    version: u64,
    #[serde(default)]
    part: u32,
    #[serde(default = "one")]
    parts: u32,
    /// This part of the CSV file.
    csv: String,
}

/// `alerts.list` arguments: at most `limit` (default 1,000), only those not acknowledged when
/// `open`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AlertFilter {
    limit: Option<i64>,
    #[serde(default)]
    open: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HotlistRef {
    name: String,
    version: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HotlistWithdrawArgs {
    name: String,
    /// Why the list is withdrawn (the investigation closed, the list was wrong, ...).
    reason: String,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcpArgs {
    plate: String,
    reference: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseArgs {
    requesting_agency: String,
    requester: String,
    factual_basis: String,
    authorisation: String,
    plate: String,
    /// First and last local day of collection asked for (YYYY-MM-DD).
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewArgs {
    id: i64,
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideArgs {
    id: i64,
    approve: bool,
    reason: String,
}

fn default_limit() -> i64 {
    100
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LocationArgs {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldArgs {
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
struct Id {
    id: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldRelease {
    id: i64,
    /// Why it ends (resolved, dismissed, ...).
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertAck {
    trailer: String,
    alert_id: i64,
    outcome: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkSent {
    id: i64,
    how: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, tag = "action", rename_all = "kebab-case")]
enum UserAction {
    List,
    Grant { name: String, role: Role, authorisation: String },
    Disable { name: String },
}

/// Handles one payload from `user`'s request topic: a malformed or incomplete request is
/// answered with its error, and that refusal is audited too; a well-formed one is dispatched.
pub async fn handle(
    records: &Records,
    config: &crate::Config,
    user: &str,
    payload: &[u8],
    now: i64,
) -> Response {
    match super::protocol::parse(payload) {
        Ok(request) => dispatch(records, config, user, &request, now).await,
        Err(response) => {
            let request: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
            let text =
                |k: &str| request.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let entry = Entry {
                at: now,
                actor: format!("console:{user}"),
                action: "console.refused".into(),
                purpose: text("purpose"),
                case_number: text("case"),
                detail: format!(
                    "command {:?}: {}",
                    text("command"),
                    response.error.as_deref().unwrap_or_default()
                ),
                result_count: 0,
            };
            if let Err(e) = records.audit(&entry).await {
                tracing::error!(error = %e, "cannot audit a refused console request");
            }
            *response
        }
    }
}

/// Runs `request` for `user` at `now` and returns the response to publish. Never fails: a
/// database error is answered as such (and logged), the audit entry written when it can be.
pub async fn dispatch(
    records: &Records,
    config: &crate::Config,
    user: &str,
    request: &Request,
    now: i64,
) -> Response {
    let role = match records.role_of(user).await {
        Ok(r) => r,
        Err(e) => return Response::error(&request.id, format!("the records are unavailable: {e}")),
    };
    let outcome = match role {
        None => Err(Failure::Refused(format!("{user} is no console user (ask an administrator)"))),
        Some(role) if !allowed(role, &request.command) => Err(Failure::Refused(format!(
            "{} is not among the duties of the role {role}",
            request.command
        ))),
        Some(_) => run(records, config, user, request, now).await,
    };
    let (response, count, result) = match outcome {
        Ok((data, count)) => (Response::ok(&request.id, data), count, "ok".to_string()),
        Err(Failure::Refused(why)) => {
            (Response::error(&request.id, why.clone()), 0, format!("refused: {why}"))
        }
        Err(Failure::Records(e)) => {
            tracing::error!(error = %e, command = %request.command, "console request failed");
            (
                Response::error(&request.id, "the records are unavailable; try again"),
                0,
                format!("failed: {e}"),
            )
        }
    };
    let entry = Entry {
        at: now,
        actor: format!("console:{user}"),
        action: format!("console.{}", request.command),
        purpose: request.purpose.clone(),
        case_number: request.case.clone(),
        detail: audit_detail(request, &result),
        result_count: count,
    };
    if let Err(e) = records.audit(&entry).await {
        tracing::error!(error = %e, "cannot audit a console request; refusing it");
        return Response::error(&request.id, "the audit trail is unavailable: nothing was done");
    }
    response
}

/// What the audit trail keeps of a request and its outcome: the arguments, a hotlist's
/// contents by size only; of an ACP request only the reference and whether it went through,
/// never its arguments or an error about them (either may quote the participant's plate).
fn audit_detail(r: &Request, result: &str) -> String {
    if r.command == "acp.add" {
        let reference = r.args.get("reference").and_then(Value::as_str);
        let outcome = if result == "ok" { "ok" } else { "refused or failed" };
        return format!("request {} reference {reference:?}: {outcome}", r.id);
    }
    let mut args = r.args.clone();
    if let Some(map) = args.as_object_mut()
        && let Some(csv) = map.get("csv").and_then(Value::as_str)
    {
        let size = format!("({} bytes)", csv.len());
        map.insert("csv".into(), json!(size));
    }
    format!("request {} args {args}: {result}", r.id)
}

/// The reads of a search with their pictures: those held here inline (up to a budget), and a
/// request queued to the trailer for those it still holds (for the newest reads only).
async fn with_pictures(
    records: &Records,
    rows: &[trailer_wire::console::ReadView],
    actor: &str,
    now: i64,
) -> Result<Value, Failure> {
    use base64::Engine;
    use trailer_wire::PictureKind;
    let mut budget = SEARCH_PICTURE_BYTES;
    let mut asked = 0;
    // A search of many reads asks the trailers for the newest few reads' pictures only.
    const MAX_ASKED: usize = 20;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut v = serde_json::to_value(row).unwrap_or(Value::Null);
        let here = records.pictures_of(&row.trailer_id, row.read_id).await?;
        let mut pictures = serde_json::Map::new();
        for (kind, jpeg) in &here {
            let value = if jpeg.len() <= budget {
                budget -= jpeg.len();
                json!(base64::engine::general_purpose::STANDARD.encode(jpeg))
            } else {
                json!("(over this answer's size: search for this read alone)")
            };
            pictures.insert(kind.clone(), value);
        }
        for (kind, taken) in
            [(PictureKind::PlateCrop, row.has_plate_crop), (PictureKind::Context, row.has_context)]
        {
            let name = crate::records::picture_kind(kind);
            if !taken || pictures.contains_key(name) {
                continue;
            }
            let value = if asked < MAX_ASKED {
                asked += 1;
                let command = crate::downlink::Command::SendPicture { read_id: row.read_id, kind };
                let id =
                    crate::downlink::queue(records, &row.trailer_id, command, actor, now).await?;
                format!("asked of the trailer (downlink {id})")
            } else {
                "on the trailer: search for this read alone".to_string()
            };
            pictures.insert(name.into(), json!(value));
        }
        if let Some(o) = v.as_object_mut() {
            o.insert("pictures".into(), Value::Object(pictures));
        }
        out.push(v);
    }
    Ok(Value::Array(out))
}

/// The command itself: its data and how many records it concerned.
async fn run(
    records: &Records,
    config: &crate::Config,
    user: &str,
    r: &Request,
    now: i64,
) -> Result<(Value, i64), Failure> {
    let actor = format!("console:{user}");
    Ok(match r.command.as_str() {
        "status" => {
            let health = records.health().await?;
            let n = health.len() as i64;
            (Value::Array(health), n)
        }
        "alerts.list" => {
            let a: AlertFilter = args(&r.args)?;
            let limit = a.limit.unwrap_or(1000).clamp(1, 10_000);
            let rows: Vec<_> = records
                .list_alerts(if a.open { 10_000 } else { limit })
                .await?
                .into_iter()
                .filter(|x| !a.open || x.outcome.is_none())
                .take(limit as usize)
                .collect();
            (to_json(&rows), rows.len() as i64)
        }
        "alerts.ack" => {
            let a: AlertAck = args(&r.args)?;
            if !records.acknowledge_alert(&a.trailer, a.alert_id, &a.outcome, &actor, now).await? {
                return Err(Failure::Refused(format!(
                    "no open alert {} from {}",
                    a.alert_id, a.trailer
                )));
            }
            (Value::Null, 1)
        }
        "notices.send" => {
            let a: Id = args(&r.args)?;
            let Some(n) = records.notices(now, true).await?.into_iter().find(|n| n.id == a.id)
            else {
                return Err(Failure::Refused(format!("no unsent notice {}", a.id)));
            };
            if !records.claim_notice(n.id, now).await? {
                return Err(Failure::Refused(format!("notice {} is being sent right now", n.id)));
            }
            let sender = crate::bca::Sender::from_config(config);
            match sender.send(records, &n, &actor, now).await {
                Ok(via) => (json!({"via": via}), 1),
                Err(crate::bca::NoticeError::Records(e)) => return Err(e.into()),
                Err(e) => {
                    records.notice_failed(n.id, &e.to_string()).await?;
                    return Err(Failure::Refused(format!("not sent: {e}")));
                }
            }
        }
        "plates.search" => {
            let a: Search = args(&r.args)?;
            let (since, limit) = a.scope(i64::from(config.server.retention_days), now)?;
            let rows = records.search_reads(&a.plate, since, limit).await?;
            if a.pictures {
                (with_pictures(records, &rows, &actor, now).await?, rows.len() as i64)
            } else {
                (to_json(&rows), rows.len() as i64)
            }
        }
        "deployments.list" => {
            let rows = records.locations(None).await?;
            (to_json(&rows), rows.len() as i64)
        }
        "deployments.rename" | "deployments.security" => {
            let a: LocationArgs = args(&r.args)?;
            match (r.command.as_str(), a.name, a.security) {
                ("deployments.rename", Some(name), None) => {
                    records.rename_location(a.id, &name).await?
                }
                ("deployments.security", None, Some(on)) => {
                    let reason = a.reason.unwrap_or_default();
                    let correction =
                        records.set_location_security(a.id, on, &actor, &reason, now).await?;
                    return Ok((json!({"correction_notice": correction}), 1));
                }
                _ => {
                    return Err(Failure::Refused(
                        "args: rename takes id and name; security takes id and security".into(),
                    ));
                }
            }
            (Value::Null, 1)
        }
        "deployments.end" => {
            let a: Reader = args(&r.args)?;
            let ended = records.end_deployment(&a.reader, now).await?;
            (json!({"ended": ended}), i64::from(ended))
        }
        "notices.list" => {
            let rows = records.notices(now, false).await?;
            (to_json(&rows), rows.len() as i64)
        }
        "notices.mark-sent" => {
            let a: MarkSent = args(&r.args)?;
            if a.how.trim().is_empty() {
                return Err(Failure::Refused("args: say how it was sent (how)".into()));
            }
            let first = records.notice_sent(a.id, now, &format!("manual: {}", a.how)).await?;
            (json!({"recorded": first}), i64::from(first))
        }
        "holds.place" => {
            let a: HoldArgs = args(&r.args)?;
            let plate = match (a.plate, a.from, a.to) {
                (None, None, None) => None,
                (Some(plate), Some(from), Some(to)) => {
                    let tz = &records.rules().time_zone;
                    let (Some((from_ms, _)), Some((_, to_ms))) = (
                        crate::report::local_day_bounds(tz, &from),
                        crate::report::local_day_bounds(tz, &to),
                    ) else {
                        return Err(Failure::Refused(
                            "args: from and to are YYYY-MM-DD days".into(),
                        ));
                    };
                    Some(crate::records::PlatePeriod { plate, from_ms, to_ms: to_ms.min(now) })
                }
                _ => {
                    return Err(Failure::Refused(
                        "args: a plate goes with its period: plate, from and to".into(),
                    ));
                }
            };
            let hold = crate::records::NewHold {
                kind: a.kind,
                case_number: r.case.clone(),
                note: a.note,
                requester: a.requester,
                request_date: a.request_date,
                charge: a.charge,
                reads: a.reads,
                plate,
            };
            let (id, present) = records.place_hold(&hold, &actor, now).await?;
            (json!({"hold": id, "reads_on_server": present}), present)
        }
        "holds.release" => {
            let a: HoldRelease = args(&r.args)?;
            if !records.release_hold(a.id, &a.reason, &actor, now).await? {
                return Err(Failure::Refused(format!("no active hold {}", a.id)));
            }
            (Value::Null, 1)
        }
        "holds.list" => {
            let rows = records.holds().await?;
            (to_json(&rows), rows.len() as i64)
        }
        "audit.verify" => {
            let verdict = records.audit_verify().await?;
            let (seq, hash) = records.audit_head().await?;
            (
                json!({"intact": verdict.is_ok(), "entries": verdict.as_ref().ok(), "broken": verdict.err(), "head": [seq, hash]}),
                0,
            )
        }
        "audit.report" => {
            let a: Range = args(&r.args)?;
            let report = crate::report::build(records, config, &a.from, &a.to, now).await?;
            let n = report.audit.entries;
            (serde_json::to_value(&report).unwrap_or(Value::Null), n)
        }
        "publiclog.generate" => {
            let a: Range = args(&r.args)?;
            let (from, to) =
                crate::public::log_range(records.rules(), Some(a.from), Some(a.to), now)
                    .map_err(Failure::Refused)?;
            let log = records.use_log(&from, &to, now).await?;
            (serde_json::to_value(&log).unwrap_or(Value::Null), log.periods.len() as i64)
        }
        "users.manage" => match args::<UserAction>(&r.args)? {
            UserAction::List => {
                let rows = records.users().await?;
                (to_json(&rows), rows.len() as i64)
            }
            UserAction::Grant { name, role, authorisation } => {
                records.grant(&name, role, user, &authorisation, now).await?;
                (Value::Null, 1)
            }
            UserAction::Disable { name } => {
                if name == user {
                    return Err(Failure::Refused(
                        "an administrator cannot disable themselves".into(),
                    ));
                }
                (json!({"disabled": records.disable_user(&name).await?}), 1)
            }
        },
        "deployments.start" => {
            let a: StartArgs = args(&r.args)?;
            let id = records
                .start_deployment(
                    &a.reader,
                    a.lat,
                    a.lon,
                    a.name.as_deref(),
                    a.security.then_some(actor.as_str()),
                    now,
                )
                .await?;
            (json!({"location": id}), 1)
        }
        "hotlists.upload" => {
            let a: HotlistUpload = args(&r.args)?;
            let part = crate::records::hotlists::Part {
                name: &a.name,
                version: a.version,
                index: a.part,
                count: a.parts,
                data: a.csv.as_bytes(),
                purpose: &r.purpose,
                case_number: &r.case,
            };
            match records.hotlist_part(part, &actor, now).await? {
                crate::records::Upload::Partial { received, count } => {
                    (json!({"complete": false, "received": received, "parts": count}), 0)
                }
                crate::records::Upload::Complete { version, .. } => {
                    let n = version.trailers.len() as i64;
                    (json!({"complete": true, "version": version}), n)
                }
            }
        }
        "hotlists.list" => {
            let rows = records.hotlist_versions().await?;
            (to_json(&rows), rows.len() as i64)
        }
        "hotlists.approve" => {
            let a: HotlistRef = args(&r.args)?;
            let v = records.hotlist_approve(&a.name, a.version, &actor, now).await?;
            let n = v.trailers.len() as i64;
            (json!({"approved": v}), n)
        }
        "hotlists.withdraw" => {
            let a: HotlistWithdrawArgs = args(&r.args)?;
            let trailers = records.hotlist_withdraw(&a.name, &a.reason, &actor, now).await?;
            let n = trailers.len() as i64;
            (json!({"withdrawn": a.name, "trailers": trailers}), n)
        }
        "acp.add" => {
            let a: AcpArgs = args(&r.args)?;
            let added = records.acp_add(&a.plate, &a.reference, &actor, now).await?;
            let n = added.reads_destroyed as i64;
            (serde_json::to_value(&added).unwrap_or(Value::Null), n)
        }
        "release.request" => {
            let a: ReleaseArgs = args(&r.args)?;
            let tz = &records.rules().time_zone;
            let day = |d: &str| {
                crate::report::local_day_bounds(tz, d)
                    .ok_or_else(|| Failure::Refused(format!("args: {d:?} is no YYYY-MM-DD day")))
            };
            let (from_ms, _) = day(&a.from)?;
            let (_, to_end) = day(&a.to)?;
            let new = crate::records::NewRelease {
                requesting_agency: a.requesting_agency,
                requester: a.requester,
                purpose: r.purpose.clone(),
                factual_basis: a.factual_basis,
                case_number: r.case.clone(),
                authorisation: a.authorisation,
                plate: a.plate,
                from_ms,
                to_ms: to_end - 1,
            };
            let id = records.release_request(&new, &actor, now).await?;
            (json!({"release": id, "state": "requested"}), 1)
        }
        "release.review" => {
            let a: ReviewArgs = args(&r.args)?;
            records.release_review(a.id, &a.note, &actor, now).await?;
            (json!({"release": a.id, "state": "reviewed"}), 1)
        }
        "release.decide" => {
            let a: DecideArgs = args(&r.args)?;
            records.release_decide(a.id, a.approve, &a.reason, &actor, now).await?;
            let state = if a.approve { "approved" } else { "denied" };
            (json!({"release": a.id, "state": state}), 1)
        }
        "release.fulfil" => {
            let a: Id = args(&r.args)?;
            let dir = config.server.data_dir.join("releases");
            let bundle = records.release_fulfil(a.id, &dir, &actor, now).await?;
            let n = bundle.reads;
            (serde_json::to_value(&bundle).unwrap_or(Value::Null), n)
        }
        "release.list" => {
            let rows = records.releases().await?;
            (to_json(&rows), rows.len() as i64)
        }
        other => {
            return Err(Failure::Refused(format!("{other} is not a console command")));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::roles::COMMANDS;
    use sqlx::Row;

    async fn audit_count(db: &Records) -> i64 {
        sqlx::query("SELECT COUNT(*) FROM audit").fetch_one(db.pool()).await.expect("count").get(0)
    }

    /// `alerts.list` keeps to its filters: only the open ones, at most `limit`; an unknown
    /// filter is refused, not ignored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_alert_list_takes_open_and_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
        let db = Records::open(&url).await.expect("open");
        db.grant("otto", Role::Operator, "chief", "memo", 1).await.expect("grant");
        let now = 1_790_000_000_000;
        let mut tx = db.begin().await.expect("begin");
        for id in 1..=3 {
            let read = crate::records::tests::read_at(id, "HOT123", now - 1_000 * id as i64);
            let hit = crate::records::tests::hit(id, read, trailer_wire::HitCategory::Warrant);
            crate::records::write::alert(&mut tx, db.rules(), "t1", &hit, now).await.expect("hit");
        }
        tx.commit().await.expect("commit");
        db.acknowledge_alert("t1", 1, "misread", "console:otto", now).await.expect("ack");
        let list = |args: &str| {
            let line = format!(r#"{{"id":"1","command":"alerts.list","args":{args}}}"#);
            let db = db.clone();
            async move { handle(&db, &crate::Config::default(), "otto", line.as_bytes(), now).await }
        };
        let count = |r: &Response| r.data.as_array().map_or(0, Vec::len);
        assert_eq!(count(&list("{}").await), 3);
        let open = list(r#"{"open":true}"#).await;
        assert_eq!(count(&open), 2, "{open:?}");
        assert!(open.data.as_array().expect("rows").iter().all(|a| a["outcome"].is_null()));
        assert_eq!(count(&list(r#"{"limit":1}"#).await), 1);
        let r = list(r#"{"opn":true}"#).await;
        assert!(r.error.as_deref().is_some_and(|e| e.contains("unknown field")), "{r:?}");
    }

    /// A search with pictures: those on the server come inline, those still on the trailer
    /// are asked of it with a downlink each.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pictures_on_request_come_inline_or_are_asked_of_the_trailer() {
        use base64::Engine;
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
        let db = Records::open(&url).await.expect("open");
        db.grant("ivy", Role::Investigator, "chief", "memo", 1).await.expect("grant");
        let mut tx = db.begin().await.expect("begin");
        let reads = [
            crate::records::tests::read_at(1, "PIC123", 1_000),
            crate::records::tests::read_at(2, "PIC123", 2_000),
        ];
        crate::records::write::reads(&mut tx, db.rules(), "t1", &reads, 3_000)
            .await
            .expect("reads");
        let crop = trailer_wire::PictureKind::PlateCrop;
        crate::records::write::picture(&mut tx, "t1", 1, crop, b"crop-jpeg", 3_000)
            .await
            .expect("picture");
        tx.commit().await.expect("commit");
        let search = br#"{"id":"1","command":"plates.search","purpose":"theft","case":"26-1","args":{"plate":"PIC123","pictures":true,"warrant":"W-26-1"}}"#;
        let r = handle(&db, &crate::Config::default(), "ivy", search, 4_000).await;
        assert!(r.ok, "{r:?}");
        let rows = r.data.as_array().expect("rows");
        let of =
            |id: u64| rows.iter().find(|v| v["read_id"] == id).expect("a row")["pictures"].clone();
        let inline = base64::engine::general_purpose::STANDARD.encode(b"crop-jpeg");
        assert_eq!(of(1)["plate_crop"], inline);
        for asked in
            [of(1)["context"].clone(), of(2)["plate_crop"].clone(), of(2)["context"].clone()]
        {
            assert!(
                asked.as_str().is_some_and(|a| a.starts_with("asked of the trailer")),
                "{asked}"
            );
        }
        let queued = db.downlinks(Some("t1"), 10).await.expect("downlinks");
        assert_eq!(queued.iter().filter(|d| d.kind == "send_picture").count(), 3, "{queued:?}");
        db.close().await;
    }

    /// The examples in docs/CONSOLE.md, one per command, are well-formed requests whose
    /// arguments the commands take, run by a user of a role that may.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_documented_examples_are_requests_the_server_takes() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CONSOLE.md"))
                .expect("docs/CONSOLE.md");
        let block = doc
            .split("### One request per command")
            .nth(1)
            .and_then(|rest| rest.split("```json").nth(1))
            .and_then(|rest| rest.split("```").next())
            .expect("the examples block");
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
        let db = Records::open(&url).await.expect("open");
        let mut config = crate::Config::default();
        config.server.data_dir = dir.path().to_path_buf();
        for role in Role::ALL {
            db.grant(&role.to_string(), role, "chief", "memo", 1).await.expect("grant");
        }
        let mut seen = Vec::new();
        for line in block.lines().filter(|l| !l.trim().is_empty()) {
            let request = crate::console::protocol::parse(line.as_bytes())
                .unwrap_or_else(|e| panic!("{line}: {e:?}"));
            let role = Role::ALL
                .into_iter()
                .find(|r| allowed(*r, &request.command))
                .expect("a role may run it");
            let r = handle(&db, &config, &role.to_string(), line.as_bytes(), 10).await;
            let error = r.error.unwrap_or_default();
            assert!(!error.starts_with("args:") && !error.contains("duties"), "{line}: {error}");
            seen.push(request.command);
        }
        for c in COMMANDS {
            assert!(seen.iter().any(|s| s == c), "no example of {c}");
        }
        db.close().await;
    }

    /// Every command against every role, through the same entry point the broker feeds: each
    /// role gets exactly its duties, everything else is refused, and every request is audited.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_role_gets_exactly_its_commands_and_every_request_is_audited() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
        let db = Records::open(&url).await.expect("open");
        let mut config = crate::Config::default();
        config.bca.outbox_dir = dir.path().join("outbox");
        for role in Role::ALL {
            let name = format!("{role:?}").to_lowercase();
            db.grant(&name, role, "chief", "memo 2026-14", 1).await.expect("grant");
        }
        assert!(
            db.grant("x", Role::Viewer, "", "memo", 1).await.is_err(),
            "no authorisation, no access"
        );
        let mut requests = 0;
        for role in Role::ALL {
            let user = format!("{role:?}").to_lowercase();
            for command in COMMANDS {
                let payload =
                    json!({"id": "1", "command": command, "purpose": "test", "case": "C-1"});
                let r = handle(&db, &config, &user, payload.to_string().as_bytes(), 5).await;
                requests += 1;
                let refused =
                    r.error.as_deref().is_some_and(|e| e.contains("not among the duties"));
                assert_eq!(refused, !allowed(role, command), "{role:?} {command}: {r:?}");
                assert_eq!(r.id, "1");
            }
        }
        assert_eq!(audit_count(&db).await, requests);

        // A search without a purpose or a case is refused, and the refusal audited.
        let before = audit_count(&db).await;
        let bare = br#"{"id":"2","command":"plates.search","args":{"plate":"ABC123"}}"#;
        let r = handle(&db, &config, "investigator", bare, 6).await;
        assert!(r.error.as_deref().is_some_and(|e| e.contains("purpose and a case")), "{r:?}");
        assert_eq!(audit_count(&db).await, before + 1);
        let (action, case): (String, String) =
            sqlx::query_as("SELECT action, case_number FROM audit ORDER BY seq DESC LIMIT 1")
                .fetch_one(db.pool())
                .await
                .expect("entry");
        assert_eq!((action.as_str(), case.as_str()), ("console.refused", ""));
        // With them but no legal basis, or two, it is refused too (and audited).
        for basis in ["", r#","warrant":"W-1","exigency":"chase""#, r#","exigency":" ""#] {
            let search = format!(
                r#"{{"id":"3","command":"plates.search","purpose":"stolen car","case":"24-9","args":{{"plate":"abc-123"{basis}}}}}"#
            );
            let r = handle(&db, &config, "investigator", search.as_bytes(), 7).await;
            assert!(r.error.as_deref().is_some_and(|e| e.contains("legal basis")), "{r:?}");
        }
        // Under exigency it reaches three days back at most; a warrant reaches retention.
        let search = |args: &str| {
            format!(
                r#"{{"id":"3","command":"plates.search","purpose":"stolen car","case":"24-9","args":{{"plate":"abc-123",{args}}}}}"#
            )
        };
        let long = search(r#""exigency":"abducted child, vehicle seen leaving","days":10"#);
        let r = handle(&db, &config, "investigator", long.as_bytes(), 7).await;
        assert!(r.error.as_deref().is_some_and(|e| e.contains("needs a warrant")), "{r:?}");
        let r = handle(
            &db,
            &config,
            "investigator",
            search(r#""warrant":"W-24-9","days":60"#).as_bytes(),
            7,
        )
        .await;
        assert!(r.ok, "{r:?}");
        let (detail,): (String,) =
            sqlx::query_as("SELECT detail FROM audit ORDER BY seq DESC LIMIT 1")
                .fetch_one(db.pool())
                .await
                .expect("entry");
        assert!(detail.contains("W-24-9"), "the basis is in the audit trail: {detail}");
        let r = handle(
            &db,
            &config,
            "investigator",
            search(r#""warrant":"W-24-9","days":61"#).as_bytes(),
            7,
        )
        .await;
        assert!(r.error.as_deref().is_some_and(|e| e.contains("days: 1-60")), "{r:?}");
        // With them and a basis, it runs and the entry carries them.
        let exigent = search(r#""exigency":"abducted child, vehicle seen leaving""#);
        let r = handle(&db, &config, "investigator", exigent.as_bytes(), 7).await;
        assert!(r.ok, "{r:?}");
        let (purpose, case): (String, String) =
            sqlx::query_as("SELECT purpose, case_number FROM audit ORDER BY seq DESC LIMIT 1")
                .fetch_one(db.pool())
                .await
                .expect("entry");
        assert_eq!((purpose.as_str(), case.as_str()), ("stolen car", "24-9"));
        // Strangers, disabled users and garbage get clear answers.
        let r = handle(&db, &config, "nobody", br#"{"id":"4","command":"status"}"#, 8).await;
        assert!(r.error.as_deref().is_some_and(|e| e.contains("no console user")), "{r:?}");
        assert!(db.disable_user("viewer").await.expect("disable"));
        let r = handle(&db, &config, "viewer", br#"{"id":"5","command":"status"}"#, 9).await;
        assert!(!r.ok);
        let r = handle(&db, &config, "operator", b"\xff\x00 not json", 10).await;
        assert!(r.error.as_deref().is_some_and(|e| e.starts_with("malformed request")), "{r:?}");
        let r = handle(
            &db,
            &config,
            "operator",
            br#"{"id":"6","command":"deployments.end","args":{"x":1}}"#,
            11,
        )
        .await;
        assert!(r.error.as_deref().is_some_and(|e| e.starts_with("args:")), "{r:?}");
        // An operator acknowledges an alert once, with a known outcome.
        let read = crate::records::tests::read_at(1, "HOT123", 1_000);
        let alert = trailer_wire::Alert {
            trailer_id: "t1".into(),
            alert_id: 9,
            read,
            list_name: "mn-state".into(),
            list_version: 1,
            category: trailer_wire::HitCategory::StolenVehicle,
            case_number: None,
        };
        let mut tx = db.begin().await.expect("begin");
        crate::records::write::alert(&mut tx, db.rules(), "t1", &alert, 1_500)
            .await
            .expect("alert");
        tx.commit().await.expect("commit");
        let ack = |outcome: &str| {
            json!({"id": "7", "command": "alerts.ack", "args": {"trailer": "t1", "alert_id": 9, "outcome": outcome}})
                .to_string()
        };
        let r = handle(&db, &config, "operator", ack("sure").as_bytes(), 12).await;
        assert!(r.error.as_deref().is_some_and(|e| e.contains("outcome")), "{r:?}");
        let r = handle(&db, &config, "operator", ack("confirmed-acted").as_bytes(), 13).await;
        assert!(r.ok, "{r:?}");
        let r = handle(&db, &config, "operator", ack("misread").as_bytes(), 14).await;
        assert!(r.error.as_deref().is_some_and(|e| e.contains("no open alert")), "{r:?}");
        let alerts = db.list_alerts(10).await.expect("alerts");
        assert_eq!(alerts[0].outcome.as_deref(), Some("confirmed-acted"));
        // The alert's read announced a new reader: a records supervisor sends its notice (to
        // the outbox, by default, for staff to send on).
        let send = br#"{"id":"8","command":"notices.send","args":{"id":1}}"#;
        let r = handle(&db, &config, "recordssupervisor", send, 15).await;
        assert!(r.ok, "{r:?}");
        assert!(dir.path().join("outbox/alpr-notice-1.html").exists());
        let unsent = db.notices(15, true).await.expect("notices");
        assert!(
            unsent.iter().any(|n| n.id == 1 && n.rendered_ms == Some(15)),
            "written to the outbox is not sent: {unsent:?}"
        );
        let r = handle(&db, &config, "operator", send, 16).await;
        assert!(r.error.as_deref().is_some_and(|e| e.contains("not among the duties")), "{r:?}");
        // An ACP request's plate is in no audit entry, even when the request is refused over it.
        let acp = br#"{"id":"9","command":"acp.add","args":{"plate":7654321,"reference":"ACP-9"}}"#;
        let r = handle(&db, &config, "recordssupervisor", acp, 17).await;
        assert!(r.error.as_deref().is_some_and(|e| e.starts_with("args:")), "{r:?}");
        let details: Vec<(String,)> =
            sqlx::query_as("SELECT detail FROM audit").fetch_all(db.pool()).await.expect("audit");
        assert!(details.iter().all(|(d,)| !d.contains("7654321")), "{details:?}");
        assert!(details.iter().any(|(d,)| d.contains("ACP-9")));
        // That an ACP request was made is not public: the public trail shows no entry of it,
        // and pages by time, with no sequence number whose gap would betray one.
        let public = db.audit_public(None, 1000).await.expect("public trail");
        assert!(!public.is_empty());
        assert!(public.iter().all(|e| !e.action.contains("acp")), "{public:?}");
        let json = serde_json::to_string(&public).expect("json");
        assert!(!json.contains("seq"), "{json}");
        let older = db.audit_public(Some(public[1].at_ms), 1000).await.expect("older");
        assert_eq!(older.len(), public.iter().filter(|e| e.at_ms < public[1].at_ms).count());
        assert_eq!(db.audit_verify().await.expect("verify").map(|n| n > 0), Ok(true));
        db.close().await;
    }
}
