//! Why the WAL writer could not do what it was asked: the error inside
//! [`WalError::Failed`](crate::persist::WalError::Failed).

use thiserror::Error;

/// Why the WAL writer cannot make records durable, or did not when it
/// stopped. `error` is the policy's account of the failure (`write <path>:
/// <OS error>`): a message for humans, built once where the IO failed and
/// then shown in INFO (`wal_last_error`), IO_ERROR replies and the log, so
/// it stays a string.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WriterFailure {
    /// Shut down while writes were failing: records `first..=last` never
    /// reached a segment.
    #[error("records {first}..={last} could not be written: {error}")]
    Unwritten { first: u64, last: u64, error: String },
    /// The WAL is failing, has no segment, or can no longer be made
    /// durable (see `policy`).
    #[error("{error}")]
    Failing { error: String },
    /// Asked of a writer whose thread has exited.
    #[error("the WAL writer has stopped")]
    Stopped,
    /// The writer thread, or the task shutting it down, panicked.
    #[error("the WAL writer panicked")]
    Panicked,
}
