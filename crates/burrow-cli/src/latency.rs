//! `--latency` and `--latency-history`: PING round trips, one every 10 ms
//! as redis-cli samples them, summed up as `min: 0.051, max: 0.402, avg:
//! 0.083 (1234 samples)`. Burrow answers in well under a millisecond, so
//! unlike redis-cli (whole milliseconds for min and max) every figure is in
//! milliseconds with three decimals.
//!
//! On a terminal the line is rewritten in place after each sample; on a
//! pipe a line is printed once a second instead, so the output stays
//! readable. With `--latency-history` a line ends every `-i` seconds
//! (default 15) with ` -- 15.00 seconds range` and a new sample starts.

use std::io::Write;
use std::time::{Duration, Instant};

use burrow_proto::{Reply, Request};

use super::session::{CliError, Session};

/// The default length of a `--latency-history` sample, as redis-cli.
pub(crate) const HISTORY_SECONDS: f64 = 15.0;
/// Pause between two PINGs.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// How often a line is printed when the output is not a terminal.
const PIPE_EVERY: Duration = Duration::from_secs(1);

/// Round trips of one sample, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stats {
    min: u64,
    max: u64,
    sum: u64,
    count: u64,
}

impl Stats {
    const EMPTY: Stats = Stats { min: u64::MAX, max: 0, sum: 0, count: 0 };

    fn add(&mut self, micros: u64) {
        self.min = self.min.min(micros);
        self.max = self.max.max(micros);
        self.sum += micros;
        self.count += 1;
    }

    fn line(&self) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        let avg = if self.count == 0 { 0.0 } else { ms(self.sum) / self.count as f64 };
        let min = if self.count == 0 { 0 } else { self.min };
        format!("min: {:.3}, max: {:.3}, avg: {avg:.3} ({} samples)", ms(min), ms(self.max), self.count)
    }
}

/// Samples until interrupted. `history`: the length of each sample, or
/// `None` for one sample that never ends (`--latency`).
pub(crate) fn run(
    session: &mut Session,
    history: Option<Duration>,
    tty: bool,
    out: &mut impl Write,
) -> Result<bool, CliError> {
    let ping = [Request::Ping { payload: Default::default() }];
    let mut stats = Stats::EMPTY;
    let mut started = Instant::now();
    let mut printed = Instant::now();
    loop {
        let t = Instant::now();
        let reply = session.exchange(&ping)?;
        let micros = t.elapsed().as_micros().try_into().unwrap_or(u64::MAX);
        if let Some(e @ Reply::Error { .. }) = reply.first() {
            writeln!(out, "\n{}", super::format::render(e, super::format::Style::Human))?;
            return Ok(false);
        }
        stats.add(micros);
        if tty {
            write!(out, "\r\x1b[2K{}", stats.line())?;
            out.flush()?;
        }
        if history.is_some_and(|range| started.elapsed() >= range) {
            let secs = started.elapsed().as_secs_f64();
            let clear = if tty { "\r\x1b[2K" } else { "" };
            writeln!(out, "{clear}{} -- {secs:.2} seconds range", stats.line())?;
            out.flush()?;
            stats = Stats::EMPTY;
            started = Instant::now();
            printed = started;
        } else if !tty && printed.elapsed() >= PIPE_EVERY {
            writeln!(out, "{}", stats.line())?;
            out.flush()?;
            printed = Instant::now();
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_sums_up_the_sample_in_milliseconds() {
        let mut s = Stats::EMPTY;
        assert_eq!(s.line(), "min: 0.000, max: 0.000, avg: 0.000 (0 samples)");
        for us in [80, 120, 400] {
            s.add(us);
        }
        assert_eq!(s.line(), "min: 0.080, max: 0.400, avg: 0.200 (3 samples)");
    }
}
