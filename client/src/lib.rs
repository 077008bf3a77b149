//! Privacy-preserving, opt-in usage counters for developer tools.
//!
//! clearcount records counters locally at nanosecond cost, in memory-mapped counter files shared
//! by every process of a program, reduces them to weekly reports on the user's machine, and (in
//! mode `on`, after the user opted in) uploads sampled, privatized weekly reports under a
//! public, logged config. Start with the guide for tool authors, `docs/getting-started.md` in
//! the repository.
//!
//! ```no_run
//! use clearcount::{Category, Counter};
//!
//! static RUNS: Counter = Counter::new("invocations");
//! static ENGINE: Category = Category::new("engine");
//!
//! fn main() {
//!     clearcount::start("greet", env!("CARGO_PKG_VERSION"));
//!     RUNS.inc();
//!     ENGINE.inc("pcre2"); // recorded as `engine:pcre2`
//! }
//! ```
//!
//! Starting never fails, prints, panics or blocks. Modes (`off`, `local` by default, `on`), the
//! environment variables `DO_NOT_TRACK`, `CLEARCOUNT_MODE` and `CLEARCOUNT_DIR`, and the
//! directory layout are described in [`mode`] and [`Layout`]. With default features off, this
//! crate is the recording library alone: a tool built that way still uploads (when the user
//! opted in) by handing the day's upload to the `clearcount` command, see [`upload`].
//!
//! The API for tool authors is what this documentation shows. A few more modules are public for
//! clearcount's own command, tests and benchmarks (the counter file and its format, the clock,
//! local reports, the upload's internals); they are hidden here and may change in any release.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Public for clearcount's own command, tests and benchmarks, not for tool authors: hidden from
// the documentation and not covered by semver (see the crate documentation).
#[doc(hidden)]
pub mod clock;
mod counter;
#[doc(hidden)]
pub mod file;
mod flock;
#[doc(hidden)]
pub mod format;
mod mapping;
pub mod mode;
#[doc(hidden)]
pub mod report;
mod runtime;
mod support;

#[cfg(feature = "cli")]
pub mod cli;
pub mod upload;

use std::path::{Path, PathBuf};

pub use clock::Week;
pub use counter::{Category, Counter, MAX_LABELS};
pub use mode::Mode;
pub use report::LocalReport;
#[doc(hidden)]
pub use runtime::__set_disabled_for_benchmarks;
pub use runtime::{Settings, recording, start};

/// The environment variable that overrides the clearcount directory.
pub const DIR_ENV: &str = "CLEARCOUNT_DIR";

/// The clearcount directory: `CLEARCOUNT_DIR`, else the platform's user config directory +
/// `clearcount` (e.g. `~/.config/clearcount` on Linux). Creates nothing.
///
/// Under `cargo test` ([`under_cargo_test`]) there is no default: a tool's own test suite,
/// which runs the tool's executable over and over, must not record into the developer's
/// directory. Without `CLEARCOUNT_DIR` it records nothing there (start turns recording off,
/// the consent commands fail and say why); a test that exercises clearcount sets
/// `CLEARCOUNT_DIR` to a temporary directory (or uses [`Settings::dir`]).
pub fn default_dir() -> Option<PathBuf> {
    match std::env::var_os(DIR_ENV) {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ if under_cargo_test() => None,
        _ => dirs::config_dir().map(|d| d.join("clearcount")),
    }
}

/// Whether this process runs under `cargo test` or `cargo nextest`: Cargo sets
/// `CARGO_BIN_EXE_<name>` in the environment of a package's integration tests (to find its
/// executables), and the executables they run inherit it; `cargo run` does not set it.
pub fn under_cargo_test() -> bool {
    std::env::vars_os().any(|(k, _)| k.as_encoded_bytes().starts_with(b"CARGO_BIN_EXE_"))
}

/// Whether `name` is a valid program name: `[a-z0-9][a-z0-9._/-]*`, at most 128 bytes.
pub fn valid_program_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._/-".contains(c))
}

/// Whether `v` is an acceptable version string: 1 to 64 bytes of `[A-Za-z0-9.+_-]`.
pub fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".+_-".contains(&c))
}

/// Where clearcount keeps its files, under one directory:
///
/// | path | what |
/// |---|---|
/// | `mode` | the mode, when it was set, per-program overrides, retention |
/// | `local/WEEK_PROGRAM@VERSION_OS_ARCH.count` | counter files of weeks not yet reduced |
/// | `local/next-reduction` | when the next weekly reduction is due |
/// | `local/.reduce.lock` | held by the one process reducing |
/// | `reports/WEEK.json` | local weekly reports |
/// | `debug.log` | problems clearcount met (it never prints), at most 256 KiB |
/// | `upload/LOG/` | the uploader's state per config log (the upload's state) |
/// | `NAME.set-aside-TIME-PID-N` | a symlink, FIFO, directory or oversized file found where one of the small files above belongs, moved out of the way (never followed, read whole or deleted) |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    /// The layout of [`default_dir`].
    pub fn default_layout() -> Option<Layout> {
        default_dir().map(Layout::new)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The mode file.
    pub fn mode_file(&self) -> PathBuf {
        self.root.join("mode")
    }

    /// The counter-file directory.
    pub fn local(&self) -> PathBuf {
        self.root.join("local")
    }

    /// The reports directory.
    pub fn reports(&self) -> PathBuf {
        self.root.join("reports")
    }

    /// The report of `week`.
    pub fn report(&self, week: Week) -> PathBuf {
        self.reports().join(format!("{week}.json"))
    }

    /// The debug log.
    pub fn debug_log(&self) -> PathBuf {
        self.root.join("debug.log")
    }

    /// The marker holding when the next reduction is due.
    pub fn reduce_marker(&self) -> PathBuf {
        self.local().join("next-reduction")
    }

    /// The uploader's directory (one subdirectory per config log).
    pub fn upload(&self) -> PathBuf {
        self.root.join("upload")
    }

    /// The lock taken while reducing.
    pub fn reduce_lock(&self) -> PathBuf {
        self.local().join(".reduce.lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_program_name("ripgrep"));
        assert!(valid_program_name("cargo-foo/bar.baz_1"));
        assert!(!valid_program_name("Rg"));
        assert!(!valid_program_name("-x"));
        assert!(!valid_program_name(""));
        assert!(valid_version("14.1.0-beta.1+build"));
        assert!(!valid_version("1 0"));
        assert!(!valid_version(""));
    }
}
