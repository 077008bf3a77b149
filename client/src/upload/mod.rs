//! Verified config, privatized weekly reports and the detached upload child (mode `on` only).
//!
//! Its parts, internal to clearcount (public for its own command and tests, hidden from this
//! documentation). With the `upload` feature (a default feature):
//!
//! - `build`: the upload report of a week, a pure function of the local report, the verified
//!   config and an RNG.
//! - `verify`: fetching the latest config from the log and verifying it (signature,
//!   consistency with the remembered checkpoint, inclusion); failures that are evidence against
//!   the log raise an alarm that blocks every upload until the user clears it.
//! - `consent`: whether a program's report may be sent under a config: the user's consent for
//!   that program, that log and that config.
//! - `run`: one upload run (reduce, decide each week, verify, build, send one report), used by
//!   the child, by `clearcount upload`, and in-process by simulations with an explicit directory
//!   and clock.
//! - `now`: `clearcount upload --now`, the week in progress sent at once to a development
//!   server, for tool authors testing their integration.
//!
//! Always, so that a recording-only tool can still hand its uploads on:
//!
//! - `state`: the files kept per log under `<dir>/upload/`.
//! - The launch at start. The host tool's start function (with [`crate::Settings::upload`])
//!   costs one `stat` of the day's token file on days when nothing is due. The first process of
//!   a day creates the token (exclusively: of any number of processes starting at once, exactly
//!   one wins), records the endpoint and, when some program has consent, starts the upload
//!   child detached, with stdout and stderr on the null device and stdin on a pipe from the
//!   host:
//!   - with the `upload` feature, the child is the host's own executable, re-executed with the
//!     marker variable [`CHILD_ENV`] set; in that child, `start` runs one upload and exits, never
//!     returns into the host's `main` and never spawns again;
//!   - without it, the host links no HTTP, TLS or config-log code at all, and the child is the
//!     `clearcount` command (beside the host's executable, else on `PATH`), run as
//!     `clearcount upload --child DAY:NONCE --server URL --log-key KEY`. No `clearcount` command,
//!     no upload that day (a line in the debug log says so); the user who opted in with
//!     `clearcount on` has one.
//!
//! Either child checks that the day's token holds its nonce before it does anything, so a
//! stray variable or argument is ignored.
//!
//! Opting out always wins. The child first waits (at most [`PARENT_WAIT`]) until its host has
//! exited, which it sees as the end of its stdin; a consent command run by that host
//! (`TOOL telemetry off`, say, as the first command of the day) first tells the child to give
//! up ([`cancel_upload_child`]). Before each request the run re-reads mode and consent under
//! the consent lock (see [`crate::mode::ConsentLock`]) and sends nothing once either says no.
//!
//! The child of a tool that exits before it calls start when run without arguments (a clap
//! tool with a required subcommand that parses its arguments first) never arrives: the
//! `child-DAY` marker stays, and the next day's first process notes it in the debug log and in
//! `clearcount status`. Such a tool calls start before parsing its arguments (docs/integration.md).

#[cfg(feature = "upload")]
#[doc(hidden)]
pub mod build;
#[cfg(feature = "upload")]
#[doc(hidden)]
pub mod consent;
#[cfg(feature = "upload")]
#[doc(hidden)]
pub mod now;
#[cfg(feature = "upload")]
#[doc(hidden)]
pub mod run;
#[doc(hidden)]
pub mod state;
#[cfg(feature = "upload")]
#[doc(hidden)]
pub mod verify;

use std::fs;
use std::io::Write;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
#[cfg(feature = "upload")]
use std::time::Duration;

use crate::clock;
use crate::mode::{self, Mode, ModeFile};
use crate::{Layout, support};

#[doc(hidden)]
pub use state::{Endpoint, LogState};

/// The environment variable that marks the upload child. Its value names the day's token and
/// the nonce written in it, so a stray variable in a user's shell is ignored.
#[cfg(feature = "upload")]
pub const CHILD_ENV: &str = "CLEARCOUNT_UPLOAD_CHILD";
/// The longest an upload child lives.
#[cfg(feature = "upload")]
pub const CHILD_DEADLINE: Duration = Duration::from_secs(120);
/// How long an upload child waits for its host to exit before it starts (a long-running host
/// keeps its end of the pipe open; the child then goes ahead, still watching for a cancel).
#[cfg(feature = "upload")]
pub const PARENT_WAIT: Duration = Duration::from_secs(10);

static HOST_ENDPOINT: OnceLock<Endpoint> = OnceLock::new();
/// The host's end of its upload child's stdin: writing `cancel` to it, or the host's exit,
/// releases the child.
static CHILD_PIPE: Mutex<Option<ChildStdin>> = Mutex::new(None);

