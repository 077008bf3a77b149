//! Storage of accepted reports: embedded SQLite (default) or PostgreSQL, with group commit.
//!
//! Every accepted report becomes one row in `reports`: its idempotency key (config index,
//! week and x, [`crate::validate::report_key`]) as primary key, its UTC day of receipt and its
//! canonical JSON. Nothing in a row orders rows by arrival (no row id or sequence; SQLite keeps
//! the table `WITHOUT ROWID`, ordered by the random-looking key), and raw reports are published
//! sorted by content. A report whose key is stored already is not stored again
//! ([`Outcome`]). Each program of a new report adds one to its group in `week_groups` (week, config
//! index, program, version, os, arch and the label index of every counter, with a count), in
//! the same transaction. Aggregation reads the groups, so it neither parses JSON nor scans
//! reports, and an insert touches a few pages of a small table instead of one index page per
//! report.
//!
//! Writes go through [`Store::insert`], which hands the report to writer tasks; a writer takes
//! every report waiting (up to [`MAX_BATCH`]) and stores them in one transaction, then answers
//! each caller. The SQLite writer stores on a connection of its own, opened with rusqlite on
//! its thread, with its statements prepared once (the pool's connections each run on a worker
//! thread of their own, one more thread hop a batch); the pool serves reads. A caller is told `Ok` only once the commit is durable: PostgreSQL with its
//! default `synchronous_commit` syncs in the commit; SQLite (WAL mode, `synchronous=NORMAL`)
//! commits without waiting for the disk, and the caller is answered after a sync of the
//! write-ahead log that began after the commit ([`Db::sync_wal`]), so that the writer commits
//! the next batch while the disk syncs the last one.
//!
//! With SQLite, a checkpointer task copies committed pages from the write-ahead log into the
//! database file ([`CHECKPOINT_DELAY`] after a commit, on a connection of its own), so that
//! the writer's own automatic checkpoint, which SQLite runs in the committing connection every
//! 1,000 log pages, finds almost nothing left to copy and sync, and uploads waiting on the
//! writer are not held up by it.
//!
//! The module's parts: `schema` connects and creates or converts the schema; `batch` stores
//! a batch of reports in one transaction; `durable` makes SQLite commits durable; `writer` is
//! the [`Store`] with its group-commit writers, checkpointer and write-ahead-log syncer; `read`
//! holds the queries of publication and aggregation.

use std::time::Duration;

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

mod batch;
mod durable;
mod read;
mod schema;
mod writer;

pub use writer::Store;

/// The most reports stored in one transaction.
pub const MAX_BATCH: usize = 512;

/// How long the SQLite checkpointer waits after a commit before checkpointing: commits in the
/// meantime are checkpointed together.
pub const CHECKPOINT_DELAY: Duration = Duration::from_millis(20);

/// How long a SQLite connection waits for another connection's lock (a migration, a
/// checkpoint) before it fails.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite's page cache a connection, in KiB (`PRAGMA cache_size` takes it negated).
pub(crate) const SQLITE_CACHE_KIB: i64 = 65_536;

/// The SQLite file name inside the data directory.
pub const SQLITE_FILE: &str = "clearcount.sqlite3";

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// SQLite said no to the writer's own connection.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The writer is gone (the server is shutting down).
    #[error("the storage writer has stopped")]
    WriterGone,
    /// A database URL that is neither SQLite nor PostgreSQL.
    #[error("unsupported database URL (use postgres://... or sqlite://...)")]
    Url,
    /// The data directory could not be created.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
}

/// A database connection pool of either kind.
#[derive(Debug, Clone)]
pub enum Db {
    /// Embedded SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// One group of identical compact rows of a week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// Config index the reports were checked against.
    pub config_index: u64,
    /// Program.
    pub program: String,
    /// Version.
    pub version: String,
    /// OS.
    pub os: String,
    /// Arch.
    pub arch: String,
    /// Encoded label indexes (see [`crate::validate::encode_labels`]).
    pub labels: String,
    /// How many program rows have exactly these values.
    pub count: u64,
}

/// What became of a report handed to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored now.
    Stored,
    /// Equal to a stored report: not stored again.
    Duplicate,
    /// The key of a stored report, with a different body: not stored.
    Conflict,
}

#[cfg(test)]
mod tests;
