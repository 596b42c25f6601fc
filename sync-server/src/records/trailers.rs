//! The trailer registry: which trailers the agency enrolled (and revoked). Enrolment is explicit
//! and written when a trailer's certificate is issued or its request signed: a certificate from
//! the agency's CA alone does not make a trailer. Ingest keeps only an enrolled trailer's
//! uplinks (others go to the dead letters), hotlists and ACP digests go only to enrolled
//! trailers, and the broker knows only enrolled trailers (see `crate::broker::access`).
use super::{Records, RecordsError, is_pg, iso_time, sql};
use serde::Serialize;
use sqlx::{AnyConnection, Row};
use std::collections::HashSet;

/// A trailer as the registry lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrailerView {
    pub trailer_id: String,
    pub enrolled_at: String,
    pub enrolled_by: String,
    pub note: String,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
    pub revoked_reason: Option<String>,
}

/// Of `ids`, those enrolled and not revoked.
pub(crate) async fn enrolled_among(
    c: &mut AnyConnection,
    ids: &[&str],
) -> Result<HashSet<String>, RecordsError> {
    let pg = is_pg(c);
    let mut out = HashSet::new();
    for id in ids {
        let row = sqlx::query(sql(
            pg,
            "SELECT 1 FROM trailers WHERE trailer_id = ? AND revoked_ms IS NULL",
        ))
        .bind(*id)
        .fetch_optional(&mut *c)
        .await?;
        if row.is_some() {
            out.insert((*id).to_string());
        }
    }
    Ok(out)
}

super::session::committed! {
    /// Enrols a trailer (true: newly).
    fn enroll_trailer(id: &str, by: &str, note: &str, now: i64) -> bool;
    /// Revokes a trailer (false: no such enrolled trailer).
    fn revoke_trailer(id: &str, by: &str, reason: &str, now: i64) -> bool;
}

impl super::Session {
    /// Enrols a trailer. A name held by a console user is refused (one name, one role at the
    /// broker); enrolling a revoked trailer again is refused too: a trailer that was stolen or
    /// retired comes back under a new id.
    pub async fn enroll_trailer(
        &mut self,
        id: &str,
        by: &str,
        note: &str,
        now: i64,
    ) -> Result<bool, RecordsError> {
        if !crate::pki::valid_name(id) {
            return Err(RecordsError::Invalid(format!(
                "trailer id {id:?}: use 1-64 of A-Z a-z 0-9 - _ . (not a reserved name)"
            )));
        }
        let user = sqlx::query(sql(self.pg, "SELECT 1 FROM console_users WHERE name = ?"))
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        if user.is_some() {
            return Err(RecordsError::Invalid(format!("{id} is a console user's name")));
        }
        let held =
            sqlx::query(sql(self.pg, "SELECT revoked_ms FROM trailers WHERE trailer_id = ?"))
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await?;
        match held.map(|r| r.get::<Option<i64>, _>(0)) {
            Some(Some(_)) => {
                return Err(RecordsError::Invalid(format!(
                    "{id} was revoked; enrol the trailer under a new id"
                )));
            }
            Some(None) => return Ok(false),
            None => {}
        }
        sqlx::query(sql(
            self.pg,
            "INSERT INTO trailers (trailer_id, enrolled_ms, enrolled_by, note) VALUES (?, ?, ?, ?)",
        ))
        .bind(id)
        .bind(now)
        .bind(by)
        .bind(note)
        .execute(&mut *self.tx)
        .await?;
        Ok(true)
    }

    /// Revokes a trailer: its uplinks are refused from now on and the broker disables it.
    pub async fn revoke_trailer(
        &mut self,
        id: &str,
        by: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, RecordsError> {
        if reason.trim().is_empty() {
            return Err(RecordsError::Invalid("say why the trailer is revoked".into()));
        }
        let done = sqlx::query(sql(
            self.pg,
            "UPDATE trailers SET revoked_ms = ?, revoked_by = ?, revoked_reason = ? \
             WHERE trailer_id = ? AND revoked_ms IS NULL",
        ))
        .bind(now)
        .bind(by)
        .bind(reason.trim())
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Records {
    /// Whether `id` is enrolled and not revoked.
    pub async fn is_enrolled(&self, id: &str) -> Result<bool, RecordsError> {
        let mut c = self.pool.acquire().await?;
        Ok(!enrolled_among(&mut c, &[id]).await?.is_empty())
    }

    /// The registry, by id.
    pub async fn trailers(&self) -> Result<Vec<TrailerView>, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT trailer_id, enrolled_ms, enrolled_by, note, revoked_ms, revoked_by, \
             revoked_reason FROM trailers ORDER BY trailer_id",
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| TrailerView {
                trailer_id: r.get(0),
                enrolled_at: iso_time(r.get(1)),
                enrolled_by: r.get(2),
                note: r.get(3),
                revoked_at: r.get::<Option<i64>, _>(4).map(iso_time),
                revoked_by: r.get(5),
                revoked_reason: r.get(6),
            })
            .collect())
    }

    /// The clients the broker should have, from the registry: enrolled trailers (disabled once
    /// revoked) and console users (disabled with the user), plus `servers`.
    pub async fn broker_clients(
        &self,
        servers: &[String],
    ) -> Result<crate::broker::access::Desired, RecordsError> {
        use crate::broker::access::Kind;
        let mut out = crate::broker::access::Desired::new();
        for s in servers {
            out.insert(s.clone(), (Kind::Server, true));
        }
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT trailer_id, CASE WHEN revoked_ms IS NULL THEN 1 ELSE 0 END FROM trailers",
        ))
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            out.insert(r.get(0), (Kind::Trailer, r.get::<i64, _>(1) == 1));
        }
        let rows = sqlx::query(sql(self.pg, "SELECT name, active FROM console_users"))
            .fetch_all(&self.pool)
            .await?;
        for r in &rows {
            out.entry(r.get(0)).or_insert((Kind::Operator, r.get::<i64, _>(1) == 1));
        }
        Ok(out)
    }
}
