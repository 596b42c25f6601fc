//! Releases of data to another agency: requested, reviewed, decided by another supervisor,
//! fulfilled as a bundle with its manifest.
use super::{Call, Done, Failure, to_json};
use crate::records::{NewRelease, Records, Session};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    requesting_agency: String,
    requester: String,
    factual_basis: String,
    authorisation: String,
    plate: String,
    /// First and last local day of collection asked for (YYYY-MM-DD).
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Review {
    id: i64,
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decide {
    id: i64,
    approve: bool,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Id {
    id: i64,
}

pub(super) async fn list(records: &Records) -> Done {
    let rows = records.releases().await?;
    Ok((to_json(&rows), rows.len() as i64))
}

pub(super) async fn request(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Request = c.args()?;
    let tz = &s.rules().time_zone;
    let day = |d: &str| {
        crate::report::local_day_bounds(tz, d)
            .ok_or_else(|| Failure::Refused(format!("args: {d:?} is no YYYY-MM-DD day")))
    };
    let (from_ms, _) = day(&a.from)?;
    let (_, to_end) = day(&a.to)?;
    let new = NewRelease {
        requesting_agency: a.requesting_agency,
        requester: a.requester,
        purpose: c.request.purpose.to_string(),
        factual_basis: a.factual_basis,
        case_number: c.request.case.to_string(),
        authorisation: a.authorisation,
        plate: a.plate,
        from_ms,
        to_ms: to_end - 1,
    };
    let id = s.release_request(&new, &c.actor, c.now).await?;
    Ok((json!({"release": id, "state": "requested"}), 1))
}

pub(super) async fn review(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Review = c.args()?;
    s.release_review(a.id, &a.note, &c.actor, c.now).await?;
    Ok((json!({"release": a.id, "state": "reviewed"}), 1))
}

pub(super) async fn decide(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Decide = c.args()?;
    s.release_decide(a.id, a.approve, &a.reason, &c.actor, c.now).await?;
    let state = if a.approve { "approved" } else { "denied" };
    Ok((json!({"release": a.id, "state": state}), 1))
}

/// Writes the bundle under the server's data folder and records it, on one session: if the
/// record cannot be kept, the request stays approved and a later fulfilment writes it again.
pub(super) async fn fulfil(s: &mut Session, c: &Call<'_>) -> Done {
    let a: Id = c.args()?;
    let dir = c.config.server.data_dir.join("releases");
    let bundle = s.release_fulfil(a.id, &dir, &c.actor, c.now).await?;
    let n = bundle.reads;
    Ok((serde_json::to_value(&bundle).unwrap_or_default(), n))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Download {
    id: i64,
    /// A file the bundle's manifest lists (`manifest.json` itself included).
    file: String,
    #[serde(default)]
    offset: u64,
}

/// Bytes of a bundle's file one answer carries (base64 makes it a third larger; an answer is
/// paged by the broker loop beyond its own limit, so this keeps each one to a page or two).
pub const DOWNLOAD_CHUNK: u64 = 384 * 1024;

/// The files of a fulfilled request's bundle, as its manifest lists them, and the manifest.
fn bundle_files(
    release: &crate::records::Release,
) -> Result<(std::path::PathBuf, Vec<crate::records::BundleFile>), Failure> {
    let (Some(dir), Some(manifest_sha256)) = (&release.bundle, &release.manifest_sha256) else {
        return Err(Failure::Refused(format!(
            "release {} is {}: only a fulfilled request has a bundle",
            release.id, release.state
        )));
    };
    let dir = std::path::PathBuf::from(dir);
    let gone = || {
        Failure::Refused(format!(
            "release {}'s bundle is gone from this server (destroyed with its reads)",
            release.id
        ))
    };
    let bytes = std::fs::read(dir.join("manifest.json")).map_err(|_| gone())?;
    use sha2::Digest;
    let manifest = serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|_| gone())?;
    let mut files: Vec<crate::records::BundleFile> =
        serde_json::from_value(manifest["files"].clone()).map_err(|_| gone())?;
    files.push(crate::records::BundleFile {
        name: "manifest.json".into(),
        bytes: bytes.len() as u64,
        sha256: hex::encode(sha2::Sha256::digest(&bytes)),
    });
    if files.last().is_some_and(|m| &m.sha256 != manifest_sha256) {
        return Err(Failure::Refused(format!(
            "release {}'s manifest does not match the one recorded at fulfilment",
            release.id
        )));
    }
    Ok((dir, files))
}

async fn fulfilled(records: &Records, id: i64) -> Result<crate::records::Release, Failure> {
    records.release(id).await?.ok_or_else(|| Failure::Refused(format!("no release request {id}")))
}

/// `release.files`: what a fulfilled request's bundle holds, each file with its size and
/// SHA-256 (the console fetches them with `release.download`).
pub(super) async fn files(records: &Records, c: &Call<'_>) -> Done {
    let a: Id = c.args()?;
    let release = fulfilled(records, a.id).await?;
    let (_, files) = bundle_files(&release)?;
    let n = files.len() as i64;
    Ok((json!({"release": a.id, "files": files}), n))
}

/// `release.download`: a piece of one file of the bundle, from `offset`, base64; the console
/// asks piece after piece and checks the whole against the manifest's digest.
pub(super) async fn download(records: &Records, c: &Call<'_>) -> Done {
    use base64::Engine;
    use std::io::{Read, Seek};
    let a: Download = c.args()?;
    let release = fulfilled(records, a.id).await?;
    let (dir, files) = bundle_files(&release)?;
    let Some(file) = files.iter().find(|f| f.name == a.file) else {
        return Err(Failure::Refused(format!(
            "file: release {}'s bundle has no {:?} (release.files lists them)",
            a.id, a.file
        )));
    };
    if a.offset > file.bytes {
        return Err(Failure::Refused(format!("offset: {} is past the file's end", a.offset)));
    }
    let read = || -> std::io::Result<Vec<u8>> {
        let mut f = std::fs::File::open(dir.join(&file.name))?;
        f.seek(std::io::SeekFrom::Start(a.offset))?;
        let mut piece = Vec::new();
        f.take(DOWNLOAD_CHUNK).read_to_end(&mut piece)?;
        Ok(piece)
    };
    let piece = read().map_err(|e| Failure::Refused(format!("{}: {e}", file.name)))?;
    let end = a.offset + piece.len() as u64;
    Ok((
        json!({
            "release": a.id,
            "file": file.name,
            "offset": a.offset,
            "size": file.bytes,
            "sha256": file.sha256,
            "base64": base64::engine::general_purpose::STANDARD.encode(&piece),
            "next_offset": if end < file.bytes { json!(end) } else { serde_json::Value::Null },
        }),
        i64::from(a.offset == 0),
    ))
}