/// The endpoint the host tool passed to its start function in this process, if any (the
/// embedded consent commands use it).
pub fn host_endpoint() -> Option<&'static Endpoint> {
    HOST_ENDPOINT.get()
}

/// The UTC day of `unix`, `YYYY-MM-DD`.
pub fn day_of(unix: i64) -> String {
    clock::format_rfc3339(unix).chars().take(10).collect()
}

/// Called by the host's start (mode local or on, directory usable). One `stat` when the day's
/// token exists; otherwise claims the day, records the endpoint, and in mode on starts the
/// detached child. Never fails, prints or blocks.
pub(crate) fn at_start(
    layout: &Layout,
    endpoint: &Endpoint,
    mf: &ModeFile,
    ceiling: Mode,
    now: i64,
) {
    let _ = HOST_ENDPOINT.set(endpoint.clone());
    let state = LogState::new(layout, endpoint.origin());
    if mf.notify_uploads {
        print_notice(&state);
    }
    let day = day_of(now);
    let token = state.token(&day);
    if fs::symlink_metadata(&token).is_ok() {
        return;
    }
    if endpoint.check().is_err() || fs::create_dir_all(state.dir()).is_err() {
        return;
    }
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let claimed = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&token)
        .and_then(|mut f| f.write_all(nonce.as_bytes()));
    if claimed.is_err() {
        return;
    }
    state.remove_old_tokens(&day);
    note_lost_children(&state, &day);
    let _ = state.record_endpoint(endpoint);
    if any_consent(mf, ceiling) {
        spawn_child(layout, &state, endpoint, &day, &nonce);
    }
}

/// Whether the mode file and ceiling let any program upload at all (some program is on with a
/// consent on record, and the environment does not lower it).
pub fn any_consent(mf: &ModeFile, ceiling: Mode) -> bool {
    mode::effective(Mode::On, ceiling) == Mode::On && mf.any_consent()
}

/// The text kept in [`LogState::lost_child_file`] and the debug log when an upload child never
/// arrived.
fn lost_child_text(days: &[String]) -> String {
    format!(
        "the upload child started on {} never reached clearcount's start function: the tool \
         probably exits before calling it when run without arguments (a required subcommand \
         parsed first). Nothing was uploaded. The tool should call start before parsing its \
         arguments (docs/integration.md, \"Uploading\").\n",
        days.join(", ")
    )
}

/// Notes upload children of earlier days that never arrived (their markers are still there).
fn note_lost_children(state: &LogState, today: &str) {
    let days = state.lost_children(today);
    if days.is_empty() {
        return;
    }
    let text = lost_child_text(&days);
    support::debug_log(text.trim_end());
    let _ = crate::report::write_atomic(&state.lost_child_file(), text.as_bytes());
    for d in &days {
        let _ = fs::remove_file(state.child_marker(d));
    }
}

/// Tells the upload child this process started, if any, to give up: a consent command is about
/// to change consent. Called by the consent commands before they change anything, so that a
/// consent command never starts an upload. Never blocks.
pub fn cancel_upload_child() {
    let pipe = CHILD_PIPE.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(mut pipe) = pipe {
        let _ = pipe.write_all(b"cancel\n");
    }
}

/// The upload child of a host that links the upload code: its own executable, marked.
#[cfg(feature = "upload")]
fn child_command(_layout: &Layout, _endpoint: &Endpoint, marker: &str) -> Option<Command> {
    let exe = std::env::current_exe().ok()?;
    let mut cmd = Command::new(exe);
    cmd.env(CHILD_ENV, marker);
    Some(cmd)
}

/// The upload child of a recording-only host: the `clearcount` command.
#[cfg(not(feature = "upload"))]
fn child_command(layout: &Layout, endpoint: &Endpoint, marker: &str) -> Option<Command> {
    let Some(program) = find_clearcount_command() else {
        support::debug_log(
            "no `clearcount` command beside this tool or on PATH: nothing is uploaded today",
        );
        return None;
    };
    let mut cmd = Command::new(program);
    cmd.args(["upload", "--child", marker, "--server", &endpoint.server])
        .args(["--log-key", &endpoint.log_key])
        .env(crate::DIR_ENV, layout.root());
    Some(cmd)
}

