//! The records' tests: each runs on the embedded SQLite and on a scratch PostgreSQL database.
use super::*;
use crate::audit::Entry;
use trailer_wire::{ActiveUse, ReadMeta};

/// Two processes (here: two pools) appending to one audit trail at once: every entry lands,
/// chained, none fails with "database is locked".
/// The test runs on the embedded SQLite and on a scratch PostgreSQL database.
pub(super) async fn on_both<F: std::future::Future<Output = ()>>(
    name: &str,
    test: impl Fn(String) -> F,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    test(format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display())).await;
    let pg = scratch_postgres(name).await.expect("PostgreSQL for tests (TRAILER_PG_ADMIN_URL)");
    test(pg.clone()).await;
    drop_scratch_postgres(&pg).await.expect("drop the scratch database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_audit_appends_from_two_processes_chain_cleanly() {
    on_both("audit", concurrent_audit).await;
}

async fn concurrent_audit(url: String) {
    let a = Records::open(&url).await.expect("open a");
    let b = Records::open(&url).await.expect("open b");
    let entry = |actor: &str| Entry {
        at: 1,
        actor: actor.into(),
        action: "reads.list".into(),
        purpose: "test".into(),
        case_number: "C".into(),
        detail: String::new(),
        result_count: 0,
    };
    let (ea, eb) = (entry("a"), entry("b"));
    let ta = tokio::spawn(async move {
        for _ in 0..40 {
            a.audit(&ea).await.expect("append a");
        }
    });
    let tb = tokio::spawn(async move {
        for _ in 0..40 {
            b.audit(&eb).await.expect("append b");
        }
    });
    ta.await.expect("a");
    tb.await.expect("b");
    let c = Records::open(&url).await.expect("open c");
    assert_eq!(c.audit_verify().await.expect("verify"), Ok(80));
}

/// A hold answering a written request, on reads of `(trailer, read id)`.
pub(crate) fn hold_of(kind: &str, case: &str, note: &str, reads: &[(&str, i64)]) -> NewHold {
    NewHold {
        kind: kind.into(),
        case_number: case.into(),
        note: note.into(),
        requester: "Det. A. Berg".into(),
        request_date: "2026-11-20".into(),
        charge: if kind == "exculpatory" {
            "theft, complaint 24-CR-881".into()
        } else {
            String::new()
        },
        reads: reads.iter().map(|(t, r)| (t.to_string(), *r)).collect(),
        plate: None,
    }
}

pub(crate) fn read_at(read_id: u64, plate: &str, seen: i64) -> ReadMeta {
    ReadMeta {
        read_id,
        camera_id: "cam0".into(),
        plate: plate.into(),
        confidence_pm: 950,
        first_seen: seen,
        best_seen: seen + 500,
        position: trailer_wire::Position::from_degrees(44.16, -93.99, FixQuality::Fix3d),
        plate_box: [1, 2, 3, 4],
        pictures: trailer_wire::PictureSet { plate_crop: true, context: true },
    }
}

async fn count(db: &Records, table: &str) -> i64 {
    let sql = match table {
        "pictures" => "SELECT COUNT(*) FROM pictures",
        "alerts" => "SELECT COUNT(*) FROM alerts",
        "usage_periods" => "SELECT COUNT(*) FROM usage_periods",
        "locations" => "SELECT COUNT(*) FROM locations",
        "audit" => "SELECT COUNT(*) FROM audit",
        "deployment_events" => "SELECT COUNT(*) FROM deployment_events",
        "collisions" => "SELECT COUNT(*) FROM collisions",
        other => panic!("no count for {other}"),
    };
    sqlx::query(sql).fetch_one(db.pool()).await.expect("count").get(0)
}

/// Reads, their pictures and alerts collected more than the retention period ago are
/// destroyed by the clock the caller passes; younger ones, the periods of use and the
/// location history stay; the destruction is counted in the audit trail, which verifies.
/// Deployment events make the location history: an end closes the current place, a start
/// opens a new one; a repeated event changes nothing; the public list shows both places.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_events_make_the_location_history() {
    on_both("deploy", deployments).await;
}

