//! The frame codec and the typed request/reply layer, without sockets:
//! partial input, several frames per buffer, limits judged from the header
//! alone, and property tests (round trips; arbitrary bytes never panic).

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use burrow_proto::{
    decode_cluster, encode_array, encode_cluster, flags, ClusterView, Codec, CodecError, End, Frame,
    FrameKind, Limits, LinkStatus, MemberRole, MemberView, Opcode, Reply, Request, SetCondition,
    SlowLogCommand, SlowLogEntry, Status, HEADER_LEN, MAGIC_REQUEST, MAGIC_RESPONSE, VERSION,
};

/// Small limits so over-limit cases are cheap to build.
const SMALL: Limits = Limits { max_key: 16, max_value: 1024, max_frame: HEADER_LEN + 255 + 16 + 1024 };

fn encode(frames: &[Frame]) -> BytesMut {
    let mut codec = Codec::server(Limits::default());
    let mut out = BytesMut::new();
    for f in frames {
        codec.encode(f, &mut out).expect("encodable");
    }
    out
}

fn header(magic: u8, version: u8, opcode: u8, id: u32, extras: u8, key: u16, value: u32) -> Vec<u8> {
    let mut h = vec![magic, version, opcode, 0];
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&[extras, 0]);
    h.extend_from_slice(&key.to_be_bytes());
    h.extend_from_slice(&value.to_be_bytes());
    h
}

/// A request frame with every section populated.
fn full_frame(id: u32) -> Frame {
    Request::Set {
        key: Bytes::from_static(b"user:1"),
        value: Bytes::from_static(b"hello world"),
        ttl_ms: Some(5000),
        condition: SetCondition::IfAbsent,
        keep_ttl: false,
    }
    .to_frame(id)
}

fn sample_frames() -> Vec<Frame> {
    vec![
        full_frame(1),
        Request::Ping { payload: Bytes::new() }.to_frame(2),
        Request::Push { key: "q".into(), end: End::Left, values: vec!["a".into(), "".into(), "ccc".into()] }
            .to_frame(3),
        Request::LRange { key: "q".into(), start: 0, stop: -1 }.to_frame(u32::MAX),
        Request::DbSize.to_frame(0),
    ]
}

#[test]
fn bytes_fed_one_at_a_time_decode_each_frame_exactly_when_complete() {
    let frames = sample_frames();
    let wire = encode(&frames);
    // Byte offsets at which each frame becomes complete.
    let mut ends = Vec::new();
    let mut at = 0;
    for f in &frames {
        at += f.encoded_len();
        ends.push(at);
    }
    let mut codec = Codec::server(Limits::default());
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for (i, b) in wire.iter().enumerate() {
        buf.extend_from_slice(&[*b]);
        match codec.decode(&mut buf).expect("valid stream") {
            Some(f) => {
                assert_eq!(Some(&(i + 1)), ends.get(got.len()), "frame completed at byte {}", i + 1);
                got.push(f);
            }
            None => assert!(!ends.contains(&(i + 1)), "frame not produced at byte {}", i + 1),
        }
    }
    assert_eq!(got, frames);
    assert!(buf.is_empty());
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
}

#[test]
fn several_frames_in_one_buffer_decode_in_order() {
    let frames = sample_frames();
    let mut buf = encode(&frames);
    let mut codec = Codec::server(Limits::default());
    let mut got = Vec::new();
    while let Some(f) = codec.decode(&mut buf).unwrap() {
        got.push(f);
    }
    assert_eq!(got, frames);
    assert!(buf.is_empty(), "every byte consumed");
}

#[test]
fn truncation_at_every_position_waits_then_completes() {
    let frame = full_frame(77);
    let wire = encode(std::slice::from_ref(&frame));
    assert!(!frame.extras.is_empty() && !frame.key.is_empty() && !frame.value.is_empty());
    for cut in 0..wire.len() {
        let mut codec = Codec::server(Limits::default());
        let mut buf = BytesMut::from(&wire[..cut]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None, "cut at {cut}: needs more bytes");
        // Asking again without new bytes is still just "need more".
        assert_eq!(codec.decode(&mut buf).unwrap(), None, "cut at {cut}: second poll");
        buf.extend_from_slice(&wire[cut..]);
        assert_eq!(codec.decode(&mut buf).unwrap().as_ref(), Some(&frame), "cut at {cut}: completes");
        assert!(buf.is_empty(), "cut at {cut}: nothing left over");
    }
}

