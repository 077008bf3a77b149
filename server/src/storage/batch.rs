//! Storing a batch of reports in one transaction, each report once per key.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::NaiveDate;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, QueryBuilder};

use super::{Db, Outcome, SQLITE_BUSY_TIMEOUT, SQLITE_CACHE_KIB, StoreError};
use crate::validate::{Accepted, ProgramRow};

/// Adds a batch's counts to existing groups (the grouping key is the primary key).
const GROUPS_UPSERT: &str = " ON CONFLICT (week, config_index, program, version, os, arch, labels) \
     DO UPDATE SET n = week_groups.n + excluded.n";

impl Db {
    /// Stores reports (each with its day of receipt) in one transaction, each unless its key
    /// is stored already (or earlier in `items`), and says what became of each; returns once
    /// the transaction is durable. With SQLite it opens a connection of its own and stores on
    /// the calling thread (for tools and tests; the server's writer keeps its connection).
    pub async fn insert_batch(
        &self,
        items: &[(&Accepted, NaiveDate)],
    ) -> Result<Vec<Outcome>, StoreError> {
        let outcomes = self.insert_batch_on(&mut None, items).await?;
        self.sync_wal_async().await?;
        Ok(outcomes)
    }

    /// [`Db::insert_batch`] without waiting for the disk, on the SQLite writer in `held`,
    /// opened into it if empty and kept there for the next batch (its statements stay
    /// prepared and its page cache warm); `held` is emptied after a failure. PostgreSQL uses
    /// the pool.
    pub(super) async fn insert_batch_on(
        &self,
        held: &mut Option<SqliteWriter>,
        items: &[(&Accepted, NaiveDate)],
    ) -> Result<Vec<Outcome>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Db::Sqlite(pool) => {
                let writer = match held {
                    Some(w) => w,
                    None => held.insert(SqliteWriter::open(pool.connect_options().get_filename())?),
                };
                let result = writer.store(items);
                if result.is_err() {
                    *held = None;
                }
                Ok(result?)
            }
            Db::Postgres(pool) => insert_batch_postgres(pool, items).await,
        }
    }
}

/// The SQLite writer's own connection (rusqlite, not the pool's): it stores a batch with
/// statements prepared once, on the writer's thread, with no hop to a connection worker
/// thread (under load every wake-up of another thread costs).
pub(super) struct SqliteWriter {
    conn: rusqlite::Connection,
}

impl SqliteWriter {
    /// Opens the database file the schema was created in, with the pool's settings.
    pub(super) fn open(path: &Path) -> Result<SqliteWriter, rusqlite::Error> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -SQLITE_CACHE_KIB)?;
        conn.set_prepared_statement_cache_capacity(8);
        Ok(SqliteWriter { conn })
    }

    /// Stores the first report of each key not stored yet and its groups, in one
    /// `BEGIN IMMEDIATE` transaction: the single writer and the write lock keep what the
    /// look-ups find unchanged until the commit. Returns after the commit, before any sync.
    fn store(&mut self, items: &[(&Accepted, NaiveDate)]) -> Result<Vec<Outcome>, rusqlite::Error> {
        let firsts = first_of_each_key(items);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut stored = HashMap::new();
        let mut fresh = Vec::with_capacity(firsts.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO reports (key, day, body) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key) DO NOTHING",
            )?;
            let mut lookup = tx.prepare_cached("SELECT body FROM reports WHERE key = ?1")?;
            for (key, i) in &firsts {
                let (a, day) = items[*i];
                if insert.execute((key, day.to_string(), &a.canonical))? == 1 {
                    fresh.push(items[*i]);
                } else {
                    let body: String = lookup.query_row([key], |row| row.get(0))?;
                    stored.insert(key.to_string(), body);
                }
            }
            let mut upsert = tx.prepare_cached(&format!(
                "INSERT INTO week_groups (week, config_index, program, version, os, arch, \
                 labels, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8){GROUPS_UPSERT}"
            ))?;
            for ((week, config_index, r), n) in group_counts(&fresh) {
                upsert.execute((
                    week.to_string(),
                    config_index as i64,
                    &r.program,
                    &r.version,
                    &r.os,
                    &r.arch,
                    &r.labels,
                    n,
                ))?;
            }
        }
        tx.commit()?;
        Ok(outcomes(items, &firsts, &stored))
    }
}

/// A PostgreSQL batch in one transaction. A concurrent transaction that stores one of these
/// keys first makes an insert here fail on the primary key; the writer then retries report by
/// report, and the look-up finds it.
async fn insert_batch_postgres(
    pool: &PgPool,
    items: &[(&Accepted, NaiveDate)],
) -> Result<Vec<Outcome>, StoreError> {
    let firsts = first_of_each_key(items);
    let keys: Vec<String> = firsts.keys().map(|k| k.to_string()).collect();
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
        reports_query(&fresh).build().execute(&mut *tx).await?;
        for mut q in group_queries(&fresh) {
            q.build().execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(outcomes(items, &firsts, &stored))
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

/// Groups a statement: 8 binds a group, well below bind-parameter limits.
pub(super) const GROUP_CHUNK: usize = 1024;

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

/// The report rows as one PostgreSQL insert.
fn reports_query<'a>(items: &[(&Accepted, NaiveDate)]) -> QueryBuilder<'a, Postgres> {
    let mut q = QueryBuilder::new("INSERT INTO reports (key, day, body) ");
    q.push_values(items, |mut b, (a, day)| {
        b.push_bind(a.key.clone())
            .push_bind(day.to_string())
            .push_bind(a.canonical.clone());
    });
    q
}

/// PostgreSQL group upserts, one query per [`GROUP_CHUNK`] groups.
fn group_queries<'a>(items: &[(&Accepted, NaiveDate)]) -> Vec<QueryBuilder<'a, Postgres>> {
    group_counts(items)
        .chunks(GROUP_CHUNK)
        .map(|chunk| {
            let mut q = QueryBuilder::new(
                "INSERT INTO week_groups (week, config_index, program, version, os, arch, \
                 labels, n) ",
            );
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
            q
        })
        .collect()
}
