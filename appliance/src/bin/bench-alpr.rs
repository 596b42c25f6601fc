//! `bench-alpr DIR [DIR...]`: accuracy and speed of the engine on folders in the OpenALPR
//! benchmark layout (`IMAGE.jpg` beside `IMAGE.txt` holding `image x y w h PLATE`).
//!
//! Prints per-folder figures, then one JSON line with `images`, `det_recall`, `exact`, `edit1`,
//! `ms_median`, `ms_p90`, `detect_ms_median`, `read_ms_median` over all folders, and `peak_rss_mb`. Times are the
//! engine's (detection + reading), not JPEG decoding, measured after one warm-up image.
//!
//! Options: `--engine-config FILE` (a TOML `[engine]` table's contents, to compare models or
//! settings); `--reference CMD` runs a reference pipeline on the same folders in the same run
//! (`alpr-ref DIR... --threads N --json OUT`, as `../shared/tools/alpr-ref` takes), and adds its
//! figures and the ratio of our median time to its median time (`python_*`, `speed_ratio`).
use appliance::engine::plate::normalise_text;
use appliance::engine::{Engine, EngineConfig, PlateBox, load_picture};
use appliance::pass::edit_distance;
use std::path::{Path, PathBuf};

struct Row {
    det_hit: bool,
    exact: bool,
    edit1: bool,
    ms: f64,
    detect_ms: f64,
    read_ms: f64,
}

fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let k = (s.len() - 1) as f64 * q;
    let (f, c) = (k.floor() as usize, k.ceil() as usize);
    s[f] + (s[c] - s[f]) * (k - f as f64)
}

fn truth(txt: &Path, us: bool) -> Option<(PlateBox, String)> {
    let line = std::fs::read_to_string(txt).ok()?;
    let parts: Vec<&str> = line.lines().next()?.split('\t').collect();
    if parts.len() < 6 {
        return None;
    }
    let n = |i: usize| parts[i].trim().parse::<f32>().ok();
    Some((PlateBox { x: n(1)?, y: n(2)?, w: n(3)?, h: n(4)? }, normalise_text(parts[5], us)))
}

fn images(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
        .filter_map(|p| {
            let t = p.with_extension("txt");
            t.is_file().then_some((p, t))
        })
        .collect();
    v.sort();
    v
}

fn summary(rows: &[Row]) -> serde_json::Value {
    let n = rows.len().max(1) as f64;
    let frac = |f: &dyn Fn(&Row) -> bool| {
        (rows.iter().filter(|r| f(r)).count() as f64 / n * 10_000.0).round() / 10_000.0
    };
    let ms: Vec<f64> = rows.iter().map(|r| r.ms).collect();
    let det: Vec<f64> = rows.iter().map(|r| r.detect_ms).collect();
    let read: Vec<f64> = rows.iter().map(|r| r.read_ms).collect();
    let r1 = |x: f64| (x * 10.0).round() / 10.0;
    serde_json::json!({
        "images": rows.len(),
        "det_recall": frac(&|r| r.det_hit),
        "exact": frac(&|r| r.exact),
        "edit1": frac(&|r| r.edit1),
        "ms_median": r1(percentile(&ms, 0.5)),
        "ms_p90": r1(percentile(&ms, 0.9)),
        "detect_ms_median": r1(percentile(&det, 0.5)),
        "read_ms_median": r1(percentile(&read, 0.5)),
    })
}

const USAGE: &str =
    "usage: bench-alpr [--engine-config FILE] [--reference CMD] DIR [DIR...] (OpenALPR layout)";

