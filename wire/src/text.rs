//! Text that came from a trailer, made safe for a person's terminal and the records.
//!
//! A trailer's strings (a camera id, a deployment note, a downlink answer, its software version,
//! a hotlist's name or case number) end up in operators' consoles and tables. A control
//! character there is an escape sequence away from rewriting an operator's screen (a forged
//! "confirmed" line, a cleared warning). The server cleans every such string as it ingests it
//! ([`crate::Message::sanitise`]), and the console cleans whatever it prints again.

/// `s` without control characters (C0, DEL, C1: every escape sequence starts with one; a tab
/// or newline becomes a space), at most `max` characters.
pub fn clean(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| if c == '\t' || c == '\n' || c == '\r' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .take(max)
        .collect()
}

/// Whether `s` is a plate as the engine writes it: capitals and digits, 1-12 of them.
pub fn is_plate(s: &str) -> bool {
    (1..=12).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_controls_go() {
        assert_eq!(clean("ok\x1b[2J\x1b]0;pwned\x07 done", 100), "ok[2J]0;pwned done");
        assert_eq!(clean("a\tb\nc\u{9b}31m", 100), "a b c31m", "C1 CSI too");
        assert_eq!(clean("Hwy 14 & Broadway", 5), "Hwy 1");
        assert!(is_plate("ABC123") && !is_plate("abc123") && !is_plate("AB\x1b1") && !is_plate(""));
    }
}
