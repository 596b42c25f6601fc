//! Who may connect: the agency's PKI (`pki`), the trailer registry (`trailer`), and the broker's
//! configuration (`broker-config`). PKI and broker configuration are machine-local files; the
//! registry is in the records and every change to it is audited.
use crate::util::{entry, now_ms, print_rows, with_records};
use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use sync_server::Config;
use sync_server::pki::{self, Role};
use sync_server::records::Records;

#[derive(Subcommand)]
pub(crate) enum PkiCommand {
    /// Create the root and issuing CAs, the broker's and the server's certificates, the ACP key
    /// and an empty revocation list (idempotent). The root key (`root.key`) is needed by nothing
    /// afterwards: move it off the server.
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "Example Police Department")]
        agency: String,
        /// Host names and addresses the broker is reached at.
        #[arg(long = "broker-host", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        broker_hosts: Vec<String>,
    },
    /// Issue a certificate and key for an operator (CN = name; valid 90 days unless --days) or,
    /// with `--role trailer`, a trailer (prefer `sync-server trailer enroll`, which also
    /// enrols it), or with `--role dispatch`, a dispatch system that takes hits from the broker
    /// (`[[forward]] mqtt_client`). Refused if the name's files exist.
    Issue {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "operator", value_parser = ["operator", "trailer", "dispatch"])]
        role: String,
        #[arg(long)]
        days: Option<u32>,
        name: String,
    },
    /// Issue the certificate of another server instance (CN sync-server-INSTANCE): each instance
    /// has its own, as the broker binds a client id to its certificate.
    IssueServer {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 365)]
        days: u32,
        instance: String,
    },
    /// Sign a certificate request (PEM) made where its key lives; prints the certificate chain.
    Sign {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "operator", value_parser = ["operator", "trailer"])]
        role: String,
        #[arg(long)]
        days: Option<u32>,
        request: PathBuf,
    },
    /// Revoke every certificate of NAME: the revocation list is written again; reload the broker
    /// (SIGHUP, `systemctl reload mosquitto`) so that new connections are checked against it.
    Revoke {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "revoked by the agency")]
        reason: String,
        name: String,
    },
    /// Every certificate issued: serial, name, role, expiry, revocation.
    List {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum TrailerCommand {
    /// Enrol a trailer: with `--request`, sign the request its own key made (the key never
    /// leaves the trailer) and write the certificate to `--out`; without, make its key and
    /// certificate in the PKI directory. Either way the server knows it as enrolled.
    Enroll {
        #[arg(long)]
        request: Option<PathBuf>,
        /// The certificate chain (PEM), for a trailer set up by hand.
        #[arg(long, requires = "request")]
        out: Option<PathBuf>,
        /// The whole enrolment (certificate, agency CA, configuration signing key, starting
        /// settings) as one file for `appliance enroll --complete` on the trailer (mode 0600).
        #[arg(long, requires = "request")]
        bundle: Option<PathBuf>,
        /// Where it stands or who enrols it, for the record.
        #[arg(long, default_value = "")]
        note: String,
        /// Days the certificate is valid (default: pki.trailer_days).
        #[arg(long)]
        days: Option<u32>,
        id: String,
    },
    /// The registry.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a trailer (stolen, retired): its certificates are revoked, the broker disables it
    /// at once, and whatever it sends from now on is refused.
    Revoke {
        #[arg(long)]
        reason: String,
        id: String,
    },
}

fn role(s: &str) -> Role {
    Role::parse(s).unwrap_or(Role::Operator)
}

pub fn pki(command: PkiCommand) -> anyhow::Result<()> {
    match command {
        PkiCommand::Init { dir, agency, broker_hosts } => {
            pki::init(&dir, &agency, &broker_hosts)?;
            println!("agency CA and certificates in {}", dir.display());
        }
        PkiCommand::Issue { dir, role: r, days, name } => {
            let r = role(&r);
            let pem = pki::issue(&dir, &name, r, days.unwrap_or(r.default_days()))?;
            println!("{}", pem.display());
        }
        PkiCommand::IssueServer { dir, days, instance } => {
            println!("{}", pki::issue_server(&dir, &instance, days)?.display());
        }
        PkiCommand::Sign { dir, name, role: r, days, request } => {
            let r = role(&r);
            let csr = std::fs::read(&request)
                .with_context(|| format!("cannot read {}", request.display()))?;
            print!(
                "{}",
                pki::sign_request(&dir, &csr, &name, r, days.unwrap_or(r.default_days()))?
            );
        }
        PkiCommand::Revoke { dir, reason, name } => {
            let serials = pki::revoke(&dir, &name, &reason)?;
            anyhow::ensure!(!serials.is_empty(), "{name} holds no valid certificate");
            println!(
                "revoked {} certificate(s) of {name}; reload the broker (SIGHUP) to refuse them",
                serials.len()
            );
        }
        PkiCommand::List { dir, json } => {
            let rows = pki::issued(&dir)?;
            print_rows(&rows, json, |e| {
                format!(
                    "{:<34} {:<24} {:<9} until {}{}",
                    e.serial,
                    e.name,
                    e.role.as_str(),
                    sync_server::records::iso_date(e.not_after),
                    e.revoked.map_or(String::new(), |_| "  REVOKED".into())
                )
            })?;
        }
    }
    Ok(())
}

fn pki_dir(config: &Path) -> anyhow::Result<PathBuf> {
    let c = Config::load(config)?;
    anyhow::ensure!(
        !c.pki.dir.as_os_str().is_empty(),
        "set pki.dir in {} (the directory `sync-server pki init` made)",
        config.display()
    );
    Ok(c.pki.dir)
}

pub fn trailer(config: &Path, command: TrailerCommand) -> anyhow::Result<()> {
    use crate::util::{command as command_of, print_values};
    use serde_json::json;
    match command {
        TrailerCommand::Enroll { request: Some(req), out, bundle, note, days, id } => {
            // The trailer's own request: signed through the command layer, as from the console.
            let csr = std::fs::read_to_string(&req)
                .with_context(|| format!("cannot read {}", req.display()))?;
            let args = json!({"trailer": id, "request": csr, "note": note, "days": days});
            let done = command_of(config, "trailers.enroll", args, "", "")?;
            let chain = done["certificate"].as_str().unwrap_or_default();
            if let Some(bundle) = &bundle {
                // The whole answer: certificate, CA, settings; `appliance enroll --complete`
                // takes it on the trailer.
                crate::util::write_new(bundle, &serde_json::to_vec_pretty(&done)?)?;
                println!(
                    "{id} enrolled; its certificate, the agency CA and its settings are in {} \
                     (on the trailer: appliance enroll --complete {})",
                    bundle.display(),
                    bundle.display()
                );
            }
            match out {
                Some(out) => {
                    std::fs::write(&out, chain)
                        .with_context(|| format!("cannot write {}", out.display()))?;
                    println!("{id} enrolled; its certificate is in {}", out.display());
                }
                None if bundle.is_none() => print!("{chain}"),
                None => {}
            }
            Ok(())
        }
        TrailerCommand::Enroll { request: None, note, days, id, .. } => {
            // Machine-local: the key is made here, in the PKI directory (a bench trailer or a
            // test; a trailer in the field makes its own).
            let dir = pki_dir(config)?;
            let days = days.unwrap_or(Config::load(config)?.pki.trailer_days);
            anyhow::ensure!(pki::valid_name(&id), "invalid trailer id {id:?}");
            let new = with_records(config, async |r: &Records| {
                let mut s = r.session().await?;
                let new = s.enroll_trailer(&id, &crate::util::cli_actor(), &note, now_ms()).await?;
                let detail = format!("{id} enrolled (key made here) {note}");
                s.audit(&entry("trailers.enroll", "trailer enrolment", "", detail, 1)).await?;
                s.commit().await?;
                Ok(new)
            })?;
            if dir.join(format!("{id}.pem")).exists() && !new {
                println!("{id} is enrolled already; its certificate is in {}", dir.display());
            } else {
                let pem = pki::issue(&dir, &id, Role::Trailer, days)?;
                println!("{id} enrolled; certificate {}", pem.display());
            }
            Ok(())
        }
        TrailerCommand::List { json } => {
            let rows = command_of(config, "trailers.list", json!({}), "", "")?;
            print_values(&rows, json, |t| {
                let text = |k: &str| t[k].as_str().unwrap_or_default().to_string();
                let h = &t["health"];
                format!(
                    "{:<20} enrolled {} by {}{}  last report {}",
                    text("trailer_id"),
                    text("enrolled_at"),
                    text("enrolled_by"),
                    t["revoked_at"].as_str().map_or(String::new(), |at| format!(
                        "  REVOKED {at}: {}",
                        text("revoked_reason")
                    )),
                    h["reported_at"].as_str().unwrap_or("never"),
                )
            })
        }
        TrailerCommand::Revoke { reason, id } => {
            let done = command_of(
                config,
                "trailers.revoke",
                json!({"trailer": id, "reason": reason}),
                "",
                "",
            )?;
            println!(
                "{id} revoked ({} certificate(s)); the running server disables it at the broker; \
                 reload the broker (SIGHUP) so the revocation list refuses new connections",
                done["certificates"].as_array().map_or(0, Vec::len)
            );
            Ok(())
        }
    }
}

/// `broker-config`: writes the Mosquitto configuration (and the security plugin's first state).
pub fn broker_config(
    pki: &Path,
    out: &Path,
    bind: &str,
    port: u16,
    run_as: Option<&str>,
) -> anyhow::Result<()> {
    let pki = pki.canonicalize().with_context(|| format!("PKI directory {}", pki.display()))?;
    std::fs::create_dir_all(out)?;
    let out = out.canonicalize()?;
    let conf = sync_server::broker::write(&sync_server::broker::BrokerSetup {
        pki_dir: &pki,
        state_dir: &out,
        bind,
        port,
        run_as,
    })?;
    println!("{}", conf.display());
    Ok(())
}
