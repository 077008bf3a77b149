//! A recording-only tool (clearcount without its default features) hands its daily upload to
//! the `clearcount` command: end to end with the real `clearcount-server` on loopback.

use std::path::Path;
use std::time::Duration;

use clearcount_tests::*;

const WAIT: Duration = Duration::from_secs(60);

/// Runs greet_lite with `PATH` set to `path` and checks it behaved like a plain tool.
fn run_lite(dir: &Path, now: &str, ep: (&str, &str), path: &Path) {
    let o = command(&greet_lite_bin(), dir, now, Some(ep))
        .env("PATH", path)
        .arg("alice")
        .output()
        .expect("run greet_lite");
    assert!(o.status.success(), "greet_lite failed: {o:?}");
    assert_eq!(stdout(&o), "Hello, alice!\n");
    assert!(o.stderr.is_empty(), "greet_lite printed on stderr: {o:?}");
}

#[test]
fn a_recording_only_tool_uploads_through_the_clearcount_command() {
    let lite = std::fs::read(greet_lite_bin()).expect("read greet_lite");
    for name in [&b"rustls"[..], b"ureq", b"clearcount_config_log"] {
        assert!(
            !lite.windows(name.len()).any(|w| w == name),
            "the recording-only build links {}",
            String::from_utf8_lossy(name)
        );
    }

    let s = GreetServer::start("2026-11-18");
    let (dir, server, url, key) = (&s.dir, &s.server, s.url.as_str(), s.key.as_str());
    let ep = (url, key);
    let with_clearcount = clearcount_bin().parent().unwrap().to_path_buf();

    set_mode(dir, "on", "2026-11-08T12:00:00Z");
    run_lite(dir, "2026-11-10T10:00:00Z", ep, &with_clearcount);
    assert!(wait_runs(dir, 1, WAIT), "no upload child ran");
    assert!(server.stored().is_empty(), "the week in progress was sent");

    // The next week: the child (`clearcount upload --child`) sends week 2026-11-09.
    run_lite(dir, "2026-11-17T10:00:00Z", ep, &with_clearcount);
    assert!(wait_runs(dir, 2, WAIT), "no second upload child");
    let stored = server.stored();
    assert_eq!(stored.len(), 1, "{stored:?}\n{}", server.output());
    let r: serde_json::Value = serde_json::from_str(&stored[0]).unwrap();
    assert_eq!(r["week"], "2026-11-09");
    assert_eq!(r["programs"][0]["name"], "greet");
    // A label after randomized response: present, whatever its value.
    assert!(
        r["programs"][0]["counters"]["invocations"].is_string(),
        "{r}"
    );
    let copy =
        std::fs::read_to_string(upload_state(dir).join("weeks/2026-11-09.sent.json")).unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&copy).unwrap(), r);

    // Without a `clearcount` command the tool still runs as usual; the day's upload is skipped
    // and the debug log says why.
    run_lite(dir, "2026-11-18T10:00:00Z", ep, &s.tmp.path().join("empty"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(finished_runs(dir), 2);
    let debug = std::fs::read_to_string(dir.join("debug.log")).unwrap();
    assert!(
        debug.contains("no `clearcount` command beside this tool or on PATH"),
        "{debug}"
    );

    // A stray or forged child invocation does nothing: no token of the day holds its nonce.
    let forged = clearcount(
        dir,
        "2026-11-18T11:00:00Z",
        &[
            "upload",
            "--child",
            "2026-11-18:1-2",
            "--server",
            url,
            "--log-key",
            key,
        ],
    );
    assert!(!forged.status.success());
    assert_eq!(finished_runs(dir), 2);
    assert_eq!(server.stored().len(), 1);
}
