//! The review diff: added, removed and changed programs and counters with every field,
//! settings, the epsilon total per program, and the loud marker for counters without
//! randomized response.

use chrono::NaiveDate;
use clearcount_config_log::config::{Change, Config, Counter, CounterKind, Program, diff};

const BASE: &str = r#"
origin = "telemetry.example.org/config"
sample_rate = 0.25
max_epsilon = 4.0
os = ["linux", "macos", "windows"]
arch = ["x86_64", "aarch64"]

[[program]]
name = "ripgrep"
versions = ">=14.0.0"

[[program.counter]]
name = "invocations"
kind = "count"
buckets = [0, 1, 10, 100, 1000]
epsilon = 1.0
description = "How many times rg ran in the week."
rationale = "Are most users interactive (many runs) or scripted (very many)?"
owner = "maintainer@example.org"
link = "https://github.com/example/ripgrep/issues/1"
expires = "2027-06-30"

[[program.counter]]
name = "engine"
kind = "category"
labels = ["default", "pcre2", "other"]
epsilon = 1.0
description = "Which regex engine is used most."
rationale = "Can the pcre2 feature become optional?"
owner = "maintainer@example.org"
link = "https://github.com/example/ripgrep/issues/2"
expires = "2027-06-30"
"#;

fn base() -> Config {
    Config::parse(BASE.as_bytes()).unwrap()
}

