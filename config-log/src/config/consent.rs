//! What a newer config asks of one program's users beyond an older one (DESIGN.md section 3).
//!
//! A user opts in to one program under one config. A later config of the same log is used for
//! that program without asking again only if it asks for no more; otherwise the client waits
//! for a new yes and shows exactly the [`Widening`]s. Asking for more means any of:
//!
//! - a program the old config did not have, or a new counter;
//! - a new label of a counter (a new bucket bound of a `count` is a new label: finer data);
//! - a counter changing kind (another kind of data under the same name);
//! - a higher `epsilon`, or a counter losing randomized response;
//! - a higher `sample_rate`.
//!
//! Fewer counters or labels, lower epsilons, a lower sample rate, new versions, platforms,
//! rationales or expiry dates ask for nothing more.
//!
//! ```
//! use clearcount_config_log::config::{Config, Widening, widening};
//!
//! let old = Config::parse(br#"
//! origin = "o.example/config"
//! sample_rate = 0.25
//! max_epsilon = 4.0
//! os = ["linux"]
//! arch = ["x86_64"]
//! [[program]]
//! name = "greet"
//! versions = ">=1.0.0"
//! [[program.counter]]
//! name = "style"
//! kind = "category"
//! labels = ["plain", "loud"]
//! epsilon = 1.0
//! description = "d"
//! rationale = "r"
//! owner = "o@example.org"
//! link = "https://example.org/1"
//! expires = "2099-01-01"
//! "#)?;
//! let mut new = old.clone();
//! new.programs[0].counters[0].epsilon = None;
//! assert_eq!(
//!     widening(&old, &new, "greet"),
//!     [Widening::LostRandomizedResponse { counter: "style".into(), epsilon: 1.0 }]
//! );
//! assert!(widening(&new, &old, "greet").is_empty());
//! # Ok::<(), clearcount_config_log::config::ConfigError>(())
//! ```

use std::fmt;

use super::diff::kind_name;
use super::schema::{Config, CounterKind};

/// One way `new` asks more of a program's users than `old` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Widening {
    /// The old config did not list the program at all.
    NewProgram,
    /// A counter the old config did not have.
    NewCounter {
        /// The counter.
        counter: String,
        /// Its labels in the new config.
        labels: Vec<String>,
        /// Its epsilon (`None`: no randomized response).
        epsilon: Option<f64>,
    },
    /// Labels (or bucket bounds) the counter did not have.
    NewLabels {
        /// The counter.
        counter: String,
        /// The labels added.
        labels: Vec<String>,
    },
    /// The counter reports another kind of data.
    KindChanged {
        /// The counter.
        counter: String,
        /// The old kind.
        from: CounterKind,
        /// The new kind.
        to: CounterKind,
    },
    /// A higher epsilon: a report says more about the true value.
    HigherEpsilon {
        /// The counter.
        counter: String,
        /// The old epsilon.
        from: f64,
        /// The new epsilon.
        to: f64,
    },
    /// The counter is now sent without randomized response.
    LostRandomizedResponse {
        /// The counter.
        counter: String,
        /// The epsilon it had.
        epsilon: f64,
    },
    /// A larger share of weekly reports is uploaded.
    HigherSampleRate {
        /// The old rate.
        from: f64,
        /// The new rate.
        to: f64,
    },
}

impl fmt::Display for Widening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Widening::NewProgram => f.write_str("the program was not in the config you agreed to"),
            Widening::NewCounter {
                counter,
                labels,
                epsilon,
            } => {
                write!(f, "new counter {counter} (labels {})", labels.join(", "))?;
                match epsilon {
                    Some(e) => write!(f, ", randomized response with epsilon {e}"),
                    None => f.write_str(", NO randomized response: the true label is sent"),
                }
            }
            Widening::NewLabels { counter, labels } => {
                write!(f, "counter {counter}: new labels {}", labels.join(", "))
            }
            Widening::KindChanged { counter, from, to } => write!(
                f,
                "counter {counter}: now a {} counter (was {})",
                kind_name(*to),
                kind_name(*from)
            ),
            Widening::HigherEpsilon { counter, from, to } => {
                write!(f, "counter {counter}: epsilon {from} -> {to}")
            }
            Widening::LostRandomizedResponse { counter, epsilon } => write!(
                f,
                "counter {counter}: NO randomized response any more (was epsilon {epsilon}): \
                 the true label is sent"
            ),
            Widening::HigherSampleRate { from, to } => write!(f, "sample rate {from} -> {to}"),
        }
    }
}

