//! The upload path end to end with the real `clearcount-server` on loopback: consent dates,
//! the daily detached child, and exactly-once delivery under concurrent starts.

use std::time::Duration;

use clearcount_tests::*;

const WAIT: Duration = Duration::from_secs(60);

fn run_greet(dir: &std::path::Path, now: &str, ep: (&str, &str)) {
    let o = greet(dir, now, Some(ep), &["alice"]);
    assert!(o.status.success(), "greet failed: {o:?}");
    assert_eq!(stdout(&o), "Hello, alice!\n");
    assert!(o.stderr.is_empty(), "greet printed on stderr: {o:?}");
}

#[test]
fn a_week_recorded_in_mode_local_is_never_uploaded_after_switching_on() {
    let s = GreetServer::start("2026-11-24");
    let (dir, server, url, key) = (&s.dir, &s.server, s.url.as_str(), s.key.as_str());
    let ep = (url, key);

    set_mode(dir, "local", "2026-11-01T00:00:00Z");
    // Week 2026-11-09, recorded in mode local.
    run_greet(dir, "2026-11-10T10:00:00Z", ep);
    // Opt in on Thursday of that week, through the real command (it shows the verified config).
    let on = clearcount(
        dir,
        "2026-11-12T09:00:00Z",
        &["on", "--yes", "--server", url, "--log-key", key],
    );
    let text = stdout(&on);
    assert!(on.status.success(), "{on:?}");
    assert!(text.contains("counter invocations"), "{text}");
    assert!(
        text.contains("Is greet used interactively or in scripts?"),
        "{text}"
    );
    assert!(text.contains("epsilon 1"), "{text}");
    assert!(text.contains("sample rate 1"), "{text}");
    // Next week: the child runs, but week 2026-11-09 began before the opt-in.
    run_greet(dir, "2026-11-17T10:00:00Z", ep);
    assert!(wait_runs(dir, 1, WAIT), "no upload child ran");
    assert!(
        server.stored().is_empty(),
        "a week from before the opt-in was uploaded"
    );
    let dry = clearcount(dir, "2026-11-17T11:00:00Z", &["upload", "--dry-run"]);
    assert!(
        stdout(&dry).contains("week 2026-11-09: not sent: no program of this week was opted in"),
        "{}",
        stdout(&dry)
    );
    // The week after: week 2026-11-16 lies entirely after the opt-in and is sent.
    run_greet(dir, "2026-11-24T10:00:00Z", ep);
    assert!(wait_runs(dir, 2, WAIT), "no second upload child");
    let stored = server.stored();
    assert_eq!(stored.len(), 1, "{stored:?}\n{}", server.output());
    let r: serde_json::Value = serde_json::from_str(&stored[0]).unwrap();
    assert_eq!(r["week"], "2026-11-16");
    assert_eq!(r["programs"][0]["name"], "greet");
    assert_eq!(r["programs"][0]["version"], "0.1.0");
    // The copy kept is exactly what the server stored (the server stores canonical JSON of
    // the same content).
    let copy =
        std::fs::read_to_string(upload_state(dir).join("weeks/2026-11-16.sent.json")).unwrap();
    let copy: serde_json::Value = serde_json::from_str(&copy).unwrap();
    assert_eq!(copy, r);
    let status = stdout(&clearcount(dir, "2026-11-24T11:00:00Z", &["status"]));
    assert!(status.contains("week 2026-11-16: "), "{status}");
    assert!(!status.contains("week 2026-11-09: "), "{status}");
}

#[test]
fn a_week_after_opt_in_is_uploaded_exactly_once_with_eight_concurrent_starts() {
    let s = GreetServer::start("2026-11-18");
    let (dir, server, url, key) = (&s.dir, &s.server, s.url.as_str(), s.key.as_str());

    set_mode(dir, "on", "2026-11-08T12:00:00Z");
    run_greet(dir, "2026-11-10T10:00:00Z", (url, key));
    assert!(wait_runs(dir, 1, WAIT));
    assert!(server.stored().is_empty());
    for (round, now) in ["2026-11-17T10:00:00Z", "2026-11-18T10:00:00Z"]
        .iter()
        .enumerate()
    {
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    barrier.wait();
                    run_greet(dir, now, (url, key));
                });
            }
        });
        assert!(
            wait_runs(dir, 2 + round, WAIT),
            "round {round}: no child finished"
        );
        std::thread::sleep(Duration::from_millis(500));
        // One child a day, whatever the number of processes starting.
        assert_eq!(
            finished_runs(dir),
            2 + round,
            "more than one upload child ran"
        );
        let stored = server.stored();
        assert_eq!(stored.len(), 1, "round {round}: {stored:?}");
        assert!(
            stored[0].contains("\"week\":\"2026-11-09\""),
            "{}",
            stored[0]
        );
    }
}
