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
//! each caller. A caller is told `Ok` only after the commit: with SQLite in WAL mode and
//! `synchronous=FULL`, or PostgreSQL with its default `synchronous_commit`, that is durable.
//!
//! With SQLite, a checkpointer task copies committed pages from the write-ahead log into the
//! database file ([`CHECKPOINT_DELAY`] after a commit, on a connection of its own), so that
//! the writer's own automatic checkpoint, which SQLite runs in the committing connection every
//! 1,000 log pages, finds almost nothing left to copy and sync, and uploads waiting on the
//! writer are not held up by it.

use std::collections::{BTreeMap, HashMap};
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
    done: oneshot::Sender<Result<Outcome, String>>,
}

/// The report store: a database, its group-commit writers and, for SQLite, the checkpointer.
pub struct Store {
    db: Db,
    tx: std::sync::Mutex<Option<mpsc::Sender<Pending>>>,
    writers: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    checkpointer: Option<tokio::task::JoinHandle<()>>,
}

const SQLITE_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS reports (key TEXT PRIMARY KEY, day TEXT NOT NULL, \
     body TEXT NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS reports_day ON reports (day)",
    "CREATE TABLE IF NOT EXISTS week_groups (week TEXT NOT NULL, config_index INTEGER NOT NULL, \
     program TEXT NOT NULL, version TEXT NOT NULL, os TEXT NOT NULL, arch TEXT NOT NULL, \
     labels TEXT NOT NULL, n INTEGER NOT NULL, \
     PRIMARY KEY (week, config_index, program, version, os, arch, labels)) WITHOUT ROWID",
];

const PG_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS reports (key TEXT PRIMARY KEY, day TEXT NOT NULL, \
     body TEXT NOT NULL)",
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

