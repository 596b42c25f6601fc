//! End-to-end scenarios across the real parts: GStreamer and ONNX Runtime in the appliance
//! binary, a private Mosquitto with mutual TLS, and the sync server binary on SQLite.
//! One binary, so the video fixture is rendered once and shared.
use appliance::engine::{Engine, EngineConfig};
use e2e_tests::scene::{ScenePlan, SceneVideo, make_video};
use e2e_tests::stack::{Stack, bin, free_port, run_ok};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use trailer_wire::{FixQuality, Message, PictureSet, Position, ReadBatch, ReadMeta};

#[path = "e2e/video.rs"]
mod video;

#[path = "e2e/trust.rs"]
mod trust;

/// A video with three vehicles passing, rendered once per test run.
fn three_passes() -> &'static (PathBuf, SceneVideo) {
    static VIDEO: OnceLock<(PathBuf, SceneVideo)> = OnceLock::new();
    VIDEO.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("e2e-video-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("video dir");
        let path = dir.join("three.mp4");
        let mut engine = Engine::load(&EngineConfig::default()).expect("engine (run make setup)");
        let plan = ScenePlan { vehicles: 3, seed: 11, ..ScenePlan::default() };
        let video = make_video(&path, &plan, &mut engine).expect("video");
        (path, video)
    })
}

fn run_appliance(config: &std::path::Path) -> std::process::Output {
    Command::new(bin("appliance"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .output()
        .expect("appliance runs")
}

/// `appliance run --config CONFIG` with its output going to a new log file at `log`.
fn appliance_logged(config: &std::path::Path, log: &std::path::Path) -> anyhow::Result<Command> {
    let file = std::fs::File::create(log)?;
    let mut cmd = Command::new(bin("appliance"));
    cmd.arg("run").arg("--config").arg(config).stderr(file.try_clone()?).stdout(file);
    Ok(cmd)
}

#[test]
fn thin_path_video_to_server_exactly_once() -> anyhow::Result<()> {
    let (video, scene) = three_passes();
    let stack = Stack::start()?;
    let (cert, key) = stack.enroll("trailer-01")?;
    let config = stack.appliance_config("trailer-01", video, &cert, &key)?;
    // Resend anything not acknowledged within 5 ms: the server sees duplicates, and must store
    // each read once.
    let mut text = std::fs::read_to_string(&config)?;
    text.push_str("ack_timeout_ms = 5\n");
    std::fs::write(&config, text)?;
    // The second vehicle is on the state's hotlist as stolen.
    let hot = &scene.plates[1];
    let csv = stack.path("hotlist.csv");
    std::fs::write(&csv, format!("{hot},MN,stolen vehicle,MN BCA\n"))?;
    run_ok(
        Command::new(bin("appliance"))
            .args([
                "hotlist-import",
                "--name",
                "mn-state",
                "--version",
                "1",
                "--source",
                "MN BCA",
                "--config",
            ])
            .arg(&config)
            .arg(&csv),
    )?;
    let out = run_appliance(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "appliance failed:\n{stderr}");
    assert!(stderr.contains("outbox drained"), "outbox not drained:\n{stderr}");

    let reads = stack.server_reads()?;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in &reads {
        *counts.entry(r.plate.as_str()).or_default() += 1;
        assert_eq!(r.trailer_id, "trailer-01");
        assert!(r.has_plate_crop && r.has_context, "pictures recorded for {}", r.plate);
    }
    for p in &scene.plates {
        assert_eq!(
            counts.get(p.as_str()),
            Some(&1),
            "plate {p} stored exactly once; got {counts:?}"
        );
    }
    assert_eq!(reads.len(), scene.plates.len(), "one read per vehicle pass: {counts:?}");
    // Exactly one alert, for the hotlisted plate, stored once despite resends.
    stack.act_as("operator")?;
    let alerts = run_ok(
        Command::new(bin("sync-server"))
            .args(["alerts", "--json", "--purpose", "test", "--case", "TEST-1", "--config"])
            .arg(stack.server_config()),
    )?;
    let alerts: Vec<serde_json::Value> = String::from_utf8_lossy(&alerts.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["plate"], hot.as_str());
    assert_eq!(alerts[0]["category"], "StolenVehicle");
    assert_eq!(alerts[0]["list_name"], "mn-state");

    // The trailer reported its health (sent on connect and on change, never queued).
    let health = stack.health()?;
    assert_eq!(health.len(), 1, "{health:?}");
    let health = &health[0];
    assert_eq!(health["trailer"], "trailer-01");
    assert_eq!(health["storage_full"], false);
    assert_eq!(health["store_repairs"], 0);
    assert_eq!(health["software_version"], env!("CARGO_PKG_VERSION"));

    // The public location list shows the trailer's location and nothing read.
    for page in ["locations", "locations.json", "locations.csv"] {
        let body = http_get(stack.http_port, &format!("/public/{page}"))?;
        assert!(body.contains("trailer-01"), "{page} lists the reader:\n{body}");
        for p in &scene.plates {
            assert!(!body.contains(p.as_str()), "{page} must not carry plate {p}");
        }
    }
    // Reading the reads and the alerts was audited (as were the trailer's enrolment and the
    // login's role), and the trail verifies (the server may also have sent the new reader's
    // BCA notice to its outbox, another entry).
    let entries = stack.audit_entries()?;
    assert!((4..=5).contains(&entries), "{entries} audit entries");
    assert_eq!(stack.audit_entries_of("cli")?, 4, "enrolment, grant, reads, alerts");
    Ok(())
}

/// The capture path alone on a trailer's day in small: vehicles arrive on an empty road (the gate
/// has gone quiet and only keyframes are decoded), then one parks in view for ten minutes. Each
/// pass gives exactly one read with the right text, the parked vehicle one read, and the quiet
/// stretches were skipped before the decoder.
#[test]
fn passes_and_a_parked_vehicle_through_keyframe_only_decoding() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("parked.mp4");
    let mut engine = Engine::load(&EngineConfig::default())?;
    let plan = ScenePlan {
        vehicles: 3,
        seed: 23,
        fps: 5,
        lead_ms: 4000,
        parked_s: 600,
        idle_s: 2,
        ..ScenePlan::default()
    };
    let scene = make_video(&path, &plan, &mut engine)?;
    let mut cfg = appliance::Config::default();
    cfg.capture.source = path.display().to_string();
    assert!(cfg.capture.keyframes_when_quiet, "the default decodes only keyframes while quiet");
    let run = appliance::analyse::replay(&cfg, engine)?;
    let plates: Vec<&str> = run.reads.iter().map(|r| r.plate.as_str()).collect();
    let expected: Vec<&str> = scene.plates.iter().map(String::as_str).collect();
    assert_eq!(plates, expected, "one read per pass and one for the parked vehicle: {run:?}");
    let frames = u64::from(plan.fps) * (3 * (4 + 3 + 1) + 600 + 3);
    assert!(
        run.skipped_undecoded > frames / 2,
        "most of the parked ten minutes never reached the decoder: {} of {frames} skipped",
        run.skipped_undecoded
    );
    assert_eq!(run.decoded + run.skipped_undecoded, frames, "every frame decoded or skipped");
    Ok(())
}

fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    anyhow::ensure!(body.starts_with("HTTP/1.1 200"), "GET {path}: {body}");
    Ok(body)
}

