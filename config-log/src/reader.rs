//! The verifying reader: accept a log's checkpoint and an entry only with proof.
//!
//! Given a pinned verifier key, an optional remembered checkpoint and a [`TileSource`] (a
//! directory, memory, or an HTTP server with the `http` feature), [`LogReader::verify`]
//! checks the latest checkpoint's signature, its consistency with the remembered one and the
//! inclusion of entry N, fetching only the tiles these proofs need (and caching them). Every
//! failure names what failed: see [`VerifyError`].
//!
//! ```
//! use clearcount_config_log::note::Signer;
//! use clearcount_config_log::reader::{DirSource, LogReader};
//! use clearcount_config_log::store::LogStore;
//! use chrono::NaiveDate;
//!
//! let dir = tempfile::tempdir()?;
//! let signer = Signer::generate("telemetry.example.org/config")?;
//! let mut log = LogStore::init(dir.path(), &signer)?;
//! let config = b"origin = \"telemetry.example.org/config\"\nsample_rate = 0.5\nmax_epsilon = 1.0\nos = [\"linux\"]\narch = [\"x86_64\"]\n";
//! log.append_config(config, &signer, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap())?;
//!
//! let reader = LogReader::new(signer.verifier(), DirSource::new(dir.path()));
//! let verified = reader.verify(None, 0)?;
//! assert_eq!(verified.entry, config.to_vec());
//! // Next time, pass the checkpoint accepted now: a rollback or fork is refused.
//! let again = reader.verify(Some(&verified.checkpoint), 0)?;
//! assert_eq!(again.checkpoint, verified.checkpoint);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::merkle::{self, Hash, NodeSource, ProofError};
use crate::note::Verifier;
use crate::tiles::{self, Tile, TileKind, TileTree};

/// Largest checkpoint note fetched.
pub const MAX_CHECKPOINT_BYTES: u64 = 64 * 1024;
/// Largest tile or entry bundle fetched.
pub const MAX_TILE_BYTES: u64 = 256 * 65_537;
/// Tiles kept in a reader's cache before it is emptied.
const CACHE_LIMIT: usize = 4096;

/// Why a source could not deliver a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The file does not exist (HTTP 404, no such file).
    #[error("not found")]
    NotFound,
    /// Larger than allowed.
    #[error("larger than {0} bytes")]
    TooLarge(u64),
    /// A path that is neither `checkpoint` nor a tile path.
    #[error("not a log path: {0:?}")]
    BadPath(String),
    /// Reading or fetching failed.
    #[error("{0}")]
    Failed(String),
}

/// Where a reader gets a log's files: `checkpoint` and `tile/...` paths relative to the log.
pub trait TileSource {
    /// Fetches the log file at `path` (`checkpoint` or a tile path), at most `limit` bytes.
    fn fetch(&self, path: &str, limit: u64) -> Result<Vec<u8>, SourceError>;

    /// Fetches entry `index` on its own, when the source has a per-entry URL (a clearcount
    /// server's `/config/{index}`); `Ok(None)` means "read it from its entry bundle".
    fn fetch_entry(&self, index: u64) -> Result<Option<Vec<u8>>, SourceError> {
        let _ = index;
        Ok(None)
    }
}

impl<T: TileSource + ?Sized> TileSource for &T {
    fn fetch(&self, path: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        (**self).fetch(path, limit)
    }
    fn fetch_entry(&self, index: u64) -> Result<Option<Vec<u8>>, SourceError> {
        (**self).fetch_entry(index)
    }
}

fn check_path(path: &str) -> Result<(), SourceError> {
    if path == "checkpoint" || Tile::parse_path(path).is_ok() {
        Ok(())
    } else {
        Err(SourceError::BadPath(path.to_string()))
    }
}

/// A log in a local directory (a [`LogStore`](crate::store::LogStore) or a mirror).
#[derive(Debug, Clone)]
pub struct DirSource {
    dir: PathBuf,
}

impl DirSource {
    /// The log in `dir`.
    pub fn new(dir: &Path) -> Self {
        DirSource {
            dir: dir.to_path_buf(),
        }
    }
}

