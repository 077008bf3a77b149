//! The review diff between two configs, for people.
//!
//! [`diff`] returns both a list of structured [`Change`]s (serializable, for the server's HTML
//! review page) and the rendered text a reviewer reads in a terminal. All text taken from the
//! configs is quoted and escaped in the rendering, so a description cannot forge a line of the
//! review (such as a fake `!! NO RANDOMIZED RESPONSE` or a missing one).

use std::fmt::Write as _;

use serde::Serialize;

use super::lint::program_epsilon;
use super::{Config, Counter, CounterKind, Program};

/// The prefix of the line that flags a counter reported without randomized response.
pub const NO_RR_MARKER: &str = "!! NO RANDOMIZED RESPONSE";

/// What changed between two configs: the structured changes and the text to print.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewDiff {
    /// Every change, in the order the text shows them: settings, then programs of the new
    /// config in its order (each followed by its counter changes), then removed programs.
    pub changes: Vec<Change>,
    /// The privacy budget of every program of the new config.
    pub budgets: Vec<ProgramBudget>,
    /// The rendered text, ending in a newline.
    pub text: String,
}

impl ReviewDiff {
    /// Whether the two configs are the same (no change at all).
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// One change between two configs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A top-level setting (`origin`, `sample_rate`, `max_epsilon`, `os`, `arch`) is new
    /// (`old` is `None` for the first config) or changed.
    Setting {
        /// The TOML key.
        key: String,
        /// The old value, rendered; `None` in the first config.
        old: Option<String>,
        /// The new value, rendered.
        new: String,
    },
    /// A program appears. Its counters follow as [`Change::CounterAdded`].
    ProgramAdded {
        /// Program name.
        program: String,
        /// Its versions ([`super::Versions`] as displayed).
        versions: String,
    },
    /// A program disappears. Its counters follow as [`Change::CounterRemoved`].
    ProgramRemoved {
        /// Program name.
        program: String,
        /// Its versions in the old config ([`super::Versions`] as displayed).
        versions: String,
    },
    /// A field of a program (`versions`) changed.
    ProgramChanged {
        /// Program name.
        program: String,
        /// The TOML key.
        key: String,
        /// The old value, rendered.
        old: String,
        /// The new value, rendered.
        new: String,
    },
    /// A counter appears (in a new or an existing program).
    CounterAdded {
        /// Program name.
        program: String,
        /// Every field of the new counter.
        counter: CounterView,
    },
    /// A counter disappears.
    CounterRemoved {
        /// Program name.
        program: String,
        /// Every field of the removed counter.
        counter: CounterView,
    },
    /// A field of a counter changed.
    CounterChanged {
        /// Program name.
        program: String,
        /// Counter name.
        counter: String,
        /// The TOML key (`kind`, `buckets`, `labels`, `epsilon`, `description`, `rationale`,
        /// `owner`, `link`, `expires`).
        key: String,
        /// The old value, rendered (`none` for an absent epsilon).
        old: String,
        /// The new value, rendered.
        new: String,
        /// True when this change removes randomized response (epsilon becomes absent).
        loses_randomized_response: bool,
    },
}

/// Every field of a counter, rendered for review.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CounterView {
    /// Counter name.
    pub name: String,
    /// `count` or `category`.
    pub kind: String,
    /// The labels a report may carry: bucket lower bounds, or the labels plus `none`.
    pub report_labels: Vec<String>,
    /// The epsilon; `None` means no randomized response.
    pub epsilon: Option<f64>,
    /// The privacy mechanism: `none`, `krr` or `oue`.
    pub mechanism: String,
    /// What is counted.
    pub description: String,
    /// Why it is needed.
    pub rationale: String,
    /// Who answers for it.
    pub owner: String,
    /// Where it was discussed.
    pub link: String,
    /// The last day it may be reported (`YYYY-MM-DD`).
    pub expires: String,
}

impl CounterView {
    /// The review view of a counter.
    pub fn of(counter: &Counter) -> CounterView {
        CounterView {
            name: counter.name.clone(),
            kind: kind_name(counter.kind).to_string(),
            report_labels: counter.report_labels(),
            epsilon: counter.epsilon,
            mechanism: counter.privacy_mechanism().as_str().to_string(),
            description: counter.description.clone(),
            rationale: counter.rationale.clone(),
            owner: counter.owner.clone(),
            link: counter.link.clone(),
            expires: counter.expires.to_string(),
        }
    }
}