/// Databases written before reports had a key kept an arrival-ordered row id: that table is
/// renamed (its day index dropped, for the new table's), the schema creates the keyed table,
/// [`copy_arrival_ordered`] copies the rows with their keys, and the old table is dropped, all
/// in the schema transaction. Repeats stored before keys existed are kept once.
const ARRIVAL_ORDERED_RENAME: &[&str] = &[
    "DROP INDEX IF EXISTS reports_day",
    "ALTER TABLE reports RENAME TO reports_arrival_ordered",
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
                let arrival_ordered = sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE \
                     table_schema = current_schema() AND table_name = 'reports' \
                     AND column_name = 'id')",
                )
                .fetch_one(&mut *tx)
                .await?;
                if arrival_ordered {
                    for stmt in ARRIVAL_ORDERED_RENAME {
                        sqlx::query(stmt).execute(&mut *tx).await?;
                    }
                }
                for stmt in PG_SCHEMA {
                    sqlx::query(stmt).execute(&mut *tx).await?;
                }
                if migrate {
                    for stmt in LEGACY_MIGRATION {
                        sqlx::query(stmt).execute(&mut *tx).await?;
                    }
                }
                if arrival_ordered {
                    let rows = sqlx::query_as(ARRIVAL_ORDERED_ROWS)
                        .fetch_all(&mut *tx)
                        .await?;
                    for mut q in copy_arrival_ordered::<Postgres>(rows) {
                        q.build().execute(&mut *tx).await?;
                    }
                    sqlx::query(ARRIVAL_ORDERED_DROP).execute(&mut *tx).await?;
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
        let arrival_ordered = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('reports') WHERE name = 'id')",
        )
        .fetch_one(&mut *tx)
        .await?;
        if arrival_ordered {
            for stmt in ARRIVAL_ORDERED_RENAME {
                sqlx::query(stmt).execute(&mut *tx).await?;
            }
        }
        for stmt in SQLITE_SCHEMA {
            sqlx::query(stmt).execute(&mut *tx).await?;
        }
        if migrate {
            for stmt in LEGACY_MIGRATION {
                sqlx::query(stmt).execute(&mut *tx).await?;
            }
        }
        if arrival_ordered {
            let rows = sqlx::query_as(ARRIVAL_ORDERED_ROWS)
                .fetch_all(&mut *tx)
                .await?;
            for mut q in copy_arrival_ordered::<Sqlite>(rows) {
                q.build().execute(&mut *tx).await?;
            }
            sqlx::query(ARRIVAL_ORDERED_DROP).execute(&mut *tx).await?;
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

    /// Stores reports (each with its day of receipt) in one transaction, each unless its key
    /// is stored already (or earlier in `items`), and says what became of each.
    pub async fn insert_batch(
        &self,
        items: &[(&Accepted, NaiveDate)],
    ) -> Result<Vec<Outcome>, StoreError> {
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
    ) -> Result<Vec<Outcome>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let firsts = first_of_each_key(items);
        let keys: Vec<String> = firsts.keys().map(|k| k.to_string()).collect();
        let stored: HashMap<String, String> = match self {
            Db::Sqlite(pool) => {
                let conn = match held {
                    Some(c) => c,
                    None => held.insert(pool.acquire().await?),
                };
                // Two round trips to the connection's worker thread for the whole transaction
                // (BEGIN and the look-up of the keys; the inserts and COMMIT): under CPU
                // contention every hop costs a wakeup. The single writer and `BEGIN IMMEDIATE`
                // keep the keys looked up unchanged until the commit.
                let result = async {
                    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                        "BEGIN IMMEDIATE; SELECT key, body FROM reports WHERE key IN (",
                    );
                    let mut list = q.separated(", ");
                    for k in &keys {
                        list.push_bind(k.clone());
                    }
                    q.push(")");
                    let stored: HashMap<String, String> = q
                        .build_query_as::<(String, String)>()
                        .fetch_all(&mut **conn)
                        .await?
                        .into_iter()
                        .collect();
                    let fresh = fresh_items(items, &firsts, &stored);
                    sqlite_batch_query(&fresh)
                        .build()
                        .execute(&mut **conn)
                        .await?;
                    Ok::<_, sqlx::Error>(stored)
                }
                .await;
                match result {
                    Ok(stored) => stored,
                    Err(e) => {
                        // The transaction may still be open after a failed statement.
                        let _ = sqlx::query("ROLLBACK").execute(&mut **conn).await;
                        *held = None;
                        return Err(e.into());
                    }
                }
            }
            Db::Postgres(pool) => {
                // A concurrent transaction that stores one of these keys first makes an insert
                // here fail on the primary key; the writer then retries report by report, and
                // the look-up finds it.
                let mut tx = pool.begin().await?;
                let stored: HashMap<String, String> =
                    sqlx::query_as("SELECT key, body FROM reports WHERE key = ANY($1)")
                        .bind(&keys)
                        .fetch_all(&mut *tx)
                        .await?
                        .into_iter()
                        .collect();
                let fresh = fresh_items(items, &firsts, &stored);
                if !fresh.is_empty() {
                    reports_query::<Postgres>(&fresh)
                        .build()
                        .execute(&mut *tx)
                        .await?;
                    for mut q in group_queries::<Postgres>(&fresh) {
                        q.build().execute(&mut *tx).await?;
                    }
                }
                tx.commit().await?;
                stored
            }
        };
        Ok(outcomes(items, &firsts, &stored))
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

    /// Writes [`Db::reports_of_day`] to `out`, one report a line, as the rows arrive from the
    /// database (not all in memory at once).
    pub async fn write_reports_of_day(
        &self,
        day: NaiveDate,
        out: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<(), StoreError> {
        use futures_util::TryStreamExt;
        use tokio::io::AsyncWriteExt;
        let day = day.to_string();
        let mut rows = match self {
            Db::Sqlite(p) => sqlx::query_scalar::<_, String>(
                "SELECT body FROM reports WHERE day = ? ORDER BY body",
            )
            .bind(day)
            .fetch(p),
            Db::Postgres(p) => sqlx::query_scalar::<_, String>(
                "SELECT body FROM reports WHERE day = $1 ORDER BY body COLLATE \"C\"",
            )
            .bind(day)
            .fetch(p),
        };
        while let Some(body) = rows.try_next().await? {
            out.write_all(body.as_bytes()).await?;
            out.write_all(b"\n").await?;
        }
        Ok(())
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
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("");
    if !items.is_empty() {
        push_reports(&mut q, items);
        for chunk in group_counts(items).chunks(GROUP_CHUNK) {
            q.push("; ");
            push_groups(&mut q, chunk);
        }
        q.push("; ");
    }
    q.push("COMMIT");
    q
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

/// The position of the first item of each key: only those may be stored.
fn first_of_each_key<'b>(items: &[(&'b Accepted, NaiveDate)]) -> BTreeMap<&'b str, usize> {
    let mut firsts = BTreeMap::new();
    for (i, (a, _)) in items.iter().enumerate() {
        firsts.entry(a.key.as_str()).or_insert(i);
    }
    firsts
}

