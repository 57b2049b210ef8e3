//! File descriptors (issue 11): with `nofile` 1024 and the default
//! `--max-connections 10000`, connections past the fd limit got neither
//! service nor BUSY and `accept` failed ~20 times a second in the log.
//!
//! At start the server raises its soft `RLIMIT_NOFILE` toward the hard
//! limit as far as `--max-connections` needs; if that is not enough it
//! lowers the connection limit to what fits and says so once, as Redis
//! does. It keeps [`RESERVED`] descriptors besides those already open
//! (WAL segments, snapshots, replication and peer links, BUSY refusals in
//! flight). And one [`Spare`] descriptor, so that when `accept` fails for
//! want of descriptors anyway, one is freed, the pending client accepted,
//! told BUSY and closed — it is not left hanging.

use std::io;

use tracing::{info, warn};

/// Descriptors kept for everything but client connections (Redis keeps 32).
pub(crate) const RESERVED: u64 = 32;

/// What the start-up check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FdPlan {
    /// The soft limit to set, if it must change.
    pub raise_to: Option<u64>,
    /// Connections that fit.
    pub max_connections: usize,
}

/// Plans the soft limit for `wanted` connections, given the current soft
/// and hard limits and the descriptors the server needs besides them
/// (`reserved`, the spare included).
pub(crate) fn plan(wanted: usize, soft: u64, hard: u64, reserved: u64) -> FdPlan {
    let need = (wanted as u64).saturating_add(reserved);
    let raise_to = (soft < need && hard > soft).then(|| need.min(hard));
    let limit = raise_to.unwrap_or(soft);
    let fits = limit.saturating_sub(reserved).max(1);
    FdPlan { raise_to, max_connections: (wanted as u64).min(fits) as usize }
}

/// Raises the soft `RLIMIT_NOFILE` for `wanted` connections where the hard
/// limit allows, and returns how many connections fit; logs what it did.
pub(crate) fn fit_connections(wanted: usize) -> usize {
    let Some((soft, hard)) = nofile() else { return wanted };
    // Descriptors open now (stdio, the listener, the data directory's lock,
    // the WAL, runtimes' event fds), the reserve and the spare.
    let open = open_descriptors().unwrap_or(16);
    let p = plan(wanted, soft, hard, open + RESERVED + 1);
    let mut soft_now = soft;
    if let Some(to) = p.raise_to {
        match set_nofile(to, hard) {
            Ok(()) => {
                info!(
                    from = soft,
                    to, hard, "raised the open-files limit (RLIMIT_NOFILE) for --max-connections"
                );
                soft_now = to;
            }
            Err(e) => warn!(error = %e, soft, to, "could not raise the open-files limit (RLIMIT_NOFILE)"),
        }
    }
    let fits = plan(wanted, soft_now, soft_now, open + RESERVED + 1).max_connections;
    if fits < wanted {
        warn!(
            max_connections = wanted,
            lowered_to = fits,
            open_files_limit = soft_now,
            hard_limit = hard,
            "the open-files limit is too low for --max-connections; serving at most {fits} connections \
             (raise it with `ulimit -n`)"
        );
    }
    fits
}

fn nofile() -> Option<(u64, u64)> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (rc == 0).then_some((r.rlim_cur, r.rlim_max))
}

fn set_nofile(soft: u64, hard: u64) -> io::Result<()> {
    let r = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: setrlimit reads one `rlimit` through a valid pointer.
    match unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Descriptors this process has open (Linux: `/proc/self/fd`).
fn open_descriptors() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// Whether an `accept` error means "out of descriptors".
pub(crate) fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// One descriptor held in reserve (`/dev/null`), given up to accept and
/// refuse a client when none is left.
#[derive(Debug)]
pub(crate) struct Spare(Option<std::fs::File>);

impl Spare {
    pub(crate) fn open() -> Spare {
        Spare(std::fs::File::open("/dev/null").ok())
    }

    /// Frees the spare descriptor, runs `f`, and takes the spare back.
    /// False if there was no spare to free.
    pub(crate) fn lend(&mut self, f: impl FnOnce()) -> bool {
        if self.0.take().is_none() {
            *self = Spare::open();
            return false;
        }
        f();
        *self = Spare::open();
        true
    }
}

/// With the spare descriptor freed: accepts the client waiting (if it is
/// still there), answers BUSY and closes it at once, since the descriptor
/// is needed back. Returns whether one was refused.
pub(crate) fn refuse_one(listener: &tokio::net::TcpListener, busy: &[u8]) -> bool {
    use futures_util::FutureExt;
    let Some(Ok((stream, _))) = listener.accept().now_or_never() else { return false };
    // Unread input would turn the close into a reset that destroys the reply.
    let mut sink = [0u8; 4096];
    let _ = stream.try_read(&mut sink);
    let _ = stream.try_write(busy);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_soft_limit_below_the_need_is_raised_as_far_as_the_hard_limit_allows() {
        assert_eq!(
            plan(10_000, 1024, 1_048_576, 50),
            FdPlan { raise_to: Some(10_050), max_connections: 10_000 }
        );
        assert_eq!(plan(10_000, 1024, 4096, 50), FdPlan { raise_to: Some(4096), max_connections: 4046 });
    }

    #[test]
    fn a_limit_that_cannot_be_raised_lowers_the_connections() {
        assert_eq!(plan(10_000, 64, 64, 50), FdPlan { raise_to: None, max_connections: 14 });
        assert_eq!(plan(10_000, 40, 40, 50), FdPlan { raise_to: None, max_connections: 1 }, "at least one");
    }

    #[test]
    fn a_limit_that_fits_is_left_alone() {
        assert_eq!(plan(100, 1024, 1024, 50), FdPlan { raise_to: None, max_connections: 100 });
    }
}
