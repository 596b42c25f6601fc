//! The records behind the console's commands: ACP participants, hotlist uploads, release
//! requests and operator-started deployments, each on SQLite and on PostgreSQL.
use super::tests::{hold_of, on_both, read_at};
use super::*;
use trailer_wire::PictureKind;

const NOW: i64 = 1_790_000_000_000;

async fn rows(db: &Records, query: &'static str) -> i64 {
    sqlx::query(query).fetch_one(db.pool()).await.expect("count").get(0)
}

/// An online status from a trailer's first store.
fn online(trailer: &str, at: i64) -> trailer_wire::Status {
    super::tests::online(trailer, at, 1)
}

fn hit(alert_id: u64, read: trailer_wire::ReadMeta) -> trailer_wire::Alert {
    super::tests::hit(alert_id, read, trailer_wire::HitCategory::StolenVehicle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acp_participant_is_destroyed_here_dropped_at_ingest_and_sent_to_every_trailer() {
    on_both("acp", acp).await;
}

async fn acp(url: String) {
    let plain = Records::open(&url).await.expect("open");
    let refused = plain.acp_add("ACP123", "ACP-1", "sup", NOW).await.expect_err("no key");
    assert!(refused.to_string().contains("acp.key_file"), "{refused}");
    let key: std::sync::Arc<[u8]> = b"an agency key of 32 bytes, or so".to_vec().into();
    let rules = Rules { acp_key: Some(key.clone()), ..Rules::default() };
    let db = plain.with_rules(rules.clone());
    for t in ["t1", "t2"] {
        db.enroll_trailer(t, "admin", "", NOW).await.expect("enrol");
    }
    let mut tx = db.begin().await.expect("begin");
    write::status(&mut tx, &rules, "t1", &online("t1", NOW), NOW).await.expect("status");
    let reads = [read_at(1, "B0B404", NOW), read_at(2, "ZZZ999", NOW + 1)];
    write::reads(&mut tx, &rules, "t1", &reads, NOW).await.expect("reads");
    for id in [1, 2] {
        write::picture(&mut tx, "t1", id, PictureKind::PlateCrop, b"jpeg", NOW).await.expect("pic");
    }
    write::alert(&mut tx, &rules, "t1", &hit(1, read_at(1, "B0B404", NOW)), NOW)
        .await
        .expect("alert");
    let held = [read_at(5, "B0B404", NOW + 2), read_at(6, "B0B404", NOW + 3)];
    write::reads(&mut tx, &rules, "t1", &held, NOW + 3).await.expect("reads");
    tx.commit().await.expect("commit");
    // Read 5 is active criminal investigative data (subd. 3(c)'s one exception); read 6 is
    // held as exculpatory evidence, which does not keep a participant's read.
    db.place_hold(&hold_of("active-investigation", "C-1", "", &[("t1", 5)]), "sup", NOW)
        .await
        .expect("hold");
    db.place_hold(&hold_of("exculpatory", "C-2", "", &[("t1", 6)]), "sup", NOW)
        .await
        .expect("hold");

    // Typed as the participant's papers show it, with the letter O: the trailer wrote a zero.
    assert!(db.acp_add("bob-404", " ", "sup", NOW).await.is_err(), "a reference is required");
    let added = db.acp_add("bob-404", "ACP-2026-4", "sup", NOW).await.expect("add");
    assert_eq!(
        (added.digests, added.reads_destroyed, added.pictures_destroyed, added.alerts_destroyed),
        (2, 2, 1, 1),
        "{added:?}"
    );
    assert_eq!(added.trailers, vec!["t1".to_string()]);
    let left = db.search_reads("B0B404", 0, 10).await.expect("search");
    assert_eq!(left.iter().map(|r| r.read_id).collect::<Vec<_>>(), [5], "only the investigated");
    assert_eq!(db.search_reads("ZZZ999", 0, 10).await.expect("search").len(), 1, "others stay");
    let acp_text: i64 = rows(
        &db,
        "SELECT COUNT(*) FROM acp_digests WHERE digest LIKE '%B0B%' OR reference LIKE '%B0B%'",
    )
    .await;
    assert_eq!(acp_text, 0, "the plate is kept nowhere");
    let queued = db.downlinks(Some("t1"), 10).await.expect("downlinks");
    assert!(queued.iter().any(|d| d.kind == "acp.add" && d.summary.contains("2 ACP digests")));

    // A trailer that had not heard yet sends another read, and the first read's picture late.
    let mut tx = db.begin().await.expect("begin");
    let acks = write::reads(&mut tx, &rules, "t1", &[read_at(3, "B0B404", NOW + 5)], NOW + 5)
        .await
        .expect("reads");
    assert_eq!(
        acks,
        vec![trailer_wire::AckRef::Read(3)],
        "acknowledged, so the trailer forgets it"
    );
    write::picture(&mut tx, "t1", 3, PictureKind::Context, b"jpeg", NOW + 6).await.expect("late");
    assert!(
        !write::alert(&mut tx, &rules, "t1", &hit(2, read_at(4, "B0B404", NOW + 7)), NOW)
            .await
            .expect("alert")
    );
    // A trailer new to the server is sent the whole list before anything else.
    write::status(&mut tx, &rules, "t2", &online("t2", NOW + 8), NOW + 8).await.expect("status");
    tx.commit().await.expect("commit");
    assert_eq!(db.search_reads("B0B404", 0, 10).await.expect("search").len(), 1);
    assert_eq!(rows(&db, "SELECT COUNT(*) FROM pictures").await, 1, "only ZZZ999's");
    assert_eq!(rows(&db, "SELECT COUNT(*) FROM alerts").await, 0);
    let t2 = db.downlinks(Some("t2"), 10).await.expect("downlinks");
    assert_eq!(t2.len(), 1, "{t2:?}");
    assert!(t2[0].summary.contains("the whole list"), "{t2:?}");
    // Retention forgets the dropped ids with the rest.
    db.purge(NOW + 61 * 86_400_000, 60).await.expect("purge");
    assert_eq!(rows(&db, "SELECT COUNT(*) FROM acp_dropped").await, 0);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hotlist_upload_in_parts_is_checked_whole_and_recorded_once() {
    on_both("hotlists", hotlists).await;
}

async fn hotlists(url: String) {
    use hotlists::Part;
    let db = Records::open(&url).await.expect("open");
    for t in ["t1", "t2"] {
        db.enroll_trailer(t, "admin", "", NOW).await.expect("enrol");
    }
    let mut tx = db.begin().await.expect("begin");
    write::status(&mut tx, &Rules::default(), "t1", &online("t1", NOW), NOW).await.expect("status");
    tx.commit().await.expect("commit");
    let part = |version, index, count, data: &'static str| Part {
        name: "mn-state",
        version,
        index,
        count,
        data: data.as_bytes(),
        purpose: "",
        case_number: "",
    };
    let first = db
        .hotlist_part(part(3, 1, 2, "XYZ789,MN,warrant,MN BCA\n"), "op", NOW)
        .await
        .expect("part");
    assert_eq!(first, Upload::Partial { received: 1, count: 2 });
    let mixed = db.hotlist_part(part(3, 1, 3, "x"), "op", NOW).await.expect_err("count");
    assert!(mixed.to_string().contains("in 2 parts"), "{mixed}");
    // An abandoned upload of an earlier version; and this one started again from its first part.
    db.hotlist_part(part(2, 0, 5, "A,MN,warrant,x\n"), "op", NOW).await.expect("abandoned");
    let again = db.hotlist_part(part(3, 0, 3, "B,MN,warrant,x\n"), "op", NOW).await;
    assert_eq!(again.expect("restart"), Upload::Partial { received: 1, count: 3 });
    let wrong = db
        .hotlist_part(part(3, 1, 2, "XYZ789,MN,warrant,MN BCA\n"), "op", NOW)
        .await
        .expect_err("still three parts");
    assert!(wrong.to_string().contains("in 3 parts"), "{wrong}");
    let head = "plate,state,category,source\nABC123,MN,stolen vehicle,MN BCA\n";
    let restarted = db.hotlist_part(part(3, 0, 2, head), "op", NOW).await.expect("part");
    assert_eq!(restarted, Upload::Partial { received: 1, count: 2 });
    let Upload::Complete { version, file } = db
        .hotlist_part(part(3, 1, 2, "XYZ789,MN,warrant,MN BCA\n"), "op", NOW)
        .await
        .expect("part")
    else {
        panic!("two of two parts make the file");
    };
    assert_eq!((version.entries, version.version), (2, 3));
    assert!(file.starts_with(b"plate,state") && file.ends_with(b"MN BCA\n"), "in order");
    assert_eq!(version.trailers, vec!["t1".to_string()]);
    let queued = db.downlinks(Some("t1"), 10).await.expect("downlinks");
    assert_eq!(queued.len(), 1, "queued with the version: {queued:?}");
    let stale = db.hotlist_part(part(3, 0, 1, "A,MN,warrant,x\n"), "op", NOW).await;
    assert!(stale.expect_err("stale").to_string().contains("not newer"));
    let bad = db.hotlist_part(part(4, 0, 1, "ABC123,MN,parking,x\n"), "op", NOW).await;
    let bad = bad.expect_err("bad category").to_string();
    assert!(bad.contains("line 1") && bad.contains("unknown category"), "{bad}");
    assert_eq!(rows(&db, "SELECT COUNT(*) FROM hotlist_parts").await, 0, "parts cleared");
    // A trailer first heard from now is sent the newest version.
    let mut tx = db.begin().await.expect("begin");
    write::status(&mut tx, &Rules::default(), "t2", &online("t2", NOW + 1), NOW + 1)
        .await
        .expect("status");
    tx.commit().await.expect("commit");
    let sent = db.downlinks(Some("t2"), 10).await.expect("downlinks");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].summary, "hotlist mn-state version 3, chunk 1 of 1");
    let list = db.hotlist_versions().await.expect("list");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].sha256.len(), 64);
    db.close().await;
}

