//! The outbox/ack state machine.
//!
//! Design: the store is the outbox; this machine only tracks which items are *in flight* (sent,
//! not yet acknowledged end to end). It never deletes anything: the driver removes items from the
//! store when [`SyncState::on_ack`] says the server committed them.
//!
//! - At most `max_in_flight` items are in flight; alerts are always sent, past the window, so a
//!   backlog of pictures can never hold one back.
//! - An item not acknowledged within `ack_timeout_ms` is sent again (the server may have lost it
//!   before committing; its ingestion is idempotent, so a duplicate costs only bytes).
//! - When the link drops, nothing is in flight any more: everything pending is sent again after
//!   the reconnect.
use std::collections::BTreeMap;
use trailer_wire::AckRef;

#[derive(Debug)]
pub struct SyncState {
    connected: bool,
    in_flight: BTreeMap<AckRef, i64>,
    max_in_flight: usize,
    ack_timeout_ms: i64,
}

impl SyncState {
    pub fn new(max_in_flight: usize, ack_timeout_ms: i64) -> SyncState {
        SyncState { connected: false, in_flight: BTreeMap::new(), max_in_flight, ack_timeout_ms }
    }

    pub fn connected(&self) -> bool {
        self.connected
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub fn is_in_flight(&self, r: &AckRef) -> bool {
        self.in_flight.contains_key(r)
    }

    pub fn on_connected(&mut self) {
        self.connected = true;
        self.in_flight.clear();
    }

    pub fn on_disconnected(&mut self) {
        self.connected = false;
        self.in_flight.clear();
    }

    /// Items whose ack timed out are no longer in flight: they will be picked again.
    pub fn expire(&mut self, now: i64) -> usize {
        let before = self.in_flight.len();
        let timeout = self.ack_timeout_ms;
        self.in_flight.retain(|_, sent| now - *sent < timeout);
        before - self.in_flight.len()
    }

    /// Chooses what to send from `pending` (in the store's priority order).
    pub fn choose(&self, pending: &[AckRef]) -> Vec<AckRef> {
        if !self.connected {
            return Vec::new();
        }
        let mut room = self.max_in_flight.saturating_sub(self.in_flight.len());
        let mut out = Vec::new();
        for r in pending {
            if self.in_flight.contains_key(r) {
                continue;
            }
            if matches!(r, AckRef::Alert(_)) {
                out.push(*r);
            } else if room > 0 {
                out.push(*r);
                room -= 1;
            }
        }
        out
    }

    pub fn on_sent(&mut self, sent: &[AckRef], now: i64) {
        for r in sent {
            self.in_flight.insert(*r, now);
        }
    }

    /// The server acknowledged `refs`: they are done and may leave the outbox.
    pub fn on_ack(&mut self, refs: &[AckRef]) -> Vec<AckRef> {
        for r in refs {
            self.in_flight.remove(r);
        }
        refs.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailer_wire::PictureKind;

    #[test]
    fn window_bounds_sends_but_alerts_pass() {
        let mut s = SyncState::new(2, 1000);
        let pending = [AckRef::Read(1), AckRef::Read(2), AckRef::Picture(1, PictureKind::Context)];
        assert!(s.choose(&pending).is_empty(), "nothing is sent while offline");
        s.on_connected();
        let first = s.choose(&pending);
        assert_eq!(first, vec![AckRef::Read(1), AckRef::Read(2)]);
        s.on_sent(&first, 0);
        assert!(s.choose(&pending).is_empty(), "window full");
        let with_alert = [AckRef::Alert(9), AckRef::Read(1), AckRef::Read(2)];
        assert_eq!(s.choose(&with_alert), vec![AckRef::Alert(9)]);
    }

    #[test]
    fn acks_free_the_window_and_timeouts_resend() {
        let mut s = SyncState::new(1, 1000);
        s.on_connected();
        s.on_sent(&[AckRef::Read(1)], 0);
        assert_eq!(s.expire(999), 0);
        assert_eq!(s.expire(1000), 1);
        assert_eq!(s.choose(&[AckRef::Read(1)]), vec![AckRef::Read(1)]);
        s.on_sent(&[AckRef::Read(1)], 1000);
        assert_eq!(s.on_ack(&[AckRef::Read(1)]), vec![AckRef::Read(1)]);
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn reconnect_resends_everything_pending() {
        let mut s = SyncState::new(4, 60_000);
        s.on_connected();
        s.on_sent(&[AckRef::Read(1), AckRef::Read(2)], 0);
        s.on_disconnected();
        assert_eq!(s.in_flight(), 0);
        s.on_connected();
        assert_eq!(s.choose(&[AckRef::Read(1), AckRef::Read(2)]).len(), 2);
    }
}
