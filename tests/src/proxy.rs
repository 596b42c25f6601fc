//! A fault-injecting TCP proxy for the link between a trailer and the broker (this kernel has no
//! netem): added latency each way, a bandwidth limit, stalls, cuts of every open connection and
//! refusal of new ones. It counts the bytes that cross it each way, which is how the benchmark
//! measures what a read costs on the wire.
//!
//! Each direction of a connection is a reader thread, which stamps every chunk with the time it
//! may be delivered, and a writer thread, which delivers chunks at that time and no faster than
//! the bandwidth allows; so latency delays bytes without limiting throughput to one chunk per
//! round trip.
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The faults in force; change them at any time through [`Proxy::set`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Added one-way delay, milliseconds.
    pub latency_ms: u64,
    /// Bytes per second each way; 0 for no limit.
    pub bytes_per_s: u64,
    /// Nothing moves while set (connections stay open).
    pub stalled: bool,
    /// New connections are closed at once while set (an outage).
    pub refuse: bool,
}

#[derive(Debug, Default)]
struct Shared {
    faults: Mutex<Faults>,
    /// Bumped by [`Proxy::cut`]: connections from an earlier generation close.
    generation: AtomicU64,
    up_bytes: AtomicU64,
    down_bytes: AtomicU64,
    connections: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn faults(&self) -> Faults {
        self.faults.lock().map(|f| *f).unwrap_or_default()
    }
}

/// A running proxy from `127.0.0.1:port` to a target; stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
}

impl Proxy {
    pub fn start(target_port: u16) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::spawn(move || accept_loop(listener, target_port, s));
        Ok(Proxy { port, shared })
    }

    pub fn set(&self, faults: Faults) {
        if let Ok(mut f) = self.shared.faults.lock() {
            *f = faults;
        }
    }

    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Closes every open connection (both sides see a reset or an end of stream).
    pub fn cut(&self) {
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Bytes delivered (client → target, target → client).
    pub fn bytes(&self) -> (u64, u64) {
        (self.shared.up_bytes.load(Ordering::SeqCst), self.shared.down_bytes.load(Ordering::SeqCst))
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
    }
}

fn accept_loop(listener: TcpListener, target: u16, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                if shared.faults().refuse {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let _ = client.set_nonblocking(false);
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let generation = shared.generation.load(Ordering::SeqCst);
                if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                    pipe(client, s2, shared.clone(), generation, true);
                    pipe(server, c2, shared.clone(), generation, false);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// One direction: `from` → `to`.
fn pipe(mut from: TcpStream, mut to: TcpStream, shared: Arc<Shared>, generation: u64, up: bool) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let live = move |s: &Shared| {
        !s.stop.load(Ordering::SeqCst) && s.generation.load(Ordering::SeqCst) == generation
    };
    let closer = Arc::new((from.try_clone().ok(), to.try_clone().ok()));
    let close = move |c: &(Option<TcpStream>, Option<TcpStream>)| {
        if let (Some(a), Some(b)) = c {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    };
    let closer2 = closer.clone();
    // Reader: stamps chunks with their delivery time.
    let rs = shared.clone();
    std::thread::spawn(move || {
        let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
        let mut buf = vec![0u8; 16 * 1024];
        while live(&rs) {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let due = Instant::now() + Duration::from_millis(rs.faults().latency_ms);
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        close(&closer);
    });
    // Writer: delivers each chunk at its due time, under the bandwidth limit and any stall.
    std::thread::spawn(move || {
        let counter = if up { &shared.up_bytes } else { &shared.down_bytes };
        'chunks: loop {
            let (due, chunk) = match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(c) => c,
                Err(mpsc::RecvTimeoutError::Timeout) if live(&shared) => continue,
                Err(_) => break,
            };
            let mut sent = 0;
            while sent < chunk.len() {
                if !live(&shared) {
                    break 'chunks;
                }
                let f = shared.faults();
                let now = Instant::now();
                if f.stalled || now < due {
                    std::thread::sleep(
                        due.saturating_duration_since(now)
                            .min(Duration::from_millis(20))
                            .max(Duration::from_millis(1)),
                    );
                    continue;
                }
                // Under a limit, send in slices of 10 ms worth of bytes.
                let slice = if f.bytes_per_s == 0 {
                    chunk.len() - sent
                } else {
                    ((f.bytes_per_s / 100).max(1) as usize).min(chunk.len() - sent)
                };
                // Counted before the write: once the far side has read these bytes, the
                // count already includes them (counting after let a test see a short count).
                counter.fetch_add(slice as u64, Ordering::SeqCst);
                if to.write_all(&chunk[sent..sent + slice]).is_err() {
                    break 'chunks;
                }
                sent += slice;
                if f.bytes_per_s > 0 {
                    std::thread::sleep(Duration::from_secs_f64(
                        slice as f64 / f.bytes_per_s as f64,
                    ));
                }
            }
        }
        close(&closer2);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> std::io::Result<u16> {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut s = s;
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(port)
    }

    /// Bytes cross both ways, late by the latency each way, counted; a cut closes the
    /// connection and a new one works.
    #[test]
    fn delays_counts_and_cuts() -> std::io::Result<()> {
        let proxy = Proxy::start(echo_server()?)?;
        proxy.set(Faults { latency_ms: 200, bytes_per_s: 100_000, ..Faults::default() });
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port))?;
        let t = Instant::now();
        c.write_all(b"hello")?;
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf)?;
        assert_eq!(&buf, b"hello");
        assert!(t.elapsed() >= Duration::from_millis(400), "{:?}", t.elapsed());
        assert_eq!(proxy.bytes(), (5, 5));
        proxy.cut();
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)), "the cut closes the connection");
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port))?;
        c.write_all(b"again")?;
        c.read_exact(&mut buf)?;
        assert_eq!(&buf, b"again");
        Ok(())
    }
}
