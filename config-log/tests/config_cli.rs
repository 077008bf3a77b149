//! The reviewer commands of the real `clearcount-log` binary: lint, diff and plan.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clearcount-log"))
        .args(args)
        .output()
        .expect("clearcount-log runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// A valid config whose counters expire a year from now (lint compares with today's date).
fn valid_config_text() -> String {
    let expires = (chrono::Utc::now().date_naive() + chrono::Days::new(365)).to_string();
    include_str!("../../docs/examples/config.toml")
        .replace("2027-06-30", &expires)
        .replace("2027-03-31", &expires)
        .replace("2027-12-31", &expires)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn lint_of_a_valid_config_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "config.toml", &valid_config_text());
    let out = run(&["lint", s(&path)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{}: ok (2 programs, 5 counters)\n", path.display())
    );
}

#[test]
fn lint_lists_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let text = valid_config_text()
        .replace("sample_rate = 0.25", "sample_rate = 0")
        .replace("\"aarch64\"", "\"arm64\"")
        .replace("name = \"engine\"", "name = \"Engine\"")
        .replace(
            "labels = [\"git\", \"http\", \"offline\"]",
            "labels = [\"git\", \"none\"]",
        )
        .replace("epsilon = 2.0", "epsilon = 3.0");
    let path = write(dir.path(), "bad.toml", &text);
    let out = run(&["lint", s(&path)]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "key \"sample_rate\": must be more than 0 and at most 1, not 0\n\
         key \"arch\": \"arm64\" is not a std::env::consts::ARCH value (did you mean \"aarch64\"?)\n\
         program \"ripgrep\" counter \"Engine\" key \"name\": \"Engine\" is not a valid counter name (must match [a-z0-9][a-z0-9/_.-]*)\n\
         program \"cargo-audit\" counter \"advisory-db/fetch\" key \"labels\": \"none\" is reserved for weeks without any recording\n\
         program \"cargo-audit\" key \"counter\": the epsilon sum over its counters is 6, more than max_epsilon 4\n"
    );
    assert_eq!(
        stderr(&out),
        format!("clearcount-log: {}: 5 problems\n", path.display())
    );
}

