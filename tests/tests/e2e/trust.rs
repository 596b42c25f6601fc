//! Trust at the broker, against the real Mosquitto (dynamic security plugin, mutual TLS) and the
//! server binary: who may speak as a trailer, who may join the server's share groups, client ids
//! bound to certificates, packets the server cannot take, revocation.
use super::read_batch;
use e2e_tests::backlog::{Trailer, fill, sync_config};
use e2e_tests::proxy::Proxy;
use e2e_tests::stack::Stack;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let end = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        anyhow::ensure!(Instant::now() < end, "timed out after {secs} s waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn plates(stack: &Stack) -> Vec<String> {
    stack.server_reads().unwrap_or_default().into_iter().map(|r| r.plate).collect()
}

/// `mosquitto_sub` as the holder of `cert`, kept running; its output goes to `out`.
fn subscriber(
    stack: &Stack,
    cert: &std::path::Path,
    key: &std::path::Path,
    topic: &str,
    out: &std::path::Path,
) -> anyhow::Result<std::process::Child> {
    Ok(Command::new("mosquitto_sub")
        .args([
            "-h",
            "localhost",
            "-p",
            &stack.broker_port.to_string(),
            "-q",
            "1",
            "-v",
            "-t",
            topic,
        ])
        .arg("--cafile")
        .arg(stack.pki().join("ca.pem"))
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .stdout(std::fs::File::create(out)?)
        .stderr(Stdio::piped())
        .spawn()?)
}

/// A certificate alone is not a trailer: an operator's certificate, and one the CA issued for a
/// trailer that was never enrolled, can neither publish as a trailer nor get the server to
/// register them; the broker refuses them before the server sees anything.
#[test]
fn only_enrolled_trailers_speak_as_trailers() -> anyhow::Result<()> {
    let stack = Stack::start()?;
    stack.grant("alice", "operator")?;
    let (alice_cert, alice_key) = stack.issue("alice")?;
    stack.wait_admitted("alice", "console/alice/resp", &alice_cert, &alice_key)?;
    let stray = stack.pki();
    e2e_tests::stack::run_ok(
        Command::new(e2e_tests::stack::bin("sync-server"))
            .args(["pki", "issue", "--role", "trailer", "--dir"])
            .arg(&stray)
            .arg("stray-01"),
    )?;
    let (stray_cert, stray_key) = (stray.join("stray-01.pem"), stray.join("stray-01.key"));
    for (cert, key, name) in
        [(&alice_cert, &alice_key, "alice"), (&stray_cert, &stray_key, "stray-01")]
    {
        let topic = format!("trailer/{name}/up/reads");
        stack.publish_raw(cert, key, &topic, &read_batch(name, "FAKE01"))?;
        let status = trailer_wire::encode(&trailer_wire::Message::Status(trailer_wire::Status {
            trailer_id: name.into(),
            online: true,
            time: 1,
            software_version: "x".into(),
            store: trailer_wire::StoreInfo { store_id: 1, created: 1, opens: 1, run: 1 },
        }))?;
        stack.publish_raw(cert, key, &trailer_wire::Topic::status(name), &status)?;
    }
    // An enrolled trailer's read after them arrives: they had their chance.
    let (cert, key) = stack.enroll("trailer-01")?;
    stack.publish_raw(
        &cert,
        &key,
        "trailer/trailer-01/up/reads",
        &read_batch("trailer-01", "REAL01"),
    )?;
    wait_for(20, "the enrolled trailer's read", || !plates(&stack).is_empty())?;
    assert_eq!(plates(&stack), ["REAL01"]);
    assert!(
        stack.dead_letters()?.is_empty(),
        "the broker refused them: nothing reached the server"
    );
    let health = stack.health()?;
    assert!(
        health.iter().all(|h| h["trailer"] != "alice" && h["trailer"] != "stray-01"),
        "neither was registered as a trailer: {health:?}"
    );
    Ok(())
}