fn read_batch(trailer: &str, plate: &str) -> Vec<u8> {
    // Collected now: a fixed date would fall past the server's retention in time.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    trailer_wire::encode(&Message::ReadBatch(ReadBatch {
        trailer_id: trailer.into(),
        reads: vec![ReadMeta {
            read_id: 42,
            camera_id: "cam0".into(),
            plate: plate.into(),
            confidence_pm: 900,
            first_seen: now,
            best_seen: now,
            position: Position::from_degrees(44.0, -93.0, FixQuality::Configured),
            plate_box: [0, 0, 10, 5],
            pictures: PictureSet::default(),
        }],
    }))
    .expect("encodes")
}

#[test]
fn hostile_messages_land_in_dead_letters_and_the_server_survives() -> anyhow::Result<()> {
    let mut stack = Stack::start()?;
    let (cert, key) = stack.enroll("trailer-07")?;
    let topic = "trailer/trailer-07/up/reads";
    let v = trailer_wire::PROTOCOL_VERSION;
    let mut noise = vec![v, 1];
    noise.extend((0..500).map(|i| (i * 37 % 251) as u8));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("corrupt", noise),
        ("unsupported protocol version 9", vec![9, 1, 0, 0]),
        ("unsupported protocol version 1 (this build speaks version 2)", vec![1, 1, 0, 0]),
        ("does not match topic trailer", read_batch("trailer-08", "SPOOF1")),
        ("exceeds its limit", {
            let mut big = vec![v, 1];
            big.resize(100_000, 7);
            big
        }),
    ];
    for (_, payload) in &cases {
        assert!(stack.publish_raw(&cert, &key, topic, payload)?.success());
    }
    // A valid message after the hostile ones is still stored: the server kept running.
    assert!(stack.publish_raw(&cert, &key, topic, &read_batch("trailer-07", "GOOD01"))?.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while stack.server_reads()?.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(stack.server_alive(), "server crashed:\n{}", stack.server_log());
    let reads = stack.server_reads()?;
    assert_eq!(reads.iter().map(|r| r.plate.as_str()).collect::<Vec<_>>(), vec!["GOOD01"]);
    let letters = stack.dead_letters()?;
    assert_eq!(letters.len(), cases.len(), "{letters:?}");
    for ((why, _), letter) in cases.iter().zip(&letters) {
        let reason = letter["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(why), "expected {why:?} in {reason:?}");
        assert_eq!(letter["topic"], topic);
    }
    assert!(stack.server_log().contains("kept as a dead letter"));
    Ok(())
}

#[test]
fn broker_binds_clients_to_their_identity() -> anyhow::Result<()> {
    let stack = Stack::start()?;
    let (cert, key) = stack.enroll("trailer-01")?;
    // trailer-01 tries to publish as trailer-02: the broker's ACL drops it.
    stack.publish_raw(
        &cert,
        &key,
        "trailer/trailer-02/up/reads",
        &read_batch("trailer-02", "FAKE02"),
    )?;
    // A client whose certificate comes from another CA cannot connect at all.
    let (foreign_cert, foreign_key) = stack.foreign_certificate("trailer-03")?;
    let foreign = stack.publish_raw(
        &foreign_cert,
        &foreign_key,
        "trailer/trailer-03/up/reads",
        &read_batch("trailer-03", "FAKE03"),
    )?;
    assert!(!foreign.success(), "a foreign certificate must be refused");
    // Its own topic works (proves the ACL above was the reason, not a broken setup).
    stack.publish_raw(
        &cert,
        &key,
        "trailer/trailer-01/up/reads",
        &read_batch("trailer-01", "REAL01"),
    )?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while stack.server_reads()?.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let plates: Vec<String> = stack.server_reads()?.into_iter().map(|r| r.plate).collect();
    assert_eq!(plates, vec!["REAL01"]);
    assert!(stack.dead_letters()?.is_empty(), "the spoofed publish never reached the server");
    Ok(())
}

#[test]
fn appliance_with_a_foreign_certificate_says_so_and_keeps_its_reads() -> anyhow::Result<()> {
    let (video, scene) = three_passes();
    let stack = Stack::start()?;
    let (foreign_cert, foreign_key) = stack.foreign_certificate("trailer-09")?;
    let config = stack.appliance_config("trailer-09", video, &foreign_cert, &foreign_key)?;
    let mut text =
        std::fs::read_to_string(&config)?.replace("drain_timeout_s = 30", "drain_timeout_s = 3");
    text.push('\n');
    std::fs::write(&config, text)?;
    let out = run_appliance(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("cannot connect to the agency broker"), "{stderr}");
    assert!(stderr.contains("outbox not drained"), "{stderr}");
    assert!(stack.server_reads()?.is_empty());
    // The reads wait in the trailer's store: the same trailer, given its real certificate, syncs them.
    let (cert, key) = stack.enroll("trailer-09")?;
    let fixed = std::fs::read_to_string(&config)?
        .replace(&foreign_cert.display().to_string(), &cert.display().to_string())
        .replace(&foreign_key.display().to_string(), &key.display().to_string())
        .replace("drain_timeout_s = 3", "drain_timeout_s = 30");
    std::fs::write(&config, fixed)?;
    let out = run_appliance(&config);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut plates: Vec<String> = stack.server_reads()?.into_iter().map(|r| r.plate).collect();
    plates.sort();
    // The first run's reads plus the second run's reads of the same video.
    let mut expected: Vec<String> = scene.plates.iter().chain(&scene.plates).cloned().collect();
    expected.sort();
    assert_eq!(plates, expected);
    Ok(())
}

#[test]
fn bad_inputs_at_the_edges_get_clear_errors() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // A video that does not exist.
    let config = dir.path().join("a.toml");
    std::fs::write(
        &config,
        format!(
            "[trailer]\ndata_dir = \"{}\"\n[capture]\nsource = \"/nonexistent/video.mp4\"\n",
            dir.path().join("store").display()
        ),
    )?;
    let out = run_appliance(&config);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("video file not found: /nonexistent/video.mp4"), "{err}");

    // A missing model file.
    std::fs::write(&config, "[engine]\ndetector_model = \"/nonexistent/det.onnx\"\n")?;
    let out = Command::new(bin("appliance"))
        .args(["read", "--config"])
        .arg(&config)
        .arg(dir.path())
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("detector model not found at /nonexistent/det.onnx"), "{err}");

    // A truncated JPEG gives an error line, and the next image is still read.
    let (video, _) = three_passes();
    let bytes = std::fs::read(video)?;
    std::fs::write(dir.path().join("a-broken.jpg"), [0xff, 0xd8, 0xff, 0xe0, 0, 0x10])?;
    std::fs::write(dir.path().join("b-not-an-image.png"), &bytes[..1000])?;
    let out = Command::new(bin("appliance")).args(["read", "--json"]).arg(dir.path()).output()?;
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 2, "{lines:?}");
    for l in &lines {
        assert!(
            l["error"].as_str().is_some_and(|e| e.contains("decode") || e.contains("read")),
            "{l}"
        );
        assert!(l.get("plates").is_none());
    }
    // A bad configuration key is refused by name.
    std::fs::write(&config, "[trailer]\nidd = \"x\"\n")?;
    let out = run_appliance(&config);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `idd`"));
    Ok(())
}

