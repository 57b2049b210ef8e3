//! The interactive REPL: rustyline with history in `~/.burrow_history`, tab
//! completion of command names, and inline hints of a command's arguments.
//!
//! A failed connection does not end the session: the prompt turns into
//! `not connected> ` and every command tries to connect again first.

use std::borrow::Cow;
use std::io::Write;
use std::path::PathBuf;

use burrow_proto::ErrorChain;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hint, Hinter};
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use super::format::{self, Style};
use super::parse::{self, Command};
use super::session::{CliError, Session};
use super::token::tokenize;

/// History file name, in the user's home directory.
pub(crate) const HISTORY_FILE: &str = ".burrow_history";
/// Lines of history kept.
const HISTORY_LEN: usize = 1000;

/// Runs the REPL until `quit`, Ctrl-D or Ctrl-C.
pub(crate) fn run(session: &mut Session, style: Style) -> Result<(), CliError> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .max_history_size(HISTORY_LEN)?
        .auto_add_history(false)
        .build();
    let mut editor: Editor<CliHelper, FileHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(CliHelper));
    let history = history_path();
    if let Some(path) = &history {
        match editor.load_history(path) {
            Ok(()) => {}
            Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("Cannot read history from {}: {e}", path.display()),
        }
    }
    if let Err(e) = session.connect() {
        eprintln!("{}", ErrorChain(&e));
    }
    loop {
        let prompt =
            if session.is_connected() { format!("{}> ", session.addr()) } else { "not connected> ".into() };
        let line = match editor.readline(&prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if line.trim().is_empty() {
            continue;
        }
        editor.add_history_entry(line.as_str())?;
        if let Some(path) = &history {
            // Saved after every line so a killed session keeps its history.
            if let Err(e) = editor.append_history(path) {
                eprintln!("Cannot save history to {}: {e}", path.display());
            }
        }
        match execute(session, &line, style) {
            Next::Continue => {}
            Next::Clear => editor.clear_screen()?,
            Next::Quit => return Ok(()),
        }
    }
}

/// What the REPL does after a line.
enum Next {
    Continue,
    Clear,
    Quit,
}

/// Runs one line and prints its result.
fn execute(session: &mut Session, line: &str, style: Style) -> Next {
    let args = match tokenize(line.as_bytes()) {
        Ok(args) => args,
        Err(e) => {
            println!("{}", format::local_error(&format!("Invalid argument(s): {e}")));
            return Next::Continue;
        }
    };
    match parse::parse(&args) {
        Err(e) => println!("{}", format::local_error(&e.to_string())),
        Ok(Command::Quit) => return Next::Quit,
        Ok(Command::Clear) => return Next::Clear,
        Ok(Command::Help(name)) => match super::help_text(name.as_deref()) {
            Ok(text) | Err(text) => println!("{text}"),
        },
        Ok(Command::Monitor) => {
            if let Err(e) = session.monitor(&mut std::io::stdout().lock()) {
                eprintln!("{}", ErrorChain(&e));
            }
        }
        Ok(Command::Remote(plan)) => match session.run(&plan) {
            Ok(reply) => {
                // Raw values go out as their bytes, not as lossy text.
                let mut out = std::io::stdout().lock();
                let shown = format::render_bytes(&reply, style);
                if let Err(e) = out.write_all(&shown).and_then(|()| out.write_all(b"\n")) {
                    eprintln!("Cannot write the reply: {e}");
                }
            }
            Err(e @ CliError::Lost { .. }) => {
                eprintln!("{} (will reconnect on the next command)", ErrorChain(&e))
            }
            Err(e) => eprintln!("{}", ErrorChain(&e)),
        },
    }
    Next::Continue
}

/// `$HOME/.burrow_history`, or `None` (no history) when HOME is unset.
fn history_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(HISTORY_FILE))
}

/// Completion, hints and hint styling for the line editor.
struct CliHelper;

/// An argument-syntax hint: shown dimmed, never inserted into the line.
struct ArgHint(String);

impl Hint for ArgHint {
    fn display(&self) -> &str {
        &self.0
    }

    fn completion(&self) -> Option<&str> {
        None
    }
}

impl Hinter for CliHelper {
    type Hint = ArgHint;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<ArgHint> {
        if pos < line.len() {
            return None;
        }
        super::hint::hint(line).map(ArgHint)
    }
}

impl Completer for CliHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, names) = super::hint::complete(line, pos);
        let pairs = names
            .into_iter()
            .map(|name| Pair { display: name.clone(), replacement: format!("{name} ") })
            .collect();
        Ok((start, pairs))
    }
}

impl Highlighter for CliHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        // Dim grey, as redis-cli shows its hints.
        Cow::Owned(format!("\x1b[90m{hint}\x1b[0m"))
    }
}

impl Validator for CliHelper {}

impl Helper for CliHelper {}
