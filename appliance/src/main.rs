//! `appliance`: the trailer daemon and its tools.
use anyhow::Context;
use appliance::Config;
use appliance::engine::{Engine, load_picture};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
#[command(name = "appliance", version, about = "ALPR trailer appliance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        /// The installed configuration (read-only to the daemon).
        #[arg(long)]
        config: PathBuf,
        /// Where a configuration the agency sends is written (a writable file of the state
        /// directory); once it exists the daemon runs from it. Without it, changes from afar
        /// are written over `--config`.
        #[arg(long)]
        remote_config: Option<PathBuf>,
    },
    /// Print the default configuration (TOML), every key documented by its value.
    PrintDefaultConfig,
    /// Enrolment, on the trailer. First: makes its key (at sync.key_file, sealed with the store
    /// key when the name ends in .sealed; it never leaves the box) and prints a certificate
    /// request for the agency (`sync-server trailer enroll --request FILE --bundle OUT ID`).
    /// Then, with `--complete OUT`: installs the certificate and agency CA the agency sent,
    /// the configuration signing key, and the starting settings (the trailer's id, the broker).
    Enroll {
        #[arg(long)]
        config: PathBuf,
        /// The writable configuration (as `run --remote-config`): the starting settings are
        /// written there, leaving the installed file as it is.
        #[arg(long)]
        remote_config: Option<PathBuf>,
        /// The trailer's id in the request (default: trailer.id of the configuration).
        #[arg(long)]
        id: Option<String>,
        /// Write the request here instead of standard output.
        #[arg(long, conflicts_with = "complete")]
        out: Option<PathBuf>,
        /// The agency's answer (`sync-server trailer enroll --bundle`, or the console's
        /// trailers.enroll saved as a file): completes the enrolment.
        #[arg(long)]
        complete: Option<PathBuf>,
    },
    /// Import a new version of a hotlist (CSV: plate,state,category,source[,case_number]).
    HotlistImport {
        #[arg(long)]
        config: PathBuf,
        /// The list's name (e.g. mn-state).
        #[arg(long)]
        name: String,
        /// Must be newer than the current version.
        #[arg(long)]
        version: u64,
        /// The database the list comes from, as the public log of use names it.
        #[arg(long)]
        source: String,
        file: PathBuf,
    },
    /// Read plates in images (JPEG/PNG; folders are walked), one line per image.
    Read {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Engine settings from this config file (its [engine] table).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Each image is one plate, already cropped (by a person or another detector): read it
        /// whole, without detection.
        #[arg(long)]
        crops: bool,
        paths: Vec<PathBuf>,
    },
}

