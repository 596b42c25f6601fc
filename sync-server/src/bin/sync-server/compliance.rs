//! The commands that keep the agency within Minn. Stat. 13.824: locations, holds, BCA notices,
//! the audit trail and its biennial report, and the public pages as static files. Every one
//! that touches data is an audit entry.
use crate::util::{command as command_of, entry, now_ms, print_rows, print_values, with_records};
use crate::{
    AuditCommand, HoldCommand, LocationCommand, NoticeCommand, SuspensionCommand, UserCommand,
};
use anyhow::Context;
use serde_json::json;
use std::path::Path;
use sync_server::Config;
use sync_server::records::{Records, iso_time};

/// A text field of a command's row.
fn text(v: &serde_json::Value, k: &str) -> String {
    match &v[k] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn location(config: &Path, command: LocationCommand) -> anyhow::Result<()> {
    match command {
        LocationCommand::List { reader, json } => {
            let args = json!({"reader": reader});
            let rows = command_of(config, "deployments.list", args, "", "")?;
            print_values(&rows, json, |l| {
                format!(
                    "{:>5} {:<12} {:<36} {:>10.5},{:<10.5} {} .. {} {}",
                    text(l, "id"),
                    text(l, "reader"),
                    text(l, "place"),
                    l["lat"].as_f64().unwrap_or_default(),
                    l["lon"].as_f64().unwrap_or_default(),
                    text(l, "from"),
                    l["until"].as_str().unwrap_or("current"),
                    if l["security"] == true { "SECURITY INFORMATION (withheld)" } else { "" }
                )
            })
        }
        LocationCommand::Rename { id, name } => {
            command_of(config, "deployments.rename", json!({"id": id, "name": name}), "", "")?;
            println!("location {id} is now {name:?}");
            Ok(())
        }
        LocationCommand::Security { id, on, off, reason } => {
            anyhow::ensure!(on != off, "say --on or --off");
            let args = json!({"id": id, "security": on, "reason": reason});
            let done = command_of(config, "deployments.security", args, "", "")?;
            println!(
                "location {id} {}{}",
                if on { "withheld from the public" } else { "public" },
                if done["correction_notice"] == true {
                    "; the BCA was told of it, so a correction notice is due"
                } else {
                    ""
                }
            );
            Ok(())
        }
        LocationCommand::Determinations { json } => {
            let rows = command_of(config, "deployments.determinations", json!({}), "", "")?;
            print_values(&rows, json, |d| {
                format!(
                    "{}  location {} ({}, {})  {}  by {}: {}",
                    text(d, "at"),
                    text(d, "location_id"),
                    text(d, "reader"),
                    text(d, "place"),
                    if d["security"] == true { "withheld" } else { "public" },
                    text(d, "decided_by"),
                    text(d, "reason")
                )
            })
        }
        LocationCommand::End { reader } => {
            let done = command_of(config, "deployments.end", json!({"reader": reader}), "", "")?;
            if done["ended"] == true {
                println!("the current deployment of {reader} ended");
            } else {
                println!("{reader} has no current deployment");
            }
            Ok(())
        }
    }
}

/// `TRAILER:READ` as given on the command line.
fn parse_read(s: &str) -> anyhow::Result<(String, i64)> {
    let (t, id) = s.split_once(':').context("a read is TRAILER:READ_ID")?;
    anyhow::ensure!(trailer_wire::topic::valid_id(t), "invalid trailer id {t:?}");
    Ok((t.to_string(), id.parse().with_context(|| format!("read id {id:?}"))?))
}

pub fn hold(config: &Path, command: HoldCommand) -> anyhow::Result<()> {
    match command {
        HoldCommand::Place {
            kind,
            case,
            requester,
            request_date,
            charge,
            note,
            reads,
            plate,
            from,
            to,
        } => {
            let reads = reads.iter().map(|s| parse_read(s)).collect::<anyhow::Result<Vec<_>>>()?;
            let mut args = json!({"kind": kind, "requester": requester,
                                  "request_date": request_date, "charge": charge, "note": note});
            if let Some(plate) = plate {
                args["plate"] = json!(plate);
                args["from"] = json!(from);
                args["to"] = json!(to);
            } else {
                args["reads"] = json!(reads);
            }
            let done = command_of(config, "holds.place", args, &kind, &case)?;
            println!(
                "hold {} placed ({} of its reads on the server now); they stay past retention \
                 until it is released",
                done["hold"], done["reads_on_server"]
            );
            Ok(())
        }
        HoldCommand::Release { id, reason } => {
            command_of(config, "holds.release", json!({"id": id, "reason": reason}), "", "")?;
            println!("hold {id} released: its reads fall under retention again");
            Ok(())
        }
        HoldCommand::List { json } => {
            let rows = command_of(config, "holds.list", json!({}), "", "")?;
            print_values(&rows, json, |h| {
                format!(
                    "{:>5} {:<22} case {:<14} {:>6} reads  by {} {}  {}{}",
                    text(h, "id"),
                    text(h, "kind"),
                    text(h, "case_number"),
                    text(h, "reads"),
                    text(h, "created_by"),
                    text(h, "created_at"),
                    text(h, "note"),
                    h["released_at"]
                        .as_str()
                        .map(|t| format!("  (released {t})"))
                        .unwrap_or_default()
                )
            })
        }
    }
}

pub fn notices(config_path: &Path, command: NoticeCommand) -> anyhow::Result<()> {
    match command {
        NoticeCommand::List { json, unsent } => {
            // Notices name every location, withheld ones included: an audited access.
            let rows = command_of(config_path, "notices.list", json!({"unsent": unsent}), "", "")?;
            print_values(&rows, json, |n| {
                let state = match n["state"].as_str().unwrap_or_default() {
                    "sent" => format!(
                        "sent {} ({})",
                        n["sent_ms"].as_i64().map(iso_time).unwrap_or_default(),
                        text(n, "sent_via")
                    ),
                    "overdue" => format!("OVERDUE since {}", due(n)),
                    _ => format!("due by {}", due(n)),
                };
                format!(
                    "{:>5} {:<12} {:<12} {:<36} {}{}",
                    text(n, "id"),
                    text(n, "reader"),
                    text(n, "kind"),
                    text(n, "place"),
                    state,
                    n["last_error"]
                        .as_str()
                        .map(|e| format!("  last error: {e}"))
                        .unwrap_or_default()
                )
            })
        }
        NoticeCommand::Send { id, resend } => {
            let args = json!({"id": id, "resend": resend});
            let done = command_of(config_path, "notices.send", args, "", "")?;
            match done["via"].as_str() {
                Some(via) => println!("notice {id} sent: {via}"),
                None => println!(
                    "delivery is manual: send it yourself (`notices render`), then `notices mark-sent`"
                ),
            }
            Ok(())
        }
        NoticeCommand::MarkSent { id, how } => {
            let done = command_of(
                config_path,
                "notices.mark-sent",
                json!({"id": id, "how": how}),
                "",
                "",
            )?;
            anyhow::ensure!(done["recorded"] == true, "notice {id} was already sent");
            println!("notice {id} recorded as sent ({how})");
            Ok(())
        }
        NoticeCommand::Render { id, out } => {
            let mut done = command_of(config_path, "notices.render", json!({"id": id}), "", "")?;
            // The files go straight into --out (not under a `notices/` folder of it).
            if let Some(files) = done["files"].as_array_mut() {
                for f in files {
                    f["folder"] = json!(".");
                }
            }
            for line in save_into(&mut done, &out) {
                println!("{line}");
            }
            Ok(())
        }
    }
}

/// Saves the files an answer hands over into `dir`, as the console saves them.
fn save_into(done: &mut serde_json::Value, dir: &Path) -> Vec<String> {
    let mut said = Vec::new();
    for f in done["files"].as_array().cloned().unwrap_or_default() {
        use base64::Engine;
        let bytes = f["base64"]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .unwrap_or_default();
        let name = f["name"].as_str().unwrap_or_default();
        let sha = f["sha256"].as_str().unwrap_or_default();
        said.push(match sync_server::console::downloads::store(dir, name, &bytes, sha) {
            Ok(path) => format!("{} (sha256 {sha})", path.display()),
            Err(e) => format!("not saved: {e}"),
        });
    }
    said
}

/// A notice's due time, as its document says it.
fn due(n: &serde_json::Value) -> String {
    n["due_ms"].as_i64().map(iso_time).unwrap_or_default()
}

pub fn audit(config_path: &Path, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { anchor } => {
            let (verdict, head, anchored) = with_records(config_path, async |r: &Records| {
                let verdict = r.audit_verify().await?;
                let head = r.audit_head().await?;
                // An anchor (an earlier head kept apart from the database) catches the removal
                // of the newest entries, which leaves a shorter chain that verifies.
                let anchored = match &anchor {
                    Some(path) if path.exists() => {
                        let text = std::fs::read_to_string(path)?;
                        let (seq, hash) = text
                            .trim()
                            .split_once(' ')
                            .context("an anchor file holds `SEQ HASH`")?;
                        let seq: i64 = seq.parse().context("anchor sequence number")?;
                        Some((seq, r.audit_hash(seq).await? == Some(hash.to_string())))
                    }
                    _ => None,
                };
                Ok((verdict, head, anchored))
            })?;
            let n = verdict.map_err(|e| anyhow::anyhow!("audit trail broken: {e}"))?;
            if let Some((seq, false)) = anchored {
                anyhow::bail!("audit trail broken: anchored entry {seq} is missing or altered");
            }
            if let Some(path) = &anchor {
                std::fs::write(path, format!("{} {}\n", head.0, head.1))
                    .with_context(|| format!("cannot write the anchor {}", path.display()))?;
            }
            println!("audit trail intact: {n} entries; head {} {}", head.0, head.1);
            Ok(())
        }
        AuditCommand::Report { from, to, json, purpose } => {
            let config = Config::load(config_path)?;
            let args = json!({"from": from, "to": to});
            let data = command_of(config_path, "audit.report", args, &purpose, "")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&data)?);
            } else {
                let report: sync_server::report::Report = serde_json::from_value(data)
                    .context("the report as the command layer gave it")?;
                print!("{}", sync_server::report::text(&report, &config.agency.name));
            }
            Ok(())
        }
        AuditCommand::Result { completed, auditor, summary, findings } => {
            let text = std::fs::read_to_string(&summary)
                .with_context(|| format!("cannot read {}", summary.display()))?;
            let args = json!({"completed": completed, "auditor": auditor, "summary": text,
                              "findings": findings});
            let result = command_of(config_path, "audit.result", args, "", "")?;
            println!(
                "audit result {} recorded and published; report to the Commissioner due {}",
                result["id"],
                text_of(&result, "report_due")
            );
            Ok(())
        }
        AuditCommand::Reported { id, how } => {
            command_of(config_path, "audit.reported", json!({"id": id, "how": how}), "", "")?;
            println!("audit result {id}: report to the Commissioner recorded");
            Ok(())
        }
        AuditCommand::Results { json } => {
            let rows = command_of(config_path, "audit.results", json!({}), "", "")?;
            print_values(&rows, json, |a| {
                format!(
                    "{:>4} {} {:<24} {:<10} report {}",
                    text(a, "id"),
                    text(a, "completed"),
                    text(a, "auditor"),
                    if a["compliant"] == true { "compliant" } else { "findings" },
                    match (a["reported_at"].as_str(), a["overdue"] == true) {
                        (Some(t), _) => format!("sent {t}"),
                        (None, true) => format!("OVERDUE (was due {})", text(a, "report_due")),
                        (None, false) => format!("due {}", text(a, "report_due")),
                    }
                )
            })
        }
        AuditCommand::Export { from, to, purpose } => {
            let args = json!({"from": from, "to": to});
            let entries = command_of(config_path, "audit.export", args, &purpose, "")?;
            let mut out = std::io::stdout().lock();
            for e in entries.as_array().into_iter().flatten() {
                use std::io::Write;
                writeln!(out, "{}", serde_json::to_string(e)?)?;
            }
            Ok(())
        }
    }
}

