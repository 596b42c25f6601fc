//! Refused messages: what the server would not take, from whom and why (their payloads stay
//! in the database, under the same retention as reads).
use super::Done;
use crate::records::Records;
use serde_json::{Value, json};

pub(super) async fn list(records: &Records) -> Done {
    let rows: Vec<Value> = records
        .dead_letters()
        .await?
        .into_iter()
        .map(|(topic, reason)| json!({"topic": topic, "reason": reason}))
        .collect();
    let n = rows.len() as i64;
    Ok((Value::Array(rows), n))
}
