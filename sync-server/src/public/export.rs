//! The public pages as static files, for the city's website: the same rendering as the server.
use super::{Agency, Links, agency as agency_page, audit, locations, log};
use crate::records::{Records, RecordsError};
use std::path::{Path, PathBuf};

/// Writes `agency.html` (and `index.html`), `locations.{html,csv,json,geojson}`,
/// `log.{html,csv,json}` for the local days `from..=to`, `audit.{html,csv,json}` (the newest
/// page) and `audits.json` into `dir`. Returns the files written.
pub async fn export(
    records: &Records,
    agency: &Agency,
    dir: &Path,
    from: &str,
    to: &str,
    now: i64,
) -> Result<Vec<PathBuf>, ExportError> {
    let locs = records.public_locations(now).await?;
    let withheld = records.withheld_locations().await?;
    let use_log = records.use_log(from, to, now).await?;
    let entries = records.audit_public(None, audit::PAGE).await?;
    let oversight = audit::Oversight::of(records, now).await?;
    let links = Links(".html");
    let tz = &records.rules().time_zone;
    let front = agency_page::html(agency, &oversight, links);
    let files = [
        ("index.html", front.clone()),
        ("agency.html", front),
        ("locations.html", locations::html(&locs, withheld, agency, links)),
        ("locations.csv", locations::csv(&locs)),
        ("locations.json", locations::json(&locs)),
        ("locations.geojson", locations::geojson(&locs)),
        ("log.html", log::html(&use_log, agency, links)),
        ("log.csv", log::csv(&use_log)),
        ("log.json", log::json(&use_log)),
        ("audit.html", audit::html(&entries, &oversight, tz, agency, links)),
        ("audit.csv", audit::csv(&entries, tz)),
        ("audit.json", audit::json(&entries, tz)),
        ("audits.json", serde_json::to_string(&oversight).unwrap_or_default()),
    ];
    std::fs::create_dir_all(dir).map_err(|e| ExportError::Io(dir.to_path_buf(), e))?;
    let mut written = Vec::new();
    for (name, body) in files {
        let path = dir.join(name);
        crate::atomic::write(&path, body.as_bytes())
            .map_err(|e| ExportError::Io(path.clone(), e))?;
        written.push(path);
    }
    Ok(written)
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}
