//! Lint: every rule of DESIGN.md section 2, every problem with its place, in one run.

use std::collections::HashSet;
use std::fmt;

use chrono::NaiveDate;
use clearcount_privacy::{PrivacyError, budget};

use super::{Config, Counter, CounterKind, NONE_LABEL, Program, VersionMatcher, Versions};

/// At most this many counters in one program.
pub const MAX_COUNTERS_PER_PROGRAM: usize = 64;

/// The most exact versions a program may list: each is a row of every version breakdown.
pub const MAX_EXACT_VERSIONS: usize = 128;
/// At most this many buckets (count) or listed labels (category) in one counter.
pub const MAX_LABELS_PER_COUNTER: usize = 32;
/// The largest epsilon a single counter may use.
pub const MAX_COUNTER_EPSILON: f64 = budget::MAX_COUNTER_EPSILON;

/// Values of `std::env::consts::OS` that Rust targets report. A config naming anything else
/// would silently match no client, so lint refuses it.
pub const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "cygwin",
    "dragonfly",
    "emscripten",
    "espidf",
    "freebsd",
    "fuchsia",
    "haiku",
    "hermit",
    "horizon",
    "hurd",
    "illumos",
    "ios",
    "l4re",
    "linux",
    "macos",
    "netbsd",
    "nto",
    "nuttx",
    "openbsd",
    "redox",
    "rtems",
    "solaris",
    "solid_asp3",
    "tvos",
    "uefi",
    "visionos",
    "vita",
    "vxworks",
    "wasi",
    "watchos",
    "windows",
    "xous",
];

/// Values of `std::env::consts::ARCH` that Rust targets report.
pub const KNOWN_ARCH: &[&str] = &[
    "aarch64",
    "arm",
    "arm64ec",
    "avr",
    "bpf",
    "csky",
    "hexagon",
    "loongarch32",
    "loongarch64",
    "m68k",
    "mips",
    "mips32r6",
    "mips64",
    "mips64r6",
    "msp430",
    "nvptx64",
    "powerpc",
    "powerpc64",
    "riscv32",
    "riscv64",
    "s390x",
    "sparc",
    "sparc64",
    "wasm32",
    "wasm64",
    "x86",
    "x86_64",
    "xtensa",
];

/// Common spellings from other ecosystems and what Rust calls them.
const ALIASES: &[(&str, &str)] = &[
    ("darwin", "macos"),
    ("osx", "macos"),
    ("mac", "macos"),
    ("win", "windows"),
    ("win32", "windows"),
    ("win64", "windows"),
    ("amd64", "x86_64"),
    ("x64", "x86_64"),
    ("i386", "x86"),
    ("i686", "x86"),
    ("386", "x86"),
    ("arm64", "aarch64"),
    ("armv7", "arm"),
    ("ppc64", "powerpc64"),
    ("ppc64le", "powerpc64"),
];

/// One broken rule and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LintProblem {
    /// Where: e.g. `program "rg" counter "engine" key "labels"`, or `key "sample_rate"` at the
    /// top level. A program or counter without a usable name is named by its 1-based position
    /// (`program #2`).
    pub place: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LintProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// Checks every rule; an empty list means the config may be published. `today` decides
/// whether `expires` lies in the future (it must be after `today`).
///
/// Every problem is reported, in file order, each with its place; lint never stops at the
/// first one and never panics.
///
/// ```
/// use clearcount_config_log::config::{Config, lint};
/// use chrono::NaiveDate;
///
/// let config = Config::parse(br#"
/// origin = "telemetry.example.org/config"
/// sample_rate = 1.5
/// max_epsilon = 4.0
/// os = ["linux"]
/// arch = ["amd64"]
/// "#)?;
/// let problems = lint(&config, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
/// let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
/// assert_eq!(lines, [
///     "key \"sample_rate\": must be more than 0 and at most 1, not 1.5",
///     "key \"arch\": \"amd64\" is not a std::env::consts::ARCH value (did you mean \"x86_64\"?)",
/// ]);
/// # Ok::<(), clearcount_config_log::config::ConfigError>(())
/// ```
pub fn lint(config: &Config, today: NaiveDate) -> Vec<LintProblem> {
    let mut out = Problems::default();
    lint_top(config, &mut out);
    let mut program_names = HashSet::new();
    for (i, program) in config.programs.iter().enumerate() {
        let place = item_place("program", &program.name, i, "");
        if !program.name.is_empty() && !program_names.insert(program.name.as_str()) {
            out.push(
                key_place(&place, "name"),
                format!("program {:?} is listed more than once", program.name),
            );
        }
        lint_program(config, program, &place, today, &mut out);
    }
    out.0
}

