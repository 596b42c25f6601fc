//! The agency's duties under Minn. Stat. 13.824, end to end: a trailer's messages through a
//! private Mosquitto (mutual TLS) into the real server binary, BCA notices over SMTP to a local
//! sink, the public pages rendered in headless Chromium, and the audit trail of every access.
use e2e_tests::browser;
use e2e_tests::smtp::SmtpSink;
use e2e_tests::stack::Stack;
use std::time::{Duration, Instant};
use trailer_wire::{
    ActiveUse, Alert, FixQuality, HitCategory, Message, PictureSet, Position, ReadBatch, ReadMeta,
    UsageReason,
};

const TRAILER: &str = "trailer-01";
const PLATES: [&str; 6] = ["PLATEA1", "PLATEA2", "WANTED3", "PLATEB4", "PLATEC5", "PLATED6"];
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn read(read_id: u64, plate: &str, at: i64, lat: f64) -> ReadMeta {
    ReadMeta {
        read_id,
        camera_id: "cam0".into(),
        plate: plate.into(),
        confidence_pm: 950,
        first_seen: at,
        best_seen: at,
        position: Position::from_degrees(lat, -93.99, FixQuality::Fix3d),
        plate_box: [0, 0, 10, 5],
        pictures: PictureSet::default(),
    }
}

fn encode(m: &Message) -> Vec<u8> {
    trailer_wire::encode(m).expect("encodes")
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").expect("send");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("read");
    assert!(body.starts_with("HTTP/1.1 200"), "GET {path}: {body}");
    body
}

fn assert_no_plate(what: &str, text: &str) {
    for p in PLATES {
        assert!(!text.contains(p), "{what} carries plate {p}:\n{text}");
    }
    // Nor anything of the Address Confidentiality Program request the scenario makes: its
    // existence is private (13.824 subd. 3(c)).
    for fact in [ACP_PLATE, ACP_REFERENCE, "acp.", "ACP"] {
        assert!(!text.contains(fact), "{what} shows an ACP fact ({fact:?}):\n{text}");
    }
}

/// The ACP request the scenario makes through the console.
const ACP_PLATE: &str = "ACP777";
const ACP_REFERENCE: &str = "ACP 26-0999";

/// The scenario on the embedded SQLite store.
#[test]
fn notices_public_pages_and_the_audit_of_every_access() -> anyhow::Result<()> {
    scenario(Stack::start_with)
}

/// The same scenario with the server on PostgreSQL.
#[test]
fn notices_public_pages_and_the_audit_of_every_access_on_postgres() -> anyhow::Result<()> {
    scenario(Stack::start_postgres_with)
}

