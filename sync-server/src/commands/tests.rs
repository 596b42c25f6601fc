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

/// A certificate request for `cn` made with a fresh key, as a trailer makes it.
fn request_for(cn: &str) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    params.serialize_request(&key).expect("request").pem().expect("pem")
}

/// An administrator enrols a trailer from the request its own key made: the answer has the
/// certificate for it, the agency CA, the signing key and the starting settings, and the
/// registry knows it. A request naming another trailer changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trailer_is_enrolled_from_its_own_request_and_handed_what_it_needs() {
    let (dir, db) = scratch().await;
    let pki = dir.path().join("pki");
    crate::pki::init(&pki, "Test Police Department", &["broker.test".to_string()]).expect("pki");
    db.grant("ada", Role::Admin, "chief", "memo", 1).await.expect("grant");
    let mut config = crate::Config::default();
    config.pki.dir = pki.clone();
    config.pki.trailer_broker_host = "alpr.agency.test".into();
    let ada = Actor { user: "ada".into(), via: Via::Console };
    let now = 1_790_000_000_000;
    // A request whose CN is not the trailer named.
    let args = json!({"trailer": "trailer-07", "request": request_for("trailer-99")});
    let r = Request { command: "trailers.enroll", args: &args, purpose: "", case: "" };
    let answer = execute(&db, &config, &ada, r, now).await;
    assert!(matches!(&answer, Answer::Refused(w) if w.contains("request")), "{answer:?}");
    assert!(db.trailers().await.expect("registry").is_empty(), "nothing enrolled");
    let args = json!({"trailer": "trailer-07", "request": request_for("trailer-07"),
                      "note": "Hwy 14 crew"});
    let r = Request { command: "trailers.enroll", args: &args, purpose: "", case: "" };
    let Answer::Done(data) = execute(&db, &config, &ada, r, now).await else { panic!("enrolled") };
    let (cn, _, _) =
        crate::pki::describe(data["certificate"].as_str().expect("chain")).expect("pem");
    assert_eq!(cn, "trailer-07");
    assert_eq!(data["ca"], std::fs::read_to_string(pki.join("ca.pem")).expect("ca"));
    assert_eq!(data["config_signing_key"].as_str().map(str::len), Some(64));
    let settings: toml::Table = data["config"].as_str().expect("toml").parse().expect("toml");
    assert_eq!(settings["trailer"]["id"].as_str(), Some("trailer-07"));
    assert_eq!(settings["sync"]["broker_host"].as_str(), Some("alpr.agency.test"));
    assert_eq!(settings["sync"]["broker_port"].as_integer(), Some(8883));
    let registry = db.trailers().await.expect("registry");
    assert_eq!(registry.len(), 1);
    assert_eq!(
        (registry[0].enrolled_by.as_str(), registry[0].note.as_str()),
        ("console:ada", "Hwy 14 crew")
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit WHERE action = 'trailers.enroll'").await, 2);
    // An operator may see the fleet but not enrol.
    db.grant("otto", Role::Operator, "chief", "memo", 1).await.expect("grant");
    let otto = Actor { user: "otto".into(), via: Via::Console };
    let r = Request { command: "trailers.enroll", args: &args, purpose: "", case: "" };
    assert!(matches!(execute(&db, &config, &otto, r, now).await, Answer::Refused(_)));
    let r = Request { command: "trailers.list", args: &Value::Null, purpose: "", case: "" };
    let Answer::Done(fleet) = execute(&db, &config, &otto, r, now).await else { panic!("list") };
    assert_eq!(fleet[0]["trailer_id"], "trailer-07");
    db.close().await;
}

