//! Notices to the Bureau of Criminal Apprehension (Minn. Stat. 13.824 subd. 8): within ten
//! days of a reader's installation or first use, and of each new fixed location. Ingestion
//! creates them ([`create`], in the same transaction as the location that calls for one); the
//! notice duty ([`crate::bca`]) renders and sends them; operators see which are due or overdue.
use super::{Records, RecordsError, is_pg, iso_time, sql};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

/// How long the law gives the agency to notify the BCA.
pub const NOTICE_DAYS: i64 = 10;
const DAY_MS: i64 = 86_400_000;

/// What a notice announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    /// A reader installed or used for the first time (with its first location).
    NewReader,
    /// A reader at a new fixed location.
    NewLocation,
    /// A location's classification changed after its notice went out.
    Correction,
    /// A reader no longer stands at a notified fixed location (moved away or withdrawn).
    LocationEnded,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::NewReader => "new-reader",
            NoticeKind::NewLocation => "new-location",
            NoticeKind::Correction => "correction",
            NoticeKind::LocationEnded => "location-ended",
        }
    }

    fn parse(s: &str) -> NoticeKind {
        match s {
            "new-reader" => NoticeKind::NewReader,
            "correction" => NoticeKind::Correction,
            "location-ended" => NoticeKind::LocationEnded,
            _ => NoticeKind::NewLocation,
        }
    }
}

/// Where a notice stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeState {
    Due,
    Overdue,
    Sent,
}

/// A notice with what its document shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub id: i64,
    pub reader: String,
    pub kind: NoticeKind,
    pub location_id: i64,
    pub place: String,
    pub lat: f64,
    pub lon: f64,
    /// Whether the location is security information: the BCA must not publish it.
    pub security: bool,
    pub event_ms: i64,
    pub due_ms: i64,
    /// When the server created it (the review period runs from here).
    pub created_ms: i64,
    /// When it was written to the outbox for staff to send (it is not sent until they say so).
    pub rendered_ms: Option<i64>,
    pub sent_ms: Option<i64>,
    pub sent_via: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub state: NoticeState,
}

impl Notice {
    pub fn event_at(&self) -> String {
        iso_time(self.event_ms)
    }

    pub fn due_at(&self) -> String {
        iso_time(self.due_ms)
    }
}

/// Creates the notice a new location calls for: `NewReader` for a reader's first location,
/// else `NewLocation`; due [`NOTICE_DAYS`] after `event_ms`. Idempotent per location.
pub(super) async fn create(
    c: &mut AnyConnection,
    trailer: &str,
    kind: NoticeKind,
    location_id: i64,
    event_ms: i64,
    now: i64,
) -> Result<(), RecordsError> {
    let pg = is_pg(c);
    sqlx::query(sql(
        pg,
        "INSERT INTO bca_notices (trailer_id, kind, location_id, event_ms, due_ms, created_ms) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (trailer_id, kind, location_id) DO NOTHING",
    ))
    .bind(trailer)
    .bind(kind.as_str())
    .bind(location_id)
    .bind(event_ms)
    .bind(event_ms.saturating_add(NOTICE_DAYS * DAY_MS))
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(())
}

