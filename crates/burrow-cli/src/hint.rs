//! Inline hints and name completion for the REPL, as pure functions of the
//! line typed so far (the rustyline glue in `repl.rs` only calls these).
//!
//! A hint shows the arguments still to type, from the command table's syntax:
//! after `SET` it shows ` key value [EX seconds|PX milliseconds] [NX|XX] [KEEPTTL]`,
//! after `SET k v EX ` it shows `seconds [NX|XX] [KEEPTTL]`. Arguments typed so
//! far use up the syntax's groups in order; an option keyword (`EX`, `MATCH`)
//! uses up the bracketed group that offers it, wherever it stands, plus its
//! parameter. When the line no longer fits the syntax no hint is shown, rather
//! than a wrong one.

use super::commands::{self, subcommands, COMMANDS, INFO_SECTIONS};
use super::token::tokenize;

/// One group of a syntax string: `key`, `[count]`, `[key ...]`, `[NX|XX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group<'a> {
    text: &'a str,
    kind: Kind<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind<'a> {
    /// One argument, required or optional (`key`, `[message]`).
    Arg,
    /// Any number of further arguments (`[value ...]`).
    Repeat,
    /// Keyword alternatives, each maybe with one parameter (`[EX seconds|PX milliseconds]`).
    Options(Vec<(&'a str, Option<&'a str>)>),
}

/// Splits a syntax string into groups, keeping bracketed parts whole.
fn groups(syntax: &str) -> Vec<Group<'_>> {
    let mut out = Vec::new();
    let mut rest = syntax.trim();
    while !rest.is_empty() {
        let end = if rest.starts_with('[') {
            rest.find(']').map_or(rest.len(), |i| i + 1)
        } else {
            rest.find(' ').unwrap_or(rest.len())
        };
        let text = &rest[..end];
        out.push(Group { text, kind: kind_of(text) });
        rest = rest[end..].trim_start();
    }
    out
}

fn kind_of(text: &str) -> Kind<'_> {
    let inner = text.trim_start_matches('[').trim_end_matches(']');
    if inner.ends_with("...") {
        return Kind::Repeat;
    }
    let first = inner.split([' ', '|']).next().unwrap_or("");
    if !text.starts_with('[') || first.chars().any(|c| c.is_ascii_lowercase()) {
        return Kind::Arg;
    }
    Kind::Options(
        inner
            .split('|')
            .map(|alt| match alt.split_once(' ') {
                Some((kw, param)) => (kw, Some(param)),
                None => (alt, None),
            })
            .collect(),
    )
}

/// The hint to show after `line` (the cursor at its end), if any.
pub(crate) fn hint(line: &str) -> Option<String> {
    let args = tokenize(line.as_bytes()).ok()?;
    let (name, typed) = args.split_first()?;
    let spec = commands::find(name)?;
    let mut groups = groups(spec.args);
    let mut pending_param = None;
    let mut i = 0;
    while i < typed.len() {
        let front = groups.first()?;
        match &front.kind {
            Kind::Arg => {
                groups.remove(0);
                i += 1;
            }
            Kind::Repeat => i += 1,
            Kind::Options(_) => {
                let (at, param) = groups.iter().enumerate().find_map(|(at, g)| match &g.kind {
                    Kind::Options(alts) => alts
                        .iter()
                        .find(|(kw, _)| kw.as_bytes().eq_ignore_ascii_case(&typed[i]))
                        .map(|(_, param)| (at, *param)),
                    _ => None,
                })?;
                groups.remove(at);
                i += 1;
                if let Some(param) = param {
                    if i == typed.len() {
                        pending_param = Some(param);
                    }
                    i += 1;
                }
            }
        }
    }
    let words: Vec<&str> = pending_param.into_iter().chain(groups.iter().map(|g| g.text)).collect();
    if words.is_empty() {
        return None;
    }
    let text = words.join(" ");
    Some(if line.ends_with(|c: char| c.is_ascii_whitespace()) { text } else { format!(" {text}") })
}