/// The items to store: the first of each key not stored yet.
fn fresh_items<'b>(
    items: &[(&'b Accepted, NaiveDate)],
    firsts: &BTreeMap<&str, usize>,
    stored: &HashMap<String, String>,
) -> Vec<(&'b Accepted, NaiveDate)> {
    firsts
        .iter()
        .filter(|(k, _)| !stored.contains_key(**k))
        .map(|(_, i)| items[*i])
        .collect()
}

/// Each item's outcome once the fresh items are stored: the first of a new key is stored;
/// every other item is a duplicate when its body equals the one stored under its key, else a
/// conflict.
fn outcomes(
    items: &[(&Accepted, NaiveDate)],
    firsts: &BTreeMap<&str, usize>,
    stored: &HashMap<String, String>,
) -> Vec<Outcome> {
    items
        .iter()
        .enumerate()
        .map(|(i, (a, _))| {
            let first = firsts[a.key.as_str()];
            let kept = stored
                .get(&a.key)
                .map_or(items[first].0.canonical.as_str(), String::as_str);
            if !stored.contains_key(&a.key) && i == first {
                Outcome::Stored
            } else if a.canonical == kept {
                Outcome::Duplicate
            } else {
                Outcome::Conflict
            }
        })
        .collect()
}

/// The rows of a table written before reports had keys.
const ARRIVAL_ORDERED_ROWS: &str = "SELECT day, body FROM reports_arrival_ordered";
const ARRIVAL_ORDERED_DROP: &str = "DROP TABLE reports_arrival_ordered";

/// Inserts of `(day, body)` rows with their keys, the first of each key kept (the bodies were
/// validated when stored; one that no longer parses keeps a key of its own).
fn copy_arrival_ordered<'a, DB>(rows: Vec<(String, String)>) -> Vec<QueryBuilder<'a, DB>>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let keyed: Vec<(String, String, String)> = rows
        .into_iter()
        .enumerate()
        .map(|(i, (day, body))| {
            let key = crate::report::parse(body.as_bytes())
                .ok()
                .and_then(|r| {
                    let week = crate::validate::parse_day(&r.week)?;
                    Some(crate::validate::report_key(r.config.index, week, r.x))
                })
                .unwrap_or_else(|| format!("unparsed/{i}"));
            (key, day, body)
        })
        .collect();
    keyed
        .chunks(GROUP_CHUNK)
        .map(|chunk| {
            let mut q: QueryBuilder<DB> =
                QueryBuilder::new("INSERT INTO reports (key, day, body) ");
            q.push_values(chunk, |mut b, (key, day, body)| {
                b.push_bind(key.clone())
                    .push_bind(day.clone())
                    .push_bind(body.clone());
            });
            q.push(" ON CONFLICT (key) DO NOTHING");
            q
        })
        .collect()
}

/// Groups a statement: 8 binds a group, well below bind-parameter limits.
const GROUP_CHUNK: usize = 1024;

