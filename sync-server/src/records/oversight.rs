//! Oversight (Minn. Stat. 13.824 subd. 6): suspension orders, which stop the whole fleet until
//! lifted, and the biennial audits' results, which are public and reported to the Commissioner
//! within 30 days.
use super::{Records, RecordsError, iso_date, iso_time, sql};
use crate::audit::Entry;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

/// Days after an audit within which its report goes to the Commissioner.
pub const REPORT_DAYS: i64 = 30;

/// A suspension order as operators and the public pages see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suspension {
    pub id: i64,
    pub order: String,
    pub note: String,
    pub ordered_by: String,
    pub ordered_at: String,
    pub ordered_ms: i64,
    pub lifted_at: Option<String>,
    pub lifted_ms: Option<i64>,
}

/// A recorded audit result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditResult {
    pub id: i64,
    /// The local day the audit was completed (`completed_ms` is its start).
    pub completed: String,
    pub completed_ms: i64,
    pub auditor: String,
    /// The summary as published (no personal data: the auditor's public findings).
    pub summary: String,
    pub compliant: bool,
    /// The day the report to the Commissioner is due.
    pub report_due: String,
    pub reported_at: Option<String>,
    pub reported_how: Option<String>,
    /// Not reported and past its due day.
    pub overdue: bool,
}

fn suspension_of(r: &sqlx::any::AnyRow) -> Suspension {
    let lifted: Option<i64> = r.get(6);
    Suspension {
        id: r.get(0),
        order: r.get(1),
        note: r.get(2),
        ordered_by: r.get(3),
        ordered_at: iso_time(r.get(4)),
        ordered_ms: r.get(4),
        lifted_at: lifted.map(iso_time),
        lifted_ms: lifted,
    }
}

/// The suspension in force, inside the caller's transaction.
pub(crate) async fn in_force(c: &mut AnyConnection) -> Result<Option<Suspension>, RecordsError> {
    let pg = super::is_pg(c);
    let row = sqlx::query(sql(
        pg,
        "SELECT id, order_ref, note, ordered_by, ordered_ms, lifted_by, lifted_ms \
         FROM suspensions WHERE lifted_ms IS NULL ORDER BY id DESC LIMIT 1",
    ))
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.as_ref().map(suspension_of))
}

/// Every suspension's window `(from, to)` (`to` = `i64::MAX` while in force).
pub(crate) async fn windows(c: &mut AnyConnection) -> Result<Vec<(i64, i64)>, RecordsError> {
    let pg = super::is_pg(c);
    let rows = sqlx::query(sql(pg, "SELECT ordered_ms, lifted_ms FROM suspensions"))
        .fetch_all(&mut *c)
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<i64, _>(0), r.get::<Option<i64>, _>(1).unwrap_or(i64::MAX)))
        .collect())
}

/// Queues the order in force (if any) for `trailer`: a trailer first heard from, or a new store,
/// under a suspension stops too. True if one was queued.
pub(crate) async fn send_suspension(
    c: &mut AnyConnection,
    trailer: &str,
    now: i64,
) -> Result<bool, RecordsError> {
    let Some(s) = in_force(c).await? else { return Ok(false) };
    queue(c, trailer, &s.order, true, "sync-server", now).await?;
    Ok(true)
}

async fn queue(
    c: &mut AnyConnection,
    trailer: &str,
    order: &str,
    in_force: bool,
    by: &str,
    now: i64,
) -> Result<u64, RecordsError> {
    let summary = if in_force {
        format!("suspension order {order}: stop collecting")
    } else {
        format!("suspension order {order} lifted: collect again")
    };
    let order = order.to_string();
    super::downlinks::enqueue(c, trailer, "suspension", &summary, by, now, |downlink_id| {
        trailer_wire::Downlink::Suspension { downlink_id, order, in_force }
    })
    .await
}

fn bounded(what: &str, text: &str, max: usize) -> Result<String, RecordsError> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > max {
        return Err(RecordsError::Invalid(format!("{what}: 1-{max} characters")));
    }
    Ok(t.to_string())
}

