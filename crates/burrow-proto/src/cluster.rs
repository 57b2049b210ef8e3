//! The CLUSTER reply: the cluster as the answering node sees it.
//!
//! An ARRAY body (protocol.md §8.11): item 0 describes the node itself,
//! then one item per member. Each item is a run of fields, `tag (u8) |
//! length (u16 BE) | value`, so a field this node does not know (a
//! follower does not know another follower's match index) is simply left
//! out, and fields added later are skipped by older readers.

use byteorder::{BigEndian, ByteOrder};
use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::body::{decode_array_ref, encode_array, ArrayError};

/// Field tags. One namespace for both kinds of item.
mod tag {
    pub(super) const ID: u8 = 0x01;
    pub(super) const ROLE: u8 = 0x02;
    pub(super) const TERM: u8 = 0x03;
    pub(super) const LEADER_ID: u8 = 0x04;
    pub(super) const COMMIT_INDEX: u8 = 0x05;
    pub(super) const ADDR: u8 = 0x10;
    pub(super) const LINK: u8 = 0x11;
    pub(super) const MATCH_INDEX: u8 = 0x12;
    pub(super) const LAG: u8 = 0x13;
    pub(super) const LAST_CONTACT_MS: u8 = 0x14;
}

/// A node's role as the answering node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MemberRole {
    /// Not known to the answering node (also any value this build does not know).
    Unknown = 0,
    Leader = 1,
    Follower = 2,
    /// Campaigning (pre-vote or vote) for leadership.
    Candidate = 3,
    /// Not part of a cluster.
    Standalone = 4,
}

impl MemberRole {
    fn from_u8(b: u8) -> MemberRole {
        match b {
            1 => MemberRole::Leader,
            2 => MemberRole::Follower,
            3 => MemberRole::Candidate,
            4 => MemberRole::Standalone,
            _ => MemberRole::Unknown,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MemberRole::Unknown => "unknown",
            MemberRole::Leader => "leader",
            MemberRole::Follower => "follower",
            MemberRole::Candidate => "candidate",
            MemberRole::Standalone => "standalone",
        }
    }
}

/// The replication link between the answering node and a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LinkStatus {
    /// Records are streaming.
    Up = 1,
    /// No link, or one the other side has not spoken on yet.
    Down = 2,
    /// A resync is under way.
    Syncing = 3,
}

impl LinkStatus {
    fn from_u8(b: u8) -> Option<LinkStatus> {
        [LinkStatus::Up, LinkStatus::Down, LinkStatus::Syncing].into_iter().find(|l| *l as u8 == b)
    }

    pub fn name(self) -> &'static str {
        match self {
            LinkStatus::Up => "up",
            LinkStatus::Down => "down",
            LinkStatus::Syncing => "syncing",
        }
    }
}

/// The answering node and the members it knows of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    /// This node's id (0 on a standalone server).
    pub node_id: u64,
    pub role: MemberRole,
    /// The current term as this node knows it.
    pub term: u64,
    /// The leader this node knows of (0: none known).
    pub leader_id: u64,
    /// The highest log index this node knows is committed.
    pub commit_index: u64,
    /// Every member of the cluster (this node included), in id order; empty
    /// on a standalone server.
    pub members: Vec<MemberView>,
}

/// One member as the answering node sees it; `None` where it does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub id: u64,
    /// The client address from the cluster file.
    pub addr: String,
    pub role: MemberRole,
    /// The replication link to it (`None` for the node itself, or members
    /// it has no replication link with).
    pub link: Option<LinkStatus>,
    /// Highest index it holds durably.
    pub match_index: Option<u64>,
    /// Records it has yet to apply.
    pub lag: Option<u64>,
    /// Milliseconds since the answering node last heard from it.
    pub last_contact_ms: Option<u64>,
}

impl MemberView {
    /// A member known by id, address and role only.
    pub fn new(id: u64, addr: impl Into<String>, role: MemberRole) -> MemberView {
        MemberView {
            id,
            addr: addr.into(),
            role,
            link: None,
            match_index: None,
            lag: None,
            last_contact_ms: None,
        }
    }
}

impl ClusterView {
    /// The leader's entry, if this node knows one.
    pub fn leader(&self) -> Option<&MemberView> {
        (self.leader_id != 0).then(|| self.members.iter().find(|m| m.id == self.leader_id)).flatten()
    }
}

/// A CLUSTER reply that does not follow protocol.md §8.11.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ClusterError {
    #[error(transparent)]
    Array(#[from] ArrayError),
    #[error("CLUSTER reply without the node's own item")]
    Empty,
    #[error("item {item}: field header truncated")]
    Truncated { item: usize },
    #[error("item {item}: field 0x{tag:02x} runs past the item's end")]
    FieldPastEnd { item: usize, tag: u8 },
    #[error("item {item}: field 0x{tag:02x} must be {want} bytes, got {got}")]
    BadLength { item: usize, tag: u8, want: usize, got: usize },
    #[error("item {item}: field 0x{tag:02x} appears twice")]
    Duplicate { item: usize, tag: u8 },
    #[error("item {item}: required field 0x{tag:02x} missing")]
    Missing { item: usize, tag: u8 },
    #[error("item {item}: address is not UTF-8")]
    BadAddr { item: usize },
}

