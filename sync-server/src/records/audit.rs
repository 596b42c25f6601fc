//! The audit trail in the records: appends (serialised, each chained to the one before),
//! verification, the public view (classified fields withheld) and the figures of the biennial
//! audit report. The chain itself is [`crate::audit`].
use super::{Records, RecordsError, is_pg, iso_time, sql};
use crate::audit::{self, Entry};
use serde::Serialize;
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;

/// An audit entry as the public may see it: what kind of actor did what, when, and how many
/// records it touched. The actor's name, the purpose, the case number and the details are
/// classified (they can reveal an investigation) and withheld.
///
/// Entries of Address Confidentiality Program requests are not public at all, and the public
/// view carries no sequence number (a gap in one would show that a withheld entry was there);
/// it pages by time (`at_ms`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicAuditEntry {
    pub at_ms: i64,
    pub at: String,
    /// `cli`, `console`, `retention`, `server`, ...: the part of the actor before its name.
    pub actor_kind: String,
    pub action: String,
    pub result_count: i64,
}

/// One audit entry, whole, for an auditor (never public).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntryView {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub purpose: String,
    pub case_number: String,
    /// The request's arguments: for a plate search its legal basis (warrant or exigency).
    pub detail: String,
    pub result_count: i64,
    pub hash: String,
}

/// Audit entries over a date range, summed for the biennial audit report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct AuditSummary {
    pub entries: i64,
    /// Per action: (entries, records touched).
    pub by_action: BTreeMap<String, (i64, i64)>,
    /// Per actor: entries.
    pub by_actor: BTreeMap<String, i64>,
    /// Accesses to data (searches, lists, exports) and how many named a case number.
    pub accesses: i64,
    pub accesses_with_case: i64,
    /// Records destroyed by retention.
    pub destroyed: i64,
    /// Data released to another agency (each a dissemination).
    pub disseminations: i64,
}

/// Whether an audited action read data: the command-line names, and the console's
/// (`console.` and the command), alike.
pub fn is_access(action: &str) -> bool {
    ACCESS_ACTIONS.contains(&action.strip_prefix("console.").unwrap_or(action))
}

/// Whether an audited action released data to another agency.
pub fn is_dissemination(action: &str) -> bool {
    action.strip_prefix("console.").unwrap_or(action) == "release.fulfil"
}

/// Whether an audited action concerns the Address Confidentiality Program: never public and
/// never counted in a report (that someone asked is itself private). The public view's query
/// filters by the same rule (`action LIKE '%acp%'`).
pub fn is_acp(action: &str) -> bool {
    action.contains("acp")
}

/// Actions that read data (the rest enter, update, share or destroy it).
pub const ACCESS_ACTIONS: &[&str] = &[
    "reads.list",
    "alerts.list",
    "alerts.delivered",
    "plates.search",
    "pictures.get",
    "reads.export",
    "locations.list",
    "locations.determinations",
    "deployments.list",
    "notices.list",
    "holds.list",
    "dead_letters.list",
    "audit.report",
    "audit.export",
    "deployments.determinations",
    "deadletters.list",
    "reads.picture",
    "release.download",
];

/// Rows verified per query: the trail is checked in pages, never loaded whole.
const PAGE: i64 = 20_000;

/// One page of the trail from `from`: (seq, entry, stored previous hash, stored hash). The
/// database packs the page into one JSON value: a million rows one by one cost far more in
/// the driver than the hashing does.
async fn page(
    pool: sqlx::AnyPool,
    pg: bool,
    from: i64,
) -> Result<Vec<(i64, Entry, String, String)>, RecordsError> {
    let text = if pg {
        "SELECT CAST(json_agg(json_build_array(seq, at, actor, action, purpose, case_number, \
         detail, result_count, prev_hash, hash) ORDER BY seq) AS TEXT) FROM \
         (SELECT * FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?) AS page"
    } else {
        "SELECT json_group_array(json_array(seq, at, actor, action, purpose, case_number, \
         detail, result_count, prev_hash, hash)) FROM \
         (SELECT * FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?)"
    };
    let packed: Option<String> =
        sqlx::query(sql(pg, text)).bind(from).bind(PAGE).fetch_one(&pool).await?.get(0);
    type Row = (i64, i64, String, String, String, String, String, i64, String, String);
    let mut rows: Vec<Row> = match packed {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| RecordsError::Invalid(format!("audit page from {from}: {e}")))?,
        None => Vec::new(),
    };
    rows.sort_unstable_by_key(|r| r.0);
    Ok(rows
        .into_iter()
        .map(|r| {
            let e = Entry {
                at: r.1,
                actor: r.2,
                action: r.3,
                purpose: r.4,
                case_number: r.5,
                detail: r.6,
                result_count: r.7,
            };
            (r.0, e, r.8, r.9)
        })
        .collect())
}

