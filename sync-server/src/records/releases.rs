//! Release requests, following the written-request procedure of the agency's ALPR policy: a
//! request names the requesting agency and person, the purpose, the factual basis and case
//! number, and a statement of authorisation; a records supervisor reviews it; another decides
//! (approve or deny, with a reason); only an approved request is fulfilled, as an export bundle
//! whose manifest lists every file with its SHA-256. Every request stays on file, whatever its
//! outcome: it is not data collected by a reader and is not destroyed with the reads.
use super::{Records, RecordsError, iso_time, sql};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::path::{Path, PathBuf};

/// What a request asks for, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRelease {
    pub requesting_agency: String,
    pub requester: String,
    pub purpose: String,
    pub factual_basis: String,
    pub case_number: String,
    /// The requester's statement of their authority to receive the data.
    pub authorisation: String,
    /// The plate whose reads are asked for.
    pub plate: String,
    /// Collected from, until (ms since the epoch).
    pub from_ms: i64,
    pub to_ms: i64,
}

/// A request on file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    pub id: i64,
    pub state: String,
    #[serde(flatten)]
    pub request: NewRelease,
    /// The days asked for, as people read them.
    pub from: String,
    pub to: String,
    pub requested_by: String,
    pub requested_at: String,
    pub reviewed_by: Option<String>,
    pub review_note: Option<String>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub fulfilled_by: Option<String>,
    pub fulfilled_at: Option<String>,
    pub bundle: Option<String>,
    pub manifest_sha256: Option<String>,
    pub reads_released: Option<i64>,
}

/// One file of a bundle, as its manifest lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// A fulfilled request's bundle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bundle {
    pub dir: PathBuf,
    pub manifest_sha256: String,
    pub reads: i64,
    pub files: Vec<BundleFile>,
}

/// The columns [`release_row`] reads, then `tail`.
macro_rules! release_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, state, requesting_agency, requester, purpose, factual_basis, case_number, \
             authorisation, plate, from_ms, to_ms, requested_by, requested_ms, reviewed_by, \
             review_note, decided_by, decision_reason, fulfilled_by, fulfilled_ms, bundle, \
             manifest_sha256, reads_released FROM release_requests ",
            $tail
        )
    };
}

impl Records {
    /// Every request on file, newest first.
    pub async fn releases(&self) -> Result<Vec<Release>, RecordsError> {
        let rows = sqlx::query(release_select!("ORDER BY id DESC")).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(release_row).collect())
    }

    /// One request on file.
    pub async fn release(&self, id: i64) -> Result<Option<Release>, RecordsError> {
        release_by_id(&self.pool, self.pg, id).await
    }
}

fn release_row(r: &sqlx::any::AnyRow) -> Release {
    let (from_ms, to_ms): (i64, i64) = (r.get(9), r.get(10));
    Release {
        id: r.get(0),
        state: r.get(1),
        request: NewRelease {
            requesting_agency: r.get(2),
            requester: r.get(3),
            purpose: r.get(4),
            factual_basis: r.get(5),
            case_number: r.get(6),
            authorisation: r.get(7),
            plate: r.get(8),
            from_ms,
            to_ms,
        },
        from: iso_time(from_ms),
        to: iso_time(to_ms),
        requested_by: r.get(11),
        requested_at: iso_time(r.get(12)),
        reviewed_by: r.get(13),
        review_note: r.get(14),
        decided_by: r.get(15),
        decision_reason: r.get(16),
        fulfilled_by: r.get(17),
        fulfilled_at: r.get::<Option<i64>, _>(18).map(iso_time),
        bundle: r.get(19),
        manifest_sha256: r.get(20),
        reads_released: r.get(21),
    }
}

/// What the receiving agency must do with the data (Minn. Stat. 13.824 subd. 4(b), (c)),
/// written into every bundle: its classification, its destruction (each read's date), its
/// security, and that it may not be passed on or sold.
fn duties(rows: &[sqlx::any::AnyRow]) -> String {
    // The law's limit binds the recipient, whatever shorter one this agency keeps.
    const DAYS: i64 = 60;
    let first = rows.iter().map(|r| r.get::<i64, _>(4)).min();
    let destroy_by =
        first.map_or_else(|| "(no reads)".to_string(), |t| iso_time(t + DAYS * 86_400_000));
    format!(
        "DUTIES OF THE RECEIVING AGENCY\n\n\
         These are automated license plate reader (ALPR) data, released under Minn. Stat.\n\
         13.824 subd. 4 and 7. By receiving them your agency must, under subd. 4(b):\n\n\
         1. Classification: keep them as private or nonpublic data (subd. 2); publish none.\n\
         2. Destruction: destroy each read, its pictures and any copy no later than {days} days\n   \
            after it was collected (first_seen in reads.csv), unless an exception of subd. 3\n   \
            applies; the oldest read here is due by {destroy_by}.\n\
         3. Security: keep them where only people authorised for this case can reach them, and\n   \
            record each access.\n\
         4. No further sharing: under subd. 4(c) they may not be shared with, disseminated to,\n   \
            sold to or traded with anyone else unless the law explicitly authorises it.\n\n\
         manifest.json lists every file with its SHA-256; request.json is the approved request.\n",
        days = DAYS,
    )
}