/// Advice that does not stop publication: each counter that uses k-ary randomized response
/// where optimized unary encoding would need fewer reports for the same accuracy
/// (`k > 3e^ε + 2`, DESIGN.md section 2), with the factor of reports it costs.
///
/// ```
/// use clearcount_config_log::config::{Config, warnings};
///
/// let config = Config::parse(br#"
/// origin = "telemetry.example.org/config"
/// sample_rate = 1.0
/// max_epsilon = 4.0
/// os = ["linux"]
/// arch = ["x86_64"]
/// [[program]]
/// name = "tool"
/// versions = ">=1.0.0"
/// [[program.counter]]
/// name = "command"
/// kind = "category"
/// labels = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o"]
/// epsilon = 1.0
/// description = "d"
/// rationale = "r"
/// owner = "o"
/// link = "https://example.org/1"
/// expires = "2099-01-01"
/// "#)?;
/// let advice: Vec<String> = warnings(&config).iter().map(|w| w.to_string()).collect();
/// assert_eq!(advice, [
///     "program \"tool\" counter \"command\" key \"mechanism\": k-ary randomized response needs 1.5 \
///      times the reports of mechanism = \"oue\" for the same accuracy (16 labels, epsilon 1)",
/// ]);
/// # Ok::<(), clearcount_config_log::config::ConfigError>(())
/// ```
pub fn warnings(config: &Config) -> Vec<LintProblem> {
    let mut out = Problems::default();
    for (i, program) in config.programs.iter().enumerate() {
        let place = item_place("program", &program.name, i, "");
        for (j, counter) in program.counters.iter().enumerate() {
            let Some(epsilon) = counter.epsilon.filter(|&e| valid_epsilon(e)) else {
                continue;
            };
            if counter.privacy_mechanism() != clearcount_privacy::estimate::Mechanism::Krr {
                continue;
            }
            let k = counter.report_labels().len();
            let factor = clearcount_privacy::oue::krr_report_factor(k, epsilon);
            if factor > 1.0 {
                out.push(
                    key_place(
                        &item_place("counter", &counter.name, j, &place),
                        "mechanism",
                    ),
                    format!(
                        "k-ary randomized response needs {factor:.1} times the reports of \
                         mechanism = \"oue\" for the same accuracy ({k} labels, epsilon {epsilon})"
                    ),
                );
            }
        }
    }
    out.0
}

#[derive(Default)]
struct Problems(Vec<LintProblem>);

impl Problems {
    fn push(&mut self, place: String, message: impl Into<String>) {
        self.0.push(LintProblem {
            place,
            message: message.into(),
        });
    }
}

/// `program "rg"`, or `program #2` when the name is empty; `prefix` is the enclosing place.
fn item_place(what: &str, name: &str, index: usize, prefix: &str) -> String {
    let own = if name.is_empty() {
        format!("{what} #{}", index + 1)
    } else {
        format!("{what} {name:?}")
    };
    if prefix.is_empty() {
        own
    } else {
        format!("{prefix} {own}")
    }
}

fn key_place(place: &str, key: &str) -> String {
    if place.is_empty() {
        format!("key {key:?}")
    } else {
        format!("{place} key {key:?}")
    }
}

fn lint_top(config: &Config, out: &mut Problems) {
    if config.origin.trim().is_empty() {
        out.push(key_place("", "origin"), "must not be empty");
    } else if config
        .origin
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '+')
    {
        out.push(
            key_place("", "origin"),
            format!(
                "{:?} cannot be a log origin (a note key name has no spaces and no '+')",
                config.origin
            ),
        );
    }
    let rate = config.sample_rate;
    if !(rate.is_finite() && rate > 0.0 && rate <= 1.0) {
        out.push(
            key_place("", "sample_rate"),
            format!("must be more than 0 and at most 1, not {rate}"),
        );
    }
    let max = config.max_epsilon;
    if !(max.is_finite() && max > 0.0) {
        out.push(
            key_place("", "max_epsilon"),
            format!("must be a positive finite number, not {max}"),
        );
    }
    lint_platforms("os", "std::env::consts::OS", &config.os, KNOWN_OS, out);
    lint_platforms(
        "arch",
        "std::env::consts::ARCH",
        &config.arch,
        KNOWN_ARCH,
        out,
    );
}

