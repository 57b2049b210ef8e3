//! Standard input that is not a terminal: one command per line, pipelined.
//!
//! Lines are parsed as they are read and their requests gathered into one
//! pipeline, sent when [`BATCH`] requests are waiting or when no more input
//! is buffered (so a slow producer still sees answers as it goes, while a
//! file is loaded in large batches). Each command prints exactly one line in
//! [`Style::Line`], in input order; a line the CLI refuses prints its
//! `(error) ERR ...` line in its place without being sent. Blank lines and
//! lines starting with `#` are skipped; `quit`/`exit` stop reading; `help`
//! prints its (multi-line) text. A request over the server's key or value
//! limit (asked once, `Session::refuse_oversized`) is not sent: its line
//! prints TOO_LARGE and the lines after it run (issue 12: a 17 MB value
//! used to cost the connection and the commands after it).
//!
//! With `--raw` replies print as `Style::Raw` (multi-line replies then take
//! several lines).

use std::io::{BufRead, BufReader, Read, Write};

use burrow_proto::Request;

use super::format::{self, Style};
use super::parse::{self, Command, Plan};
use super::session::{CliError, Session};
use super::token::tokenize;

/// Most requests sent in one pipeline.
pub(crate) const BATCH: usize = 1000;

/// One input line's output, waiting for its batch to be sent.
enum Pending {
    /// Text known without the server (local errors, help).
    Text { text: String, failed: bool },
    /// A command whose `plan.requests.len()` requests are in the batch; the
    /// requests themselves were moved into the batch.
    Remote { plan: Plan, count: usize },
}

/// Runs every command in `input`, printing results to `out`. Returns whether
/// every command succeeded.
pub(crate) fn run(
    session: &mut Session,
    input: impl Read,
    out: &mut impl Write,
    style: Style,
) -> Result<bool, CliError> {
    let mut input = BufReader::with_capacity(64 * 1024, input);
    let mut all_ok = true;
    let mut pending = Vec::new();
    let mut batch: Vec<Request> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let eof = input.read_until(b'\n', &mut line)? == 0;
        let mut quit = false;
        if !eof {
            match interpret(&line) {
                None => {}
                Some(Ok(Command::Quit)) => quit = true,
                Some(Ok(Command::Clear)) => {}
                // A stream, not one reply: it would swallow the lines after it.
                Some(Ok(Command::Monitor)) => pending.push(Pending::Text {
                    text: format::local_error(
                        "MONITOR streams until interrupted: run it as `burrow-cli MONITOR`",
                    ),
                    failed: true,
                }),
                Some(Ok(Command::Help(name))) => {
                    let (text, failed) = match super::help_text(name.as_deref()) {
                        Ok(text) => (text, false),
                        Err(e) => (e, true),
                    };
                    pending.push(Pending::Text { text, failed });
                }
                Some(Ok(Command::Remote(mut plan))) => match session.refuse_oversized(&plan)? {
                    Some(refusal) => pending.push(Pending::Text {
                        text: String::from_utf8_lossy(&format::render_bytes(&refusal, style)).into_owned(),
                        failed: true,
                    }),
                    None => {
                        let count = plan.requests.len();
                        batch.append(&mut plan.requests);
                        pending.push(Pending::Remote { plan, count });
                    }
                },
                Some(Err(message)) => {
                    pending.push(Pending::Text { text: format::local_error(&message), failed: true })
                }
            }
        }
        if eof || quit || batch.len() >= BATCH || input.buffer().is_empty() {
            all_ok &= flush(session, &mut pending, &mut batch, out, style)?;
        }
        if eof || quit {
            return Ok(all_ok);
        }
    }
}

/// Parses one input line; `None` for blank lines and comments.
fn interpret(line: &[u8]) -> Option<Result<Command, String>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let trimmed = line.trim_ascii_start();
    if trimmed.is_empty() || trimmed.starts_with(b"#") {
        return None;
    }
    let args = match tokenize(line) {
        Ok(args) => args,
        Err(e) => return Some(Err(format!("Invalid argument(s): {e}"))),
    };
    Some(parse::parse(&args).map_err(|e| e.to_string()))
}

/// Sends the batch and prints every pending output in order.
fn flush(
    session: &mut Session,
    pending: &mut Vec<Pending>,
    batch: &mut Vec<Request>,
    out: &mut impl Write,
    style: Style,
) -> Result<bool, CliError> {
    let mut replies = if batch.is_empty() { Vec::new() } else { session.exchange(batch)? }.into_iter();
    batch.clear();
    let mut all_ok = true;
    for p in pending.drain(..) {
        match p {
            Pending::Text { text, failed } => {
                all_ok &= !failed;
                writeln!(out, "{text}")?;
            }
            Pending::Remote { plan, count } => {
                let reply = plan.finish(replies.by_ref().take(count).collect());
                all_ok &= !matches!(reply, burrow_proto::Reply::Error { .. });
                out.write_all(&format::render_bytes(&reply, style))?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(all_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_and_comments_are_skipped() {
        for line in ["", "\n", "   \r\n", "# comment\n", "  # indented comment"] {
            assert!(interpret(line.as_bytes()).is_none(), "{line:?}");
        }
        assert!(matches!(interpret(b"GET k\r\n"), Some(Ok(Command::Remote(_)))));
        assert_eq!(
            interpret(b"GET \"k\n"),
            Some(Err("Invalid argument(s): unterminated double quote".to_string()))
        );
        assert!(matches!(interpret(b"GET\n"), Some(Err(m)) if m.starts_with("wrong number of arguments")));
    }
}
