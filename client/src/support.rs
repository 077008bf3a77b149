//! What every other module of the client needs and that needs none of them: the debug log,
//! unique names, and careful access to the small files clearcount keeps.
//!
//! This is a leaf: it uses nothing of the crate but [`crate::clock`] (itself a leaf), so any
//! module may use it without creating an import cycle.
//!
//! # Small files
//!
//! clearcount keeps a handful of small files in a directory that belongs to the user: the mode
//! file, the debug log, locks, markers, the uploader's tokens, endpoints and caches. Anything may
//! be found where one of them should be, and the obvious `std::fs` calls go wrong on each:
//!
//! | found instead | what the obvious call does |
//! |---|---|
//! | a FIFO | opening it for reading blocks until a writer comes: the host tool hangs |
//! | a symlink | writing follows it into a file clearcount does not own |
//! | a dangling symlink | `O_CREAT` through it creates its target, wherever that is |
//! | a directory | reads and writes fail, again on every run |
//! | a huge (e.g. sparse) file | reading it whole costs seconds and gigabytes |
//!
//! The functions here never block and never follow a final symlink: they open with
//! `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC` (a symlink then fails to open, a FIFO opens at once or
//! fails), check with `fstat` on the open file that it is a regular file (no race between a
//! check and the open), and never read more than a cap. A file that is not fit for use is
//! reported as an error for which [`is_unfit`] holds; the callers that own the file then
//! [`set_aside`] it (renamed, never deleted: it may be evidence of something) and carry on
//! with a fresh one. On platforms without those flags a `symlink_metadata` check before the
//! open does the same job, with a small race.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock;

/// A number unique within this process (for temporary file names, with the process id).
pub(crate) fn unique() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The process's file size limit in bytes (RLIMIT_FSIZE), when one is set and known.
///
/// Writing past it would raise SIGXFSZ, which kills the host tool, so clearcount checks it
/// before every write that extends a file.
pub fn file_size_limit() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let text = fs::read_to_string("/proc/self/limits").ok()?;
        let line = text.lines().find(|l| l.starts_with("Max file size"))?;
        let soft = line.split_whitespace().nth(3)?;
        soft.parse().ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// The debug log
// ---------------------------------------------------------------------------------------------

static DEBUG_LOG: OnceLock<PathBuf> = OnceLock::new();

/// Largest debug log kept. Appends that would pass it are dropped, so a much longer file was
/// not written by clearcount and is set aside.
const DEBUG_LOG_MAX: u64 = 256 * 1024;

/// Enables the debug log at `path` for the rest of the process (the first call wins). Until
/// then [`debug_log`] does nothing: recording calls it only once it may write to the directory.
pub(crate) fn set_debug_log(path: PathBuf) {
    let _ = DEBUG_LOG.set(path);
}

/// Appends a line (time, process id, `msg`) to the debug log, if [`set_debug_log`] enabled
/// one. Never fails, never prints, never blocks; see [`append_small`].
pub(crate) fn debug_log(msg: &str) {
    let Some(path) = DEBUG_LOG.get() else {
        return;
    };
    let line = format!(
        "{} pid {}: {msg}\n",
        clock::format_rfc3339(clock::now_unix()),
        std::process::id()
    );
    let _ = append_small(path, line.as_bytes(), DEBUG_LOG_MAX);
}

// ---------------------------------------------------------------------------------------------
// Small files
// ---------------------------------------------------------------------------------------------

/// Why a small file is not fit for use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unfit {
    /// A symlink, FIFO, directory, socket or device where a regular file belongs.
    NotRegular,
    /// A regular file larger than the cap of its kind (its length).
    TooLarge(u64),
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unfit::NotRegular => f.write_str(
                "not a regular file (a symlink, FIFO, directory or device is never used)",
            ),
            Unfit::TooLarge(n) => write!(f, "too large ({n} bytes)"),
        }
    }
}

impl std::error::Error for Unfit {}

fn unfit(why: Unfit) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// Whether `e` says the file is not fit for use (wrong type or too large), as opposed to
/// missing or unreadable: its owner may [`set_aside`] it.
pub(crate) fn is_unfit(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Unfit>())
}

