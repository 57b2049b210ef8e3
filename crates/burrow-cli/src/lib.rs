//! `burrow-cli`: a REPL and one-shot client with redis-cli syntax.
//!
//! Three modes, chosen like redis-cli chooses them:
//! - **one-shot**: command words after the flags (`burrow-cli --port 7440 SET k v`)
//!   run that command, print its reply and exit non-zero if it failed;
//! - **pipe**: standard input is not a terminal, so every input line is a
//!   command, pipelined, printing exactly one output line per command
//!   (`pipe.rs`, `format::Style::Line`);
//! - **REPL**: otherwise, an interactive prompt with history, completion,
//!   hints and `help` (`repl.rs`, `hint.rs`).
//!
//! and two monitoring modes of redis-cli: `--stat` (`stat.rs`) and
//! `--latency` / `--latency-history` (`latency.rs`). Flags follow redis-cli
//! (`-h` host, `-p` port, `-r` repeat, `-i` interval, `--raw`); help is
//! `--help` only.
//!
//! Input goes through the tokenizer (`token.rs`, redis-cli quoting) and the
//! parser (`parse.rs`, redis-cli syntax, checked locally) into plans of
//! protocol requests; replies are printed by `format.rs`. The command table
//! drives help, completion, hints and usage errors.
//!
//! **What the crate exports** is what the `burrow-cli` binary and the tests
//! use: [`run`] with its [`CliArgs`] and [`CliError`]; [`Session`], the
//! blocking connection that follows leader redirects (the tests drive it
//! directly); and the command table [`COMMANDS`] of [`CommandSpec`]s, which
//! the tests check against the protocol. Tokenizer, parser, formatting and
//! the modes are private: their behaviour is tested through the binary.

mod cluster_table;
mod commands;
mod format;
mod hint;
mod latency;
mod parse;
mod pipe;
mod repl;
mod session;
mod slowlog_view;
mod stat;
mod suggest;
mod token;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};

use clap::Parser;

pub use commands::{CommandSpec, COMMANDS, INFO_SECTIONS};
pub use session::{CliError, Session};

/// Command-line flags of `burrow-cli`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "burrow-cli",
    version,
    about = "Command-line client for Burrow, with redis-cli syntax",
    after_help = "Without a command: an interactive prompt when standard input is a terminal, \
                  otherwise one command per input line, pipelined. Type \"help\" for the commands.\n\
                  Flags go before the command; words after the command name are its arguments, \
                  even when they start with '-' (SET k -1).",
    // `-h` is the host, as in redis-cli; help is `--help` only.
    disable_help_flag = true
)]
pub struct CliArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Server host name or address.
    #[arg(short = 'h', long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(short = 'p', long, default_value_t = 7440)]
    pub port: u16,
    /// A cluster's nodes, `host:port,host:port,…` (instead of --host and
    /// --port): the CLI finds the leader and follows it across leader
    /// changes.
    #[arg(long, value_delimiter = ',', value_parser = session::parse_host_port, value_name = "HOST:PORT,...")]
    #[arg(conflicts_with_all = ["host", "port"])]
    pub hosts: Vec<String>,
    /// File holding the client secret, for a server started with
    /// --auth-secret-file (default: the BURROW_AUTH_FILE environment
    /// variable). Secrets come from files, never from the command line.
    #[arg(long, value_name = "PATH")]
    pub auth_file: Option<std::path::PathBuf>,
    /// Run the command COUNT times (-1: until interrupted), as redis-cli -r.
    #[arg(short = 'r', value_name = "COUNT", default_value_t = 1, allow_negative_numbers = true)]
    #[arg(value_parser = parse_repeat)]
    pub repeat: i64,
    /// Seconds between repeats (-r) and between --stat lines (default 1);
    /// the length of each --latency-history sample (default 15). Fractions
    /// are allowed: -i 0.1.
    #[arg(short = 'i', value_name = "SECONDS", value_parser = parse_seconds)]
    pub interval: Option<f64>,
    /// Print replies raw: strings as their bytes, integers as digits, list
    /// items one per line, no quotes (the default when standard output is
    /// not a terminal, for one-shot commands and the REPL).
    #[arg(long, overrides_with = "no_raw")]
    pub raw: bool,
    /// Print replies formatted (quoted, `(integer)`) even when standard output
    /// is not a terminal.
    #[arg(long, overrides_with = "raw")]
    pub no_raw: bool,
    /// A rolling line every second (-i): keys, memory, clients, requests and
    /// ops/s, from INFO, as redis-cli --stat.
    #[arg(long, conflicts_with_all = ["latency", "latency_history", "command"])]
    pub stat: bool,
    /// Sample PING round trips until interrupted: min, max, average (ms).
    #[arg(long, conflicts_with_all = ["latency_history", "command"])]
    pub latency: bool,
    /// As --latency, one line per -i seconds (default 15), each a new sample.
    #[arg(long, conflicts_with = "command")]
    pub latency_history: bool,
    /// Connect with TLS (a server started with --tls-cert-file); needs --cacert.
    #[arg(long, requires = "cacert")]
    pub tls: bool,
    /// PEM file of the CA certificates the server's certificate must chain to.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub cacert: Option<std::path::PathBuf>,
    /// PEM client certificate to present (servers with --tls-client-auth), with --key.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "key"])]
    pub cert: Option<std::path::PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<std::path::PathBuf>,
    /// Name the server's certificate must carry (default: --host when it is
    /// a name, else the address connected to).
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub sni: Option<String>,
    /// A command to run once, e.g. `SET k v PX 1500 NX`. Words after its
    /// name are its arguments, even when they start with `-`.
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// `-r COUNT`: a positive count, or -1 for "until interrupted".
fn parse_repeat(s: &str) -> Result<i64, String> {
    match s.parse::<i64>() {
        Ok(n) if n >= 1 || n == -1 => Ok(n),
        _ => Err(format!("'{s}' is not a count (1 or more, or -1 for ever)")),
    }
}

