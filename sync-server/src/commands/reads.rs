//! Reads: the fleet's status, and a plate search under its legal basis (with the reads'
//! pictures on request: those here inline, those still on a trailer asked of it).
use super::{Call, Done, Failure, to_json};
use crate::records::{Records, Session};
use serde::Deserialize;
use serde_json::{Value, json};

/// A search under exigency reaches this many days back at most, and returns at most
/// [`EXIGENCY_RESULTS`] reads: tracking a person further needs a warrant.
pub const EXIGENCY_DAYS: i64 = 3;
pub const EXIGENCY_RESULTS: i64 = 50;

/// Pictures returned inline by one search at most (beyond, the reads say what exists).
const SEARCH_PICTURE_BYTES: usize = 160 * 1024;

/// A search of many reads asks the trailers for the newest few reads' pictures only.
const MAX_ASKED: usize = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Search {
    plate: String,
    #[serde(default = "default_limit")]
    limit: i64,
    /// The legal basis (Minn. Stat. 13.824 subd. 2(d)): a warrant's number, or the facts of
    /// the exigency; exactly one.
    #[serde(default)]
    warrant: Option<String>,
    #[serde(default)]
    exigency: Option<String>,
    /// How many days back to search (default and cap: [`EXIGENCY_DAYS`] without a warrant,
    /// the retention period with one).
    #[serde(default)]
    days: Option<i64>,
    /// The pictures too: those here inline (base64), those still on a trailer asked for.
    #[serde(default)]
    pictures: bool,
}

fn default_limit() -> i64 {
    100
}

impl Search {
    /// The reads' earliest `best_seen` and the result cap the legal basis allows, or why the
    /// search is refused.
    fn scope(&self, retention_days: i64, now: i64) -> Result<(i64, i64), Failure> {
        let given = |s: &Option<String>| s.as_deref().is_some_and(|t| t.trim().len() >= 3);
        let (max_days, max_results) = match (given(&self.warrant), given(&self.exigency)) {
            (true, false) => (retention_days, 10_000),
            (false, true) => (EXIGENCY_DAYS, EXIGENCY_RESULTS),
            _ => {
                return Err(Failure::Refused(
                    "a plate search tracks a person: give its legal basis, warrant=NUMBER or \
                     exigency=FACTS (Minn. Stat. 13.824 subd. 2(d)), one of them"
                        .into(),
                ));
            }
        };
        let days = self.days.unwrap_or(max_days);
        if !(1..=max_days).contains(&days) {
            let why = if max_days == EXIGENCY_DAYS { "under exigency" } else { "of retention" };
            return Err(Failure::Refused(format!(
                "days: 1-{max_days} {why}; a longer search needs a warrant"
            )));
        }
        Ok((now - days * 86_400_000, self.limit.clamp(1, max_results)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct List {
    #[serde(default = "default_limit")]
    limit: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Picture {
    trailer: String,
    read_id: u64,
    /// The context picture instead of the plate's.
    #[serde(default)]
    context: bool,
}

/// `reads.list`: the newest reads, whatever the plate (a records supervisor's view, for a
/// stated purpose and case).
pub(super) async fn list(records: &Records, c: &Call<'_>) -> Done {
    let a: List = c.args()?;
    let rows = records.list_reads(a.limit.clamp(1, 10_000)).await?;
    Ok((to_json(&rows), rows.len() as i64))
}

/// `reads.picture`: a read's picture asked of the trailer that still holds it; it arrives as
/// a picture of the read (`plates.search pictures=true` then brings it).
pub(super) async fn picture(s: &mut Session, c: &Call<'_>) -> Done {
    use trailer_wire::PictureKind;
    let a: Picture = c.args()?;
    if !trailer_wire::topic::valid_id(&a.trailer) {
        return Err(Failure::Refused(format!("invalid trailer id {:?}", a.trailer)));
    }
    let kind = if a.context { PictureKind::Context } else { PictureKind::PlateCrop };
    let command = crate::downlink::Command::SendPicture { read_id: a.read_id, kind };
    let id = crate::downlink::queue_in(s, &a.trailer, command, &c.actor, c.now).await?;
    Ok((json!({"downlink": id, "trailer": a.trailer, "read_id": a.read_id}), 1))
}

/// `status`: each trailer's latest health report.
pub(super) async fn status(records: &Records) -> Done {
    let health = records.health().await?;
    let n = health.len() as i64;
    Ok((Value::Array(health), n))
}

/// `plates.search`: on the records; with pictures, the requests to the trailers on `session`.
pub(super) async fn search(records: &Records, session: Option<&mut Session>, c: &Call<'_>) -> Done {
    let a: Search = c.args()?;
    let (since, limit) = a.scope(i64::from(c.config.server.retention_days), c.now)?;
    let rows = records.search_reads(&a.plate, since, limit).await?;
    let n = rows.len() as i64;
    match session {
        Some(s) if a.pictures => Ok((with_pictures(records, s, &rows, c).await?, n)),
        _ => Ok((to_json(&rows), n)),
    }
}

/// The reads of a search with their pictures: those held here inline (up to a budget), and a
/// request queued to the trailer for those it still holds (for the newest reads only).
async fn with_pictures(
    records: &Records,
    s: &mut Session,
    rows: &[trailer_wire::console::ReadView],
    c: &Call<'_>,
) -> Result<Value, Failure> {
    use base64::Engine;
    use trailer_wire::PictureKind;
    let mut budget = SEARCH_PICTURE_BYTES;
    let mut asked = 0;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut v = serde_json::to_value(row).unwrap_or(Value::Null);
        let here = records.pictures_of(&row.trailer_id, row.read_id).await?;
        let mut pictures = serde_json::Map::new();
        for (kind, jpeg) in &here {
            let value = if jpeg.len() <= budget {
                budget -= jpeg.len();
                json!(base64::engine::general_purpose::STANDARD.encode(jpeg))
            } else {
                json!("(over this answer's size: search for this read alone)")
            };
            pictures.insert(kind.clone(), value);
        }
        for (kind, taken) in
            [(PictureKind::PlateCrop, row.has_plate_crop), (PictureKind::Context, row.has_context)]
        {
            let name = crate::records::picture_kind(kind);
            if !taken || pictures.contains_key(name) {
                continue;
            }
            let value = if asked < MAX_ASKED {
                asked += 1;
                let command = crate::downlink::Command::SendPicture { read_id: row.read_id, kind };
                let id =
                    crate::downlink::queue_in(s, &row.trailer_id, command, &c.actor, c.now).await?;
                format!("asked of the trailer (downlink {id})")
            } else {
                "on the trailer: search for this read alone".to_string()
            };
            pictures.insert(name.into(), json!(value));
        }
        if let Some(o) = v.as_object_mut() {
            o.insert("pictures".into(), Value::Object(pictures));
        }
        out.push(v);
    }
    Ok(Value::Array(out))
}
