//! Advisory whole-file locks without `File::lock` and friends, which need Rust 1.89: the
//! libraries build with Rust 1.85. On Unix, `flock(2)` through rustix (safe code, the same
//! call std makes); elsewhere, std's locks (Windows needs Rust 1.89 for them).

use std::fs::File;
use std::io;

/// The locks clearcount takes on its own small files and directories.
pub(crate) trait FileLock {
    /// Blocks until the exclusive lock is held.
    fn lock_file(&self) -> io::Result<()>;
    /// Blocks until a shared lock is held.
    fn lock_file_shared(&self) -> io::Result<()>;
    /// Takes the exclusive lock if nobody holds a lock; an error otherwise.
    fn try_lock_file(&self) -> io::Result<()>;
    /// Releases the lock.
    fn unlock_file(&self) -> io::Result<()>;
}

#[cfg(unix)]
impl FileLock for File {
    fn lock_file(&self) -> io::Result<()> {
        use rustix::fs::{FlockOperation, flock};
        Ok(flock(self, FlockOperation::LockExclusive)?)
    }

    fn lock_file_shared(&self) -> io::Result<()> {
        use rustix::fs::{FlockOperation, flock};
        Ok(flock(self, FlockOperation::LockShared)?)
    }

    fn try_lock_file(&self) -> io::Result<()> {
        use rustix::fs::{FlockOperation, flock};
        Ok(flock(self, FlockOperation::NonBlockingLockExclusive)?)
    }

    fn unlock_file(&self) -> io::Result<()> {
        use rustix::fs::{FlockOperation, flock};
        Ok(flock(self, FlockOperation::Unlock)?)
    }
}

#[cfg(not(unix))]
#[allow(clippy::incompatible_msrv)]
impl FileLock for File {
    fn lock_file(&self) -> io::Result<()> {
        self.lock()
    }

    fn lock_file_shared(&self) -> io::Result<()> {
        self.lock_shared()
    }

    fn try_lock_file(&self) -> io::Result<()> {
        self.try_lock().map_err(io::Error::other)
    }

    fn unlock_file(&self) -> io::Result<()> {
        self.unlock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_unlock_releases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let a = File::create(&path).unwrap();
        let b = File::open(&path).unwrap();
        a.lock_file().unwrap();
        assert!(
            b.try_lock_file().is_err(),
            "a second exclusive lock was granted"
        );
        a.unlock_file().unwrap();
        b.try_lock_file().unwrap();
        b.unlock_file().unwrap();
        a.lock_file_shared().unwrap();
        b.lock_file_shared().unwrap();
        assert!(File::open(&path).unwrap().try_lock_file().is_err());
    }
}