#[test]
fn a_frame_followed_by_a_partial_one_keeps_the_partial_bytes() {
    let wire = encode(&[full_frame(1), full_frame(2)]);
    let first_len = full_frame(1).encoded_len();
    let mut codec = Codec::server(Limits::default());
    let mut buf = BytesMut::from(&wire[..first_len + 5]);
    assert_eq!(codec.decode(&mut buf).unwrap().map(|f| f.id), Some(1));
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(buf.len(), 5);
    buf.extend_from_slice(&wire[first_len + 5..]);
    assert_eq!(codec.decode(&mut buf).unwrap().map(|f| f.id), Some(2));
}

/// Feeds only a 16-byte header (no payload) and returns the decode error.
fn header_only_error(limits: Limits, hdr: Vec<u8>) -> CodecError {
    let mut codec = Codec::server(limits);
    let mut buf = BytesMut::from(&hdr[..]);
    let before = buf.capacity();
    let err = codec.decode(&mut buf).expect_err("rejected from the header alone");
    assert!(buf.capacity() <= before.max(64), "no memory reserved for a rejected payload");
    err
}

#[test]
fn over_limit_key_is_rejected_from_the_header_alone() {
    let err = header_only_error(SMALL, header(MAGIC_REQUEST, VERSION, Opcode::Get as u8, 41, 0, 17, 0));
    assert!(matches!(err, CodecError::KeyTooLarge { len: 17, max: 16, .. }), "{err:?}");
    assert_eq!(err.status(), Some(Status::TooLarge));
    assert_eq!(err.request(), (41, Opcode::Get as u8), "id and opcode echoed");
}

#[test]
fn over_limit_value_is_rejected_from_the_header_alone() {
    let err = header_only_error(SMALL, header(MAGIC_REQUEST, VERSION, Opcode::Set as u8, 42, 0, 1, 1025));
    assert!(matches!(err, CodecError::ValueTooLarge { len: 1025, max: 1024, .. }), "{err:?}");
    assert_eq!(err.status(), Some(Status::TooLarge));
    assert_eq!(err.request(), (42, Opcode::Set as u8));
}

#[test]
fn over_limit_frame_is_rejected_from_the_header_alone() {
    // Key and value each within their limits, but together over max_frame.
    let limits = Limits { max_key: 16, max_value: 1024, max_frame: 100 };
    let err = header_only_error(limits, header(MAGIC_REQUEST, VERSION, Opcode::Set as u8, 43, 8, 16, 100));
    assert!(matches!(err, CodecError::FrameTooLarge { len: 140, max: 100, .. }), "{err:?}");
    assert_eq!(err.status(), Some(Status::TooLarge));
    assert_eq!(err.request(), (43, Opcode::Set as u8));
}

#[test]
fn impossible_lengths_with_default_limits_are_rejected_without_allocating() {
    let err = header_only_error(
        Limits::default(),
        header(MAGIC_REQUEST, VERSION, Opcode::Set as u8, 9, 255, u16::MAX, u32::MAX),
    );
    assert!(matches!(err, CodecError::KeyTooLarge { .. }), "{err:?}");
    let err = header_only_error(
        Limits::default(),
        header(MAGIC_REQUEST, VERSION, Opcode::Set as u8, 9, 255, 1, u32::MAX),
    );
    assert!(matches!(err, CodecError::ValueTooLarge { max: Limits::DEFAULT_MAX_VALUE, .. }), "{err:?}");
}

#[test]
fn lengths_exactly_at_the_limits_are_accepted() {
    let key = Bytes::from(vec![b'k'; SMALL.max_key]);
    let value = Bytes::from(vec![b'v'; SMALL.max_value]);
    let mut f = Frame::request(Opcode::Set as u8, 5);
    f.extras = Bytes::from(vec![0u8; 255]);
    f.key = key;
    f.value = value;
    assert_eq!(f.encoded_len(), SMALL.max_frame);
    let mut codec = Codec::server(SMALL);
    let mut buf = BytesMut::new();
    codec.encode(&f, &mut buf).expect("a frame at every limit is encodable");
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(f));
}

