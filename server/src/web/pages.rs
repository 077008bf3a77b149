//! The dashboard pages: `/` (every program and its reports per week) and `/programs/{name}`
//! (per counter: the latest week's estimates with confidence intervals, each label's estimate
//! over the weeks with its confidence band, and the version, OS and architecture breakdowns).
//!
//! A counter defined the same way (kind, mechanism, epsilon, labels) under several config
//! indexes in a week is shown once, from the pooled counts ([`crate::aggregate::pool`]); one
//! whose definition changed gets a chart per definition.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use chrono::{Days, NaiveDate};
use maud::{Markup, html};

use super::cache::Snapshot;
use super::layout::{page, pct};
use super::svg::{self, EstimateBar, Series};
use crate::aggregate::{self, CONFIDENCE, CounterAggregate, ProgramAggregate, WeekAggregates};
use crate::http::AppState;
use crate::validate::MAX_WEEKS_OLD;

/// Every program name: those of the latest config and those with reports.
pub fn program_names(app: &AppState, snap: &Snapshot) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    if let Ok(Some(c)) = app.log.latest()
        && let Ok(cfg) = &c.parsed
    {
        names.extend(cfg.programs.iter().map(|p| p.name.clone()));
    }
    for w in &snap.weeks {
        names.extend(w.programs.iter().map(|p| p.program.clone()));
    }
    names
}

fn entries<'a>(week: &'a WeekAggregates, program: &str) -> Vec<&'a ProgramAggregate> {
    week.programs
        .iter()
        .filter(|p| p.program == program)
        .collect()
}

/// Reports of `program` in `week`, over every config index.
fn reports_of(week: &WeekAggregates, program: &str) -> u64 {
    entries(week, program).iter().map(|p| p.reports).sum()
}

/// One counter as the dashboard shows it: the config indexes whose reports it adds up, and the
/// aggregate of their summed counts.
struct Pooled {
    indexes: Vec<u64>,
    agg: CounterAggregate,
}

impl Pooled {
    /// `#0 and #2`, for captions.
    fn configs(&self) -> String {
        let names: Vec<String> = self.indexes.iter().map(|i| format!("#{i}")).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => names.concat(),
        }
    }
}

/// The counter `counter` of `program` in `week`, pooled over the config indexes where it is
/// defined the same way: one entry per definition, most reports first (ties: newest config).
fn pooled(week: &WeekAggregates, program: &str, counter: &str) -> Vec<Pooled> {
    let mut groups: Vec<(Vec<u64>, Vec<&CounterAggregate>)> = Vec::new();
    for p in entries(week, program) {
        let Some(c) = p.counters.iter().find(|c| c.counter == counter) else {
            continue;
        };
        match groups
            .iter_mut()
            .find(|(_, parts)| aggregate::poolable(parts[0], c))
        {
            Some((indexes, parts)) => {
                indexes.push(p.config_index);
                parts.push(c);
            }
            None => groups.push((vec![p.config_index], vec![c])),
        }
    }
    let mut out: Vec<Pooled> = groups
        .into_iter()
        .filter_map(|(indexes, parts)| {
            let agg = match parts.as_slice() {
                [one] => (*one).clone(),
                _ => aggregate::pool(&parts, week.confidence)?,
            };
            Some(Pooled { indexes, agg })
        })
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse((p.agg.reports, p.indexes.iter().max().copied())));
    out
}

/// The labels as people read them: a count counter's buckets as ranges (`0`, `1-9`, `10-99`,
/// `1000+`), any other counter's labels as they are.
pub fn shown_labels(c: &CounterAggregate) -> Vec<String> {
    let bounds: Option<Vec<u64>> = c.labels.iter().map(|l| l.label.parse().ok()).collect();
    match bounds {
        Some(b) if c.kind == "count" && b.windows(2).all(|w| w[0] < w[1]) => bucket_ranges(&b),
        _ => c.labels.iter().map(|l| l.label.clone()).collect(),
    }
}

/// Buckets given by their lower bounds as ranges: `[0, 1, 10, 100]` is `0`, `1-9`, `10-99`,
/// `100+`.
pub fn bucket_ranges(bounds: &[u64]) -> Vec<String> {
    bounds
        .iter()
        .enumerate()
        .map(|(i, &b)| match bounds.get(i + 1) {
            Some(&next) if next == b + 1 => b.to_string(),
            Some(&next) => format!("{b}-{}", next - 1),
            None => format!("{b}+"),
        })
        .collect()
}

