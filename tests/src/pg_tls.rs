//! A private PostgreSQL that accepts connections only over TLS, with a server certificate from
//! the test's agency PKI (the broker's: it names localhost), on a free port. For the server's
//! `sslmode=verify-full` connections. Needs root (the cluster runs as `postgres`) and Debian's
//! PostgreSQL binaries; stopped when dropped.
use crate::stack::{free_port, run_ok};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug)]
pub struct PgTls {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

fn bin_dir() -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop().ok_or_else(|| anyhow::anyhow!("no PostgreSQL binaries under /usr/lib/postgresql"))
}

fn as_postgres(cmd: &Path) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(cmd);
    c
}

impl PgTls {
    /// Starts a cluster in `dir` (made here) with `cert`/`key` as its TLS identity.
    pub fn start(dir: &Path, cert: &Path, key: &Path) -> anyhow::Result<PgTls> {
        let bin = bin_dir()?;
        std::fs::create_dir_all(dir)?;
        run_ok(Command::new("chown").arg("postgres:postgres").arg(dir))?;
        let data = dir.join("data");
        run_ok(
            as_postgres(&bin.join("initdb"))
                .args(["-A", "trust", "-U", "postgres", "-D"])
                .arg(&data),
        )?;
        for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
            std::fs::copy(from, data.join(to))?;
            run_ok(Command::new("chown").arg("postgres:postgres").arg(data.join(to)))?;
            run_ok(Command::new("chmod").arg("0600").arg(data.join(to)))?;
        }
        let port = free_port();
        let mut conf =
            std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf"))?;
        use std::io::Write;
        writeln!(
            conf,
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'",
            dir.display()
        )?;
        // TLS or nothing over TCP; the socket (for setting up) stays local.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
        )?;
        run_ok(
            as_postgres(&bin.join("pg_ctl"))
                .args(["-w", "-D"])
                .arg(&data)
                .arg("-l")
                .arg(dir.join("log"))
                .arg("start"),
        )?;
        let pg = PgTls { port, dir: dir.to_path_buf(), bin };
        run_ok(Command::new("psql").args(["-h"]).arg(&pg.dir).args([
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-c",
            "CREATE DATABASE alpr",
        ]))?;
        Ok(pg)
    }

    /// The server's database URL: TLS, the certificate checked against `ca`.
    pub fn url(&self, ca: &Path, sslmode: &str) -> String {
        format!(
            "postgres://postgres@localhost:{}/alpr?sslmode={sslmode}&sslrootcert={}",
            self.port,
            ca.display()
        )
    }
}

impl Drop for PgTls {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .output();
    }
}