/// Whether an `open` error means "something that is not a regular file is in the way".
#[cfg(unix)]
fn open_error_is_wrong_type(e: &io::Error) -> bool {
    // ELOOP: a symlink refused by O_NOFOLLOW (FreeBSD says EMLINK); EISDIR: a directory
    // opened for writing; ENXIO: a FIFO without reader (or a socket) opened for writing with
    // O_NONBLOCK.
    let wrong = [
        libc::ELOOP,
        libc::EISDIR,
        libc::ENXIO,
        #[cfg(target_os = "freebsd")]
        libc::EMLINK,
    ];
    e.raw_os_error().is_some_and(|c| wrong.contains(&c))
}

/// Opens `path` with `options` (read, write, create... as the caller sets them) without
/// following a final symlink and without blocking, and checks that what was opened is a
/// regular file. Returns the file and its metadata (from `fstat`, so no second look-up is
/// needed). Anything else in the way is an [`is_unfit`] error; a missing file is `NotFound`.
pub(crate) fn open_regular(
    path: &Path,
    options: &mut OpenOptions,
) -> io::Result<(File, fs::Metadata)> {
    #[cfg(unix)]
    let opened = {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| {
                if open_error_is_wrong_type(&e) {
                    unfit(Unfit::NotRegular)
                } else {
                    e
                }
            })
    };
    #[cfg(not(unix))]
    let opened = match fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => Err(unfit(Unfit::NotRegular)),
        _ => options.open(path),
    };
    let file = opened?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(unfit(Unfit::NotRegular));
    }
    Ok((file, meta))
}

/// Reads the small file at `path` whole, reading at most `max + 1` bytes whatever happens:
/// `Ok(None)` when it does not exist, an [`is_unfit`] error when it is not a regular file or
/// is larger than `max` bytes (nothing is read then), any other error as it came.
///
/// ```ignore
/// match read_small(&layout.mode_file(), 64 * 1024) {
///     Ok(Some(bytes)) => parse(&bytes),
///     Ok(None) => defaults(),
///     Err(e) => treat_as_off(e),
/// }
/// ```
pub(crate) fn read_small(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    let (file, meta) = match open_regular(path, OpenOptions::new().read(true)) {
        Ok(opened) => opened,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if meta.len() > max {
        return Err(unfit(Unfit::TooLarge(meta.len())));
    }
    // The file may grow between the fstat and the read: `take` keeps the cap anyway.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(unfit(Unfit::TooLarge(bytes.len() as u64)));
    }
    Ok(Some(bytes))
}

/// Reads one of clearcount's own small files for a caller that only needs "the contents, if
/// usable": `None` when missing, unreadable or unfit, and an unfit file is [`set_aside`] (and
/// the debug log says so), so that the next write creates a fresh one instead of failing or
/// being ignored on every run.
pub(crate) fn read_kept(path: &Path, max: u64) -> Option<Vec<u8>> {
    match read_small(path, max) {
        Ok(bytes) => bytes,
        Err(e) => {
            if is_unfit(&e) {
                set_aside_noted(path, &e);
            }
            None
        }
    }
}

/// How far past its cap [`append_small`] may leave a file: processes appending at the same
/// moment may each pass the check before the others write (a few lines at most).
const APPEND_SLACK: u64 = 64 * 1024;

/// Appends `bytes` to the small file at `path`, creating it if needed, unless the file would
/// then be longer than `max_total` bytes or than the process's file size limit (then nothing
/// is written and `Ok(false)` returned). An unfit file (wrong type, or so far past
/// `max_total` that this function did not write it) is set aside once and the append retried
/// on a fresh file. Never blocks, never writes through a symlink.
pub(crate) fn append_small(path: &Path, bytes: &[u8], max_total: u64) -> io::Result<bool> {
    let mut opts = OpenOptions::new();
    opts.append(true).create(true);
    let (mut file, meta) = open_or_set_aside(path, &mut opts, |m| {
        if m.len() > max_total.saturating_add(APPEND_SLACK) {
            Err(unfit(Unfit::TooLarge(m.len())))
        } else {
            Ok(())
        }
    })?;
    let end = meta.len().saturating_add(bytes.len() as u64);
    if end > max_total || file_size_limit().is_some_and(|limit| end > limit) {
        return Ok(false);
    }
    file.write_all(bytes)?;
    Ok(true)
}

