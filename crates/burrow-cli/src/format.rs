//! Printing replies the way redis-cli does, so what users read carries over.
//!
//! Two styles:
//! - [`Style::Human`] (REPL and one-shot): `OK`, `"quoted"` strings with
//!   unprintable bytes escaped, `(integer) 5`, `(nil)`, numbered lists
//!   (`1) "a"`, nested for SCAN), `(error) STATUS message`, and TEXT replies
//!   (INFO, TYPE, PONG) raw.
//! - [`Style::Line`] (standard input not a terminal): the same words, but
//!   every reply on exactly one line so output lines match input commands one
//!   to one: list items are quoted and separated by spaces (SCAN prints its
//!   cursor first), and multi-line text such as INFO is quoted with `\n`
//!   escapes. Quoting keeps this unambiguous and re-readable by the tokenizer.
//! - [`Style::Raw`] (`--raw`, and one-shot commands whose output is not a
//!   terminal, as redis-cli): the bytes themselves, integers as digits, list
//!   items one per line, `(nil)` as an empty line, errors as `STATUS message`,
//!   so `burrow-cli GET k > file` stores the value (and a newline).

use burrow_proto::{Reply, Status};

/// How replies are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Multi-line, like redis-cli at a terminal.
    Human,
    /// One line per reply, for scripts and mass loading.
    Line,
    /// Unquoted bytes, as redis-cli --raw.
    Raw,
}

/// Renders `reply` as bytes without a trailing newline: [`Style::Raw`] keeps
/// the value's own bytes, the other styles are [`render`]'s text.
pub(crate) fn render_bytes(reply: &Reply, style: Style) -> Vec<u8> {
    if style != Style::Raw {
        return render(reply, style).into_bytes();
    }
    match reply {
        Reply::Nil => Vec::new(),
        Reply::Bytes(b) => b.to_vec(),
        Reply::Int(n) => n.to_string().into_bytes(),
        Reply::Error { status, message } => error(*status, message).as_bytes()["(error) ".len()..].to_vec(),
        Reply::Text(t) => t.trim_end_matches(['\r', '\n']).as_bytes().to_vec(),
        Reply::Array(items) => items.join(&b"\n"[..]),
        Reply::Scan { cursor, keys } => {
            let mut lines = vec![cursor.to_string().into_bytes()];
            lines.extend(keys.iter().map(|k| k.to_vec()));
            lines.join(&b"\n"[..])
        }
        Reply::Ok | Reply::Cluster(_) | Reply::SlowLog(_) => render(reply, Style::Human).into_bytes(),
    }
}

/// Renders `reply` without a trailing newline.
pub(crate) fn render(reply: &Reply, style: Style) -> String {
    match reply {
        Reply::Ok => "OK".to_string(),
        Reply::Nil => "(nil)".to_string(),
        Reply::Bytes(b) => quote(b),
        Reply::Int(n) => format!("(integer) {n}"),
        Reply::Error { status, message } => error(*status, message),
        Reply::Text(t) => match style {
            Style::Human | Style::Raw => t.trim_end_matches(['\r', '\n']).to_string(),
            Style::Line if t.bytes().any(|b| b.is_ascii_control()) => quote(t.as_bytes()),
            Style::Line => t.clone(),
        },
        Reply::Array(items) if items.is_empty() => "(empty array)".to_string(),
        Reply::Array(items) => match style {
            Style::Human | Style::Raw => numbered(items.iter().map(|i| vec![quote(i)]).collect()),
            Style::Line => items.iter().map(|i| quote(i)).collect::<Vec<_>>().join(" "),
        },
        Reply::Cluster(view) => crate::cluster_table::render_cluster(view, style == Style::Line),
        Reply::SlowLog(entries) => crate::slowlog_view::render_slowlog(entries, style == Style::Line),
        Reply::Scan { cursor, keys } => {
            let cursor = quote(cursor.to_string().as_bytes());
            match style {
                Style::Human | Style::Raw => {
                    let keys = match keys.is_empty() {
                        true => vec!["(empty array)".to_string()],
                        false => numbered(keys.iter().map(|k| vec![quote(k)]).collect())
                            .lines()
                            .map(str::to_string)
                            .collect(),
                    };
                    numbered(vec![vec![cursor], keys])
                }
                Style::Line => {
                    std::iter::once(cursor).chain(keys.iter().map(|k| quote(k))).collect::<Vec<_>>().join(" ")
                }
            }
        }
    }
}

