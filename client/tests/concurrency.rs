//! Several processes share one counter file: exact totals, and nothing completed is lost when
//! processes are killed with SIGKILL in the middle of their loops.
// The example host tool `greet` needs the `cli` feature.
#![cfg(feature = "cli")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use common::{WEEK, command, count, example};

#[test]
fn eight_processes_give_exact_totals() {
    let dir = tempfile::tempdir().unwrap();
    let hammer = example("hammer");
    let mut children: Vec<_> = (0..8)
        .map(|_| {
            command(&hammer, Some(dir.path()))
                .args(["100000", "50000"])
                .env("HAMMER_WAIT", "1")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // All started and waiting: release them together.
    let mut readers = Vec::new();
    for c in &mut children {
        let mut r = BufReader::new(c.stdout.take().unwrap());
        let mut line = String::new();
        for expected in ["recording true\n", "ready\n"] {
            line.clear();
            r.read_line(&mut line).unwrap();
            assert_eq!(line, expected);
        }
        readers.push(r);
    }
    for c in &mut children {
        c.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    for (c, mut r) in children.into_iter().zip(readers) {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut r, &mut rest).unwrap();
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
        assert!(rest.ends_with("done 100000\nfinished\n"), "{rest}");
    }
    assert_eq!(count(dir.path(), WEEK, "hammer", "hits"), 800_000);
    assert_eq!(count(dir.path(), WEEK, "hammer", "bytes"), 2_400_000);
    assert_eq!(count(dir.path(), WEEK, "hammer", "kind:a"), 800_000);
    // Five increments made before start, in each process.
    assert_eq!(count(dir.path(), WEEK, "hammer", "early"), 40);
    // One file for all of them.
    let files: Vec<_> = std::fs::read_dir(dir.path().join("local"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".count"))
        .collect();
    assert_eq!(files.len(), 1);
}

#[test]
fn sigkill_loses_no_completed_increment() {
    let dir = tempfile::tempdir().unwrap();
    let hammer = example("hammer");
    const EVERY: u64 = 1000;
    // Three processes killed at different points, all while incrementing.
    let targets = [20_000u64, 50_000, 120_000];
    let mut children: Vec<_> = targets
        .iter()
        .map(|_| {
            command(&hammer, Some(dir.path()))
                .args(["1000000000", &EVERY.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut reported = 0u64;
    for (child, target) in children.iter_mut().zip(targets) {
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut last = 0u64;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("done ") {
                last = n.parse().unwrap();
                if last >= target {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Lines printed before the kill may still be in the pipe.
        for line in lines {
            if let Some(n) = line.unwrap().strip_prefix("done ") {
                last = last.max(n.parse().unwrap());
            }
        }
        assert!(last >= target);
        reported += last;
    }
    let hits = count(dir.path(), WEEK, "hammer", "hits");
    let bytes = count(dir.path(), WEEK, "hammer", "bytes");
    let kind = count(dir.path(), WEEK, "hammer", "kind:a");
    let slack = EVERY * targets.len() as u64;
    assert!(
        hits >= reported && hits <= reported + slack,
        "hits {hits}, reported {reported}"
    );
    assert!(
        bytes >= 3 * reported && bytes <= 3 * (reported + slack),
        "bytes {bytes}"
    );
    assert!(kind >= reported && kind <= reported + slack, "kind {kind}");
}
