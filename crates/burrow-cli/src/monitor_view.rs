//! MONITOR's events as redis-cli prints them: one line each, unix time with
//! microseconds, the client in brackets, then the command and its
//! arguments quoted with escapes, so binary keys and values print safely.
//! The arguments are the request's key, value and extras, those it has; a
//! key or value the server cut says how long it was.

use bytes::Bytes;

use super::format::quote;
use burrow_proto::{MonitorEvent, Opcode};

/// One event's line (no newline).
pub(crate) fn render_event(e: &MonitorEvent) -> String {
    let name =
        Opcode::from_u8(e.opcode).map_or_else(|| format!("0x{:02x}", e.opcode), |o| o.name().to_string());
    let mut line = format!(
        "{}.{:06} [{}] {}",
        e.unix_us / 1_000_000,
        e.unix_us % 1_000_000,
        e.client,
        quote(name.as_bytes())
    );
    let arg = |b: &Bytes, full: u32| {
        if full as usize > b.len() {
            format!(" {}... ({full} bytes)", quote(b))
        } else {
            format!(" {}", quote(b))
        }
    };
    if e.key_len != 0 {
        line.push_str(&arg(&e.key, e.key_len));
    }
    if e.value_len != 0 {
        line.push_str(&arg(&e.value, e.value_len));
    }
    if !e.extras.is_empty() {
        line.push_str(&arg(&e.extras, e.extras.len() as u32));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_print_like_redis_cli_and_binary_safe() {
        let e = MonitorEvent {
            unix_us: 1_700_000_000_000_042,
            opcode: Opcode::Set as u8,
            client: "127.0.0.1:5000".into(),
            key_len: 3,
            key: Bytes::from_static(b"k\x00\xff"),
            value_len: 300,
            value: Bytes::from_static(b"v \""),
            extras: Bytes::new(),
        };
        assert_eq!(
            render_event(&e),
            r#"1700000000.000042 [127.0.0.1:5000] "SET" "k\x00\xff" "v \""... (300 bytes)"#
        );
        let ping = MonitorEvent {
            opcode: Opcode::Ping as u8,
            key_len: 0,
            key: Bytes::new(),
            value_len: 0,
            value: Bytes::new(),
            ..e
        };
        assert_eq!(render_event(&ping), r#"1700000000.000042 [127.0.0.1:5000] "PING""#);
    }
}