fn downloads(week: &str) -> Markup {
    html! {
        a href=(format!("/data/aggregates/{week}.json")) { "JSON" } ", "
        a href=(format!("/data/aggregates/{week}.csv")) { "CSV" }
    }
}

/// Links to the raw reports that can hold reports of `week`: the published days (up to
/// yesterday) that hold reports, from the week's end through the last day a report of it is
/// accepted. `days` are the days with reports and their counts.
fn raw_links(week: NaiveDate, today: NaiveDate, days: &[(NaiveDate, u64)]) -> Markup {
    let first = week + Days::new(7);
    let last = (week + Days::new(7 * (MAX_WEEKS_OLD + 1) + 6)).min(today - Days::new(1));
    let days: Vec<(NaiveDate, u64)> = days
        .iter()
        .copied()
        .filter(|(d, n)| *n > 0 && first <= *d && *d <= last)
        .collect();
    html! {
        @if days.is_empty() {
            span.muted { "raw reports: none published yet (a day is published after it ends)" }
        } @else {
            details.raw {
                summary { "Raw reports (received " (first) " to " (last) ", one file per day with reports)" }
                ul {
                    @for (d, n) in &days {
                        li { a href=(format!("/data/reports/{d}.ndjson")) { (d) ".ndjson" } " (" (n) " reports)" }
                    }
                }
            }
        }
    }
}

