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

/// Saves the pictures in `data` (rows with `pictures: {kind: base64}`) under `dir/pictures/`,
/// replacing each with `FILE (sha256 HEX)`; returns the lines that say what was saved.
pub fn save(data: &mut Value, dir: &Path) -> Vec<String> {
    let mut said = Vec::new();
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

#[cfg(test)]
mod tests {
    use super::*;

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
