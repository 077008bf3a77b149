//! The `clearcount` command, run as a real process.
#![cfg(all(feature = "cli", feature = "upload"))]

mod common;

use std::path::Path;
use std::process::{Output, Stdio};

use clearcount::{Layout, LocalReport, Week};
use common::{command, greet};

fn cc(dir: &Path, args: &[&str]) -> Output {
    command(Path::new(env!("CARGO_BIN_EXE_clearcount")), Some(dir))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let top = text(&cc(dir.path(), &["--help"]).stdout);
    for sub in ["on", "off", "local", "status", "view", "export", "clean"] {
        assert!(top.contains(&format!("  {sub} ")), "{sub} in {top}");
        let out = cc(dir.path(), &[sub, "--help"]);
        assert!(out.status.success());
        let h = text(&out.stdout);
        assert!(h.contains("Usage: clearcount"), "{h}");
    }
    assert!(text(&cc(dir.path(), &["on", "--help"]).stdout).contains("--yes"));
    assert!(text(&cc(dir.path(), &["off", "--help"]).stdout).contains("--purge"));
    assert!(text(&cc(dir.path(), &["view", "--help"]).stdout).contains("--json"));
    assert!(text(&cc(dir.path(), &["export", "--help"]).stdout).contains("--week"));
    // Nothing was created by asking for help.
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn consent_commands() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path());
    // No server known: no config can be shown, so nothing changes and `on` fails, with or
    // without --yes.
    for args in [&["on"][..], &["on", "--yes"]] {
        let out = cc(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            text(&out.stderr).contains("no tool has told clearcount where it uploads"),
            "{out:?}"
        );
        assert!(text(&out.stderr).contains("nothing changed"), "{out:?}");
        assert!(!layout.mode_file().exists());
    }

    assert!(
        cc(dir.path(), &["off", "--program", "greet"])
            .status
            .success()
    );
    let status = text(&cc(dir.path(), &["status"]).stdout);
    assert!(
        status.contains("  greet: off (since 2026-11-18T12:00:00Z)"),
        "{status}"
    );
    assert!(
        !cc(dir.path(), &["off", "--program", "Bad Name"])
            .status
            .success()
    );

    // `local` for every program never raises one that is off.
    assert!(cc(dir.path(), &["local"]).status.success());
    let status = text(&cc(dir.path(), &["status"]).stdout);
    assert!(status.starts_with("mode: local (since"), "{status}");
    assert!(status.contains("  greet: off (since"), "{status}");
    assert!(
        cc(dir.path(), &["local", "--program", "greet"])
            .status
            .success()
    );
    let status = text(&cc(dir.path(), &["status"]).stdout);
    assert!(status.contains("  greet: local (since"), "{status}");

    // The environment's override is said first, in so many words.
    let out = command(
        Path::new(env!("CARGO_BIN_EXE_clearcount")),
        Some(dir.path()),
    )
    .env("DO_NOT_TRACK", "1")
    .arg("status")
    .output()
    .unwrap();
    let status = text(&out.stdout);
    assert!(
        status.starts_with("mode: off here: DO_NOT_TRACK"),
        "{status}"
    );
    assert!(status.contains("greet: local (since"), "{status}");
    assert!(status.contains("; off here (environment)"), "{status}");
}

#[test]
fn view_export_clean_purge() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path());
    for _ in 0..2 {
        assert!(greet(dir.path(), &["alice"]).status.success());
    }
    // The week in progress.
    let v = text(&cc(dir.path(), &["view"]).stdout);
    assert!(v.contains("week 2026-11-16 (in progress)"), "{v}");
    assert!(v.contains("invocations  2"), "{v}");
    let j: serde_json::Value =
        serde_json::from_slice(&cc(dir.path(), &["view", "--json"]).stdout).unwrap();
    assert_eq!(
        j["in_progress"]["programs"][0]["counters"]["invocations"],
        2
    );
    let out = cc(dir.path(), &["export", "--week", "2026-11-16"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not over yet"));

    // Next week: view reduces the ended week first, export prints it.
    let later = |args: &[&str]| {
        command(
            Path::new(env!("CARGO_BIN_EXE_clearcount")),
            Some(dir.path()),
        )
        .env("CLEARCOUNT_TEST_NOW", "2026-11-24T12:00:00Z")
        .args(args)
        .output()
        .unwrap()
    };
    let v = text(&later(&["view", "--week", "2026-11-16"]).stdout);
    assert!(v.contains("week 2026-11-16 (completed)"), "{v}");
    let exported = later(&["export", "--week", "2026-11-16"]);
    assert!(exported.status.success());
    let r = LocalReport::parse(&exported.stdout).unwrap();
    assert_eq!(r.programs[0].counters["invocations"], 2);
    let w = Week::parse("2026-11-16").unwrap();
    assert_eq!(exported.stdout, std::fs::read(layout.report(w)).unwrap());
    assert!(!later(&["export", "--week", "2026-11-09"]).status.success());
    assert!(!later(&["export", "--week", "2026-11-17"]).status.success());
    assert!(text(&later(&["clean"]).stdout).contains("nothing to do"));
    assert!(text(&later(&["status"]).stdout).contains("weekly reports: 2026-11-16"));

    // Purge one program, then everything.
    let out = later(&["off", "--purge", "--program", "greet"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!layout.report(w).exists());
    assert!(greet(dir.path(), &["alice"]).status.success()); // greet is off: no file
    assert!(clearcount::report::counter_files(&layout).is_empty());
    let out = later(&["off", "--purge"]);
    assert!(out.status.success());
    assert!(!layout.local().exists() && !layout.reports().exists());
    assert!(layout.mode_file().exists());
}

#[test]
fn clean_reduces_ended_weeks() {
    let dir = tempfile::tempdir().unwrap();
    assert!(greet(dir.path(), &["alice"]).status.success());
    let out = command(
        Path::new(env!("CARGO_BIN_EXE_clearcount")),
        Some(dir.path()),
    )
    .env("CLEARCOUNT_TEST_NOW", "2026-11-30T12:00:00Z")
    .arg("clean")
    .output()
    .unwrap();
    assert!(
        text(&out.stdout).contains("reduced week 2026-11-16"),
        "{out:?}"
    );
}
