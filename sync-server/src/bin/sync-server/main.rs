//! `sync-server`: the agency's ALPR server and its administration commands.
use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use sync_server::Config;
use sync_server::records::Records;
use util::{runtime, with_records};

mod compliance;
mod downlink;
mod identity;
mod util;

#[derive(Parser)]
#[command(name = "sync-server", version, about = "ALPR agency sync server")]
struct Cli {
    /// The server's configuration (before or after the subcommand).
    #[arg(
        long,
        global = true,
        env = "TRAILER_SERVER_CONFIG",
        default_value = "/etc/trailer-alpr-server/server.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

/// What every audited access command takes.
#[derive(clap::Args)]
struct Access {
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
    Run,
    /// Print the default configuration (TOML).
    PrintDefaultConfig,
    /// List stored reads (`reads.list`, a records supervisor's audited access: purpose and
    /// case number are required).
    Reads {
        #[command(flatten)]
        access: Access,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// List hotlist alerts (an audited access, as `alerts.list` from the console, by an
    /// operator). Every alert must be verified against the state systems before any action.
    Alerts {
        /// Recorded in the audit trail with the access.
        #[arg(long, default_value = "")]
        purpose: String,
        #[arg(long, default_value = "")]
        case: String,
        /// Only those not acknowledged.
        #[arg(long)]
        open: bool,
        #[arg(long)]
        limit: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Trailer health at a glance: the latest report of each trailer (JSON lines).
    Health,
    /// List the messages the server refused, with the reason (topic and reason; payloads stay in
    /// the database for inspection).
    DeadLetters,
    /// Send commands to trailers: queued here, delivered by the running server (at most a few
    /// at a time per trailer, again if unanswered), each trailer's answer kept with it.
    Downlink {
        #[command(subcommand)]
        command: DownlinkCommand,
    },
    /// The audit trail: verify its chain, or write the biennial audit report.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The fixed-location history: list (withheld ones included), name, mark as security
    /// information, end a deployment.
    Location {
        #[command(subcommand)]
        command: LocationCommand,
    },
    /// Suspension orders (Minn. Stat. 13.824 subd. 6): stop collection on every trailer and
    /// ingestion on the server until the order is lifted.
    Suspension {
        #[command(subcommand)]
        command: SuspensionCommand,
    },
    /// Holds that keep reads past retention (active investigation, exculpatory evidence).
    Hold {
        #[command(subcommand)]
        command: HoldCommand,
    },
    /// Notices to the BCA: list (due, overdue, sent), send, record one sent by hand, render.
    Notices {
        #[command(subcommand)]
        command: NoticeCommand,
    },
    /// One console request over the broker, as an operator (their certificate, whose CN is the
    /// user), and its answer as JSON; the interactive console when no command is given. Exits
    /// with 1 when the server refused it, saying why. The connection comes from the flags, else
    /// TRAILER_CONSOLE_* variables, else the profile (`--profile`, or
    /// ~/.config/trailer-alpr/console.toml: host, port, ca, cert, key).
    Console {
        #[arg(long, env = "TRAILER_CONSOLE_HOST")]
        broker_host: Option<String>,
        #[arg(long, env = "TRAILER_CONSOLE_PORT")]
        broker_port: Option<u16>,
        #[arg(long, env = "TRAILER_CONSOLE_CA")]
        ca: Option<PathBuf>,
        #[arg(long, env = "TRAILER_CONSOLE_CERT")]
        cert: Option<PathBuf>,
        #[arg(long, env = "TRAILER_CONSOLE_KEY")]
        key: Option<PathBuf>,
        /// The connection settings as a TOML file.
        #[arg(long, env = "TRAILER_CONSOLE_PROFILE")]
        profile: Option<PathBuf>,
        /// The operator: the CN of the certificate (read from it when not given; refused when
        /// it differs).
        #[arg(long)]
        user: Option<String>,
        /// Why, for commands that reach data about people (recorded in the audit trail).
        #[arg(long, default_value = "")]
        purpose: String,
        #[arg(long, default_value = "")]
        case: String,
        /// The command's arguments as a JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
        /// For hotlists.upload: the CSV file (sent in parts; args name and version); for
        /// trailers.enroll the trailer's request, for trailers.config the configuration.
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(long, default_value_t = 20)]
        timeout_s: u64,
        /// A command, e.g. status, plates.search (docs/CONSOLE.md); none for the interactive
        /// console.
        command: Option<String>,
    },
    /// Console users: grant a role under a written authorisation, list, disable.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Back up the whole database into the backup folder (`server.backup_dir`), with a
    /// manifest saying when the backup must be destroyed (its oldest read's retention day),
    /// and destroy the backups there whose day has come. Run it from a timer; the running
    /// server destroys expired backups too.
    Backup {
        /// Another folder than the configured one.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Keep the reads another agency shared with us (a release bundle in our layout): checked
    /// against its manifest, kept under our retention, holds, ACP and audit rules and marked
    /// with the agency they came from. Audited.
    ImportShared {
        /// The bundle's folder (manifest.json, reads.json, pictures/).
        #[arg(long)]
        dir: PathBuf,
        /// The agency that sent it.
        #[arg(long)]
        agency: String,
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        case: String,
    },
    /// Write the public pages (locations, log of use, audit trail) as static files.
    PublicExport {
        #[arg(long)]
        out: PathBuf,
        /// First local day of the log of use (default: 364 days ago).
        #[arg(long)]
        from: Option<String>,
        /// Last local day of the log of use (default: today).
        #[arg(long)]
        to: Option<String>,
    },
    /// The agency CA and certificates.
    Pki {
        #[command(subcommand)]
        command: identity::PkiCommand,
    },
    /// The trailer registry: enrol, list, revoke.
    Trailer {
        #[command(subcommand)]
        command: identity::TrailerCommand,
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
enum AuditCommand {
    /// Check the hash chain: any altered, removed or reordered entry breaks it. With
    /// `--anchor FILE`, also check the head recorded there by the last run (catching removed
    /// newest entries), then record the new head.
    Verify {
        #[arg(long)]
        anchor: Option<PathBuf>,
    },
    /// The biennial audit report for local days FROM..=TO: collection, classification, notices,
    /// use and access, destruction, and the state of the trail.
    Report {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        json: bool,
        /// Recorded in the audit trail.
        #[arg(long, default_value = "biennial audit")]
        purpose: String,
    },
    /// Record an independent audit's result: published on the public audit page at once, its
    /// report to the Commissioner due 30 days after the audit (`audit results` tracks it).
    Result {
        /// The local day the audit was completed (YYYY-MM-DD).
        #[arg(long)]
        completed: String,
        #[arg(long)]
        auditor: String,
        /// The published findings, as a text file.
        #[arg(long)]
        summary: PathBuf,
        /// The audit found the program out of compliance.
        #[arg(long)]
        findings: bool,
    },
    /// Record that an audit's report went to the Commissioner.
    Reported {
        #[arg(long)]
        id: i64,
        /// How it was sent (letter, e-mail, portal).
        #[arg(long)]
        how: String,
    },
    /// Every audit result, with its report's due day (overdue ones say so).
    Results {
        #[arg(long)]
        json: bool,
    },
    /// Every entry of local days FROM..=TO, whole (actor, purpose, case number, details with
    /// a search's legal basis, hash), as JSON lines for an auditor. The export is audited.
    Export {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// Recorded in the audit trail.
        #[arg(long, default_value = "audit review")]
        purpose: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum SuspensionCommand {
    /// Record an order in force: every trailer is told to stop collecting.
    Order {
        /// The order's reference.
        #[arg(long)]
        order: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Lift the order in force: the trailers collect again.
    Lift {
        /// The order or decision that lifts it.
        #[arg(long)]
        reference: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum LocationCommand {
    List {
        #[arg(long)]
        reader: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Name a location as the public list and the BCA notices show it.
    Rename {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        name: String,
    },
    /// Mark a location as security information (withheld from the public) or clear the mark.
    Security {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        on: bool,
        #[arg(long)]
        off: bool,
        /// Why it is (or is no longer) security information; kept with who decided.
        #[arg(long)]
        reason: String,
    },
    /// Every security determination (who decided, when, why), for an in-camera review.
    Determinations {
        #[arg(long)]
        json: bool,
    },
    /// End a reader's current deployment now (taken away while offline).
    End {
        #[arg(long)]
        reader: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Grant (or change) a user's role; the user connects with a client certificate whose CN
    /// is the name (`pki issue`).
    Grant {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["viewer", "operator", "investigator", "records-supervisor", "auditor", "admin"])]
        role: String,
        /// Who authorised the access in writing.
        #[arg(long)]
        authorised_by: String,
        /// The written authorisation's reference (memo, form number).
        #[arg(long)]
        authorisation: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Disable {
        #[arg(long)]
        name: String,
    },
}

// Parsed once per run: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub(crate) enum HoldCommand {
    /// Hold reads past retention, answering a written request: the reads named, or every read
    /// of a plate collected in a period (on the server and on every trailer).
    Place {
        #[arg(long, value_parser = ["active-investigation", "exculpatory"])]
        kind: String,
        #[arg(long)]
        case: String,
        /// Who asked in writing.
        #[arg(long)]
        requester: String,
        /// The day of the written request (YYYY-MM-DD).
        #[arg(long)]
        request_date: String,
        /// The charge or complaint the evidence bears on (required for an exculpatory hold).
        #[arg(long, default_value = "")]
        charge: String,
        /// The written request's reference, or anything else worth keeping with the hold.
        #[arg(long, default_value = "")]
        note: String,
        /// Reads as TRAILER:READ_ID.
        #[arg(long = "read", required_unless_present = "plate")]
        reads: Vec<String>,
        /// Instead of reads: a plate, with --from and --to (local days).
        #[arg(long, requires_all = ["from", "to"], conflicts_with = "reads")]
        plate: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
    Release {
        #[arg(long)]
        id: i64,
        /// Why it ends (the investigation resolved, the charge dismissed, ...).
        #[arg(long)]
        reason: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum NoticeCommand {
    List {
        #[arg(long)]
        json: bool,
        /// Only those not sent yet (due or overdue).
        #[arg(long)]
        unsent: bool,
    },
    /// Send a notice now, the configured way.
    Send {
        #[arg(long)]
        id: i64,
        /// Send one that was sent already, again.
        #[arg(long)]
        resend: bool,
    },
    /// Record a notice sent another way (fax, portal, letter).
    MarkSent {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        how: String,
    },
    /// Write a notice's text, HTML document and e-mail into a folder.
    Render {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum DownlinkCommand {
    /// A new version of the state's plate data file (CSV: plate,state,category,source
    /// [,case_number]): recorded as the console's hotlists.upload records it (as the login, an
    /// operator), and sent to every trailer in chunks verified by SHA-256; a trailer switches to
    /// it only when all of it arrived. An investigation's list goes through the console.
    Hotlist {
        #[arg(long)]
        name: String,
        /// Must be above the last version.
        #[arg(long)]
        version: u64,
        file: PathBuf,
    },
    /// Ask for a health report now.
    Health {
        #[arg(long = "trailer", required = true)]
        trailers: Vec<String>,
    },
    /// Ask for a picture of a read (pictures on request; an investigator's audited access).
    Picture {
        #[arg(long)]
        trailer: String,
        #[arg(long)]
        read: u64,
        /// The context picture instead of the plate crop.
        #[arg(long)]
        context: bool,
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        case: String,
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
    let config = cli.config;
    match cli.command {
        Command::PrintDefaultConfig => {
            print!("{}", Config::default_toml());
            Ok(())
        }
        Command::Run => {
            init_logging();
            let config = Config::load(&config)?;
            config.refuse_placeholders()?;
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
        Command::Reads { access: Access { purpose, case, json }, limit } => {
            let reads =
                util::command(&config, "reads.list", json!({"limit": limit}), &purpose, &case)?;
            util::print_values(&reads, json, |r| {
                format!(
                    "{:<10} {:<12} {:>5.2}  {}  {:.5},{:.5}  read {}",
                    r["plate"].as_str().unwrap_or_default(),
                    r["trailer_id"].as_str().unwrap_or_default(),
                    r["confidence"].as_f64().unwrap_or_default(),
                    r["seen_at"].as_str().unwrap_or_default(),
                    r["lat"].as_f64().unwrap_or_default(),
                    r["lon"].as_f64().unwrap_or_default(),
                    r["read_id"]
                )
            })
        }
        Command::Alerts { purpose, case, open, limit, json } => {
            let args = json!({"open": open, "limit": limit});
            let alerts = util::command(&config, "alerts.list", args, &purpose, &case)?;
            util::print_values(&alerts, json, |a| {
                let text = |k: &str| a[k].as_str().unwrap_or("-").to_string();
                format!(
                    "HIT {:<10} {:<24} list {} {} case {}  {}  {} (verify with MNJIS/NLETS before acting)",
                    text("plate"),
                    text("category"),
                    text("list_name"),
                    text("trailer_id"),
                    text("case_number"),
                    text("seen_at"),
                    a["outcome"].as_str().map_or("OPEN".to_string(), |o| format!(
                        "acknowledged: {o} by {} ({})",
                        text("acknowledged_by"),
                        text("state_check")
                    )),
                )
            })
        }
        Command::Health => {
            // Each trailer's latest report, as the console's `status` gives it.
            let health = util::command(&config, "status", json!({}), "", "")?;
            util::print_values(&health, true, |_| String::new())
        }
        Command::DeadLetters => {
            let letters = util::command(&config, "deadletters.list", json!({}), "", "")?;
            util::print_values(&letters, true, |_| String::new())
        }
        Command::Downlink { command } => downlink::run(&config, command),
        Command::Audit { command } => compliance::audit(&config, command),
        Command::Location { command } => compliance::location(&config, command),
        Command::Hold { command } => compliance::hold(&config, command),
        Command::Suspension { command } => compliance::suspension(&config, command),
        Command::Console {
            broker_host,
            broker_port,
            ca,
            cert,
            key,
            profile,
            user,
            purpose,
            case,
            args,
            file,
            timeout_s,
            command,
        } => {
            let args: serde_json::Value =
                serde_json::from_str(&args).context("--args must be a JSON object")?;
            let given = util::Connection { host: broker_host, port: broker_port, ca, cert, key };
            let op = util::operator(given, profile, user)?;
            let within = std::time::Duration::from_secs(timeout_s);
            runtime()?.block_on(console(op, command, purpose, case, args, file, within))
        }
        Command::User { command } => compliance::user(&config, command),
        Command::Notices { command } => compliance::notices(&config, command),
        Command::Backup { dir } => {
            let loaded = Config::load(&config)?;
            let dir = dir.unwrap_or_else(|| loaded.server.backups());
            let days = loaded.server.retention_days;
            let (made, destroyed) = with_records(&config, async |r: &Records| {
                Ok(r.backup(&dir, util::now_ms(), days).await?)
            })?;
            for gone in destroyed {
                println!("destroyed {gone} (it held data past its retention)");
            }
            println!(
                "wrote {} ({} bytes, {} reads); it must be destroyed by {} (the server does it)",
                dir.join(&made.file).display(),
                made.bytes,
                made.reads,
                sync_server::records::iso_time(made.destroy_by_ms)
            );
            Ok(())
        }
        Command::ImportShared { dir, agency, purpose, case } => {
            let days = Config::load(&config)?.server.retention_days;
            let got = with_records(&config, async |r: &Records| {
                let source = sync_server::records::imports::Source {
                    agency: &agency,
                    purpose: &purpose,
                    case_number: &case,
                    retention_days: days,
                };
                Ok(r.import_shared(&dir, &source, &util::cli_actor(), util::now_ms()).await?)
            })?;
            println!(
                "kept {} reads and {} pictures from {agency}; {} past retention and {} of ACP \
                 participants not taken; {} already here",
                got.reads, got.pictures, got.expired, got.participants, got.duplicates
            );
            Ok(())
        }
        Command::PublicExport { out, from, to } => compliance::export(&config, &out, from, to),
        Command::Pki { command } => identity::pki(command),
        Command::Trailer { command } => identity::trailer(&config, command),
        Command::BrokerConfig { pki, out, bind, port, run_as } => {
            identity::broker_config(&pki, &out, &bind, port, run_as.as_deref())
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

/// `sync-server console`: one request (printed as JSON, exit status 1 when refused), or the
/// interactive console on the terminal when no command is given.
async fn console(
    op: sync_server::console::client::Operator,
    command: Option<String>,
    purpose: String,
    case: String,
    args: serde_json::Value,
    file: Option<PathBuf>,
    within: std::time::Duration,
) -> anyhow::Result<()> {
    use sync_server::console::client::Session;
    let mut session = Session::connect(&op, within).await?;
    let Some(command) = command else {
        let mut term = sync_server::console::terminal::Terminal::stdin();
        let mut out = std::io::stdout();
        sync_server::console::interactive::run(session, &mut term, &mut out, within).await?;
        return Ok(());
    };
    let response = match (command.as_str(), file) {
        ("hotlists.upload", Some(file)) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let name = args["name"].as_str().context("--args needs the list's name")?;
            let version = args["version"].as_u64().context("--args needs the version")?;
            let shown = |p: sync_server::console::client::Progress| {
                if p.parts > 1 {
                    eprintln!("{p}");
                }
            };
            session
                .upload_hotlist_showing(name, version, &text, (&purpose, &case), within, shown)
                .await?
        }
        (c, Some(file)) if sync_server::console::client::file_argument(c).is_some() => {
            let mut args = args;
            args["file"] = json!(file.display().to_string());
            sync_server::console::client::read_file_argument(c, &mut args)
                .map_err(anyhow::Error::msg)?;
            session.ask(&command, &purpose, &case, args, within).await?
        }
        (_, Some(_)) => anyhow::bail!(
            "--file goes with hotlists.upload, trailers.enroll (the request) and trailers.config"
        ),
        (_, None) => {
            let folder = sync_server::console::downloads::folder();
            session.run(&command, &purpose, &case, args, within, &folder).await?
        }
    };
    session.close().await;
    if response.ok {
        let mut data = response.data;
        for line in sync_server::console::downloads::save(
            &mut data,
            &sync_server::console::downloads::folder(),
        ) {
            eprintln!("{line}");
        }
        println!("{}", serde_json::to_string_pretty(&data)?);
        Ok(())
    } else {
        anyhow::bail!("refused: {}", response.error.unwrap_or_default())
    }
}
