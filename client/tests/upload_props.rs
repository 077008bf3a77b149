//! Property tests of the upload report builder: over random local data and random configs,
//! every report built validates against DESIGN.md section 4 and never contains a string that
//! is not in the config (other than the version, `devel`, `none` and the week).
#![cfg(feature = "upload")]

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use clearcount::report::{LocalReport, ProgramCounts};
use clearcount::upload::build::{Outcome, build, check_report};
use clearcount_config_log::config::{Config, Counter, CounterKind, Program, Versions};
use proptest::prelude::*;
use rand::SeedableRng;

const NAMES: &[&str] = &["rg", "fd", "greet", "bat", "x.y/z"];
const LABELS: &[&str] = &["a", "b", "default", "pcre2", "other", "zz-9", "loud"];
const OSES: &[&str] = &["linux", "macos", "windows", "freebsd"];
const ARCHES: &[&str] = &["x86_64", "aarch64", "riscv64"];
const VERSIONS: &[&str] = &[
    "1.0.0",
    "2.3.4",
    "14.1.0",
    "0.1.0-beta.1",
    "3.0.0+meta",
    "x",
];

fn counter() -> impl Strategy<Value = Counter> {
    (
        prop::sample::select(&["invocations", "engine", "style", "n/a.b", "jobs"][..]),
        any::<bool>(),
        prop::collection::btree_set(0u64..2000, 1..6),
        prop::sample::subsequence(LABELS, 1..5),
        prop::option::of(0.1f64..8.0),
        0u32..3,
    )
        .prop_map(|(name, count, buckets, labels, epsilon, exp)| {
            let mut b: Vec<u64> = buckets.into_iter().collect();
            b[0] = 0;
            b.sort();
            b.dedup();
            Counter {
                name: name.to_string(),
                kind: if count {
                    CounterKind::Count
                } else {
                    CounterKind::Category
                },
                buckets: count.then_some(b),
                labels: (!count).then(|| labels.iter().map(|s| s.to_string()).collect()),
                epsilon,
                mechanism: None,
                description: "d".into(),
                rationale: "r".into(),
                owner: "o@example.org".into(),
                link: "https://example.org".into(),
                // Expired long ago, in the middle of the week, or far in the future.
                expires: [
                    NaiveDate::from_ymd_opt(2026, 1, 1),
                    NaiveDate::from_ymd_opt(2026, 11, 18),
                    NaiveDate::from_ymd_opt(2099, 1, 1),
                ][exp as usize]
                    .unwrap(),
            }
        })
}

fn config() -> impl Strategy<Value = Config> {
    (
        prop::collection::vec(
            (
                prop::sample::select(NAMES),
                prop::sample::select(vec![
                    Versions::from(">=1.0.0"),
                    Versions::from(">=14"),
                    Versions::from("*"),
                    Versions::from("<1"),
                    Versions::Exact(vec!["1.0.0".into(), "14.2.0".into()]),
                ]),
                prop::collection::vec(counter(), 0..5),
            ),
            1..4,
        ),
        prop::sample::subsequence(OSES, 1..3),
        prop::sample::subsequence(ARCHES, 1..3),
        0.01f64..=1.0,
    )
        .prop_map(|(programs, os, arch, rate)| {
            let mut seen = BTreeSet::new();
            Config {
                origin: "example.org/config".into(),
                sample_rate: rate,
                max_epsilon: 64.0,
                os: os.iter().map(|s| s.to_string()).collect(),
                arch: arch.iter().map(|s| s.to_string()).collect(),
                programs: programs
                    .into_iter()
                    .filter(|(n, _, _)| seen.insert(*n))
                    .map(|(n, v, cs)| {
                        let mut names = BTreeSet::new();
                        Program {
                            name: n.to_string(),
                            versions: v,
                            counters: cs
                                .into_iter()
                                .filter(|c| names.insert(c.name.clone()))
                                .collect(),
                        }
                    })
                    .collect(),
            }
        })
}