fn scenario(start: fn(&str) -> anyhow::Result<Stack>) -> anyhow::Result<()> {
    let sink = SmtpSink::start(0)?;
    let stack = start(&format!(
        "[bca]\ndelivery = \"smtp\"\nto = \"bca-alpr@bca.test\"\nfrom = \"alpr@pd.test\"\n\
         smtp_host = \"127.0.0.1\"\nsmtp_port = {}\nsmtp_security = \"plain\"\ncheck_interval_s = 1\n",
        sink.port
    ))?;
    let (cert, key) = stack.enroll(TRAILER)?;
    let publish = |kind: &str, m: Message| {
        let topic = format!("trailer/{TRAILER}/up/{kind}");
        let status = stack.publish_raw(&cert, &key, &topic, &encode(&m)).expect("mosquitto_pub");
        assert!(status.success(), "publish on {topic}");
    };
    let now = now_ms();
    let (a, b) = (44.16, 44.18);
    publish(
        "usage",
        Message::ActiveUse(ActiveUse {
            trailer_id: TRAILER.into(),
            period_id: 1,
            start: now - 3 * HOUR,
            end: None,
            start_reason: UsageReason::DaemonStart,
            end_reason: None,
            position: Position::from_degrees(a, -93.99, FixQuality::Fix3d),
            lists_compared: vec!["MN BCA hotlist".into()],
        }),
    );
    let batch = |reads| Message::ReadBatch(ReadBatch { trailer_id: TRAILER.into(), reads });
    publish(
        "reads",
        batch(vec![read(1, PLATES[0], now - 2 * HOUR, a), read(2, PLATES[1], now - 2 * HOUR, a)]),
    );
    publish(
        "alerts",
        Message::Alert(Alert {
            trailer_id: TRAILER.into(),
            alert_id: 1,
            read: read(3, PLATES[2], now - 2 * HOUR + 60_000, a),
            list_name: "mn-state".into(),
            list_version: 1,
            category: HitCategory::Warrant,
            case_number: None,
        }),
    );
    // Two kilometres north: a new fixed location.
    publish("reads", batch(vec![read(4, PLATES[3], now - HOUR, b)]));
    // A records supervisor adds an ACP participant: nothing public may show it was asked.
    {
        let rt = tokio::runtime::Runtime::new()?;
        grant(&stack, "rita", "records-supervisor")?;
        let mut rita = session(&rt, &stack, "rita")?;
        let args = serde_json::json!({"plate": ACP_PLATE, "reference": ACP_REFERENCE});
        let r = rt.block_on(rita.ask("acp.add", "", "", args, Duration::from_secs(20)))?;
        assert!(r.ok, "{r:?}");
        rt.block_on(rita.close());
    }

    // A notice for the new reader, one that it left its first place and one for its new
    // location, over SMTP.
    wait_for("three notices at the SMTP sink", 60, || sink.mails().len() >= 3);
    let mails = sink.mails();
    assert_eq!(mails.len(), 3);
    for m in &mails {
        assert!(m.to.iter().any(|t| t.contains("bca-alpr@bca.test")), "{:?}", m.to);
        for part in ["Test Police Department", TRAILER, "Notice due by", "alpr-notice-"] {
            assert!(m.data.contains(part), "{part} missing from the notice:\n{}", m.data);
        }
        assert_no_plate("a BCA notice", &m.data);
    }
    assert!(mails.iter().any(|m| m.data.contains("new-reader")));
    assert!(mails.iter().any(|m| m.data.contains("new-location")));
    assert!(mails.iter().any(|m| m.data.contains("location-ended")));
    assert!(mails.iter().all(|m| m.data.contains("13.824 subd. 8")));
    // On the command line the tests act as their own login, with the role each duty needs.
    stack.act_as("records-supervisor")?;
    let notices = json_lines(&stack.cli(&["notices", "list", "--json"])?);
    assert_eq!(notices.len(), 3);
    for n in &notices {
        assert_eq!(n["state"], "sent", "{n}");
        assert!(n["sent_via"].as_str().is_some_and(|v| v.starts_with("smtp:")), "{n}");
    }

    // Marking a notified location as security information sends the BCA a correction.
    stack.act_as("operator")?;
    let locations = json_lines(&stack.cli(&["location", "list", "--json"])?);
    assert_eq!(locations.len(), 2, "{locations:?}");
    let (loc_a, loc_b) = (locations[0]["id"].to_string(), locations[1]["id"].to_string());
    let before = stack.audit_entries()?;
    let why = ["--reason", "covert operation at the site"];
    let out = stack.cli(&[&["location", "security", "--id", &loc_b, "--on"][..], &why].concat())?;
    assert!(out.contains("correction notice is due"), "{out}");
    wait_for("the correction at the SMTP sink", 60, || sink.mails().len() >= 4);
    let correction = &sink.mails()[3];
    assert!(correction.data.contains("Correction"), "{}", correction.data);
    assert!(correction.data.contains("do not publish"), "{}", correction.data);
    // Both the change and the correction's sending are in the audit trail (the server's duties
    // may add entries of their own meanwhile).
    let since = || -> Vec<(String, String)> {
        let all = stack.audit_details().unwrap_or_default();
        all.into_iter().skip(usize::try_from(before).unwrap_or(0)).collect()
    };
    wait_for("the change and the correction in the audit trail", 30, || {
        let new = since();
        new.iter().any(|(a, _)| a == "deployments.security")
            && new.iter().any(|(a, d)| a == "bca.notice.send" && d.contains("(correction)"))
    });

    // Every access to data, and every change, is one audit entry.
    // (The server's duties may add their own meanwhile: the count is of the command line's.)
    let audited = |args: &[&str]| -> anyhow::Result<String> {
        let before = stack.audit_entries_of("cli")?;
        let out = stack.cli(args)?;
        let after = stack.audit_entries_of("cli")?;
        assert_eq!(after, before + 1, "`{}` must add one audit entry", args.join(" "));
        stack.audit_entries()?; // the chain stays whole
        Ok(out)
    };
    let access = ["--purpose", "burglary follow-up", "--case", "24-001234"];
    audited(&[&["alerts", "--json"][..], &access].concat())?;
    let listed = json_lines(&audited(&["location", "list", "--json"])?);
    assert_eq!(listed[1]["security"], true, "{listed:?}");
    audited(&["location", "rename", "--id", &loc_a, "--name", "Main St & 5th Ave"])?;
    // An operator's role does not reach the list of every read, nor the determinations.
    assert!(stack.cli(&[&["reads", "--json"][..], &access].concat()).is_err());
    stack.act_as("records-supervisor")?;
    let reads = json_lines(&audited(&[&["reads", "--json"][..], &access].concat())?);
    assert_eq!(reads.len(), 4);
    // Each security determination keeps who made it and why, for an in-camera review.
    let determinations = json_lines(&audited(&["location", "determinations", "--json"])?);
    assert_eq!(determinations.len(), 1, "{determinations:?}");
    assert_eq!(determinations[0]["reason"], "covert operation at the site");
    assert!(determinations[0]["decided_by"].as_str().is_some_and(|b| b.starts_with("cli:")));
    audited(&[
        "hold",
        "place",
        "--kind",
        "active-investigation",
        "--case",
        "24-001234",
        "--requester",
        "Det. A. Berg",
        "--request-date",
        "2026-11-20",
        "--read",
        "trailer-01:3",
    ])?;
    let holds = json_lines(&audited(&["hold", "list", "--json"])?);
    assert_eq!(holds[0]["requester"], "Det. A. Berg", "{holds:?}");
    audited(&["hold", "release", "--id", &holds[0]["id"].to_string(), "--reason", "case closed"])?;
    audited(&["notices", "list"])?;
    stack.act_as("admin")?;
    audited(&["dead-letters"])?;
    stack.act_as("auditor")?;
    let report = audited(&["audit", "report", "--from", "2020-01-01", "--to", "2099-12-31"])?;
    assert!(report.contains("4 plates read"), "{report}");
    assert!(report.contains("hits, Warrant: 1"), "{report}");
    assert!(report.contains("4 notices: 4 sent on time"), "{report}");
    assert!(report.contains("intact"), "{report}");
    assert_no_plate("the audit report", &report);
    // An auditor's export: every entry whole, with purpose and case, each with its hash.
    let export =
        json_lines(&audited(&["audit", "export", "--from", "2020-01-01", "--to", "2099-12-31"])?);
    assert!(
        export.len() >= 10
            && export.iter().all(|e| e["hash"].as_str().is_some_and(|h| h.len() == 64))
    );
    assert!(
        export.iter().any(|e| e["action"] == "reads.list"
            && e["purpose"] == "burglary follow-up"
            && e["case_number"] == "24-001234"),
        "{export:#?}"
    );
    // The command line's actor is the login the operating system vouches for (the real user
    // id's), not what an environment variable claims.
    stack.act_as("records-supervisor")?;
    let claimed = std::process::Command::new(e2e_tests::stack::bin("sync-server"))
        .args(["hold", "list", "--json", "--config"])
        .arg(stack.server_config())
        .env("USER", "impostor")
        .env("LOGNAME", "impostor")
        .env_remove("SUDO_USER")
        .output()?;
    assert!(claimed.status.success(), "{}", String::from_utf8_lossy(&claimed.stderr));
    let uid = nix::unistd::getuid();
    let login = nix::unistd::User::from_uid(uid)?.map(|u| u.name).unwrap_or_default();
    assert_eq!(stack.last_audit_actor()?, format!("cli:{login}"));

    // An anchor (the head recorded by an earlier verify, kept apart from the database) finds
    // entries missing at the end, which a shorter chain would not show.
    let anchor = stack.path("audit.anchor");
    let anchor_arg = anchor.display().to_string();
    stack.cli(&["audit", "verify", "--anchor", &anchor_arg])?;
    assert!(std::fs::read_to_string(&anchor)?.split(' ').count() == 2);
    std::fs::write(&anchor, "999999 0000\n")?;
    let refused = std::process::Command::new(e2e_tests::stack::bin("sync-server"))
        .args(["audit", "verify", "--anchor", &anchor_arg, "--config"])
        .arg(stack.server_config())
        .output()?;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("anchored entry 999999 is missing"));

    // The public pages, as a browser renders them.
    let base = format!("http://127.0.0.1:{}/public", stack.http_port);
    let dom = browser::dump_dom(&format!("{base}/locations"))?;
    assert!(dom.contains("<table id=\"locations\">"), "{dom}");
    assert!(dom.contains("Main St &amp; 5th Ave"), "the named place is listed:\n{dom}");
    assert!(!dom.contains("44.18"), "a location marked security information is public:\n{dom}");
    assert!(dom.contains("1 location is withheld as security information"), "{dom}");
    assert_no_plate("the location page", &dom);
    let dom = browser::dump_dom(&format!("{base}/log"))?;
    assert!(dom.contains("id=\"total-reads\">4<"), "{dom}");
    assert!(dom.contains("<svg") && dom.contains("MN BCA hotlist"), "{dom}");
    assert_no_plate("the log of use", &dom);
    let dom = browser::dump_dom(&format!("{base}/audit"))?;
    // In plain words, in the entries' table (the ids stay in the glossary).
    let table = &dom[dom.find("<table id=\"audit\"").unwrap_or(0)..];
    assert!(table.contains("Someone listed stored plate reads"), "{dom}");
    assert!(table.contains("whether a place is security information"), "{dom}");
    for classified in ["24-001234", "burglary follow-up", "Main St"] {
        assert!(!dom.contains(classified), "the public audit view shows {classified:?}");
    }
    assert_no_plate("the audit page", &dom);
    for page in [
        "locations.json",
        "locations.csv",
        "locations.geojson",
        "log.json",
        "log.csv",
        "audit.json",
        "audit.csv",
        "audits.json",
        "agency",
    ] {
        let body = http_get(stack.http_port, &format!("/public/{page}"));
        assert_no_plate(page, &body);
        assert!(!body.contains("44.18"), "{page} shows the withheld location");
    }
    let log: serde_json::Value = serde_json::from_str(
        http_get(stack.http_port, "/public/log.json").split("\r\n\r\n").nth(1).unwrap_or("{}"),
    )?;
    assert_eq!(log["total_reads"], 4);
    assert_eq!(log["total_hits"]["warrant"], 1);

    // The same pages as static files for the city's website.
    let out = stack.path("public-site");
    let files = stack.cli(&["public-export", "--out", &out.display().to_string()])?;
    assert_eq!(files.lines().count(), 13, "{files}");
    for f in files.lines() {
        let text = std::fs::read_to_string(f)?;
        assert_no_plate(f, &text);
        assert!(!text.contains("44.18"), "{f} shows the withheld location");
    }
    let dom = browser::dump_dom(&format!("file://{}", out.join("index.html").display()))?;
    assert!(dom.contains("href=\"log.html\""), "{dom}");

    // A notice that cannot be sent turns overdue, with the error kept and a warning logged;
    // it goes out once the mail server is back.
    let port = sink.port;
    drop(sink);
    publish("reads", batch(vec![read(5, PLATES[4], now - 11 * DAY, 44.30)]));
    wait_for("an overdue notice with its error", 60, || {
        json_lines(&stack.cli(&["notices", "list", "--json", "--unsent"]).unwrap_or_default())
            .iter()
            .any(|n| n["state"] == "overdue" && n["last_error"].is_string())
    });
    wait_for("the overdue warning", 30, || stack.server_log().contains("OVERDUE"));
    let sink = SmtpSink::start(port)?;
    wait_for("the late notice sent and recorded", 60, || {
        !sink.mails().is_empty()
            && stack
                .cli(&["notices", "list", "--json", "--unsent"])
                .is_ok_and(|o| o.trim().is_empty())
    });
    stack.act_as("auditor")?;
    let report = stack.cli(&["audit", "report", "--from", "2020-01-01", "--to", "2099-12-31"])?;
    // (the backlog's place calls for two: the reader stood there, and left)
    assert!(report.contains("6 notices: 4 sent on time, 2 sent late"), "{report}");

    // Oversight: an audit's result is published with its report's due day; a suspension order
    // is public, and a read collected under it is refused by the running server.
    let summary = stack.path("audit-summary.txt");
    std::fs::write(&summary, "Rowe & Co. found the program compliant.")?;
    let day = stack.cli(&[
        "audit",
        "result",
        "--completed",
        "2026-11-30",
        "--auditor",
        "Rowe & Co.",
        "--summary",
        &summary.display().to_string(),
    ])?;
    assert!(day.contains("due 2026-12-30"), "{day}");
    stack.act_as("records-supervisor")?;
    stack.cli(&["suspension", "order", "--order", "DPS order 2026-7"])?;
    let audits = http_get(stack.http_port, "/public/audits.json");
    assert!(audits.contains("Rowe & Co.") && audits.contains("2026-12-30"), "{audits}");
    assert!(audits.contains("DPS order 2026-7"), "{audits}");
    assert_no_plate("audits.json", &audits);
    let dom = browser::dump_dom(&format!("{base}/audit"))?;
    assert!(dom.contains("Collection is suspended") && dom.contains("Rowe &amp; Co."), "{dom}");
    publish("reads", batch(vec![read(6, PLATES[5], now_ms(), 44.30)]));
    stack.act_as("admin")?;
    wait_for("the read under the order refused", 60, || {
        stack.cli(&["dead-letters"]).is_ok_and(|o| o.contains("suspension order"))
    });
    stack.act_as("records-supervisor")?;
    stack.cli(&["suspension", "lift", "--reference", "DPS order 2026-9"])?;
    let list = stack.cli(&["suspension", "list"])?;
    assert!(list.contains("lifted"), "{list}");
    Ok(())
}