async fn deployments(url: String) {
    use trailer_wire::{DeploymentEvent, DeploymentEventKind, Position};
    const DAY: i64 = 86_400_000;
    let db = Records::open(&url).await.expect("open");
    let rules = Rules::default();
    let event = |event_id, kind, time, lat: f64| DeploymentEvent {
        trailer_id: "t1".into(),
        event_id,
        kind,
        time,
        position: Position::from_degrees(lat, -93.99, FixQuality::Fix3d),
        note: String::new(),
    };
    let t0 = 20_000 * DAY;
    let mut tx = db.begin().await.expect("begin");
    write::deployment(&mut tx, &rules, "t1", &event(1, DeploymentEventKind::Start, t0, 44.16), t0)
        .await
        .expect("start");
    write::reads(&mut tx, &rules, "t1", &[read_at(1, "AAA111", t0 + DAY)], t0 + DAY)
        .await
        .expect("read");
    let end = event(2, DeploymentEventKind::End, t0 + 3 * DAY, 44.17);
    write::deployment(&mut tx, &rules, "t1", &end, t0 + 4 * DAY).await.expect("end");
    tx.commit().await.expect("commit");
    let locs = db.public_locations(i64::MAX).await.expect("locations");
    assert_eq!(locs.len(), 1);
    assert!(locs[0].until.is_some(), "the end closed the place: {locs:?}");
    let mut tx = db.begin().await.expect("begin");
    // The same end again (a resend) and a start 11 km north.
    write::deployment(&mut tx, &rules, "t1", &end, t0 + 4 * DAY).await.expect("end again");
    let start = event(3, DeploymentEventKind::Start, t0 + 4 * DAY, 44.26);
    write::deployment(&mut tx, &rules, "t1", &start, t0 + 4 * DAY).await.expect("start");
    tx.commit().await.expect("commit");
    let locs = db.public_locations(i64::MAX).await.expect("locations");
    assert_eq!(locs.len(), 2, "{locs:?}");
    assert_eq!((locs[0].until.is_some(), locs[1].until.is_none()), (true, true), "{locs:?}");
    assert!((locs[1].lat - 44.26).abs() < 1e-6, "{locs:?}");
    assert_eq!(count(&db, "deployment_events").await, 3);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_destroys_what_is_past_its_days_and_audits_the_counts() {
    on_both("retention", retention).await;
}

async fn retention(url: String) {
    const DAY: i64 = 86_400_000;
    let db = Records::open(&url).await.expect("open");
    let rules = Rules::default();
    let now = 20_000 * DAY;
    let (old, young) = (now - 61 * DAY, now - 59 * DAY);
    let mut tx = db.begin().await.expect("begin");
    write::reads(
        &mut tx,
        &rules,
        "t1",
        &[read_at(1, "OLD111", old), read_at(2, "NEW222", young)],
        young,
    )
    .await
    .expect("reads");
    for id in [1, 2] {
        for kind in [PictureKind::PlateCrop, PictureKind::Context] {
            write::picture(&mut tx, "t1", id, kind, b"jpeg", young).await.expect("picture");
        }
    }
    // A picture whose read never arrived, received long ago.
    write::picture(&mut tx, "t1", 99, PictureKind::Context, b"jpeg", old).await.expect("orphan");
    let alert = |alert_id, read| trailer_wire::Alert {
        trailer_id: "t1".into(),
        alert_id,
        read,
        list_name: "mn-state".into(),
        list_version: 1,
        category: trailer_wire::HitCategory::StolenVehicle,
        case_number: None,
    };
    write::alert(&mut tx, &rules, "t1", &alert(1, read_at(1, "OLD111", old)), old)
        .await
        .expect("alert");
    write::alert(&mut tx, &rules, "t1", &alert(2, read_at(2, "NEW222", young)), young)
        .await
        .expect("alert");
    let period = ActiveUse {
        trailer_id: "t1".into(),
        period_id: 5,
        start: old - DAY,
        end: Some(old + DAY),
        start_reason: trailer_wire::UsageReason::DaemonStart,
        end_reason: Some(trailer_wire::UsageReason::DaemonStop),
        position: trailer_wire::Position::from_degrees(44.16, -93.99, FixQuality::Fix3d),
        lists_compared: vec!["MN BCA".into()],
    };
    write::usage(&mut tx, &rules, "t1", &period, old + DAY).await.expect("usage");
    // Another read under read 1's id, long ago: a collision, kept with the dead letters.
    write::reads(&mut tx, &rules, "t1", &[read_at(1, "OTHER1", old + 5)], old)
        .await
        .expect("collision");
    tx.commit().await.expect("commit");
    assert_eq!(count(&db, "collisions").await, 1);
    // A refused message (its payload may hold a plate) goes by the same clock.
    db.dead_letter("trailer/t1/up/reads", "corrupt", b"OLD111", old).await.expect("dead letter");
    db.dead_letter("trailer/t1/up/reads", "corrupt", b"NEW222", young).await.expect("dead letter");

    // Nothing is due a day early.
    assert_eq!(db.purge(now - 2 * DAY, 60).await.expect("purge"), Purged::default());
    let purged = db.purge(now, 60).await.expect("purge");
    assert_eq!(
        purged,
        Purged { reads: 1, pictures: 3, alerts: 1, dead_letters: 2, bundles: 0, downlinks: 0 }
    );
    assert_eq!(db.dead_letters().await.expect("dead letters").len(), 1);
    assert_eq!(count(&db, "collisions").await, 0, "a collision goes with its dead letter");
    let plates: Vec<String> =
        db.list_reads(10).await.expect("reads").into_iter().map(|r| r.plate).collect();
    assert_eq!(plates, ["NEW222"]);
    assert_eq!(count(&db, "pictures").await, 2);
    assert_eq!(count(&db, "alerts").await, 1);
    assert_eq!(count(&db, "usage_periods").await, 1, "the log of use outlives the reads");
    assert!(count(&db, "locations").await >= 1, "the location history outlives the reads");
    // Run again: nothing more, and no second audit entry.
    assert_eq!(db.purge(now, 60).await.expect("purge"), Purged::default());
    let (action, result): (String, i64) =
        sqlx::query_as("SELECT action, result_count FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_one(db.pool())
            .await
            .expect("audit");
    assert_eq!((action.as_str(), result), ("destroy", 7));
    assert_eq!(count(&db, "audit").await, 1);
    assert_eq!(db.audit_verify().await.expect("verify"), Ok(1));
}

#[test]
fn dates_and_distances() {
    assert_eq!(iso_date(0), "1970-01-01");
    assert_eq!(iso_time(1_790_000_000_000), "2026-09-21T14:13:20Z");
    assert_eq!(iso_date(951_782_400_000), "2000-02-29");
    let d = distance_m(44.1636, -93.9994, 44.1636, -93.9994 + 0.01);
    assert!((790.0..810.0).contains(&d), "{d}");
}

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

fn period(period_id: u64, start: i64, end: Option<i64>, lat: f64) -> ActiveUse {
    ActiveUse {
        trailer_id: "t1".into(),
        period_id,
        start,
        end,
        start_reason: trailer_wire::UsageReason::DaemonStart,
        end_reason: end.map(|_| trailer_wire::UsageReason::DaemonStop),
        position: trailer_wire::Position::from_degrees(lat, -93.99, FixQuality::Fix3d),
        lists_compared: vec!["MN BCA hotlist".into(), "agency list".into()],
    }
}

/// An online status from store 1 of `trailer`, opened `opens` times (its run differs per open).
pub(super) fn online(trailer: &str, at: i64, opens: u64) -> trailer_wire::Status {
    store_status(trailer, at, 1, opens, opens)
}

pub(super) fn store_status(
    trailer: &str,
    at: i64,
    store_id: u64,
    opens: u64,
    run: u64,
) -> trailer_wire::Status {
    trailer_wire::Status {
        trailer_id: trailer.into(),
        online: true,
        time: at,
        software_version: "1.0".into(),
        store: trailer_wire::StoreInfo { store_id, created: at, opens, run },
    }
}

pub(crate) fn hit(
    alert_id: u64,
    read: ReadMeta,
    category: trailer_wire::HitCategory,
) -> trailer_wire::Alert {
    trailer_wire::Alert {
        trailer_id: "t1".into(),
        alert_id,
        read,
        list_name: "mn-state".into(),
        list_version: 1,
        category,
        case_number: None,
    }
}

/// The public log of use counts what was ingested (each read once, however often it is
/// resent; each hit by its category), per period of use; a read whose period had not arrived
/// is counted under period 0 until that period arrives; a read stamped ahead of the server's
/// clock is refused and counted; the counts stand after the reads are destroyed; a location marked
/// security information is not named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_log_counts_what_was_ingested_and_outlives_destruction() {
    on_both("uselog", use_log).await;
}

async fn use_log(url: String) {
    use trailer_wire::HitCategory::{StolenVehicle, Warrant};
    let db = Records::open(&url).await.expect("open");
    let rules = Rules::default();
    // 2026-03-02 15:00 UTC: 09:00 in Minnesota.
    let t0 = 1_772_463_600_000;
    let mut tx = db.begin().await.expect("begin");
    write::usage(&mut tx, &rules, "t1", &period(1, t0, Some(t0 + 5 * HOUR), 44.16), t0 + DAY)
        .await
        .expect("period");
    let reads: Vec<ReadMeta> =
        (1..=5).map(|i| read_at(i, &format!("AAA{i:03}"), t0 + i as i64 * HOUR / 2)).collect();
    write::reads(&mut tx, &rules, "t1", &reads, t0 + DAY).await.expect("reads");
    // The same batch again (a resend) counts nothing more.
    write::reads(&mut tx, &rules, "t1", &reads, t0 + DAY).await.expect("reads again");
    let stolen = hit(1, reads[0].clone(), StolenVehicle);
    assert!(write::alert(&mut tx, &rules, "t1", &stolen, t0 + DAY).await.expect("alert"));
    assert!(!write::alert(&mut tx, &rules, "t1", &stolen, t0 + DAY).await.expect("again"));
    // A read of the next day, whose period record has not arrived.
    let late = read_at(6, "BBB006", t0 + DAY);
    let warrant = hit(2, late.clone(), Warrant);
    write::alert(&mut tx, &rules, "t1", &warrant, t0 + DAY).await.expect("alert");
    tx.commit().await.expect("commit");

    let log = db.use_log("2026-03-01", "2026-03-31", i64::MAX).await.expect("log");
    assert_eq!(log.total_reads, 6);
    assert_eq!(log.total_hits["stolen_vehicle"], 1);
    assert_eq!(log.total_hits["warrant"], 1);
    assert_eq!(log.periods.len(), 2, "{log:#?}");
    let p1 = &log.periods[0];
    assert_eq!((p1.period_id, p1.reads, p1.hits["stolen_vehicle"]), (1, 5, 1));
    assert_eq!(p1.start.as_deref(), Some("2026-03-02 09:00"));
    assert_eq!(p1.end.as_deref(), Some("2026-03-02 14:00"));
    assert_eq!(p1.hours, "09-13", "local hours collecting, 09:00 to 14:00");
    assert_eq!(p1.databases, ["MN BCA hotlist", "agency list"]);
    assert!(p1.location.as_deref().is_some_and(|l| l.starts_with("44.16")), "{p1:?}");
    let p0 = &log.periods[1];
    assert_eq!((p0.period_id, p0.reads, p0.hits["warrant"]), (0, 1, 1));
    assert_eq!(log.days.iter().map(|d| d.reads).sum::<i64>(), 6);

    // The next day's period record arrives: its read and hit move to it from "no period".
    let mut tx = db.begin().await.expect("begin");
    let next = period(2, t0 + DAY - HOUR, Some(t0 + DAY + HOUR), 44.16);
    write::usage(&mut tx, &rules, "t1", &next, t0 + 2 * DAY).await.expect("period 2");
    // A second list of the same category on the same read is not a second hit.
    let mut again = hit(3, late.clone(), Warrant);
    again.list_name = "agency".into();
    write::alert(&mut tx, &rules, "t1", &again, t0 + 2 * DAY).await.expect("alert");
    // A read stamped an hour ahead of the server's clock, and its alert: neither is stored
    // (its 60 days would count from a time not yet come); both are dead letters, counted.
    let ahead = read_at(7, "CCC007", t0 + 2 * DAY + HOUR);
    write::reads(&mut tx, &rules, "t1", std::slice::from_ref(&ahead), t0 + 2 * DAY)
        .await
        .expect("ahead");
    let ahead_hit = hit(4, ahead, StolenVehicle);
    assert!(!write::alert(&mut tx, &rules, "t1", &ahead_hit, t0 + 2 * DAY).await.expect("alert"));
    tx.commit().await.expect("commit");
    let log = db.use_log("2026-03-01", "2026-03-31", i64::MAX).await.expect("log");
    let ids: Vec<i64> = log.periods.iter().map(|p| p.period_id).collect();
    assert_eq!(ids, [1, 2], "no reads are left outside a period: {log:#?}");
    assert_eq!((log.periods[1].reads, log.periods[1].hits["warrant"]), (1, 1));
    assert_eq!(
        (log.total_reads, log.total_hits["warrant"], log.total_hits["stolen_vehicle"]),
        (6, 1, 1)
    );
    assert!(db.search_reads("CCC007", 0, 10).await.expect("search").is_empty());
    let letters = db.dead_letters().await.expect("letters");
    assert_eq!(letters.len(), 2, "{letters:#?}");
    assert!(letters[0].1.contains("in the future"), "{letters:#?}");
    let mut c = db.pool().acquire().await.expect("conn");
    let refused: i64 =
        sqlx::query("SELECT clock_refused FROM ingest_counts WHERE trailer_id = 't1'")
            .fetch_one(&mut *c)
            .await
            .expect("counts")
            .get(0);
    assert_eq!(refused, 2);
    drop(c);

    // A period of collection that read nothing is in the log too, with its hours.
    let mut tx = db.begin().await.expect("begin");
    let quiet = period(3, t0 + 3 * DAY, Some(t0 + 3 * DAY + 90 * 60_000), 44.16);
    write::usage(&mut tx, &rules, "t1", &quiet, t0 + 4 * DAY).await.expect("period 3");
    tx.commit().await.expect("commit");
    let log = db.use_log("2026-03-01", "2026-03-31", t0 + 4 * DAY).await.expect("log");
    let p3 = log.periods.iter().find(|p| p.period_id == 3).expect("the quiet period is listed");
    assert_eq!((p3.reads, p3.hours.as_str(), p3.first_day.as_str()), (0, "09-10", "2026-03-05"));
    assert_eq!(log.total_reads, 6);
    // Out of the range asked, it is not.
    let log = db.use_log("2026-03-01", "2026-03-04", t0 + 4 * DAY).await.expect("log");
    assert!(log.periods.iter().all(|p| p.period_id != 3), "{log:#?}");

    // Withheld location: the log does not name it.
    let id = db.locations(Some("t1")).await.expect("locations")[0].id;
    assert_eq!(db.withheld_locations().await.expect("withheld"), 0);
    assert!(db.set_location_security(id, true, "cli:rita", " ", t0).await.is_err(), "a reason");
    db.set_location_security(id, true, "cli:rita", "covert surveillance of a drug house", t0)
        .await
        .expect("security");
    let determinations = db.security_determinations().await.expect("determinations");
    assert_eq!(determinations.len(), 1);
    let d = &determinations[0];
    assert_eq!((d.location_id, d.security), (id, true));
    assert_eq!(
        (d.decided_by.as_str(), d.reason.as_str()),
        ("cli:rita", "covert surveillance of a drug house")
    );
    assert_eq!(db.withheld_locations().await.expect("withheld"), 1);
    let log = db.use_log("2026-03-01", "2026-03-31", i64::MAX).await.expect("log");
    assert_eq!(log.periods[0].location, None);

    // Destroy everything: the log stands.
    let purged = db.purge(t0 + 70 * DAY, 60).await.expect("purge");
    assert_eq!(purged.reads, 6);
    assert_eq!(db.list_reads(10).await.expect("reads").len(), 0);
    let after = db.use_log("2026-03-01", "2026-03-31", i64::MAX).await.expect("log");
    assert_eq!((after.total_reads, after.total_hits["stolen_vehicle"]), (6, 1));
    assert_eq!(after.periods[0].reads, 5);
    db.close().await;
}

/// A hold keeps its reads, their pictures and alerts past retention, and is sent to the trailer
/// that keeps them; released (with its reason), they go at the next run; the biennial check of reads past retention counts held ones as kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_keep_reads_past_retention_until_released() {
    on_both("holds", holds).await;
}

