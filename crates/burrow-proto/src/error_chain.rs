//! An error and its causes on one line — `outer: cause: root cause`, what
//! anyhow's `{:#}` prints — for code that holds a typed error (log lines,
//! error replies, the tools' messages). Every error type in the workspace
//! keeps to one rule: its message says its own context and never repeats
//! its `source`, so printed through this (or `{:#}` at a binary's edge)
//! each cause appears exactly once. It lives here because every crate of
//! the workspace depends on this one.

use std::error::Error;
use std::fmt;

/// Displays `self.0` followed by each of its sources, `: `-separated. A
/// cause whose message the text so far already ends with is skipped: some
/// other crates' errors (rustyline's `ReadlineError::Io`) print their
/// source in their own message too.
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(e) = cause {
            let message = e.to_string();
            if !text.ends_with(&message) {
                text.push_str(": ");
                text.push_str(&message);
            }
            cause = e.source();
        }
        f.write_str(&text)
    }
}

impl ErrorChain<'_> {
    /// The first error in the chain whose message contains its source's
    /// message, with that source's message: a breach of the rule above.
    /// Each crate's tests walk a value of each of its error types with it.
    pub fn repeated_cause(&self) -> Option<(String, String)> {
        let mut error = self.0;
        while let Some(source) = error.source() {
            let (message, cause) = (error.to_string(), source.to_string());
            if !cause.is_empty() && message.contains(&cause) {
                return Some((message, cause));
            }
            error = source;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open {path}")]
    struct Open {
        path: &'static str,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("recovery failed")]
    struct Recovery(#[source] Open);

    #[test]
    fn every_cause_is_printed_once_in_order() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = Recovery(Open { path: "data/wal", source: io });
        assert_eq!(ErrorChain(&e).to_string(), "recovery failed: cannot open data/wal: no such file");
        assert_eq!(ErrorChain(&e.0.source).to_string(), "no such file");
    }

    /// Prints its source in its own message, as some crates' errors do.
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn a_cause_already_printed_is_not_printed_again() {
        let e = Repeats(std::io::Error::other("disk on fire"));
        assert_eq!(ErrorChain(&e).to_string(), "disk on fire");
        assert_eq!(
            ErrorChain(&e).repeated_cause(),
            Some(("disk on fire".into(), "disk on fire".into())),
            "and the breach is found"
        );
    }

    /// Every error type of this crate, each variant with a source, prints
    /// that source only through the chain.
    #[test]
    fn no_error_of_this_crate_prints_its_source_twice() {
        use crate::{ArrayError, CodecError, ReplyError};
        let io = || std::io::Error::other("connection reset");
        let errors: [&(dyn Error + 'static); 5] = [
            &Recovery(Open { path: "data/wal", source: io() }),
            &CodecError::Io(io()),
            &CodecError::BadMagic { got: 1, expected: 2 },
            &ReplyError::Array(ArrayError::Truncated { index: 3 }),
            &ArrayError::Trailing { extra: 4 },
        ];
        for (i, e) in errors.into_iter().enumerate() {
            assert_eq!(ErrorChain(e).repeated_cause(), None, "#{i}: {e:?}");
        }
    }
}