/// A list that is not the state's file is an investigation's: it needs a purpose and a case,
/// holds only active-investigation entries, and reaches no trailer until a second person
/// approves it (the audit entry naming what was loaded). Versions step within bounds; a
/// withdrawn list's unsent chunks are cancelled, every trailer is told, and it is sent no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_investigation_list_needs_its_case_and_a_second_supervisor_and_can_be_withdrawn() {
    on_both("hotlist_rules", hotlist_rules).await;
}

async fn hotlist_rules(url: String) {
    use hotlists::Part;
    let db = Records::open(&url).await.expect("open");
    db.enroll_trailer("t1", "admin", "", NOW).await.expect("enrol");
    let mut tx = db.begin().await.expect("begin");
    write::status(&mut tx, &Rules::default(), "t1", &online("t1", NOW), NOW).await.expect("status");
    tx.commit().await.expect("commit");
    let part = |name, version, data: &'static str, case_number: &'static str| Part {
        name,
        version,
        index: 0,
        count: 1,
        data: data.as_bytes(),
        purpose: if case_number.is_empty() { "" } else { "burglary ring" },
        case_number,
    };
    let inv = "INV001,MN,active investigation,agency,26-77\n";
    let e = db.hotlist_part(part("case-77", 1, inv, ""), "op", NOW).await.expect_err("no case");
    assert!(e.to_string().contains("active criminal investigation"), "{e}");
    let stolen = "ABC123,MN,stolen vehicle,agency\n";
    let e = db.hotlist_part(part("case-77", 1, stolen, "26-77"), "op", NOW).await.expect_err("cat");
    assert!(e.to_string().contains("only the state's"), "{e}");
    let Upload::Complete { version, .. } =
        db.hotlist_part(part("case-77", 1, inv, "26-77"), "op", NOW).await.expect("upload")
    else {
        panic!("one part");
    };
    assert_eq!((version.approved_by.as_deref(), version.state_list), (None, false));
    let chunks = async || {
        db.downlinks(Some("t1"), 100)
            .await
            .expect("downlinks")
            .into_iter()
            .filter(|d| d.kind == "hotlist")
            .collect::<Vec<_>>()
    };
    assert!(chunks().await.is_empty(), "nothing sent before approval");
    let own = db.hotlist_approve("case-77", 1, "op", NOW).await.expect_err("uploader");
    assert!(own.to_string().contains("second supervisor"), "{own}");
    let v = db.hotlist_approve("case-77", 1, "sup", NOW).await.expect("approve");
    assert_eq!((v.approved_by.as_deref(), v.trailers.len()), (Some("sup"), 1));
    assert_eq!(chunks().await.len(), 1);
    let (detail, case): (String, String) = sqlx::query_as(
        "SELECT detail, case_number FROM audit WHERE action = 'hotlist.load' ORDER BY seq DESC",
    )
    .fetch_one(db.pool())
    .await
    .expect("audit");
    assert!(detail.contains("case-77 version 1") && detail.contains(&v.sha256), "{detail}");
    assert_eq!(case, "26-77");
    assert!(db.hotlist_approve("case-77", 1, "sup2", NOW).await.is_err(), "approved once");

    // Bounded versions: no upload can freeze the list.
    for (name, version) in [("mn-state", hotlists::MAX_FIRST_VERSION + 1), ("case-78", 0)] {
        let e = db.hotlist_part(part(name, version, inv, "26-77"), "op", NOW).await;
        assert!(e.expect_err("out of bounds").to_string().contains("use 1-"), "{name}");
    }
    let far = 1 + hotlists::MAX_VERSION_STEP + 1;
    let e = db.hotlist_part(part("case-77", far, inv, "26-77"), "op", NOW).await;
    assert!(e.is_err(), "a step too far");
    db.hotlist_part(part("case-77", far - 1, inv, "26-77"), "op", NOW).await.expect("in bounds");

    // Withdrawn: the sent chunk still unanswered is cancelled, the trailer is told, and a
    // trailer's new store is not sent the list.
    let told = db.hotlist_withdraw("case-77", "case closed", "sup", NOW).await.expect("withdraw");
    assert_eq!(told, ["t1"]);
    let cancelled = chunks().await;
    assert!(cancelled.iter().all(|d| d.answer.as_deref().is_some_and(|a| a.contains("withdrawn"))));
    assert!(
        db.downlinks(Some("t1"), 100)
            .await
            .expect("d")
            .iter()
            .any(|d| d.kind == "hotlist.withdraw")
    );
    assert!(db.hotlist_approve("case-77", far - 1, "sup", NOW).await.is_err(), "withdrawn");
    let mut tx = db.begin().await.expect("begin");
    let sent = hotlists::send_lists(&mut tx, "t1", NOW).await.expect("send");
    tx.commit().await.expect("commit");
    assert_eq!(sent, 0);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_is_fulfilled_only_once_reviewed_and_approved_by_another() {
    on_both("releases", releases).await;
}

async fn releases(url: String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Records::open(&url).await.expect("open");
    let rules = Rules::default();
    let mut tx = db.begin().await.expect("begin");
    let reads = [read_at(1, "REL123", NOW), read_at(2, "REL123", NOW + 90_000_000)];
    write::reads(&mut tx, &rules, "t1", &reads, NOW + 90_000_000).await.expect("reads");
    write::picture(&mut tx, "t1", 1, PictureKind::PlateCrop, b"crop-1", NOW).await.expect("pic");
    tx.commit().await.expect("commit");
    let mut new = NewRelease {
        requesting_agency: "Olmsted County Sheriff".into(),
        requester: "Det. A. Berg".into(),
        purpose: "burglary investigation".into(),
        factual_basis: "vehicle seen leaving the scene".into(),
        case_number: "OC-26-1182".into(),
        authorisation: "signed by Sgt. Lind under policy 462.6".into(),
        plate: "rel 123".into(),
        from_ms: NOW - 1000,
        to_ms: NOW + 86_400_000,
    };
    new.factual_basis = " ".into();
    assert!(db.release_request(&new, "sup-a", NOW).await.is_err(), "every field is stated");
    new.factual_basis = "vehicle seen leaving the scene".into();
    let id = db.release_request(&new, "sup-a", NOW).await.expect("request");
    let early = db.release_fulfil(id, dir.path(), "sup-b", NOW).await.expect_err("not approved");
    assert!(early.to_string().contains("only an approved request"), "{early}");
    assert!(db.release_decide(id, true, "ok", "sup-b", NOW).await.is_err(), "review first");
    db.release_review(id, "complete; basis stated", "sup-b", NOW).await.expect("review");
    let own = db.release_decide(id, true, "ok", "sup-a", NOW).await.expect_err("own request");
    assert!(own.to_string().contains("another supervisor"), "{own}");
    assert!(db.release_fulfil(id, dir.path(), "sup-b", NOW).await.is_err(), "reviewed only");
    let reviewer = db.release_decide(id, true, "ok", "sup-b", NOW).await.expect_err("reviewer");
    assert!(reviewer.to_string().contains("reviewed by sup-b"), "{reviewer}");
    db.release_decide(id, true, "basis and authority sufficient", "sup-c", NOW)
        .await
        .expect("approve");
    let bundle = db.release_fulfil(id, dir.path(), "sup-b", NOW + 5).await.expect("fulfil");
    assert_eq!(bundle.reads, 1, "only the days asked for");
    let manifest = std::fs::read(bundle.dir.join("manifest.json")).expect("manifest");
    use sha2::Digest;
    assert_eq!(bundle.manifest_sha256, hex::encode(sha2::Sha256::digest(&manifest)));
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).expect("json");
    let files = manifest["files"].as_array().expect("files");
    assert_eq!(
        files.len(),
        5,
        "a picture, DUTIES.txt, reads.csv and .json, request.json: {files:?}"
    );
    let duties = std::fs::read_to_string(bundle.dir.join("DUTIES.txt")).expect("duties");
    for duty in ["private or nonpublic", "no later than 60 days", "sold to", "subd. 4(b)"] {
        assert!(duties.contains(duty), "{duty:?} missing from the duties:\n{duties}");
    }
    for f in files {
        let name = f["name"].as_str().expect("name");
        let data = std::fs::read(bundle.dir.join(name)).expect("file");
        assert_eq!(f["sha256"], hex::encode(sha2::Sha256::digest(&data)), "{name}");
    }
    let again = db.release_fulfil(id, dir.path(), "sup-b", NOW + 6).await.expect_err("once");
    assert!(again.to_string().contains("fulfilled"), "{again}");
    // A denied request stays on file and is never fulfilled.
    let other = db.release_request(&new, "sup-a", NOW).await.expect("request");
    db.release_review(other, "no factual basis beyond a hunch", "sup-b", NOW)
        .await
        .expect("review");
    db.release_decide(other, false, "insufficient basis", "sup-c", NOW).await.expect("deny");
    assert!(db.release_fulfil(other, dir.path(), "sup-b", NOW).await.is_err());
    let on_file = db.releases().await.expect("list");
    let states: Vec<&str> = on_file.iter().map(|r| r.state.as_str()).collect();
    assert_eq!(states, ["denied", "fulfilled"]);
    assert_eq!(on_file[1].request.plate, "REL123");
    assert_eq!(on_file[1].reads_released, Some(1));
    // Our copy of the bundle goes with its read; the record of the release stays.
    let purged = db.purge(NOW + 59 * 86_400_000, 60).await.expect("purge");
    assert_eq!((purged.bundles, bundle.dir.exists()), (0, true));
    let purged = db.purge(NOW + 61 * 86_400_000, 60).await.expect("purge");
    assert_eq!((purged.reads, purged.bundles, bundle.dir.exists()), (1, 1, false));
    assert_eq!(db.releases().await.expect("list").len(), 2);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_starts_a_deployment_where_the_trailer_was_set_up() {
    on_both("start", start).await;
}

async fn start(url: String) {
    let db = Records::open(&url).await.expect("open");
    let typo = db.start_deployment("t8", 44.02, -92.47, None, None, NOW).await;
    assert!(typo.expect_err("unknown").to_string().contains("no reader"));
    let mut tx = db.begin().await.expect("begin");
    write::status(&mut tx, &Rules::default(), "t9", &online("t9", NOW), NOW).await.expect("status");
    tx.commit().await.expect("commit");
    let id = db
        .start_deployment("t9", 44.02, -92.47, Some("Broadway & 4th St"), None, NOW)
        .await
        .expect("start");
    let places = db.locations(Some("t9")).await.expect("locations");
    assert_eq!(places.len(), 1);
    assert_eq!((places[0].id, places[0].place.as_str()), (id, "Broadway & 4th St"));
    assert_eq!(db.notices(NOW, true).await.expect("notices").len(), 1, "a new reader's notice");
    // Set up 20 m away: the same place. Then somewhere else, marked security information.
    assert_eq!(
        db.start_deployment("t9", 44.0202, -92.47, None, None, NOW + 1).await.expect("same"),
        id
    );
    let other =
        db.start_deployment("t9", 44.2, -92.47, None, Some("sup"), NOW + 2).await.expect("other");
    assert_ne!(other, id);
    let places = db.locations(Some("t9")).await.expect("locations");
    assert!(places.iter().any(|p| p.id == other && p.security && p.until.is_none()), "{places:?}");
    assert!(db.start_deployment("t9", 95.0, 0.0, None, None, NOW).await.is_err());
    db.close().await;
}