/// Serves the test camera on `port`; returns once it listens.
fn start_camera(port: u16) -> anyhow::Result<std::process::Child> {
    serve_camera(port, None)
}

/// Serves the test camera on `port`, showing `video` in real time if given; returns once it
/// listens.
fn serve_camera(port: u16, video: Option<&std::path::Path>) -> anyhow::Result<std::process::Child> {
    use std::io::BufRead;
    let mut child = Command::new(bin("rtsp-serve"))
        .arg(port.to_string())
        .args(video)
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let out = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    anyhow::ensure!(line.trim() == "ready", "rtsp-serve said {line:?}");
    Ok(child)
}

/// Waits until the server's latest health report for `trailer` shows the camera `state`.
fn wait_camera(stack: &Stack, trailer: &str, state: &str, secs: u64) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let seen = stack.health()?.iter().any(|h| h["trailer"] == trailer && h["camera"] == state);
        if seen {
            return Ok(());
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "camera never {state} at the server");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

#[test]
fn rtsp_camera_lost_and_back_reconnects_and_shows_the_gap() -> anyhow::Result<()> {
    use appliance::store::Store;
    use trailer_wire::UsageReason;
    let stack = Stack::start()?;
    let trailer = "trailer-rtsp";
    let (cert, key) = stack.enroll(trailer)?;
    let port = free_port();
    let config = stack.appliance_config(trailer, std::path::Path::new("/camera"), &cert, &key)?;
    let text = std::fs::read_to_string(&config)?.replace(
        "source = \"file:///camera\"",
        &format!(
            "source = \"rtsp://127.0.0.1:{port}/cam\"\nreconnect_initial_ms = 200\n\
             reconnect_max_ms = 1000\nstall_ms = 3000"
        ),
    );
    std::fs::write(&config, format!("{text}health_interval_s = 1\n[location]\ngpsd = \"\"\n"))?;
    let mut camera = start_camera(port)?;
    let mut appliance = appliance_logged(&config, &stack.path("appliance-rtsp.log"))?.spawn()?;
    let result = (|| -> anyhow::Result<()> {
        wait_camera(&stack, trailer, "Up", 120)?;
        camera.kill()?;
        camera.wait()?;
        wait_camera(&stack, trailer, "Down", 60)?;
        camera = start_camera(port)?;
        wait_camera(&stack, trailer, "Up", 60)?;
        // A camera that goes silent without closing its stream (frozen, not gone): the stall
        // limit notices it.
        run_ok(Command::new("kill").arg("-STOP").arg(camera.id().to_string()))?;
        let frozen = wait_camera(&stack, trailer, "Down", 60);
        run_ok(Command::new("kill").arg("-CONT").arg(camera.id().to_string()))?;
        frozen?;
        wait_camera(&stack, trailer, "Up", 90)?;
        Ok(())
    })();
    run_ok(Command::new("kill").arg("-TERM").arg(appliance.id().to_string()))?;
    let status = appliance.wait()?;
    let _ = camera.kill();
    let _ = camera.wait();
    let log = std::fs::read_to_string(stack.path("appliance-rtsp.log"))?;
    result.map_err(|e| anyhow::anyhow!("{e}\nappliance log:\n{log}"))?;
    assert!(status.success(), "the appliance stops cleanly: {status}\n{log}");
    assert!(log.contains("camera down") && log.matches("camera up").count() >= 3, "{log}");
    assert!(log.contains("no frame and no end"), "the frozen camera was noticed as such: {log}");
    // The log of use: a period per stretch of frames, the gap between them.
    let store = Store::open(
        &stack.path(&format!("{trailer}-store")),
        60,
        std::sync::Arc::new(appliance::clock::SystemClock),
    )?;
    let periods = store.usage_periods()?;
    assert!(periods.len() >= 2, "{periods:?}");
    assert_eq!(periods[0].start_reason, UsageReason::DaemonStart);
    assert_eq!(periods[0].end_reason, Some(UsageReason::CameraDown));
    assert_eq!(periods[1].start_reason, UsageReason::CameraUp);
    assert!(periods[1].start >= periods[0].end.unwrap_or(i64::MAX), "the gap is not covered");
    let last = periods.last().ok_or_else(|| anyhow::anyhow!("no period"))?;
    assert_eq!(last.end_reason, Some(UsageReason::DaemonStop));
    Ok(())
}

