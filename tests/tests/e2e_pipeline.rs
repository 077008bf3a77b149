//! The whole pipeline as people run it, with the built binaries only: `clearcount-log keygen`,
//! `init` and `append`; `clearcount-server serve`; the example host tool `greet` in separate
//! user directories; `clearcount on --yes`; the clock moved past the week's end; the detached
//! upload child; then the raw reports and the aggregates downloaded over HTTP and checked
//! against what each user recorded and kept.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clearcount_tests::e2e::{http_get, http_json, log_cmd};
use clearcount_tests::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);
const WEEK_A: &str = "2026-11-02";
const WEEK_B: &str = "2026-11-09";

/// A log made with the `clearcount-log` command: returns the signer key file and the verifier
/// key, after publishing each config in turn.
fn cli_log(tmp: &Path, log_dir: &Path, configs: &[String]) -> (PathBuf, String) {
    let key_file = tmp.join("signer.key");
    let k = log_cmd(&[
        "keygen",
        "--name",
        ORIGIN,
        "--out",
        key_file.to_str().unwrap(),
    ]);
    let verifier = stdout(&k).trim().to_string();
    assert!(verifier.starts_with(&format!("{ORIGIN}+")), "{verifier}");
    let i = log_cmd(&[
        "init",
        log_dir.to_str().unwrap(),
        "--key",
        key_file.to_str().unwrap(),
    ]);
    assert_eq!(stdout(&i).trim(), verifier);
    for (n, c) in configs.iter().enumerate() {
        publish(tmp, log_dir, &key_file, c, n as u64);
    }
    (key_file, verifier)
}

fn publish(tmp: &Path, log_dir: &Path, key_file: &Path, config: &str, want_index: u64) {
    let f = tmp.join(format!("config-{want_index}.toml"));
    std::fs::write(&f, config).unwrap();
    let a = log_cmd(&[
        "append",
        log_dir.to_str().unwrap(),
        f.to_str().unwrap(),
        "--key",
        key_file.to_str().unwrap(),
    ]);
    assert_eq!(stdout(&a).trim(), want_index.to_string());
}

fn run_greet(dir: &Path, now: &str, ep: (&str, &str), args: &[&str]) {
    let o = greet(dir, now, Some(ep), args);
    assert!(o.status.success(), "greet failed: {o:?}");
    assert!(o.stderr.is_empty(), "greet printed on stderr: {o:?}");
}

fn opt_in(dir: &Path, now: &str, url: &str, key: &str) {
    let on = clearcount(
        dir,
        now,
        &["on", "--yes", "--server", url, "--log-key", key],
    );
    let text = stdout(&on);
    assert!(on.status.success(), "{on:?}");
    // What will be shared is shown first: counters, rationale, epsilon, sample rate.
    assert!(text.contains("counter style"), "{text}");
    assert!(text.contains("Can --loud be removed?"), "{text}");
    assert!(text.contains("epsilon 1"), "{text}");
}

/// Runs `f` for every directory at once (each user is independent).
fn each(dirs: &[PathBuf], f: impl Fn(&Path) + Sync) {
    std::thread::scope(|s| {
        for chunk in dirs.chunks(dirs.len().div_ceil(8).max(1)) {
            let f = &f;
            s.spawn(move || {
                for d in chunk {
                    f(d);
                }
            });
        }
    });
}

fn lines(ndjson: &str) -> Vec<Value> {
    ndjson
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a raw report line is JSON"))
        .collect()
}

fn sent_copy(dir: &Path, week: &str) -> Option<Value> {
    let p = upload_state(dir).join(format!("weeks/{week}.sent.json"));
    let text = std::fs::read_to_string(p).ok()?;
    Some(serde_json::from_str(&text).expect("the sent copy is JSON"))
}

