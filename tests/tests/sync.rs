//! Sync under failure, through the real parts: a private Mosquitto with mutual TLS, the sync
//! server binary on SQLite, and the appliance's own sync link (in this process, or the appliance
//! binary where it is killed). Every scenario ends with counts at the server: each read of the
//! backlog exactly once (reads = distinct plates = backlog), nothing lost, nothing twice.
use e2e_tests::backlog::{Trailer, fill, sync_config};
use e2e_tests::proxy::{Faults, Proxy};
use e2e_tests::stack::{Stack, bin, free_port};
use rand::Rng;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Waits until `cond` holds, polling; fails with `what` after `secs`.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let end = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        anyhow::ensure!(Instant::now() < end, "timed out after {secs} s waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The server holds exactly `reads` reads from `trailer`, each once, and `alerts` alerts.
fn exactly(stack: &Stack, trailer: &str, reads: u64, alerts: i64) -> anyhow::Result<()> {
    let c = stack.counts(trailer)?;
    let (n, distinct, a) = (c.reads, c.plates, c.alerts);
    anyhow::ensure!(
        (n, distinct, a) == (reads as i64, reads as i64, alerts),
        "{trailer}: the server holds {n} reads ({distinct} distinct plates) and {a} alerts; \
         expected {reads} reads, each once, and {alerts} alerts"
    );
    Ok(())
}

/// A trailer with a backlog and quick reconnects and timeouts, so failures heal within a test.
fn config(
    stack: &Stack,
    port: u16,
    trailer: &str,
) -> anyhow::Result<appliance::config::SyncConfig> {
    let (cert, key) = stack.enroll(trailer)?;
    let mut cfg = sync_config(port, &stack.pki().join("ca.pem"), &cert, &key);
    cfg.reconnect_initial_ms = 100;
    cfg.reconnect_max_ms = 1000;
    cfg.ack_timeout_ms = 3000;
    Ok(cfg)
}

/// A week without a link: a week of reads (one day partition each) and an alert raised while
/// offline wait on the trailer, which keeps trying; when the link returns everything arrives
/// once, the alert among the first.
#[test]
fn a_week_offline_then_every_read_arrives_once() -> anyhow::Result<()> {
    let stack = Stack::start()?;
    let dir = stack.path("week-store");
    let n = 7000;
    fill(&dir, n, 7, 10)?;
    let proxy = Proxy::start(stack.broker_port)?;
    proxy.set(Faults { refuse: true, ..Faults::default() });
    let trailer = Trailer::start("week", &dir, config(&stack, proxy.port, "week")?)?;
    let alert = trailer.raise_alert("WEEK001")?;
    std::thread::sleep(Duration::from_secs(2));
    exactly(&stack, "week", 0, 0)?;
    anyhow::ensure!(trailer.store.backlog_len() as u64 > n, "the backlog waits on the trailer");
    proxy.set(Faults::default());
    wait_for(60, "the alert", || !trailer.alert_pending(alert))?;
    let left = trailer.store.backlog_len();
    anyhow::ensure!(
        left > 1000,
        "the alert was acknowledged only after most of the backlog ({left} left)"
    );
    trailer.wait_drained(Duration::from_secs(120)).ok_or_else(|| anyhow::anyhow!("no drain"))?;
    exactly(&stack, "week", n + 1, 1)?;
    Ok(())
}

/// The broker is killed (SIGKILL: it loses what it had queued) and restarted in the middle of
/// a drain, then the server is killed and restarted: the trailer resends what was never
/// acknowledged end to end, the server stores each read once.
#[test]
fn broker_and_server_killed_mid_drain_lose_and_duplicate_nothing() -> anyhow::Result<()> {
    let mut stack = Stack::start()?;
    let dir = stack.path("restarts-store");
    let n = 30_000;
    fill(&dir, n, 2, 1)?;
    let mut cfg = config(&stack, stack.broker_port, "restarts")?;
    cfg.max_in_flight = 16; // a longer drain, so the failures land in its middle
    let trailer = Trailer::start("restarts", &dir, cfg)?;
    let total = 2 * n as usize;
    wait_for(60, "a third of the drain", || trailer.store.backlog_len() < total * 2 / 3)?;
    stack.stop_broker();
    std::thread::sleep(Duration::from_millis(500));
    stack.start_broker()?;
    wait_for(60, "two thirds of the drain", || trailer.store.backlog_len() < total / 3)?;
    anyhow::ensure!(!trailer.store.backlog_empty(), "the drain ended before the server was killed");
    stack.stop_server();
    std::thread::sleep(Duration::from_millis(500));
    stack.start_server()?;
    trailer.wait_drained(Duration::from_secs(120)).ok_or_else(|| anyhow::anyhow!("no drain"))?;
    exactly(&stack, "restarts", n, 0)?;
    Ok(())
}

/// A second server instance joins in the middle of a drain and the first leaves (killed): the
/// broker's shared subscription hands the rest to the second, which stores it once.
#[test]
fn a_second_server_instance_joins_and_the_first_leaves() -> anyhow::Result<()> {
    let mut stack = Stack::start()?;
    let dir = stack.path("share-store");
    let n = 30_000;
    fill(&dir, n, 1, 1)?;
    let mut cfg = config(&stack, stack.broker_port, "share")?;
    cfg.max_in_flight = 16;
    let trailer = Trailer::start("share", &dir, cfg)?;
    let total = 2 * n as usize;
    wait_for(60, "a quarter of the drain", || trailer.store.backlog_len() < total * 3 / 4)?;
    let second = stack.start_instance("b")?;
    wait_for(60, "half of the drain", || trailer.store.backlog_len() < total / 2)?;
    anyhow::ensure!(
        !trailer.store.backlog_empty(),
        "the drain ended before the first instance left"
    );
    stack.stop_server();
    trailer.wait_drained(Duration::from_secs(120)).ok_or_else(|| anyhow::anyhow!("no drain"))?;
    exactly(&stack, "share", n, 0)?;
    drop(second);
    Ok(())
}

/// The appliance binary is killed with SIGKILL in the middle of a drain and started again: it
/// finds its outbox intact and finishes; the server holds each read once.
#[test]
fn appliance_killed_mid_drain_resumes_and_nothing_is_doubled() -> anyhow::Result<()> {
    let stack = Stack::start()?;
    let dir = stack.path("killed-store");
    let n = 20_000;
    fill(&dir, n, 3, 1)?;
    let (cert, key) = stack.enroll("killed")?;
    // A camera that is not there: the appliance keeps trying it and syncs meanwhile.
    let config = stack.path("killed.toml");
    std::fs::write(
        &config,
        format!(
            "[trailer]\nid = \"killed\"\ndata_dir = \"{}\"\n[capture]\nsource = \"rtsp://127.0.0.1:{}/none\"\n\
             [sync]\nbroker_host = \"localhost\"\nbroker_port = {}\nca_file = \"{}\"\ncert_file = \"{}\"\n\
             key_file = \"{}\"\nmax_in_flight = 16\nack_timeout_ms = 3000\n",
            dir.display(),
            free_port(),
            stack.broker_port,
            stack.pki().join("ca.pem").display(),
            cert.display(),
            key.display()
        ),
    )?;
    let start = |log: &Path| -> anyhow::Result<std::process::Child> {
        Ok(Command::new(bin("appliance"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()?)
    };
    let mut app = start(&stack.path("killed-1.log"))?;
    let mut rng = rand::rng();
    let kill_at = rng.random_range(2000..8000);
    wait_for(60, "part of the drain", || stack.counts("killed").is_ok_and(|c| c.reads >= kill_at))?;
    app.kill()?; // SIGKILL
    app.wait()?;
    let mid = stack.counts("killed")?.reads;
    anyhow::ensure!(mid < n as i64, "the drain ended before the kill");
    let mut app = start(&stack.path("killed-2.log"))?;
    let done = wait_for(120, "the rest of the drain", || {
        stack.counts("killed").is_ok_and(|c| c.reads >= n as i64)
    });
    let _ = nix_term(&app);
    let _ = app.wait();
    done?;
    exactly(&stack, "killed", n, 0)?;
    Ok(())
}

fn nix_term(child: &std::process::Child) -> std::io::Result<std::process::ExitStatus> {
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status()
}

/// A bad cellular link: 300 ms each way, 80 kB/s, stalls of up to 3 s and cuts at random.
/// Every read still arrives once, and alerts raised during it arrive well before the backlog.
#[test]
fn a_bad_cellular_link_loses_nothing_and_alerts_still_arrive() -> anyhow::Result<()> {
    let _ =
        tracing_subscriber::fmt().with_env_filter("appliance=info").with_test_writer().try_init();
    let stack = Stack::start()?;
    let dir = stack.path("cell-store");
    let n = 3000;
    fill(&dir, n, 2, 4)?;
    let proxy = std::sync::Arc::new(Proxy::start(stack.broker_port)?);
    let link = Faults { latency_ms: 300, bytes_per_s: 80_000, ..Faults::default() };
    proxy.set(link);
    let mut cfg = config(&stack, proxy.port, "cell")?;
    cfg.keep_alive_s = 5;
    let trailer = Trailer::start("cell", &dir, cfg)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let chaos = {
        let (proxy, stop) = (proxy.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rng = rand::rng();
            let (mut cuts, mut stalls) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(rng.random_range(1000..4000)));
                match rng.random_range(0..10) {
                    0..3 => {
                        proxy.cut();
                        cuts += 1;
                    }
                    3..6 => {
                        proxy.set(Faults { stalled: true, ..link });
                        std::thread::sleep(Duration::from_millis(rng.random_range(200..3000)));
                        proxy.set(link);
                        stalls += 1;
                    }
                    _ => {}
                }
            }
            (cuts, stalls)
        })
    };
    let mut alerts = 0;
    for i in 0..3 {
        std::thread::sleep(Duration::from_secs(if i == 0 { 1 } else { 3 }));
        let id = trailer.raise_alert(&format!("CELL00{i}"))?;
        alerts += 1;
        let t = Instant::now();
        let arrived = wait_for(120, "an alert over the bad link", || !trailer.alert_pending(id));
        eprintln!(
            "alert {i}: {:?}, {} items waiting, {} connections, bytes {:?}",
            t.elapsed(),
            trailer.store.backlog_len(),
            proxy.connections(),
            proxy.bytes()
        );
        arrived?;
        // It overtook the backlog: most of it is still waiting.
        let left = trailer.store.backlog_len();
        anyhow::ensure!(left > 300, "alert {i} arrived only after the backlog ({left} items left)");
    }
    let drained = trailer.wait_drained(Duration::from_secs(300));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (cuts, stalls) = chaos.join().map_err(|_| anyhow::anyhow!("chaos thread panicked"))?;
    drained.ok_or_else(|| anyhow::anyhow!("no drain over the bad link"))?;
    eprintln!("bad link: {cuts} cuts, {stalls} stalls, {} connections", proxy.connections());
    anyhow::ensure!(proxy.connections() > 1, "the link was never cut and reconnected");
    exactly(&stack, "cell", n + alerts, alerts as i64)?;
    Ok(())
}