#[test]
fn lint_reports_parse_errors_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        valid_config_text().replace("name = \"runs\"\n", "name = \"runs\"\nbuckets_ = [0]\n");
    let line = text.lines().position(|l| l == "buckets_ = [0]").unwrap() + 1;
    let path = write(dir.path(), "typo.toml", &text);
    let out = run(&["lint", s(&path)]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "is not a valid config: line {line}, column 1 (program \"cargo-audit\" counter \"runs\"): unknown field `buckets_`"
        )),
        "{err}"
    );

    let out = run(&["lint", s(&dir.path().join("missing.toml"))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
}

#[test]
fn diff_of_two_files() {
    let dir = tempfile::tempdir().unwrap();
    let old_text = valid_config_text();
    let new_text = old_text
        .replace("sample_rate = 0.25", "sample_rate = 0.5")
        .replace(
            "labels = [\"default\", \"pcre2\", \"other\"]\nepsilon = 1.0\n",
            "labels = [\"default\", \"pcre2\", \"fancy\", \"other\"]\n",
        );
    let old = write(dir.path(), "old.toml", &old_text);
    let new = write(dir.path(), "new.toml", &new_text);
    let out = run(&["diff", s(&old), s(&new)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("Review of a config change"), "{text}");
    assert!(text.contains("    sample_rate: 0.25 -> 0.5\n"), "{text}");
    assert!(
        text.contains(
            "~ program \"ripgrep\"\n    ~ counter \"engine\"\n        labels: \"default\", \"pcre2\", \"other\" -> \"default\", \"pcre2\", \"fancy\", \"other\" (added: \"fancy\")\n        epsilon: 1 -> none\n!! NO RANDOMIZED RESPONSE: program \"ripgrep\" counter \"engine\" loses its epsilon"
        ),
        "{text}"
    );
    assert!(
        text.contains("    program \"ripgrep\": epsilon total 2.5 of max_epsilon 4 (was 3.5)\n"),
        "{text}"
    );
    assert!(
        !text.contains("cargo-audit\"\n"),
        "unchanged program listed: {text}"
    );

    // The same file twice: no changes.
    let out = run(&["diff", s(&old), s(&old)]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("No changes."));

    // A broken new file is named in the error.
    let broken = write(dir.path(), "broken.toml", "origin = \n");
    let out = run(&["diff", s(&old), s(&broken)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("broken.toml is not a valid config: line 1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn diff_with_bad_log_indexes_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["diff", s(dir.path()), "zero", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("entry index \"zero\" is not a number"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn plan_without_randomized_response_matches_the_textbook() {
    let out = run(&[
        "plan",
        "--labels",
        "2",
        "--margin",
        "0.01",
        "--confidence",
        "0.99",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let reports: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("reports needed per week: "))
        .expect("reports line")
        .parse()
        .unwrap();
    // z(0.995)^2 / (4 * 0.01^2) = 16,587.2...
    assert!((16_586..=16_588).contains(&reports), "{reports}");
    assert!(text.contains("no randomized response"), "{text}");
}

#[test]
fn plan_json_has_reports_and_sample_rate() {
    let out = run(&[
        "plan",
        "--labels",
        "2",
        "--margin",
        "0.01",
        "--confidence",
        "0.99",
        "--installs",
        "1000000",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reports = json["reports"].as_u64().unwrap();
    assert!((16_586..=16_588).contains(&reports), "{json}");
    // The rate has headroom: above the mean rate, so that 95% of weeks reach the target.
    let rate = json["sample_rate"].as_f64().unwrap();
    let mean = reports as f64 / 1e6;
    assert!(rate > mean && rate < mean * 1.05, "{json}");
    assert!(json["reports_p5"].as_u64().unwrap() >= reports, "{json}");
    assert!(
        json["expected_reports"].as_f64().unwrap() > reports as f64,
        "{json}"
    );
    assert_eq!(json["installs"], 1_000_000);

    // Without --installs there is no sample rate.
    let out = run(&[
        "plan",
        "--labels",
        "5",
        "--epsilon",
        "1",
        "--margin",
        "0.02",
        "--confidence",
        "0.95",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json.get("sample_rate").is_none(), "{json}");
    // Randomized response with k = 5 and epsilon 1: p = e / (e + 4) = 0.40 and
    // p - q = (e - 1) / (e + 4). No label's response rate can exceed p < 1/2, so the exact
    // worst case is lambda = p: n = z^2 p (1 - p) / (margin^2 (p - q)^2).
    let e = std::f64::consts::E;
    let z = 1.959_963_984_540_054f64;
    let p = e / (e + 4.0);
    let expected =
        (z * z * p * (1.0 - p) / (0.02f64.powi(2) * ((e - 1.0) / (e + 4.0)).powi(2))).ceil();
    assert_eq!(json["reports"].as_u64().unwrap(), expected as u64, "{json}");
}

#[test]
fn plan_with_too_few_installs_says_so() {
    let out = run(&[
        "plan",
        "--labels",
        "3",
        "--epsilon",
        "0.5",
        "--margin",
        "0.01",
        "--confidence",
        "0.95",
        "--installs",
        "1000",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("not enough"), "{}", stdout(&out));
}

#[test]
fn plan_rejects_bad_input() {
    for args in [
        ["--labels", "0", "--margin", "0.01", "--confidence", "0.99"],
        ["--labels", "4", "--margin", "0", "--confidence", "0.99"],
        ["--labels", "4", "--margin", "0.01", "--confidence", "1.5"],
    ] {
        let mut all = vec!["plan"];
        all.extend(args);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).starts_with("clearcount-log: cannot plan this counter: "),
            "{}",
            stderr(&out)
        );
    }
    let out = run(&[
        "plan",
        "--labels",
        "4",
        "--epsilon",
        "-1",
        "--margin",
        "0.01",
        "--confidence",
        "0.9",
    ]);
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn diff_of_two_log_entries() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signer.key");
    let log = dir.path().join("log");
    let out = run(&[
        "keygen",
        "--name",
        "telemetry.example.org/config",
        "--out",
        s(&key),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["init", s(&log), "--key", s(&key)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = write(dir.path(), "first.toml", &valid_config_text());
    let second = write(
        dir.path(),
        "second.toml",
        &valid_config_text().replace("max_epsilon = 4.0", "max_epsilon = 5.0"),
    );
    for config in [&first, &second] {
        let out = run(&["append", s(&log), s(config), "--key", s(&key)]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = run(&["diff", s(&log), "0", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let from_log = stdout(&out);
    assert!(from_log.contains("    max_epsilon: 4 -> 5\n"), "{from_log}");
    // The same as diffing the files.
    let out = run(&["diff", s(&first), s(&second)]);
    assert_eq!(stdout(&out), from_log);

    let out = run(&["diff", s(&log), "0", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read entry 2 of the log"),
        "{}",
        stderr(&out)
    );
    let out = run(&["diff", s(&dir.path().join("nolog")), "0", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot open the log in"),
        "{}",
        stderr(&out)
    );
}

/// The outputs shown in docs/config-review.md are what the commands print.
#[test]
fn docs_show_real_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let doc = std::fs::read_to_string(root.join("docs/config-review.md")).unwrap();
    for command in [
        "clearcount-log diff docs/examples/config.toml docs/examples/config-v2.toml",
        "clearcount-log plan --labels 2 --margin 0.01 --confidence 0.99",
        "clearcount-log plan --labels 4 --epsilon 1 --margin 0.02 --confidence 0.95 --installs 200000",
    ] {
        let marker = format!("$ {command}\n");
        let start = doc
            .find(&marker)
            .unwrap_or_else(|| panic!("{command} not in the doc"))
            + marker.len();
        let rest = &doc[start..];
        let end = ["\n$ ", "\n```"]
            .iter()
            .filter_map(|m| rest.find(m))
            .min()
            .unwrap();
        let shown = rest[..end].trim_end_matches('\n').to_string() + "\n";
        let args: Vec<&str> = command.split(' ').skip(1).collect();
        let out = Command::new(env!("CARGO_BIN_EXE_clearcount-log"))
            .args(&args)
            .current_dir(root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}: {}", stderr(&out));
        let printed = stdout(&out);
        let printed = printed.trim_end_matches('\n').to_string() + "\n";
        assert_eq!(shown, printed, "{command}: the doc differs from the output");
    }
}
