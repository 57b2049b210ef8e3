//! SLOWLOG GET's entries as redis-cli shows them: one numbered block per
//! entry (id, unix time µs, duration µs, command and key, client). Keys are
//! quoted with escapes, so binary keys print safely; a truncated key says
//! how long it was. Scripts (one line per reply) get `key=value` words.

use super::format::quote;
use burrow_proto::{Opcode, SlowLogEntry};

/// Renders `entries`; `line`: on one line, for scripts.
pub(crate) fn render_slowlog(entries: &[SlowLogEntry], line: bool) -> String {
    if entries.is_empty() {
        return "(empty array)".to_string();
    }
    if line {
        let words: Vec<String> = entries
            .iter()
            .map(|e| {
                format!(
                    "id={} time_us={} duration_us={} command={} key={} client={}",
                    e.id,
                    e.unix_us,
                    e.duration_us,
                    command(e.opcode),
                    key(e),
                    e.client
                )
            })
            .collect();
        return words.join("; ");
    }
    let width = entries.len().to_string().len();
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let label = format!("{:>width$}) ", i + 1);
        let pad = " ".repeat(label.len());
        let fields = [
            format!("1) (integer) {}", e.id),
            format!("2) (integer) {}", e.unix_us),
            format!("3) (integer) {}", e.duration_us),
            format!("4) 1) \"{}\"", command(e.opcode)),
            format!("   2) {}", key(e)),
            format!("5) {}", quote(e.client.as_bytes())),
        ];
        for (j, f) in fields.into_iter().enumerate() {
            out.push(format!("{}{f}", if j == 0 { &label } else { &pad }));
        }
    }
    out.join("\n")
}

/// The entry's command name (the opcode in hex if this CLI does not know it).
fn command(opcode: u8) -> String {
    Opcode::from_u8(opcode).map_or_else(|| format!("0x{opcode:02x}"), |o| o.name().to_string())
}

/// The quoted key, with its full length when the server kept only part of it.
fn key(e: &SlowLogEntry) -> String {
    if e.key_len as usize > e.key.len() {
        format!("{}... ({} bytes)", quote(&e.key), e.key_len)
    } else {
        quote(&e.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn entry(key: &[u8], key_len: u32) -> SlowLogEntry {
        SlowLogEntry {
            id: 3,
            unix_us: 1_700_000_000_000_001,
            duration_us: 15_000,
            opcode: Opcode::Set as u8,
            key_len,
            key: Bytes::copy_from_slice(key),
            client: "127.0.0.1:5000".into(),
        }
    }

    #[test]
    fn entries_render_like_redis_cli_and_binary_keys_stay_safe() {
        let human = render_slowlog(&[entry(b"k\x00\xff\n", 4)], false);
        assert_eq!(
            human,
            "1) 1) (integer) 3\n   2) (integer) 1700000000000001\n   3) (integer) 15000\n   \
             4) 1) \"SET\"\n      2) \"k\\x00\\xff\\n\"\n   5) \"127.0.0.1:5000\""
        );
        let line = render_slowlog(&[entry(b"ab", 100)], true);
        assert_eq!(
            line,
            "id=3 time_us=1700000000000001 duration_us=15000 command=SET key=\"ab\"... (100 bytes) \
             client=127.0.0.1:5000"
        );
        assert_eq!(render_slowlog(&[], false), "(empty array)");
    }
}