/// `-i SECONDS`: a finite, non-negative number of seconds.
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && (0.0..=86_400.0).contains(&x) => Ok(x),
        _ => Err(format!("'{s}' is not a number of seconds (0 to 86400, e.g. 0.5)")),
    }
}

/// The environment variable naming the auth file when `--auth-file` is not given.
pub const AUTH_FILE_ENV: &str = "BURROW_AUTH_FILE";

/// Runs the CLI; `Ok(false)` means a command failed (exit status 1).
pub fn run(args: CliArgs) -> Result<bool, CliError> {
    let mut session = if args.hosts.is_empty() {
        Session::new(&args.host, args.port)?
    } else {
        Session::cluster(&args.hosts)?
    };
    let auth_file = args.auth_file.or_else(|| std::env::var_os(AUTH_FILE_ENV).map(Into::into));
    if let Some(path) = auth_file {
        session.set_auth(burrow_client::Secret::from_file(&path)?);
    }
    if let (true, Some(ca)) = (args.tls, &args.cacert) {
        let client = args.cert.as_deref().zip(args.key.as_deref());
        let mut tls = burrow_client::TlsOptions::from_files(ca, client)?;
        let host_name =
            (args.hosts.is_empty() && args.host.parse::<std::net::IpAddr>().is_err()).then_some(&args.host);
        if let Some(name) = args.sni.as_ref().or(host_name) {
            tls = tls.server_name(name)?;
        }
        session.set_tls(tls);
    }
    let interval = |default: f64| std::time::Duration::from_secs_f64(args.interval.unwrap_or(default));
    let tty = std::io::stdout().is_terminal();
    if args.stat {
        return stat::run(&mut session, interval(1.0), &mut std::io::stdout().lock());
    }
    if args.latency || args.latency_history {
        let history = args.latency_history.then(|| interval(latency::HISTORY_SECONDS));
        return latency::run(&mut session, history, tty, &mut std::io::stdout().lock());
    }
    // As redis-cli: raw unless standard output is a terminal, or asked.
    let raw = args.raw || (!args.no_raw && !tty);
    if !args.command.is_empty() {
        let words: Vec<Vec<u8>> = args.command.into_iter().map(os_bytes).collect();
        let style = if raw { format::Style::Raw } else { format::Style::Human };
        let repeat = Repeat { count: args.repeat, every: interval(0.0) };
        return one_shot(&mut session, &words, style, repeat);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        repl::run(&mut session, if raw { format::Style::Raw } else { format::Style::Human })?;
        Ok(true)
    } else {
        // One line per command unless --raw is given: the default keeps
        // output lines matching input lines, whatever the replies hold.
        let style = if args.raw { format::Style::Raw } else { format::Style::Line };
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        pipe::run(&mut session, stdin.lock(), &mut out, style)
    }
}

/// `-r COUNT -i SECONDS`: how often a one-shot command runs.
#[derive(Debug, Clone, Copy)]
struct Repeat {
    /// -1: until interrupted.
    count: i64,
    every: std::time::Duration,
}

