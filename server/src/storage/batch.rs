//! Storing a batch of reports in one transaction, each report once per key.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use sqlx::pool::PoolConnection;
use sqlx::{Postgres, QueryBuilder, Sqlite};

use super::{Db, Outcome, StoreError};
use crate::validate::{Accepted, ProgramRow};

/// Adds a batch's counts to existing groups (the grouping key is the primary key).
const GROUPS_UPSERT: &str = " ON CONFLICT (week, config_index, program, version, os, arch, labels) \
     DO UPDATE SET n = week_groups.n + excluded.n";

impl Db {
    /// Stores reports (each with its day of receipt) in one transaction, each unless its key
    /// is stored already (or earlier in `items`), and says what became of each; returns once
    /// the transaction is durable.
    pub async fn insert_batch(
        &self,
        items: &[(&Accepted, NaiveDate)],
    ) -> Result<Vec<Outcome>, StoreError> {
        let outcomes = self.insert_batch_on(&mut None, items).await?;
        self.sync_wal_async().await?;
        Ok(outcomes)
    }

    /// [`Db::insert_batch`] on the SQLite connection in `held`, acquired into it if empty and
    /// kept there for the next batch: a writer that keeps its connection keeps that
    /// connection's page cache warm (the pool hands out its connections in turn, and a
    /// connection whose cache is older than the last commit reads the changed pages back).
    /// `held` is emptied after a failure. PostgreSQL uses the pool.
    pub(super) async fn insert_batch_on(
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
                // One round trip to the connection's worker thread for the whole transaction
                // (under CPU contention every hop costs a wakeup). `BEGIN IMMEDIATE` and the
                // single writer keep what the look-up found unchanged until the commit.
                let candidates: Vec<(&Accepted, NaiveDate)> =
                    firsts.values().map(|i| items[*i]).collect();
                let result = sqlite_batch_query(&candidates)
                    .build_query_as::<(String, String)>()
                    .fetch_all(&mut **conn)
                    .await
                    .map(|rows| rows.into_iter().collect::<HashMap<String, String>>());
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
}

/// The whole SQLite batch as one multi-statement query, given the first report of each key:
/// `BEGIN IMMEDIATE`; the look-up of the keys stored already (the query's only rows); the
/// group counts of the reports not stored yet (counted by SQLite, before their rows exist);
/// the report rows (`DO NOTHING` for those stored already); `COMMIT`. For reports of one program
/// each the text depends on the batch size alone, so the connection's statement cache keeps it
/// prepared. SQLite binds the anonymous parameters statement by statement, and each statement
/// stays below the bind-parameter limit.
fn sqlite_batch_query<'a>(candidates: &[(&Accepted, NaiveDate)]) -> QueryBuilder<'a, Sqlite> {
    let mut q: QueryBuilder<Sqlite> =
        QueryBuilder::new("BEGIN IMMEDIATE; SELECT key, body FROM reports WHERE key IN (");
    let mut keys = q.separated(", ");
    for (a, _) in candidates {
        keys.push_bind(a.key.clone());
    }
    q.push("); ");
    let rows: Vec<(&Accepted, &ProgramRow)> = candidates
        .iter()
        .flat_map(|(a, _)| a.rows.iter().map(move |r| (*a, r)))
        .collect();
    for chunk in rows.chunks(GROUP_CHUNK) {
        q.push(
            "INSERT INTO week_groups (week, config_index, program, version, os, arch, labels, n) \
             SELECT column2, column3, column4, column5, column6, column7, column8, COUNT(*) FROM (",
        );
        q.push_values(chunk, |mut b, (a, r)| {
            b.push_bind(a.key.clone())
                .push_bind(a.week.to_string())
                .push_bind(a.config_index as i64)
                .push_bind(r.program.clone())
                .push_bind(r.version.clone())
                .push_bind(r.os.clone())
                .push_bind(r.arch.clone())
                .push_bind(r.labels.clone());
        });
        q.push(
            ") AS g WHERE NOT EXISTS (SELECT 1 FROM reports WHERE reports.key = g.column1) \
             GROUP BY column2, column3, column4, column5, column6, column7, column8",
        );
        q.push(GROUPS_UPSERT);
        q.push("; ");
    }
    push_reports(&mut q, candidates);
    q.push(" ON CONFLICT (key) DO NOTHING; COMMIT");
    q
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
