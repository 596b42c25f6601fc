//! A webhook receiver (a real HTTP listener) gets each hit of its categories once, and each
//! delivery is in the audit trail.
use super::*;
use std::io::{BufRead, BufReader, Read, Write};

/// A receiver on a free port: answers each POST with `status`, and hands each body over.
fn receiver(status: &'static str) -> (String, std::sync::mpsc::Receiver<serde_json::Value>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://127.0.0.1:{}/alpr/hits", listener.local_addr().expect("addr").port());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let mut length = 0;
            let mut request_line = String::new();
            reader.read_line(&mut request_line).expect("request line");
            assert!(request_line.starts_with("POST /alpr/hits HTTP/1.1"), "{request_line}");
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("header");
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().expect("length");
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            // Handed over before the answer: a sender's round has it once it returns.
            let _ = tx.send(serde_json::from_slice(&body).expect("JSON"));
            let mut conn = conn;
            let _ = write!(conn, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (url, rx)
}

fn target(url: &str, categories: &[&str]) -> ForwardConfig {
    ForwardConfig {
        name: "cad".into(),
        webhook: url.into(),
        mail_to: String::new(),
        mqtt_client: String::new(),
        resend_s: 60,
        categories: categories.iter().map(|c| c.to_string()).collect(),
        ca: Default::default(),
        max_age_s: 600,
    }
}

async fn stored_hits(db: &Records, now: i64) {
    use trailer_wire::HitCategory::{StolenVehicle, Warrant};
    let mut tx = db.begin().await.expect("begin");
    for (id, category) in [(1, StolenVehicle), (2, Warrant)] {
        let read = crate::records::tests::read_at(id, "HOT123", now - 5_000);
        let hit = crate::records::tests::hit(id, read, category);
        crate::records::write::alert(&mut tx, db.rules(), "t1", &hit, now).await.expect("hit");
    }
    tx.commit().await.expect("commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_receiver_gets_each_hit_of_its_categories_once_and_it_is_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("f.db").display());
    let db = Records::open(&url).await.expect("open");
    let now = 1_790_000_000_000;
    stored_hits(&db, now).await;
    let (webhook, bodies) = receiver("204 No Content");
    let cad = target(&webhook, &["stolen-vehicle"]);
    assert_eq!(round(&db, &crate::Config::default(), &cad, now + 1_000).await.expect("round"), 1);
    let got = bodies.recv_timeout(Duration::from_secs(5)).expect("a hit");
    assert_eq!(got["plate"], "HOT123");
    assert_eq!(got["trailer"], "t1");
    assert_eq!(got["alert_id"], 1);
    assert_eq!(got["category"], "StolenVehicle");
    assert!(got["verify"].as_str().is_some_and(|v| v.contains("state systems")));
    // Sent once: the next round has nothing for it, and the warrant was never its.
    assert_eq!(round(&db, &crate::Config::default(), &cad, now + 2_000).await.expect("round"), 0);
    // (A round returns once its receiver answered: nothing more can be on its way.)
    assert!(bodies.try_recv().is_err());
    let entries: Vec<(String, String, String)> =
        sqlx::query_as("SELECT actor, action, detail FROM audit WHERE action = 'alerts.forwarded'")
            .fetch_all(db.pool())
            .await
            .expect("audit");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].0, "forward:cad");
    assert!(entries[0].2.contains("alert 1 from t1"), "{entries:?}");
    // Retention takes the hits, and the record of where they went with them.
    let forwards = || async {
        sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM alert_forwards")
            .fetch_one(db.pool())
            .await
            .expect("count")
            .0
    };
    assert_eq!(forwards().await, 2, "the delivery and the warrant passed over");
    db.purge(now + 61 * 86_400_000, 60).await.expect("purge");
    assert_eq!(forwards().await, 0);
    db.close().await;
}

/// A receiver that refuses (or is not there) gets the hit again later: nothing is marked sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_delivery_is_tried_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("f.db").display());
    let db = Records::open(&url).await.expect("open");
    let now = 1_790_000_000_000;
    stored_hits(&db, now).await;
    let (down, _bodies) = receiver("503 Service Unavailable");
    let e =
        round(&db, &crate::Config::default(), &target(&down, &[]), now).await.expect_err("refused");
    assert!(e.to_string().contains("503"), "{e}");
    let (up, bodies) = receiver("200 OK");
    assert_eq!(
        round(&db, &crate::Config::default(), &target(&up, &[]), now).await.expect("round"),
        2
    );
    assert_eq!(bodies.iter().take(2).count(), 2);
    // Too old for dispatch: a hit received before max_age is not sent.
    let fresh = target(&up, &[]);
    let later = now + (fresh.max_age_s as i64 + 1) * 1000;
    let mut other = fresh.clone();
    other.name = "cad-2".into();
    assert_eq!(round(&db, &crate::Config::default(), &other, later).await.expect("round"), 0);
    db.close().await;
}
