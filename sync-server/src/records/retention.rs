//! Retention (Minn. Stat. 13.824 subd. 3): reads, their pictures and alerts are destroyed once
//! collected more than the retention period ago, unless a hold keeps them (an active criminal
//! investigation, or a written request to keep exculpatory evidence). The clock is the
//! caller's: the server's duty passes the system time, tests any time they like.
//!
//! On SQLite, rows go in batches, so ingestion keeps its turn at the write lock. On PostgreSQL,
//! reads and pictures live in day partitions ([`partitions`]): a day wholly past retention with
//! nothing held in it is dropped at once, and only the rest goes row by row.
use super::{Records, RecordsError, Tx, is_pg, iso_time, sql};
use crate::audit::Entry;
use serde::Serialize;
use sqlx::Row;

mod partitions;

/// What one retention run destroyed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub reads: u64,
    pub pictures: u64,
    pub alerts: u64,
    /// Refused messages (their payloads may hold reads).
    pub dead_letters: u64,
    /// Our copies of release bundles, gone with their reads.
    pub bundles: u64,
    /// Downlinks never answered within the retention period, given up with their frames.
    pub downlinks: u64,
}

/// Why a hold keeps data past retention.
pub const HOLD_KINDS: [&str; 2] = ["active-investigation", "exculpatory"];

/// A hold to place, with the written request it answers (Minn. Stat. 13.824 subd. 3(b)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewHold {
    /// One of [`HOLD_KINDS`].
    pub kind: String,
    pub case_number: String,
    pub note: String,
    /// Who asked in writing (a prosecutor, a defence attorney, an investigator).
    pub requester: String,
    /// The day of the written request (YYYY-MM-DD).
    pub request_date: String,
    /// The charge or complaint the evidence bears on: required for an exculpatory hold.
    pub charge: String,
    /// The reads held, as `(trailer, read id)`; or, instead, a plate and a period.
    pub reads: Vec<(String, i64)>,
    pub plate: Option<PlatePeriod>,
}

/// Every read of `plate` collected in `[from_ms, to_ms)`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatePeriod {
    pub plate: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Queues a hold on a plate and a period for `trailer`, which holds its own matching reads.
#[allow(clippy::too_many_arguments)]
pub(super) async fn queue_plate_hold(
    c: &mut sqlx::AnyConnection,
    trailer: &str,
    hold_id: i64,
    kind: trailer_wire::HoldKind,
    case_number: &str,
    plates: &[String],
    (from_ms, to_ms): (i64, i64),
    by: &str,
    now: i64,
) -> Result<u64, RecordsError> {
    let summary = format!("hold {hold_id} (a plate, {} to {})", iso_time(from_ms), iso_time(to_ms));
    let command = trailer_wire::HoldCommand::PlacePlate {
        hold_id: hold_id as u64,
        kind,
        case_number: case_number.to_string(),
        plates: plates.to_vec(),
        from_ms,
        to_ms,
    };
    super::downlinks::enqueue(c, trailer, "hold", &summary, by, now, |downlink_id| {
        trailer_wire::Downlink::Hold { downlink_id, command }
    })
    .await
}

