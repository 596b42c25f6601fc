//! `sync-server downlink`: commands queued for trailers, each queueing audited.
use crate::DownlinkCommand;
use crate::util::{cli_actor, entry, now_ms, print_rows, with_records};
use anyhow::Context;
use std::path::Path;
use sync_server::records::Records;

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

pub fn run(config: &Path, command: DownlinkCommand) -> anyhow::Result<()> {
    use sync_server::downlink::Command as C;
    use trailer_wire::PictureKind;
    match command {
        DownlinkCommand::Hotlist { name, version, file } => {
            let csv = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {} as text", file.display()))?;
            let args = serde_json::json!({"name": name, "version": version, "csv": csv});
            let done = crate::util::command(config, "hotlists.upload", args, "", "")?;
            let trailers = done["version"]["trailers"].as_array().cloned().unwrap_or_default();
            let trailers: Vec<&str> = trailers.iter().filter_map(|t| t.as_str()).collect();
            println!(
                "hotlist {name} version {version} recorded ({}) and queued for {} trailers: {}",
                done["version"]["sha256"].as_str().unwrap_or_default(),
                trailers.len(),
                trailers.join(", ")
            );
            Ok(())
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
