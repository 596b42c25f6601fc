//! Deployments from GPS: a trailer that moves further than `move_m` from where it stood has ended
//! its deployment (it is being towed); once its fixes stay within `move_m / 4` of each other for
//! `settle_s`, it stands at a new place and a new deployment starts. Collection stops in between:
//! a trailer is a stationary reader, and the public log of use and the list of locations record
//! where it stood.
//!
//! Pure logic over timed positions; the daemon feeds it the live fix once a second and records
//! the events. Configured (non-GPS) positions never move a trailer.
use serde::{Deserialize, Serialize};
use trailer_wire::{DeploymentEventKind, FixQuality, Position};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DeploymentConfig {
    /// A GPS fix further than this (metres) from where the trailer stood ends its deployment.
    pub move_m: f64,
    /// A moved trailer whose fixes stay within a quarter of `move_m` for this long (seconds)
    /// starts a new deployment there.
    pub settle_s: u64,
}

impl Default for DeploymentConfig {
    fn default() -> Self {
        // GPS wanders by tens of metres under trees and beside buildings; 150 m is a different
        // place on the road.
        DeploymentConfig { move_m: 150.0, settle_s: 300 }
    }
}

/// Great-circle distance in metres (haversine on a 6,371 km sphere: plenty for hundreds of m).
pub fn distance_m(a: Position, b: Position) -> f64 {
    let (la1, la2) = (a.lat().to_radians(), b.lat().to_radians());
    let dla = la2 - la1;
    let dlo = (b.lon() - a.lon()).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * h.sqrt().min(1.0).asin()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// No GPS fix seen yet: the trailer stands wherever the configuration says.
    Unknown,
    Standing {
        at: Position,
    },
    Moving {
        last: Position,
        still_since: i64,
    },
}

#[derive(Debug)]
pub struct DeploymentTracker {
    cfg: DeploymentConfig,
    state: State,
}

impl DeploymentTracker {
    pub fn new(cfg: DeploymentConfig) -> DeploymentTracker {
        DeploymentTracker { cfg, state: State::Unknown }
    }

    /// Whether the trailer is between deployments (collection stopped).
    pub fn moving(&self) -> bool {
        matches!(self.state, State::Moving { .. })
    }

    /// Takes the position at `now_ms`; returns a deployment event if this one made it.
    pub fn observe(&mut self, now_ms: i64, p: Position) -> Option<DeploymentEventKind> {
        if !matches!(p.fix, FixQuality::Fix2d | FixQuality::Fix3d) {
            return None;
        }
        match self.state {
            State::Unknown => {
                self.state = State::Standing { at: p };
                None
            }
            State::Standing { at } => {
                if distance_m(at, p) > self.cfg.move_m {
                    self.state = State::Moving { last: p, still_since: now_ms };
                    Some(DeploymentEventKind::End)
                } else {
                    None
                }
            }
            State::Moving { last, still_since } => {
                if distance_m(last, p) > self.cfg.move_m / 4.0 {
                    self.state = State::Moving { last: p, still_since: now_ms };
                    None
                } else if now_ms - still_since >= self.cfg.settle_s as i64 * 1000 {
                    self.state = State::Standing { at: p };
                    Some(DeploymentEventKind::Start)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64) -> Position {
        Position::from_degrees(lat, -93.27, FixQuality::Fix3d)
    }

    #[test]
    fn distances_are_metres() {
        // A thousandth of a degree of latitude is about 111 m.
        let d = distance_m(at(45.0), at(45.001));
        assert!((d - 111.2).abs() < 0.5, "{d}");
        assert_eq!(distance_m(at(45.0), at(45.0)), 0.0);
    }

    #[test]
    fn wander_is_not_a_move_a_tow_ends_and_a_stop_starts_a_deployment() {
        let cfg = DeploymentConfig { move_m: 150.0, settle_s: 60 };
        let mut t = DeploymentTracker::new(cfg);
        assert_eq!(t.observe(0, at(45.0)), None, "the first fix places the trailer");
        // GPS wander of ~50 m.
        assert_eq!(t.observe(1_000, at(45.0005)), None);
        assert_eq!(t.observe(2_000, at(44.9996)), None);
        assert!(!t.moving());
        // Towed away: 330 m.
        assert_eq!(t.observe(3_000, at(45.003)), Some(DeploymentEventKind::End));
        assert!(t.moving());
        // Still moving: each fix far from the last.
        assert_eq!(t.observe(4_000, at(45.006)), None);
        assert_eq!(t.observe(70_000, at(45.010)), None);
        // Stands still (small wander), but not yet for a minute.
        assert_eq!(t.observe(100_000, at(45.0101)), None);
        assert!(t.moving());
        assert_eq!(t.observe(130_000, at(45.0100)), Some(DeploymentEventKind::Start));
        assert!(!t.moving());
        assert_eq!(t.observe(131_000, at(45.0101)), None);
    }

    #[test]
    fn configured_positions_never_move_a_trailer() {
        let mut t = DeploymentTracker::new(DeploymentConfig::default());
        t.observe(0, at(45.0));
        let far = Position::from_degrees(46.0, -93.0, FixQuality::Configured);
        assert_eq!(t.observe(1_000, far), None);
        assert_eq!(t.observe(2_000, Position { fix: FixQuality::None, ..far }), None);
        assert!(!t.moving());
    }
}
