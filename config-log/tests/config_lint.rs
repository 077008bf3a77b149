//! Parsing and lint of the counter config (DESIGN.md section 2): the design's example parses and
//! lints clean, every rule is caught with its place (one case per rule), and a config breaking
//! every rule at once gets every problem reported in one run.

use chrono::NaiveDate;
use clearcount_config_log::config::{
    Config, ConfigError, Counter, LintProblem, MAX_CONFIG_BYTES, Program, Versions, lint,
};

/// The example of DESIGN.md section 2, verbatim (comments included).
const DESIGN_EXAMPLE: &str = r#"origin = "telemetry.example.org/config"   # same string as the log origin
sample_rate = 0.25                        # fraction of opted-in weekly reports that are uploaded
max_epsilon = 4.0                          # per program per weekly report, sum over its counters
os = ["linux", "macos", "windows"]         # std::env::consts::OS values accepted
arch = ["x86_64", "aarch64"]               # std::env::consts::ARCH values accepted

[[program]]
name = "ripgrep"
versions = ">=14.0.0"                      # semver requirement; other versions report as "devel"

[[program.counter]]
name = "invocations"
kind = "count"                             # weekly total, reported as the bucket it falls in
buckets = [0, 1, 10, 100, 1000]            # lower bounds; labels "0", "1", "10", "100", "1000"
epsilon = 1.0                              # k-ary randomized response over the buckets
description = "How many times rg ran in the week."
rationale = "Are most users interactive (many runs) or scripted (very many)?"
owner = "maintainer@example.org"
link = "https://github.com/example/ripgrep/issues/1"
expires = "2027-06-30"

[[program.counter]]
name = "engine"
kind = "category"                          # the most-used label of the week
labels = ["default", "pcre2", "other"]     # plus the implicit label "none" (never recorded)
epsilon = 1.0
description = "Which regex engine is used most."
rationale = "Can the pcre2 feature become optional?"
owner = "maintainer@example.org"
link = "https://github.com/example/ripgrep/issues/2"
expires = "2027-06-30"
"#;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
}

fn example() -> Config {
    Config::parse(DESIGN_EXAMPLE.as_bytes()).expect("the design example parses")
}

#[test]
fn versions_may_be_a_list_of_exact_versions() {
    let list = DESIGN_EXAMPLE.replace(
        "versions = \">=14.0.0\"",
        "versions = [\"14.1.0\", \"14.1.1\"]",
    );
    let config = Config::parse(list.as_bytes()).expect("a list of versions parses");
    let rg = config.program("ripgrep").unwrap();
    assert_eq!(
        rg.versions,
        Versions::Exact(vec!["14.1.0".into(), "14.1.1".into()])
    );
    assert_eq!(lint(&config, today()), Vec::<LintProblem>::new());
    // Written back, the list stays a list.
    let again = Config::parse(toml::to_string(&config).unwrap().as_bytes()).unwrap();
    assert_eq!(again, config);

    let number = DESIGN_EXAMPLE.replace("versions = \">=14.0.0\"", "versions = 14");
    let err = Config::parse(number.as_bytes()).unwrap_err().to_string();
    assert!(
        err.contains("a semver requirement") && err.contains("list of exact versions"),
        "{err}"
    );
}

#[test]
fn design_example_parses_to_the_expected_values_and_lints_clean() {
    let config = example();
    assert_eq!(config.origin, "telemetry.example.org/config");
    assert_eq!(config.sample_rate, 0.25);
    assert_eq!(config.max_epsilon, 4.0);
    assert_eq!(config.os, ["linux", "macos", "windows"]);
    assert_eq!(config.arch, ["x86_64", "aarch64"]);
    let rg = config.program("ripgrep").expect("ripgrep");
    assert_eq!(rg.versions, Versions::from(">=14.0.0"));
    assert_eq!(rg.counters.len(), 2);
    assert_eq!(
        rg.counters[0].report_labels(),
        ["0", "1", "10", "100", "1000"]
    );
    assert_eq!(
        rg.counters[1].report_labels(),
        ["default", "pcre2", "other", "none"]
    );
    assert_eq!(
        rg.counters[0].expires,
        NaiveDate::from_ymd_opt(2027, 6, 30).unwrap()
    );
    assert_eq!(lint(&config, today()), Vec::<LintProblem>::new());
    // The same config on its last day is still live, but then no longer "in the future".
    assert!(rg.counters[0].is_live_on(NaiveDate::from_ymd_opt(2027, 6, 30).unwrap()));
    assert!(!rg.counters[0].is_live_on(NaiveDate::from_ymd_opt(2027, 7, 1).unwrap()));
    assert_eq!(
        lint(&config, NaiveDate::from_ymd_opt(2027, 6, 30).unwrap()).len(),
        2
    );
}

