//! Weekly aggregates: per program, config index, counter and label, the reports, the observed
//! count, the unbiased `raw_estimate`, the consistent `estimate` and its 95% confidence
//! interval (from `clearcount-privacy`), plus plain counts by version, os and arch.
//! `docs/data.md` is the data dictionary of both download forms.
//!
//! Reports are aggregated per config index: a counter whose definition changed between config
//! versions (kind, labels, epsilon) is never mixed with its other definitions. Where it did not
//! change, [`pool`] adds the label counts of several indexes up and estimates once (what the
//! dashboard shows).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use clearcount_config_log::config::CounterKind;
use clearcount_privacy::estimate::{Estimator, Mechanism};
use serde::{Deserialize, Serialize};

use crate::configs::ConfigLog;
use crate::storage::GroupRow;
use crate::validate::{Slot, decode_labels};

/// The confidence level of the dashboard's intervals, and of downloads unless asked otherwise.
pub const CONFIDENCE: f64 = 0.95;

/// The confidence levels downloads and `aggregate --confidence` offer.
pub const LEVELS: [f64; 3] = [0.90, 0.95, 0.99];

/// The level of [`LEVELS`] that `text` names (`0.9`, `0.90`, `90`, `90%`), or an error that
/// lists them.
pub fn parse_level(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, percent) = match t.strip_suffix('%') {
        Some(n) => (n, true),
        None => (t, false),
    };
    let value: Option<f64> = number.trim().parse().ok();
    let value = value.map(|v| if percent || v > 1.0 { v / 100.0 } else { v });
    value
        .and_then(|v| LEVELS.into_iter().find(|l| (l - v).abs() < 1e-9))
        .ok_or_else(|| format!("confidence {t:?} is not offered: use 0.90, 0.95 or 0.99"))
}

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
    /// The privacy mechanism: `krr` (k-ary randomized response), `oue` (optimized unary
    /// encoding) or `none`.
    pub mechanism: String,
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
    /// The unbiased estimate of the label's share; may be negative or above 1.
    pub raw_estimate: f64,
    /// The consistent estimate: non-negative, summing to 1 over the counter's labels.
    pub estimate: f64,
    /// Lower end of the confidence interval.
    pub ci_low: f64,
    /// Upper end of the confidence interval.
    pub ci_high: f64,
}

/// The header of the CSV form.
pub const CSV_HEADER: [&str; 15] = [
    "week",
    "program",
    "config_index",
    "counter",
    "kind",
    "mechanism",
    "epsilon",
    "label",
    "reports",
    "observed",
    "raw_estimate",
    "estimate",
    "ci_low",
    "ci_high",
    "confidence",
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
    /// Per counter and label: the reports carrying the label (its bit, for OUE).
    counts: Vec<Vec<u64>>,
    /// Per counter: the reports carrying it.
    counter_reports: Vec<u64>,
    versions: BTreeMap<String, u64>,
    os: BTreeMap<String, u64>,
    arch: BTreeMap<String, u64>,
}

/// Computes a week's aggregates from its grouped compact rows and the configs of the log, with
/// intervals at `confidence`. Rows whose config or labels do not fit (which validation
/// prevents) are skipped and logged.
pub fn compute(
    week: NaiveDate,
    groups: &[GroupRow],
    log: &ConfigLog,
    confidence: f64,
) -> WeekAggregates {
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
        let Some(slots) = decode_labels(&g.labels).filter(|l| l.len() == def.counters.len()) else {
            skipped += g.count;
            continue;
        };
        if !slots.iter().zip(&def.counters).all(|(s, c)| c.fits(s)) {
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
                counter_reports: vec![0; def.counters.len()],
                ..Acc::default()
            });
        acc.reports += g.count;
        for (ci, slot) in slots.iter().enumerate() {
            match slot {
                Slot::Absent => continue,
                Slot::Label(i) => acc.counts[ci][usize::from(*i)] += g.count,
                Slot::Bits(bits) => {
                    for (count, _) in acc.counts[ci].iter_mut().zip(bits).filter(|(_, b)| **b) {
                        *count += g.count;
                    }
                }
            }
            acc.counter_reports[ci] += g.count;
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
            .zip(acc.counts.iter().zip(&acc.counter_reports))
            .map(|(c, (counts, &reports))| {
                let kind = match c.kind {
                    CounterKind::Count => "count",
                    CounterKind::Category => "category",
                };
                let measure = Measure {
                    mechanism: c.mechanism,
                    epsilon: c.epsilon,
                };
                counter_aggregate(
                    &c.name, kind, measure, &c.labels, counts, reports, confidence,
                )
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
        confidence,
        programs,
    }
}

/// How a counter's reports were randomized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    /// None, k-ary randomized response or optimized unary encoding.
    pub mechanism: Mechanism,
    /// The epsilon (`None` without randomized response).
    pub epsilon: Option<f64>,
}