fn put_field(dst: &mut BytesMut, tag: u8, value: &[u8]) {
    dst.put_u8(tag);
    dst.put_u16(value.len() as u16);
    dst.extend_from_slice(value);
}

/// Encodes `view` as the items of an ARRAY body, fields in tag order.
pub fn cluster_items(view: &ClusterView) -> Vec<Bytes> {
    let mut items = Vec::with_capacity(1 + view.members.len());
    let mut me = BytesMut::new();
    put_field(&mut me, tag::ID, &view.node_id.to_be_bytes());
    put_field(&mut me, tag::ROLE, &[view.role as u8]);
    put_field(&mut me, tag::TERM, &view.term.to_be_bytes());
    put_field(&mut me, tag::LEADER_ID, &view.leader_id.to_be_bytes());
    put_field(&mut me, tag::COMMIT_INDEX, &view.commit_index.to_be_bytes());
    items.push(me.freeze());
    for m in &view.members {
        let mut b = BytesMut::new();
        put_field(&mut b, tag::ID, &m.id.to_be_bytes());
        put_field(&mut b, tag::ROLE, &[m.role as u8]);
        // An address is `ip:port`, far below the u16 a field length holds.
        let addr = &m.addr.as_bytes()[..m.addr.len().min(u16::MAX as usize)];
        put_field(&mut b, tag::ADDR, addr);
        if let Some(l) = m.link {
            put_field(&mut b, tag::LINK, &[l as u8]);
        }
        for (t, v) in
            [(tag::MATCH_INDEX, m.match_index), (tag::LAG, m.lag), (tag::LAST_CONTACT_MS, m.last_contact_ms)]
        {
            if let Some(v) = v {
                put_field(&mut b, t, &v.to_be_bytes());
            }
        }
        items.push(b.freeze());
    }
    items
}

/// Encodes `view` as a whole ARRAY body.
pub fn encode_cluster(view: &ClusterView, dst: &mut BytesMut) {
    encode_array(&cluster_items(view), dst);
}

/// One item's fields, by tag (unknown tags kept, to be ignored).
struct Fields<'a> {
    item: usize,
    fields: Vec<(u8, &'a [u8])>,
}

impl<'a> Fields<'a> {
    fn parse(item: usize, mut b: &'a [u8]) -> Result<Fields<'a>, ClusterError> {
        let mut fields: Vec<(u8, &[u8])> = Vec::new();
        while !b.is_empty() {
            if b.len() < 3 {
                return Err(ClusterError::Truncated { item });
            }
            let (t, len) = (b[0], BigEndian::read_u16(&b[1..3]) as usize);
            if b.len() - 3 < len {
                return Err(ClusterError::FieldPastEnd { item, tag: t });
            }
            if fields.iter().any(|(seen, _)| *seen == t) {
                return Err(ClusterError::Duplicate { item, tag: t });
            }
            fields.push((t, &b[3..3 + len]));
            b = &b[3 + len..];
        }
        Ok(Fields { item, fields })
    }

    fn raw(&self, tag: u8) -> Option<&'a [u8]> {
        self.fields.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
    }

    fn sized(&self, tag: u8, want: usize) -> Result<Option<&'a [u8]>, ClusterError> {
        match self.raw(tag) {
            Some(v) if v.len() != want => {
                Err(ClusterError::BadLength { item: self.item, tag, want, got: v.len() })
            }
            v => Ok(v),
        }
    }

    fn u64(&self, tag: u8) -> Result<Option<u64>, ClusterError> {
        Ok(self.sized(tag, 8)?.map(BigEndian::read_u64))
    }

    fn u8(&self, tag: u8) -> Result<Option<u8>, ClusterError> {
        Ok(self.sized(tag, 1)?.map(|v| v[0]))
    }

    fn need<T>(&self, tag: u8, v: Option<T>) -> Result<T, ClusterError> {
        v.ok_or(ClusterError::Missing { item: self.item, tag })
    }
}

