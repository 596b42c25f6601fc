//! What every administration command shares: the runtime, the records, the audit entry of the
//! person running it, and the output.
use anyhow::Context;
use std::path::Path;
use sync_server::Config;
use sync_server::audit::Entry;
use sync_server::records::Records;

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Who runs this command, as the audit trail names them: the login of the process's real
/// user id, which the operating system vouches for (an environment variable proves nothing).
/// Under sudo the person who ran it is added as sudo said, next to the proved `root`.
pub fn cli_actor() -> String {
    let login = login();
    match std::env::var("SUDO_USER") {
        Ok(by) if nix::unistd::getuid().is_root() && trailer_wire::topic::valid_id(&by) => {
            format!("cli:{login}(sudo {by})")
        }
        _ => format!("cli:{login}"),
    }
}

/// The login of the process's real user id: who runs a command, as the OS vouches for it.
pub fn login() -> String {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid{uid}"),
    }
}

/// Runs one command of the command layer (the console's commands) as the person at this
/// terminal: `cli:LOGIN`, whose console role must include it, with the same checks, answer and
/// audit entry as from the console. Returns its data, or why it was refused.
pub fn command(
    config_path: &Path,
    command: &str,
    args: serde_json::Value,
    purpose: &str,
    case: &str,
) -> anyhow::Result<serde_json::Value> {
    use sync_server::commands::{Actor, Answer, Request, Via, execute};
    let config = Config::load(config_path)?;
    let user = login();
    let answer = runtime()?.block_on(async {
        let records = Records::open(&config.database_url()).await?.with_rules(config.rules()?);
        let actor = Actor { user: user.clone(), via: Via::CommandLine };
        let request = Request { command, args: &args, purpose, case };
        let answer = execute(&records, &config, &actor, request, now_ms()).await;
        records.close().await;
        anyhow::Ok(answer)
    })?;
    match answer {
        Answer::Done(data) => Ok(data),
        Answer::Refused(why) if why.contains("is no console user") => anyhow::bail!(
            "{why}: on the command line you act as your login ({user}); an administrator grants \
             it a role with `sync-server user grant --name {user} ...`"
        ),
        Answer::Refused(why) => anyhow::bail!("refused: {why}"),
        Answer::Unavailable(why) => anyhow::bail!("{why}"),
    }
}

/// Prints a command's rows: one JSON object a line, or each as `line` makes it.
pub fn print_values(
    data: &serde_json::Value,
    json: bool,
    line: impl Fn(&serde_json::Value) -> String,
) -> anyhow::Result<()> {
    let rows = data.as_array().cloned().unwrap_or_else(|| vec![data.clone()]);
    for r in &rows {
        if json {
            println!("{}", serde_json::to_string(r)?);
        } else {
            println!("{}", line(r));
        }
    }
    Ok(())
}

/// Writes a new file readable by its owner only (it may hold a certificate and its settings);
/// an existing one is never overwritten.
pub fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (is it there already?)", path.display()))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).with_context(|| format!("{}", path.display()))
}

/// Opens the agency's records, runs `f`, closes them.
pub fn with_records<T>(
    config: &Path,
    f: impl AsyncFnOnce(&Records) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let config = Config::load(config)?;
    runtime()?.block_on(async {
        let records = Records::open(&config.database_url()).await?.with_rules(config.rules()?);
        let out = f(&records).await;
        records.close().await;
        out
    })
}

/// The audit entry for a command-line access by the person running it.
pub fn entry(action: &str, purpose: &str, case: &str, detail: String, count: usize) -> Entry {
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
pub fn print_rows<T: serde::Serialize>(
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

/// How the console reaches the broker: each setting from a flag, a variable or the profile.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub ca: Option<std::path::PathBuf>,
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
}

/// The operator the console connects as: the settings given, the rest from the profile (the
/// one named, or `~/.config/trailer-alpr/console.toml` when it exists), and the user the
/// certificate names (a `--user` that differs is refused before connecting).
pub fn operator(
    given: Connection,
    profile: Option<std::path::PathBuf>,
    user: Option<String>,
) -> anyhow::Result<sync_server::console::client::Operator> {
    let default = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".config")))
        .map(|d| d.join("trailer-alpr/console.toml"));
    let file = match (profile, default) {
        (Some(p), _) => Some(p),
        (None, Some(d)) if d.exists() => Some(d),
        _ => None,
    };
    let saved: Connection = match &file {
        Some(f) => toml::from_str(
            &std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
        )
        .with_context(|| format!("{}: host, port, ca, cert, key", f.display()))?,
        None => Connection::default(),
    };
    let need = |v: Option<std::path::PathBuf>, what: &str, var: &str| {
        v.with_context(|| {
            format!(
                "no {what}: give --{what}, set {var}, or put {what} = \"...\" in the profile \
                 (~/.config/trailer-alpr/console.toml)"
            )
        })
    };
    let cert = need(given.cert.or(saved.cert), "cert", "TRAILER_CONSOLE_CERT")?;
    let pem = std::fs::read_to_string(&cert)
        .with_context(|| format!("cannot read the certificate {}", cert.display()))?;
    let (cn, _, _) = sync_server::pki::describe(&pem)?;
    if let Some(u) = user.filter(|u| *u != cn) {
        anyhow::bail!(
            "{} is {cn}'s certificate (CN={cn}), not {u}'s: the broker knows you by your \
             certificate; drop --user or use your own certificate",
            cert.display()
        );
    }
    Ok(sync_server::console::client::Operator {
        host: given.host.or(saved.host).unwrap_or_else(|| "localhost".into()),
        port: given.port.or(saved.port).unwrap_or(8883),
        ca: need(given.ca.or(saved.ca), "ca", "TRAILER_CONSOLE_CA")?,
        cert,
        key: need(given.key.or(saved.key), "key", "TRAILER_CONSOLE_KEY")?,
        user: cn,
    })
}
