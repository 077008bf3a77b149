//! In modes off and local, a full run of the example tool and of `clearcount upload` opens no
//! network socket: checked with `strace -f -e trace=network` (every process, the upload child
//! included), with a positive control in mode on showing that the method sees sockets.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use clearcount_tests::*;

fn strace_available() -> bool {
    Command::new("strace")
        .args(["-f", "-e", "trace=network", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `program args` under strace (following children) and returns the trace.
fn traced(dir: &Path, now: &str, ep: (&str, &str), program: &Path, args: &[&str]) -> (String, i32) {
    let trace = dir.with_extension(format!("trace-{}", rand_suffix()));
    let mut c = command(Path::new("strace"), dir, now, Some(ep));
    c.args(["-f", "-qq", "-e", "trace=network", "-o"])
        .arg(&trace)
        .arg(program)
        .args(args);
    let o = c.output().expect("run strace");
    let code = o.status.code().unwrap_or(-1);
    // The upload child, if any, is detached: give it time to finish and flush the trace.
    std::thread::sleep(Duration::from_millis(1500));
    (std::fs::read_to_string(&trace).unwrap_or_default(), code)
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn inet(trace: &str) -> Vec<&str> {
    trace
        .lines()
        .filter(|l| l.contains("AF_INET") || l.contains("connect("))
        .collect()
}

#[test]
fn modes_off_and_local_open_no_socket() {
    if !strace_available() {
        eprintln!("SKIPPED: strace is not available (apt-get install -y strace)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let log_dir = tmp.path().join("log");
    let signer = signer();
    make_log(&log_dir, &signer, &[&greet_config(1.0)]);
    let key = signer.verifier().to_string();
    let fake = FakeServer::start(Behaviour {
        log_dir,
        config_override: HashMap::new(),
        upload_status: 200,
        upload_delay: Duration::ZERO,
    });
    let url = fake.url();
    let ep = (url.as_str(), key.as_str());
    for mode in ["off", "local", "on"] {
        let dir = tmp.path().join(mode);
        set_mode(&dir, mode, "2026-11-08T12:00:00Z");
        // A week recorded, then a day when an upload would be due, then `clearcount upload`.
        let (t1, c1) = traced(&dir, "2026-11-10T10:00:00Z", ep, &greet_bin(), &["alice"]);
        let (t2, c2) = traced(&dir, "2026-11-17T10:00:00Z", ep, &greet_bin(), &["alice"]);
        let (t3, c3) = traced(
            &dir,
            "2026-11-17T11:00:00Z",
            ep,
            &clearcount_bin(),
            &["upload", "--server", &url, "--log-key", &key],
        );
        assert_eq!((c1, c2, c3), (0, 0, 0), "{mode}");
        let all = format!("{t1}{t2}{t3}");
        if mode == "on" {
            // Positive control: the same method sees the upload child's connection.
            assert!(
                !inet(&all).is_empty(),
                "strace saw no socket in mode on:\n{all}"
            );
            assert_eq!(fake.posts().len(), 1);
        } else {
            assert!(inet(&all).is_empty(), "mode {mode} opened sockets:\n{all}");
        }
    }
    assert_eq!(fake.posts().len(), 1, "only mode on uploaded");
}