#[test]
fn docs_example_config_lints_clean() {
    let text = include_str!("../../docs/examples/config.toml");
    let config = Config::parse(text.as_bytes()).expect("docs/examples/config.toml parses");
    assert_eq!(config.programs.len(), 2);
    assert_eq!(lint(&config, today()), Vec::<LintProblem>::new());
}

// ---------------------------------------------------------------------------------------------
// Parse errors

fn parse_err(text: &str) -> ConfigError {
    Config::parse(text.as_bytes()).expect_err("must not parse")
}

fn syntax(err: ConfigError) -> (usize, usize, String, String) {
    match err {
        ConfigError::Syntax {
            line,
            column,
            place,
            message,
        } => (line, column, place, message),
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn unknown_top_level_key_is_rejected_with_line_and_column() {
    let text = DESIGN_EXAMPLE.replacen("sample_rate = 0.25", "sample_rate = 0.25\ncolour = 1", 1);
    let err = parse_err(&text);
    let shown = err.to_string();
    let (line, column, place, message) = syntax(err);
    assert_eq!((line, column), (3, 1));
    assert_eq!(place, "");
    assert!(message.contains("unknown field `colour`"), "{message}");
    assert!(
        shown.starts_with("line 3, column 1: unknown field `colour`"),
        "{shown}"
    );
}

#[test]
fn unknown_counter_key_names_the_program_and_counter() {
    let text = DESIGN_EXAMPLE.replacen(
        "rationale = \"Can the pcre2",
        "  rationalle = \"typo\"\nrationale = \"Can the pcre2",
        1,
    );
    let (line, column, place, message) = syntax(parse_err(&text));
    assert_eq!((line, column), (28, 3));
    assert_eq!(place, "program \"ripgrep\" counter \"engine\"");
    assert!(message.contains("unknown field `rationalle`"), "{message}");
    let shown = parse_err(&text).to_string();
    assert!(
        shown.starts_with(
            "line 28, column 3 (program \"ripgrep\" counter \"engine\"): unknown field `rationalle`"
        ),
        "{shown}"
    );
}

#[test]
fn unknown_program_key_is_rejected() {
    let text = DESIGN_EXAMPLE.replacen("versions =", "homepage = \"x\"\nversions =", 1);
    let (line, _, place, message) = syntax(parse_err(&text));
    assert_eq!(line, 9);
    assert_eq!(place, "program \"ripgrep\"");
    assert!(message.contains("unknown field `homepage`"), "{message}");
}

#[test]
fn missing_and_mistyped_keys_are_named() {
    let text = DESIGN_EXAMPLE.replacen("owner = \"maintainer@example.org\"\n", "", 1);
    let (_, _, place, message) = syntax(parse_err(&text));
    assert!(message.contains("missing field `owner`"), "{message}");
    assert!(place.starts_with("program \"ripgrep\""), "{place}");

    let text = DESIGN_EXAMPLE.replacen("sample_rate = 0.25", "sample_rate = \"a lot\"", 1);
    let (line, column, _, message) = syntax(parse_err(&text));
    assert_eq!((line, column), (2, 15));
    assert!(message.contains("expected f64"), "{message}");

    let text = DESIGN_EXAMPLE.replacen("kind = \"count\"", "kind = \"histogram\"", 1);
    let (line, _, place, message) = syntax(parse_err(&text));
    assert_eq!(line, 13);
    assert_eq!(place, "program \"ripgrep\" counter \"invocations\"");
    assert!(message.contains("histogram"), "{message}");

    let text = DESIGN_EXAMPLE.replacen("expires = \"2027-06-30\"", "expires = \"June\"", 1);
    let (line, _, _, _) = syntax(parse_err(&text));
    assert_eq!(line, 20);

    let text = DESIGN_EXAMPLE.replacen("buckets = [0, 1,", "buckets = [-1, 1,", 1);
    let (line, _, _, _) = syntax(parse_err(&text));
    assert_eq!(line, 14);
}

#[test]
fn bad_toml_syntax_is_located() {
    let (line, column, _, message) = syntax(parse_err("origin = \"x\"\nsample_rate = = 1\n"));
    assert_eq!(line, 2);
    assert!(column >= 14, "{column}");
    assert!(!message.is_empty());
    let (line, _, _, _) = syntax(parse_err("origin = \"unterminated\n"));
    assert_eq!(line, 1);
}

#[test]
fn size_limit_is_65535_bytes() {
    let mut text = DESIGN_EXAMPLE.to_string();
    text.push('#');
    while text.len() < MAX_CONFIG_BYTES {
        text.push('x');
    }
    assert_eq!(text.len(), 65_535);
    assert!(Config::parse(text.as_bytes()).is_ok());
    text.push('x');
    match Config::parse(text.as_bytes()) {
        Err(ConfigError::TooLarge(65_536)) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn invalid_utf8_is_rejected() {
    let mut bytes = DESIGN_EXAMPLE.as_bytes().to_vec();
    bytes.extend_from_slice(b"# \xff\xfe\n");
    assert!(matches!(Config::parse(&bytes), Err(ConfigError::Utf8(_))));
}

// ---------------------------------------------------------------------------------------------
// Lint: one case per rule, and all of them at once

/// What a case breaks.
enum Scope {
    /// The whole config.
    Top(fn(&mut Config)),
    /// One program (in the combined config: a program of its own).
    Program(fn(&mut Program)),
    /// One counter (in the combined config: the first counter of a program of its own).
    Counter(fn(&mut Counter)),
}

struct Case {
    rule: &'static str,
    scope: Scope,
    /// Expected problems: the place, where `{p}` is the program's place and `{c}` the
    /// counter's place, and a part of the message.
    expect: &'static [(&'static str, &'static str)],
    /// Whether the case can join the all-at-once config (a bad max_epsilon disables the
    /// budget rule, so it is checked alone).
    combinable: bool,
}

fn case(rule: &'static str, scope: Scope, expect: &'static [(&'static str, &'static str)]) -> Case {
    Case {
        rule,
        scope,
        expect,
        combinable: true,
    }
}

fn alone(
    rule: &'static str,
    scope: Scope,
    expect: &'static [(&'static str, &'static str)],
) -> Case {
    Case {
        combinable: false,
        ..case(rule, scope, expect)
    }
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn cases() -> Vec<Case> {
    use Scope::{Counter as Ctr, Program as Prog, Top};
    vec![
        case(
            "origin empty",
            Top(|c| c.origin = " ".into()),
            &[("key \"origin\"", "must not be empty")],
        ),
        alone(
            "origin with a space",
            Top(|c| c.origin = "a b".into()),
            &[("key \"origin\"", "cannot be a log origin")],
        ),
        alone(
            "origin with a plus",
            Top(|c| c.origin = "a+b".into()),
            &[("key \"origin\"", "cannot be a log origin")],
        ),
        case(
            "sample_rate above 1",
            Top(|c| c.sample_rate = 1.5),
            &[("key \"sample_rate\"", "at most 1, not 1.5")],
        ),
        alone(
            "sample_rate zero",
            Top(|c| c.sample_rate = 0.0),
            &[("key \"sample_rate\"", "more than 0")],
        ),
        alone(
            "sample_rate NaN",
            Top(|c| c.sample_rate = f64::NAN),
            &[("key \"sample_rate\"", "not NaN")],
        ),
        alone(
            "max_epsilon zero",
            Top(|c| c.max_epsilon = 0.0),
            &[("key \"max_epsilon\"", "positive finite")],
        ),
        alone(
            "max_epsilon infinite",
            Top(|c| c.max_epsilon = f64::INFINITY),
            &[("key \"max_epsilon\"", "positive finite")],
        ),
        alone(
            "max_epsilon negative",
            Top(|c| c.max_epsilon = -1.0),
            &[("key \"max_epsilon\"", "positive finite")],
        ),
        case(
            "os empty",
            Top(|c| c.os.clear()),
            &[("key \"os\"", "at least one")],
        ),
        alone(
            "os unknown",
            Top(|c| c.os.push("darwin".into())),
            &[("key \"os\"", "did you mean \"macos\"")],
        ),
        alone(
            "os repeated",
            Top(|c| c.os.push("linux".into())),
            &[("key \"os\"", "more than once")],
        ),
        case(
            "arch unknown",
            Top(|c| c.arch.push("amd64".into())),
            &[("key \"arch\"", "did you mean \"x86_64\"")],
        ),
        alone(
            "arch empty",
            Top(|c| c.arch.clear()),
            &[("key \"arch\"", "at least one")],
        ),
        alone(
            "arch upper case",
            Top(|c| c.arch = vec!["X86_64".into()]),
            &[("key \"arch\"", "did you mean \"x86_64\"")],
        ),
        case(
            "program names unique",
            Top(|c| {
                let mut dup = c.programs[0].clone();
                dup.counters.truncate(1);
                c.programs.push(dup);
            }),
            &[("program \"ripgrep\" key \"name\"", "listed more than once")],
        ),
        case(
            "program name pattern",
            Prog(|p| p.name = "Rip grep".into()),
            &[("{p} key \"name\"", "not a valid program name")],
        ),
        alone(
            "program name empty",
            Prog(|p| p.name = String::new()),
            &[("{p} key \"name\"", "not a valid program name")],
        ),
        case(
            "versions semver",
            Prog(|p| p.versions = "fourteen".into()),
            &[("{p} key \"versions\"", "not a semver requirement")],
        ),
        alone(
            "versions empty",
            Prog(|p| p.versions = Versions::from("")),
            &[("{p} key \"versions\"", "must be a semver requirement")],
        ),
        alone(
            "exact versions empty",
            Prog(|p| p.versions = Versions::Exact(Vec::new())),
            &[("{p} key \"versions\"", "lists no version")],
        ),
        case(
            "exact versions semver",
            Prog(|p| p.versions = Versions::Exact(vec!["14.1.0".into(), "14.1".into()])),
            &[("{p} key \"versions\"", "\"14.1\" is not a semver version")],
        ),
        case(
            "exact versions without build metadata",
            Prog(|p| p.versions = Versions::Exact(vec!["14.1.0+git".into()])),
            &[("{p} key \"versions\"", "has build metadata")],
        ),
        case(
            "exact versions distinct",
            Prog(|p| p.versions = Versions::Exact(vec!["14.1.0".into(), "14.1.0".into()])),
            &[("{p} key \"versions\"", "lists 14.1.0 twice")],
        ),
        case(
            "at most 128 exact versions",
            Prog(|p| p.versions = Versions::Exact((0..129).map(|i| format!("1.0.{i}")).collect())),
            &[(
                "{p} key \"versions\"",
                "lists 129 versions, more than the 128",
            )],
        ),
        case(
            "at most 64 counters",
            Prog(|p| {
                let template = p.counters[0].clone();
                p.counters = (0..65)
                    .map(|i| Counter {
                        name: format!("c{i}"),
                        epsilon: None,
                        mechanism: None,
                        ..template.clone()
                    })
                    .collect();
            }),
            &[("{p} key \"counter\"", "65 counters, more than the 64")],
        ),
        case(
            "counter names unique",
            Prog(|p| {
                let dup = p.counters[1].clone();
                p.counters.push(dup);
                for c in &mut p.counters {
                    c.epsilon = Some(0.5);
                }
            }),
            &[(
                "{p} counter \"engine\" key \"name\"",
                "listed more than once",
            )],
        ),
        case(
            "epsilon sum at most max_epsilon",
            Prog(|p| {
                for c in &mut p.counters {
                    c.epsilon = Some(2.5);
                }
            }),
            &[(
                "{p} key \"counter\"",
                "epsilon sum over its counters is 5, more than max_epsilon 4",
            )],
        ),
        case(
            "counter name pattern",
            Ctr(|c| c.name = "_private".into()),
            &[("{c} key \"name\"", "not a valid counter name")],
        ),
        case(
            "description non-empty",
            Ctr(|c| c.description = "  ".into()),
            &[("{c} key \"description\"", "must not be empty")],
        ),
        case(
            "rationale non-empty",
            Ctr(|c| c.rationale = String::new()),
            &[("{c} key \"rationale\"", "must not be empty")],
        ),
        case(
            "owner non-empty",
            Ctr(|c| c.owner = String::new()),
            &[("{c} key \"owner\"", "must not be empty")],
        ),
        case(
            "link a URL",
            Ctr(|c| c.link = "github.com/example/issues/1".into()),
            &[("{c} key \"link\"", "is not a URL")],
        ),
        alone(
            "link empty",
            Ctr(|c| c.link = String::new()),
            &[("{c} key \"link\"", "must not be empty")],
        ),
        case(
            "expires in the past",
            Ctr(|c| c.expires = date("2026-01-01")),
            &[("{c} key \"expires\"", "2026-01-01 is not in the future")],
        ),
        alone(
            "expires today",
            Ctr(|c| c.expires = date("2026-11-20")),
            &[("{c} key \"expires\"", "not in the future")],
        ),
        case(
            "buckets start at 0",
            Ctr(|c| c.buckets = Some(vec![1, 10])),
            &[("{c} key \"buckets\"", "must start at 0, not 1")],
        ),
        case(
            "buckets strictly increasing",
            Ctr(|c| c.buckets = Some(vec![0, 10, 10, 5])),
            &[
                ("{c} key \"buckets\"", "10 comes after 10"),
                ("{c} key \"buckets\"", "5 comes after 10"),
            ],
        ),
        case(
            "count without buckets",
            Ctr(|c| c.buckets = None),
            &[("{c} key \"buckets\"", "needs buckets")],
        ),
        alone(
            "count with empty buckets",
            Ctr(|c| c.buckets = Some(vec![])),
            &[("{c} key \"buckets\"", "at least the bucket 0")],
        ),
        alone(
            "count with one bucket",
            Ctr(|c| c.buckets = Some(vec![0])),
            &[("{c} key \"buckets\"", "single bucket")],
        ),
        case(
            "count with labels",
            Ctr(|c| c.labels = Some(vec!["a".into()])),
            &[("{c} key \"labels\"", "has buckets, not labels")],
        ),
        case(
            "at most 32 buckets",
            Ctr(|c| c.buckets = Some((0..33).collect())),
            &[("{c} key \"buckets\"", "33 buckets, more than the 32")],
        ),
        case(
            "labels distinct",
            Ctr(|c| {
                c.kind = clearcount_config_log::config::CounterKind::Category;
                c.buckets = None;
                c.labels = Some(vec!["a".into(), "b".into(), "a".into()]);
            }),
            &[("{c} key \"labels\"", "\"a\" is listed more than once")],
        ),
        case(
            "label none reserved",
            Ctr(|c| {
                c.kind = clearcount_config_log::config::CounterKind::Category;
                c.buckets = None;
                c.labels = Some(vec!["a".into(), "none".into()]);
            }),
            &[("{c} key \"labels\"", "\"none\" is reserved")],
        ),
        case(
            "label pattern",
            Ctr(|c| {
                c.kind = clearcount_config_log::config::CounterKind::Category;
                c.buckets = None;
                c.labels = Some(vec!["a".into(), "Big Label".into()]);
            }),
            &[("{c} key \"labels\"", "not a valid label")],
        ),
        case(
            "category with buckets",
            Ctr(|c| {
                c.kind = clearcount_config_log::config::CounterKind::Category;
                c.labels = Some(vec!["a".into()]);
            }),
            &[("{c} key \"buckets\"", "has labels, not buckets")],
        ),
        case(
            "category without labels",
            Ctr(|c| {
                c.kind = clearcount_config_log::config::CounterKind::Category;
                c.buckets = None;
                c.labels = None;
            }),
            &[("{c} key \"labels\"", "needs labels")],
        ),
        alone(
            "category with empty labels",
            Ctr(|c| {
                c.kind = clearcount_config_log::config::CounterKind::Category;
                c.buckets = None;
                c.labels = Some(vec![]);
            }),
            &[("{c} key \"labels\"", "at least one label")],
        ),
        case(
            "at most 32 labels",
            Ctr(|c| {
                c.kind = clearcount_config_log::config::CounterKind::Category;
                c.buckets = None;
                c.labels = Some((0..33).map(|i| format!("l{i}")).collect());
            }),
            &[("{c} key \"labels\"", "33 labels, more than the 32")],
        ),
        case(
            "epsilon above 8",
            Ctr(|c| c.epsilon = Some(8.5)),
            &[("{c} key \"epsilon\"", "at most 8")],
        ),
        alone(
            "epsilon zero",
            Ctr(|c| c.epsilon = Some(0.0)),
            &[("{c} key \"epsilon\"", "more than 0")],
        ),
        alone(
            "epsilon NaN",
            Ctr(|c| c.epsilon = Some(f64::NAN)),
            &[("{c} key \"epsilon\"", "not NaN")],
        ),
        alone(
            "epsilon infinite",
            Ctr(|c| c.epsilon = Some(f64::INFINITY)),
            &[("{c} key \"epsilon\"", "not inf")],
        ),
    ]
}

/// `program "x"` or `program #n`.
fn place_of(what: &str, name: &str, index: usize) -> String {
    if name.is_empty() {
        format!("{what} #{}", index + 1)
    } else {
        format!("{what} {name:?}")
    }
}

/// Applies `case` to `config`: top-level cases in place, program and counter cases to a new
/// program of their own (named `p-<n>`, a copy of the example's program). Returns the
/// problems expected, with their places resolved.
fn apply(config: &mut Config, case: &Case, own_program: bool) -> Vec<(String, &'static str)> {
    let (mut p, mut c) = (String::new(), String::new());
    match case.scope {
        Scope::Top(f) => f(config),
        Scope::Program(_) | Scope::Counter(_) => {
            let index = if own_program {
                let mut program = example().programs[0].clone();
                program.name = format!("p-{}", config.programs.len());
                config.programs.push(program);
                config.programs.len() - 1
            } else {
                0
            };
            let program = &mut config.programs[index];
            match case.scope {
                Scope::Program(f) => f(program),
                Scope::Counter(f) => f(&mut program.counters[0]),
                Scope::Top(_) => unreachable!(),
            }
            p = place_of("program", &program.name, index);
            c = format!("{p} {}", place_of("counter", &program.counters[0].name, 0));
        }
    }
    case.expect
        .iter()
        .map(|(place, part)| (place.replace("{p}", &p).replace("{c}", &c), *part))
        .collect()
}

/// Asserts that `problems` are exactly `expected`: one problem per expectation, at that
/// place, with a message containing that part.
fn assert_problems(rule: &str, problems: &[LintProblem], expected: &[(String, &str)]) {
    let mut unmatched: Vec<&LintProblem> = problems.iter().collect();
    for (place, part) in expected {
        let Some(i) = unmatched
            .iter()
            .position(|p| &p.place == place && p.message.contains(part))
        else {
            panic!(
                "{rule}: no problem at {place:?} saying {part:?}; got:\n{}",
                problems
                    .iter()
                    .map(|p| format!("  {p}\n"))
                    .collect::<String>()
            );
        };
        unmatched.remove(i);
    }
    assert!(
        unmatched.is_empty(),
        "{rule}: unexpected problems:\n{}",
        unmatched
            .iter()
            .map(|p| format!("  {p}\n"))
            .collect::<String>()
    );
}

#[test]
fn each_rule_alone_is_reported_with_its_place() {
    for case in cases() {
        let mut config = example();
        let expected = apply(&mut config, &case, false);
        let problems = lint(&config, today());
        assert_problems(case.rule, &problems, &expected);
    }
}

#[test]
fn every_rule_broken_at_once_is_reported_in_one_run() {
    let mut config = example();
    let mut expected = Vec::new();
    let mut combined = 0;
    for case in cases().iter().filter(|c| c.combinable) {
        expected.extend(apply(&mut config, case, true));
        combined += 1;
    }
    assert!(combined >= 25, "only {combined} rules combined");
    let problems = lint(&config, today());
    assert_problems("all at once", &problems, &expected);
    // Every problem names its place and prints as `place: message`.
    for problem in &problems {
        assert!(!problem.place.is_empty());
        assert_eq!(
            problem.to_string(),
            format!("{}: {}", problem.place, problem.message)
        );
    }
}

#[test]
fn a_parsed_config_breaking_rules_reports_them_in_file_order() {
    let text = r#"
origin = ""
sample_rate = 0.0
max_epsilon = 2.0
os = ["linux", "Linux"]
arch = ["x86_64"]

[[program]]
name = "tool"
versions = "^1.2"

[[program.counter]]
name = "mode"
kind = "category"
labels = ["fast", "none"]
epsilon = 1.5
description = "Which mode is used."
rationale = "Is the slow mode still needed?"
owner = "a@example.org"
link = "https://example.org/1"
expires = "2027-01-01"

[[program.counter]]
name = "runs"
kind = "count"
buckets = [0, 5, 2]
epsilon = 1.0
description = "Runs."
rationale = "How often?"
owner = "a@example.org"
link = "mailto:a@example.org"
expires = "2027-01-01"
"#;
    let config = Config::parse(text.as_bytes()).unwrap();
    let lines: Vec<String> = lint(&config, today())
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "key \"origin\": must not be empty",
            "key \"sample_rate\": must be more than 0 and at most 1, not 0",
            "key \"os\": \"Linux\" is not a std::env::consts::OS value (did you mean \"linux\"?)",
            "program \"tool\" counter \"mode\" key \"labels\": \"none\" is reserved for weeks without any recording",
            "program \"tool\" counter \"runs\" key \"buckets\": must be strictly increasing: 2 comes after 5",
            "program \"tool\" counter \"runs\" key \"link\": \"mailto:a@example.org\" is not a URL: it must start with https:// or http://",
            "program \"tool\" key \"counter\": the epsilon sum over its counters is 2.5, more than max_epsilon 2",
        ]
    );
}

#[test]
fn epsilon_sum_allows_rounding_and_counters_without_epsilon() {
    let mut config = example();
    let template = config.programs[0].counters[0].clone();
    config.programs[0].counters = (0..10)
        .map(|i| Counter {
            name: format!("c{i}"),
            epsilon: Some(0.4),
            mechanism: None,
            ..template.clone()
        })
        .chain((10..20).map(|i| Counter {
            name: format!("c{i}"),
            epsilon: None,
            mechanism: None,
            ..template.clone()
        }))
        .collect();
    assert_eq!(lint(&config, today()), Vec::<LintProblem>::new());
}

#[test]
fn deeply_nested_input_is_an_error_not_a_crash() {
    for text in [
        format!("origin = {}{}\n", "[".repeat(30_000), "]".repeat(30_000)),
        format!("origin = {}1{}\n", "{a=".repeat(10_000), "}".repeat(10_000)),
    ] {
        let (line, _, _, message) = syntax(parse_err(&text));
        assert_eq!(line, 1);
        assert!(!message.is_empty());
    }
}