fn counter(name: &str, epsilon: Option<f64>) -> Counter {
    Counter {
        name: name.into(),
        kind: CounterKind::Count,
        buckets: Some(vec![0, 1, 2]),
        labels: None,
        epsilon,
        mechanism: None,
        description: format!("{name} description"),
        rationale: format!("{name} rationale"),
        owner: "o@example.org".into(),
        link: "https://example.org/x".into(),
        expires: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn identical_configs_have_no_changes() {
    let review = diff(Some(&base()), &base());
    assert!(review.is_empty());
    assert!(review.text.contains("No changes."));
    assert_eq!(review.budgets.len(), 1);
    assert_eq!(review.budgets[0].epsilon_total, 2.0);
    assert_eq!(review.budgets[0].old_epsilon_total, Some(2.0));
}

#[test]
fn first_config_is_all_added() {
    let config = base();
    let review = diff(None, &config);
    let keys: Vec<&str> = review
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Setting { key, old: None, .. } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(keys, ["origin", "sample_rate", "max_epsilon", "os", "arch"]);
    assert!(review.changes.contains(&Change::ProgramAdded {
        program: "ripgrep".into(),
        versions: ">=14.0.0".into()
    }));
    let added: Vec<&str> = review
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::CounterAdded { program, counter } if program == "ripgrep" => {
                Some(counter.name.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(added, ["invocations", "engine"]);
    let text = &review.text;
    assert!(text.starts_with("Review of the first config"));
    for expected in [
        "    sample_rate: 0.25\n",
        "    max_epsilon: 4\n",
        "    os: \"linux\", \"macos\", \"windows\"\n",
        "+ program \"ripgrep\" (versions \">=14.0.0\"), 2 counters\n",
        "    + counter \"invocations\" (count, epsilon 1)\n",
        "        buckets: 0, 1, 10, 100, 1000\n",
        "        labels: \"default\", \"pcre2\", \"other\"\n",
        "        description: \"How many times rg ran in the week.\"\n",
        "        rationale: \"Can the pcre2 feature become optional?\"\n",
        "        owner: \"maintainer@example.org\"\n",
        "        link: \"https://github.com/example/ripgrep/issues/2\"\n",
        "        expires: 2027-06-30\n",
        "    program \"ripgrep\": epsilon total 2 of max_epsilon 4 (new program)\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(!text.contains("!!"), "{text}");
}

#[test]
fn settings_changes_are_shown() {
    let old = base();
    let mut new = base();
    new.sample_rate = 0.5;
    new.max_epsilon = 6.0;
    new.os = vec!["linux".into(), "freebsd".into()];
    new.arch.push("riscv64".into());
    new.origin = "telemetry.example.net/config".into();
    let review = diff(Some(&old), &new);
    assert_eq!(
        review.changes,
        [
            Change::Setting {
                key: "origin".into(),
                old: Some("\"telemetry.example.org/config\"".into()),
                new: "\"telemetry.example.net/config\"".into()
            },
            Change::Setting {
                key: "sample_rate".into(),
                old: Some("0.25".into()),
                new: "0.5".into()
            },
            Change::Setting {
                key: "max_epsilon".into(),
                old: Some("4".into()),
                new: "6".into()
            },
            Change::Setting {
                key: "os".into(),
                old: Some("\"linux\", \"macos\", \"windows\"".into()),
                new: "\"linux\", \"freebsd\"".into()
            },
            Change::Setting {
                key: "arch".into(),
                old: Some("\"x86_64\", \"aarch64\"".into()),
                new: "\"x86_64\", \"aarch64\", \"riscv64\"".into()
            },
        ]
    );
    let text = &review.text;
    assert!(text.contains("    sample_rate: 0.25 -> 0.5\n"), "{text}");
    assert!(text.contains("    max_epsilon: 4 -> 6\n"), "{text}");
    assert!(
        text.contains(
            "    os: \"linux\", \"macos\", \"windows\" -> \"linux\", \"freebsd\" (added: \"freebsd\"; removed: \"macos\", \"windows\")\n"
        ),
        "{text}"
    );
    assert!(text.contains("(added: \"riscv64\")"), "{text}");
    assert!(
        text.contains("epsilon total 2 of max_epsilon 6 (unchanged)"),
        "{text}"
    );
}

#[test]
fn programs_added_and_removed() {
    let old = base();
    let mut new = base();
    new.programs[0].name = "rg".into();
    let review = diff(Some(&old), &new);
    assert!(review.changes.contains(&Change::ProgramAdded {
        program: "rg".into(),
        versions: ">=14.0.0".into()
    }));
    assert!(review.changes.contains(&Change::ProgramRemoved {
        program: "ripgrep".into(),
        versions: ">=14.0.0".into()
    }));
    let removed: Vec<&str> = review
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::CounterRemoved { program, counter } if program == "ripgrep" => {
                Some(counter.name.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(removed, ["invocations", "engine"]);
    let text = &review.text;
    assert!(text.contains("+ program \"rg\""), "{text}");
    assert!(
        text.contains("- program \"ripgrep\" (versions \">=14.0.0\"), 2 counters removed\n"),
        "{text}"
    );
    assert!(text.contains("    - counter \"engine\" (category, epsilon 1)\n"));
    // Removed programs come after the programs of the new config.
    assert!(text.find("+ program \"rg\"").unwrap() < text.find("- program \"ripgrep\"").unwrap());
}

#[test]
fn program_versions_change() {
    let mut new = base();
    new.programs[0].versions = ">=14.1.0, <16".into();
    let review = diff(Some(&base()), &new);
    assert_eq!(
        review.changes,
        [Change::ProgramChanged {
            program: "ripgrep".into(),
            key: "versions".into(),
            old: ">=14.0.0".into(),
            new: ">=14.1.0, <16".into()
        }]
    );
    assert!(
        review
            .text
            .contains("~ program \"ripgrep\"\n    versions: \">=14.0.0\" -> \">=14.1.0, <16\"\n"),
        "{}",
        review.text
    );
}

#[test]
fn counters_added_and_removed_in_an_existing_program() {
    let mut new = base();
    new.programs[0].counters.remove(0);
    new.programs[0]
        .counters
        .push(counter("flags/json", Some(0.5)));
    let review = diff(Some(&base()), &new);
    assert_eq!(review.changes.len(), 2);
    match &review.changes[0] {
        Change::CounterAdded { program, counter } => {
            assert_eq!(program, "ripgrep");
            assert_eq!(counter.name, "flags/json");
            assert_eq!(counter.report_labels, ["0", "1", "2"]);
            assert_eq!(counter.epsilon, Some(0.5));
            assert_eq!(counter.expires, "2027-01-01");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&review.changes[1],
        Change::CounterRemoved { counter, .. } if counter.name == "invocations"));
    let text = &review.text;
    assert!(
        text.contains("~ program \"ripgrep\"\n    + counter \"flags/json\" (count, epsilon 0.5)\n"),
        "{text}"
    );
    assert!(text.contains("    - counter \"invocations\" (count, epsilon 1)\n"));
    assert!(
        text.contains("epsilon total 1.5 of max_epsilon 4 (was 2)"),
        "{text}"
    );
    assert_eq!(review.budgets[0].epsilon_total, 1.5);
}

/// Changes one field of the `engine` counter and checks the structured change and its line.
fn check_field(
    key: &str,
    change: fn(&mut Counter),
    old_text: &str,
    new_text: &str,
    line_suffix: &str,
) {
    let mut new = base();
    change(&mut new.programs[0].counters[1]);
    let review = diff(Some(&base()), &new);
    let found: Vec<&Change> = review
        .changes
        .iter()
        .filter(|c| !matches!(c, Change::Setting { .. }))
        .collect();
    assert_eq!(found.len(), 1, "{key}: {found:?}");
    match found[0] {
        Change::CounterChanged {
            program,
            counter,
            key: k,
            old,
            new,
            ..
        } => {
            assert_eq!(
                (program.as_str(), counter.as_str(), k.as_str()),
                ("ripgrep", "engine", key)
            );
            assert_eq!((old.as_str(), new.as_str()), (old_text, new_text), "{key}");
        }
        other => panic!("{key}: {other:?}"),
    }
    let expected = format!(
        "~ program \"ripgrep\"\n    ~ counter \"engine\"\n        {key}: {old_text} -> {new_text}{line_suffix}\n"
    );
    assert!(
        review.text.contains(&expected),
        "{key}: missing\n{expected}in\n{}",
        review.text
    );
}

#[test]
fn every_counter_field_change_is_shown() {
    check_field(
        "description",
        |c| c.description = "Which engine.".into(),
        "\"Which regex engine is used most.\"",
        "\"Which engine.\"",
        "",
    );
    check_field(
        "rationale",
        |c| c.rationale = "Why not.".into(),
        "\"Can the pcre2 feature become optional?\"",
        "\"Why not.\"",
        "",
    );
    check_field(
        "owner",
        |c| c.owner = "other@example.org".into(),
        "\"maintainer@example.org\"",
        "\"other@example.org\"",
        "",
    );
    check_field(
        "link",
        |c| c.link = "https://example.org/3".into(),
        "\"https://github.com/example/ripgrep/issues/2\"",
        "\"https://example.org/3\"",
        "",
    );
    check_field(
        "expires",
        |c| c.expires = NaiveDate::from_ymd_opt(2028, 1, 31).unwrap(),
        "2027-06-30",
        "2028-01-31",
        "",
    );
    check_field("epsilon", |c| c.epsilon = Some(0.5), "1", "0.5", "");
    check_field(
        "labels",
        |c| c.labels = Some(vec!["default".into(), "pcre2".into(), "fancy".into()]),
        "\"default\", \"pcre2\", \"other\"",
        "\"default\", \"pcre2\", \"fancy\"",
        " (added: \"fancy\"; removed: \"other\")",
    );
    check_field(
        "labels",
        |c| c.labels = Some(vec!["pcre2".into(), "default".into(), "other".into()]),
        "\"default\", \"pcre2\", \"other\"",
        "\"pcre2\", \"default\", \"other\"",
        " (order or repeats changed)",
    );
}

#[test]
fn bucket_and_kind_changes_are_shown() {
    let mut new = base();
    new.programs[0].counters[0].buckets = Some(vec![0, 1, 10, 100, 10_000]);
    let review = diff(Some(&base()), &new);
    assert!(
        review.text.contains(
            "        buckets: 0, 1, 10, 100, 1000 -> 0, 1, 10, 100, 10000 (added: \"10000\"; removed: \"1000\")\n"
        ),
        "{}",
        review.text
    );

    let mut new = base();
    let c = &mut new.programs[0].counters[0];
    c.kind = CounterKind::Category;
    c.buckets = None;
    c.labels = Some(vec!["few".into(), "many".into()]);
    let review = diff(Some(&base()), &new);
    let keys: Vec<&str> = review
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::CounterChanged { key, .. } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(keys, ["kind", "labels"]);
    assert!(review.text.contains("        kind: count -> category\n"));
    assert!(
        review
            .text
            .contains("        labels: buckets 0, 1, 10, 100, 1000 -> \"few\", \"many\"\n"),
        "{}",
        review.text
    );
}

#[test]
fn counters_without_epsilon_are_loud() {
    // An added counter without randomized response.
    let mut new = base();
    new.programs[0].counters.push(counter("exact", None));
    let review = diff(Some(&base()), &new);
    let loud: Vec<&str> = lines(&review.text)
        .into_iter()
        .filter(|l| l.starts_with("!! NO RANDOMIZED RESPONSE"))
        .collect();
    assert_eq!(
        loud,
        [
            "!! NO RANDOMIZED RESPONSE: program \"ripgrep\" counter \"exact\" is added without epsilon: its true value is uploaded",
            "!! NO RANDOMIZED RESPONSE: in program \"ripgrep\": 1 counter reported exactly as recorded: \"exact\"",
        ],
        "{}",
        review.text
    );
    assert!(
        review
            .text
            .contains("    + counter \"exact\" (count, NO randomized response)\n")
    );
    assert_eq!(review.budgets[0].without_randomized_response, ["exact"]);

    // An existing counter losing its epsilon.
    let mut new = base();
    new.programs[0].counters[1].epsilon = None;
    let review = diff(Some(&base()), &new);
    assert!(review.changes.contains(&Change::CounterChanged {
        program: "ripgrep".into(),
        counter: "engine".into(),
        key: "epsilon".into(),
        old: "1".into(),
        new: "none".into(),
        loses_randomized_response: true,
    }));
    assert!(
        review.text.contains(
            "        epsilon: 1 -> none\n!! NO RANDOMIZED RESPONSE: program \"ripgrep\" counter \"engine\" loses its epsilon"
        ),
        "{}",
        review.text
    );

    // Unchanged counters without epsilon are still flagged in the budget section.
    let mut old = base();
    old.programs[0].counters[1].epsilon = None;
    let mut new = old.clone();
    new.sample_rate = 0.3;
    let review = diff(Some(&old), &new);
    assert!(
        review
            .text
            .contains("!! NO RANDOMIZED RESPONSE: in program \"ripgrep\": 1 counter reported exactly as recorded: \"engine\"\n"),
        "{}",
        review.text
    );
    // The first config shows them too.
    let review = diff(None, &old);
    assert_eq!(
        lines(&review.text)
            .iter()
            .filter(|l| l.starts_with("!! NO RANDOMIZED RESPONSE"))
            .count(),
        2
    );
}

#[test]
fn config_text_cannot_forge_review_lines() {
    let mut new = base();
    new.programs[0].counters[1].description =
        "ok\n!! NO RANDOMIZED RESPONSE: none here\nNo changes.".into();
    let review = diff(Some(&base()), &new);
    assert!(
        !lines(&review.text)
            .iter()
            .any(|l| l.starts_with("!!") || *l == "No changes."),
        "{}",
        review.text
    );
    assert!(
        review
            .text
            .contains("\\u{a}!! NO RANDOMIZED RESPONSE: none here")
    );
}

#[test]
fn epsilon_totals_per_program() {
    let mut new = base();
    new.programs.push(Program {
        name: "cargo-audit".into(),
        versions: "*".into(),
        counters: vec![counter("runs", Some(2.0)), counter("db", Some(1.25))],
    });
    let review = diff(Some(&base()), &new);
    assert_eq!(review.budgets.len(), 2);
    assert_eq!(review.budgets[1].program, "cargo-audit");
    assert_eq!(review.budgets[1].epsilon_total, 3.25);
    assert_eq!(review.budgets[1].old_epsilon_total, None);
    assert!(review.text.contains(
        "    program \"cargo-audit\": epsilon total 3.25 of max_epsilon 4 (new program)\n"
    ));
}

#[test]
fn structured_changes_serialize_to_json() {
    let mut new = base();
    new.sample_rate = 0.5;
    new.programs[0].counters[1].epsilon = None;
    let review = diff(Some(&base()), &new);
    let json = serde_json::to_value(&review).unwrap();
    assert_eq!(json["changes"][0]["change"], "setting");
    assert_eq!(json["changes"][0]["key"], "sample_rate");
    assert_eq!(json["changes"][1]["change"], "counter_changed");
    assert_eq!(json["changes"][1]["loses_randomized_response"], true);
    assert_eq!(
        json["budgets"][0]["without_randomized_response"][0],
        "engine"
    );
    assert_eq!(json["text"], review.text.as_str());
}