impl Records {
    /// Every suspension order, newest first.
    pub async fn suspensions(&self) -> Result<Vec<Suspension>, RecordsError> {
        let rows = sqlx::query(
            "SELECT id, order_ref, note, ordered_by, ordered_ms, lifted_by, lifted_ms \
             FROM suspensions ORDER BY id DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(suspension_of).collect())
    }

    /// Every audit result, newest audit first, with its report's deadline as of `now`.
    pub async fn audit_results(&self, now: i64) -> Result<Vec<AuditResult>, RecordsError> {
        audit_results(&self.pool, &self.rules, now).await
    }
}

super::session::committed! {
    /// Records a suspension order: every enrolled trailer is told to stop collecting (each
    /// records the gap in its periods of active use) and the server stores no read until the
    /// order is lifted. The order, its downlinks and its audit entry commit together.
    fn suspend(order: &str, note: &str, by: &str, now: i64) -> (Suspension, usize);
    /// Lifts the suspension in force: the trailers are told to collect again. None when no
    /// order is in force.
    fn lift_suspension(lift_ref: &str, by: &str, now: i64) -> Option<(Suspension, usize)>;
    /// Records an audit's result: published on the public pages at once, with its report to
    /// the Commissioner due [`REPORT_DAYS`] after `completed_ms`.
    fn record_audit_result(completed_ms: i64, auditor: &str, summary: &str, compliant: bool, by: &str, now: i64) -> AuditResult;
    /// Records that an audit's report went to the Commissioner. False if there is no such
    /// unreported result.
    fn audit_reported(id: i64, how: &str, by: &str, now: i64) -> bool;
}

impl super::Session {
    /// Records a suspension order: every enrolled trailer is told to stop collecting (each
    /// records the gap in its periods of active use) and the server stores no read until the
    /// order is lifted. The order, its downlinks and its audit entry commit together.
    pub async fn suspend(
        &mut self,
        order: &str,
        note: &str,
        by: &str,
        now: i64,
    ) -> Result<(Suspension, usize), RecordsError> {
        let order = bounded("order: the suspension order's reference", order, 200)?;
        if let Some(s) = in_force(&mut self.tx).await? {
            return Err(RecordsError::Invalid(format!(
                "suspension order {} is in force since {}: lift it first",
                s.order, s.ordered_at
            )));
        }
        sqlx::query(sql(
            self.pg,
            "INSERT INTO suspensions (order_ref, note, ordered_by, ordered_ms) VALUES (?, ?, ?, ?)",
        ))
        .bind(&order)
        .bind(note.trim())
        .bind(by)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        let trailers = super::known_trailers(&mut self.tx).await?;
        for t in &trailers {
            queue(&mut self.tx, t, &order, true, by, now).await?;
        }
        super::audit::append_chained(
            &mut self.tx,
            &Entry {
                at: now,
                actor: by.into(),
                action: "suspension.order".into(),
                purpose: "suspension order (Minn. Stat. 13.824 subd. 6)".into(),
                case_number: String::new(),
                detail: format!("order {order}; collection stopped on {} trailers", trailers.len()),
                result_count: trailers.len() as i64,
            },
        )
        .await?;
        let s = in_force(&mut self.tx)
            .await?
            .ok_or_else(|| RecordsError::Invalid("the suspension was not recorded".into()))?;
        Ok((s, trailers.len()))
    }

    /// Lifts the suspension in force: the trailers are told to collect again. None when no
    /// order is in force.
    pub async fn lift_suspension(
        &mut self,
        lift_ref: &str,
        by: &str,
        now: i64,
    ) -> Result<Option<(Suspension, usize)>, RecordsError> {
        let lift_ref = bounded("reference: the order or decision lifting it", lift_ref, 200)?;
        let Some(s) = in_force(&mut self.tx).await? else { return Ok(None) };
        sqlx::query(sql(
            self.pg,
            "UPDATE suspensions SET lifted_ms = ?, lifted_by = ?, lift_ref = ? WHERE id = ?",
        ))
        .bind(now)
        .bind(by)
        .bind(&lift_ref)
        .bind(s.id)
        .execute(&mut *self.tx)
        .await?;
        let trailers = super::known_trailers(&mut self.tx).await?;
        for t in &trailers {
            queue(&mut self.tx, t, &s.order, false, by, now).await?;
        }
        super::audit::append_chained(
            &mut self.tx,
            &Entry {
                at: now,
                actor: by.into(),
                action: "suspension.lift".into(),
                purpose: "suspension lifted (Minn. Stat. 13.824 subd. 6)".into(),
                case_number: String::new(),
                detail: format!(
                    "order {} lifted by {lift_ref}; {} trailers",
                    s.order,
                    trailers.len()
                ),
                result_count: trailers.len() as i64,
            },
        )
        .await?;
        Ok(Some((
            Suspension { lifted_at: Some(iso_time(now)), lifted_ms: Some(now), ..s },
            trailers.len(),
        )))
    }

