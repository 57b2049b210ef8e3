//! INFO: `key:value` lines grouped in `# section` blocks.

use std::fmt::Write;

use super::Shared;
use burrow_proto::Opcode;

/// Section names in the order INFO prints them.
pub(super) const SECTIONS: [&str; 8] =
    ["server", "clients", "memory", "persistence", "replication", "keyspace", "oplog", "stats"];

/// Renders the named section (case-insensitive), or every section for "" /
/// "all"; `None` for an unknown name.
pub(super) fn render(shared: &Shared, section: &str) -> Option<String> {
    let section = section.to_ascii_lowercase();
    let wanted: Vec<&str> = match section.as_str() {
        "" | "all" | "default" | "everything" => SECTIONS.to_vec(),
        s => vec![*SECTIONS.iter().find(|n| **n == s)?],
    };
    let mut out = String::new();
    for (i, name) in wanted.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "# {name}");
        section_body(shared, name, &mut out);
    }
    Some(out)
}

fn section_body(shared: &Shared, name: &str, out: &mut String) {
    let stats = &shared.stats;
    let mut kv = |k: &str, v: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{k}:{v}");
    };
    match name {
        "server" => {
            kv("burrow_version", &env!("CARGO_PKG_VERSION"));
            kv("protocol_version", &burrow_proto::VERSION);
            kv("process_id", &std::process::id());
            kv("tcp_port", &shared.local_port);
            kv(
                "unix_socket",
                &shared.config.unix_socket.as_ref().map_or(String::new(), |p| p.display().to_string()),
            );
            kv("uptime_in_seconds", &shared.started.elapsed().as_secs());
            kv("shards", &shared.store.shard_count());
            kv("role", &shared.repl.role().name());
        }
        "replication" => shared.repl.info(out),
        "clients" => {
            kv("connected_clients", &stats.connected_clients.load(relaxed()));
            kv("max_connections", &shared.max_connections);
            kv("rejected_connections", &stats.rejected_connections.load(relaxed()));
            kv("idle_timeout_seconds", &shared.config.idle_timeout.map_or(0, |d| d.as_secs()));
            let auth = &shared.auth;
            kv("auth_enabled", &(auth.required() as u8));
            kv("auth_successes", &auth.successes.load(relaxed()));
            kv("auth_failures", &auth.failures.load(relaxed()));
            kv("auth_refused_commands", &auth.refused.load(relaxed()));
            kv("input_buffer_bytes", &shared.input.used());
            kv("max_input_buffer", &shared.input.limit());
            kv("input_buffer_waits", &shared.input.waits());
            kv("clients_killed_output_limit", &stats.killed_output_limit.load(relaxed()));
            let tls = shared.tls.as_ref();
            kv("tls_enabled", &(tls.is_some() as u8));
            kv("tls_handshakes", &tls.map_or(0, |t| t.handshakes.load(relaxed())));
            kv("tls_handshake_failures", &tls.map_or(0, |t| t.failures.load(relaxed())));
        }
        "memory" => {
            let ks = shared.store.keyspace_stats();
            kv("used_memory", &shared.store.used_memory());
            kv("used_memory_dataset", &ks.mem);
            kv("used_memory_rss", &rss_bytes().map_or_else(|| "unknown".to_string(), |b| b.to_string()));
            kv("maxmemory", &shared.maxmemory.load(std::sync::atomic::Ordering::Relaxed));
            kv("maxmemory_policy", &shared.config.maxmemory_policy.name());
            kv("maxmemory_samples", &shared.config.maxmemory_samples);
            kv("evicted_keys", &shared.store.evicted_keys());
            kv("oom_refusals", &stats.oom_refusals.load(relaxed()));
            kv("oplog_backlog_bytes", &shared.repl.backlog().1);
            kv("max_key_bytes", &shared.config.max_key_bytes);
            kv("max_value_bytes", &shared.config.max_value_bytes);
        }
        "persistence" => persistence(shared, &mut kv),
        "keyspace" => {
            let ks = shared.store.keyspace_stats();
            kv("keys", &ks.keys);
            kv("expires", &ks.expires);
            kv("expired_keys", &ks.expired_keys);
            kv("last_log_index", &shared.store.log().stats().last_index);
        }
        "oplog" => {
            let log = shared.store.log().stats();
            kv("term", &log.term);
            kv("last_index", &log.last_index);
            let (records, bytes) = shared.repl.backlog();
            kv("backlog_records", &records);
            kv("backlog_bytes", &bytes);
            kv("backlog_max_bytes", &log.max_bytes);
            kv("backlog_pending_bytes", &log.pending_repl_bytes);
            kv("backlog_retaining", &(shared.store.log().is_retaining() as u8));
        }
        "stats" => {
            kv("total_connections_received", &stats.total_connections.load(relaxed()));
            let commands = stats.commands();
            kv("total_commands_processed", &commands.total_calls());
            kv("protocol_errors", &stats.protocol_errors.load(relaxed()));
            kv("reads_waited", &stats.reads_waited());
            kv("unknown_opcode_calls", &super::stats::unknown_calls(&commands));
            kv("metrics_addr", &shared.metrics_addr.get().map_or_else(String::new, |a| a.to_string()));
            kv("command_clock", &if crate::ticks::clock().is_tsc() { "tsc" } else { "monotonic" });
            for op in Opcode::ALL {
                let calls = commands.calls(op as u8);
                if calls > 0 {
                    let key = format!("cmd_{}", op.name().to_ascii_lowercase());
                    kv(&key, &command_line(&commands, op as u8));
                }
            }
        }
        _ => {}
    }
}