/// Subscribes as `user` to its response topic, publishes `payload` on `console/{on}/req` as the
/// same client identity, and returns the first response within `secs` (`None`: none came).
fn ask(
    stack: &Stack,
    user: &str,
    on: &str,
    payload: &str,
    secs: u32,
) -> anyhow::Result<Option<serde_json::Value>> {
    // One connection publishes and listens: the broker gives a certificate one connection.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut s = stack.session(&rt, user)?;
    let topic = format!("console/{on}/req");
    let answer =
        rt.block_on(s.send_raw(&topic, payload.as_bytes(), Duration::from_secs(secs.into())));
    rt.block_on(s.close());
    Ok(answer?)
}

/// The console over the real broker: each operator is bound to their own topics, the server
/// checks their role in its own users table, a search needs a purpose and a case number, and a
/// malformed request gets a clear error; every request is in the audit trail.
#[test]
fn the_console_answers_each_operator_within_their_role() -> anyhow::Result<()> {
    let mut stack = Stack::start()?;
    for (name, role) in [("alice", "operator"), ("bob", "investigator")] {
        grant(&stack, name, role)?;
    }
    let users = json_lines(&stack.cli(&["user", "list", "--json"])?);
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["authorised_by"], "Chief Ruiz");
    let before = stack.audit_entries()?;

    let r =
        ask(&stack, "alice", "alice", r#"{"id":"a1","command":"status"}"#, 10)?.expect("an answer");
    assert_eq!((r["id"].as_str(), r["ok"].as_bool()), (Some("a1"), Some(true)), "{r}");
    let r = ask(&stack, "alice", "alice", r#"{"id":"a2","command":"plates.search","purpose":"x","case":"1","args":{"plate":"ABC123"}}"#, 10)?
        .expect("an answer");
    assert!(r["error"].as_str().is_some_and(|e| e.contains("not among the duties")), "{r}");
    let r = ask(
        &stack,
        "bob",
        "bob",
        r#"{"id":"b1","command":"plates.search","args":{"plate":"ABC123"}}"#,
        10,
    )?
    .expect("an answer");
    assert!(r["error"].as_str().is_some_and(|e| e.contains("purpose and a case")), "{r}");
    let r = ask(&stack, "bob", "bob", r#"{"id":"b2","command":"plates.search","purpose":"stolen car","case":"24-7","args":{"plate":"ABC123","exigency":"vehicle fled a stop"}}"#, 10)?
        .expect("an answer");
    assert_eq!(
        (r["ok"].as_bool(), r["data"].as_array().map(Vec::len)),
        (Some(true), Some(0)),
        "{r}"
    );
    let r = ask(&stack, "bob", "bob", "{ not json", 10)?.expect("an answer");
    assert!(r["error"].as_str().is_some_and(|e| e.starts_with("malformed request")), "{r}");
    // Alice cannot ask on Bob's topic: the broker drops it, so nobody answers Bob.
    let r = ask(
        &stack,
        "alice",
        "bob",
        r#"{"id":"evil","command":"plates.search","purpose":"x","case":"1","args":{"plate":"ABC123"}}"#,
        3,
    )?;
    assert_eq!(r, None);
    // Five requests answered, five audit entries; the dropped one left none.
    assert_eq!(stack.audit_entries()?, before + 5);

    // The same through `sync-server console`, for scripts.
    let console = |user: &str, extra: &[&str]| {
        console_command(&stack, user)
            .expect("certificate")
            .args(extra)
            .output()
            .expect("sync-server console runs")
    };
    let out = console("alice", &["deployments.list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let data: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert!(data.is_array(), "{data}");
    let out = console("bob", &["plates.search", "--args", r#"{"plate":"ABC123"}"#]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused") && err.contains("purpose and a case"), "{err}");
    assert_eq!(stack.audit_entries()?, before + 7);

    // A console session outlives a broker restart: it reconnects and subscribes again.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut alice = session(&rt, &stack, "alice")?;
    stack.stop_broker();
    stack.start_broker()?;
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let asked = alice.ask("status", "", "", serde_json::json!({}), Duration::from_secs(5));
        if rt.block_on(asked).is_ok_and(|r| r.ok) {
            break;
        }
        assert!(Instant::now() < end, "the session never came back after the broker restart");
    }
    rt.block_on(alice.close());
    Ok(())
}

/// `sync-server console` as `user` (a certificate issued now) on the stack's broker.
/// The console takes its connection from the environment (or a profile) instead of six flags,
/// and its user from the certificate: a `--user` naming someone else is refused at once, before
/// anything reaches the broker.
#[test]
fn the_console_knows_its_user_from_the_certificate_and_its_settings_from_the_environment()
-> anyhow::Result<()> {
    let stack = Stack::start()?;
    grant(&stack, "ivan", "investigator")?;
    let (cert, key) = stack.issue("ivan")?;
    let console = |extra: &[&str], port: u16| {
        std::process::Command::new(e2e_tests::stack::bin("sync-server"))
            .arg("console")
            .args(extra)
            .env("TRAILER_CONSOLE_PORT", port.to_string())
            .env("TRAILER_CONSOLE_CA", stack.pki().join("ca.pem"))
            .env("TRAILER_CONSOLE_CERT", &cert)
            .env("TRAILER_CONSOLE_KEY", &key)
            .env("HOME", stack.path("home"))
            .output()
    };
    let out = console(&["status"], stack.broker_port)?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (action, actor) = stack.audit_details()?.last().cloned().unwrap_or_default();
    assert_eq!(action, "status", "{actor}");
    assert_eq!(stack.last_audit_actor()?, "console:ivan", "the user is the certificate's CN");
    // Refused before connecting: pointed at a port where no broker listens, it still names the
    // certificate's user, not a connection failure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let wrong = console(&["--user", "bob", "status"], closed)?;
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success());
    assert!(said.contains("ivan's certificate (CN=ivan), not bob's"), "{said}");
    Ok(())
}

fn console_command(stack: &Stack, user: &str) -> anyhow::Result<std::process::Command> {
    let (cert, key) = stack.issue(user)?;
    let mut cmd = std::process::Command::new(e2e_tests::stack::bin("sync-server"));
    cmd.args(["console", "--broker-port", &stack.broker_port.to_string(), "--user", user])
        .arg("--ca")
        .arg(stack.pki().join("ca.pem"))
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key);
    Ok(cmd)
}

fn session(
    rt: &tokio::runtime::Runtime,
    stack: &Stack,
    user: &str,
) -> anyhow::Result<sync_server::console::client::Session> {
    stack.session(rt, user)
}

fn grant(stack: &Stack, name: &str, role: &str) -> anyhow::Result<()> {
    stack.grant(name, role)
}

/// Waits until the session holds the live `topic` (the server publishes every few seconds).
fn wait_live(
    rt: &tokio::runtime::Runtime,
    s: &mut sync_server::console::client::Session,
    topic: &str,
) {
    let end = Instant::now() + Duration::from_secs(20);
    while !s.live.contains_key(topic) {
        assert!(Instant::now() < end, "no live {topic} for {}: {:?}", s.user(), s.live.keys());
        rt.block_on(s.settle(Duration::from_millis(500)));
    }
}

/// Every role against every command through the real broker and the console client, from a
/// table written out here; the live topics each role sees; and the work of a day: a deployment
/// started, a hotlist uploaded in parts, a release request that cannot be fulfilled before a
/// second supervisor approves it, and the interactive console prompting for purpose and case.
#[test]
fn each_role_runs_exactly_its_commands_over_the_broker() -> anyhow::Result<()> {
    const SUPERVISOR: &[&str] = &[
        "status",
        "whoami",
        "notices.*",
        "holds.*",
        "acp.add",
        "release.*",
        "publiclog.generate",
        "hotlists.list",
        "hotlists.approve",
        "hotlists.withdraw",
        "reads.list",
        "deployments.determinations",
        "suspension.*",
    ];
    use sync_server::console::roles::COMMANDS;
    let stack = Stack::start()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Who may do what: `family.*` is every command of a family.
    let duties: [(&str, &str, &[&str]); 8] = [
        ("vera", "viewer", &["status", "whoami"]),
        (
            "otto",
            "operator",
            &[
                "status",
                "whoami",
                "alerts.*",
                "deployments.list",
                "deployments.start",
                "deployments.end",
                "deployments.rename",
                "deployments.security",
                "hotlists.upload",
                "hotlists.list",
                "trailers.list",
                "trailers.health",
            ],
        ),
        ("ivan", "investigator", &["status", "whoami", "plates.search", "reads.picture"]),
        ("rita", "records-supervisor", SUPERVISOR),
        ("rick", "records-supervisor", SUPERVISOR),
        ("rosa", "records-supervisor", SUPERVISOR),
        (
            "audrey",
            "auditor",
            &[
                "status",
                "whoami",
                "release.list",
                "publiclog.generate",
                "audit.*",
                "suspension.list",
                "deployments.determinations",
            ],
        ),
        ("adam", "admin", &["status", "whoami", "users.manage", "trailers.*", "deadletters.list"]),
    ];
    for (user, role, _) in duties {
        grant(&stack, user, role)?;
    }
    let before = stack.audit_entries()?;
    let mut sessions = std::collections::HashMap::new();
    for (user, role, allowed) in duties {
        let mut s = session(&rt, &stack, user)?;
        for command in COMMANDS {
            let mine = allowed.iter().any(|a| match a.strip_suffix(".*") {
                Some(family) => command.split('.').next() == Some(family),
                None => *a == command,
            });
            let r = rt.block_on(s.ask(
                command,
                "role table",
                "T-1",
                serde_json::json!({}),
                Duration::from_secs(20),
            ))?;
            let refused = r.error.as_deref().is_some_and(|e| e.contains("not among the duties"));
            assert_eq!(refused, !mine, "{user} ({role}) {command}: {r:?}");
        }
        sessions.insert(user, s);
    }
    assert_eq!(stack.audit_entries()? - before, (duties.len() * COMMANDS.len()) as i64);

    // Live topics: status and backlog for everyone, alerts for operators, notices for records
    // supervisors; nobody reads another's.
    let mut s = |u: &str| sessions.remove(u).expect("a session");
    let (mut otto, mut rita, mut vera) = (s("otto"), s("rita"), s("vera"));
    wait_live(&rt, &mut otto, "alerts");
    wait_live(&rt, &mut rita, "notices");
    wait_live(&rt, &mut vera, "status");
    assert!(otto.live.contains_key("status") && !otto.live.contains_key("notices"));
    assert!(!rita.live.contains_key("alerts"));
    rt.block_on(vera.settle(Duration::from_secs(1)));
    let seen: Vec<&String> = vera.live.keys().collect();
    assert_eq!(seen, ["backlog", "status"]);
    let (cert, key) = stack.issue("vera")?;
    let peek = std::process::Command::new("mosquitto_sub")
        .args(["-h", "localhost", "-p", &stack.broker_port.to_string(), "-W", "3", "-C", "1"])
        .args(["-t", "console/otto/live/#", "-i", "vera-peek", "--cafile"])
        .arg(stack.pki().join("ca.pem"))
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .output()?;
    assert!(peek.stdout.is_empty(), "a viewer read an operator's live topics");

    let ask = |s: &mut sync_server::console::client::Session,
               command: &str,
               args: serde_json::Value|
     -> anyhow::Result<sync_server::console::protocol::Response> {
        Ok(rt.block_on(s.ask(
            command,
            "records request",
            "OC-26-1182",
            args,
            Duration::from_secs(20),
        ))?)
    };
    // An operator sets a trailer up by hand (one that has connected) and names the place.
    let (tcert, tkey) = stack.enroll("trailer-07")?;
    let status = Message::Status(trailer_wire::Status {
        trailer_id: "trailer-07".into(),
        online: true,
        time: now_ms(),
        software_version: "1.0".into(),
        store: trailer_wire::StoreInfo { store_id: 7, created: now_ms(), opens: 1, run: 1 },
    });
    stack.publish_raw(
        &tcert,
        &tkey,
        &trailer_wire::Topic::status("trailer-07"),
        &encode(&status),
    )?;
    // Refused until the server has the trailer's status (a typing error announces no reader).
    let args = serde_json::json!({"reader": "trailer-07", "lat": 44.02, "lon": -92.47, "name": "Broadway & 4th St"});
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let r = ask(&mut otto, "deployments.start", args.clone())?;
        if r.ok {
            break;
        }
        assert!(r.error.as_deref().is_some_and(|e| e.contains("no reader")), "{r:?}");
        assert!(Instant::now() < end, "trailer-07's status never arrived");
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = ask(&mut otto, "deployments.list", serde_json::json!({}))?;
    assert!(r.data.to_string().contains("Broadway & 4th St"), "{r:?}");
    // A state hotlist of 20,000 plates (about 640 KB) goes up in four parts.
    let mut csv = String::from("plate,state,category,source\n");
    for i in 0..20_000 {
        csv.push_str(&format!("H{i:06},MN,stolen vehicle,MN BCA hotlist file of the day\n"));
    }
    let r =
        rt.block_on(otto.upload_hotlist("mn-state", 7, &csv, ("", ""), Duration::from_secs(20)))?;
    assert_eq!(r.data["complete"], true, "{r:?}");
    assert_eq!(r.data["version"]["entries"], 20_000);
    let r = ask(&mut otto, "hotlists.list", serde_json::json!({}))?;
    assert_eq!(r.data[0]["version"], 7, "{r:?}");
    let r = rt.block_on(otto.upload_hotlist(
        "mn-state",
        7,
        "A,MN,warrant,x\n",
        ("", ""),
        Duration::from_secs(20),
    ))?;
    assert!(r.error.as_deref().is_some_and(|e| e.contains("not newer")), "{r:?}");
    // An investigation's list: refused without its case, then held for a second supervisor.
    let inv = "INV001,MN,active investigation,case 26-77,26-77\n";
    let within = Duration::from_secs(20);
    let r = rt.block_on(otto.upload_hotlist("case-26-77", 1, inv, ("", ""), within))?;
    assert!(r.error.as_deref().is_some_and(|e| e.contains("case number")), "{r:?}");
    let why = ("suspect vehicle in an active burglary case", "26-77");
    let r = rt.block_on(otto.upload_hotlist("case-26-77", 1, inv, why, within))?;
    assert_eq!(r.data["complete"], true, "{r:?}");
    assert!(r.data["version"]["approved_by"].is_null(), "waits for approval: {r:?}");
    assert!(r.data["version"]["trailers"].as_array().is_some_and(Vec::is_empty), "{r:?}");
    let approve = serde_json::json!({"name": "case-26-77", "version": 1});
    let r = rt.block_on(otto.ask("hotlists.approve", "", "", approve.clone(), within))?;
    assert!(!r.ok, "an operator does not approve: {r:?}");

    // A release request: entered by Rita, not fulfilled before approval, reviewed by Rick,
    // decided by neither of them.
    let (mut rick, mut rosa) = (s("rick"), s("rosa"));
    let request = serde_json::json!({
        "requesting_agency": "Olmsted County Sheriff", "requester": "Det. A. Berg",
        "factual_basis": "vehicle seen leaving the scene of a burglary",
        "authorisation": "signed request under policy 462.6", "plate": "ABC123",
        "from": "2026-01-01", "to": "2026-12-31",
    });
    let r = ask(&mut rita, "release.request", request)?;
    let id = r.data["release"].as_i64().expect("an id");
    let fulfil = serde_json::json!({"id": id});
    let r = ask(&mut rita, "release.fulfil", fulfil.clone())?;
    assert!(r.error.as_deref().is_some_and(|e| e.contains("only an approved request")), "{r:?}");
    let r = ask(&mut rick, "release.review", serde_json::json!({"id": id, "note": "complete"}))?;
    assert!(r.ok, "{r:?}");
    let decide = serde_json::json!({"id": id, "approve": true, "reason": "basis stated"});
    let r = ask(&mut rita, "release.decide", decide.clone())?;
    assert!(r.error.as_deref().is_some_and(|e| e.contains("another supervisor")), "{r:?}");
    let r = ask(&mut rick, "release.decide", decide.clone())?;
    assert!(r.error.as_deref().is_some_and(|e| e.contains("reviewed by console:rick")), "{r:?}");
    assert!(ask(&mut rosa, "release.decide", decide)?.ok);
    let r = ask(&mut rita, "release.fulfil", fulfil)?;
    assert!(r.ok, "{r:?}");
    let manifest = std::path::Path::new(r.data["dir"].as_str().expect("dir")).join("manifest.json");
    assert!(manifest.exists(), "{r:?}");
    let r = ask(&mut rita, "release.list", serde_json::json!({}))?;
    assert_eq!(r.data[0]["state"], "fulfilled", "{r:?}");
    // The bundle reaches the supervisor's own machine, every file checked against the
    // manifest, with no shell on the server.
    let downloads = stack.path("rita-downloads");
    let r = rt.block_on(rita.run(
        "release.download",
        "",
        "",
        serde_json::json!({"id": id}),
        Duration::from_secs(20),
        &downloads,
    ))?;
    assert!(r.ok, "{r:?}");
    let listed: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest)?)?;
    let files = listed["files"].as_array().expect("files");
    assert!(files.iter().any(|f| f["name"] == "DUTIES.txt"), "{listed}");
    for f in files {
        let name = f["name"].as_str().expect("name");
        let got = std::fs::read(downloads.join(format!("releases/release-{id}/{name}")))?;
        use sha2::Digest;
        assert_eq!(f["sha256"], hex::encode(sha2::Sha256::digest(&got)), "{name}");
    }
    let mine = std::fs::read(downloads.join(format!("releases/release-{id}/manifest.json")))?;
    assert_eq!(mine, std::fs::read(&manifest)?, "the manifest itself came whole");
    // A records supervisor approves the investigation's list: it goes to the trailers now.
    let r = ask(&mut rita, "hotlists.approve", approve)?;
    assert_eq!(r.data["approved"]["approved_by"], "console:rita", "{r:?}");
    for s in [otto, rita, rick, rosa, vera] {
        rt.block_on(s.close());
    }

    // The interactive console asks the investigator for a purpose and a case number.
    let mut console = console_command(&stack, "ivan")?
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    {
        use std::io::Write;
        let mut stdin = console.stdin.take().expect("stdin");
        stdin.write_all(
            b"help\nplates.search plate=ABC123 warrant=W-26-0412\nstolen car report\n26-0412\nlive\nquit\n",
        )?;
    }
    let out = console.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("connected as ivan (investigator)"), "{text}");
    // Help lists the role's commands only.
    assert!(text.contains("your role's commands") && text.contains("plates.search"), "{text}");
    assert!(!text.contains("holds.place"), "{text}");
    assert!(text.contains("Purpose (why this data is needed): Case number: (none)"), "{text}");
    assert!(text.contains("[status]"), "{text}");
    Ok(())
}

