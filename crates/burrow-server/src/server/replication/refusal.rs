//! What a node that is not the leader answers a write (or WAIT) with.

use std::net::SocketAddr;

use burrow_proto::Status;

/// NOT_LEADER naming the leader this node knows, or NO_LEADER while it
/// knows none, so clients wait and retry instead of reading an empty
/// address. Roles are fixed by the cluster file for now, so a follower
/// always knows its leader; elections pass `None` between leaders.
pub(super) fn not_leader(leader: Option<SocketAddr>) -> (Status, String) {
    match leader {
        Some(addr) => (Status::NotLeader, addr.to_string()),
        None => (Status::NoLeader, "no leader known; retry later".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burrow_proto::{encode_response, BodyType, Opcode};
    use bytes::BytesMut;

    /// The response bytes of protocol.md's cluster example `name`.
    fn documented_response(name: &str) -> Vec<u8> {
        let doc = include_str!("../../../../../protocol.md");
        let marker = format!("<!-- cluster-example: {name} -->");
        let from = doc.find(&marker).unwrap_or_else(|| panic!("protocol.md has no {marker}"));
        let block = doc[from..].split("```hex response").nth(1).expect("a response block");
        let block = &block[..block.find("```").expect("the block's end")];
        let hex = block.lines().flat_map(|l| l.split('#').next().unwrap_or("").split_whitespace());
        hex.map(|b| u8::from_str_radix(b, 16).expect("hex byte")).collect()
    }

    #[test]
    fn a_known_leader_is_named_and_none_known_is_no_leader_as_documented() {
        let leader: SocketAddr = "127.0.0.1:7441".parse().unwrap();
        assert_eq!(not_leader(Some(leader)), (Status::NotLeader, "127.0.0.1:7441".to_string()));
        let (status, message) = not_leader(None);
        assert_eq!(status, Status::NoLeader);
        let mut bytes = BytesMut::new();
        encode_response(&mut bytes, Opcode::Set as u8, 1, status, BodyType::Text, &[], message.as_bytes());
        assert_eq!(bytes[..], documented_response("no-leader")[..], "protocol.md §9 no-leader");
    }
}
