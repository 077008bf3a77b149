//! A server that is down, answers 500, answers 400, or answers after 10 seconds: the host
//! tool's wall time does not change (the upload runs in a detached child), and retries follow
//! the rules: 2xx done, 4xx dropped for good, anything else retried on a later day with the
//! very same report.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clearcount_tests::*;

const WAIT: Duration = Duration::from_secs(60);
/// Far above greet's own run time (a few milliseconds), far below the 10 s of the slow server.
const HOST_LIMIT: Duration = Duration::from_millis(1500);

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    log_dir: PathBuf,
    key: String,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cc");
    let log_dir = tmp.path().join("log");
    let signer = signer();
    make_log(&log_dir, &signer, &[&greet_config(1.0)]);
    let key = signer.verifier().to_string();
    set_mode(&dir, "on", "2026-11-08T12:00:00Z");
    Env {
        _tmp: tmp,
        dir,
        log_dir,
        key,
    }
}

fn fake(e: &Env, status: u16, delay: Duration) -> FakeServer {
    FakeServer::start(Behaviour {
        log_dir: e.log_dir.clone(),
        config_override: HashMap::new(),
        upload_status: status,
        upload_delay: delay,
    })
}

/// Runs greet and checks it behaved and returned quickly; returns its wall time.
fn timed_greet(e: &Env, now: &str, url: &str) -> Duration {
    let t = Instant::now();
    let o = greet(&e.dir, now, Some((url, &e.key)), &["alice"]);
    let took = t.elapsed();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(stdout(&o), "Hello, alice!\n");
    assert!(o.stderr.is_empty(), "{o:?}");
    assert!(took < HOST_LIMIT, "greet took {took:?} at {now}");
    took
}

/// Records week 2026-11-09, then starts the day of 2026-11-17 (the week is due).
fn record_then_due(e: &Env, url: &str) {
    timed_greet(e, "2026-11-10T10:00:00Z", url);
    assert!(wait_runs(&e.dir, 1, WAIT));
    timed_greet(e, "2026-11-17T10:00:00Z", url);
    assert!(wait_runs(&e.dir, 2, WAIT), "no upload child finished");
}

fn week_file(e: &Env, suffix: &str) -> bool {
    upload_state(&e.dir)
        .join(format!("weeks/2026-11-09.{suffix}"))
        .exists()
}

#[test]
fn answer_500_is_retried_on_a_later_day_with_the_same_report() {
    let e = env();
    let s = fake(&e, 500, Duration::ZERO);
    record_then_due(&e, &s.url());
    assert_eq!(s.posts().len(), 1);
    assert!(week_file(&e, "pending.json"));
    // Same day: no second attempt.
    timed_greet(&e, "2026-11-17T15:00:00Z", &s.url());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(finished_runs(&e.dir), 2);
    assert_eq!(s.posts().len(), 1);
    // Next day the server works: the identical report (same x, same randomized labels).
    s.set(|b| b.upload_status = 200);
    timed_greet(&e, "2026-11-18T10:00:00Z", &s.url());
    assert!(wait_runs(&e.dir, 3, WAIT));
    let posts = s.posts();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0], posts[1], "a retry must resend the same report");
    assert!(week_file(&e, "sent.json"));
    // And never again.
    timed_greet(&e, "2026-11-19T10:00:00Z", &s.url());
    assert!(wait_runs(&e.dir, 4, WAIT));
    assert_eq!(s.posts().len(), 2);
}

#[test]
fn answer_400_is_dropped_and_never_retried() {
    let e = env();
    let s = fake(&e, 400, Duration::ZERO);
    record_then_due(&e, &s.url());
    assert_eq!(s.posts().len(), 1);
    assert!(week_file(&e, "rejected.json"));
    s.set(|b| b.upload_status = 200);
    timed_greet(&e, "2026-11-18T10:00:00Z", &s.url());
    assert!(wait_runs(&e.dir, 3, WAIT));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.posts().len(), 1, "a refused report was retried");
    let status = stdout(&clearcount(&e.dir, "2026-11-18T11:00:00Z", &["status"]));
    assert!(status.contains("refused by the server"), "{status}");
}

#[test]
fn server_down_is_retried_on_a_later_day() {
    let e = env();
    let down = format!("http://127.0.0.1:{}", closed_port());
    record_then_due(&e, &down);
    assert!(!week_file(&e, "sent.json"));
    let s = fake(&e, 200, Duration::ZERO);
    timed_greet(&e, "2026-11-18T10:00:00Z", &s.url());
    assert!(wait_runs(&e.dir, 3, WAIT));
    assert_eq!(s.posts().len(), 1);
    assert!(week_file(&e, "sent.json"));
}

#[test]
fn a_server_answering_after_10_seconds_does_not_slow_the_host() {
    let e = env();
    let s = fake(&e, 200, Duration::from_secs(10));
    let t = Instant::now();
    record_then_due(&e, &s.url());
    // The child waited for the slow answer; the host did not.
    assert!(t.elapsed() >= Duration::from_secs(10));
    assert_eq!(s.posts().len(), 1);
    assert!(week_file(&e, "sent.json"));
}
