//! Start-up, the process-wide recording state and week switching.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::clock::{self, Week};
use crate::file::CounterFile;
use crate::format::Meta;
use crate::mode::{self, Mode};
use crate::support::{self, debug_log};
use crate::{Layout, report};

/// Not started yet: increments are kept in memory.
pub(crate) const UNSTARTED: u8 = 0;
/// Off, or recording failed: increments are dropped.
pub(crate) const DISABLED: u8 = 1;
/// Recording into a counter file.
pub(crate) const ACTIVE: u8 = 2;

pub(crate) static STATE: AtomicU8 = AtomicU8::new(UNSTARTED);
static STARTED: AtomicBool = AtomicBool::new(false);
static EPOCH: AtomicU64 = AtomicU64::new(1);
static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);
static REGISTRY: Mutex<Vec<&'static dyn Registered>> = Mutex::new(Vec::new());
/// The program this process started as (the embedded consent commands act on it).
#[cfg(feature = "cli")]
static HOST_PROGRAM: OnceLock<String> = OnceLock::new();

// The week timer is a thread, and a thread costs a short-lived tool more than everything else
// clearcount does at start. So it starts only once the process shows it is not short-lived:
// at the first increment after its first second, or after `LAZY_INCREMENTS` increments. Until
// then no counter caches its word; every increment takes the cold path, which is where the
// timer is started (after a synchronous week check). A process that records nothing after its
// first second needs no switch: its counts go to the file of the week in which it started (if
// that week ended within the process's first second, the grace hour before that file is
// reduced covers it, as it covers any process running across the end of a week).

/// No week timer wanted (`Settings::week_timer(false)`): words are cached from the start.
const TIMER_OFF: u8 = 0;
/// A timer wanted but not started yet: words are not cached.
const TIMER_LAZY: u8 = 1;
/// The timer runs (or failed to start): words are cached.
const TIMER_RUNNING: u8 = 2;
static WEEK_TIMER: AtomicU8 = AtomicU8::new(TIMER_OFF);
/// When recording started, for the lazy timer.
static STARTED_AT: OnceLock<Instant> = OnceLock::new();
/// Increments taken on the cold path while the timer was lazy.
static UNCACHED: AtomicU64 = AtomicU64::new(0);
/// A process that lives this long and then records starts the week timer.
const LAZY_AFTER: Duration = Duration::from_secs(1);
/// A process that records this often starts the week timer (and caches words) at once.
const LAZY_INCREMENTS: u64 = 256;

/// What the runtime asks of a counter that was used: to write the counts it kept in memory once
/// recording starts, and to forget the words it cached when the week's file changes. `Counter`
/// and `Category` implement it; the runtime never names their types.
pub(crate) trait Registered: Sync {
    /// Writes the counts kept before recording started.
    fn flush(&'static self);
    /// Forgets cached words (the counter file changed).
    fn forget(&self);
}

struct Runtime {
    layout: Layout,
    meta: Meta,
    file: CounterFile,
    /// Names that could not be placed in the file.
    failed: BTreeSet<String>,
    retention: u32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How a host tool starts clearcount: program, version and options.
///
/// ```no_run
/// clearcount::Settings::new("greet", env!("CARGO_PKG_VERSION"))
///     .retention_weeks(4)
///     .start();
/// ```
///
/// A tool that uploads (in mode `on`, after the user opted in) names its server and pins its
/// config log's verifier key with [`Settings::upload`].
#[derive(Clone, Debug)]
pub struct Settings {
    pub(crate) program: String,
    pub(crate) version: String,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) retention_weeks: Option<u32>,
    pub(crate) week_timer: bool,
    pub(crate) upload: Option<crate::upload::Endpoint>,
}

impl Settings {
    /// Settings for `program` at `version` (e.g. `env!("CARGO_PKG_VERSION")`).
    pub fn new(program: impl Into<String>, version: impl Into<String>) -> Settings {
        Settings {
            program: program.into(),
            version: version.into(),
            dir: None,
            retention_weeks: None,
            week_timer: true,
            upload: None,
        }
    }

    /// Uploads to the clearcount server at `server` (e.g. `https://telemetry.example.org`),
    /// whose config log is signed by the verifier key `log_key` (`name+hex(keyid)+base64`),
    /// pinned in the tool. Only in mode `on`, only weeks after the opt-in, at most once a day
    /// from a detached child process (see [`crate::upload`]). In modes `off` and `local`
    /// nothing is sent; the endpoint is only recorded in the directory (once a day) so that
    /// `clearcount on` can show the config before the user opts in.
    ///
    /// With the `upload` feature the child is the tool's own executable. Without it (a
    /// recording-only build, which links no HTTP or TLS code and starts faster), the child is
    /// the `clearcount` command, found beside the tool's executable or on `PATH`.
    ///
    /// ```no_run
    /// clearcount::Settings::new("greet", env!("CARGO_PKG_VERSION"))
    ///     .upload(
    ///         "https://telemetry.example.org",
    ///         "telemetry.example.org/config+0123abcd+AQ...",
    ///     )
    ///     .start();
    /// ```
    pub fn upload(mut self, server: impl Into<String>, log_key: impl Into<String>) -> Settings {
        self.upload = Some(crate::upload::Endpoint::new(server, log_key));
        self
    }

