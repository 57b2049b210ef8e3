//! SLOWLOG GET / LEN / RESET against the server's log (`server::slowlog`).

use super::Replier;
use crate::server::Shared;
use burrow_proto::{SlowLogCommand, SlowLogEntry, SLOWLOG_DEFAULT_COUNT};

pub(super) fn slowlog(shared: &Shared, command: SlowLogCommand, r: &mut Replier<'_>) {
    let log = &shared.slowlog;
    match command {
        SlowLogCommand::Get { count } => {
            let count = count.unwrap_or(SLOWLOG_DEFAULT_COUNT) as usize;
            let items: Vec<Vec<u8>> = log.get(count).iter().map(SlowLogEntry::item).collect();
            r.array(&[], &items)
        }
        SlowLogCommand::Len => r.int(log.len() as i64),
        SlowLogCommand::Reset => {
            log.reset();
            r.ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::server::dispatch::execute;
    use crate::server::dispatch::tests::shared;
    use crate::server::doc_examples::{documented_request, documented_response};
    use burrow_proto::{Codec, Limits, Opcode, Peek, SlowLogEntry};
    use bytes::{Bytes, BytesMut};

    #[test]
    fn slowlog_get_is_as_documented() {
        let s = shared();
        s.slowlog.push(SlowLogEntry {
            id: 0,
            unix_us: 1_700_000_000_000_000,
            duration_us: 15_000,
            opcode: Opcode::Set as u8,
            key_len: 6,
            key: Bytes::from_static(b"user:1"),
            client: "127.0.0.1:50000".into(),
        });
        let request = documented_request("slowlog-get");
        let Ok(Peek::Frame(frame, _)) = Codec::server(Limits::default()).peek(&request) else {
            panic!("the documented request decodes")
        };
        let mut out = BytesMut::new();
        let done = execute(&s, &frame, 0, &mut out);
        assert!(!done.error && !done.read && done.seen == 0, "{done:?}");
        assert_eq!(out[..], documented_response("slowlog-get")[..], "{out:02x?}");
    }
}