/// An ACP participant: the server destroys the reads it holds, every trailer is sent the
/// digests and destroys its own, and a new read of the plate is destroyed at collection on the
/// trailer and dropped at the server when a trailer that has not heard yet sends one.
#[test]
fn an_acp_request_destroys_reads_on_server_and_trailer_and_stops_future_ones() -> anyhow::Result<()>
{
    use appliance::store::{Inserted, NewPictures, Store, sample_read};
    use e2e_tests::backlog::{Trailer, sync_config};
    let stack = Stack::start()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    grant(&stack, "rita", "records-supervisor")?;
    let key = std::fs::read(stack.pki().join("acp.key"))?;
    let dir = stack.path("acp-store");
    let store = Store::open(&dir, 60, std::sync::Arc::new(appliance::clock::SystemClock))?
        .with_acp_key(key);
    let now = now_ms();
    let collect = |store: &Store, plate: &str| -> anyhow::Result<Inserted> {
        let read = ReadMeta { first_seen: now, best_seen: now + 400, ..sample_read(plate) };
        Ok(store.insert_reads(vec![(read, NewPictures::default())])?.remove(0))
    };
    let Inserted::Stored(acp_read) = collect(&store, "ACP404")? else { panic!("stored") };
    collect(&store, "KEEP01")?;
    let (cert, tkey) = stack.enroll("acp-box")?;
    let cfg = sync_config(stack.broker_port, &stack.pki().join("ca.pem"), &cert, &tkey);
    let trailer = Trailer::start_on("acp-box", &dir, store, cfg)?;
    // A trailer set up without the agency's ACP key: it cannot recognise the plate.
    let (kcert, kkey) = stack.enroll("keyless-box")?;
    let kcfg = sync_config(stack.broker_port, &stack.pki().join("ca.pem"), &kcert, &kkey);
    let keyless = Trailer::start("keyless-box", &stack.path("keyless-store"), kcfg)?;
    let plates = || -> Vec<String> {
        stack.server_reads().unwrap_or_default().into_iter().map(|r| r.plate).collect()
    };
    wait_for("both reads at the server", 60, || plates().len() == 2);

    let mut rita = session(&rt, &stack, "rita")?;
    let args = serde_json::json!({"plate": "acp-404", "reference": "ACP 26-0113"});
    let r = rt.block_on(rita.ask("acp.add", "", "", args, Duration::from_secs(20)))?;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.data["reads_destroyed"], 1, "{r:?}");
    assert_eq!(r.data["trailers"], serde_json::json!(["acp-box", "keyless-box"]));
    assert_eq!(plates(), ["KEEP01"]);
    // The trailer applies the digests: its own read is destroyed, a new one never written.
    wait_for("the trailer's read destroyed", 60, || {
        trailer.store.read(acp_read).is_ok_and(|r| r.is_none())
    });
    assert!(matches!(collect(&trailer.store, "ACP404")?, Inserted::DestroyedAcp));
    // The keyless trailer refuses the addition, saying why, and health shows it; the answered
    // downlinks keep no digest.
    stack.act_as("admin")?;
    wait_for("the keyless trailer's refusal", 60, || {
        stack
            .cli(&["downlink", "list", "--json", "--trailer", "keyless-box"])
            .is_ok_and(|out| out.contains("\"applied\":false") && out.contains("no ACP key"))
    });
    wait_for("health to show the missing key", 60, || {
        stack.health().is_ok_and(|h| {
            h.iter().any(|t| {
                t["trailer"] == "keyless-box"
                    && t["acp"].as_str().is_some_and(|a| a.starts_with("NO KEY"))
            })
        })
    });
    let health = stack.health()?;
    let boxed = health.iter().find(|t| t["trailer"] == "acp-box").expect("acp-box health");
    assert!(boxed["acp"].as_str().is_some_and(|a| a.starts_with("key matches")), "{boxed}");
    drop(keyless);
    assert!(trailer.store.reads()?.iter().all(|r| r.meta.plate != "ACP404"));
    // A trailer that has not heard yet sends one: the server drops it and keeps the other.
    let (old_cert, old_key) = stack.enroll("old-box")?;
    let batch = Message::ReadBatch(ReadBatch {
        trailer_id: "old-box".into(),
        reads: vec![read(1, "ACP404", now, 44.1), read(2, "KEEP02", now, 44.1)],
    });
    stack.publish_raw(&old_cert, &old_key, "trailer/old-box/up/reads", &encode(&batch))?;
    wait_for("the other read", 30, || plates().contains(&"KEEP02".to_string()));
    assert!(!plates().contains(&"ACP404".to_string()));
    // The audit trail has the request, never the plate.
    let db = format!("sqlite://{}?mode=rwc", stack.path("server/server.db").display());
    let details: Vec<(String, String)> = rt.block_on(async {
        let records = sync_server::records::Records::open(&db).await?;
        let rows =
            sqlx::query_as("SELECT action, detail FROM audit").fetch_all(records.pool()).await?;
        records.close().await;
        anyhow::Ok(rows)
    })?;
    assert!(details.iter().any(|(a, d)| a == "acp.add" && d.contains("ACP 26-0113")));
    assert!(
        details.iter().all(|(_, d)| !d.contains("ACP404") && !d.contains("acp-404")),
        "{details:?}"
    );
    rt.block_on(rita.close());
    Ok(())
}

