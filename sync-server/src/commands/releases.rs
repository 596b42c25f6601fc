//! Releases of data to another agency: requested, reviewed, decided by another supervisor,
//! fulfilled as a bundle with its manifest.
use super::{Call, Done, Failure, to_json};
use crate::records::{NewRelease, Records, Session};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
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
struct Review {
    id: i64,
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decide {
    id: i64,
    approve: bool,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Id {
    id: i64,
}

pub(super) async fn list(records: &Records) -> Done {
    let rows = records.releases().await?;
    Ok((to_json(&rows), rows.len() as i64))
}

pub(super) async fn request(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Request = c.args()?;
    let tz = &s.rules().time_zone;
    let day = |d: &str| {
        crate::report::local_day_bounds(tz, d)
            .ok_or_else(|| Failure::Refused(format!("args: {d:?} is no YYYY-MM-DD day")))
    };
    let (from_ms, _) = day(&a.from)?;
    let (_, to_end) = day(&a.to)?;
    let new = NewRelease {
        requesting_agency: a.requesting_agency,
        requester: a.requester,
        purpose: c.request.purpose.to_string(),
        factual_basis: a.factual_basis,
        case_number: c.request.case.to_string(),
        authorisation: a.authorisation,
        plate: a.plate,
        from_ms,
        to_ms: to_end - 1,
    };
    let id = s.release_request(&new, &c.actor, c.now).await?;
    Ok((json!({"release": id, "state": "requested"}), 1))
}

pub(super) async fn review(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Review = c.args()?;
    s.release_review(a.id, &a.note, &c.actor, c.now).await?;
    Ok((json!({"release": a.id, "state": "reviewed"}), 1))
}

pub(super) async fn decide(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Decide = c.args()?;
    s.release_decide(a.id, a.approve, &a.reason, &c.actor, c.now).await?;
    let state = if a.approve { "approved" } else { "denied" };
    Ok((json!({"release": a.id, "state": state}), 1))
}

/// Writes the bundle under the server's data folder and records it, on one session: if the
/// record cannot be kept, the request stays approved and a later fulfilment writes it again.
pub(super) async fn fulfil(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Id = c.args()?;
    let dir = c.config.server.data_dir.join("releases");
    let bundle = s.release_fulfil(a.id, &dir, &c.actor, c.now).await?;
    let n = bundle.reads;
    Ok((serde_json::to_value(&bundle).unwrap_or_default(), n))
}