#[test]
fn zero_lengths_make_a_header_only_frame() {
    let hdr = header(MAGIC_REQUEST, VERSION, Opcode::DbSize as u8, 3, 0, 0, 0);
    let mut codec = Codec::server(SMALL);
    let mut buf = BytesMut::from(&hdr[..HEADER_LEN - 1]);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.extend_from_slice(&hdr[HEADER_LEN - 1..]);
    let f = codec.decode(&mut buf).unwrap().expect("complete at 16 bytes");
    assert_eq!(f, Frame::request(Opcode::DbSize as u8, 3));
    assert!(f.extras.is_empty() && f.key.is_empty() && f.value.is_empty());
    assert_eq!(Request::from_frame(&f), Ok(Request::DbSize));
}

#[test]
fn bad_magic_is_rejected_on_the_first_byte() {
    for first in [0x00, 0xFF, b'G', MAGIC_RESPONSE] {
        let mut codec = Codec::server(Limits::default());
        let mut buf = BytesMut::from(&[first][..]);
        let err = codec.decode(&mut buf).expect_err("one bad byte is enough");
        assert!(
            matches!(err, CodecError::BadMagic { got, expected: MAGIC_REQUEST } if got == first),
            "{err:?}"
        );
        assert_eq!(err.status(), Some(Status::BadFrame));
        assert_eq!(err.request(), (0, 0), "nothing trustworthy to echo");
    }
    // The client side expects responses and refuses requests the same way.
    let mut codec = Codec::client(Limits::default());
    let err = codec.decode(&mut BytesMut::from(&[MAGIC_REQUEST][..])).unwrap_err();
    assert!(matches!(err, CodecError::BadMagic { expected: MAGIC_RESPONSE, .. }), "{err:?}");
}

#[test]
fn bad_version_is_rejected_echoing_the_id() {
    for version in [0x00, 0x02, 0xFF] {
        let err = header_only_error(SMALL, header(MAGIC_REQUEST, version, Opcode::Ping as u8, 1234, 0, 0, 0));
        assert!(matches!(err, CodecError::BadVersion { got, .. } if got == version), "{err:?}");
        assert_eq!(err.status(), Some(Status::BadFrame));
        assert_eq!(err.request(), (1234, Opcode::Ping as u8));
    }
}

#[test]
fn encoder_refuses_frames_the_peer_would_reject_and_appends_nothing() {
    let mut codec = Codec::server(SMALL);
    let base = Frame::request(Opcode::Set as u8, 1);
    let cases: Vec<(&str, Frame)> = vec![
        ("key", Frame { key: Bytes::from(vec![0; 17]), ..base.clone() }),
        ("value", Frame { value: Bytes::from(vec![0; 1025]), ..base.clone() }),
        ("extras", Frame { extras: Bytes::from(vec![0; 256]), ..base.clone() }),
    ];
    for (i, (what, f)) in cases.into_iter().enumerate() {
        let mut dst = BytesMut::from(&b"prefix"[..]);
        let err = codec.encode(&f, &mut dst).expect_err(what);
        assert_eq!(err.status(), Some(Status::TooLarge), "case {i} ({what}): {err:?}");
        assert_eq!(&dst[..], b"prefix", "case {i} ({what}): nothing appended");
    }
    let mut tight = Codec::server(Limits { max_key: 16, max_value: 1024, max_frame: 40 });
    let f = Frame { key: Bytes::from(vec![0; 16]), value: Bytes::from(vec![0; 16]), ..base };
    let err = tight.encode(&f, &mut BytesMut::new()).unwrap_err();
    assert!(matches!(err, CodecError::FrameTooLarge { len: 48, max: 40, .. }), "{err:?}");
}

#[test]
fn decoded_frames_report_their_direction() {
    let mut server = Codec::server(Limits::default());
    let mut buf = encode(&[Request::DbSize.to_frame(1)]);
    assert_eq!(server.decode(&mut buf).unwrap().unwrap().kind, FrameKind::Request);
    let mut client = Codec::client(Limits::default());
    let reply = Reply::Int(3).to_frame(Opcode::DbSize as u8, 1);
    let mut buf = BytesMut::new();
    client.encode(&reply, &mut buf).unwrap();
    let f = client.decode(&mut buf).unwrap().unwrap();
    assert_eq!(f.kind, FrameKind::Response);
    assert_eq!(Reply::from_frame(&f), Ok(Reply::Int(3)));
}

