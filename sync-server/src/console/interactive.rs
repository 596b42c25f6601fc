//! The interactive console: one line per command (`plates.search plate=ABC123`), answers as
//! tables, the live topics on demand, and a prompt for the purpose and the case number where
//! the law asks for them (they go into the audit trail with the request). A request's
//! arguments are checked first, every mistake named at once; an irreversible command says what
//! it will do and waits for `yes`; Ctrl-C drops the line or the question, not the console.
use super::client::{Input, Session, parse_args, render_within, words};
use super::roles::needs_purpose_and_case;
use super::terminal::Terminal;
use crate::commands::spec::{self, SPECS};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

/// The commands `mine` names (those of the user's role, as `whoami` said), or all of them.
fn help(mine: Option<&[String]>) -> String {
    let mut out = String::from(match mine {
        Some(_) => {
            "your role's commands (key=value arguments; quote values with spaces; help COMMAND for one):\n"
        }
        None => "commands (key=value arguments; quote values with spaces; help COMMAND for one):\n",
    });
    for s in SPECS.iter().filter(|s| mine.is_none_or(|m| m.iter().any(|c| c == s.command))) {
        out.push_str(&format!("  {:<22} {}\n", s.command, s.about));
    }
    out.push_str(
        "  live [topic]           the live topics of your role (status, backlog, alerts, notices)\n\
         \x20 help [COMMAND], quit   (Tab completes; Ctrl-C drops the line)\n",
    );
    out
}

/// `help COMMAND`: what it does, its arguments one per line, and what it asks for.
fn help_on(command: &str) -> String {
    let Some(s) = spec::of(command) else {
        return format!("unknown command {command:?}; type help\n");
    };
    let mut out = format!("{} — {}\n  {} {}\n", s.command, s.about, s.command, spec::usage(s));
    if s.command == "hotlists.upload" {
        out = format!(
            "{} — {}\n  hotlists.upload name=L version=N file=PATH [purpose=P case=C]\n",
            s.command, s.about
        );
    }
    for a in s.args {
        let need = if a.required { "required" } else { "optional" };
        out.push_str(&format!("    {:<18} {need}: {}\n", a.name, a.about));
    }
    if needs_purpose_and_case(command) {
        out.push_str("  asks for the purpose and the case number (kept in the audit trail)\n");
    }
    if s.irreversible {
        out.push_str("  cannot be undone: it says what it will do and waits for yes\n");
    }
    out.push_str("  (your role must include it: the server refuses it otherwise)\n");
    out
}

/// What an irreversible command will do, in words, before it is confirmed.
fn consequence(command: &str, args: &Value) -> Option<String> {
    match command {
        "acp.add" => Some(format!(
            "acp.add destroys every read of this plate, with its pictures and hits, here and on \
             every trailer, and no read of it is kept again (reference {}).",
            args["reference"]
        )),
        "release.fulfil" => Some(format!(
            "release.fulfil writes request {}'s bundle of reads and pictures for the other agency: \
             the data leaves this agency.",
            args["id"]
        )),
        "trailers.revoke" => Some(format!(
            "trailers.revoke cuts {} off at once and revokes its certificates; it can come back \
             only under a new id, enrolled again.",
            args["trailer"]
        )),
        _ => None,
    }
}

/// A hit as the console announces it: what list, which trailer, where and when, the reminder
/// to verify it, and how to acknowledge it.
pub fn announce(hit: &Value) -> String {
    let text = |k: &str| hit[k].as_str().unwrap_or("?").to_string();
    let place = match (hit["lat"].as_f64(), hit["lon"].as_f64()) {
        (Some(lat), Some(lon)) => format!("{lat:.5},{lon:.5}"),
        _ => "place unknown".into(),
    };
    let case = hit["case_number"].as_str().map(|c| format!(" case {c}")).unwrap_or_default();
    format!(
        "*** HIT {} {} on list {}{case}: {} at {} ({}) — verify with MNJIS/NLETS before acting; \
         then: alerts.ack trailer={} alert_id={} outcome=… check=\"…\"",
        text("category"),
        text("plate"),
        text("list_name"),
        text("trailer_id"),
        place,
        text("seen_at"),
        text("trailer_id"),
        hit["alert_id"].as_u64().unwrap_or(0)
    )
}

/// What the console does with one line.
enum Line {
    Nothing,
    Quit,
    Print(String),
    Live(Option<String>),
    Ask { command: String, args: Value },
}

