//! Making SQLite commits durable outside SQLite's write lock.
//!
//! SQLite runs in WAL mode with `synchronous=NORMAL`: a commit appends its pages to the
//! write-ahead log without waiting for the disk, and [`Db::sync_wal`] then `fdatasync`s the log.
//! A commit is durable once a sync that began after it is done: the log's frames are written in
//! place before the commit returns, so that sync covers them (and every earlier commit). SQLite
//! itself syncs the log before a checkpoint copies it into the database file, and syncs the
//! log's header when it starts the log over (only after a checkpoint copied all of it), in this
//! mode as in `FULL`, so no committed frame is overwritten before it is on disk.

use std::io;
use std::path::PathBuf;

use super::Db;

impl Db {
    /// Makes every SQLite commit made so far durable (nothing to do for PostgreSQL, whose
    /// commits are). Blocking: call from a blocking thread.
    pub fn sync_wal(&self) -> io::Result<()> {
        let Some(wal) = self.wal_path() else {
            return Ok(());
        };
        match std::fs::File::open(&wal) {
            Ok(f) => f.sync_data(),
            // No log: SQLite removes it only when its last connection closes, after copying it
            // into the database file and syncing that; and an in-memory database has none.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The write-ahead log of a SQLite database file.
    pub(super) fn wal_path(&self) -> Option<PathBuf> {
        match self {
            Db::Sqlite(pool) => {
                let mut path = pool.connect_options().get_filename().as_os_str().to_owned();
                path.push("-wal");
                Some(PathBuf::from(path))
            }
            Db::Postgres(_) => None,
        }
    }

    /// [`Db::sync_wal`] on a blocking thread.
    pub(super) async fn sync_wal_async(&self) -> Result<(), super::StoreError> {
        if matches!(self, Db::Postgres(_)) {
            return Ok(());
        }
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.sync_wal())
            .await
            .map_err(|e| io::Error::other(e.to_string()))??;
        Ok(())
    }
}
