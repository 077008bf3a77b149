//! Storage of accepted reports: embedded SQLite (default) or PostgreSQL, with group commit.
//!
//! Every accepted report becomes one row in `reports` (UTC day of receipt, canonical JSON; the
//! row id only orders storage, it is never published: raw reports are published sorted by
//! content), and each of its programs adds one to its group in `week_groups` (week, config
//! index, program, version, os, arch and the label index of every counter, with a count), in
//! the same transaction. Aggregation reads the groups, so it neither parses JSON nor scans
//! reports, and an insert touches a few pages of a small table instead of one index page per
//! report.
//!
//! Writes go through [`Store::insert`], which hands the report to writer tasks; a writer takes
//! every report waiting (up to [`MAX_BATCH`]) and stores them in one transaction, then answers
//! each caller. A caller is told `Ok` only after the commit: with SQLite in WAL mode and
//! `synchronous=FULL`, or PostgreSQL with its default `synchronous_commit`, that is durable.
//!
//! With SQLite, a checkpointer task copies committed pages from the write-ahead log into the
//! database file ([`CHECKPOINT_DELAY`] after a commit, on a connection of its own), so that
//! the writer's own automatic checkpoint, which SQLite runs in the committing connection every
//! 1,000 log pages, finds almost nothing left to copy and sync, and uploads waiting on the
//! writer are not held up by it.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, QueryBuilder, Row, Sqlite};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use crate::validate::{Accepted, ProgramRow};

/// The most reports stored in one transaction.
pub const MAX_BATCH: usize = 512;

/// How long the SQLite checkpointer waits after a commit before checkpointing: commits in the
/// meantime are checkpointed together.
pub const CHECKPOINT_DELAY: Duration = Duration::from_millis(20);

/// The SQLite file name inside the data directory.
pub const SQLITE_FILE: &str = "clearcount.sqlite3";

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
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

struct Pending {
    report: Accepted,
    day: NaiveDate,
    done: oneshot::Sender<Result<(), String>>,
}

/// The report store: a database, its group-commit writers and, for SQLite, the checkpointer.
pub struct Store {
    db: Db,
    tx: std::sync::Mutex<Option<mpsc::Sender<Pending>>>,
    writers: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    checkpointer: Option<tokio::task::JoinHandle<()>>,
}

const SQLITE_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS reports (id INTEGER PRIMARY KEY, day TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS reports_day ON reports (day)",
    "CREATE TABLE IF NOT EXISTS week_groups (week TEXT NOT NULL, config_index INTEGER NOT NULL, \
     program TEXT NOT NULL, version TEXT NOT NULL, os TEXT NOT NULL, arch TEXT NOT NULL, \
     labels TEXT NOT NULL, n INTEGER NOT NULL, \
     PRIMARY KEY (week, config_index, program, version, os, arch, labels)) WITHOUT ROWID",
];

const PG_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS reports (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
     day TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS reports_day ON reports (day)",
    "CREATE TABLE IF NOT EXISTS week_groups (week TEXT NOT NULL, config_index BIGINT NOT NULL, \
     program TEXT NOT NULL, version TEXT NOT NULL, os TEXT NOT NULL, arch TEXT NOT NULL, \
     labels TEXT NOT NULL, n BIGINT NOT NULL, \
     PRIMARY KEY (week, config_index, program, version, os, arch, labels))",
];

/// Databases written before `week_groups` existed kept one row per program in
/// `report_programs`: when `week_groups` is created beside it, it is filled from those rows and
/// the old table dropped, in the schema transaction (so a failure leaves the old layout whole).
const LEGACY_MIGRATION: &[&str] = &[
    "INSERT INTO week_groups (week, config_index, program, version, os, arch, labels, n) \
     SELECT week, config_index, program, version, os, arch, labels, COUNT(*) FROM report_programs \
     GROUP BY week, config_index, program, version, os, arch, labels",
    "DROP TABLE report_programs",
];

