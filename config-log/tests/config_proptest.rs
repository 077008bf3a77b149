//! Property tests of the config: parsing never panics on any input, a generated valid config
//! round-trips through TOML and lints clean, and lint and diff never panic on any config.

use chrono::NaiveDate;
use clearcount_config_log::config::{
    Config, Counter, CounterKind, LintProblem, Program, Versions, diff, lint,
};
use proptest::prelude::*;
use proptest::sample::subsequence;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
}

const EXAMPLE: &str = include_str!("../../docs/examples/config.toml");

// ---------------------------------------------------------------------------------------------
// Valid configs

fn program_name() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9._/-]{0,20}"
}

fn counter_name() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9/_.-]{0,20}"
}

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9._+-]{0,10}".prop_filter("none is reserved", |l| l != "none")
}

fn text() -> impl Strategy<Value = String> {
    // Any printable text, including quotes, backslashes, newlines and non-ASCII.
    "[^\u{0}-\u{8}\u{b}-\u{1f}\u{7f}]{1,40}".prop_filter("not blank", |s| !s.trim().is_empty())
}

fn future_date() -> impl Strategy<Value = NaiveDate> {
    (1i64..5000).prop_map(|days| today() + chrono::Days::new(days as u64))
}

fn buckets() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::btree_set(1u64..u64::MAX, 1..31)
        .prop_map(|set| std::iter::once(0).chain(set).collect::<Vec<u64>>())
}

fn labels() -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set(label(), 1..=32).prop_map(|s| s.into_iter().collect())
}

/// A valid counter with a given epsilon share.
fn counter(epsilon: Option<f64>) -> impl Strategy<Value = Counter> {
    (
        counter_name(),
        prop_oneof![buckets().prop_map(Ok), labels().prop_map(Err)],
        text(),
        text(),
        text(),
        "https://[a-z]{1,10}\\.example/[a-z0-9/]{0,20}",
        future_date(),
    )
        .prop_map(
            move |(name, values, description, rationale, owner, link, expires)| {
                let (kind, buckets, labels) = match values {
                    Ok(b) => (CounterKind::Count, Some(b), None),
                    Err(l) => (CounterKind::Category, None, Some(l)),
                };
                Counter {
                    name,
                    kind,
                    buckets,
                    labels,
                    epsilon,
                    mechanism: None,
                    description,
                    rationale,
                    owner,
                    link,
                    expires,
                }
            },
        )
}

/// A valid program whose epsilons add up to at most `max_epsilon`.
fn program(max_epsilon: f64) -> impl Strategy<Value = Program> {
    (
        program_name(),
        prop_oneof![
            Just(Versions::from("*")),
            (0u64..30, 0u64..30, 0u64..30)
                .prop_map(|(a, b, c)| Versions::Requirement(format!(">={a}.{b}.{c}"))),
            (0u64..30, 0u64..30)
                .prop_map(|(a, b)| Versions::Requirement(format!("^{a}.{b}, <{}", a + 1))),
            prop::collection::btree_set((0u64..30, 0u64..30, 0u64..30), 1..5).prop_map(|set| {
                Versions::Exact(set.iter().map(|(a, b, c)| format!("{a}.{b}.{c}")).collect())
            }),
        ],
        prop::collection::vec((any::<bool>(), 0.05f64..1.0), 0..6),
    )
        .prop_flat_map(move |(name, versions, shares)| {
            let n = shares.len().max(1) as f64;
            let counters: Vec<_> = shares
                .iter()
                .map(|&(with_rr, share)| {
                    // Each epsilon is at most max/n, so the sum fits; capped at 8.
                    let e = (share * max_epsilon / n).min(8.0);
                    counter(if with_rr && e > 0.0 { Some(e) } else { None })
                })
                .collect();
            (Just(name), Just(versions), counters)
        })
        .prop_map(|(name, versions, mut counters)| {
            // Counter names must be unique within the program.
            let mut seen = std::collections::HashSet::new();
            counters.retain(|c| seen.insert(c.name.clone()));
            Program {
                name,
                versions,
                counters,
            }
        })
}

fn valid_config() -> impl Strategy<Value = Config> {
    (
        "[a-z]{1,12}\\.[a-z]{2,5}(/[a-z]{1,8})?",
        prop_oneof![Just(1.0), 1e-9f64..=1.0],
        0.01f64..40.0,
        subsequence(
            vec!["linux", "macos", "windows", "freebsd", "android"],
            1..=5,
        ),
        subsequence(vec!["x86_64", "aarch64", "x86", "riscv64", "wasm32"], 1..=5),
    )
        .prop_flat_map(|(origin, sample_rate, max_epsilon, os, arch)| {
            (
                Just(origin),
                Just(sample_rate),
                Just(max_epsilon),
                Just(os),
                Just(arch),
                prop::collection::vec(program(max_epsilon), 0..4),
            )
        })
        .prop_map(
            |(origin, sample_rate, max_epsilon, os, arch, mut programs)| {
                let mut seen = std::collections::HashSet::new();
                programs.retain(|p| seen.insert(p.name.clone()));
                Config {
                    origin,
                    sample_rate,
                    max_epsilon,
                    os: os.into_iter().map(String::from).collect(),
                    arch: arch.into_iter().map(String::from).collect(),
                    programs,
                }
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Arbitrary configs (anything the types allow)

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        -10.0f64..10.0,
    ]
}

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        "[a-z]{0,6}",
        Just(String::new()),
        Just("none".to_string())
    ]
}