/// Runs one command given as separate words (already split by the shell, so
/// no quote processing), `repeat.count` times.
fn one_shot(
    session: &mut Session,
    words: &[Vec<u8>],
    style: format::Style,
    repeat: Repeat,
) -> Result<bool, CliError> {
    let mut out = std::io::stdout().lock();
    let mut all_ok = true;
    let mut done = 0i64;
    while repeat.count < 0 || done < repeat.count {
        if done > 0 && !repeat.every.is_zero() {
            std::thread::sleep(repeat.every);
        }
        done += 1;
        let (text, ok) = match parse::parse(words) {
            Err(e) => (format::local_error(&e.to_string()).into_bytes(), false),
            Ok(parse::Command::Quit) => return Ok(all_ok),
            Ok(parse::Command::Clear) => (Vec::new(), true),
            Ok(parse::Command::Help(name)) => match help_text(name.as_deref()) {
                Ok(text) => (text.into_bytes(), true),
                Err(text) => (text.into_bytes(), false),
            },
            Ok(parse::Command::Remote(plan)) => {
                let reply = session.run(&plan)?;
                let ok = !matches!(reply, burrow_proto::Reply::Error { .. });
                (format::render_bytes(&reply, style), ok)
            }
        };
        all_ok &= ok;
        out.write_all(&text)?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    Ok(all_ok)
}

/// The text of `help` / `help NAME`; `Err` (an error line) for an unknown name.
pub(crate) fn help_text(name: Option<&[u8]>) -> Result<String, String> {
    match name {
        None => Ok(commands::help_all()),
        Some(name) => commands::help_one(name).ok_or_else(|| {
            format::local_error(&format!(
                "no help for '{}', type 'help' for the list of commands",
                String::from_utf8_lossy(name)
            ))
        }),
    }
}

#[cfg(unix)]
fn os_bytes(s: OsString) -> Vec<u8> {
    std::os::unix::ffi::OsStringExt::into_vec(s)
}

#[cfg(not(unix))]
fn os_bytes(s: OsString) -> Vec<u8> {
    s.to_string_lossy().into_owned().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_trailing_command() {
        let a = CliArgs::try_parse_from(["burrow-cli"]).unwrap();
        assert_eq!((a.host.as_str(), a.port, a.command.len()), ("127.0.0.1", 7440, 0));
        let a = CliArgs::try_parse_from(["burrow-cli", "--port", "7000", "LRANGE", "q", "0", "-1"]).unwrap();
        assert_eq!(a.port, 7000);
        assert_eq!(a.command, ["LRANGE", "q", "0", "-1"].map(OsString::from));
        let a = CliArgs::try_parse_from(["burrow-cli", "--host", "::1", "INCRBY", "k", "-5"]).unwrap();
        assert_eq!(a.host, "::1");
        assert_eq!(a.command, ["INCRBY", "k", "-5"].map(OsString::from));
        let a =
            CliArgs::try_parse_from(["burrow-cli", "--hosts", "127.0.0.1:1,[::1]:2", "GET", "k"]).unwrap();
        assert_eq!(a.hosts, ["127.0.0.1:1", "[::1]:2"]);
        assert_eq!(a.command, ["GET", "k"].map(OsString::from));
        assert!(CliArgs::try_parse_from(["burrow-cli", "--hosts", "127.0.0.1"]).is_err());
        let a = CliArgs::try_parse_from(["burrow-cli", "--auth-file", "/s", "PING"]).unwrap();
        assert_eq!(a.auth_file, Some("/s".into()));
        // redis-cli habits: -h is the host, words after the command are its own.
        let a =
            CliArgs::try_parse_from(["burrow-cli", "-h", "10.0.0.1", "-p", "7", "SET", "k", "-1"]).unwrap();
        assert_eq!((a.host.as_str(), a.port), ("10.0.0.1", 7));
        assert_eq!(a.command, ["SET", "k", "-1"].map(OsString::from));
        let a =
            CliArgs::try_parse_from(["burrow-cli", "-r", "3", "-i", "0.01", "--raw", "INCR", "c"]).unwrap();
        assert_eq!((a.repeat, a.interval, a.raw), (3, Some(0.01), true));
        let a = CliArgs::try_parse_from(["burrow-cli", "--raw", "--no-raw", "GET", "k"]).unwrap();
        assert!(!a.raw && a.no_raw, "the last of --raw/--no-raw wins");
        let a = CliArgs::try_parse_from(["burrow-cli", "-r", "-1", "PING"]).unwrap();
        assert_eq!(a.repeat, -1);
        for bad in [
            &["burrow-cli", "--bogus", "GET", "k"][..],
            &["burrow-cli", "-r", "0", "PING"],
            &["burrow-cli", "-i", "-1", "PING"],
            &["burrow-cli", "-i", "nan", "PING"],
            &["burrow-cli", "--stat", "PING"],
            &["burrow-cli", "--latency", "--stat"],
        ] {
            let e = CliArgs::try_parse_from(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
        let e = CliArgs::try_parse_from(["burrow-cli", "--help"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(CliArgs::try_parse_from(["burrow-cli", "--hosts", "127.0.0.1:1", "--port", "2"]).is_err());
    }

    #[test]
    fn addresses_print_as_users_write_them() {
        assert_eq!(Session::new("127.0.0.1", 7440).unwrap().addr(), "127.0.0.1:7440");
        assert_eq!(Session::new("::1", 7440).unwrap().addr(), "[::1]:7440");
    }

    #[test]
    fn help_text_names_unknown_commands() {
        assert!(help_text(None).unwrap().contains("LRANGE"));
        assert!(help_text(Some(b"lrange")).unwrap().contains("LRANGE key start stop"));
        assert_eq!(
            help_text(Some(b"nope")),
            Err("(error) ERR no help for 'nope', type 'help' for the list of commands".to_string())
        );
    }
}
