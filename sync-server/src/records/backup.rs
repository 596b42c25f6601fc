//! Backups that age out like the data they hold (Minn. Stat. 13.824 subd. 3: every copy of a
//! read counts). A backup is one file in the agency's backup folder with a manifest beside it
//! that says when it must be gone: the moment its oldest unheld read (or alert, or refused
//! message) passes retention. The retention duty and every `backup` run destroy the backups
//! whose day has come, so a backup never holds a read past its days.
//!
//! SQLite is copied by `VACUUM INTO`, which writes only live rows (what retention destroyed is
//! not on a free page of the copy; the live file has `secure_delete` on); PostgreSQL by
//! `pg_dump`, whose dump holds rows, not pages, so nothing deleted survives in it either.
use super::{Records, RecordsError, iso_time, sql};
use crate::audit::Entry;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::path::{Path, PathBuf};

/// The manifest beside each backup file (`NAME.json` for `NAME`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The backup's file name, in the same folder.
    pub file: String,
    pub created_ms: i64,
    pub sha256: String,
    pub bytes: u64,
    pub reads: i64,
    /// When the oldest unheld item it holds passes retention: the backup is destroyed then.
    pub destroy_by_ms: i64,
}

/// A manifest's file name for a backup's.
fn manifest_of(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_os_string();
    name.push(".json");
    PathBuf::from(name)
}

fn io(what: &Path) -> impl Fn(std::io::Error) -> RecordsError + '_ {
    move |e| RecordsError::Invalid(format!("backup {}: {e}", what.display()))
}

