//! A trailer's certificate request (renewal, enrolment) and a certificate in PEM, as the server
//! parses them.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = sync_server::pki::parse_request(data, "t1");
        let _ = sync_server::pki::describe(&String::from_utf8_lossy(data));
    });
}