fn push_reports<'a, DB>(q: &mut QueryBuilder<'a, DB>, items: &[(&Accepted, NaiveDate)])
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push("INSERT INTO reports (key, day, body) ");
    q.push_values(items, |mut b, (a, day)| {
        b.push_bind(a.key.clone())
            .push_bind(day.to_string())
            .push_bind(a.canonical.clone());
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

    /// Reports handed to the writers and not committed yet (those of running batches aside).
    pub fn queued(&self) -> usize {
        self.tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |tx| tx.max_capacity() - tx.capacity())
    }

    /// Stores one accepted report received on `day` unless its key is stored already; returns
    /// only after it is committed (or found stored).
    pub async fn insert(&self, report: Accepted, day: NaiveDate) -> Result<Outcome, StoreError> {
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
            Ok(Ok(outcome)) => Ok(outcome),
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
            Ok(outcomes) => {
                for (p, o) in batch.drain(..).zip(outcomes) {
                    let _ = p.done.send(Ok(o));
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
                        .map(|o| o[0])
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
            key: format!("0/2026-11-16/{n}"),
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
        // A second batch of new reports in the same groups adds to them.
        let more: Vec<Accepted> = (0..2)
            .map(|n| Accepted {
                key: format!("again/{n}"),
                ..report(n, 5)
            })
            .collect();
        let more_items: Vec<(&Accepted, NaiveDate)> = more.iter().map(|a| (a, day)).collect();
        db.insert_batch(&more_items).await.unwrap();
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
        let last: Vec<Accepted> = (0..10)
            .map(|n| Accepted {
                key: format!("last/{n}"),
                ..report(n, 5)
            })
            .collect();
        let last_items: Vec<(&Accepted, NaiveDate)> = last.iter().map(|a| (a, day)).collect();
        for _ in 0..8 {
            // More failures than pool connections: none may keep a transaction open.
            assert!(db.insert_batch(&last_items).await.is_err());
        }
        assert_eq!(db.count_reports().await.unwrap(), 302);
        sqlx::query("ALTER TABLE moved RENAME TO week_groups")
            .execute(pool)
            .await
            .unwrap();
        db.insert_batch(&last_items).await.unwrap();
        assert_eq!(db.count_reports().await.unwrap(), 312);
        db.close().await;
    }

    /// A report is stored once per key: a repeat (in the same batch or a later one) is a
    /// duplicate and changes no count; the same key with another body is a conflict.
    #[tokio::test]
    async fn repeats_are_stored_once_and_clashes_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(None, dir.path()).await.unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let a = report(1, 2);
        let clash = Accepted {
            canonical: "{\"other\":1}".into(),
            ..a.clone()
        };
        let b = report(2, 2);
        let got = db
            .insert_batch(&[(&a, day), (&a, day), (&clash, day), (&b, day)])
            .await
            .unwrap();
        use Outcome::*;
        assert_eq!(got, [Stored, Duplicate, Conflict, Stored]);
        let got = db
            .insert_batch(&[(&clash, day), (&b, day), (&a, day)])
            .await
            .unwrap();
        assert_eq!(got, [Conflict, Duplicate, Duplicate]);
        assert_eq!(db.count_reports().await.unwrap(), 2);
        let groups = db
            .week_groups(NaiveDate::from_ymd_opt(2026, 11, 16).unwrap())
            .await
            .unwrap();
        assert_eq!(groups.iter().map(|g| g.count).sum::<u64>(), 4);
        db.close().await;
    }

    /// A database whose reports carry an arrival-ordered row id gets keyed rows instead, the
    /// repeats kept once, and no trace of the row ids.
    #[tokio::test]
    async fn arrival_ordered_rows_are_rekeyed() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join(SQLITE_FILE))
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(opts).await.unwrap();
        let body = |x: &str| {
            format!(
                r#"{{"format":1,"week":"2026-11-16","config":{{"origin":"o","index":0}},"x":{x},"programs":[{{"name":"p","version":"1.0.0","os":"linux","arch":"x86_64","counters":{{"c":"0"}}}}]}}"#
            )
        };
        for stmt in [
            "CREATE TABLE reports (id INTEGER PRIMARY KEY, day TEXT NOT NULL, body TEXT NOT NULL)",
            "CREATE INDEX reports_day ON reports (day)",
        ] {
            sqlx::query(stmt).execute(&pool).await.unwrap();
        }
        for x in ["0.25", "0.5", "0.25"] {
            sqlx::query("INSERT INTO reports (day, body) VALUES ('2026-11-20', ?)")
                .bind(body(x))
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
        let db = Db::connect(None, dir.path()).await.unwrap();
        assert_eq!(db.count_reports().await.unwrap(), 2);
        let Db::Sqlite(pool) = &db else {
            unreachable!()
        };
        let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM reports ORDER BY key")
            .fetch_all(pool)
            .await
            .unwrap();
        assert_eq!(keys, ["0/2026-11-16/0.25", "0/2026-11-16/0.5"]);
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master ORDER BY name")
                .fetch_all(pool)
                .await
                .unwrap();
        assert!(!tables.iter().any(|t| t.contains("arrival")), "{tables:?}");
        assert!(tables.iter().any(|t| t == "reports_day"), "{tables:?}");
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