async fn holds(url: String) {
    let db = Records::open(&url).await.expect("open");
    let rules = Rules::default();
    let now = 20_400 * DAY;
    let old = now - 70 * DAY;
    db.prepare_partitions(old, 60).await;
    let mut tx = db.begin().await.expect("begin");
    let reads = [read_at(1, "HELD01", old), read_at(2, "GONE02", old)];
    write::reads(&mut tx, &rules, "t1", &reads, old).await.expect("reads");
    for id in [1, 2] {
        write::picture(&mut tx, "t1", id, PictureKind::PlateCrop, b"jpeg", old).await.expect("pic");
    }
    let a = hit(1, reads[0].clone(), trailer_wire::HitCategory::StolenPlate);
    write::alert(&mut tx, &rules, "t1", &a, old).await.expect("alert");
    tx.commit().await.expect("commit");
    assert!(db.place_hold(&hold_of("vacation", "C-1", "", &[("t1", 1)]), "x", now).await.is_err());
    assert!(db.place_hold(&hold_of("exculpatory", " ", "", &[("t1", 1)]), "x", now).await.is_err());
    let (hold, present) = db
        .place_hold(
            &hold_of("active-investigation", "C-77", "burglary", &[("t1", 1)]),
            "cli:sam",
            now,
        )
        .await
        .expect("hold");
    assert_eq!(present, 1);
    assert_eq!(db.overdue_reads(now, 60).await.expect("overdue"), 1, "the unheld one");
    let purged = db.purge(now, 60).await.expect("purge");
    assert_eq!((purged.reads, purged.pictures, purged.alerts), (1, 1, 0));
    let plates: Vec<String> =
        db.list_reads(10).await.expect("reads").into_iter().map(|r| r.plate).collect();
    assert_eq!(plates, ["HELD01"]);
    assert_eq!(count(&db, "pictures").await, 1);
    assert_eq!(count(&db, "alerts").await, 1);
    assert_eq!(db.overdue_reads(now, 60).await.expect("overdue"), 0);
    assert_eq!(db.holds().await.expect("holds")[0].reads, 1);
    // The trailer that keeps the read is told of the hold, and of its release.
    let told = |kind: &str| {
        let db = db.clone();
        let kind = kind.to_string();
        async move {
            db.downlinks(Some("t1"), 10)
                .await
                .expect("downlinks")
                .iter()
                .filter(|d| d.kind == "hold" && d.summary.contains(&kind))
                .count()
        }
    };
    assert_eq!(told(format!("hold {hold} (1 reads)").as_str()).await, 1);
    assert!(db.release_hold(hold, " ", "cli:sam", now).await.is_err(), "a reason is given");
    assert!(db.release_hold(hold, "case closed", "cli:sam", now).await.expect("release"));
    assert!(!db.release_hold(hold, "again", "cli:sam", now).await.expect("again"), "released once");
    assert_eq!(told(format!("hold {hold} released").as_str()).await, 1);
    let reason: Option<String> =
        sqlx::query(sql(db.pg, "SELECT release_reason FROM holds WHERE id = ?"))
            .bind(hold)
            .fetch_one(db.pool())
            .await
            .expect("hold")
            .get(0);
    assert_eq!(reason.as_deref(), Some("case closed"));
    let purged = db.purge(now + 1, 60).await.expect("purge");
    assert_eq!((purged.reads, purged.pictures, purged.alerts), (1, 1, 1));
    assert_eq!(count(&db, "pictures").await, 0);
    db.close().await;
}