    /// Uses `dir` instead of `CLEARCOUNT_DIR` or the platform default.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Settings {
        self.dir = Some(dir.into());
        self
    }

    /// Keeps local reports this many weeks (default 8; a `retention-weeks` line in the mode file,
    /// the user's choice, wins).
    pub fn retention_weeks(mut self, weeks: u32) -> Settings {
        self.retention_weeks = Some(weeks.clamp(1, mode::MAX_RETENTION_WEEKS));
        self
    }

    /// Whether a long-running process switches counter files when the week changes (default:
    /// yes), with a small background thread. The thread starts only when the process records
    /// after its first second or records often (256 increments), so short-lived tools never
    /// start it. Without it, counts after the end of the week go to the week in which the
    /// process started.
    pub fn week_timer(mut self, on: bool) -> Settings {
        self.week_timer = on;
        self
    }

    /// Starts recording. Never fails, never prints, never panics, never blocks: any problem
    /// turns recording off for this process and is written to the debug log where possible.
    /// Only the first call in a process has an effect.
    pub fn start(self) {
        #[cfg(feature = "upload")]
        if let Some(marker) = std::env::var_os(crate::upload::CHILD_ENV) {
            maybe_become_upload_child(&self, &marker.to_string_lossy());
        }
        if STARTED.swap(true, Ordering::SeqCst) {
            return;
        }
        #[cfg(feature = "cli")]
        let _ = HOST_PROGRAM.set(self.program.clone());
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| start_inner(self)));
        if !matches!(ok, Ok(true)) {
            STATE.store(DISABLED, Ordering::SeqCst);
        }
    }
}

/// In a genuine upload child (see [`crate::upload`]), runs the upload and exits.
#[cfg(feature = "upload")]
fn maybe_become_upload_child(s: &Settings, marker: &str) {
    let Some(endpoint) = &s.upload else {
        return;
    };
    let Some(root) = s.dir.clone().or_else(crate::default_dir) else {
        return;
    };
    let layout = Layout::new(root);
    if crate::upload::is_child(&layout, endpoint, marker) {
        crate::upload::run::child_main(layout, endpoint.clone());
    }
}

/// Starts recording for `program` at `version`: call it early in `main`.
///
/// ```no_run
/// clearcount::start("greet", env!("CARGO_PKG_VERSION"));
/// ```
///
/// See [`Settings`] for options. Never fails, prints, panics or blocks.
pub fn start(program: &str, version: &str) {
    Settings::new(program, version).start();
}

/// The program name this process passed to its start function, if it called one (the
/// embedded consent commands, `TOOL telemetry on|off|local`, act on that program).
#[cfg(feature = "cli")]
pub(crate) fn host_program() -> Option<&'static str> {
    HOST_PROGRAM.get().map(String::as_str)
}

/// Whether this process is recording into a counter file right now.
pub fn recording() -> bool {
    STATE.load(Ordering::Relaxed) == ACTIVE
}

/// For benchmarks only: switches a started process between recording and not recording, so
/// that one benchmark run can measure both paths. Not part of the API.
#[doc(hidden)]
pub fn __set_disabled_for_benchmarks(disabled: bool) {
    if lock(&RUNTIME).is_some() {
        STATE.store(if disabled { DISABLED } else { ACTIVE }, Ordering::SeqCst);
    }
}

fn start_inner(s: Settings) -> bool {
    if mode::environment_ceiling() == Mode::Off {
        return false;
    }
    if !crate::valid_program_name(&s.program) || !crate::valid_version(&s.version) {
        return false;
    }
    let Some(root) = s.dir.clone().or_else(crate::default_dir) else {
        return false;
    };
    let layout = Layout::new(root);
    let Ok(mode_file) = mode::read(&layout) else {
        return false;
    };
    let mode = mode::effective(
        mode_file.setting_for(&s.program).mode,
        mode::environment_ceiling(),
    );
    if mode == Mode::Off {
        return false;
    }
    let retention = mode_file
        .retention_weeks
        .or(s.retention_weeks)
        .unwrap_or(mode::DEFAULT_RETENTION_WEEKS);
    let now = clock::now_unix();
    let week = Week::containing(now);
    let meta = Meta {
        program: s.program,
        version: s.version,
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        week,
    };
    // The common case (the file of this week exists) costs no directory creation and no
    // reduction check: the first process of a program in a week (which creates the file) and
    // processes on the first day of a week (the previous week may still have been inside its
    // grace hour when the file was created) check whether a reduction is due.
    let local = layout.local();
    let exists = fs::symlink_metadata(local.join(crate::file::file_name(&meta))).is_ok();
    if !exists && fs::create_dir_all(&local).is_err() {
        return false;
    }
    support::set_debug_log(layout.debug_log());
    if !exists || now - week.start_unix() < 86_400 {
        report::maybe_reduce(&layout, now, retention);
    }
    let file = match CounterFile::open(&local, &meta) {
        Ok(f) => f,
        Err(e) => {
            debug_log(&format!("recording off for this run: {e}"));
            return false;
        }
    };
    if let Some(endpoint) = &s.upload {
        crate::upload::at_start(
            &layout,
            endpoint,
            &mode_file,
            mode::environment_ceiling(),
            now,
        );
    }
    *lock(&RUNTIME) = Some(Runtime {
        layout,
        meta,
        file,
        failed: BTreeSet::new(),
        retention,
    });
    if s.week_timer {
        let _ = STARTED_AT.set(Instant::now());
        WEEK_TIMER.store(TIMER_LAZY, Ordering::SeqCst);
    }
    STATE.store(ACTIVE, Ordering::SeqCst);
    flush_pending();
    true
}

