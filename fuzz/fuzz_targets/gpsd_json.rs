//! A line from gpsd (or whatever answers on its port).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(line) = std::str::from_utf8(data) {
            let _ = appliance::location::parse_report(line);
        }
    });
}