/// A hold answers a written request (requester, day, and for an exculpatory hold the charge);
/// one on a plate and a period holds the server's reads of it, those arriving after it too,
/// and is sent to every trailer, which holds its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_on_a_plate_and_a_period_keeps_every_read_of_it() {
    on_both("plate_holds", plate_holds).await;
}

async fn plate_holds(url: String) {
    let db = Records::open(&url).await.expect("open");
    let rules = Rules::default();
    let now = 20_400 * DAY;
    let old = now - 70 * DAY;
    db.prepare_partitions(old, 60).await;
    db.enroll_trailer("t1", "admin", "", old).await.expect("enrol");
    let mut tx = db.begin().await.expect("begin");
    write::status(&mut tx, &rules, "t1", &online("t1", old, 1), old).await.expect("status");
    let reads = [read_at(1, "PLT123", old), read_at(2, "PLT123", old - 2 * HOUR)];
    write::reads(&mut tx, &rules, "t1", &reads, old).await.expect("reads");
    tx.commit().await.expect("commit");

    let mut h = hold_of("exculpatory", "24-CR-881", "", &[]);
    h.plate = Some(PlatePeriod { plate: "plt 123".into(), from_ms: old - HOUR, to_ms: old + HOUR });
    for (field, broken) in [("requester", ""), ("request_date", "yesterday"), ("charge", " ")] {
        let mut b = h.clone();
        match field {
            "requester" => b.requester = broken.into(),
            "request_date" => b.request_date = broken.into(),
            _ => b.charge = broken.into(),
        }
        assert!(db.place_hold(&b, "sup", now).await.is_err(), "{field} is required");
    }
    let mut both = h.clone();
    both.reads = vec![("t1".into(), 1)];
    assert!(db.place_hold(&both, "sup", now).await.is_err(), "reads or a plate, not both");
    let (id, present) = db.place_hold(&h, "sup", old + 2 * HOUR).await.expect("hold");
    assert_eq!(present, 1, "read 1 is in the period, read 2 before it");
    // A read of the period that arrives after the hold is held too; one after it is not.
    let mut tx = db.begin().await.expect("begin");
    let late = [read_at(3, "PLT123", old + 30 * 60_000), read_at(4, "PLT123", old + 2 * HOUR)];
    write::reads(&mut tx, &rules, "t1", &late, old + 3 * HOUR).await.expect("reads");
    tx.commit().await.expect("commit");
    db.purge(now, 60).await.expect("purge");
    let mut kept: Vec<u64> =
        db.list_reads(10).await.expect("reads").into_iter().map(|r| r.read_id).collect();
    kept.sort_unstable();
    assert_eq!(kept, [1, 3]);
    let on_trailer = db
        .downlinks(Some("t1"), 10)
        .await
        .expect("downlinks")
        .into_iter()
        .filter(|d| d.kind == "hold" && d.summary.contains("a plate"))
        .count();
    assert_eq!(on_trailer, 1, "the trailer finds its own reads of the plate");
    let view = db.holds().await.expect("holds").into_iter().find(|v| v.id == id).expect("hold");
    assert_eq!(
        (view.requester.as_str(), view.request_date.as_str(), view.charge.as_str()),
        ("Det. A. Berg", "2026-11-20", "theft, complaint 24-CR-881")
    );
    assert_eq!(view.plate.as_deref(), Some("PLT123"));
    db.close().await;
}

/// A reader's first location calls for a "new reader" notice, each later new location for a
/// "new location" notice, each due ten days after it began; unsent past that it is overdue;
/// sent, it says how; staying put calls for nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_for_a_new_reader_and_each_new_location_fall_due_in_ten_days() {
    // (and each location's end: moved away, or withdrawn)
    on_both("notices", notices).await;
}

