//! The op log: the one ordering of every change to the dataset.
//!
//! A write is applied to its shard and, under the same shard lock, appended
//! here and given the next index (DESIGN.md, "Ordering"). The WAL, snapshots
//! ("covers up to index N"), replication streams and WAIT all speak in these
//! indexes. For now the log is an in-memory bounded backlog of encoded
//! records; persistence and replication consume it.

mod backlog;
mod op;
mod record;

pub(crate) use backlog::{defer_wal_wakes, take_owed_wal_wake, OpLog};
pub use op::{Op, OpDecodeError};
pub use record::{decode_record, encode_record, BadRecord, Record, RecordError, RecordRef, Records};
pub(crate) use record::{
    record_position, seal_records, MIN_RECORD_LEN, RECORD_BODY_FIXED, RECORD_HEADER_LEN,
};