/// `sync-server downlink …` through the running server to a trailer, over a link that is cut
/// in the middle of a hotlist: the chunks already received are kept, the version is imported
/// once whole, and every command's answer comes back and is kept with it.
#[test]
fn downlinks_reach_the_trailer_and_each_answer_is_kept() -> anyhow::Result<()> {
    let stack = Stack::start()?;
    let dir = stack.path("down-store");
    let ids = fill(&dir, 20, 1, 1)?;
    let proxy = Proxy::start(stack.broker_port)?;
    proxy.set(Faults { bytes_per_s: 40_000, ..Faults::default() });
    let trailer = Trailer::start("down", &dir, config(&stack, proxy.port, "down")?)?;
    trailer.wait_drained(Duration::from_secs(60)).ok_or_else(|| anyhow::anyhow!("no drain"))?;

    // A state list of 6,000 plates (about 260 KB: five chunks), the first read's plate on it.
    let mut csv = format!("{},MN,stolen vehicle,MN BCA\n", e2e_tests::backlog::plate(0));
    for i in 0..6000 {
        csv.push_str(&format!("H{i:06},MN,warrant,MN BCA hotlist file {i:04}\n"));
    }
    let file = stack.path("state.csv");
    std::fs::write(&file, &csv)?;
    // Each command as the login with the role that duty needs.
    let cli = |role: &str, args: &[&str]| -> anyhow::Result<String> {
        stack.act_as(role)?;
        let out = e2e_tests::stack::run_ok(
            Command::new(bin("sync-server"))
                .arg("downlink")
                .arg("--config")
                .arg(stack.server_config())
                .args(args),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // Loaded as the console loads it: recorded, then sent to every trailer (here the one).
    let out = cli(
        "operator",
        &["hotlist", "--name", "mn-state", "--version", "1", &file.display().to_string()],
    )?;
    anyhow::ensure!(out.contains("queued for 1 trailers: down"), "{out}");
    // Cut the link once the first chunk is answered.
    let list = || -> anyhow::Result<Vec<serde_json::Value>> {
        cli("admin", &["list", "--json"])?
            .lines()
            .map(|l| serde_json::from_str(l).map_err(anyhow::Error::from))
            .collect()
    };
    wait_for(60, "the first chunk's answer", || {
        list().is_ok_and(|l| l.iter().any(|d| d["applied"] == serde_json::json!(true)))
    })?;
    proxy.cut();
    let first = ids[0].to_string();
    // A hold is placed once, on the server and on the trailers that hold its reads.
    stack.act_as("records-supervisor")?;
    stack.cli(&[
        "hold",
        "place",
        "--kind",
        "active-investigation",
        "--case",
        "24-000123",
        "--requester",
        "Det. A. Berg",
        "--request-date",
        "2026-11-20",
        "--read",
        &format!("down:{first}"),
    ])?;
    cli("operator", &["health", "--trailer", "down"])?;
    let why = ["--purpose", "stolen vehicle report", "--case", "24-000123"];
    cli("investigator", &[&["picture", "--trailer", "down", "--read", &first][..], &why].concat())?;
    cli(
        "investigator",
        &[&["picture", "--trailer", "down", "--read", "12345", "--context"][..], &why].concat(),
    )?;
    wait_for(120, "every answer", || {
        list().is_ok_and(|l| l.len() == 9 && l.iter().all(|d| !d["applied"].is_null()))
    })?;
    let rows = list()?;
    let answer = |summary: &str| -> anyhow::Result<(bool, String)> {
        let d = rows
            .iter()
            .find(|d| d["summary"].as_str().is_some_and(|s| s.contains(summary)))
            .ok_or_else(|| anyhow::anyhow!("no downlink {summary:?} in {rows:?}"))?;
        Ok((d["applied"] == serde_json::json!(true), d["answer"].as_str().unwrap_or("").into()))
    };
    let (ok, text) = answer("chunk 5 of 5")?;
    anyhow::ensure!(ok && text.contains("imported: 6001 entries"), "last chunk: {text}");
    anyhow::ensure!(answer("hold 1 (1 reads)")?.0, "hold");
    anyhow::ensure!(answer("send health now")?.0, "health");
    anyhow::ensure!(answer(&format!("PlateCrop of read {first}"))?.0, "picture");
    let (ok, text) = answer("Context of read 12345")?;
    anyhow::ensure!(!ok && text.contains("destroyed or never taken"), "missing picture: {text}");
    anyhow::ensure!(proxy.connections() >= 2, "the link was cut and came back");
    // The trailer holds the list and the hold; the list matches the plate on it.
    let meta = trailer.store.hotlist_meta("mn-state")?.ok_or_else(|| anyhow::anyhow!("no list"))?;
    anyhow::ensure!((meta.version, meta.entries) == (1, 6001), "{meta:?}");
    anyhow::ensure!(trailer.store.is_held(ids[0])?, "the read is held");
    let hits = trailer.store.match_plate(&e2e_tests::backlog::plate(0), false)?;
    anyhow::ensure!(hits.len() == 1, "the plate is on the list: {hits:?}");
    Ok(())
}

/// A metered trailer: an hourly byte budget stops reads once spent, while an alert still goes;
/// pictures on request stay on the trailer until the server asks for one.
#[test]
fn a_byte_budget_holds_reads_but_not_alerts_and_pictures_wait_for_a_request() -> anyhow::Result<()>
{
    let stack = Stack::start()?;
    let dir = stack.path("metered-store");
    let n = 3000;
    let ids =
        e2e_tests::backlog::fill_with(&dir, n, 1, 1, appliance::store::PictureSync::OnRequest)?;
    let mut cfg = config(&stack, stack.broker_port, "metered")?;
    let budget = 20_000;
    cfg.budget_bytes_per_hour = budget;
    let trailer = Trailer::start("metered", &dir, cfg)?;
    // The budget runs out: reads stop arriving, well short of the backlog.
    let mut last = -1;
    wait_for(60, "the budget to run out", || {
        std::thread::sleep(Duration::from_millis(1500));
        let now = stack.counts("metered").map(|c| c.reads).unwrap_or(-1);
        let settled = now == last && now > 0;
        last = now;
        settled
    })?;
    let c = stack.counts("metered")?;
    // Each read is at least 50 bytes in a batch: no more than the budget's worth went.
    anyhow::ensure!(
        c.reads > 0 && c.reads <= (budget / 50) as i64 && c.pictures == 0,
        "with a budget of {budget} bytes an hour the server got {c:?}"
    );
    let alert = trailer.raise_alert("METER01")?;
    wait_for(30, "the alert past the spent budget", || !trailer.alert_pending(alert))?;
    anyhow::ensure!(stack.counts("metered")?.alerts == 1, "the alert is at the server");
    // A picture the server asks for comes, though no picture was queued.
    stack.act_as("investigator")?;
    e2e_tests::stack::run_ok(
        Command::new(bin("sync-server"))
            .args(["downlink", "--config"])
            .arg(stack.server_config())
            .args(["picture", "--trailer", "metered", "--read", &ids[0].to_string()])
            .args(["--purpose", "pictures on request", "--case", "T-7"]),
    )?;
    wait_for(30, "the requested picture", || {
        stack.counts("metered").is_ok_and(|c| c.pictures == 1)
    })?;
    Ok(())
}

/// The same server on PostgreSQL: a drain with the server killed and restarted in its middle
/// stores each read and picture once, and an alert arrives.
#[test]
fn on_postgresql_a_drain_through_a_server_restart_stores_each_read_once() -> anyhow::Result<()> {
    let mut stack = Stack::start_postgres()?;
    let dir = stack.path("pg-store");
    let n = 10_000;
    fill(&dir, n, 2, 2)?;
    let mut cfg = config(&stack, stack.broker_port, "pg")?;
    cfg.max_in_flight = 16;
    let trailer = Trailer::start("pg", &dir, cfg)?;
    let total = (n + n / 2) as usize;
    wait_for(60, "a third of the drain", || trailer.store.backlog_len() < total * 2 / 3)?;
    anyhow::ensure!(!trailer.store.backlog_empty(), "the drain ended before the server was killed");
    stack.stop_server();
    std::thread::sleep(Duration::from_millis(300));
    stack.start_server()?;
    let alert = trailer.raise_alert("PGSQL01")?;
    trailer.wait_drained(Duration::from_secs(120)).ok_or_else(|| anyhow::anyhow!("no drain"))?;
    anyhow::ensure!(!trailer.alert_pending(alert), "the alert is acknowledged");
    exactly(&stack, "pg", n + 1, 1)?;
    anyhow::ensure!(stack.counts("pg")?.pictures == (n / 2) as i64, "each crop once");
    Ok(())
}

/// `sync-server downlink config`: a valid change is written to the appliance's writable
/// configuration (the installed one untouched, the running one kept) and the appliance stops so that systemd starts it on the new one; a change to the
/// trailer's identity, or a broken file, is refused with the reason and changes nothing.
#[test]
fn a_remote_configuration_change_is_applied_by_a_restart_and_unsafe_ones_refused()
-> anyhow::Result<()> {
    let stack = Stack::start()?;
    let (cert, key) = stack.enroll("conf")?;
    // As installed: the file in /etc is the daemon's to read only; what the agency sends goes
    // to a writable file of the state directory, which the daemon runs from once it exists.
    let installed = stack.path("conf.toml");
    let config = stack.path("conf-state.toml");
    let original = format!(
        "[trailer]\nid = \"conf\"\ndata_dir = \"{}\"\n[capture]\nsource = \"rtsp://127.0.0.1:{}/none\"\n\
         [sync]\nbroker_host = \"localhost\"\nbroker_port = {}\nca_file = \"{}\"\ncert_file = \"{}\"\n\
         key_file = \"{}\"\nconfig_key_file = \"{}\"\n",
        stack.path("conf-store").display(),
        free_port(),
        stack.broker_port,
        stack.pki().join("ca.pem").display(),
        cert.display(),
        key.display(),
        stack.pki().join("config-signing.pub").display()
    );
    std::fs::write(&installed, &original)?;
    let start = |n: u32| -> anyhow::Result<std::process::Child> {
        Ok(Command::new(bin("appliance"))
            .arg("run")
            .arg("--config")
            .arg(&installed)
            .arg("--remote-config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(stack.path(&format!("conf-{n}.log")))?)
            .spawn()?)
    };
    stack.act_as("admin")?;
    let downlink = |args: &[&str]| -> anyhow::Result<String> {
        let out = e2e_tests::stack::run_ok(
            Command::new(bin("sync-server"))
                .args(["downlink", "--config"])
                .arg(stack.server_config())
                .args(args),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let answers = || -> Vec<serde_json::Value> {
        downlink(&["list", "--json"])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    // Queued while the trailer has never connected (the broker has no session for it yet, so
    // the first send finds no subscriber): it goes out when the trailer comes online.
    let changed = format!("{original}budget_bytes_per_hour = 123456\n");
    let file = stack.path("changed.toml");
    std::fs::write(&file, &changed)?;
    downlink(&["config", "--trailer", "conf", &file.display().to_string()])?;
    std::thread::sleep(Duration::from_millis(1500));
    let mut app = start(1)?;
    let mut exited = None;
    wait_for(30, "the appliance to stop for its restart", || {
        exited = app.try_wait().ok().flatten();
        exited.is_some()
    })?;
    anyhow::ensure!(exited.is_some_and(|s| s.success()), "a clean stop: {exited:?}");
    anyhow::ensure!(std::fs::read_to_string(&config)? == changed, "the new file is in place");
    anyhow::ensure!(
        std::fs::read_to_string(stack.path("conf-state.toml.previous"))? == original,
        "the old one is kept"
    );
    anyhow::ensure!(
        std::fs::read_to_string(&installed)? == original,
        "the installed file is left as it was"
    );
    // Started again (systemd would), on the new file; the answer reaches the server.
    let mut app = start(2)?;
    wait_for(60, "the answer", || {
        answers().first().is_some_and(|d| d["applied"] == serde_json::json!(true))
    })?;
    let first = answers();
    let text = first[0]["answer"].as_str().unwrap_or("");
    anyhow::ensure!(text.contains("restarting to apply it"), "{text}");

    // Unsafe and broken changes are refused; the appliance keeps running.
    std::fs::write(&file, changed.replace("id = \"conf\"", "id = \"other\""))?;
    downlink(&["config", "--trailer", "conf", &file.display().to_string()])?;
    // A file that is not TOML is refused before it is sent (the trailer would refuse it too).
    std::fs::write(&file, "[sync\nbroken")?;
    let broken = Command::new(bin("sync-server"))
        .args(["downlink", "--config"])
        .arg(stack.server_config())
        .args(["config", "--trailer", "conf", &file.display().to_string()])
        .output()?;
    let said = String::from_utf8_lossy(&broken.stderr);
    anyhow::ensure!(!broken.status.success() && said.contains("not TOML"), "{said}");
    wait_for(60, "the refusal", || {
        let a = answers();
        a.len() == 2 && a.iter().all(|d| !d["applied"].is_null())
    })?;
    let a = answers();
    let why = |i: usize| a[i]["answer"].as_str().unwrap_or("").to_string();
    anyhow::ensure!(
        a[0]["applied"] == serde_json::json!(false)
            && why(0).contains("trailer.id can be changed only on the trailer itself"),
        "{}",
        why(0)
    );
    anyhow::ensure!(app.try_wait()?.is_none(), "refusals do not stop the appliance");
    anyhow::ensure!(std::fs::read_to_string(&config)? == changed, "the file is unchanged");

    // A configuration without the agency's signature, published by a stolen server
    // certificate: refused, whatever it says.
    e2e_tests::stack::run_ok(
        Command::new(bin("sync-server"))
            .args(["pki", "issue-server", "--dir"])
            .arg(stack.pki())
            .arg("stolen"),
    )?;
    let (scert, skey) =
        (stack.pki().join("sync-server-stolen.pem"), stack.pki().join("sync-server-stolen.key"));
    stack.wait_admitted("sync-server-stolen", "trailer/+/status", &scert, &skey)?;
    let forged = trailer_wire::Message::Downlink(trailer_wire::Downlink::Config {
        downlink_id: 999_999,
        toml: changed.replace("123456", "1"),
        signature: vec![0; 64],
    });
    stack.publish_raw(&scert, &skey, "trailer/conf/down/cmd", &trailer_wire::encode(&forged)?)?;
    wait_for(30, "the forged configuration refused", || {
        std::fs::read_to_string(stack.path("conf-2.log"))
            .is_ok_and(|l| l.contains("does not carry the agency's signature"))
    })?;
    anyhow::ensure!(std::fs::read_to_string(&config)? == changed, "the forged one is not applied");

    // A signed configuration the daemon cannot start on (its detector is no model): it is
    // applied, fails its starts, and the trailer puts the previous one back by itself.
    let broken = format!("{changed}[engine]\ndetector_model = \"{}\"\n", config.display());
    std::fs::write(&file, &broken)?;
    downlink(&["config", "--trailer", "conf", &file.display().to_string()])?;
    let mut exited = None;
    wait_for(60, "the stop for the restart", || {
        exited = app.try_wait().ok().flatten();
        exited.is_some()
    })?;
    anyhow::ensure!(std::fs::read_to_string(&config)? == broken, "applied, on trial");
    for n in 3..=4 {
        let out = Command::new(bin("appliance"))
            .arg("run")
            .arg("--config")
            .arg(&installed)
            .arg("--remote-config")
            .arg(&config)
            .output()?;
        anyhow::ensure!(!out.status.success(), "start {n} on the broken configuration fails");
    }
    let mut app = start(5)?;
    wait_for(60, "the trailer back on the previous configuration", || {
        stack.health().is_ok_and(|h| {
            h.iter().any(|t| t["trailer"] == "conf" && !t["config_rolled_back_at"].is_null())
        })
    })?;
    anyhow::ensure!(std::fs::read_to_string(&config)? == changed, "the previous one is back");
    anyhow::ensure!(app.try_wait()?.is_none(), "running on it");
    let _ = nix_term(&app);
    let _ = app.wait();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A trailer's store replaced or restored: every life of the store reaches the server whole, none
// overwrites another, and a store that lacks what the server sent before is sent it again.

/// A hotlist of plates `HOT001`.. (stolen vehicles) uploaded by an operator as `version`, and a
/// records supervisor's ACP request for `acp_plate`, both through the console over the broker.
fn agency_lists(
    stack: &Stack,
    rt: &tokio::runtime::Runtime,
    version: u64,
    acp_plate: &str,
) -> anyhow::Result<()> {
    for (user, role) in [("otto", "operator"), ("rita", "records-supervisor")] {
        if !stack.cli(&["user", "list"])?.contains(user) {
            stack.grant(user, role)?;
        }
    }
    let csv: String = (1..=4).map(|i| format!("HOT{i:03},MN,stolen vehicle,MN BCA\n")).collect();
    let mut otto = stack.session(rt, "otto")?;
    let r = rt.block_on(otto.upload_hotlist(
        "mn-state",
        version,
        &csv,
        ("", ""),
        Duration::from_secs(20),
    ))?;
    anyhow::ensure!(r.ok, "hotlist upload: {r:?}");
    rt.block_on(otto.close());
    let mut rita = stack.session(rt, "rita")?;
    let args = serde_json::json!({"plate": acp_plate, "reference": format!("ACP {acp_plate}")});
    let r = rt.block_on(rita.ask("acp.add", "", "", args, Duration::from_secs(20)))?;
    anyhow::ensure!(r.ok, "acp.add: {r:?}");
    rt.block_on(rita.close());
    Ok(())
}

/// Collects a read of `plate` now, as the daemon does: stored, then matched against the
/// hotlists (an alert per hit). Whether it was stored (an ACP participant's is not).
fn collect(trailer: &Trailer, plate: &str) -> anyhow::Result<bool> {
    use appliance::store::{Inserted, NewPictures, sample_read};
    let now = appliance::clock::Clock::now_ms(&appliance::clock::SystemClock);
    let read =
        trailer_wire::ReadMeta { first_seen: now, best_seen: now + 400, ..sample_read(plate) };
    let stored = trailer.store.insert_reads(vec![(read, NewPictures::default())])?;
    let Some(Inserted::Stored(id)) = stored.first() else { return Ok(false) };
    trailer.store.raise_alerts(&trailer.id, *id, false)?;
    trailer.wake();
    Ok(true)
}

/// One life of a store: a period of use around the reads of `plates` and a deployment event,
/// all synced. Returns the period's (start, end).
fn a_life(trailer: &Trailer, plates: &[&str], note: &str) -> anyhow::Result<(i64, i64)> {
    use trailer_wire::{ActiveUse, DeploymentEvent, DeploymentEventKind, UsageReason};
    let now = || appliance::clock::Clock::now_ms(&appliance::clock::SystemClock);
    let position = appliance::store::sample_read("X").position;
    let mut period = ActiveUse {
        trailer_id: trailer.id.clone(),
        period_id: trailer.store.next_id()?,
        start: now(),
        end: None,
        start_reason: UsageReason::DaemonStart,
        end_reason: None,
        position,
        lists_compared: vec!["MN BCA".into()],
    };
    trailer.store.record_usage(&period)?;
    trailer.store.record_deployment(&DeploymentEvent {
        trailer_id: trailer.id.clone(),
        event_id: trailer.store.next_id()?,
        kind: DeploymentEventKind::Start,
        time: now(),
        position,
        note: note.into(),
    })?;
    for p in plates {
        anyhow::ensure!(collect(trailer, p)?, "{p} was not stored");
    }
    (period.end, period.end_reason) = (Some(now() + 1), Some(UsageReason::DaemonStop));
    trailer.store.record_usage(&period)?;
    trailer.wake();
    trailer.wait_drained(Duration::from_secs(60)).ok_or_else(|| anyhow::anyhow!("no drain"))?;
    Ok((period.start, period.end.unwrap_or(0)))
}

/// What the server holds of `trailer`'s periods of use and deployment events.
fn periods_and_events(stack: &Stack, trailer: &str) -> anyhow::Result<(Vec<(i64, i64)>, i64)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let r = sync_server::records::Records::open(&stack.database()).await?;
        let periods: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT start_ms, COALESCE(end_ms, 0) FROM usage_periods WHERE trailer_id = ? \
             ORDER BY start_ms",
        )
        .bind(trailer)
        .fetch_all(r.pool())
        .await?;
        let (events,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM deployment_events WHERE trailer_id = ?")
                .bind(trailer)
                .fetch_one(r.pool())
                .await?;
        r.close().await;
        Ok((periods, events))
    })
}

/// A trailer's health line at the server.
fn health_of(stack: &Stack, trailer: &str) -> anyhow::Result<serde_json::Value> {
    stack
        .health()?
        .into_iter()
        .find(|h| h["trailer"] == trailer)
        .ok_or_else(|| anyhow::anyhow!("no health for {trailer}"))
}

/// Opens a store at `dir` with the agency's ACP key, as the daemon does, and starts its link.
fn start_trailer(stack: &Stack, id: &str, dir: &Path) -> anyhow::Result<Trailer> {
    let key = std::fs::read(stack.pki().join("acp.key"))?;
    let store =
        appliance::store::Store::open(dir, 60, std::sync::Arc::new(appliance::clock::SystemClock))?
            .with_acp_key(key);
    Trailer::start_on(id, dir, store, config(stack, stack.broker_port, id)?)
}

/// Waits until the trailer's store holds the hotlist version and the ACP list: a read of the
/// participant's plate is then destroyed at collection.
fn wait_lists(trailer: &Trailer, version: u64, acp_plate: &str) -> anyhow::Result<()> {
    wait_for(60, "the hotlist on the trailer", || {
        trailer
            .store
            .hotlist_meta("mn-state")
            .is_ok_and(|m| m.is_some_and(|m| m.version == version))
    })?;
    anyhow::ensure!(!collect(trailer, acp_plate)?, "the ACP participant's read was stored");
    Ok(())
}

/// As a new user found it: the trailer keeps its id and certificate and starts on an empty
/// store. Both lives' reads, alerts, periods of use and deployment events are at the server,
/// the first life's unchanged; the new store is recorded (health, audit) and sent the ACP list
/// and the hotlist again.
#[test]
fn a_store_wiped_mid_life_keeps_both_lives_at_the_server() -> anyhow::Result<()> {
    let stack = Stack::start()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    agency_lists(&stack, &rt, 1, "ACP777")?;
    let dir = stack.path("wiped-store");
    let trailer = start_trailer(&stack, "wiped", &dir)?;
    wait_lists(&trailer, 1, "ACP777")?;
    let first = a_life(&trailer, &["HOT001", "HOT002", "PLAIN01"], "first life")?;
    exactly(&stack, "wiped", 3, 2)?;
    drop(trailer);

    // The disk is swapped: the same id and certificate, an empty store.
    std::fs::remove_dir_all(&dir)?;
    let trailer = start_trailer(&stack, "wiped", &dir)?;
    wait_lists(&trailer, 1, "ACP777")?;
    let second = a_life(&trailer, &["HOT001", "HOT003", "PLAIN02"], "second life")?;
    drop(trailer);

    let c = stack.counts("wiped")?;
    anyhow::ensure!(
        (c.reads, c.alerts) == (6, 4),
        "both lives at the server: {} reads and {} alerts, expected 6 and 4",
        c.reads,
        c.alerts
    );
    let (periods, events) = periods_and_events(&stack, "wiped")?;
    anyhow::ensure!(periods == [first, second], "periods held {periods:?}: {first:?}, {second:?}");
    anyhow::ensure!(events == 2, "{events} deployment events held, expected 2");
    let mut plates: Vec<String> = stack.server_reads()?.into_iter().map(|r| r.plate).collect();
    plates.sort();
    anyhow::ensure!(
        plates == ["HOT001", "HOT001", "HOT002", "HOT003", "PLAIN01", "PLAIN02"],
        "{plates:?}"
    );
    let h = health_of(&stack, "wiped")?;
    anyhow::ensure!(h["store_event"] == "new-store" && h["collisions"] == 0, "{h}");
    let audit = stack.audit_details()?;
    anyhow::ensure!(
        audit.iter().any(|(a, d)| a == "trailer.store_replaced"
            && d.contains("1 ACP digests")
            && d.contains("1 hotlists")),
        "no audit entry of the new store: {audit:?}"
    );
    // The public log of use counts both lives' periods and reads (the days around now: the
    // log's days are the agency's local days).
    let now = appliance::clock::Clock::now_ms(&appliance::clock::SystemClock);
    let day = |d: i64| sync_server::records::iso_date(now + d * 86_400_000);
    let log = stack.http_get(&format!("/public/log.json?from={}&to={}", day(-1), day(1)))?;
    let log: serde_json::Value = serde_json::from_str(&log)?;
    anyhow::ensure!(log["total_reads"] == 6, "public log: {log}");
    let periods = log["periods"].as_array().map_or(0, |p| {
        p.iter()
            .filter(|p| p["period_id"] != 0 && p["databases"] == serde_json::json!(["MN BCA"]))
            .count()
    });
    anyhow::ensure!(periods == 2, "both lives' periods in the public log: {log}");
    Ok(())
}

/// A store restored from a copy taken mid-life: what it collects after the restore never
/// collides with what the later life sent, and it is sent the ACP digest added after the copy.
#[test]
fn a_store_restored_from_an_older_copy_loses_nothing() -> anyhow::Result<()> {
    let stack = Stack::start()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    agency_lists(&stack, &rt, 1, "ACP111")?;
    let dir = stack.path("restored-store");
    let copy = stack.path("restored-copy");
    let trailer = start_trailer(&stack, "restored", &dir)?;
    wait_lists(&trailer, 1, "ACP111")?;
    a_life(&trailer, &["COPY01", "COPY02", "COPY03"], "before the copy")?;
    drop(trailer);
    copy_dir(&dir, &copy)?;

    let trailer = start_trailer(&stack, "restored", &dir)?;
    a_life(&trailer, &["LATER1", "LATER2", "LATER3"], "after the copy")?;
    agency_lists(&stack, &rt, 2, "ACP222")?;
    wait_lists(&trailer, 2, "ACP222")?;
    drop(trailer);

    std::fs::remove_dir_all(&dir)?;
    copy_dir(&copy, &dir)?;
    let trailer = start_trailer(&stack, "restored", &dir)?;
    // The copy knew neither version 2 nor the second participant: both are sent again.
    wait_lists(&trailer, 2, "ACP222")?;
    a_life(&trailer, &["AFTER1", "AFTER2", "AFTER3"], "after the restore")?;
    drop(trailer);

    exactly(&stack, "restored", 9, 0)?;
    let (periods, events) = periods_and_events(&stack, "restored")?;
    anyhow::ensure!(periods.len() == 3 && events == 3, "{periods:?}, {events} events");
    let h = health_of(&stack, "restored")?;
    anyhow::ensure!(h["store_event"] == "restored" && h["collisions"] == 0, "{h}");
    let audit = stack.audit_details()?;
    anyhow::ensure!(
        audit.iter().any(|(a, _)| a == "trailer.store_restored"),
        "no audit entry of the restored store: {audit:?}"
    );
    Ok(())
}

/// A resend (the same batch twice) is stored once and counted; another read under a held id
/// is a collision: reported in health and kept in the dead letters with its reason, while the
/// read held stays as it was.
#[test]
fn a_resend_is_stored_once_and_a_collision_is_reported() -> anyhow::Result<()> {
    use trailer_wire::{Message, ReadBatch};
    let stack = Stack::start()?;
    let (cert, key) = stack.enroll("spare")?;
    let now = appliance::clock::Clock::now_ms(&appliance::clock::SystemClock);
    let batch = |plate: &str| {
        let read = trailer_wire::ReadMeta {
            read_id: 4711,
            first_seen: now,
            best_seen: now + 400,
            ..appliance::store::sample_read(plate)
        };
        trailer_wire::encode(&Message::ReadBatch(ReadBatch {
            trailer_id: "spare".into(),
            reads: vec![read],
        }))
    };
    for _ in 0..2 {
        anyhow::ensure!(
            stack.publish_raw(&cert, &key, "trailer/spare/up/reads", &batch("SAME01")?)?.success()
        );
    }
    wait_for(30, "the resend counted", || {
        health_of(&stack, "spare").is_ok_and(|h| h["resends"] == 1)
    })?;
    exactly(&stack, "spare", 1, 0)?;
    anyhow::ensure!(
        stack.publish_raw(&cert, &key, "trailer/spare/up/reads", &batch("OTHER1")?)?.success()
    );
    wait_for(30, "the collision counted", || {
        health_of(&stack, "spare").is_ok_and(|h| h["collisions"] == 1)
    })?;
    let letters = stack.dead_letters()?;
    anyhow::ensure!(
        letters.iter().any(|l| l["reason"]
            .as_str()
            .is_some_and(|r| r.contains("read id 4711 of spare collides"))),
        "{letters:?}"
    );
    let plates: Vec<String> = stack.server_reads()?.into_iter().map(|r| r.plate).collect();
    anyhow::ensure!(plates == ["SAME01"], "the read held is unchanged: {plates:?}");
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