/// Creates or opens the lock file at `path` for `File::try_lock`, without following a link
/// (a dangling one would otherwise create its target) or blocking. Whatever else is in the way
/// is set aside once and the lock created fresh. Its contents and length do not matter.
pub(crate) fn open_lock(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    open_or_set_aside(path, &mut opts, |_| Ok(())).map(|(file, _)| file)
}

/// [`open_regular`], and when the file is unfit (or `check` says so), [`set_aside`] and one
/// more attempt. `options` should create the file: after setting aside, nothing is there.
fn open_or_set_aside(
    path: &Path,
    options: &mut OpenOptions,
    check: impl Fn(&fs::Metadata) -> io::Result<()>,
) -> io::Result<(File, fs::Metadata)> {
    let attempt = |options: &mut OpenOptions| {
        let (file, meta) = open_regular(path, options)?;
        check(&meta)?;
        Ok((file, meta))
    };
    match attempt(options) {
        Err(e) if is_unfit(&e) => {
            set_aside(path)?;
            attempt(options)
        }
        other => other,
    }
}

/// Renames whatever is at `path` (file, symlink, FIFO, directory...) out of the way, to
/// `NAME.set-aside-TIME-PID-N` beside it, and returns the new name. A symlink is renamed
/// itself, never its target. Nothing is deleted: the user may want to see what was there.
pub(crate) fn set_aside(path: &Path) -> io::Result<PathBuf> {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(
        ".set-aside-{}-{}-{}",
        clock::now_unix(),
        std::process::id(),
        unique()
    ));
    let to = PathBuf::from(name);
    fs::rename(path, &to)?;
    Ok(to)
}

/// [`set_aside`], with a line in the debug log saying why (not for the debug log itself).
fn set_aside_noted(path: &Path, why: &io::Error) {
    match set_aside(path) {
        Ok(to) => debug_log(&format!(
            "{}: {why}; set aside as {}",
            path.display(),
            to.display()
        )),
        Err(e) => debug_log(&format!(
            "{}: {why}; cannot set it aside: {e}",
            path.display()
        )),
    }
}

