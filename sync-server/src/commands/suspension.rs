//! Suspension orders (Minn. Stat. 13.824 subd. 6): the Commissioner's order recorded, every
//! trailer told to stop collecting and the server to store nothing until it is lifted.
use super::{Call, Done, Failure, to_json};
use crate::records::{Records, Session};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    /// The order's reference.
    order: String,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Lift {
    /// The order or decision that lifts it.
    reference: String,
}

pub(super) async fn order(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Order = c.args()?;
    let (order, told) = s.suspend(&a.order, &a.note, &c.actor, c.now).await?;
    Ok((json!({"suspension": order, "trailers_told": told}), 1))
}

pub(super) async fn lift(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Lift = c.args()?;
    let Some((order, told)) = s.lift_suspension(&a.reference, &c.actor, c.now).await? else {
        return Err(Failure::Refused("no suspension order is in force".into()));
    };
    Ok((json!({"lifted": order, "trailers_told": told}), 1))
}

pub(super) async fn list(records: &Records) -> Done {
    let rows = records.suspensions().await?;
    Ok((to_json(&rows), rows.len() as i64))
}
