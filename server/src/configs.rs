//! The configs of the transparency log, read from the log directory, parsed once and cached.
//!
//! The log directory is the tlog-tiles layout written by `clearcount-log` (a `checkpoint` file
//! and `tile/...`), read through [`LogStore`]. Its size is re-read from the checkpoint when a report names an index past
//! the size known so far (at most every [`REFRESH`]), so a config appended while the server runs
//! is picked up without a restart.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use clearcount_config_log::config::{Config, CounterKind, VersionMatcher};
use clearcount_config_log::store::LogStore;
use clearcount_privacy::estimate::Mechanism;
use clearcount_privacy::oue::UnaryEncoding;

use crate::validate::Slot;

/// How often, at most, the checkpoint is re-read to discover new entries.
pub const REFRESH: Duration = Duration::from_millis(200);

/// Why the log directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log store refused (missing, unreadable or corrupt files).
    #[error("config log in {0}: {1}")]
    Store(PathBuf, String),
}

/// One counter of a config, prepared for validation and aggregation.
#[derive(Debug, Clone)]
pub struct CounterDef {
    /// Counter name.
    pub name: String,
    /// Count or category.
    pub kind: CounterKind,
    /// The labels a report may carry, in config order (index = label index).
    pub labels: Vec<String>,
    /// Randomized-response epsilon, if any.
    pub epsilon: Option<f64>,
    /// How reports randomize the value: none, k-ary randomized response (a label) or
    /// optimized unary encoding (one bit a label).
    pub mechanism: Mechanism,
    /// Last day the counter may be reported.
    pub expires: NaiveDate,
    label_index: HashMap<String, u16>,
}

impl CounterDef {
    /// The index of `label` in [`CounterDef::labels`].
    pub fn label_index(&self, label: &str) -> Option<u16> {
        self.label_index.get(label).copied()
    }

    /// What a report's value of this counter stands for: a label of the config (none and k-ary
    /// randomized response) or one bit a label (OUE); `None` when the value is not allowed.
    pub fn slot(&self, value: &str) -> Option<Slot> {
        match self.mechanism {
            Mechanism::Oue => UnaryEncoding::parse(value, self.labels.len()).map(Slot::Bits),
            Mechanism::Krr | Mechanism::None => self.label_index(value).map(Slot::Label),
        }
    }

    /// Whether `slot` fits this counter (a label index in range, or one bit a label).
    pub fn fits(&self, slot: &Slot) -> bool {
        match (slot, self.mechanism) {
            (Slot::Absent, _) => true,
            (Slot::Bits(bits), Mechanism::Oue) => bits.len() == self.labels.len(),
            (Slot::Label(i), Mechanism::Krr | Mechanism::None) => {
                usize::from(*i) < self.labels.len()
            }
            _ => false,
        }
    }
}

/// One program of a config, prepared for validation.
#[derive(Debug, Clone)]
pub struct ProgramDef {
    /// Program name.
    pub name: String,
    /// The accepted versions (`None` when they do not parse: only `devel`).
    pub versions: Option<VersionMatcher>,
    /// Counters in config order.
    pub counters: Vec<CounterDef>,
    counter_index: HashMap<String, usize>,
}

impl ProgramDef {
    /// The counter called `name` and its position.
    pub fn counter(&self, name: &str) -> Option<(usize, &CounterDef)> {
        self.counter_index
            .get(name)
            .map(|&i| (i, &self.counters[i]))
    }
}

/// A config entry of the log: its exact bytes, the parsed config and lookup tables.
#[derive(Debug)]
pub struct LoadedConfig {
    /// Log index of the entry.
    pub index: u64,
    /// The exact entry bytes (the TOML file).
    pub bytes: Vec<u8>,
    /// The parsed config, or why the entry is not usable.
    pub parsed: Result<Config, String>,
    programs: HashMap<String, ProgramDef>,
    os: HashSet<String>,
    arch: HashSet<String>,
}

