//! Raw-report downloads with bounded memory: a completed day's reports are written once into a
//! file of the download cache, in publication order, and every request streams that file.
//!
//! A completed UTC day receives no more reports, so its file never changes. Writing it streams
//! the rows from the database, and serving it reads [`CHUNK`] bytes at a time as the client
//! takes them, so neither holds the day in memory, whatever its size and however many clients
//! download it at once (a client that reads nothing is dropped by the connection's write
//! timeout, see [`crate::conn`]). Each chunk opens the file, reads and closes it again: a
//! download holds no file descriptor while it waits for its client, so slow downloads cannot
//! use up the files that [`crate::conn::RESERVED_FILES`] keeps for the server.

use std::path::{Path, PathBuf};

use axum::body::Bytes;
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
    pub async fn path(&self, db: &Db, day: NaiveDate) -> Result<PathBuf, StoreError> {
        let path = self.dir.join(format!("{day}.ndjson"));
        if tokio::fs::try_exists(&path).await? {
            return Ok(path);
        }
        let _one = self.writing.lock().await;
        if tokio::fs::try_exists(&path).await? {
            return Ok(path);
        }
        let temp = tempfile::NamedTempFile::new_in(&self.dir)?;
        let (file, temp_path) = temp.into_parts();
        let mut out = tokio::io::BufWriter::new(tokio::fs::File::from_std(file));
        db.write_reports_of_day(day, &mut out).await?;
        out.flush().await?;
        out.get_ref().sync_all().await?;
        temp_path.persist(&path).map_err(|e| e.error)?;
        Ok(path)
    }
}

/// Bytes read from a day file at a time.
pub const CHUNK: usize = 16 * 1024;

/// The contents of the (never changing) file at `path` as a stream of [`CHUNK`]-byte pieces,
/// each read by opening the file anew.
pub fn chunks(
    path: PathBuf,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures_util::stream::try_unfold(0u64, move |offset| {
        let path = path.clone();
        async move {
            // One trip to the blocking pool a chunk: open, read at the offset, close.
            let buf = tokio::task::spawn_blocking(move || read_chunk(&path, offset))
                .await
                .map_err(std::io::Error::other)??;
            if buf.is_empty() {
                return Ok(None);
            }
            let next = offset + buf.len() as u64;
            Ok(Some((Bytes::from(buf), next)))
        }
    })
}

/// Up to [`CHUNK`] bytes of the file at `path` from `offset` (fewer only at its end).
fn read_chunk(path: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)?;
    let mut buf = vec![0; CHUNK];
    let mut filled = 0;
    while filled < CHUNK {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}