/// Adds a batch's counts to existing groups (the grouping key is the primary key).
const GROUPS_UPSERT: &str = " ON CONFLICT (week, config_index, program, version, os, arch, labels) \
     DO UPDATE SET n = week_groups.n + excluded.n";

/// Advisory lock key that serializes schema creation between instances sharing PostgreSQL.
const PG_SCHEMA_LOCK: i64 = 0x636c_6561_7263_6e74;

impl Db {
    /// Connects: `url` `None` means SQLite in `data_dir`; `postgres://` or `postgresql://` means
    /// PostgreSQL; `sqlite://path` an explicit SQLite file. Creates the schema if needed
    /// (idempotent, and safe when several instances start at once).
    pub async fn connect(url: Option<&str>, data_dir: &Path) -> Result<Db, StoreError> {
        match url {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                let opts = PgConnectOptions::from_str(u)?;
                // No ping before each acquire: a dead connection fails its query, which the
                // writer retries, and the ping would cost a round trip per batch.
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await?;
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(PG_SCHEMA_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let has = |table: &'static str| {
                    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL").bind(table)
                };
                let migrate = has("report_programs").fetch_one(&mut *tx).await?
                    && !has("week_groups").fetch_one(&mut *tx).await?;
                for stmt in PG_SCHEMA {
                    sqlx::query(stmt).execute(&mut *tx).await?;
                }
                if migrate {
                    for stmt in LEGACY_MIGRATION {
                        sqlx::query(stmt).execute(&mut *tx).await?;
                    }
                }
                tx.commit().await?;
                Ok(Db::Postgres(pool))
            }
            Some(u) if u.starts_with("sqlite:") => {
                let opts = SqliteConnectOptions::from_str(u)?;
                Db::sqlite(opts).await
            }
            Some(_) => Err(StoreError::Url),
            None => {
                std::fs::create_dir_all(data_dir)?;
                Db::sqlite(SqliteConnectOptions::new().filename(data_dir.join(SQLITE_FILE))).await
            }
        }
    }

    async fn sqlite(opts: SqliteConnectOptions) -> Result<Db, StoreError> {
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory");
        // The writer, the checkpointer and readers (publication, aggregation).
        let pool = SqlitePoolOptions::new()
            .max_connections(5)
            .test_before_acquire(false)
            .connect_with(opts)
            .await?;
        let mut tx = pool.begin().await?;
        let has = |table: &'static str| {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)",
            )
            .bind(table)
        };
        let migrate = has("report_programs").fetch_one(&mut *tx).await?
            && !has("week_groups").fetch_one(&mut *tx).await?;
        for stmt in SQLITE_SCHEMA {
            sqlx::query(stmt).execute(&mut *tx).await?;
        }
        if migrate {
            for stmt in LEGACY_MIGRATION {
                sqlx::query(stmt).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(Db::Sqlite(pool))
    }

    /// Which kind of database this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Stores reports (each with its day of receipt) in one transaction.
    pub async fn insert_batch(&self, items: &[(&Accepted, NaiveDate)]) -> Result<(), StoreError> {
        self.insert_batch_on(&mut None, items).await
    }

    /// [`Db::insert_batch`] on the SQLite connection in `held`, acquired into it if empty and
    /// kept there for the next batch: a writer that keeps its connection keeps that
    /// connection's page cache warm (the pool hands out its connections in turn, and a
    /// connection whose cache is older than the last commit reads the changed pages back).
    /// `held` is emptied after a failure. PostgreSQL uses the pool.
    async fn insert_batch_on(
        &self,
        held: &mut Option<PoolConnection<Sqlite>>,
        items: &[(&Accepted, NaiveDate)],
    ) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        match self {
            Db::Sqlite(pool) => {
                let conn = match held {
                    Some(c) => c,
                    None => held.insert(pool.acquire().await?),
                };
                // One round trip to the connection's worker thread for the whole transaction
                // (BEGIN, the inserts, COMMIT): under CPU contention every hop costs a wakeup.
                let mut q = sqlite_batch_query(items);
                let result = q.build().execute(&mut **conn).await;
                if let Err(e) = result {
                    // The transaction may still be open after a failed statement.
                    let _ = sqlx::query("ROLLBACK").execute(&mut **conn).await;
                    *held = None;
                    return Err(e.into());
                }
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                reports_query::<Postgres>(items)
                    .build()
                    .execute(&mut *tx)
                    .await?;
                for mut q in group_queries::<Postgres>(items) {
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Canonical JSON of every report received on `day`, sorted by content (never by arrival).
    pub async fn reports_of_day(&self, day: NaiveDate) -> Result<Vec<String>, StoreError> {
        let day = day.to_string();
        let rows: Vec<String> = match self {
            Db::Sqlite(p) => {
                sqlx::query_scalar("SELECT body FROM reports WHERE day = ? ORDER BY body")
                    .bind(day)
                    .fetch_all(p)
                    .await?
            }
            Db::Postgres(p) => {
                sqlx::query_scalar(
                    "SELECT body FROM reports WHERE day = $1 ORDER BY body COLLATE \"C\"",
                )
                .bind(day)
                .fetch_all(p)
                .await?
            }
        };
        Ok(rows)
    }

    /// Every day with reports and how many.
    pub async fn days(&self) -> Result<Vec<(NaiveDate, u64)>, StoreError> {
        let sql = "SELECT day, COUNT(*) FROM reports GROUP BY day ORDER BY day";
        let rows: Vec<(String, i64)> = match self {
            Db::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await?,
            Db::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await?,
        };
        Ok(rows
            .into_iter()
            .filter_map(|(d, n)| Some((NaiveDate::from_str(&d).ok()?, n as u64)))
            .collect())
    }

    /// Every week with reports.
    pub async fn weeks(&self) -> Result<Vec<NaiveDate>, StoreError> {
        let sql = "SELECT DISTINCT week FROM week_groups ORDER BY week";
        let rows: Vec<String> = match self {
            Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await?,
            Db::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await?,
        };
        Ok(rows
            .into_iter()
            .filter_map(|d| NaiveDate::from_str(&d).ok())
            .collect())
    }

    /// The number of stored reports.
    pub async fn count_reports(&self) -> Result<u64, StoreError> {
        let sql = "SELECT COUNT(*) FROM reports";
        let n: i64 = match self {
            Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
            Db::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
        };
        Ok(n as u64)
    }

    /// The groups of `week`: one row per distinct combination with its count.
    pub async fn week_groups(&self, week: NaiveDate) -> Result<Vec<GroupRow>, StoreError> {
        let week = week.to_string();
        let rows = match self {
            Db::Sqlite(p) => sqlx::query(
                "SELECT config_index, program, version, os, arch, labels, n \
                     FROM week_groups WHERE week = ?",
            )
            .bind(week)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| group_row(&r))
            .collect::<Result<Vec<_>, sqlx::Error>>()?,
            Db::Postgres(p) => sqlx::query(
                "SELECT config_index, program, version, os, arch, labels, n \
                     FROM week_groups WHERE week = $1",
            )
            .bind(week)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| group_row(&r))
            .collect::<Result<Vec<_>, sqlx::Error>>()?,
        };
        let mut rows = rows;
        rows.sort_by(|a, b| {
            (
                a.config_index,
                &a.program,
                &a.version,
                &a.os,
                &a.arch,
                &a.labels,
            )
                .cmp(&(
                    b.config_index,
                    &b.program,
                    &b.version,
                    &b.os,
                    &b.arch,
                    &b.labels,
                ))
        });
        Ok(rows)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

fn group_row<R: Row>(r: &R) -> Result<GroupRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(GroupRow {
        config_index: r.try_get::<i64, _>(0)? as u64,
        program: r.try_get(1)?,
        version: r.try_get(2)?,
        os: r.try_get(3)?,
        arch: r.try_get(4)?,
        labels: r.try_get(5)?,
        count: r.try_get::<i64, _>(6)? as u64,
    })
}

/// The whole SQLite batch as one multi-statement query: `BEGIN IMMEDIATE`, the report rows,
/// the group counts, `COMMIT`. SQLite binds the anonymous parameters statement by statement,
/// and each statement stays below the bind-parameter limit.
fn sqlite_batch_query<'a>(items: &[(&Accepted, NaiveDate)]) -> QueryBuilder<'a, Sqlite> {
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("BEGIN IMMEDIATE; ");
    push_reports(&mut q, items);
    for chunk in group_counts(items).chunks(GROUP_CHUNK) {
        q.push("; ");
        push_groups(&mut q, chunk);
    }
    q.push("; COMMIT");
    q
}

/// Groups a statement: 8 binds a group, well below bind-parameter limits.
const GROUP_CHUNK: usize = 1024;

fn push_reports<'a, DB>(q: &mut QueryBuilder<'a, DB>, items: &[(&Accepted, NaiveDate)])
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push("INSERT INTO reports (day, body) ");
    q.push_values(items, |mut b, (a, day)| {
        b.push_bind(day.to_string()).push_bind(a.canonical.clone());
    });
}

