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
    let alerts: Vec<_> = records.list_alerts(1000, true).await?;
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

/// Every live topic.
pub const ALL: [&str; 4] = [STATUS, BACKLOG, ALERTS, NOTICES];

/// The audit entry for publishing `payload` on `topic`, if it delivers hits to a person: the
/// open alerts (plates, times, places) on an operator's live topic. Responding to a hit is the
/// purpose the law allows; each delivery is an access, recorded before it is published.
pub fn delivery_entry(topic: &str, payload: &[u8], now: i64) -> Option<crate::audit::Entry> {
    let user = topic.strip_prefix("console/")?.strip_suffix(&format!("/live/{ALERTS}"))?;
    let alerts: Vec<Value> = serde_json::from_slice(payload).ok()?;
    if alerts.is_empty() {
        return None;
    }
    let ids: Vec<String> = alerts
        .iter()
        .filter_map(|a| Some(format!("{}:{}", a["trailer_id"].as_str()?, a["alert_id"].as_u64()?)))
        .collect();
    Some(crate::audit::Entry {
        at: now,
        actor: format!("console:{user}"),
        action: "alerts.delivered".into(),
        purpose: "responding to hotlist hits".into(),
        case_number: String::new(),
        detail: format!("{} open alerts delivered live: {}", alerts.len(), ids.join(", ")),
        result_count: alerts.len() as i64,
    })
}

/// What is on the broker, so only changes are published. An empty payload is a cleared topic.
#[derive(Debug, Default)]
pub struct Publisher {
    sent: HashMap<String, Vec<u8>>,
}