async fn notices(url: String) {
    let db = Records::open(&url).await.expect("open");
    let rules = Rules::default();
    let t0 = 20_400 * DAY + 9 * HOUR;
    let mut tx = db.begin().await.expect("begin");
    write::reads(&mut tx, &rules, "t1", &[read_at(1, "AAA111", t0)], t0).await.expect("reads");
    // Two kilometres north two days later, then more reads there.
    let mut moved = read_at(2, "BBB222", t0 + 2 * DAY);
    moved.position = trailer_wire::Position::from_degrees(44.18, -93.99, FixQuality::Fix3d);
    let received = t0 + 3 * DAY;
    write::reads(&mut tx, &rules, "t1", std::slice::from_ref(&moved), received)
        .await
        .expect("reads");
    moved.read_id = 3;
    moved.first_seen += HOUR;
    moved.best_seen += HOUR;
    write::reads(&mut tx, &rules, "t1", &[moved], received).await.expect("reads");
    tx.commit().await.expect("commit");
    let n = db.notices(t0 + DAY, false).await.expect("notices");
    assert_eq!(n.len(), 3, "{n:#?}");
    // A new location stays out of the public list for the review period.
    let reviewed = db.clone().with_rules(Rules { review_ms: HOUR, ..Rules::default() });
    assert!(reviewed.public_locations(t0 + HOUR / 2).await.expect("public").is_empty());
    assert_eq!(reviewed.public_locations(received + 2 * HOUR).await.expect("public").len(), 2);
    let kinds: Vec<NoticeKind> = n.iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [NoticeKind::NewReader, NoticeKind::LocationEnded, NoticeKind::NewLocation],
        "the reader moved: the BCA hears it left the first place and stands at the second"
    );
    assert_eq!(
        n.iter().map(|n| (n.location_id, n.event_ms, n.due_ms)).collect::<Vec<_>>(),
        [
            (1, t0 + 500, t0 + 500 + 10 * DAY),
            (1, t0 + 500, t0 + 500 + 10 * DAY),
            (2, t0 + 2 * DAY + 500, t0 + 2 * DAY + 500 + 10 * DAY)
        ],
        "each dated by the best_seen that began or last saw it, due ten days on"
    );
    assert!((n[2].lat - 44.18).abs() < 1e-9 && (n[2].lon + 93.99).abs() < 1e-9, "{n:#?}");
    assert_eq!(n[2].place, "44.18000, -93.99000");
    assert!(n.iter().all(|n| n.state == NoticeState::Due));
    let later = db.notices(t0 + 11 * DAY, false).await.expect("notices");
    let states: Vec<NoticeState> = later.iter().map(|n| n.state).collect();
    assert_eq!(states, [NoticeState::Overdue, NoticeState::Overdue, NoticeState::Due]);
    assert!(db.claim_notice(n[0].id, t0).await.expect("claim"));
    assert!(!db.claim_notice(n[0].id, t0 + 1000).await.expect("claimed"), "one sender at a time");
    assert!(db.notice_sent(n[0].id, t0 + 12 * DAY, "manual: fax").await.expect("sent"));
    assert!(!db.notice_sent(n[0].id, t0 + 13 * DAY, "again").await.expect("sent"));
    let done = db.notices(t0 + 12 * DAY, false).await.expect("notices");
    assert_eq!(done[0].state, NoticeState::Sent);
    assert_eq!(done[0].sent_via.as_deref(), Some("manual: fax"));
    assert_eq!(db.notices(t0 + 12 * DAY, true).await.expect("unsent").len(), 2);

    // A backlog from the first place, collected between the two: the first place's dates
    // stretch; the reader has not moved and nobody is notified.
    let at = |read_id, lat: f64, seen| {
        let mut r = read_at(read_id, "CCC333", seen);
        r.position = trailer_wire::Position::from_degrees(lat, -93.99, FixQuality::Fix3d);
        r
    };
    let mut tx = db.begin().await.expect("begin");
    write::reads(&mut tx, &rules, "t1", &[at(4, 44.16, t0 + DAY)], received).await.expect("reads");
    tx.commit().await.expect("commit");
    let locs = db.locations(Some("t1")).await.expect("locations");
    assert_eq!(locs.len(), 2, "{locs:#?}");
    assert!(locs[1].until.is_none() && (locs[1].lat - 44.18).abs() < 1e-9, "{locs:#?}");
    assert_eq!(db.notices(t0, false).await.expect("notices").len(), 3);
    // A backlog from a place the server never heard of: a closed place in the history, and
    // the BCA hears that the reader stood there and left; the current place stays.
    let mut tx = db.begin().await.expect("begin");
    write::reads(&mut tx, &rules, "t1", &[at(5, 44.30, t0 + DAY + HOUR)], received)
        .await
        .expect("reads");
    tx.commit().await.expect("commit");
    let locs = db.locations(Some("t1")).await.expect("locations");
    assert_eq!(locs.len(), 3, "{locs:#?}");
    assert_eq!(locs.iter().filter(|l| l.until.is_none()).count(), 1);
    let n = db.notices(t0, false).await.expect("notices");
    assert_eq!(n.len(), 5);
    let mut backlog: Vec<&str> = n[3..].iter().map(|n| n.kind.as_str()).collect();
    backlog.sort_unstable();
    assert_eq!(backlog, ["location-ended", "new-location"]);
    // Back at the first place later: a new deployment there; the BCA hears the reader left the
    // second place and stands at the first again.
    let mut tx = db.begin().await.expect("begin");
    write::reads(&mut tx, &rules, "t1", &[at(6, 44.16, t0 + 5 * DAY)], t0 + 5 * DAY)
        .await
        .expect("reads");
    tx.commit().await.expect("commit");
    assert_eq!(db.locations(Some("t1")).await.expect("locations").len(), 4);
    let n = db.notices(t0, false).await.expect("notices");
    let last: Vec<(NoticeKind, i64)> = n[5..].iter().map(|n| (n.kind, n.location_id)).collect();
    assert_eq!(last, [(NoticeKind::LocationEnded, 2), (NoticeKind::NewLocation, 4)], "{n:#?}");
    // An operator withdraws the reader: the BCA hears that too.
    assert!(db.end_deployment("t1", t0 + 6 * DAY).await.expect("end"));
    let n = db.notices(t0, false).await.expect("notices");
    assert_eq!((n.len(), n[7].kind, n[7].event_ms), (8, NoticeKind::LocationEnded, t0 + 6 * DAY));
    db.close().await;
}

/// Altering any field of an entry, removing an entry, or swapping two entries breaks the
/// chain, and `audit_verify` names where; undone, the chain verifies again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_any_audit_row_is_detected() {
    on_both("tamper", tamper).await;
}

async fn tamper(url: String) {
    let db = Records::open(&url).await.expect("open");
    for i in 0..5 {
        db.audit(&Entry {
            at: 1000 + i,
            actor: format!("cli:user{i}"),
            action: "reads.list".into(),
            purpose: "patrol".into(),
            case_number: format!("C-{i}"),
            detail: String::new(),
            result_count: i,
        })
        .await
        .expect("append");
    }
    assert_eq!(db.audit_verify().await.expect("verify"), Ok(5));
    let pg = db.is_postgres();
    // The database refuses changes and removals...
    for text in ["UPDATE audit SET detail = 'x' WHERE seq = 2", "DELETE FROM audit WHERE seq = 5"] {
        let refused = sqlx::query(sql(pg, text)).execute(db.pool()).await;
        assert!(
            refused.as_ref().is_err_and(|e| e.to_string().contains("append-only")),
            "{text}: {refused:?}"
        );
    }
    // ...but someone with the rights to drop its guards can tamper; the chain shows it.
    let guards: &[&'static str] = if pg {
        &["DROP TRIGGER audit_no_change ON audit"]
    } else {
        &["DROP TRIGGER audit_no_update", "DROP TRIGGER audit_no_delete"]
    };
    for g in guards {
        sqlx::query(sql(pg, g)).execute(db.pool()).await.expect("drop the guard");
    }
    let exec = async |text: &'static str| {
        sqlx::query(sql(pg, text)).execute(db.pool()).await.expect("tamper");
    };
    for (change, undo) in [
        (
            "UPDATE audit SET actor = 'cli:nobody' WHERE seq = 3",
            "UPDATE audit SET actor = 'cli:user2' WHERE seq = 3",
        ),
        (
            "UPDATE audit SET result_count = 0 WHERE seq = 5",
            "UPDATE audit SET result_count = 4 WHERE seq = 5",
        ),
        (
            "UPDATE audit SET case_number = '' WHERE seq = 1",
            "UPDATE audit SET case_number = 'C-0' WHERE seq = 1",
        ),
        ("UPDATE audit SET at = 0 WHERE seq = 2", "UPDATE audit SET at = 1001 WHERE seq = 2"),
    ] {
        exec(change).await;
        assert!(db.audit_verify().await.expect("verify").is_err(), "{change}");
        exec(undo).await;
        assert_eq!(db.audit_verify().await.expect("verify"), Ok(5), "{undo}");
    }
    // Reordered: entries 2 and 3 swap places (sequence numbers kept).
    exec("UPDATE audit SET seq = -2 WHERE seq = 2").await;
    exec("UPDATE audit SET seq = 2 WHERE seq = 3").await;
    exec("UPDATE audit SET seq = 3 WHERE seq = -2").await;
    let broken = db.audit_verify().await.expect("verify");
    assert!(broken.as_ref().is_err_and(|e| e.contains("entry 2")), "{broken:?}");
    exec("UPDATE audit SET seq = -2 WHERE seq = 2").await;
    exec("UPDATE audit SET seq = 2 WHERE seq = 3").await;
    exec("UPDATE audit SET seq = 3 WHERE seq = -2").await;
    assert_eq!(db.audit_verify().await.expect("verify"), Ok(5));
    // Removed.
    exec("DELETE FROM audit WHERE seq = 4").await;
    let broken = db.audit_verify().await.expect("verify");
    assert!(broken.as_ref().is_err_and(|e| e.contains("entry 4 is missing")), "{broken:?}");
    // The head names the newest entry, for an anchor kept elsewhere.
    assert_eq!(db.audit_head().await.expect("head").0, 5);
    db.close().await;
}

