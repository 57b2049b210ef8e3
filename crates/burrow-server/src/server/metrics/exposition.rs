//! The scrape: what the server already counts, gathered at once and
//! written by `prometheus-client` in the Prometheus text format. Nothing
//! is counted twice: per-command figures come from the per-thread slots
//! (`server::commands`), WAL fsync timings from the WAL writer, and the
//! rest from the same figures INFO prints (read back from its `key:value`
//! lines, so a metric and its INFO field cannot disagree).

use std::collections::HashMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::super::info;
use super::super::stats::CommandTotals;
use super::super::Shared;
use crate::latency::Snapshot;
use burrow_proto::{Opcode, Status};

pub(super) use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The exposition text of `shared` now.
pub(super) fn render(shared: &Shared) -> String {
    let info_text = info::render(shared, "").unwrap_or_default();
    let info = info_text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let wal = shared.persist.as_ref().map(|p| p.wal.stats());
    let gathered = Gathered {
        info,
        commands: shared.stats.commands(),
        fsync: wal.as_ref().map(|w| w.fsync_latency),
        wal: wal.map(|w| (w.written_bytes, w.fsync_failures)),
        rss: info::rss_bytes(),
    };
    let mut registry = Registry::with_prefix("burrow");
    registry.register_collector(Box::new(gathered));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

/// Everything one scrape shows, read before encoding.
#[derive(Debug)]
struct Gathered {
    /// INFO's fields (all sections).
    info: HashMap<String, String>,
    commands: CommandTotals,
    fsync: Option<Snapshot>,
    /// WAL bytes written since start and fsync failures.
    wal: Option<(u64, u64)>,
    rss: Option<u64>,
}

type Result = std::result::Result<(), std::fmt::Error>;

impl Gathered {
    fn num(&self, key: &str) -> Option<f64> {
        self.info.get(key)?.parse().ok()
    }

    /// A follower line's fields (`id=2,addr=…,lag=…`).
    fn followers(&self) -> Vec<HashMap<&str, &str>> {
        let mut keys: Vec<&String> = self
            .info
            .keys()
            .filter(|k| k.strip_prefix("follower").is_some_and(|n| n.parse::<u32>().is_ok()))
            .collect();
        keys.sort();
        keys.iter().map(|k| self.info[*k].split(',').filter_map(|kv| kv.split_once('=')).collect()).collect()
    }
}

/// Whole numbers (most of INFO's) print without a fraction.
fn whole(v: f64) -> Option<i64> {
    (v.fract() == 0.0 && v.abs() < 9e15).then_some(v as i64)
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, unit: Option<&Unit>, v: f64) -> Result {
    let m = e.encode_descriptor(name, help, unit, MetricType::Counter)?;
    match whole(v) {
        Some(n) if n >= 0 => ConstCounter::new(n as u64).encode(m),
        _ => ConstCounter::new(v).encode(m),
    }
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, unit: Option<&Unit>, v: f64) -> Result {
    let m = e.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    match whole(v) {
        Some(n) => ConstGauge::new(n).encode(m),
        None => ConstGauge::new(v).encode(m),
    }
}

fn histogram(m: &mut prometheus_client::encoding::MetricEncoder, s: &Snapshot) -> Result {
    m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
        s.sum_seconds(),
        s.count(),
        &s.buckets_seconds(),
        None,
    )
}

fn command_name(op: u8) -> String {
    Opcode::from_u8(op).map_or_else(|| "unknown".to_string(), |o| o.name().to_ascii_lowercase())
}

fn status_name(s: u8) -> String {
    Status::from_u8(s).map_or_else(|| format!("0x{s:02x}"), |s| s.name().to_ascii_lowercase())
}