fn lint_platforms(key: &str, what: &str, values: &[String], known: &[&str], out: &mut Problems) {
    let place = key_place("", key);
    if values.is_empty() {
        out.push(
            place.clone(),
            format!("must list at least one {what} value"),
        );
    }
    let mut seen = HashSet::new();
    for value in values {
        if !seen.insert(value.as_str()) {
            out.push(place.clone(), format!("{value:?} is listed more than once"));
        } else if !known.contains(&value.as_str()) {
            let hint = ALIASES
                .iter()
                .find(|(alias, _)| alias.eq_ignore_ascii_case(value))
                .map(|(_, real)| real.to_string())
                .or_else(|| {
                    let lower = value.to_ascii_lowercase();
                    known.contains(&lower.as_str()).then_some(lower)
                })
                .map(|real| format!(" (did you mean {real:?}?)"))
                .unwrap_or_default();
            out.push(
                place.clone(),
                format!("{value:?} is not a {what} value{hint}"),
            );
        }
    }
}

fn lint_program(
    config: &Config,
    program: &Program,
    place: &str,
    today: NaiveDate,
    out: &mut Problems,
) {
    check_name(
        &program.name,
        NameRule::Program,
        &key_place(place, "name"),
        out,
    );
    lint_versions(&program.versions, &key_place(place, "versions"), out);
    if program.counters.len() > MAX_COUNTERS_PER_PROGRAM {
        out.push(
            key_place(place, "counter"),
            format!(
                "has {} counters, more than the {MAX_COUNTERS_PER_PROGRAM} allowed",
                program.counters.len()
            ),
        );
    }
    let mut counter_names = HashSet::new();
    for (i, counter) in program.counters.iter().enumerate() {
        let counter_place = item_place("counter", &counter.name, i, place);
        if !counter.name.is_empty() && !counter_names.insert(counter.name.as_str()) {
            out.push(
                key_place(&counter_place, "name"),
                format!(
                    "counter {:?} is listed more than once in this program",
                    counter.name
                ),
            );
        }
        lint_counter(counter, &counter_place, today, out);
    }
    // The budget rule is checked only over valid epsilons and a valid max_epsilon: invalid
    // ones are reported on their own keys above.
    let valid = program
        .counters
        .iter()
        .map(|c| c.epsilon.filter(|e| valid_epsilon(*e)));
    if let Err(PrivacyError::BudgetExceeded { total, max }) =
        budget::check_report_epsilon(valid, config.max_epsilon)
    {
        out.push(
            key_place(place, "counter"),
            format!(
                "the epsilon sum over its counters is {}, more than max_epsilon {}",
                super::diff::fmt_num(total),
                super::diff::fmt_num(max)
            ),
        );
    }
}

/// The sum of the valid epsilons of a program's counters (counters without randomized response
/// and invalid epsilons, reported elsewhere, add nothing).
pub(crate) fn program_epsilon(program: &Program) -> f64 {
    budget::report_epsilon(
        program
            .counters
            .iter()
            .map(|c| c.epsilon.filter(|e| valid_epsilon(*e))),
    )
}

/// A requirement that parses, or a non-empty list of distinct exact versions without build
/// metadata (a reported version never carries any).
fn lint_versions(versions: &Versions, place: &str, out: &mut Problems) {
    match versions {
        Versions::Requirement(r) if r.trim().is_empty() => out.push(
            place.to_string(),
            "must be a semver requirement (\"*\" for every version) or a list of exact versions",
        ),
        Versions::Exact(list) if list.is_empty() => out.push(
            place.to_string(),
            "lists no version (use \"*\" for every version)",
        ),
        Versions::Exact(list) if list.len() > MAX_EXACT_VERSIONS => out.push(
            place.to_string(),
            format!(
                "lists {} versions, more than the {MAX_EXACT_VERSIONS} allowed (use a requirement)",
                list.len()
            ),
        ),
        _ => match versions.matcher() {
            Err(e) => out.push(place.to_string(), e),
            Ok(VersionMatcher::Exact(parsed)) => {
                if let Some(v) = parsed.iter().find(|v| !v.build.is_empty()) {
                    out.push(
                        place.to_string(),
                        format!("{v} has build metadata, which reports never carry"),
                    );
                }
                let mut seen = HashSet::new();
                if let Some(v) = parsed.iter().find(|v| !seen.insert(*v)) {
                    out.push(place.to_string(), format!("lists {v} twice"));
                }
            }
            Ok(VersionMatcher::Requirement(_)) => {}
        },
    }
}

