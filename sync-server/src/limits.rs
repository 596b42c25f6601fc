//! Limits per identity, so that one certificate holder cannot flood the server: uplinks per
//! trailer, console requests per user (token buckets, no I/O: time is passed in), and the bytes
//! of refused messages kept per sender (in the records).
//!
//! - An uplink over its trailer's rate is neither stored nor acknowledged end to end: a trailer
//!   that means well sends it again later, losing nothing; a flood costs the server a counter.
//! - A console request over its user's rate is answered "too many requests" without running, and
//!   the user's refusals are written to the audit trail as one entry every ten seconds with their
//!   count,
//!   so a flood fills neither the disk nor the append-only trail.
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The limits, from the configuration's `[limits]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Uplink messages per second a trailer may send, sustained, and in a burst (a trailer
    /// draining weeks of backlog sends a few hundred a second).
    pub uplink_per_s: f64,
    /// The burst that goes with `uplink_per_s`.
    pub uplink_burst: f64,
    /// Console requests per second a user may make, sustained, and in a burst.
    pub console_per_s: f64,
    /// The burst that goes with `console_per_s`.
    pub console_burst: f64,
    /// Bytes of refused messages kept per sender; beyond, only their topic, reason and size.
    pub dead_letter_bytes: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            uplink_per_s: 2000.0,
            uplink_burst: 20_000.0,
            console_per_s: 5.0,
            console_burst: 50.0,
            dead_letter_bytes: 16 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: i64,
}

/// Token buckets by identity.
#[derive(Debug)]
pub struct Buckets {
    per_s: f64,
    burst: f64,
    buckets: HashMap<String, Bucket>,
    /// Taken away per identity since [`Buckets::take_refused`].
    refused: HashMap<String, u64>,
}

impl Buckets {
    pub fn new(per_s: f64, burst: f64) -> Buckets {
        Buckets { per_s, burst: burst.max(1.0), buckets: HashMap::new(), refused: HashMap::new() }
    }

    /// Whether `who` may go now (`now` in ms); a refusal is counted.
    pub fn allow(&mut self, who: &str, now: i64) -> bool {
        if self.buckets.len() > 100_000 {
            // Identities come from certificates, so this bounds memory, not security.
            self.buckets.clear();
        }
        let b =
            self.buckets.entry(who.to_string()).or_insert(Bucket { tokens: self.burst, at: now });
        let elapsed = (now - b.at).max(0) as f64 / 1000.0;
        b.tokens = (b.tokens + elapsed * self.per_s).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            *self.refused.entry(who.to_string()).or_default() += 1;
            false
        }
    }

    /// The refusals counted since the last call, by identity.
    pub fn take_refused(&mut self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self.refused.drain().collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate_per_identity() {
        let mut b = Buckets::new(2.0, 5.0);
        let allowed = (0..10).filter(|_| b.allow("mallory", 0)).count();
        assert_eq!(allowed, 5, "the burst");
        assert!(b.allow("alice", 0), "others are not held back");
        assert!(!b.allow("mallory", 100), "a tenth of a second refills a fifth of a token");
        assert!(b.allow("mallory", 600), "half a second refills one");
        assert_eq!(b.take_refused(), [("mallory".to_string(), 6)]);
        assert!(b.take_refused().is_empty());
        assert_eq!(
            (0..10).filter(|_| b.allow("mallory", 60_000)).count(),
            5,
            "never past the burst"
        );
    }
}
