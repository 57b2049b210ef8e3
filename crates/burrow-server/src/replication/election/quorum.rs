//! Majorities, and the leader's commit rule (§5.4.2).

/// Smallest number of voters that is a majority of `voters`.
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

/// The commit index a leader of `leader_term` may advance to, given the
/// durable match index of every voter (its own included, in any order)
/// and the term of each record it still knows (`term_at`).
///
/// Raft §5.4.2: a leader counts replicas only for a record of its own
/// term. The index a majority holds is the `majority`-th highest match
/// index; if that record is of an earlier term it is *not* committed by
/// counting (Figure 8: a later leader could still overwrite it) — it
/// commits once a record of the current term above it does. Terms never
/// decrease along a log, so no lower index can be of the leader's term
/// either, and the answer is then `current`. Never returns less than
/// `current`: a commit index does not move back.
pub fn commit_index(
    current: u64,
    leader_term: u64,
    matched: &[u64],
    term_at: impl Fn(u64) -> Option<u64>,
) -> u64 {
    if matched.is_empty() {
        return current;
    }
    let mut sorted = matched.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let candidate = sorted[majority(matched.len()) - 1];
    if candidate > current && term_at(candidate) == Some(leader_term) {
        candidate
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majorities() {
        assert_eq!([1, 2, 3, 4, 5].map(majority), [1, 2, 2, 3, 3]);
    }

    #[test]
    fn commit_rule_counts_only_current_term_records() {
        // Log terms: index 1..=3 of term 1, 4..=5 of term 2.
        let terms = |i: u64| match i {
            0 => Some(0),
            1..=3 => Some(1),
            4..=5 => Some(2),
            _ => None,
        };
        // (current, leader_term, matched, expected)
        let cases: &[(u64, u64, &[u64], u64)] = &[
            (0, 2, &[5, 5, 0], 5), // majority at 5, of the leader's term
            (0, 2, &[5, 3, 0], 0), // majority at 3, an old term: not by counting
            (0, 1, &[5, 3, 0], 3), // a leader of term 1 may commit 3
            (4, 2, &[5, 4, 4], 4), // never goes back
            (0, 2, &[5, 4, 4, 0, 0], 4),
            (0, 2, &[5, 5, 0, 0, 0], 0), // 2 of 5 is no majority
            (0, 2, &[5], 5),             // single node
            (0, 3, &[5, 5, 5], 0),       // no record of term 3 yet
        ];
        for &(current, term, matched, want) in cases {
            assert_eq!(commit_index(current, term, matched, terms), want, "{current} {term} {matched:?}");
        }
    }
}
