//! `bench-capture VIDEO`: plays a video file through the whole capture path (GStreamer decode,
//! rate limit, conversion, motion gate, engine, pass tracker) as fast as it goes, and ends with
//! one JSON line: `frames_decoded`, `frames_analysed`, `reads` (the read texts),
//! `analysed_fps`, `cpu_s_per_min` (CPU seconds of this process per minute of video, decode
//! included, model loading excluded) and `peak_rss_mb`. The configuration is the default one
//! (`--config FILE` to use another), with the video as the source.
use appliance::analyse::replay;
use appliance::config::Config;
use appliance::engine::Engine;
use nix::sys::resource::{UsageWho, getrusage};
use std::time::Instant;

fn cpu_s() -> anyhow::Result<f64> {
    let u = getrusage(UsageWho::RUSAGE_SELF)?;
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    Ok(t(u.user_time()) + t(u.system_time()))
}

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let mut args = std::env::args().skip(1);
    let mut cfg = Config::default();
    let mut video = None;
    while let Some(a) = args.next() {
        if a == "--config" {
            let path = args.next().ok_or_else(|| anyhow::anyhow!("--config needs a file"))?;
            cfg = Config::load(std::path::Path::new(&path))?;
        } else {
            video = Some(a);
        }
    }
    let video =
        video.ok_or_else(|| anyhow::anyhow!("usage: bench-capture [--config FILE] VIDEO"))?;
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
    println!(
        "{}",
        serde_json::json!({
            "frames_decoded": decoded,
            "frames_analysed": analysed,
            "reads": reads,
            "analysed_fps": r(analysed as f64 / wall.max(1e-9), 100.0),
            "cpu_s_per_min": r(cpu / video_min, 100.0),
            "peak_rss_mb": r(peak_rss_mb, 10.0),
            "video_s": r(run.video_ms as f64 / 1000.0, 10.0),
            "wall_s": r(wall, 100.0),
            "frames_gated": run.gate.skipped,
            "frames_skipped_undecoded": skipped,
        })
    );
    Ok(())
}
