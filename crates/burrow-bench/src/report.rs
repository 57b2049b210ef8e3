//! Turning a test's merged histogram and counters into numbers, and those
//! numbers into a human table, CSV or JSON.
//!
//! `ops_per_sec` counts only correct replies, so a server that answers fast
//! with errors cannot look fast. Latencies likewise come from correct replies
//! only. JSON is written by hand: the objects are flat and the crate does
//! not otherwise need serde_json.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::workload::TestKind;
use super::Protocol;

/// Everything measured for one test.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub test: TestKind,
    pub protocol: Protocol,
    pub clients: usize,
    pub pipeline: usize,
    pub threads: usize,
    pub data_size: usize,
    /// Requests sent and accounted for: correct replies plus errors.
    pub requests: u64,
    /// Wrong replies, error replies, and requests lost to a broken connection.
    pub errors: u64,
    /// Of the errors, requests lost to a broken connection: their outcome
    /// is unknown (they may have run). A failover shows up here.
    pub unknown: u64,
    /// From the moment every connection was open to the last reply.
    pub elapsed: Duration,
    /// Latency of each correct reply, in nanoseconds.
    pub latency_ns: Histogram<u64>,
    /// What the first wrong reply looked like, to explain `errors`.
    pub first_error: Option<String>,
}

/// The reported figures of one test, in the units printed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub ops_per_sec: f64,
    pub duration_s: f64,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl TestResult {
    pub fn summary(&self) -> Summary {
        let h = &self.latency_ns;
        let ms = |ns: u64| ns as f64 / 1e6;
        let q = |q: f64| if h.is_empty() { 0.0 } else { ms(h.value_at_quantile(q)) };
        let secs = self.elapsed.as_secs_f64();
        let good = self.requests.saturating_sub(self.errors);
        Summary {
            ops_per_sec: if secs > 0.0 { good as f64 / secs } else { 0.0 },
            duration_s: secs,
            min_ms: if h.is_empty() { 0.0 } else { ms(h.min()) },
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
        }
    }
}

/// One block per test, in the spirit of redis-benchmark's summary.
pub fn human(results: &[TestResult]) -> String {
    human_with(results, 3)
}

/// One line per test, as redis-benchmark -q: `SET: 123456.78 requests per
/// second, p50=0.191 msec` (latency with `precision` decimals), then
/// `, N errors` if any request failed.
pub fn quiet(results: &[TestResult], precision: usize) -> String {
    let mut out = String::new();
    for r in results {
        let s = r.summary();
        let _ = write!(
            out,
            "{}: {:.2} requests per second, p50={:.precision$} msec",
            r.test.name().to_uppercase(),
            s.ops_per_sec,
            s.p50_ms
        );
        // Not in redis-benchmark's line, but a fast error must not pass for speed.
        match r.errors {
            0 => out.push('\n'),
            n => {
                let _ = writeln!(out, ", {n} errors");
            }
        }
    }
    out
}

/// [`human`] with latencies shown to `precision` decimals (`--precision`).
pub fn human_with(results: &[TestResult], precision: usize) -> String {
    let p = precision;
    let mut out = String::new();
    for r in results {
        let s = r.summary();
        let _ = writeln!(out, "====== {} ({}) ======", r.test.name().to_uppercase(), r.protocol.name());
        let _ = writeln!(
            out,
            "  {} requests in {:.3} s; {} clients, pipeline {}, {} thread{}, {}-byte values",
            r.requests,
            s.duration_s,
            r.clients,
            r.pipeline,
            r.threads,
            if r.threads == 1 { "" } else { "s" },
            r.data_size
        );
        let _ = writeln!(out, "  throughput: {:.2} ops/s", s.ops_per_sec);
        let _ = writeln!(
            out,
            "  latency ms: min {:.p$}  p50 {:.p$}  p90 {:.p$}  p99 {:.p$}  p99.9 {:.p$}  max {:.p$}",
            s.min_ms, s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms
        );
        match r.unknown {
            0 => {
                let _ = writeln!(out, "  errors: {}", r.errors);
            }
            n => {
                let _ = writeln!(out, "  errors: {} ({n} of unknown outcome: connection lost)", r.errors);
            }
        }
        if let Some(e) = &r.first_error {
            let _ = writeln!(out, "  first error: {e}");
        }
        out.push('\n');
    }
    out
}

const CSV_HEADER: &str = "test,protocol,clients,pipeline,threads,data_size,requests,errors,duration_s,\
                          ops_per_sec,min_ms,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,unknown";

