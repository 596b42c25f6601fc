//! Data another agency shares with us (Minn. Stat. 13.824 subd. 4): a release bundle in the
//! layout our own releases use (`manifest.json` with each file's SHA-256, `reads.json`, the
//! pictures). Its reads are kept under the same rules as ours: retention counts from their
//! collection (a read already past it is not taken), an ACP participant's is dropped, holds
//! apply, every access is audited; each is marked with the agency it came from. They are not
//! our collection, so they are in no public log of use and move no location of ours.
use super::{Records, RecordsError, sql};
use crate::audit::Entry;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// What an import took.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Imported {
    pub reads: u64,
    pub pictures: u64,
    /// Past retention already (collected more than the retention period ago): not taken.
    pub expired: u64,
    /// An ACP participant's: not taken.
    pub participants: u64,
    /// Already here from an earlier import of the same bundle.
    pub duplicates: u64,
}

/// Who shared the data and why we keep it.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    pub agency: &'a str,
    pub purpose: &'a str,
    pub case_number: &'a str,
    pub retention_days: u32,
}

#[derive(Deserialize)]
struct ManifestFile {
    name: String,
    sha256: String,
}

#[derive(Deserialize)]
struct Manifest {
    files: Vec<ManifestFile>,
}

#[derive(Deserialize)]
struct SharedRead {
    trailer: String,
    read_id: u64,
    plate: String,
    confidence: f64,
    first_seen: String,
    best_seen: String,
    lat: f64,
    lon: f64,
    #[serde(default)]
    pictures: Vec<String>,
}

fn refuse(m: String) -> RecordsError {
    RecordsError::Invalid(m)
}

fn ms(t: &str) -> Result<i64, RecordsError> {
    t.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| refuse(format!("time {t:?}: {e}")))
}

/// Our name for another agency's reader: its id, prefixed by the agency's, so it can never be
/// taken for one of our trailers.
fn reader_id(agency: &str, trailer: &str) -> String {
    let slug: String = agency
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    format!("ext-{}/{trailer}", slug.trim_matches('-'))
}