/// A stop request while a vehicle is in view of a live camera: the daemon finishes the open pass
/// into a stored read before it exits, and exits cleanly. Over systemd's notify protocol it
/// first waits for a set clock (saying so, with its start timeout extended), then says READY,
/// feeds the watchdog while capture and the store make progress, and says STOPPING.
#[test]
fn a_stop_mid_pass_finishes_the_pass_into_a_read() -> anyhow::Result<()> {
    use appliance::store::Store;
    let dir = tempfile::tempdir()?;
    let video = dir.path().join("parked.mp4");
    let scene = {
        let mut engine = Engine::load(&EngineConfig::default())?;
        let plan = ScenePlan { vehicles: 0, seed: 31, parked_s: 60, ..ScenePlan::default() };
        make_video(&video, &plan, &mut engine)?
    };
    let port = free_port();
    let mut camera = serve_camera(port, Some(&video))?;
    let store_dir = dir.path().join("store");
    let config = dir.path().join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "[trailer]\nid = \"trailer-stop\"\ndata_dir = \"{}\"\n[location]\ngpsd = \"\"\n\
             [capture]\nsource = \"rtsp://127.0.0.1:{port}/cam\"\n",
            store_dir.display()
        ),
    )?;
    // systemd's side of the notify protocol: a datagram socket, and a watchdog of 400 ms.
    let notify_path = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path)?;
    notify.set_read_timeout(Some(std::time::Duration::from_millis(200)))?;
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let listener = {
        let heard = heard.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let (mut quiet, mut waits) = (0, 0);
            // Until the daemon has been silent for a while after it said it was stopping (or
            // two minutes of timeouts, if it never does).
            while quiet < 10 && waits < 600 {
                match notify.recv(&mut buf) {
                    Ok(n) => {
                        quiet = 0;
                        let text = String::from_utf8_lossy(&buf[..n]).to_string();
                        heard.lock().map(|mut h| h.push(text)).ok();
                    }
                    Err(_) => {
                        waits += 1;
                        let stopping = heard
                            .lock()
                            .map(|h| h.iter().any(|m| m.contains("STOPPING=1")))
                            .unwrap_or(true);
                        quiet += usize::from(stopping);
                    }
                }
            }
        })
    };
    let log_path = dir.path().join("appliance.log");
    let mut appliance = appliance_logged(&config, &log_path)?
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "400000")
        // A clock that is not set yet (as after a boot with a flat RTC battery): the daemon
        // waits for it, saying so, before the store opens and anything is stamped.
        .env(
            "TRAILER_CLOCK_FLOOR_MS",
            (appliance::clock::Clock::now_ms(&appliance::clock::SystemClock) + 3000).to_string(),
        )
        .spawn()?;
    let up = wait_log(&log_path, "camera up", 60);
    // Seconds into a pass that would stay open for a minute (`pass.max_pass_ms`).
    std::thread::sleep(std::time::Duration::from_secs(5));
    run_ok(Command::new("kill").arg("-TERM").arg(appliance.id().to_string()))?;
    let status = appliance.wait()?;
    let _ = camera.kill();
    let _ = camera.wait();
    let log = std::fs::read_to_string(&log_path)?;
    up.map_err(|e| anyhow::anyhow!("{e}\n{log}"))?;
    assert!(status.success(), "a clean stop: {status}\n{log}");
    listener.join().map_err(|_| anyhow::anyhow!("notify listener panicked"))?;
    let heard = heard.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.join("\n");
    for said in ["READY=1", "STATUS=collecting", "WATCHDOG=1", "STOPPING=1"] {
        assert!(heard.contains(said), "the daemon told systemd {said}: {heard}");
    }
    let waited = heard.find("STATUS=waiting for a set clock");
    assert!(
        waited.is_some_and(|w| heard.find("READY=1").is_some_and(|r| w < r))
            && heard.contains("EXTEND_TIMEOUT_USEC="),
        "the wait for a set clock came before READY, with the start timeout extended: {heard}"
    );
    let store = Store::open(&store_dir, 60, std::sync::Arc::new(appliance::clock::SystemClock))?;
    let plates: Vec<String> = store.reads()?.into_iter().map(|r| r.meta.plate).collect();
    assert_eq!(plates, scene.plates, "the pass in view became one read\n{log}");
    Ok(())
}

