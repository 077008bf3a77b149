//! The report store: group-commit writers, the SQLite checkpointer.

use std::sync::Arc;

use chrono::NaiveDate;
use sqlx::sqlite::SqlitePool;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use super::{CHECKPOINT_DELAY, Db, MAX_BATCH, Outcome, StoreError};
use crate::validate::Accepted;

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