fn parse_line(line: &str, mine: Option<&[String]>) -> Line {
    let w = words(line);
    let Some(first) = w.first() else {
        return Line::Nothing;
    };
    let rest: Vec<&str> = w[1..].iter().map(String::as_str).collect();
    match first.as_str() {
        "quit" | "exit" => Line::Quit,
        "help" | "?" => match rest.first() {
            Some(c) => Line::Print(help_on(c)),
            None => Line::Print(help(mine)),
        },
        "live" => Line::Live(rest.first().map(|t| t.to_string())),
        c if spec::of(c).is_some() => match parse_args(&rest) {
            // An upload's own arguments (file=, purpose=, case=) are checked as it reads the file.
            Ok(args) if c == "hotlists.upload" => Line::Ask { command: c.to_string(), args },
            Ok(mut args) => match super::client::read_file_argument(c, &mut args)
                .map(|()| spec::check(c, &args))
            {
                Err(e) => Line::Print(format!("not sent: {e}\n")),
                Ok(wrong) if wrong.is_empty() => Line::Ask { command: c.to_string(), args },
                Ok(wrong) => Line::Print(format!(
                    "not sent: {}\n  {c} {}\n",
                    wrong.join("\n  "),
                    spec::of(c).map(spec::usage).unwrap_or_default()
                )),
            },
            Err(e) => Line::Print(format!("{e}\n")),
        },
        other => Line::Print(format!("unknown command {other:?}; type help\n")),
    }
}

