//! The log store: the log is exactly the static C2SP tlog-tiles files in a directory
//! (`checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`), nothing secret, so any
//! static file host can serve or mirror it. Two dot-files support appends: `.lock` (the
//! append lock) and `.staging/` (temporary files, harmless leftovers after a crash).
//!
//! Appends are crash-safe: new tiles and bundles are written to temporary files, synced and
//! renamed into place (a tile file is never torn), then the new signed checkpoint is written
//! the same way and renamed over the old one. A crash at any moment leaves the old or the new
//! checkpoint and a log that verifies. Published tiles never change: a full tile is written
//! once, a growing partial tile gets a new `.p/W` file.
//!
//! ```
//! use clearcount_config_log::note::Signer;
//! use clearcount_config_log::store::LogStore;
//! use chrono::NaiveDate;
//!
//! let dir = tempfile::tempdir()?;
//! let signer = Signer::generate("telemetry.example.org/config")?;
//! let mut log = LogStore::init(dir.path(), &signer)?;
//! assert_eq!(log.size(), 0);
//! let config = br#"
//! origin = "telemetry.example.org/config"
//! sample_rate = 0.25
//! max_epsilon = 4.0
//! os = ["linux"]
//! arch = ["x86_64"]
//! "#;
//! let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
//! let index = log.append_config(config, &signer, today)?;
//! assert_eq!(index, 0);
//! let reopened = LogStore::open(dir.path())?;
//! assert_eq!(reopened.size(), 1);
//! assert_eq!(reopened.entry(0)?, config.to_vec());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::flock::FileLock;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::config::{self, Config, ConfigError, LintProblem};
use crate::merkle::{self, Hash, MemoryTree, ProofError};
use crate::note::{Signer, Verifier};
use crate::tiles::{self, Tile, TileError, TileKind};

