//! The one clock commands are timed with (latency histograms and SLOWLOG):
//! the CPU's time-stamp counter where it is invariant, read with one
//! instruction, else `CLOCK_MONOTONIC` in nanoseconds.
//!
//! A command costs one counter read and one subtraction; ticks become
//! nanoseconds only where a figure leaves the server (a SLOWLOG entry, INFO,
//! a scrape). The TSC rate is measured once, against `CLOCK_MONOTONIC`, the
//! first time [`clock`] is called (server start). Hand-written rather than
//! `quanta`: its `Clock::raw` is the same `rdtsc` behind a three-way match,
//! and it would bring `raw-cpuid`, `crossbeam-utils` and `once_cell` for what
//! is here a flag test and one division.

use std::sync::OnceLock;
use std::time::Duration;

/// How long the TSC is watched against `CLOCK_MONOTONIC` at start: long
/// enough that the clocks' read jitter (well under 1 µs) is below 10⁻⁴.
const CALIBRATION: Duration = Duration::from_millis(10);

/// The clock and its rate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    /// Ticks are TSC cycles (else `CLOCK_MONOTONIC` nanoseconds).
    tsc: bool,
    /// Nanoseconds per tick.
    ns_per_tick: f64,
    /// `2^64 / ticks per µs`, rounded up: `(ticks × this) >> 64` is whole
    /// microseconds with one multiplication (histogram buckets).
    us_per_tick_q64: u64,
}

static CLOCK: OnceLock<Clock> = OnceLock::new();

/// The process's clock, calibrated on first use.
pub(crate) fn clock() -> &'static Clock {
    CLOCK.get_or_init(Clock::calibrate)
}

impl Clock {
    fn calibrate() -> Clock {
        match tsc_rate() {
            Some(ns_per_tick) => Clock::with_rate(true, ns_per_tick),
            None => Clock::with_rate(false, 1.0),
        }
    }

    fn with_rate(tsc: bool, ns_per_tick: f64) -> Clock {
        let ticks_per_us = 1000.0 / ns_per_tick;
        let q = (2f64.powi(64) / ticks_per_us).ceil();
        Clock { tsc, ns_per_tick, us_per_tick_q64: if q >= u64::MAX as f64 { u64::MAX } else { q as u64 } }
    }

    /// The counter now. Only differences mean anything.
    #[inline(always)]
    pub(crate) fn now(&self) -> u64 {
        if self.tsc {
            read_tsc()
        } else {
            mono_nanos()
        }
    }

    /// Ticks from `*since` to now; moves `*since` to now, so one read per
    /// command times a whole batch. Saturates: counters of two cores that
    /// disagree by a few cycles never make a huge time.
    #[inline(always)]
    pub(crate) fn lap(&self, since: &mut u64) -> u64 {
        let now = self.now();
        let took = now.saturating_sub(*since);
        *since = now;
        took
    }

    /// Whether ticks are TSC cycles (INFO shows the source).
    pub(crate) fn is_tsc(&self) -> bool {
        self.tsc
    }

    pub(crate) fn nanos(&self, ticks: u64) -> u64 {
        if self.tsc {
            (ticks as f64 * self.ns_per_tick).min(u64::MAX as f64) as u64
        } else {
            ticks
        }
    }

    pub(crate) fn duration(&self, ticks: u64) -> Duration {
        Duration::from_nanos(self.nanos(ticks))
    }

    /// Ticks in `d`, saturating (thresholds converted once, not per command).
    pub(crate) fn ticks_in(&self, d: Duration) -> u64 {
        (d.as_nanos() as f64 / self.ns_per_tick).min(u64::MAX as f64) as u64
    }

    /// Whole microseconds in `ticks` (rounded down): one multiplication.
    #[inline(always)]
    pub(crate) fn micros(&self, ticks: u64) -> u64 {
        ((ticks as u128 * self.us_per_tick_q64 as u128) >> 64) as u64
    }
}

