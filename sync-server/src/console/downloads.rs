//! What an answer carries that is not for a table: the pictures of a search, saved as files in
//! the console user's downloads folder with their SHA-256, the answer then naming the files.
//! They are records under Minn. Stat. 13.824: the console says so, and they belong with the
//! case they were asked for.
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The folder: `TRAILER_CONSOLE_DOWNLOADS`, else `alpr-downloads` in the working folder.
pub fn folder() -> PathBuf {
    std::env::var_os("TRAILER_CONSOLE_DOWNLOADS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("alpr-downloads"))
}

/// Writes `bytes` as `name` (which may hold folders, `pictures/x.jpg`) under `dir`, once its
/// SHA-256 is `sha256`; a name that would leave `dir`, or bytes that do not match, are
/// refused and nothing is written.
pub fn store(dir: &Path, name: &str, bytes: &[u8], sha256: &str) -> Result<PathBuf, String> {
    let fine = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if !name.split('/').all(fine) {
        return Err(format!("{name:?} is no file name to save"));
    }
    let digest = hex::encode(Sha256::digest(bytes));
    if digest != sha256 {
        return Err(format!("{name}: its SHA-256 is {digest}, not {sha256}: not saved"));
    }
    let path = dir.join(name);
    let parent = path.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent)
        .and_then(|()| crate::atomic::write(&path, bytes))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Saves what `data` hands the user: the pictures of its rows (`pictures: {kind: base64}`)
/// under `dir/pictures/`, each replaced with `FILE (sha256 HEX)`, and its `files`
/// (`[{folder, name, sha256, base64}]`) under `dir/FOLDER/`, each checked against its digest and
/// its bytes replaced with where it was saved. Returns the lines that say what was saved.
pub fn save(data: &mut Value, dir: &Path) -> Vec<String> {
    let mut said = save_files(data, dir);
    let Some(rows) = data.as_array_mut() else { return said };
    for row in rows {
        let trailer = row["trailer_id"].as_str().unwrap_or("trailer").to_string();
        let read = row["read_id"].as_u64().unwrap_or(0);
        let Some(pictures) = row.get_mut("pictures").and_then(Value::as_object_mut) else {
            continue;
        };
        for (kind, value) in pictures.iter_mut() {
            let Some(jpeg) = value
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            else {
                continue; // "asked of the trailer", or too large for the answer
            };
            let safe = |s: &str| {
                s.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect::<String>()
            };
            let file =
                dir.join("pictures").join(format!("{}-{read}-{}.jpg", safe(&trailer), safe(kind)));
            let digest = hex::encode(Sha256::digest(&jpeg));
            let written = std::fs::create_dir_all(dir.join("pictures"))
                .and_then(|()| crate::atomic::write(&file, &jpeg));
            *value = Value::String(match written {
                Ok(()) => {
                    said.push(format!("saved {} (sha256 {digest})", file.display()));
                    format!("{} (sha256 {digest})", file.display())
                }
                Err(e) => format!("not saved: {}: {e}", file.display()),
            });
        }
    }
    if !said.is_empty() {
        said.push("these pictures are records of the search: keep them with its case".into());
    }
    said
}

/// The `files` of an answer (an object's), saved.
fn save_files(data: &mut Value, dir: &Path) -> Vec<String> {
    let mut said = Vec::new();
    let Some(files) = data.get_mut("files").and_then(Value::as_array_mut) else { return said };
    for f in files {
        let Some(o) = f.as_object_mut() else { continue };
        let (Some(folder), Some(name), Some(sha), Some(bytes)) = (
            o.get("folder").and_then(Value::as_str).map(str::to_string),
            o.get("name").and_then(Value::as_str).map(str::to_string),
            o.get("sha256").and_then(Value::as_str).map(str::to_string),
            o.get("base64")
                .and_then(Value::as_str)
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok()),
        ) else {
            continue;
        };
        o.remove("base64");
        let sub = if folder
            .split('/')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            dir.join(&folder)
        } else {
            dir.join("files")
        };
        match store(&sub, &name, &bytes, &sha) {
            Ok(path) => {
                said.push(format!("saved {} (sha256 {sha})", path.display()));
                o.insert("saved".into(), Value::String(path.display().to_string()));
            }
            Err(e) => {
                said.push(format!("not saved: {e}"));
                o.insert("saved".into(), Value::String(format!("not saved: {e}")));
            }
        }
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_in_an_answer_are_saved_only_whole_and_inside_the_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let doc = b"To the Bureau of Criminal Apprehension";
        let files =
            crate::commands::files_json("notices", &[("alpr-notice-3.txt".into(), doc.to_vec())]);
        let mut data = serde_json::json!({"notice": 3, "files": files});
        let said = save(&mut data, dir.path());
        let path = dir.path().join("notices/alpr-notice-3.txt");
        assert_eq!(std::fs::read(&path).expect("saved"), doc);
        assert!(said[0].contains(&hex::encode(Sha256::digest(doc))), "{said:?}");
        assert!(data["files"][0].get("base64").is_none(), "the bytes are not printed");
        assert_eq!(data["files"][0]["saved"], path.display().to_string());
        // A piece that does not match its digest, or a name that climbs out, is not written.
        assert!(store(dir.path(), "a.txt", b"x", &hex::encode(Sha256::digest(b"y"))).is_err());
        assert!(!dir.path().join("a.txt").exists());
        let sha = hex::encode(Sha256::digest(b"x"));
        assert!(store(dir.path(), "../escape.txt", b"x", &sha).is_err());
        assert!(store(dir.path(), "/etc/passwd", b"x", &sha).is_err());
        assert!(store(dir.path(), "pictures/r-1.jpg", b"x", &sha).is_ok());
    }

    #[test]
    fn pictures_in_an_answer_are_saved_with_their_digests() {
        let dir = tempfile::tempdir().expect("tempdir");
        let jpeg = b"\xff\xd8 a picture \xff\xd9";
        let b64 = base64::engine::general_purpose::STANDARD.encode(jpeg);
        let mut data = serde_json::json!([{"trailer_id": "trailer-01", "read_id": 7,
            "pictures": {"plate_crop": b64, "context": "asked of the trailer (downlink 3)"}}]);
        let said = save(&mut data, dir.path());
        let file = dir.path().join("pictures/trailer-01-7-platecrop.jpg");
        assert_eq!(std::fs::read(&file).expect("saved"), jpeg);
        let digest = hex::encode(Sha256::digest(jpeg));
        assert!(said[0].contains(&digest), "{said:?}");
        assert!(data[0]["pictures"]["plate_crop"].as_str().is_some_and(|v| v.contains(&digest)));
        assert_eq!(data[0]["pictures"]["context"], "asked of the trailer (downlink 3)");
    }
}
