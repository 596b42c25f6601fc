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