/// On PostgreSQL a day wholly past retention is dropped as a partition; a day with a held read
/// is not dropped, but its other rows go; ingestion into today's partition goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_drops_whole_days_past_retention() {
    let url = scratch_postgres("partitions").await.expect("PostgreSQL for tests");
    let db = Records::open(&url).await.expect("open");
    let rules = Rules::default();
    let now = 20_400 * DAY + 12 * HOUR;
    db.prepare_partitions(now - 5 * DAY, 60).await;
    let (d1, d2) = (now - 64 * DAY, now - 63 * DAY);
    let mut tx = db.begin().await.expect("begin");
    let day1: Vec<ReadMeta> = (1..=50).map(|i| read_at(i, "DAYONE", d1 + i as i64)).collect();
    let day2: Vec<ReadMeta> = (51..=60).map(|i| read_at(i, "DAYTWO", d2 + i as i64)).collect();
    write::reads(&mut tx, &rules, "t1", &day1, d1).await.expect("reads");
    write::reads(&mut tx, &rules, "t1", &day2, d2).await.expect("reads");
    for r in day1.iter().take(3) {
        write::picture(&mut tx, "t1", r.read_id, PictureKind::Context, b"jpeg", d1 + DAY)
            .await
            .expect("picture");
    }
    // A picture that arrived today, before its read of the first day: it sits in today's
    // partition, and must go with its read all the same.
    write::picture(&mut tx, "t1", 61, PictureKind::PlateCrop, b"jpeg", now).await.expect("early");
    write::reads(&mut tx, &rules, "t1", &[read_at(61, "DAYONE", d1 + 61)], now)
        .await
        .expect("read");
    tx.commit().await.expect("commit");
    db.place_hold(&hold_of("exculpatory", "C-9", "", &[("t1", 51)]), "cli:x", now)
        .await
        .expect("hold");
    let partition = |day: i64| format!("reads_d{}", day.div_euclid(DAY));
    let exists = async |name: String| -> bool {
        sqlx::query(sql(true, "SELECT COUNT(*) FROM pg_class WHERE relname = ?"))
            .bind(name)
            .fetch_one(db.pool())
            .await
            .expect("pg_class")
            .get::<i64, _>(0)
            == 1
    };
    assert!(exists(partition(d1)).await && exists(partition(d2)).await);
    let purged = db.purge(now, 60).await.expect("purge");
    assert_eq!((purged.reads, purged.pictures), (60, 4));
    assert_eq!(count(&db, "pictures").await, 0, "no picture outlives its read");
    assert!(!exists(partition(d1)).await, "a day with nothing held is dropped whole");
    assert!(exists(partition(d2)).await, "a day with a held read stays");
    let left: Vec<u64> =
        db.list_reads(100).await.expect("reads").iter().map(|r| r.read_id).collect();
    assert_eq!(left, [51]);
    assert!(exists(partition(now + DAY)).await, "tomorrow's partition is ready");
    let mut tx = db.begin().await.expect("begin");
    write::reads(&mut tx, &rules, "t1", &[read_at(99, "TODAY9", now)], now).await.expect("reads");
    tx.commit().await.expect("commit");
    assert_eq!(db.list_reads(100).await.expect("reads").len(), 2);
    db.close().await;
    drop_scratch_postgres(&url).await.expect("drop");
}

/// A record that comes again is a resend (stored once, counted); the same id with other
/// content is a collision: kept in the dead letters once, counted, never over the record held,
/// and a picture of a colliding read follows it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resends_are_stored_once_and_collisions_are_kept_apart() {
    on_both("repeats", repeats).await;
}