impl TileSource for DirSource {
    fn fetch(&self, path: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        use std::io::Read;
        check_path(path)?;
        let full = self.dir.join(path);
        let file = std::fs::File::open(&full).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SourceError::NotFound,
            _ => SourceError::Failed(format!("{}: {e}", full.display())),
        })?;
        let mut data = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut data)
            .map_err(|e| SourceError::Failed(format!("{}: {e}", full.display())))?;
        if data.len() as u64 > limit {
            return Err(SourceError::TooLarge(limit));
        }
        Ok(data)
    }
}

/// A log held in memory, path to bytes (for tests, benchmarks and caches).
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    /// The files by relative path.
    pub files: HashMap<String, Vec<u8>>,
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a file.
    pub fn insert(&mut self, path: impl Into<String>, data: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), data.into());
    }
}

impl TileSource for MemorySource {
    fn fetch(&self, path: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        let data = self.files.get(path).ok_or(SourceError::NotFound)?;
        if data.len() as u64 > limit {
            return Err(SourceError::TooLarge(limit));
        }
        Ok(data.clone())
    }
}

#[cfg(feature = "http")]
pub use http::HttpSource;

#[cfg(feature = "http")]
mod http {
    use std::io::Read;
    use std::time::Duration;

    use super::{SourceError, TileSource, check_path};

    /// A log served over HTTP(S): `{base}/checkpoint`, `{base}/tile/...`, and optionally
    /// entries at `{entries}/{index}` (a clearcount server serves the log under `/log` and
    /// configs at `/config/{index}`). Requests time out (10 s to connect, 30 s in all).
    #[derive(Debug, Clone)]
    pub struct HttpSource {
        agent: ureq::Agent,
        base: String,
        entries: Option<String>,
    }

    impl HttpSource {
        /// A log served under `base` (the URL under which `checkpoint` is found); entries
        /// are read from entry bundles.
        pub fn new(base: &str) -> Result<Self, SourceError> {
            let agent = ureq::Agent::config_builder()
                .timeout_connect(Some(Duration::from_secs(10)))
                .timeout_global(Some(Duration::from_secs(30)))
                .user_agent(concat!("clearcount-log/", env!("CARGO_PKG_VERSION")))
                .http_status_as_error(false)
                .build()
                .new_agent();
            Ok(HttpSource {
                agent,
                base: base.trim_end_matches('/').to_string(),
                entries: None,
            })
        }

        /// The log of a clearcount server at `server`: the log under `{server}/log`, entries
        /// at `{server}/config/{index}`.
        pub fn for_server(server: &str) -> Result<Self, SourceError> {
            let server = server.trim_end_matches('/');
            let mut s = HttpSource::new(&format!("{server}/log"))?;
            s.entries = Some(format!("{server}/config"));
            Ok(s)
        }

        fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
            let mut resp = self
                .agent
                .get(url)
                .call()
                .map_err(|e| SourceError::Failed(format!("GET {url}: {e}")))?;
            let status = resp.status();
            if status == ureq::http::StatusCode::NOT_FOUND {
                return Err(SourceError::NotFound);
            }
            if !status.is_success() {
                return Err(SourceError::Failed(format!("GET {url}: HTTP {status}")));
            }
            let mut data = Vec::new();
            resp.body_mut()
                .as_reader()
                .take(limit + 1)
                .read_to_end(&mut data)
                .map_err(|e| SourceError::Failed(format!("GET {url}: {e}")))?;
            if data.len() as u64 > limit {
                return Err(SourceError::TooLarge(limit));
            }
            Ok(data)
        }
    }

    impl TileSource for HttpSource {
        fn fetch(&self, path: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
            check_path(path)?;
            self.get(&format!("{}/{path}", self.base), limit)
        }

        fn fetch_entry(&self, index: u64) -> Result<Option<Vec<u8>>, SourceError> {
            match &self.entries {
                None => Ok(None),
                Some(base) => self
                    .get(&format!("{base}/{index}"), u64::from(u16::MAX))
                    .map(Some),
            }
        }
    }
}

