//! The demo's world: the sample counter config (two programs, seven counters) and a seeded
//! model of how simulated installs use those programs, week by week.
//!
//! The model knows the true label of every counter of every simulated week (the label the
//! client must compute before randomized response), so the demo can compare the published
//! estimates with the truth.

use chrono::NaiveDate;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// What a counter reports.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// The weekly total, as the bucket (lower bound) it falls in.
    Count(&'static [u64]),
    /// The most used label of the week (plus the implicit `none`).
    Category(&'static [&'static str]),
}

/// One counter of the sample config.
#[derive(Debug, Clone, Copy)]
pub struct CounterSpec {
    /// Counter name.
    pub name: &'static str,
    /// Kind and labels.
    pub kind: Kind,
    /// Randomized-response epsilon.
    pub epsilon: f64,
    /// Why it is counted (description, rationale).
    pub description: &'static str,
    /// The question it answers.
    pub rationale: &'static str,
    /// Issue number in the (fictional) tracker.
    pub issue: u32,
    /// In config version 1 already (else added by version 2).
    pub in_v1: bool,
}

impl CounterSpec {
    /// The labels reported for this counter, in config order (as the server aggregates them).
    pub fn labels(&self) -> Vec<String> {
        match self.kind {
            Kind::Count(b) => b.iter().map(u64::to_string).collect(),
            Kind::Category(l) => l
                .iter()
                .map(|s| (*s).to_string())
                .chain(std::iter::once("none".to_string()))
                .collect(),
        }
    }
}

/// One program of the sample config.
#[derive(Debug, Clone)]
pub struct ProgramSpec {
    /// Program name.
    pub name: &'static str,
    /// Semver requirement of the config.
    pub versions: &'static str,
    /// Owner address.
    pub owner: &'static str,
    /// Issue tracker URL prefix.
    pub tracker: &'static str,
    /// Its counters, in config order.
    pub counters: Vec<CounterSpec>,
    /// In config version 1 already.
    pub in_v1: bool,
}

/// Index of `ripgrep` in [`programs`].
pub const RIPGREP: usize = 0;
/// Index of `cargo-audit` in [`programs`].
pub const CARGO_AUDIT: usize = 1;

/// The two programs of the sample config.
pub fn programs() -> Vec<ProgramSpec> {
    vec![
        ProgramSpec {
            name: "ripgrep",
            versions: ">=14.0.0",
            owner: "maintainer@example.org",
            tracker: "https://github.com/example/ripgrep/issues/",
            in_v1: true,
            counters: vec![
                CounterSpec {
                    name: "invocations",
                    kind: Kind::Count(&[0, 1, 10, 100, 1000]),
                    epsilon: 1.0,
                    description: "How many times rg ran in the week.",
                    rationale: "Are most users interactive (many runs) or scripted (very many)?",
                    issue: 1,
                    in_v1: true,
                },
                CounterSpec {
                    name: "engine",
                    kind: Kind::Category(&["default", "pcre2", "other"]),
                    epsilon: 1.0,
                    description: "Which regex engine is used most in the week.",
                    rationale: "Can the pcre2 feature become optional in the default build?",
                    issue: 2,
                    in_v1: true,
                },
                CounterSpec {
                    name: "flags/multiline",
                    kind: Kind::Count(&[0, 1]),
                    epsilon: 1.0,
                    description: "Whether --multiline was used at least once in the week.",
                    rationale: "Is multiline search used enough to keep optimizing it?",
                    issue: 7,
                    in_v1: true,
                },
                CounterSpec {
                    name: "output",
                    kind: Kind::Category(&["plain", "json", "vimgrep"]),
                    epsilon: 1.0,
                    description: "The output format used most in the week.",
                    rationale: "Do editors and scripts (json, vimgrep) matter more than people?",
                    issue: 9,
                    in_v1: false,
                },
            ],
        },
        ProgramSpec {
            name: "cargo-audit",
            versions: ">=0.21.0, <0.23.0",
            owner: "security-tools@example.org",
            tracker: "https://github.com/example/cargo-audit/issues/",
            in_v1: false,
            counters: vec![
                CounterSpec {
                    name: "runs",
                    kind: Kind::Count(&[0, 1, 5, 20]),
                    epsilon: 1.5,
                    description: "How many times cargo audit ran in the week.",
                    rationale: "Is cargo audit mostly run by hand or on every CI build?",
                    issue: 41,
                    in_v1: false,
                },
                CounterSpec {
                    name: "advisory-db/fetch",
                    kind: Kind::Category(&["git", "http", "offline"]),
                    epsilon: 1.5,
                    description: "How the advisory database was fetched most often in the week.",
                    rationale: "May we drop the git fetcher in favour of plain HTTP downloads?",
                    issue: 42,
                    in_v1: false,
                },
                CounterSpec {
                    name: "output",
                    kind: Kind::Category(&["terminal", "json", "sarif"]),
                    epsilon: 1.0,
                    description: "The report format used most in the week.",
                    rationale: "Is SARIF (code-scanning upload) worth maintaining?",
                    issue: 45,
                    in_v1: false,
                },
            ],
        },
    ]
}

