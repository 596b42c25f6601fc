//! The command layer's own promises: an action and its audit entry commit together, and a
//! request gives the same answer and the same audit entry whichever way it came.
use super::*;
use crate::records::Records;
use sqlx::Row;

async fn scratch() -> (tempfile::TempDir, Records) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
    let db = Records::open(&url).await.expect("open");
    (dir, db)
}

async fn count(db: &Records, query: &'static str) -> i64 {
    sqlx::query(query).fetch_one(db.pool()).await.expect("count").get(0)
}

fn hold_args() -> Value {
    json!({"kind": "active-investigation", "requester": "Det. Ruiz", "request_date": "2026-11-30",
           "reads": [["t1", 7]]})
}

/// When the audit entry cannot be written, the action it would record is undone: no hold, no
/// downlink to the trailer, and the user is told nothing was done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_whose_audit_write_fails_leaves_no_change() {
    let (_dir, db) = scratch().await;
    db.grant("rita", Role::RecordsSupervisor, "chief", "memo 26-3", 1).await.expect("grant");
    let config = crate::Config::default();
    let rita = Actor { user: "rita".into(), via: Via::Console };
    let args = hold_args();
    let request =
        Request { command: "holds.place", args: &args, purpose: "burglary", case: "26-14" };
    // The audit trail refuses every new entry, as a full disk or a broken table would.
    sqlx::query(
        "CREATE TRIGGER audit_fails BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(db.pool())
    .await
    .expect("trigger");
    let answer = execute(&db, &config, &rita, request, 1_790_000_000_000).await;
    assert_eq!(
        answer,
        Answer::Unavailable("the audit trail is unavailable: nothing was done".into())
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM holds").await, 0, "no hold without its record");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM held_reads").await, 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM downlinks").await, 0, "nothing told to t1");
    // With the trail working again the same request is done, and recorded with it.
    sqlx::query("DROP TRIGGER audit_fails").execute(db.pool()).await.expect("drop");
    let answer = execute(&db, &config, &rita, request, 1_790_000_000_000).await;
    assert!(matches!(answer, Answer::Done(_)), "{answer:?}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM holds").await, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit WHERE action = 'holds.place'").await, 1);
    db.close().await;
}

/// A refused action (here: a second supervisor's decision by the one who entered the
/// request) changes nothing, and the refusal is in the trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_action_changes_nothing_and_is_audited() {
    let (_dir, db) = scratch().await;
    db.grant("rita", Role::RecordsSupervisor, "chief", "memo", 1).await.expect("grant");
    let config = crate::Config::default();
    let rita = Actor { user: "rita".into(), via: Via::Console };
    let args = json!({"kind": "exculpatory", "requester": "Defence", "request_date": "2026-11-30",
                      "reads": [["t1", 7]]});
    let request = Request { command: "holds.place", args: &args, purpose: "p", case: "26-1" };
    let answer = execute(&db, &config, &rita, request, 1_790_000_000_000).await;
    assert!(matches!(&answer, Answer::Refused(w) if w.contains("charge")), "{answer:?}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM holds").await, 0);
    let (action, detail): (String, String) =
        sqlx::query_as("SELECT action, detail FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_one(db.pool())
            .await
            .expect("entry");
    assert_eq!(action, "holds.place");
    assert!(detail.contains("refused: an exculpatory hold names the charge"), "{detail}");
    db.close().await;
}

/// The console and the command line are two ways into the same command: for the same request
/// they give the same answer and the same audit entry, but for the actor's transport.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_the_command_line_give_the_same_answer_and_entry() {
    let (_dir, db) = scratch().await;
    db.grant("otto", Role::Operator, "chief", "memo", 1).await.expect("grant");
    let config = crate::Config::default();
    let now = 1_790_000_000_000;
    let mut tx = db.begin().await.expect("begin");
    for id in 1..=2 {
        let read = crate::records::tests::read_at(id, "HOT123", now - 1_000 * id as i64);
        let hit = crate::records::tests::hit(id, read, trailer_wire::HitCategory::Warrant);
        crate::records::write::alert(&mut tx, db.rules(), "t1", &hit, now).await.expect("hit");
    }
    tx.commit().await.expect("commit");
    let args = json!({"open": true, "limit": 5});
    let request = Request { command: "alerts.list", args: &args, purpose: "shift", case: "" };
    let mut seen = Vec::new();
    for via in [Via::Console, Via::CommandLine] {
        let actor = Actor { user: "otto".into(), via };
        let answer = execute(&db, &config, &actor, request, now).await;
        let entry: (String, String, String, String, String, i64) = sqlx::query_as(
            "SELECT actor, action, purpose, case_number, detail, result_count FROM audit \
             ORDER BY seq DESC LIMIT 1",
        )
        .fetch_one(db.pool())
        .await
        .expect("entry");
        seen.push((answer, entry));
    }
    let (console, cli) = (&seen[0], &seen[1]);
    assert!(matches!(&console.0, Answer::Done(v) if v.as_array().is_some_and(|a| a.len() == 2)));
    assert_eq!(console.0, cli.0, "the same answer");
    assert_eq!((console.1.0.as_str(), cli.1.0.as_str()), ("console:otto", "cli:otto"));
    let rest = |e: &(String, String, String, String, String, i64)| {
        (e.1.clone(), e.2.clone(), e.3.clone(), e.4.clone(), e.5)
    };
    assert_eq!(rest(&console.1), rest(&cli.1), "the same entry but for the transport");
    // The same refusal for a user of neither kind.
    let stranger = Actor { user: "mallory".into(), via: Via::CommandLine };
    let answer = execute(&db, &config, &stranger, request, now).await;
    assert_eq!(answer, Answer::Refused("mallory is no console user (ask an administrator)".into()));
    db.close().await;
}
