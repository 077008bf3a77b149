//! Opening, creating, validating and growing mapped counter files (all safe code: the mapping
//! itself is in `mapping`).

use crate::flock::FileLock;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::format::{self, FormatError, Meta, Words};
use crate::{mapping, support};

pub use crate::support::file_size_limit;

/// File name suffix of counter files.
pub const COUNT_SUFFIX: &str = ".count";

/// Errors while recording into a counter file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// An I/O error.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The file is not trusted.
    #[error("{path} is not a valid counter file: {source}")]
    Format {
        /// The path.
        path: PathBuf,
        /// Why.
        source: FormatError,
    },
    /// The file is not what it should be (directory, symlink, other metadata).
    #[error("{path}: {why}")]
    Unusable {
        /// The path.
        path: PathBuf,
        /// Why.
        why: &'static str,
    },
    /// The file reached its maximum size or table count; new names are dropped.
    #[error("counter file full")]
    Full,
    /// The name is empty or too long.
    #[error("counter name of {0} bytes is not recorded (1 to 255 bytes)")]
    Name(usize),
    /// Writing would exceed the process's file size limit (RLIMIT_FSIZE).
    #[error("the file size limit does not allow {0} bytes")]
    SizeLimit(u64),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FileError + 'a {
    move |source| FileError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Escapes a name part for a file name: keeps `[A-Za-z0-9.+-]`, writes others as `%XX`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'+' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The file name of the counter file for `meta`: `WEEK_PROGRAM@VERSION_OS_ARCH.count`, e.g.
/// `2026-11-16_ripgrep@14.1.0_linux_x86_64.count` (program and version escaped; the header
/// inside the file is authoritative).
pub fn file_name(meta: &Meta) -> String {
    format!(
        "{}_{}@{}_{}_{}{COUNT_SUFFIX}",
        meta.week,
        escape(&meta.program),
        escape(&meta.version),
        escape(&meta.os).replace("%5F", "_"),
        escape(&meta.arch).replace("%5F", "_")
    )
}

/// Whether a file may be extended to `end` bytes.
pub fn size_allowed(end: u64) -> Result<(), FileError> {
    match file_size_limit() {
        Some(limit) if end > limit => Err(FileError::SizeLimit(end)),
        _ => Ok(()),
    }
}

/// Renames a damaged or foreign file out of the way (`NAME.UNIXTIME.corrupt`).
pub fn set_aside(path: &Path) -> Result<(), FileError> {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.corrupt", crate::clock::now_unix()));
    fs::rename(path, PathBuf::from(name)).map_err(io_err("set aside", path))
}

/// A counter file mapped into this process.
pub struct CounterFile {
    path: PathBuf,
    file: File,
    words: &'static [AtomicU64],
    /// Cells already looked up. Ordered maps and sets in the start path, not hashed ones: the
    /// first `RandomState` of a process costs a `getrandom` system call.
    cache: BTreeMap<Box<str>, &'static AtomicU64>,
}

impl std::fmt::Debug for CounterFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CounterFile")
            .field("path", &self.path)
            .field("words", &self.words.len())
            .finish()
    }
}

enum Probe {
    Found(usize),
    /// Not in this table; `Some(slot)` is the first empty slot seen.
    Missing(Option<usize>),
}

impl CounterFile {
    /// Opens the counter file for `meta` in `dir`, creating it if needed. A file that is not a
    /// regular file, is damaged, foreign or about something else is set aside and replaced.
    pub fn open(dir: &Path, meta: &Meta) -> Result<CounterFile, FileError> {
        if !format::meta_fits(meta) {
            return Err(FileError::Unusable {
                path: dir.to_path_buf(),
                why: "program, version, os or arch too long",
            });
        }
        let path = dir.join(file_name(meta));
        for attempt in 0..3 {
            match Self::try_open(&path, meta) {
                Ok(f) => return Ok(f),
                Err(OpenError::Missing) => Self::create(dir, &path, meta)?,
                Err(OpenError::Bad(e)) => {
                    if attempt == 2 {
                        return Err(e);
                    }
                    support::debug_log(&format!("{e}; setting it aside"));
                    set_aside(&path)?;
                }
                Err(OpenError::Fatal(e)) => return Err(e),
            }
        }
        Err(FileError::Unusable {
            path,
            why: "keeps changing while being opened",
        })
    }