/// `(error) STATUS message`. Server messages that already start with the
/// status name (`WRONGTYPE operation against ...`) are not prefixed twice.
fn error(status: Status, message: &str) -> String {
    let message = one_line(message);
    let name = status.name();
    if message.is_empty() {
        format!("(error) {name}")
    } else if message.strip_prefix(name).is_some_and(|r| r.starts_with(' ')) {
        format!("(error) {message}")
    } else {
        format!("(error) {name} {message}")
    }
}

/// An error found by the CLI itself, before anything was sent.
pub(crate) fn local_error(message: &str) -> String {
    format!("(error) ERR {}", one_line(message))
}

fn one_line(s: &str) -> String {
    s.replace('\r', "\\r").replace('\n', "\\n")
}

/// Numbers items redis-cli style: `1) first line`, continuation lines indented
/// under the first, indexes right-aligned when the list reaches 10 items.
fn numbered(items: Vec<Vec<String>>) -> String {
    let width = items.len().to_string().len();
    let mut out = Vec::new();
    for (i, lines) in items.into_iter().enumerate() {
        let label = format!("{:>width$}) ", i + 1);
        let pad = " ".repeat(label.len());
        for (j, line) in lines.into_iter().enumerate() {
            out.push(format!("{}{line}", if j == 0 { &label } else { &pad }));
        }
    }
    out.join("\n")
}