fn persistence(shared: &Shared, kv: &mut dyn FnMut(&str, &dyn std::fmt::Display)) {
    kv("loading", &0);
    let Some(p) = &shared.persist else {
        kv("enabled", &0);
        return;
    };
    kv("enabled", &1);
    kv("data_dir", &p.cfg.dir.display());
    kv("fsync", &p.cfg.fsync.name());
    let wal = p.wal.stats();
    let d = p.wal.durability();
    kv("wal_bytes", &wal.bytes);
    kv("wal_segments", &wal.segments);
    kv("wal_fsyncs", &wal.fsyncs);
    kv("wal_written_index", &d.written);
    kv("wal_synced_index", &d.synced);
    kv(
        "wal_status",
        &match (d.failed, d.fatal) {
            (_, true) => "restart_required",
            (true, false) => "failing",
            (false, false) => "ok",
        },
    );
    kv("wal_last_error", &wal.last_error.unwrap_or_default());
    let snap = p.snapshot_stats();
    let last_index = shared.store.log().last_index();
    kv("records_since_snapshot", &last_index.saturating_sub(snap.last_index));
    kv("snapshot_in_progress", &(p.in_progress() as u8));
    kv("snapshots_written", &snap.count);
    kv("last_snapshot_time_ms", &snap.last_time_ms);
    kv("last_snapshot_duration_ms", &snap.last_duration.as_millis());
    kv("last_snapshot_bytes", &snap.last_bytes);
    kv("last_snapshot_keys", &snap.last_entries);
    kv("last_snapshot_index", &snap.last_index);
    kv(
        "last_snapshot_status",
        &match (&snap.last_error, snap.count) {
            (Some(e), _) => format!("err: {e}"),
            (None, 0) => "none".to_string(),
            (None, _) => "ok".to_string(),
        },
    );
    let r = &p.recovery;
    kv("recovery_duration_ms", &r.duration.as_millis());
    kv("recovery_snapshot_keys", &r.snapshot_entries);
    kv("recovery_records_replayed", &r.records_replayed);
    kv("recovery_records_skipped", &r.records_skipped);
    kv(
        "recovery_truncated_tail",
        &r.truncated.as_ref().map_or_else(String::new, |(f, o, _)| format!("{}@{o}", f.display())),
    );
    // `<log end>..<highest shard image>`: see `persist::incomplete`.
    kv(
        "recovery_incomplete",
        &r.incomplete.map_or_else(String::new, |g| format!("{}..{}", g.log_end, g.max_cover)),
    );
}

/// A `cmd_*` line's value: `calls=…,errors=…,usec=…,usec_per_call=…,`
/// then the p50/p99/p99.9 latency in µs (upper bounds of the power-of-two
/// buckets that hold them, `inf` past the last; `crate::latency`).
fn command_line(commands: &super::stats::CommandTotals, op: u8) -> String {
    let calls = commands.calls(op);
    let lat = commands.latency(op);
    let usec = lat.sum_nanos / 1000;
    let q = |q: f64| lat.quantile_us(q).map_or_else(|| "inf".to_string(), |us| us.to_string());
    format!(
        "calls={calls},errors={},usec={usec},usec_per_call={:.2},p50_usec={},p99_usec={},p999_usec={}",
        commands.errors(op),
        lat.sum_nanos as f64 / 1000.0 / calls.max(1) as f64,
        q(0.5),
        q(0.99),
        q(0.999),
    )
}

fn relaxed() -> std::sync::atomic::Ordering {
    std::sync::atomic::Ordering::Relaxed
}

/// Resident set size from /proc (Linux); `None` elsewhere.
pub(super) fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
