//! Tests of the store.

use chrono::NaiveDate;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use crate::validate::{Accepted, ProgramRow};

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
    let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master ORDER BY name")
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

/// The log synced before SQLite uploads are answered is the database's own: a wrong path would
/// be "not found", which counts as nothing left to sync, and no upload would be durable.
#[tokio::test]
async fn sqlite_sync_is_of_the_databases_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(None, dir.path()).await.unwrap();
    let store = Store::new(db.clone(), 1);
    let day = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    store.insert(report(1, 2), day).await.unwrap();
    let wal = db.wal_path().unwrap();
    assert_eq!(wal, dir.path().join(format!("{SQLITE_FILE}-wal")));
    assert!(wal.exists());
    db.sync_wal().unwrap();
    store.shutdown().await;
    assert_eq!(db.count_reports().await.unwrap(), 1);
    db.close().await;
}