/// The privacy budget of one program in the new config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgramBudget {
    /// Program name.
    pub program: String,
    /// Sum of its counters' epsilons in the new config.
    pub epsilon_total: f64,
    /// The same sum in the old config, when the program was there.
    pub old_epsilon_total: Option<f64>,
    /// The config's `max_epsilon`.
    pub max_epsilon: f64,
    /// Counters reported without randomized response (no epsilon), by name.
    pub without_randomized_response: Vec<String>,
}

/// Compares `old` (or nothing, for the first config) with `new`.
///
/// ```
/// use clearcount_config_log::config::{Change, Config, diff};
///
/// let old = Config::parse(br#"
/// origin = "o.example/config"
/// sample_rate = 0.25
/// max_epsilon = 4.0
/// os = ["linux"]
/// arch = ["x86_64"]
/// "#)?;
/// let mut new = old.clone();
/// new.sample_rate = 0.5;
/// let review = diff(Some(&old), &new);
/// assert_eq!(review.changes, [Change::Setting {
///     key: "sample_rate".into(),
///     old: Some("0.25".into()),
///     new: "0.5".into(),
/// }]);
/// assert!(review.text.contains("sample_rate: 0.25 -> 0.5"));
/// # Ok::<(), clearcount_config_log::config::ConfigError>(())
/// ```
pub fn diff(old: Option<&Config>, new: &Config) -> ReviewDiff {
    let mut r = Renderer::default();
    match old {
        None => r.line(0, "Review of the first config: everything below is added."),
        Some(_) => r.line(
            0,
            "Review of a config change (+ added, - removed, ~ changed).",
        ),
    }

    r.section("Settings");
    let settings_before = r.changes.len();
    setting(
        &mut r,
        old.map(|c| text(&c.origin)),
        text(&new.origin),
        "origin",
    );
    setting(
        &mut r,
        old.map(|c| fmt_num(c.sample_rate)),
        fmt_num(new.sample_rate),
        "sample_rate",
    );
    setting(
        &mut r,
        old.map(|c| fmt_num(c.max_epsilon)),
        fmt_num(new.max_epsilon),
        "max_epsilon",
    );
    list_setting(&mut r, old.map(|c| &c.os[..]), &new.os, "os");
    list_setting(&mut r, old.map(|c| &c.arch[..]), &new.arch, "arch");
    if r.changes.len() == settings_before {
        r.line(1, "(unchanged)");
    }

    r.section("Programs");
    let programs_before = r.changes.len();
    for program in &new.programs {
        match old.and_then(|o| o.program(&program.name)) {
            None => program_added(&mut r, program),
            Some(before) => program_changed(&mut r, before, program),
        }
    }
    if let Some(old) = old {
        for program in &old.programs {
            if new.program(&program.name).is_none() {
                program_removed(&mut r, program);
            }
        }
    }
    if r.changes.len() == programs_before {
        r.line(1, "(unchanged)");
    }

    r.section("Privacy budget per program (new config)");
    let mut budgets = Vec::new();
    for program in &new.programs {
        let budget = ProgramBudget {
            program: program.name.clone(),
            epsilon_total: program_epsilon(program),
            old_epsilon_total: old
                .and_then(|o| o.program(&program.name))
                .map(program_epsilon),
            max_epsilon: new.max_epsilon,
            without_randomized_response: program
                .counters
                .iter()
                .filter(|c| c.epsilon.is_none())
                .map(|c| c.name.clone())
                .collect(),
        };
        let was = match budget.old_epsilon_total {
            Some(t) if t != budget.epsilon_total => format!(" (was {})", fmt_num(t)),
            Some(_) => " (unchanged)".to_string(),
            None => " (new program)".to_string(),
        };
        r.line(
            1,
            &format!(
                "program {}: epsilon total {} of max_epsilon {}{was}",
                text(&program.name),
                fmt_num(budget.epsilon_total),
                fmt_num(new.max_epsilon)
            ),
        );
        if !budget.without_randomized_response.is_empty() {
            r.loud(&format!(
                "in program {}: {} reported exactly as recorded: {}",
                text(&program.name),
                plural(budget.without_randomized_response.len(), "counter"),
                list(&budget.without_randomized_response)
            ));
        }
        budgets.push(budget);
    }
    if new.programs.is_empty() {
        r.line(1, "(no programs)");
    }
    if r.changes.is_empty() {
        r.line(0, "");
        r.line(0, "No changes.");
    }
    ReviewDiff {
        changes: r.changes,
        budgets,
        text: r.text,
    }
}

#[derive(Default)]
struct Renderer {
    text: String,
    changes: Vec<Change>,
}