fn valid_epsilon(e: f64) -> bool {
    budget::check_counter_epsilon(e).is_ok()
}

fn lint_counter(counter: &Counter, place: &str, today: NaiveDate, out: &mut Problems) {
    check_name(
        &counter.name,
        NameRule::Counter,
        &key_place(place, "name"),
        out,
    );
    match counter.kind {
        CounterKind::Count => {
            if counter.labels.is_some() {
                out.push(
                    key_place(place, "labels"),
                    "a count counter has buckets, not labels",
                );
            }
            match &counter.buckets {
                None => out.push(
                    key_place(place, "buckets"),
                    "a count counter needs buckets (lower bounds starting at 0)",
                ),
                Some(buckets) => lint_buckets(buckets, &key_place(place, "buckets"), out),
            }
        }
        CounterKind::Category => {
            if counter.buckets.is_some() {
                out.push(
                    key_place(place, "buckets"),
                    "a category counter has labels, not buckets",
                );
            }
            match &counter.labels {
                None => out.push(
                    key_place(place, "labels"),
                    "a category counter needs labels",
                ),
                Some(labels) => lint_labels(labels, &key_place(place, "labels"), out),
            }
        }
    }
    if let Some(e) = counter.epsilon.filter(|&e| !valid_epsilon(e)) {
        out.push(
            key_place(place, "epsilon"),
            format!(
                "must be more than 0 and at most {MAX_COUNTER_EPSILON} (or absent for no randomized response), not {e}"
            ),
        );
    }
    if counter.mechanism.is_some() && counter.epsilon.is_none() {
        out.push(
            key_place(place, "mechanism"),
            "a mechanism needs an epsilon (without one the counter has no randomized response)",
        );
    }
    for (key, value) in [
        ("description", &counter.description),
        ("rationale", &counter.rationale),
        ("owner", &counter.owner),
    ] {
        if value.trim().is_empty() {
            out.push(key_place(place, key), "must not be empty");
        }
    }
    if let Err(why) = check_link(&counter.link) {
        out.push(key_place(place, "link"), why);
    }
    if counter.expires <= today {
        out.push(
            key_place(place, "expires"),
            format!(
                "{} is not in the future (today is {today})",
                counter.expires
            ),
        );
    }
}

fn lint_buckets(buckets: &[u64], place: &str, out: &mut Problems) {
    if buckets.len() > MAX_LABELS_PER_COUNTER {
        out.push(
            place.to_string(),
            format!(
                "has {} buckets, more than the {MAX_LABELS_PER_COUNTER} allowed",
                buckets.len()
            ),
        );
    }
    match buckets.first() {
        None => out.push(place.to_string(), "must list at least the bucket 0"),
        Some(&first) if first != 0 => out.push(
            place.to_string(),
            format!("must start at 0, not {first} (every weekly total needs a bucket)"),
        ),
        Some(_) => {}
    }
    if buckets.len() == 1 {
        out.push(
            place.to_string(),
            "a single bucket reports nothing: list at least two",
        );
    }
    for pair in buckets.windows(2) {
        if pair[1] <= pair[0] {
            out.push(
                place.to_string(),
                format!(
                    "must be strictly increasing: {} comes after {}",
                    pair[1], pair[0]
                ),
            );
        }
    }
}

fn lint_labels(labels: &[String], place: &str, out: &mut Problems) {
    if labels.is_empty() {
        out.push(place.to_string(), "must list at least one label");
    }
    if labels.len() > MAX_LABELS_PER_COUNTER {
        out.push(
            place.to_string(),
            format!(
                "has {} labels, more than the {MAX_LABELS_PER_COUNTER} allowed",
                labels.len()
            ),
        );
    }
    let mut seen = HashSet::new();
    for label in labels {
        if label == NONE_LABEL {
            out.push(
                place.to_string(),
                format!("{NONE_LABEL:?} is reserved for weeks without any recording"),
            );
        } else if !seen.insert(label.as_str()) {
            out.push(
                place.to_string(),
                format!("{label:?} is listed more than once"),
            );
        } else {
            check_name(label, NameRule::Label, place, out);
        }
    }
}