/// Name of the checkpoint file.
pub const CHECKPOINT: &str = "checkpoint";
const LOCK: &str = ".lock";
const STAGING: &str = ".staging";
/// Largest checkpoint note read from disk.
const MAX_CHECKPOINT: u64 = 64 * 1024;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `init` on a directory that already holds something.
    #[error("{0} is not empty; a new log needs an empty directory")]
    NotEmpty(PathBuf),
    /// The directory holds no log.
    #[error("{0} holds no log (no checkpoint file)")]
    NoLog(PathBuf),
    /// The checkpoint is malformed or its signature fails.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// A tile is malformed.
    #[error("{0}")]
    Tile(#[from] TileError),
    /// The stored tiles do not match the checkpoint.
    #[error("log is corrupt: {0}")]
    Corrupt(String),
    /// The config does not parse.
    #[error("config does not parse: {0}")]
    Config(#[from] ConfigError),
    /// The config fails lint.
    #[error("config fails lint: {}", format_lint(.0))]
    Lint(Vec<LintProblem>),
    /// The config names another log.
    #[error("config origin {config:?} is not this log's origin {log:?}")]
    WrongOrigin {
        /// The log's origin.
        log: String,
        /// The config's origin.
        config: String,
    },
    /// The signer key is not this log's key.
    #[error("signer key {key:?} is not the key of log {log:?}")]
    WrongKey {
        /// The log's origin.
        log: String,
        /// The key's name and id.
        key: String,
    },
    /// No such entry.
    #[error("entry {index} is not in the log of {size} entries")]
    NoEntry {
        /// Requested index.
        index: u64,
        /// Log size.
        size: u64,
    },
    /// An entry longer than an entry bundle allows.
    #[error("entry of {0} bytes is larger than 65535 bytes")]
    EntryTooLarge(usize),
    /// A proof could not be built.
    #[error("proof: {0}")]
    Proof(#[from] ProofError),
}

fn format_lint(problems: &[LintProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.place, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

/// A config log in a directory: a snapshot of its checkpoint, plus appends.
#[derive(Debug, Clone)]
pub struct LogStore {
    dir: PathBuf,
    checkpoint: Checkpoint,
    note: Vec<u8>,
}

impl LogStore {
    /// Creates an empty log in `dir` (created if missing; must be empty) whose origin is the
    /// signer key's name, with a signed checkpoint of size 0.
    pub fn init(dir: &Path, signer: &Signer) -> Result<LogStore, StoreError> {
        fs::create_dir_all(dir).map_err(io("create", dir))?;
        let mut listing = fs::read_dir(dir).map_err(io("list", dir))?;
        if listing.next().is_some() {
            return Err(StoreError::NotEmpty(dir.to_path_buf()));
        }
        let store = LogStore {
            dir: dir.to_path_buf(),
            checkpoint: Checkpoint::new(signer.name(), 0, merkle::empty_root()),
            note: Vec::new(),
        };
        let _lock = store.lock()?;
        let note = store.checkpoint.sign(signer)?;
        store.write_atomic(CHECKPOINT, note.as_bytes())?;
        LogStore::open(dir)
    }

    /// Opens the log in `dir` for reading. Needs no key; the checkpoint's signature is not
    /// checked (use [`LogStore::open_verified`] or the [`reader`](crate::reader) for that).
    pub fn open(dir: &Path) -> Result<LogStore, StoreError> {
        let path = dir.join(CHECKPOINT);
        let note = match read_limited(&path, MAX_CHECKPOINT) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(StoreError::NoLog(dir.to_path_buf()));
            }
            Err(e) => return Err(io("read", &path)(e)),
        };
        let checkpoint = Checkpoint::parse_note_unverified(&note)?;
        Ok(LogStore {
            dir: dir.to_path_buf(),
            checkpoint,
            note,
        })
    }

    /// Opens the log in `dir` and checks its checkpoint's signature by `verifier`.
    pub fn open_verified(dir: &Path, verifier: &Verifier) -> Result<LogStore, StoreError> {
        let store = LogStore::open(dir)?;
        Checkpoint::open(&store.note, verifier)?;
        Ok(store)
    }

    /// Re-reads the checkpoint (after appends by others).
    pub fn refresh(&mut self) -> Result<(), StoreError> {
        *self = LogStore::open(&self.dir)?;
        Ok(())
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log's origin (its key's name).
    pub fn origin(&self) -> &str {
        &self.checkpoint.origin
    }

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.checkpoint.size
    }

    /// The tree root of the current checkpoint.
    pub fn root(&self) -> Hash {
        self.checkpoint.root
    }

    /// The current checkpoint (parsed).
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The current signed checkpoint note, exactly as stored.
    pub fn checkpoint_note(&self) -> Result<Vec<u8>, StoreError> {
        Ok(self.note.clone())
    }

    /// The exact bytes of entry `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, StoreError> {
        if index >= self.size() {
            return Err(StoreError::NoEntry {
                index,
                size: self.size(),
            });
        }
        let tile = Tile::entries_for_index(index, self.size());
        let entries = self.read_bundle(&tile)?;
        let at = (index % tiles::WIDTH) as usize;
        entries
            .into_iter()
            .nth(at)
            .ok_or_else(|| StoreError::Corrupt(format!("{} lacks entry {index}", tile.path())))
    }

    /// Reads one public file of the log by its relative path (`checkpoint` or a tile path):
    /// `None` if it does not exist. Any other path is refused (`None`), so this is safe to
    /// serve with untrusted paths.
    pub fn read_public_file(&self, rel: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if rel != CHECKPOINT && Tile::parse_path(rel).is_err() {
            return Ok(None);
        }
        let path = self.dir.join(rel);
        match fs::read(&path) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    /// All leaf hashes (from the level-0 tiles) as a tree, checked against the checkpoint
    /// root.
    pub fn tree(&self) -> Result<MemoryTree, StoreError> {
        let size = self.size();
        let mut tree = MemoryTree::new();
        for tile in tiles::hash_tiles_for_size(size) {
            if tile.kind != TileKind::Hash(0) {
                continue;
            }
            let data = self.read_tile_file(&tile)?;
            for h in tiles::parse_hash_tile(&tile, &data)? {
                tree.push(h);
            }
        }
        let root = tree.root(size)?;
        if root != self.root() {
            return Err(StoreError::Corrupt(format!(
                "the level-0 tiles do not hash to the checkpoint root (size {size})"
            )));
        }
        Ok(tree)
    }

    /// The inclusion proof of entry `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        Ok(self.tree()?.inclusion_proof(index, size)?)
    }

    /// The consistency proof from the tree of `old` entries to the tree of `new` entries.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        Ok(self.tree()?.consistency_proof(old, new)?)
    }

    /// Parses and lints `bytes` as a config (with `today` deciding expiry), checks that its
    /// origin is this log's, appends it, signs a new checkpoint with `signer` (the log's key)
    /// and returns the new entry's index. Serialized with other appends by a lock file.
    pub fn append_config(
        &mut self,
        bytes: &[u8],
        signer: &Signer,
        today: NaiveDate,
    ) -> Result<u64, StoreError> {
        let config = Config::parse(bytes)?;
        let problems = config::lint(&config, today);
        if !problems.is_empty() {
            return Err(StoreError::Lint(problems));
        }
        if config.origin != self.origin() {
            return Err(StoreError::WrongOrigin {
                log: self.origin().to_string(),
                config: config.origin,
            });
        }
        self.append_entry(bytes, signer)
    }

    /// Appends raw bytes (no config checks). Private: the log only takes linted configs.
    fn append_entry(&mut self, entry: &[u8], signer: &Signer) -> Result<u64, StoreError> {
        if entry.len() > tiles::MAX_ENTRY {
            return Err(StoreError::EntryTooLarge(entry.len()));
        }
        if signer.name() != self.origin() {
            return Err(StoreError::WrongKey {
                log: self.origin().to_string(),
                key: signer.verifier().to_string(),
            });
        }
        let _lock = self.lock()?;
        // Another process may have appended since we opened: work from the checkpoint on disk,
        // which must be signed by this key.
        let current = LogStore::open(&self.dir)?;
        Checkpoint::open(&current.note, &signer.verifier())?;
        let mut tree = current.tree()?;
        let old = current.size();
        let index = old;
        tree.push(merkle::leaf_hash(entry));
        let new = old + 1;

        // 1. The entry bundle holding the new entry.
        let bundle = Tile::entries_for_index(index, new);
        let mut entries = if bundle.width > 1 {
            current.read_bundle(&Tile::entries(bundle.index, bundle.width - 1))?
        } else {
            Vec::new()
        };
        entries.push(entry.to_vec());
        let data =
            tiles::encode_entry_bundle(&entries).ok_or(StoreError::EntryTooLarge(entry.len()))?;
        self.write_atomic(&bundle.path(), &data)?;

        // 2. Every hash tile the new size has and the old has not.
        for tile in tiles::new_hash_tiles(old, new) {
            let TileKind::Hash(level) = tile.kind else {
                continue;
            };
            let nodes = tree.level(level * tiles::HEIGHT);
            let start = (tile.index * tiles::WIDTH) as usize;
            let end = start + usize::from(tile.width);
            let hashes = nodes.get(start..end).ok_or_else(|| {
                StoreError::Corrupt(format!("tree lacks the hashes of {}", tile.path()))
            })?;
            self.write_atomic(&tile.path(), &tiles::encode_hash_tile(hashes))?;
        }

        // 3. The new checkpoint, atomically replacing the old one.
        let root = tree.root(new)?;
        let checkpoint = Checkpoint::new(self.origin(), new, root);
        let note = checkpoint.sign(signer)?;
        self.write_atomic(CHECKPOINT, note.as_bytes())?;
        self.checkpoint = checkpoint;
        self.note = note.into_bytes();
        Ok(index)
    }

    fn read_tile_file(&self, tile: &Tile) -> Result<Vec<u8>, StoreError> {
        let path = self.dir.join(tile.path());
        // A bundle holds at most 256 entries of 65,535 bytes plus lengths.
        read_limited(&path, 256 * 65_537).map_err(io("read", &path))
    }

    fn read_bundle(&self, tile: &Tile) -> Result<Vec<Vec<u8>>, StoreError> {
        let data = self.read_tile_file(tile)?;
        Ok(tiles::parse_entry_bundle(tile, &data)?)
    }

    /// Takes the exclusive append lock (released when the file is dropped).
    fn lock(&self) -> Result<File, StoreError> {
        let path = self.dir.join(LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("open lock file", &path))?;
        file.lock_file().map_err(io("lock", &path))?;
        Ok(file)
    }

    /// Writes `rel` atomically: a synced temporary file in `.staging/`, renamed into place,
    /// then the directory synced.
    fn write_atomic(&self, rel: &str, data: &[u8]) -> Result<(), StoreError> {
        let staging = self.dir.join(STAGING);
        fs::create_dir_all(&staging).map_err(io("create", &staging))?;
        let tmp = staging.join(rel.replace('/', "_"));
        {
            let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
            f.write_all(data).map_err(io("write", &tmp))?;
            f.sync_all().map_err(io("sync", &tmp))?;
        }
        let dest = self.dir.join(rel);
        let parent = dest.parent().unwrap_or(&self.dir).to_path_buf();
        fs::create_dir_all(&parent).map_err(io("create", &parent))?;
        fs::rename(&tmp, &dest).map_err(io("rename into place", &dest))?;
        sync_dir(&parent)?;
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Reads a file of at most `limit` bytes.
fn read_limited(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = File::open(path)?;
    let mut data = Vec::new();
    file.take(limit + 1).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_appends_build_a_consistent_tree() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::generate("t.example/log").unwrap();
        let mut log = LogStore::init(dir.path(), &signer).unwrap();
        let mut expected = Vec::new();
        for i in 0..260u32 {
            let e = format!("entry {i}").into_bytes();
            assert_eq!(log.append_entry(&e, &signer).unwrap(), u64::from(i));
            expected.push(merkle::leaf_hash(&e));
        }
        let log = LogStore::open_verified(dir.path(), &signer.verifier()).unwrap();
        assert_eq!(log.size(), 260);
        assert_eq!(log.root(), merkle::root_of_leaves(&expected));
        assert_eq!(log.entry(257).unwrap(), b"entry 257");
        assert!(log.entry(260).is_err());
        // Every tile of the final size exists; the full tiles are there, and old partials too.
        for t in tiles::hash_tiles_for_size(260) {
            assert!(log.read_public_file(&t.path()).unwrap().is_some(), "{t:?}");
        }
        assert!(log.read_public_file("tile/0/000.p/7").unwrap().is_some());
        assert!(log.read_public_file("../etc/passwd").unwrap().is_none());
        assert!(log.read_public_file(".lock").unwrap().is_none());
    }

    #[test]
    fn init_refuses_non_empty_and_wrong_key_cannot_append() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::generate("a.example/log").unwrap();
        let mut log = LogStore::init(dir.path(), &signer).unwrap();
        assert!(matches!(
            LogStore::init(dir.path(), &signer),
            Err(StoreError::NotEmpty(_))
        ));
        let other = Signer::generate("b.example/log").unwrap();
        assert!(matches!(
            log.append_entry(b"x", &other),
            Err(StoreError::WrongKey { .. })
        ));
        // Same name, other key: the checkpoint on disk does not verify with it.
        let impostor = Signer::generate("a.example/log").unwrap();
        assert!(log.append_entry(b"x", &impostor).is_err());
        assert_eq!(LogStore::open(dir.path()).unwrap().size(), 0);
    }
}
