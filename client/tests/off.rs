//! In mode off (and under DO_NOT_TRACK) the host tool creates no file and no directory.
// The example host tool `greet` needs the `cli` feature.
#![cfg(feature = "cli")]

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_greeted, command, example, tree};

/// Runs greet with HOME and XDG_CONFIG_HOME inside `home` (so the default directory is there
/// too) and the extra environment `env`; returns the tree of `home` before and after.
fn run_in_home(home: &Path, cc_dir: Option<&Path>, env: &[(&str, &str)]) {
    let before = tree(home);
    let mut c: Command = command(&example("greet"), cc_dir);
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"));
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.arg("alice").output().unwrap();
    assert_greeted(&out);
    assert_eq!(
        tree(home),
        before,
        "nothing created or written with {env:?}"
    );
}

#[test]
fn off_creates_nothing() {
    let home = tempfile::tempdir().unwrap();
    let cc = home.path().join("cc");
    for env in [
        &[("DO_NOT_TRACK", "1")][..],
        &[("DO_NOT_TRACK", "true")],
        &[("DO_NOT_TRACK", "yes please")],
        &[("CLEARCOUNT_MODE", "off")],
        &[("CLEARCOUNT_MODE", "off"), ("DO_NOT_TRACK", "0")],
    ] {
        run_in_home(home.path(), None, env);
        run_in_home(home.path(), Some(&cc), env);
    }
    // Nothing at all, not even the directory.
    assert!(std::fs::read_dir(home.path()).unwrap().next().is_none());
}

#[test]
fn do_not_track_zero_or_false_does_not_turn_off() {
    for v in ["", "0", "false"] {
        let home = tempfile::tempdir().unwrap();
        let cc = home.path().join("cc");
        let out = command(&example("greet"), Some(&cc))
            .env("DO_NOT_TRACK", v)
            .arg("alice")
            .output()
            .unwrap();
        assert_greeted(&out);
        assert!(common::greet_file(&cc).exists(), "DO_NOT_TRACK={v:?}");
    }
}

#[test]
fn mode_file_off_and_overrides() {
    let home = tempfile::tempdir().unwrap();
    let cc = home.path().join("cc");
    // `greet telemetry off` (the embedded consent command) writes the mode file for greet
    // alone (this very run was still recorded: it started before the command ran).
    let out = command(&example("greet"), Some(&cc))
        .args(["telemetry", "off"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("off for program greet"));
    let mode = std::fs::read_to_string(cc.join("mode")).unwrap();
    assert!(mode.contains("\nprogram greet off 20"), "{mode}");
    assert!(!mode.contains("\nmode "), "{mode}");
    run_in_home(home.path(), Some(&cc), &[]);
    // `--all` lowers every program from a tool's own command too.
    let out = command(&example("greet"), Some(&cc))
        .args(["telemetry", "off", "--all"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("off for every program"));
    let mode = std::fs::read_to_string(cc.join("mode")).unwrap();
    assert!(mode.contains("\nmode off 20"), "{mode}");

    // Global local, greet off: greet records nothing, hammer records.
    let cc = home.path().join("cc2");
    std::fs::create_dir_all(&cc).unwrap();
    std::fs::write(cc.join("mode"), "mode local\nprogram greet off\n").unwrap();
    run_in_home(home.path(), Some(&cc), &[]);
    let out = command(&example("hammer"), Some(&cc))
        .args(["3", "1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("recording true"));

    // CLEARCOUNT_MODE cannot raise: greet stays off.
    run_in_home(home.path(), Some(&cc), &[("CLEARCOUNT_MODE", "on")]);
    // A damaged mode file means off.
    let cc = home.path().join("cc3");
    std::fs::create_dir_all(&cc).unwrap();
    std::fs::write(cc.join("mode"), "mode maybe\n").unwrap();
    run_in_home(home.path(), Some(&cc), &[]);
}