super::session::committed! {
    /// Files a request from `actor` (a records supervisor entering a written request).
    fn release_request(r: &NewRelease, actor: &str, now: i64) -> i64;
    /// Records the review of a request (its completeness and basis checked), with a note.
    fn release_review(id: i64, note: &str, actor: &str, now: i64) -> ();
    /// Approves or denies a reviewed request, with the reason. The one who entered a request
    /// does not decide it.
    fn release_decide(id: i64, approve: bool, reason: &str, actor: &str, now: i64) -> ();
    /// Fulfils an approved request: writes the bundle under `dir` (`release-{id}/`: the reads
    /// as CSV and JSON, their pictures, `request.json`, and `manifest.json` listing each file
    /// with its SHA-256) and records it. Refused for a request not approved.
    fn release_fulfil(id: i64, dir: &Path, actor: &str, now: i64) -> Bundle;
}

impl super::Session {
    /// Files a request from `actor` (a records supervisor entering a written request).
    pub async fn release_request(
        &mut self,
        r: &NewRelease,
        actor: &str,
        now: i64,
    ) -> Result<i64, RecordsError> {
        for (field, value) in [
            ("requesting_agency", &r.requesting_agency),
            ("requester", &r.requester),
            ("purpose", &r.purpose),
            ("factual_basis", &r.factual_basis),
            ("case_number", &r.case_number),
            ("authorisation", &r.authorisation),
        ] {
            if value.trim().is_empty() || value.chars().count() > 2000 {
                return Err(RecordsError::Invalid(format!(
                    "{field}: the written request must state it (1-2000 characters)"
                )));
            }
        }
        let plate = trailer_wire::hotlist::plate_text(&r.plate, false);
        if !(2..=10).contains(&plate.len()) {
            return Err(RecordsError::Invalid("plate: 2-10 letters and digits".into()));
        }
        if r.from_ms > r.to_ms {
            return Err(RecordsError::Invalid("from_ms is after to_ms".into()));
        }
        let id: i64 = sqlx::query(sql(
            self.pg,
            "INSERT INTO release_requests (requesting_agency, requester, purpose, factual_basis, \
             case_number, authorisation, plate, from_ms, to_ms, state, requested_by, requested_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'requested', ?, ?) RETURNING id",
        ))
        .bind(r.requesting_agency.trim())
        .bind(r.requester.trim())
        .bind(r.purpose.trim())
        .bind(r.factual_basis.trim())
        .bind(r.case_number.trim())
        .bind(r.authorisation.trim())
        .bind(plate)
        .bind(r.from_ms)
        .bind(r.to_ms)
        .bind(actor)
        .bind(now)
        .fetch_one(&mut *self.tx)
        .await?
        .get(0);
        Ok(id)
    }

    async fn release_state(&mut self, id: i64) -> Result<(String, String), RecordsError> {
        let row = sqlx::query(sql(
            self.pg,
            "SELECT state, requested_by FROM release_requests WHERE id = ?",
        ))
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or_else(|| RecordsError::Invalid(format!("no release request {id}")))?;
        Ok((row.get(0), row.get(1)))
    }

    /// Moves a request from `from` to `to` by `text` (an UPDATE binding the new state, the two
    /// `values`, the time, the id and the old state), if it is still in `from`.
    async fn release_step(
        &mut self,
        id: i64,
        from: &str,
        to: &str,
        text: &'static str,
        values: [&str; 2],
        at: i64,
    ) -> Result<(), RecordsError> {
        let done = sqlx::query(sql(self.pg, text))
            .bind(to)
            .bind(values[0])
            .bind(values[1])
            .bind(at)
            .bind(id)
            .bind(from)
            .execute(&mut *self.tx)
            .await?;
        if done.rows_affected() == 0 {
            let (state, _) = self.release_state(id).await?;
            return Err(RecordsError::Invalid(format!(
                "release request {id} is {state}, not {from}"
            )));
        }
        Ok(())
    }

