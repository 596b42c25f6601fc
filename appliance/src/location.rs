//! Where the trailer stands: live fixes from gpsd, the configured position as fallback.
//!
//! gpsd speaks newline-delimited JSON over TCP (port 2947). The client sends
//! `?WATCH={"enable":true,"json":true};` and gpsd answers with `VERSION`, `DEVICES` and `WATCH`
//! reports, then a `TPV` (time-position-velocity) report per fix, whose `mode` is 0 (unknown),
//! 1 (no fix), 2 (2D) or 3 (3D). [`parse_report`] is the pure protocol part; [`Location`] owns
//! the latest fix, and [`run_gpsd`] keeps a connection with backoff. A fix older than the
//! configured staleness, a lost connection or a `mode` below 2 falls back to the configured
//! position, marked `Configured` so every read says how its position was known.
use crate::health::HealthState;
use serde::Deserialize;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;
use trailer_wire::{FixQuality, Position};

/// The longest report line accepted (gpsd's `SKY` reports are the largest, a few KiB).
const MAX_LINE: usize = 64 * 1024;
const WATCH: &[u8] = b"?WATCH={\"enable\":true,\"json\":true};\n";

/// What a gpsd report line says about the position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Report {
    Fix(Position),
    /// A TPV report without a usable fix (mode 0 or 1, or no coordinates).
    NoFix,
    /// Any other report class (VERSION, DEVICES, SKY, ...).
    Other,
}

#[derive(Deserialize)]
struct Tpv {
    class: String,
    #[serde(default)]
    mode: u8,
    lat: Option<f64>,
    lon: Option<f64>,
}

/// Parses one report line; `None` if it is not JSON of the shape gpsd sends.
pub fn parse_report(line: &str) -> Option<Report> {
    let r: Tpv = serde_json::from_str(line.trim()).ok()?;
    if r.class != "TPV" {
        return Some(Report::Other);
    }
    let quality = match r.mode {
        2 => FixQuality::Fix2d,
        3 => FixQuality::Fix3d,
        _ => return Some(Report::NoFix),
    };
    match (r.lat, r.lon) {
        (Some(lat), Some(lon))
            if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
        {
            Some(Report::Fix(Position::from_degrees(lat, lon, quality)))
        }
        _ => Some(Report::NoFix),
    }
}

/// The one owner of the trailer's position.
#[derive(Debug)]
pub struct Location {
    configured: Position,
    stale_after: Duration,
    latest: Mutex<Option<(Position, Instant)>>,
}

impl Location {
    pub fn new(latitude: f64, longitude: f64, stale_after: Duration) -> Location {
        Location {
            configured: Position::from_degrees(latitude, longitude, FixQuality::Configured),
            stale_after,
            latest: Mutex::new(None),
        }
    }

    /// The live fix if it is fresh, else the configured position.
    pub fn current(&self) -> Position {
        let latest = *self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        match latest {
            Some((p, at)) if at.elapsed() <= self.stale_after => p,
            _ => self.configured,
        }
    }

    pub fn configured(&self) -> Position {
        self.configured
    }

    fn set(&self, fix: Option<Position>) {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) =
            fix.map(|p| (p, Instant::now()));
    }
}

/// Keeps a gpsd connection at `addr` until `stop`, feeding `location` and the health state.
/// Reconnects with backoff (1 s doubling to 30 s); never gives up while the daemon runs.
pub async fn run_gpsd(
    addr: String,
    location: std::sync::Arc<Location>,
    health: std::sync::Arc<HealthState>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff =
        trailer_wire::backoff::Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        let session = session(&addr, &location, &health);
        tokio::select! {
            result = session => {
                match result {
                    Ok(()) => {
                        // It was up: the next attempt starts from the first step again.
                        backoff.succeeded();
                        tracing::warn!(%addr, "gpsd closed the connection");
                    }
                    Err(e) => tracing::warn!(%addr, error = %e, "gpsd unavailable; using the configured position"),
                }
            }
            _ = stop.changed() => {}
        }
        location.set(None);
        report_position(&location, &health);
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.failed(0.0)) => {}
            _ = stop.changed() => if *stop.borrow() { return },
        }
    }
}

fn report_position(location: &Location, health: &HealthState) {
    let now = location.current();
    if health.position().fix != now.fix {
        health.changed();
    }
    health.set_position(now);
}

async fn session(addr: &str, location: &Location, health: &HealthState) -> std::io::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(WATCH).await?;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let mut connected_logged = false;
    loop {
        line.clear();
        let n = (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') && n >= MAX_LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "gpsd report longer than 64 KiB",
            ));
        }
        match std::str::from_utf8(&line).ok().and_then(parse_report) {
            Some(Report::Fix(p)) => {
                if !connected_logged {
                    tracing::info!(%addr, fix = ?p.fix, "gpsd fix");
                    connected_logged = true;
                }
                location.set(Some(p));
            }
            Some(Report::NoFix) => location.set(None),
            Some(Report::Other) => {}
            None => tracing::debug!("ignoring a line gpsd did not send as JSON"),
        }
        report_position(location, health);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_as_gpsd_sends_them() {
        let tpv3 = r#"{"class":"TPV","device":"/dev/ttyACM0","mode":3,"time":"2026-11-22T10:00:00.000Z","ept":0.005,"lat":44.980000,"lon":-93.270000,"alt":256.1,"epx":3.2,"epy":4.1,"speed":0.0}"#;
        let Some(Report::Fix(p)) = parse_report(tpv3) else { panic!("3D fix") };
        assert_eq!(p.fix, FixQuality::Fix3d);
        assert!((p.lat() - 44.98).abs() < 1e-6 && (p.lon() + 93.27).abs() < 1e-6);
        let tpv2 = r#"{"class":"TPV","mode":2,"lat":45.0,"lon":-93.0}"#;
        assert!(matches!(parse_report(tpv2), Some(Report::Fix(p)) if p.fix == FixQuality::Fix2d));
        assert_eq!(
            parse_report(r#"{"class":"TPV","device":"/dev/ttyACM0","mode":1}"#),
            Some(Report::NoFix)
        );
        assert_eq!(parse_report(r#"{"class":"TPV","mode":3}"#), Some(Report::NoFix));
        assert_eq!(
            parse_report(r#"{"class":"TPV","mode":3,"lat":95.0,"lon":0.0}"#),
            Some(Report::NoFix)
        );
        assert_eq!(
            parse_report(
                r#"{"class":"VERSION","release":"3.22","rev":"3.22","proto_major":3,"proto_minor":14}"#
            ),
            Some(Report::Other)
        );
        assert_eq!(parse_report("not json"), None);
        assert_eq!(parse_report(r#"{"mode":3}"#), None);
    }

    #[test]
    fn a_stale_fix_falls_back_to_the_configured_position() {
        let loc = Location::new(44.0, -93.0, Duration::from_millis(30));
        assert_eq!(loc.current().fix, FixQuality::Configured);
        loc.set(Some(Position::from_degrees(45.0, -94.0, FixQuality::Fix3d)));
        assert_eq!(loc.current().fix, FixQuality::Fix3d);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(loc.current(), loc.configured());
    }
}