/// Puts a read under a hold (once).
async fn hold_read(
    c: &mut sqlx::AnyConnection,
    hold_id: i64,
    trailer: &str,
    read_id: i64,
) -> Result<(), RecordsError> {
    sqlx::query(sql(
        is_pg(c),
        "INSERT INTO held_reads (hold_id, trailer_id, read_id) VALUES (?, ?, ?) \
         ON CONFLICT DO NOTHING",
    ))
    .bind(hold_id)
    .bind(trailer)
    .bind(read_id)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Holds the reads just stored (`(read id, plate, collected)`) that an active hold on a plate
/// and a period names: a read that arrives after its hold was placed is held all the same.
pub(super) async fn hold_arrivals(
    c: &mut sqlx::AnyConnection,
    trailer: &str,
    reads: &[(u64, &str, i64)],
) -> Result<(), RecordsError> {
    if reads.is_empty() {
        return Ok(());
    }
    let pg = is_pg(c);
    let holds = sqlx::query(sql(
        pg,
        "SELECT id, plate, from_ms, to_ms FROM holds \
         WHERE released_ms IS NULL AND plate IS NOT NULL",
    ))
    .fetch_all(&mut *c)
    .await?;
    for h in &holds {
        let (id, plate, from, to): (i64, String, i64, i64) =
            (h.get(0), h.get(1), h.get(2), h.get(3));
        let (typed, zeroed) = super::plate_pair(&plate);
        for (read_id, p, at) in reads {
            if (*p == typed || *p == zeroed) && (from..to).contains(at) {
                hold_read(c, id, trailer, *read_id as i64).await?;
            }
        }
    }
    Ok(())
}

/// A hold as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldView {
    pub id: i64,
    pub kind: String,
    pub case_number: String,
    pub note: String,
    pub created_by: String,
    pub created_at: String,
    pub released_at: Option<String>,
    /// Reads the hold names that the server still holds.
    pub reads: i64,
    /// The written request: who asked, the day, and the charge or complaint (exculpatory).
    pub requester: String,
    pub request_date: String,
    pub charge: String,
    /// A hold on a plate and a period (else on the reads it names).
    pub plate: Option<String>,
    pub period: Option<(String, String)>,
    pub release_reason: Option<String>,
}

/// The PostgreSQL advisory lock that holds and destruction take, so that a hold placed while
/// retention runs either comes first (and keeps its reads) or after (and finds them gone).
pub(super) const HOLDS_LOCK: i64 = 1325;

/// Rows one retention statement deletes at most, so ingestion keeps its turn at the write lock.
const BATCH: i64 = 5_000;

/// Bounds of the pause between two batches on SQLite.
const PAUSE_MIN: std::time::Duration = std::time::Duration::from_millis(20);
const PAUSE_MAX: std::time::Duration = std::time::Duration::from_millis(250);

/// Runs one of retention's batch deletes (`?` the cutoff, then the batch size); rows deleted.
async fn delete_batch(tx: &mut Tx, text: &'static str, cutoff: i64) -> Result<u64, RecordsError> {
    let pg = is_pg(tx);
    let done = sqlx::query(sql(pg, text)).bind(cutoff).bind(BATCH).execute(&mut **tx).await?;
    Ok(done.rows_affected())
}

/// Pictures that arrived before their read, whose read is past retention and not held.
const EARLY_PICTURES: &str = concat!(
    "DELETE FROM pictures WHERE (trailer_id, read_id, kind) IN \
     (SELECT p.trailer_id, p.read_id, p.kind FROM pictures p \
     JOIN reads r ON r.trailer_id = p.trailer_id AND r.read_id = p.read_id \
     WHERE p.early = 1 AND r.first_seen < ?",
    unheld!("p"),
    " LIMIT ?)"
);