    /// Records the review of a request (its completeness and basis checked), with a note.
    pub async fn release_review(
        &mut self,
        id: i64,
        note: &str,
        actor: &str,
        now: i64,
    ) -> Result<(), RecordsError> {
        if note.trim().is_empty() {
            return Err(RecordsError::Invalid("note: what the review found".into()));
        }
        const REVIEW: &str = "UPDATE release_requests SET state = ?, reviewed_by = ?, review_note = ?, \
                              reviewed_ms = ? WHERE id = ? AND state = ?";
        self.release_step(id, "requested", "reviewed", REVIEW, [actor, note.trim()], now).await
    }

    /// Approves or denies a reviewed request, with the reason. The one who entered a request
    /// does not decide it.
    pub async fn release_decide(
        &mut self,
        id: i64,
        approve: bool,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<(), RecordsError> {
        if reason.trim().is_empty() {
            return Err(RecordsError::Invalid("reason: why it is approved or denied".into()));
        }
        let (_, requested_by) = self.release_state(id).await?;
        if requested_by == actor {
            return Err(RecordsError::Invalid(format!(
                "release request {id} was entered by {actor}: another supervisor decides it"
            )));
        }
        let reviewed_by: Option<String> =
            sqlx::query(sql(self.pg, "SELECT reviewed_by FROM release_requests WHERE id = ?"))
                .bind(id)
                .fetch_one(&mut *self.tx)
                .await?
                .get(0);
        if reviewed_by.as_deref() == Some(actor) {
            return Err(RecordsError::Invalid(format!(
                "release request {id} was reviewed by {actor}: another supervisor decides it"
            )));
        }
        let to = if approve { "approved" } else { "denied" };
        const DECIDE: &str = "UPDATE release_requests SET state = ?, decided_by = ?, \
                              decision_reason = ?, decided_ms = ? WHERE id = ? AND state = ?";
        self.release_step(id, "reviewed", to, DECIDE, [actor, reason.trim()], now).await
    }

    /// Fulfils an approved request: writes the bundle under `dir` (`release-{id}/`: the reads
    /// as CSV and JSON, their pictures, `request.json`, and `manifest.json` listing each file
    /// with its SHA-256) and records it. Refused for a request not approved.
    pub async fn release_fulfil(
        &mut self,
        id: i64,
        dir: &Path,
        actor: &str,
        now: i64,
    ) -> Result<Bundle, RecordsError> {
        // Claimed first: of two supervisors fulfilling at once, one writes the bundle.
        let claimed = sqlx::query(sql(
            self.pg,
            "UPDATE release_requests SET state = 'fulfilling' WHERE id = ? AND state = 'approved'",
        ))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        if claimed.rows_affected() == 0 {
            let (state, _) = self.release_state(id).await?;
            return Err(RecordsError::Invalid(format!(
                "release request {id} is {state}: only an approved request is fulfilled"
            )));
        }
        let written = self.write_bundle(id, dir, actor, now).await;
        if written.is_err() {
            // Approved still: it can be fulfilled again once the cause is fixed.
            sqlx::query(sql(
                self.pg,
                "UPDATE release_requests SET state = 'approved' WHERE id = ? AND state = 'fulfilling'",
            ))
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        }
        written
    }

    /// Writes a claimed request's bundle and records it fulfilled.
    async fn write_bundle(
        &mut self,
        id: i64,
        dir: &Path,
        actor: &str,
        now: i64,
    ) -> Result<Bundle, RecordsError> {
        let request = release_by_id(&mut *self.tx, self.pg, id)
            .await?
            .ok_or_else(|| RecordsError::Invalid(format!("no release request {id}")))?;
        let (typed, zeroed) = super::plate_pair(&request.request.plate);
        let rows = sqlx::query(sql(
            self.pg,
            "SELECT trailer_id, read_id, plate, confidence, first_seen, best_seen, lat, lon \
             FROM reads WHERE plate IN (?, ?) AND best_seen >= ? AND best_seen <= ? \
             ORDER BY best_seen, trailer_id, read_id",
        ))
        .bind(typed)
        .bind(zeroed)
        .bind(request.request.from_ms)
        .bind(request.request.to_ms)
        .fetch_all(&mut *self.tx)
        .await?;
        let bundle = dir.join(format!("release-{id}"));
        let io = |e: std::io::Error| RecordsError::Invalid(format!("{}: {e}", bundle.display()));
        // A bundle left half-written by a crash is written again from the start.
        if bundle.exists() {
            std::fs::remove_dir_all(&bundle).map_err(io)?;
        }
        std::fs::create_dir_all(bundle.join("pictures")).map_err(io)?;
        let mut files = Vec::new();
        let mut put = |name: String, data: &[u8]| -> Result<(), RecordsError> {
            std::fs::write(bundle.join(&name), data).map_err(io)?;
            files.push(BundleFile {
                name,
                bytes: data.len() as u64,
                sha256: hex::encode(Sha256::digest(data)),
            });
            Ok(())
        };
        let mut csv = crate::csvfile::Csv::new(&[
            "trailer",
            "read_id",
            "plate",
            "confidence",
            "first_seen",
            "best_seen",
            "lat",
            "lon",
        ]);
        let mut reads = Vec::new();
        for r in &rows {
            let (trailer, read_id): (String, i64) = (r.get(0), r.get(1));
            let (plate, confidence): (String, f64) = (r.get(2), r.get(3));
            let (first, best): (i64, i64) = (r.get(4), r.get(5));
            let (lat, lon): (f64, f64) = (r.get(6), r.get(7));
            {
                use crate::csvfile::Field::{Num, Text};
                let (first, best) = (iso_time(first), iso_time(best));
                csv.row(&[
                    Text(&trailer),
                    Num(read_id.to_string()),
                    Text(&plate),
                    Num(format!("{confidence:.3}")),
                    Text(&first),
                    Text(&best),
                    Num(format!("{lat:.6}")),
                    Num(format!("{lon:.6}")),
                ]);
            }
            let mut pictures = Vec::new();
            for p in sqlx::query(sql(
                self.pg,
                "SELECT kind, jpeg FROM pictures WHERE trailer_id = ? AND read_id = ? ORDER BY kind",
            ))
            .bind(&trailer)
            .bind(read_id)
            .fetch_all(&mut *self.tx)
            .await?
            {
                let (kind, jpeg): (String, Vec<u8>) = (p.get(0), p.get(1));
                let name = format!("pictures/{trailer}-{read_id}-{kind}.jpg");
                put(name.clone(), &jpeg)?;
                pictures.push(name);
            }
            reads.push(serde_json::json!({
                "trailer": trailer, "read_id": read_id, "plate": plate, "confidence": confidence,
                "first_seen": iso_time(first), "best_seen": iso_time(best), "lat": lat, "lon": lon,
                "pictures": pictures,
            }));
        }
        put("DUTIES.txt".into(), duties(&rows).as_bytes())?;
        put("reads.csv".into(), csv.finish().as_bytes())?;
        let json = |v: &serde_json::Value| serde_json::to_vec_pretty(v).unwrap_or_default();
        put("reads.json".into(), &json(&serde_json::Value::Array(reads)))?;
        put("request.json".into(), &json(&serde_json::to_value(&request).unwrap_or_default()))?;
        let manifest = serde_json::json!({
            "release_request": id,
            "fulfilled_by": actor,
            "fulfilled_at": iso_time(now),
            "reads": rows.len(),
            "duties": "DUTIES.txt: Minn. Stat. 13.824 subd. 4(b) and (c) bind the recipient",
            "files": files,
        });
        let manifest_bytes = json(&manifest);
        std::fs::write(bundle.join("manifest.json"), &manifest_bytes).map_err(io)?;
        let manifest_sha256 = hex::encode(Sha256::digest(&manifest_bytes));
        let done = sqlx::query(sql(
            self.pg,
            "UPDATE release_requests SET state = 'fulfilled', fulfilled_by = ?, fulfilled_ms = ?, \
             bundle = ?, manifest_sha256 = ?, reads_released = ? WHERE id = ? AND state = 'fulfilling'",
        ))
        .bind(actor)
        .bind(now)
        .bind(bundle.display().to_string())
        .bind(&manifest_sha256)
        .bind(rows.len() as i64)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(RecordsError::Invalid(format!(
                "release request {id} is no longer claimed"
            )));
        }
        Ok(Bundle { dir: bundle, manifest_sha256, reads: rows.len() as i64, files })
    }
}

/// One release request, read on `e` (the pool, or a session's transaction).
async fn release_by_id<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    e: E,
    pg: bool,
    id: i64,
) -> Result<Option<Release>, RecordsError> {
    let row =
        sqlx::query(sql(pg, release_select!("WHERE id = ?"))).bind(id).fetch_optional(e).await?;
    Ok(row.as_ref().map(release_row))
}