/// Quotes bytes like redis-cli's `sdscatrepr`: printable ASCII as is, `"` and
/// `\` escaped, common control characters by name, everything else `\xHH`.
pub(crate) fn quote(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    for &c in b {
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::tokenize;
    use bytes::Bytes;

    fn b(s: &[u8]) -> Bytes {
        Bytes::copy_from_slice(s)
    }

    #[test]
    fn scalars_print_like_redis_cli() {
        let cases = [
            (Reply::Ok, "OK"),
            (Reply::Nil, "(nil)"),
            (Reply::Int(5), "(integer) 5"),
            (Reply::Int(-2), "(integer) -2"),
            (Reply::Bytes(b(b"hello")), "\"hello\""),
            (Reply::Bytes(b(b"")), "\"\""),
            (Reply::Bytes(b(b"\x00\xff")), r#""\x00\xff""#),
            (Reply::Bytes(b(b"a\"b\\c\nd\re\tf")), r#""a\"b\\c\nd\re\tf""#),
            (Reply::Bytes(b("clé".as_bytes())), r#""cl\xc3\xa9""#),
            (Reply::Text("PONG".into()), "PONG"),
            (Reply::Text("string".into()), "string"),
        ];
        for (i, (reply, want)) in cases.into_iter().enumerate() {
            assert_eq!(render(&reply, Style::Human), want, "case {i} human");
            assert_eq!(render(&reply, Style::Line), want, "case {i} line");
        }
    }

    #[test]
    fn errors_name_the_status_once() {
        let e = |status, message: &str| Reply::Error { status, message: message.into() };
        let cases = [
            (e(Status::NotInteger, "value is not an integer"), "(error) NOT_INTEGER value is not an integer"),
            (
                e(Status::WrongType, "WRONGTYPE operation against a key"),
                "(error) WRONGTYPE operation against a key",
            ),
            (e(Status::WrongType, "WRONGTYPEX"), "(error) WRONGTYPE WRONGTYPEX"),
            (e(Status::Busy, ""), "(error) BUSY"),
            (e(Status::BadRequest, "two\nlines"), "(error) BAD_REQUEST two\\nlines"),
            // Replication statuses print like any other.
            (e(Status::NotLeader, "127.0.0.1:7441"), "(error) NOT_LEADER 127.0.0.1:7441"),
            (e(Status::NotLeader, ""), "(error) NOT_LEADER"),
            (
                e(Status::NoQuorum, "write not acknowledged by a majority"),
                "(error) NO_QUORUM write not acknowledged by a majority",
            ),
            (
                e(Status::Stale, "link to the leader down for 5000 ms"),
                "(error) STALE link to the leader down for 5000 ms",
            ),
            (e(Status::Loading, "full resync in progress"), "(error) LOADING full resync in progress"),
        ];
        for (i, (reply, want)) in cases.into_iter().enumerate() {
            assert_eq!(render(&reply, Style::Human), want, "case {i}");
            assert_eq!(render(&reply, Style::Line), want, "case {i}");
        }
        assert_eq!(local_error("syntax error"), "(error) ERR syntax error");
    }

    #[test]
    fn arrays_are_numbered() {
        let arr = |n: usize| Reply::Array((0..n).map(|i| b(format!("v{i}").as_bytes())).collect());
        assert_eq!(render(&arr(0), Style::Human), "(empty array)");
        assert_eq!(render(&arr(0), Style::Line), "(empty array)");
        assert_eq!(render(&arr(2), Style::Human), "1) \"v0\"\n2) \"v1\"");
        assert_eq!(render(&arr(2), Style::Line), "\"v0\" \"v1\"");
        let ten = render(&arr(10), Style::Human);
        assert!(ten.starts_with(" 1) \"v0\"\n 2) \"v1\"\n"), "{ten}");
        assert!(ten.ends_with("\n10) \"v9\""), "{ten}");
    }

    #[test]
    fn scan_nests_keys_under_the_cursor() {
        let scan = Reply::Scan { cursor: 42, keys: vec![b(b"a"), b(b"b c")] };
        assert_eq!(render(&scan, Style::Human), "1) \"42\"\n2) 1) \"a\"\n   2) \"b c\"");
        assert_eq!(render(&scan, Style::Line), "\"42\" \"a\" \"b c\"");
        let done = Reply::Scan { cursor: 0, keys: vec![] };
        assert_eq!(render(&done, Style::Human), "1) \"0\"\n2) (empty array)");
        assert_eq!(render(&done, Style::Line), "\"0\"");
    }

    #[test]
    fn text_is_raw_for_humans_and_one_line_for_scripts() {
        let info = Reply::Text("# keyspace\nkeys:3\n".into());
        assert_eq!(render(&info, Style::Human), "# keyspace\nkeys:3");
        assert_eq!(render(&info, Style::Line), r##""# keyspace\nkeys:3\n""##);
    }

    #[test]
    fn raw_output_is_the_bytes_themselves() {
        let raw = |r: &Reply| String::from_utf8_lossy(&render_bytes(r, Style::Raw)).into_owned();
        assert_eq!(render_bytes(&Reply::Bytes(b(b"a\"\x00\xff")), Style::Raw), b"a\"\x00\xff");
        assert_eq!(raw(&Reply::Int(-3)), "-3");
        assert_eq!(raw(&Reply::Nil), "");
        assert_eq!(raw(&Reply::Ok), "OK");
        assert_eq!(raw(&Reply::Array(vec![b(b"x"), b(b"y z")])), "x\ny z");
        assert_eq!(raw(&Reply::Array(vec![])), "");
        assert_eq!(raw(&Reply::Scan { cursor: 7, keys: vec![b(b"k")] }), "7\nk");
        assert_eq!(raw(&Reply::Text("# keyspace\nkeys:3\n".into())), "# keyspace\nkeys:3");
        let e = Reply::Error { status: Status::NotInteger, message: "value is not an integer".into() };
        assert_eq!(raw(&e), "NOT_INTEGER value is not an integer");
        assert_eq!(render_bytes(&Reply::Int(5), Style::Human), b"(integer) 5");
    }

    #[test]
    fn quoted_output_reads_back_as_the_same_bytes() {
        let all: Vec<u8> = (0..=255).collect();
        let printed = quote(&all);
        assert_eq!(tokenize(printed.as_bytes()).unwrap(), vec![all]);
    }
}