impl Records {
    /// The collection time of the oldest item retention will destroy (a read, an alert, a
    /// refused message), if any.
    async fn oldest_unheld(&self) -> Result<Option<i64>, RecordsError> {
        let mut oldest: Option<i64> = None;
        for text in [
            concat!("SELECT MIN(r.first_seen) FROM reads r WHERE 1 = 1", unheld!("r")),
            concat!("SELECT MIN(a.seen_at) FROM alerts a WHERE 1 = 1", unheld!("a")),
            "SELECT MIN(received_at) FROM dead_letters",
        ] {
            let min: Option<i64> = sqlx::query(text).fetch_one(&self.pool).await?.get(0);
            oldest = match (oldest, min) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(oldest)
    }

    /// Writes a backup of the whole database into `dir` and destroys the backups there whose
    /// day has come. Both are audited.
    pub async fn backup(
        &self,
        dir: &Path,
        now: i64,
        retention_days: u32,
    ) -> Result<(Manifest, Vec<String>), RecordsError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let destroyed = self.prune_backups(dir, now).await?;
        let stamp = iso_time(now).replace([':', '-'], "").replace(".000", "");
        let name = format!("trailer-alpr-{stamp}.{}", if self.pg { "pgdump" } else { "sqlite" });
        let file = dir.join(&name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        // What the copy holds is read in the same moment as the copy is made, near enough:
        // retention only removes, so the oldest item can only be younger in the copy.
        let oldest = self.oldest_unheld().await?;
        let reads: i64 =
            sqlx::query("SELECT COUNT(*) FROM reads").fetch_one(&self.pool).await?.get(0);
        if self.pg {
            let out = tokio::process::Command::new("pg_dump")
                .arg("--format=custom")
                .arg("--file")
                .arg(&tmp)
                .arg("--dbname")
                .arg(&*self.url)
                .output()
                .await
                .map_err(|e| {
                    RecordsError::Invalid(format!("pg_dump: {e} (is postgresql-client installed?)"))
                })?;
            if !out.status.success() {
                return Err(RecordsError::Invalid(format!(
                    "pg_dump failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        } else {
            let target = tmp.to_str().ok_or_else(|| {
                RecordsError::Invalid(format!("backup folder {}: not UTF-8", dir.display()))
            })?;
            sqlx::query(sql(false, "VACUUM INTO ?")).bind(target).execute(&self.pool).await?;
        }
        // The digest is streamed: a backup may be larger than memory.
        let (sha256, bytes) = {
            let mut f = std::fs::File::open(&tmp).map_err(io(&tmp))?;
            let mut hash = Sha256::new();
            let bytes = std::io::copy(&mut f, &mut hash).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
            (hex::encode(hash.finalize()), bytes)
        };
        crate::atomic::rename(&tmp, &file).map_err(io(&file))?;
        let manifest = Manifest {
            file: name.clone(),
            created_ms: now,
            sha256,
            bytes,
            reads,
            destroy_by_ms: oldest.unwrap_or(now) + i64::from(retention_days) * 86_400_000,
        };
        let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        let m = manifest_of(&file);
        crate::atomic::write(&m, &json).map_err(io(&m))?;
        self.audit(&Entry {
            at: now,
            actor: "backup".into(),
            action: "backup".into(),
            purpose: "backup of the records".into(),
            case_number: String::new(),
            detail: format!(
                "{name}: {reads} reads, to be destroyed by {}",
                iso_time(manifest.destroy_by_ms)
            ),
            result_count: reads,
        })
        .await?;
        Ok((manifest, destroyed))
    }

    /// Destroys every backup in `dir` whose manifest's day has come (and copies a crash left
    /// half-written). A backup without a manifest is not ours and stays. Returns the names.
    pub async fn prune_backups(&self, dir: &Path, now: i64) -> Result<Vec<String>, RecordsError> {
        let mut gone = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(gone),
            Err(e) => return Err(io(dir)(e)),
        };
        for e in entries {
            let path = e.map_err(io(dir))?.path();
            let name =
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.starts_with(".trailer-alpr-") && name.ends_with(".tmp") {
                std::fs::remove_file(&path).map_err(io(&path))?;
                continue;
            }
            if !(name.starts_with("trailer-alpr-") && name.ends_with(".json")) {
                continue;
            }
            let Some(m) =
                std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
            else {
                tracing::warn!(manifest = %path.display(), "not a backup manifest; left alone");
                continue;
            };
            if m.destroy_by_ms > now || m.file.contains('/') {
                continue;
            }
            match std::fs::remove_file(dir.join(&m.file)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(dir)(e)),
                _ => {}
            }
            std::fs::remove_file(&path).map_err(io(&path))?;
            gone.push(m.file);
        }
        if !gone.is_empty() {
            gone.sort();
            self.audit(&Entry {
                at: now,
                actor: "retention".into(),
                action: "backup.destroy".into(),
                purpose: "retention: a backup holding data past its days".into(),
                case_number: String::new(),
                detail: gone.join(", "),
                result_count: gone.len() as i64,
            })
            .await?;
        }
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::{on_both, read_at};
    use crate::records::write;

    const DAY: i64 = 86_400_000;

    /// A backup holds what the database holds, says when it must go, and goes then (by the
    /// next backup run or the retention duty), not before; a backup taken after retention ran
    /// holds none of the destroyed reads, not even on a free page.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn backups_are_destroyed_when_their_oldest_read_passes_retention() {
        on_both("backup", backups).await;
    }

    async fn backups(url: String) {
        let db = Records::open(&url).await.expect("open");
        let dir = tempfile::tempdir().expect("tempdir");
        let now = 1_790_000_000_000;
        let (old, young) = (now - 50 * DAY, now - 5 * DAY);
        let mut tx = db.begin().await.expect("begin");
        let reads = [read_at(1, "OLD111", old), read_at(2, "NEW222", young)];
        write::reads(&mut tx, db.rules(), "t1", &reads, now).await.expect("reads");
        tx.commit().await.expect("commit");

        let (first, destroyed) = db.backup(dir.path(), now, 60).await.expect("backup");
        assert!(destroyed.is_empty());
        assert_eq!(first.reads, 2);
        assert_eq!(first.destroy_by_ms, old + 60 * DAY, "the oldest read decides");
        let copy = std::fs::read(dir.path().join(&first.file)).expect("backup file");
        assert_eq!(hex::encode(Sha256::digest(&copy)), first.sha256);
        if !db.pg {
            let found = |plate: &[u8]| copy.windows(plate.len()).any(|w| w == plate);
            assert!(found(b"OLD111") && found(b"NEW222"), "the copy holds the reads");
        }

        // A day before its day it stays; on its day the retention duty's prune takes it.
        assert!(db.prune_backups(dir.path(), old + 60 * DAY - 1).await.expect("prune").is_empty());
        db.purge(old + 60 * DAY + 1, 60).await.expect("purge");
        let later = old + 60 * DAY + 1;
        let (second, destroyed) = db.backup(dir.path(), later, 60).await.expect("backup");
        assert_eq!(destroyed, vec![first.file.clone()]);
        assert!(!dir.path().join(&first.file).exists());
        assert_eq!(second.reads, 1);
        assert_eq!(second.destroy_by_ms, young + 60 * DAY);
        if !db.pg {
            let copy = std::fs::read(dir.path().join(&second.file)).expect("backup file");
            let found = |plate: &[u8]| copy.windows(plate.len()).any(|w| w == plate);
            assert!(!found(b"OLD111"), "a destroyed read is nowhere in a later backup");
            assert!(found(b"NEW222"));
        }
        let actions: Vec<String> =
            sqlx::query("SELECT action FROM audit WHERE action LIKE 'backup%' ORDER BY seq")
                .fetch_all(db.pool())
                .await
                .expect("audit")
                .iter()
                .map(|r| r.get(0))
                .collect();
        assert_eq!(actions, ["backup", "backup.destroy", "backup"]);
    }
}