/// The grouping key of one program of a report.
type GroupKey<'b> = (NaiveDate, u64, &'b ProgramRow);

/// The batch's programs counted by group, in key order: one upsert per group, and PostgreSQL
/// transactions that touch the same groups lock them in the same order (no deadlocks).
fn group_counts<'b>(items: &[(&'b Accepted, NaiveDate)]) -> Vec<(GroupKey<'b>, i64)> {
    let mut counts: BTreeMap<GroupKey<'b>, i64> = BTreeMap::new();
    for (a, _) in items {
        for row in &a.rows {
            *counts.entry((a.week, a.config_index, row)).or_default() += 1;
        }
    }
    counts.into_iter().collect()
}

fn push_groups<'a, DB>(q: &mut QueryBuilder<'a, DB>, chunk: &[(GroupKey<'_>, i64)])
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push("INSERT INTO week_groups (week, config_index, program, version, os, arch, labels, n) ");
    q.push_values(chunk, |mut b, ((week, config_index, r), n)| {
        b.push_bind(week.to_string())
            .push_bind(*config_index as i64)
            .push_bind(r.program.clone())
            .push_bind(r.version.clone())
            .push_bind(r.os.clone())
            .push_bind(r.arch.clone())
            .push_bind(r.labels.clone())
            .push_bind(*n);
    });
    q.push(GROUPS_UPSERT);
}

fn reports_query<'a, DB>(items: &[(&Accepted, NaiveDate)]) -> QueryBuilder<'a, DB>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut q: QueryBuilder<DB> = QueryBuilder::new("");
    push_reports(&mut q, items);
    q
}

