//! From arguments to requests: redis-cli syntax in, protocol [`Request`]s out.
//!
//! A command becomes a [`Plan`]: the requests to send (pipelined) and how to
//! fold their replies into the one reply the user sees. Most commands are one
//! request; `DEL`/`EXISTS` with several keys send one request per key and sum
//! the answers, and `TTL` converts the server's milliseconds to seconds.
//! Everything is checked here, before anything is sent, so a typo costs no
//! round trip and can never half-run.

use bytes::Bytes;
use thiserror::Error;

use super::commands::{self, CommandSpec};
use burrow_proto::{End, Reply, Request, SetCondition, SlowLogCommand};

/// A parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// `help` or `help NAME`.
    Help(Option<Vec<u8>>),
    /// `quit` / `exit`.
    Quit,
    /// `clear`: clears the screen (REPL).
    Clear,
    Remote(Plan),
}

/// Requests for one command, and how to combine their replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub requests: Vec<Request>,
    pub combine: Combine,
}

/// How a [`Plan`]'s replies become the one reply shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Combine {
    /// Exactly one request; its reply as is.
    Single,
    /// Sum of integer replies (multi-key DEL/EXISTS).
    Sum,
    /// A TTL in milliseconds shown in seconds, as Redis's TTL rounds it.
    MillisToSeconds,
}

impl Plan {
    fn single(req: Request) -> Plan {
        Plan { requests: vec![req], combine: Combine::Single }
    }

    /// Folds the replies (one per request, in order) into the reply to show.
    /// The first error reply wins: a partial sum would hide the failure.
    pub(crate) fn finish(&self, mut replies: Vec<Reply>) -> Reply {
        if let Some(e) = replies.iter().find(|r| matches!(r, Reply::Error { .. })) {
            return e.clone();
        }
        match self.combine {
            Combine::Single => replies.pop().unwrap_or(Reply::Nil),
            Combine::Sum => {
                let mut sum = 0i64;
                for r in &replies {
                    match r {
                        Reply::Int(n) => sum = sum.saturating_add(*n),
                        other => return other.clone(),
                    }
                }
                Reply::Int(sum)
            }
            Combine::MillisToSeconds => match replies.pop() {
                Some(Reply::Int(ms)) if ms >= 0 => Reply::Int(ms.saturating_add(500) / 1000),
                Some(other) => other,
                None => Reply::Nil,
            },
        }
    }
}

