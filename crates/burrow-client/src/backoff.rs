//! Pauses between failover attempts: doubling from a floor to a ceiling,
//! each one jittered, so many clients that lost the same leader do not
//! retry in step and the cluster is not hit by a wave per round.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The next pause, and the state to compute the one after it.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    /// The ceiling of the next pause before jitter.
    next: Duration,
    max: Duration,
    /// xorshift64 state: jitter needs no quality, only independence
    /// between clients (seeded from the process's random hasher keys).
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id().into());
        Backoff { next: min.max(Duration::from_millis(1)), max: max.max(min), rng: h.finish() | 1 }
    }

    /// A pause drawn uniformly from the upper half of the current ceiling
    /// (never less than half the floor); the ceiling then doubles up to
    /// the maximum.
    pub(crate) fn pause(&mut self) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let ceiling = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = ceiling / 2;
        half + Duration::from_nanos(self.rng % (half.as_nanos() as u64).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_to_the_ceiling_and_are_jittered() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(10), ms(80));
        let ceilings = [10, 20, 40, 80, 80, 80];
        let mut seen = Vec::new();
        for c in ceilings {
            let p = b.pause();
            assert!(p >= ms(c) / 2 && p <= ms(c), "pause {p:?} outside [{}/2, {c}] ms", c);
            seen.push(p);
        }
        // The three pauses at the ceiling are not all equal: jitter.
        assert!(seen[3..].windows(2).any(|w| w[0] != w[1]), "{seen:?}");
    }

    #[test]
    fn two_clients_draw_different_pauses() {
        let ms = Duration::from_millis;
        let (mut a, mut b) = (Backoff::new(ms(100), ms(100)), Backoff::new(ms(100), ms(100)));
        let a: Vec<_> = (0..8).map(|_| a.pause()).collect();
        let b: Vec<_> = (0..8).map(|_| b.pause()).collect();
        assert_ne!(a, b);
    }
}