async fn repeats(url: String) {
    use trailer_wire::{DeploymentEvent, DeploymentEventKind, HitCategory, PictureKind};
    let db = Records::open(&url).await.expect("open");
    let rules = Rules::default();
    let t0 = 1_790_000_000_000;
    let mut tx = db.begin().await.expect("begin");
    let first = [read_at(1, "AAA111", t0), read_at(2, "BBB222", t0 + 1)];
    write::reads(&mut tx, &rules, "t1", &first, t0).await.expect("reads");
    write::picture(&mut tx, "t1", 1, PictureKind::PlateCrop, b"crop", t0).await.expect("pic");
    let a = hit(5, first[0].clone(), HitCategory::Warrant);
    assert!(write::alert(&mut tx, &rules, "t1", &a, t0).await.expect("alert"));
    write::usage(&mut tx, &rules, "t1", &period(7, t0, None, 44.16), t0).await.expect("usage");
    let event = |kind, time| DeploymentEvent {
        trailer_id: "t1".into(),
        event_id: 9,
        kind,
        time,
        position: trailer_wire::Position::from_degrees(
            44.16,
            -93.99,
            trailer_wire::FixQuality::Fix3d,
        ),
        note: String::new(),
    };
    write::deployment(&mut tx, &rules, "t1", &event(DeploymentEventKind::Start, t0), t0)
        .await
        .expect("event");
    // The same again: a resend of each.
    let acks = write::reads(&mut tx, &rules, "t1", &first, t0).await.expect("again");
    assert_eq!(acks.len(), 2, "a resend is acknowledged");
    write::picture(&mut tx, "t1", 1, PictureKind::PlateCrop, b"crop", t0).await.expect("pic");
    assert!(!write::alert(&mut tx, &rules, "t1", &a, t0).await.expect("alert again"));
    write::usage(&mut tx, &rules, "t1", &period(7, t0, Some(t0 + HOUR), 44.16), t0 + HOUR)
        .await
        .expect("closing");
    tx.commit().await.expect("commit");
    let mut c = db.pool().acquire().await.expect("conn");
    assert_eq!(repeats::counts(&mut c, "t1").await.expect("counts"), (6, 0));
    drop(c);
    assert!(db.dead_letters().await.expect("letters").is_empty());

    // Other records under the same ids: each a collision, kept apart, the held ones unchanged.
    let mut tx = db.begin().await.expect("begin");
    let other = read_at(2, "ZZZ999", t0 + DAY);
    let acks = write::reads(&mut tx, &rules, "t1", std::slice::from_ref(&other), t0 + DAY)
        .await
        .expect("colliding read");
    assert_eq!(acks, [trailer_wire::AckRef::Read(2)], "acknowledged, so the trailer moves on");
    write::reads(&mut tx, &rules, "t1", std::slice::from_ref(&other), t0 + DAY)
        .await
        .expect("the colliding read again");
    write::picture(&mut tx, "t1", 2, PictureKind::Context, b"theirs", t0 + DAY)
        .await
        .expect("its picture");
    write::picture(&mut tx, "t1", 1, PictureKind::PlateCrop, b"other", t0 + DAY)
        .await
        .expect("another picture");
    let b = hit(5, read_at(3, "CCC333", t0 + DAY), HitCategory::StolenVehicle);
    assert!(!write::alert(&mut tx, &rules, "t1", &b, t0 + DAY).await.expect("other alert"));
    write::usage(&mut tx, &rules, "t1", &period(7, t0 + DAY, None, 44.2), t0 + DAY)
        .await
        .expect("other period");
    write::deployment(&mut tx, &rules, "t1", &event(DeploymentEventKind::End, t0 + DAY), t0 + DAY)
        .await
        .expect("other event");
    tx.commit().await.expect("commit");
    let letters = db.dead_letters().await.expect("letters");
    let reasons: Vec<&str> = letters.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(
        letters.len(),
        6,
        "read, its picture, a picture, alert, period, event: {reasons:#?}"
    );
    assert!(reasons[0].starts_with("read id 2 of t1 collides"), "{}", reasons[0]);
    assert!(letters.iter().all(|(_, r)| !r.contains("ZZZ999")), "no plate in a reason");
    let mut c = db.pool().acquire().await.expect("conn");
    assert_eq!(repeats::counts(&mut c, "t1").await.expect("counts"), (7, 6));
    drop(c);
    let held = db.search_reads("BBB222", 0, 10).await.expect("search");
    assert_eq!(held.len(), 1, "the read held is unchanged");
    assert!(db.search_reads("ZZZ999", 0, 10).await.expect("search").is_empty());
    assert_eq!(db.pictures_of("t1", 1).await.expect("pictures")[0].1, b"crop");
    let periods: Vec<(i64, Option<i64>)> =
        sqlx::query("SELECT start_ms, end_ms FROM usage_periods WHERE period_id = 7")
            .fetch_all(db.pool())
            .await
            .expect("periods")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(periods, [(t0, Some(t0 + HOUR))], "the period held is unchanged");
}

/// A trailer's first store is sent what it must hold; a restart of it is nothing; a new store
/// or a restored copy is recorded, audited, shown and sent everything again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_or_restored_store_is_noticed_and_sent_what_it_must_hold() {
    on_both("stores", store_lives).await;
}

async fn store_lives(url: String) {
    let key: Arc<[u8]> = b"an agency key of 32 bytes, or so".to_vec().into();
    let config_key: Arc<[u8]> = trailer_wire::signed::generate().expect("key").into();
    let db = Records::open(&url).await.expect("open").with_rules(Rules {
        acp_key: Some(key),
        config_key: Some(config_key.clone()),
        ..Rules::default()
    });
    let t0 = 1_790_000_000_000;
    db.acp_add("ACP123", "ACP-1", "sup", t0).await.expect("acp");
    let status = async |s: trailer_wire::Status| {
        let mut tx = db.begin().await.expect("begin");
        let e = write::status(&mut tx, db.rules(), "t1", &s, s.time).await.expect("status");
        tx.commit().await.expect("commit");
        e
    };
    let acp_downlinks = async || -> usize {
        db.downlinks(Some("t1"), 100)
            .await
            .expect("downlinks")
            .iter()
            .filter(|d| d.kind == "acp.add")
            .count()
    };
    assert_eq!(status(store_status("t1", t0, 1, 1, 11)).await, StoreEvent::First);
    assert_eq!(acp_downlinks().await, 1, "the first store is sent the list");
    assert_eq!(status(store_status("t1", t0 + 1, 1, 1, 11)).await, StoreEvent::Same);
    assert_eq!(status(store_status("t1", t0 + 2, 1, 2, 12)).await, StoreEvent::Same, "restart");
    let audited = db.audit_verify().await.expect("verify").expect("intact");
    assert_eq!(acp_downlinks().await, 1);
    // A hold on one of its reads, and a configuration it applied.
    db.place_hold(&hold_of("active-investigation", "24-1", "", &[("t1", 42)]), "sup", t0)
        .await
        .expect("hold");
    let toml = "[trailer]\nid = \"t1\"\n".to_string();
    let config = db
        .enqueue_downlink("t1", "config", "configuration", "admin", t0, |id| {
            trailer_wire::Downlink::Config {
                downlink_id: id,
                toml: toml.clone(),
                signature: Vec::new(),
            }
        })
        .await
        .expect("config");
    let mut tx = db.begin().await.expect("begin");
    let answer = trailer_wire::DownlinkAck {
        trailer_id: "t1".into(),
        downlink_id: config,
        applied: true,
        reason: None,
    };
    write::downlink_answer(&mut tx, "t1", &answer, t0).await.expect("answer");
    tx.commit().await.expect("commit");
    let offline = trailer_wire::Status { online: false, ..store_status("t1", t0 + 3, 7, 1, 1) };
    assert_eq!(status(offline).await, StoreEvent::Same, "a late will is no store change");
    assert_eq!(
        status(store_status("t1", t0 + 4, 2, 1, 21)).await,
        StoreEvent::NewStore { previous: format!("{:016x}", 1) }
    );
    assert_eq!(acp_downlinks().await, 2, "the new store is sent the list again");
    let sent: Vec<(String, String)> = db
        .downlinks(Some("t1"), 3)
        .await
        .expect("downlinks")
        .into_iter()
        .map(|d| (d.kind, d.summary))
        .collect();
    assert_eq!(sent[0].0, "config", "its configuration again: {sent:?}");
    // Signed anew for its own downlink.
    let resent = db.downlinks(Some("t1"), 1).await.expect("downlinks")[0].id;
    let frame: Vec<u8> = sqlx::query(sql(db.pg, "SELECT frame FROM downlinks WHERE id = ?"))
        .bind(resent as i64)
        .fetch_one(db.pool())
        .await
        .expect("frame")
        .get(0);
    let Ok(trailer_wire::Message::Downlink(trailer_wire::Downlink::Config {
        toml, signature, ..
    })) = trailer_wire::decode(&frame)
    else {
        panic!("a configuration downlink");
    };
    let public = trailer_wire::signed::public_key(&config_key).expect("public");
    assert!(trailer_wire::signed::verify(&public, "t1", resent, &toml, &signature));
    assert_eq!(sent[1], ("hold".to_string(), "hold 1 (1 reads), sent again".to_string()));
    assert_eq!(status(store_status("t1", t0 + 5, 2, 2, 22)).await, StoreEvent::Same);
    // Store 2 restored from the copy taken after its first open: open 2 again, another run.
    assert_eq!(status(store_status("t1", t0 + 6, 2, 2, 23)).await, StoreEvent::Restored);
    assert_eq!(acp_downlinks().await, 3);
    let entries = db.audit_verify().await.expect("verify").expect("intact");
    assert_eq!(entries, audited + 2, "the new store and the restored copy are audited");
    let health: Vec<(String, String)> =
        sqlx::query("SELECT store_id, store_event FROM trailer_status WHERE trailer_id = 't1'")
            .fetch_all(db.pool())
            .await
            .expect("status")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(health, [(format!("{:016x}", 2), "restored".to_string())]);
}