impl Records {
    /// Imports a bundle another agency sent: every file checked against its manifest first
    /// (nothing is taken from a bundle that does not match), then its reads and pictures under
    /// our rules. Audited as `release.import`.
    pub async fn import_shared(
        &self,
        dir: &Path,
        source: &Source<'_>,
        by: &str,
        now: i64,
    ) -> Result<Imported, RecordsError> {
        if source.agency.trim().is_empty()
            || source.purpose.trim().is_empty()
            || source.case_number.trim().is_empty()
        {
            return Err(refuse(
                "shared data is kept for a stated purpose and case, from a named agency".into(),
            ));
        }
        let read =
            |name: &str| std::fs::read(dir.join(name)).map_err(|e| refuse(format!("{name}: {e}")));
        let manifest: Manifest = serde_json::from_slice(&read("manifest.json")?)
            .map_err(|e| refuse(format!("manifest.json: {e}")))?;
        let mut checked = std::collections::HashSet::new();
        for f in &manifest.files {
            if f.name.contains("..") || f.name.starts_with('/') {
                return Err(refuse(format!("manifest names {:?} outside the bundle", f.name)));
            }
            let digest = hex::encode(Sha256::digest(read(&f.name)?));
            if digest != f.sha256 {
                return Err(refuse(format!("{} does not match its manifest digest", f.name)));
            }
            checked.insert(f.name.clone());
        }
        if !checked.contains("reads.json") {
            return Err(refuse("the manifest does not list reads.json".into()));
        }
        let shared: Vec<SharedRead> = serde_json::from_slice(&read("reads.json")?)
            .map_err(|e| refuse(format!("reads.json: {e}")))?;
        let cutoff = now - i64::from(source.retention_days) * 86_400_000;
        let mut done = Imported::default();
        let mut tx = self.begin_write().await?;
        for r in &shared {
            if !trailer_wire::text::is_plate(&r.plate) {
                return Err(refuse(format!("read {}: {:?} is not a plate", r.read_id, r.plate)));
            }
            let (first, best) = (ms(&r.first_seen)?, ms(&r.best_seen)?);
            if first > now + super::write::CLOCK_AHEAD_MS {
                return Err(refuse(format!("read {} is stamped in the future", r.read_id)));
            }
            if first < cutoff {
                done.expired += 1;
                continue;
            }
            let reader = reader_id(source.agency, &trailer_wire::text::clean(&r.trailer, 64));
            let meta = trailer_wire::ReadMeta {
                read_id: r.read_id,
                camera_id: String::new(),
                plate: r.plate.clone(),
                confidence_pm: (r.confidence.clamp(0.0, 1.0) * 1000.0).round() as u16,
                first_seen: first,
                best_seen: best,
                position: trailer_wire::Position::from_degrees(
                    r.lat,
                    r.lon,
                    trailer_wire::FixQuality::Configured,
                ),
                plate_box: [0; 4],
                pictures: trailer_wire::PictureSet::default(),
            };
            let meta = std::slice::from_ref(&meta);
            let rules = self.rules.as_ref();
            if !super::acp::drop_participants(&mut tx, rules, &reader, meta, now).await?.is_empty()
            {
                done.participants += 1;
                continue;
            }
            let inserted = sqlx::query(sql(
                self.pg,
                "INSERT INTO reads (trailer_id, read_id, camera_id, plate, confidence, \
                 first_seen, best_seen, lat, lon, fix, plate_box, has_crop, has_context, \
                 received_at, period_id, source_agency) \
                 VALUES (?, ?, '', ?, ?, ?, ?, ?, ?, 'configured', '', ?, ?, ?, 0, ?) \
                 ON CONFLICT DO NOTHING",
            ))
            .bind(&reader)
            .bind(r.read_id as i64)
            .bind(&r.plate)
            .bind(r.confidence)
            .bind(first)
            .bind(best)
            .bind(r.lat)
            .bind(r.lon)
            .bind(i64::from(r.pictures.iter().any(|p| p.ends_with("-plate_crop.jpg"))))
            .bind(i64::from(r.pictures.iter().any(|p| p.ends_with("-context.jpg"))))
            .bind(now)
            .bind(source.agency.trim())
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                done.duplicates += 1;
                continue;
            }
            super::retention::hold_arrivals(&mut tx, &reader, &[(r.read_id, &r.plate, first)])
                .await?;
            done.reads += 1;
            for p in r.pictures.iter().filter(|p| checked.contains(*p)) {
                let kind = if p.ends_with("-plate_crop.jpg") {
                    "plate_crop"
                } else if p.ends_with("-context.jpg") {
                    "context"
                } else {
                    continue;
                };
                sqlx::query(sql(
                    self.pg,
                    "INSERT INTO pictures (trailer_id, read_id, kind, jpeg, received_at, \
                     collected_at, early) VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING",
                ))
                .bind(&reader)
                .bind(r.read_id as i64)
                .bind(kind)
                .bind(read(p)?)
                .bind(now)
                .bind(first)
                .execute(&mut *tx)
                .await?;
                done.pictures += 1;
            }
        }
        super::audit::append_chained(
            &mut tx,
            &Entry {
                at: now,
                actor: by.into(),
                action: "release.import".into(),
                purpose: source.purpose.trim().into(),
                case_number: source.case_number.trim().into(),
                detail: format!(
                    "from {}: {} reads, {} pictures kept; {} past retention and {} ACP not taken",
                    source.agency.trim(),
                    done.reads,
                    done.pictures,
                    done.expired,
                    done.participants
                ),
                result_count: done.reads as i64,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::{on_both, read_at};
    use crate::records::{NewRelease, write};

    const DAY: i64 = 86_400_000;

    /// Another agency's bundle (made here by our own release): checked against its manifest,
    /// its reads kept marked with their source, found by a search, in no log of use, and
    /// destroyed by our retention from their collection; a tampered bundle is refused whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shared_reads_are_kept_under_our_rules_and_marked_with_their_source() {
        on_both("imports", imports).await;
    }

    async fn imports(url: String) {
        let now = 1_790_000_000_000;
        // The sending agency: a release of two reads, one older than our retention allows.
        let theirs = tempfile::tempdir().expect("tempdir");
        let sender =
            Records::open(&format!("sqlite://{}?mode=rwc", theirs.path().join("s.db").display()))
                .await
                .expect("open");
        let mut tx = sender.begin().await.expect("begin");
        let reads = [read_at(1, "SHR123", now - 70 * DAY), read_at(2, "SHR123", now - DAY)];
        write::reads(&mut tx, sender.rules(), "their-01", &reads, now).await.expect("reads");
        write::picture(&mut tx, "their-01", 2, trailer_wire::PictureKind::PlateCrop, b"crop", now)
            .await
            .expect("picture");
        tx.commit().await.expect("commit");
        let id = sender
            .release_request(
                &NewRelease {
                    requesting_agency: "Test Police Department".into(),
                    requester: "Det. Lund".into(),
                    purpose: "burglary".into(),
                    factual_basis: "seen at the scene".into(),
                    case_number: "TPD-26-5".into(),
                    authorisation: "chief's letter".into(),
                    plate: "SHR123".into(),
                    from_ms: now - 80 * DAY,
                    to_ms: now,
                },
                "sup-a",
                now,
            )
            .await
            .expect("request");
        sender.release_review(id, "ok", "sup-b", now).await.expect("review");
        sender.release_decide(id, true, "ok", "sup-c", now).await.expect("decide");
        let bundle = sender.release_fulfil(id, theirs.path(), "sup-a", now).await.expect("bundle");

        let db = Records::open(&url).await.expect("open");
        let source = Source {
            agency: "Olmsted County Sheriff",
            purpose: "burglary",
            case_number: "TPD-26-5",
            retention_days: 60,
        };
        let got = db.import_shared(&bundle.dir, &source, "sup", now).await.expect("import");
        assert_eq!((got.reads, got.pictures, got.expired), (1, 1, 1), "{got:?}");
        let again = db.import_shared(&bundle.dir, &source, "sup", now).await.expect("again");
        assert_eq!((again.reads, again.duplicates), (0, 1));
        let found = db.search_reads("SHR123", 0, 10).await.expect("search");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].source.as_deref(), Some("Olmsted County Sheriff"));
        assert!(found[0].trailer_id.starts_with("ext-olmsted-county-sheriff/"), "{found:?}");
        let log = db.use_log("2020-01-01", "2099-12-31", now).await.expect("log");
        assert_eq!(log.total_reads, 0, "not our collection");
        let action: String =
            sqlx::query_as::<_, (String,)>("SELECT action FROM audit ORDER BY seq DESC LIMIT 1")
                .fetch_one(db.pool())
                .await
                .expect("audit")
                .0;
        assert_eq!(action, "release.import");
        // Our retention, from collection.
        db.purge(now + 60 * DAY, 60).await.expect("purge");
        assert!(db.search_reads("SHR123", 0, 10).await.expect("search").is_empty());

        // One byte changed anywhere, and nothing is taken.
        let reads_json = bundle.dir.join("reads.json");
        let mut bytes = std::fs::read(&reads_json).expect("reads.json");
        let at = bytes.iter().position(|b| *b == b'S').expect("a plate");
        bytes[at] = b'X';
        std::fs::write(&reads_json, bytes).expect("tamper");
        let e = db.import_shared(&bundle.dir, &source, "sup", now).await.expect_err("tampered");
        assert!(e.to_string().contains("manifest digest"), "{e}");
    }
}
