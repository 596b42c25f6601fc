//! `bench-alerts`: how long a hotlist hit takes from a trailer to an operator's screen, through
//! the real parts: a trailer's alert published to a private Mosquitto (mutual TLS), ingested by
//! the server binary, published on the operator's live topic, and printed by the interactive
//! console (`sync-server console`) above its prompt. One hit at a time, each timed from the
//! start of the publish to the console's line. Ends with one JSON line:
//!
//! - `hit_to_console_ms`: the median over the hits;
//! - `hit_to_console_ms_p90`, `hit_to_console_ms_max`;
//! - `hits`: how many (BENCH_HITS, default 20).
use e2e_tests::console::Console;
use e2e_tests::stack::Stack;
use std::time::{Duration, Instant};
use trailer_wire::{Alert, FixQuality, HitCategory, Message, PictureSet, Position, ReadMeta};

fn main() -> anyhow::Result<()> {
    let hits: u64 = std::env::var("BENCH_HITS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let stack = Stack::start()?;
    let trailer = "bench-01";
    let (cert, key) = stack.enroll(trailer)?;
    stack.grant("otto", "operator")?;
    let mut console = Console::start(&stack, "otto")?;
    let within = Duration::from_secs(60);
    console
        .wait_for(within, |l| l.contains("connected as otto"))
        .ok_or_else(|| anyhow::anyhow!("the console did not start: {:?}", console.seen))?;
    let topic = format!("trailer/{trailer}/up/alerts");
    let mut took = Vec::new();
    for i in 1..=hits {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let alert = Message::Alert(Alert {
            trailer_id: trailer.into(),
            alert_id: i,
            read: ReadMeta {
                read_id: i,
                camera_id: "cam0".into(),
                plate: format!("HIT{i:03}"),
                confidence_pm: 950,
                first_seen: now,
                best_seen: now + 300,
                position: Position::from_degrees(44.02, -92.47, FixQuality::Fix3d),
                plate_box: [10, 10, 120, 40],
                pictures: PictureSet::default(),
            },
            list_name: "mn-state".into(),
            list_version: 1,
            category: HitCategory::StolenVehicle,
            case_number: None,
        });
        let bytes = trailer_wire::encode(&alert)?;
        let started = Instant::now();
        anyhow::ensure!(stack.publish_raw(&cert, &key, &topic, &bytes)?.success(), "publish");
        let wanted = format!("alert_id={i} ");
        let (_, at) = console
            .wait_for(within, |l| l.contains("*** HIT") && l.contains(&wanted))
            .ok_or_else(|| anyhow::anyhow!("hit {i} never reached the console"))?;
        took.push(at.duration_since(started).as_secs_f64() * 1000.0);
    }
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{}",
        serde_json::json!({
            "hit_to_console_ms": (at(0.5) * 10.0).round() / 10.0,
            "hit_to_console_ms_p90": (at(0.9) * 10.0).round() / 10.0,
            "hit_to_console_ms_max": (at(1.0) * 10.0).round() / 10.0,
            "hits": took.len(),
        })
    );
    Ok(())
}
