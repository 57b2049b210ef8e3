//! RESP2, Redis's protocol, for the same tests, so one load generator can
//! measure Burrow and Redis side by side.
//!
//! Requests are multi-bulk arrays (`*3\r\n$3\r\nSET\r\n$16\r\nkey:…\r\n…`)
//! built from templates. The reply parser handles every RESP2 type
//! (`+simple`, `-error`, `:integer`, `$bulk`/`$-1`, `*array`/`*-1`, nested),
//! allocates nothing, and reports "need more" for a partial reply.

use super::burrow_wire::MAX_REPLY;
use super::wire::{printable, FramingError, Reply, Template, Wire};
use super::workload::{Op, KEY_DIGITS, LIST_KEY};

/// Longest `+`/`-`/`:` line accepted before the stream is called garbage.
const MAX_LINE: usize = 64 * 1024;
/// Deepest array nesting accepted.
const MAX_DEPTH: usize = 8;
/// Most elements one array may declare.
const MAX_ELEMENTS: i64 = 1 << 20;

/// One parsed RESP2 value; spans index the buffer handed to [`parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value {
    Simple {
        start: usize,
        end: usize,
    },
    Error {
        start: usize,
        end: usize,
    },
    Int(i64),
    Bulk {
        start: usize,
        len: usize,
    },
    /// `$-1`: the RESP2 null bulk string (GET of a missing key, LPOP of an empty list).
    Nil,
    Array {
        count: usize,
    },
    /// `*-1`: the RESP2 null array.
    NilArray,
}

/// Finds the CRLF that ends the line starting at `from`; returns the index of `\r`.
fn line_end(buf: &[u8], from: usize) -> Result<Option<usize>, FramingError> {
    let window = &buf[from..buf.len().min(from + MAX_LINE + 2)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok(Some(from + i)),
        None if window.len() >= MAX_LINE + 2 => {
            Err(FramingError(format!("RESP line longer than {MAX_LINE} bytes")))
        }
        None => Ok(None),
    }
}

fn parse_int(b: &[u8]) -> Result<i64, FramingError> {
    let bad = || FramingError(format!("bad RESP integer \"{}\"", printable(b)));
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 19 {
        return Err(bad());
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(bad());
        }
        n = n.checked_mul(10).and_then(|n| n.checked_add((d - b'0') as i64)).ok_or_else(bad)?;
    }
    Ok(if neg { -n } else { n })
}

/// Parses one complete value at the front of `buf`: `Ok(None)` if it is
/// not all there yet, else its length and (for arrays, after skipping every
/// element) its head.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<(usize, Value)>, FramingError> {
    parse_at(buf, 0, 0)
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(usize, Value)>, FramingError> {
    let Some(&kind) = buf.get(at) else { return Ok(None) };
    let Some(cr) = line_end(buf, at + 1)? else { return Ok(None) };
    let line = &buf[at + 1..cr];
    let next = cr + 2;
    let value = match kind {
        b'+' => Value::Simple { start: at + 1, end: cr },
        b'-' => Value::Error { start: at + 1, end: cr },
        b':' => Value::Int(parse_int(line)?),
        b'$' => {
            let n = parse_int(line)?;
            if n == -1 {
                return Ok(Some((next - at, Value::Nil)));
            }
            if n < 0 || n as u64 > MAX_REPLY as u64 {
                return Err(FramingError(format!("bad RESP bulk length {n}")));
            }
            let n = n as usize;
            if buf.len() < next + n + 2 {
                return Ok(None);
            }
            if &buf[next + n..next + n + 2] != b"\r\n" {
                return Err(FramingError("RESP bulk string not followed by CRLF".into()));
            }
            return Ok(Some((next + n + 2 - at, Value::Bulk { start: next, len: n })));
        }
        b'*' => {
            let n = parse_int(line)?;
            if n == -1 {
                return Ok(Some((next - at, Value::NilArray)));
            }
            if !(0..=MAX_ELEMENTS).contains(&n) {
                return Err(FramingError(format!("bad RESP array length {n}")));
            }
            if depth >= MAX_DEPTH {
                return Err(FramingError(format!("RESP arrays nested deeper than {MAX_DEPTH}")));
            }
            let mut pos = next;
            for _ in 0..n {
                match parse_at(buf, pos, depth + 1)? {
                    Some((len, _)) => pos += len,
                    None => return Ok(None),
                }
            }
            return Ok(Some((pos - at, Value::Array { count: n as usize })));
        }
        other => {
            return Err(FramingError(format!("not a RESP reply: starts with byte 0x{other:02x}")));
        }
    };
    Ok(Some((next - at, value)))
}

