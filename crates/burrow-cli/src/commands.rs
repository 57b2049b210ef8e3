//! The command table: every name the CLI knows, its argument syntax and its
//! help text. Help, tab completion, inline hints and arity errors all read
//! this one table, so they cannot disagree with each other.

/// One command as the user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// Upper-case name; matching is case-insensitive.
    pub name: &'static str,
    /// Argument syntax in redis-cli notation, without the name.
    pub args: &'static str,
    /// One line for `help`.
    pub summary: &'static str,
    /// The longer text for `help NAME`.
    pub description: &'static str,
    /// Handled by the CLI itself, never sent to the server.
    pub local: bool,
}

impl CommandSpec {
    /// `NAME args`, as shown in usage messages.
    pub fn usage(&self) -> String {
        if self.args.is_empty() {
            self.name.to_string()
        } else {
            format!("{} {}", self.name, self.args)
        }
    }
}

const fn remote(
    name: &'static str,
    args: &'static str,
    summary: &'static str,
    description: &'static str,
) -> CommandSpec {
    CommandSpec { name, args, summary, description, local: false }
}

const fn local(
    name: &'static str,
    args: &'static str,
    summary: &'static str,
    description: &'static str,
) -> CommandSpec {
    CommandSpec { name, args, summary, description, local: true }
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    remote(
        "PING",
        "[message]",
        "Check the connection; echoes message if given",
        "Replies PONG, or the message itself (as a quoted string) when one is given.",
    ),
    remote(
        "GET",
        "key",
        "Get the string value of a key",
        "Replies the value as a quoted string, (nil) if the key does not exist, and a\n\
         WRONGTYPE error if the key holds a list.",
    ),
    remote(
        "SET",
        "key value [EX seconds|PX milliseconds] [NX|XX] [KEEPTTL]",
        "Set a key to a string value, optionally with a TTL or a condition",
        "EX/PX give the key a time to live (must be positive). NX only sets a key that\n\
         does not exist, XX only one that does; when the condition stops the write the\n\
         reply is (nil), otherwise OK. KEEPTTL keeps the key's current TTL instead of\n\
         clearing it (not allowed together with EX/PX).",
    ),
    remote(
        "DEL",
        "key [key ...]",
        "Delete keys; replies how many existed",
        "Sends one delete per key, pipelined, and replies the number of keys removed.",
    ),
    remote(
        "EXISTS",
        "key [key ...]",
        "Count how many of the keys exist",
        "Sends one check per key, pipelined; a key named twice is counted twice, as in Redis.",
    ),
    remote(
        "EXPIRE",
        "key seconds",
        "Set a key's time to live in seconds",
        "Replies 1 if the TTL was set, 0 if the key does not exist. Zero or a negative\n\
         number of seconds deletes the key.",
    ),
    remote(
        "PEXPIRE",
        "key milliseconds",
        "Set a key's time to live in milliseconds",
        "Like EXPIRE with the time in milliseconds.",
    ),
    remote(
        "PERSIST",
        "key",
        "Remove a key's time to live",
        "Replies 1 if a TTL was removed, 0 if the key has none or does not exist.",
    ),
    remote(
        "TTL",
        "key",
        "Remaining time to live of a key, in seconds",
        "Replies -2 if the key does not exist, -1 if it has no TTL, otherwise the\n\
         remaining time rounded to the nearest second (as Redis does).",
    ),
    remote(
        "PTTL",
        "key",
        "Remaining time to live of a key, in milliseconds",
        "Replies -2 if the key does not exist, -1 if it has no TTL, otherwise the\n\
         remaining milliseconds.",
    ),
    remote(
        "TYPE",
        "key",
        "Type of the value at a key: string, list or none",
        "Prints the type name as a plain word.",
    ),
    remote(
        "INCR",
        "key",
        "Increment the integer value of a key by one",
        "A missing key counts as 0. Replies the new value; NOT_INTEGER if the value is\n\
         not a 64-bit integer, OVERFLOW if the result would not fit.",
    ),
    remote("DECR", "key", "Decrement the integer value of a key by one", "Like INCR, subtracting one."),
    remote(
        "INCRBY",
        "key increment",
        "Increment the integer value of a key by a number",
        "Like INCR, adding a signed 64-bit increment.",
    ),
    remote(
        "DECRBY",
        "key decrement",
        "Decrement the integer value of a key by a number",
        "Like INCR, subtracting a signed 64-bit decrement.",
    ),
    remote(
        "LPUSH",
        "key value [value ...]",
        "Prepend values to a list",
        "Each value is pushed onto the head in turn, so `LPUSH q a b` leaves b first.\n\
         Creates the list if needed and replies its new length.",
    ),
    remote(
        "RPUSH",
        "key value [value ...]",
        "Append values to a list",
        "Appends the values in order, creates the list if needed and replies its new length.",
    ),
    remote(
        "LPOP",
        "key [count]",
        "Remove and return values from the head of a list",
        "Without count: the first value, or (nil). With count: up to count values as a\n\
         list, or (nil) when the list does not exist.",
    ),
    remote(
        "RPOP",
        "key [count]",
        "Remove and return values from the tail of a list",
        "Like LPOP, from the tail.",
    ),
    remote("LLEN", "key", "Length of a list", "Replies 0 for a key that does not exist."),
    remote(
        "LRANGE",
        "key start stop",
        "Values of a list between two indexes, inclusive",
        "Negative indexes count from the end: `LRANGE q 0 -1` gives the whole list.",
    ),
    remote("DBSIZE", "", "Number of keys", "Counts every key in the store."),
    remote(
        "SCAN",
        "cursor [MATCH pattern] [COUNT count]",
        "Iterate over the keys, a batch at a time",
        "Start with cursor 0 and call again with the cursor each reply gives until it\n\
         is 0. MATCH filters keys with a glob (*, ?, [abc], \\x); COUNT (default 10) is\n\
         how many keys to aim for per batch. Prints the next cursor, then the keys.",
    ),
    remote(
        "DIGEST",
        "",
        "Hash of the whole dataset, to compare nodes",
        "16 hex digits summarising every live key, value, type and expiry. Two nodes\n\
         holding the same data print the same digest, whatever their history; an\n\
         empty store prints 0000000000000000. Only consistent while writes are stopped.",
    ),
    remote("FLUSHALL", "", "Delete every key", "Removes all keys from the store. There is no confirmation."),
    remote(
        "INFO",
        "[section]",
        "Server information and statistics",
        "Sections: server, clients, memory, persistence, replication, keyspace, oplog, stats;\n\
         none (or all) for every one.",
    ),
    remote(
        "SAVE",
        "",
        "Write a snapshot now and wait for it",
        "Writes a snapshot of the whole dataset to the data directory (while other clients\n\
         keep reading and writing) and replies once it is on disk. WAL segments the\n\
         snapshot covers are deleted. Fails when the server runs with --persistence off.",
    ),
    remote(
        "BGSAVE",
        "",
        "Start a snapshot in the background",
        "Replies at once and writes the snapshot in the background (see INFO persistence\n\
         for its outcome). Fails with IN_PROGRESS while another snapshot is being written.",
    ),
    remote(
        "WAIT",
        "numreplicas timeout",
        "Wait until followers hold this connection's writes",
        "Blocks until numreplicas followers have acknowledged the last write made on this\n\
         connection, or timeout milliseconds pass (0 waits without limit), then replies how\n\
         many did, possibly fewer. A standalone server replies 0 (at once for 0 replicas,\n\
         else after the timeout); a follower redirects to its leader. Run from the command\n\
         line it is a connection of its own that has written nothing.",
    ),
    remote(
        "CLUSTER",
        "",
        "The cluster as this node sees it: members, roles, term, match index, lag",
        "One row per member: id (* for the node answering), address, role as this node\n\
         sees it, term, replication link (up, syncing, down), match index (what it holds\n\
         durably), lag (records it has yet to apply) and time since this node last heard\n\
         from it; - where this node does not know. A leader knows every follower; a\n\
         follower knows itself and its leader. Served by every node, also one that knows\n\
         no leader; run with --hosts it asks the node the CLI is connected to.",
    ),
    remote(
        "SLOWLOG",
        "GET [count]|LEN|RESET",
        "Commands that ran slower than --slowlog-threshold",
        "GET shows the newest count entries (10 by default, -1 for all), newest first:\n\
         id, start time (unix microseconds), duration (microseconds), command and key\n\
         (binary-safe, truncated to 64 bytes with its full length), client address.\n\
         LEN counts the entries; RESET empties the log. The log is the connected node's own.",
    ),
    remote(
        "CONFIG",
        "GET pattern|SET name value",
        "Show settings, or change one that can change at run time",
        "GET lists every setting whose name (as the server's flag, e.g. slowlog-threshold)\n\
         matches the glob pattern (* for all), name then value; files show their path,\n\
         never their contents. SET changes a setting the server allows at run time (README's\n\
         settings table marks them); any other is refused with the reason and nothing changes.",
    ),
    local(
        "HELP",
        "[command]",
        "List the commands, or show one command's syntax and description",
        "Without an argument, lists every command with a one-line summary.",
    ),
    local(
        "CLEAR",
        "",
        "Clear the screen",
        "Clears the terminal, as redis-cli's clear (Ctrl-L does the same).",
    ),
    local("QUIT", "", "Leave the CLI", "Same as EXIT or Ctrl-D."),
    local("EXIT", "", "Leave the CLI", "Same as QUIT or Ctrl-D."),
];