/// Completions of the word of `line` ending at `pos`: the byte offset where
/// the word starts and the candidates, in the word's case. The first word
/// completes to command names; the word after `help` too, and the word after
/// `INFO` to its section names, after `SLOWLOG` and `CONFIG` to their subcommands.
pub(crate) fn complete(line: &str, pos: usize) -> (usize, Vec<String>) {
    let before = &line[..pos];
    let first_start = before.len() - before.trim_start().len();
    let start = before.rfind(|c: char| c.is_ascii_whitespace()).map_or(0, |i| i + 1).max(first_start);
    let word = &before[start..];
    let earlier: Vec<&str> = before[..start].split_ascii_whitespace().collect();
    let candidates: Vec<&str> = match earlier.as_slice() {
        [] => COMMANDS.iter().map(|c| c.name).collect(),
        [cmd] if cmd.eq_ignore_ascii_case("help") => COMMANDS.iter().map(|c| c.name).collect(),
        [cmd] if cmd.eq_ignore_ascii_case("info") => INFO_SECTIONS.to_vec(),
        [cmd] if !subcommands(cmd).is_empty() => subcommands(cmd).to_vec(),
        _ => return (pos, Vec::new()),
    };
    // Section names are lower case; command names follow the typed case.
    let lower = word.is_empty() || !word.chars().any(|c| c.is_ascii_uppercase());
    let lower = if earlier.is_empty() { !word.is_empty() && lower } else { lower };
    let names = candidates
        .into_iter()
        .filter(|name| {
            name.len() >= word.len() && name.as_bytes()[..word.len()].eq_ignore_ascii_case(word.as_bytes())
        })
        .map(|name| if lower { name.to_ascii_lowercase() } else { name.to_ascii_uppercase() })
        .collect();
    (start, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_follow_the_syntax() {
        let cases: &[(&str, Option<&str>)] = &[
            ("SET", Some(" key value [EX seconds|PX milliseconds] [NX|XX] [KEEPTTL]")),
            ("set ", Some("key value [EX seconds|PX milliseconds] [NX|XX] [KEEPTTL]")),
            ("SET k", Some(" value [EX seconds|PX milliseconds] [NX|XX] [KEEPTTL]")),
            ("SET k v ", Some("[EX seconds|PX milliseconds] [NX|XX] [KEEPTTL]")),
            ("SET k v ex ", Some("seconds [NX|XX] [KEEPTTL]")),
            ("SET k v EX 5 ", Some("[NX|XX] [KEEPTTL]")),
            ("SET k v NX ", Some("[EX seconds|PX milliseconds] [KEEPTTL]")),
            ("SET k v NX PX 5 KEEPTTL ", None),
            ("SET k v bogus ", None),
            ("DEL ", Some("key [key ...]")),
            ("DEL a ", Some("[key ...]")),
            ("DEL a b c ", Some("[key ...]")),
            ("LRANGE q 0 ", Some("stop")),
            ("LRANGE q 0 -1 ", None),
            ("LRANGE q 0 -1 extra ", None),
            ("SCAN 0 ", Some("[MATCH pattern] [COUNT count]")),
            ("SCAN 0 COUNT ", Some("count [MATCH pattern]")),
            ("SCAN 0 COUNT 5 ", Some("[MATCH pattern]")),
            ("ping ", Some("[message]")),
            ("PING hi ", None),
            ("DBSIZE", None),
            ("WAIT", Some(" numreplicas timeout")),
            ("wait 1 ", Some("timeout")),
            ("WAIT 1 100 ", None),
            ("GET \"a b\" ", None),
            ("GET \"a b", None),
            ("NOPE ", None),
            ("", None),
        ];
        for (i, (line, want)) in cases.iter().enumerate() {
            assert_eq!(hint(line).as_deref(), *want, "case {i}: {line:?}");
        }
    }

    #[test]
    fn completion_matches_names_ignoring_case() {
        assert_eq!(complete("lr", 2), (0, vec!["lrange".to_string()]));
        assert_eq!(complete("LR", 2), (0, vec!["LRANGE".to_string()]));
        assert_eq!(complete("  Inc", 5), (2, vec!["INCR".to_string(), "INCRBY".to_string()]));
        assert_eq!(complete("decr", 4), (0, vec!["decr".to_string(), "decrby".to_string()]));
        assert_eq!(complete("GET k", 5), (5, vec![]));
        assert_eq!(complete("zz", 2), (0, vec![]));
        assert_eq!(complete("wa", 2), (0, vec!["wait".to_string()]));
        assert_eq!(complete("CLU", 3), (0, vec!["CLUSTER".to_string()]));
        assert_eq!(complete("", 0).1.len(), COMMANDS.len());
        // After `help`: command names; after `INFO`: its sections.
        assert_eq!(complete("help lr", 7), (5, vec!["lrange".to_string()]));
        assert_eq!(complete("HELP LR", 7), (5, vec!["LRANGE".to_string()]));
        assert_eq!(complete("help ", 5).1.len(), COMMANDS.len());
        assert_eq!(complete("info re", 7), (5, vec!["replication".to_string()]));
        assert_eq!(complete("INFO ", 5), (5, INFO_SECTIONS.iter().map(|s| s.to_string()).collect()));
        assert_eq!(complete("INFO memory ", 12), (12, vec![]));
        assert_eq!(complete("SLOWLOG R", 9), (8, vec!["RESET".to_string()]));
        assert_eq!(complete("slowlog ", 8).1, ["get", "len", "reset"]);
        assert_eq!(complete("CONFIG S", 8), (7, vec!["SET".to_string()]));
        assert_eq!(complete("help get x", 10), (10, vec![]));
    }
}