/// Only server instances may join the ingest and console share groups: a trailer's and an
/// operator's subscriptions to them are refused, and while they try, every read still reaches
/// the server (a member that may not read a message would have cost the group that message).
#[test]
fn a_foreign_subscription_to_the_share_groups_loses_nothing() -> anyhow::Result<()> {
    let stack = Stack::start()?;
    let (tcert, tkey) = stack.enroll("trailer-02")?;
    stack.grant("mallory", "operator")?;
    let (mcert, mkey) = stack.issue("mallory")?;
    stack.wait_admitted("mallory", "console/mallory/resp", &mcert, &mkey)?;
    let out = stack.path("hijack.txt");
    let mut hijack = subscriber(&stack, &mcert, &mkey, "$share/ingest/trailer/+/up/+", &out)?;
    let hijack_stderr = hijack.stderr.take();
    let console = stack.path("hijack-console.txt");
    let (ocert, okey) = stack.enroll("trailer-03")?;
    let mut steal = subscriber(&stack, &ocert, &okey, "$share/console/console/+/req", &console)?;
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..20 {
        let batch = read_batch("trailer-02", &format!("SHARE{i:02}"));
        // Distinct ids: read_batch uses one.
        let mut msg = trailer_wire::decode(&batch)?;
        if let trailer_wire::Message::ReadBatch(b) = &mut msg {
            b.reads[0].read_id = 100 + i;
        }
        stack.publish_raw(
            &tcert,
            &tkey,
            "trailer/trailer-02/up/reads",
            &trailer_wire::encode(&msg)?,
        )?;
    }
    wait_for(30, "every read", || plates(&stack).len() >= 20)?;
    assert_eq!(plates(&stack).len(), 20);
    let _ = hijack.kill();
    let _ = steal.kill();
    let mut said = String::new();
    if let Some(mut e) = hijack_stderr {
        use std::io::Read;
        let _ = e.read_to_string(&mut said);
    }
    assert!(std::fs::read_to_string(&out)?.is_empty(), "an operator read uplinks");
    assert!(said.contains("denied"), "the subscription was refused, saying so: {said:?}");
    Ok(())
}

/// Client ids are the certificates' names: another certificate connecting with a trailer's id
/// does not take the trailer's connection.
#[test]
fn a_client_id_cannot_knock_a_trailer_offline() -> anyhow::Result<()> {
    let stack = Stack::start()?;
    let dir = stack.path("bound-store");
    fill(&dir, 5, 1, 0)?;
    let (cert, key) = stack.enroll("bound")?;
    let proxy = Proxy::start(stack.broker_port)?;
    let mut cfg = sync_config(proxy.port, &stack.pki().join("ca.pem"), &cert, &key);
    cfg.reconnect_initial_ms = 100;
    let trailer = Trailer::start("bound", &dir, cfg)?;
    trailer.wait_drained(Duration::from_secs(30)).ok_or_else(|| anyhow::anyhow!("no drain"))?;
    stack.grant("eve", "viewer")?;
    let (ecert, ekey) = stack.issue("eve")?;
    stack.wait_admitted("eve", "console/eve/resp", &ecert, &ekey)?;
    let status = Command::new("mosquitto_pub")
        .args([
            "-h",
            "localhost",
            "-p",
            &stack.broker_port.to_string(),
            "-i",
            "bound",
            "-t",
            "console/eve/req",
            "-m",
            "{}",
        ])
        .arg("--cafile")
        .arg(stack.pki().join("ca.pem"))
        .arg("--cert")
        .arg(&ecert)
        .arg("--key")
        .arg(&ekey)
        .status()?;
    assert!(status.success());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(proxy.connections(), 1, "the trailer kept its one connection");
    assert!(
        !stack.broker_log().contains("Client bound already connected"),
        "{}",
        stack.broker_log()
    );
    Ok(())
}

/// A packet larger than the server accepts never reaches it: the broker refuses it (whatever the
/// topic's length), and the server keeps its connection and goes on storing.
#[test]
fn an_oversized_publish_does_not_cost_the_server_its_connection() -> anyhow::Result<()> {
    let stack = Stack::start()?;
    let (cert, key) = stack.enroll("big-01")?;
    let max = trailer_wire::codec::MAX_FRAME_BYTES;
    let long_topic = format!("trailer/big-01/up/{}", "x".repeat(60_000));
    for (topic, len) in [("trailer/big-01/up/pictures".to_string(), max + 2000), (long_topic, max)]
    {
        let mut payload = vec![trailer_wire::PROTOCOL_VERSION, 2];
        payload.resize(len, 7);
        let _ = stack.publish_raw(&cert, &key, &topic, &payload)?;
    }
    stack.publish_raw(&cert, &key, "trailer/big-01/up/reads", &read_batch("big-01", "AFTER1"))?;
    wait_for(20, "the read after them", || !plates(&stack).is_empty())?;
    let log = stack.server_log();
    assert!(!log.contains("broker connection failed"), "the server lost its connection:\n{log}");
    Ok(())
}