// --- Request::from_frame rejections -------------------------------------

fn frame(op: Opcode, flags: u8, extras: &[u8], key: &[u8], value: &[u8]) -> Frame {
    Frame {
        kind: FrameKind::Request,
        opcode: op as u8,
        flags,
        id: 1,
        aux: 0,
        extras: Bytes::copy_from_slice(extras),
        key: Bytes::copy_from_slice(key),
        value: Bytes::copy_from_slice(value),
    }
}

fn array(items: &[&[u8]]) -> Vec<u8> {
    let mut b = BytesMut::new();
    encode_array(items, &mut b);
    b.to_vec()
}

#[test]
fn malformed_requests_are_bad_request_with_a_precise_message() {
    let ttl = 1000u64.to_be_bytes();
    let mut truncated = array(&[b"abc"]);
    truncated.pop();
    let mut trailing = array(&[b"a"]);
    trailing.push(0);
    let cases: Vec<(Frame, &str)> = vec![
        (frame(Opcode::Get, 0, &[0; 4], b"k", b""), "GET: extras must be 0 bytes, got 4"),
        (frame(Opcode::Get, 0, &[], b"k", b"v"), "GET: takes no value, got 1 bytes"),
        (frame(Opcode::Get, 0x01, &[], b"k", b""), "GET: unknown flags 0x01"),
        (frame(Opcode::Set, 0, &[0; 4], b"k", b"v"), "SET: extras must be 0 or 8 bytes, got 4"),
        (frame(Opcode::Set, 0x08, &[], b"k", b"v"), "SET: unknown flags 0x08"),
        (frame(Opcode::Set, flags::NX | flags::XX, &[], b"k", b"v"), "SET: NX and XX are exclusive"),
        (frame(Opcode::Set, flags::KEEPTTL, &ttl, b"k", b"v"), "SET: KEEPTTL and a TTL are exclusive"),
        (frame(Opcode::Set, 0, &0u64.to_be_bytes(), b"k", b"v"), "SET: TTL must be between 1 and 2^63-1 ms"),
        (frame(Opcode::Set, 0, &u64::MAX.to_be_bytes(), b"k", b"v"), "SET: TTL must be between"),
        (frame(Opcode::Expire, 0, &[], b"k", b""), "EXPIRE: extras must be 8 bytes, got 0"),
        (frame(Opcode::Expire, 0, &ttl, b"k", b"x"), "EXPIRE: takes no value"),
        (frame(Opcode::IncrBy, 0, &[0; 7], b"k", b""), "INCRBY: extras must be 8 bytes, got 7"),
        (frame(Opcode::Incr, 0, &[], b"k", b"1"), "INCR: takes no value"),
        (frame(Opcode::LPush, 0, &[], b"k", &array(&[])), "LPUSH: needs at least one value"),
        (frame(Opcode::RPush, 0, &[], b"k", b""), "RPUSH: array body shorter than its 4-byte count"),
        (frame(Opcode::RPush, 0, &[], b"k", &truncated), "RPUSH: array item 0 truncated"),
        (frame(Opcode::LPush, 0, &[], b"k", &trailing), "LPUSH: 1 bytes after the last array item"),
        (frame(Opcode::LPush, 0, &[0; 4], b"k", &array(&[b"a"])), "LPUSH: extras must be 0 bytes"),
        (frame(Opcode::LPop, 0, &[0; 8], b"k", b""), "LPOP: extras must be 0 or 4 bytes, got 8"),
        (frame(Opcode::RPop, 0, &[], b"k", b"x"), "RPOP: takes no value"),
        (frame(Opcode::LRange, 0, &[0; 8], b"k", b""), "LRANGE: extras must be 16 bytes, got 8"),
        (frame(Opcode::DbSize, 0, &[], b"k", b""), "DBSIZE: takes no key"),
        (frame(Opcode::DbSize, 0x02, &[], b"", b""), "DBSIZE: unknown flags 0x02"),
        (frame(Opcode::Digest, 0, &[], b"k", b""), "DIGEST: takes no key"),
        (frame(Opcode::Wait, 0, &[0; 8], b"", b""), "WAIT: extras must be 12 bytes, got 8"),
        (frame(Opcode::Wait, 0x01, &[0; 12], b"", b""), "WAIT: unknown flags 0x01"),
        (frame(Opcode::Wait, 0, &[0; 12], b"k", b""), "WAIT: takes no key"),
        (frame(Opcode::Digest, 0, &[], b"", b"v"), "DIGEST: takes no value"),
        (frame(Opcode::FlushAll, 0, &[], b"", b"x"), "FLUSHALL: takes no value"),
        (frame(Opcode::FlushAll, 0, &[], b"*", b""), "FLUSHALL: takes no key"),
        (frame(Opcode::Scan, 0, &[0; 8], b"", b""), "SCAN: extras must be 12 bytes, got 8"),
        (frame(Opcode::Ping, 0, &[], b"k", b""), "PING: takes no key"),
        (frame(Opcode::Ping, 0, &[1], b"", b""), "PING: extras must be 0 bytes, got 1"),
        (frame(Opcode::Info, 0, &[], b"stats", b"x"), "INFO: takes no value"),
    ];
    for (i, (f, want)) in cases.iter().enumerate() {
        let err = Request::from_frame(f).expect_err(want);
        assert_eq!(err.status, Status::BadRequest, "case {i} ({want}): {err:?}");
        assert!(err.message.contains(want), "case {i}: message {:?} should contain {want:?}", err.message);
    }
}