/// Runs the reference pipeline on the same folders; returns its per-image times and figures.
fn reference(cmd: &str, dirs: &[PathBuf], threads: usize) -> anyhow::Result<serde_json::Value> {
    let out = std::env::temp_dir().join(format!("bench-alpr-ref-{}.json", std::process::id()));
    let status = std::process::Command::new(cmd)
        .args(dirs)
        .args(["--threads", &threads.to_string(), "--json"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run reference {cmd}: {e}"))?;
    anyhow::ensure!(status.success(), "reference {cmd} failed: {status}");
    let text = std::fs::read_to_string(&out)?;
    let _ = std::fs::remove_file(&out);
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let (mut ms, mut det, mut exact, mut n) = (Vec::new(), Vec::new(), 0usize, 0usize);
    for set in v["sets"].as_object().into_iter().flat_map(|o| o.values()) {
        for img in set["images"].as_array().into_iter().flatten() {
            ms.push(img["total_ms"].as_f64().unwrap_or(f64::NAN));
            det.push(img["det_ms"].as_f64().unwrap_or(f64::NAN));
            exact += usize::from(img["exact"].as_bool().unwrap_or(false));
            n += 1;
        }
    }
    let r1 = |x: f64| (x * 10.0).round() / 10.0;
    Ok(serde_json::json!({
        "python_images": n,
        "python_exact": (exact as f64 / n.max(1) as f64 * 10_000.0).round() / 10_000.0,
        "python_ms_median": r1(percentile(&ms, 0.5)),
        "python_detect_ms_median": r1(percentile(&det, 0.5)),
    }))
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut dirs, mut engine_config, mut reference_cmd) = (Vec::new(), None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--engine-config" => engine_config = Some(args.next().ok_or(anyhow::anyhow!(USAGE))?),
            "--reference" => reference_cmd = Some(args.next().ok_or(anyhow::anyhow!(USAGE))?),
            _ if a.starts_with("--") => anyhow::bail!("{USAGE}"),
            _ => dirs.push(PathBuf::from(a)),
        }
    }
    if dirs.is_empty() {
        anyhow::bail!("{USAGE}");
    }
    let cfg: EngineConfig = match &engine_config {
        Some(f) => toml::from_str(&std::fs::read_to_string(f)?)?,
        None => EngineConfig::default(),
    };
    let us = cfg.us_o_as_zero;
    let mut engine = Engine::load(&cfg)?;
    let mut all = Vec::new();
    let mut warmed = false;
    for dir in &dirs {
        let list = images(dir);
        if list.is_empty() {
            anyhow::bail!("{}: no IMAGE.jpg with IMAGE.txt beside it", dir.display());
        }
        let mut rows = Vec::new();
        for (jpg, txt) in list {
            let Some((gt_box, gt)) = truth(&txt, us) else {
                eprintln!("{}: unreadable ground truth, skipped", txt.display());
                continue;
            };
            let pic = match load_picture(&jpg) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{}: {e}", jpg.display());
                    continue;
                }
            };
            if !warmed {
                engine.read(&pic)?;
                warmed = true;
            }
            let r = engine.read(&pic)?;
            let best = r.plates.first().map(|p| p.text.clone()).unwrap_or_default();
            let ed = edit_distance(&best, &gt);
            if std::env::var_os("BENCH_VERBOSE").is_some() {
                eprintln!(
                    "{}\t{gt}\t{best}\t{ed}",
                    jpg.file_name().and_then(|f| f.to_str()).unwrap_or("")
                );
            }
            rows.push(Row {
                det_hit: r.boxes.iter().any(|(b, _)| b.iou(&gt_box) >= 0.3),
                exact: ed == 0,
                edit1: ed <= 1,
                ms: r.detect_ms + r.read_ms,
                detect_ms: r.detect_ms,
                read_ms: r.read_ms,
            });
        }
        let mut s = summary(&rows);
        s["dir"] = serde_json::json!(dir.display().to_string());
        println!("{s}");
        all.extend(rows);
    }
    let mut total = summary(&all);
    // Peak resident memory of this process: the engine with both models, and the pictures.
    let peak_rss_mb = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)?
        .max_rss() as f64
        / 1024.0;
    total["peak_rss_mb"] = serde_json::json!((peak_rss_mb * 10.0).round() / 10.0);
    if let Some(cmd) = reference_cmd {
        let r = reference(&cmd, &dirs, cfg.threads)?;
        eprintln!("reference {cmd}: {r}");
        let ours = total["ms_median"].as_f64().unwrap_or(f64::NAN);
        let theirs = r["python_ms_median"].as_f64().unwrap_or(f64::NAN);
        if let (Some(t), Some(o)) = (total.as_object_mut(), r.as_object()) {
            t.extend(o.clone());
            t.insert(
                "speed_ratio".into(),
                serde_json::json!((ours / theirs * 1000.0).round() / 1000.0),
            );
        }
    }
    println!("{total}");
    Ok(())
}