impl Renderer {
    fn line(&mut self, indent: usize, line: &str) {
        for _ in 0..indent {
            self.text.push_str("    ");
        }
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn section(&mut self, title: &str) {
        self.text.push('\n');
        self.line(0, &format!("{title}:"));
    }

    /// A line that starts at column 0 with the loud marker.
    fn loud(&mut self, what: &str) {
        self.line(0, &format!("{NO_RR_MARKER}: {what}"));
    }
}

fn setting(r: &mut Renderer, old: Option<String>, new: String, key: &str) {
    setting_with(r, old, new, key, String::new());
}

/// A list setting (`os`, `arch`), with what was added and removed.
fn list_setting(r: &mut Renderer, old: Option<&[String]>, new: &[String], key: &str) {
    let delta = old.map(|o| list_delta(o, new)).unwrap_or_default();
    setting_with(r, old.map(list), list(new), key, delta);
}

fn setting_with(r: &mut Renderer, old: Option<String>, new: String, key: &str, extra: String) {
    match &old {
        Some(old) if *old == new => return,
        Some(old) => r.line(1, &format!("{key}: {old} -> {new}{extra}")),
        None => r.line(1, &format!("{key}: {new}")),
    }
    r.changes.push(Change::Setting {
        key: key.to_string(),
        old,
        new,
    });
}

fn program_added(r: &mut Renderer, program: &Program) {
    r.line(
        0,
        &format!(
            "+ program {} (versions {}), {}",
            text(&program.name),
            text(&program.versions.to_string()),
            plural(program.counters.len(), "counter")
        ),
    );
    r.changes.push(Change::ProgramAdded {
        program: program.name.clone(),
        versions: program.versions.to_string(),
    });
    for counter in &program.counters {
        counter_whole(r, &program.name, counter, true);
    }
}

fn program_removed(r: &mut Renderer, program: &Program) {
    r.line(
        0,
        &format!(
            "- program {} (versions {}), {} removed",
            text(&program.name),
            text(&program.versions.to_string()),
            plural(program.counters.len(), "counter")
        ),
    );
    r.changes.push(Change::ProgramRemoved {
        program: program.name.clone(),
        versions: program.versions.to_string(),
    });
    for counter in &program.counters {
        counter_whole(r, &program.name, counter, false);
    }
}

fn program_changed(r: &mut Renderer, old: &Program, new: &Program) {
    let mut lines = Renderer::default();
    if old.versions != new.versions {
        let (o, n) = (
            text(&old.versions.to_string()),
            text(&new.versions.to_string()),
        );
        lines.line(1, &format!("versions: {o} -> {n}"));
        lines.changes.push(Change::ProgramChanged {
            program: new.name.clone(),
            key: "versions".into(),
            old: old.versions.to_string(),
            new: new.versions.to_string(),
        });
    }
    for counter in &new.counters {
        match old.counters.iter().find(|c| c.name == counter.name) {
            None => counter_whole(&mut lines, &new.name, counter, true),
            Some(before) => counter_changed(&mut lines, &new.name, before, counter),
        }
    }
    for counter in &old.counters {
        if !new.counters.iter().any(|c| c.name == counter.name) {
            counter_whole(&mut lines, &new.name, counter, false);
        }
    }
    if !lines.changes.is_empty() {
        r.line(0, &format!("~ program {}", text(&new.name)));
        r.text.push_str(&lines.text);
        r.changes.extend(lines.changes);
    }
}

/// An added (`added`) or removed counter, with every field.
fn counter_whole(r: &mut Renderer, program: &str, counter: &Counter, added: bool) {
    let sign = if added { '+' } else { '-' };
    r.line(
        1,
        &format!(
            "{sign} counter {} ({}, {})",
            text(&counter.name),
            kind_name(counter.kind),
            epsilon_words(counter.epsilon)
        ),
    );
    if added && counter.epsilon.is_none() {
        r.loud(&format!(
            "program {} counter {} is added without epsilon: its true value is uploaded",
            text(program),
            text(&counter.name)
        ));
    }
    for (key, value) in fields(counter) {
        r.line(2, &format!("{key}: {value}"));
    }
    let view = CounterView::of(counter);
    let program = program.to_string();
    r.changes.push(if added {
        Change::CounterAdded {
            program,
            counter: view,
        }
    } else {
        Change::CounterRemoved {
            program,
            counter: view,
        }
    });
}

fn counter_changed(r: &mut Renderer, program: &str, old: &Counter, new: &Counter) {
    let mut lines = Renderer::default();
    for ((old_key, before), (key, after)) in fields(old).into_iter().zip(fields(new)) {
        if before == after && old_key == key {
            continue;
        }
        // A kind change compares buckets with labels: say which was which.
        let before = if old_key == key {
            before
        } else {
            format!("{old_key} {before}")
        };
        let extra = match key {
            "buckets" | "labels" => set_delta(old, new),
            _ => String::new(),
        };
        lines.line(2, &format!("{key}: {before} -> {after}{extra}"));
        let loses = key == "epsilon" && old.epsilon.is_some() && new.epsilon.is_none();
        if loses {
            lines.loud(&format!(
                "program {} counter {} loses its epsilon: its true value is uploaded",
                text(program),
                text(&new.name)
            ));
        }
        lines.changes.push(Change::CounterChanged {
            program: program.to_string(),
            counter: new.name.clone(),
            key: key.to_string(),
            old: before,
            new: after,
            loses_randomized_response: loses,
        });
    }
    if !lines.changes.is_empty() {
        r.line(1, &format!("~ counter {}", text(&new.name)));
        r.text.push_str(&lines.text);
        r.changes.extend(lines.changes);
    }
}

/// The reviewable fields of a counter, rendered, in a fixed order. Buckets and labels are
/// rendered as the same key whatever the kind, so that a kind change shows them side by side.
fn fields(counter: &Counter) -> Vec<(&'static str, String)> {
    let values = match counter.kind {
        CounterKind::Count => (
            "buckets",
            counter
                .buckets
                .as_ref()
                .map(|b| b.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
                .unwrap_or_else(|| "(missing)".into()),
        ),
        CounterKind::Category => (
            "labels",
            counter
                .labels
                .as_ref()
                .map(|l| list(l))
                .unwrap_or_else(|| "(missing)".into()),
        ),
    };
    vec![
        ("kind", kind_name(counter.kind).to_string()),
        values,
        (
            "epsilon",
            counter
                .epsilon
                .map(fmt_num)
                .unwrap_or_else(|| "none".into()),
        ),
        (
            "mechanism",
            counter.privacy_mechanism().as_str().to_string(),
        ),
        ("description", text(&counter.description)),
        ("rationale", text(&counter.rationale)),
        ("owner", text(&counter.owner)),
        ("link", text(&counter.link)),
        ("expires", counter.expires.to_string()),
    ]
}

/// ` (added: a, b; removed: c)` for bucket or label lists of the same kind.
fn set_delta(old: &Counter, new: &Counter) -> String {
    if old.kind != new.kind {
        return String::new();
    }
    list_delta(&old.report_labels(), &new.report_labels())
}

/// ` (added: a, b; removed: c)`, or ` (reordered)` when only the order changed.
fn list_delta(o: &[String], n: &[String]) -> String {
    let added: Vec<String> = n.iter().filter(|l| !o.contains(l)).cloned().collect();
    let removed: Vec<String> = o.iter().filter(|l| !n.contains(l)).cloned().collect();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("added: {}", list(&added)));
    }
    if !removed.is_empty() {
        parts.push(format!("removed: {}", list(&removed)));
    }
    if parts.is_empty() {
        " (order or repeats changed)".into()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

pub(super) fn kind_name(kind: CounterKind) -> &'static str {
    match kind {
        CounterKind::Count => "count",
        CounterKind::Category => "category",
    }
}

fn epsilon_words(epsilon: Option<f64>) -> String {
    match epsilon {
        Some(e) => format!("epsilon {}", fmt_num(e)),
        None => "NO randomized response".into(),
    }
}

/// Config text, quoted and escaped so that it can never break the layout of the review.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || is_invisible_format(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Unicode format characters that can reorder or hide text (bidirectional controls,
/// zero-width characters).
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{feff}' | '\u{061c}' | '\u{00ad}')
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    items.iter().map(|s| text(s)).collect::<Vec<_>>().join(", ")
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A number for people: at most 12 significant digits, so that sums such as
/// 0.1 + 0.2 print as `0.3`; non-finite values print as `NaN`, `inf`, `-inf`.
pub(crate) fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let rounded: f64 = format!("{v:.11e}").parse().unwrap_or(v);
    rounded.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_for_people() {
        assert_eq!(fmt_num(1.0), "1");
        assert_eq!(fmt_num(0.1 + 0.2), "0.3");
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(1e-12), "0.000000000001");
        assert_eq!(fmt_num(f64::NAN), "NaN");
        assert_eq!(fmt_num(f64::INFINITY), "inf");
    }

    #[test]
    fn text_escapes_what_could_forge_lines() {
        assert_eq!(text("a\n!! x"), "\"a\\u{a}!! x\"");
        assert_eq!(text("q\"\\"), "\"q\\\"\\\\\"");
        assert_eq!(text("\u{202e}evil"), "\"\\u{202e}evil\"");
        assert_eq!(text("café"), "\"café\"");
    }
}
