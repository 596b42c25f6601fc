//! A hotlist file as an operator uploads it and a trailer parses it.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = trailer_wire::hotlist::parse_csv(text, true);
            let _ = trailer_wire::hotlist::parse_csv(text, false);
        }
    });
}
