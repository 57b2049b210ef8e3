//! One server per data directory: an exclusive `flock` on its `LOCK` file,
//! held for the process's life. Taken with persistence on, and by a
//! cluster member with persistence off too (its vote file lives there):
//! two processes writing one vote file could each vote once in a term.

use std::fs::File;
use std::path::Path;

use super::PersistError;

/// Creates `dir` if missing and locks it; the lock lasts as long as the file.
pub(crate) fn lock_data_dir(dir: &Path) -> Result<File, PersistError> {
    let err = |source| PersistError::Dir { dir: dir.to_owned(), source };
    std::fs::create_dir_all(dir).map_err(err)?;
    let lock =
        File::options().create(true).truncate(false).write(true).open(dir.join("LOCK")).map_err(err)?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(PersistError::Locked(dir.to_owned())),
        Err(std::fs::TryLockError::Error(source)) => Err(err(source)),
    }
}
