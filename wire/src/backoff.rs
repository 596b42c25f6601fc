//! How long to wait before trying again: one rule for every reconnecting loop on both ends (the
//! camera, gpsd, the trailer's link, the server's broker connection, a dispatch target). Pure:
//! the caller sleeps, and hands in the randomness for the jitter, so the rule is tested without
//! a clock.
//!
//! A delay starts at `initial`, doubles after every failure up to `max`, and goes back to
//! `initial` once something worked. With jitter, each wait is drawn from the upper
//! `jitter` part of the step (`step * (1 - jitter * u)`, `u` in 0..1), so a fleet that lost its
//! broker together does not come back in step.
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
    step: Duration,
}

impl Backoff {
    /// No jitter: `initial`, then twice as long each time up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let initial = initial.max(Duration::from_millis(1));
        Backoff { initial, max: max.max(initial), jitter: 0.0, step: initial }
    }

    /// Each wait up to `fraction` (0 to 1) shorter than its step, at random.
    pub fn with_jitter(mut self, fraction: f64) -> Backoff {
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// The wait before the next attempt after a failure, `u` a random number in 0..1 (ignored
    /// without jitter); the step after it doubles.
    pub fn failed(&mut self, u: f64) -> Duration {
        let wait = self.step.mul_f64(1.0 - self.jitter * u.clamp(0.0, 1.0));
        self.step = (self.step * 2).min(self.max);
        wait
    }

    /// Something worked: the next failure waits `initial` again.
    pub fn succeeded(&mut self) {
        self.step = self.initial;
    }

    /// The step the next failure starts from.
    pub fn step(&self) -> Duration {
        self.step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_doubles_to_its_ceiling_and_starts_over_after_a_success() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(250), ms(1500));
        let waits: Vec<_> = (0..5).map(|_| b.failed(0.9)).collect();
        assert_eq!(waits, [ms(250), ms(500), ms(1000), ms(1500), ms(1500)]);
        b.succeeded();
        assert_eq!(b.failed(0.0), ms(250));
    }

    #[test]
    fn jitter_shortens_a_wait_by_at_most_its_fraction() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(1000), ms(8000)).with_jitter(0.5);
        assert_eq!(b.failed(0.0), ms(1000));
        assert_eq!(b.failed(1.0), ms(1000), "half of the 2 s step");
        assert_eq!(b.failed(0.5), ms(3000), "a quarter off the 4 s step");
        // Out-of-range draws are held to the range.
        assert_eq!(b.failed(7.0), ms(4000));
    }

    #[test]
    fn a_zero_initial_or_a_ceiling_below_it_is_made_sane() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(b.failed(0.0), Duration::from_millis(1));
        assert_eq!(b.failed(0.0), Duration::from_millis(1));
    }
}
