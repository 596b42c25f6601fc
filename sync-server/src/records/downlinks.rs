//! The downlink queue: commands for trailers, sent by the server's link while unanswered, with
//! at most a few outstanding per trailer (a hotlist of many chunks does not flood a cellular
//! link), sent again when unanswered for a while, and kept with the trailer's answer.
use super::{Records, RecordsError, is_pg, sql};
use sqlx::{AnyConnection, Row};
use trailer_wire::{Downlink, Message};

/// A downlink as listed for operators.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DownlinkView {
    pub id: u64,
    pub trailer_id: String,
    pub kind: String,
    pub summary: String,
    pub created_by: String,
    pub attempts: i64,
    /// `None` until the trailer answered.
    pub applied: Option<bool>,
    pub answer: Option<String>,
}

/// One downlink due for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub id: u64,
    pub trailer_id: String,
    pub frame: Vec<u8>,
}

impl Records {
    /// Queues a downlink for `trailer`; `build` makes it from its id. Returns the id.
    pub async fn enqueue_downlink(
        &self,
        trailer: &str,
        kind: &str,
        summary: &str,
        actor: &str,
        now: i64,
        build: impl FnOnce(u64) -> Downlink,
    ) -> Result<u64, RecordsError> {
        let mut s = self.session().await?;
        let id = s.enqueue_downlink(trailer, kind, summary, actor, now, build).await?;
        s.commit().await?;
        Ok(id)
    }

    /// Queues a downlink and its audit entry in one transaction: both or neither.
    pub async fn enqueue_audited(
        &self,
        trailer: &str,
        kind: &str,
        summary: &str,
        entry: &crate::audit::Entry,
        now: i64,
        build: impl FnOnce(u64) -> Downlink,
    ) -> Result<u64, RecordsError> {
        let mut s = self.session().await?;
        let id = s.enqueue_downlink(trailer, kind, summary, &entry.actor, now, build).await?;
        s.audit(entry).await?;
        s.commit().await?;
        Ok(id)
    }

    /// Downlinks to send now: of each trailer's first `window` unanswered ones, those never sent
    /// or sent more than `resend_ms` ago.
    pub async fn due_downlinks(
        &self,
        now: i64,
        resend_ms: i64,
        window: usize,
    ) -> Result<Vec<Due>, RecordsError> {
        // Which are due, from the small columns; the frames (up to 64 KiB a hotlist chunk) are
        // read only for those, not for every waiting downlink every second.
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT id, trailer_id, sent_at FROM downlinks WHERE answered_at IS NULL \
             ORDER BY trailer_id, id",
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        let (mut trailer, mut seen) = (String::new(), 0usize);
        for r in rows {
            let t: String = r.get(1);
            if t != trailer {
                (trailer, seen) = (t.clone(), 0);
            }
            seen += 1;
            let sent: Option<i64> = r.get(2);
            if seen <= window && sent.is_none_or(|s| now - s >= resend_ms) {
                let id: i64 = r.get(0);
                let frame = sqlx::query(sql(self.pg, "SELECT frame FROM downlinks WHERE id = ?"))
                    .bind(id)
                    .fetch_one(&self.pool)
                    .await?
                    .get(0);
                out.push(Due { id: id as u64, trailer_id: t, frame });
            }
        }
        Ok(out)
    }

    pub async fn mark_downlink_sent(&self, id: u64, now: i64) -> Result<(), RecordsError> {
        sqlx::query(sql(
            self.pg,
            "UPDATE downlinks SET sent_at = ?, attempts = attempts + 1 WHERE id = ?",
        ))
        .bind(now)
        .bind(id as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Downlinks, newest first, optionally of one trailer.
    pub async fn downlinks(
        &self,
        trailer: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DownlinkView>, RecordsError> {
        let rows = sqlx::query(sql(self.pg, "SELECT id, trailer_id, kind, summary, created_by, attempts, applied, answer \
             FROM downlinks WHERE (CAST(? AS TEXT) IS NULL OR trailer_id = ?) ORDER BY id DESC LIMIT ?"),
        )
        .bind(trailer)
        .bind(trailer)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| DownlinkView {
                id: r.get::<i64, _>(0) as u64,
                trailer_id: r.get(1),
                kind: r.get(2),
                summary: r.get(3),
                created_by: r.get(4),
                attempts: r.get(5),
                applied: r.get::<Option<i64>, _>(6).map(|a| a != 0),
                answer: r.get(7),
            })
            .collect())
    }
}

/// Queues a downlink inside the caller's transaction (the ingest of a trailer's first status,
/// an ACP addition); `build` makes it from its id. Returns the id.
pub(crate) async fn enqueue(
    c: &mut AnyConnection,
    trailer: &str,
    kind: &str,
    summary: &str,
    actor: &str,
    now: i64,
    build: impl FnOnce(u64) -> Downlink,
) -> Result<u64, RecordsError> {
    let pg = is_pg(c);
    let id: i64 = sqlx::query(sql(
        pg,
        "INSERT INTO downlinks (trailer_id, kind, summary, frame, created_at, created_by) \
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    ))
    .bind(trailer)
    .bind(kind)
    .bind(summary)
    .bind(Vec::<u8>::new())
    .bind(now)
    .bind(actor)
    .fetch_one(&mut *c)
    .await?
    .get(0);
    let frame = trailer_wire::encode(&Message::Downlink(build(id as u64)))
        .map_err(|e| RecordsError::Invalid(e.to_string()))?;
    sqlx::query(sql(pg, "UPDATE downlinks SET frame = ? WHERE id = ?"))
        .bind(frame)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(id as u64)
}

impl super::Session {
    /// Queues a downlink for `trailer` on this session; `build` makes it from its id.
    pub async fn enqueue_downlink(
        &mut self,
        trailer: &str,
        kind: &str,
        summary: &str,
        actor: &str,
        now: i64,
        build: impl FnOnce(u64) -> Downlink,
    ) -> Result<u64, RecordsError> {
        enqueue(&mut self.tx, trailer, kind, summary, actor, now, build).await
    }
}