/// A stolen trailer revoked: the broker disables it at once (its connection goes), the
/// revocation list refuses its certificate after the broker reloads, and the rest of the fleet
/// stays connected through the reload.
#[test]
fn a_revoked_trailer_is_cut_off_and_the_fleet_stays() -> anyhow::Result<()> {
    let stack = Stack::start()?;
    let mut trailers = Vec::new();
    let mut proxies = Vec::new();
    for id in ["stolen", "loyal"] {
        let dir = stack.path(&format!("{id}-store"));
        fill(&dir, 3, 1, 0)?;
        let (cert, key) = stack.enroll(id)?;
        let proxy = Proxy::start(stack.broker_port)?;
        let mut cfg = sync_config(proxy.port, &stack.pki().join("ca.pem"), &cert, &key);
        cfg.reconnect_initial_ms = 100;
        cfg.reconnect_max_ms = 500;
        let t = Trailer::start(id, &dir, cfg)?;
        t.wait_drained(Duration::from_secs(30)).ok_or_else(|| anyhow::anyhow!("no drain"))?;
        trailers.push(t);
        proxies.push(proxy);
    }
    stack.act_as("admin")?;
    let out = stack.cli(&["trailer", "revoke", "--reason", "stolen from Hwy 14", "stolen"])?;
    assert!(out.contains("stolen revoked (1 certificate(s))"), "{out}");
    // Disabled at the broker by the running server: the connection goes.
    wait_for(20, "the stolen trailer's connection cut", || proxies[0].connections() > 1)?;
    stack.reload_broker()?;
    let (cert, key) = (stack.pki().join("stolen.pem"), stack.pki().join("stolen.key"));
    let probe = Command::new("mosquitto_pub")
        .args([
            "-h",
            "localhost",
            "-p",
            &stack.broker_port.to_string(),
            "-t",
            "trailer/stolen/up/reads",
            "-m",
            "x",
        ])
        .arg("--cafile")
        .arg(stack.pki().join("ca.pem"))
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .output()?;
    assert!(!probe.status.success(), "the revoked certificate still connects");
    // Whatever it still sends is refused; the loyal trailer's new read arrives; it never
    // reconnected, through the revocation and the reload.
    let id = trailers[1]
        .store
        .insert_reads(vec![(appliance::store::sample_read("LOYAL9"), Default::default())])?;
    assert_eq!(id.len(), 1);
    trailers[1].wake();
    wait_for(20, "the loyal trailer's read", || plates(&stack).contains(&"LOYAL9".to_string()))?;
    assert_eq!(proxies[1].connections(), 1, "the fleet stayed connected");
    let audit = stack.audit_details()?;
    assert!(audit.iter().any(|(a, d)| a == "trailers.revoke" && d.contains("stolen from Hwy 14")));
    Ok(())
}

/// Disabling a console user revokes their certificate and disconnects them.
#[test]
fn a_disabled_user_is_disconnected_and_revoked() -> anyhow::Result<()> {
    let stack = Stack::start()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    stack.grant("dave", "operator")?;
    let mut dave = stack.session(&rt, "dave")?;
    let r =
        rt.block_on(dave.ask("status", "", "", serde_json::json!({}), Duration::from_secs(20)))?;
    assert!(r.ok, "{r:?}");
    stack.cli(&["user", "disable", "--name", "dave"])?;
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let asked = dave.ask("status", "", "", serde_json::json!({}), Duration::from_secs(2));
        if rt.block_on(asked).is_err() {
            break;
        }
        assert!(Instant::now() < end, "a disabled user still gets answers");
    }
    let list = e2e_tests::stack::run_ok(
        Command::new(e2e_tests::stack::bin("sync-server"))
            .args(["pki", "list", "--json", "--dir"])
            .arg(stack.pki()),
    )?;
    let issued = String::from_utf8_lossy(&list.stdout);
    let dave_cert = issued.lines().find(|l| l.contains("\"name\":\"dave\"")).unwrap_or_default();
    assert!(dave_cert.contains("\"revoked\":1") || dave_cert.contains("\"revoked\":"), "{issued}");
    assert!(!dave_cert.contains("\"revoked\":null"), "{dave_cert}");
    Ok(())
}