    /// Records an audit's result: published on the public pages at once, with its report to
    /// the Commissioner due [`REPORT_DAYS`] after `completed_ms`.
    pub async fn record_audit_result(
        &mut self,
        completed_ms: i64,
        auditor: &str,
        summary: &str,
        compliant: bool,
        by: &str,
        now: i64,
    ) -> Result<AuditResult, RecordsError> {
        let auditor = bounded("auditor", auditor, 200)?;
        let summary = bounded("summary: the audit's published findings", summary, 20_000)?;
        if completed_ms > now {
            return Err(RecordsError::Invalid("the audit's completion is in the future".into()));
        }
        let id: i64 = sqlx::query(sql(
            self.pg,
            "INSERT INTO audit_results (completed_ms, auditor, summary, compliant, recorded_by, \
             recorded_ms) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        ))
        .bind(completed_ms)
        .bind(&auditor)
        .bind(&summary)
        .bind(i64::from(compliant))
        .bind(by)
        .bind(now)
        .fetch_one(&mut *self.tx)
        .await?
        .get(0);
        super::audit::append_chained(
            &mut self.tx,
            &Entry {
                at: now,
                actor: by.into(),
                action: "audit.result".into(),
                purpose: "biennial audit result (Minn. Stat. 13.824 subd. 6)".into(),
                case_number: String::new(),
                detail: format!("audit {id} by {auditor}, completed {}", iso_date(completed_ms)),
                result_count: 1,
            },
        )
        .await?;
        audit_results(&mut *self.tx, &self.rules, now)
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| RecordsError::Invalid("the audit result was not recorded".into()))
    }

    /// Records that an audit's report went to the Commissioner. False if there is no such
    /// unreported result.
    pub async fn audit_reported(
        &mut self,
        id: i64,
        how: &str,
        by: &str,
        now: i64,
    ) -> Result<bool, RecordsError> {
        let how = bounded("how: how the report was sent (letter, e-mail, portal)", how, 500)?;
        let done = sqlx::query(sql(
            self.pg,
            "UPDATE audit_results SET reported_ms = ?, reported_how = ? \
             WHERE id = ? AND reported_ms IS NULL",
        ))
        .bind(now)
        .bind(&how)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        super::audit::append_chained(
            &mut self.tx,
            &Entry {
                at: now,
                actor: by.into(),
                action: "audit.reported".into(),
                purpose: "audit report to the Commissioner (Minn. Stat. 13.824 subd. 6)".into(),
                case_number: String::new(),
                detail: format!("audit {id}: {how}"),
                result_count: 1,
            },
        )
        .await?;
        Ok(true)
    }
}

/// Every audit result, newest first, read on `e` (the pool, or a session's transaction).
async fn audit_results<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    e: E,
    rules: &super::Rules,
    now: i64,
) -> Result<Vec<AuditResult>, RecordsError> {
    let rows = sqlx::query(
        "SELECT id, completed_ms, auditor, summary, compliant, reported_ms, reported_how \
         FROM audit_results ORDER BY completed_ms DESC, id DESC",
    )
    .fetch_all(e)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let completed_ms: i64 = r.get(1);
            let reported: Option<i64> = r.get(5);
            // Local days: the audit's, and the report's due day 30 days later, which ends
            // a day after that.
            let day = |ms| super::uselog::local_day_hour(rules, ms).0;
            let due = completed_ms + REPORT_DAYS * 86_400_000;
            AuditResult {
                id: r.get(0),
                completed: day(completed_ms),
                completed_ms,
                auditor: r.get(2),
                summary: r.get(3),
                compliant: r.get::<i64, _>(4) != 0,
                report_due: day(due),
                reported_at: reported.map(iso_time),
                reported_how: r.get(6),
                overdue: reported.is_none() && now >= due + 86_400_000,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::{hit, on_both, online, read_at};
    use crate::records::write;
    use trailer_wire::AckRef;

    const DAY: i64 = 86_400_000;

    /// A suspension order reaches every trailer (and one first heard from under it), the server
    /// stores no read, hit or picture while it is in force (each waits on its trailer,
    /// unacknowledged), and after the lift it takes those collected before the order but
    /// refuses those collected under it. Both ends are in the audit trail.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_suspension_stops_the_fleet_and_the_server_until_lifted() {
        on_both("suspension", suspension).await;
    }

    async fn suspension(url: String) {
        let db = Records::open(&url).await.expect("open");
        let t0 = 1_790_000_000_000;
        for t in ["t1", "t2"] {
            db.enroll_trailer(t, "admin", "", t0).await.expect("enrol");
        }
        let mut tx = db.begin().await.expect("begin");
        write::status(&mut tx, db.rules(), "t1", &online("t1", t0, 1), t0).await.expect("status");
        tx.commit().await.expect("commit");
        let ordered = t0 + DAY;
        let (s, told) =
            db.suspend("DPS-2026-7", "audit found", "chief", ordered).await.expect("order");
        assert_eq!((s.order.as_str(), told), ("DPS-2026-7", 1));
        assert!(db.suspend("again", "", "chief", ordered).await.is_err(), "one at a time");
        // t2 is first heard from under the order: it is told too.
        let mut tx = db.begin().await.expect("begin");
        write::status(&mut tx, db.rules(), "t2", &online("t2", ordered + 5, 1), ordered + 5)
            .await
            .expect("status");
        tx.commit().await.expect("commit");
        for t in ["t1", "t2"] {
            let kinds: Vec<String> = db
                .downlinks(Some(t), 100)
                .await
                .expect("downlinks")
                .into_iter()
                .map(|d| d.kind)
                .collect();
            assert!(kinds.contains(&"suspension".to_string()), "{t}: {kinds:?}");
        }

        let before = read_at(1, "EARLY11", ordered - 60_000);
        let under = read_at(2, "UNDER22", ordered + 60_000);
        let store = |reads: Vec<trailer_wire::ReadMeta>, now| {
            let db = db.clone();
            async move {
                let mut tx = db.begin().await.expect("begin");
                let acks =
                    write::reads(&mut tx, db.rules(), "t1", &reads, now).await.expect("reads");
                tx.commit().await.expect("commit");
                acks
            }
        };
        let plates = || async {
            db.list_reads(10).await.expect("reads").into_iter().map(|r| r.plate).collect::<Vec<_>>()
        };
        let now = ordered + 120_000;
        let acks = store(vec![before.clone(), under.clone()], now).await;
        assert_eq!(
            acks,
            [AckRef::Read(2)],
            "the earlier read waits; the one under the order is refused"
        );
        assert!(plates().await.is_empty(), "nothing stored under the order");
        // A hit and a picture wait too (the ingest layer leaves them unacknowledged).
        let accepted = |m: trailer_wire::Message| crate::ingest::Accepted {
            topic: "trailer/t1/up/alerts".into(),
            trailer: "t1".into(),
            message: m,
        };
        let alert = hit(1, before.clone(), trailer_wire::HitCategory::StolenVehicle);
        let message = accepted(trailer_wire::Message::Alert(alert.clone()));
        let mut tx = db.begin().await.expect("begin");
        let ctx = crate::ingest::Context::of(&mut tx, std::slice::from_ref(&message))
            .await
            .expect("context");
        assert!(ctx.suspended && ctx.enrolled.contains("t1"), "{ctx:?}");
        let refs =
            crate::ingest::apply(&mut tx, db.rules(), &message, &ctx, now).await.expect("apply");
        tx.commit().await.expect("commit");
        assert!(refs.is_empty(), "{refs:?}");
        assert!(db.list_alerts(10, false).await.expect("alerts").is_empty());

        let lifted = ordered + 2 * DAY;
        let (l, _) = db
            .lift_suspension("DPS-2026-9", "chief", lifted)
            .await
            .expect("lift")
            .expect("in force");
        assert_eq!(l.lifted_ms, Some(lifted));
        assert!(db.lift_suspension("x", "chief", lifted).await.expect("lift").is_none());
        let acks = store(vec![before, under], lifted + 1).await;
        assert_eq!(acks, [AckRef::Read(1), AckRef::Read(2)]);
        assert_eq!(plates().await, ["EARLY11"], "what was collected under the order is refused");
        let letters = db.dead_letters().await.expect("dead letters");
        assert!(letters.iter().any(|(_, why)| why.contains("suspension order")), "{letters:?}");
        let actions: Vec<String> =
            sqlx::query("SELECT action FROM audit WHERE action LIKE 'suspension%' ORDER BY seq")
                .fetch_all(db.pool())
                .await
                .expect("audit")
                .iter()
                .map(|r| r.get(0))
                .collect();
        assert_eq!(actions, ["suspension.order", "suspension.lift"]);
    }

    /// An audit's result is recorded with its report to the Commissioner due 30 days later,
    /// overdue after that until it is recorded as reported.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_audit_report_is_due_thirty_days_after_the_audit() {
        on_both("audit_results", audit_results).await;
    }

    async fn audit_results(url: String) {
        let db = Records::open(&url).await.expect("open");
        let done = 1_790_000_000_000;
        let r = db
            .record_audit_result(done, "Rowe & Co.", "No findings.", true, "records", done + DAY)
            .await
            .expect("record");
        let local = |ms| crate::records::uselog::local_day_hour(db.rules(), ms).0;
        assert_eq!(
            (r.completed.clone(), r.report_due.clone()),
            (local(done), local(done + 30 * DAY))
        );
        assert!(!r.overdue && r.reported_at.is_none());
        let at = |now| {
            let db = db.clone();
            async move { db.audit_results(now).await.expect("results")[0].overdue }
        };
        assert!(!at(done + 31 * DAY - 1).await, "on its due day");
        assert!(at(done + 31 * DAY).await, "past the 30 days unreported");
        assert!(db.audit_reported(r.id, "letter", "records", done + 31 * DAY).await.expect("mark"));
        assert!(!at(done + 40 * DAY).await);
        assert!(!db.audit_reported(r.id, "again", "records", done + 41 * DAY).await.expect("mark"));
        assert!(
            db.record_audit_result(done + 90 * DAY, "x", "y", true, "r", done).await.is_err(),
            "not in the future"
        );
    }
}
