//! Hotlists: uploaded in parts and checked whole, approved by a second person (an
//! investigation's list), withdrawn, listed. The trailers' downlinks are queued by the records
//! on the same session.
use super::{Call, Done, to_json};
use crate::records::{Records, Session, Upload};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Part {
    name: String,
    version: u64,
    #[serde(default)]
    part: u32,
    #[serde(default = "one")]
    parts: u32,
    /// This part of the CSV file.
    csv: String,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Version {
    name: String,
    version: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Withdraw {
    name: String,
    /// Why the list is withdrawn (the investigation closed, the list was wrong, ...).
    reason: String,
}

pub(super) async fn list(records: &Records) -> Done {
    let rows = records.hotlist_versions().await?;
    Ok((to_json(&rows), rows.len() as i64))
}

pub(super) async fn upload(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Part = c.args()?;
    let part = crate::records::hotlists::Part {
        name: &a.name,
        version: a.version,
        index: a.part,
        count: a.parts,
        data: a.csv.as_bytes(),
        purpose: c.request.purpose,
        case_number: c.request.case,
    };
    Ok(match s.hotlist_part(part, &c.actor, c.now).await? {
        Upload::Partial { received, count } => {
            (json!({"complete": false, "received": received, "parts": count}), 0)
        }
        Upload::Complete { version, .. } => {
            let n = version.trailers.len() as i64;
            (json!({"complete": true, "version": version}), n)
        }
    })
}

pub(super) async fn approve(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Version = c.args()?;
    let v = s.hotlist_approve(&a.name, a.version, &c.actor, c.now).await?;
    let n = v.trailers.len() as i64;
    Ok((json!({"approved": v}), n))
}

pub(super) async fn withdraw(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Withdraw = c.args()?;
    let trailers = s.hotlist_withdraw(&a.name, &a.reason, &c.actor, c.now).await?;
    let n = trailers.len() as i64;
    Ok((json!({"withdrawn": a.name, "trailers": trailers}), n))
}