/// A certificate near its expiry is renewed over the link: the trailer makes a new key, the
/// server signs its request, the trailer installs the pair and goes on syncing with it.
#[test]
fn a_trailer_renews_its_certificate_over_the_link() -> anyhow::Result<()> {
    let stack = Stack::start()?;
    let dir = stack.path("renew-store");
    fill(&dir, 2, 1, 0)?;
    let (cert, key) = stack.enroll_for("renewing", 10)?;
    let expiry = |p: &std::path::Path| -> i64 {
        let pem = std::fs::read_to_string(p).unwrap_or_default();
        sync_server::pki::describe(&pem).map_or(0, |d| d.2)
    };
    let now = appliance::clock::Clock::now_ms(&appliance::clock::SystemClock);
    let before = expiry(&cert);
    assert!(before - now < 11 * 86_400_000, "a short certificate to begin with");
    let old_key = std::fs::read(&key)?;
    let cfg = sync_config(stack.broker_port, &stack.pki().join("ca.pem"), &cert, &key);
    let trailer = Trailer::start("renewing", &dir, cfg)?;
    wait_for(60, "the renewed certificate installed", || expiry(&cert) - now > 300 * 86_400_000)?;
    assert_ne!(std::fs::read(&key)?, old_key, "a new key, made on the trailer");
    // It syncs with the new pair.
    trailer
        .store
        .insert_reads(vec![(appliance::store::sample_read("RENEW1"), Default::default())])?;
    trailer.wake();
    wait_for(30, "a read after the renewal", || plates(&stack).contains(&"RENEW1".to_string()))?;
    let audit = stack.audit_details()?;
    assert!(
        audit.iter().any(|(a, d)| a == "trailer.certificate_renewed" && d.starts_with("renewing:"))
    );
    Ok(())
}

/// Every file of a file tree, with its bytes.
fn files(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p, bytes));
        }
    }
}

/// A stolen trailer gives nothing away: enrolled with a key it made itself (sealed with the
/// store key; one command on the trailer, one at the agency, one on the trailer to install the
/// answer), it reads a video, matches a hotlist and syncs; once stopped, nothing under its
/// files holds a plate, a picture or a key in clear. Its keys came from systemd credentials,
/// which live in memory only (here a directory apart).
#[test]
fn a_stopped_trailer_holds_no_plate_picture_or_key_in_clear() -> anyhow::Result<()> {
    let (video, scene) = super::three_passes();
    let stack = Stack::start()?;
    let trailer_dir = stack.path("sealed-trailer");
    let data = trailer_dir.join("data");
    let creds = stack.path("credentials");
    std::fs::create_dir_all(&creds)?;
    let store_key = hex::encode(rand::random::<[u8; 32]>());
    std::fs::write(creds.join("store-key"), &store_key)?;
    std::fs::copy(stack.pki().join("acp.key"), creds.join("acp.key"))?;
    // As installed: the image's configuration names no trailer and no broker yet; enrolment
    // brings them, with the certificate, the agency CA and the configuration signing key.
    let config = trailer_dir.join("appliance.toml");
    let settings = trailer_dir.join("state/appliance.toml");
    std::fs::create_dir_all(&trailer_dir)?;
    std::fs::write(
        &config,
        format!(
            "[trailer]\ndata_dir = \"{data}\"\n[capture]\nsource = \"file://{video}\"\n\
             [store]\nkey_file = \"{creds}/store-key\"\nacp_key_file = \"{creds}/acp.key\"\n\
             [sync]\nca_file = \"{data}/tls/agency-ca.pem\"\n\
             cert_file = \"{data}/tls/trailer.pem\"\nkey_file = \"{data}/tls/trailer.key.sealed\"\n\
             drain_timeout_s = 30\n",
            data = data.display(),
            video = video.display(),
            creds = creds.display(),
        ),
    )?;
    let installed = std::fs::read_to_string(&config)?;
    let app = e2e_tests::stack::bin("appliance");
    let with_config = |c: &mut Command| {
        c.arg("--config").arg(&config).arg("--remote-config").arg(&settings);
    };
    let request = trailer_dir.join("request.csr");
    let mut enrol = Command::new(&app);
    enrol.args(["enroll", "--id", "sealed-01", "--out"]).arg(&request);
    with_config(&mut enrol);
    e2e_tests::stack::run_ok(&mut enrol)?;
    stack.act_as("admin")?;
    let answer = trailer_dir.join("sealed-01.enrol");
    stack.cli(&[
        "trailer",
        "enroll",
        "--request",
        &request.display().to_string(),
        "--bundle",
        &answer.display().to_string(),
        "sealed-01",
    ])?;
    let mut complete = Command::new(&app);
    complete.arg("enroll").arg("--complete").arg(&answer);
    with_config(&mut complete);
    let done = e2e_tests::stack::run_ok(&mut complete)?;
    let said = String::from_utf8_lossy(&done.stdout);
    assert!(said.contains("sealed-01 enrolled"), "{said}");
    assert_eq!(std::fs::read_to_string(&config)?, installed, "the installed file is as it was");
    assert!(stack.cli(&["trailer", "list"])?.contains("sealed-01"), "the server knows it");
    let hot = trailer_dir.join("hot.csv");
    std::fs::write(&hot, format!("{},MN,stolen vehicle,MN BCA\n", scene.plates[0]))?;
    e2e_tests::stack::run_ok(
        Command::new(&app)
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
            .arg(&settings)
            .arg(&hot),
    )?;
    std::fs::remove_file(&hot)?;
    let mut run = Command::new(&app);
    run.arg("run");
    with_config(&mut run);
    let out = run.output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // It synced with its sealed key: the server holds its reads.
    let got = plates(&stack);
    assert!(scene.plates.iter().any(|p| got.contains(p)), "reads at the server: {got:?}\n{stderr}");
    // Once stopped: what a thief carries away.
    let mut all = Vec::new();
    files(&trailer_dir, &mut all);
    assert!(all.len() > 5, "the store's files: {}", all.len());
    let acp_key = std::fs::read_to_string(creds.join("acp.key"))?;
    let mut needles: Vec<(String, Vec<u8>)> =
        scene.plates.iter().map(|p| (format!("plate {p}"), p.as_bytes().to_vec())).collect();
    needles.push(("a JPEG picture".into(), b"JFIF".to_vec()));
    needles.push(("a private key".into(), b"PRIVATE KEY".to_vec()));
    needles.push(("the ACP key".into(), acp_key.trim().as_bytes().to_vec()));
    needles.push(("the store key".into(), store_key.as_bytes().to_vec()));
    for (path, bytes) in &all {
        for (what, needle) in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{what} in clear in {}",
                path.display()
            );
        }
    }
    Ok(())
}