/// Where screenshots of the public pages are kept (test artefacts).
fn artefacts() -> std::path::PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("test-artefacts/public")
}

/// The public pages as a resident meets them, on a phone (390 px) and a desktop (1280 px): no
/// page scrolls sideways, axe-core finds no serious or critical WCAG 2.1 A/AA violation, the map
/// draws a point per listed place, and the log's form changes the days, its downloads following.
/// Screenshots are kept under `target/test-artefacts/public/`.
#[test]
fn the_public_pages_fit_a_phone_and_pass_an_accessibility_check() -> anyhow::Result<()> {
    let stack = Stack::start()?;
    let (cert, key) = stack.enroll(TRAILER)?;
    let publish = |kind: &str, m: Message| {
        let topic = format!("trailer/{TRAILER}/up/{kind}");
        let status = stack.publish_raw(&cert, &key, &topic, &encode(&m)).expect("mosquitto_pub");
        assert!(status.success(), "publish on {topic}");
    };
    let now = now_ms();
    publish(
        "usage",
        Message::ActiveUse(ActiveUse {
            trailer_id: TRAILER.into(),
            period_id: 1,
            start: now - 3 * HOUR,
            end: None,
            start_reason: UsageReason::DaemonStart,
            end_reason: None,
            position: Position::from_degrees(44.16, -93.99, FixQuality::Fix3d),
            lists_compared: vec!["MN BCA hotlist".into()],
        }),
    );
    let batch = |reads| Message::ReadBatch(ReadBatch { trailer_id: TRAILER.into(), reads });
    publish("reads", batch(vec![read(1, PLATES[0], now - 2 * HOUR, 44.16)]));
    publish("reads", batch(vec![read(2, PLATES[1], now - HOUR, 44.18)]));
    let locations = || http_get(stack.http_port, "/public/locations.json");
    wait_for("two public locations", 60, || locations().matches("\"reader\"").count() == 2);
    let listed: Vec<serde_json::Value> =
        serde_json::from_str(locations().split("\r\n\r\n").nth(1).unwrap_or("[]"))?;
    let body = |path: &str| {
        http_get(stack.http_port, path).split("\r\n\r\n").nth(1).unwrap_or_default().to_string()
    };
    for page in ["agency", "locations", "log", "audit"] {
        let html = body(&format!("/public/{page}"));
        assert_no_plate(page, &html);
        for width in [390, 1280] {
            let l = browser::layout(&html, width)?;
            assert!(!l.overflows, "/public/{page} scrolls sideways at {width} px");
            assert!(l.serious.is_empty(), "/public/{page} at {width} px: {:?}", l.serious);
            let url = format!("http://127.0.0.1:{}/public/{page}", stack.http_port);
            browser::screenshot(&url, width, &artefacts().join(format!("{page}-{width}.png")))?;
        }
    }
    // The checks see what they look for: a page too wide, with a picture lacking its text.
    let bad = "<!doctype html><html lang=\"en\"><head><title>x</title></head><body>\
               <div style=\"width:2000px\">wide</div><img src=\"x.png\"></body></html>";
    let l = browser::layout(bad, 390)?;
    assert!(l.overflows && l.serious.iter().any(|v| v.starts_with("image-alt")), "{l:?}");
    let map = body("/public/locations");
    assert_eq!(map.matches("<g class=\"point\">").count(), listed.len(), "a point per place");
    assert!(map.contains("openstreetmap.org/?mlat="), "each place links to OpenStreetMap");

    // The form asks for days by name (GET from/to): the page and its downloads follow them.
    let today =
        sync_server::records::uselog::local_day_hour(&sync_server::records::Rules::default(), now)
            .0;
    let chosen = body(&format!("/public/log?from={today}&to={today}"));
    assert!(chosen.contains(&format!("name=\"from\" value=\"{today}\"")), "{chosen}");
    let csv_link = format!("log.csv?from={today}&amp;to={today}");
    assert!(chosen.contains(&csv_link), "the CSV link keeps the days: {chosen}");
    let csv = body(&format!("/public/log.csv?from={today}&to={today}"));
    assert_eq!(csv.lines().count(), 2, "the period of these days: {csv}");
    let none = body("/public/log.csv?from=2020-01-01&to=2020-01-02");
    assert_eq!(none.lines().count(), 1, "other days, no period: {none}");
    assert!(body("/public/log?from=2020-01-01&to=2020-01-02").contains("id=\"total-reads\">0<"));
    Ok(())
}

