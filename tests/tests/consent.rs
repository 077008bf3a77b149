//! Consent that means exactly what the user said (DESIGN.md sections 3 and 4), with two real
//! tools (`greet`, and `wave`, a clap tool with a required subcommand), the real `clearcount`
//! command and the real server on loopback.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use clearcount_tests::*;

const WAIT: Duration = Duration::from_secs(60);

/// greet's config plus the program `wave` (counters `waves` and `hand`).
fn greet_and_wave_config() -> String {
    greet_config(1.0)
        + r#"
[[program]]
name = "wave"
versions = ">=0.1.0"

[[program.counter]]
name = "waves"
kind = "count"
buckets = [0, 1, 10]
epsilon = 1.0
description = "How many times wave waved in the week."
rationale = "Is waving popular?"
owner = "maintainer@example.org"
link = "https://example.org/issues/3"
expires = "2099-06-30"

[[program.counter]]
name = "hand"
kind = "category"
labels = ["left", "right"]
epsilon = 1.0
description = "Which hand waves most."
rationale = "Is --left worth keeping?"
owner = "maintainer@example.org"
link = "https://example.org/issues/4"
expires = "2099-06-30"
"#
}

/// greet's config with one more counter, `names`, sent without randomized response.
fn greet_config_with_names() -> String {
    greet_config(1.0)
        + r#"
[[program.counter]]
name = "names"
kind = "count"
buckets = [0, 1, 2, 10]
description = "How many names greet was given in the week."
rationale = "Do people greet crowds?"
owner = "maintainer@example.org"
link = "https://example.org/issues/5"
expires = "2099-06-30"
"#
}

/// A log holding `configs` and the real server serving it with `--today today`.
struct Setup {
    dir: std::path::PathBuf,
    log: std::path::PathBuf,
    data: std::path::PathBuf,
    key: String,
    signer: clearcount_config_log::note::Signer,
    _tmp: tempfile::TempDir,
}

impl Setup {
    fn new(configs: &[&str]) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let signer = signer();
        let log = tmp.path().join("log");
        make_log(&log, &signer, configs);
        Setup {
            dir: tmp.path().join("cc"),
            data: tmp.path().join("data"),
            key: signer.verifier().to_string(),
            log,
            signer,
            _tmp: tmp,
        }
    }

    fn serve(&self, today: &str) -> Server {
        Server::start(&self.log, &self.data, today)
    }
}

fn wave(dir: &Path, now: &str, ep: Option<(&str, &str)>, args: &[&str]) -> Output {
    command(&wave_bin(), dir, now, ep)
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{o:?}");
    stdout(o)
}

fn mode_file(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("mode")).unwrap_or_default()
}

/// Runs greet at `now` so that it records but starts no upload child (the environment keeps
/// it local).
fn record(dir: &Path, now: &str) {
    let out = command(&greet_bin(), dir, now, None)
        .env("CLEARCOUNT_MODE", "local")
        .arg("alice")
        .output()
        .unwrap();
    assert_eq!(ok(&out), "Hello, alice!\n");
}

/// How many upload children ended in `dir`, whether they ran or gave up.
fn children_ended(dir: &Path) -> usize {
    let log = std::fs::read_to_string(dir.join("debug.log")).unwrap_or_default();
    log.matches("upload: run finished").count()
        + log
            .matches("upload: a consent command ran in the host")
            .count()
}