#[test]
fn unknown_opcodes_are_unknown_opcode_not_bad_request() {
    for op in (0u8..=255).filter(|b| Opcode::from_u8(*b).is_none()) {
        let f = Frame::request(op, 9);
        let err = Request::from_frame(&f).unwrap_err();
        assert_eq!(err.status, Status::UnknownOpcode, "opcode 0x{op:02x}");
        assert_eq!(err.message, format!("unknown opcode 0x{op:02x}"));
    }
}

// --- property tests ------------------------------------------------------

fn small_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![Just(End::Left), Just(End::Right)]
}

/// Every `Request` variant, restricted to what `from_frame` accepts.
fn request() -> impl Strategy<Value = Request> {
    let key = || small_bytes(40);
    let set = (
        key(),
        small_bytes(200),
        prop::option::of(1..=i64::MAX as u64),
        prop_oneof![Just(SetCondition::Always), Just(SetCondition::IfAbsent), Just(SetCondition::IfPresent)],
        any::<bool>(),
    )
        .prop_map(|(key, value, ttl_ms, condition, keep)| Request::Set {
            key,
            value,
            ttl_ms,
            condition,
            // KEEPTTL and an explicit TTL are exclusive on the wire.
            keep_ttl: keep && ttl_ms.is_none(),
        });
    prop_oneof![
        small_bytes(64).prop_map(|payload| Request::Ping { payload }),
        key().prop_map(|key| Request::Get { key }),
        set,
        key().prop_map(|key| Request::Del { key }),
        key().prop_map(|key| Request::Exists { key }),
        (key(), any::<i64>()).prop_map(|(key, ttl_ms)| Request::Expire { key, ttl_ms }),
        key().prop_map(|key| Request::Persist { key }),
        key().prop_map(|key| Request::Ttl { key }),
        key().prop_map(|key| Request::Type { key }),
        key().prop_map(|key| Request::Incr { key }),
        key().prop_map(|key| Request::Decr { key }),
        (key(), any::<i64>()).prop_map(|(key, delta)| Request::IncrBy { key, delta }),
        (key(), end(), proptest::collection::vec(small_bytes(20), 1..8))
            .prop_map(|(key, end, values)| Request::Push { key, end, values }),
        (key(), end(), prop::option::of(any::<u32>())).prop_map(|(key, end, count)| Request::Pop {
            key,
            end,
            count
        }),
        key().prop_map(|key| Request::LLen { key }),
        (key(), any::<i64>(), any::<i64>()).prop_map(|(key, start, stop)| Request::LRange {
            key,
            start,
            stop
        }),
        Just(Request::DbSize),
        Just(Request::Digest),
        (any::<u64>(), any::<u32>(), key()).prop_map(|(cursor, count, pattern)| Request::Scan {
            cursor,
            count,
            pattern
        }),
        Just(Request::FlushAll),
        key().prop_map(|section| Request::Info { section }),
        prop_oneof![
            prop::option::of(any::<u32>()).prop_map(|count| SlowLogCommand::Get { count }),
            Just(SlowLogCommand::Len),
            Just(SlowLogCommand::Reset),
        ]
        .prop_map(Request::SlowLog),
        key().prop_map(|pattern| Request::ConfigGet { pattern }),
        (small_bytes(30).prop_filter("a name", |n| !n.is_empty()), small_bytes(30))
            .prop_map(|(name, value)| Request::ConfigSet { name, value }),
    ]
}