/// Called on the cold path of every increment while the timer is lazy: starts the week timer
/// when the process turns out not to be short-lived, after moving to the current week's file
/// (the week may have ended while the process was not recording).
pub(crate) fn lazy_week_timer() {
    if WEEK_TIMER.load(Ordering::Acquire) != TIMER_LAZY {
        return;
    }
    let often = UNCACHED.fetch_add(1, Ordering::Relaxed) >= LAZY_INCREMENTS;
    let old = STARTED_AT.get().is_none_or(|t| t.elapsed() >= LAZY_AFTER);
    if !(often || old) {
        return;
    }
    if WEEK_TIMER
        .compare_exchange(
            TIMER_LAZY,
            TIMER_RUNNING,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok()
        && switch_week_if_needed()
    {
        spawn_week_timer();
    }
}

/// Whether counters may cache their words (not while the week timer is lazy: an uncached
/// increment is what starts it).
fn caching() -> bool {
    WEEK_TIMER.load(Ordering::Acquire) != TIMER_LAZY
}

fn flush_pending() {
    let regs: Vec<&'static dyn Registered> = lock(&REGISTRY).clone();
    for r in regs {
        r.flush();
    }
}

/// Registers a counter at its first use (`flag` is its own "registered" flag).
pub(crate) fn register(flag: &AtomicBool, r: &'static dyn Registered) {
    if !flag.load(Ordering::Acquire) && !flag.swap(true, Ordering::AcqRel) {
        lock(&REGISTRY).push(r);
    }
}

/// Resolves `name` to its word in the current counter file.
fn resolve(rt: &mut Runtime, name: &str) -> Option<&'static AtomicU64> {
    if rt.failed.contains(name) {
        return None;
    }
    match rt.file.cell(name) {
        Ok(c) => Some(c),
        Err(e) => {
            debug_log(&format!("counter {name:?} not recorded: {e}"));
            rt.failed.insert(name.to_string());
            None
        }
    }
}

/// Runs `f` with the word of `name` in the current counter file, under the runtime's lock (so
/// that a week switch, which clears the cached words under the same lock, cannot slip in
/// between), with whether words may be cached now and the current epoch. `None` when not
/// recording or when the name cannot be placed.
pub(crate) fn with_cell<R>(
    name: &str,
    f: impl FnOnce(&'static AtomicU64, bool, u64) -> R,
) -> Option<R> {
    let mut g = lock(&RUNTIME);
    let epoch = EPOCH.load(Ordering::Acquire);
    let cell = resolve(g.as_mut()?, name)?;
    Some(f(cell, caching(), epoch))
}

/// The current epoch: it changes whenever recording moves to another counter file.
pub(crate) fn epoch() -> u64 {
    EPOCH.load(Ordering::Acquire)
}

fn spawn_week_timer() {
    let _ = std::thread::Builder::new()
        .name("clearcount-week".into())
        .stack_size(64 * 1024)
        .spawn(|| {
            loop {
                let now = clock::now_unix();
                let end = Week::containing(now).end_unix();
                let wait = (end - now).clamp(1, 600) as u64;
                std::thread::sleep(std::time::Duration::from_secs(wait));
                if !switch_week_if_needed() {
                    return;
                }
            }
        });
}

/// Moves recording to the current week's file when the week has changed. Returns whether the
/// process is still recording.
fn switch_week_if_needed() -> bool {
    let now = clock::now_unix();
    let week = Week::containing(now);
    let mut g = lock(&RUNTIME);
    let Some(rt) = g.as_mut() else {
        return false;
    };
    if rt.meta.week == week {
        return true;
    }
    let mut meta = rt.meta.clone();
    meta.week = week;
    match CounterFile::open(&rt.layout.local(), &meta) {
        Ok(f) => {
            rt.file = f;
            rt.meta = meta;
            rt.failed.clear();
        }
        Err(e) => {
            debug_log(&format!("recording off: cannot switch to week {week}: {e}"));
            STATE.store(DISABLED, Ordering::SeqCst);
            return false;
        }
    }
    EPOCH.fetch_add(1, Ordering::AcqRel);
    for r in lock(&REGISTRY).iter() {
        r.forget();
    }
    let layout = rt.layout.clone();
    let retention = rt.retention;
    drop(g);
    report::maybe_reduce(&layout, now, retention);
    true
}
