//! The Address Confidentiality Program: a participant's plate added, their reads destroyed
//! here and on every trailer. Its audit entry names the reference only
//! ([`super::detail`]).
use super::{Call, Done};
use crate::records::Session;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Add {
    plate: String,
    reference: String,
}

pub(super) async fn add(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Add = c.args()?;
    let added = s.acp_add(&a.plate, &a.reference, &c.actor, c.now).await?;
    let n = added.reads_destroyed as i64;
    Ok((serde_json::to_value(&added).unwrap_or_default(), n))
}