/// One counter's aggregate from `reports` reports and, per label, the reports carrying it (for
/// OUE, its bit: several a report), with intervals at `confidence`.
pub fn counter_aggregate(
    name: &str,
    kind: &str,
    measure: Measure,
    labels: &[String],
    counts: &[u64],
    reports: u64,
    confidence: f64,
) -> CounterAggregate {
    let estimates = match (measure.mechanism, measure.epsilon) {
        (Mechanism::Oue, Some(eps)) => Estimator::oue(labels.len(), eps, confidence)
            .and_then(|e| e.estimate_bits(reports, counts)),
        (_, epsilon) => Estimator::new(labels.len(), epsilon, confidence)
            .and_then(|e| e.estimate_counts(counts)),
    }
    .ok();
    let labels = labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let e = estimates.as_ref().and_then(|e| e.get(i));
            LabelAggregate {
                label: label.clone(),
                reports,
                observed: counts[i],
                // No reports: nothing is known, the interval is all of [0, 1].
                raw_estimate: e.map_or(0.0, |e| e.raw_estimate),
                estimate: e.map_or(0.0, |e| e.estimate),
                ci_low: e.map_or(0.0, |e| e.ci_low),
                ci_high: e.map_or(1.0, |e| e.ci_high),
            }
        })
        .collect();
    CounterAggregate {
        counter: name.to_string(),
        kind: kind.to_string(),
        mechanism: measure.mechanism.as_str().to_string(),
        epsilon: measure.epsilon,
        reports,
        labels,
    }
}

/// Whether two aggregates of a counter measure the same thing, so that their counts may be
/// added up: same name, kind, mechanism, epsilon and labels in the same order.
pub fn poolable(a: &CounterAggregate, b: &CounterAggregate) -> bool {
    a.counter == b.counter
        && a.kind == b.kind
        && a.mechanism == b.mechanism
        && a.epsilon == b.epsilon
        && a.labels.len() == b.labels.len()
        && a.labels
            .iter()
            .zip(&b.labels)
            .all(|(x, y)| x.label == y.label)
}

