//! The biennial audit report (Minn. Stat. 13.824 subd. 6): for a date range, a summary of the
//! data collected, its classification, its use, its destruction and who accessed it, with the
//! state of the BCA notices and of the audit trail itself. Built from the log-of-use tallies,
//! the notices, the holds and the audit trail: it names no plate.
use crate::Config;
use crate::records::{AuditSummary, NoticeState, Records, RecordsError, uselog};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub generated_at: String,
    pub collection: Collection,
    pub classification: Vec<String>,
    pub notices: Notices,
    pub destruction: Destruction,
    pub audit: AuditSummary,
    /// `Ok(entries)` or where the chain breaks.
    pub audit_chain: Result<i64, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Collection {
    pub readers: usize,
    pub periods_of_use: usize,
    pub plates_read: i64,
    pub hits: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notices {
    pub total: usize,
    pub sent_on_time: usize,
    pub sent_late: usize,
    pub overdue: usize,
    pub due: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Destruction {
    pub retention_days: u32,
    /// Records the server destroyed by retention in the range, from the audit trail (ACP
    /// destructions are never counted: that a request was made is private).
    pub destroyed: i64,
    /// Reads the trailers destroyed by retention in the range, from their health reports.
    pub destroyed_on_trailers: i64,
    /// Reads past retention that no hold keeps, now: zero when destruction works.
    pub reads_past_retention_now: i64,
    pub active_holds: usize,
}

/// Milliseconds at local midnight starting the day `day` (`YYYY-MM-DD`) and the one after it,
/// in the agency's time zone (the log of use's days are local too).
pub fn local_day_bounds(tz: &jiff::tz::TimeZone, day: &str) -> Option<(i64, i64)> {
    if !crate::public::valid_day(day) {
        return None;
    }
    let date: jiff::civil::Date = day.parse().ok()?;
    let start = |d: jiff::civil::Date| {
        d.to_zoned_datetime(tz.clone()).ok().map(|z| z.timestamp().as_millisecond())
    };
    Some((start(date)?, start(date.tomorrow().ok()?)?))
}

pub async fn build(
    records: &Records,
    config: &Config,
    from: &str,
    to: &str,
    now: i64,
) -> Result<Report, RecordsError> {
    let tz = &records.rules().time_zone;
    let (Some((from_ms, _)), Some((_, end_ms))) =
        (local_day_bounds(tz, from), local_day_bounds(tz, to))
    else {
        return Err(RecordsError::Invalid("from and to are dates: YYYY-MM-DD".into()));
    };
    if from_ms >= end_ms {
        return Err(RecordsError::Invalid("from is after to".into()));
    }
    let log = records.use_log(from, to, now).await?;
    let readers: std::collections::BTreeSet<&str> =
        log.periods.iter().map(|p| p.reader.as_str()).collect();
    let notices: Vec<_> = records
        .notices(now, false)
        .await?
        .into_iter()
        .filter(|n| n.event_ms >= from_ms && n.event_ms < end_ms)
        .collect();
    let late = |n: &&crate::records::Notice| n.sent_ms.is_some_and(|s| s > n.due_ms);
    let holds = records.holds().await?;
    Ok(Report {
        from: from.into(),
        to: to.into(),
        generated_at: crate::records::iso_time(now),
        collection: Collection {
            readers: readers.len(),
            periods_of_use: log.periods.iter().filter(|p| p.period_id != 0).count(),
            plates_read: log.total_reads,
            hits: log.total_hits.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        },
        classification: vec![
            "Reads, plate pictures and hotlist hits are private or nonpublic data \
             (Minn. Stat. 13.824 subd. 2); none is published."
                .into(),
            "Locations marked security information are withheld from the public list and \
             reported to the BCA marked so."
                .into(),
            "The location list, the log of use and the audit trail without its classified \
             fields are public."
                .into(),
        ],
        notices: Notices {
            total: notices.len(),
            sent_on_time: notices.iter().filter(|n| n.sent_ms.is_some() && !late(n)).count(),
            sent_late: notices.iter().filter(late).count(),
            overdue: notices.iter().filter(|n| n.state == NoticeState::Overdue).count(),
            due: notices.iter().filter(|n| n.state == NoticeState::Due).count(),
        },
        destruction: Destruction {
            retention_days: config.server.retention_days,
            destroyed: 0,
            destroyed_on_trailers: records.trailer_destroyed(from_ms, end_ms).await?,
            reads_past_retention_now: records
                .overdue_reads(now, config.server.retention_days)
                .await?,
            active_holds: holds.iter().filter(|h| h.released_at.is_none()).count(),
        },
        audit: records.audit_summary(from_ms, end_ms).await?,
        audit_chain: records.audit_verify().await?,
    })
    .map(|mut r: Report| {
        r.destruction.destroyed = r.audit.destroyed;
        r
    })
}

/// The report as text for the auditor.
pub fn text(r: &Report, agency: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "ALPR biennial audit report: {agency}");
    let _ = writeln!(o, "Period {} to {} (generated {})\n", r.from, r.to, r.generated_at);
    let _ = writeln!(o, "1. Collection");
    let _ = writeln!(
        o,
        "   {} readers, {} periods of active use, {} plates read",
        r.collection.readers, r.collection.periods_of_use, r.collection.plates_read
    );
    for (key, label) in uselog::CATEGORIES {
        let _ =
            writeln!(o, "   hits, {label}: {}", r.collection.hits.get(key).copied().unwrap_or(0));
    }
    let _ = writeln!(o, "\n2. Classification");
    for c in &r.classification {
        let _ = writeln!(o, "   - {c}");
    }
    let _ = writeln!(o, "\n3. Notices to the BCA");
    let n = &r.notices;
    let _ = writeln!(
        o,
        "   {} notices: {} sent on time, {} sent late, {} overdue, {} due",
        n.total, n.sent_on_time, n.sent_late, n.overdue, n.due
    );
    let _ = writeln!(o, "\n4. Use and access ({} audit entries)", r.audit.entries);
    let _ = writeln!(
        o,
        "   {} accesses to data, {} with a case number",
        r.audit.accesses, r.audit.accesses_with_case
    );
    let _ =
        writeln!(o, "   {} disseminations (releases to another agency)", r.audit.disseminations);
    for (action, (count, records)) in &r.audit.by_action {
        let _ = writeln!(o, "   {action:<24} {count:>8} entries {records:>10} records");
    }
    let _ = writeln!(o, "   by actor:");
    for (actor, count) in &r.audit.by_actor {
        let _ = writeln!(o, "   {actor:<24} {count:>8} entries");
    }
    let _ = writeln!(o, "\n5. Destruction (retention {} days)", r.destruction.retention_days);
    let _ = writeln!(o, "   {} records destroyed in the period", r.destruction.destroyed);
    let _ = writeln!(
        o,
        "   {} reads destroyed on the trailers in the period",
        r.destruction.destroyed_on_trailers
    );
    let _ = writeln!(
        o,
        "   {} reads past retention not held, now ({})",
        r.destruction.reads_past_retention_now,
        if r.destruction.reads_past_retention_now == 0 { "compliant" } else { "NOT COMPLIANT" }
    );
    let _ = writeln!(o, "   {} active holds", r.destruction.active_holds);
    let _ = writeln!(o, "\n6. Audit trail");
    match &r.audit_chain {
        Ok(n) => {
            let _ = writeln!(o, "   intact: {n} entries verify");
        }
        Err(e) => {
            let _ = writeln!(o, "   BROKEN: {e}");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The report counts every access, whether from the command line or the console, and
    /// each release as a dissemination; it counts the retention destruction on the server and
    /// the trailers; an ACP request, its destruction and its downlinks are in no count and no
    /// line of it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_report_counts_every_access_and_never_an_acp_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
        let records = Records::open(&url).await.expect("open");
        // 2026-11-10 12:00 UTC.
        let at = 1_762_776_000_000;
        let entries = [
            ("cli:ann", "reads.list", "24-1", 4),
            ("console:bob", "plates.search", "24-2", 2),
            ("console:bob", "alerts.list", "", 1),
            ("console:bob", "deployments.list", "", 3),
            ("console:sue", "acp.add", "ACP-9", 1),
            ("retention", "acp.destroy", "", 5),
            ("sync-server", "downlink.acp", "", 1),
            ("retention", "destroy", "", 3),
            ("console:sue", "release.fulfil", "24-2", 6),
            ("console:sue", "hotlists.upload", "", 1),
        ];
        for (i, (actor, action, case, n)) in entries.iter().enumerate() {
            let entry = crate::audit::Entry {
                at: at + i as i64,
                actor: (*actor).into(),
                action: (*action).into(),
                purpose: "test".into(),
                case_number: (*case).into(),
                detail: String::new(),
                result_count: *n,
            };
            records.audit(&entry).await.expect("audit");
        }
        let mut health = trailer_wire::Health {
            trailer_id: "t1".into(),
            time: at,
            camera: trailer_wire::CameraState::Up,
            position: trailer_wire::Position::from_degrees(
                44.1,
                -93.9,
                trailer_wire::FixQuality::Fix3d,
            ),
            disk_used_pm: 0,
            storage_full: false,
            store_repairs: 0,
            battery_mv: None,
            solar_mw: None,
            modem_rssi_dbm: None,
            backlog_items: 0,
            backlog_oldest: None,
            last_read: None,
            dropped_frames: 0,
            software_version: "x".into(),
            acp_key_fingerprint: None,
            acp_entries: 0,
            config_rolled_back: None,
            destroyed: vec![(20_400, 9), (20_402, 7)],
        };
        let mut tx = records.begin().await.expect("begin");
        crate::records::write::health(&mut tx, &health).await.expect("health");
        // A later report of a day counts it once, at its newest count.
        health.time += 1;
        health.destroyed = vec![(20_402, 8)];
        crate::records::write::health(&mut tx, &health).await.expect("health");
        tx.commit().await.expect("commit");

        let r = build(&records, &Config::default(), "2025-11-01", "2026-12-31", at + 100)
            .await
            .expect("report");
        let a = &r.audit;
        assert_eq!((a.accesses, a.accesses_with_case), (4, 2), "{a:#?}");
        assert_eq!(a.disseminations, 1);
        assert_eq!(r.destruction.destroyed, 3, "retention only, never ACP");
        // Days 20400 and 20402 are 2025-11-08 and 2025-11-10.
        assert_eq!(r.destruction.destroyed_on_trailers, 17);
        assert_eq!(a.entries, 7, "the three ACP entries are not counted");
        assert!(a.by_action.keys().all(|k| !k.contains("acp")), "{a:#?}");
        let text = text(&r, "PD");
        assert!(!text.to_lowercase().contains("acp"), "{text}");
        assert!(text.contains("4 accesses to data, 2 with a case number"), "{text}");
        assert!(text.contains("1 disseminations"), "{text}");
        assert!(text.contains("17 reads destroyed on the trailers"), "{text}");
        records.close().await;
    }

    #[test]
    fn report_days_are_local_days() {
        let tz = jiff::tz::TimeZone::get("America/Chicago").expect("tz");
        // 2026-11-23 00:00 in Minnesota is 06:00 UTC; the next day starts 24 h later.
        let (start, end) = local_day_bounds(&tz, "2026-11-23").expect("a day");
        assert_eq!(crate::records::iso_time(start), "2026-11-23T06:00:00Z");
        assert_eq!(end - start, 86_400_000);
        // The day summer time begins has 23 hours.
        let (start, end) = local_day_bounds(&tz, "2026-03-08").expect("a day");
        assert_eq!(end - start, 23 * 3_600_000);
        for bad in ["2026-13-01", "2026-02-31", "2026-2-3", "nonsense"] {
            assert_eq!(local_day_bounds(&tz, bad), None, "{bad}");
        }
    }
}
