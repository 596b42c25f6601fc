//! The writes of ingestion, each on a connection the caller holds inside one transaction: the
//! server commits a whole batch of messages at once and acknowledges them after the commit.
//! Every insert is idempotent on the trailer's own ids: a record that comes again is a resend
//! (stored once) or, with other content, a collision ([`super::repeats`]: kept apart, never over
//! the record held).
use super::notices::{self, NoticeKind};
use super::repeats::{self, Collision, Tally};
use super::stores::{self, StoreEvent};
use super::{RecordsError, Rules, distance_m, fix_name, picture_kind, uselog};
use super::{is_pg, sql};
use sqlx::AnyConnection;
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use trailer_wire::{AckRef, ActiveUse, Message, PictureKind, ReadBatch, ReadMeta, Topic, UpKind};

/// Stores a batch of reads; returns the acks for all of them (new, resent or colliding).
/// Each read new to the server is tallied in the public log of use.
pub async fn reads(
    c: &mut AnyConnection,
    rules: &Rules,
    trailer: &str,
    reads: &[ReadMeta],
    now: i64,
) -> Result<Vec<AckRef>, RecordsError> {
    Ok(store_reads(c, rules, trailer, reads, true, now).await?.acks)
}

/// What became of a batch of reads.
struct Stored {
    acks: Vec<AckRef>,
    /// Some read was an ACP participant's (dropped, not stored).
    participant: bool,
    /// Reads whose id the server holds for another read.
    collided: HashSet<u64>,
    /// Reads refused for their time (or collected under a suspension order).
    untimely: HashSet<u64>,
}

/// The fields that tell one read from another under the same id.
type ReadKey = (String, i64, i64, String);

fn read_key(r: &ReadMeta) -> ReadKey {
    (r.plate.clone(), r.first_seen, r.best_seen, r.camera_id.clone())
}

/// The reads of `batch` the server already holds, by id. A batch's ids are close together (the
/// outbox sends them in id order), so one range query finds them; a batch spread wide (a
/// hostile or broken sender) is looked up read by read instead of scanning between its ends.
async fn held_reads(
    c: &mut AnyConnection,
    trailer: &str,
    batch: &[ReadMeta],
) -> Result<HashMap<u64, ReadKey>, RecordsError> {
    let pg = is_pg(c);
    let mut held = HashMap::new();
    let (Some(lo), Some(hi)) =
        (batch.iter().map(|r| r.read_id).min(), batch.iter().map(|r| r.read_id).max())
    else {
        return Ok(held);
    };
    let limit = batch.len() * 4 + 16;
    let rows = sqlx::query(sql(
        pg,
        "SELECT read_id, plate, first_seen, best_seen, camera_id FROM reads \
         WHERE trailer_id = ? AND read_id BETWEEN ? AND ? LIMIT ?",
    ))
    .bind(trailer)
    .bind(lo as i64)
    .bind(hi as i64)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    let rows = if rows.len() < limit {
        rows
    } else {
        let mut one_by_one = Vec::with_capacity(batch.len());
        for r in batch {
            one_by_one.extend(
                sqlx::query(sql(
                    pg,
                    "SELECT read_id, plate, first_seen, best_seen, camera_id FROM reads \
                     WHERE trailer_id = ? AND read_id = ?",
                ))
                .bind(trailer)
                .bind(r.read_id as i64)
                .fetch_optional(&mut *c)
                .await?,
            );
        }
        one_by_one
    };
    for row in rows {
        let id = row.get::<i64, _>(0) as u64;
        held.insert(id, (row.get(1), row.get(2), row.get(3), row.get(4)));
    }
    Ok(held)
}