#[test]
fn opted_in_weeks_are_verified_privatized_uploaded_and_published() {
    let tmp = tempfile::tempdir().unwrap();
    let (log_dir, data) = (tmp.path().join("log"), tmp.path().join("data"));
    let (key_file, key) = cli_log(tmp.path(), &log_dir, &[greet_config(1.0)]);
    let server = Server::start(&log_dir, &data, "2026-11-17");
    let url = server.url();
    let ep = (url.as_str(), key.as_str());

    let early: Vec<PathBuf> = (0..30)
        .map(|i| tmp.path().join(format!("early-{i}")))
        .collect();
    let late = tmp.path().join("late");
    let local = tmp.path().join("local");

    // Early users opt in before week A; the late one in the middle of week A; one never does.
    each(&early, |d| opt_in(d, "2026-10-31T10:00:00Z", &url, &key));
    // Week A: everyone greets loudly, once; early users' first upload child finds nothing
    // ended yet.
    let mut all = early.clone();
    all.push(late.clone());
    all.push(local.clone());
    each(&all, |d| {
        run_greet(d, "2026-11-03T10:00:00Z", ep, &["--loud", "ann", "bo"])
    });
    each(&early, |d| {
        assert!(wait_runs(d, 1, WAIT), "no upload child in {d:?}")
    });
    opt_in(&late, "2026-11-04T10:00:00Z", &url, &key);

    // A new config version is published while clients are out there; they must verify that
    // the new checkpoint extends the one they remember.
    let v2 = greet_config(1.0).replace(
        "How many times greet ran in the week.",
        "How many times greet ran in the week (all subcommands).",
    );
    publish(tmp.path(), &log_dir, &key_file, &v2, 1);

    // Week B: one plain greeting each; week A is uploaded by the early users' children.
    each(&all, |d| run_greet(d, "2026-11-10T10:00:00Z", ep, &["cy"]));
    each(&early, |d| {
        assert!(wait_runs(d, 2, WAIT), "no second child in {d:?}")
    });
    assert!(wait_runs(&late, 1, WAIT));
    // The week after: week B is uploaded by the early users and the late one.
    each(&all, |d| run_greet(d, "2026-11-17T10:00:00Z", ep, &["di"]));
    each(&early, |d| {
        assert!(wait_runs(d, 3, WAIT), "no third child in {d:?}")
    });
    assert!(wait_runs(&late, 2, WAIT));
    assert_eq!(
        finished_runs(&local),
        0,
        "mode local started an upload child"
    );

    // What each user recorded: the local report holds exact counts, `names` included.
    let local_a: Value = serde_json::from_str(
        &std::fs::read_to_string(early[0].join("reports/2026-11-02.json")).unwrap(),
    )
    .unwrap();
    let counters = &local_a["programs"][0]["counters"];
    assert_eq!(counters["invocations"], 1, "{local_a}");
    assert_eq!(counters["names"], 2, "{local_a}");
    assert_eq!(counters["style:loud"], 1, "{local_a}");

    // The next day the server publishes the raw reports of the upload day.
    drop(server);
    let server = Server::start(&log_dir, &data, "2026-11-18");
    let url = server.url();
    let index = http_json(&format!("{url}/data/"));
    let days = index["reports"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{index}");
    assert_eq!(days[0]["day"], "2026-11-17");
    let (status, body) = http_get(&format!("{url}/data/reports/2026-11-17.ndjson"));
    assert_eq!(status, 200, "{body}");
    let raw = lines(&body);
    assert_eq!(days[0]["reports"], raw.len());
    // 30 early users x 2 weeks, the late user for week B only, nothing from the local user.
    let by_week = |w: &str| raw.iter().filter(|r| r["week"] == w).collect::<Vec<_>>();
    assert_eq!(by_week(WEEK_A).len(), 30, "{body}");
    assert_eq!(by_week(WEEK_B).len(), 31, "{body}");
    assert_eq!(raw.len(), 61);

    let styles: BTreeSet<&str> = ["plain", "loud", "other", "none"].into();
    let buckets: BTreeSet<&str> = ["0", "1", "2", "5", "10", "100"].into();
    for r in &raw {
        let o = r.as_object().unwrap();
        let keys: BTreeSet<&str> = o.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["config", "format", "programs", "week", "x"].into(),
            "{r}"
        );
        assert_eq!(r["format"], 1);
        assert_eq!(r["config"]["origin"], ORIGIN);
        // Both weeks were sent after version 2 was published, and verified.
        assert_eq!(r["config"]["index"], 1, "{r}");
        let x = r["x"].as_f64().unwrap();
        assert!((0.0..1.0).contains(&x), "{r}");
        let p = r["programs"].as_array().unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0]["name"], "greet");
        assert_eq!(p[0]["version"], "0.1.0");
        assert_eq!(p[0]["os"], std::env::consts::OS);
        assert_eq!(p[0]["arch"], std::env::consts::ARCH);
        let c = p[0]["counters"].as_object().unwrap();
        // `names` is recorded but not in the config: it never leaves the machine.
        assert_eq!(c.len(), 2, "{r}");
        assert!(buckets.contains(c["invocations"].as_str().unwrap()), "{r}");
        assert!(styles.contains(c["style"].as_str().unwrap()), "{r}");
    }

    // Every copy a user kept is exactly one of the published reports; the late user kept
    // none for week A, which began before the opt-in.
    for d in &early {
        for w in [WEEK_A, WEEK_B] {
            let copy = sent_copy(d, w).unwrap_or_else(|| panic!("{d:?} kept no copy of {w}"));
            assert!(raw.contains(&copy), "{copy} not published");
        }
    }
    assert!(sent_copy(&late, WEEK_A).is_none());
    assert!(raw.contains(&sent_copy(&late, WEEK_B).unwrap()));
    assert!(!upload_state(&local).join("weeks").exists());
    let dry = clearcount(&late, "2026-11-17T12:00:00Z", &["upload", "--dry-run"]);
    assert!(
        stdout(&dry).contains(&format!(
            "week {WEEK_A}: not sent: no program of this week was opted in"
        )),
        "{}",
        stdout(&dry)
    );

    // The clients verified the new checkpoint (tree size 2) against the one they remembered.
    for d in early.iter().take(3).chain([&late]) {
        let cp = std::fs::read_to_string(upload_state(d).join("checkpoint")).unwrap();
        let mut l = cp.lines();
        assert_eq!(l.next(), Some(ORIGIN));
        assert_eq!(l.next(), Some("2"), "{cp}");
    }

    // Randomized response: every early user's true style in week A was `loud` and true count
    // bucket `1`, yet the reports differ (P(all 30 kept) = 0.475^30 < 1e-9); `loud` still
    // dominates: fewer than 4 of 30 (expected 14.3, sd 2.7) has probability below 1e-4.
    let week_a = by_week(WEEK_A);
    let label = |r: &Value, c: &str| {
        r["programs"][0]["counters"][c]
            .as_str()
            .unwrap()
            .to_string()
    };
    let loud = week_a
        .iter()
        .filter(|r| label(r, "style") == "loud")
        .count();
    assert!((4..30).contains(&loud), "{loud} of 30 reports say loud");
    assert!(week_a.iter().any(|r| label(r, "invocations") != "1"));

    // The aggregates: per counter, the observed counts are exactly those of the raw reports.
    for w in [WEEK_A, WEEK_B] {
        let agg = http_json(&format!("{url}/data/aggregates/{w}.json"));
        let progs = agg["programs"].as_array().unwrap();
        assert_eq!(progs.len(), 1, "{agg}");
        assert_eq!(progs[0]["program"], "greet");
        assert_eq!(progs[0]["config_index"], 1);
        let reports = by_week(w);
        assert_eq!(progs[0]["reports"], reports.len());
        for c in progs[0]["counters"].as_array().unwrap() {
            let name = c["counter"].as_str().unwrap();
            let mut want: BTreeMap<String, u64> = BTreeMap::new();
            for r in &reports {
                *want.entry(label(r, name)).or_default() += 1;
            }
            for l in c["labels"].as_array().unwrap() {
                let lab = l["label"].as_str().unwrap();
                assert_eq!(
                    l["observed"].as_u64().unwrap(),
                    want.get(lab).copied().unwrap_or(0),
                    "{w} {name} {lab}"
                );
                let (lo, e, hi) = (
                    l["ci_low"].as_f64().unwrap(),
                    l["estimate"].as_f64().unwrap(),
                    l["ci_high"].as_f64().unwrap(),
                );
                assert!(0.0 <= lo && lo <= e && e <= hi && hi <= 1.0, "{l}");
            }
        }
        let (status, csv) = http_get(&format!("{url}/data/aggregates/{w}.csv"));
        assert_eq!(status, 200);
        // Header plus one row per label: 6 buckets and 4 styles.
        assert_eq!(csv.lines().count(), 1 + 6 + 4, "{csv}");
    }
    // The day of the uploads is complete; today is not (nothing is published before it ends).
    assert_eq!(
        http_get(&format!("{url}/data/reports/2026-11-18.ndjson")).0,
        404
    );
}