/// Group upserts, one query per [`GROUP_CHUNK`] groups.
fn group_queries<'a, DB>(items: &[(&Accepted, NaiveDate)]) -> Vec<QueryBuilder<'a, DB>>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    group_counts(items)
        .chunks(GROUP_CHUNK)
        .map(|chunk| {
            let mut q: QueryBuilder<DB> = QueryBuilder::new("");
            push_groups(&mut q, chunk);
            q
        })
        .collect()
}

impl Store {
    /// A store over `db` with `writers` group-commit writer tasks (1 suits SQLite, which has a
    /// single writer anyway; a few suit PostgreSQL). Must be called inside a Tokio runtime.
    pub fn new(db: Db, writers: usize) -> Store {
        let (tx, rx) = mpsc::channel::<Pending>(MAX_BATCH * 8);
        let rx = Arc::new(Mutex::new(rx));
        let committed = Arc::new(Notify::new());
        let checkpointer = match &db {
            Db::Sqlite(pool) => Some(tokio::spawn(checkpointer(pool.clone(), committed.clone()))),
            Db::Postgres(_) => None,
        };
        let handles = (0..writers.max(1))
            .map(|_| tokio::spawn(writer(db.clone(), rx.clone(), committed.clone())))
            .collect();
        Store {
            db,
            tx: std::sync::Mutex::new(Some(tx)),
            writers: std::sync::Mutex::new(handles),
            checkpointer,
        }
    }