fn text_of(v: &serde_json::Value, k: &str) -> String {
    text(v, k)
}

pub fn suspension(config: &Path, command: SuspensionCommand) -> anyhow::Result<()> {
    match command {
        SuspensionCommand::Order { order, note } => {
            let args = json!({"order": order, "note": note});
            let done = command_of(config, "suspension.order", args, "", "")?;
            println!(
                "suspension order {} in force since {}: {} trailers told to stop collecting; \
                 the server stores no read until it is lifted",
                text(&done["suspension"], "order"),
                text(&done["suspension"], "ordered_at"),
                done["trailers_told"]
            );
            Ok(())
        }
        SuspensionCommand::Lift { reference } => {
            let done =
                command_of(config, "suspension.lift", json!({"reference": reference}), "", "")?;
            println!(
                "suspension order {} lifted: {} trailers told to collect again",
                text(&done["lifted"], "order"),
                done["trailers_told"]
            );
            Ok(())
        }
        SuspensionCommand::List { json } => {
            let rows = command_of(config, "suspension.list", json!({}), "", "")?;
            print_values(&rows, json, |s| {
                format!(
                    "{:>4} {:<24} since {} {}",
                    text(s, "id"),
                    text(s, "order"),
                    text(s, "ordered_at"),
                    s["lifted_at"]
                        .as_str()
                        .map_or("IN FORCE".to_string(), |l| format!("lifted {l}"))
                )
            })
        }
    }
}

