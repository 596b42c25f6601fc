//! The outbox/ack state machine.
//!
//! Design: the store is the outbox; this machine only tracks which items are *in flight* (sent,
//! not yet acknowledged end to end). It never deletes anything: the driver removes items from the
//! store when [`SyncState::on_ack`] says the server committed them.
//!
//! - At most `max_in_flight` items and `max_in_flight_bytes` bytes are in flight. The byte bound
//!   keeps the link's queue short, so on a slow cellular link an alert never waits behind
//!   megabytes of pictures; alerts themselves are always sent, past both bounds.
//! - An item not acknowledged within `ack_timeout_ms` is sent again (the server may have lost it
//!   before committing; its ingestion is idempotent, so a duplicate costs only bytes). The clock
//!   of a timeout runs only while no ack arrives at all: on a slow link that is still delivering,
//!   items queued behind others are not declared lost.
//! - A byte budget per hour (metered cellular plans): once the bytes sent in the last hour reach
//!   it, read metadata and pictures wait; alerts and the small compliance records (periods of
//!   use, deployment events, downlink answers) still go.
//! - When the link drops, nothing is in flight any more: everything pending is sent again after
//!   the reconnect. Reconnects back off (doubling, jittered by the driver) up to a ceiling.
use std::collections::{BTreeMap, VecDeque};
use trailer_wire::AckRef;

/// The window and timing of the sync link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_in_flight: usize,
    pub max_in_flight_bytes: usize,
    pub ack_timeout_ms: i64,
    pub reconnect_initial_ms: u64,
    pub reconnect_max_ms: u64,
    /// Bytes per rolling hour for everything but alerts and compliance records; 0: no limit.
    pub budget_bytes_per_hour: u64,
}

const HOUR_MS: i64 = 3_600_000;

#[derive(Debug)]
pub struct SyncState {
    connected: bool,
    /// Sent, not yet acknowledged: when, and how many bytes.
    in_flight: BTreeMap<AckRef, (i64, usize)>,
    bytes: usize,
    /// The last sign of progress: the connection, or an ack.
    progress: i64,
    backoff: trailer_wire::backoff::Backoff,
    /// Bytes sent in the last hour, with when.
    spent: VecDeque<(i64, u64)>,
    spent_total: u64,
    limits: Limits,
}

impl SyncState {
    pub fn new(limits: Limits) -> SyncState {
        SyncState {
            connected: false,
            in_flight: BTreeMap::new(),
            bytes: 0,
            progress: 0,
            // Jitter: up to half of each step off, so a fleet coming back after an outage
            // does not reconnect in step.
            backoff: trailer_wire::backoff::Backoff::new(
                std::time::Duration::from_millis(limits.reconnect_initial_ms),
                std::time::Duration::from_millis(limits.reconnect_max_ms),
            )
            .with_jitter(0.5),
            spent: VecDeque::new(),
            spent_total: 0,
            limits,
        }
    }