/// One identity cannot flood the server: a trailer over its uplink rate has the excess
/// neither stored nor acknowledged (counted in health) while another trailer goes on; a user
/// over their console rate is told so, and the trail gets one entry for the refusals; a
/// sender's refused messages keep at most their limit of bytes.
#[test]
fn limits_per_identity_hold_a_flood() -> anyhow::Result<()> {
    let stack = Stack::start_with(
        "[limits]\nuplink_per_s = 1\nuplink_burst = 5\nconsole_per_s = 0.5\nconsole_burst = 3\n\
         dead_letter_bytes = 10000\n",
    )?;
    let (cert, key) = stack.enroll("flood-01")?;
    for i in 0..20u64 {
        let mut msg = trailer_wire::decode(&read_batch("flood-01", &format!("FLOOD{i:02}")))?;
        if let trailer_wire::Message::ReadBatch(b) = &mut msg {
            b.reads[0].read_id = 1000 + i;
        }
        stack.publish_raw(
            &cert,
            &key,
            "trailer/flood-01/up/reads",
            &trailer_wire::encode(&msg)?,
        )?;
    }
    let (ccert, ckey) = stack.enroll("calm-01")?;
    stack.publish_raw(
        &ccert,
        &ckey,
        "trailer/calm-01/up/reads",
        &read_batch("calm-01", "CALM01"),
    )?;
    wait_for(30, "the calm trailer's read", || plates(&stack).contains(&"CALM01".to_string()))?;
    wait_for(30, "the flood counted", || {
        stack.health().is_ok_and(|h| {
            h.iter().any(|t| t["trailer"] == "flood-01" && t["rate_limited"].as_i64() > Some(5))
        })
    })?;
    let flooded = stack.counts("flood-01")?.reads;
    assert!((5..20).contains(&flooded), "{flooded} of 20 stored: the burst and the rate, no more");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    stack.grant("flo", "viewer")?;
    let mut flo = stack.session(&rt, "flo")?;
    let before = stack.audit_entries()?;
    let mut refused = 0;
    for _ in 0..10 {
        let r =
            rt.block_on(flo.ask("status", "", "", serde_json::json!({}), Duration::from_secs(10)))?;
        if r.error.as_deref().is_some_and(|e| e.starts_with("too many requests")) {
            refused += 1;
        }
    }
    assert!(refused >= 6, "{refused} of 10 refused");
    wait_for(30, "one entry for the refusals", || {
        stack.audit_details().is_ok_and(|a| a.iter().any(|(act, _)| act == "console.rate_limited"))
    })?;
    let entries = stack.audit_entries()? - before;
    assert!(entries <= (10 - refused) + 1, "{entries} entries for {refused} refusals");

    let (jcert, jkey) = stack.enroll("junk-01")?;
    for _ in 0..5 {
        let mut junk = vec![trailer_wire::PROTOCOL_VERSION, 1];
        junk.resize(3000, 0xee);
        stack.publish_raw(&jcert, &jkey, "trailer/junk-01/up/reads", &junk)?;
    }
    wait_for(30, "five refused messages", || {
        stack.dead_letters().is_ok_and(|l| {
            l.iter().filter(|d| d["topic"] == "trailer/junk-01/up/reads").count() == 5
        })
    })?;
    let letters = stack.dead_letters()?;
    let unkept = letters
        .iter()
        .filter(|d| d["reason"].as_str().is_some_and(|r| r.contains("not kept")))
        .count();
    assert_eq!(unkept, 2, "three payloads of 3000 bytes fit the 10000 kept: {letters:?}");
    Ok(())
}

