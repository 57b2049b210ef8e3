//! A log line that clients can cause as often as they like is written at
//! most once per period, with the count of the ones left out: out of file
//! descriptors, `accept` fails as fast as it is retried (issue 11 saw ~20
//! lines a second), and every connection cut for unread replies is one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a rate-limited line may be written.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct LogLimit {
    every: Duration,
    last: Mutex<Option<Instant>>,
    /// Events since the last line written.
    skipped: AtomicU64,
}

impl LogLimit {
    pub(crate) const fn new(every: Duration) -> Self {
        LogLimit { every, last: Mutex::new(None), skipped: AtomicU64::new(0) }
    }

    /// Counts one event; `Some(n)` when it may be logged, `n` being the
    /// events left unlogged since the last line.
    pub(crate) fn allow(&self, now: Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(at) if now.saturating_duration_since(at) < self.every => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.skipped.swap(0, Ordering::Relaxed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_with_the_count_left_out() {
        let l = LogLimit::new(Duration::from_secs(10));
        let t = Instant::now();
        assert_eq!(l.allow(t), Some(0));
        for i in 1..=20 {
            assert_eq!(l.allow(t + Duration::from_millis(50 * i)), None);
        }
        assert_eq!(l.allow(t + Duration::from_secs(10)), Some(20));
        assert_eq!(l.allow(t + Duration::from_secs(11)), None);
    }
}