/// `CLOCK_MONOTONIC` (what `Instant` reads) as nanoseconds in one `u64`.
#[inline]
pub(crate) fn mono_nanos() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn read_tsc() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU; it only reads a counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn read_tsc() -> u64 {
    mono_nanos()
}

/// Nanoseconds per TSC cycle, when the TSC can time commands: x86_64, the
/// CPU says it runs at one rate whatever the power state (`constant_tsc`,
/// `nonstop_tsc`), and the kernel chose it as its clock source (it checks
/// that the CPUs' counters agree, so a command may start on one core and
/// end on another).
fn tsc_rate() -> Option<f64> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let source =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource").ok()?;
    if !tsc_usable(&cpuinfo, &source) {
        return None;
    }
    let (m0, t0) = paired_read();
    std::thread::sleep(CALIBRATION);
    let (m1, t1) = paired_read();
    let (ns, ticks) = (m1.checked_sub(m0)?, t1.checked_sub(t0)?);
    // A TSC slower than 10 MHz or faster than 100 GHz is not one to trust.
    let rate = ns as f64 / ticks as f64;
    (ticks > 0 && (0.01..=100.0).contains(&rate)).then_some(rate)
}

/// The flags and clock source [`tsc_rate`] requires.
fn tsc_usable(cpuinfo: &str, clocksource: &str) -> bool {
    let flags = cpuinfo.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    has("constant_tsc") && has("nonstop_tsc") && clocksource.trim() == "tsc"
}

/// `CLOCK_MONOTONIC` and the TSC read as close together as possible (the
/// TSC between two monotonic reads, paired with their midpoint).
fn paired_read() -> (u64, u64) {
    let a = mono_nanos();
    let t = read_tsc();
    let b = mono_nanos();
    (a + (b - a) / 2, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_convert_back_to_the_time_that_passed() {
        let c = clock();
        let (m0, t0) = (mono_nanos(), c.now());
        std::thread::sleep(Duration::from_millis(20));
        let (t1, m1) = (c.now(), mono_nanos());
        let measured = c.nanos(t1 - t0) as f64;
        let real = (m1 - m0) as f64;
        assert!(
            (measured / real - 1.0).abs() < 0.02,
            "{measured} ns by ticks, {real} ns by the monotonic clock"
        );
        // A Duration holds whole nanoseconds: at a few ticks per nanosecond
        // the round trip may lose that many ticks, never more.
        let back = c.ticks_in(c.duration(1_000_000));
        let per_ns = c.ticks_in(Duration::from_micros(1)).div_ceil(1000);
        assert!(back.abs_diff(1_000_000) <= per_ns + 1, "1,000,000 ticks came back as {back}");
    }

    #[test]
    fn micros_round_down_with_one_multiplication() {
        let ns = Clock::with_rate(false, 1.0);
        for (ticks, us) in [(0, 0), (999, 0), (1000, 1), (1999, 1), (2000, 2), (4_194_303_999, 4_194_303)] {
            assert_eq!(ns.micros(ticks), us, "{ticks} ns");
        }
        let tsc = Clock::with_rate(true, 0.5); // 2 GHz
        assert_eq!((tsc.micros(1999), tsc.micros(2000), tsc.micros(2_000_000)), (0, 1, 1000));
        assert_eq!(tsc.nanos(2000), 1000);
        assert_eq!(tsc.ticks_in(Duration::from_micros(10)), 20_000);
    }

    #[test]
    fn the_tsc_is_used_only_when_invariant_and_the_kernels_clock() {
        let cpu = "processor : 0\nflags\t\t: fpu tsc constant_tsc nonstop_tsc rdtscp\n";
        assert!(tsc_usable(cpu, "tsc\n"));
        assert!(!tsc_usable(cpu, "hpet\n"), "the kernel distrusts it");
        assert!(!tsc_usable("flags : fpu tsc constant_tsc\n", "tsc"), "stops in deep sleep");
        assert!(!tsc_usable("flags : fpu tsc nonstop_tsc_x constant_tsc\n", "tsc"), "whole words only");
    }
}
