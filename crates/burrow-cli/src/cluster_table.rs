//! CLUSTER's reply as a table: one row per member, what the answering
//! node knows of it (`-` where it knows nothing), under a line about the
//! node itself. Scripts (one line per reply) get `key=value` words instead.

use burrow_proto::{ClusterView, MemberRole, MemberView};

/// Renders `view`; `line`: on one line, for scripts.
pub(crate) fn render_cluster(view: &ClusterView, line: bool) -> String {
    let me = format!(
        "node {} · {} · term {} · leader {} · commit index {}",
        view.node_id,
        view.role.name(),
        view.term,
        if view.leader_id == 0 { "none known".to_string() } else { view.leader_id.to_string() },
        view.commit_index
    );
    if line {
        let mut words = vec![format!(
            "node={} role={} term={} leader={} commit_index={}",
            view.node_id,
            view.role.name(),
            view.term,
            view.leader_id,
            view.commit_index
        )];
        for m in &view.members {
            let c = cells(view, m);
            words.push(format!(
                "member={} addr={} role={} term={} link={} match={} lag={} last_contact_ms={}",
                m.id,
                c[1],
                c[2],
                c[3],
                c[4],
                c[5],
                c[6],
                m.last_contact_ms.map_or("-".to_string(), |ms| ms.to_string())
            ));
        }
        return words.join("; ");
    }
    if view.members.is_empty() {
        return format!("{me}\n(no cluster members: a standalone server)");
    }
    let header = ["id", "addr", "role", "term", "link", "match", "lag", "last contact"].map(String::from);
    let rows: Vec<[String; 8]> = view.members.iter().map(|m| cells(view, m)).collect();
    let mut widths = header.each_ref().map(|h| h.len());
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let fmt = |row: &[String; 8]| {
        let padded: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![me, fmt(&header)];
    out.extend(rows.iter().map(fmt));
    out.push("(* this node)".to_string());
    out.join("\n")
}

/// A member's row: unknown values as `-`; the answering node's id starred.
fn cells(view: &ClusterView, m: &MemberView) -> [String; 8] {
    let dash = || "-".to_string();
    let num = |v: Option<u64>| v.map_or_else(dash, |v| v.to_string());
    [
        if m.id == view.node_id { format!("{}*", m.id) } else { m.id.to_string() },
        m.addr.clone(),
        m.role.name().to_string(),
        // The answering node's term is the one it knows them in.
        if m.role == MemberRole::Unknown { dash() } else { view.term.to_string() },
        m.link.map_or_else(dash, |l| l.name().to_string()),
        num(m.match_index),
        num(m.lag),
        m.last_contact_ms.map_or_else(dash, |ms| format!("{ms} ms")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use burrow_proto::LinkStatus;

    fn view() -> ClusterView {
        let m = |id, role, link, match_index, lag, last_contact_ms| MemberView {
            id,
            addr: format!("127.0.0.1:744{id}"),
            role,
            link,
            match_index,
            lag,
            last_contact_ms,
        };
        ClusterView {
            node_id: 2,
            role: MemberRole::Follower,
            term: 3,
            leader_id: 1,
            commit_index: 42,
            members: vec![
                m(1, MemberRole::Leader, Some(LinkStatus::Up), None, None, Some(12)),
                m(2, MemberRole::Follower, None, Some(42), Some(0), None),
                m(3, MemberRole::Unknown, None, None, None, None),
            ],
        }
    }

    #[test]
    fn a_follower_s_view_prints_as_an_aligned_table() {
        let want = "\
node 2 · follower · term 3 · leader 1 · commit index 42
id  addr            role      term  link  match  lag  last contact
1   127.0.0.1:7441  leader    3     up    -      -    12 ms
2*  127.0.0.1:7442  follower  3     -     42     0    -
3   127.0.0.1:7443  unknown   -     -     -      -    -
(* this node)";
        assert_eq!(render_cluster(&view(), false), want);
    }

    #[test]
    fn scripts_get_one_line_and_standalone_says_so() {
        let line = render_cluster(&view(), true);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("node=2 role=follower term=3 leader=1 commit_index=42; member=1 addr=127.0.0.1:7441 role=leader term=3 link=up match=- lag=- last_contact_ms=12;"), "{line}");
        let alone = ClusterView {
            node_id: 0,
            role: MemberRole::Standalone,
            term: 1,
            leader_id: 0,
            commit_index: 7,
            members: vec![],
        };
        assert_eq!(
            render_cluster(&alone, false),
            "node 0 · standalone · term 1 · leader none known · commit index 7\n(no cluster members: a standalone server)"
        );
    }
}
