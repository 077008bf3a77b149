//! The append lock of a log directory without `File::lock` (Rust 1.89): this library builds
//! with Rust 1.85. On Unix, `flock(2)` through rustix (safe code, the same call std makes);
//! elsewhere, std's lock (Windows needs Rust 1.89 for it).

use std::fs::File;
use std::io;

/// The exclusive lock of a file, held until the file is closed.
pub(crate) trait FileLock {
    /// Blocks until the exclusive lock is held.
    fn lock_file(&self) -> io::Result<()>;
}

#[cfg(unix)]
impl FileLock for File {
    fn lock_file(&self) -> io::Result<()> {
        use rustix::fs::{FlockOperation, flock};
        Ok(flock(self, FlockOperation::LockExclusive)?)
    }
}

#[cfg(not(unix))]
#[allow(clippy::incompatible_msrv)]
impl FileLock for File {
    fn lock_file(&self) -> io::Result<()> {
        self.lock()
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use rustix::fs::{FlockOperation, flock};

    #[test]
    fn the_lock_excludes_until_the_file_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let a = File::create(&path).unwrap();
        a.lock_file().unwrap();
        let b = File::open(&path).unwrap();
        assert!(flock(&b, FlockOperation::NonBlockingLockExclusive).is_err());
        drop(a);
        flock(&b, FlockOperation::NonBlockingLockExclusive).unwrap();
    }
}