/// What failed while verifying a log. Each variant names one kind of failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A file could not be fetched.
    #[error("fetch {what}: {source}")]
    Fetch {
        /// What was fetched.
        what: String,
        /// Why it failed.
        source: SourceError,
    },
    /// The checkpoint is not a well-formed signed checkpoint.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    /// The checkpoint's signature by the pinned key does not verify (or is missing).
    #[error("checkpoint signature: {0}")]
    Signature(String),
    /// The checkpoint is of another log (origin differs from the key's name).
    #[error("checkpoint is of log {found:?}, not {expected:?}")]
    Origin {
        /// The key's name.
        expected: String,
        /// The checkpoint's origin.
        found: String,
    },
    /// The log is smaller than the remembered checkpoint: a rollback.
    #[error("rollback: the log has {latest} entries, but a checkpoint of {remembered} was seen")]
    Rollback {
        /// Size of the remembered checkpoint.
        remembered: u64,
        /// Size of the latest checkpoint.
        latest: u64,
    },
    /// The log is not an extension of the remembered checkpoint: a fork.
    #[error(
        "fork: the log of {latest} entries is not consistent with the checkpoint of {remembered} entries seen before ({detail})"
    )]
    Fork {
        /// Size of the remembered checkpoint.
        remembered: u64,
        /// Size of the latest checkpoint.
        latest: u64,
        /// What did not match.
        detail: String,
    },
    /// The entry is not included in the tree of the checkpoint (it was modified).
    #[error(
        "inclusion: entry {index} is not included in the signed tree of {size} entries (modified entry?)"
    )]
    Inclusion {
        /// The entry index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// No such entry in the log.
    #[error("entry {index} is not in the log of {size} entries")]
    NoSuchEntry {
        /// The entry index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A tile or entry bundle is malformed, or does not match the signed tree.
    #[error("malformed tile {path}: {detail}")]
    MalformedTile {
        /// The tile path (or `hash tiles` when not one tile).
        path: String,
        /// What is wrong.
        detail: String,
    },
}

fn checkpoint_error(e: CheckpointError) -> VerifyError {
    match e {
        CheckpointError::Malformed(m) => VerifyError::MalformedCheckpoint(m.to_string()),
        CheckpointError::Note(n) => match n {
            crate::note::NoteError::Malformed(m) => VerifyError::MalformedCheckpoint(m.into()),
            other => VerifyError::Signature(other.to_string()),
        },
        CheckpointError::Origin { expected, found } => VerifyError::Origin { expected, found },
    }
}

/// A verified checkpoint and entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The checkpoint whose signature, consistency and tree were verified: remember it.
    pub checkpoint: Checkpoint,
    /// The signed checkpoint note as fetched.
    pub note: Vec<u8>,
    /// The entry's index.
    pub index: u64,
    /// The entry's exact bytes, proven included in the checkpoint's tree.
    pub entry: Vec<u8>,
}

/// What a full audit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// The verified checkpoint.
    pub checkpoint: Checkpoint,
    /// Hash tiles recomputed and compared.
    pub tiles_checked: usize,
    /// Entries read and hashed.
    pub entries_checked: u64,
}

/// The verifying reader over a tile source, with a pinned key and a tile cache.
#[derive(Debug)]
pub struct LogReader<S> {
    verifier: Verifier,
    source: S,
    cache: Mutex<HashMap<Tile, Arc<TileTree>>>,
}