impl Collector for Gathered {
    fn encode(&self, mut e: DescriptorEncoder) -> Result {
        let secs = Some(&Unit::Seconds);
        let bytes = Some(&Unit::Bytes);
        // Commands: unknown opcodes share one label value.
        let mut by_label: Vec<((String, String), u64)> = Vec::new();
        for op in 0..=255u8 {
            for (status, n) in self.commands.by_status(op) {
                let key = (command_name(op), status_name(status));
                match by_label.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, sum)) => *sum += n,
                    None => by_label.push((key, n)),
                }
            }
        }
        let mut m = e.encode_descriptor(
            "commands",
            "Commands executed, by command and reply status",
            None,
            MetricType::Counter,
        )?;
        for ((command, status), n) in &by_label {
            let labels = [("command", command.as_str()), ("status", status.as_str())];
            ConstCounter::new(*n).encode(m.encode_family(&labels)?)?;
        }
        let mut m = e.encode_descriptor(
            "command_duration",
            "Time to execute a command on the server (from decoding to its reply buffered; not network or fsync waits)",
            secs,
            MetricType::Histogram,
        )?;
        for op in Opcode::ALL {
            let s = self.commands.latency(op as u8);
            if s.count() > 0 {
                histogram(&mut m.encode_family(&[("command", command_name(op as u8))])?, s)?;
            }
        }

        let n = |k: &str| self.num(k).unwrap_or(0.0);
        gauge(&mut e, "connections", "Client connections open now", None, n("connected_clients"))?;
        counter(
            &mut e,
            "connections_accepted",
            "Client connections accepted since start",
            None,
            n("total_connections_received"),
        )?;
        counter(
            &mut e,
            "connections_refused",
            "Client connections refused at max_connections (BUSY)",
            None,
            n("rejected_connections"),
        )?;
        counter(
            &mut e,
            "protocol_errors",
            "Connections closed because their framing broke",
            None,
            n("protocol_errors"),
        )?;
        gauge(&mut e, "uptime", "Seconds since the server started", secs, n("uptime_in_seconds"))?;

        gauge(&mut e, "keys", "Keys in the store", None, n("keys"))?;
        gauge(&mut e, "expiring_keys", "Keys with a TTL", None, n("expires"))?;
        counter(&mut e, "expired_keys", "Keys expired since start", None, n("expired_keys"))?;
        counter(&mut e, "evicted_keys", "Keys evicted at maxmemory since start", None, n("evicted_keys"))?;
        gauge(
            &mut e,
            "memory_used",
            "The store's own accounting of keys and values (INFO used_memory)",
            bytes,
            n("used_memory"),
        )?;
        if let Some(rss) = self.rss {
            gauge(&mut e, "memory_rss", "Resident memory of the process", bytes, rss as f64)?;
        }
        gauge(&mut e, "memory_max", "maxmemory (0: no limit)", bytes, n("maxmemory"))?;

        if let (Some((written, failures)), Some(fsync)) = (self.wal, &self.fsync) {
            counter(&mut e, "wal_written", "Bytes written to the WAL since start", bytes, written as f64)?;
            gauge(&mut e, "wal_size", "Bytes of WAL segments on disk", bytes, n("wal_bytes"))?;
            counter(&mut e, "wal_fsync_failures", "WAL fsyncs that failed", None, failures as f64)?;
            let mut m = e.encode_descriptor(
                "wal_fsync_duration",
                "Time a WAL fsync took",
                secs,
                MetricType::Histogram,
            )?;
            histogram(&mut m, fsync)?;
            counter(&mut e, "snapshots", "Snapshots written since start", None, n("snapshots_written"))?;
            if n("snapshots_written") > 0.0 {
                gauge(
                    &mut e,
                    "snapshot_duration",
                    "How long the last snapshot took",
                    secs,
                    n("last_snapshot_duration_ms") / 1e3,
                )?;
                let age = (super::super::now_ms() as f64 - n("last_snapshot_time_ms")).max(0.0) / 1e3;
                gauge(&mut e, "snapshot_age", "Seconds since the last snapshot was written", secs, age)?;
            }
        }

        let role = self.info.get("role").map_or("standalone", String::as_str);
        let mut m = e.encode_descriptor(
            "replication_role",
            "1 for this node's role (standalone, leader or follower), 0 for the others",
            None,
            MetricType::Gauge,
        )?;
        for r in ["standalone", "leader", "follower"] {
            ConstGauge::new(i64::from(r == role)).encode(m.encode_family(&[("role", r)])?)?;
        }
        gauge(&mut e, "term", "Current term", None, n("term"))?;
        gauge(&mut e, "last_index", "Last op-log index", None, n("last_index"))?;
        if role != "standalone" {
            gauge(&mut e, "commit_index", "Highest index known committed", None, n("commit_index"))?;
            gauge(&mut e, "applied_index", "Highest index applied to the store", None, n("applied_index"))?;
            counter(
                &mut e,
                "elections_started",
                "Election rounds this node started",
                None,
                n("elections_started"),
            )?;
            counter(&mut e, "elections_won", "Elections this node won", None, n("elections_won"))?;
        }
        if role == "leader" {
            let mut m = e.encode_descriptor(
                "resyncs",
                "Follower resyncs served, by kind",
                None,
                MetricType::Counter,
            )?;
            for kind in ["full", "partial"] {
                ConstCounter::new(n(&format!("{kind}_resyncs")) as u64)
                    .encode(m.encode_family(&[("kind", kind)])?)?;
            }
            let followers = self.followers();
            let mut m = e.encode_descriptor(
                "follower_lag_records",
                "Records a follower has yet to apply",
                None,
                MetricType::Gauge,
            )?;
            for f in &followers {
                let lag: f64 = f.get("lag").and_then(|v| v.parse().ok()).unwrap_or(0.0);
                ConstGauge::new(lag)
                    .encode(m.encode_family(&[("follower", f.get("id").copied().unwrap_or("?"))])?)?;
            }
            let mut m = e.encode_descriptor(
                "follower_lag",
                "Seconds since a lagging follower's last ack (0 while it has applied everything)",
                secs,
                MetricType::Gauge,
            )?;
            for f in &followers {
                let lag: f64 = f.get("lag").and_then(|v| v.parse().ok()).unwrap_or(0.0);
                let ack: f64 = f.get("last_ack_s").and_then(|v| v.parse().ok()).unwrap_or(-1.0);
                // Never acked: as old as the process, the longest it can be.
                let secs = if lag == 0.0 {
                    0.0
                } else if ack < 0.0 {
                    n("uptime_in_seconds")
                } else {
                    ack
                };
                ConstGauge::new(secs)
                    .encode(m.encode_family(&[("follower", f.get("id").copied().unwrap_or("?"))])?)?;
            }
        }
        Ok(())
    }
}