pub fn export(
    config_path: &Path,
    out: &Path,
    from: Option<String>,
    to: Option<String>,
) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    let files = with_records(config_path, async |r: &Records| {
        let (from, to) = sync_server::public::log_range(r.rules(), from, to, now_ms())
            .map_err(anyhow::Error::msg)?;
        Ok(sync_server::public::export::export(
            r,
            &config.public_agency(),
            out,
            &from,
            &to,
            now_ms(),
        )
        .await?)
    })?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(())
}

pub fn user(config: &Path, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Grant { name, role, authorised_by, authorisation } => {
            let role: sync_server::console::roles::Role =
                serde_json::from_value(serde_json::Value::String(role.clone()))?;
            with_records(config, async |r: &Records| {
                r.grant(&name, role, &authorised_by, &authorisation, now_ms()).await?;
                let detail = format!(
                    "{name} granted {role}, authorised by {authorised_by} ({authorisation})"
                );
                r.audit(&entry("users.grant", "user management", "", detail, 1)).await?;
                println!("{name}: {role}; the written authorisation is on record");
                Ok(())
            })
        }
        UserCommand::List { json } => {
            let rows = with_records(config, async |r: &Records| {
                let rows = r.users().await?;
                r.audit(&entry("users.list", "user management", "", String::new(), rows.len()))
                    .await?;
                Ok(rows)
            })?;
            print_rows(&rows, json, |u| {
                format!(
                    "{:<16} {:<18} authorised by {} ({}) {}{}",
                    u.name,
                    u.role.to_string(),
                    u.authorised_by,
                    u.authorisation,
                    u.authorised_at,
                    if u.active { "" } else { "  DISABLED" }
                )
            })
        }
        UserCommand::Disable { name } => {
            with_records(config, async |r: &Records| {
                anyhow::ensure!(r.disable_user(&name).await?, "no user {name}");
                r.audit(&entry(
                    "users.disable",
                    "user management",
                    "",
                    format!("{name} disabled"),
                    1,
                ))
                .await?;
                Ok(())
            })?;
            // The running server disables the user at the broker (which disconnects them);
            // their certificate goes on the revocation list, for the broker's next reload.
            let pki = sync_server::Config::load(config)?.pki.dir;
            let revoked = if pki.as_os_str().is_empty() {
                0
            } else {
                sync_server::pki::revoke(&pki, &name, "console user disabled")?.len()
            };
            println!("{name} disabled; {revoked} certificate(s) revoked");
            Ok(())
        }
    }
}
