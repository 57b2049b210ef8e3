//! Every error type of this crate keeps the workspace's rule: a message
//! says its own context and never its source's, so printed as a chain
//! (`ErrorChain`, or `{:#}` in the binaries) each cause appears once. The
//! replication driver's own errors (`LinkEnd`, `ResyncError`) are checked
//! in their modules.

use std::error::Error;
use std::path::PathBuf;

use burrow_proto::ErrorChain;

use crate::oplog::{BadRecord, OpDecodeError, RecordError};
use crate::persist::{PersistError, SnapshotError, WalError, WriterFailure};
use crate::replication::wire::WireError;
use crate::replication::{ConfigError as TickConfigError, ReplicationError};
use crate::server::{ClusterFileError, ConfigError, MembershipError, ServerError, SnapshotRefusal};
use crate::store::ApplyError;

fn io() -> std::io::Error {
    std::io::Error::from_raw_os_error(5)
}

fn wal_io() -> WalError {
    WalError::Io { op: "fsync", path: PathBuf::from("data/wal-1.log"), source: io() }
}

#[test]
fn no_error_of_this_crate_prints_its_source_twice() {
    let path = || PathBuf::from("data");
    let unwritten = WriterFailure::Unwritten { first: 3, last: 4, error: "write data/wal-1.log: EIO".into() };
    let errors: Vec<Box<dyn Error + 'static>> = vec![
        Box::new(ServerError::Bind { addr: "127.0.0.1:7440".parse().unwrap(), source: io() }),
        Box::new(ServerError::Persist(PersistError::Dir { dir: path(), source: io() })),
        Box::new(ServerError::Io(io())),
        Box::new(PersistError::Wal(wal_io())),
        Box::new(PersistError::Locked(path())),
        Box::new(wal_io()),
        Box::new(WalError::Failed(unwritten)),
        Box::new(WalError::Failed(WriterFailure::Stopped)),
        Box::new(SnapshotError::Io { op: "rename", path: path(), source: io() }),
        Box::new(SnapshotError::Unpublished {
            path: path(),
            source: WalError::Failed(WriterFailure::Panicked),
        }),
        Box::new(SnapshotError::Corrupt { path: path(), offset: 36, reason: "block CRC mismatch".into() }),
        Box::new(SnapshotRefusal::Failed(SnapshotError::Io { op: "create", path: path(), source: io() })),
        Box::new(SnapshotRefusal::InProgress),
        Box::new(RecordError::Op(OpDecodeError::UnknownTag(9))),
        Box::new(BadRecord { offset: 16, error: RecordError::Op(OpDecodeError::Truncated) }),
        Box::new(WireError::BadRecord {
            position: 2,
            offset: 70,
            source: RecordError::Crc { stored: 1, computed: 2 },
        }),
        Box::new(ConfigError::Cluster(ClusterFileError::Members {
            path: path(),
            problem: MembershipError::DuplicateId(2),
        })),
        Box::new(TickConfigError::TooSmall { field: "window", min: 1, got: 0 }),
        Box::new(ReplicationError::NotInFullSync(2)),
        Box::new(ApplyError::WrongType),
    ];
    for (i, e) in errors.iter().enumerate() {
        assert_eq!(ErrorChain(e.as_ref()).repeated_cause(), None, "#{i}: {e:?}");
    }
}