#[test]
fn sampling_decides_once_per_week_and_a_wrong_log_key_uploads_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (log_dir, data) = (tmp.path().join("log"), tmp.path().join("data"));
    let (_key_file, key) = cli_log(tmp.path(), &log_dir, &[greet_config(0.25)]);
    let server = Server::start(&log_dir, &data, "2026-11-17");
    let url = server.url();
    let ep = (url.as_str(), key.as_str());
    let users: Vec<PathBuf> = (0..40)
        .map(|i| tmp.path().join(format!("user-{i}")))
        .collect();
    each(&users, |d| {
        opt_in(d, "2026-11-01T10:00:00Z", &url, &key);
        run_greet(d, "2026-11-10T10:00:00Z", ep, &["ann"]);
        assert!(wait_runs(d, 1, WAIT));
        run_greet(d, "2026-11-17T10:00:00Z", ep, &["ann"]);
        assert!(wait_runs(d, 2, WAIT));
        // Another day: the decision of the week is kept, nothing is drawn again.
        run_greet(d, "2026-11-18T10:00:00Z", ep, &["ann"]);
        assert!(wait_runs(d, 3, WAIT));
    });
    let weeks = |d: &Path| upload_state(d).join("weeks");
    let sent: Vec<&PathBuf> = users
        .iter()
        .filter(|d| weeks(d).join(format!("{WEEK_B}.sent.json")).exists())
        .collect();
    let unsampled = users
        .iter()
        .filter(|d| weeks(d).join(format!("{WEEK_B}.unsampled")).exists())
        .count();
    assert_eq!(sent.len() + unsampled, users.len());
    // Binomial(40, 0.25): 0 or 40 sent has probability below 1e-4.
    assert!(!sent.is_empty() && unsampled > 0, "{} sent", sent.len());
    let stored = server.stored();
    assert_eq!(stored.len(), sent.len());
    for s in &stored {
        let r: Value = serde_json::from_str(s).unwrap();
        assert!(r["x"].as_f64().unwrap() < 0.25, "{r}");
        assert_eq!(r["week"], WEEK_B);
    }

    // A host tool whose pinned key is not the log's (same origin, another key): the
    // checkpoint does not verify, an alarm is recorded and shown, nothing is uploaded.
    let other = signer().verifier().to_string();
    let victim = tmp.path().join("victim");
    opt_in(&victim, "2026-11-01T10:00:00Z", &url, &key);
    run_greet(&victim, "2026-11-10T10:00:00Z", (&url, &other), &["ann"]);
    assert!(wait_runs(&victim, 1, WAIT));
    run_greet(&victim, "2026-11-17T10:00:00Z", (&url, &other), &["ann"]);
    assert!(wait_runs(&victim, 2, WAIT));
    assert!(upload_state(&victim).join("alarm").exists());
    let status = stdout(&clearcount(&victim, "2026-11-17T12:00:00Z", &["status"]));
    assert!(status.contains("ALARM"), "{status}");
    assert_eq!(server.stored().len(), sent.len());
}

