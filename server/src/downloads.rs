//! Raw-report downloads with bounded memory: a completed day's reports are written once into a
//! file of the download cache, in publication order, and every request streams that file.
//!
//! A completed UTC day receives no more reports, so its file never changes. Writing it streams
//! the rows from the database, and serving it reads a few kilobytes at a time as the client
//! takes them, so neither holds the day in memory, whatever its size and however many clients
//! download it at once (a client that reads nothing is dropped by the connection's write
//! timeout, see [`crate::conn`]).

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use tokio::io::AsyncWriteExt;

use crate::storage::{Db, StoreError};

/// The download cache: a directory of `DAY.ndjson` files.
pub struct DayFiles {
    dir: PathBuf,
    /// A temporary directory that `dir` is, removed with it.
    _temp: Option<tempfile::TempDir>,
    /// One file written at a time (the first requests of a day wait for it, then share it).
    writing: tokio::sync::Mutex<()>,
}

impl DayFiles {
    /// A cache in `dir` (created if missing), or in a temporary directory when `None`.
    pub fn new(dir: Option<&Path>) -> std::io::Result<DayFiles> {
        let (dir, temp) = match dir {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                (d.to_path_buf(), None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("clearcount-downloads")
                    .tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        Ok(DayFiles {
            dir,
            _temp: temp,
            writing: tokio::sync::Mutex::new(()),
        })
    }

    /// The file of the completed `day`, written from `db` first if it is not cached yet.
    pub async fn open(&self, db: &Db, day: NaiveDate) -> Result<tokio::fs::File, StoreError> {
        let path = self.dir.join(format!("{day}.ndjson"));
        if let Ok(f) = tokio::fs::File::open(&path).await {
            return Ok(f);
        }
        let _one = self.writing.lock().await;
        if let Ok(f) = tokio::fs::File::open(&path).await {
            return Ok(f);
        }
        let temp = tempfile::NamedTempFile::new_in(&self.dir)?;
        let (file, temp_path) = temp.into_parts();
        let mut out = tokio::io::BufWriter::new(tokio::fs::File::from_std(file));
        db.write_reports_of_day(day, &mut out).await?;
        out.flush().await?;
        out.get_ref().sync_all().await?;
        temp_path.persist(&path).map_err(|e| e.error)?;
        Ok(tokio::fs::File::open(&path).await?)
    }
}