/// A hit reaches the operator at once: the interactive console announces it above the prompt,
/// through the real broker and server, with its list, trailer and place and how to acknowledge
/// it; the operator acknowledges it from there. The agency's dispatch system gets it on its
/// webhook too, and that delivery is audited.
#[test]
fn a_hit_is_announced_on_the_operators_console_as_it_arrives() -> anyhow::Result<()> {
    let (webhook, posted) = webhook_receiver()?;
    let sink = SmtpSink::start(0)?;
    let stack = Stack::start_with(&format!(
        "[bca]\nfrom = \"alpr@pd.test\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\n\
         smtp_security = \"plain\"\n\
         [[forward]]\nname = \"cad\"\nwebhook = \"{webhook}\"\ncategories = [\"stolen-vehicle\"]\n\
         [[forward]]\nname = \"watch-desk\"\nmail_to = \"watch@pd.test\"\n",
        sink.port
    ))?;
    let (cert, key) = stack.enroll(TRAILER)?;
    grant(&stack, "otto", "operator")?;
    let mut console = e2e_tests::console::Console::start(&stack, "otto")?;
    let within = Duration::from_secs(30);
    console
        .wait_for(within, |l| l.contains("connected as otto"))
        .ok_or_else(|| anyhow::anyhow!("no console: {:?}", console.seen))?;
    let alert = Message::Alert(Alert {
        trailer_id: TRAILER.into(),
        alert_id: 41,
        read: read(41, PLATES[2], now_ms(), 44.02),
        list_name: "mn-state".into(),
        list_version: 1,
        category: HitCategory::StolenVehicle,
        case_number: None,
    });
    let status =
        stack.publish_raw(&cert, &key, &format!("trailer/{TRAILER}/up/alerts"), &encode(&alert))?;
    assert!(status.success());
    let (line, _) = console
        .wait_for(within, |l| l.contains("*** HIT"))
        .ok_or_else(|| anyhow::anyhow!("no hit announced: {:?}", console.seen))?;
    for part in [PLATES[2], "list mn-state", TRAILER, "44.02000,", "alert_id=41", "verify"] {
        assert!(line.contains(part), "{part}: {line}");
    }
    console.type_line(&format!(
        "alerts.ack trailer={TRAILER} alert_id=41 outcome=confirmed-no-action \
         check=\"MNJIS query 26-41: listed, owner contacted\""
    ))?;
    console
        .wait_for(within, |l| l.contains("ok") || l.contains("(no rows)") || l.contains("done"))
        .ok_or_else(|| anyhow::anyhow!("no answer to the acknowledgement: {:?}", console.seen))?;
    stack.act_as("operator")?;
    let acked = || {
        stack
            .cli(&["alerts", "--purpose", "check", "--case", "T-1", "--json"])
            .is_ok_and(|o| o.contains("confirmed-no-action"))
    };
    wait_for("the acknowledgement recorded", 30, acked);
    let body = posted.recv_timeout(within)?;
    let hit: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!((hit["plate"].as_str(), hit["alert_id"].as_u64()), (Some(PLATES[2]), Some(41)));
    assert_eq!(hit["trailer"], TRAILER);
    let forwarded = || {
        stack.audit_details().is_ok_and(|a| {
            a.iter().any(|(action, d)| action == "alerts.forwarded" && d.contains("alert 41"))
        })
    };
    wait_for("the delivery audited", 30, forwarded);
    // The watch desk gets it by mail through the agency's relay.
    let mailed =
        || sink.mails().into_iter().find(|m| m.to.iter().any(|t| t.contains("watch@pd.test")));
    wait_for("the hit mailed to the watch desk", 30, || mailed().is_some());
    let mail = mailed().ok_or_else(|| anyhow::anyhow!("no mail"))?;
    assert!(mail.data.contains(PLATES[2]) && mail.data.contains("MNJIS/NLETS"), "{}", mail.data);
    wait_for("both deliveries audited", 30, || {
        stack
            .audit_details()
            .is_ok_and(|a| a.iter().filter(|(action, _)| action == "alerts.forwarded").count() == 2)
    });
    Ok(())
}