/// The dashboard: every program with its reports per week.
pub fn dashboard(app: &AppState, snap: &Snapshot) -> String {
    let names = program_names(app, snap);
    let body = html! {
        p {
            "Weekly usage reports of opt-in users, after randomized response, and the de-biased "
            "estimates with " (format!("{:.0}%", CONFIDENCE * 100.0)) " confidence intervals. "
            "Every chart is backed by downloadable data: "
            a href="/data/" { "raw reports and aggregates" } ". "
            "What may be counted, and why, is in the "
            a href="/config" { "public counter config" } "."
        }
        @if names.is_empty() {
            p { "No program has a config or any reports yet." }
        }
        div.grid {
            @for (pi, name) in names.iter().enumerate() {
                @let per_week: Vec<(String, u64)> = snap.weeks.iter().map(|w| (w.week.clone(), reports_of(w, name))).collect();
                @let latest = per_week.iter().rev().find(|(_, n)| *n > 0);
                section.program aria-labelledby=(format!("p{pi}-h")) {
                    h2 id=(format!("p{pi}-h")) { a href=(format!("/programs/{name}")) { (name) } }
                    p {
                        @match latest {
                            Some((w, n)) => { (n) " reports in the week of " (w) "." }
                            None => { "No reports yet." }
                        }
                    }
                    @if !per_week.is_empty() {
                        @let id = format!("p{pi}-weeks");
                        figure {
                            figcaption id=(format!("{id}-cap")) { "Reports per week" }
                            (svg::count_chart(&id, &format!("{name}: reports per week"), &per_week))
                            details {
                                summary { "Data table" }
                                div.table-wrap {
                                    table.reports id=(format!("{id}-data")) {
                                        caption { (name) ": reports per week" }
                                        thead { tr { th scope="col" { "Week" } th scope="col" { "Reports" } th scope="col" { "Downloads" } } }
                                        tbody {
                                            @for (w, n) in &per_week {
                                                tr { th scope="row" { (w) } td { (n) } td { (downloads(w)) } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page("clearcount dashboard", body)
}

/// A program's page, or `None` when no config names it and it has no reports.
pub fn program(app: &AppState, snap: &Snapshot, name: &str) -> Option<String> {
    if !program_names(app, snap).contains(name) {
        return None;
    }
    let latest = snap
        .weeks
        .iter()
        .zip(&snap.dates)
        .rev()
        .find(|(w, _)| reports_of(w, name) > 0);
    let first = snap.weeks.iter().position(|w| reports_of(w, name) > 0);
    let body = match (latest, first) {
        (Some((week, &date)), Some(first)) => program_body(snap, name, week, date, first),
        _ => html! { p { "No reports for " (name) " yet." } },
    };
    Some(page(&format!("Program {name}"), body))
}

fn program_body(
    snap: &Snapshot,
    name: &str,
    latest: &WeekAggregates,
    date: NaiveDate,
    first: usize,
) -> Markup {
    let week = latest.week.as_str();
    let latest_entries = entries(latest, name);
    // Counter order: the config order of the entry with the most reports, then any others.
    let mut counters: Vec<&str> = Vec::new();
    let mut by_reports = latest_entries.clone();
    by_reports.sort_by_key(|p| std::cmp::Reverse((p.reports, p.config_index)));
    for p in &by_reports {
        for c in &p.counters {
            if !counters.contains(&c.counter.as_str()) {
                counters.push(&c.counter);
            }
        }
    }
    let history = &snap.weeks[first..];
    let xs: Vec<String> = history.iter().map(|w| w.week.clone()).collect();
    let conf = format!("{:.0}%", CONFIDENCE * 100.0);
    let total: u64 = latest_entries.iter().map(|p| p.reports).sum();
    let indexes: Vec<String> = by_reports
        .iter()
        .map(|p| format!("#{}", p.config_index))
        .collect();
    html! {
        p {
            (total) " reports in the latest week, " (week) " (config " (indexes.join(", ")) "). "
            "Estimates are shares of installs, de-biased for randomized response and made "
            "consistent (non-negative, summing to 100% per counter), with "
            (conf) " confidence intervals; the tables also give the unbiased raw estimate. "
            "A counter defined the same way under several configs is shown once, from the "
            "pooled reports. "
            a href=(format!("/config#program-{name}")) { "What each counter means and why it is collected" } "; "
            "what each number means: " code { "docs/data.md" } "."
        }
        div.downloads { p { "Data of week " (week) ": " (downloads(week)) "." } (raw_links(date, snap.today, &snap.days)) }
        nav aria-label="Counters" {
            "Counters: "
            @for (ci, c) in counters.iter().enumerate() {
                a href=(format!("#c{ci}")) { (c) } " "
            }
            a href="#breakdowns" { "(versions, OS, arch)" }
        }
        @for (ci, counter) in counters.iter().enumerate() {
            section.counter id=(format!("c{ci}")) aria-labelledby=(format!("c{ci}-h")) {
                h2 id=(format!("c{ci}-h")) { (counter) }
                div.grid {
                    div {
                        @for g in pooled(latest, name, counter) {
                            (latest_chart(name, week, &g, ci))
                        }
                    }
                    div { (history_chart(name, counter, history, &xs, ci)) }
                }
            }
        }
        section id="breakdowns" aria-labelledby="breakdowns-h" {
            h2 id="breakdowns-h" { "Versions, operating systems and architectures" }
            p.muted { "Plain report counts of week " (week) " (these fields are not randomized). " (downloads(week)) }
            div.grid {
                (breakdown(name, week, "versions", "Version", latest_entries.iter().map(|p| &p.versions)))
                (breakdown(name, week, "os", "OS", latest_entries.iter().map(|p| &p.os)))
                (breakdown(name, week, "arch", "Architecture", latest_entries.iter().map(|p| &p.arch)))
            }
        }
    }
}

/// The latest week's estimates of one counter (pooled over the config indexes that define it
/// the same way): chart and table.
fn latest_chart(program: &str, week: &str, g: &Pooled, ci: usize) -> Markup {
    let c = &g.agg;
    let indexes: Vec<String> = g.indexes.iter().map(u64::to_string).collect();
    let id = format!("c{ci}-i{}", indexes.join("-"));
    let shown = shown_labels(c);
    let bars: Vec<EstimateBar> = c
        .labels
        .iter()
        .zip(&shown)
        .map(|(l, s)| EstimateBar {
            label: s.clone(),
            estimate: l.estimate,
            low: l.ci_low,
            high: l.ci_high,
        })
        .collect();
    let rr = match c.epsilon {
        Some(e) => format!("randomized response, ε = {e}"),
        None => "no randomized response".to_string(),
    };
    let configs = if g.indexes.len() > 1 {
        format!("configs {} pooled", g.configs())
    } else {
        format!("config {}", g.configs())
    };
    let title = format!(
        "{program} {}: estimated share per label, week {week}, {configs}",
        c.counter
    );
    html! {
        figure.latest data-counter=(c.counter) data-config-index=(indexes.join(" ")) data-week=(week) {
            figcaption { "Week " (week) ": estimated share per label (" (configs) ", " (c.reports) " reports, " (rr) ")" }
            (svg::estimate_chart(&id, &title, &bars))
            div.table-wrap {
                table.estimates id=(format!("{id}-data")) {
                    caption { (title) }
                    thead { tr {
                        th scope="col" { "Label" } th scope="col" { "Estimate" }
                        th scope="col" { "CI low" } th scope="col" { "CI high" }
                        th scope="col" { "Raw estimate" }
                        th scope="col" { "Observed" } th scope="col" { "Reports" }
                    } }
                    tbody {
                        @for (l, s) in c.labels.iter().zip(&shown) {
                            tr {
                                th scope="row" { (s) }
                                td { (pct(l.estimate)) } td { (pct(l.ci_low)) } td { (pct(l.ci_high)) }
                                td { (pct(l.raw_estimate)) }
                                td { (l.observed) } td { (l.reports) }
                            }
                        }
                    }
                }
            }
            p.downloads { "Download: " (downloads(week)) }
        }
    }
}

/// Each label's estimate of one counter over the weeks, with its confidence band: line chart
/// and table. Each week shows the definition with the most reports, pooled over the config
/// indexes that share it.
fn history_chart(
    program: &str,
    counter: &str,
    history: &[std::sync::Arc<WeekAggregates>],
    xs: &[String],
    ci: usize,
) -> Markup {
    let per_week: Vec<Option<CounterAggregate>> = history
        .iter()
        .map(|w| {
            pooled(w, program, counter)
                .into_iter()
                .next()
                .map(|g| g.agg)
        })
        .collect();
    // Labels in first-seen order, with the name people read (a bucket's range).
    let mut labels: Vec<(String, String)> = Vec::new();
    for c in per_week.iter().flatten() {
        for (l, s) in c.labels.iter().zip(shown_labels(c)) {
            if !labels.iter().any(|(name, _)| *name == l.label) {
                labels.push((l.label.clone(), s));
            }
        }
    }
    let find = |c: &Option<CounterAggregate>, label: &str| {
        c.as_ref()
            .and_then(|c| c.labels.iter().find(|l| l.label == label).cloned())
    };
    let series: Vec<Series> = labels
        .iter()
        .map(|(label, shown)| Series {
            label: shown.clone(),
            values: per_week
                .iter()
                .map(|c| find(c, label).map(|l| l.estimate))
                .collect(),
            bands: per_week
                .iter()
                .map(|c| find(c, label).map(|l| (l.ci_low, l.ci_high)))
                .collect(),
        })
        .collect();
    let id = format!("c{ci}-hist");
    let title = format!("{program} {counter}: estimated share of each label per week");
    html! {
        figure.history data-counter=(counter) {
            figcaption { "Estimated share of each label over the weeks, with " (format!("{:.0}%", CONFIDENCE * 100.0)) " confidence bands" }
            (svg::line_chart(&id, &title, xs, &series))
            ul.legend {
                @for (i, (_, shown)) in labels.iter().enumerate() {
                    @let (colour, _) = svg::series_style(i);
                    li { span.swatch style=(format!("background:{colour}")) {} (shown) }
                }
            }
            details {
                summary { "Data table" }
                div.table-wrap {
                    table.history id=(format!("{id}-data")) {
                        caption { (title) ", with confidence intervals" }
                        thead { tr {
                            th scope="col" { "Week" }
                            @for (_, shown) in &labels { th scope="col" { (shown) } }
                            th scope="col" { "Reports" }
                            th scope="col" { "Download" }
                        } }
                        tbody {
                            @for (w, c) in xs.iter().zip(&per_week) {
                                tr {
                                    th scope="row" { (w) }
                                    @for (label, _) in &labels {
                                        td { @match find(c, label) {
                                            Some(l) => { (pct(l.estimate)) " (" (pct(l.ci_low)) "–" (pct(l.ci_high)) ")" },
                                            None => "–",
                                        } }
                                    }
                                    td { (c.as_ref().map_or(0, |c| c.reports)) }
                                    td { (downloads(w)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A breakdown (versions, OS or arch) of the latest week, summed over config indexes.
fn breakdown<'a>(
    program: &str,
    week: &str,
    key: &str,
    what: &str,
    maps: impl Iterator<Item = &'a BTreeMap<String, u64>>,
) -> Markup {
    let mut sum: BTreeMap<String, u64> = BTreeMap::new();
    for m in maps {
        for (k, v) in m {
            *sum.entry(k.clone()).or_default() += v;
        }
    }
    let sum = crate::aggregate::keep_top(sum, crate::aggregate::MAX_VERSIONS);
    let mut bars: Vec<(String, u64)> = sum.into_iter().collect();
    bars.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let id = format!("b-{key}");
    let title = format!(
        "{program}: reports by {} in week {week}",
        what.to_lowercase()
    );
    html! {
        figure.breakdown {
            figcaption { "Reports by " (what.to_lowercase()) }
            (svg::breakdown_chart(&id, &title, &bars))
            div.table-wrap {
                table.breakdown id=(format!("{id}-data")) {
                    caption { (title) }
                    thead { tr { th scope="col" { (what) } th scope="col" { "Reports" } } }
                    tbody {
                        @for (k, v) in &bars { tr { th scope="row" { (k) } td { (v) } } }
                    }
                }
            }
        }
    }
}