impl Records {
    /// A writing transaction that holds, or destroys what is not held: on PostgreSQL it takes
    /// [`HOLDS_LOCK`] first.
    pub(super) async fn begin_destroying(&self) -> Result<super::Tx, RecordsError> {
        let mut tx = self.begin_write().await?;
        if self.pg {
            sqlx::query(sql(true, "SELECT pg_advisory_xact_lock(?)"))
                .bind(HOLDS_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// Destroys what was collected more than `retention_days` before `now_ms` and is not held:
    /// reads, their pictures (and pictures whose read never arrived, by arrival time) and
    /// alerts. The location history, the periods of use, the log of use and the audit trail
    /// stay. The counts go into the audit trail (one entry per run that destroyed anything).
    pub async fn purge(&self, now_ms: i64, retention_days: u32) -> Result<Purged, RecordsError> {
        let cutoff = now_ms - i64::from(retention_days) * 86_400_000;
        let mut done = Purged::default();
        if self.pg {
            partitions::ensure(&self.pool, now_ms, retention_days).await;
            // Pictures that arrived before their read sit in a younger day: they go before the
            // read's day is dropped, while the read still says when it was collected.
            loop {
                let mut tx = self.begin_destroying().await?;
                let n = delete_batch(&mut tx, EARLY_PICTURES, cutoff).await?;
                tx.commit().await?;
                done.pictures += n;
                if n < BATCH as u64 {
                    break;
                }
            }
            let dropped = partitions::drop_expired(&self.pool, cutoff).await?;
            done.reads += dropped.reads;
            done.pictures += dropped.pictures;
        }
        loop {
            let started = std::time::Instant::now();
            let mut tx = self.begin_destroying().await?;
            let pictures = delete_batch(
                &mut tx,
                concat!(
                    "DELETE FROM pictures WHERE (trailer_id, read_id, kind) IN \
                     (SELECT p.trailer_id, p.read_id, p.kind FROM pictures p \
                     WHERE p.collected_at < ?",
                    unheld!("p"),
                    " LIMIT ?)"
                ),
                cutoff,
            )
            .await?;
            // Pictures that arrived before their read carry their arrival time: they go with
            // their read all the same.
            let early = delete_batch(&mut tx, EARLY_PICTURES, cutoff).await?;
            let pictures = pictures + early;
            // A read goes only once its pictures have: none may outlive it as an orphan.
            let reads = if pictures < BATCH as u64 {
                delete_batch(
                    &mut tx,
                    concat!(
                        "DELETE FROM reads WHERE (trailer_id, read_id) IN \
                         (SELECT r.trailer_id, r.read_id FROM reads r WHERE r.first_seen < ?",
                        unheld!("r"),
                        " LIMIT ?)"
                    ),
                    cutoff,
                )
                .await?
            } else {
                0
            };
            let orphans = delete_batch(
                &mut tx,
                concat!(
                    "DELETE FROM pictures WHERE (trailer_id, read_id, kind) IN \
                     (SELECT p.trailer_id, p.read_id, p.kind FROM pictures p \
                     WHERE p.received_at < ? AND NOT EXISTS (SELECT 1 FROM reads r \
                     WHERE r.trailer_id = p.trailer_id AND r.read_id = p.read_id)",
                    unheld!("p"),
                    " LIMIT ?)"
                ),
                cutoff,
            )
            .await?;
            let letters = delete_batch(
                &mut tx,
                "DELETE FROM dead_letters WHERE id IN \
                 (SELECT id FROM dead_letters WHERE received_at < ? LIMIT ?)",
                cutoff,
            )
            .await?;
            // The record of each collision goes with its dead letter.
            let collisions = delete_batch(
                &mut tx,
                "DELETE FROM collisions WHERE (trailer_id, kind, item_id, digest) IN \
                 (SELECT trailer_id, kind, item_id, digest FROM collisions WHERE at < ? LIMIT ?)",
                cutoff,
            )
            .await?;
            // The ids of reads dropped as ACP are kept only as long as their pictures could
            // still be on the way; they are ids, not data, and need no count.
            let dropped_ids = delete_batch(
                &mut tx,
                "DELETE FROM acp_dropped WHERE (trailer_id, read_id) IN \
                 (SELECT trailer_id, read_id FROM acp_dropped WHERE dropped_ms < ? LIMIT ?)",
                cutoff,
            )
            .await?;
            let alerts = delete_batch(
                &mut tx,
                concat!(
                    "DELETE FROM alerts WHERE (trailer_id, alert_id) IN \
                     (SELECT a.trailer_id, a.alert_id FROM alerts a WHERE a.seen_at < ?",
                    unheld!("a"),
                    " LIMIT ?)"
                ),
                cutoff,
            )
            .await?;
            // Which dispatch systems were sent a hit: ids only, gone with the hit.
            let forwards = delete_batch(
                &mut tx,
                "DELETE FROM alert_forwards WHERE (target, trailer_id, alert_id) IN \
                 (SELECT f.target, f.trailer_id, f.alert_id FROM alert_forwards f \
                 WHERE f.delivered_ms < ? AND NOT EXISTS (SELECT 1 FROM alerts a \
                 WHERE a.trailer_id = f.trailer_id AND a.alert_id = f.alert_id) LIMIT ?)",
                cutoff,
            )
            .await?;
            tx.commit().await?;
            done.reads += reads;
            done.pictures += pictures + orphans;
            done.alerts += alerts;
            done.dead_letters += letters;
            if reads + pictures + orphans + alerts + letters + dropped_ids + collisions + forwards
                == 0
            {
                break;
            }
            if self.pg {
                tokio::task::yield_now().await;
            } else {
                // SQLite has one write lock, and a writer waiting for it polls with a backoff:
                // leave it as long again as the batch held it, so ingestion keeps its turn.
                let pause = started.elapsed().clamp(PAUSE_MIN, PAUSE_MAX);
                tokio::time::sleep(pause).await;
            }
        }
        done.bundles = self.purge_bundles(cutoff, now_ms).await?;
        done.downlinks = self.expire_downlinks(cutoff, now_ms, retention_days).await?;
        let total = done.reads
            + done.pictures
            + done.alerts
            + done.dead_letters
            + done.bundles
            + done.downlinks;
        if total > 0 {
            self.audit(&Entry {
                at: now_ms,
                actor: "retention".into(),
                action: "destroy".into(),
                purpose: format!("retention: collected more than {retention_days} days ago"),
                case_number: String::new(),
                detail: format!(
                    "{} reads, {} pictures, {} alerts, {} refused messages collected before {}; \
                     {} release bundles; {} unanswered downlinks",
                    done.reads,
                    done.pictures,
                    done.alerts,
                    done.dead_letters,
                    iso_time(cutoff),
                    done.bundles,
                    done.downlinks
                ),
                result_count: total as i64,
            })
            .await?;
        }
        Ok(done)
    }

    /// Gives up the downlinks a trailer has not answered within the retention period: a
    /// frame may hold a hotlist's plates, ACP digests or a hold's case, and nothing a trailer
    /// could still use is that old (its own reads of the time are gone; a hotlist or ACP list
    /// is sent whole again to a store that lacks it). The row stays, answered `expired`, with
    /// its summary; the frame goes. A configuration holds no personal data and is kept.
    async fn expire_downlinks(
        &self,
        cutoff: i64,
        now: i64,
        retention_days: u32,
    ) -> Result<u64, RecordsError> {
        let answer = format!("expired: unanswered for {retention_days} days");
        let mut expired = 0;
        loop {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query(sql(
                self.pg,
                "UPDATE downlinks SET answered_at = ?, applied = 0, answer = ?, frame = ? \
                 WHERE id IN (SELECT id FROM downlinks WHERE answered_at IS NULL \
                 AND created_at < ? AND kind <> 'config' LIMIT ?)",
            ))
            .bind(now)
            .bind(&answer)
            .bind(Vec::<u8>::new())
            .bind(cutoff)
            .bind(BATCH)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            expired += done.rows_affected();
            if done.rows_affected() < BATCH as u64 {
                return Ok(expired);
            }
        }
    }

    /// Destroys our copy of each release bundle once a read in it is gone (past retention, or
    /// an ACP participant's): the copy lives no longer than its reads, and a held read keeps
    /// it. A bundle of no read goes once its release is past retention. The record of the
    /// release (who, when, the manifest's digest) stays; the recipient's copy is theirs, under
    /// the duties the bundle spells out.
    async fn purge_bundles(&self, cutoff: i64, now: i64) -> Result<u64, RecordsError> {
        let bundles = sqlx::query(sql(
            self.pg,
            "SELECT id, bundle, fulfilled_ms FROM release_requests WHERE state = 'fulfilled' \
             AND bundle IS NOT NULL AND bundle_destroyed_ms IS NULL",
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut destroyed = 0;
        for b in &bundles {
            let (id, dir, fulfilled): (i64, String, Option<i64>) = (b.get(0), b.get(1), b.get(2));
            let dir = std::path::PathBuf::from(dir);
            let reads: Vec<(String, i64)> = std::fs::read(dir.join("reads.json"))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Vec<serde_json::Value>>(&bytes).ok())
                .unwrap_or_default()
                .iter()
                .filter_map(|r| Some((r["trailer"].as_str()?.to_string(), r["read_id"].as_i64()?)))
                .collect();
            let mut gone = reads.is_empty() && fulfilled.is_some_and(|f| f < cutoff);
            for (trailer, read_id) in &reads {
                if gone {
                    break;
                }
                gone = sqlx::query(sql(
                    self.pg,
                    "SELECT 1 FROM reads WHERE trailer_id = ? AND read_id = ?",
                ))
                .bind(trailer)
                .bind(read_id)
                .fetch_optional(&self.pool)
                .await?
                .is_none();
            }
            if !gone && dir.exists() {
                continue;
            }
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| {
                    RecordsError::Invalid(format!("release bundle {}: {e}", dir.display()))
                })?;
                destroyed += 1;
            }
            sqlx::query(sql(
                self.pg,
                "UPDATE release_requests SET bundle_destroyed_ms = ? WHERE id = ?",
            ))
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        }
        Ok(destroyed)
    }

    /// Makes the day partitions (PostgreSQL) for every day a read may still be collected in and
    /// kept; [`Records::purge`] does it at every run. A no-op on SQLite.
    pub async fn prepare_partitions(&self, now_ms: i64, retention_days: u32) {
        if self.pg {
            partitions::ensure(&self.pool, now_ms, retention_days).await;
        }
    }

    /// Every hold, newest first.
    pub async fn holds(&self) -> Result<Vec<HoldView>, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT d.id, d.kind, d.case_number, d.note, d.created_by, d.created_ms, \
             d.released_ms, (SELECT COUNT(*) FROM held_reads h JOIN reads r \
             ON r.trailer_id = h.trailer_id AND r.read_id = h.read_id WHERE h.hold_id = d.id), \
             d.requester, d.request_date, d.charge, d.plate, d.from_ms, d.to_ms, d.release_reason \
             FROM holds d ORDER BY d.id DESC",
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| HoldView {
                id: r.get(0),
                kind: r.get(1),
                case_number: r.get(2),
                note: r.get(3),
                created_by: r.get(4),
                created_at: iso_time(r.get(5)),
                released_at: r.get::<Option<i64>, _>(6).map(iso_time),
                reads: r.get(7),
                requester: r.get(8),
                request_date: r.get(9),
                charge: r.get(10),
                plate: r.get(11),
                period: match (r.get::<Option<i64>, _>(12), r.get::<Option<i64>, _>(13)) {
                    (Some(f), Some(t)) => Some((iso_time(f), iso_time(t))),
                    _ => None,
                },
                release_reason: r.get(14),
            })
            .collect())
    }

    /// Reads the trailers destroyed by retention on the days from `from` to `to`
    /// (milliseconds, whole UTC days whose start falls in the range), as their health reports
    /// said.
    pub async fn trailer_destroyed(&self, from: i64, to: i64) -> Result<i64, RecordsError> {
        const DAY: i64 = 86_400_000;
        let (first, end) = ((from + DAY - 1).div_euclid(DAY), (to + DAY - 1).div_euclid(DAY));
        Ok(sqlx::query(sql(
            self.pg,
            "SELECT CAST(COALESCE(SUM(reads), 0) AS BIGINT) FROM trailer_destruction \
             WHERE day >= ? AND day < ?",
        ))
        .bind(first)
        .bind(end)
        .fetch_one(&self.pool)
        .await?
        .get::<i64, _>(0))
    }

    /// Reads older than `retention_days` before `now` that no hold keeps: zero after a
    /// retention run (the biennial audit's check that destruction works).
    pub async fn overdue_reads(&self, now: i64, retention_days: u32) -> Result<i64, RecordsError> {
        let cutoff = now - i64::from(retention_days) * 86_400_000;
        let n = sqlx::query(sql(
            self.pg,
            concat!("SELECT COUNT(*) FROM reads r WHERE r.first_seen < ?", unheld!("r")),
        ))
        .bind(cutoff)
        .fetch_one(&self.pool)
        .await?
        .get(0);
        Ok(n)
    }
}

