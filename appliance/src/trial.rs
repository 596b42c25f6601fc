//! A configuration the server sent is on trial until the daemon starts on it.
//!
//! Applying a remote configuration writes it over the running one (the old one kept as
//! `FILE.previous`), marks it on trial (`FILE.trial`) and stops; systemd starts the daemon again
//! on it. Each start counts against the trial; reaching READY (store open, capture running, the
//! link started) ends it. A configuration that never gets there (a model path that does not
//! exist, a camera the pipeline cannot build) would otherwise keep the trailer down until a
//! crew drove out: after [`MAX_STARTS`] starts without READY the previous configuration is put
//! back by itself, and the trailer reports the rollback in its health (`FILE.rolled-back`
//! keeps when).
use std::path::{Path, PathBuf};

/// Starts a configuration on trial gets before it is rolled back.
pub const MAX_STARTS: u32 = 2;

fn sibling(file: &Path, suffix: &str) -> PathBuf {
    let mut s = file.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// What [`begin`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// No trial under way.
    Settled,
    /// A configuration on trial, started for the `n`th time.
    OnTrial(u32),
    /// The configuration on trial failed too often: the previous one is back.
    RolledBack,
}

/// Marks a configuration just written over `file` as on trial.
pub fn put_on_trial(file: &Path) -> std::io::Result<()> {
    std::fs::write(sibling(file, ".trial"), b"0")
}

/// Counts a start against a configuration on trial, or rolls it back after too many. Called
/// before the configuration is read.
pub fn begin(file: &Path, now: i64) -> std::io::Result<Started> {
    let trial = sibling(file, ".trial");
    let Ok(text) = std::fs::read_to_string(&trial) else { return Ok(Started::Settled) };
    let starts = text.trim().parse::<u32>().unwrap_or(MAX_STARTS) + 1;
    if starts <= MAX_STARTS {
        std::fs::write(&trial, starts.to_string())?;
        return Ok(Started::OnTrial(starts));
    }
    let previous = sibling(file, ".previous");
    let tmp = sibling(file, ".rollback");
    std::fs::copy(&previous, &tmp)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, file)?;
    std::fs::write(sibling(file, ".rolled-back"), now.to_string())?;
    std::fs::remove_file(&trial)?;
    Ok(Started::RolledBack)
}

/// The daemon is READY on this configuration: the trial is over.
pub fn confirm(file: &Path) {
    let _ = std::fs::remove_file(sibling(file, ".trial"));
}

/// The files of a configuration as installed: the one the package or the image put in `/etc`
/// (read-only to the daemon), and the writable one of the state directory where a change from
/// the agency is written. The daemon runs from the writable file once there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFiles {
    pub installed: PathBuf,
    pub writable: Option<PathBuf>,
}

impl ConfigFiles {
    /// Where the configuration is read from: the writable file if the agency has written one,
    /// else the installed one.
    pub fn active(&self) -> &Path {
        match &self.writable {
            Some(w) if w.is_file() => w,
            _ => &self.installed,
        }
    }

    /// Where a change from afar is written (and its trial kept).
    pub fn target(&self) -> &Path {
        self.writable.as_deref().unwrap_or(&self.installed)
    }
}

/// When a configuration was last rolled back (for health).
pub fn rolled_back_at(file: &Path) -> Option<i64> {
    std::fs::read_to_string(sibling(file, ".rolled-back")).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_that_never_starts_is_rolled_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("appliance.toml");
        std::fs::write(sibling(&file, ".previous"), "old").expect("previous");
        std::fs::write(&file, "new").expect("new");
        assert_eq!(begin(&file, 1).expect("begin"), Started::Settled, "nothing on trial");
        put_on_trial(&file).expect("trial");
        assert_eq!(begin(&file, 2).expect("begin"), Started::OnTrial(1));
        assert_eq!(begin(&file, 3).expect("begin"), Started::OnTrial(2));
        assert_eq!(begin(&file, 4).expect("begin"), Started::RolledBack);
        assert_eq!(std::fs::read_to_string(&file).expect("file"), "old");
        assert_eq!(rolled_back_at(&file), Some(4));
        assert_eq!(
            begin(&file, 5).expect("begin"),
            Started::Settled,
            "the old one is not on trial"
        );
    }

    /// The installed file is read until the agency writes one of its own; a rollback of that
    /// one brings back what the installed file held.
    #[test]
    fn a_change_from_afar_goes_to_the_writable_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = ConfigFiles {
            installed: dir.path().join("etc.toml"),
            writable: Some(dir.path().join("state.toml")),
        };
        std::fs::write(&files.installed, "installed").expect("installed");
        assert_eq!(files.active(), files.installed.as_path());
        assert_eq!(files.target(), dir.path().join("state.toml").as_path());
        std::fs::write(sibling(files.target(), ".previous"), "installed").expect("previous");
        std::fs::write(files.target(), "remote").expect("remote");
        assert_eq!(files.active(), files.target());
        put_on_trial(files.target()).expect("trial");
        for t in 1..=MAX_STARTS as i64 {
            assert!(matches!(begin(files.target(), t).expect("begin"), Started::OnTrial(_)));
        }
        assert_eq!(begin(files.target(), 9).expect("begin"), Started::RolledBack);
        let active = std::fs::read_to_string(files.active()).expect("active");
        assert_eq!(active, "installed");
        let only = ConfigFiles { installed: files.installed.clone(), writable: None };
        assert_eq!(only.target(), only.installed.as_path());
    }

    #[test]
    fn a_configuration_that_starts_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("appliance.toml");
        std::fs::write(sibling(&file, ".previous"), "old").expect("previous");
        std::fs::write(&file, "new").expect("new");
        put_on_trial(&file).expect("trial");
        assert_eq!(begin(&file, 1).expect("begin"), Started::OnTrial(1));
        confirm(&file);
        for t in 2..5 {
            assert_eq!(begin(&file, t).expect("begin"), Started::Settled);
        }
        assert_eq!(std::fs::read_to_string(&file).expect("file"), "new");
    }
}
