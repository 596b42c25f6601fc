//! Hotlist versions uploaded by operators. A state file is megabytes and a console request is
//! at most 256 KiB, so an upload comes in numbered parts, kept here until the last one arrives
//! (on whichever server instance); the whole file is then checked by the trailers' own rules
//! and recorded as a version.
//!
//! A hotlist is a standing search (Minn. Stat. 13.824 subd. 2): the state's plate data file
//! (a list the configuration names as the state's) goes to the trailers at once; any other
//! list must be tagged to an active criminal investigation (a purpose and a case number, and
//! every entry of the active-investigation category), and waits until a second supervisor,
//! not its uploader, approves it. Versions grow in bounded steps, so no upload can make a list
//! impossible to update; any list can be withdrawn from every trailer.
use super::{Records, RecordsError, iso_time, sql};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// The most parts one upload may have (with the console's 120 KiB parts: 120 MiB).
pub const MAX_PARTS: u32 = 1024;

/// The highest first version of a list (a date and time as YYYYMMDDHHMMSS fits), and the
/// largest step from one version to the next: a list can always be updated again.
pub const MAX_FIRST_VERSION: u64 = 100_000_000_000_000;
pub const MAX_VERSION_STEP: u64 = 1_000_000_000;

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
    /// The state's plate data file (else an investigation's list).
    pub state_list: bool,
    pub purpose: String,
    pub case_number: String,
    /// `None` while it waits for a second supervisor.
    pub approved_by: Option<String>,
    pub withdrawn_at: Option<String>,
}

/// Where an upload stands after one part.
#[derive(Debug, Clone, PartialEq)]
pub enum Upload {
    /// More parts to come.
    Partial { received: u32, count: u32 },
    /// The whole file, checked, recorded and queued for the trailers.
    Complete { version: Box<HotlistVersion>, file: Vec<u8> },
}

/// One part of an upload, with the uploader's purpose and case number (required for a list
/// that is not the state's).
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    pub name: &'a str,
    pub version: u64,
    pub index: u32,
    pub count: u32,
    pub data: &'a [u8],
    pub purpose: &'a str,
    pub case_number: &'a str,
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
         approved_ms IS NOT NULL AND withdrawn_ms IS NULL AND version = (SELECT MAX(version) \
         FROM hotlist_versions w WHERE w.name = v.name AND w.approved_ms IS NOT NULL) \
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

/// Approves a version inside the caller's transaction: it is sent to every trailer (a
/// version is approved only with all its downlinks queued), the older versions' files and
/// unsent chunks go, and the audit entry names what was loaded.
async fn approve_on(
    c: &mut sqlx::AnyConnection,
    name: &str,
    version: i64,
    by: &str,
    now: i64,
) -> Result<(), RecordsError> {
    let pg = super::is_pg(c);
    let row = sqlx::query(sql(
        pg,
        "SELECT file, sha256, entries, state_list, purpose, case_number, uploaded_by \
         FROM hotlist_versions WHERE name = ? AND version = ?",
    ))
    .bind(name)
    .bind(version)
    .fetch_one(&mut *c)
    .await?;
    let file: Vec<u8> = row.get(0);
    let (sha256, entries, state): (String, i64, i64) = (row.get(1), row.get(2), row.get(3));
    let (purpose, case, uploader): (String, String, String) = (row.get(4), row.get(5), row.get(6));
    cancel_chunks(c, name, "cancelled: superseded by a newer version", now).await?;
    let trailers = super::known_trailers(c).await?;
    for t in &trailers {
        crate::downlink::queue_hotlist_on(c, t, name, version as u64, &file, by, now).await?;
    }
    sqlx::query(sql(
        pg,
        "UPDATE hotlist_versions SET approved_by = ?, approved_ms = ?, trailers = ? \
         WHERE name = ? AND version = ?",
    ))
    .bind(by)
    .bind(now)
    .bind(trailers.join(","))
    .bind(name)
    .bind(version)
    .execute(&mut *c)
    .await?;
    // Only the newest version of a list is ever sent again: the older files go.
    sqlx::query(sql(
        pg,
        "UPDATE hotlist_versions SET file = NULL WHERE name = ? AND version < ? \
         AND file IS NOT NULL",
    ))
    .bind(name)
    .bind(version)
    .execute(&mut *c)
    .await?;
    let kind = if state != 0 { "the state's plate data file" } else { "investigation list" };
    super::audit::append_chained(
        c,
        &crate::audit::Entry {
            at: now,
            actor: by.into(),
            action: "hotlist.load".into(),
            purpose: if purpose.is_empty() { "state plate data file".into() } else { purpose },
            case_number: case,
            detail: format!(
                "hotlist {name} version {version} ({kind}, {entries} entries, sha256 {sha256}) \
                 uploaded by {uploader}, approved by {by}, sent to {} trailers",
                trailers.len()
            ),
            result_count: entries,
        },
    )
    .await?;
    Ok(())
}