/// Pools aggregates of one counter measured the same way (see [`poolable`]): adds the label
/// counts up and estimates once from the sums, with intervals at `confidence`. `None` when
/// `parts` is empty or not poolable.
pub fn pool(parts: &[&CounterAggregate], confidence: f64) -> Option<CounterAggregate> {
    let first = parts.first()?;
    if !parts.iter().all(|p| poolable(first, p)) {
        return None;
    }
    let mut counts = vec![0u64; first.labels.len()];
    for p in parts {
        for (sum, l) in counts.iter_mut().zip(&p.labels) {
            *sum += l.observed;
        }
    }
    let labels: Vec<String> = first.labels.iter().map(|l| l.label.clone()).collect();
    let mechanism = Mechanism::from_name(&first.mechanism)?;
    let measure = Measure {
        mechanism,
        epsilon: first.epsilon,
    };
    Some(counter_aggregate(
        &first.counter,
        &first.kind,
        measure,
        &labels,
        &counts,
        parts.iter().map(|p| p.reports).sum(),
        confidence,
    ))
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
                        c.kind.clone(),
                        c.mechanism.clone(),
                        c.epsilon.map(|e| e.to_string()).unwrap_or_default(),
                        l.label.clone(),
                        l.reports.to_string(),
                        l.observed.to_string(),
                        l.raw_estimate.to_string(),
                        l.estimate.to_string(),
                        l.ci_low.to_string(),
                        l.ci_high.to_string(),
                        self.confidence.to_string(),
                    ]);
                }
            }
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// A counter's aggregate from label counts under k-ary randomized response with `epsilon`
    /// (none without), as the tests below write it.
    fn counter_aggregate(
        name: &str,
        kind: &str,
        epsilon: Option<f64>,
        labels: &[String],
        counts: &[u64],
        confidence: f64,
    ) -> CounterAggregate {
        let mechanism = match epsilon {
            Some(_) => Mechanism::Krr,
            None => Mechanism::None,
        };
        let measure = Measure { mechanism, epsilon };
        let reports = counts.iter().sum();
        super::counter_aggregate(name, kind, measure, labels, counts, reports, confidence)
    }

    #[test]
    fn levels_parse_and_widen_the_intervals() {
        for (text, want) in [("0.9", 0.90), ("0.90", 0.90), ("95", 0.95), ("99%", 0.99)] {
            assert_eq!(parse_level(text), Ok(want), "{text}");
        }
        for bad in ["0.5", "0.951", "1", "", "ninety", "NaN"] {
            assert!(
                parse_level(bad).unwrap_err().contains("0.90, 0.95 or 0.99"),
                "{bad}"
            );
        }
        let l = labels(&["a", "b", "none"]);
        let width = |level| {
            let c = counter_aggregate("c", "category", Some(1.0), &l, &[50, 30, 20], level);
            c.labels[0].ci_high - c.labels[0].ci_low
        };
        assert!(width(0.90) < width(0.95) && width(0.95) < width(0.99));
    }

    #[test]
    fn docs_data_md_worked_example() {
        // docs/data.md: ripgrep `engine`, k = 4, epsilon 1, counts 80, 52, 38, 30.
        let c = counter_aggregate(
            "engine",
            "category",
            Some(1.0),
            &labels(&["default", "pcre2", "other", "none"]),
            &[80, 52, 38, 30],
            CONFIDENCE,
        );
        assert_eq!((c.kind.as_str(), c.mechanism.as_str()), ("category", "krr"));
        let want = [
            (0.749186, 0.721589, 0.531560, 0.979355),
            (0.283279, 0.255682, 0.097377, 0.499285),
            (0.050326, 0.022729, 0.0, 0.250041),
            (-0.082791, 0.0, 0.0, 0.103758),
        ];
        for (l, (raw, est, low, high)) in c.labels.iter().zip(want) {
            let got = [l.raw_estimate, l.estimate, l.ci_low, l.ci_high];
            for (g, w) in got.iter().zip([raw, est, low, high]) {
                assert!((g - w).abs() < 1e-6, "{}: {got:?}", l.label);
            }
        }
        let week = WeekAggregates {
            week: "2026-11-16".into(),
            confidence: CONFIDENCE,
            programs: vec![ProgramAggregate {
                program: "ripgrep".into(),
                config_index: 0,
                reports: 200,
                counters: vec![c],
                versions: BTreeMap::new(),
                os: BTreeMap::new(),
                arch: BTreeMap::new(),
            }],
        };
        let csv = week.to_csv();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some(
                "week,program,config_index,counter,kind,mechanism,epsilon,label,reports,\
                 observed,raw_estimate,estimate,ci_low,ci_high,confidence"
            )
        );
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("2026-11-16,ripgrep,0,engine,category,krr,1,default,200,80,0.7491")
        );
    }

    #[test]
    fn pooling_adds_counts_of_identical_definitions_only() {
        let l = labels(&["a", "b", "none"]);
        let x = counter_aggregate("c", "category", Some(1.0), &l, &[30, 10, 10], CONFIDENCE);
        let y = counter_aggregate("c", "category", Some(1.0), &l, &[60, 20, 20], CONFIDENCE);
        let pooled = pool(&[&x, &y], CONFIDENCE).unwrap();
        assert_eq!(pooled.reports, 150);
        assert_eq!(
            pooled.labels.iter().map(|l| l.observed).collect::<Vec<_>>(),
            [90, 30, 30]
        );
        // The pooled interval is narrower than either part's.
        assert!(
            pooled.labels[0].ci_high - pooled.labels[0].ci_low
                < x.labels[0].ci_high - x.labels[0].ci_low
        );
        let other_eps = counter_aggregate("c", "category", Some(2.0), &l, &[1, 1, 1], CONFIDENCE);
        let other_labels = counter_aggregate(
            "c",
            "category",
            Some(1.0),
            &labels(&["a", "z", "none"]),
            &[1, 1, 1],
            CONFIDENCE,
        );
        let no_rr = counter_aggregate("c", "category", None, &l, &[1, 1, 1], CONFIDENCE);
        for z in [&other_eps, &other_labels, &no_rr] {
            assert!(!poolable(&x, z));
            assert!(pool(&[&x, z], CONFIDENCE).is_none());
        }
        assert_eq!(no_rr.mechanism, "none");
        assert!(pool(&[], CONFIDENCE).is_none());
    }
}