impl<S: TileSource> LogReader<S> {
    /// A reader of the log signed by `verifier`, reading from `source`.
    pub fn new(verifier: Verifier, source: S) -> Self {
        LogReader {
            verifier,
            source,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The pinned key.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The tile source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Fetches the latest checkpoint and verifies its signature and origin, and (given a
    /// remembered one) its consistency with it.
    pub fn latest(
        &self,
        remembered: Option<&Checkpoint>,
    ) -> Result<(Checkpoint, Vec<u8>), VerifyError> {
        let note = self
            .source
            .fetch("checkpoint", MAX_CHECKPOINT_BYTES)
            .map_err(|source| VerifyError::Fetch {
                what: "checkpoint".into(),
                source,
            })?;
        let checkpoint = self.open_checkpoint(&note)?;
        if let Some(old) = remembered {
            self.check_consistency(old, &checkpoint)?;
        }
        Ok((checkpoint, note))
    }

    /// Opens a signed checkpoint note with the pinned key.
    pub fn open_checkpoint(&self, note: &[u8]) -> Result<Checkpoint, VerifyError> {
        Checkpoint::open(note, &self.verifier).map_err(checkpoint_error)
    }

    /// Verifies that `new` (already verified) extends `old` (remembered), with a consistency
    /// proof built from the source's tiles.
    pub fn check_consistency(&self, old: &Checkpoint, new: &Checkpoint) -> Result<(), VerifyError> {
        if old.origin != self.verifier.name() {
            return Err(VerifyError::Origin {
                expected: self.verifier.name().to_string(),
                found: old.origin.clone(),
            });
        }
        if old.size > new.size {
            return Err(VerifyError::Rollback {
                remembered: old.size,
                latest: new.size,
            });
        }
        let fork = |detail: &str| VerifyError::Fork {
            remembered: old.size,
            latest: new.size,
            detail: detail.to_string(),
        };
        if old.size == new.size {
            return if old.root == new.root {
                Ok(())
            } else {
                Err(fork("same size, different root"))
            };
        }
        let nodes = self.nodes(new.size);
        let proof = nodes.run(|n| merkle::consistency_proof(n, old.size, new.size))?;
        if merkle::extends(old.size, new.size, &proof, &old.root, &new.root).is_ok() {
            return Ok(());
        }
        self.authenticate_tiles(new)?;
        Err(fork("consistency proof fails"))
    }

    /// Fetches entry `index` and verifies its inclusion in `checkpoint` (already verified).
    pub fn entry(&self, checkpoint: &Checkpoint, index: u64) -> Result<Vec<u8>, VerifyError> {
        if index >= checkpoint.size {
            return Err(VerifyError::NoSuchEntry {
                index,
                size: checkpoint.size,
            });
        }
        let entry = match self
            .source
            .fetch_entry(index)
            .map_err(|source| VerifyError::Fetch {
                what: format!("entry {index}"),
                source,
            })? {
            Some(e) => e,
            None => self.entry_from_bundle(index, checkpoint.size)?,
        };
        let leaf = merkle::leaf_hash(&entry);
        let nodes = self.nodes(checkpoint.size);
        let proof = nodes.run(|n| merkle::inclusion_proof(n, index, checkpoint.size))?;
        if merkle::verify_inclusion(index, checkpoint.size, &leaf, &proof, &checkpoint.root).is_ok()
        {
            return Ok(entry);
        }
        self.authenticate_tiles(checkpoint)?;
        Err(VerifyError::Inclusion {
            index,
            size: checkpoint.size,
        })
    }

    /// All three checks: the latest checkpoint's signature, its consistency with
    /// `remembered`, and the inclusion of entry `index`.
    pub fn verify(
        &self,
        remembered: Option<&Checkpoint>,
        index: u64,
    ) -> Result<Verified, VerifyError> {
        let (checkpoint, note) = self.latest(remembered)?;
        let entry = self.entry(&checkpoint, index)?;
        Ok(Verified {
            checkpoint,
            note,
            index,
            entry,
        })
    }

    /// A full audit: verifies the checkpoint signature, reads every entry, recomputes every
    /// hash tile and the root and compares them with the source's, and (given an older
    /// checkpoint, already verified) checks that the log extends it. Stops at the first
    /// problem.
    pub fn audit(&self, since: Option<&Checkpoint>) -> Result<AuditReport, VerifyError> {
        let (checkpoint, _) = self.latest(None)?;
        let size = checkpoint.size;
        if let Some(old) = since {
            if old.origin != self.verifier.name() {
                return Err(VerifyError::Origin {
                    expected: self.verifier.name().to_string(),
                    found: old.origin.clone(),
                });
            }
            if old.size > size {
                return Err(VerifyError::Rollback {
                    remembered: old.size,
                    latest: size,
                });
            }
        }
        let mut tree = merkle::MemoryTree::new();
        let mut bundle_index = 0;
        while bundle_index * tiles::WIDTH < size {
            let tile = Tile::entries_for_index(bundle_index * tiles::WIDTH, size);
            for e in self.bundle(&tile)? {
                tree.push(merkle::leaf_hash(&e));
            }
            bundle_index += 1;
        }
        let mut tiles_checked = 0;
        for tile in tiles::hash_tiles_for_size(size) {
            let TileKind::Hash(level) = tile.kind else {
                continue;
            };
            let path = tile.path();
            let data =
                self.source
                    .fetch(&path, MAX_TILE_BYTES)
                    .map_err(|source| VerifyError::Fetch {
                        what: path.clone(),
                        source,
                    })?;
            let start = (tile.index * tiles::WIDTH) as usize;
            let want = &tree.level(level * tiles::HEIGHT)[start..start + usize::from(tile.width)];
            if data != tiles::encode_hash_tile(want) {
                let detail = if level == 0 {
                    let got = tiles::parse_hash_tile(&tile, &data).ok();
                    let first = got.as_ref().and_then(|g| {
                        g.iter()
                            .zip(want)
                            .position(|(a, b)| a != b)
                            .map(|p| start + p)
                    });
                    match first {
                        Some(i) => format!(
                            "hash of entry {i} differs from the entry in its bundle (entry or tile modified)"
                        ),
                        None => "does not have the hashes the entries give".to_string(),
                    }
                } else {
                    "does not have the hashes the entries give".to_string()
                };
                return Err(VerifyError::MalformedTile { path, detail });
            }
            tiles_checked += 1;
        }
        let root = tree.root(size).map_err(|e| VerifyError::MalformedTile {
            path: "tile/entries".into(),
            detail: e.to_string(),
        })?;
        if root != checkpoint.root {
            return Err(VerifyError::MalformedCheckpoint(format!(
                "the {size} entries hash to {}, not the signed root",
                hex::encode(root)
            )));
        }
        if let Some(old) = since {
            let old_root = tree.root(old.size).map_err(|e| VerifyError::Fork {
                remembered: old.size,
                latest: size,
                detail: e.to_string(),
            })?;
            if old_root != old.root {
                return Err(VerifyError::Fork {
                    remembered: old.size,
                    latest: size,
                    detail: format!(
                        "the first {} entries hash to {}, not the older checkpoint's root {}",
                        old.size,
                        hex::encode(old_root),
                        hex::encode(old.root)
                    ),
                });
            }
        }
        Ok(AuditReport {
            checkpoint,
            tiles_checked,
            entries_checked: size,
        })
    }

    fn bundle(&self, tile: &Tile) -> Result<Vec<Vec<u8>>, VerifyError> {
        let path = tile.path();
        let data = match self.source.fetch(&path, MAX_TILE_BYTES) {
            Err(SourceError::NotFound) if !tile.is_full() => {
                // The partial bundle may be gone once the full one exists: use its prefix.
                let full = Tile::entries(tile.index, tiles::WIDTH as u16);
                let data = self.fetch_tile_data(&full)?;
                let mut all = tiles::parse_entry_bundle(&full, &data).map_err(tile_error)?;
                all.truncate(usize::from(tile.width));
                return Ok(all);
            }
            other => other.map_err(|source| VerifyError::Fetch {
                what: path.clone(),
                source,
            })?,
        };
        tiles::parse_entry_bundle(tile, &data).map_err(tile_error)
    }

    fn entry_from_bundle(&self, index: u64, size: u64) -> Result<Vec<u8>, VerifyError> {
        let tile = Tile::entries_for_index(index, size);
        let at = (index % tiles::WIDTH) as usize;
        // Only the wanted entry is copied out of the bundle (the bundle is still checked
        // whole): parsing all 256 entries into vectors was a quarter of a cached verify.
        let (tile, data) = match self.source.fetch(&tile.path(), MAX_TILE_BYTES) {
            Err(SourceError::NotFound) if !tile.is_full() => {
                // The partial bundle may be gone once the full one exists: use its prefix.
                let full = Tile::entries(tile.index, tiles::WIDTH as u16);
                let data = self.fetch_tile_data(&full)?;
                (full, data)
            }
            other => {
                let data = other.map_err(|source| VerifyError::Fetch {
                    what: tile.path(),
                    source,
                })?;
                (tile, data)
            }
        };
        tiles::entry_in_bundle(&tile, &data, at)
            .map(<[u8]>::to_vec)
            .map_err(tile_error)
    }

    fn fetch_tile_data(&self, tile: &Tile) -> Result<Vec<u8>, VerifyError> {
        let path = tile.path();
        self.source
            .fetch(&path, MAX_TILE_BYTES)
            .map_err(|source| VerifyError::Fetch { what: path, source })
    }

    /// A hash tile with its internal levels, from the cache or the source.
    fn hash_tile(&self, tile: &Tile) -> Result<Arc<TileTree>, VerifyError> {
        if let Some(t) = self.cache.lock().ok().and_then(|c| c.get(tile).cloned()) {
            return Ok(t);
        }
        let hashes = match self.source.fetch(&tile.path(), MAX_TILE_BYTES) {
            Err(SourceError::NotFound) if !tile.is_full() => {
                let full = Tile {
                    width: tiles::WIDTH as u16,
                    ..*tile
                };
                let data = self.fetch_tile_data(&full)?;
                let mut hashes = tiles::parse_hash_tile(&full, &data).map_err(tile_error)?;
                hashes.truncate(usize::from(tile.width));
                hashes
            }
            other => {
                let data = other.map_err(|source| VerifyError::Fetch {
                    what: tile.path(),
                    source,
                })?;
                tiles::parse_hash_tile(tile, &data).map_err(tile_error)?
            }
        };
        let tree = Arc::new(TileTree::new(hashes));
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHE_LIMIT {
                c.clear();
            }
            c.insert(*tile, Arc::clone(&tree));
        }
        Ok(tree)
    }

    fn nodes(&self, size: u64) -> TileNodes<'_, S> {
        TileNodes {
            reader: self,
            size,
            error: Mutex::new(None),
            last: std::cell::RefCell::new(None),
        }
    }

    /// Checks that the hash tiles of the checkpoint's tree hash to its signed root; names
    /// them as malformed if not.
    fn authenticate_tiles(&self, checkpoint: &Checkpoint) -> Result<(), VerifyError> {
        let nodes = self.nodes(checkpoint.size);
        let root = nodes.run(|n| merkle::tree_root(n, checkpoint.size))?;
        if root == checkpoint.root {
            Ok(())
        } else {
            // Drop what we cached: it is not trustworthy.
            if let Ok(mut c) = self.cache.lock() {
                c.clear();
            }
            Err(VerifyError::MalformedTile {
                path: "hash tiles".into(),
                detail: format!(
                    "the hash tiles of the tree of {} entries do not hash to the signed root (a tile was modified)",
                    checkpoint.size
                ),
            })
        }
    }
}

fn tile_error(e: tiles::TileError) -> VerifyError {
    match e {
        tiles::TileError::Content { path, reason } => VerifyError::MalformedTile {
            path,
            detail: reason,
        },
        tiles::TileError::Path { path, reason } => VerifyError::MalformedTile {
            path,
            detail: reason.to_string(),
        },
    }
}

/// The complete-subtree hashes of the tree of `size`, read from hash tiles.
struct TileNodes<'a, S> {
    reader: &'a LogReader<S>,
    size: u64,
    error: Mutex<Option<VerifyError>>,
    /// The tile of the previous node: a proof reads runs of nodes from one tile, and this
    /// spares a cache lock and lookup for each.
    last: std::cell::RefCell<Option<(Tile, Arc<TileTree>)>>,
}