#[derive(Clone, Copy)]
enum NameRule {
    Program,
    Counter,
    Label,
}

impl NameRule {
    fn what(self) -> &'static str {
        match self {
            NameRule::Program => "program name",
            NameRule::Counter => "counter name",
            NameRule::Label => "label",
        }
    }

    fn pattern(self) -> &'static str {
        match self {
            NameRule::Program => "[a-z0-9][a-z0-9._/-]*",
            NameRule::Counter => "[a-z0-9][a-z0-9/_.-]*",
            NameRule::Label => "[a-z0-9][a-z0-9._+-]*",
        }
    }

    fn allows_rest(self, c: char) -> bool {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || match self {
                NameRule::Program | NameRule::Counter => matches!(c, '.' | '_' | '/' | '-'),
                NameRule::Label => matches!(c, '.' | '_' | '+' | '-'),
            }
    }
}

/// Whether `name` matches the pattern of its kind (DESIGN.md section 2).
fn name_ok(name: &str, rule: NameRule) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() => {
            chars.all(|c| rule.allows_rest(c))
        }
        _ => false,
    }
}

fn check_name(name: &str, rule: NameRule, place: &str, out: &mut Problems) {
    if !name_ok(name, rule) {
        out.push(
            place.to_string(),
            format!(
                "{name:?} is not a valid {} (must match {})",
                rule.what(),
                rule.pattern()
            ),
        );
    }
}

/// Checks that `link` is an absolute `https://` or `http://` URL with a host, and nothing a
/// reviewer could misread (spaces, control characters, user info).
fn check_link(link: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{link:?} is not a URL: {why}"));
    if link.trim().is_empty() {
        return Err("must not be empty (link to where the counter was discussed)".into());
    }
    let Some((scheme, rest)) = link.split_once("://") else {
        return bad("it must start with https:// or http://");
    };
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return bad("it must start with https:// or http://");
    }
    if link.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains spaces or control characters");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return bad("it must not carry user information");
    }
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(i) => (&authority[..=i], authority[i + 1..].strip_prefix(':')),
            None => return bad("it has no valid host"),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if authority.starts_with('[') && !authority.ends_with(']') && port.is_none() {
        return bad("it has no valid host");
    }
    if let Some(port) = port
        && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return bad("the port is not a number");
    }
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && !host.starts_with('.')
            && !host.ends_with('.')
            && !host.contains("..")
            && host
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
    };
    if !host_ok {
        return bad("it has no valid host");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_their_patterns() {
        for (name, rule, ok) in [
            ("ripgrep", NameRule::Program, true),
            ("golang.org/x/tools/gopls", NameRule::Program, true),
            ("0x", NameRule::Program, true),
            ("", NameRule::Program, false),
            ("-rg", NameRule::Program, false),
            ("Rg", NameRule::Program, false),
            ("rg+x", NameRule::Program, false),
            ("rg x", NameRule::Program, false),
            ("compile/errors_total", NameRule::Counter, true),
            ("_x", NameRule::Counter, false),
            ("c++", NameRule::Label, true),
            ("a/b", NameRule::Label, false),
            ("é", NameRule::Label, false),
        ] {
            assert_eq!(name_ok(name, rule), ok, "{name:?}");
        }
    }

    #[test]
    fn links_must_be_http_urls_with_a_host() {
        for ok in [
            "https://github.com/example/ripgrep/issues/1",
            "http://example.org",
            "https://example.org:8443/x?y#z",
            "https://[::1]:80/",
            "https://[::1]/",
            "HTTPS://EXAMPLE.ORG/",
        ] {
            assert_eq!(check_link(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "github.com/x",
            "ftp://example.org/",
            "https://",
            "https:///path",
            "https://exa mple.org/",
            "https://user@example.org/",
            "https://example.org:port/",
            "https://.example.org/",
            "https://[zz]/",
            "https://[::1]x/",
            "javascript://alert(1)",
        ] {
            assert!(check_link(bad).is_err(), "{bad:?}");
        }
    }
}
