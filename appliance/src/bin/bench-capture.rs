//! `bench-capture VIDEO`: plays a video file through the whole capture path (GStreamer decode,
//! rate limit, conversion, motion gate, engine, pass tracker) as fast as it goes, and ends with
//! one JSON line: `frames_decoded`, `frames_analysed`, `reads` (the read texts),
//! `analysed_fps`, `cpu_s_per_min` (CPU seconds of this process per minute of video, decode
//! included, model loading excluded) and `peak_rss_mb`. The configuration is the default one
//! (`--config FILE` to use another), with the video as the source.
//!
//! `--expected FILE` scores the reads against the passes the video holds (CSV
//! `start_ms,end_ms,plate[,source]`, as `photo-video` writes it): a read belongs to the pass in
//! view at its first sighting; `exact` is the share of passes with a read of exactly their plate,
//! `reads` the number of reads, `missed` the passes without any read and `extra` the reads beyond
//! one per pass. `BENCH_VERBOSE=1` lists each pass that was not read exactly.
use appliance::analyse::replay;
use appliance::config::Config;
use appliance::engine::Engine;
use appliance::engine::plate::normalise_text;
use appliance::pass::PassRead;
use nix::sys::resource::{UsageWho, getrusage};
use std::time::Instant;

fn cpu_s() -> anyhow::Result<f64> {
    let u = getrusage(UsageWho::RUSAGE_SELF)?;
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    Ok(t(u.user_time()) + t(u.system_time()))
}

/// A pass the video holds.
struct Expected {
    start_ms: i64,
    end_ms: i64,
    plate: String,
    source: String,
}

fn expected(path: &str, us: bool) -> anyhow::Result<Vec<Expected>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if line.trim().is_empty() || (n == 0 && f.first() == Some(&"start_ms")) {
            continue;
        }
        let bad = || anyhow::anyhow!("{path}:{}: expected start_ms,end_ms,plate[,source]", n + 1);
        let [start, end, plate, rest @ ..] = f.as_slice() else { return Err(bad()) };
        out.push(Expected {
            start_ms: start.parse().map_err(|_| bad())?,
            end_ms: end.parse().map_err(|_| bad())?,
            plate: normalise_text(plate, us),
            source: rest.first().map_or_else(String::new, |s| (*s).to_string()),
        });
    }
    Ok(out)
}

/// The figures of the reads against the expected passes.
fn score(reads: &[PassRead], passes: &[Expected], us: bool) -> serde_json::Value {
    let mut of_pass: Vec<Vec<String>> = vec![Vec::new(); passes.len()];
    let mut strays = 0;
    for r in reads {
        match passes.iter().position(|p| (p.start_ms..p.end_ms).contains(&r.first_seen)) {
            Some(i) => of_pass[i].push(normalise_text(&r.plate, us)),
            None => strays += 1,
        }
    }
    let exact = passes.iter().zip(&of_pass).filter(|(p, r)| r.contains(&p.plate)).count();
    let missed = of_pass.iter().filter(|r| r.is_empty()).count();
    let extra = strays + of_pass.iter().map(|r| r.len().saturating_sub(1)).sum::<usize>();
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        for (p, r) in passes.iter().zip(&of_pass) {
            if !r.contains(&p.plate) {
                eprintln!("{}\t{}\t{}\t{:?}", p.start_ms, p.source, p.plate, r);
            }
        }
    }
    let n = passes.len().max(1) as f64;
    serde_json::json!({
        "passes": passes.len(),
        "exact": (exact as f64 / n * 10_000.0).round() / 10_000.0,
        "missed": missed,
        "extra": extra,
    })
}

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let mut args = std::env::args().skip(1);
    let mut cfg = Config::default();
    let (mut video, mut expected_file) = (None, None);
    while let Some(a) = args.next() {
        if a == "--config" {
            let path = args.next().ok_or_else(|| anyhow::anyhow!("--config needs a file"))?;
            cfg = Config::load(std::path::Path::new(&path))?;
        } else if a == "--expected" {
            expected_file =
                Some(args.next().ok_or_else(|| anyhow::anyhow!("--expected needs a file"))?);
        } else {
            video = Some(a);
        }
    }
    let video = video.ok_or_else(|| {
        anyhow::anyhow!("usage: bench-capture [--config FILE] [--expected PASSES.csv] VIDEO")
    })?;
    let us = cfg.engine.us_o_as_zero;
    let passes = expected_file.as_deref().map(|f| expected(f, us)).transpose()?;
    cfg.capture.source = video.clone();
    let engine = Engine::load(&cfg.engine)?;
    let (cpu0, wall0) = (cpu_s()?, Instant::now());
    let run = replay(&cfg, engine)?;
    let (cpu, wall) = (cpu_s()? - cpu0, wall0.elapsed().as_secs_f64());
    let reads: Vec<String> = run.reads.iter().map(|r| r.plate.clone()).collect();
    let video_min = (run.video_ms as f64 / 60_000.0).max(1e-9);
    let peak_rss_mb = getrusage(UsageWho::RUSAGE_SELF)?.max_rss() as f64 / 1024.0;
    let (decoded, analysed, skipped) = (run.decoded, run.analysed, run.skipped_undecoded);
    eprintln!(
        "{video}: {:.1} s of video, {decoded} frames decoded, {skipped} skipped undecoded, {} \
         delivered, {analysed} analysed ({:?}), {} reads in {wall:.1} s wall, {cpu:.1} s CPU",
        run.video_ms as f64 / 1000.0,
        run.delivered,
        run.gate,
        reads.len()
    );
    let r = |x: f64, d: f64| (x * d).round() / d;
    let mut line = serde_json::json!({
            "frames_decoded": decoded,
            "frames_analysed": analysed,
            "reads": reads.len(),
            "analysed_fps": r(analysed as f64 / wall.max(1e-9), 100.0),
            "cpu_s_per_min": r(cpu / video_min, 100.0),
            "peak_rss_mb": r(peak_rss_mb, 10.0),
            "video_s": r(run.video_ms as f64 / 1000.0, 10.0),
            "wall_s": r(wall, 100.0),
            "frames_gated": run.gate.skipped,
            "frames_skipped_undecoded": skipped,
    });
    if let Some(obj) = line.as_object_mut() {
        match &passes {
            Some(p) => {
                if let serde_json::Value::Object(s) = score(&run.reads, p, us) {
                    obj.extend(s);
                }
            }
            // Without a list, the texts themselves (a short scene's).
            None => {
                obj.insert("plates".into(), serde_json::json!(reads));
            }
        }
    }
    println!("{line}");
    Ok(())
}