/// The sections INFO knows, in the server's order (completion after
/// `INFO `); a test checks them against a live server's list.
pub const INFO_SECTIONS: &[&str] =
    &["server", "clients", "memory", "persistence", "replication", "keyspace", "oplog", "stats"];

/// The subcommands of `name` (completion after `SLOWLOG `, `CONFIG `).
pub(crate) fn subcommands(name: &str) -> &'static [&'static str] {
    match name.to_ascii_uppercase().as_str() {
        "SLOWLOG" => &["GET", "LEN", "RESET"],
        "CONFIG" => &["GET", "SET"],
        _ => &[],
    }
}

/// Looks a command up by name, ignoring case.
pub(crate) fn find(name: &[u8]) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Explains how the CLI reads input and prints replies (the end of `help`).
pub(crate) const NOTES: &str = "\
Arguments are separated by spaces. \"double quotes\" group words and understand
\\\" \\\\ \\n \\r \\t and \\xHH escapes (\"\\x00\\xff\" is two bytes); 'single quotes' are literal.

Replies: strings are quoted with unprintable bytes escaped, integers print as
(integer) N, lists are numbered, a missing value is (nil), an error prints as
(error) STATUS message. A follower's NOT_LEADER is followed: burrow-cli
reconnects to the leader it names, says so on standard error
(-> redirected to leader at ADDRESS) and stays with the leader.

