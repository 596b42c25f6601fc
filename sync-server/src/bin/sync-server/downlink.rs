//! `sync-server downlink`: commands queued for trailers, through the command layer (each
//! queueing audited with the command that made it).
use crate::DownlinkCommand;
use crate::util::{command as command_of, print_values};
use anyhow::Context;
use serde_json::json;
use std::path::Path;

pub fn run(config: &Path, command: DownlinkCommand) -> anyhow::Result<()> {
    match command {
        DownlinkCommand::Hotlist { name, version, file } => {
            let csv = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {} as text", file.display()))?;
            let args = serde_json::json!({"name": name, "version": version, "csv": csv});
            let done = command_of(config, "hotlists.upload", args, "", "")?;
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
            let done =
                command_of(config, "trailers.health", json!({"trailers": trailers}), "", "")?;
            queued(&done)
        }
        DownlinkCommand::Picture { trailer, read, context, purpose, case } => {
            let args = json!({"trailer": trailer, "read_id": read, "context": context});
            let done = command_of(config, "reads.picture", args, &purpose, &case)?;
            println!(
                "downlink {} queued for {trailer}: the picture of read {read}",
                done["downlink"]
            );
            Ok(())
        }
        DownlinkCommand::Config { trailers, file } => {
            let toml = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let done = command_of(
                config,
                "trailers.config",
                json!({"trailers": trailers, "toml": toml}),
                "",
                "",
            )?;
            queued(&done)
        }
        DownlinkCommand::List { trailer, limit, json } => {
            let rows = command_of(
                config,
                "trailers.downlinks",
                json!({"trailer": trailer, "limit": limit}),
                "",
                "",
            )?;
            print_values(&rows, json, |d| {
                let state = match d["applied"].as_bool() {
                    None => format!("waiting ({} sends)", d["attempts"]),
                    Some(true) => "applied".into(),
                    Some(false) => "refused".into(),
                };
                format!(
                    "{:>6} {:<12} {:<40} {:<20} {}",
                    d["id"],
                    d["trailer_id"].as_str().unwrap_or_default(),
                    d["summary"].as_str().unwrap_or_default(),
                    state,
                    d["answer"].as_str().unwrap_or_default()
                )
            })
        }
    }
}

/// Says which downlink was queued for which trailer.
fn queued(done: &serde_json::Value) -> anyhow::Result<()> {
    let summary = done["summary"].as_str().unwrap_or_default();
    for q in done["queued"].as_array().into_iter().flatten() {
        println!(
            "downlink {} queued for {}: {summary}",
            q["downlink"],
            q["trailer"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}
