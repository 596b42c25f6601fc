//! `sync-server`: the agency's ALPR server and its administration commands.
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use sync_server::Config;
use sync_server::audit::Entry;
use sync_server::records::Records;

#[derive(Parser)]
#[command(name = "sync-server", version, about = "ALPR agency sync server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
        #[arg(long)]
        config: PathBuf,
        /// Why the data is accessed (recorded in the audit trail).
        #[arg(long)]
        purpose: String,
        /// The case, complaint or incident number.
        #[arg(long)]
        case: String,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// List hotlist alerts (an audited access). Every alert must be verified against the state
    /// systems before any action.
    Alerts {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        case: String,
        #[arg(long)]
        json: bool,
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
        Command::Reads { config, purpose, case, limit, json } => {
            if purpose.trim().is_empty() || case.trim().is_empty() {
                anyhow::bail!(
                    "a purpose and a case number are required to access reads (Minn. Stat. 13.824)"
                );
            }
            let config = Config::load(&config)?;
            runtime()?.block_on(async {
                let records = Records::open(&config.database_url()).await?;
                let reads = records.list_reads(limit).await?;
                records
                    .audit(&Entry {
                        at: now_ms(),
                        actor: cli_actor(),
                        action: "reads.list".into(),
                        purpose: purpose.clone(),
                        case_number: case.clone(),
                        detail: format!("limit={limit}"),
                        result_count: reads.len() as i64,
                    })
                    .await?;
                for r in &reads {
                    if json {
                        println!("{}", serde_json::to_string(r)?);
                    } else {
                        println!(
                            "{:<10} {:<12} {:>5.2}  {}  {:.5},{:.5}  read {} of {}",
                            r.plate,
                            r.trailer_id,
                            r.confidence,
                            r.seen_at,
                            r.lat,
                            r.lon,
                            r.read_id,
                            r.trailer_id
                        );
                    }
                }
                records.close().await;
                anyhow::Ok(())
            })
        }
        Command::Alerts { config, purpose, case, json } => {
            if purpose.trim().is_empty() || case.trim().is_empty() {
                anyhow::bail!("a purpose and a case number are required to access alerts");
            }
            let config = Config::load(&config)?;
            runtime()?.block_on(async {
                let records = Records::open(&config.database_url()).await?;
                let alerts = records.list_alerts(1000).await?;
                records
                    .audit(&Entry {
                        at: now_ms(),
                        actor: cli_actor(),
                        action: "alerts.list".into(),
                        purpose,
                        case_number: case,
                        detail: String::new(),
                        result_count: alerts.len() as i64,
                    })
                    .await?;
                records.close().await;
                for a in &alerts {
                    if json {
                        println!("{}", serde_json::to_string(a)?);
                    } else {
                        println!(
                            "HIT {:<10} {:<24} list {} {} case {}  {} (verify with MNJIS/NLETS before acting)",
                            a.plate,
                            a.category,
                            a.list_name,
                            a.trailer_id,
                            a.case_number.as_deref().unwrap_or("-"),
                            a.seen_at
                        );
                    }
                }
                anyhow::Ok(())
            })
        }
        Command::Health { config } => {
            let config = Config::load(&config)?;
            runtime()?.block_on(async {
                let records = Records::open(&config.database_url()).await?;
                let health = records.health().await?;
                records.close().await;
                for h in health {
                    println!("{h}");
                }
                anyhow::Ok(())
            })
        }
        Command::DeadLetters { config } => {
            let config = Config::load(&config)?;
            runtime()?.block_on(async {
                let records = Records::open(&config.database_url()).await?;
                let letters = records.dead_letters().await?;
                records
                    .audit(&Entry {
                        at: now_ms(),
                        actor: cli_actor(),
                        action: "dead_letters.list".into(),
                        purpose: "inspect refused messages".into(),
                        case_number: String::new(),
                        detail: String::new(),
                        result_count: letters.len() as i64,
                    })
                    .await?;
                records.close().await;
                for (topic, reason) in letters {
                    println!("{}", serde_json::json!({"topic": topic, "reason": reason}));
                }
                anyhow::Ok(())
            })
        }
        Command::AuditVerify { config } => {
            let config = Config::load(&config)?;
            runtime()?.block_on(async {
                let records = Records::open(&config.database_url()).await?;
                let result = records.audit_verify().await?;
                records.close().await;
                match result {
                    Ok(n) => {
                        println!("audit trail intact: {n} entries");
                        Ok(())
                    }
                    Err(e) => anyhow::bail!("audit trail broken: {e}"),
                }
            })
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
