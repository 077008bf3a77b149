//! Shared helpers of the client's integration tests: locating the example programs, running
//! them in a clean environment, and snapshots of directory trees.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use clearcount::format::Meta;
use clearcount::{Layout, Week};

/// A fixed instant in the middle of a week (Wednesday), used as `CLEARCOUNT_TEST_NOW`.
pub const NOW: &str = "2026-11-18T12:00:00Z";
/// The week of [`NOW`].
pub const WEEK: &str = "2026-11-16";

static BUILD: Mutex<()> = Mutex::new(());

fn target_profile_dir() -> PathBuf {
    // .../target/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target profile directory")
        .to_path_buf()
}

/// The path of an example program, building it if `cargo test` did not.
pub fn example(name: &str) -> PathBuf {
    let dir = target_profile_dir();
    let path = dir.join("examples").join(name);
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "-p",
            "clearcount",
            "--features",
            "cli",
            "--example",
            name,
        ]);
        if release {
            cmd.arg("--release");
        }
        if let Some(t) = dir.parent() {
            cmd.env("CARGO_TARGET_DIR", t);
        }
        let st = cmd.status().expect("run cargo build --example");
        assert!(st.success(), "building example {name} failed");
    }
    path
}

/// A command for `program` with every clearcount-related variable removed and the directory
/// set to `dir` (when given).
pub fn command(program: &Path, dir: Option<&Path>) -> Command {
    let mut c = Command::new(program);
    for v in [
        "DO_NOT_TRACK",
        "CLEARCOUNT_MODE",
        "CLEARCOUNT_DIR",
        "CLEARCOUNT_TEST_NOW",
    ] {
        c.env_remove(v);
    }
    if let Some(d) = dir {
        c.env("CLEARCOUNT_DIR", d);
    }
    c.env("CLEARCOUNT_TEST_NOW", NOW);
    c
}

/// Runs the example host tool `greet` with `args` in `dir`.
pub fn greet(dir: &Path, args: &[&str]) -> Output {
    command(&example("greet"), Some(dir))
        .args(args)
        .output()
        .expect("run greet")
}

/// Asserts that `greet alice` behaved exactly as without clearcount.
pub fn assert_greeted(out: &Output) {
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "clearcount must print nothing"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello, alice!\n");
    assert_eq!(out.status.code(), Some(0), "greet's own exit code");
}

/// The metadata of greet's counter file in [`WEEK`].
pub fn greet_meta() -> Meta {
    Meta {
        program: "greet".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        os: std::env::consts::OS.into(),
        arch: std::env::consts::ARCH.into(),
        week: Week::parse(WEEK).unwrap(),
    }
}

/// The path of greet's counter file in [`WEEK`] under `dir`.
pub fn greet_file(dir: &Path) -> PathBuf {
    Layout::new(dir)
        .local()
        .join(clearcount::file::file_name(&greet_meta()))
}

/// The count of `counter` of `program` recorded so far in `week`.
pub fn count(dir: &Path, week: &str, program: &str, counter: &str) -> u64 {
    let (r, problems) =
        clearcount::report::week_in_progress(&Layout::new(dir), Week::parse(week).unwrap());
    assert!(problems.is_empty(), "{problems:?}");
    r.programs
        .iter()
        .filter(|p| p.name == program)
        .map(|p| p.counters.get(counter).copied().unwrap_or(0))
        .sum()
}

/// Every path under `root` with its kind and, for files, its length and modification time.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let desc = if m.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
            "dir".to_string()
        } else {
            format!("{} bytes, modified {:?}", m.len(), m.modified().ok())
        };
        out.insert(p, desc);
    }
    out
}