    pub fn connected(&self) -> bool {
        self.connected
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub fn in_flight_bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_in_flight(&self, r: &AckRef) -> bool {
        self.in_flight.contains_key(r)
    }

    pub fn on_connected(&mut self, now: i64) {
        self.connected = true;
        self.clear();
        self.progress = now;
        self.backoff.succeeded();
    }

    /// The link dropped (or could not be made). Returns how many milliseconds to wait before
    /// the next attempt, `u` (a random number in 0..1) drawing its jitter.
    pub fn on_disconnected(&mut self, u: f64) -> u64 {
        self.connected = false;
        self.clear();
        self.backoff.failed(u).as_millis() as u64
    }

    fn clear(&mut self) {
        self.in_flight.clear();
        self.bytes = 0;
    }

    /// Items whose ack timed out, with no ack at all meanwhile, are no longer in flight: they
    /// will be picked again. Returns how many.
    pub fn expire(&mut self, now: i64) -> usize {
        let timeout = self.limits.ack_timeout_ms;
        if now - self.progress < timeout {
            return 0;
        }
        let before = self.in_flight.len();
        let mut freed = 0;
        self.in_flight.retain(|_, (sent, bytes)| {
            let keep = now - *sent < timeout;
            if !keep {
                freed += *bytes;
            }
            keep
        });
        self.bytes -= freed;
        before - self.in_flight.len()
    }

    /// Bytes counted against the budget in the hour before `now`.
    pub fn spent_last_hour(&mut self, now: i64) -> u64 {
        while let Some(&(at, b)) = self.spent.front() {
            if now - at < HOUR_MS {
                break;
            }
            self.spent.pop_front();
            self.spent_total -= b;
        }
        self.spent_total
    }

    /// Whether `r`, encoded in `bytes`, may be sent at `now`. `requested` (a picture an operator
    /// asked for) passes the hourly budget, not the window.
    pub fn may_send(&mut self, r: &AckRef, bytes: usize, now: i64, requested: bool) -> bool {
        if !self.connected || self.in_flight.contains_key(r) {
            return false;
        }
        if matches!(r, AckRef::Alert(_)) {
            return true;
        }
        let compliance =
            matches!(r, AckRef::ActiveUse(_) | AckRef::Deployment(_) | AckRef::Downlink(_));
        let budget = self.limits.budget_bytes_per_hour;
        if !compliance
            && !requested
            && budget > 0
            && self.spent_last_hour(now) + bytes as u64 > budget
        {
            return false;
        }
        // One item may always go when nothing is in flight, however large.
        self.in_flight.is_empty()
            || (self.in_flight.len() < self.limits.max_in_flight
                && self.bytes + bytes <= self.limits.max_in_flight_bytes)
    }

    /// Whether a non-alert item could be sent at all (the window has room).
    pub fn has_room(&self) -> bool {
        self.connected
            && (self.in_flight.is_empty()
                || (self.in_flight.len() < self.limits.max_in_flight
                    && self.bytes < self.limits.max_in_flight_bytes))
    }

    /// `sent` went out together in one message of `bytes`.
    pub fn on_sent(&mut self, sent: &[AckRef], bytes: usize, now: i64) {
        self.spent.push_back((now, bytes as u64));
        self.spent_total += bytes as u64;
        let share = bytes / sent.len().max(1);
        for r in sent {
            if let Some((_, old)) = self.in_flight.insert(*r, (now, share)) {
                self.bytes -= old;
            }
            self.bytes += share;
        }
    }

    /// The server acknowledged `refs`: they are done and may leave the outbox.
    pub fn on_ack(&mut self, refs: &[AckRef], now: i64) -> Vec<AckRef> {
        self.progress = now;
        for r in refs {
            if let Some((_, b)) = self.in_flight.remove(r) {
                self.bytes -= b;
            }
        }
        refs.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailer_wire::PictureKind;

    fn limits(items: usize, bytes: usize, timeout: i64) -> Limits {
        Limits {
            max_in_flight: items,
            max_in_flight_bytes: bytes,
            ack_timeout_ms: timeout,
            reconnect_initial_ms: 500,
            reconnect_max_ms: 4000,
            budget_bytes_per_hour: 0,
        }
    }

    #[test]
    fn window_bounds_items_and_bytes_but_alerts_pass() {
        let mut s = SyncState::new(limits(2, 1000, 1000));
        let (r1, r2, pic) =
            (AckRef::Read(1), AckRef::Read(2), AckRef::Picture(1, PictureKind::Context));
        assert!(!s.may_send(&r1, 10, 0, false), "nothing is sent while offline");
        s.on_connected(0);
        assert!(s.may_send(&r1, 10, 0, false));
        s.on_sent(&[r1], 10, 0);
        assert!(!s.may_send(&r1, 10, 0, false), "already in flight");
        assert!(!s.may_send(&pic, 995, 0, false), "the byte window is full");
        s.on_sent(&[r2], 10, 0);
        assert!(
            !s.has_room() && !s.may_send(&pic, 1, 0, false),
            "two items: the item window is full"
        );
        assert!(s.may_send(&AckRef::Alert(9), 50_000, 0, false), "alerts pass both bounds");
        s.on_ack(&[r1, r2], 1);
        assert_eq!((s.in_flight(), s.in_flight_bytes()), (0, 0));
        assert!(
            s.may_send(&pic, 50_000, 0, false),
            "one item always goes when nothing is in flight"
        );
    }

    #[test]
    fn the_hourly_budget_holds_reads_and_pictures_but_not_alerts_or_records() {
        let mut s =
            SyncState::new(Limits { budget_bytes_per_hour: 1000, ..limits(100, 1 << 20, 1000) });
        s.on_connected(0);
        assert!(s.may_send(&AckRef::Read(1), 900, 0, false));
        s.on_sent(&[AckRef::Read(1)], 900, 0);
        s.on_ack(&[AckRef::Read(1)], 10);
        assert!(!s.may_send(&AckRef::Read(2), 200, 10, false), "900 + 200 is over the hour's 1000");
        assert!(s.may_send(&AckRef::Read(2), 100, 10, false), "100 more fits");
        assert!(s.may_send(&AckRef::Alert(3), 5000, 10, false), "alerts are never held");
        assert!(s.may_send(&AckRef::ActiveUse(4), 300, 10, false), "periods of use are never held");
        let crop = AckRef::Picture(9, PictureKind::PlateCrop);
        assert!(s.may_send(&crop, 300, 10, true), "a requested picture is not held");
        assert!(!s.may_send(&AckRef::Picture(1, PictureKind::PlateCrop), 300, 3_599_999, false));
        assert!(
            s.may_send(&AckRef::Picture(1, PictureKind::PlateCrop), 300, 3_600_000, false),
            "an hour later"
        );
        assert_eq!(s.spent_last_hour(3_600_000), 0);
    }

    #[test]
    fn timeouts_resend_only_without_progress() {
        let mut s = SyncState::new(limits(8, 1 << 20, 1000));
        s.on_connected(0);
        s.on_sent(&[AckRef::Read(1), AckRef::Read(2)], 100, 0);
        assert_eq!(s.expire(999), 0);
        // An ack for another item at 900 shows the link delivers: the others wait longer.
        s.on_ack(&[AckRef::Read(2)], 900);
        assert_eq!(s.expire(1500), 0, "progress 600 ms ago");
        assert_eq!(s.expire(1900), 1, "no progress for the timeout");
        assert_eq!(s.in_flight_bytes(), 0);
        assert!(s.may_send(&AckRef::Read(1), 50, 2000, false));
    }

    #[test]
    fn reconnect_resends_everything_pending_and_backs_off_to_a_ceiling() {
        let mut s = SyncState::new(limits(4, 1 << 20, 60_000));
        s.on_connected(0);
        s.on_sent(&[AckRef::Read(1), AckRef::Read(2)], 10, 0);
        assert_eq!(s.on_disconnected(0.0), 500);
        assert_eq!(s.in_flight(), 0);
        assert_eq!(
            [s.on_disconnected(0.0), s.on_disconnected(1.0), s.on_disconnected(0.0)],
            [1000, 1000, 4000],
            "the second drew the whole jitter: half of its 2 s step"
        );
        assert_eq!(s.on_disconnected(0.0), 4000, "the ceiling");
        s.on_connected(10);
        assert!(
            s.may_send(&AckRef::Read(1), 10, 10, false)
                && s.may_send(&AckRef::Read(2), 10, 10, false)
        );
        assert_eq!(s.on_disconnected(0.0), 500, "a connection resets the backoff");
    }
}
