//! A tool's own test suite never records into the developer's clearcount directory: under
//! `cargo test` (CARGO_BIN_EXE_* in the environment, inherited by the tool's executable) there
//! is no default directory; CLEARCOUNT_DIR still names one.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use clearcount_tests::{greet_bin, stdout};

/// Runs greet with HOME and XDG_CONFIG_HOME in `home` (where the default directory would be),
/// as a tool's integration test runs it: with `CARGO_BIN_EXE_greet` set.
fn greet_under_cargo_test(home: &Path, dir: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(greet_bin());
    for v in [
        "DO_NOT_TRACK",
        "CLEARCOUNT_MODE",
        "CLEARCOUNT_DIR",
        "GREET_TELEMETRY_SERVER",
        "GREET_TELEMETRY_LOG_KEY",
    ] {
        c.env_remove(v);
    }
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("CARGO_BIN_EXE_greet", greet_bin())
        .env("CLEARCOUNT_TEST_NOW", "2026-11-25T10:00:00Z")
        .stdin(Stdio::null());
    if let Some(d) = dir {
        c.env("CLEARCOUNT_DIR", d);
    }
    c.args(args).output().expect("run greet")
}

fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        1 + files(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn under_cargo_test_nothing_is_recorded_in_the_default_directory() {
    let home = tempfile::tempdir().unwrap();
    let o = greet_under_cargo_test(home.path(), None, &["alice"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o), "Hello, alice!\n");
    assert!(o.stderr.is_empty(), "{o:?}");
    assert_eq!(files(home.path()), 0, "something was written under HOME");
    // The consent commands say why they have no directory.
    let status = greet_under_cargo_test(home.path(), None, &["telemetry", "status"]);
    assert!(!status.status.success());
    let err = String::from_utf8_lossy(&status.stderr);
    assert!(
        err.contains("cargo test") && err.contains("CLEARCOUNT_DIR"),
        "{err}"
    );
    assert_eq!(files(home.path()), 0);
}

#[test]
fn under_cargo_test_clearcount_dir_still_names_a_directory() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("cc");
    let o = greet_under_cargo_test(home.path(), Some(&dir), &["alice"]);
    assert!(o.status.success(), "{o:?}");
    assert!(
        files(&dir.join("local")) > 0,
        "nothing recorded in CLEARCOUNT_DIR"
    );
    let view = greet_under_cargo_test(home.path(), Some(&dir), &["telemetry", "view"]);
    assert!(stdout(&view).contains("invocations"), "{view:?}");
}