/// The records on PostgreSQL over TLS: the server connects with `sslmode=verify-full` to a
/// database whose certificate the agency's CA signed; a database showing another CA's
/// certificate is refused, and the database refuses a connection without TLS.
#[test]
fn the_database_is_reached_over_verified_tls_only() -> anyhow::Result<()> {
    let stack = Stack::start()?;
    let pki = stack.pki();
    let pg = e2e_tests::pg_tls::PgTls::start(
        &stack.path("pg"),
        &pki.join("broker.pem"),
        &pki.join("broker.key"),
    )?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let open = |url: String| {
        rt.block_on(async {
            let r = sync_server::records::Records::open(&url).await?;
            r.audit(&sync_server::audit::Entry {
                at: 1,
                actor: "test".into(),
                action: "tls.check".into(),
                purpose: String::new(),
                case_number: String::new(),
                detail: String::new(),
                result_count: 0,
            })
            .await?;
            r.close().await;
            anyhow::Ok(())
        })
    };
    open(pg.url(&pki.join("ca.pem"), "verify-full"))?;
    let other = stack.path("other-ca");
    e2e_tests::stack::run_ok(
        Command::new(e2e_tests::stack::bin("sync-server"))
            .args(["pki", "init", "--dir"])
            .arg(&other),
    )?;
    let refused = open(pg.url(&other.join("ca.pem"), "verify-full")).expect_err("another CA");
    assert!(refused.to_string().to_lowercase().contains("certificate"), "{refused}");
    let plain = open(pg.url(&pki.join("ca.pem"), "disable")).expect_err("no TLS");
    assert!(
        plain.to_string().contains("pg_hba") || plain.to_string().contains("reject"),
        "{plain}"
    );
    Ok(())
}

/// Only statuses stay retained at the broker: a trailer's retained uplink is cleared when the
/// server meets it, so the broker's store does not grow with what trailers leave behind.
#[test]
fn retained_uplinks_are_cleared() -> anyhow::Result<()> {
    let mut stack = Stack::start()?;
    let (cert, key) = stack.enroll("keeper")?;
    let status = Command::new("mosquitto_pub")
        .args(["-h", "localhost", "-p", &stack.broker_port.to_string(), "-q", "1", "-r"])
        .args(["-t", "trailer/keeper/up/reads", "-m", "left behind"])
        .arg("--cafile")
        .arg(stack.pki().join("ca.pem"))
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .status()?;
    assert!(status.success());
    for restart in 0..2 {
        stack.stop_server();
        stack.start_server()?;
        let cleared = {
            let end = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let seen = stack.server_log().contains("cleared a retained uplink");
                if seen || std::time::Instant::now() > end {
                    break seen;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        assert_eq!(cleared, restart == 0, "cleared the first time only (restart {restart})");
    }
    Ok(())
}