super::session::committed! {
    /// Places a hold answering a written request: on the reads it names (`(trailer, read
    /// id)`), or on every read of a plate collected in a period (on the server, those still to
    /// arrive included, and on every trailer). They, their pictures and alerts stay past
    /// retention until the hold is released. Returns the hold's id and how many reads the
    /// server holds under it now.
    fn place_hold(h: &NewHold, by: &str, now: i64) -> (i64, i64);
    /// Releases a hold: its reads fall under retention again (and go at the next run if they
    /// are past it). False if there is no such active hold.
    fn release_hold(id: i64, reason: &str, by: &str, now: i64) -> bool;
}

impl super::Session {
    /// Places a hold answering a written request: on the reads it names (`(trailer, read
    /// id)`), or on every read of a plate collected in a period (on the server, those still to
    /// arrive included, and on every trailer). They, their pictures and alerts stay past
    /// retention until the hold is released. Returns the hold's id and how many reads the
    /// server holds under it now.
    pub async fn place_hold(
        &mut self,
        h: &NewHold,
        by: &str,
        now: i64,
    ) -> Result<(i64, i64), RecordsError> {
        let invalid = |m: &str| Err(RecordsError::Invalid(m.into()));
        if !HOLD_KINDS.contains(&h.kind.as_str()) {
            return Err(RecordsError::Invalid(format!(
                "hold kind {:?}: use {}",
                h.kind,
                HOLD_KINDS.join(" or ")
            )));
        }
        let case_number = h.case_number.trim();
        if case_number.is_empty() {
            return invalid("a hold needs a case number");
        }
        if h.requester.trim().is_empty() || !crate::public::valid_day(h.request_date.trim()) {
            return invalid(
                "a hold answers a written request: its requester and its date (YYYY-MM-DD)",
            );
        }
        let exculpatory = h.kind == "exculpatory";
        if exculpatory && h.charge.trim().is_empty() {
            return invalid("an exculpatory hold names the charge or complaint it bears on");
        }
        let plate = match &h.plate {
            Some(_) if !h.reads.is_empty() => {
                return invalid("a hold names reads, or a plate and a period, not both");
            }
            Some(p) => {
                let (typed, zeroed) = super::plate_pair(&p.plate);
                if !trailer_wire::text::is_plate(&typed) {
                    return invalid("plate: capitals and digits, 1-12");
                }
                if p.from_ms >= p.to_ms || p.to_ms > now + super::write::CLOCK_AHEAD_MS {
                    return invalid(
                        "the period runs from an earlier to a later time, not past now",
                    );
                }
                Some((typed, zeroed, p.from_ms, p.to_ms))
            }
            None if h.reads.is_empty() => {
                return invalid("a hold needs at least one read, or a plate and a period");
            }
            None => None,
        };
        let id: i64 = sqlx::query(sql(
            self.pg,
            "INSERT INTO holds (kind, case_number, note, created_by, created_ms, requester, \
             request_date, charge, plate, from_ms, to_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        ))
        .bind(&h.kind)
        .bind(case_number)
        .bind(h.note.trim())
        .bind(by)
        .bind(now)
        .bind(h.requester.trim())
        .bind(h.request_date.trim())
        .bind(h.charge.trim())
        .bind(plate.as_ref().map(|p| p.0.clone()))
        .bind(plate.as_ref().map(|p| p.2))
        .bind(plate.as_ref().map(|p| p.3))
        .fetch_one(&mut *self.tx)
        .await?
        .get(0);
        let wire_kind = if exculpatory {
            trailer_wire::HoldKind::Exculpatory
        } else {
            trailer_wire::HoldKind::ActiveInvestigation
        };
        let present = if let Some((typed, zeroed, from_ms, to_ms)) = plate {
            let held = sqlx::query(sql(
                self.pg,
                "INSERT INTO held_reads (hold_id, trailer_id, read_id) \
                 SELECT ?, trailer_id, read_id FROM reads \
                 WHERE plate IN (?, ?) AND first_seen >= ? AND first_seen < ? \
                 ON CONFLICT DO NOTHING",
            ))
            .bind(id)
            .bind(&typed)
            .bind(&zeroed)
            .bind(from_ms)
            .bind(to_ms)
            .execute(&mut *self.tx)
            .await?
            .rows_affected() as i64;
            // Any trailer may still hold such reads (and their pictures), synced or not.
            let plates = if typed == zeroed { vec![typed] } else { vec![typed, zeroed] };
            for trailer in super::known_trailers(&mut self.tx).await? {
                queue_plate_hold(
                    &mut self.tx,
                    &trailer,
                    id,
                    wire_kind,
                    case_number,
                    &plates,
                    (from_ms, to_ms),
                    by,
                    now,
                )
                .await?;
            }
            held
        } else {
            let mut present = 0;
            for (trailer, read) in &h.reads {
                hold_read(&mut self.tx, id, trailer, *read).await?;
                let n: i64 = sqlx::query(sql(
                    self.pg,
                    "SELECT COUNT(*) FROM reads WHERE trailer_id = ? AND read_id = ?",
                ))
                .bind(trailer)
                .bind(read)
                .fetch_one(&mut *self.tx)
                .await?
                .get(0);
                present += n;
            }
            // The trailers keep their reads' pictures (and the reads) too: each is told of the
            // hold, so nothing it names is destroyed there at 60 days either.
            let mut by_trailer: std::collections::BTreeMap<&str, Vec<u64>> = Default::default();
            for (trailer, read) in &h.reads {
                by_trailer.entry(trailer.as_str()).or_default().push(*read as u64);
            }
            for (trailer, read_ids) in by_trailer {
                let summary = format!("hold {id} ({} reads)", read_ids.len());
                let command = trailer_wire::HoldCommand::Place {
                    hold_id: id as u64,
                    kind: wire_kind,
                    case_number: case_number.to_string(),
                    read_ids,
                };
                super::downlinks::enqueue(
                    &mut self.tx,
                    trailer,
                    "hold",
                    &summary,
                    by,
                    now,
                    |downlink_id| trailer_wire::Downlink::Hold { downlink_id, command },
                )
                .await?;
            }
            present
        };
        Ok((id, present))
    }

    /// Releases a hold: its reads fall under retention again (and go at the next run if they
    /// are past it). False if there is no such active hold.
    pub async fn release_hold(
        &mut self,
        id: i64,
        reason: &str,
        by: &str,
        now: i64,
    ) -> Result<bool, RecordsError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(RecordsError::Invalid(
                "reason: why the hold ends (resolved, dismissed, ...), up to 500 characters".into(),
            ));
        }
        let done = sqlx::query(sql(
            self.pg,
            "UPDATE holds SET released_ms = ?, released_by = ?, release_reason = ? \
             WHERE id = ? AND released_ms IS NULL",
        ))
        .bind(now)
        .bind(by)
        .bind(reason)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        // Each trailer holding its reads lets them go too (every trailer, for a hold on a
        // plate: each was told of it).
        let on_plate: Option<String> =
            sqlx::query(sql(self.pg, "SELECT plate FROM holds WHERE id = ?"))
                .bind(id)
                .fetch_one(&mut *self.tx)
                .await?
                .get(0);
        let trailers: Vec<String> = if on_plate.is_some() {
            super::known_trailers(&mut self.tx).await?
        } else {
            sqlx::query(sql(
                self.pg,
                "SELECT DISTINCT trailer_id FROM held_reads WHERE hold_id = ? ORDER BY trailer_id",
            ))
            .bind(id)
            .fetch_all(&mut *self.tx)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect()
        };
        for trailer in &trailers {
            let command = trailer_wire::HoldCommand::Release { hold_id: id as u64 };
            let summary = format!("hold {id} released");
            super::downlinks::enqueue(
                &mut self.tx,
                trailer,
                "hold",
                &summary,
                by,
                now,
                |downlink_id| trailer_wire::Downlink::Hold { downlink_id, command },
            )
            .await?;
        }
        Ok(true)
    }
}
