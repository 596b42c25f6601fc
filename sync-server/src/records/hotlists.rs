//! Hotlist versions uploaded by operators. A state file is megabytes and a console request is
//! at most 256 KiB, so an upload comes in numbered parts, kept here until the last one arrives
//! (on whichever server instance); the whole file is then checked by the trailers' own rules
//! and recorded as a version, and the caller sends it to the trailers.
use super::{Records, RecordsError, iso_time, sql};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// The most parts one upload may have (with the console's 120 KiB parts: 120 MiB).
pub const MAX_PARTS: u32 = 1024;

/// A hotlist version as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HotlistVersion {
    pub name: String,
    pub version: u64,
    pub sha256: String,
    pub entries: i64,
    pub bytes: i64,
    /// The trailers it was sent to.
    pub trailers: Vec<String>,
    pub uploaded_by: String,
    pub uploaded_at: String,
}

/// Where an upload stands after one part.
#[derive(Debug, Clone, PartialEq)]
pub enum Upload {
    /// More parts to come.
    Partial { received: u32, count: u32 },
    /// The whole file, checked, recorded and queued for the trailers.
    Complete { version: HotlistVersion, file: Vec<u8> },
}

/// One part of an upload.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    pub name: &'a str,
    pub version: u64,
    pub index: u32,
    pub count: u32,
    pub data: &'a [u8],
}

/// Queues the newest version of every list for `trailer` inside the caller's transaction (a
/// trailer first heard from after the uploads, or on a new store). Returns how many lists.
pub(crate) async fn send_lists(
    c: &mut sqlx::AnyConnection,
    trailer: &str,
    now: i64,
) -> Result<usize, RecordsError> {
    let pg = super::is_pg(c);
    let rows = sqlx::query(sql(
        pg,
        "SELECT name, version, file FROM hotlist_versions v WHERE file IS NOT NULL AND \
         version = (SELECT MAX(version) FROM hotlist_versions w WHERE w.name = v.name) \
         ORDER BY name",
    ))
    .fetch_all(&mut *c)
    .await?;
    let lists = rows.len();
    for r in rows {
        let (name, version, file): (String, i64, Vec<u8>) = (r.get(0), r.get(1), r.get(2));
        crate::downlink::queue_hotlist_on(
            c,
            trailer,
            &name,
            version as u64,
            &file,
            "sync-server",
            now,
        )
        .await?;
    }
    Ok(lists)
}