impl Records {
    /// Notices, oldest first; `unsent_only` leaves out those already sent.
    pub async fn notices(&self, now: i64, unsent_only: bool) -> Result<Vec<Notice>, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT n.id, n.trailer_id, n.kind, n.location_id, COALESCE(l.place, ''), \
             COALESCE(l.lat, 0), COALESCE(l.lon, 0), COALESCE(l.security, 0), n.event_ms, \
             n.due_ms, n.sent_ms, n.sent_via, n.attempts, n.last_error, n.created_ms, \
             n.rendered_ms \
             FROM bca_notices n LEFT JOIN locations l ON l.id = n.location_id \
             WHERE (? = 0 OR n.sent_ms IS NULL) ORDER BY n.due_ms, n.id",
        ))
        .bind(i64::from(unsent_only))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let sent_ms: Option<i64> = r.get(10);
                let due_ms: i64 = r.get(9);
                let (lat, lon): (f64, f64) = (r.get(5), r.get(6));
                let place: String = r.get(4);
                Notice {
                    id: r.get(0),
                    reader: r.get(1),
                    kind: NoticeKind::parse(&r.get::<String, _>(2)),
                    location_id: r.get(3),
                    place: if place.is_empty() { format!("{lat:.5}, {lon:.5}") } else { place },
                    lat,
                    lon,
                    security: r.get::<i64, _>(7) != 0,
                    event_ms: r.get(8),
                    due_ms,
                    sent_ms,
                    sent_via: r.get(11),
                    attempts: r.get(12),
                    last_error: r.get(13),
                    created_ms: r.get(14),
                    rendered_ms: r.get(15),
                    state: match sent_ms {
                        Some(_) => NoticeState::Sent,
                        None if now > due_ms => NoticeState::Overdue,
                        None => NoticeState::Due,
                    },
                }
            })
            .collect())
    }

    /// Records that a notice was written to the outbox for staff to send.
    pub async fn notice_rendered(&self, id: i64, at: i64, path: &str) -> Result<(), RecordsError> {
        sqlx::query(sql(
            self.pg,
            "UPDATE bca_notices SET rendered_ms = ?, last_error = ?, claimed_ms = NULL WHERE id = ?",
        ))
        .bind(at)
        .bind(format!("written to {path}: send it, then `notices mark-sent`"))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims a notice for sending for five minutes, so that of several server instances only
    /// one sends it. False if it was sent or another instance holds the claim.
    pub async fn claim_notice(&self, id: i64, now: i64) -> Result<bool, RecordsError> {
        let done = sqlx::query(sql(
            self.pg,
            "UPDATE bca_notices SET claimed_ms = ? WHERE id = ? AND sent_ms IS NULL \
             AND (claimed_ms IS NULL OR claimed_ms < ?)",
        ))
        .bind(now)
        .bind(id)
        .bind(now - 300_000)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed attempt to send a notice (and lets it be claimed again).
    pub async fn notice_failed(&self, id: i64, error: &str) -> Result<(), RecordsError> {
        sqlx::query(sql(
            self.pg,
            "UPDATE bca_notices SET attempts = attempts + 1, last_error = ?, claimed_ms = NULL \
             WHERE id = ?",
        ))
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

super::session::committed! {
    /// Records that a notice went out, and how (`smtp:ADDRESS`, `outbox:PATH`, or an operator's
    /// note for one sent by hand). Only the first sending counts.
    fn notice_sent(id: i64, at: i64, via: &str) -> bool;
    /// After a location's classification changed: if a notice about it already went out, a
    /// correction is due now (again, if one was sent before).
    fn correct_notice(location_id: i64, now: i64) -> bool;
}

impl super::Session {
    /// Records that a notice went out, and how (`smtp:ADDRESS`, `outbox:PATH`, or an operator's
    /// note for one sent by hand). Only the first sending counts.
    pub async fn notice_sent(&mut self, id: i64, at: i64, via: &str) -> Result<bool, RecordsError> {
        let done = sqlx::query(sql(
            self.pg,
            "UPDATE bca_notices SET sent_ms = ?, sent_via = ?, attempts = attempts + 1, \
             last_error = NULL WHERE id = ? AND sent_ms IS NULL",
        ))
        .bind(at)
        .bind(via)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// After a location's classification changed: if a notice about it already went out, a
    /// correction is due now (again, if one was sent before).
    pub async fn correct_notice(
        &mut self,
        location_id: i64,
        now: i64,
    ) -> Result<bool, RecordsError> {
        let done = sqlx::query(sql(
            self.pg,
            "INSERT INTO bca_notices (trailer_id, kind, location_id, event_ms, due_ms, created_ms) \
             SELECT n.trailer_id, 'correction', n.location_id, ?, ?, ? FROM bca_notices n \
             WHERE n.location_id = ? AND n.kind <> 'correction' AND n.sent_ms IS NOT NULL \
             ON CONFLICT (trailer_id, kind, location_id) DO UPDATE SET \
             event_ms = excluded.event_ms, due_ms = excluded.due_ms, \
             created_ms = excluded.created_ms, sent_ms = NULL, sent_via = NULL, \
             claimed_ms = NULL, rendered_ms = NULL, last_error = NULL",
        ))
        .bind(now)
        .bind(now.saturating_add(NOTICE_DAYS * DAY_MS))
        .bind(now)
        .bind(location_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