/// An OUE counter (contract version 2): the real client sends one randomized bit a label, the
/// real server validates and stores it and estimates each label from its bit count.
#[test]
fn an_oue_counter_is_sent_as_bits_and_estimated_from_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (log_dir, data) = (tmp.path().join("log"), tmp.path().join("data"));
    let config = greet_config(1.0).replace(
        "labels = [\"plain\", \"loud\", \"other\"]\nepsilon = 1.0\n",
        "labels = [\"plain\", \"loud\", \"other\"]\nepsilon = 1.0\nmechanism = \"oue\"\n",
    );
    assert!(config.contains("mechanism = \"oue\""));
    let (_, key) = cli_log(tmp.path(), &log_dir, &[config]);
    let server = Server::start(&log_dir, &data, "2026-11-10");
    let url = server.url();
    let ep = (url.as_str(), key.as_str());
    let users: Vec<PathBuf> = (0..20)
        .map(|i| tmp.path().join(format!("user-{i}")))
        .collect();
    each(&users, |d| opt_in(d, "2026-10-31T10:00:00Z", &url, &key));
    each(&users, |d| {
        run_greet(d, "2026-11-03T10:00:00Z", ep, &["--loud", "ann"])
    });
    each(&users, |d| {
        assert!(wait_runs(d, 1, WAIT), "no upload child in {d:?}")
    });
    // Week A has ended: this run's child uploads it.
    each(&users, |d| {
        run_greet(d, "2026-11-10T10:00:00Z", ep, &["bo"])
    });
    each(&users, |d| {
        assert!(wait_runs(d, 2, WAIT), "no second child in {d:?}")
    });

    drop(server);
    let server = Server::start(&log_dir, &data, "2026-11-11");
    let url = server.url();
    let (status, body) = http_get(&format!("{url}/data/reports/2026-11-10.ndjson"));
    assert_eq!(status, 200, "{body}");
    let raw = lines(&body);
    assert_eq!(raw.len(), 20, "{body}");
    // One bit a label of `style` (plain, loud, other, none); `invocations` stays a bucket.
    let mut ones = [0u64; 4];
    for r in &raw {
        let c = &r["programs"][0]["counters"];
        let bits = c["style"].as_str().unwrap();
        assert!(
            bits.len() == 4 && bits.bytes().all(|b| b == b'0' || b == b'1'),
            "{r}"
        );
        for (one, b) in ones.iter_mut().zip(bits.bytes()) {
            *one += u64::from(b == b'1');
        }
        assert!(["0", "1", "2", "5", "10", "100"].contains(&c["invocations"].as_str().unwrap()));
    }
    // Sent for the week they were recorded in, each user's copy is one of the published.
    for d in &users {
        assert!(raw.contains(&sent_copy(d, WEEK_A).unwrap()));
    }

    let agg = http_json(&format!("{url}/data/aggregates/{WEEK_A}.json"));
    let style = agg["programs"][0]["counters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["counter"] == "style")
        .unwrap_or_else(|| panic!("{agg}"))
        .clone();
    assert_eq!(style["mechanism"], "oue", "{style}");
    assert_eq!(style["reports"], 20, "{style}");
    let labels = style["labels"].as_array().unwrap();
    let mut sum = 0.0;
    for (l, want) in labels.iter().zip(ones) {
        assert_eq!(l["observed"].as_u64().unwrap(), want, "{l}");
        assert_eq!(l["reports"], 20, "{l}");
        let (lo, e, hi) = (
            l["ci_low"].as_f64().unwrap(),
            l["estimate"].as_f64().unwrap(),
            l["ci_high"].as_f64().unwrap(),
        );
        assert!(0.0 <= lo && lo < hi && hi <= 1.0, "{l}");
        assert!((0.0..=1.0).contains(&e), "{l}");
        sum += e;
        // The unbiased estimate inverts the bit rate: (c/n - q) / (1/2 - q).
        let q = 1.0 / (1f64.exp() + 1.0);
        let raw_e = (want as f64 / 20.0 - q) / (0.5 - q);
        assert!(
            (l["raw_estimate"].as_f64().unwrap() - raw_e).abs() < 1e-9,
            "{l}"
        );
    }
    assert!((sum - 1.0).abs() < 1e-9, "{style}");
}
