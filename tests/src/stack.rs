//! The real parts, started for tests: the agency PKI, a private Mosquitto with mutual TLS on a
//! free port, and the sync server binary. Everything lives in one temporary directory and is
//! stopped when the [`Stack`] is dropped.
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A binary built by `make build` (target/<profile>/NAME), found beside the test executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    for dir in exe.ancestors().skip(1).take(3) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(name)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

pub fn wait_port(port: u16, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Runs a command to completion and fails with its output if it fails.
pub fn run_ok(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd.output()?;
    if !out.status.success() {
        anyhow::bail!(
            "{cmd:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Stack {
    pub dir: tempfile::TempDir,
    pub broker_port: u16,
    pub http_port: u16,
    /// `/metrics`, `/healthz` and `/readyz` of the first instance.
    pub monitor_port: u16,
    broker: Option<Killed>,
    server: Option<Killed>,
    /// The server's database: empty for the embedded SQLite in the stack's directory.
    database_url: String,
    /// More of the server's configuration (sections after `[http]`, e.g. `[bca]`).
    extra_config: String,
    /// The console role the login running the tests has now (`act_as`).
    role: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("dir", &self.dir.path())
            .field("broker_port", &self.broker_port)
            .finish()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server = None;
        if !self.database_url.is_empty()
            && let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build()
        {
            let _ = rt.block_on(sync_server::records::drop_scratch_postgres(&self.database_url));
        }
    }
}

impl Stack {
    /// PKI, broker and server (on SQLite), all started and ready.
    pub fn start() -> anyhow::Result<Stack> {
        Stack::start_on(String::new(), String::new())
    }

    /// The same, with more server configuration (whole sections, e.g. `[bca]`).
    pub fn start_with(extra_config: &str) -> anyhow::Result<Stack> {
        Stack::start_on(String::new(), extra_config.to_string())
    }

    /// The same, with the server on PostgreSQL in a scratch database (dropped with the stack).
    pub fn start_postgres() -> anyhow::Result<Stack> {
        Stack::start_postgres_with("")
    }

    /// On PostgreSQL, with more server configuration.
    pub fn start_postgres_with(extra_config: &str) -> anyhow::Result<Stack> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let url = rt.block_on(sync_server::records::scratch_postgres("stack"))?;
        Stack::start_on(url, extra_config.to_string())
    }

    fn start_on(database_url: String, extra_config: String) -> anyhow::Result<Stack> {
        let dir = tempfile::tempdir()?;
        let pki = dir.path().join("pki");
        run_ok(Command::new(bin("sync-server")).args(["pki", "init", "--dir"]).arg(&pki))?;
        let mut stack = Stack {
            dir,
            broker_port: free_port(),
            http_port: free_port(),
            monitor_port: free_port(),
            broker: None,
            server: None,
            database_url,
            extra_config,
            role: std::sync::Mutex::new(None),
        };
        stack.start_broker()?;
        // The HTTP port may be taken between choosing and binding it, as the broker's may.
        for attempt in 0..3 {
            stack.write_server_config()?;
            match stack.start_server() {
                Ok(()) => break,
                Err(e) if attempt == 2 => return Err(e),
                Err(_) => (stack.http_port, stack.monitor_port) = (free_port(), free_port()),
            }
        }
        Ok(stack)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn pki(&self) -> PathBuf {
        self.path("pki")
    }

    /// Issues an operator's certificate from the agency CA; returns (cert, key). The broker
    /// lets the operator in once granted a role (`grant`).
    pub fn issue(&self, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        issue_in(&self.pki(), name)
    }

    /// Enrols a trailer (`sync-server trailer enroll`: its key and certificate made in the PKI
    /// directory, the registry written) and waits until the broker lets it in; returns (cert,
    /// key).
    pub fn enroll(&self, trailer: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        self.enroll_for(trailer, 365)
    }

    /// [`Stack::enroll`] with a certificate valid for `days`.
    pub fn enroll_for(&self, trailer: &str, days: u32) -> anyhow::Result<(PathBuf, PathBuf)> {
        let (cert, key) =
            (self.pki().join(format!("{trailer}.pem")), self.pki().join(format!("{trailer}.key")));
        if !cert.exists() {
            self.cli(&["trailer", "enroll", "--days", &days.to_string(), trailer])?;
        }
        self.wait_admitted(trailer, &format!("trailer/{trailer}/down/ack"), &cert, &key)?;
        Ok((cert, key))
    }

    /// Waits until the broker grants `name` (with `cert`/`key`) a subscription to `topic`: the
    /// running server brings the broker's clients in line with its registry within seconds.
    pub fn wait_admitted(
        &self,
        name: &str,
        topic: &str,
        cert: &Path,
        key: &Path,
    ) -> anyhow::Result<()> {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new("mosquitto_sub")
                .args(["-h", "localhost", "-p", &self.broker_port.to_string(), "-q", "1"])
                .args(["-t", topic, "-W", "1", "-C", "1", "--cafile"])
                .arg(self.pki().join("ca.pem"))
                .arg("--cert")
                .arg(cert)
                .arg("--key")
                .arg(key)
                .output()?;
            let said = String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
            if !said.contains("denied") && !said.contains("refused") && !said.contains("Error") {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < end, "the broker never admitted {name}: {said}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A client certificate from a CA that is not the agency's (a stranger's); returns (cert, key).
    pub fn foreign_certificate(&self, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let other = self.path("other-ca");
        run_ok(Command::new(bin("sync-server")).args(["pki", "init", "--dir"]).arg(&other))?;
        issue_in(&other, name)
    }

    /// Starts Mosquitto. A free port can be taken by another test between choosing and binding
    /// it; then the broker exits at once and another port is tried (on the first start only: a
    /// restarted broker must come back on the same port).
    pub fn start_broker(&mut self) -> anyhow::Result<()> {
        let first = self.broker.is_none() && !self.path("broker").exists();
        let mut last_log = String::new();
        for _ in 0..5 {
            let out = self.path("broker");
            let mut cmd = Command::new(bin("sync-server"));
            cmd.args(["broker-config", "--pki"]).arg(self.pki()).arg("--out").arg(&out);
            cmd.args(["--port", &self.broker_port.to_string()]);
            if nix_is_root() {
                cmd.args(["--run-as", "root"]);
            }
            run_ok(&mut cmd)?;
            let log = std::fs::File::create(out.join("mosquitto.log"))?;
            let child = Command::new("mosquitto")
                .arg("-c")
                .arg(out.join("mosquitto.conf"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()?;
            let mut child = Killed(child);
            let up = wait_port(self.broker_port, Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(100));
            if up && matches!(child.0.try_wait(), Ok(None)) {
                self.broker = Some(child);
                return Ok(());
            }
            last_log = std::fs::read_to_string(out.join("mosquitto.log")).unwrap_or_default();
            if !first {
                break;
            }
            self.broker_port = free_port();
        }
        anyhow::bail!("mosquitto did not start: {last_log}")
    }

    pub fn stop_broker(&mut self) {
        self.broker = None;
    }

    /// Makes the broker read its configuration and revocation list again (SIGHUP), as
    /// `systemctl reload mosquitto` does: connected clients stay connected.
    pub fn reload_broker(&self) -> anyhow::Result<()> {
        let pid =
            self.broker.as_ref().map(|k| k.0.id()).ok_or_else(|| anyhow::anyhow!("no broker"))?;
        run_ok(Command::new("kill").arg("-HUP").arg(pid.to_string()))?;
        Ok(())
    }

    /// What the broker logged.
    pub fn broker_log(&self) -> String {
        std::fs::read_to_string(self.path("broker/mosquitto.log")).unwrap_or_default()
    }

    pub fn server_config(&self) -> PathBuf {
        self.path("server.toml")
    }

    fn write_server_config(&self) -> anyhow::Result<()> {
        self.write_instance_config(&self.server_config(), "a", self.http_port)
    }

    fn write_instance_config(&self, path: &Path, instance: &str, http: u16) -> anyhow::Result<()> {
        let pki = self.pki();
        // Each instance has a certificate of its own (the broker binds client ids to them).
        let cert = if instance == "a" {
            "sync-server".to_string()
        } else {
            format!("sync-server-{instance}")
        };
        if !pki.join(format!("{cert}.pem")).exists() {
            run_ok(
                Command::new(bin("sync-server"))
                    .args(["pki", "issue-server", "--dir"])
                    .arg(&pki)
                    .arg(instance),
            )?;
        }
        std::fs::write(
            path,
            format!(
                "[agency]\nname = \"Test Police Department\"\ncontact = \"Records unit, (555) 555-0199\"\n[server]\ninstance = \"{instance}\"\ndata_dir = \"{}\"\ndatabase_url = \"{}\"\n\
                 [broker]\nhost = \"localhost\"\nport = {}\nca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n\
                 [http]\nlisten = \"127.0.0.1:{}\"\nmonitor_listen = \"{}\"\n[review]\nhours = 0\n[acp]\nkey_file = \"{}\"\n\
                 [pki]\ndir = \"{}\"\n{}",
                self.path("server").display(),
                self.database_url,
                self.broker_port,
                pki.join("ca.pem").display(),
                pki.join(format!("{cert}.pem")).display(),
                pki.join(format!("{cert}.key")).display(),
                http,
                if instance == "a" {
                    format!("127.0.0.1:{}", self.monitor_port)
                } else {
                    "127.0.0.1:0".to_string()
                },
                pki.join("acp.key").display(),
                pki.display(),
                self.extra_config
            ),
        )?;
        Ok(())
    }

    pub fn start_server(&mut self) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.path("server.log"))?;
        let child = Command::new(bin("sync-server"))
            .arg("run")
            .arg("--config")
            .arg(self.server_config())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.server = Some(Killed(child));
        // Ready when it has subscribed: the broker drops what nobody has subscribed to yet.
        let end = Instant::now() + Duration::from_secs(30);
        while !self.server_log().contains("subscribed to trailer uplinks") {
            if Instant::now() > end || !self.server_alive() {
                anyhow::bail!("server did not start: {}", self.server_log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Another server instance on the same database, sharing ingestion through the broker's
    /// shared subscription. It stops (SIGKILL) when the returned guard drops.
    pub fn start_instance(&self, instance: &str) -> anyhow::Result<impl Drop + use<>> {
        let config = self.path(&format!("server-{instance}.toml"));
        self.write_instance_config(&config, instance, free_port())?;
        let log_path = self.path(&format!("server-{instance}.log"));
        let child = Command::new(bin("sync-server"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path)?)
            .spawn()?;
        let child = Killed(child);
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if log.contains("subscribed to trailer uplinks") {
                return Ok(child);
            }
            anyhow::ensure!(
                Instant::now() < end,
                "server instance {instance} did not start: {log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the server holds from `trailer`, from its database.
    pub fn counts(&self, trailer: &str) -> anyhow::Result<sync_server::records::Counts> {
        let url = self.database();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let db = sync_server::records::Records::open(&url).await?;
            let c = db.counts(trailer).await;
            db.close().await;
            Ok(c?)
        })
    }

    /// Stops the server at once (SIGKILL): what it had not committed stays with the broker.
    pub fn stop_server(&mut self) {
        self.server = None;
    }

    /// Whether the server process is still running.
    pub fn server_alive(&mut self) -> bool {
        self.server.as_mut().is_some_and(|k| matches!(k.0.try_wait(), Ok(None)))
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.path("server.log")).unwrap_or_default()
    }

    /// The reads the server stored, read from its database.
    pub fn server_reads(&self) -> anyhow::Result<Vec<trailer_wire::console::ReadView>> {
        // The harness looks into the database itself: what a test checks is what was stored,
        // not a person's access (which goes through the command layer with a role).
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let records = sync_server::records::Records::open(&self.database()).await?;
            let reads = records.list_reads(100_000).await;
            records.close().await;
            Ok(reads?)
        })
    }

    /// Runs `sync-server ARGS --config SERVER_CONFIG` and returns its standard output.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = run_ok(
            Command::new(bin("sync-server")).args(args).arg("--config").arg(self.server_config()),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The number of audit entries, as `audit verify` counts them (failing if the chain breaks).
    pub fn audit_entries(&self) -> anyhow::Result<i64> {
        let out = self.cli(&["audit", "verify"])?;
        let n = out
            .split("intact: ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("unexpected audit verify output: {out}"))?;
        Ok(n)
    }

    /// Grants the login running the tests `role`: on the command line a person acts as their
    /// login (the real user id's), with that login's console role.
    pub fn act_as(&self, role: &str) -> anyhow::Result<()> {
        let login = nix::unistd::User::from_uid(nix::unistd::getuid())?
            .map(|u| u.name)
            .ok_or_else(|| anyhow::anyhow!("no login for this user id"))?;
        self.grant(&login, role)?;
        *self.role.lock().map_err(|_| anyhow::anyhow!("role lock"))? = Some(role.into());
        Ok(())
    }

    /// Gives the login a role if it has none yet (every role may see the trailers' status).
    fn any_role(&self) -> anyhow::Result<()> {
        let none = self.role.lock().map_err(|_| anyhow::anyhow!("role lock"))?.is_none();
        if none { self.act_as("viewer") } else { Ok(()) }
    }

    /// Grants `name` a console role under a written authorisation (`sync-server user grant`).
    pub fn grant(&self, name: &str, role: &str) -> anyhow::Result<()> {
        self.cli(&[
            "user",
            "grant",
            "--name",
            name,
            "--role",
            role,
            "--authorised-by",
            "Chief Ruiz",
            "--authorisation",
            "general order 26-04",
        ])?;
        Ok(())
    }

    /// A console session for `user` (a certificate issued now) on this broker.
    pub fn session(
        &self,
        rt: &tokio::runtime::Runtime,
        user: &str,
    ) -> anyhow::Result<sync_server::console::client::Session> {
        let (cert, key) = self.issue(user)?;
        let op = sync_server::console::client::Operator {
            host: "localhost".into(),
            port: self.broker_port,
            ca: self.pki().join("ca.pem"),
            cert,
            key,
            user: user.into(),
        };
        let connect = sync_server::console::client::Session::connect(&op, Duration::from_secs(20));
        Ok(rt.block_on(connect)?)
    }

    /// The latest health of each trailer, as `sync-server health` prints it.
    pub fn health(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        self.any_role()?;
        self.cli(&["health"])?
            .lines()
            .map(|l| serde_json::from_str(l).map_err(anyhow::Error::from))
            .collect()
    }

    /// `(action, detail)` of every audit entry, oldest first, from the server's database.
    pub fn audit_details(&self) -> anyhow::Result<Vec<(String, String)>> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let records = sync_server::records::Records::open(&self.database()).await?;
            let rows = sqlx::query_as("SELECT action, detail FROM audit ORDER BY seq")
                .fetch_all(records.pool())
                .await;
            records.close().await;
            Ok(rows?)
        })
    }

    /// How many audit entries name an actor of `kind` (`cli`, `console`, ...).
    pub fn audit_entries_of(&self, kind: &str) -> anyhow::Result<i64> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let records = sync_server::records::Records::open(&self.database()).await?;
            let text = "SELECT CAST(COUNT(*) AS BIGINT) FROM audit WHERE actor LIKE ?";
            let row: Result<(i64,), _> =
                sqlx::query_as(sync_server::records::sql(records.is_postgres(), text))
                    .bind(format!("{kind}:%"))
                    .fetch_one(records.pool())
                    .await;
            records.close().await;
            Ok(row?.0)
        })
    }

    /// The actor of the newest audit entry.
    pub fn last_audit_actor(&self) -> anyhow::Result<String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let records = sync_server::records::Records::open(&self.database()).await?;
            let row: Result<(String,), _> =
                sqlx::query_as("SELECT actor FROM audit ORDER BY seq DESC LIMIT 1")
                    .fetch_one(records.pool())
                    .await;
            records.close().await;
            Ok(row?.0)
        })
    }

    /// The body of `GET path` from the server's public pages (an error unless 200 OK).
    pub fn http_get(&self, path: &str) -> anyhow::Result<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.http_port))?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut response = String::new();
        s.read_to_string(&mut response)?;
        anyhow::ensure!(response.starts_with("HTTP/1.1 200"), "GET {path}: {response}");
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Ok(body.to_string())
    }

    /// The server's database URL.
    pub fn database(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}?mode=rwc", self.path("server").join("server.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// The messages the server refused (topic, reason), read from its database.
    pub fn dead_letters(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let records = sync_server::records::Records::open(&self.database()).await?;
            let letters = records.dead_letters().await;
            records.close().await;
            Ok(letters?
                .into_iter()
                .map(|(topic, reason)| serde_json::json!({"topic": topic, "reason": reason}))
                .collect())
        })
    }

    /// An appliance configuration for `trailer`, reading `video`, syncing to this stack.
    pub fn appliance_config(
        &self,
        trailer: &str,
        video: &Path,
        cert: &Path,
        key: &Path,
    ) -> anyhow::Result<PathBuf> {
        let path = self.path(&format!("{trailer}.toml"));
        std::fs::write(
            &path,
            format!(
                "[trailer]\nid = \"{trailer}\"\ndata_dir = \"{}\"\n[capture]\nsource = \"file://{}\"\n\
                 [store]\nacp_key_file = \"{}\"\n\
                 [sync]\nbroker_host = \"localhost\"\nbroker_port = {}\nca_file = \"{}\"\ncert_file = \"{}\"\n\
                 key_file = \"{}\"\ndrain_timeout_s = 30\n",
                self.path(&format!("{trailer}-store")).display(),
                video.display(),
                self.pki().join("acp.key").display(),
                self.broker_port,
                self.pki().join("ca.pem").display(),
                cert.display(),
                key.display()
            ),
        )?;
        Ok(path)
    }

    /// Publishes raw bytes with mosquitto_pub as the client `cert`/`key`. Returns the exit status.
    pub fn publish_raw(
        &self,
        cert: &Path,
        key: &Path,
        topic: &str,
        payload: &[u8],
    ) -> anyhow::Result<std::process::ExitStatus> {
        let file = self.path(&format!("payload-{}", rand::random::<u32>()));
        std::fs::write(&file, payload)?;
        let status = Command::new("mosquitto_pub")
            .args(["-h", "localhost", "-p", &self.broker_port.to_string(), "-q", "1", "-t", topic])
            .arg("--cafile")
            .arg(self.pki().join("ca.pem"))
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        Ok(status)
    }
}

fn issue_in(pki: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    if !pki.join(format!("{name}.pem")).exists() {
        run_ok(
            Command::new(bin("sync-server")).args(["pki", "issue", "--dir"]).arg(pki).arg(name),
        )?;
    }
    Ok((pki.join(format!("{name}.pem")), pki.join(format!("{name}.key"))))
}

fn nix_is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false)
}
