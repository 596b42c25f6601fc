//! The audit trail's own commands: verify the chain, the biennial audit report, the log of
//! use for a range of days.
use super::{Call, Done, Failure};
use crate::records::Records;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    from: String,
    to: String,
}

pub(super) async fn verify(records: &Records) -> Done {
    let verdict = records.audit_verify().await?;
    let (seq, hash) = records.audit_head().await?;
    Ok((
        json!({"intact": verdict.is_ok(), "entries": verdict.as_ref().ok(), "broken": verdict.err(), "head": [seq, hash]}),
        0,
    ))
}

pub(super) async fn report(records: &Records, c: &Call<'_>) -> Done {
    let a: Range = c.args()?;
    let report = crate::report::build(records, c.config, &a.from, &a.to, c.now).await?;
    let n = report.audit.entries;
    Ok((serde_json::to_value(&report).unwrap_or(Value::Null), n))
}

pub(super) async fn public_log(records: &Records, c: &Call<'_>) -> Done {
    let a: Range = c.args()?;
    let (from, to) = crate::public::log_range(records.rules(), Some(a.from), Some(a.to), c.now)
        .map_err(Failure::Refused)?;
    let log = records.use_log(&from, &to, c.now).await?;
    Ok((serde_json::to_value(&log).unwrap_or(Value::Null), log.periods.len() as i64))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditDone {
    /// The local day the audit was completed.
    completed: String,
    auditor: String,
    /// The findings as published.
    summary: String,
    /// The audit found the program out of compliance.
    #[serde(default)]
    findings: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reported {
    id: i64,
    how: String,
}

/// `audit.result`: an independent audit's result, published at once; its report to the
/// Commissioner falls due 30 days after the audit.
pub(super) async fn result(s: &mut crate::records::Session, c: &Call<'_>) -> Done {
    let a: AuditDone = c.args()?;
    let Some((at, _)) = crate::report::local_day_bounds(&s.rules().time_zone, &a.completed) else {
        return Err(Failure::Refused("completed: a day, YYYY-MM-DD".into()));
    };
    let r = s.record_audit_result(at, &a.auditor, &a.summary, !a.findings, &c.actor, c.now).await?;
    Ok((serde_json::to_value(&r).unwrap_or(Value::Null), 1))
}

/// `audit.reported`: the report of an audit sent to the Commissioner.
pub(super) async fn reported(s: &mut crate::records::Session, c: &Call<'_>) -> Done {
    let a: Reported = c.args()?;
    if !s.audit_reported(a.id, &a.how, &c.actor, c.now).await? {
        return Err(Failure::Refused(format!("no unreported audit result {}", a.id)));
    }
    Ok((json!({"reported": a.id}), 1))
}

/// `audit.results`: every audit's result with its report's due day.
pub(super) async fn results(records: &Records, c: &Call<'_>) -> Done {
    let rows = records.audit_results(c.now).await?;
    Ok((super::to_json(&rows), rows.len() as i64))
}

/// `audit.export`: every entry of the local days, whole, for an auditor.
pub(super) async fn export(records: &Records, c: &Call<'_>) -> Done {
    let a: Range = c.args()?;
    let tz = &records.rules().time_zone;
    let (Some((start, _)), Some((_, end))) =
        (crate::report::local_day_bounds(tz, &a.from), crate::report::local_day_bounds(tz, &a.to))
    else {
        return Err(Failure::Refused("from and to: days, YYYY-MM-DD".into()));
    };
    let entries = records.audit_entries(start, end).await?;
    Ok((super::to_json(&entries), entries.len() as i64))
}
