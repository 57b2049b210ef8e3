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

    use crate::server::doc_examples::documented_response;

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