fn local() -> impl Strategy<Value = LocalReport> {
    prop::collection::vec(
        (
            prop::sample::select(NAMES),
            prop::sample::select(VERSIONS),
            prop::sample::select(OSES),
            prop::sample::select(ARCHES),
            prop::collection::btree_map(
                prop::sample::select(
                    &[
                        "invocations",
                        "engine:a",
                        "engine:pcre2",
                        "engine:secret",
                        "style:loud",
                        "style:b",
                        "style:none",
                        "n/a.b",
                        "jobs:zz-9",
                        "unlisted",
                    ][..],
                ),
                0u64..3000,
                0..8,
            ),
        ),
        0..5,
    )
    .prop_map(|entries| {
        let mut seen = BTreeSet::new();
        LocalReport {
            format: 1,
            week: "2026-11-16".into(),
            programs: entries
                .into_iter()
                .filter(|(n, v, o, a, _)| seen.insert((*n, *v, *o, *a)))
                .map(|(n, v, o, a, c)| ProgramCounts {
                    name: n.into(),
                    version: v.into(),
                    os: o.into(),
                    arch: a.into(),
                    counters: c
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<BTreeMap<_, _>>(),
                })
                .collect(),
        }
    })
}

fn all_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| all_strings(x, out)),
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                out.push(k.clone());
                all_strings(x, out);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_report_validates_and_says_nothing_beyond_the_config(
        config in config(),
        local in local(),
        opted in prop::collection::btree_set(prop::sample::select(NAMES), 0..5),
        seed in any::<u64>(),
    ) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let opted_in = |p: &str| opted.contains(p);
        let built = build(&local, &config, 7, &opted_in, &mut rng);
        // The strings a report may carry: the config's, the format's keys, the week, versions.
        let mut allowed: BTreeSet<String> = [
            "format", "week", "config", "origin", "index", "x", "programs", "name", "version",
            "os", "arch", "counters", "2026-11-16", "devel",
        ].iter().map(|s| s.to_string()).collect();
        allowed.insert(config.origin.clone());
        allowed.extend(config.os.iter().cloned());
        allowed.extend(config.arch.iter().cloned());
        for p in &config.programs {
            allowed.insert(p.name.clone());
            for c in &p.counters {
                allowed.insert(c.name.clone());
                allowed.extend(c.report_labels());
            }
        }
        let eligible: Vec<&ProgramCounts> = local.programs.iter().filter(|p| {
            opted.contains(p.name.as_str())
                && config.program(&p.name).is_some()
                && config.os.contains(&p.os)
                && config.arch.contains(&p.arch)
        }).collect();
        match built.outcome {
            Outcome::Send(report) => {
                prop_assert!(check_report(&report, &config).is_ok(), "{:?}", check_report(&report, &config));
                prop_assert_eq!(report.config.index, 7);
                let v: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
                let mut strings = Vec::new();
                all_strings(&v, &mut strings);
                for s in strings {
                    let is_version = report.programs.iter().any(|p| p.version == s)
                        && local.programs.iter().any(|l| l.version == s);
                    prop_assert!(allowed.contains(&s) || is_version, "string {:?} not from the config", s);
                }
                for p in &report.programs {
                    prop_assert!(opted.contains(p.name.as_str()));
                }
                prop_assert!(report.x < config.sample_rate);
                // Exactly the keys of the format, nothing else.
                let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
                prop_assert_eq!(keys, vec!["config", "format", "programs", "week", "x"]);
            }
            Outcome::NotSampled { x, sample_rate } => {
                prop_assert!(x >= sample_rate);
                prop_assert!(!eligible.is_empty());
            }
            Outcome::NothingToReport => {
                // Only when no entry may be reported (or every counter of those expired or
                // the program's config entry is unusable).
                for p in eligible {
                    let def = config.program(&p.name).unwrap();
                    let live = def.counters.iter().any(|c| c.is_live_on(NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()));
                    prop_assert!(!live, "{} could have been reported", p.name);
                }
            }
            Outcome::BadWeek => prop_assert!(false, "the week is valid"),
        }
    }
}