/// The config text. Version 1 has ripgrep's first three counters; version 2 (the one the
/// simulated installs obey) adds ripgrep's `output` and the program cargo-audit.
pub fn config_text(origin: &str, sample_rate: f64, expires: NaiveDate, version: u32) -> String {
    let mut s = format!(
        "# The clearcount demo config, version {version}.\n\
         origin = \"{origin}\"\n\
         sample_rate = {sample_rate:?}\n\
         max_epsilon = 4.0\n\
         os = [\"linux\", \"macos\", \"windows\"]\n\
         arch = [\"x86_64\", \"aarch64\"]\n"
    );
    for p in programs() {
        if version < 2 && !p.in_v1 {
            continue;
        }
        s.push_str(&format!(
            "\n[[program]]\nname = \"{}\"\nversions = \"{}\"\n",
            p.name, p.versions
        ));
        for c in &p.counters {
            if version < 2 && !c.in_v1 {
                continue;
            }
            let (kind, set) = match c.kind {
                Kind::Count(b) => (
                    "count",
                    format!(
                        "buckets = [{}]",
                        b.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
                    ),
                ),
                Kind::Category(l) => (
                    "category",
                    format!(
                        "labels = [{}]",
                        l.iter()
                            .map(|l| format!("\"{l}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            };
            s.push_str(&format!(
                "\n[[program.counter]]\nname = \"{}\"\nkind = \"{kind}\"\n{set}\nepsilon = {:?}\n\
                 description = \"{}\"\nrationale = \"{}\"\nowner = \"{}\"\nlink = \"{}{}\"\n\
                 expires = \"{expires}\"\n",
                c.name, c.epsilon, c.description, c.rationale, p.owner, p.tracker, c.issue
            ));
        }
    }
    s
}

/// A simulated install: its platform and which programs (and versions) it has.
#[derive(Debug, Clone)]
pub struct Install {
    /// `std::env::consts::OS` value.
    pub os: &'static str,
    /// `std::env::consts::ARCH` value.
    pub arch: &'static str,
    /// (program index, version).
    pub programs: Vec<(usize, &'static str)>,
}

fn pick<T: Copy, R: Rng + ?Sized>(rng: &mut R, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random::<f64>() * total;
    for (item, w) in items {
        if x < *w {
            return *item;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

/// Draws an install.
pub fn install<R: Rng + ?Sized>(rng: &mut R) -> Install {
    let os = pick(rng, &[("linux", 0.60), ("macos", 0.28), ("windows", 0.12)]);
    let arm = match os {
        "macos" => 0.80,
        "linux" => 0.15,
        _ => 0.05,
    };
    let arch = if rng.random::<f64>() < arm {
        "aarch64"
    } else {
        "x86_64"
    };
    let mut programs = Vec::new();
    let rg = rng.random::<f64>() < 0.85;
    let audit = rng.random::<f64>() < 0.45;
    if rg || !audit {
        let v = pick(rng, &[("14.0.3", 0.20), ("14.1.0", 0.50), ("14.1.1", 0.30)]);
        programs.push((RIPGREP, v));
    }
    if audit {
        // 0.20.1 is outside the config's requirement: it reports as `devel`.
        let v = pick(rng, &[("0.20.1", 0.05), ("0.21.2", 0.55), ("0.22.0", 0.40)]);
        programs.push((CARGO_AUDIT, v));
    }
    Install { os, arch, programs }
}

/// One program's use in one week: the counts to record and the true label of each counter.
#[derive(Debug, Clone)]
pub struct Usage {
    /// Counter names as recorded (`name` or `name:label`) and their weekly counts.
    pub counts: Vec<(String, u64)>,
    /// Per counter of the program (config order), the index of its true label.
    pub truth: Vec<usize>,
}

fn bucket(buckets: &[u64], total: u64) -> usize {
    buckets.iter().rposition(|b| *b <= total).unwrap_or(0)
}

/// Records a category used `events` times in the week whose most used label is `primary`
/// (`None`: never recorded). Some weeks another label is used too, always strictly less.
fn category<R: Rng + ?Sized>(
    rng: &mut R,
    name: &str,
    labels: &[&str],
    primary: Option<usize>,
    events: u64,
    counts: &mut Vec<(String, u64)>,
) -> usize {
    let Some(p) = primary else {
        return labels.len(); // `none`
    };
    let second = if events >= 4 && rng.random::<f64>() < 0.3 {
        (events - 1) / 3
    } else {
        0
    };
    counts.push((format!("{name}:{}", labels[p]), events - second));
    if second > 0 {
        let mut o = rng.random_range(0..labels.len() - 1);
        if o >= p {
            o += 1;
        }
        counts.push((format!("{name}:{}", labels[o]), second));
    }
    p
}

/// How install `program` is used in week `t` of `weeks` (0 = oldest), or `None` when it is not
/// used that week (no counter file, nothing reported). Shares drift from week to week.
pub fn week_usage<R: Rng + ?Sized>(
    rng: &mut R,
    program: usize,
    t: usize,
    weeks: usize,
) -> Option<Usage> {
    // Drift: 0 in the oldest week, 1 in the latest.
    let d = if weeks > 1 {
        t as f64 / (weeks - 1) as f64
    } else {
        1.0
    };
    let specs = programs();
    let spec = &specs[program];
    let mut counts = Vec::new();
    let mut truth = Vec::new();
    if program == RIPGREP {
        if rng.random::<f64>() >= 0.92 {
            return None;
        }
        let runs = match pick(
            rng,
            &[
                (0, 0.33),
                (1, 0.42 - 0.04 * d),
                (2, 0.20),
                (3, 0.05 + 0.04 * d),
            ],
        ) {
            0 => rng.random_range(1..=9),
            1 => rng.random_range(10..=99),
            2 => rng.random_range(100..=999),
            _ => rng.random_range(1000..=3000),
        };
        counts.push(("invocations".to_string(), runs));
        truth.push(bucket(&[0, 1, 10, 100, 1000], runs));
        let Kind::Category(engines) = spec.counters[1].kind else {
            return None;
        };
        let engine = pick(
            rng,
            &[
                (Some(0), 0.64 - 0.06 * d),
                (Some(1), 0.22 + 0.06 * d),
                (Some(2), 0.06),
                (None, 0.08),
            ],
        );
        truth.push(category(rng, "engine", engines, engine, runs, &mut counts));
        let multiline = if rng.random::<f64>() < 0.18 + 0.05 * d {
            rng.random_range(1..=runs.min(20))
        } else {
            0
        };
        if multiline > 0 {
            counts.push(("flags/multiline".to_string(), multiline));
        }
        truth.push(bucket(&[0, 1], multiline));
        let Kind::Category(outputs) = spec.counters[3].kind else {
            return None;
        };
        let output = pick(
            rng,
            &[
                (Some(0), 0.80 - 0.03 * d),
                (Some(1), 0.12 + 0.03 * d),
                (Some(2), 0.05),
                (None, 0.03),
            ],
        );
        truth.push(category(rng, "output", outputs, output, runs, &mut counts));
    } else {
        if rng.random::<f64>() >= 0.80 {
            return None;
        }
        let runs = match pick(rng, &[(0, 0.55), (1, 0.30), (2, 0.15)]) {
            0 => rng.random_range(1..=4),
            1 => rng.random_range(5..=19),
            _ => rng.random_range(20..=200),
        };
        counts.push(("runs".to_string(), runs));
        truth.push(bucket(&[0, 1, 5, 20], runs));
        let Kind::Category(fetchers) = spec.counters[1].kind else {
            return None;
        };
        let fetch = pick(
            rng,
            &[
                (Some(0), 0.55 - 0.10 * d),
                (Some(1), 0.35 + 0.10 * d),
                (Some(2), 0.10),
            ],
        );
        truth.push(category(
            rng,
            "advisory-db/fetch",
            fetchers,
            fetch,
            runs,
            &mut counts,
        ));
        let Kind::Category(outputs) = spec.counters[2].kind else {
            return None;
        };
        let output = pick(
            rng,
            &[
                (Some(0), 0.70),
                (Some(1), 0.20),
                (Some(2), 0.06),
                (None, 0.04),
            ],
        );
        truth.push(category(rng, "output", outputs, output, runs, &mut counts));
    }
    Some(Usage { counts, truth })
}

/// True label counts: per week, per program, the number of installs that used it and, per
/// counter and label, how many had that true label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// `[week][program]`: installs that used the program that week.
    pub users: Vec<Vec<u64>>,
    /// `[week][program][counter][label]`: installs with that true label.
    pub labels: Vec<Vec<Vec<Vec<u64>>>>,
}

impl Truth {
    /// All zero, for `weeks` weeks.
    pub fn new(weeks: usize) -> Truth {
        let specs = programs();
        Truth {
            users: vec![vec![0; specs.len()]; weeks],
            labels: (0..weeks)
                .map(|_| {
                    specs
                        .iter()
                        .map(|p| {
                            p.counters
                                .iter()
                                .map(|c| vec![0; c.labels().len()])
                                .collect()
                        })
                        .collect()
                })
                .collect(),
        }
    }

    /// Counts one program-week.
    pub fn add(&mut self, week: usize, program: usize, truth: &[usize]) {
        if let Some(u) = self.users.get_mut(week).and_then(|w| w.get_mut(program)) {
            *u += 1;
        }
        if let Some(p) = self.labels.get_mut(week).and_then(|w| w.get_mut(program)) {
            for (c, l) in p.iter_mut().zip(truth) {
                if let Some(n) = c.get_mut(*l) {
                    *n += 1;
                }
            }
        }
    }

    /// Adds another tally of the same shape (shapes that differ are ignored where they
    /// differ).
    pub fn merge(&mut self, other: &Truth) {
        for (a, b) in self.users.iter_mut().zip(&other.users) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        for (a, b) in self.labels.iter_mut().zip(&other.labels) {
            for (pa, pb) in a.iter_mut().zip(b) {
                for (ca, cb) in pa.iter_mut().zip(pb) {
                    for (x, y) in ca.iter_mut().zip(cb) {
                        *x += y;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clearcount_config_log::config::{Config, lint};
    use rand::SeedableRng;

    #[test]
    fn both_configs_pass_lint_with_both_kinds_and_rr_everywhere() {
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let expires = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        for v in [1, 2] {
            let text = config_text("demo.example/config", 1.0, expires, v);
            let c = Config::parse(text.as_bytes()).unwrap();
            assert!(lint(&c, today).is_empty(), "{:?}\n{text}", lint(&c, today));
        }
        let c =
            Config::parse(config_text("demo.example/config", 1.0, expires, 2).as_bytes()).unwrap();
        assert_eq!(c.programs.len(), 2);
        let counters: Vec<_> = c.programs.iter().flat_map(|p| &p.counters).collect();
        assert!(counters.len() >= 6);
        assert!(counters.iter().all(|c| c.epsilon.is_some()));
        for kind in ["count", "category"] {
            assert!(
                counters
                    .iter()
                    .any(|c| format!("{:?}", c.kind).to_lowercase() == kind)
            );
        }
        // The label sets the server aggregates are the ones the demo compares against.
        for (p, spec) in c.programs.iter().zip(programs()) {
            for (c, s) in p.counters.iter().zip(&spec.counters) {
                assert_eq!(c.report_labels(), s.labels());
            }
        }
    }

    #[test]
    fn usage_truth_matches_the_clients_rule() {
        use clearcount::upload::build::true_label;
        use std::collections::BTreeMap;
        let expires = NaiveDate::from_ymd_opt(2099, 1, 1).unwrap();
        let c =
            Config::parse(config_text("demo.example/config", 1.0, expires, 2).as_bytes()).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut seen = 0;
        for i in 0..3000 {
            let program = i % 2;
            let Some(u) = week_usage(&mut rng, program, i % 4, 4) else {
                continue;
            };
            seen += 1;
            let totals: BTreeMap<&str, u64> =
                u.counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            for (ci, counter) in c.programs[program].counters.iter().enumerate() {
                let label = true_label(counter, &totals).unwrap();
                assert_eq!(counter.report_labels()[u.truth[ci]], label, "{u:?}");
            }
        }
        assert!(seen > 2000);
    }

    #[test]
    fn truth_tallies_merge() {
        let mut a = Truth::new(2);
        a.add(1, RIPGREP, &[1, 0, 1, 2]);
        let mut b = Truth::new(2);
        b.add(1, RIPGREP, &[1, 3, 0, 2]);
        b.add(0, CARGO_AUDIT, &[0, 1, 2]);
        a.merge(&b);
        assert_eq!(a.users, vec![vec![0, 1], vec![2, 0]]);
        assert_eq!(a.labels[1][RIPGREP][0], vec![0, 2, 0, 0, 0]);
        assert_eq!(a.labels[1][RIPGREP][1], vec![1, 0, 0, 1]);
        assert_eq!(a.labels[0][CARGO_AUDIT][2], vec![0, 0, 1, 0]);
    }
}
