//! Any bytes on an uplink or downlink topic: decoded, then (what the server does next) made
//! safe and encoded again. Never a panic; a decoded message round-trips.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(mut m) = trailer_wire::decode(data) {
            if m.sanitise().is_ok()
                && let Ok(bytes) = trailer_wire::encode(&m)
            {
                assert_eq!(trailer_wire::decode(&bytes).ok(), Some(m));
            }
        }
    });
}