With commands on the command line, burrow-cli runs that one command (-r COUNT
times, -i SECONDS apart) and exits non-zero if it failed. When standard output
is not a terminal it prints replies raw (--raw; --no-raw to keep the quotes):
values as their bytes, integers as digits, list items one per line. With standard input not a terminal, it runs one command
per line (blank lines and lines starting with # are skipped), pipelined, and
prints exactly one line per command in order: lists print on that line as their
quoted items separated by spaces (SCAN: the cursor first), multi-line text such
as INFO prints quoted with \\n escapes. It exits non-zero if any command failed.";

/// The text of `help`: every command with its summary, then [`NOTES`].
pub(crate) fn help_all() -> String {
    let width = COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::from("Commands (names and options are case-insensitive):\n\n");
    for c in COMMANDS {
        out.push_str(&format!("  {:width$}  {}\n", c.name, c.summary));
    }
    out.push_str("\nType \"help COMMAND\" for a command's syntax.\n\n");
    out.push_str(NOTES);
    out
}

/// The text of `help NAME`, or `None` for an unknown command.
pub(crate) fn help_one(name: &[u8]) -> Option<String> {
    let c = find(name)?;
    Some(format!("\n  {}\n  summary: {}\n\n{}\n", c.usage(), c.summary, indent(c.description)))
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_upper_case_and_documented() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert_eq!(c.name, c.name.to_ascii_uppercase(), "{}", c.name);
            assert!(!c.summary.is_empty() && !c.description.is_empty(), "{}", c.name);
            assert!(COMMANDS[..i].iter().all(|o| o.name != c.name), "duplicate {}", c.name);
        }
    }

    #[test]
    fn find_ignores_case() {
        assert_eq!(find(b"lrange").map(|c| c.name), Some("LRANGE"));
        assert_eq!(find(b"LrAnGe").map(|c| c.name), Some("LRANGE"));
        assert!(find(b"HGET").is_none());
    }

    #[test]
    fn help_lists_every_command() {
        let all = help_all();
        for c in COMMANDS {
            assert!(all.contains(c.name) && all.contains(c.summary), "{}", c.name);
        }
        let set = help_one(b"set").unwrap();
        assert!(set.contains("SET key value [EX seconds|PX milliseconds] [NX|XX] [KEEPTTL]"), "{set}");
        assert!(help_one(b"nope").is_none());
    }
}
