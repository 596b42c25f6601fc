//! `sync-server`: the agency's ALPR server and its administration commands.
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use sync_server::Config;
use sync_server::audit::Entry;
use sync_server::records::Records;

#[derive(Parser)]
#[command(name = "sync-server", version, about = "ALPR agency sync server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What every audited access command takes.
#[derive(clap::Args)]
struct Access {
    #[arg(long)]
    config: PathBuf,
    /// Why the data is accessed (recorded in the audit trail).
    #[arg(long)]
    purpose: String,
    /// The case, complaint or incident number.
    #[arg(long)]
    case: String,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the default configuration (TOML).
    PrintDefaultConfig,
    /// List stored reads (an audited access: purpose and case number are required).
    Reads {
        #[command(flatten)]
        access: Access,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// List hotlist alerts (an audited access). Every alert must be verified against the state
    /// systems before any action.
    Alerts {
        #[command(flatten)]
        access: Access,
    },
    /// Trailer health at a glance: the latest report of each trailer (JSON lines).
    Health {
        #[arg(long)]
        config: PathBuf,
    },
    /// List the messages the server refused, with the reason (topic and reason; payloads stay in
    /// the database for inspection).
    DeadLetters {
        #[arg(long)]
        config: PathBuf,
    },
    /// Send commands to trailers: queued here, delivered by the running server (at most a few
    /// at a time per trailer, again if unanswered), each trailer's answer kept with it.
    Downlink {
        #[arg(long)]
        config: PathBuf,
        #[command(subcommand)]
        command: DownlinkCommand,
    },
    /// Check the audit trail's hash chain.
    AuditVerify {
        #[arg(long)]
        config: PathBuf,
    },
    /// The agency CA and certificates.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Write a Mosquitto configuration (TLS listener, CN as user name, ACLs) into a directory.
    BrokerConfig {
        #[arg(long)]
        pki: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        #[arg(long, default_value_t = 8883)]
        port: u16,
        /// Run the broker as this user (it must be able to read the broker's key).
        #[arg(long)]
        run_as: Option<String>,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create the agency CA, the broker's and the server's certificates (idempotent).
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "Example Police Department")]
        agency: String,
        /// Host names and addresses the broker is reached at.
        #[arg(long = "broker-host", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        broker_hosts: Vec<String>,
    },
    /// Issue a client certificate for a trailer or an operator (CN = name).
    Issue {
        #[arg(long)]
        dir: PathBuf,
        name: String,
    },
}