/// [`reads`], also saying which reads were an ACP participant's or collided. A read refused for
/// its time is kept as a dead letter when `alone` (not when it came inside an alert, whose own
/// dead letter holds it).
async fn store_reads(
    c: &mut AnyConnection,
    rules: &Rules,
    trailer: &str,
    reads: &[ReadMeta],
    alone: bool,
    now: i64,
) -> Result<Stored, RecordsError> {
    let pg = is_pg(c);
    let mut acks = Vec::with_capacity(reads.len());
    let mut fresh = Vec::with_capacity(reads.len());
    let mut collided = HashSet::new();
    let mut untimely = HashSet::new();
    let mut last_fresh: Option<&ReadMeta> = None;
    let mut arrivals: Vec<(u64, &str, i64)> = Vec::new();
    let mut tally = Tally::default();
    let participants = super::acp::drop_participants(c, rules, trailer, reads, now).await?;
    let mut held = held_reads(c, trailer, reads).await?;
    let times: Vec<i64> = reads.iter().map(|r| r.first_seen).collect();
    let periods = uselog::periods_of(c, trailer, &times).await?;
    let suspensions = super::oversight::windows(c).await?;
    let in_force = suspensions.iter().any(|w| w.1 == i64::MAX);
    for (i, r) in reads.iter().enumerate() {
        let suspended = suspensions.iter().any(|(from, to)| (*from..*to).contains(&r.first_seen));
        // Under a suspension order the server stores no read: one collected before it waits on
        // the trailer, unacknowledged, until the order is lifted.
        if in_force && !suspended {
            continue;
        }

        // Destroyed at collection (an ACP participant's), refused for its time or for being
        // collected under a suspension order, a resend or a collision: each is acknowledged,
        // so the trailer's outbox moves on.
        acks.push(AckRef::Read(r.read_id));
        if participants.contains(&i) {
            continue;
        }
        // Refused for being collected under a suspension order, or for a time no clock could
        // have stamped (counted as such); kept as a dead letter when it came alone.
        let refused = if suspended {
            Some((
                format!(
                    "read {} was collected while a suspension order was in force; not stored",
                    r.read_id
                ),
                false,
            ))
        } else {
            implausible(&format!("read {}", r.read_id), r.first_seen, now).map(|why| (why, true))
        };
        if let Some((reason, clock)) = refused {
            if alone {
                let one = ReadBatch { trailer_id: trailer.into(), reads: vec![r.clone()] };
                let frame = frame(Message::ReadBatch(one))?;
                let topic = Topic::up(trailer, UpKind::Reads);
                if clock {
                    refuse_time(c, trailer, topic, &reason, &frame, now).await?;
                } else {
                    tracing::warn!(
                        trailer,
                        read_id = r.read_id,
                        "refused: collected under a suspension order"
                    );
                    super::dead_letter_on(c, &topic, &reason, &frame, now).await?;
                }
            }
            untimely.insert(r.read_id);
            continue;
        }
        match held.get(&r.read_id) {
            Some(k) if *k == read_key(r) => tally.resends += 1,
            Some(_) => {
                let alone = ReadBatch { trailer_id: trailer.into(), reads: vec![r.clone()] };
                let x = Collision {
                    trailer,
                    kind: "read",
                    item_id: r.read_id,
                    content: &frame(Message::ReadBatch(alone))?,
                    topic: Topic::up(trailer, UpKind::Reads),
                    reason: format!(
                        "read id {} of {trailer} collides with another read the server holds \
                         under that id; kept here, not stored as a read",
                        r.read_id
                    ),
                };
                tally.add(repeats::collide(c, x, now).await?);
                collided.insert(r.read_id);
            }
            None => {
                let period = periods.get(i).copied().unwrap_or(0);
                sqlx::query(sql(
                    pg,
                    "INSERT INTO reads (trailer_id, read_id, camera_id, plate, confidence, \
                     first_seen, best_seen, lat, lon, fix, plate_box, has_crop, has_context, \
                     received_at, period_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ))
                .bind(trailer)
                .bind(r.read_id as i64)
                .bind(&r.camera_id)
                .bind(&r.plate)
                .bind(f64::from(r.confidence_pm) / 1000.0)
                .bind(r.first_seen)
                .bind(r.best_seen)
                .bind(r.position.lat())
                .bind(r.position.lon())
                .bind(fix_name(r.position.fix))
                .bind(format!("{:?}", r.plate_box))
                .bind(i64::from(r.pictures.plate_crop))
                .bind(i64::from(r.pictures.context))
                .bind(now)
                .bind(period)
                .execute(&mut *c)
                .await?;
                held.insert(r.read_id, read_key(r));
                arrivals.push((r.read_id, r.plate.as_str(), r.first_seen));
                fresh.push((r.first_seen, period));
                last_fresh = Some(r);
            }
        }
    }
    super::retention::hold_arrivals(c, trailer, &arrivals).await?;
    repeats::count(c, trailer, tally, now).await?;
    uselog::tally(c, rules, trailer, &fresh, None).await?;
    if let Some(last) = last_fresh {
        let (lat, lon) = (last.position.lat(), last.position.lon());
        note_location(c, rules, trailer, lat, lon, last.best_seen, now).await?;
    }
    Ok(Stored { acks, participant: !participants.is_empty(), collided, untimely })
}

/// How far ahead of the server a trailer's clock may be (clocks drift; GPS time is minutes
/// away at worst).
pub const CLOCK_AHEAD_MS: i64 = 5 * 60_000;
/// No record of this product was made before 2024: an earlier stamp is a clock that was reset.
pub const CLOCK_FLOOR_MS: i64 = 1_704_067_200_000;

/// Why a time no clock could have stamped is refused, if it is one. Retention counts from
/// collection: a read stamped in the future would outlive its 60 days. Such records are kept
/// as dead letters (destroyed by the time they arrived) and counted in health.
fn implausible(what: &str, t: i64, now: i64) -> Option<String> {
    if t > now + CLOCK_AHEAD_MS {
        Some(format!(
            "{what} is stamped {} s in the future: the trailer's clock is ahead; kept here, not stored",
            (t - now) / 1000
        ))
    } else if t < CLOCK_FLOOR_MS && now >= CLOCK_FLOOR_MS {
        // (A server whose own clock is before the floor cannot judge by it.)
        Some(format!(
            "{what} is stamped before 2024: the trailer's clock was reset; kept here, not stored"
        ))
    } else {
        None
    }
}

/// Keeps a record refused for its time as a dead letter; counts it.
async fn refuse_time(
    c: &mut AnyConnection,
    trailer: &str,
    topic: String,
    reason: &str,
    frame: &[u8],
    now: i64,
) -> Result<(), RecordsError> {
    tracing::warn!(trailer, %reason, "record refused for its time");
    super::dead_letter_on(c, &topic, reason, frame, now).await?;
    repeats::count(c, trailer, Tally { clock_refused: 1, ..Tally::default() }, now).await
}

/// A message as one frame, for the dead letters.
fn frame(m: Message) -> Result<Vec<u8>, RecordsError> {
    trailer_wire::encode(&m).map_err(|e| RecordsError::Invalid(e.to_string()))
}

/// Stores a hotlist hit (and its read, which the alert carries so it can overtake the
/// backlog), and tallies a new hit in the public log of use. Returns whether it was new.
pub async fn alert(
    c: &mut AnyConnection,
    rules: &Rules,
    trailer: &str,
    a: &trailer_wire::Alert,
    now: i64,
) -> Result<bool, RecordsError> {
    let pg = is_pg(c);
    let stored = store_reads(c, rules, trailer, std::slice::from_ref(&a.read), false, now).await?;
    if stored.participant {
        return Ok(false);
    }
    if stored.untimely.contains(&a.read.read_id) {
        let reason = format!(
            "alert id {} is of a read refused for its time or collected under a suspension order",
            a.alert_id
        );
        let frame = frame(Message::Alert(a.clone()))?;
        refuse_time(c, trailer, Topic::up(trailer, UpKind::Alerts), &reason, &frame, now).await?;
        return Ok(false);
    }
    let held = sqlx::query(sql(
        pg,
        "SELECT read_id, list_name, list_version, category FROM alerts \
         WHERE trailer_id = ? AND alert_id = ?",
    ))
    .bind(trailer)
    .bind(a.alert_id as i64)
    .fetch_optional(&mut *c)
    .await?;
    let same = |r: &sqlx::any::AnyRow| {
        r.get::<i64, _>(0) == a.read.read_id as i64
            && r.get::<String, _>(1) == a.list_name
            && r.get::<i64, _>(2) == a.list_version as i64
            && r.get::<String, _>(3) == format!("{:?}", a.category)
    };
    let reason = match &held {
        Some(r) if same(r) => {
            repeats::count(c, trailer, Tally { resends: 1, ..Tally::default() }, now).await?;
            return Ok(false);
        }
        Some(_) => format!(
            "alert id {} of {trailer} collides with another alert the server holds under that \
             id; kept here, not stored as an alert",
            a.alert_id
        ),
        None if stored.collided.contains(&a.read.read_id) => format!(
            "alert id {} of {trailer} is of read {}, whose id the server holds for another \
             read; kept here, not stored as an alert",
            a.alert_id, a.read.read_id
        ),
        None => String::new(),
    };
    if !reason.is_empty() {
        let x = Collision {
            trailer,
            kind: "alert",
            item_id: a.alert_id,
            content: &frame(Message::Alert(a.clone()))?,
            topic: Topic::up(trailer, UpKind::Alerts),
            reason,
        };
        let t = repeats::collide(c, x, now).await?;
        repeats::count(c, trailer, t, now).await?;
        return Ok(false);
    }
    sqlx::query(sql(
        pg,
        "INSERT INTO alerts (trailer_id, alert_id, read_id, plate, list_name, list_version, \
         category, case_number, seen_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(trailer)
    .bind(a.alert_id as i64)
    .bind(a.read.read_id as i64)
    .bind(&a.read.plate)
    .bind(&a.list_name)
    .bind(a.list_version as i64)
    .bind(format!("{:?}", a.category))
    .bind(&a.case_number)
    .bind(a.read.best_seen)
    .bind(now)
    .execute(&mut *c)
    .await?;
    // A read on several lists of one category is one hit of it (the log counts hits by
    // category, not by list).
    let counted = sqlx::query(sql(
        pg,
        "SELECT COUNT(*) FROM alerts WHERE trailer_id = ? AND read_id = ? AND category = ?",
    ))
    .bind(trailer)
    .bind(a.read.read_id as i64)
    .bind(format!("{:?}", a.category))
    .fetch_one(&mut *c)
    .await?
    .get::<i64, _>(0);
    if counted == 1 {
        let period: i64 = sqlx::query(sql(
            pg,
            "SELECT period_id FROM reads WHERE trailer_id = ? AND read_id = ?",
        ))
        .bind(trailer)
        .bind(a.read.read_id as i64)
        .fetch_optional(&mut *c)
        .await?
        .map_or(0, |r| r.get(0));
        uselog::tally(c, rules, trailer, &[(a.read.first_seen, period)], Some(a.category)).await?;
    }
    Ok(true)
}

/// Stores a picture once. It carries its read's collection time (its own arrival time if the
/// read has not arrived yet), by which retention destroys it with its read. A picture of a
/// colliding read, or other bytes under a picture held, is a collision.
pub async fn picture(
    c: &mut AnyConnection,
    trailer: &str,
    read_id: u64,
    kind: PictureKind,
    jpeg: &[u8],
    now: i64,
) -> Result<AckRef, RecordsError> {
    let ack = AckRef::Picture(read_id, kind);
    if super::acp::was_dropped(c, trailer, read_id).await? {
        return Ok(ack);
    }
    let pg = is_pg(c);
    let held: Option<Vec<u8>> = sqlx::query(sql(
        pg,
        "SELECT jpeg FROM pictures WHERE trailer_id = ? AND read_id = ? AND kind = ?",
    ))
    .bind(trailer)
    .bind(read_id as i64)
    .bind(picture_kind(kind))
    .fetch_optional(&mut *c)
    .await?
    .map(|r| r.get(0));
    let reason = match held {
        Some(bytes) if bytes == jpeg => {
            repeats::count(c, trailer, Tally { resends: 1, ..Tally::default() }, now).await?;
            return Ok(ack);
        }
        Some(_) => format!(
            "{} picture of read {read_id} of {trailer} differs from the one the server holds; \
             kept here, not stored",
            picture_kind(kind)
        ),
        None if repeats::read_collided(c, trailer, read_id).await? => format!(
            "{} picture of read {read_id} of {trailer}, whose id the server holds for another \
             read; kept here, not stored",
            picture_kind(kind)
        ),
        None => String::new(),
    };
    if !reason.is_empty() {
        let x = Collision {
            trailer,
            kind: "picture",
            item_id: read_id,
            content: &frame(Message::Picture(trailer_wire::Picture {
                trailer_id: trailer.into(),
                read_id,
                kind,
                jpeg: jpeg.to_vec(),
            }))?,
            topic: Topic::up(trailer, UpKind::Pictures),
            reason,
        };
        let t = repeats::collide(c, x, now).await?;
        repeats::count(c, trailer, t, now).await?;
        return Ok(ack);
    }
    sqlx::query(sql(
        pg,
        "INSERT INTO pictures (trailer_id, read_id, kind, jpeg, received_at, collected_at, early) \
         SELECT ?, ?, ?, ?, ?, COALESCE(c.at, ?), CASE WHEN c.at IS NULL THEN 1 ELSE 0 END FROM \
         (SELECT MIN(first_seen) AS at FROM reads WHERE trailer_id = ? AND read_id = ?) c",
    ))
    .bind(trailer)
    .bind(read_id as i64)
    .bind(picture_kind(kind))
    .bind(jpeg)
    .bind(now)
    .bind(now)
    .bind(trailer)
    .bind(read_id as i64)
    .execute(&mut *c)
    .await?;
    Ok(ack)
}

/// Stores an active-use period; a closing update completes the open record. A period id held
/// for a period that began otherwise is a collision: it never overwrites the one held (the
/// public log counts both lives of a store).
pub async fn usage(
    c: &mut AnyConnection,
    rules: &Rules,
    trailer: &str,
    u: &ActiveUse,
    now: i64,
) -> Result<AckRef, RecordsError> {
    let pg = is_pg(c);
    let ack = AckRef::ActiveUse(u.period_id);
    let latest = u.end.unwrap_or(u.start).max(u.start);
    if let Some(reason) = implausible(&format!("period of use {}", u.period_id), latest, now)
        .or_else(|| implausible(&format!("period of use {}", u.period_id), u.start, now))
    {
        let frame = frame(Message::ActiveUse(u.clone()))?;
        refuse_time(c, trailer, Topic::up(trailer, UpKind::Usage), &reason, &frame, now).await?;
        return Ok(ack);
    }
    let held = sqlx::query(sql(
        pg,
        "SELECT start_ms, start_reason, end_ms FROM usage_periods \
         WHERE trailer_id = ? AND period_id = ?",
    ))
    .bind(trailer)
    .bind(u.period_id as i64)
    .fetch_optional(&mut *c)
    .await?;
    let start_reason = format!("{:?}", u.start_reason);
    match held {
        Some(r) if r.get::<i64, _>(0) != u.start || r.get::<String, _>(1) != start_reason => {
            let x = Collision {
                trailer,
                kind: "period",
                item_id: u.period_id,
                content: &frame(Message::ActiveUse(u.clone()))?,
                topic: Topic::up(trailer, UpKind::Usage),
                reason: format!(
                    "period of use {} of {trailer} collides with another period the server \
                     holds under that id; kept here, not stored",
                    u.period_id
                ),
            };
            let t = repeats::collide(c, x, now).await?;
            repeats::count(c, trailer, t, now).await?;
            return Ok(ack);
        }
        Some(r) if r.get::<Option<i64>, _>(2).is_some() || u.end.is_none() => {
            // Nothing new: the period as held already says as much.
            repeats::count(c, trailer, Tally { resends: 1, ..Tally::default() }, now).await?;
            return Ok(ack);
        }
        Some(_) => {
            sqlx::query(sql(
                pg,
                "UPDATE usage_periods SET end_ms = ?, end_reason = ? \
                 WHERE trailer_id = ? AND period_id = ? AND end_ms IS NULL",
            ))
            .bind(u.end)
            .bind(u.end_reason.map(|r| format!("{r:?}")))
            .bind(trailer)
            .bind(u.period_id as i64)
            .execute(&mut *c)
            .await?;
        }
        None => {
            sqlx::query(sql(
                pg,
                "INSERT INTO usage_periods (trailer_id, period_id, start_ms, end_ms, \
                 start_reason, end_reason, lat, lon, lists) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(trailer)
            .bind(u.period_id as i64)
            .bind(u.start)
            .bind(u.end)
            .bind(&start_reason)
            .bind(u.end_reason.map(|r| format!("{r:?}")))
            .bind(u.position.lat())
            .bind(u.position.lon())
            .bind(u.lists_compared.join(","))
            .execute(&mut *c)
            .await?;
        }
    }
    // Reads (and hits) that came before this period's record move to it.
    let end = u.end.unwrap_or(now);
    uselog::attribute(c, rules, trailer, u.period_id as i64, u.start, end).await?;
    let (lat, lon) = (u.position.lat(), u.position.lon());
    note_location(c, rules, trailer, lat, lon, u.end.unwrap_or(u.start), now).await?;
    Ok(ack)
}

/// Keeps the newest health report per trailer (an older one arriving late is ignored).
pub async fn health(c: &mut AnyConnection, h: &trailer_wire::Health) -> Result<(), RecordsError> {
    let pg = is_pg(c);
    sqlx::query(sql(pg, "INSERT INTO trailer_health (trailer_id, reported_at, camera, lat, lon, fix, disk_used_pm, \
         storage_full, store_repairs, backlog_items, last_read, dropped_frames, software_version, \
         acp_fingerprint, acp_entries, config_rolled_back) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (trailer_id) DO UPDATE SET reported_at = excluded.reported_at, camera = excluded.camera, \
         lat = excluded.lat, lon = excluded.lon, fix = excluded.fix, disk_used_pm = excluded.disk_used_pm, \
         storage_full = excluded.storage_full, store_repairs = excluded.store_repairs, \
         backlog_items = excluded.backlog_items, \
         last_read = excluded.last_read, dropped_frames = excluded.dropped_frames, \
         software_version = excluded.software_version, acp_fingerprint = excluded.acp_fingerprint, \
         acp_entries = excluded.acp_entries, config_rolled_back = excluded.config_rolled_back \
         WHERE excluded.reported_at >= trailer_health.reported_at"),
    )
    .bind(&h.trailer_id)
    .bind(h.time)
    .bind(format!("{:?}", h.camera))
    .bind(h.position.lat())
    .bind(h.position.lon())
    .bind(fix_name(h.position.fix))
    .bind(i64::from(h.disk_used_pm))
    .bind(i64::from(h.storage_full))
    .bind(i64::from(h.store_repairs))
    .bind(i64::from(h.backlog_items))
    .bind(h.last_read)
    .bind(h.dropped_frames as i64)
    .bind(&h.software_version)
    .bind(h.acp_key_fingerprint.map(hex::encode))
    .bind(i64::from(h.acp_entries))
    .bind(h.config_rolled_back)
    .execute(&mut *c)
    .await?;
    // A trailer counts its destruction under the day it destroys: a day before the newest one
    // held here is final, so each report writes only the newest day or two, not all of its
    // days. A replaced store counts again from nothing, so the larger count is kept.
    let newest: i64 = sqlx::query(sql(
        pg,
        "SELECT COALESCE(MAX(day), 0) FROM trailer_destruction WHERE trailer_id = ?",
    ))
    .bind(&h.trailer_id)
    .fetch_one(&mut *c)
    .await?
    .get(0);
    for &(day, reads) in h.destroyed.iter().filter(|(day, _)| i64::from(*day) >= newest) {
        sqlx::query(sql(
            pg,
            "INSERT INTO trailer_destruction (trailer_id, day, reads) VALUES (?, ?, ?) \
             ON CONFLICT (trailer_id, day) DO UPDATE SET reads = CASE \
             WHEN excluded.reads > trailer_destruction.reads THEN excluded.reads \
             ELSE trailer_destruction.reads END",
        ))
        .bind(&h.trailer_id)
        .bind(i64::from(day))
        .bind(reads.min(i64::MAX as u64) as i64)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// Stores a deployment event and updates the location history from it: an end closes the
/// trailer's current location; a start opens one where it now stands (or extends the current
/// one if it is within the rules' distance). A repeated event changes nothing; another event
/// under a held id is a collision.
pub async fn deployment(
    c: &mut AnyConnection,
    rules: &Rules,
    trailer: &str,
    e: &trailer_wire::DeploymentEvent,
    now: i64,
) -> Result<AckRef, RecordsError> {
    let pg = is_pg(c);
    let ack = AckRef::Deployment(e.event_id);
    let kind = match e.kind {
        trailer_wire::DeploymentEventKind::Start => "start",
        trailer_wire::DeploymentEventKind::End => "end",
    };
    if let Some(reason) = implausible(&format!("deployment event {}", e.event_id), e.time, now) {
        let frame = frame(Message::Deployment(e.clone()))?;
        refuse_time(c, trailer, Topic::up(trailer, UpKind::Deployments), &reason, &frame, now)
            .await?;
        return Ok(ack);
    }
    let held = sqlx::query(sql(
        pg,
        "SELECT kind, at FROM deployment_events WHERE trailer_id = ? AND event_id = ?",
    ))
    .bind(trailer)
    .bind(e.event_id as i64)
    .fetch_optional(&mut *c)
    .await?;
    if let Some(r) = held {
        let t = if r.get::<String, _>(0) == kind && r.get::<i64, _>(1) == e.time {
            Tally { resends: 1, ..Tally::default() }
        } else {
            let x = Collision {
                trailer,
                kind: "event",
                item_id: e.event_id,
                content: &frame(Message::Deployment(e.clone()))?,
                topic: Topic::up(trailer, UpKind::Deployments),
                reason: format!(
                    "deployment event {} of {trailer} collides with another event the server \
                     holds under that id; kept here, not stored",
                    e.event_id
                ),
            };
            repeats::collide(c, x, now).await?
        };
        repeats::count(c, trailer, t, now).await?;
        return Ok(ack);
    }
    sqlx::query(sql(
        pg,
        "INSERT INTO deployment_events (trailer_id, event_id, kind, at, lat, lon, note, received_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(trailer)
    .bind(e.event_id as i64)
    .bind(kind)
    .bind(e.time)
    .bind(e.position.lat())
    .bind(e.position.lon())
    .bind(&e.note)
    .bind(now)
    .execute(&mut *c)
    .await?;
    match e.kind {
        trailer_wire::DeploymentEventKind::End => {
            close_current(c, trailer, Some(e.time), now).await?;
        }
        trailer_wire::DeploymentEventKind::Start => {
            let (lat, lon) = (e.position.lat(), e.position.lon());
            note_location(c, rules, trailer, lat, lon, e.time, now).await?;
        }
    }
    Ok(ack)
}

/// Records a trailer's online/offline status, and what it says of the trailer's store: the
/// first store heard of, or a new or restored one, is sent everything its store must hold, and
/// a new or restored one is shown to operators and written in the audit trail
/// ([`super::stores`]).
pub async fn status(
    c: &mut AnyConnection,
    rules: &Rules,
    trailer: &str,
    s: &trailer_wire::Status,
    now: i64,
) -> Result<StoreEvent, RecordsError> {
    let pg = is_pg(c);
    let event =
        if s.online { stores::note(c, trailer, &s.store, now).await? } else { StoreEvent::Same };
    let resent = match &event {
        StoreEvent::Same => None,
        // A trailer new to the server gets the ACP list before anything else is sent to it,
        // then the newest version of every hotlist, the holds and its configuration.
        _ => Some(stores::send_everything(c, rules, trailer, now).await?),
    };
    sqlx::query(sql(
        pg,
        "INSERT INTO trailer_status (trailer_id, online, last_change, software_version) \
         VALUES (?, ?, ?, ?) ON CONFLICT (trailer_id) DO UPDATE SET online = excluded.online, \
         last_change = excluded.last_change, software_version = excluded.software_version",
    ))
    .bind(trailer)
    .bind(i64::from(s.online))
    .bind(s.time)
    .bind(&s.software_version)
    .execute(&mut *c)
    .await?;
    if s.online {
        stores::show(c, trailer, &s.store, &event, now).await?;
        // The trailer is (back) online and subscribed: its unanswered downlinks are due now,
        // not at their next resend (one sent before it ever connected found no subscriber).
        sqlx::query(sql(
            pg,
            "UPDATE downlinks SET sent_at = NULL WHERE trailer_id = ? AND answered_at IS NULL",
        ))
        .bind(trailer)
        .execute(&mut *c)
        .await?;
    }
    if let (Some(r), StoreEvent::NewStore { .. } | StoreEvent::Restored) = (&resent, &event) {
        let what = match &event {
            StoreEvent::NewStore { previous } => format!(
                "{trailer} runs on a new store {:016x} (created {}), replacing store {previous}",
                s.store.store_id,
                super::iso_time(s.store.created)
            ),
            _ => format!(
                "{trailer} runs on store {:016x} restored from an older copy (open {} seen \
                 before)",
                s.store.store_id, s.store.opens
            ),
        };
        let detail = format!(
            "{what}; sent again: {} ACP digests, {} hotlists, {} holds, configuration: {}",
            r.acp_digests,
            r.hotlists,
            r.holds,
            if r.config { "yes" } else { "none on record" }
        );
        tracing::warn!(trailer, %detail, "a trailer's store was replaced or restored");
        let action = match event {
            StoreEvent::NewStore { .. } => "trailer.store_replaced",
            _ => "trailer.store_restored",
        };
        let entry = crate::audit::Entry {
            at: now,
            actor: "sync-server".into(),
            action: action.into(),
            purpose: "trailer store check".into(),
            case_number: String::new(),
            detail,
            result_count: 1,
        };
        super::audit::append_chained(c, &entry).await?;
    }
    Ok(event)
}

/// Records that `trailer` stood at (lat, lon) at `at`, against all its known locations:
/// - a place it is known to have stood at then: nothing changes;
/// - near its current place: that place's dates stretch to `at`;
/// - a position from before its current place began (a backlog): an earlier place nearby
///   stretches, or a closed place is added to the history;
/// - otherwise it moved (farther than the rules' distance): the current place closes and a new
///   one opens.
///
/// Each new deployment calls for a BCA notice (a reader's first announces the reader), and the
/// place it left for one that it no longer stands there; a backlog's closed place calls for
/// both at once.
pub(crate) async fn note_location(
    c: &mut AnyConnection,
    rules: &Rules,
    trailer: &str,
    lat: f64,
    lon: f64,
    at: i64,
    now: i64,
) -> Result<(), RecordsError> {
    let pg = is_pg(c);
    // Only the current place and the places near this position matter: a box around it, then
    // the exact distance (a reader's history grows with every move; this runs per message).
    let dlat = rules.new_location_m / 111_320.0;
    let dlon = dlat / lat.to_radians().cos().abs().max(0.01);
    let known: Vec<(i64, f64, f64, i64, i64, bool)> = sqlx::query(sql(
        pg,
        "SELECT id, lat, lon, first_ms, last_ms, current FROM locations WHERE trailer_id = ? \
         AND (current = 1 OR (lat BETWEEN ? AND ? AND lon BETWEEN ? AND ?)) ORDER BY first_ms",
    ))
    .bind(trailer)
    .bind(lat - dlat)
    .bind(lat + dlat)
    .bind(lon - dlon)
    .bind(lon + dlon)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get::<i64, _>(5) == 1))
    .collect();
    let near = |l: &&(i64, f64, f64, i64, i64, bool)| {
        distance_m(l.1, l.2, lat, lon) <= rules.new_location_m
    };
    if known.iter().filter(near).any(|l| (l.3..=l.4).contains(&at)) {
        return Ok(());
    }
    let current = known.iter().find(|l| l.5);
    let stretch = match current {
        Some(cur) if near(&cur) => cur.0,
        // A position from before the current place began: history, never a move.
        Some(cur) if at < cur.3 => {
            match known.iter().filter(near).rfind(|l| !l.5 && l.3 <= cur.3) {
                Some(earlier) => earlier.0,
                None => {
                    // A closed place new to the server (from a backlog): the BCA hears of it.
                    let id = insert_location(c, trailer, lat, lon, at, false, now).await?;
                    notices::create(c, trailer, NoticeKind::NewLocation, id, at, now).await?;
                    notices::create(c, trailer, NoticeKind::LocationEnded, id, at, now).await?;
                    return Ok(());
                }
            }
        }
        _ => {
            if current.is_some() {
                close_current(c, trailer, None, now).await?;
            }
            // A place never seen before: the reader's first announces the reader.
            let first = known.is_empty()
                && sqlx::query(sql(pg, "SELECT 1 FROM locations WHERE trailer_id = ? LIMIT 1"))
                    .bind(trailer)
                    .fetch_optional(&mut *c)
                    .await?
                    .is_none();
            let id = insert_location(c, trailer, lat, lon, at, true, now).await?;
            // Back at a place it stood before is news to the BCA too: it heard that the
            // reader left.
            let kind = if first { NoticeKind::NewReader } else { NoticeKind::NewLocation };
            notices::create(c, trailer, kind, id, at, now).await?;
            return Ok(());
        }
    };
    sqlx::query(sql(
        pg,
        "UPDATE locations SET first_ms = CASE WHEN first_ms < ? THEN first_ms ELSE ? END, \
         last_ms = CASE WHEN last_ms > ? THEN last_ms ELSE ? END WHERE id = ?",
    ))
    .bind(at)
    .bind(at)
    .bind(at)
    .bind(at)
    .bind(stretch)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Closes `trailer`'s current location (its dates stretched to `at`, if given) and calls for
/// a notice that the reader no longer stands there, due ten days after it left, so the BCA's
/// list of fixed locations does not go stale. Returns whether there was one to close.
pub(crate) async fn close_current(
    c: &mut AnyConnection,
    trailer: &str,
    at: Option<i64>,
    now: i64,
) -> Result<bool, RecordsError> {
    let pg = is_pg(c);
    let Some(row) = sqlx::query(sql(
        pg,
        "SELECT id, last_ms FROM locations WHERE trailer_id = ? AND current = 1",
    ))
    .bind(trailer)
    .fetch_optional(&mut *c)
    .await?
    else {
        return Ok(false);
    };
    let (id, last): (i64, i64) = (row.get(0), row.get(1));
    let ended = at.map_or(last, |at| at.max(last));
    sqlx::query(sql(pg, "UPDATE locations SET current = 0, last_ms = ? WHERE id = ?"))
        .bind(ended)
        .bind(id)
        .execute(&mut *c)
        .await?;
    notices::create(c, trailer, NoticeKind::LocationEnded, id, ended, now).await?;
    Ok(true)
}

/// Adds a location (current or closed) and returns its id.
async fn insert_location(
    c: &mut AnyConnection,
    trailer: &str,
    lat: f64,
    lon: f64,
    at: i64,
    current: bool,
    now: i64,
) -> Result<i64, RecordsError> {
    let pg = is_pg(c);
    let id = sqlx::query(sql(
        pg,
        "INSERT INTO locations (trailer_id, lat, lon, first_ms, last_ms, current, created_ms) \
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    ))
    .bind(trailer)
    .bind(lat)
    .bind(lon)
    .bind(at)
    .bind(at)
    .bind(i64::from(current))
    .bind(now)
    .fetch_one(&mut *c)
    .await?
    .get(0);
    Ok(id)
}

/// Records a trailer's answer to a downlink (only a downlink addressed to that trailer), and
/// drops its frame.
pub async fn downlink_answer(
    c: &mut AnyConnection,
    trailer: &str,
    a: &trailer_wire::DownlinkAck,
    now: i64,
) -> Result<AckRef, RecordsError> {
    let pg = is_pg(c);
    sqlx::query(sql(
        pg,
        "UPDATE downlinks SET answered_at = ?, applied = ?, answer = ?, \
         frame = CASE WHEN kind = 'config' THEN frame ELSE ? END \
         WHERE id = ? AND trailer_id = ? AND answered_at IS NULL",
    ))
    .bind(now)
    .bind(i64::from(a.applied))
    .bind(&a.reason)
    // An answered downlink is not sent again: its frame (hotlist plates, ACP digests) goes,
    // and what was sent stays in its summary. A configuration is kept, to give a new store.
    .bind(Vec::<u8>::new())
    .bind(a.downlink_id as i64)
    .bind(trailer)
    .execute(&mut *c)
    .await?;
    Ok(AckRef::Downlink(a.downlink_id))
}