/// A dispatch system on the agency's own broker: with a certificate of the role `dispatch`, it
/// takes each hit of its categories from `dispatch/NAME/hits` (audited once, as it is first
/// sent), gets it again until it answers on `dispatch/NAME/ack`, and then no more; answers that
/// name no hit of its are ignored. Nobody else may read its topic.
#[test]
fn a_dispatch_system_on_the_broker_gets_each_hit_until_it_answers() -> anyhow::Result<()> {
    let stack = Stack::start_with(
        "[[forward]]\nname = \"cad-bus\"\nmqtt_client = \"cad-gateway\"\nresend_s = 2\n\
         categories = [\"stolen-vehicle\"]\n",
    )?;
    e2e_tests::stack::run_ok(
        std::process::Command::new(e2e_tests::stack::bin("sync-server"))
            .args(["pki", "issue", "--role", "dispatch", "--dir"])
            .arg(stack.pki())
            .arg("cad-gateway"),
    )?;
    let (cad_cert, cad_key) =
        (stack.pki().join("cad-gateway.pem"), stack.pki().join("cad-gateway.key"));
    let hits_topic = "dispatch/cad-gateway/hits";
    stack.wait_admitted("cad-gateway", hits_topic, &cad_cert, &cad_key)?;
    let (cert, key) = stack.enroll(TRAILER)?;
    // A trailer may not read the dispatch system's hits (the broker refuses at once).
    let peek = std::process::Command::new("mosquitto_sub")
        .args(["-h", "localhost", "-p", &stack.broker_port.to_string(), "-q", "1"])
        .args(["-t", hits_topic, "-W", "10", "-C", "1", "--cafile"])
        .arg(stack.pki().join("ca.pem"))
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .output()?;
    let said =
        String::from_utf8_lossy(&peek.stderr).into_owned() + &String::from_utf8_lossy(&peek.stdout);
    assert!(said.contains("denied"), "a trailer reading dispatch hits: {said}");

    let out = stack.path("cad-gateway.out");
    let mut subscriber = std::process::Command::new("mosquitto_sub")
        .args(["-h", "localhost", "-p", &stack.broker_port.to_string(), "-q", "1"])
        .args(["-t", hits_topic, "--cafile"])
        .arg(stack.pki().join("ca.pem"))
        .arg("--cert")
        .arg(&cad_cert)
        .arg("--key")
        .arg(&cad_key)
        .stdout(std::fs::File::create(&out)?)
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let received = |id: u64| -> Vec<serde_json::Value> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["alert_id"] == id)
            .collect()
    };
    let alert = |alert_id: u64, category: HitCategory| {
        Message::Alert(Alert {
            trailer_id: TRAILER.into(),
            alert_id,
            read: read(alert_id, PLATES[2], now_ms(), 44.02),
            list_name: "mn-state".into(),
            list_version: 1,
            category,
            case_number: None,
        })
    };
    let topic = format!("trailer/{TRAILER}/up/alerts");
    for (id, category) in [(51, HitCategory::StolenVehicle), (52, HitCategory::Warrant)] {
        assert!(stack.publish_raw(&cert, &key, &topic, &encode(&alert(id, category)))?.success());
    }
    // Unanswered, it comes again.
    wait_for("the hit, twice", 60, || received(51).len() >= 2);
    let hit = &received(51)[0];
    assert_eq!((hit["plate"].as_str(), hit["trailer"].as_str()), (Some(PLATES[2]), Some(TRAILER)));
    assert_eq!(hit["kind"], "alpr-hit");
    let forwarded = |id: u64| {
        stack.audit_details().map(|a| {
            a.iter()
                .filter(|(action, d)| {
                    action == "alerts.forwarded" && d.contains(&format!("alert {id} "))
                })
                .count()
        })
    };
    assert_eq!(forwarded(51)?, 1, "audited once, as it was first sent");
    let delivered = |id: u64| -> anyhow::Result<Option<i64>> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let records = sync_server::records::Records::open(&stack.database()).await?;
            let row: Result<Option<(i64,)>, _> = sqlx::query_as(
                "SELECT delivered_ms FROM alert_forwards WHERE target = 'cad-bus' AND alert_id = ?",
            )
            .bind(id as i64)
            .fetch_optional(records.pool())
            .await;
            records.close().await;
            Ok(row?.map(|r| r.0))
        })
    };
    assert_eq!(delivered(51)?, None, "not delivered before its answer");

    // Answers that name no hit of its change nothing; its answer marks the hit delivered.
    let ack_topic = "dispatch/cad-gateway/ack";
    for junk in [&b"not json"[..], format!(r#"{{"trailer":"{TRAILER}","alert_id":52}}"#).as_bytes()]
    {
        assert!(stack.publish_raw(&cad_cert, &cad_key, ack_topic, junk)?.success());
    }
    let answer = format!(r#"{{"trailer":"{TRAILER}","alert_id":51}}"#);
    assert!(stack.publish_raw(&cad_cert, &cad_key, ack_topic, answer.as_bytes())?.success());
    wait_for("the answered hit recorded as delivered", 30, || {
        delivered(51).is_ok_and(|d| d.is_some_and(|at| at > 0))
    });
    assert_eq!(delivered(52)?, Some(0), "the warrant was passed over, never delivered");
    let copies = received(51).len();
    // Answered, it is sent no more: a later hit comes twice meanwhile, the answered one not again
    // (but for one already on its way).
    assert!(
        stack
            .publish_raw(&cert, &key, &topic, &encode(&alert(53, HitCategory::StolenVehicle)))?
            .success()
    );
    wait_for("the next hit, twice", 60, || received(53).len() >= 2);
    assert!(received(51).len() <= copies + 1, "{} then {copies}", received(51).len());
    assert!(received(52).is_empty(), "not of its categories");
    assert_eq!(forwarded(52)?, 0);
    let _ = subscriber.kill();
    let _ = subscriber.wait();
    Ok(())
}

/// A dispatch system's webhook on a free local port: each POST's body, answered 204.
fn webhook_receiver() -> anyhow::Result<(String, std::sync::mpsc::Receiver<String>)> {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://127.0.0.1:{}/alpr/hits", listener.local_addr()?.port());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let Ok(read_half) = conn.try_clone() else { continue };
            let mut reader = BufReader::new(read_half);
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                let mut conn = conn;
                let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
                let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
            }
        }
    });
    Ok((url, rx))
}

