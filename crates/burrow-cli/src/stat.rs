//! `--stat`: a rolling line per interval (1 s, or `-i`) from INFO, as
//! `redis-cli --stat` prints it, with the column header again every 20
//! lines. Burrow has no blocked clients and counts no connections in total,
//! so those columns are replaced by ops/s (requests since the last line
//! over the time between them).

use std::io::Write;
use std::time::{Duration, Instant};

use burrow_proto::{ErrorChain, Reply, Request};

use super::session::{CliError, Session};

/// Lines between repeated headers, as redis-cli.
const HEADER_EVERY: usize = 20;

/// What one line shows, from INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Sample {
    keys: u64,
    used_memory: u64,
    clients: u64,
    requests: u64,
}

impl Sample {
    fn from_info(info: &str) -> Sample {
        let fields = burrow_client::parse_info(info);
        let field = |name: &str| {
            fields.iter().find(|(k, _)| *k == name).and_then(|(_, v)| v.trim().parse().ok()).unwrap_or(0)
        };
        Sample {
            keys: field("keys"),
            used_memory: field("used_memory"),
            clients: field("connected_clients"),
            requests: field("total_commands_processed"),
        }
    }
}

/// Prints a line every `every` until interrupted (or the output goes away).
/// A lost connection prints one line and is retried on the next tick.
pub(crate) fn run(session: &mut Session, every: Duration, out: &mut impl Write) -> Result<bool, CliError> {
    let mut last: Option<(Sample, Instant)> = None;
    let mut lines = 0usize;
    loop {
        match session.exchange(&[Request::Info { section: "".into() }]) {
            Ok(mut replies) => {
                let info = match replies.pop() {
                    Some(Reply::Text(t)) => t,
                    other => {
                        writeln!(out, "INFO failed: {other:?}")?;
                        return Ok(false);
                    }
                };
                let now = Instant::now();
                let sample = Sample::from_info(&info);
                if lines.is_multiple_of(HEADER_EVERY) {
                    writeln!(out, "{}", header())?;
                }
                writeln!(out, "{}", line(&sample, last.map(|(s, at)| (s, now.duration_since(at)))))?;
                out.flush()?;
                lines += 1;
                last = Some((sample, now));
            }
            Err(e @ (CliError::Lost { .. } | CliError::Connect { .. })) => {
                writeln!(out, "{}", ErrorChain(&e))?;
                out.flush()?;
                last = None;
            }
            Err(e) => return Err(e),
        }
        std::thread::sleep(every);
    }
}

fn header() -> String {
    "------- data ------ ------------ load -------------\n\
     keys       mem      clients requests            ops/s"
        .to_string()
}

/// One line; `prev` is the last sample and the time since it.
fn line(s: &Sample, prev: Option<(Sample, Duration)>) -> String {
    let (requests, ops) = match prev {
        Some((p, elapsed)) => {
            let diff = s.requests.saturating_sub(p.requests);
            let ops = diff as f64 / elapsed.as_secs_f64().max(1e-3);
            (format!("{} (+{diff})", s.requests), format!("{ops:.0}"))
        }
        None => (s.requests.to_string(), "-".to_string()),
    };
    format!("{:<10} {:<8} {:<7} {:<19} {}", s.keys, human_bytes(s.used_memory), s.clients, requests, ops)
}

/// `1.50M`, as redis-cli prints memory.
fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    if b < 1024 {
        return format!("{b}B");
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_counts_and_the_rate_since_the_last() {
        let info = "# clients\nconnected_clients:3\n# memory\nused_memory:1572864\n\
                    # keyspace\nkeys:12\n# stats\ntotal_commands_processed:500\n";
        let s = Sample::from_info(info);
        assert_eq!(s, Sample { keys: 12, used_memory: 1572864, clients: 3, requests: 500 });
        assert_eq!(line(&s, None), "12         1.50M    3       500                 -");
        let before = Sample { requests: 300, ..s };
        assert_eq!(
            line(&s, Some((before, Duration::from_secs(2)))),
            "12         1.50M    3       500 (+200)          100"
        );
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(2048), "2.00K");
        assert!(header().lines().nth(1).unwrap().starts_with("keys "));
    }
}
