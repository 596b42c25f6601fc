//! The console's live, retained topics: what each operator's screen shows without asking.
//! `console/{user}/live/{topic}` carries the newest state of one topic for one user, retained
//! by the broker so a console that connects sees it at once. The broker lets a user read only
//! their own tree; the server publishes there only the topics of that user's role, so open
//! alerts reach operators only and notices records supervisors only.
//!
//! [`Publisher`] is pure: given the users and a snapshot it says what to publish (only what
//! changed) and what to clear (a user disabled or moved to another role).
use super::roles::Role;
use crate::records::{NoticeState, Records, RecordsError};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// Trailer status and health.
pub const STATUS: &str = "status";
/// Items waiting on each trailer for the server.
pub const BACKLOG: &str = "backlog";
/// Alerts no operator has acknowledged yet.
pub const ALERTS: &str = "alerts";
/// BCA notices not sent yet, due or overdue.
pub const NOTICES: &str = "notices";

/// The live topics a role sees.
pub fn topics_for(role: Role) -> &'static [&'static str] {
    match role {
        Role::Operator => &[STATUS, BACKLOG, ALERTS],
        Role::RecordsSupervisor => &[STATUS, BACKLOG, NOTICES],
        _ => &[STATUS, BACKLOG],
    }
}

/// Each topic's newest payload.
pub type Snapshot = BTreeMap<&'static str, Vec<u8>>;

/// The live state from the records at `now`.
pub async fn snapshot(records: &Records, now: i64) -> Result<Snapshot, RecordsError> {
    let health = records.health().await?;
    let backlog: Vec<Value> = health
        .iter()
        .map(|h| {
            json!({"trailer": h["trailer"], "backlog_items": h["backlog_items"],
                   "reported_at": h["reported_at"], "online": h["online"]})
        })
        .collect();
    let alerts: Vec<_> =
        records.list_alerts(1000).await?.into_iter().filter(|a| a.outcome.is_none()).collect();
    let notices: Vec<Value> = records
        .notices(now, true)
        .await?
        .into_iter()
        .map(|n| {
            json!({"id": n.id, "reader": n.reader, "kind": n.kind, "place": n.place,
                   "due": n.due_at(), "overdue": n.state == NoticeState::Overdue,
                   "written_to_outbox": n.rendered_ms.is_some(), "last_error": n.last_error})
        })
        .collect();
    let bytes = |v: Value| serde_json::to_vec(&v).unwrap_or_default();
    Ok(BTreeMap::from([
        (STATUS, bytes(Value::Array(health))),
        (BACKLOG, bytes(Value::Array(backlog))),
        (ALERTS, bytes(serde_json::to_value(&alerts).unwrap_or(Value::Null))),
        (NOTICES, bytes(Value::Array(notices))),
    ]))
}

/// What is on the broker, so only changes are published.
#[derive(Debug, Default)]
pub struct Publisher {
    sent: HashMap<String, Vec<u8>>,
}

impl Publisher {
    /// The retained messages to publish, as (topic, payload); an empty payload clears a topic
    /// the user may no longer see.
    pub fn plan(
        &mut self,
        users: &[(String, Role)],
        snapshot: &Snapshot,
    ) -> Vec<(String, Vec<u8>)> {
        let mut wanted: HashMap<String, &Vec<u8>> = HashMap::new();
        for (user, role) in users {
            for topic in topics_for(*role) {
                if let Some(payload) = snapshot.get(topic) {
                    wanted.insert(format!("console/{user}/live/{topic}"), payload);
                }
            }
        }
        let mut out = Vec::new();
        let gone: Vec<String> =
            self.sent.keys().filter(|t| !wanted.contains_key(*t)).cloned().collect();
        for topic in gone {
            self.sent.remove(&topic);
            out.push((topic, Vec::new()));
        }
        for (topic, payload) in wanted {
            if self.sent.get(&topic) != Some(payload) {
                self.sent.insert(topic.clone(), payload.clone());
                out.push((topic, payload.clone()));
            }
        }
        out.sort();
        out
    }

    /// Forgets what was sent (after a reconnect the broker still has it, but publishing it
    /// again is harmless and covers a broker that lost its store).
    pub fn reset(&mut self) {
        self.sent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(alerts: &str) -> Snapshot {
        BTreeMap::from([
            (STATUS, b"[s]".to_vec()),
            (BACKLOG, b"[b]".to_vec()),
            (ALERTS, alerts.as_bytes().to_vec()),
            (NOTICES, b"[n]".to_vec()),
        ])
    }

    #[test]
    fn each_user_gets_their_roles_topics_and_only_changes() {
        let mut p = Publisher::default();
        let users = vec![("ann".to_string(), Role::Operator), ("vic".to_string(), Role::Viewer)];
        let first = p.plan(&users, &snap("[1]"));
        let topics: Vec<&str> = first.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            topics,
            [
                "console/ann/live/alerts",
                "console/ann/live/backlog",
                "console/ann/live/status",
                "console/vic/live/backlog",
                "console/vic/live/status",
            ]
        );
        assert!(p.plan(&users, &snap("[1]")).is_empty(), "nothing changed");
        assert_eq!(
            p.plan(&users, &snap("[2]")),
            vec![("console/ann/live/alerts".into(), b"[2]".to_vec())]
        );
        // Ann moves to investigations: her alerts are cleared; Vic is disabled: all of his.
        let users = vec![("ann".to_string(), Role::Investigator)];
        let cleared = p.plan(&users, &snap("[2]"));
        assert_eq!(
            cleared,
            vec![
                ("console/ann/live/alerts".into(), Vec::new()),
                ("console/vic/live/backlog".into(), Vec::new()),
                ("console/vic/live/status".into(), Vec::new()),
            ]
        );
    }

    #[test]
    fn notices_are_for_records_supervisors_and_alerts_for_operators() {
        for role in Role::ALL {
            assert_eq!(topics_for(role).contains(&ALERTS), role == Role::Operator, "{role:?}");
            assert_eq!(
                topics_for(role).contains(&NOTICES),
                role == Role::RecordsSupervisor,
                "{role:?}"
            );
        }
    }
}