/// Builds both Debian packages twice from the test build's binaries and checks what an
/// installer relies on: the same inputs give the same bytes; the control fields, config files
/// and maintainer scripts are there and parse; every unit and timer the packages install passes
/// `systemd-analyze verify`, and every service scores at most 2.0 on
/// `systemd-analyze security` (0 is fully confined, 10 is not at all); and the packaged
/// appliance reads a plate with only the runtime and models the package carries.
#[test]
fn the_packages_are_reproducible_and_install_confined_units() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = bin("appliance");
    let bin_dir = built.parent().ok_or_else(|| anyhow::anyhow!("no bin dir"))?;
    let dir = tempfile::tempdir()?;
    let mut sums = Vec::new();
    for build in ["a", "b"] {
        let out = dir.path().join(build);
        let run = Command::new("bash")
            .arg(root.join("scripts/packages.sh"))
            .arg("--bin-dir")
            .arg(bin_dir)
            .arg("--out")
            .arg(&out)
            .env("SOURCE_DATE_EPOCH", "1796083200")
            .output()?;
        anyhow::ensure!(
            run.status.success(),
            "packages.sh: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let mut names: Vec<_> = std::fs::read_dir(&out)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        names.sort();
        let mut digests = Vec::new();
        for n in &names {
            use sha2::Digest;
            digests
                .push((n.clone(), hex::encode(sha2::Sha256::digest(std::fs::read(out.join(n))?))));
        }
        sums.push(digests);
    }
    let version = env!("CARGO_PKG_VERSION");
    let names: Vec<&str> = sums[0].iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("trailer-alpr-server_{version}_amd64.deb"),
            format!("trailer-alpr_{version}_amd64.deb")
        ]
    );
    assert_eq!(sums[0], sums[1], "two builds of the same tree differ");

    let deb = |name: &str| dir.path().join("a").join(format!("{name}_{version}_amd64.deb"));
    let field = |name: &str, f: &str| -> anyhow::Result<String> {
        let out = Command::new("dpkg-deb").arg("-f").arg(deb(name)).arg(f).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let depends = field("trailer-alpr", "Depends")?;
    for d in ["libgstreamer1.0-0", "gstreamer1.0-plugins-good", "chrony"] {
        assert!(depends.split(", ").any(|x| x == d), "trailer-alpr Depends lacks {d}: {depends}");
    }
    let depends = field("trailer-alpr-server", "Depends")?;
    assert!(depends.split(", ").any(|x| x == "mosquitto"), "{depends}");

    let mut services = Vec::new();
    let mut units = Vec::new();
    for (name, conffile) in [
        ("trailer-alpr", "/etc/trailer-alpr/appliance.toml"),
        ("trailer-alpr-server", "/etc/trailer-alpr-server/server.toml"),
    ] {
        let tree = dir.path().join(name);
        let control = tree.join("DEBIAN");
        run_ok(Command::new("dpkg-deb").arg("-R").arg(deb(name)).arg(&tree))?;
        let conffiles = std::fs::read_to_string(control.join("conffiles"))?;
        assert_eq!(conffiles.trim(), conffile);
        // The configuration installed is the shipped example, and it parses.
        let example = std::fs::read_to_string(tree.join(conffile.trim_start_matches('/')))?;
        assert!(example.contains("# "), "{conffile} is not the commented example");
        for script in ["postinst", "prerm", "postrm"] {
            run_ok(Command::new("sh").arg("-n").arg(control.join(script)))?;
        }
        let postinst = std::fs::read_to_string(control.join("postinst"))?;
        assert!(postinst.contains(&format!("systemd-sysusers {name}.conf")), "{postinst}");
        // The units, with /usr/bin pointing into the unpacked tree so verify finds the binaries.
        let unit_dir = tree.join("lib/systemd/system");
        for e in std::fs::read_dir(&unit_dir)? {
            let path = e?.path();
            if !path.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&path)?
                .replace("/usr/bin/", &format!("{}/", tree.join("usr/bin").display()));
            std::fs::write(&path, text)?;
            if path.extension().is_some_and(|x| x == "service") {
                services.push(path.clone());
            }
            units.push(path);
        }
    }
    assert_eq!(services.len(), 4, "{services:?}");
    assert_eq!(units.len(), 6, "{units:?}");
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).args(&units).output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "systemd-analyze verify:\n{err}");
    for unit in &services {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
            .arg(unit)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let score = text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or("");
        assert!(out.status.success(), "{}: exposure above 2.0: {score}", unit.display());
    }

    // The packaged appliance with the packaged runtime and models (and nothing of the checkout).
    let renderer = e2e_tests::scene::Renderer::new(1280, 720, 3)?;
    let v = e2e_tests::scene::Vehicle {
        plate: "ABC1234".into(),
        body: [170, 25, 30],
        plate_w: 135,
        baseline: 620,
    };
    let jpeg = dir.path().join("still.jpg");
    renderer.still(&v).save(&jpeg)?;
    let tree = dir.path().join("trailer-alpr");
    let out = Command::new(tree.join("usr/bin/appliance"))
        .args(["read", "--json"])
        .arg(&jpeg)
        .env("TRAILER_MODELS", tree.join("usr/share/trailer-alpr/models"))
        .current_dir(dir.path())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line: serde_json::Value = serde_json::from_str(stdout.trim())?;
    assert_eq!(line["plates"][0]["text"], "ABC1234", "{line}");
    Ok(())
}

