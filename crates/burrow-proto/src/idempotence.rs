//! Which requests a client may send again when it cannot know whether the
//! first attempt ran (the connection died after the request was written).
//! protocol.md §5.2 lists the same table; clients that ride out a
//! failover retry only these and report the others as "outcome unknown".

use super::request::{Request, SetCondition};

impl<B> Request<B> {
    /// True if running this request twice leaves the data as running it once
    /// does, so a retry after an unknown outcome cannot apply it twice.
    ///
    /// Reads (PING, GET, EXISTS, TTL, TYPE, LLEN, LRANGE, DBSIZE, SCAN, INFO,
    /// DIGEST, CLUSTER) are. So are the writes that set an absolute state: SET
    /// without NX/XX (with or without a TTL or KEEPTTL), DEL, EXPIRE,
    /// PERSIST, FLUSHALL and SNAPSHOT — a retry may answer differently (DEL
    /// or PERSIST 0, the first attempt having done it; a TTL counted from
    /// the retry) but changes nothing more. Not idempotent: INCR, DECR,
    /// INCRBY, LPUSH, RPUSH, LPOP, RPOP (each run changes the data again);
    /// SET NX/XX (a retry answers from the state the first attempt made —
    /// NX says "not set" for a value it did set); and WAIT, which counts the
    /// writes of the connection it is sent on and means nothing on a new one;
    /// HELLO and AUTH, a connection's own handshake; SLOWLOG, whose answer
    /// belongs to the node asked, and CONFIG SET (it changes the node asked).
    pub fn is_idempotent(&self) -> bool {
        // No wildcard arm: a new command must be classified here.
        match self {
            Request::Ping { .. }
            | Request::Get { .. }
            | Request::Exists { .. }
            | Request::Ttl { .. }
            | Request::Type { .. }
            | Request::LLen { .. }
            | Request::LRange { .. }
            | Request::DbSize
            | Request::Scan { .. }
            | Request::Info { .. }
            | Request::Digest
            | Request::Cluster => true,
            Request::Set { condition, .. } => *condition == SetCondition::Always,
            Request::Del { .. }
            | Request::Expire { .. }
            | Request::Persist { .. }
            | Request::FlushAll
            | Request::Snapshot { .. } => true,
            Request::Incr { .. }
            | Request::Decr { .. }
            | Request::IncrBy { .. }
            | Request::Push { .. }
            | Request::Pop { .. }
            | Request::Wait { .. } => false,
            // A connection's own handshake: a new connection makes its own.
            Request::Hello | Request::Auth { .. } => false,
            // Node-local: a retry at another node reads or clears another log.
            Request::SlowLog(_) | Request::ConfigSet { .. } => false,
            Request::ConfigGet { .. } => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{End, Opcode};

    /// The table of protocol.md §5.2, one row per opcode (SET per condition).
    #[test]
    fn every_opcode_is_classified_as_documented() {
        let k = || &b"k"[..];
        let set =
            |condition| Request::Set { key: k(), value: k(), ttl_ms: Some(5), condition, keep_ttl: false };
        let table: Vec<(Request<&[u8]>, bool)> = vec![
            (Request::Ping { payload: k() }, true),
            (Request::Get { key: k() }, true),
            (set(SetCondition::Always), true),
            (
                Request::Set {
                    key: k(),
                    value: k(),
                    ttl_ms: None,
                    condition: SetCondition::Always,
                    keep_ttl: true,
                },
                true,
            ),
            (set(SetCondition::IfAbsent), false),
            (set(SetCondition::IfPresent), false),
            (Request::Del { key: k() }, true),
            (Request::Exists { key: k() }, true),
            (Request::Expire { key: k(), ttl_ms: 1000 }, true),
            (Request::Persist { key: k() }, true),
            (Request::Ttl { key: k() }, true),
            (Request::Type { key: k() }, true),
            (Request::Incr { key: k() }, false),
            (Request::Decr { key: k() }, false),
            (Request::IncrBy { key: k(), delta: 0 }, false),
            (Request::Push { key: k(), end: End::Left, values: vec![k()] }, false),
            (Request::Push { key: k(), end: End::Right, values: vec![k()] }, false),
            (Request::Pop { key: k(), end: End::Left, count: None }, false),
            (Request::Pop { key: k(), end: End::Right, count: Some(2) }, false),
            (Request::LLen { key: k() }, true),
            (Request::LRange { key: k(), start: 0, stop: -1 }, true),
            (Request::DbSize, true),
            (Request::Scan { cursor: 0, count: 10, pattern: k() }, true),
            (Request::FlushAll, true),
            (Request::Info { section: k() }, true),
            (Request::Digest, true),
            (Request::Cluster, true),
            (Request::Wait { replicas: 1, timeout_ms: 0 }, false),
            (Request::Snapshot { background: true }, true),
            (Request::Hello, false),
            (
                Request::Auth {
                    user: k(),
                    client_nonce: crate::Nonce([0; 16]),
                    proof: crate::Proof([0; 32]),
                },
                false,
            ),
            (Request::SlowLog(crate::SlowLogCommand::Len), false),
            (Request::ConfigGet { pattern: k() }, true),
            (Request::ConfigSet { name: k(), value: k() }, false),
        ];
        for (req, want) in &table {
            assert_eq!(req.is_idempotent(), *want, "{req:?}");
        }
        // Every opcode has a row.
        for op in Opcode::ALL {
            assert!(table.iter().any(|(r, _)| r.opcode() == op), "{} has no row", op.name());
        }
        // Reads are all idempotent; every non-idempotent request is a write or WAIT.
        for (req, idem) in &table {
            if !req.is_write()
                && !matches!(
                    req,
                    Request::Wait { .. }
                        | Request::Hello
                        | Request::Auth { .. }
                        | Request::SlowLog(_)
                        | Request::ConfigSet { .. }
                )
            {
                assert!(idem, "read {req:?}");
            }
        }
    }
}
