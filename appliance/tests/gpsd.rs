//! gpsd as it really speaks: a local TCP speaker sends VERSION, DEVICES and TPV reports after
//! the client's WATCH; fixes reach the location, and the configured position returns when the
//! speaker goes away, until it comes back.
use appliance::health::HealthState;
use appliance::location::{Location, run_gpsd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use trailer_wire::FixQuality;

/// Serves one client: checks its WATCH, then sends reports until told to stop or the client
/// leaves. `hostile` sends a 100 KiB line instead of reports.
async fn speak(
    listener: &TcpListener,
    lat: f64,
    stop: tokio::sync::watch::Receiver<bool>,
    hostile: bool,
) {
    let (sock, _) = listener.accept().await.expect("accept");
    let (rd, mut wr) = sock.into_split();
    let mut line = String::new();
    BufReader::new(rd).read_line(&mut line).await.expect("watch");
    assert!(line.starts_with("?WATCH={\"enable\":true,\"json\":true}"), "{line:?}");
    let hello = concat!(
        r#"{"class":"VERSION","release":"3.22","rev":"3.22","proto_major":3,"proto_minor":14}"#,
        "\n",
        r#"{"class":"DEVICES","devices":[{"class":"DEVICE","path":"/dev/ttyACM0","activated":"2026-11-22T10:00:00.000Z","native":0,"bps":9600}]}"#,
        "\n",
        r#"{"class":"WATCH","enable":true,"json":true,"nmea":false,"raw":0,"scaled":false,"timing":false,"split24":false,"pps":false}"#,
        "\n"
    );
    if wr.write_all(hello.as_bytes()).await.is_err() {
        return;
    }
    if hostile {
        let _ = wr.write_all(&vec![b'x'; 100 * 1024]).await;
        return;
    }
    while !*stop.borrow() {
        let tpv = format!(
            "{{\"class\":\"TPV\",\"device\":\"/dev/ttyACM0\",\"mode\":3,\"time\":\"2026-11-22T10:00:01.000Z\",\"lat\":{lat},\"lon\":-93.27,\"alt\":256.0}}\n"
        );
        if wr.write_all(tpv.as_bytes()).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for(what: &str, secs: u64, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixes_arrive_fall_back_when_gpsd_is_gone_and_resume() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let location = Arc::new(Location::new(44.0, -93.0, Duration::from_millis(400)));
    let health = Arc::new(HealthState::new(location.configured()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let client = tokio::spawn(run_gpsd(addr.clone(), location.clone(), health.clone(), stop_rx));

    // 1. A hostile speaker (an endless line) costs a reconnect, nothing else.
    speak(&listener, 0.0, stop_tx.subscribe(), true).await;

    // 2. A real one: the 3D fix reaches the location and the health report.
    let (speaker_stop, speaker_rx) = tokio::sync::watch::channel(false);
    let listener = Arc::new(listener);
    let l = listener.clone();
    let speaker = tokio::spawn(async move { speak(&l, 44.98, speaker_rx, false).await });
    wait_for("a 3D fix", 10, || location.current().fix == FixQuality::Fix3d).await;
    assert!((location.current().lat() - 44.98).abs() < 1e-6);
    wait_for("health to carry the fix", 5, || health.position().fix == FixQuality::Fix3d).await;

    // 3. gpsd goes away: the configured position, marked as such.
    let _ = speaker_stop.send(true);
    speaker.await.expect("speaker");
    wait_for("the configured fallback", 5, || location.current().fix == FixQuality::Configured)
        .await;
    assert_eq!(location.current(), location.configured());
    wait_for("health to fall back", 5, || health.position().fix == FixQuality::Configured).await;

    // 4. It comes back: the client reconnects by itself.
    let (speaker_stop, speaker_rx) = tokio::sync::watch::channel(false);
    let l = listener.clone();
    let speaker = tokio::spawn(async move { speak(&l, 45.01, speaker_rx, false).await });
    wait_for("the fix after a reconnect", 40, || (location.current().lat() - 45.01).abs() < 1e-6)
        .await;
    let _ = stop_tx.send(true);
    tokio::time::timeout(Duration::from_secs(5), client)
        .await
        .expect("the client stops when told")
        .expect("client");
    let _ = speaker_stop.send(true);
    let _ = speaker.await;
}