/// Whether `v` (parsed from `buf`) is the right answer to `op`.
fn judge(buf: &[u8], v: Value, op: Op) -> bool {
    match (op, v) {
        (Op::Ping, Value::Simple { start, end }) => &buf[start..end] == b"PONG",
        (Op::Set, Value::Simple { start, end }) => &buf[start..end] == b"OK",
        (Op::Get | Op::LPop, Value::Bulk { .. } | Value::Nil) => true,
        (Op::Incr | Op::LPush, Value::Int(_)) => true,
        _ => false,
    }
}

/// RESP2 with one template per [`Op`].
#[derive(Debug, Clone)]
pub(crate) struct RespWire {
    templates: Vec<Template>,
}

impl RespWire {
    /// Templates for requests carrying `value` (SET and LPUSH).
    pub(crate) fn new(value: &[u8]) -> RespWire {
        RespWire { templates: Op::ALL.iter().map(|op| template(*op, value)).collect() }
    }
}

/// An argument of a command: literal bytes, or a numbered key with this prefix.
enum Arg<'a> {
    Lit(&'a [u8]),
    Key(&'a [u8]),
}

fn template(op: Op, value: &[u8]) -> Template {
    let key = |op: Op| Arg::Key(op.key_prefix().expect("numbered key"));
    let args: Vec<Arg<'_>> = match op {
        Op::Ping => vec![Arg::Lit(b"PING")],
        Op::Set => vec![Arg::Lit(b"SET"), key(op), Arg::Lit(value)],
        Op::Get => vec![Arg::Lit(b"GET"), key(op)],
        Op::Incr => vec![Arg::Lit(b"INCR"), key(op)],
        Op::LPush => vec![Arg::Lit(b"LPUSH"), Arg::Lit(LIST_KEY), Arg::Lit(value)],
        Op::LPop => vec![Arg::Lit(b"LPOP"), Arg::Lit(LIST_KEY)],
    };
    let mut t = Template::default();
    t.bytes.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        match arg {
            Arg::Lit(b) => {
                t.bytes.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                t.bytes.extend_from_slice(b);
            }
            Arg::Key(prefix) => {
                t.bytes.extend_from_slice(format!("${}\r\n", prefix.len() + KEY_DIGITS).as_bytes());
                t.bytes.extend_from_slice(prefix);
                t.key_at = Some(t.bytes.len());
                t.bytes.resize(t.bytes.len() + KEY_DIGITS, b'0');
            }
        }
        t.bytes.extend_from_slice(b"\r\n");
    }
    t
}

impl Wire for RespWire {
    #[inline]
    fn encode(&self, dst: &mut Vec<u8>, op: Op, key: u64, _id: u32) {
        self.templates[op.index()].append(dst, key, 0);
    }

    #[inline]
    fn parse(&self, buf: &[u8], op: Op, _id: u32) -> Result<Option<Reply>, FramingError> {
        Ok(parse(buf)?.map(|(len, v)| Reply { len, ok: judge(buf, v, op) }))
    }

