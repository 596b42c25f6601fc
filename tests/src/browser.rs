//! Headless Chromium for tests of the public pages: the page as the browser rendered it.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Chromium binary, if installed (`scripts/setup.sh` installs it).
pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })
}

/// Loads `url` in headless Chromium and returns the DOM after rendering (`--dump-dom`).
pub fn dump_dom(url: &str) -> anyhow::Result<String> {
    let browser = chromium()
        .ok_or_else(|| anyhow::anyhow!("Chromium is not installed (run scripts/setup.sh)"))?;
    let profile = tempfile::tempdir()?;
    let out = tempfile::NamedTempFile::new()?;
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=2000", "--dump-dom", url])
        .stdout(out.reopen()?)
        .stderr(Stdio::null())
        .spawn()?;
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::ensure!(status.success(), "chromium exited with {status} on {url}");
            break;
        }
        if Instant::now() > end {
            let _ = child.kill();
            anyhow::bail!("chromium took over 60 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(std::fs::read_to_string(out.path())?)
}
