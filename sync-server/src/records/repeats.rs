//! Records that come again under an id the server already holds.
//!
//! A trailer sends an item until the server's ack reaches it, so the same record arrives again
//! after a lost ack, a reconnect or a restart: a **resend**, stored once and counted. The same id
//! with other content is a **collision**: it should not happen (ids are unique for the life of a
//! trailer id), and if it does (a spare unit beside the original with a clock set back, a
//! damaged store) the record is neither dropped nor allowed to overwrite the one held. It is
//! kept in the dead letters with its reason, recorded once per content in `collisions` (a
//! colliding record sent again is a resend of it), counted per trailer for health, and
//! acknowledged so that it does not block the trailer's outbox. Pictures of a colliding read
//! follow it to the dead letters: the read they would join is another one.
use super::{RecordsError, is_pg, sql};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

/// What the server made of a record it received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub resends: u64,
    pub collisions: u64,
    /// Records refused for a time no clock could have stamped (see `write::implausible`).
    pub clock_refused: u64,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.resends += other.resends;
        self.collisions += other.collisions;
        self.clock_refused += other.clock_refused;
    }
}

/// The digest that tells two contents under one id apart (hex of 16 bytes of SHA-256).
pub(crate) fn digest(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..16])
}

/// One colliding record: what it is, and the message that carried it alone.
pub(crate) struct Collision<'a> {
    pub trailer: &'a str,
    /// `read`, `alert`, `period`, `event` or `picture`.
    pub kind: &'static str,
    pub item_id: u64,
    pub content: &'a [u8],
    pub topic: String,
    pub reason: String,
}

/// Keeps a colliding record in the dead letters (once per content) and says how to count it.
pub(crate) async fn collide(
    c: &mut AnyConnection,
    x: Collision<'_>,
    now: i64,
) -> Result<Tally, RecordsError> {
    let pg = is_pg(c);
    let fresh = sqlx::query(sql(
        pg,
        "INSERT INTO collisions (trailer_id, kind, item_id, digest, at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT DO NOTHING",
    ))
    .bind(x.trailer)
    .bind(x.kind)
    .bind(x.item_id as i64)
    .bind(digest(x.content))
    .bind(now)
    .execute(&mut *c)
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        return Ok(Tally { resends: 1, ..Tally::default() });
    }
    tracing::warn!(trailer = x.trailer, kind = x.kind, id = x.item_id, reason = %x.reason,
        "id collision: kept as a dead letter, not stored over the record held");
    super::dead_letter_on(c, &x.topic, &x.reason, x.content, now).await?;
    Ok(Tally { collisions: 1, ..Tally::default() })
}

/// Whether read `read_id` of `trailer` collided (its pictures and alerts are not its own).
pub(crate) async fn read_collided(
    c: &mut AnyConnection,
    trailer: &str,
    read_id: u64,
) -> Result<bool, RecordsError> {
    let pg = is_pg(c);
    Ok(sqlx::query(sql(
        pg,
        "SELECT 1 FROM collisions WHERE trailer_id = ? AND kind = 'read' AND item_id = ? LIMIT 1",
    ))
    .bind(trailer)
    .bind(read_id as i64)
    .fetch_optional(&mut *c)
    .await?
    .is_some())
}

/// Adds a message's resends and collisions to the trailer's counts.
pub(crate) async fn count(
    c: &mut AnyConnection,
    trailer: &str,
    t: Tally,
    now: i64,
) -> Result<(), RecordsError> {
    if t == Tally::default() {
        return Ok(());
    }
    let pg = is_pg(c);
    sqlx::query(sql(
        pg,
        "INSERT INTO ingest_counts (trailer_id, resends, collisions, last_collision_ms, \
         clock_refused) VALUES (?, ?, ?, ?, ?) ON CONFLICT (trailer_id) DO UPDATE SET \
         resends = ingest_counts.resends + excluded.resends, \
         collisions = ingest_counts.collisions + excluded.collisions, \
         clock_refused = ingest_counts.clock_refused + excluded.clock_refused, \
         last_collision_ms = COALESCE(excluded.last_collision_ms, ingest_counts.last_collision_ms)",
    ))
    .bind(trailer)
    .bind(t.resends as i64)
    .bind(t.collisions as i64)
    .bind((t.collisions > 0).then_some(now))
    .bind(t.clock_refused as i64)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// A trailer's counts: (resends, collisions).
#[cfg(test)]
pub(crate) async fn counts(
    c: &mut AnyConnection,
    trailer: &str,
) -> Result<(i64, i64), RecordsError> {
    use sqlx::Row;
    let pg = is_pg(c);
    let row =
        sqlx::query(sql(pg, "SELECT resends, collisions FROM ingest_counts WHERE trailer_id = ?"))
            .bind(trailer)
            .fetch_optional(&mut *c)
            .await?;
    Ok(row.map_or((0, 0), |r| (r.get(0), r.get(1))))
}