    /// The database, for reads.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Stores one accepted report received on `day`; returns only after it is committed.
    pub async fn insert(&self, report: Accepted, day: NaiveDate) -> Result<(), StoreError> {
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(StoreError::WriterGone)?;
        let (done, wait) = oneshot::channel();
        tx.send(Pending { report, day, done })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        drop(tx);
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Db(sqlx::Error::Protocol(e))),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    /// Stops accepting reports, lets the writers store everything queued, and waits for them.
    pub async fn shutdown(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let handles: Vec<_> =
            std::mem::take(&mut *self.writers.lock().unwrap_or_else(|e| e.into_inner()));
        for h in handles {
            let _ = h.await;
        }
        // Everything is committed; closing the pool checkpoints what is left.
        self.stop_checkpointer();
    }

    fn stop_checkpointer(&self) {
        if let Some(c) = &self.checkpointer {
            c.abort();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop_checkpointer();
    }
}

/// Runs a passive checkpoint [`CHECKPOINT_DELAY`] after each commit (or run of commits). It
/// never blocks the writer; a checkpoint that cannot finish now is completed by a later one.
async fn checkpointer(pool: SqlitePool, committed: Arc<Notify>) {
    loop {
        committed.notified().await;
        tokio::time::sleep(CHECKPOINT_DELAY).await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!("checkpoint: {e}");
        }
    }
}

