//! Latency histograms with power-of-two microsecond buckets: a bucket is
//! found with one `leading_zeros`, so recording costs a few instructions
//! and no float work. The same buckets feed Prometheus (`--metrics-addr`)
//! and INFO's per-command percentiles, which are therefore bucket upper
//! bounds (within a factor of two).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Finite buckets `le = 2^i µs` for `i` in `0..FINITE` (1 µs … about 4.2 s),
/// then `+Inf`.
const FINITE: usize = 23;
/// Buckets including `+Inf`.
pub(crate) const BUCKETS: usize = FINITE + 1;
/// Counters a [`Histogram`] keeps: one per value of [`bucket_raw_us`]
/// (0..=64), so recording needs no clamp; those from `FINITE` up are
/// `+Inf`, folded when read.
const RAW: usize = u64::BITS as usize + 1;

/// The bucket of a duration in nanoseconds.
#[inline]
pub(crate) fn bucket(nanos: u64) -> usize {
    bucket_us(nanos / 1000)
}

/// The bucket of a duration in whole microseconds.
#[inline]
pub(crate) fn bucket_us(us: u64) -> usize {
    ((u64::BITS - us.leading_zeros()) as usize).min(FINITE)
}

/// [`bucket_us`] before the clamp: any value is a valid index of a
/// [`Histogram`]'s counters (the per-command hot path records with it).
#[inline]
pub(crate) fn bucket_raw_us(us: u64) -> usize {
    (u64::BITS - us.leading_zeros()) as usize
}

/// Upper bound of bucket `i` in microseconds (`None` for `+Inf`).
pub(crate) fn upper_bound_us(i: usize) -> Option<u64> {
    (i < FINITE).then(|| 1u64 << i)
}

/// Nanoseconds of a duration, saturating.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A histogram many threads may record into (relaxed atomics).
#[derive(Debug)]
pub(crate) struct Histogram {
    counts: [AtomicU64; RAW],
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: std::array::from_fn(|_| AtomicU64::new(0)), sum_nanos: AtomicU64::new(0) }
    }
}

impl Histogram {
    /// Records from any thread.
    pub(crate) fn observe(&self, nanos: u64) {
        self.counts[bucket(nanos)].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Records where this thread is the only writer (a per-thread slot):
    /// a plain load and store, no locked instruction. Readers on other
    /// threads see whole values, possibly a little late. `amount` goes to
    /// the sum in whatever unit the owner keeps it (commands: clock ticks,
    /// converted when read). `bucket`: from [`bucket_us`] or [`bucket_raw_us`].
    #[inline]
    pub(crate) fn observe_single_writer(&self, bucket: usize, amount: u64) {
        bump(&self.counts[bucket], 1);
        bump(&self.sum_nanos, amount);
    }

    /// Adds the current counts to `into`.
    pub(crate) fn add_to(&self, into: &mut Snapshot) {
        for (i, c) in self.counts.iter().enumerate() {
            into.counts[i.min(FINITE)] += c.load(Ordering::Relaxed);
        }
        into.sum_nanos += self.sum_nanos.load(Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::default();
        self.add_to(&mut s);
        s
    }
}

/// `a += n` for a counter only this thread writes.
#[inline]
pub(crate) fn bump(a: &AtomicU64, n: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Counts read at one moment (per bucket, not cumulative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub counts: [u64; BUCKETS],
    pub sum_nanos: u64,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot { counts: [0; BUCKETS], sum_nanos: 0 }
    }
}

impl Snapshot {
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Upper bound (µs) of the bucket holding quantile `q` (0..1); `None`
    /// when empty or when it falls in `+Inf`.
    pub(crate) fn quantile_us(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        // The rank of the sample at quantile q, 1-based.
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper_bound_us(i);
            }
        }
        None
    }

    /// `(upper bound in seconds, count)` per bucket, `+Inf` last, as
    /// `prometheus-client` encodes them.
    pub(crate) fn buckets_seconds(&self) -> Vec<(f64, u64)> {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, c)| (upper_bound_us(i).map_or(f64::INFINITY, |us| us as f64 / 1e6), *c))
            .collect()
    }

    pub(crate) fn sum_seconds(&self) -> f64 {
        self.sum_nanos as f64 / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_their_values() {
        for nanos in [0, 1, 999, 1000, 1999, 2000, 3999, 4000, 1_000_000, 4_194_303_999] {
            let i = bucket(nanos);
            let bound = upper_bound_us(i).expect("finite") * 1000;
            assert!(nanos < bound, "{nanos} ns in bucket {i} (< {bound} ns)");
            if i > 0 {
                assert!(nanos >= upper_bound_us(i - 1).unwrap() * 1000 / 2, "{nanos} not in a lower bucket");
            }
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1, "beyond the last bound: +Inf");
        assert_eq!(bucket(5_000_000_000), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_bucket_upper_bounds() {
        let h = Histogram::default();
        assert_eq!(h.snapshot().quantile_us(0.5), None, "empty");
        for _ in 0..98 {
            h.observe(1_500); // ≤ 2 µs
        }
        h.observe_single_writer(bucket(100_000), 100_000); // ≤ 128 µs
        h.observe(10_000_000_000); // +Inf
        h.observe_single_writer(bucket_raw_us(u64::MAX), 0); // +Inf, unclamped
        let s = h.snapshot();
        assert_eq!(s.count(), 101);
        assert_eq!(s.quantile_us(0.5), Some(2));
        assert_eq!(s.quantile_us(0.98), Some(128));
        assert_eq!(s.quantile_us(0.999), None, "in +Inf");
        assert_eq!(s.sum_nanos, 98 * 1_500 + 100_000 + 10_000_000_000);
        let b = s.buckets_seconds();
        assert_eq!(b.len(), BUCKETS);
        assert_eq!(b[1], (2e-6, 98));
        assert_eq!(b.last(), Some(&(f64::INFINITY, 2)));
    }
}
