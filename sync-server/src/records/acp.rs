//! Address Confidentiality Program participants (Minn. Stat. 13.824 subd. 3(d) points to the
//! program): their plates are kept only as digests under the agency's ACP key, their existing
//! reads are destroyed at once, their future reads are dropped as they arrive, and every
//! trailer is sent the digests so it destroys its own and stops collecting them.
use super::downlinks::enqueue;
use super::{Records, RecordsError, Rules, is_pg, sql};
use sqlx::{AnyConnection, Row};
use std::collections::HashSet;
use trailer_wire::acp::{acp_digest, acp_probe, key_fingerprint, plate_forms};
use trailer_wire::{Downlink, ReadMeta};

/// ` AND NOT EXISTS (...)`: no active-investigation hold that is not released names the row
/// `$x` (a table alias with `trailer_id` and `read_id`).
macro_rules! investigated {
    ($x:literal) => {
        concat!(
            " AND NOT EXISTS (SELECT 1 FROM held_reads h JOIN holds d ON d.id = h.hold_id \
             WHERE d.released_ms IS NULL AND d.kind = 'active-investigation' AND h.trailer_id = ",
            $x,
            ".trailer_id AND h.read_id = ",
            $x,
            ".read_id)"
        )
    };
}

/// A participant's alerts and reads that no active-investigation hold names.
const ALERTS_OF_PLATE: &str = concat!(
    "DELETE FROM alerts WHERE (trailer_id, alert_id) IN (SELECT a.trailer_id, a.alert_id \
     FROM alerts a WHERE a.plate = ?",
    investigated!("a"),
    ")"
);
const READS_OF_PLATE: &str = concat!(
    "DELETE FROM reads WHERE (trailer_id, read_id) IN (SELECT r.trailer_id, r.read_id \
     FROM reads r WHERE r.plate = ?",
    investigated!("r"),
    ")"
);

/// Runs one of the deletions above for a plate form; how many rows went.
async fn destroy_unheld(
    c: &mut AnyConnection,
    pg: bool,
    text: &'static str,
    plate: &str,
) -> Result<u64, RecordsError> {
    Ok(sqlx::query(sql(pg, text)).bind(plate).execute(&mut *c).await?.rows_affected())
}

/// What adding a participant did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AcpAdded {
    /// Digests new to the list (one per form of the plate a trailer may read).
    pub digests: usize,
    pub reads_destroyed: u64,
    pub pictures_destroyed: u64,
    pub alerts_destroyed: u64,
    /// The downlinks that carry the digests, one per trailer the server knows.
    pub trailers: Vec<String>,
}

/// The PostgreSQL advisory lock between adding a participant (exclusive) and ingesting reads
/// (shared): a batch that read the list before an addition committed would otherwise store a
/// participant's read after the addition destroyed the others. SQLite's single writer orders
/// them already.
const ACP_LOCK: i64 = 1326;

fn key(rules: &Rules) -> Result<&[u8], RecordsError> {
    rules.acp_key.as_deref().ok_or_else(|| {
        RecordsError::Invalid(
            "no ACP key: set acp.key_file (the same key as the trailers' store.acp_key_file)"
                .into(),
        )
    })
}

/// Every slow digest on the list (a few hundred at most: one agency's participants), as the
/// trailers keep them.
async fn all(c: &mut AnyConnection) -> Result<Vec<[u8; 32]>, RecordsError> {
    column(c, "SELECT digest FROM acp_digests ORDER BY digest").await
}

/// Every fast digest on the list, to match ingested reads with.
async fn all_probes(c: &mut AnyConnection) -> Result<Vec<[u8; 32]>, RecordsError> {
    column(c, "SELECT probe FROM acp_digests WHERE probe <> '' ORDER BY probe").await
}

async fn column(c: &mut AnyConnection, query: &'static str) -> Result<Vec<[u8; 32]>, RecordsError> {
    let pg = is_pg(c);
    let rows = sqlx::query(sql(pg, query)).fetch_all(&mut *c).await?;
    Ok(rows
        .iter()
        .filter_map(|r| hex::decode(r.get::<String, _>(0)).ok()?.try_into().ok())
        .collect())
}

/// Queues the whole list for `trailer` inside the caller's transaction (a trailer seen for the
/// first time, or on a new store): the slow digests only (the trailer finds any stored read of
/// them by the slow digest of each plate it holds). Nothing when the list is empty or there is
/// no key. Returns how many digests.
pub(crate) async fn send_list(
    c: &mut AnyConnection,
    rules: &Rules,
    trailer: &str,
    now: i64,
) -> Result<usize, RecordsError> {
    let Some(key) = rules.acp_key.as_deref() else { return Ok(0) };
    let key_fingerprint = key_fingerprint(key);
    let digests = all(c).await?;
    let n = digests.len();
    if !digests.is_empty() {
        let summary = format!("add {} ACP digests (the whole list)", digests.len());
        enqueue(c, trailer, "acp.add", &summary, "sync-server", now, |downlink_id| {
            Downlink::AcpAdd { downlink_id, key_fingerprint, hashes: digests, probes: Vec::new() }
        })
        .await?;
    }
    Ok(n)
}