fn any_counter() -> impl Strategy<Value = Counter> {
    (
        any_string(),
        any::<bool>(),
        prop::option::of(prop::collection::vec(any::<u64>(), 0..40)),
        prop::option::of(prop::collection::vec(any_string(), 0..40)),
        prop::option::of(any_f64()),
        (any_string(), any_string(), any_string(), any_string()),
        (-400_000i32..400_000, 1u32..366),
    )
        .prop_map(
            |(name, count, buckets, labels, epsilon, texts, (year, day))| Counter {
                name,
                kind: if count {
                    CounterKind::Count
                } else {
                    CounterKind::Category
                },
                buckets,
                labels,
                epsilon,
                mechanism: None,
                description: texts.0,
                rationale: texts.1,
                owner: texts.2,
                link: texts.3,
                expires: NaiveDate::from_yo_opt(year, day)
                    .or_else(|| NaiveDate::from_yo_opt(year, 1))
                    .unwrap_or(NaiveDate::MIN),
            },
        )
}

fn any_config() -> impl Strategy<Value = Config> {
    (
        any_string(),
        any_f64(),
        any_f64(),
        prop::collection::vec(any_string(), 0..4),
        prop::collection::vec(any_string(), 0..4),
        prop::collection::vec(
            (
                any_string(),
                prop_oneof![
                    any_string().prop_map(Versions::Requirement),
                    prop::collection::vec(any_string(), 0..4).prop_map(Versions::Exact),
                ],
                prop::collection::vec(any_counter(), 0..70),
            ),
            0..4,
        ),
    )
        .prop_map(
            |(origin, sample_rate, max_epsilon, os, arch, programs)| Config {
                origin,
                sample_rate,
                max_epsilon,
                os,
                arch,
                programs: programs
                    .into_iter()
                    .map(|(name, versions, counters)| Program {
                        name,
                        versions,
                        counters,
                    })
                    .collect(),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Config::parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_strings(text in ".{0,512}") {
        let _ = Config::parse(text.as_bytes());
    }

    /// Mutations of a real config reach deep into the parser and the schema; whatever
    /// parses must lint and diff without panicking, and every error must render.
    #[test]
    fn parse_never_panics_on_mutated_configs(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..8, ".{0,6}"), 1..6)
    ) {
        let mut text = EXAMPLE.to_string();
        for (at, cut, insert) in edits {
            let mut start = at.index(text.len() + 1);
            while !text.is_char_boundary(start) { start -= 1; }
            let mut end = (start + cut).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            text.replace_range(start..end, &insert);
        }
        match Config::parse(text.as_bytes()) {
            Ok(config) => {
                let _ = lint(&config, today());
                let _ = diff(Some(&Config::parse(EXAMPLE.as_bytes()).unwrap()), &config);
            }
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }

    #[test]
    fn valid_configs_round_trip_and_lint_clean(config in valid_config()) {
        prop_assert_eq!(lint(&config, today()), Vec::<LintProblem>::new());
        let text = config.to_toml().expect("serializes");
        let parsed = Config::parse(text.as_bytes());
        prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed.err(), text);
        prop_assert_eq!(parsed.unwrap(), config.clone());
        let same = diff(Some(&config), &config);
        prop_assert!(same.is_empty(), "{}", same.text);
        let first = diff(None, &config);
        let loud = first.text.lines().filter(|l| l.starts_with("!! NO RANDOMIZED RESPONSE")).count();
        let without: usize = config.programs.iter().map(|p| {
            let n = p.counters.iter().filter(|c| c.epsilon.is_none()).count();
            // One line per added counter, and one summary line per program that has any.
            n + usize::from(n > 0)
        }).sum();
        prop_assert_eq!(loud, without);
    }

    #[test]
    fn lint_and_diff_never_panic_on_any_config(a in any_config(), b in any_config()) {
        let problems = lint(&a, today());
        for p in &problems {
            prop_assert!(!p.place.is_empty() && !p.message.is_empty());
        }
        let review = diff(Some(&a), &b);
        prop_assert!(!review.text.is_empty());
        let _ = diff(None, &a);
    }
}