/// Gives up the unanswered chunks of a list (a newer version replaces them, or the list was
/// withdrawn): the frames, which hold plates, go.
async fn cancel_chunks(
    c: &mut sqlx::AnyConnection,
    name: &str,
    why: &str,
    now: i64,
) -> Result<(), RecordsError> {
    let pg = super::is_pg(c);
    sqlx::query(sql(
        pg,
        "UPDATE downlinks SET answered_at = ?, applied = 0, answer = ?, frame = ? \
         WHERE list_name = ? AND answered_at IS NULL",
    ))
    .bind(now)
    .bind(why)
    .bind(Vec::<u8>::new())
    .bind(name)
    .execute(&mut *c)
    .await?;
    Ok(())
}

impl Records {
    /// Every version uploaded, newest first.
    pub async fn hotlist_versions(&self) -> Result<Vec<HotlistVersion>, RecordsError> {
        versions(&self.pool).await
    }
}

super::session::committed! {
    /// Takes one part of an upload by `actor`. The version must be newer than the list's last.
    fn hotlist_part(part: Part<'_>, actor: &str, now: i64) -> Upload;
    /// Approves an investigation's list version uploaded by someone else: it goes to every
    /// trailer. Refused for the uploader, a version already approved or withdrawn, or one
    /// that is not the list's newest.
    fn hotlist_approve(name: &str, version: u64, by: &str, now: i64) -> HotlistVersion;
    /// Withdraws a list: every trailer drops it (and unsent chunks of it are cancelled), and
    /// no version of it is sent again. Returns the trailers told.
    fn hotlist_withdraw(name: &str, reason: &str, by: &str, now: i64) -> Vec<String>;
}

impl super::Session {
    /// Takes one part of an upload by `actor`. The version must be newer than the list's last.
    pub async fn hotlist_part(
        &mut self,
        part: Part<'_>,
        actor: &str,
        now: i64,
    ) -> Result<Upload, RecordsError> {
        let Part { name, version, index, count, data, purpose, case_number } = part;
        let invalid = |m: String| Err(RecordsError::Invalid(m));
        let state_list = self.rules.state_lists.iter().any(|s| s == name);
        if !state_list && (purpose.trim().is_empty() || case_number.trim().is_empty()) {
            return invalid(format!(
                "hotlist {name} is not the state's plate data file ({}): it may be loaded only \
                 for an active criminal investigation, with a purpose and a case number",
                self.rules.state_lists.join(", ")
            ));
        }
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
        let latest: Option<i64> =
            sqlx::query(sql(pg, "SELECT MAX(version) FROM hotlist_versions WHERE name = ?"))
                .bind(name)
                .fetch_one(&mut *self.tx)
                .await?
                .get(0);
        if let Some(latest) = latest.filter(|l| *l >= version_i) {
            return invalid(format!(
                "hotlist {name} version {version} is not newer than version {latest}"
            ));
        }
        let bound = latest.map_or(MAX_FIRST_VERSION, |l| l as u64 + MAX_VERSION_STEP);
        if version == 0 || version > bound {
            return invalid(format!(
                "hotlist {name} version {version}: use 1-{bound} (a version steps at most \
                 {MAX_VERSION_STEP} past the last, so the list can always be updated again)"
            ));
        }
        if index == 0 {
            // The first part (re)starts the upload: whatever an abandoned one left goes.
            sqlx::query(sql(pg, "DELETE FROM hotlist_parts WHERE name = ? AND version = ?"))
                .bind(name)
                .bind(version_i)
                .execute(&mut *self.tx)
                .await?;
        }
        let other_count: Option<i64> = sqlx::query(sql(
            pg,
            "SELECT MAX(count) FROM hotlist_parts WHERE name = ? AND version = ? AND count <> ?",
        ))
        .bind(name)
        .bind(version_i)
        .bind(i64::from(count))
        .fetch_one(&mut *self.tx)
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
        .execute(&mut *self.tx)
        .await?;
        let parts = sqlx::query(sql(
            pg,
            "SELECT idx FROM hotlist_parts WHERE name = ? AND version = ? ORDER BY idx",
        ))
        .bind(name)
        .bind(version_i)
        .fetch_all(&mut *self.tx)
        .await?;
        if parts.len() < count as usize {
            return Ok(Upload::Partial { received: parts.len() as u32, count });
        }
        let mut file = Vec::new();
        for r in sqlx::query(sql(
            pg,
            "SELECT data FROM hotlist_parts WHERE name = ? AND version = ? ORDER BY idx",
        ))
        .bind(name)
        .bind(version_i)
        .fetch_all(&mut *self.tx)
        .await?
        {
            file.extend_from_slice(&r.get::<Vec<u8>, _>(0));
        }
        // A whole file takes its parts' place, and those of abandoned uploads of earlier
        // versions go too. A refused file changes nothing (the session is rolled back): its
        // earlier parts wait for the next upload of that version, whose first part clears them.
        sqlx::query(sql(pg, "DELETE FROM hotlist_parts WHERE name = ? AND version <= ?"))
            .bind(name)
            .bind(version_i)
            .execute(&mut *self.tx)
            .await?;
        let checked = std::str::from_utf8(&file)
            .map_err(|_| "the file is not UTF-8 text".to_string())
            .and_then(|text| {
                trailer_wire::hotlist::parse_csv(text, false).map_err(|e| e.to_string())
            });
        let checked = checked.and_then(|entries| {
            // An investigation's list holds nothing but that investigation's plates.
            match entries.iter().find(|e| {
                !state_list && e.category != trailer_wire::HitCategory::ActiveInvestigation
            }) {
                Some(e) => Err(format!(
                    "{} is a {:?} entry: only the state's plate data file may hold other \
                     categories than active investigation",
                    e.plate, e.category
                )),
                None => Ok(entries),
            }
        });
        let entries = match checked {
            Ok(entries) => entries.len() as i64,
            Err(why) => {
                return invalid(format!("hotlist {name} version {version} refused: {why}"));
            }
        };
        let sha256 = hex::encode(Sha256::digest(&file));
        sqlx::query(sql(
            pg,
            "INSERT INTO hotlist_versions (name, version, sha256, entries, bytes, trailers, \
             uploaded_by, uploaded_ms, file, state_list, purpose, case_number) \
             VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?)",
        ))
        .bind(name)
        .bind(version_i)
        .bind(&sha256)
        .bind(entries)
        .bind(file.len() as i64)
        .bind(actor)
        .bind(now)
        .bind(&file)
        .bind(i64::from(state_list))
        .bind(purpose.trim())
        .bind(case_number.trim())
        .execute(&mut *self.tx)
        .await?;
        if state_list {
            approve_on(&mut self.tx, name, version_i, actor, now).await?;
        }
        let version = self.hotlist_version(name, version_i).await?;
        Ok(Upload::Complete { version: Box::new(version), file })
    }

    /// Approves an investigation's list version uploaded by someone else: it goes to every
    /// trailer. Refused for the uploader, a version already approved or withdrawn, or one
    /// that is not the list's newest.
    pub async fn hotlist_approve(
        &mut self,
        name: &str,
        version: u64,
        by: &str,
        now: i64,
    ) -> Result<HotlistVersion, RecordsError> {
        let version_i = i64::try_from(version)
            .map_err(|_| RecordsError::Invalid("version: too large".into()))?;
        let row = sqlx::query(sql(
            self.pg,
            "SELECT uploaded_by, approved_ms, withdrawn_ms, (SELECT MAX(version) FROM \
             hotlist_versions w WHERE w.name = v.name) FROM hotlist_versions v \
             WHERE name = ? AND version = ?",
        ))
        .bind(name)
        .bind(version_i)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or_else(|| RecordsError::Invalid(format!("no hotlist {name} version {version}")))?;
        let (uploader, approved, withdrawn, newest): (String, Option<i64>, Option<i64>, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let refuse = |m: String| Err(RecordsError::Invalid(m));
        if approved.is_some() {
            return refuse(format!("hotlist {name} version {version} is approved already"));
        }
        if withdrawn.is_some() {
            return refuse(format!("hotlist {name} version {version} was withdrawn"));
        }
        if newest != version_i {
            return refuse(format!("hotlist {name} version {version} is superseded by {newest}"));
        }
        if uploader == by {
            return refuse(format!(
                "hotlist {name} version {version} was uploaded by {by}: a second supervisor \
                 approves it"
            ));
        }
        approve_on(&mut self.tx, name, version_i, by, now).await?;
        self.hotlist_version(name, version_i).await
    }

    /// Withdraws a list: every trailer drops it (and unsent chunks of it are cancelled), and
    /// no version of it is sent again. Returns the trailers told.
    pub async fn hotlist_withdraw(
        &mut self,
        name: &str,
        reason: &str,
        by: &str,
        now: i64,
    ) -> Result<Vec<String>, RecordsError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(RecordsError::Invalid(
                "reason: why the list is withdrawn, up to 500 characters".into(),
            ));
        }
        let done = sqlx::query(sql(
            self.pg,
            "UPDATE hotlist_versions SET withdrawn_ms = ?, withdrawn_by = ?, withdraw_reason = ?, \
             file = NULL WHERE name = ? AND withdrawn_ms IS NULL",
        ))
        .bind(now)
        .bind(by)
        .bind(reason)
        .bind(name)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(RecordsError::Invalid(format!("no hotlist {name} in use")));
        }
        cancel_chunks(&mut self.tx, name, "cancelled: the list was withdrawn", now).await?;
        let through: i64 =
            sqlx::query(sql(self.pg, "SELECT MAX(version) FROM hotlist_versions WHERE name = ?"))
                .bind(name)
                .fetch_one(&mut *self.tx)
                .await?
                .get(0);
        let trailers = super::known_trailers(&mut self.tx).await?;
        for t in &trailers {
            let list_name = name.to_string();
            let through_version = through as u64;
            super::downlinks::enqueue(
                &mut self.tx,
                t,
                "hotlist.withdraw",
                &format!("withdraw hotlist {name}"),
                by,
                now,
                |downlink_id| trailer_wire::Downlink::HotlistWithdraw {
                    downlink_id,
                    list_name,
                    through_version,
                },
            )
            .await?;
        }
        super::audit::append_chained(
            &mut self.tx,
            &crate::audit::Entry {
                at: now,
                actor: by.into(),
                action: "hotlist.withdraw".into(),
                purpose: reason.into(),
                case_number: String::new(),
                detail: format!("hotlist {name} withdrawn from {} trailers", trailers.len()),
                result_count: trailers.len() as i64,
            },
        )
        .await?;
        Ok(trailers)
    }

    async fn hotlist_version(
        &mut self,
        name: &str,
        version: i64,
    ) -> Result<HotlistVersion, RecordsError> {
        versions(&mut *self.tx)
            .await?
            .into_iter()
            .find(|v| v.name == name && v.version as i64 == version)
            .ok_or_else(|| RecordsError::Invalid(format!("no hotlist {name} version {version}")))
    }
}

/// Every version uploaded, newest first, read on `e` (the pool, or a session's transaction).
async fn versions<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    e: E,
) -> Result<Vec<HotlistVersion>, RecordsError> {
    let rows = sqlx::query(
        "SELECT name, version, sha256, entries, bytes, trailers, uploaded_by, uploaded_ms, \
         state_list, purpose, case_number, approved_by, withdrawn_ms \
         FROM hotlist_versions ORDER BY uploaded_ms DESC, name",
    )
    .fetch_all(e)
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
            state_list: r.get::<i64, _>(8) != 0,
            purpose: r.get(9),
            case_number: r.get(10),
            approved_by: r.get(11),
            withdrawn_at: r.get::<Option<i64>, _>(12).map(iso_time),
        })
        .collect())
}