/// A command line the CLI refuses before sending anything.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum ParseError {
    #[error("unknown command '{0}', type 'help' for the list of commands")]
    UnknownCommand(String),
    /// An unknown name close to a known one (a typo).
    #[error("unknown command '{typed}', did you mean '{near}'? (type 'help' for the list of commands)")]
    DidYouMean { typed: String, near: &'static str },
    #[error("wrong number of arguments for '{name}'; usage: {usage}")]
    Arity { name: &'static str, usage: String },
    #[error("value '{value}' is not an integer or out of range")]
    NotInteger { value: String },
    #[error("invalid expire time in '{0}' command")]
    InvalidExpire(&'static str),
    #[error("syntax error; usage: {0}")]
    Syntax(String),
}

/// Parses tokenized arguments (`args[0]` is the command name).
pub(crate) fn parse(args: &[Vec<u8>]) -> Result<Command, ParseError> {
    let Some((name, rest)) = args.split_first() else {
        return Err(ParseError::UnknownCommand(String::new()));
    };
    let spec = commands::find(name).ok_or_else(|| {
        let typed = lossy(name).into_owned();
        match super::suggest::nearest(name) {
            Some(near) => ParseError::DidYouMean { typed, near },
            None => ParseError::UnknownCommand(typed),
        }
    })?;
    let p = Parser { spec, args: rest };
    let key = |i: usize| Bytes::copy_from_slice(&rest[i]);
    let plan = match spec.name {
        "HELP" => {
            p.arity(0, 1)?;
            return Ok(Command::Help(rest.first().cloned()));
        }
        "QUIT" | "EXIT" => {
            p.arity(0, 0)?;
            return Ok(Command::Quit);
        }
        "CLEAR" => {
            p.arity(0, 0)?;
            return Ok(Command::Clear);
        }
        "PING" => {
            p.arity(0, 1)?;
            Plan::single(Request::Ping {
                payload: rest.first().map(|m| Bytes::copy_from_slice(m)).unwrap_or_default(),
            })
        }
        "GET" => Plan::single(Request::Get { key: p.key_only()? }),
        "SET" => p.set()?,
        "DEL" | "EXISTS" => {
            p.arity(1, usize::MAX)?;
            let del = spec.name == "DEL";
            let requests: Vec<Request> = (0..rest.len())
                .map(|i| if del { Request::Del { key: key(i) } } else { Request::Exists { key: key(i) } })
                .collect();
            let combine = if requests.len() == 1 { Combine::Single } else { Combine::Sum };
            Plan { requests, combine }
        }
        "EXPIRE" | "PEXPIRE" => {
            p.arity(2, 2)?;
            let n = int(&rest[1])?;
            let ttl_ms = if spec.name == "EXPIRE" {
                n.checked_mul(1000).ok_or(ParseError::InvalidExpire("expire"))?
            } else {
                n
            };
            Plan::single(Request::Expire { key: key(0), ttl_ms })
        }
        "PERSIST" => Plan::single(Request::Persist { key: p.key_only()? }),
        "TTL" => {
            Plan { requests: vec![Request::Ttl { key: p.key_only()? }], combine: Combine::MillisToSeconds }
        }
        "PTTL" => Plan::single(Request::Ttl { key: p.key_only()? }),
        "TYPE" => Plan::single(Request::Type { key: p.key_only()? }),
        "INCR" => Plan::single(Request::Incr { key: p.key_only()? }),
        "DECR" => Plan::single(Request::Decr { key: p.key_only()? }),
        "INCRBY" | "DECRBY" => {
            p.arity(2, 2)?;
            let n = int(&rest[1])?;
            let delta = if spec.name == "INCRBY" {
                n
            } else {
                n.checked_neg().ok_or_else(|| ParseError::NotInteger { value: lossy(&rest[1]).into() })?
            };
            Plan::single(Request::IncrBy { key: key(0), delta })
        }
        "LPUSH" | "RPUSH" => {
            p.arity(2, usize::MAX)?;
            let end = if spec.name == "LPUSH" { End::Left } else { End::Right };
            let values = rest[1..].iter().map(|v| Bytes::copy_from_slice(v)).collect();
            Plan::single(Request::Push { key: key(0), end, values })
        }
        "LPOP" | "RPOP" => {
            p.arity(1, 2)?;
            let end = if spec.name == "LPOP" { End::Left } else { End::Right };
            let count = rest.get(1).map(|c| number::<u32>(c)).transpose()?;
            Plan::single(Request::Pop { key: key(0), end, count })
        }
        "LLEN" => Plan::single(Request::LLen { key: p.key_only()? }),
        "LRANGE" => {
            p.arity(3, 3)?;
            Plan::single(Request::LRange { key: key(0), start: int(&rest[1])?, stop: int(&rest[2])? })
        }
        "DBSIZE" => {
            p.arity(0, 0)?;
            Plan::single(Request::DbSize)
        }
        "SCAN" => p.scan()?,
        "DIGEST" => {
            p.arity(0, 0)?;
            Plan::single(Request::Digest)
        }
        "FLUSHALL" => {
            p.arity(0, 0)?;
            Plan::single(Request::FlushAll)
        }
        "CLUSTER" => {
            p.arity(0, 0)?;
            Plan::single(Request::Cluster)
        }
        "INFO" => {
            p.arity(0, 1)?;
            Plan::single(Request::Info { section: rest.first().map(|s| key_of(s)).unwrap_or_default() })
        }
        "SAVE" => {
            p.arity(0, 0)?;
            Plan::single(Request::Snapshot { background: false })
        }
        "BGSAVE" => {
            p.arity(0, 0)?;
            Plan::single(Request::Snapshot { background: true })
        }
        "WAIT" => {
            p.arity(2, 2)?;
            Plan::single(Request::Wait {
                replicas: number::<u32>(&rest[0])?,
                timeout_ms: number::<u64>(&rest[1])?,
            })
        }
        "SLOWLOG" => {
            p.arity(1, 2)?;
            let sub = lossy(&rest[0]).to_ascii_uppercase();
            let command = match (sub.as_str(), rest.get(1)) {
                ("GET", None) => SlowLogCommand::Get { count: None },
                // -1 (or any negative count) shows every entry, as in Redis.
                ("GET", Some(n)) => {
                    SlowLogCommand::Get { count: Some(u32::try_from(int(n)?).unwrap_or(u32::MAX)) }
                }
                ("LEN", None) => SlowLogCommand::Len,
                ("RESET", None) => SlowLogCommand::Reset,
                _ => return Err(ParseError::Arity { name: p.spec.name, usage: p.spec.usage() }),
            };
            Plan::single(Request::SlowLog(command))
        }
        "CONFIG" => {
            p.arity(2, 3)?;
            let sub = lossy(&rest[0]).to_ascii_uppercase();
            match (sub.as_str(), rest.len()) {
                ("GET", 2) => Plan::single(Request::ConfigGet { pattern: key(1) }),
                ("SET", 3) => Plan::single(Request::ConfigSet { name: key(1), value: key(2) }),
                _ => return Err(ParseError::Arity { name: p.spec.name, usage: p.spec.usage() }),
            }
        }
        // A table entry without a parser; `table_and_parser_agree` keeps this unreachable.
        other => return Err(ParseError::UnknownCommand(other.to_string())),
    };
    Ok(Command::Remote(plan))
}

struct Parser<'a> {
    spec: &'static CommandSpec,
    args: &'a [Vec<u8>],
}

impl Parser<'_> {
    fn arity(&self, min: usize, max: usize) -> Result<(), ParseError> {
        if (min..=max).contains(&self.args.len()) {
            Ok(())
        } else {
            Err(ParseError::Arity { name: self.spec.name, usage: self.spec.usage() })
        }
    }

    fn key_only(&self) -> Result<Bytes, ParseError> {
        self.arity(1, 1)?;
        Ok(key_of(&self.args[0]))
    }

    fn syntax(&self) -> ParseError {
        ParseError::Syntax(self.spec.usage())
    }

    /// `SET key value [EX seconds|PX milliseconds] [NX|XX] [KEEPTTL]`
    fn set(&self) -> Result<Plan, ParseError> {
        self.arity(2, usize::MAX)?;
        let (mut ttl_ms, mut condition, mut keep_ttl) = (None, SetCondition::Always, false);
        let mut opts = self.args[2..].iter();
        while let Some(opt) = opts.next() {
            match opt.to_ascii_uppercase().as_slice() {
                unit @ (b"EX" | b"PX") => {
                    let n = number::<i64>(opts.next().ok_or_else(|| self.syntax())?)?;
                    let ms = if unit == b"EX" { n.checked_mul(1000) } else { Some(n) };
                    let ms = ms.filter(|ms| *ms > 0).ok_or(ParseError::InvalidExpire("set"))?;
                    if ttl_ms.is_some() || keep_ttl {
                        return Err(self.syntax());
                    }
                    ttl_ms = Some(ms as u64);
                }
                cond @ (b"NX" | b"XX") => {
                    let want = if cond == b"NX" { SetCondition::IfAbsent } else { SetCondition::IfPresent };
                    if condition != SetCondition::Always && condition != want {
                        return Err(self.syntax());
                    }
                    condition = want;
                }
                b"KEEPTTL" => {
                    if ttl_ms.is_some() {
                        return Err(self.syntax());
                    }
                    keep_ttl = true;
                }
                _ => return Err(self.syntax()),
            }
        }
        Ok(Plan::single(Request::Set {
            key: key_of(&self.args[0]),
            value: key_of(&self.args[1]),
            ttl_ms,
            condition,
            keep_ttl,
        }))
    }

    /// `SCAN cursor [MATCH pattern] [COUNT count]`
    fn scan(&self) -> Result<Plan, ParseError> {
        self.arity(1, usize::MAX)?;
        let cursor = number::<u64>(&self.args[0])?;
        let (mut pattern, mut count) = (Bytes::new(), 0u32);
        let mut opts = self.args[1..].iter();
        while let Some(opt) = opts.next() {
            let val = opts.next().ok_or_else(|| self.syntax())?;
            match opt.to_ascii_uppercase().as_slice() {
                b"MATCH" => pattern = key_of(val),
                b"COUNT" => {
                    count = number::<u32>(val)?;
                    if count == 0 {
                        return Err(self.syntax());
                    }
                }
                _ => return Err(self.syntax()),
            }
        }
        Ok(Plan::single(Request::Scan { cursor, count, pattern }))
    }
}