/// A notice's documents reach the user as files with their digests, and a release's bundle
/// piece by piece, each piece at a stated offset and the file's digest the manifest's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_and_bundles_reach_the_user_as_files_with_their_digests() {
    use crate::records::{NewRelease, write};
    use base64::Engine;
    use sha2::Digest;
    let (dir, db) = scratch().await;
    let now = 1_790_000_000_000;
    let mut config = crate::Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    // A read with a large picture (a bundle file over one piece), and its BCA notice.
    let mut tx = db.begin().await.expect("begin");
    let read = crate::records::tests::read_at(1, "REL123", now);
    write::reads(&mut tx, db.rules(), "t1", &[read], now).await.expect("read");
    let jpeg: Vec<u8> =
        (0..(super::releases::DOWNLOAD_CHUNK as usize * 2 + 77)).map(|i| (i % 251) as u8).collect();
    write::picture(&mut tx, "t1", 1, trailer_wire::PictureKind::Context, &jpeg, now)
        .await
        .expect("pic");
    tx.commit().await.expect("commit");
    for who in ["sup-a", "sup-b", "sup-c"] {
        db.grant(who, Role::RecordsSupervisor, "chief", "memo", 1).await.expect("grant");
    }
    let new = NewRelease {
        requesting_agency: "Olmsted County Sheriff".into(),
        requester: "Det. A. Berg".into(),
        purpose: "burglary".into(),
        factual_basis: "vehicle seen leaving".into(),
        case_number: "OC-1".into(),
        authorisation: "policy 462.6".into(),
        plate: "REL123".into(),
        from_ms: now - 1000,
        to_ms: now + 1000,
    };
    let id = db.release_request(&new, "console:sup-a", now).await.expect("request");
    db.release_review(id, "complete", "console:sup-b", now).await.expect("review");
    db.release_decide(id, true, "sufficient", "console:sup-c", now).await.expect("approve");
    db.release_fulfil(id, &dir.path().join("releases"), "console:sup-b", now)
        .await
        .expect("fulfil");
    let sup = Actor { user: "sup-b".into(), via: Via::Console };
    let ask = async |command: &str, args: Value| match execute(
        &db,
        &config,
        &sup,
        Request { command, args: &args, purpose: "", case: "" },
        now,
    )
    .await
    {
        Answer::Done(d) => d,
        other => panic!("{command}: {other:?}"),
    };
    let listed = ask("release.files", json!({"id": id})).await;
    let files = listed["files"].as_array().expect("files");
    assert_eq!(files.last().map(|f| &f["name"]), Some(&json!("manifest.json")));
    let picture = files
        .iter()
        .find(|f| f["name"].as_str().is_some_and(|n| n.starts_with("pictures/")))
        .expect("the picture");
    let name = picture["name"].as_str().expect("name").to_string();
    let (mut whole, mut offset, mut pieces) = (Vec::new(), 0u64, 0);
    loop {
        let piece =
            ask("release.download", json!({"id": id, "file": name, "offset": offset})).await;
        assert_eq!(piece["offset"], offset);
        whole.extend(
            base64::engine::general_purpose::STANDARD
                .decode(piece["base64"].as_str().expect("bytes"))
                .expect("base64"),
        );
        pieces += 1;
        match piece["next_offset"].as_u64() {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert_eq!(pieces, 3, "two full pieces and the rest");
    assert_eq!(whole, jpeg);
    assert_eq!(picture["sha256"], hex::encode(sha2::Sha256::digest(&whole)));
    // A name outside the manifest is refused, whatever it climbs to.
    let args = json!({"id": id, "file": "../c.db"});
    let r = Request { command: "release.download", args: &args, purpose: "", case: "" };
    assert!(
        matches!(execute(&db, &config, &sup, r, now).await, Answer::Refused(w) if w.contains("has no"))
    );
    // The notice for the new reader: three files, each with its digest.
    let notices = db.notices(now, false).await.expect("notices");
    let rendered = ask("notices.render", json!({"id": notices[0].id})).await;
    let files = rendered["files"].as_array().expect("files");
    assert_eq!(files.len(), 3, "text, HTML and e-mail");
    for f in files {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(f["base64"].as_str().expect("bytes"))
            .expect("base64");
        assert_eq!(f["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));
        assert_eq!(f["folder"], "notices");
    }
    db.close().await;
}