/// Runs the console on `term` until `quit` or the end of its input.
pub async fn run(
    mut session: Session,
    term: &mut Terminal,
    out: &mut (dyn Write + Send),
    within: Duration,
) -> std::io::Result<()> {
    session.settle(Duration::from_millis(500)).await;
    // The user's role and its commands, for help (all of them if the server cannot say).
    let me = session.ask("whoami", "", "", Value::Null, within).await.ok().filter(|r| r.ok);
    let role = me.as_ref().and_then(|r| r.data["role"].as_str().map(str::to_string));
    let mine: Option<Vec<String>> = me.as_ref().and_then(|r| {
        r.data["commands"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
    });
    match &role {
        Some(role) => {
            writeln!(out, "connected as {} ({role}); type help for your commands", session.user())?
        }
        None => writeln!(out, "connected as {}; type help for the commands", session.user())?,
    }
    loop {
        term.prompt(out, "> ")?;
        let line = match term.next(&mut session).await {
            None => break,
            Some(Input::Cancel) => continue,
            Some(Input::Hits(hits)) => {
                // Above the prompt: the line being typed stays as it is.
                for h in &hits {
                    term.above(out, &announce(h))?;
                }
                continue;
            }
            Some(Input::Link(false)) => {
                term.above(
                    out,
                    "*** the connection to the broker was lost: the live topics are stale and \
                     requests fail until it is back",
                )?;
                continue;
            }
            Some(Input::Link(true)) => {
                term.above(out, "*** connected to the broker again")?;
                continue;
            }
            Some(Input::Line(line)) => line,
        };
        match parse_line(&line, mine.as_deref()) {
            Line::Nothing => {}
            Line::Quit => break,
            Line::Print(text) => write!(out, "{text}")?,
            Line::Live(topic) => live(&session, topic, term.width(), out)?,
            Line::Ask { command, args } if command == "hotlists.upload" => {
                let answer = upload(&mut session, &args, within, term.width(), out).await;
                write!(out, "{answer}")?;
            }
            Line::Ask { command, args } => {
                let (mut purpose, mut case) = (String::new(), String::new());
                if needs_purpose_and_case(&command) {
                    // Asked every time: each search is its own documented purpose.
                    let why = "Purpose (why this data is needed): ";
                    let Some(p) = term.ask(&mut session, out, why).await? else {
                        writeln!(out, "cancelled: nothing was sent")?;
                        continue;
                    };
                    let Some(c) = term.ask(&mut session, out, "Case number: ").await? else {
                        writeln!(out, "cancelled: nothing was sent")?;
                        continue;
                    };
                    (purpose, case) = (p, c);
                    if purpose.trim().is_empty() || case.trim().is_empty() {
                        writeln!(out, "not sent: {command} needs a purpose and a case number")?;
                        continue;
                    }
                }
                if let Some(what) = consequence(&command, &args) {
                    writeln!(out, "{what}")?;
                    let sure = term.ask(&mut session, out, "Type yes to go on: ").await?;
                    if sure.as_deref().map(str::trim) != Some("yes") {
                        writeln!(out, "not sent")?;
                        continue;
                    }
                }
                let folder = super::downloads::folder();
                let asked = session.run(&command, &purpose, &case, args, within, &folder).await;
                let text = match asked {
                    Ok(mut r) if r.ok => {
                        let saved = super::downloads::save(&mut r.data, &folder);
                        let mut text = render_within(&r.data, term.width());
                        for line in saved {
                            text.push_str(&format!("{line}\n"));
                        }
                        text
                    }
                    Ok(r) => format!("refused: {}\n", r.error.unwrap_or_default()),
                    Err(e) => format!("error: {e}\n"),
                };
                write!(out, "{text}")?;
            }
        }
    }
    session.close().await;
    Ok(())
}

/// `live [topic]`: the role's live topics as last received, marked stale while disconnected.
fn live(
    session: &Session,
    topic: Option<String>,
    width: usize,
    out: &mut (dyn Write + Send),
) -> std::io::Result<()> {
    if let Some(since) = session.stale_since() {
        let at = crate::records::iso_time(since);
        writeln!(out, "(stale: no connection to the broker since {at})")?;
    }
    let mut any = false;
    for (name, value) in &session.live {
        if topic.as_ref().is_none_or(|t| t == name) {
            write!(out, "[{name}]\n{}", render_within(value, width))?;
            any = true;
        }
    }
    if !any {
        writeln!(out, "(no live topic yet)")?;
    }
    Ok(())
}

/// `hotlists.upload`: the file sent in parts, each part taken by the server said on `out` as
/// it goes (a state's file is megabytes); the answer to the last part returned.
async fn upload(
    session: &mut Session,
    args: &Value,
    within: Duration,
    width: usize,
    out: &mut (dyn Write + Send),
) -> String {
    let (Some(name), Some(version), Some(file)) =
        (args["name"].as_str(), args["version"].as_u64(), args["file"].as_str())
    else {
        return "hotlists.upload name=L version=N file=PATH [purpose=P case=C]\n".into();
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return format!("cannot read {file}: {e}\n"),
    };
    // An investigation's list (not the state's file) names its purpose and case.
    let purpose = args["purpose"].as_str().unwrap_or_default();
    let case = args["case"].as_str().unwrap_or_default();
    let shown = |p: super::client::Progress| {
        if p.parts > 1 {
            let _ = writeln!(out, "{p}");
            let _ = out.flush();
        }
    };
    match session.upload_hotlist_showing(name, version, &text, (purpose, case), within, shown).await
    {
        Ok(r) if r.ok => render_within(&r.data, width),
        Ok(r) => format!("refused: {}\n", r.error.unwrap_or_default()),
        Err(e) => format!("error: {e}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_is_announced_with_its_list_trailer_place_and_how_to_acknowledge_it() {
        let hit = serde_json::json!({"trailer_id": "trailer-01", "alert_id": 7, "plate": "ABC123",
            "list_name": "mn-state", "category": "Warrant", "seen_at": "2026-12-02T09:00:00Z",
            "lat": 44.02161, "lon": -92.46992});
        let line = announce(&hit);
        for part in [
            "HIT Warrant ABC123",
            "list mn-state",
            "trailer-01 at 44.02161,-92.46992",
            "verify",
            "alerts.ack trailer=trailer-01 alert_id=7",
        ] {
            assert!(line.contains(part), "{part}: {line}");
        }
    }

    #[test]
    fn help_lists_the_commands_of_the_users_role() {
        let mine = vec!["status".to_string(), "whoami".into(), "plates.search".into()];
        let h = help(Some(&mine));
        assert!(h.contains("your role's commands") && h.contains("plates.search"), "{h}");
        assert!(!h.contains("holds.place") && !h.contains("users.manage"), "{h}");
        assert!(help(None).contains("holds.place"));
    }

    #[test]
    fn help_on_a_command_names_its_arguments_and_what_it_asks() {
        let h = help_on("plates.search");
        for part in ["plate", "required", "warrant", "optional", "purpose and the case number"] {
            assert!(h.contains(part), "{part}: {h}");
        }
        assert!(help_on("acp.add").contains("cannot be undone"));
        assert!(help_on("nope").contains("unknown command"));
    }

    #[test]
    fn arguments_are_checked_before_anything_is_asked() {
        match parse_line("alerts.ack trailer=t1 alert_id=x remark=seen", None) {
            Line::Print(t) => {
                assert!(t.starts_with("not sent"), "{t}");
                for part in ["takes no remark", "needs outcome", "alert_id is a whole number"] {
                    assert!(t.contains(part), "{part}: {t}");
                }
            }
            _ => panic!("refused before sending"),
        }
        assert!(
            matches!(parse_line("help alerts.ack", None), Line::Print(t) if t.contains("outcome"))
        );
    }

    #[test]
    fn lines_become_requests() {
        assert!(matches!(parse_line("  ", None), Line::Nothing));
        assert!(matches!(parse_line("quit", None), Line::Quit));
        match parse_line("plates.search plate=ABC123 pictures=true", None) {
            Line::Ask { command, args } => {
                assert_eq!(command, "plates.search");
                assert_eq!(args["pictures"], true);
            }
            _ => panic!("a request"),
        }
        assert!(matches!(parse_line("drop tables", None), Line::Print(t) if t.contains("unknown")));
        assert!(
            matches!(parse_line("status oops", None), Line::Print(t) if t.contains("key=value"))
        );
        assert!(
            matches!(parse_line("status x=1", None), Line::Print(t) if t.contains("takes no arguments"))
        );
    }
}
