//! One console request for one user: the request's envelope checked ([`super::protocol`]),
//! then run by the command layer ([`crate::commands`]) as `console:{user}`, and its answer
//! put back in the envelope. A malformed request is answered with its error and audited here
//! (it never reached a command).
use super::protocol::{Request, Response};
use crate::audit::Entry;
use crate::commands::{self, Actor, Answer, Via};
use crate::records::Records;
use serde_json::Value;

pub use crate::commands::reads::{EXIGENCY_DAYS, EXIGENCY_RESULTS};

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
/// refusal or a failure of the records is the answer.
pub async fn dispatch(
    records: &Records,
    config: &crate::Config,
    user: &str,
    request: &Request,
    now: i64,
) -> Response {
    let actor = Actor { user: user.to_string(), via: Via::Console };
    let call = commands::Request {
        command: &request.command,
        args: &request.args,
        purpose: &request.purpose,
        case: &request.case,
    };
    match commands::execute(records, config, &actor, call, now).await {
        Answer::Done(data) => Response::ok(&request.id, data),
        Answer::Refused(why) | Answer::Unavailable(why) => Response::error(&request.id, why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::roles::{COMMANDS, Role, allowed};
    use serde_json::json;
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
        let how = crate::records::Acknowledgement {
            outcome: "misread",
            check: "MNJIS 26-0001: no such plate",
            note: None,
        };
        db.acknowledge_alert("t1", 1, how, "console:otto", now).await.expect("ack");
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
        assert!(r.error.as_deref().is_some_and(|e| e.contains("takes no opn")), "{r:?}");
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
            assert!(
                !error.starts_with("args:")
                    && !error.contains("duties")
                    && !error.contains("is not a command"),
                "{line}: {error}"
            );
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
        let ack = |outcome: &str, check: &str| {
            json!({"id": "7", "command": "alerts.ack", "args": {"trailer": "t1", "alert_id": 9,
                "outcome": outcome, "check": check, "note": "stopped at Main St"}})
            .to_string()
        };
        let verified = "NCIC via NLETS, query 26-55: stolen, entry valid";
        let r = handle(&db, &config, "operator", ack("sure", verified).as_bytes(), 12).await;
        assert!(r.error.as_deref().is_some_and(|e| e.contains("outcome")), "{r:?}");
        // The check against the state's systems is what the acknowledgement is for.
        let r = handle(&db, &config, "operator", ack("confirmed-acted", " ").as_bytes(), 12).await;
        assert!(r.error.as_deref().is_some_and(|e| e.contains("state's systems")), "{r:?}");
        let r =
            handle(&db, &config, "operator", ack("confirmed-acted", verified).as_bytes(), 13).await;
        assert!(r.ok, "{r:?}");
        let r = handle(&db, &config, "operator", ack("misread", verified).as_bytes(), 14).await;
        assert!(r.error.as_deref().is_some_and(|e| e.contains("no open alert")), "{r:?}");
        let alerts = db.list_alerts(10, false).await.expect("alerts");
        assert_eq!(alerts[0].outcome.as_deref(), Some("confirmed-acted"));
        assert_eq!(alerts[0].state_check.as_deref(), Some(verified));
        assert_eq!(alerts[0].note.as_deref(), Some("stopped at Main St"));
        assert_eq!(alerts[0].acknowledged_by.as_deref(), Some("console:operator"));
        assert!(alerts[0].acknowledged_at.is_some(), "{:?}", alerts[0]);
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