/// On request the server logs one JSON object a line (for Loki or Vector), from its first line:
/// the running server's own log, read as it starts.
#[test]
fn the_server_logs_json_lines_on_request() -> anyhow::Result<()> {
    use std::io::BufRead;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("server.toml");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    std::fs::write(
        &config,
        format!(
            "[agency]\nname = \"Log Test PD\"\ncontact = \"Records, (555) 555-0100\"\n\
             [server]\ndata_dir = \"{}\"\n[broker]\nhost = \"127.0.0.1\"\nport = {closed}\n\
             [http]\nlisten = \"127.0.0.1:0\"\nmonitor_listen = \"\"\n",
            dir.path().display()
        ),
    )?;
    let mut server = std::process::Command::new(e2e_tests::stack::bin("sync-server"))
        .args(["run", "--config"])
        .arg(&config)
        .env("TRAILER_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let stderr = server.stderr.take().ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let mut lines = std::io::BufReader::new(stderr).lines();
    let first = lines.next().transpose()?;
    let _ = server.kill();
    let _ = server.wait();
    let first = first.ok_or_else(|| anyhow::anyhow!("the server logged nothing"))?;
    let line: serde_json::Value = serde_json::from_str(&first)
        .map_err(|e| anyhow::anyhow!("not a JSON line ({e}): {first}"))?;
    assert!(line["level"].is_string() && line["timestamp"].is_string(), "{line}");
    assert!(line["fields"]["message"].is_string(), "{line}");
    Ok(())
}

/// The expressions of the shipped Grafana dashboard (each panel's queries) and Prometheus alert
/// rules (each `expr:`), by file.
fn shipped_monitoring() -> anyhow::Result<Vec<(&'static str, Vec<String>)>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../sync-server/monitoring/");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}grafana-dashboard.json"))?)?;
    let panels = dashboard["panels"].as_array().cloned().unwrap_or_default();
    let queries = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    let rules = std::fs::read_to_string(format!("{dir}alerts.yml"))?;
    let exprs = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:").map(|e| e.trim().to_string()))
        .collect();
    Ok(vec![("grafana-dashboard.json", queries), ("alerts.yml", exprs)])
}

/// The server's metric names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("alpr_"))
        .map(str::to_string)
        .collect()
}

/// GET on the monitoring address: (status line, body).
fn monitor_get(stack: &Stack, path: &str) -> anyhow::Result<(String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", stack.monitor_port))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((head.lines().next().unwrap_or_default().to_string(), body.to_string()))
}

/// The value of one sample in a Prometheus text body.
fn sample(body: &str, name: &str) -> Option<f64> {
    body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// A monitoring tool scraping `/metrics` while a trailer syncs sees the fleet as it is: the
/// trailer online, its backlog, the messages handled, the reads held, an open hit by category;
/// `/healthz` and `/readyz` answer, and readiness follows the broker.
#[test]
fn metrics_show_the_fleet_while_it_syncs() -> anyhow::Result<()> {
    let mut stack = Stack::start()?;
    let (cert, key) = stack.enroll(TRAILER)?;
    let publish = |topic: String, m: Message| -> anyhow::Result<()> {
        anyhow::ensure!(stack.publish_raw(&cert, &key, &topic, &encode(&m))?.success());
        Ok(())
    };
    let now = now_ms();
    publish(
        trailer_wire::Topic::status(TRAILER),
        Message::Status(trailer_wire::Status {
            trailer_id: TRAILER.into(),
            online: true,
            time: now,
            software_version: "1.0".into(),
            store: trailer_wire::StoreInfo { store_id: 1, created: now, opens: 1, run: 1 },
        }),
    )?;
    let up = |kind: &str| format!("trailer/{TRAILER}/up/{kind}");
    let reads = (1..=2).map(|i| read(i, PLATES[i as usize - 1], now - HOUR, 44.16)).collect();
    publish(up("reads"), Message::ReadBatch(ReadBatch { trailer_id: TRAILER.into(), reads }))?;
    publish(
        up("alerts"),
        Message::Alert(Alert {
            trailer_id: TRAILER.into(),
            alert_id: 9,
            read: read(3, PLATES[2], now - HOUR + 1000, 44.16),
            list_name: "mn-state".into(),
            list_version: 1,
            category: HitCategory::Warrant,
            case_number: None,
        }),
    )?;
    let metrics = || monitor_get(&stack, "/metrics").map(|(_, b)| b).unwrap_or_default();
    wait_for("the reads and the hit in the metrics", 30, || {
        sample(&metrics(), "alpr_reads_stored") == Some(3.0)
    });
    let body = metrics();
    let online = format!("alpr_trailer_online{{trailer=\"{TRAILER}\"}}");
    for (name, want) in [
        (online.as_str(), 1.0),
        ("alpr_trailers_enrolled", 1.0),
        ("alpr_alerts_open", 1.0),
        ("alpr_hits_held{category=\"Warrant\"}", 1.0),
        ("alpr_dead_letters", 0.0),
        ("alpr_broker_connected", 1.0),
    ] {
        assert_eq!(sample(&body, name), Some(want), "{name}:\n{body}");
    }
    assert!(sample(&body, "alpr_uplink_messages_total").is_some_and(|n| n >= 3.0), "{body}");
    assert!(!body.contains(PLATES[0]) && !body.contains(PLATES[2]), "no plate in the metrics");
    wait_for("the audit chain checked", 30, || {
        sample(&metrics(), "alpr_audit_chain_intact") == Some(1.0)
    });
    assert!(monitor_get(&stack, "/healthz")?.0.contains(" 200 "));
    assert!(monitor_get(&stack, "/readyz")?.0.contains(" 200 "));
    // The dashboard and the alert rules shipped for them watch metrics this server serves.
    let served = metrics();
    for (file, expressions) in shipped_monitoring()? {
        assert!(!expressions.is_empty(), "{file}: no expression");
        for expr in expressions {
            for name in metric_names(&expr) {
                // Declared (a family may have no sample while no trailer reports it).
                let present = served.lines().any(|l| l.starts_with(&format!("# TYPE {name} ")));
                assert!(present, "{file}: {expr} watches {name}, which /metrics does not serve");
            }
        }
    }
    stack.stop_broker();
    wait_for("not ready without the broker", 30, || {
        monitor_get(&stack, "/readyz").is_ok_and(|(status, body)| {
            status.contains(" 503 ") && body.contains("broker NOT CONNECTED")
        })
    });
    Ok(())
}

/// A console that loses the broker says so at once, marks the live topics stale, and says so
/// again when the connection is back.
#[test]
fn a_console_says_when_it_loses_the_broker_and_when_it_is_back() -> anyhow::Result<()> {
    let mut stack = Stack::start()?;
    grant(&stack, "otto", "operator")?;
    let mut console = e2e_tests::console::Console::start(&stack, "otto")?;
    let within = Duration::from_secs(30);
    let expect = |console: &mut e2e_tests::console::Console, what: &str| {
        console
            .wait_for(within, |l| l.contains(what))
            .ok_or_else(|| anyhow::anyhow!("no {what:?}: {:?}", console.seen))
    };
    expect(&mut console, "connected as otto")?;
    stack.stop_broker();
    expect(&mut console, "connection to the broker was lost")?;
    console.type_line("live")?;
    expect(&mut console, "(stale: no connection to the broker since")?;
    stack.start_broker()?;
    expect(&mut console, "connected to the broker again")?;
    Ok(())
}