fn wait_children(dir: &Path, n: usize) {
    let end = std::time::Instant::now() + WAIT;
    while children_ended(dir) < n {
        assert!(
            std::time::Instant::now() < end,
            "upload child {n} did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes the day's token so that the next process is the first of a day again.
fn new_day(dir: &Path) {
    for e in std::fs::read_dir(upload_state(dir)).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("token-") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
}

#[test]
fn consent_is_per_program() {
    let s = Setup::new(&[&greet_and_wave_config()]);
    let server = s.serve("2026-11-18");
    let url = server.url();
    let ep = Some((url.as_str(), s.key.as_str()));
    let dir = &s.dir;
    let now = "2026-11-18T10:00:00Z";
    ok(&greet(dir, now, ep, &["alice"]));
    ok(&wave(dir, now, ep, &["hello", "bob"]));

    // greet's own command opts in greet alone, under the config it showed.
    let on = ok(&greet(dir, now, ep, &["telemetry", "on", "--yes"]));
    assert!(on.contains("Opting in program greet."), "{on}");
    assert!(on.contains("counter invocations"), "{on}");
    assert!(!on.contains("counter waves"), "wave's counters shown: {on}");
    assert!(
        on.contains(&format!(
            "clearcount is on for greet under config 0 of log {ORIGIN}"
        )),
        "{on}"
    );
    let mode = mode_file(dir);
    assert!(
        mode.contains("program greet on 2026-11-18T10:00:00Z\n"),
        "{mode}"
    );
    assert!(
        mode.contains(&format!("consent greet {ORIGIN} 0\n")),
        "{mode}"
    );
    assert!(
        !mode.contains("wave") && !mode.contains("\nmode "),
        "{mode}"
    );
    let status = ok(&clearcount(dir, now, &["status"]));
    assert!(
        status.contains(&format!(
            "  greet: on (since 2026-11-18T10:00:00Z), agreed to config 0 of log {ORIGIN}"
        )),
        "{status}"
    );
    assert!(
        status.contains("  wave: local (as every program)"),
        "{status}"
    );

    // `clearcount on` lists the programs of every verified config and opts in those
    // confirmed: greet is already on under that config, wave is added.
    let on = ok(&clearcount(dir, now, &["on", "--yes"]));
    assert!(on.contains("counter waves"), "{on}");
    assert!(
        on.contains("clearcount is on for wave under config 0"),
        "{on}"
    );
    assert!(!on.contains("clearcount is on for greet"), "{on}");
    assert!(mode_file(dir).contains(&format!("consent wave {ORIGIN} 0\n")));

    // A tool's own `off` lowers that tool alone, and its purge deletes that tool's data only.
    let off = ok(&greet(dir, now, ep, &["telemetry", "off", "--purge"]));
    assert!(off.contains("clearcount is off for program greet"), "{off}");
    assert!(off.contains("counter file"), "{off}");
    let mode = mode_file(dir);
    assert!(mode.contains("program greet off"), "{mode}");
    assert!(!mode.contains("consent greet"), "{mode}");
    assert!(
        mode.contains(&format!("consent wave {ORIGIN} 0\n")),
        "{mode}"
    );
    let view = ok(&clearcount(dir, now, &["view"]));
    assert!(view.contains("wave 0.1.0"), "{view}");
    assert!(!view.contains("greet 0.1.0"), "{view}");
}

#[test]
fn on_that_cannot_fetch_and_verify_changes_nothing() {
    let s = Setup::new(&[&greet_config(1.0)]);
    let dir = &s.dir;
    let now = "2026-11-18T10:00:00Z";
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let ep = Some((closed.as_str(), s.key.as_str()));
    ok(&greet(dir, now, ep, &["alice"]));
    for cmd in [&["telemetry", "on", "--yes"][..], &["telemetry", "on"]] {
        let out = greet(dir, now, ep, cmd);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("could not fetch and verify the config"),
            "{err}"
        );
        assert!(err.contains("Nothing changed."), "{err}");
        assert!(!dir.join("mode").exists(), "the mode file was written");
    }
    // The same from the clearcount command, with a server that answers but a wrong key.
    let server = s.serve("2026-11-18");
    let other = signer().verifier().to_string();
    let out = clearcount(
        dir,
        now,
        &[
            "on",
            "--yes",
            "--server",
            &server.url(),
            "--log-key",
            &other,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!dir.join("mode").exists());
}

#[test]
fn off_as_the_first_command_of_a_day_never_uploads() {
    let s = Setup::new(&[&greet_config(1.0)]);
    let server = s.serve("2026-11-18");
    let url = server.url();
    let ep = Some((url.as_str(), s.key.as_str()));
    let dir = &s.dir;
    // Opted in before week 2026-11-09, which is recorded and due from 2026-11-16 on.
    set_mode(dir, "on", "2026-11-08T12:00:00Z");
    record(dir, "2026-11-10T10:00:00Z");
    let now = "2026-11-18T10:00:00Z";
    let mut ended = 0;
    for round in 0..100 {
        set_mode(dir, "on", "2026-11-08T12:00:00Z");
        if round > 0 {
            new_day(dir);
        }
        let out = greet(dir, now, ep, &["telemetry", "off"]);
        assert!(ok(&out).contains("clearcount is off for program greet"));
        ended += 1;
        wait_children(dir, ended);
    }
    assert!(
        server.stored().is_empty(),
        "a report left after `off`: {:?}",
        server.stored()
    );
    // The same set-up with an ordinary command as the day's first does upload: the test above
    // could have failed.
    set_mode(dir, "on", "2026-11-08T12:00:00Z");
    new_day(dir);
    ok(&greet(dir, now, ep, &["bob"]));
    wait_children(dir, ended + 1);
    assert_eq!(server.stored().len(), 1, "{}", server.output());
}

#[test]
fn a_config_that_asks_for_more_waits_for_a_new_yes() {
    let s = Setup::new(&[&greet_config(1.0)]);
    let dir = &s.dir;
    {
        // Opt in under config 0, shown by the tool's own command.
        let server = s.serve("2026-11-05");
        let url = server.url();
        let ep = Some((url.as_str(), s.key.as_str()));
        ok(&greet(dir, "2026-11-05T10:00:00Z", ep, &["alice"]));
        ok(&greet(
            dir,
            "2026-11-05T10:00:00Z",
            ep,
            &["telemetry", "on", "--yes"],
        ));
    }
    // Config 1 adds a counter sent without randomized response.
    let mut log = clearcount_config_log::store::LogStore::open(&s.log).unwrap();
    log.append_config(
        greet_config_with_names().as_bytes(),
        &s.signer,
        day("2020-01-01"),
    )
    .unwrap();
    let server = s.serve("2026-12-01");
    let url = server.url();
    let ep = Some((url.as_str(), s.key.as_str()));
    ok(&greet(dir, "2026-11-10T10:00:00Z", ep, &["alice", "bob"]));
    // Week 2026-11-09 is due: the child verifies config 1, which asks for more: nothing sent.
    ok(&greet(dir, "2026-11-17T10:00:00Z", ep, &["carol"]));
    assert!(wait_runs(dir, 2, WAIT), "no upload child ran");
    assert!(server.stored().is_empty(), "{:?}", server.stored());
    let status = ok(&clearcount(dir, "2026-11-17T11:00:00Z", &["status"]));
    assert!(
        status.contains("pending: config 1 asks for more than config 0"),
        "{status}"
    );
    assert!(
        status.contains("new counter names (labels 0, 1, 2, 10), NO randomized response"),
        "{status}"
    );
    let dry = ok(&clearcount(
        dir,
        "2026-11-17T11:00:00Z",
        &["upload", "--dry-run"],
    ));
    assert!(
        dry.contains("greet: config 1 asks for more than config 0"),
        "{dry}"
    );

    // `greet telemetry on` shows exactly what is new, and records config 1.
    let on = ok(&greet(
        dir,
        "2026-11-17T12:00:00Z",
        ep,
        &["telemetry", "on", "--yes"],
    ));
    assert!(
        on.contains("greet: you agreed to config 0. What config 1 asks for beyond it:"),
        "{on}"
    );
    assert!(
        on.contains("  - new counter names (labels 0, 1, 2, 10), NO randomized response"),
        "{on}"
    );
    assert!(mode_file(dir).contains(&format!("consent greet {ORIGIN} 1\n")));
    // The next whole week is reported under config 1.
    ok(&greet(dir, "2026-11-24T10:00:00Z", ep, &["dave"]));
    ok(&greet(dir, "2026-12-01T10:00:00Z", ep, &["erin"]));
    assert!(wait_runs(dir, 4, WAIT), "no upload child ran");
    let stored = server.stored();
    assert_eq!(stored.len(), 1, "{stored:?}\n{}", server.output());
    let r: serde_json::Value = serde_json::from_str(&stored[0]).unwrap();
    assert_eq!(r["week"], "2026-11-23");
    assert_eq!(r["config"]["index"], 1);
    assert_eq!(r["programs"][0]["counters"]["names"], "1");
}

#[test]
fn two_due_weeks_leave_on_two_connections_on_two_days_and_purge_leaves_the_mode_file() {
    let s = Setup::new(&[&greet_config(1.0)]);
    let server = s.serve("2026-11-18");
    let proxy = ConnProxy::start(server.addr);
    let url = proxy.url();
    let ep = Some((url.as_str(), s.key.as_str()));
    let dir = &s.dir;
    set_mode(dir, "on", "2026-11-01T12:00:00Z");
    // Two weeks recorded, both due at once.
    record(dir, "2026-11-03T10:00:00Z");
    record(dir, "2026-11-10T10:00:00Z");
    ok(&greet(dir, "2026-11-17T10:00:00Z", ep, &["carol"]));
    assert!(wait_runs(dir, 1, WAIT));
    let weeks = |stored: Vec<String>| -> Vec<String> {
        let mut w: Vec<String> = stored
            .iter()
            .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap()["week"].to_string())
            .collect();
        w.sort();
        w
    };
    let debug = || std::fs::read_to_string(dir.join("debug.log")).unwrap_or_default();
    assert_eq!(weeks(server.stored()), ["\"2026-11-02\""], "{}", debug());
    assert_eq!(proxy.uploads_per_connection(), [1]);
    // The next day's run sends the other week, on a connection of its own.
    ok(&greet(dir, "2026-11-18T10:00:00Z", ep, &["dave"]));
    assert!(wait_runs(dir, 2, WAIT));
    assert_eq!(weeks(server.stored()), ["\"2026-11-02\"", "\"2026-11-09\""]);
    assert_eq!(proxy.uploads_per_connection(), [1, 1]);

    // `off --purge` for every program deletes everything but the mode file, and says what.
    let out = ok(&clearcount(
        dir,
        "2026-11-18T11:00:00Z",
        &["off", "--purge"],
    ));
    assert!(out.contains("Deleted:"), "{out}");
    assert!(
        out.contains("upload state, sent copies and verified configs"),
        "{out}"
    );
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["mode"]);
}

#[test]
fn a_tool_that_parses_first_is_told_why_it_never_uploads() {
    let s = Setup::new(&[&greet_and_wave_config()]);
    let server = s.serve("2026-11-19");
    let url = server.url();
    let ep = Some((url.as_str(), s.key.as_str()));
    let dir = &s.dir;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("mode"),
        format!("program wave on 2026-11-01T00:00:00Z\nconsent wave {ORIGIN} 0\n"),
    )
    .unwrap();
    let parse_first = |now: &str| {
        let out = command(&wave_bin(), dir, now, ep)
            .env("WAVE_PARSE_FIRST", "1")
            .args(["hello", "ann"])
            .output()
            .unwrap();
        assert_eq!(ok(&out), "*waves at ann*\n");
        assert!(out.stderr.is_empty(), "{out:?}");
    };
    parse_first("2026-11-10T10:00:00Z");
    // Its upload child (the tool run without arguments) stops at clap's error; the next day's
    // first run finds that it never arrived.
    parse_first("2026-11-17T10:00:00Z");
    parse_first("2026-11-18T10:00:00Z");
    assert!(server.stored().is_empty());
    let status = ok(&clearcount(dir, "2026-11-18T11:00:00Z", &["status"]));
    assert!(
        status.contains("upload child: the upload child started on 2026-11-17 never reached"),
        "{status}"
    );
    let log = std::fs::read_to_string(dir.join("debug.log")).unwrap();
    assert!(log.contains("call start before parsing its"), "{log}");
    // Started before parsing, the same tool uploads.
    ok(&wave(dir, "2026-11-19T10:00:00Z", ep, &["hello", "ann"]));
    assert!(wait_runs(dir, 1, WAIT), "no upload child ran");
    assert_eq!(server.stored().len(), 1, "{}", server.output());
}
