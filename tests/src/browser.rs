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
    run(&["--virtual-time-budget=2000".into(), "--dump-dom".into(), url.into()])
}

/// What a page looks like at one window width, as the browser laid it out.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The page is wider than the window (it scrolls sideways).
    pub overflows: bool,
    /// axe-core's serious and critical violations (rule ids, with the elements' selectors).
    pub serious: Vec<String>,
    /// The rendered DOM.
    pub dom: String,
}

/// axe-core's script, as `scripts/setup.sh` installs it.
pub fn axe_script() -> anyhow::Result<std::path::PathBuf> {
    let cache = std::env::var("TRAILER_CACHE").map(std::path::PathBuf::from).unwrap_or_else(|_| {
        std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(".cache/trailer-alpr")
    });
    let js = cache.join("axe-core/axe-4.10.3.min.js");
    anyhow::ensure!(js.exists(), "{} is missing: run scripts/setup.sh", js.display());
    Ok(js)
}

/// Lays `html` (a whole page) out in headless Chromium `width` pixels wide and runs axe-core
/// (WCAG 2.1 A and AA rules) in it. The page is loaded from a file beside a copy of axe-core,
/// with one script added at its end that writes the results into the DOM.
pub fn layout(html: &str, width: u32) -> anyhow::Result<Layout> {
    let dir = tempfile::tempdir()?;
    std::fs::copy(axe_script()?, dir.path().join("axe.min.js"))?;
    let probe = "<script src=\"axe.min.js\"></script><script>\
        axe.run(document,{runOnly:{type:'tag',values:['wcag2a','wcag2aa','wcag21a','wcag21aa']}})\
        .then(function(r){var bad=r.violations.filter(function(v){return v.impact==='serious'||\
        v.impact==='critical'}).map(function(v){return v.id+' '+v.nodes.map(function(n){\
        return n.target.join(' ')}).join(', ')});document.body.setAttribute('data-axe',\
        JSON.stringify(bad));document.body.setAttribute('data-overflow',String(\
        document.documentElement.scrollWidth>window.innerWidth));},function(e){\
        document.body.setAttribute('data-axe',JSON.stringify(['error '+e]));});</script>";
    let page = match html.rfind("</body>") {
        Some(at) => format!("{}{probe}{}", &html[..at], &html[at..]),
        None => format!("{html}{probe}"),
    };
    let file = dir.path().join("page.html");
    std::fs::write(&file, page)?;
    let dom = run(&[
        format!("--window-size={width},1000"),
        "--virtual-time-budget=20000".into(),
        "--dump-dom".into(),
        format!("file://{}", file.display()),
    ])?;
    let attr = |name: &str| -> Option<String> {
        let at = dom.find(&format!("{name}=\""))? + name.len() + 2;
        let end = dom[at..].find('"')? + at;
        Some(dom[at..end].replace("&quot;", "\"").replace("&amp;", "&"))
    };
    let axe = attr("data-axe").ok_or_else(|| anyhow::anyhow!("axe-core did not finish"))?;
    let serious: Vec<String> = serde_json::from_str(&axe)?;
    Ok(Layout { overflows: attr("data-overflow").as_deref() == Some("true"), serious, dom })
}

/// A screenshot of `url`, `width` pixels wide, saved as `png`.
pub fn screenshot(url: &str, width: u32, png: &std::path::Path) -> anyhow::Result<()> {
    if let Some(dir) = png.parent() {
        std::fs::create_dir_all(dir)?;
    }
    run(&[
        format!("--window-size={width},1600"),
        "--hide-scrollbars".into(),
        format!("--screenshot={}", png.display()),
        url.into(),
    ])?;
    anyhow::ensure!(png.exists(), "no screenshot of {url}");
    Ok(())
}

/// Runs headless Chromium with `args` (within 60 s); its standard output.
fn run(args: &[String]) -> anyhow::Result<String> {
    let browser = chromium()
        .ok_or_else(|| anyhow::anyhow!("Chromium is not installed (run scripts/setup.sh)"))?;
    let profile = tempfile::tempdir()?;
    let out = tempfile::NamedTempFile::new()?;
    let mut child = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        .args(["--no-first-run", "--allow-file-access-from-files"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .current_dir(profile.path())
        .stdout(out.reopen()?)
        .stderr(Stdio::null())
        .spawn()?;
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::ensure!(status.success(), "chromium exited with {status}: {args:?}");
            break;
        }
        if Instant::now() > end {
            let _ = child.kill();
            anyhow::bail!("chromium took over 60 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(std::fs::read_to_string(out.path())?)
}
