//! Weekly reduction, retention, and a long-running process switching files at the week's end.
// The example host tool `greet` needs the `cli` feature.
#![cfg(feature = "cli")]

mod common;

use std::path::Path;

use clearcount::{Layout, LocalReport, Week};
use common::{assert_greeted, command, example};

fn greet_at(dir: &Path, now: &str) {
    let out = command(&example("greet"), Some(dir))
        .env("CLEARCOUNT_TEST_NOW", now)
        .arg("alice")
        .output()
        .unwrap();
    assert_greeted(&out);
}

#[test]
fn ended_weeks_become_reports_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path());
    for _ in 0..3 {
        greet_at(dir.path(), "2026-11-18T12:00:00Z");
    }
    greet_at(dir.path(), "2026-11-22T23:59:00Z"); // Sunday evening, same week
    // Monday of the next week, within the grace hour: not reduced yet.
    greet_at(dir.path(), "2026-11-23T00:10:00Z");
    assert!(!layout.report(Week::parse("2026-11-16").unwrap()).exists());
    // Later that Monday: reduced once the marker says it is due.
    greet_at(dir.path(), "2026-11-23T12:00:00Z");
    let w = Week::parse("2026-11-16").unwrap();
    let r = LocalReport::parse(&std::fs::read(layout.report(w)).unwrap()).unwrap();
    assert_eq!(r.week, "2026-11-16");
    assert_eq!(r.programs.len(), 1);
    let p = &r.programs[0];
    assert_eq!(
        (p.name.as_str(), p.os.as_str()),
        ("greet", std::env::consts::OS)
    );
    assert_eq!(p.counters["invocations"], 4);
    assert_eq!(p.counters["names"], 4);
    assert_eq!(p.counters["style:plain"], 4);
    // The counter file of that week is gone; this week's remains.
    let files: Vec<String> = clearcount::report::counter_files(&layout)
        .into_iter()
        .map(|(w, _)| w.to_string())
        .collect();
    assert_eq!(files, vec!["2026-11-23".to_string()]);
    // Nine weeks later: the week of 2026-11-23 is reduced, the first report is past the
    // default retention of 8 weeks and deleted.
    greet_at(dir.path(), "2027-01-18T12:00:00Z");
    assert!(!layout.report(w).exists());
    let w2 = Week::parse("2026-11-23").unwrap();
    let r2 = LocalReport::parse(&std::fs::read(layout.report(w2)).unwrap()).unwrap();
    assert_eq!(r2.programs[0].counters["invocations"], 2);
    greet_at(dir.path(), "2027-01-25T12:00:00Z");
    assert!(!layout.report(w2).exists());
}

#[test]
fn retention_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path());
    std::fs::write(layout.mode_file(), "retention-weeks 1\n").unwrap();
    greet_at(dir.path(), "2026-11-18T12:00:00Z");
    greet_at(dir.path(), "2026-11-25T12:00:00Z");
    assert!(layout.report(Week::parse("2026-11-16").unwrap()).exists());
    greet_at(dir.path(), "2026-12-02T12:00:00Z");
    assert!(!layout.report(Week::parse("2026-11-16").unwrap()).exists());
    assert!(layout.report(Week::parse("2026-11-23").unwrap()).exists());
}

#[test]
fn long_running_process_switches_files_when_the_week_ends() {
    let dir = tempfile::tempdir().unwrap();
    // Two seconds before the week ends; the process sleeps 3.5 s halfway through its loop.
    let out = command(&example("hammer"), Some(dir.path()))
        .env("CLEARCOUNT_TEST_NOW", "2026-11-22T23:59:58Z")
        .args(["10", "1", "3500"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let c = |week, name| common::count(dir.path(), week, "hammer", name);
    assert_eq!(c("2026-11-16", "hits"), 5);
    assert_eq!(c("2026-11-23", "hits"), 5);
    assert_eq!(c("2026-11-16", "kind:a"), 5);
    assert_eq!(c("2026-11-23", "kind:a"), 5);
    assert_eq!(c("2026-11-16", "early"), 5);
}

/// The threads of a live process, from `/proc`.
#[cfg(target_os = "linux")]
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

/// The week timer is a thread, so a short-lived process must not start it: it starts once a
/// process records often (here) or records after its first second (the test above).
#[cfg(target_os = "linux")]
#[test]
fn only_busy_or_long_lived_processes_start_the_week_timer() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    // 2 rounds are 6 increments; 100 rounds are 300, more than the 256 of a short-lived tool.
    for (rounds, expected) in [("2", 1), ("100", 2)] {
        let mut child = command(&example("hammer"), Some(dir.path()))
            .args([rounds, "1000"])
            .env("HAMMER_HOLD", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while line != "held\n" {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "hammer ended early");
        }
        let seen = threads(child.id());
        child.stdin.take().unwrap().write_all(b"\n").unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(seen, expected, "threads of hammer after {rounds} rounds");
    }
    let c = |name| common::count(dir.path(), common::WEEK, "hammer", name);
    assert_eq!(c("hits"), 102);
    assert_eq!(c("kind:a"), 102);
    assert_eq!(c("bytes"), 306);
}
