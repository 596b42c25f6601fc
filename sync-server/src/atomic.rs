//! Files written whole or not at all: the one way the server replaces a file (BCA notices in
//! the outbox, the public pages exported, the PKI's public files, backups and their
//! manifests). The data goes to a temporary file beside the target, is flushed to disk, takes
//! the target's name in one rename, and the folder is flushed so the new name survives a power
//! cut.
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary name beside `path` (`.NAME.tmp`: hidden, and never taken for the real file).
pub fn temporary(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `bytes` as `path`, replacing it whole.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary(path);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    rename(&tmp, path)
}

/// Gives the finished file `tmp` the name `path`, and flushes the folder.
pub fn rename(tmp: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::rename(tmp, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_is_replaced_whole_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notice.html");
        super::write(&path, b"first").expect("write");
        super::write(&path, b"second, longer").expect("replace");
        assert_eq!(std::fs::read(&path).expect("read"), b"second, longer");
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).expect("dir").flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("notice.html")]);
    }
}
