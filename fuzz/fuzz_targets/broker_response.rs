//! An answer on the broker's control topic, as the server reads it.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = sync_server::broker::access::errors(data);
    });
}