pub fn csv(results: &[TestResult]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in results {
        let s = r.summary();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{:.6},{:.2},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{}",
            r.test.name(),
            r.protocol.name(),
            r.clients,
            r.pipeline,
            r.threads,
            r.data_size,
            r.requests,
            r.errors,
            s.duration_s,
            s.ops_per_sec,
            s.min_ms,
            s.p50_ms,
            s.p90_ms,
            s.p99_ms,
            s.p999_ms,
            s.max_ms,
            r.unknown
        );
    }
    out
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One JSON array, one flat object per test, on a single line.
pub fn json(results: &[TestResult]) -> String {
    let objects: Vec<String> = results
        .iter()
        .map(|r| {
            let s = r.summary();
            format!(
                "{{\"test\":{},\"protocol\":{},\"clients\":{},\"pipeline\":{},\"threads\":{},\"data_size\":{},\
                 \"requests\":{},\"errors\":{},\"duration_s\":{:.6},\"ops_per_sec\":{:.2},\"min_ms\":{:.3},\
                 \"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3},\
                 \"unknown\":{},\"first_error\":{}}}",
                json_str(r.test.name()),
                json_str(r.protocol.name()),
                r.clients,
                r.pipeline,
                r.threads,
                r.data_size,
                r.requests,
                r.errors,
                s.duration_s,
                s.ops_per_sec,
                s.min_ms,
                s.p50_ms,
                s.p90_ms,
                s.p99_ms,
                s.p999_ms,
                s.max_ms,
                r.unknown,
                r.first_error.as_deref().map_or_else(|| "null".to_string(), json_str)
            )
        })
        .collect();
    format!("[{}]\n", objects.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(errors: u64, first_error: Option<&str>) -> TestResult {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap();
        }
        TestResult {
            test: TestKind::Set,
            protocol: Protocol::Burrow,
            clients: 50,
            pipeline: 16,
            threads: 1,
            data_size: 32,
            requests: 1000 + errors,
            errors,
            unknown: errors / 2,
            elapsed: Duration::from_millis(500),
            latency_ns: h,
            first_error: first_error.map(str::to_string),
        }
    }

    #[test]
    fn summary_counts_only_correct_replies() {
        let s = result(0, None).summary();
        assert_eq!(s.ops_per_sec, 2000.0);
        assert!((s.min_ms - 0.001).abs() < 1e-6);
        assert!((s.p50_ms - 0.5).abs() < 0.001, "{}", s.p50_ms);
        assert!((s.p99_ms - 0.99).abs() < 0.001, "{}", s.p99_ms);
        assert!((s.max_ms - 1.0).abs() < 0.001, "{}", s.max_ms);
        assert_eq!(result(1000, None).summary().ops_per_sec, 2000.0);
    }

    #[test]
    fn quiet_is_one_line_per_test_with_the_chosen_precision() {
        let rs = [result(0, None), result(0, None)];
        let q = quiet(&rs, 3);
        assert_eq!(q.lines().count(), 2, "{q}");
        let line = q.lines().next().unwrap();
        assert!(line.starts_with("SET: 2000.00 requests per second, p50=0.5"), "{line}");
        assert_eq!(line.rsplit_once('=').unwrap().1.len(), "0.500 msec".len(), "{line}");
        let q = quiet(&rs[..1], 5);
        assert!(q.ends_with(" msec\n") && q.contains("p50=0.50"), "{q}");
        assert_eq!(q.trim_end().rsplit_once('=').unwrap().1.len(), "0.50000 msec".len(), "{q}");
        assert!(quiet(&[result(7, None)], 3).ends_with(" msec, 7 errors\n"));
        let h = human_with(&rs[..1], 1);
        assert!(h.contains("latency ms: min 0.0  p50 0.5  "), "{h}");
    }

    #[test]
    fn empty_histogram_reports_zero_latency() {
        let mut r = result(5, Some("x"));
        r.latency_ns.reset();
        r.requests = 5;
        let s = r.summary();
        assert_eq!((s.ops_per_sec, s.p50_ms, s.max_ms, s.min_ms), (0.0, 0.0, 0.0, 0.0));
    }

    #[test]
    fn json_has_the_documented_keys_and_escapes_strings() {
        let j = json(&[result(0, None), result(2, Some("bad \"reply\"\n"))]);
        assert!(j.starts_with("[{") && j.ends_with("}]\n"), "{j}");
        for key in [
            "test",
            "clients",
            "pipeline",
            "requests",
            "ops_per_sec",
            "min_ms",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "p999_ms",
            "max_ms",
            "errors",
            "data_size",
            "protocol",
            "duration_s",
            "unknown",
        ] {
            assert_eq!(j.matches(&format!("\"{key}\":")).count(), 2, "{key} in {j}");
        }
        assert!(j.contains("\"first_error\":null"));
        assert!(j.contains(r#""first_error":"bad \"reply\"\n""#), "{j}");
        assert!(j.contains("\"requests\":1002"));
    }

    #[test]
    fn csv_has_a_header_and_one_row_per_test() {
        let c = csv(&[result(0, None), result(3, None)]);
        let lines: Vec<&str> = c.lines().collect();
        assert_eq!(lines.len(), 3);
        let cols = lines[0].split(',').count();
        assert!(lines.iter().all(|l| l.split(',').count() == cols));
        assert!(lines[2].starts_with("set,burrow,50,16,1,32,1003,3,"), "{}", lines[2]);
    }

    #[test]
    fn human_output_names_the_test_and_the_first_error() {
        let h = human(&[result(1, Some("SET: got WRONGTYPE"))]);
        assert!(h.contains("====== SET (burrow) ======"), "{h}");
        assert!(h.contains("throughput: 2000.00 ops/s"), "{h}");
        assert!(h.contains("first error: SET: got WRONGTYPE"), "{h}");
    }
}