/// Appends an audit entry chained to the head, on the caller's transaction: the entry commits
/// with what it records, or neither does. On PostgreSQL an advisory lock serialises appends
/// across processes until the transaction ends; a SQLite writing transaction holds the database's
/// write lock already (`BEGIN IMMEDIATE`).
pub(crate) async fn append_chained(c: &mut AnyConnection, e: &Entry) -> Result<i64, RecordsError> {
    let pg = is_pg(c);
    if pg {
        sqlx::query(sql(true, "SELECT pg_advisory_xact_lock(1324)")).execute(&mut *c).await?;
    }
    let last = sqlx::query(sql(pg, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"))
        .fetch_optional(&mut *c)
        .await?;
    let (seq, prev) = match last {
        Some(r) => (r.get::<i64, _>(0) + 1, r.get::<String, _>(1)),
        None => (1, audit::GENESIS.to_string()),
    };
    let hash = audit::chain_hash(&prev, seq, e);
    sqlx::query(sql(
        pg,
        "INSERT INTO audit (seq, at, actor, action, purpose, case_number, detail, result_count, \
         prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ))
    .bind(seq)
    .bind(e.at)
    .bind(&e.actor)
    .bind(&e.action)
    .bind(&e.purpose)
    .bind(&e.case_number)
    .bind(&e.detail)
    .bind(e.result_count)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *c)
    .await?;
    Ok(seq)
}

impl Records {
    /// Appends an audit entry, chained to the previous one. Returns its sequence number.
    pub async fn audit(&self, e: &Entry) -> Result<i64, RecordsError> {
        let _guard = self.audit_lock.lock().await;
        // IMMEDIATE: take the write lock before reading the chain's head. A deferred transaction
        // would read first and then fail at once (SQLITE_BUSY_SNAPSHOT) if another process (the
        // server, a CLI) appended meanwhile; with the lock taken first, SQLite's busy timeout
        // simply waits its turn, and no two entries can chain to the same head.
        let mut tx = if self.pg {
            self.pool.begin().await?
        } else {
            self.pool.begin_with("BEGIN IMMEDIATE").await?
        };
        let seq = append_chained(&mut tx, e).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Checks the whole chain, page by page. `Ok(n)` with the number of entries, or the first
    /// broken entry: a changed field, a missing entry (a gap in the sequence), or entries out of
    /// order all break the chain. Removing the newest entries leaves a shorter valid chain; the
    /// head [`Records::audit_head`] returns is what to compare with an earlier one.
    pub async fn audit_verify(&self) -> Result<Result<i64, String>, RecordsError> {
        let mut prev = audit::GENESIS.to_string();
        let mut expected_seq = 1i64;
        // The next page is read (and decoded) while this one is hashed.
        let mut next = Some(tokio::spawn(page(self.pool.clone(), self.pg, 1)));
        while let Some(task) = next.take() {
            let rows = task.await.map_err(|e| RecordsError::Invalid(e.to_string()))??;
            if rows.len() as i64 == PAGE {
                let from = expected_seq + PAGE;
                next = Some(tokio::spawn(page(self.pool.clone(), self.pg, from)));
            }
            for (seq, e, stored_prev, stored) in rows {
                if seq != expected_seq {
                    return Ok(Err(format!("entry {expected_seq} is missing (next is {seq})")));
                }
                if stored_prev != prev || audit::chain_hash(&prev, seq, &e) != stored {
                    return Ok(Err(format!("entry {seq} was altered or reordered")));
                }
                prev = stored;
                expected_seq += 1;
            }
        }
        Ok(Ok(expected_seq - 1))
    }

    /// The newest entry's sequence number and hash (`0` and the genesis hash when empty).
    pub async fn audit_head(&self) -> Result<(i64, String), RecordsError> {
        let row =
            sqlx::query(sql(self.pg, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"))
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map_or((0, audit::GENESIS.to_string()), |r| (r.get(0), r.get(1))))
    }

    /// The hash recorded for entry `seq`, if there is one.
    pub async fn audit_hash(&self, seq: i64) -> Result<Option<String>, RecordsError> {
        let row = sqlx::query(sql(self.pg, "SELECT hash FROM audit WHERE seq = ?"))
            .bind(seq)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// The public view of the trail: up to `limit` entries before `before` (newest first).
    pub async fn audit_public(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<PublicAuditEntry>, RecordsError> {
        // That someone asked for the Address Confidentiality Program is itself private (Minn.
        // Stat. 13.824 subd. 3(c)): no entry of it is public, not even its time. A page ends on
        // a whole millisecond, so the next (`at_ms < before`) misses none.
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT at, actor, action, result_count FROM audit \
             WHERE at < ? AND action NOT LIKE '%acp%' AND at >= COALESCE((SELECT MIN(at) FROM \
             (SELECT at FROM audit WHERE at < ? AND action NOT LIKE '%acp%' \
             ORDER BY at DESC LIMIT ?) newest), 0) ORDER BY at DESC, seq DESC",
        ))
        .bind(before.unwrap_or(i64::MAX))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let actor: String = r.get(1);
                PublicAuditEntry {
                    at_ms: r.get(0),
                    at: iso_time(r.get(0)),
                    actor_kind: actor.split(':').next().unwrap_or_default().to_string(),
                    action: r.get(2),
                    result_count: r.get(3),
                }
            })
            .collect())
    }

    /// Every audit entry from `from` to `to` (milliseconds), whole, oldest first: for an
    /// auditor's review of individual accesses (who, when, what, why, under which case and
    /// basis) and for checking each against the chain (`hash`).
    pub async fn audit_entries(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<AuditEntryView>, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT seq, at, actor, action, purpose, case_number, detail, result_count, hash \
             FROM audit WHERE at >= ? AND at < ? ORDER BY seq",
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEntryView {
                seq: r.get(0),
                at: iso_time(r.get(1)),
                actor: r.get(2),
                action: r.get(3),
                purpose: r.get(4),
                case_number: r.get(5),
                detail: r.get(6),
                result_count: r.get(7),
                hash: r.get(8),
            })
            .collect())
    }

    /// Audit entries from `from` to `to` (milliseconds), summed for the biennial report.
    pub async fn audit_summary(&self, from: i64, to: i64) -> Result<AuditSummary, RecordsError> {
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT action, actor, CASE WHEN case_number = '' THEN 0 ELSE 1 END, COUNT(*), \
             CAST(SUM(result_count) AS BIGINT) FROM audit WHERE at >= ? AND at < ? \
             GROUP BY action, actor, CASE WHEN case_number = '' THEN 0 ELSE 1 END",
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut s = AuditSummary::default();
        for r in &rows {
            let (action, actor): (String, String) = (r.get(0), r.get(1));
            if is_acp(&action) {
                continue;
            }
            let with_case = r.get::<i64, _>(2) != 0;
            let (n, touched): (i64, i64) = (r.get(3), r.get(4));
            s.entries += n;
            let e = s.by_action.entry(action.clone()).or_default();
            e.0 += n;
            e.1 += touched;
            *s.by_actor.entry(actor).or_default() += n;
            if is_access(&action) {
                s.accesses += n;
                if with_case {
                    s.accesses_with_case += n;
                }
            }
            if is_dissemination(&action) {
                s.disseminations += n;
            }
            if action == "destroy" {
                s.destroyed += touched;
            }
        }
        Ok(s)
    }
}
