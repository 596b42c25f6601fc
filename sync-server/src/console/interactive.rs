//! The interactive console: one line per command (`plates.search plate=ABC123`), answers as
//! tables, the live topics on demand, and a prompt for the purpose and the case number where
//! the law asks for them (they go into the audit trail with the request).
use super::client::{Input, Session, parse_args, render, words};
use super::roles::{COMMANDS, needs_purpose_and_case};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// Each command's arguments, for `help`.
pub const HINTS: [(&str, &str); 29] = [
    ("status", ""),
    ("alerts.list", "[open=true] [limit=N]"),
    (
        "alerts.ack",
        "trailer=T alert_id=N outcome=confirmed-acted|confirmed-no-action|not-confirmed|misread",
    ),
    ("deployments.list", ""),
    ("deployments.start", "reader=T lat=44.02 lon=-92.47 [name=\"Place\"] [security=true]"),
    ("deployments.end", "reader=T"),
    ("deployments.rename", "id=N name=\"Place\""),
    ("deployments.security", "id=N security=true|false reason=…"),
    ("notices.list", ""),
    ("notices.send", "id=N"),
    ("notices.mark-sent", "id=N how=\"faxed to BCA 11/23\""),
    (
        "hotlists.upload",
        "name=L version=N file=PATH [purpose=P case=C] (P and C for an investigation's list)",
    ),
    ("hotlists.approve", "name=L version=N (a list another supervisor uploaded)"),
    ("hotlists.withdraw", "name=L reason=R"),
    ("hotlists.list", ""),
    (
        "holds.place",
        "kind=active-investigation|exculpatory requester=R request_date=YYYY-MM-DD [charge=C] reads='[[\"T\",N]]' | plate=P from=D to=D [note=…]",
    ),
    ("holds.release", "id=N reason=…"),
    ("holds.list", ""),
    ("acp.add", "plate=P reference=ACP-REQUEST-NO"),
    ("plates.search", "plate=P warrant=NO|exigency=FACTS [days=N] [limit=N] [pictures=true]"),
    (
        "release.request",
        "requesting_agency=… requester=… factual_basis=… authorisation=… plate=P from=YYYY-MM-DD to=YYYY-MM-DD",
    ),
    ("release.review", "id=N note=…"),
    ("release.decide", "id=N approve=true|false reason=…"),
    ("release.fulfil", "id=N"),
    ("release.list", ""),
    ("publiclog.generate", "from=YYYY-MM-DD to=YYYY-MM-DD"),
    ("audit.report", "from=YYYY-MM-DD to=YYYY-MM-DD"),
    ("audit.verify", ""),
    (
        "users.manage",
        "action=list | action=grant name=U role=R authorisation=… | action=disable name=U",
    ),
];

fn help() -> String {
    let mut out = String::from("commands (key=value arguments; quote values with spaces):\n");
    for (c, hint) in HINTS {
        out.push_str(&format!("  {c:<22} {hint}\n"));
    }
    out.push_str(
        "  live [topic]           the live topics of your role (status, backlog, alerts, notices)\n\
         \x20 help, quit\n",
    );
    out
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
         then: alerts.ack trailer={} alert_id={} outcome=…",
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

fn parse_line(line: &str) -> Line {
    let w = words(line);
    let Some(first) = w.first() else {
        return Line::Nothing;
    };
    let rest: Vec<&str> = w[1..].iter().map(String::as_str).collect();
    match first.as_str() {
        "quit" | "exit" => Line::Quit,
        "help" | "?" => Line::Print(help()),
        "live" => Line::Live(rest.first().map(|t| t.to_string())),
        c if COMMANDS.contains(&c) => match parse_args(&rest) {
            Ok(args) => Line::Ask { command: c.to_string(), args },
            Err(e) => Line::Print(format!("{e}\n")),
        },
        other => Line::Print(format!("unknown command {other:?}; type help\n")),
    }
}

/// Runs the console on `lines` (the terminal's, one by one) until `quit` or their end.
pub async fn run(
    mut session: Session,
    lines: &mut UnboundedReceiver<String>,
    out: &mut (dyn Write + Send),
    within: Duration,
) -> std::io::Result<()> {
    session.settle(Duration::from_millis(500)).await;
    writeln!(out, "connected as {}; type help for the commands", session.user())?;
    loop {
        write!(out, "> ")?;
        out.flush()?;
        let line = match session.wait_input(lines).await {
            None => break,
            Some(Input::Hits(hits)) => {
                // Above the prompt: the line being typed stays in the terminal's buffer.
                writeln!(out)?;
                for h in &hits {
                    writeln!(out, "{}", announce(h))?;
                }
                continue;
            }
            Some(Input::Link(false)) => {
                writeln!(out)?;
                writeln!(
                    out,
                    "*** the connection to the broker was lost: the live topics are stale and \
                     requests fail until it is back"
                )?;
                continue;
            }
            Some(Input::Link(true)) => {
                writeln!(out)?;
                writeln!(out, "*** connected to the broker again")?;
                continue;
            }
            Some(Input::Line(line)) => line,
        };
        match parse_line(&line) {
            Line::Nothing => {}
            Line::Quit => break,
            Line::Print(text) => write!(out, "{text}")?,
            Line::Live(topic) => {
                if let Some(since) = session.stale_since() {
                    let at = crate::records::iso_time(since);
                    writeln!(out, "(stale: no connection to the broker since {at})")?;
                }
                let mut any = false;
                for (name, value) in &session.live {
                    if topic.as_ref().is_none_or(|t| t == name) {
                        write!(out, "[{name}]\n{}", render(value))?;
                        any = true;
                    }
                }
                if !any {
                    writeln!(out, "(no live topic yet)")?;
                }
            }
            Line::Ask { command, args } if command == "hotlists.upload" => {
                write!(out, "{}", upload(&mut session, &args, within).await)?;
            }
            Line::Ask { command, args } => {
                let (mut purpose, mut case) = (String::new(), String::new());
                if needs_purpose_and_case(&command) {
                    // Asked every time: each search is its own documented purpose.
                    write!(out, "Purpose (why this data is needed): ")?;
                    out.flush()?;
                    purpose = session.wait_line(lines).await.unwrap_or_default();
                    write!(out, "Case number: ")?;
                    out.flush()?;
                    case = session.wait_line(lines).await.unwrap_or_default();
                    if purpose.trim().is_empty() || case.trim().is_empty() {
                        writeln!(out, "not sent: {command} needs a purpose and a case number")?;
                        continue;
                    }
                }
                let text = match session.ask(&command, &purpose, &case, args, within).await {
                    Ok(r) if r.ok => render(&r.data),
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

async fn upload(session: &mut Session, args: &Value, within: Duration) -> String {
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
    match session.upload_hotlist(name, version, &text, (purpose, case), within).await {
        Ok(r) if r.ok => render(&r.data),
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
    fn every_command_has_a_hint() {
        for c in COMMANDS {
            assert!(HINTS.iter().any(|(h, _)| *h == c), "{c}");
        }
    }

    #[test]
    fn lines_become_requests() {
        assert!(matches!(parse_line("  "), Line::Nothing));
        assert!(matches!(parse_line("quit"), Line::Quit));
        match parse_line("plates.search plate=ABC123 pictures=true") {
            Line::Ask { command, args } => {
                assert_eq!(command, "plates.search");
                assert_eq!(args["pictures"], true);
            }
            _ => panic!("a request"),
        }
        assert!(matches!(parse_line("drop tables"), Line::Print(t) if t.contains("unknown")));
        assert!(matches!(parse_line("status oops"), Line::Print(t) if t.contains("key=value")));
    }
}