/// The reads of `batch` that are of ACP participants, as indexes into it. Each is remembered as
/// dropped, with any picture of it already here destroyed; the caller acknowledges them but
/// stores nothing of them.
pub(crate) async fn drop_participants(
    c: &mut AnyConnection,
    rules: &Rules,
    trailer: &str,
    batch: &[ReadMeta],
    now: i64,
) -> Result<HashSet<usize>, RecordsError> {
    let Some(key) = rules.acp_key.as_deref() else {
        return Ok(HashSet::new());
    };
    let pg = is_pg(c);
    if pg {
        sqlx::query(sql(pg, "SELECT pg_advisory_xact_lock_shared(?)"))
            .bind(ACP_LOCK)
            .execute(&mut *c)
            .await?;
    }
    let list: HashSet<[u8; 32]> = all_probes(c).await?.into_iter().collect();
    if list.is_empty() {
        return Ok(HashSet::new());
    }
    let mut dropped = HashSet::new();
    for (i, r) in batch.iter().enumerate() {
        if list.contains(&acp_probe(key, &r.plate)) {
            forget(c, pg, trailer, r.read_id as i64, now).await?;
            dropped.insert(i);
        }
    }
    Ok(dropped)
}

/// Destroys what is here of one read and remembers its ids, so a late picture is refused.
async fn forget(
    c: &mut AnyConnection,
    pg: bool,
    trailer: &str,
    read_id: i64,
    now: i64,
) -> Result<u64, RecordsError> {
    let pictures =
        sqlx::query(sql(pg, "DELETE FROM pictures WHERE trailer_id = ? AND read_id = ?"))
            .bind(trailer)
            .bind(read_id)
            .execute(&mut *c)
            .await?
            .rows_affected();
    sqlx::query(sql(
        pg,
        "INSERT INTO acp_dropped (trailer_id, read_id, dropped_ms) VALUES (?, ?, ?) \
         ON CONFLICT DO NOTHING",
    ))
    .bind(trailer)
    .bind(read_id)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(pictures)
}

/// Whether a read was dropped as ACP (its late picture is refused).
pub(crate) async fn was_dropped(
    c: &mut AnyConnection,
    trailer: &str,
    read_id: u64,
) -> Result<bool, RecordsError> {
    let pg = is_pg(c);
    Ok(sqlx::query(sql(pg, "SELECT 1 FROM acp_dropped WHERE trailer_id = ? AND read_id = ?"))
        .bind(trailer)
        .bind(read_id as i64)
        .fetch_optional(&mut *c)
        .await?
        .is_some())
}

impl Records {}

super::session::committed! {
    /// Adds a participant's plate (as typed) under `reference` (the program's request, never a
    /// name): the digests go on the list, every read, picture and alert of the plate here is
    /// destroyed, and each known trailer is sent the digests. The plate itself is kept nowhere.
    fn acp_add(plate: &str, reference: &str, actor: &str, now: i64) -> AcpAdded;
}

impl super::Session {
    /// Adds a participant's plate (as typed) under `reference` (the program's request, never a
    /// name): the digests go on the list, every read, picture and alert of the plate here is
    /// destroyed, and each known trailer is sent the digests. The plate itself is kept nowhere.
    pub async fn acp_add(
        &mut self,
        plate: &str,
        reference: &str,
        actor: &str,
        now: i64,
    ) -> Result<AcpAdded, RecordsError> {
        let key = key(&self.rules)?.to_vec();
        let forms = plate_forms(plate);
        if forms[0].len() < 2 || forms[0].len() > 10 {
            return Err(RecordsError::Invalid("plate: 2-10 letters and digits".into()));
        }
        if reference.trim().is_empty() {
            return Err(RecordsError::Invalid(
                "reference: the program's request number (never the participant's name)".into(),
            ));
        }
        let pg = self.pg;
        if pg {
            sqlx::query(sql(pg, "SELECT pg_advisory_xact_lock(?)"))
                .bind(ACP_LOCK)
                .execute(&mut *self.tx)
                .await?;
        }
        let mut added = AcpAdded::default();
        let (mut digests, mut probes) = (Vec::new(), Vec::new());
        for form in &forms {
            let (digest, probe) = (acp_digest(&key, form), acp_probe(&key, form));
            digests.push(digest);
            probes.push(probe);
            added.digests += sqlx::query(sql(
                pg,
                "INSERT INTO acp_digests (digest, probe, added_ms, added_by, reference) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            ))
            .bind(hex::encode(digest))
            .bind(hex::encode(probe))
            .bind(now)
            .bind(actor)
            .bind(reference)
            .execute(&mut *self.tx)
            .await?
            .rows_affected() as usize;
            // One rule on both sides (the trailer's store follows it too): the participant's
            // reads go unless an active-investigation hold names them (subd. 3(c): "unless the
            // data are active criminal investigative data").
            let reads = sqlx::query(sql(
                pg,
                concat!(
                    "SELECT r.trailer_id, r.read_id FROM reads r WHERE r.plate = ?",
                    investigated!("r")
                ),
            ))
            .bind(form)
            .fetch_all(&mut *self.tx)
            .await?;
            for r in &reads {
                let (trailer, read_id): (String, i64) = (r.get(0), r.get(1));
                added.pictures_destroyed +=
                    forget(&mut self.tx, pg, &trailer, read_id, now).await?;
            }
            added.alerts_destroyed +=
                destroy_unheld(&mut self.tx, pg, ALERTS_OF_PLATE, form).await?;
            added.reads_destroyed += destroy_unheld(&mut self.tx, pg, READS_OF_PLATE, form).await?;
        }
        let trailers = super::known_trailers(&mut self.tx).await?;
        let key_fingerprint = key_fingerprint(&key);
        for t in &trailers {
            let summary = format!("add {} ACP digests (reference {reference})", digests.len());
            let (hashes, probes) = (digests.clone(), probes.clone());
            enqueue(&mut self.tx, t, "acp.add", &summary, actor, now, |downlink_id| {
                Downlink::AcpAdd { downlink_id, key_fingerprint, hashes, probes }
            })
            .await?;
        }
        added.trailers = trailers;
        Ok(added)
    }
}