impl LoadedConfig {
    /// Prepares an entry (public for tests and fuzzing; the server builds these from the log).
    pub fn new(index: u64, bytes: Vec<u8>) -> LoadedConfig {
        let parsed = Config::parse(&bytes).map_err(|e| e.to_string());
        let mut programs = HashMap::new();
        let (mut os, mut arch) = (HashSet::new(), HashSet::new());
        if let Ok(cfg) = &parsed {
            os = cfg.os.iter().cloned().collect();
            arch = cfg.arch.iter().cloned().collect();
            for p in &cfg.programs {
                let counters: Vec<CounterDef> = p
                    .counters
                    .iter()
                    .map(|c| {
                        let labels = c.report_labels();
                        let label_index = labels
                            .iter()
                            .enumerate()
                            .map(|(i, l)| (l.clone(), i as u16))
                            .collect();
                        CounterDef {
                            name: c.name.clone(),
                            kind: c.kind,
                            labels,
                            epsilon: c.epsilon,
                            mechanism: c.privacy_mechanism(),
                            expires: c.expires,
                            label_index,
                        }
                    })
                    .collect();
                let counter_index = counters
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name.clone(), i))
                    .collect();
                programs.insert(
                    p.name.clone(),
                    ProgramDef {
                        name: p.name.clone(),
                        versions: p.versions.matcher().ok(),
                        counters,
                        counter_index,
                    },
                );
            }
        }
        LoadedConfig {
            index,
            bytes,
            parsed,
            programs,
            os,
            arch,
        }
    }

    /// The program called `name`.
    pub fn program(&self, name: &str) -> Option<&ProgramDef> {
        self.programs.get(name)
    }

    /// Whether `os` is accepted.
    pub fn allows_os(&self, os: &str) -> bool {
        self.os.contains(os)
    }

    /// Whether `arch` is accepted.
    pub fn allows_arch(&self, arch: &str) -> bool {
        self.arch.contains(arch)
    }
}

/// Where configs come from: the log directory, or anything else that can list entries.
pub trait EntrySource: Send + Sync {
    /// The log origin and the number of entries, from the newest checkpoint.
    fn checkpoint(&self) -> Result<(String, u64), LogError>;
    /// The bytes of entry `index` (`index` below the size last returned).
    fn entry(&self, index: u64) -> Result<Vec<u8>, LogError>;
}

/// Reads the log directory through `clearcount_config_log::store::LogStore`.
#[derive(Debug, Clone)]
pub struct LogDir {
    dir: PathBuf,
}

impl LogDir {
    /// A reader of the log in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> LogDir {
        LogDir { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn open(&self) -> Result<LogStore, LogError> {
        LogStore::open(&self.dir).map_err(|e| LogError::Store(self.dir.clone(), e.to_string()))
    }
}

impl EntrySource for LogDir {
    fn checkpoint(&self) -> Result<(String, u64), LogError> {
        let log = self.open()?;
        Ok((log.origin().to_string(), log.size()))
    }

    fn entry(&self, index: u64) -> Result<Vec<u8>, LogError> {
        self.open()?
            .entry(index)
            .map_err(|e| LogError::Store(self.dir.clone(), e.to_string()))
    }
}

struct Known {
    origin: String,
    size: u64,
    checked: Instant,
}

/// The configs of a log, parsed once and cached; new entries are discovered while running.
pub struct ConfigLog {
    source: Box<dyn EntrySource>,
    known: Mutex<Known>,
    cache: RwLock<HashMap<u64, Arc<LoadedConfig>>>,
}

impl ConfigLog {
    /// Opens the log in `dir` (its checkpoint must be readable).
    pub fn open(dir: impl Into<PathBuf>) -> Result<ConfigLog, LogError> {
        ConfigLog::with_source(Box::new(LogDir::new(dir)))
    }

    /// A config log over any entry source.
    pub fn with_source(source: Box<dyn EntrySource>) -> Result<ConfigLog, LogError> {
        let (origin, size) = source.checkpoint()?;
        Ok(ConfigLog {
            source,
            known: Mutex::new(Known {
                origin,
                size,
                checked: Instant::now(),
            }),
            cache: RwLock::new(HashMap::new()),
        })
    }

    fn known(&self, force: bool) -> (String, u64) {
        let mut k = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if force && k.checked.elapsed() >= REFRESH {
            k.checked = Instant::now();
            match self.source.checkpoint() {
                Ok((origin, size)) if size >= k.size => {
                    k.origin = origin;
                    k.size = size;
                }
                Ok(_) => tracing::error!("log checkpoint went backwards; keeping the larger size"),
                Err(e) => tracing::error!("reading the log checkpoint: {e}"),
            }
        }
        (k.origin.clone(), k.size)
    }

    /// The log origin.
    pub fn origin(&self) -> String {
        self.known(false).0
    }

    /// The number of entries, re-reading the checkpoint if it was last read over [`REFRESH`] ago.
    pub fn size(&self) -> u64 {
        self.known(true).1
    }

    /// The config at `index`, or `None` when the log has no such entry.
    pub fn get(&self, index: u64) -> Result<Option<Arc<LoadedConfig>>, LogError> {
        if let Some(c) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&index)
        {
            return Ok(Some(c.clone()));
        }
        let mut size = self.known(false).1;
        if index >= size {
            size = self.known(true).1;
        }
        if index >= size {
            return Ok(None);
        }
        let loaded = Arc::new(LoadedConfig::new(index, self.source.entry(index)?));
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(index, loaded.clone());
        Ok(Some(loaded))
    }

    /// The newest config entry.
    pub fn latest(&self) -> Result<Option<Arc<LoadedConfig>>, LogError> {
        let size = self.size();
        if size == 0 {
            return Ok(None);
        }
        self.get(size - 1)
    }
}