/// SLOWLOG GET entries; keys within the 64 bytes an entry keeps.
fn slowlog_entries() -> impl Strategy<Value = Vec<SlowLogEntry>> {
    let entry = (any::<u64>(), any::<u64>(), any::<u64>(), any::<u8>(), small_bytes(64), ".{0,30}").prop_map(
        |(id, unix_us, duration_us, opcode, key, client)| SlowLogEntry {
            id,
            unix_us,
            duration_us,
            opcode,
            key_len: key.len() as u32,
            key,
            client,
        },
    );
    proptest::collection::vec(entry, 0..5)
}

fn status_not_ok() -> impl Strategy<Value = Status> {
    proptest::sample::select(Status::ALL.iter().copied().filter(|s| *s != Status::Ok).collect::<Vec<_>>())
}

fn member_role() -> impl Strategy<Value = MemberRole> {
    proptest::sample::select(vec![
        MemberRole::Unknown,
        MemberRole::Leader,
        MemberRole::Follower,
        MemberRole::Candidate,
        MemberRole::Standalone,
    ])
}

/// A CLUSTER view, with any of the optional fields left out.
fn cluster_view() -> impl Strategy<Value = ClusterView> {
    let link = proptest::option::of(proptest::sample::select(vec![
        LinkStatus::Up,
        LinkStatus::Down,
        LinkStatus::Syncing,
    ]));
    let opt = || proptest::option::of(any::<u64>());
    let member = (any::<u64>(), ".{0,30}", member_role(), link, opt(), opt(), opt()).prop_map(
        |(id, addr, role, link, match_index, lag, last_contact_ms)| MemberView {
            id,
            addr,
            role,
            link,
            match_index,
            lag,
            last_contact_ms,
        },
    );
    (
        any::<u64>(),
        member_role(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(member, 0..5),
    )
        .prop_map(|(node_id, role, term, leader_id, commit_index, members)| ClusterView {
            node_id,
            role,
            term,
            leader_id,
            commit_index,
            members,
        })
}

/// A reply and an opcode it can answer (SCAN replies only come from SCAN,
/// CLUSTER's from CLUSTER, SLOWLOG's from SLOWLOG, plain arrays only from other opcodes: the opcode
/// decides how ARRAY is read).
fn reply() -> impl Strategy<Value = (u8, Reply)> {
    let array_reader = [Opcode::Scan as u8, Opcode::Cluster as u8, Opcode::SlowLog as u8];
    let non_scan = proptest::sample::select(
        Opcode::ALL.iter().map(|o| *o as u8).filter(|o| !array_reader.contains(o)).collect::<Vec<_>>(),
    );
    prop_oneof![
        non_scan.clone().prop_map(|op| (op, Reply::Nil)),
        non_scan.clone().prop_map(|op| (op, Reply::Ok)),
        (non_scan.clone(), small_bytes(100)).prop_map(|(op, b)| (op, Reply::Bytes(b))),
        (non_scan.clone(), any::<i64>()).prop_map(|(op, i)| (op, Reply::Int(i))),
        (non_scan.clone(), proptest::collection::vec(small_bytes(20), 0..8))
            .prop_map(|(op, items)| (op, Reply::Array(items))),
        (any::<u64>(), proptest::collection::vec(small_bytes(20), 0..8))
            .prop_map(|(cursor, keys)| (Opcode::Scan as u8, Reply::Scan { cursor, keys })),
        cluster_view().prop_map(|view| (Opcode::Cluster as u8, Reply::Cluster(view))),
        slowlog_entries().prop_map(|e| (Opcode::SlowLog as u8, Reply::SlowLog(e))),
        (non_scan.clone(), ".{0,40}").prop_map(|(op, t)| (op, Reply::Text(t))),
        (any::<u8>(), status_not_ok(), ".{0,40}")
            .prop_map(|(op, status, message)| (op, Reply::Error { status, message })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn request_roundtrips_through_the_wire(req in request(), id in any::<u32>()) {
        let mut codec = Codec::server(Limits::default());
        let mut buf = BytesMut::new();
        codec.encode(&req.to_frame(id), &mut buf).unwrap();
        let f = codec.decode(&mut buf).unwrap().expect("whole frame");
        prop_assert!(buf.is_empty());
        prop_assert_eq!(f.id, id);
        prop_assert_eq!(f.opcode, req.opcode() as u8);
        prop_assert_eq!(Request::from_frame(&f), Ok(req));
    }

    #[test]
    fn reply_roundtrips_through_the_wire((opcode, reply) in reply(), id in any::<u32>()) {
        let mut codec = Codec::client(Limits::default());
        let mut buf = BytesMut::new();
        codec.encode(&reply.to_frame(opcode, id), &mut buf).unwrap();
        let f = codec.decode(&mut buf).unwrap().expect("whole frame");
        prop_assert!(buf.is_empty());
        prop_assert_eq!((f.id, f.opcode), (id, opcode));
        prop_assert_eq!(Reply::from_frame(&f), Ok(reply));
    }

    #[test]
    fn arbitrary_bytes_in_arbitrary_chunks_never_panic_or_break_limits(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        chunks in proptest::collection::vec(1usize..64, 1..64),
        valid_prefix in any::<bool>(),
    ) {
        // Half the cases start with a valid magic and version so the
        // lengths and payload logic are reached, not just the magic check.
        let mut data = data;
        if valid_prefix && data.len() >= 2 {
            data[0] = MAGIC_REQUEST;
            data[1] = VERSION;
        }
        let mut codec = Codec::server(SMALL);
        let mut buf = BytesMut::new();
        let mut fed = 0;
        let mut sizes = chunks.iter().cycle();
        'feed: while fed < data.len() {
            let n = (*sizes.next().unwrap()).min(data.len() - fed);
            buf.extend_from_slice(&data[fed..fed + n]);
            fed += n;
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(f)) => {
                        prop_assert!(f.key.len() <= SMALL.max_key);
                        prop_assert!(f.value.len() <= SMALL.max_value);
                        prop_assert!(f.encoded_len() <= SMALL.max_frame);
                        prop_assert_eq!(f.kind, FrameKind::Request);
                        // Parsing any frame must not panic either.
                        if let Ok(req) = Request::from_frame(&f) {
                            prop_assert_eq!(Request::from_frame(&req.to_frame(f.id)), Ok(req));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        prop_assert!(e.status().is_some(), "only i/o errors lack a status: {e}");
                        break 'feed;
                    }
                }
            }
        }
    }

    #[test]
    fn arbitrary_response_frames_never_panic_the_reply_parser(
        status in any::<u8>(), body in any::<u8>(), opcode in any::<u8>(),
        extras in small_bytes(16), value in small_bytes(64),
    ) {
        let f = Frame { kind: FrameKind::Response, opcode, flags: status, id: 1, aux: body, extras, key: Bytes::new(), value };
        let _ = Reply::from_frame(&f);
    }

    /// Well-formed ARRAYs of arbitrary items reach CLUSTER's field parser
    /// (random bytes rarely do): it never panics, and what it accepts
    /// re-encodes to a view that decodes to itself.
    #[test]
    fn arbitrary_cluster_items_never_panic_the_view_parser(items in proptest::collection::vec(small_bytes(40), 0..5)) {
        let mut body = BytesMut::new();
        encode_array(&items, &mut body);
        if let Ok(view) = decode_cluster(&body) {
            let mut again = BytesMut::new();
            encode_cluster(&view, &mut again);
            prop_assert_eq!(decode_cluster(&again), Ok(view));
        }
    }
}
