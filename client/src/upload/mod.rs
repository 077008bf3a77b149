//! Verified config, privatized weekly reports and the detached upload child (mode `on` only).
//!
//! With the `upload` feature (a default feature):
//!
//! - [`build`]: the upload report of a week, a pure function of the local report, the verified
//!   config and an RNG.
//! - [`verify`]: fetching the latest config from the log and verifying it (signature,
//!   consistency with the remembered checkpoint, inclusion); failures that are evidence against
//!   the log raise an alarm that blocks every upload until the user clears it.
//! - [`run`]: one upload run (reduce, decide each week, verify, build, send), used by the child,
//!   by `clearcount upload`, and in-process by simulations with an explicit directory and clock.
//!
//! Always, so that a recording-only tool can still hand its uploads on:
//!
//! - [`state`]: the files kept per log under `<dir>/upload/`.
//! - The launch at start. The host tool's start function (with [`crate::Settings::upload`])
//!   costs one `stat` of the day's token file on days when nothing is due. The first process of
//!   a day creates the token (exclusively: of any number of processes starting at once, exactly
//!   one wins), records the endpoint and, in mode `on`, starts the upload child detached, with
//!   stdin, stdout and stderr on the null device:
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

#[cfg(feature = "upload")]
pub mod build;
#[cfg(feature = "upload")]
pub mod run;
pub mod state;
#[cfg(feature = "upload")]
pub mod verify;

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
#[cfg(feature = "upload")]
use std::time::Duration;

use crate::clock;
use crate::mode::{self, Mode, ModeFile};
use crate::{Layout, runtime};

pub use state::{Endpoint, LogState};

/// The environment variable that marks the upload child. Its value names the day's token and
/// the nonce written in it, so a stray variable in a user's shell is ignored.
#[cfg(feature = "upload")]
pub const CHILD_ENV: &str = "CLEARCOUNT_UPLOAD_CHILD";
/// The longest an upload child lives.
#[cfg(feature = "upload")]
pub const CHILD_DEADLINE: Duration = Duration::from_secs(120);

static HOST_ENDPOINT: OnceLock<Endpoint> = OnceLock::new();

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
    let _ = state.record_endpoint(endpoint);
    if any_program_on(mf, ceiling) {
        spawn_child(layout, endpoint, &format!("{day}:{nonce}"));
    }
}

/// Whether the mode file and ceiling allow uploading for any program at all.
pub fn any_program_on(mf: &ModeFile, ceiling: Mode) -> bool {
    if mode::effective(Mode::On, ceiling) != Mode::On {
        return false;
    }
    mf.global.is_some_and(|g| g.mode == Mode::On)
        || mf.programs.values().any(|s| s.mode == Mode::On)
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
        runtime::debug_log(
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

fn spawn_child(layout: &Layout, endpoint: &Endpoint, marker: &str) {
    let Some(mut cmd) = child_command(layout, endpoint, marker) else {
        return;
    };
    cmd.stdin(Stdio::null())
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
            // Reap it if the host outlives it; a short-lived host simply exits.
            let _ = std::thread::Builder::new()
                .name("clearcount-reap".into())
                .stack_size(32 * 1024)
                .spawn(move || {
                    let _ = child.wait();
                });
        }
        Err(e) => runtime::debug_log(&format!("cannot start the upload child: {e}")),
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
    fs::read_to_string(state.token(day)).is_ok_and(|t| t == nonce)
}

/// The body of the upload child: one run, then exit. Never returns.
#[cfg(feature = "upload")]
pub(crate) fn child_main(layout: Layout, endpoint: Endpoint) -> ! {
    let _ = std::thread::Builder::new()
        .name("clearcount-deadline".into())
        .stack_size(32 * 1024)
        .spawn(|| {
            std::thread::sleep(CHILD_DEADLINE);
            std::process::exit(0);
        });
    runtime::set_debug_log(layout.debug_log());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let summary = run::run(
            &layout,
            &endpoint,
            &run::RunOptions::now(),
            &run::HttpTransport::new(),
        );
        for n in &summary.notes {
            runtime::debug_log(&format!("upload: {n}"));
        }
        for w in &summary.weeks {
            if w.body.is_some() || w.why.contains("retried") || w.why.contains("refused") {
                runtime::debug_log(&format!("upload: week {}: {}", w.week, w.why));
            }
        }
    }));
    if result.is_err() {
        runtime::debug_log("upload: the upload child panicked");
    }
    runtime::debug_log("upload: run finished");
    std::process::exit(0)
}

/// Prints the one-line notice of an upload on stderr (only when the user turned notices on),
/// once.
fn print_notice(state: &LogState) {
    let path = state.notice_file();
    let Ok(text) = fs::read_to_string(&path) else {
        return;
    };
    if fs::remove_file(&path).is_err() {
        return;
    }
    let week = text.split_whitespace().next().unwrap_or("?");
    eprintln!(
        "clearcount: uploaded the privatized report of week {week}; see exactly what was sent with `clearcount status` (notices: `clearcount notify off`)"
    );
}

/// Every endpoint recorded in `layout` (by host tools' start, or `clearcount on --server`).
pub fn recorded_endpoints(layout: &Layout) -> Vec<Endpoint> {
    state::logs(layout)
        .iter()
        .filter_map(LogState::endpoint)
        .collect()
}
