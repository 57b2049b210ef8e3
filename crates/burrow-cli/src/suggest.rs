//! "Did you mean X?" for a mistyped command name: the known name at the
//! smallest edit distance (with swapped letters as one edit, ignoring case), when it is close
//! enough to be a typo rather than another word. A dozen lines, so no
//! dependency.

use super::commands::COMMANDS;

/// The command `typed` most likely misspells: at most one edit away for
/// names of up to four letters, two for longer ones.
pub(crate) fn nearest(typed: &[u8]) -> Option<&'static str> {
    if typed.is_empty() {
        return None;
    }
    let allowed = if typed.len() <= 4 { 1 } else { 2 };
    COMMANDS
        .iter()
        .map(|c| (distance(typed, c.name.as_bytes()), c.name))
        .filter(|&(d, _)| d <= allowed)
        .min_by_key(|&(d, _)| d)
        .map(|(_, name)| name)
}

/// Edits (insert, delete, substitute one byte, swap two neighbours) from
/// `a` to `b`, ignoring ASCII case: the optimal string alignment distance,
/// so the commonest typo, two letters swapped (`GTE`), is one edit.
fn distance(a: &[u8], b: &[u8]) -> usize {
    let eq = |i: usize, j: usize| a[i].eq_ignore_ascii_case(&b[j]);
    // d[i][j]: edits from a[..i] to b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let mut best =
                (d[i - 1][j - 1] + usize::from(!eq(i - 1, j - 1))).min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && eq(i - 1, j - 2) && eq(i - 2, j - 1) {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_the_command_and_other_words_do_not() {
        let cases: &[(&str, Option<&str>)] = &[
            ("GTE", Some("GET")),
            ("st", Some("SET")),
            ("lrnage", Some("LRANGE")),
            ("INCRBYY", Some("INCRBY")),
            ("DBSIZ", Some("DBSIZE")),
            ("expir", Some("EXPIRE")),
            ("NOPE", None),
            ("HGETALL", None),
            ("", None),
        ];
        for (i, (typed, want)) in cases.iter().enumerate() {
            assert_eq!(nearest(typed.as_bytes()), *want, "case {i}: {typed}");
        }
        assert_eq!(distance(b"kitten", b"sitting"), 3);
        assert_eq!(distance(b"", b"abc"), 3);
        assert_eq!(distance(b"Get", b"GET"), 0);
        assert_eq!(distance(b"GTE", b"GET"), 1);
    }
}