    fn try_open(path: &Path, meta: &Meta) -> Result<CounterFile, OpenError> {
        // Never through a symlink, never blocking on a FIFO: see `support::open_regular`.
        let (file, fmeta) =
            match support::open_regular(path, OpenOptions::new().read(true).write(true)) {
                Ok(opened) => opened,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OpenError::Missing),
                Err(e) if support::is_unfit(&e) => {
                    return Err(unusable(path, "not a regular file"));
                }
                Err(e) => return Err(OpenError::Fatal(io_err("open", path)(e))),
            };
        let len = fmeta.len();
        if len % 8 != 0
            || len < 8 * (format::HEADER_WORDS + format::TABLE_HEADER + format::MIN_SLOTS) as u64
            || len > 8 * format::MAX_WORDS as u64
        {
            return Err(OpenError::Bad(FileError::Format {
                path: path.to_path_buf(),
                source: FormatError::Length(usize::try_from(len).unwrap_or(usize::MAX)),
            }));
        }
        let words = mapping::map_words(&file, (len / 8) as usize)
            .map_err(|e| OpenError::Fatal(io_err("map", path)(e)))?;
        let snap = format::parse(words).map_err(|source| {
            OpenError::Bad(FileError::Format {
                path: path.to_path_buf(),
                source,
            })
        })?;
        if &snap.meta != meta {
            return Err(unusable(
                path,
                "counter file of another program, version, platform or week",
            ));
        }
        Ok(CounterFile {
            path: path.to_path_buf(),
            file,
            words,
            cache: BTreeMap::new(),
        })
    }

    /// Creates the file under a temporary name and links it into place, so that other processes
    /// only ever see a complete file; losing the race to another creator is fine.
    fn create(dir: &Path, path: &Path, meta: &Meta) -> Result<(), FileError> {
        let words = format::initial_words(meta).ok_or(FileError::Unusable {
            path: path.to_path_buf(),
            why: "metadata too long",
        })?;
        let bytes = format::words_to_bytes(&words);
        size_allowed(bytes.len() as u64)?;
        let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), support::unique()));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(io_err("create", &tmp))?;
            f.write_all(&bytes).map_err(io_err("write", &tmp))?;
            match fs::hard_link(&tmp, path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(io_err("link", path)(e)),
            }
        })();
        let _ = fs::remove_file(&tmp);
        result
    }

    /// The path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The word that counts `name`, inserting the name if needed.
    pub fn cell(&mut self, name: &str) -> Result<&'static AtomicU64, FileError> {
        if let Some(c) = self.cache.get(name) {
            return Ok(c);
        }
        if name.is_empty() || name.len() > format::MAX_NAME {
            return Err(FileError::Name(name.len()));
        }
        let c = self.lookup_or_insert(name.as_bytes())?;
        self.cache.insert(name.into(), c);
        Ok(c)
    }

    fn corrupt(&self, why: &'static str) -> FileError {
        FileError::Format {
            path: self.path.clone(),
            source: FormatError::Table(why),
        }
    }

    fn load(&mut self, i: usize) -> Result<u64, FileError> {
        self.ensure(i + 1)?;
        Ok(self.words[i].load(Ordering::Acquire))
    }

    /// Makes sure the mapping covers `words` words, remapping if another process grew the file.
    fn ensure(&mut self, words: usize) -> Result<(), FileError> {
        if words <= self.words.len() {
            return Ok(());
        }
        let len = self
            .file
            .metadata()
            .map_err(io_err("inspect", &self.path))?
            .len();
        let have = usize::try_from(len / 8).unwrap_or(0).min(format::MAX_WORDS);
        if have < words {
            return Err(self.corrupt("reference past the end of the file"));
        }
        self.words = mapping::map_words(&self.file, have).map_err(io_err("map", &self.path))?;
        Ok(())
    }

    fn probe(&mut self, t: usize, slots: usize, name: &[u8], h: u64) -> Result<Probe, FileError> {
        let mask = slots - 1;
        let mut first_empty = None;
        for i in 0..slots {
            let s = t + format::TABLE_HEADER + ((h as usize).wrapping_add(i) & mask);
            let r = self.load(s)?;
            if r == 0 {
                first_empty = Some(s);
                break;
            }
            let r = usize::try_from(r).map_err(|_| self.corrupt("record index"))?;
            if self.record_is(r, name)? {
                return Ok(Probe::Found(r));
            }
        }
        Ok(Probe::Missing(first_empty))
    }

    fn record_is(&mut self, r: usize, name: &[u8]) -> Result<bool, FileError> {
        if r < format::HEADER_WORDS {
            return Err(self.corrupt("record index"));
        }
        let n = self.load(r + 1)?;
        if n != name.len() as u64 {
            return Ok(false);
        }
        self.ensure(r + format::record_words(name.len()))?;
        let stored = format::read_bytes(self.words, r + format::RECORD_HEADER, name.len())
            .ok_or_else(|| self.corrupt("record"))?;
        Ok(stored == name)
    }

    fn value(&mut self, r: usize) -> Result<&'static AtomicU64, FileError> {
        self.ensure(r + 1)?;
        let words: &'static [AtomicU64] = self.words;
        words.get(r).ok_or_else(|| self.corrupt("record index"))
    }

    fn table(&mut self, t: usize) -> Result<(usize, usize), FileError> {
        let slots = usize::try_from(self.load(t + 1)?).unwrap_or(0);
        if !slots.is_power_of_two() || !(format::MIN_SLOTS..=format::MAX_SLOTS).contains(&slots) {
            return Err(self.corrupt("slot count"));
        }
        self.ensure(t + format::TABLE_HEADER + slots)?;
        let next = usize::try_from(self.load(t)?).unwrap_or(usize::MAX);
        if next != 0 && (next <= t || next >= format::MAX_WORDS) {
            return Err(self.corrupt("next table"));
        }
        Ok((slots, next))
    }

    fn lookup_or_insert(&mut self, name: &[u8]) -> Result<&'static AtomicU64, FileError> {
        let h = format::hash(name);
        let mut t = format::HEADER_WORDS;
        let mut record: Option<usize> = None;
        for _ in 0..format::MAX_TABLES * 4 {
            let (slots, next) = self.table(t)?;
            let empty = match self.probe(t, slots, name, h)? {
                Probe::Found(r) => return self.value(r),
                Probe::Missing(e) => e,
            };
            if next != 0 {
                t = next;
                continue;
            }
            // `t` is the last table: insert here unless it is (nearly) full.
            let used = usize::try_from(self.load(t + 2)?).unwrap_or(usize::MAX);
            if let Some(s) = empty.filter(|_| used < slots / 4 * 3) {
                let r = match record {
                    Some(r) => r,
                    None => {
                        let r = self.alloc(format::record_words(name.len()))?;
                        self.words[r + 1].store(name.len() as u64, Ordering::Relaxed);
                        for (i, w) in format::pack_bytes(name).into_iter().enumerate() {
                            self.words[r + format::RECORD_HEADER + i].store(w, Ordering::Relaxed);
                        }
                        record = Some(r);
                        r
                    }
                };
                match self.words[s].compare_exchange(
                    0,
                    r as u64,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        self.words[t + 2].fetch_add(1, Ordering::Relaxed);
                        return self.value(r);
                    }
                    // Someone else filled the slot: probe again (maybe it is our name).
                    Err(_) => continue,
                }
            }
            // Grow: link a new, larger table.
            let new_slots = (slots * 2).min(format::MAX_SLOTS);
            let nt = self.alloc(format::TABLE_HEADER + new_slots)?;
            self.words[nt + 1].store(new_slots as u64, Ordering::Relaxed);
            // Whether we linked it or another process won, continue with the linked table.
            let _ =
                self.words[t].compare_exchange(0, nt as u64, Ordering::AcqRel, Ordering::Acquire);
        }
        Err(FileError::Full)
    }

    /// Allocates `n` zeroed words, growing the file if needed. The returned range is mapped.
    fn alloc(&mut self, n: usize) -> Result<usize, FileError> {
        let alloc = &self.words[format::W_ALLOC];
        let cur = usize::try_from(alloc.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        if cur.saturating_add(n) > format::MAX_WORDS {
            return Err(FileError::Full);
        }
        let start =
            usize::try_from(alloc.fetch_add(n as u64, Ordering::AcqRel)).unwrap_or(usize::MAX);
        let end = start.saturating_add(n);
        if end > format::MAX_WORDS || start < format::HEADER_WORDS {
            return Err(FileError::Full);
        }
        if end > self.words.len() {
            self.grow(end)?;
        }
        self.ensure(end)?;
        Ok(start)
    }

    /// Extends the file to at least `words` words, writing real zeros (not a sparse hole, so a
    /// full disk is an error here rather than a fault later), under an exclusive lock.
    fn grow(&mut self, words: usize) -> Result<(), FileError> {
        let mut locked = false;
        for _ in 0..40 {
            if self.file.try_lock_file().is_ok() {
                locked = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        if !locked {
            return Err(FileError::Unusable {
                path: self.path.clone(),
                why: "could not lock to grow",
            });
        }
        let result = (|| {
            let len = self
                .file
                .metadata()
                .map_err(io_err("inspect", &self.path))?
                .len();
            let have = usize::try_from(len / 8).unwrap_or(usize::MAX);
            if have >= words {
                return Ok(());
            }
            let target = words
                .max(have.saturating_mul(2))
                .next_multiple_of(format::INITIAL_WORDS)
                .min(format::MAX_WORDS);
            let end = (target as u64) * 8;
            size_allowed(end)?;
            let mut f = &self.file;
            f.seek(SeekFrom::Start(len))
                .map_err(io_err("seek", &self.path))?;
            let zeros = vec![0u8; 64 * 1024];
            let mut left = end - len;
            while left > 0 {
                let k = left.min(zeros.len() as u64) as usize;
                f.write_all(&zeros[..k])
                    .map_err(io_err("grow", &self.path))?;
                left -= k as u64;
            }
            Ok(())
        })();
        let _ = self.file.unlock_file();
        result
    }
}

enum OpenError {
    Missing,
    Bad(FileError),
    Fatal(FileError),
}

fn unusable(path: &Path, why: &'static str) -> OpenError {
    OpenError::Bad(FileError::Unusable {
        path: path.to_path_buf(),
        why,
    })
}

/// Reads and parses a counter file without mapping it (for reports and views). A symlink,
/// FIFO, directory or oversized file is an error, never followed, blocked on or read whole.
pub fn read_snapshot(path: &Path) -> Result<format::Snapshot, FileError> {
    let bytes = match support::read_small(path, 8 * format::MAX_WORDS as u64) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(io_err("read", path)(io::ErrorKind::NotFound.into())),
        Err(e) if support::is_unfit(&e) => {
            return Err(FileError::Unusable {
                path: path.to_path_buf(),
                why: "not a regular file, or too large",
            });
        }
        Err(e) => return Err(io_err("read", path)(e)),
    };
    format::parse_bytes(&bytes).map_err(|source| FileError::Format {
        path: path.to_path_buf(),
        source,
    })
}

/// A helper for tests and tools: parses the mapped words of `w` (same checks as files).
pub fn parse_words<W: Words + ?Sized>(w: &W) -> Result<format::Snapshot, FormatError> {
    format::parse(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Week;

    fn meta() -> Meta {
        Meta {
            program: "greet".into(),
            version: "1.0.0".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            week: Week::parse("2026-11-16").unwrap(),
        }
    }

    #[test]
    fn tables_and_file_grow_and_two_mappings_agree() {
        let dir = tempfile::tempdir().unwrap();
        // Two independent openings stand for two processes.
        let mut a = CounterFile::open(dir.path(), &meta()).unwrap();
        let mut b = CounterFile::open(dir.path(), &meta()).unwrap();
        let initial = fs::metadata(a.path()).unwrap().len();
        // Enough long names to need several tables and a larger file.
        let names: Vec<String> = (0..3000)
            .map(|i| format!("counter/number-{i:05}-{}", "x".repeat(i % 90)))
            .collect();
        for (i, n) in names.iter().enumerate() {
            let f = if i % 2 == 0 { &mut a } else { &mut b };
            f.cell(n)
                .unwrap()
                .fetch_add(i as u64 + 1, Ordering::Relaxed);
        }
        // Each side finds the other's names, and they share the counts.
        for n in names.iter().take(50) {
            let before = b.cell(n).unwrap().load(Ordering::Relaxed);
            a.cell(n).unwrap().fetch_add(1000, Ordering::Relaxed);
            assert_eq!(b.cell(n).unwrap().load(Ordering::Relaxed), before + 1000);
            b.cell(n).unwrap().fetch_sub(1000, Ordering::Relaxed);
        }
        assert!(fs::metadata(a.path()).unwrap().len() > initial);
        let snap = read_snapshot(a.path()).unwrap();
        assert_eq!(snap.counters.len(), names.len());
        for (i, n) in names.iter().enumerate() {
            assert_eq!(snap.counters[n], i as u64 + 1, "{n}");
        }
        // Reopening validates the grown file.
        let mut c = CounterFile::open(dir.path(), &meta()).unwrap();
        assert_eq!(c.cell(&names[2999]).unwrap().load(Ordering::Relaxed), 3000);
        assert!(matches!(c.cell(""), Err(FileError::Name(0))));
        assert!(matches!(
            c.cell(&"y".repeat(256)),
            Err(FileError::Name(256))
        ));
    }

    #[test]
    fn escaping_names() {
        assert_eq!(escape("cargo-foo/bar_baz"), "cargo-foo%2Fbar%5Fbaz");
        assert_eq!(
            file_name(&meta()),
            "2026-11-16_greet@1.0.0_linux_x86_64.count"
        );
    }
}