async fn writer(db: Db, rx: Arc<Mutex<mpsc::Receiver<Pending>>>, committed: Arc<Notify>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let mut held = None;
    loop {
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(p) => batch.push(p),
                None => return,
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
        }
        let items: Vec<(&Accepted, NaiveDate)> = batch.iter().map(|p| (&p.report, p.day)).collect();
        let result = db.insert_batch_on(&mut held, &items).await;
        committed.notify_one();
        drop(items);
        match result {
            Ok(()) => {
                for p in batch.drain(..) {
                    let _ = p.done.send(Ok(()));
                }
            }
            Err(e) => {
                // One bad row must not fail its neighbours: retry each alone.
                tracing::error!(
                    "batch of {} reports failed ({e}); retrying one by one",
                    batch.len()
                );
                for p in batch.drain(..) {
                    let r = db
                        .insert_batch_on(&mut held, &[(&p.report, p.day)])
                        .await
                        .map_err(|e| e.to_string());
                    if let Err(e) = &r {
                        tracing::error!("storing a report failed: {e}");
                    }
                    let _ = p.done.send(r);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(n: usize, programs: usize) -> Accepted {
        Accepted {
            canonical: format!("{{\"n\":{n}}}"),
            week: NaiveDate::from_ymd_opt(2026, 11, 16).unwrap(),
            config_index: 0,
            rows: (0..programs)
                .map(|p| ProgramRow {
                    program: format!("p{p}"),
                    version: "1.0.0".into(),
                    os: "linux".into(),
                    arch: "x86_64".into(),
                    labels: format!("{n},0"),
                })
                .collect(),
        }
    }

    /// Committed pages reach the SQLite database file soon after the commit, long before the
    /// writer's own automatic checkpoint (every 1,000 log pages) would copy them.
    #[tokio::test]
    async fn sqlite_checkpointer_copies_commits_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(None, dir.path()).await.unwrap();
        let file = dir.path().join(SQLITE_FILE);
        let before = std::fs::metadata(&file).unwrap().len();
        let store = Store::new(db, 1);
        let day = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        for n in 0..50 {
            store.insert(report(n, 3), day).await.unwrap();
        }
        let wal = dir.path().join(format!("{SQLITE_FILE}-wal"));
        assert!(std::fs::metadata(&wal).unwrap().len() < 1000 * 4096);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&file).unwrap().len() <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing was checkpointed into the database file"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        store.shutdown().await;
        assert_eq!(store.db().count_reports().await.unwrap(), 50);
    }

    /// The one-round-trip SQLite batch stores every row (groups spanning several statements),
    /// and a failed batch is rolled back whole and leaves the connection usable.
    #[tokio::test]
    async fn sqlite_batch_is_atomic_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(None, dir.path()).await.unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let reports: Vec<Accepted> = (0..300).map(|n| report(n, 5)).collect();
        let items: Vec<(&Accepted, NaiveDate)> = reports.iter().map(|a| (a, day)).collect();
        db.insert_batch(&items).await.unwrap();
        assert_eq!(db.count_reports().await.unwrap(), 300);
        let groups = db
            .week_groups(NaiveDate::from_ymd_opt(2026, 11, 16).unwrap())
            .await
            .unwrap();
        assert_eq!(groups.len(), 1500);
        assert!(groups.iter().all(|g| g.count == 1));
        // A second batch of the same groups adds to them.
        db.insert_batch(&items[..2]).await.unwrap();
        let groups = db
            .week_groups(NaiveDate::from_ymd_opt(2026, 11, 16).unwrap())
            .await
            .unwrap();
        assert_eq!(groups.iter().map(|g| g.count).sum::<u64>(), 1510);
        assert_eq!(groups.iter().filter(|g| g.count == 2).count(), 10);

        let Db::Sqlite(pool) = &db else {
            unreachable!()
        };
        sqlx::query("ALTER TABLE week_groups RENAME TO moved")
            .execute(pool)
            .await
            .unwrap();
        for _ in 0..8 {
            // More failures than pool connections: none may keep a transaction open.
            assert!(db.insert_batch(&items[..10]).await.is_err());
        }
        assert_eq!(db.count_reports().await.unwrap(), 302);
        sqlx::query("ALTER TABLE moved RENAME TO week_groups")
            .execute(pool)
            .await
            .unwrap();
        db.insert_batch(&items[..10]).await.unwrap();
        assert_eq!(db.count_reports().await.unwrap(), 312);
        db.close().await;
    }

    /// A database of the earlier layout (one `report_programs` row per program) is migrated on
    /// connect: its groups are counted into `week_groups` and the old table is dropped.
    #[tokio::test]
    async fn legacy_report_programs_are_counted_into_groups() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join(SQLITE_FILE))
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(opts).await.unwrap();
        for stmt in [
            "CREATE TABLE reports (id INTEGER PRIMARY KEY, day TEXT NOT NULL, body TEXT NOT NULL)",
            "CREATE TABLE report_programs (week TEXT NOT NULL, config_index INTEGER NOT NULL, \
             program TEXT NOT NULL, version TEXT NOT NULL, os TEXT NOT NULL, arch TEXT NOT NULL, \
             labels TEXT NOT NULL)",
            "INSERT INTO report_programs VALUES ('2026-11-16', 0, 'p', '1.0.0', 'linux', 'x86_64', '1'), \
             ('2026-11-16', 0, 'p', '1.0.0', 'linux', 'x86_64', '1'), \
             ('2026-11-16', 0, 'p', '1.0.0', 'macos', 'x86_64', '1'), \
             ('2026-11-09', 1, 'p', '1.0.0', 'linux', 'x86_64', '0')",
        ] {
            sqlx::query(stmt).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let db = Db::connect(None, dir.path()).await.unwrap();
        let week = NaiveDate::from_ymd_opt(2026, 11, 16).unwrap();
        let counts: Vec<(String, u64)> = db
            .week_groups(week)
            .await
            .unwrap()
            .into_iter()
            .map(|g| (g.os, g.count))
            .collect();
        assert_eq!(counts, [("linux".into(), 2), ("macos".into(), 1)]);
        assert_eq!(db.weeks().await.unwrap().len(), 2);
        let Db::Sqlite(pool) = &db else {
            unreachable!()
        };
        let legacy: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'report_programs'")
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(legacy, 0);
        db.close().await;
        // Connecting again changes nothing.
        let db = Db::connect(None, dir.path()).await.unwrap();
        assert_eq!(db.week_groups(week).await.unwrap().len(), 2);
        db.close().await;
    }
}