#[derive(Subcommand)]
enum DownlinkCommand {
    /// A new version of a hotlist (CSV: plate,state,category,source[,case_number]), in chunks
    /// verified by SHA-256; the trailer switches to it only when all of it arrived.
    Hotlist {
        #[arg(long = "trailer", required = true)]
        trailers: Vec<String>,
        #[arg(long)]
        name: String,
        /// Must be above the version the trailers hold.
        #[arg(long)]
        version: u64,
        file: PathBuf,
    },
    /// Hold reads on the trailer beyond the retention period (active investigation or an
    /// exculpatory-evidence request).
    Hold {
        #[arg(long = "trailer", required = true)]
        trailers: Vec<String>,
        #[arg(long)]
        hold_id: u64,
        #[arg(long, value_parser = ["active-investigation", "exculpatory"])]
        kind: String,
        #[arg(long)]
        case: String,
        /// Read ids, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        reads: Vec<u64>,
    },
    /// Release a hold: its reads fall under retention again.
    Release {
        #[arg(long = "trailer", required = true)]
        trailers: Vec<String>,
        #[arg(long)]
        hold_id: u64,
    },
    /// Address Confidentiality Program digests (HMAC-SHA-256 under the agency key, hex):
    /// matching reads are destroyed and never collected again.
    Acp {
        #[arg(long = "trailer", required = true)]
        trailers: Vec<String>,
        #[arg(long = "digest", required = true)]
        digests: Vec<String>,
    },
    /// Ask for a health report now.
    Health {
        #[arg(long = "trailer", required = true)]
        trailers: Vec<String>,
    },
    /// Ask for a picture of a read (pictures on request).
    Picture {
        #[arg(long)]
        trailer: String,
        #[arg(long)]
        read: u64,
        /// The context picture instead of the plate crop.
        #[arg(long)]
        context: bool,
    },
    /// A new appliance configuration (a whole TOML file, as `appliance print-default-config`
    /// writes it): the trailer refuses changes to its id, data directory or link settings,
    /// writes the rest over its file (keeping FILE.previous) and restarts on it.
    Config {
        #[arg(long = "trailer", required = true)]
        trailers: Vec<String>,
        file: PathBuf,
    },
    /// The downlinks sent, newest first, with each trailer's answer.
    List {
        #[arg(long)]
        trailer: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

fn parse_digest(hex_text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(hex_text.trim())
        .with_context(|| format!("ACP digest {hex_text:?} is not hex"))?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("an ACP digest is 32 bytes (64 hex digits)"))
}

/// Queues `command` for each trailer, audited as `action`; prints the downlink ids.
fn queue_for(
    config: &Path,
    trailers: &[String],
    command: sync_server::downlink::Command,
    action: &str,
    purpose: &str,
    case: &str,
) -> anyhow::Result<()> {
    for t in trailers {
        anyhow::ensure!(trailer_wire::topic::valid_id(t), "invalid trailer id {t:?}");
    }
    let summary = command.summary();
    let ids = with_records(config, async |r: &Records| {
        let mut ids = Vec::new();
        for t in trailers {
            ids.push(
                sync_server::downlink::queue(r, t, command.clone(), &cli_actor(), now_ms()).await?,
            );
        }
        let detail = format!("{summary} to {}", trailers.join(","));
        r.audit(&entry(action, purpose, case, detail, ids.len())).await?;
        Ok(ids)
    })?;
    for (t, id) in trailers.iter().zip(ids) {
        println!("downlink {id} queued for {t}: {summary}");
    }
    Ok(())
}

fn downlink(config: &Path, command: DownlinkCommand) -> anyhow::Result<()> {
    use sync_server::downlink::Command as C;
    use trailer_wire::{HoldKind, PictureKind};
    match command {
        DownlinkCommand::Hotlist { trailers, name, version, file } => {
            anyhow::ensure!(trailer_wire::topic::valid_id(&name), "invalid list name {name:?}");
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let ids = with_records(config, async |r: &Records| {
                let mut all = Vec::new();
                for t in &trailers {
                    anyhow::ensure!(trailer_wire::topic::valid_id(t), "invalid trailer id {t:?}");
                    let ids = sync_server::downlink::queue_hotlist(
                        r,
                        t,
                        &name,
                        version,
                        &bytes,
                        &cli_actor(),
                        now_ms(),
                    )
                    .await?;
                    all.push((t.clone(), ids));
                }
                let detail = format!(
                    "hotlist {name} version {version} ({} bytes) to {}",
                    bytes.len(),
                    trailers.join(",")
                );
                r.audit(&entry("downlink.hotlist", "hotlist update", "", detail, trailers.len()))
                    .await?;
                Ok(all)
            })?;
            for (t, ids) in ids {
                println!("hotlist {name} version {version} queued for {t} in {} chunks", ids.len());
            }
            Ok(())
        }
        DownlinkCommand::Hold { trailers, hold_id, kind, case, reads } => {
            anyhow::ensure!(!case.trim().is_empty(), "a hold needs a case number");
            let kind = if kind == "exculpatory" {
                HoldKind::Exculpatory
            } else {
                HoldKind::ActiveInvestigation
            };
            let cmd = C::PlaceHold { hold_id, kind, case_number: case.clone(), read_ids: reads };
            queue_for(config, &trailers, cmd, "downlink.hold", "hold", &case)
        }
        DownlinkCommand::Release { trailers, hold_id } => {
            queue_for(config, &trailers, C::ReleaseHold { hold_id }, "downlink.release", "hold", "")
        }
        DownlinkCommand::Acp { trailers, digests } => {
            let digests = digests.iter().map(|d| parse_digest(d)).collect::<anyhow::Result<_>>()?;
            let cmd = C::AcpAdd { digests };
            queue_for(config, &trailers, cmd, "downlink.acp", "address confidentiality", "")
        }
        DownlinkCommand::Health { trailers } => {
            queue_for(config, &trailers, C::SendHealth, "downlink.health", "status", "")
        }
        DownlinkCommand::Picture { trailer, read, context } => {
            let kind = if context { PictureKind::Context } else { PictureKind::PlateCrop };
            let cmd = C::SendPicture { read_id: read, kind };
            queue_for(config, &[trailer], cmd, "downlink.picture", "picture on request", "")
        }
        DownlinkCommand::Config { trailers, file } => {
            let toml = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            anyhow::ensure!(
                toml.len() < 512 * 1024,
                "{} is too large for a configuration",
                file.display()
            );
            let cmd = C::Config { toml };
            queue_for(config, &trailers, cmd, "downlink.config", "configuration", "")
        }
        DownlinkCommand::List { trailer, limit, json } => {
            let rows = with_records(config, async |r: &Records| {
                Ok(r.downlinks(trailer.as_deref(), limit).await?)
            })?;
            print_rows(&rows, json, |d| {
                let state = match d.applied {
                    None => format!("waiting ({} sends)", d.attempts),
                    Some(true) => "applied".into(),
                    Some(false) => "refused".into(),
                };
                format!(
                    "{:>6} {:<12} {:<40} {:<20} {}",
                    d.id,
                    d.trailer_id,
                    d.summary,
                    state,
                    d.answer.as_deref().unwrap_or("")
                )
            })
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into())
    )
}

/// Opens the agency's records, runs `f`, closes them.
fn with_records<T>(
    config: &Path,
    f: impl AsyncFnOnce(&Records) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let config = Config::load(config)?;
    runtime()?.block_on(async {
        let records = Records::open(&config.database_url()).await?;
        let out = f(&records).await;
        records.close().await;
        out
    })
}

/// Access to reads and alerts states why and for which case (Minn. Stat. 13.824).
fn require_purpose(purpose: &str, case: &str, what: &str) -> anyhow::Result<()> {
    if purpose.trim().is_empty() || case.trim().is_empty() {
        anyhow::bail!(
            "a purpose and a case number are required to access {what} (Minn. Stat. 13.824)"
        );
    }
    Ok(())
}

/// The audit entry for a command-line access by the person running it.
fn entry(action: &str, purpose: &str, case: &str, detail: String, count: usize) -> Entry {
    Entry {
        at: now_ms(),
        actor: cli_actor(),
        action: action.into(),
        purpose: purpose.into(),
        case_number: case.into(),
        detail,
        result_count: count as i64,
    }
}

/// Prints rows one per line: as JSON, or as the table line `line` makes.
fn print_rows<T: serde::Serialize>(
    rows: &[T],
    json: bool,
    line: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    for r in rows {
        if json {
            println!("{}", serde_json::to_string(r)?);
        } else {
            println!("{}", line(r));
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::PrintDefaultConfig => {
            print!("{}", Config::default_toml());
            Ok(())
        }
        Command::Run { config } => {
            init_logging();
            let config = Config::load(&config)?;
            runtime()?.block_on(async {
                let (tx, rx) = tokio::sync::watch::channel(false);
                tokio::spawn(async move {
                    wait_for_signal().await;
                    tracing::info!("stop requested");
                    let _ = tx.send(true);
                });
                sync_server::run(config, rx).await
            })?;
            Ok(())
        }
        Command::Reads { access: Access { config, purpose, case, json }, limit } => {
            require_purpose(&purpose, &case, "reads")?;
            let reads = with_records(&config, async |r: &Records| {
                let reads = r.list_reads(limit).await?;
                let detail = format!("limit={limit}");
                r.audit(&entry("reads.list", &purpose, &case, detail, reads.len())).await?;
                Ok(reads)
            })?;
            print_rows(&reads, json, |r| {
                format!(
                    "{:<10} {:<12} {:>5.2}  {}  {:.5},{:.5}  read {}",
                    r.plate, r.trailer_id, r.confidence, r.seen_at, r.lat, r.lon, r.read_id
                )
            })
        }
        Command::Alerts { access: Access { config, purpose, case, json } } => {
            require_purpose(&purpose, &case, "alerts")?;
            let alerts = with_records(&config, async |r: &Records| {
                let alerts = r.list_alerts(1000).await?;
                r.audit(&entry("alerts.list", &purpose, &case, String::new(), alerts.len()))
                    .await?;
                Ok(alerts)
            })?;
            print_rows(&alerts, json, |a| {
                format!(
                    "HIT {:<10} {:<24} list {} {} case {}  {} (verify with MNJIS/NLETS before acting)",
                    a.plate,
                    a.category,
                    a.list_name,
                    a.trailer_id,
                    a.case_number.as_deref().unwrap_or("-"),
                    a.seen_at
                )
            })
        }
        Command::Health { config } => {
            // Status, not data: no plate or read, so not an audited access.
            for h in with_records(&config, async |r: &Records| Ok(r.health().await?))? {
                println!("{h}");
            }
            Ok(())
        }
        Command::DeadLetters { config } => {
            let letters = with_records(&config, async |r: &Records| {
                let letters = r.dead_letters().await?;
                let why = "inspect refused messages";
                r.audit(&entry("dead_letters.list", why, "", String::new(), letters.len())).await?;
                Ok(letters)
            })?;
            for (topic, reason) in letters {
                println!("{}", serde_json::json!({"topic": topic, "reason": reason}));
            }
            Ok(())
        }
        Command::Downlink { config, command } => downlink(&config, command),
        Command::AuditVerify { config } => {
            match with_records(&config, async |r: &Records| Ok(r.audit_verify().await?))? {
                Ok(n) => {
                    println!("audit trail intact: {n} entries");
                    Ok(())
                }
                Err(e) => anyhow::bail!("audit trail broken: {e}"),
            }
        }
        Command::Pki { command: PkiCommand::Init { dir, agency, broker_hosts } } => {
            sync_server::pki::init(&dir, &agency, &broker_hosts)?;
            println!("agency CA and certificates in {}", dir.display());
            Ok(())
        }
        Command::Pki { command: PkiCommand::Issue { dir, name } } => {
            let pem = sync_server::pki::issue(&dir, &name)?;
            println!("{}", pem.display());
            Ok(())
        }
        Command::BrokerConfig { pki, out, bind, port, run_as } => {
            let pki =
                pki.canonicalize().with_context(|| format!("PKI directory {}", pki.display()))?;
            std::fs::create_dir_all(&out)?;
            let out = out.canonicalize()?;
            sync_server::broker::write(&sync_server::broker::BrokerSetup {
                pki_dir: &pki,
                state_dir: &out,
                bind: &bind,
                port,
                run_as: run_as.as_deref(),
            })?;
            println!("{}", out.join("mosquitto.conf").display());
            Ok(())
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    if let (Ok(mut term), Ok(mut int)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    } else {
        let _ = tokio::signal::ctrl_c().await;
    }
}