/// Decodes a CLUSTER reply's ARRAY body.
pub fn decode_cluster(body: &[u8]) -> Result<ClusterView, ClusterError> {
    let items = decode_array_ref(body)?;
    let (me, members) = items.split_first().ok_or(ClusterError::Empty)?;
    let f = Fields::parse(0, me)?;
    let mut view = ClusterView {
        node_id: f.need(tag::ID, f.u64(tag::ID)?)?,
        role: MemberRole::from_u8(f.need(tag::ROLE, f.u8(tag::ROLE)?)?),
        term: f.need(tag::TERM, f.u64(tag::TERM)?)?,
        leader_id: f.need(tag::LEADER_ID, f.u64(tag::LEADER_ID)?)?,
        commit_index: f.need(tag::COMMIT_INDEX, f.u64(tag::COMMIT_INDEX)?)?,
        members: Vec::with_capacity(members.len()),
    };
    for (i, b) in members.iter().enumerate() {
        let f = Fields::parse(i + 1, b)?;
        let addr = f.need(tag::ADDR, f.raw(tag::ADDR))?;
        view.members.push(MemberView {
            id: f.need(tag::ID, f.u64(tag::ID)?)?,
            addr: std::str::from_utf8(addr).map_err(|_| ClusterError::BadAddr { item: i + 1 })?.to_string(),
            role: MemberRole::from_u8(f.need(tag::ROLE, f.u8(tag::ROLE)?)?),
            // A link state this build does not know reads as not known.
            link: f.u8(tag::LINK)?.and_then(LinkStatus::from_u8),
            match_index: f.u64(tag::MATCH_INDEX)?,
            lag: f.u64(tag::LAG)?,
            last_contact_ms: f.u64(tag::LAST_CONTACT_MS)?,
        });
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ClusterView {
        ClusterView {
            node_id: 1,
            role: MemberRole::Leader,
            term: 3,
            leader_id: 1,
            commit_index: 42,
            members: vec![
                MemberView {
                    id: 1,
                    addr: "127.0.0.1:7441".into(),
                    role: MemberRole::Leader,
                    link: None,
                    match_index: Some(42),
                    lag: Some(0),
                    last_contact_ms: None,
                },
                MemberView {
                    id: 2,
                    addr: "[::1]:7442".into(),
                    role: MemberRole::Follower,
                    link: Some(LinkStatus::Syncing),
                    match_index: Some(40),
                    lag: Some(2),
                    last_contact_ms: Some(17),
                },
                MemberView {
                    id: 3,
                    addr: "127.0.0.1:7443".into(),
                    role: MemberRole::Unknown,
                    link: Some(LinkStatus::Down),
                    match_index: None,
                    lag: None,
                    last_contact_ms: None,
                },
            ],
        }
    }

    #[test]
    fn a_view_round_trips_and_omits_what_is_not_known() {
        let view = sample();
        let mut body = BytesMut::new();
        encode_cluster(&view, &mut body);
        assert_eq!(decode_cluster(&body).unwrap(), view);
        // Member 3 carries id, role, address and link only: 4 fields.
        let items = cluster_items(&view);
        assert_eq!(items[3].len(), (3 + 8) + (3 + 1) + (3 + "127.0.0.1:7443".len()) + (3 + 1));
        assert_eq!(view.leader().map(|m| m.id), Some(1));
    }

    #[test]
    fn unknown_fields_and_values_are_skipped() {
        let mut items = cluster_items(&sample());
        let mut me = BytesMut::from(&items[0][..]);
        put_field(&mut me, 0x7f, b"future");
        items[0] = me.freeze();
        let mut m = BytesMut::new();
        put_field(&mut m, tag::ID, &9u64.to_be_bytes());
        put_field(&mut m, tag::ROLE, &[200]);
        put_field(&mut m, tag::ADDR, b"10.0.0.9:1");
        put_field(&mut m, tag::LINK, &[99]);
        items.push(m.freeze());
        let mut body = BytesMut::new();
        encode_array(&items, &mut body);
        let view = decode_cluster(&body).unwrap();
        let last = view.members.last().unwrap();
        assert_eq!((last.id, last.role, last.link), (9, MemberRole::Unknown, None));
    }

    #[test]
    fn malformed_replies_are_precise_errors() {
        let body = |items: Vec<Bytes>| {
            let mut b = BytesMut::new();
            encode_array(&items, &mut b);
            b
        };
        let mut good = cluster_items(&sample());
        let cases: Vec<(BytesMut, ClusterError)> = vec![
            (body(vec![]), ClusterError::Empty),
            (body(vec![Bytes::from_static(&[1, 0])]), ClusterError::Truncated { item: 0 }),
            (body(vec![Bytes::from_static(&[1, 0, 8, 0])]), ClusterError::FieldPastEnd { item: 0, tag: 1 }),
            (
                body(vec![Bytes::from_static(&[1, 0, 1, 0])]),
                ClusterError::BadLength { item: 0, tag: 1, want: 8, got: 1 },
            ),
            (
                body(vec![Bytes::from_static(&[2, 0, 1, 0, 2, 0, 1, 0])]),
                ClusterError::Duplicate { item: 0, tag: 2 },
            ),
            (body(vec![Bytes::from_static(&[2, 0, 1, 0])]), ClusterError::Missing { item: 0, tag: tag::ID }),
            (
                {
                    let mut m = BytesMut::new();
                    put_field(&mut m, tag::ID, &2u64.to_be_bytes());
                    put_field(&mut m, tag::ROLE, &[2]);
                    put_field(&mut m, tag::ADDR, &[0xff]);
                    good.truncate(1);
                    good.push(m.freeze());
                    body(good)
                },
                ClusterError::BadAddr { item: 1 },
            ),
        ];
        for (i, (b, want)) in cases.into_iter().enumerate() {
            assert_eq!(decode_cluster(&b), Err(want), "case {i}");
        }
    }
}