/// A gpsd on a local port that reports whatever latitude the test sets, ten times a second.
struct Gpsd {
    port: u16,
    lat_e7: std::sync::Arc<std::sync::atomic::AtomicI64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Gpsd {
    fn start(lat: f64) -> anyhow::Result<Gpsd> {
        use std::io::{BufRead, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let lat_e7 = std::sync::Arc::new(std::sync::atomic::AtomicI64::new((lat * 1e7) as i64));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (l, s) = (lat_e7.clone(), stop.clone());
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(mut sock) = sock else { return };
                let mut watch = String::new();
                let Ok(reader) = sock.try_clone() else { return };
                if std::io::BufReader::new(reader).read_line(&mut watch).is_err() {
                    continue;
                }
                let hello = "{\"class\":\"VERSION\",\"release\":\"3.22\",\"rev\":\"3.22\",\"proto_major\":3,\"proto_minor\":14}\n";
                if sock.write_all(hello.as_bytes()).is_err() {
                    continue;
                }
                while !s.load(Ordering::Relaxed) {
                    let lat = l.load(Ordering::Relaxed) as f64 / 1e7;
                    let tpv = format!(
                        "{{\"class\":\"TPV\",\"device\":\"/dev/ttyACM0\",\"mode\":3,\"lat\":{lat},\"lon\":-93.27}}\n"
                    );
                    if sock.write_all(tpv.as_bytes()).is_err() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                if s.load(Ordering::Relaxed) {
                    return;
                }
            }
        });
        Ok(Gpsd { port, lat_e7, stop })
    }