fn key_of(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn int(b: &[u8]) -> Result<i64, ParseError> {
    number::<i64>(b)
}

/// Parses a decimal number the way Redis does: no sign on unsigned values, no
/// spaces, no `+`, no leading zeros games beyond what `str::parse` accepts.
fn number<T: std::str::FromStr>(b: &[u8]) -> Result<T, ParseError> {
    let err = || ParseError::NotInteger { value: lossy(b).into_owned() };
    if b.first() == Some(&b'+') {
        return Err(err());
    }
    std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::tokenize;
    use burrow_proto::Status;

    fn parse_line(line: &str) -> Result<Command, ParseError> {
        parse(&tokenize(line.as_bytes()).expect("tokenizes"))
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn one(req: Request) -> Command {
        Command::Remote(Plan::single(req))
    }

    fn set(key: &str, value: &str, ttl_ms: Option<u64>, condition: SetCondition, keep_ttl: bool) -> Command {
        one(Request::Set { key: b(key), value: b(value), ttl_ms, condition, keep_ttl })
    }

    #[test]
    fn every_command_parses() {
        use SetCondition::*;
        let cases: Vec<(&str, Command)> = vec![
            ("PING", one(Request::Ping { payload: Bytes::new() })),
            ("ping hello", one(Request::Ping { payload: b("hello") })),
            ("GET k", one(Request::Get { key: b("k") })),
            ("get \"a b\"", one(Request::Get { key: b("a b") })),
            ("SET k v", set("k", "v", None, Always, false)),
            ("SET k v PX 1500 NX", set("k", "v", Some(1500), IfAbsent, false)),
            ("set k v ex 2", set("k", "v", Some(2000), Always, false)),
            ("SET k v XX", set("k", "v", None, IfPresent, false)),
            ("SET k v xx KeepTtl", set("k", "v", None, IfPresent, true)),
            ("SET k v NX NX", set("k", "v", None, IfAbsent, false)),
            (
                "SET k \"\\x00\\xff\"",
                one(Request::Set {
                    key: b("k"),
                    value: Bytes::from_static(b"\x00\xff"),
                    ttl_ms: None,
                    condition: Always,
                    keep_ttl: false,
                }),
            ),
            ("DEL k", one(Request::Del { key: b("k") })),
            ("EXISTS k", one(Request::Exists { key: b("k") })),
            (
                "DEL a b",
                Command::Remote(Plan {
                    requests: vec![Request::Del { key: b("a") }, Request::Del { key: b("b") }],
                    combine: Combine::Sum,
                }),
            ),
            (
                "exists a a",
                Command::Remote(Plan {
                    requests: vec![Request::Exists { key: b("a") }, Request::Exists { key: b("a") }],
                    combine: Combine::Sum,
                }),
            ),
            ("EXPIRE k 10", one(Request::Expire { key: b("k"), ttl_ms: 10_000 })),
            ("EXPIRE k -1", one(Request::Expire { key: b("k"), ttl_ms: -1000 })),
            ("PEXPIRE k 1500", one(Request::Expire { key: b("k"), ttl_ms: 1500 })),
            ("PERSIST k", one(Request::Persist { key: b("k") })),
            (
                "TTL k",
                Command::Remote(Plan {
                    requests: vec![Request::Ttl { key: b("k") }],
                    combine: Combine::MillisToSeconds,
                }),
            ),
            ("PTTL k", one(Request::Ttl { key: b("k") })),
            ("TYPE k", one(Request::Type { key: b("k") })),
            ("INCR k", one(Request::Incr { key: b("k") })),
            ("DECR k", one(Request::Decr { key: b("k") })),
            ("INCRBY k 5", one(Request::IncrBy { key: b("k"), delta: 5 })),
            ("INCRBY k -5", one(Request::IncrBy { key: b("k"), delta: -5 })),
            ("DECRBY k 5", one(Request::IncrBy { key: b("k"), delta: -5 })),
            ("LPUSH q a b", one(Request::Push { key: b("q"), end: End::Left, values: vec![b("a"), b("b")] })),
            ("RPUSH q a", one(Request::Push { key: b("q"), end: End::Right, values: vec![b("a")] })),
            ("LPOP q", one(Request::Pop { key: b("q"), end: End::Left, count: None })),
            ("RPOP q 3", one(Request::Pop { key: b("q"), end: End::Right, count: Some(3) })),
            ("LLEN q", one(Request::LLen { key: b("q") })),
            ("LRANGE q 0 -1", one(Request::LRange { key: b("q"), start: 0, stop: -1 })),
            ("DBSIZE", one(Request::DbSize)),
            ("SCAN 0", one(Request::Scan { cursor: 0, count: 0, pattern: Bytes::new() })),
            ("SCAN 0 COUNT 100", one(Request::Scan { cursor: 0, count: 100, pattern: Bytes::new() })),
            ("scan 7 match user:* count 5", one(Request::Scan { cursor: 7, count: 5, pattern: b("user:*") })),
            ("FLUSHALL", one(Request::FlushAll)),
            ("DIGEST", one(Request::Digest)),
            ("cluster", one(Request::Cluster)),
            ("digest", one(Request::Digest)),
            ("INFO", one(Request::Info { section: Bytes::new() })),
            ("INFO keyspace", one(Request::Info { section: b("keyspace") })),
            ("SAVE", one(Request::Snapshot { background: false })),
            ("bgsave", one(Request::Snapshot { background: true })),
            ("WAIT 0 0", one(Request::Wait { replicas: 0, timeout_ms: 0 })),
            ("slowlog get", one(Request::SlowLog(SlowLogCommand::Get { count: None }))),
            ("SLOWLOG GET 5", one(Request::SlowLog(SlowLogCommand::Get { count: Some(5) }))),
            ("SLOWLOG GET -1", one(Request::SlowLog(SlowLogCommand::Get { count: Some(u32::MAX) }))),
            ("SLOWLOG len", one(Request::SlowLog(SlowLogCommand::Len))),
            ("SLOWLOG RESET", one(Request::SlowLog(SlowLogCommand::Reset))),
            ("config get slow*", one(Request::ConfigGet { pattern: Bytes::from_static(b"slow*") })),
            (
                "CONFIG SET slowlog-max-len 5",
                one(Request::ConfigSet {
                    name: Bytes::from_static(b"slowlog-max-len"),
                    value: Bytes::from_static(b"5"),
                }),
            ),
            ("wait 2 1500", one(Request::Wait { replicas: 2, timeout_ms: 1500 })),
            ("help", Command::Help(None)),
            ("HELP set", Command::Help(Some(b"set".to_vec()))),
            ("quit", Command::Quit),
            ("EXIT", Command::Quit),
            ("clear", Command::Clear),
        ];
        for (i, (line, want)) in cases.into_iter().enumerate() {
            assert_eq!(parse_line(line), Ok(want), "case {i}: {line}");
        }
    }

    #[test]
    fn bad_input_is_refused_locally() {
        let arity = |name: &'static str| ParseError::Arity {
            name,
            usage: commands::find(name.as_bytes()).unwrap().usage(),
        };
        let syntax = |name: &str| ParseError::Syntax(commands::find(name.as_bytes()).unwrap().usage());
        let nan = |v: &str| ParseError::NotInteger { value: v.into() };
        let cases: Vec<(&str, ParseError)> = vec![
            ("NOPE x", ParseError::UnknownCommand("NOPE".into())),
            ("PING a b", arity("PING")),
            ("GET", arity("GET")),
            ("GET a b", arity("GET")),
            ("SET k", arity("SET")),
            ("SET k v EX", syntax("SET")),
            ("SET k v EX 0", ParseError::InvalidExpire("set")),
            ("SET k v PX -5", ParseError::InvalidExpire("set")),
            ("SET k v EX 9223372036854775807", ParseError::InvalidExpire("set")),
            ("SET k v EX ten", nan("ten")),
            ("SET k v EX 1 PX 5", syntax("SET")),
            ("SET k v NX XX", syntax("SET")),
            ("SET k v EX 1 KEEPTTL", syntax("SET")),
            ("SET k v KEEPTTL PX 1", syntax("SET")),
            ("SET k v GET", syntax("SET")),
            ("DEL", arity("DEL")),
            ("EXISTS", arity("EXISTS")),
            ("EXPIRE k", arity("EXPIRE")),
            ("EXPIRE k 1.5", nan("1.5")),
            ("EXPIRE k 9223372036854775807", ParseError::InvalidExpire("expire")),
            ("PEXPIRE k x", nan("x")),
            ("PERSIST", arity("PERSIST")),
            ("TTL a b", arity("TTL")),
            ("PTTL", arity("PTTL")),
            ("TYPE", arity("TYPE")),
            ("INCR", arity("INCR")),
            ("DECR a b", arity("DECR")),
            ("INCRBY k", arity("INCRBY")),
            ("INCRBY k five", nan("five")),
            ("INCRBY k +5", nan("+5")),
            ("INCRBY k 9223372036854775808", nan("9223372036854775808")),
            ("DECRBY k -9223372036854775808", nan("-9223372036854775808")),
            ("LPUSH q", arity("LPUSH")),
            ("RPUSH", arity("RPUSH")),
            ("LPOP", arity("LPOP")),
            ("LPOP q -1", nan("-1")),
            ("RPOP q 1 2", arity("RPOP")),
            ("LLEN", arity("LLEN")),
            ("LRANGE q 0", arity("LRANGE")),
            ("LRANGE q a 1", nan("a")),
            ("DBSIZE x", arity("DBSIZE")),
            ("SCAN", arity("SCAN")),
            ("SCAN -1", nan("-1")),
            ("SCAN 0 COUNT", syntax("SCAN")),
            ("SCAN 0 COUNT 0", syntax("SCAN")),
            ("SCAN 0 LIMIT 5", syntax("SCAN")),
            ("SCAN 0 MATCH", syntax("SCAN")),
            ("FLUSHALL now", arity("FLUSHALL")),
            ("DIGEST x", arity("DIGEST")),
            ("CLUSTER nodes", arity("CLUSTER")),
            ("SLOWLOG", arity("SLOWLOG")),
            ("SLOWLOG LEN 1", arity("SLOWLOG")),
            ("SLOWLOG FOO", arity("SLOWLOG")),
            ("SLOWLOG GET x", nan("x")),
            ("CONFIG GET", arity("CONFIG")),
            ("CONFIG SET a", arity("CONFIG")),
            ("CONFIG GET a b", arity("CONFIG")),
            ("INFO a b", arity("INFO")),
            ("WAIT", arity("WAIT")),
            ("WAIT 1", arity("WAIT")),
            ("WAIT 1 100 x", arity("WAIT")),
            ("WAIT -1 100", nan("-1")),
            ("WAIT 1 -100", nan("-100")),
            ("WAIT one 100", nan("one")),
            ("HELP a b", arity("HELP")),
            ("QUIT now", arity("QUIT")),
            ("CLEAR all", arity("CLEAR")),
            ("GTE k", ParseError::DidYouMean { typed: "GTE".into(), near: "GET" }),
        ];
        for (i, (line, want)) in cases.into_iter().enumerate() {
            assert_eq!(parse_line(line), Err(want), "case {i}: {line}");
        }
        assert_eq!(parse(&[]), Err(ParseError::UnknownCommand(String::new())));
    }

    #[test]
    fn table_and_parser_agree() {
        for c in commands::COMMANDS {
            // A command with subcommands takes its first word from them.
            let first = match c.name {
                "SLOWLOG" => "LEN",
                "CONFIG" => "GET",
                _ => "1",
            };
            let args: Vec<Vec<u8>> =
                [c.name, first, "2", "3"].iter().map(|a| a.as_bytes().to_vec()).collect();
            let parsed = (0..args.len()).map(|n| parse(&args[..=n])).collect::<Vec<_>>();
            assert!(
                parsed.iter().all(|r| !matches!(r, Err(ParseError::UnknownCommand(_)))),
                "{} has no parser",
                c.name
            );
            assert!(parsed.iter().any(|r| r.is_ok()), "{} never parses", c.name);
        }
    }

    #[test]
    fn error_messages_read_well() {
        assert_eq!(
            parse_line("GET").unwrap_err().to_string(),
            "wrong number of arguments for 'GET'; usage: GET key"
        );
        assert_eq!(
            parse_line("INCRBY k x").unwrap_err().to_string(),
            "value 'x' is not an integer or out of range"
        );
    }

    fn plan(line: &str) -> Plan {
        match parse_line(line) {
            Ok(Command::Remote(p)) => p,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn replies_combine() {
        let err = Reply::Error { status: Status::WrongType, message: "no".into() };
        let cases: Vec<(&str, Vec<Reply>, Reply)> = vec![
            ("GET k", vec![Reply::Nil], Reply::Nil),
            ("DEL a b c", vec![Reply::Int(1), Reply::Int(0), Reply::Int(1)], Reply::Int(2)),
            ("EXISTS a b", vec![Reply::Int(1), err.clone()], err.clone()),
            ("TTL k", vec![Reply::Int(-2)], Reply::Int(-2)),
            ("TTL k", vec![Reply::Int(-1)], Reply::Int(-1)),
            ("TTL k", vec![Reply::Int(1499)], Reply::Int(1)),
            ("TTL k", vec![Reply::Int(1500)], Reply::Int(2)),
            ("TTL k", vec![Reply::Int(9_999)], Reply::Int(10)),
            ("TTL k", vec![Reply::Int(0)], Reply::Int(0)),
            ("TTL k", vec![err.clone()], err.clone()),
            ("PTTL k", vec![Reply::Int(1499)], Reply::Int(1499)),
        ];
        for (i, (line, replies, want)) in cases.into_iter().enumerate() {
            assert_eq!(plan(line).finish(replies), want, "case {i}: {line}");
        }
    }
}
