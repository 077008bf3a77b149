//! Weekly aggregates: per program, config index, counter and label, the reports, the observed
//! count, the de-biased estimate and its 95% confidence interval (from `clearcount-privacy`),
//! plus plain counts by version, os and arch.
//!
//! Reports are aggregated per config index: a counter whose definition changed between config
//! versions (kind, labels, epsilon) is never mixed with its other definitions.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use clearcount_config_log::config::CounterKind;
use serde::{Deserialize, Serialize};

use crate::configs::ConfigLog;
use crate::storage::GroupRow;
use crate::validate::decode_labels;

/// The confidence level of every published interval.
pub const CONFIDENCE: f64 = 0.95;

/// The aggregates of one week.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeekAggregates {
    /// The week (its Monday).
    pub week: String,
    /// Confidence level of the intervals.
    pub confidence: f64,
    /// One entry per (program, config index), sorted by program then index.
    pub programs: Vec<ProgramAggregate>,
}

/// One program's aggregates under one config index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramAggregate {
    /// Program name.
    pub program: String,
    /// The log index of the config the reports were checked against.
    pub config_index: u64,
    /// Reports of this program under this config.
    pub reports: u64,
    /// Per counter, in config order.
    pub counters: Vec<CounterAggregate>,
    /// Plain report counts by version.
    pub versions: BTreeMap<String, u64>,
    /// Plain report counts by OS.
    pub os: BTreeMap<String, u64>,
    /// Plain report counts by architecture.
    pub arch: BTreeMap<String, u64>,
}

/// One counter's aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterAggregate {
    /// Counter name.
    pub counter: String,
    /// `count` or `category`.
    pub kind: String,
    /// Randomized-response epsilon (`null`: none).
    pub epsilon: Option<f64>,
    /// Reports carrying this counter.
    pub reports: u64,
    /// Per label, in config order.
    pub labels: Vec<LabelAggregate>,
}

/// One label's aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelAggregate {
    /// The label.
    pub label: String,
    /// Reports of the counter.
    pub reports: u64,
    /// Reports carrying this label (after randomized response).
    pub observed: u64,
    /// De-biased frequency estimate, clipped to [0, 1].
    pub estimate: f64,
    /// Lower end of the confidence interval.
    pub ci_low: f64,
    /// Upper end of the confidence interval.
    pub ci_high: f64,
}

/// The header of the CSV form.
pub const CSV_HEADER: [&str; 11] = [
    "week",
    "program",
    "config_index",
    "counter",
    "label",
    "reports",
    "observed",
    "estimate",
    "ci_low",
    "ci_high",
    "epsilon",
];

/// Versions of a program listed apart in its aggregates and pages; the others are summed as
/// [`OTHER_VERSIONS`], so that no download or page grows with the number of versions sent.
pub const MAX_VERSIONS: usize = 20;

/// The name of the versions not listed apart (not a semver version, so never a real one).
pub const OTHER_VERSIONS: &str = "other";

/// The `keep` entries of `counts` with the most reports (ties by name), and the sum of the
/// rest as [`OTHER_VERSIONS`].
pub fn keep_top(counts: BTreeMap<String, u64>, keep: usize) -> BTreeMap<String, u64> {
    if counts.len() <= keep {
        return counts;
    }
    let mut by_count: Vec<(String, u64)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let rest: u64 = by_count[keep..].iter().map(|(_, n)| n).sum();
    by_count.truncate(keep);
    let mut top: BTreeMap<String, u64> = by_count.into_iter().collect();
    *top.entry(OTHER_VERSIONS.to_string()).or_default() += rest;
    top
}

#[derive(Default)]
struct Acc {
    reports: u64,
    counts: Vec<Vec<u64>>,
    versions: BTreeMap<String, u64>,
    os: BTreeMap<String, u64>,
    arch: BTreeMap<String, u64>,
}