impl Publisher {
    /// The retained messages to publish, as (topic, payload), for every user in the table:
    /// `Some(role)` for an active user, `None` for a disabled one. An empty payload clears a
    /// topic the user may not see. After [`Publisher::reset`] (a start, a reconnect) every
    /// topic of every user is published or cleared once more, so a user disabled while the
    /// server was away loses what the broker kept for them.
    pub fn plan(
        &mut self,
        users: &[(String, Option<Role>)],
        snapshot: &Snapshot,
    ) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (user, role) in users {
            for topic in ALL {
                let name = format!("console/{user}/live/{topic}");
                let payload = match role {
                    Some(r) if topics_for(*r).contains(&topic) => {
                        snapshot.get(topic).cloned().unwrap_or_default()
                    }
                    _ => Vec::new(),
                };
                if self.sent.get(&name) != Some(&payload) {
                    out.push((name.clone(), payload.clone()));
                    self.sent.insert(name.clone(), payload);
                }
                seen.insert(name);
            }
        }
        // A user no longer in the table at all.
        let gone: Vec<String> = self
            .sent
            .iter()
            .filter(|(t, p)| !seen.contains(*t) && !p.is_empty())
            .map(|(t, _)| t.clone())
            .collect();
        for topic in gone {
            self.sent.insert(topic.clone(), Vec::new());
            out.push((topic, Vec::new()));
        }
        out.sort();
        out
    }

    /// Forgets what was sent: the next plan publishes everything again (after a reconnect,
    /// or a publish that failed).
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

    /// Each delivery of open alerts to an operator is an audit entry naming the person and
    /// the alerts; other topics, and an empty list, are none.
    #[test]
    fn a_delivery_of_hits_to_a_person_is_audited() {
        let alerts = br#"[{"trailer_id":"t1","alert_id":7,"plate":"ABC123"},{"trailer_id":"t2","alert_id":9}]"#;
        let e = delivery_entry("console/otto/live/alerts", alerts, 5).expect("an entry");
        assert_eq!(
            (e.actor.as_str(), e.action.as_str(), e.result_count),
            ("console:otto", "alerts.delivered", 2)
        );
        assert!(e.detail.contains("t1:7") && e.detail.contains("t2:9"), "{}", e.detail);
        assert!(!e.detail.contains("ABC123"), "no plate in the trail");
        assert!(delivery_entry("console/otto/live/alerts", b"[]", 5).is_none());
        assert!(delivery_entry("console/otto/live/alerts", b"", 5).is_none(), "a cleared topic");
        assert!(delivery_entry("console/otto/live/status", alerts, 5).is_none());
    }

    /// The broker keeps the operators' alerts topic (retained, persisted to its disk): it
    /// lives exactly as long as the alerts it carries. Once retention destroys an alert, the
    /// next plan replaces the retained payload with one that no longer holds its plate.
    #[tokio::test]
    async fn a_retained_alert_topic_loses_a_hit_when_retention_destroys_it() {
        const DAY: i64 = 86_400_000;
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Records::open(&url).await.expect("open");
        let seen = 1_790_000_000_000;
        let alert = trailer_wire::Alert {
            trailer_id: "t1".into(),
            alert_id: 1,
            read: crate::records::tests::read_at(1, "OLD111", seen),
            list_name: "mn-state".into(),
            list_version: 1,
            category: trailer_wire::HitCategory::StolenVehicle,
            case_number: None,
        };
        let mut tx = db.begin().await.expect("begin");
        crate::records::write::alert(&mut tx, db.rules(), "t1", &alert, seen).await.expect("alert");
        tx.commit().await.expect("commit");
        let users = vec![("ann".to_string(), Some(Role::Operator))];
        let topic = "console/ann/live/alerts".to_string();
        let mut p = Publisher::default();
        let carries = |plan: &[(String, Vec<u8>)]| {
            plan.iter()
                .find(|(t, _)| *t == topic)
                .map(|(_, b)| String::from_utf8_lossy(b).contains("OLD111"))
        };
        let first = p.plan(&users, &snapshot(&db, seen).await.expect("snapshot"));
        assert_eq!(carries(&first), Some(true), "the open hit is delivered");
        db.purge(seen + 61 * DAY, 60).await.expect("purge");
        let next = p.plan(&users, &snapshot(&db, seen + 61 * DAY).await.expect("snapshot"));
        assert_eq!(carries(&next), Some(false), "the retained payload is replaced: {next:?}");
    }

    #[test]
    fn each_user_gets_their_roles_topics_and_only_changes() {
        let mut p = Publisher::default();
        let users = vec![
            ("ann".to_string(), Some(Role::Operator)),
            ("vic".to_string(), Some(Role::Viewer)),
        ];
        let first = p.plan(&users, &snap("[1]"));
        let shown: Vec<&str> =
            first.iter().filter(|(_, b)| !b.is_empty()).map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            shown,
            [
                "console/ann/live/alerts",
                "console/ann/live/backlog",
                "console/ann/live/status",
                "console/vic/live/backlog",
                "console/vic/live/status",
            ]
        );
        let cleared: Vec<&str> =
            first.iter().filter(|(_, b)| b.is_empty()).map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            cleared,
            ["console/ann/live/notices", "console/vic/live/alerts", "console/vic/live/notices"],
            "what a role may not see is cleared, in case an earlier server left it"
        );
        assert!(p.plan(&users, &snap("[1]")).is_empty(), "nothing changed");
        assert_eq!(
            p.plan(&users, &snap("[2]")),
            vec![("console/ann/live/alerts".into(), b"[2]".to_vec())]
        );
        // Ann moves to investigations: her alerts are cleared; Vic is disabled: all of his.
        let users = vec![("ann".to_string(), Some(Role::Investigator)), ("vic".to_string(), None)];
        assert_eq!(
            p.plan(&users, &snap("[2]")),
            vec![
                ("console/ann/live/alerts".into(), Vec::new()),
                ("console/vic/live/backlog".into(), Vec::new()),
                ("console/vic/live/status".into(), Vec::new()),
            ]
        );
        // A new server (or a reconnect) clears again what nobody may see, then stays quiet.
        p.reset();
        let again = p.plan(&users, &snap("[2]"));
        assert!(again.contains(&("console/vic/live/alerts".into(), Vec::new())), "{again:?}");
        assert!(p.plan(&users, &snap("[2]")).is_empty());
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