/// Only an enrolled trailer's messages are stored: another's (a certificate the broker should
/// have refused) go to the dead letters unacknowledged, a revoked trailer's too, and a name
/// is a trailer's or a user's, never both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_enrolled_trailers_are_stored() {
    on_both("enrolled", enrolled).await;
}

async fn enrolled(url: String) {
    use crate::ingest::{Accepted, apply_batch};
    let db = Records::open(&url).await.expect("open");
    let t0 = 1_790_000_000_000;
    assert!(db.enroll_trailer("t1", "admin", "Hwy 14", t0).await.expect("enrol"));
    assert!(!db.enroll_trailer("t1", "admin", "", t0).await.expect("again"), "already enrolled");
    let message = |t: &str, id| Accepted {
        topic: format!("trailer/{t}/up/reads"),
        trailer: t.into(),
        message: trailer_wire::Message::ReadBatch(trailer_wire::ReadBatch {
            trailer_id: t.into(),
            reads: vec![read_at(id, "AAA111", t0)],
        }),
    };
    let acks = apply_batch(&db, &[message("t1", 1), message("t9", 2)], t0).await.expect("batch");
    assert_eq!(acks, [vec![trailer_wire::AckRef::Read(1)], vec![]], "the stranger is not acked");
    assert_eq!(db.counts("t1").await.expect("counts").reads, 1);
    assert_eq!(db.counts("t9").await.expect("counts").reads, 0);
    let letters = db.dead_letters().await.expect("letters");
    assert!(letters[0].1.contains("t9 is not an enrolled trailer"), "{letters:?}");
    assert!(db.revoke_trailer("t1", "admin", "stolen", t0).await.expect("revoke"));
    let acks = apply_batch(&db, &[message("t1", 3)], t0).await.expect("batch");
    assert_eq!(acks, [vec![]], "a revoked trailer is refused");
    assert_eq!(db.dead_letters().await.expect("letters").len(), 2);
    assert!(db.enroll_trailer("t1", "admin", "", t0).await.is_err(), "not again under that id");
    let refused = db.grant("t1", crate::console::roles::Role::Viewer, "chief", "GO 1", t0).await;
    assert!(refused.is_err(), "a trailer's id is not a user's name");
    db.grant("alice", crate::console::roles::Role::Viewer, "chief", "GO 1", t0)
        .await
        .expect("grant");
    assert!(
        db.enroll_trailer("alice", "admin", "", t0).await.is_err(),
        "a user's name is not a trailer's id"
    );
    let clients = db.broker_clients(&["sync-server".into()]).await.expect("clients");
    use crate::broker::access::Kind;
    assert_eq!(clients.get("t1"), Some(&(Kind::Trailer, false)), "revoked: disabled at the broker");
    assert_eq!(clients.get("alice"), Some(&(Kind::Operator, true)));
    assert_eq!(clients.get("sync-server"), Some(&(Kind::Server, true)));
}

/// A downlink answered is not sent again: its frame (a hotlist's plates, ACP digests) goes; a
/// configuration's stays, to give a new store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_downlinks_keep_no_frame_but_a_configuration() {
    on_both("frames", frames).await;
}

async fn frames(url: String) {
    let db = Records::open(&url).await.expect("open");
    let t0 = 1_790_000_000_000;
    let mut ids = Vec::new();
    for kind in ["hotlist", "config"] {
        let id = db
            .enqueue_downlink("t1", kind, kind, "admin", t0, |downlink_id| {
                trailer_wire::Downlink::Config {
                    downlink_id,
                    toml: "PLATE123".into(),
                    signature: Vec::new(),
                }
            })
            .await
            .expect("enqueue");
        let mut tx = db.begin().await.expect("begin");
        let answer = trailer_wire::DownlinkAck {
            trailer_id: "t1".into(),
            downlink_id: id,
            applied: true,
            reason: None,
        };
        write::downlink_answer(&mut tx, "t1", &answer, t0).await.expect("answer");
        tx.commit().await.expect("commit");
        ids.push(id);
    }
    let lengths: Vec<i64> = sqlx::query("SELECT LENGTH(frame) FROM downlinks ORDER BY id")
        .fetch_all(db.pool())
        .await
        .expect("frames")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(lengths[0], 0, "the hotlist's frame is gone");
    assert!(lengths[1] > 0, "the configuration is kept");
}

/// A downlink no trailer answered within the retention period is given up and its frame (a
/// hotlist's plates) destroyed, a day after it is due and not a day before; a configuration
/// stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_downlinks_expire_with_their_frames() {
    on_both("expiry", downlink_expiry).await;
}

async fn downlink_expiry(url: String) {
    const DAY: i64 = 86_400_000;
    let db = Records::open(&url).await.expect("open");
    let t0 = 1_790_000_000_000;
    for kind in ["hotlist", "config"] {
        db.enqueue_downlink("t1", kind, kind, "admin", t0, |downlink_id| {
            trailer_wire::Downlink::Config {
                downlink_id,
                toml: "PLATE123".into(),
                signature: vec![],
            }
        })
        .await
        .expect("enqueue");
    }
    let waiting =
        |db: Records, now| async move { db.due_downlinks(now, 0, 10).await.expect("due").len() };
    assert_eq!(db.purge(t0 + 59 * DAY, 60).await.expect("purge").downlinks, 0);
    assert_eq!(waiting(db.clone(), t0 + 59 * DAY).await, 2);
    assert_eq!(db.purge(t0 + 61 * DAY, 60).await.expect("purge").downlinks, 1);
    assert_eq!(waiting(db.clone(), t0 + 61 * DAY).await, 1, "only the configuration waits");
    let rows: Vec<(String, i64, Option<String>)> =
        sqlx::query_as("SELECT kind, LENGTH(frame), answer FROM downlinks ORDER BY id")
            .fetch_all(db.pool())
            .await
            .expect("rows");
    assert_eq!(rows[0].1, 0, "the hotlist's frame is gone");
    assert!(rows[0].2.as_deref().is_some_and(|a| a.starts_with("expired")), "{rows:?}");
    assert!(rows[1].1 > 0 && rows[1].2.is_none(), "{rows:?}");
}

/// The public pages' pool reads and cannot write, on either backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_pool_reads_and_cannot_write() {
    on_both("readonly", public_pool).await;
}

async fn public_pool(url: String) {
    let db = Records::open(&url).await.expect("open");
    let public = db.read_only(1).await.expect("read-only pool");
    assert!(public.public_locations(0).await.expect("read").is_empty());
    let insert = "INSERT INTO trailers (trailer_id, enrolled_ms, enrolled_by, note) \
                  VALUES ('intruder', 0, 'nobody', '')";
    let write = sqlx::query(insert).execute(public.pool()).await;
    assert!(write.is_err(), "the public pool wrote: {write:?}");
    let ddl = sqlx::query("CREATE TABLE intruder (x INTEGER)").execute(public.pool()).await;
    assert!(ddl.is_err(), "the public pool changed the schema");
    // The same insert on the records' own pool goes through: the refusal is the pool's.
    sqlx::query(insert).execute(db.pool()).await.expect("the writing pool writes");
    public.close().await;
    db.close().await;
}
