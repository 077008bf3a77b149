//! Connecting, and creating or converting the schema (idempotent, safe when several instances
//! start at once).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Postgres, QueryBuilder, Sqlite};

use super::batch::GROUP_CHUNK;
use super::{Db, SQLITE_BUSY_TIMEOUT, SQLITE_CACHE_KIB, SQLITE_FILE, StoreError};

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
                let rows = create_schema::<Postgres>(&mut tx, PG_SCHEMA, migrate, arrival_ordered);
                for mut q in copy_arrival_ordered::<Postgres>(rows.await?) {
                    q.build().execute(&mut *tx).await?;
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
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"))
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
        let rows = create_schema::<Sqlite>(&mut tx, SQLITE_SCHEMA, migrate, arrival_ordered);
        for mut q in copy_arrival_ordered::<Sqlite>(rows.await?) {
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        let db = Db::Sqlite(pool);
        db.sync_wal_async().await?;
        Ok(db)
    }

    /// Which kind of database this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}

/// The schema steps both databases share, in the schema transaction `conn`: an arrival-ordered
/// `reports` table is renamed aside, `schema` creates what is missing and a legacy
/// `report_programs` table is converted (`migrate`). Returns the arrival-ordered rows, if
/// any, for [`copy_arrival_ordered`] (whose binds sqlx cannot run on a generic connection).
async fn create_schema<DB>(
    conn: &mut DB::Connection,
    schema: &[&str],
    migrate: bool,
    arrival_ordered: bool,
) -> Result<Option<Vec<(String, String)>>, StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'r> (String, String): sqlx::FromRow<'r, DB::Row>,
{
    if arrival_ordered {
        for stmt in ARRIVAL_ORDERED_RENAME {
            sqlx::query(stmt).execute(&mut *conn).await?;
        }
    }
    for stmt in schema {
        sqlx::query(stmt).execute(&mut *conn).await?;
    }
    if migrate {
        for stmt in LEGACY_MIGRATION {
            sqlx::query(stmt).execute(&mut *conn).await?;
        }
    }
    if !arrival_ordered {
        return Ok(None);
    }
    let rows = sqlx::query_as(ARRIVAL_ORDERED_ROWS)
        .fetch_all(&mut *conn)
        .await?;
    Ok(Some(rows))
}

/// The rows of a table written before reports had keys.
const ARRIVAL_ORDERED_ROWS: &str = "SELECT day, body FROM reports_arrival_ordered";
const ARRIVAL_ORDERED_DROP: &str = "DROP TABLE reports_arrival_ordered";

/// Inserts of `(day, body)` rows with their keys, the first of each key kept (the bodies were
/// validated when stored; one that no longer parses keeps a key of its own), then the drop of
/// their table; nothing without rows.
fn copy_arrival_ordered<'a, DB>(rows: Option<Vec<(String, String)>>) -> Vec<QueryBuilder<'a, DB>>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let Some(rows) = rows else {
        return Vec::new();
    };
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
        .chain(std::iter::once(QueryBuilder::new(ARRIVAL_ORDERED_DROP)))
        .collect()
}