/// Computes a week's aggregates from its grouped compact rows and the configs of the log.
/// Rows whose config or labels do not fit (which validation prevents) are skipped and logged.
pub fn compute(week: NaiveDate, groups: &[GroupRow], log: &ConfigLog) -> WeekAggregates {
    let mut accs: BTreeMap<(String, u64), Acc> = BTreeMap::new();
    let mut configs = BTreeMap::new();
    let mut skipped = 0u64;
    for g in groups {
        let cfg = configs
            .entry(g.config_index)
            .or_insert_with(|| log.get(g.config_index).ok().flatten())
            .clone();
        let Some(def) = cfg.as_ref().and_then(|c| c.program(&g.program)) else {
            skipped += g.count;
            continue;
        };
        let Some(labels) = decode_labels(&g.labels).filter(|l| l.len() == def.counters.len())
        else {
            skipped += g.count;
            continue;
        };
        if labels
            .iter()
            .zip(&def.counters)
            .any(|(l, c)| l.is_some_and(|i| usize::from(i) >= c.labels.len()))
        {
            skipped += g.count;
            continue;
        }
        let acc = accs
            .entry((g.program.clone(), g.config_index))
            .or_insert_with(|| Acc {
                counts: def
                    .counters
                    .iter()
                    .map(|c| vec![0; c.labels.len()])
                    .collect(),
                ..Acc::default()
            });
        acc.reports += g.count;
        for (ci, l) in labels.iter().enumerate() {
            if let Some(i) = l {
                acc.counts[ci][usize::from(*i)] += g.count;
            }
        }
        *acc.versions.entry(g.version.clone()).or_default() += g.count;
        *acc.os.entry(g.os.clone()).or_default() += g.count;
        *acc.arch.entry(g.arch.clone()).or_default() += g.count;
    }
    if skipped > 0 {
        tracing::error!("aggregation of week {week}: skipped {skipped} rows that fit no config");
    }
    let mut programs = Vec::new();
    for ((program, index), acc) in accs {
        let Some(def) = configs
            .get(&index)
            .and_then(|c| c.as_ref())
            .and_then(|c| c.program(&program))
        else {
            continue;
        };
        let counters = def
            .counters
            .iter()
            .zip(&acc.counts)
            .map(|(c, counts)| {
                let reports: u64 = counts.iter().sum();
                let estimates =
                    clearcount_privacy::estimate::estimate_counter(counts, c.epsilon, CONFIDENCE)
                        .ok();
                let labels = c
                    .labels
                    .iter()
                    .enumerate()
                    .map(|(i, label)| {
                        let e = estimates.as_ref().and_then(|e| e.get(i));
                        LabelAggregate {
                            label: label.clone(),
                            reports,
                            observed: counts[i],
                            // No reports: nothing is known, the interval is all of [0, 1].
                            estimate: e.map_or(0.0, |e| e.estimate),
                            ci_low: e.map_or(0.0, |e| e.ci_low),
                            ci_high: e.map_or(1.0, |e| e.ci_high),
                        }
                    })
                    .collect();
                CounterAggregate {
                    counter: c.name.clone(),
                    kind: match c.kind {
                        CounterKind::Count => "count".into(),
                        CounterKind::Category => "category".into(),
                    },
                    epsilon: c.epsilon,
                    reports,
                    labels,
                }
            })
            .collect();
        programs.push(ProgramAggregate {
            program,
            config_index: index,
            reports: acc.reports,
            counters,
            versions: keep_top(acc.versions, MAX_VERSIONS),
            os: acc.os,
            arch: acc.arch,
        });
    }
    WeekAggregates {
        week: week.to_string(),
        confidence: CONFIDENCE,
        programs,
    }
}

impl WeekAggregates {
    /// The JSON form (pretty-printed, deterministic).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The CSV form: one row per program, config index, counter and label (see [`CSV_HEADER`]).
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(CSV_HEADER);
        for p in &self.programs {
            for c in &p.counters {
                for l in &c.labels {
                    let _ = w.write_record([
                        self.week.clone(),
                        p.program.clone(),
                        p.config_index.to_string(),
                        c.counter.clone(),
                        l.label.clone(),
                        l.reports.to_string(),
                        l.observed.to_string(),
                        l.estimate.to_string(),
                        l.ci_low.to_string(),
                        l.ci_high.to_string(),
                        c.epsilon.map(|e| e.to_string()).unwrap_or_default(),
                    ]);
                }
            }
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}