/// The hostile things the tests plant (here and in `upload::state`), shared with
/// `tests/hostile_small_files.rs`.
#[cfg(all(test, unix))]
#[path = "../tests/common/hostile.rs"]
pub(crate) mod hostile;

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    use hostile::{THINGS, Thing};

    const OUTSIDE: &[u8] = b"outside";

    fn plant(thing: Thing, path: &Path, outside: &Path) {
        hostile::plant(thing, path, outside, OUTSIDE);
    }

    fn assert_outside_untouched(thing: Thing, outside: &Path) {
        hostile::assert_outside_untouched(thing, outside, OUTSIDE, &format!("{thing:?}"));
    }

    fn set_aside_names(dir: &Path, name: &str) -> Vec<PathBuf> {
        let prefix = format!("{name}.set-aside-");
        fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect()
    }

    #[test]
    fn read_small_reads_regular_files_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        assert_eq!(read_small(&p, 10).unwrap(), None);
        fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read_small(&p, 10).unwrap().unwrap(), b"0123456789");
        let e = read_small(&p, 9).unwrap_err();
        assert!(is_unfit(&e), "{e}");
        assert_eq!(e.to_string(), "too large (10 bytes)");
        fs::write(&p, b"").unwrap();
        assert_eq!(read_small(&p, 0).unwrap().unwrap(), b"");
        // Other errors are not "unfit": a missing parent directory, here.
        let e = read_small(&p.join("below"), 10).unwrap_err();
        assert!(!is_unfit(&e), "{e}");
    }

    #[test]
    fn read_small_refuses_every_hostile_thing_without_blocking_or_following() {
        for thing in THINGS {
            let dir = tempfile::tempdir().unwrap();
            let (p, outside) = (dir.path().join("f"), dir.path().join("outside"));
            plant(thing, &p, &outside);
            let e = read_small(&p, 64 * 1024).unwrap_err();
            assert!(is_unfit(&e), "{thing:?}: {e}");
            assert_outside_untouched(thing, &outside);
            // Still in place: reading sets nothing aside by itself.
            assert!(fs::symlink_metadata(&p).is_ok());
        }
    }

    #[test]
    fn read_kept_sets_hostile_things_aside() {
        for thing in THINGS {
            let dir = tempfile::tempdir().unwrap();
            let (p, outside) = (dir.path().join("f"), dir.path().join("outside"));
            plant(thing, &p, &outside);
            assert_eq!(read_kept(&p, 64 * 1024), None, "{thing:?}");
            assert!(fs::symlink_metadata(&p).is_err(), "{thing:?}: still there");
            assert_eq!(set_aside_names(dir.path(), "f").len(), 1, "{thing:?}");
            assert_outside_untouched(thing, &outside);
        }
        // A usable file is simply read; a missing one is `None` and creates nothing.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        assert_eq!(read_kept(&p, 4), None);
        assert!(fs::read_dir(dir.path()).unwrap().next().is_none());
        fs::write(&p, b"1234").unwrap();
        assert_eq!(read_kept(&p, 4).unwrap(), b"1234");
    }

    #[test]
    fn append_small_sets_hostile_things_aside_and_writes_a_fresh_file() {
        for thing in THINGS {
            let dir = tempfile::tempdir().unwrap();
            let (p, outside) = (dir.path().join("log"), dir.path().join("outside"));
            plant(thing, &p, &outside);
            assert!(append_small(&p, b"line\n", 1024).unwrap(), "{thing:?}");
            assert_eq!(fs::read(&p).unwrap(), b"line\n", "{thing:?}");
            assert_eq!(set_aside_names(dir.path(), "log").len(), 1, "{thing:?}");
            assert_outside_untouched(thing, &outside);
        }
    }

    #[test]
    fn append_small_keeps_to_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        assert!(append_small(&p, b"12345", 8).unwrap());
        assert!(!append_small(&p, b"6789", 8).unwrap(), "would pass the cap");
        assert!(append_small(&p, b"678", 8).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"12345678");
        // A little past the cap (appenders racing) is still the log: nothing is added to it.
        fs::write(&p, vec![b'x'; 8 + 1000]).unwrap();
        assert!(!append_small(&p, b"9", 8).unwrap());
        assert!(set_aside_names(dir.path(), "log").is_empty());
    }

    #[test]
    fn a_fifo_with_a_reader_is_set_aside_too() {
        // With a reader, opening a FIFO for writing succeeds: fstat is what catches it.
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        plant(Thing::Fifo, &p, &dir.path().join("outside"));
        let mut reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&p)
            .unwrap();
        assert!(append_small(&p, b"line\n", 1024).unwrap());
        let mut got = Vec::new();
        let _ = reader.read_to_end(&mut got);
        assert!(got.is_empty(), "nothing was written into the FIFO");
        assert_eq!(fs::read(&p).unwrap(), b"line\n");
    }

    #[test]
    fn open_lock_sets_hostile_things_aside_and_locks() {
        for thing in THINGS {
            let dir = tempfile::tempdir().unwrap();
            let (p, outside) = (dir.path().join(".lock"), dir.path().join("outside"));
            plant(thing, &p, &outside);
            open_lock(&p).unwrap().try_lock().unwrap();
            assert!(fs::symlink_metadata(&p).unwrap().is_file(), "{thing:?}");
            assert_outside_untouched(thing, &outside);
            // A regular file is a usable lock whatever its length: only the others go aside.
            let aside = usize::from(!matches!(thing, Thing::Sparse));
            assert_eq!(
                set_aside_names(dir.path(), ".lock").len(),
                aside,
                "{thing:?}"
            );
        }
    }

    #[test]
    fn set_aside_names_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        for i in 0..3 {
            fs::write(&p, format!("{i}")).unwrap();
            set_aside(&p).unwrap();
        }
        assert_eq!(set_aside_names(dir.path(), "f").len(), 3);
        assert!(set_aside(&p).is_err(), "nothing to set aside");
    }
}
