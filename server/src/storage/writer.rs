//! The report store: group-commit writers, the SQLite write-ahead-log syncer and checkpointer.
//!
//! With SQLite a commit does not wait for the disk (`synchronous=NORMAL`): the writer hands
//! the committed batch's answers to the syncer, which answers them after an `fdatasync` of the
//! log that began after their commit ([`Db::sync_wal`]). While the disk syncs one batch the
//! writer commits the next (instead of holding SQLite's write lock through every sync), and
//! it takes a new batch only once the syncer has taken the previous one: one commit a sync,
//! as large as what arrived meanwhile.

use std::sync::Arc;

use chrono::NaiveDate;
use sqlx::sqlite::SqlitePool;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use super::batch::SqliteWriter;
use super::{CHECKPOINT_DELAY, Db, MAX_BATCH, Outcome, StoreError};
use crate::validate::Accepted;

/// A caller's channel and what to tell it.
type Answer = (
    oneshot::Sender<Result<Outcome, String>>,
    Result<Outcome, String>,
);

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
    syncer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
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
        let (synced, syncer) = match &db {
            Db::Sqlite(_) => {
                let (to_sync, batches) = mpsc::channel(1);
                let wal = db.clone();
                let syncer = tokio::task::spawn_blocking(move || syncer(&wal, batches));
                (Some(to_sync), Some(syncer))
            }
            Db::Postgres(_) => (None, None),
        };
        let handles = (0..writers.max(1))
            .map(|_| {
                let w = writer(db.clone(), rx.clone(), committed.clone(), synced.clone());
                match &db {
                    Db::Sqlite(_) => on_own_thread(w),
                    Db::Postgres(_) => tokio::spawn(w),
                }
            })
            .collect();
        Store {
            db,
            tx: std::sync::Mutex::new(Some(tx)),
            writers: std::sync::Mutex::new(handles),
            checkpointer,
            syncer: std::sync::Mutex::new(syncer),
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
        // The writers are gone, and with them the syncer's inbox: it answers what is left.
        let syncer = self.syncer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(s) = syncer {
            let _ = s.await;
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

/// Runs `task` on a thread of its own, in a runtime of its own. The SQLite writer waits on its
/// connection's thread for each batch; on the server's runtime each of those wake-ups would
/// queue behind the connections' tasks (hundreds under load), and the writer holds SQLite's
/// write lock for the whole batch.
fn on_own_thread(
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(task),
            Err(e) => tracing::error!("starting a storage thread: {e}"),
        }
    })
}

/// Answers batches once a sync of the write-ahead log that began after their commit is done.
/// Runs on a blocking thread of its own until the writers are gone.
fn syncer(db: &Db, mut batches: mpsc::Receiver<Vec<Answer>>) {
    let mut ready: Vec<Vec<Answer>> = Vec::new();
    while let Some(first) = batches.blocking_recv() {
        ready.push(first);
        while let Ok(more) = batches.try_recv() {
            ready.push(more);
        }
        // Every batch in `ready` was committed before this sync starts.
        let synced = db
            .sync_wal()
            .map_err(|e| format!("syncing the write-ahead log: {e}"));
        if let Err(e) = &synced {
            tracing::error!("{e}");
        }
        for (done, answer) in ready.drain(..).flatten() {
            let answer = match &synced {
                Ok(()) => answer,
                Err(e) => answer.and(Err(e.clone())),
            };
            let _ = done.send(answer);
        }
    }
}

/// Takes every report waiting (at least one, at most [`MAX_BATCH`]) into `batch`; `false`
/// when the store is shut down and nothing is left.
async fn take_batch(rx: &Mutex<mpsc::Receiver<Pending>>, batch: &mut Vec<Pending>) -> bool {
    let mut rx = rx.lock().await;
    match rx.recv().await {
        Some(p) => batch.push(p),
        None => return false,
    }
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(p) => batch.push(p),
            Err(_) => break,
        }
    }
    true
}

async fn writer(
    db: Db,
    rx: Arc<Mutex<mpsc::Receiver<Pending>>>,
    committed: Arc<Notify>,
    to_sync: Option<mpsc::Sender<Vec<Answer>>>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let mut held = None;
    loop {
        // SQLite: wait until the syncer has taken the previous batch (its sync has begun).
        // Batches committed during one sync are all answered after the next, so committing
        // more often than once a sync would gain no time and cost CPU and log pages a report:
        // the reports that arrive meanwhile make one larger batch instead.
        let slot = match &to_sync {
            Some(s) => s.reserve().await.ok(),
            None => None,
        };
        if !take_batch(&rx, &mut batch).await {
            return;
        }
        let answers = store_batch(&db, &mut held, &mut batch).await;
        committed.notify_one();
        match (slot, &to_sync) {
            (Some(slot), _) => slot.send(answers),
            (None, Some(_)) => {
                for (done, _) in answers {
                    let _ = done.send(Err("the storage syncer has stopped".into()));
                }
            }
            (None, None) => {
                for (done, answer) in answers {
                    let _ = done.send(answer);
                }
            }
        }
    }
}

/// Stores `batch` (emptying it) and says what to tell each caller.
async fn store_batch(
    db: &Db,
    held: &mut Option<SqliteWriter>,
    batch: &mut Vec<Pending>,
) -> Vec<Answer> {
    let items: Vec<(&Accepted, NaiveDate)> = batch.iter().map(|p| (&p.report, p.day)).collect();
    let result = db.insert_batch_on(held, &items).await;
    drop(items);
    match result {
        Ok(outcomes) => batch
            .drain(..)
            .zip(outcomes)
            .map(|(p, o)| (p.done, Ok(o)))
            .collect(),
        Err(e) => {
            // One bad row must not fail its neighbours: retry each alone.
            tracing::error!(
                "batch of {} reports failed ({e}); retrying one by one",
                batch.len()
            );
            let mut answers = Vec::with_capacity(batch.len());
            for p in batch.drain(..) {
                let r = db
                    .insert_batch_on(held, &[(&p.report, p.day)])
                    .await
                    .map(|o| o[0])
                    .map_err(|e| e.to_string());
                if let Err(e) = &r {
                    tracing::error!("storing a report failed: {e}");
                }
                answers.push((p.done, r));
            }
            answers
        }
    }
}