/// Everything `new` asks of `program`'s users beyond `old`, in config order. Empty when `new`
/// may be used under consent given to `old` (see the module documentation).
pub fn widening(old: &Config, new: &Config, program: &str) -> Vec<Widening> {
    let Some(new_program) = new.program(program) else {
        return Vec::new();
    };
    let Some(old_program) = old.program(program) else {
        return vec![Widening::NewProgram];
    };
    let mut out = Vec::new();
    if new.sample_rate > old.sample_rate {
        out.push(Widening::HigherSampleRate {
            from: old.sample_rate,
            to: new.sample_rate,
        });
    }
    for counter in &new_program.counters {
        let name = counter.name.clone();
        let labels = counter.report_labels();
        let Some(before) = old_program.counters.iter().find(|c| c.name == name) else {
            out.push(Widening::NewCounter {
                counter: name,
                labels,
                epsilon: counter.epsilon,
            });
            continue;
        };
        if before.kind != counter.kind {
            out.push(Widening::KindChanged {
                counter: name.clone(),
                from: before.kind,
                to: counter.kind,
            });
        }
        let old_labels = before.report_labels();
        let added: Vec<String> = labels
            .into_iter()
            .filter(|l| !old_labels.contains(l))
            .collect();
        if !added.is_empty() {
            out.push(Widening::NewLabels {
                counter: name.clone(),
                labels: added,
            });
        }
        match (before.epsilon, counter.epsilon) {
            (Some(from), Some(to)) if to > from => out.push(Widening::HigherEpsilon {
                counter: name,
                from,
                to,
            }),
            (Some(epsilon), None) => out.push(Widening::LostRandomizedResponse {
                counter: name,
                epsilon,
            }),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
origin = "o.example/config"
sample_rate = 0.5
max_epsilon = 8.0
os = ["linux"]
arch = ["x86_64"]
[[program]]
name = "greet"
versions = ">=1.0.0"
[[program.counter]]
name = "runs"
kind = "count"
buckets = [0, 1, 10]
epsilon = 1.0
description = "d"
rationale = "r"
owner = "o@example.org"
link = "https://example.org/1"
expires = "2099-01-01"
[[program.counter]]
name = "style"
kind = "category"
labels = ["plain", "loud"]
epsilon = 1.0
description = "d"
rationale = "r"
owner = "o@example.org"
link = "https://example.org/1"
expires = "2099-01-01"
"#;

    fn base() -> Config {
        Config::parse(BASE.as_bytes()).unwrap()
    }

    #[test]
    fn asking_for_less_or_the_same_needs_no_new_consent() {
        let old = base();
        assert!(widening(&old, &old, "greet").is_empty());
        let mut less = old.clone();
        less.sample_rate = 0.25;
        less.programs[0].counters.remove(1);
        less.programs[0].counters[0].epsilon = Some(0.5);
        less.programs[0].counters[0].buckets = Some(vec![0, 10]);
        less.programs[0].versions = ">=2.0.0".into();
        less.os.push("macos".into());
        less.programs[0].counters[0].rationale = "another reason".into();
        assert!(widening(&old, &less, "greet").is_empty());
        // Gaining randomized response asks for less.
        let mut no_rr = old.clone();
        no_rr.programs[0].counters[0].epsilon = None;
        assert!(widening(&no_rr, &old, "greet").is_empty());
        // A program the new config drops asks for nothing.
        assert!(widening(&old, &old, "other").is_empty());
    }

    #[test]
    fn every_kind_of_widening_is_named() {
        let old = base();
        let mut new = old.clone();
        new.sample_rate = 1.0;
        let c = &mut new.programs[0].counters;
        c[0].buckets = Some(vec![0, 1, 5, 10]);
        c[0].epsilon = Some(2.0);
        c[1].epsilon = None;
        let mut extra = c[1].clone();
        extra.name = "engine".into();
        extra.labels = Some(vec!["pcre2".into()]);
        extra.epsilon = None;
        c.push(extra);
        assert_eq!(
            widening(&old, &new, "greet"),
            [
                Widening::HigherSampleRate { from: 0.5, to: 1.0 },
                Widening::NewLabels {
                    counter: "runs".into(),
                    labels: vec!["5".into()]
                },
                Widening::HigherEpsilon {
                    counter: "runs".into(),
                    from: 1.0,
                    to: 2.0
                },
                Widening::LostRandomizedResponse {
                    counter: "style".into(),
                    epsilon: 1.0
                },
                Widening::NewCounter {
                    counter: "engine".into(),
                    labels: vec!["pcre2".into(), "none".into()],
                    epsilon: None
                },
            ]
        );
        let text: Vec<String> = widening(&old, &new, "greet")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(text[4].contains("NO randomized response"), "{text:?}");
    }

    #[test]
    fn kind_changes_and_new_programs() {
        let old = base();
        let mut new = old.clone();
        new.programs[0].counters[0].kind = CounterKind::Category;
        new.programs[0].counters[0].buckets = None;
        new.programs[0].counters[0].labels = Some(vec!["0".into(), "1".into(), "10".into()]);
        let w = widening(&old, &new, "greet");
        assert_eq!(
            w[0],
            Widening::KindChanged {
                counter: "runs".into(),
                from: CounterKind::Count,
                to: CounterKind::Category
            }
        );
        let mut renamed = old.clone();
        renamed.programs[0].name = "wave".into();
        assert_eq!(widening(&old, &renamed, "wave"), [Widening::NewProgram]);
    }
}
