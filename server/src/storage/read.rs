//! The queries of publication and aggregation.

use std::str::FromStr;

use chrono::NaiveDate;
use sqlx::Row;

use super::{Db, GroupRow, StoreError};

impl Db {
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
