//! Any bytes an operator's client publishes on its request topic.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = sync_server::console::protocol::parse(data);
        let _ = sync_server::console::client::words(&String::from_utf8_lossy(data));
    });
}