impl Records {
    /// Takes one part of an upload by `actor`. The version must be newer than the list's last.
    pub async fn hotlist_part(
        &self,
        part: Part<'_>,
        actor: &str,
        now: i64,
    ) -> Result<Upload, RecordsError> {
        let Part { name, version, index, count, data } = part;
        let invalid = |m: String| Err(RecordsError::Invalid(m));
        if !trailer_wire::topic::valid_id(name) {
            return invalid(format!("list name {name:?}: 1-64 of A-Z a-z 0-9 - _ ."));
        }
        if !(1..=MAX_PARTS).contains(&count) || index >= count {
            return invalid(format!(
                "part {index} of {count}: parts are 0..count, count 1-{MAX_PARTS}"
            ));
        }
        let version_i = i64::try_from(version)
            .map_err(|_| RecordsError::Invalid("version: too large".into()))?;
        let pg = self.pg;
        let mut tx = self.begin_write().await?;
        let latest: Option<i64> =
            sqlx::query(sql(pg, "SELECT MAX(version) FROM hotlist_versions WHERE name = ?"))
                .bind(name)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
        if let Some(latest) = latest.filter(|l| *l >= version_i) {
            return invalid(format!(
                "hotlist {name} version {version} is not newer than version {latest}"
            ));
        }
        if index == 0 {
            // The first part (re)starts the upload: whatever an abandoned one left goes.
            sqlx::query(sql(pg, "DELETE FROM hotlist_parts WHERE name = ? AND version = ?"))
                .bind(name)
                .bind(version_i)
                .execute(&mut *tx)
                .await?;
        }
        let other_count: Option<i64> = sqlx::query(sql(
            pg,
            "SELECT MAX(count) FROM hotlist_parts WHERE name = ? AND version = ? AND count <> ?",
        ))
        .bind(name)
        .bind(version_i)
        .bind(i64::from(count))
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        if let Some(other) = other_count {
            return invalid(format!(
                "hotlist {name} version {version} is being uploaded in {other} parts, not {count}"
            ));
        }
        sqlx::query(sql(
            pg,
            "INSERT INTO hotlist_parts (name, version, idx, count, data, uploaded_by) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name, version, idx) DO UPDATE SET \
             data = excluded.data, uploaded_by = excluded.uploaded_by",
        ))
        .bind(name)
        .bind(version_i)
        .bind(i64::from(index))
        .bind(i64::from(count))
        .bind(data)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        let parts = sqlx::query(sql(
            pg,
            "SELECT idx FROM hotlist_parts WHERE name = ? AND version = ? ORDER BY idx",
        ))
        .bind(name)
        .bind(version_i)
        .fetch_all(&mut *tx)
        .await?;
        if parts.len() < count as usize {
            tx.commit().await?;
            return Ok(Upload::Partial { received: parts.len() as u32, count });
        }
        let mut file = Vec::new();
        for r in sqlx::query(sql(
            pg,
            "SELECT data FROM hotlist_parts WHERE name = ? AND version = ? ORDER BY idx",
        ))
        .bind(name)
        .bind(version_i)
        .fetch_all(&mut *tx)
        .await?
        {
            file.extend_from_slice(&r.get::<Vec<u8>, _>(0));
        }
        // The parts are gone whatever the check says (a bad file is uploaded again, whole), and
        // so are those of abandoned uploads of earlier versions.
        sqlx::query(sql(pg, "DELETE FROM hotlist_parts WHERE name = ? AND version <= ?"))
            .bind(name)
            .bind(version_i)
            .execute(&mut *tx)
            .await?;
        let checked = std::str::from_utf8(&file)
            .map_err(|_| "the file is not UTF-8 text".to_string())
            .and_then(|text| {
                trailer_wire::hotlist::parse_csv(text, false).map_err(|e| e.to_string())
            });
        let entries = match checked {
            Ok(entries) => entries.len() as i64,
            Err(why) => {
                tx.commit().await?;
                return invalid(format!("hotlist {name} version {version} refused: {why}"));
            }
        };
        let trailers = super::known_trailers(&mut tx).await?;
        let sha256 = hex::encode(Sha256::digest(&file));
        sqlx::query(sql(
            pg,
            "INSERT INTO hotlist_versions (name, version, sha256, entries, bytes, trailers, \
             uploaded_by, uploaded_ms, file) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(name)
        .bind(version_i)
        .bind(&sha256)
        .bind(entries)
        .bind(file.len() as i64)
        .bind(trailers.join(","))
        .bind(actor)
        .bind(now)
        .bind(&file)
        .execute(&mut *tx)
        .await?;
        // Sent to every trailer in the same transaction: a version is recorded only with all
        // its downlinks queued.
        for t in &trailers {
            crate::downlink::queue_hotlist_on(&mut tx, t, name, version, &file, actor, now).await?;
        }
        // Only the newest version of a list is ever sent again: the older files go.
        sqlx::query(sql(
            pg,
            "UPDATE hotlist_versions SET file = NULL WHERE name = ? AND version < ? \
             AND file IS NOT NULL",
        ))
        .bind(name)
        .bind(version_i)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let version = HotlistVersion {
            name: name.into(),
            version,
            sha256,
            entries,
            bytes: file.len() as i64,
            trailers,
            uploaded_by: actor.into(),
            uploaded_at: iso_time(now),
        };
        Ok(Upload::Complete { version, file })
    }

    /// Every version uploaded, newest first.
    pub async fn hotlist_versions(&self) -> Result<Vec<HotlistVersion>, RecordsError> {
        let rows = sqlx::query(
            "SELECT name, version, sha256, entries, bytes, trailers, uploaded_by, uploaded_ms \
             FROM hotlist_versions ORDER BY uploaded_ms DESC, name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| HotlistVersion {
                name: r.get(0),
                version: r.get::<i64, _>(1) as u64,
                sha256: r.get(2),
                entries: r.get(3),
                bytes: r.get(4),
                trailers: r
                    .get::<String, _>(5)
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect(),
                uploaded_by: r.get(6),
                uploaded_at: iso_time(r.get(7)),
            })
            .collect())
    }
}
