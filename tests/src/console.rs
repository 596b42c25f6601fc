//! An operator's interactive console (`sync-server console`) as a child process, its output
//! watched line by line as it arrives: for the tests and the benchmark of hits reaching a
//! person.
use crate::stack::{Stack, bin};
use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running console.
pub struct Console {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<(String, Instant)>,
    /// Every line seen so far.
    pub seen: Vec<String>,
}

impl Console {
    /// Starts `user`'s console (a certificate is issued for them) against the stack's broker.
    pub fn start(stack: &Stack, user: &str) -> anyhow::Result<Console> {
        let (cert, key) = stack.issue(user)?;
        let mut child = Command::new(bin("sync-server"))
            .args(["console", "--broker-port", &stack.broker_port.to_string(), "--user", user])
            .arg("--ca")
            .arg(stack.pki().join("ca.pem"))
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((line, Instant::now())).is_err() {
                    break;
                }
            }
        });
        Ok(Console { child, stdin, lines, seen: Vec::new() })
    }

    /// Types a line.
    pub fn type_line(&mut self, line: &str) -> anyhow::Result<()> {
        writeln!(self.stdin, "{line}")?;
        Ok(self.stdin.flush()?)
    }

    /// Waits up to `within` for a line that `wanted` accepts; the line and when it arrived.
    pub fn wait_for(
        &mut self,
        within: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<(String, Instant)> {
        let end = Instant::now() + within;
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            let (line, at) = self.lines.recv_timeout(left).ok()?;
            self.seen.push(line.clone());
            if wanted(&line) {
                return Some((line, at));
            }
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