/// The trailer's certificate, key and agency CA as its configuration names them, the key
/// sealed with the store key when its file is `*.sealed`.
fn identity_of(config: &Config) -> anyhow::Result<appliance::sync::renew::Identity> {
    let seal = match &config.store.key_file {
        Some(k) => appliance::store::seal::Seal::with_key(
            &appliance::store::seal::read_key(k).map_err(anyhow::Error::msg)?,
        ),
        None => appliance::store::seal::Seal::none(),
    };
    Ok(appliance::sync::renew::Identity {
        cert: config.sync.cert_file.clone(),
        key: config.sync.key_file.clone(),
        ca: config.sync.ca_file.clone(),
        seal: Some(std::sync::Arc::new(seal)),
    })
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Plain text in journald and files, colours only on a terminal; one JSON object a line
    // for a log shipper (Loki, Vector) with TRAILER_LOG_FORMAT=json.
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("TRAILER_LOG_FORMAT").is_ok_and(|f| f == "json") {
        fmt.json().with_current_span(false).init();
    } else {
        fmt.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::PrintDefaultConfig => {
            print!("{}", Config::default_toml());
            Ok(())
        }
        Command::Run { config: installed, remote_config } => {
            init_logging();
            let files = appliance::trial::ConfigFiles { installed, writable: remote_config };
            let target = files.target().to_path_buf();
            let now = appliance::clock::Clock::now_ms(&appliance::clock::SystemClock);
            match appliance::trial::begin(&target, now) {
                Ok(appliance::trial::Started::OnTrial(n)) => tracing::warn!(
                    start = n,
                    "starting on the configuration the server sent (on trial until ready)"
                ),
                Ok(appliance::trial::Started::RolledBack) => tracing::error!(
                    "the configuration the server sent never started: the previous one is back"
                ),
                Ok(appliance::trial::Started::Settled) => {}
                Err(e) => tracing::error!(error = %e, "cannot keep the configuration's trial"),
            }
            let source = files.active().to_path_buf();
            tracing::info!(config = %source.display(), "configuration");
            let config = Config::load(&source)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(async {
                let (tx, rx) = tokio::sync::watch::channel(false);
                let deadline = std::time::Duration::from_secs(config.trailer.stop_deadline_s);
                let restart = std::sync::Arc::new(tokio::sync::Notify::new());
                let remote = appliance::sync::downlink::Remote {
                    config_file: Some(target.clone()),
                    config_source: Some(source.clone()),
                    on_ready: Some(target.clone()),
                    restart: Some(restart.clone()),
                    ..Default::default()
                };
                tokio::spawn(async move {
                    tokio::select! {
                        _ = wait_for_signal() => tracing::info!("stop requested"),
                        // systemd (Restart=always) starts the appliance again on the new file.
                        _ = restart.notified() => tracing::info!("stopping to restart on the new configuration"),
                    }
                    let _ = tx.send(true);
                    // A plain thread: it must fire even if the runtime itself is stuck.
                    std::thread::spawn(move || {
                        std::thread::sleep(deadline);
                        tracing::error!(
                            deadline_s = deadline.as_secs(),
                            "stop deadline passed: exiting with work unfinished (what was \
                             stored is durable; the outbox syncs on the next start)"
                        );
                        std::process::exit(1);
                    });
                });
                appliance::run(config, rx, remote).await
            })?;
            Ok(())
        }
        Command::Enroll { config, remote_config, id, out, complete } => {
            let files =
                appliance::trial::ConfigFiles { installed: config, writable: remote_config };
            let config = Config::load(files.active())?;
            let identity = identity_of(&config)?;
            match complete {
                Some(bundle) => {
                    let said = appliance::enrol::complete(&files, &config, &identity, &bundle)?;
                    println!("{said}");
                    Ok(())
                }
                None => {
                    appliance::enrol::request(&config, &identity, id.as_deref(), out.as_deref())
                }
            }
        }
        Command::HotlistImport { config, name, version, source, file } => {
            let config = Config::load(&config)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read hotlist {}", file.display()))?;
            let entries = appliance::store::hotlist::parse_csv(&text, config.engine.us_o_as_zero)
                .with_context(|| format!("hotlist {}", file.display()))?;
            let store = appliance::daemon::open_store(
                &config,
                std::sync::Arc::new(appliance::clock::SystemClock),
            )?;
            let meta = store.import_hotlist(&name, version, &source, &entries)?;
            store.mark_clean()?;
            println!(
                "{} version {}: {} entries from {}",
                meta.name, meta.version, meta.entries, meta.source
            );
            Ok(())
        }
        Command::Read { json, config, crops, paths } => {
            init_logging();
            let engine_cfg = match config {
                Some(p) => Config::load(&p)?.engine,
                None => appliance::engine::EngineConfig::default(),
            };
            let mut engine = Engine::load(&engine_cfg)?;
            let mut files = Vec::new();
            for p in &paths {
                collect(p, &mut files);
            }
            for f in files {
                print_reading(&mut engine, &f, json, crops);
            }
            Ok(())
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut int)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        entries.sort();
        for e in entries {
            let is_image = e
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"));
            if e.is_dir() || is_image {
                collect(&e, out);
            }
        }
    } else {
        out.push(p.to_path_buf());
    }
}

fn print_reading(engine: &mut Engine, path: &Path, json: bool, crops: bool) {
    let t0 = Instant::now();
    let result = load_picture(path).and_then(|pic| {
        let plates = if crops {
            let (w, h) = pic.dimensions();
            let whole = appliance::engine::PlateBox { x: 0.0, y: 0.0, w: w as f32, h: h as f32 };
            engine.read_box(&pic, whole, 1.0).map(|c| c.into_iter().collect())
        } else {
            engine.read(&pic).map(|r| r.plates)
        };
        plates.map_err(|e| e.to_string())
    });
    let elapsed_ms = (t0.elapsed().as_secs_f64() * 1e4).round() / 10.0;
    let image = path.display().to_string();
    match (result, json) {
        (Ok(plates), true) => {
            let plates: Vec<_> = plates
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "text": p.text,
                        "confidence": (f64::from(p.confidence) * 1000.0).round() / 1000.0,
                        "box": [p.bbox.x.round(), p.bbox.y.round(), p.bbox.w.round(), p.bbox.h.round()],
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({"image": image, "plates": plates, "elapsed_ms": elapsed_ms})
            );
        }
        (Err(e), true) => {
            println!(
                "{}",
                serde_json::json!({"image": image, "error": e, "elapsed_ms": elapsed_ms})
            );
        }
        (Ok(plates), false) => {
            let texts: Vec<String> =
                plates.iter().map(|p| format!("{} ({:.2})", p.text, p.confidence)).collect();
            println!(
                "{image}: {} [{elapsed_ms} ms]",
                if texts.is_empty() { "-".into() } else { texts.join(", ") }
            );
        }
        (Err(e), false) => println!("{image}: error: {e}"),
    }
}