    fn describe(&self, reply: &[u8], op: Op, _id: u32) -> String {
        format!("{}: unexpected reply \"{}\"", op.name(), printable(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_multibulk_commands() {
        let w = RespWire::new(b"xyz");
        let enc = |op, key| {
            let mut d = Vec::new();
            w.encode(&mut d, op, key, 0);
            String::from_utf8(d).unwrap()
        };
        assert_eq!(enc(Op::Ping, 0), "*1\r\n$4\r\nPING\r\n");
        assert_eq!(enc(Op::Set, 12), "*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000012\r\n$3\r\nxyz\r\n");
        assert_eq!(enc(Op::Get, 999_999_999_999), "*2\r\n$3\r\nGET\r\n$16\r\nkey:999999999999\r\n");
        assert_eq!(enc(Op::Incr, 5), "*2\r\n$4\r\nINCR\r\n$20\r\ncounter:000000000005\r\n");
        assert_eq!(enc(Op::LPush, 5), "*3\r\n$5\r\nLPUSH\r\n$6\r\nmylist\r\n$3\r\nxyz\r\n");
        assert_eq!(enc(Op::LPop, 5), "*2\r\n$4\r\nLPOP\r\n$6\r\nmylist\r\n");
        // Several requests append back to back.
        let mut d = Vec::new();
        w.encode(&mut d, Op::Get, 1, 0);
        w.encode(&mut d, Op::Get, 2, 0);
        assert_eq!(d.len(), 2 * enc(Op::Get, 0).len());
    }

    #[test]
    fn parses_each_reply_kind() {
        let cases: [(&[u8], Value); 8] = [
            (b"+OK\r\n", Value::Simple { start: 1, end: 3 }),
            (b"-ERR wrong\r\n", Value::Error { start: 1, end: 10 }),
            (b":-42\r\n", Value::Int(-42)),
            (b"$3\r\nabc\r\n", Value::Bulk { start: 4, len: 3 }),
            (b"$0\r\n\r\n", Value::Bulk { start: 4, len: 0 }),
            (b"$-1\r\n", Value::Nil),
            (b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", Value::Array { count: 2 }),
            (b"*-1\r\n", Value::NilArray),
        ];
        for (bytes, want) in cases {
            assert_eq!(parse(bytes).unwrap(), Some((bytes.len(), want)), "{}", printable(bytes));
            // Trailing data belongs to the next reply.
            let mut more = bytes.to_vec();
            more.extend_from_slice(b"+OK\r\n");
            assert_eq!(parse(&more).unwrap(), Some((bytes.len(), want)));
            // Every strict prefix is incomplete, never an error.
            for cut in 0..bytes.len() {
                assert_eq!(parse(&bytes[..cut]).unwrap(), None, "{} cut {cut}", printable(bytes));
            }
        }
    }

    #[test]
    fn garbage_is_a_framing_error() {
        for bad in [
            &b"hello\r\n"[..],
            b":12a\r\n",
            b"$abc\r\n",
            b"$-2\r\n",
            b"$3\r\nabcXY",
            b"*-5\r\n",
            b":99999999999999999999\r\n",
        ] {
            assert!(parse(bad).is_err(), "{}", printable(bad));
        }
        let long = vec![b'+'; MAX_LINE + 10];
        assert!(parse(&long).is_err());
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1) + ":1\r\n";
        assert!(parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn judges_replies_per_command() {
        let w = RespWire::new(b"x");
        let ok = |op, r: &[u8]| w.parse(r, op, 0).unwrap().unwrap().ok;
        assert!(ok(Op::Ping, b"+PONG\r\n"));
        assert!(!ok(Op::Ping, b"+OK\r\n"));
        assert!(ok(Op::Set, b"+OK\r\n"));
        assert!(!ok(Op::Set, b"-ERR out of memory\r\n"));
        assert!(!ok(Op::Set, b"$-1\r\n"));
        assert!(ok(Op::Get, b"$1\r\nx\r\n"));
        assert!(ok(Op::Get, b"$-1\r\n"));
        assert!(!ok(Op::Get, b"-WRONGTYPE Operation against a key\r\n"));
        assert!(!ok(Op::Get, b":1\r\n"));
        assert!(ok(Op::Incr, b":11\r\n"));
        assert!(!ok(Op::Incr, b"-ERR value is not an integer\r\n"));
        assert!(ok(Op::LPush, b":3\r\n"));
        assert!(ok(Op::LPop, b"$-1\r\n"));
        assert!(!ok(Op::LPop, b"*-1\r\n"));
        assert!(w.describe(b"-ERR boom\r\n", Op::Set, 0).contains("ERR boom"));
    }
}