    fn set(&self, lat: f64) {
        self.lat_e7.store((lat * 1e7) as i64, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Gpsd {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Waits until the log at `path` contains `what`.
fn wait_log(path: &std::path::Path, what: &str, secs: u64) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !std::fs::read_to_string(path)?.contains(what) {
        anyhow::ensure!(std::time::Instant::now() < deadline, "the log never said {what:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(())
}

/// A trailer towed to a new place: its GPS ends the deployment (collection stops, the period of
/// active use closes), and once it stands still a new deployment and period start there.
#[test]
fn a_towed_trailer_ends_its_deployment_and_starts_another_where_it_stops() -> anyhow::Result<()> {
    use appliance::store::Store;
    use trailer_wire::{DeploymentEventKind, UsageReason};
    let dir = tempfile::tempdir()?;
    let gpsd = Gpsd::start(45.0)?;
    let port = free_port();
    let mut camera = start_camera(port)?;
    let store_dir = dir.path().join("store");
    let config = dir.path().join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "[trailer]\nid = \"trailer-tow\"\ndata_dir = \"{}\"\n\
             [location]\ngpsd = \"127.0.0.1:{}\"\n\
             [deployment]\nmove_m = 150.0\nsettle_s = 2\n\
             [capture]\nsource = \"rtsp://127.0.0.1:{port}/cam\"\n",
            store_dir.display(),
            gpsd.port
        ),
    )?;
    let log_path = dir.path().join("appliance.log");
    let mut appliance = appliance_logged(&config, &log_path)?.spawn()?;
    let towed = (|| -> anyhow::Result<()> {
        wait_log(&log_path, "camera up", 60)?;
        std::thread::sleep(std::time::Duration::from_secs(2));
        // Towed north, 330 m and on, then parked at 45.010.
        for lat in [45.003, 45.006, 45.008, 45.010] {
            gpsd.set(lat);
            std::thread::sleep(std::time::Duration::from_millis(700));
        }
        wait_log(&log_path, "deployment ended", 30)?;
        wait_log(&log_path, "capture paused", 30)?;
        wait_log(&log_path, "deployment started", 30)?;
        wait_log(&log_path, "capture resumed", 30)?;
        std::thread::sleep(std::time::Duration::from_secs(1));
        Ok(())
    })();
    run_ok(Command::new("kill").arg("-TERM").arg(appliance.id().to_string()))?;
    let status = appliance.wait()?;
    let _ = camera.kill();
    let _ = camera.wait();
    let log = std::fs::read_to_string(&log_path)?;
    towed.map_err(|e| anyhow::anyhow!("{e}\n{log}"))?;
    assert!(status.success(), "{status}\n{log}");
    let at = |what: &str| log.find(what).unwrap_or(usize::MAX);
    assert!(
        at("deployment ended") < at("capture paused")
            && at("capture paused") < at("deployment started")
            && at("deployment started") < at("capture resumed"),
        "collection stops while the trailer moves:\n{log}"
    );

    let store = Store::open(&store_dir, 60, std::sync::Arc::new(appliance::clock::SystemClock))?;
    let events = store.deployment_events()?;
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [DeploymentEventKind::End, DeploymentEventKind::Start], "{events:?}");
    assert!((events[1].position.lat() - 45.010).abs() < 1e-4, "{events:?}");
    let periods = store.usage_periods()?;
    assert_eq!(periods.len(), 2, "{periods:?}");
    assert_eq!(periods[0].start_reason, UsageReason::DaemonStart);
    assert_eq!(periods[0].end_reason, Some(UsageReason::DeploymentEnd));
    assert_eq!(periods[1].start_reason, UsageReason::DeploymentStart);
    assert_eq!(periods[1].end_reason, Some(UsageReason::DaemonStop));
    assert!((periods[1].position.lat() - 45.010).abs() < 1e-4, "the new place: {periods:?}");
    assert!(periods[1].start > periods[0].end.unwrap_or(i64::MAX), "no collection in between");
    Ok(())
}

/// The stop deadline: a trailer whose disk is full of unsynced reads holds the next read and
/// waits for room; a stop request then cannot finish gracefully, and the daemon exits at its
/// deadline instead of hanging until systemd kills it.
#[test]
fn a_stop_that_cannot_finish_exits_at_its_deadline() -> anyhow::Result<()> {
    let (video, _) = three_passes();
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "[trailer]\nid = \"trailer-full\"\ndata_dir = \"{}\"\nstop_deadline_s = 2\n\
             [location]\ngpsd = \"\"\n[capture]\nsource = \"file://{}\"\n\
             [store]\nmax_disk_bytes = 1\n",
            dir.path().join("store").display(),
            video.display()
        ),
    )?;
    let log_path = dir.path().join("appliance.log");
    let mut appliance = appliance_logged(&config, &log_path)?.spawn()?;
    let full = wait_log(&log_path, "storage full", 120);
    run_ok(Command::new("kill").arg("-TERM").arg(appliance.id().to_string()))?;
    let started = std::time::Instant::now();
    let status = appliance.wait()?;
    let waited = started.elapsed();
    let log = std::fs::read_to_string(&log_path)?;
    full.map_err(|e| anyhow::anyhow!("{e}\n{log}"))?;
    assert_eq!(status.code(), Some(1), "exit code of a stop cut short:\n{log}");
    assert!(log.contains("stop deadline passed"), "{log}");
    // Not a timing assertion on the machine's speed: only that it did not wait for ever.
    assert!(waited < std::time::Duration::from_secs(60), "{waited:?}\n{log}");
    Ok(())
}