/// The `clearcount` command beside the running executable, else the first on `PATH`.
#[cfg(not(feature = "upload"))]
fn find_clearcount_command() -> Option<std::path::PathBuf> {
    let name = format!("clearcount{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(&name)));
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    beside
        .into_iter()
        .chain(on_path.into_iter().map(|d| d.join(&name)))
        .find(|p| is_executable(p))
}

#[cfg(not(feature = "upload"))]
fn is_executable(p: &std::path::Path) -> bool {
    let Ok(m) = fs::metadata(p) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        m.is_file() && m.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        m.is_file()
    }
}

fn spawn_child(layout: &Layout, state: &LogState, endpoint: &Endpoint, day: &str, nonce: &str) {
    let Some(mut cmd) = child_command(layout, endpoint, &format!("{day}:{nonce}")) else {
        return;
    };
    // A fresh marker, never written through whatever stands there (remove_file takes a link
    // itself away; create_new does not follow one).
    let marker = state.child_marker(day);
    let _ = fs::remove_file(&marker);
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
        .and_then(|mut f| f.write_all(nonce.as_bytes()));
    if written.is_err() {
        return;
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: Ctrl-C in the terminal does not reach it.
        cmd.process_group(0);
    }
    match cmd.spawn() {
        Ok(mut child) => {
            *CHILD_PIPE.lock().unwrap_or_else(|e| e.into_inner()) = child.stdin.take();
            // Reap it if the host outlives it; a short-lived host simply exits.
            let _ = std::thread::Builder::new()
                .name("clearcount-reap".into())
                .stack_size(32 * 1024)
                .spawn(move || {
                    let _ = child.wait();
                });
        }
        Err(e) => support::debug_log(&format!("cannot start the upload child: {e}")),
    }
}

/// Whether this process is a genuine upload child of `endpoint` in `layout`: its marker
/// (`DAY:NONCE`, from [`CHILD_ENV`] or `clearcount upload --child`) names an existing token of
/// that log holding the same nonce.
#[cfg(feature = "upload")]
pub(crate) fn is_child(layout: &Layout, endpoint: &Endpoint, marker: &str) -> bool {
    let Some((day, nonce)) = marker.split_once(':') else {
        return false;
    };
    if day.len() != 10 || nonce.is_empty() {
        return false;
    }
    let state = LogState::new(layout, endpoint.origin());
    let genuine = support::read_small(&state.token(day), 256)
        .ok()
        .flatten()
        .is_some_and(|t| t == nonce.as_bytes());
    if genuine {
        let _ = fs::remove_file(state.child_marker(day));
    }
    genuine
}

/// Set in an upload child when its host asked it to give up.
#[cfg(feature = "upload")]
static CANCELLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process is an upload child whose host asked it to give up (checked by the run
/// before each request).
#[cfg(feature = "upload")]
pub fn cancelled() -> bool {
    CANCELLED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Watches the child's stdin, the host's pipe: `cancel` sets [`cancelled`]; the end of the input
/// (the host exited or let go) releases the child. Returns once the host let go or after
/// [`PARENT_WAIT`], whichever comes first; the watch goes on in the background.
#[cfg(feature = "upload")]
pub(crate) fn wait_for_host() {
    use std::io::Read as _;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let watcher = std::thread::Builder::new()
        .name("clearcount-host".into())
        .stack_size(32 * 1024)
        .spawn(move || {
            let mut input = Vec::new();
            let _ = std::io::stdin().lock().take(64).read_to_end(&mut input);
            if String::from_utf8_lossy(&input).contains("cancel") {
                CANCELLED.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            let _ = tx.send(());
        });
    if watcher.is_ok() {
        let _ = rx.recv_timeout(PARENT_WAIT);
    }
}

/// Prints the one-line notice of an upload on stderr (only when the user turned notices on),
/// once.
fn print_notice(state: &LogState) {
    let path = state.notice_file();
    let Some(text) = support::read_kept(&path, 4096) else {
        return;
    };
    let text = String::from_utf8_lossy(&text);
    if fs::remove_file(&path).is_err() {
        return;
    }
    let week = text.split_whitespace().next().unwrap_or("?");
    // The host's own `telemetry` commands when it embeds them, else the `clearcount` command.
    #[cfg(feature = "cli")]
    let me = crate::cli::invoked_as();
    #[cfg(not(feature = "cli"))]
    let me = "clearcount";
    eprintln!(
        "{me}: uploaded the privatized report of week {week}; see exactly what was sent with `{me} status` (notices: `{me} notify off`)"
    );
}

/// Every endpoint recorded in `layout` (by host tools' start, or `clearcount on --server`).
pub fn recorded_endpoints(layout: &Layout) -> Vec<Endpoint> {
    state::logs(layout)
        .iter()
        .filter_map(LogState::endpoint)
        .collect()
}