impl<S: TileSource> TileNodes<'_, S> {
    /// Runs a proof computation, turning a missing node into the fetch or tile error behind it.
    fn run<T>(&self, f: impl FnOnce(&Self) -> Result<T, ProofError>) -> Result<T, VerifyError> {
        f(self).map_err(|e| {
            self.error
                .lock()
                .ok()
                .and_then(|mut g| g.take())
                .unwrap_or_else(|| VerifyError::MalformedTile {
                    path: "hash tiles".into(),
                    detail: e.to_string(),
                })
        })
    }
}

impl<S: TileSource> NodeSource for TileNodes<'_, S> {
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        let (tile, r, pos) = tiles::tile_for_node(level, index, self.size);
        let missing = |reason: String| ProofError::MissingNode {
            level,
            index,
            reason,
        };
        if tile.width == 0 {
            return Err(missing("beyond the tree".into()));
        }
        let cached = match &*self.last.borrow() {
            Some((t, tree)) if *t == tile => Some(Arc::clone(tree)),
            _ => None,
        };
        let found = match cached {
            Some(tree) => Ok(tree),
            None => self.reader.hash_tile(&tile).inspect(|tree| {
                *self.last.borrow_mut() = Some((tile, Arc::clone(tree)));
            }),
        };
        match found {
            Ok(t) => t
                .node(r, pos)
                .ok_or_else(|| missing(format!("{} is too short", tile.path()))),
            Err(e) => {
                let reason = e.to_string();
                if let Ok(mut g) = self.error.lock() {
                    g.get_or_insert(e);
                }
                Err(missing(reason))
            }
        }
    }
}
