//! The writes of ingestion, each on a connection the caller holds inside one transaction: the
//! server commits a whole batch of messages at once and acknowledges them after the commit.
//! Every insert is idempotent on the trailer's own ids.
use super::notices::{self, NoticeKind};
use super::{RecordsError, Rules, distance_m, fix_name, picture_kind, uselog};
use super::{is_pg, sql};
use sqlx::AnyConnection;
use sqlx::Row;
use trailer_wire::{AckRef, ActiveUse, PictureKind, ReadMeta};

/// Stores a batch of reads; returns the acks for all of them (new or already stored).
/// Each read new to the server is tallied in the public log of use.
pub async fn reads(
    c: &mut AnyConnection,
    rules: &Rules,
    trailer: &str,
    reads: &[ReadMeta],
    now: i64,
) -> Result<Vec<AckRef>, RecordsError> {
    Ok(store_reads(c, rules, trailer, reads, now).await?.0)
}

/// [`reads`], also saying whether any was an ACP participant's (dropped, not stored).
async fn store_reads(
    c: &mut AnyConnection,
    rules: &Rules,
    trailer: &str,
    reads: &[ReadMeta],
    now: i64,
) -> Result<(Vec<AckRef>, bool), RecordsError> {
    let pg = is_pg(c);
    let mut acks = Vec::with_capacity(reads.len());
    let mut fresh = Vec::with_capacity(reads.len());
    let participants = super::acp::drop_participants(c, rules, trailer, reads, now).await?;
    for (i, r) in reads.iter().enumerate() {
        if participants.contains(&i) {
            // Destroyed at collection: acknowledged, so the trailer forgets it too.
            acks.push(AckRef::Read(r.read_id));
            continue;
        }
        let done = sqlx::query(sql(
            pg,
            "INSERT INTO reads (trailer_id, read_id, camera_id, plate, confidence, first_seen, \
             best_seen, lat, lon, fix, plate_box, has_crop, has_context, received_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
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
        .execute(&mut *c)
        .await?;
        if done.rows_affected() == 1 {
            fresh.push(r);
        }
        acks.push(AckRef::Read(r.read_id));
    }
    uselog::tally(c, rules, trailer, &fresh, None).await?;
    if let Some(last) = reads.last() {
        let (lat, lon) = (last.position.lat(), last.position.lon());
        note_location(c, rules, trailer, lat, lon, last.best_seen, now).await?;
    }
    Ok((acks, !participants.is_empty()))
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
    let (_, participant) =
        store_reads(c, rules, trailer, std::slice::from_ref(&a.read), now).await?;
    if participant {
        return Ok(false);
    }
    let done = sqlx::query(sql(pg, "INSERT INTO alerts (trailer_id, alert_id, read_id, plate, list_name, list_version, category, \
         case_number, seen_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (trailer_id, alert_id) DO NOTHING"),
    )
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
    let new = done.rows_affected() == 1;
    if new {
        uselog::tally(c, rules, trailer, &[&a.read], Some(a.category)).await?;
    }
    Ok(new)
}

/// Stores a picture once. It carries its read's collection time (its own arrival time if the
/// read has not arrived yet), by which retention destroys it with its read.
pub async fn picture(
    c: &mut AnyConnection,
    trailer: &str,
    read_id: u64,
    kind: PictureKind,
    jpeg: &[u8],
    now: i64,
) -> Result<AckRef, RecordsError> {
    if super::acp::was_dropped(c, trailer, read_id).await? {
        return Ok(AckRef::Picture(read_id, kind));
    }
    let pg = is_pg(c);
    sqlx::query(sql(
        pg,
        "INSERT INTO pictures (trailer_id, read_id, kind, jpeg, received_at, collected_at, early) \
         SELECT ?, ?, ?, ?, ?, COALESCE(c.at, ?), CASE WHEN c.at IS NULL THEN 1 ELSE 0 END FROM \
         (SELECT MIN(first_seen) AS at FROM reads WHERE trailer_id = ? AND read_id = ?) c \
         WHERE NOT EXISTS (SELECT 1 FROM pictures WHERE trailer_id = ? AND read_id = ? AND kind = ?)",
    ))
    .bind(trailer)
    .bind(read_id as i64)
    .bind(picture_kind(kind))
    .bind(jpeg)
    .bind(now)
    .bind(now)
    .bind(trailer)
    .bind(read_id as i64)
    .bind(trailer)
    .bind(read_id as i64)
    .bind(picture_kind(kind))
    .execute(&mut *c)
    .await?;
    Ok(AckRef::Picture(read_id, kind))
}

/// Stores an active-use period; a closing update replaces the open record.
pub async fn usage(
    c: &mut AnyConnection,
    rules: &Rules,
    trailer: &str,
    u: &ActiveUse,
    now: i64,
) -> Result<AckRef, RecordsError> {
    let pg = is_pg(c);
    sqlx::query(sql(pg, "INSERT INTO usage_periods (trailer_id, period_id, start_ms, end_ms, start_reason, end_reason, lat, lon, lists) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (trailer_id, period_id) DO UPDATE SET \
         end_ms = COALESCE(excluded.end_ms, usage_periods.end_ms), \
         end_reason = COALESCE(excluded.end_reason, usage_periods.end_reason)"),
    )
    .bind(trailer)
    .bind(u.period_id as i64)
    .bind(u.start)
    .bind(u.end)
    .bind(format!("{:?}", u.start_reason))
    .bind(u.end_reason.map(|r| format!("{r:?}")))
    .bind(u.position.lat())
    .bind(u.position.lon())
    .bind(u.lists_compared.join(","))
    .execute(&mut *c)
    .await?;
    let (lat, lon) = (u.position.lat(), u.position.lon());
    note_location(c, rules, trailer, lat, lon, u.end.unwrap_or(u.start), now).await?;
    Ok(AckRef::ActiveUse(u.period_id))
}

/// Keeps the newest health report per trailer (an older one arriving late is ignored).
pub async fn health(c: &mut AnyConnection, h: &trailer_wire::Health) -> Result<(), RecordsError> {
    let pg = is_pg(c);
    sqlx::query(sql(pg, "INSERT INTO trailer_health (trailer_id, reported_at, camera, lat, lon, fix, disk_used_pm, \
         storage_full, store_repairs, backlog_items, last_read, dropped_frames, software_version) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (trailer_id) DO UPDATE SET reported_at = excluded.reported_at, camera = excluded.camera, \
         lat = excluded.lat, lon = excluded.lon, fix = excluded.fix, disk_used_pm = excluded.disk_used_pm, \
         storage_full = excluded.storage_full, store_repairs = excluded.store_repairs, \
         backlog_items = excluded.backlog_items, \
         last_read = excluded.last_read, dropped_frames = excluded.dropped_frames, \
         software_version = excluded.software_version \
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
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Stores a deployment event and updates the location history from it: an end closes the
/// trailer's current location; a start opens one where it now stands (or extends the current
/// one if it is within the rules' distance). A repeated event changes nothing.
pub async fn deployment(
    c: &mut AnyConnection,
    rules: &Rules,
    trailer: &str,
    e: &trailer_wire::DeploymentEvent,
    now: i64,
) -> Result<AckRef, RecordsError> {
    let pg = is_pg(c);
    let kind = match e.kind {
        trailer_wire::DeploymentEventKind::Start => "start",
        trailer_wire::DeploymentEventKind::End => "end",
    };
    let new = sqlx::query(sql(
        pg,
        "INSERT INTO deployment_events (trailer_id, event_id, kind, at, lat, lon, note, received_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (trailer_id, event_id) DO NOTHING",
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
    .await?
    .rows_affected()
        == 1;
    if new {
        match e.kind {
            trailer_wire::DeploymentEventKind::End => {
                sqlx::query(sql(
                    pg,
                    "UPDATE locations SET current = 0, \
                     last_ms = CASE WHEN last_ms > ? THEN last_ms ELSE ? END \
                     WHERE trailer_id = ? AND current = 1",
                ))
                .bind(e.time)
                .bind(e.time)
                .bind(trailer)
                .execute(&mut *c)
                .await?;
            }
            trailer_wire::DeploymentEventKind::Start => {
                let (lat, lon) = (e.position.lat(), e.position.lon());
                note_location(c, rules, trailer, lat, lon, e.time, now).await?;
            }
        }
    }
    Ok(AckRef::Deployment(e.event_id))
}

/// Records a trailer's online/offline status.
pub async fn status(
    c: &mut AnyConnection,
    trailer: &str,
    online: bool,
    at: i64,
    version: &str,
    now: i64,
) -> Result<(), RecordsError> {
    let pg = is_pg(c);
    let known = sqlx::query(sql(pg, "SELECT 1 FROM trailer_status WHERE trailer_id = ?"))
        .bind(trailer)
        .fetch_optional(&mut *c)
        .await?
        .is_some();
    if !known {
        // A trailer new to the server gets the ACP list before anything else is sent to it,
        // then the newest version of every hotlist.
        super::acp::send_list(c, trailer, now).await?;
        super::hotlists::send_lists(c, trailer, now).await?;
    }
    sqlx::query(sql(pg, "INSERT INTO trailer_status (trailer_id, online, last_change, software_version) VALUES (?, ?, ?, ?) \
         ON CONFLICT (trailer_id) DO UPDATE SET online = excluded.online, \
         last_change = excluded.last_change, software_version = excluded.software_version"),
    )
    .bind(trailer)
    .bind(i64::from(online))
    .bind(at)
    .bind(version)
    .execute(&mut *c)
    .await?;
    if online {
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
    Ok(())
}

/// Records that `trailer` stood at (lat, lon) at `at`, against all its known locations:
/// - a place it is known to have stood at then: nothing changes;
/// - near its current place: that place's dates stretch to `at`;
/// - a position from before its current place began (a backlog): an earlier place nearby
///   stretches, or a closed place is added to the history;
/// - otherwise it moved (farther than the rules' distance): the current place closes and a new
///   one opens.
///
/// A place never seen before calls for a BCA notice: a reader's first announces the reader.
/// Coming back to a known place opens a new deployment there but no new notice.
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
                    return Ok(());
                }
            }
        }
        _ => {
            if let Some(cur) = current {
                sqlx::query(sql(pg, "UPDATE locations SET current = 0 WHERE id = ?"))
                    .bind(cur.0)
                    .execute(&mut *c)
                    .await?;
            }
            // A place never seen before: the reader's first announces the reader.
            let first = known.is_empty()
                && sqlx::query(sql(pg, "SELECT 1 FROM locations WHERE trailer_id = ? LIMIT 1"))
                    .bind(trailer)
                    .fetch_optional(&mut *c)
                    .await?
                    .is_none();
            let id = insert_location(c, trailer, lat, lon, at, true, now).await?;
            let kind = if first { NoticeKind::NewReader } else { NoticeKind::NewLocation };
            if !known.iter().any(|l| near(&l)) {
                notices::create(c, trailer, kind, id, at, now).await?;
            }
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

/// Records a trailer's answer to a downlink (only a downlink addressed to that trailer).
pub async fn downlink_answer(
    c: &mut AnyConnection,
    trailer: &str,
    a: &trailer_wire::DownlinkAck,
    now: i64,
) -> Result<AckRef, RecordsError> {
    let pg = is_pg(c);
    sqlx::query(sql(
        pg,
        "UPDATE downlinks SET answered_at = ?, applied = ?, answer = ? \
         WHERE id = ? AND trailer_id = ? AND answered_at IS NULL",
    ))
    .bind(now)
    .bind(i64::from(a.applied))
    .bind(&a.reason)
    .bind(a.downlink_id as i64)
    .bind(trailer)
    .execute(&mut *c)
    .await?;
    Ok(AckRef::Downlink(a.downlink_id))
}
