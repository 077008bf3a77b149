//! De-biased label frequencies with confidence intervals (DESIGN.md section 5).
//!
//! For one counter with `k` labels, `n` reports of which `c_v` report label `v`, and
//! `λ = c_v / n`:
//!
//! - **with randomized response** (epsilon given): `f̂_v = (λ - q) / (p - q)`, variance
//!   `λ(1-λ) / (n (p-q)²)`, interval `f̂_v ± z·sqrt(variance)` (normal approximation, `z` the
//!   two-sided quantile of the standard normal from statrs);
//! - **without** (epsilon `None`): `f̂_v = λ`, variance `λ(1-λ)/n`, Wilson score interval.
//!
//! **Published values.** The de-biased value can fall outside [0, 1] (e.g. a label nobody has
//! gets a small negative estimate about half the time). It is kept, unclipped, in
//! [`Estimate::raw_estimate`]: it is unbiased, the raw estimates of a counter's labels add up to
//! exactly 1, and averaging them over weeks or regions stays unbiased. The published
//! [`Estimate::estimate`] and the interval are clipped to [0, 1], so that
//! `0 <= ci_low <= estimate <= ci_high <= 1` always holds. Clipping never moves the interval
//! away from a true value in [0, 1], so coverage is unchanged or higher.
//!
//! **No reports.** With `n = 0` there is nothing to estimate: every function returns
//! [`PrivacyError::NoReports`]; a publisher should omit the counter (or show "no data") rather
//! than print a number.

use serde::{Deserialize, Serialize};

use crate::rr::RandomizedResponse;
use crate::{PrivacyError, validate};

/// How an interval was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// De-biased randomized response, normal-approximation interval (serialized `"rr_normal"`).
    RrNormal,
    /// No randomized response: Wilson score interval (serialized `"wilson"`).
    Wilson,
}

/// The estimated frequency of one label among the reports of one counter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The number of reports `n` (of this counter).
    pub reports: u64,
    /// How many of them carry this label (after randomized response), `c_v`.
    pub observed: u64,
    /// The counter's number of labels `k`.
    pub k: usize,
    /// The counter's epsilon, `None` without randomized response.
    pub epsilon: Option<f64>,
    /// The de-biased estimate before clipping; may lie outside [0, 1].
    pub raw_estimate: f64,
    /// The published estimate: `raw_estimate` clipped to [0, 1].
    pub estimate: f64,
    /// The estimated variance of `raw_estimate`.
    pub variance: f64,
    /// The lower end of the interval, in [0, `estimate`].
    pub ci_low: f64,
    /// The upper end of the interval, in [`estimate`, 1].
    pub ci_high: f64,
    /// The nominal confidence level of the interval, e.g. 0.95.
    pub confidence: f64,
    /// How the interval was computed.
    pub method: Method,
}

/// An estimator for one counter's labels, with the constants (`p`, `q`, `z`) computed once.
///
/// ```
/// use clearcount_privacy::estimate::Estimator;
///
/// # fn main() -> Result<(), clearcount_privacy::PrivacyError> {
/// // 10,000 reports of a 3-label counter with epsilon 1, 95% intervals.
/// let estimator = Estimator::new(3, Some(1.0), 0.95)?;
/// let all = estimator.estimate_counts(&[5_000, 3_000, 2_000])?;
/// let sum: f64 = all.iter().map(|e| e.raw_estimate).sum();
/// assert!((sum - 1.0).abs() < 1e-9);
/// let one = estimator.estimate(10_000, 5_000)?;
/// assert_eq!(one, all[0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimator {
    k: usize,
    epsilon: Option<f64>,
    q: f64,
    p_minus_q: f64,
    confidence: f64,
    z: f64,
}

impl Estimator {
    /// An estimator for a counter of `k` labels randomized with `epsilon` (`None`: no randomized
    /// response), producing intervals at `confidence` (strictly between 0 and 1).
    ///
    /// # Errors
    /// [`PrivacyError::InvalidLabelCount`], [`PrivacyError::InvalidEpsilon`],
    /// [`PrivacyError::EpsilonTooSmall`] (`p - q` underflows), [`PrivacyError::InvalidConfidence`].
    pub fn new(k: usize, epsilon: Option<f64>, confidence: f64) -> Result<Self, PrivacyError> {
        let k = validate::k(k)?;
        let z = validate::z_for(confidence)?;
        let (q, p_minus_q) = match epsilon {
            None => (0.0, 1.0),
            Some(eps) => {
                let rr = RandomizedResponse::new(k, eps)?;
                // Keep (p-q)^2 a normal float so every quotient below stays finite.
                if rr.p_minus_q() * rr.p_minus_q() < f64::MIN_POSITIVE {
                    return Err(PrivacyError::EpsilonTooSmall(eps));
                }
                (rr.q(), rr.p_minus_q())
            }
        };
        Ok(Estimator {
            k,
            epsilon,
            q,
            p_minus_q,
            confidence,
            z,
        })
    }

    /// The number of labels.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The two-sided normal quantile used for the intervals.
    pub fn z(&self) -> f64 {
        self.z
    }

    /// The estimate for one label observed `observed` times among `reports` reports.
    ///
    /// # Errors
    /// [`PrivacyError::NoReports`] when `reports = 0`,
    /// [`PrivacyError::ObservedExceedsReports`] when `observed > reports`.
    pub fn estimate(&self, reports: u64, observed: u64) -> Result<Estimate, PrivacyError> {
        if reports == 0 {
            return Err(PrivacyError::NoReports);
        }
        if observed > reports {
            return Err(PrivacyError::ObservedExceedsReports { observed, reports });
        }
        let n = reports as f64;
        let lambda = observed as f64 / n;
        let spread = lambda * (1.0 - lambda);
        let z = self.z;
        let (raw, variance, low, high, method) = match self.epsilon {
            Some(_) => {
                let raw = (lambda - self.q) / self.p_minus_q;
                let variance = spread / (n * self.p_minus_q * self.p_minus_q);
                let half = z * variance.sqrt();
                (raw, variance, raw - half, raw + half, Method::RrNormal)
            }
            None => {
                let z2n = z * z / n;
                let center = (lambda + z2n / 2.0) / (1.0 + z2n);
                let half = z / (1.0 + z2n) * (spread / n + z2n / (4.0 * n)).sqrt();
                (
                    lambda,
                    spread / n,
                    center - half,
                    center + half,
                    Method::Wilson,
                )
            }
        };
        let estimate = raw.clamp(0.0, 1.0);
        // Clipping is monotone, so low <= raw <= high carries over; min/max guard the Wilson
        // bounds against rounding at lambda = 0 or 1.
        let ci_low = low.clamp(0.0, 1.0).min(estimate);
        let ci_high = high.clamp(0.0, 1.0).max(estimate);
        Ok(Estimate {
            reports,
            observed,
            k: self.k,
            epsilon: self.epsilon,
            raw_estimate: raw,
            estimate,
            variance,
            ci_low,
            ci_high,
            confidence: self.confidence,
            method,
        })
    }

    /// The estimates of every label of the counter from its label counts (`counts[v]` = reports
    /// carrying label `v`; `n` is their sum), in label order.
    ///
    /// # Errors
    /// [`PrivacyError::LabelCountMismatch`] when `counts.len() != k`,
    /// [`PrivacyError::CountOverflow`] when the counts add up beyond `u64::MAX`,
    /// [`PrivacyError::NoReports`] when they are all 0.
    pub fn estimate_counts(&self, counts: &[u64]) -> Result<Vec<Estimate>, PrivacyError> {
        if counts.len() != self.k {
            return Err(PrivacyError::LabelCountMismatch {
                expected: self.k,
                got: counts.len(),
            });
        }
        let reports = total(counts)?;
        counts.iter().map(|&c| self.estimate(reports, c)).collect()
    }
}

/// The estimate for one label of a counter of `k` labels: `observed` of `reports` reports carry
/// it; `epsilon` is the counter's (`None`: no randomized response).
///
/// ```
/// use clearcount_privacy::estimate::{Method, estimate_label};
///
/// # fn main() -> Result<(), clearcount_privacy::PrivacyError> {
/// let e = estimate_label(10_000, 3_000, 4, Some(1.0), 0.95)?;
/// assert_eq!(e.method, Method::RrNormal);
/// assert!(e.ci_low < e.estimate && e.estimate < e.ci_high);
/// let w = estimate_label(16_587, 0, 2, None, 0.99)?; // Wilson: [0, ~0.0004]
/// assert_eq!((w.estimate, w.ci_low), (0.0, 0.0));
/// assert!(w.ci_high > 0.0 && w.ci_high < 0.001);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// As [`Estimator::new`] and [`Estimator::estimate`].
pub fn estimate_label(
    reports: u64,
    observed: u64,
    k: usize,
    epsilon: Option<f64>,
    confidence: f64,
) -> Result<Estimate, PrivacyError> {
    Estimator::new(k, epsilon, confidence)?.estimate(reports, observed)
}

/// The estimates of every label of one counter from its label counts; `k = counts.len()`.
///
/// ```
/// let all = clearcount_privacy::estimate::estimate_counter(&[700, 200, 100], Some(2.0), 0.95)?;
/// assert_eq!(all.len(), 3);
/// assert!(all.iter().all(|e| e.reports == 1_000));
/// # Ok::<(), clearcount_privacy::PrivacyError>(())
/// ```
///
/// # Errors
/// As [`Estimator::new`] (an empty slice is [`PrivacyError::InvalidLabelCount`]) and
/// [`Estimator::estimate_counts`].
pub fn estimate_counter(
    counts: &[u64],
    epsilon: Option<f64>,
    confidence: f64,
) -> Result<Vec<Estimate>, PrivacyError> {
    Estimator::new(counts.len(), epsilon, confidence)?.estimate_counts(counts)
}

fn total(counts: &[u64]) -> Result<u64, PrivacyError> {
    counts.iter().try_fold(0u64, |acc, &c| {
        acc.checked_add(c).ok_or(PrivacyError::CountOverflow)
    })
}

/// The label counts of one counter, built one report at a time: the aggregation input of
/// [`Estimator::estimate_counts`]. A server tallies each (program, counter) of a week's reports
/// into one of these, or reads the counts from its database and uses the slice directly.
///
/// ```
/// use clearcount_privacy::estimate::LabelCounts;
///
/// # fn main() -> Result<(), clearcount_privacy::PrivacyError> {
/// let mut counts = LabelCounts::new(3)?;
/// counts.add(2)?;
/// counts.add(0)?;
/// counts.add_many(2, 5)?;
/// assert_eq!(counts.counts(), &[1, 0, 6]);
/// assert_eq!(counts.reports(), 7);
/// let estimates = counts.estimate(Some(1.0), 0.95)?;
/// assert_eq!(estimates.len(), 3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelCounts {
    counts: Vec<u64>,
    reports: u64,
}

impl LabelCounts {
    /// Zero counts for `k` labels.
    ///
    /// # Errors
    /// [`PrivacyError::InvalidLabelCount`] when `k = 0` or `k > MAX_LABELS`.
    pub fn new(k: usize) -> Result<Self, PrivacyError> {
        Ok(LabelCounts {
            counts: vec![0; validate::k(k)?],
            reports: 0,
        })
    }

    /// Counts taken as they are (`counts[v]` reports of label `v`).
    ///
    /// # Errors
    /// [`PrivacyError::InvalidLabelCount`] when empty, [`PrivacyError::CountOverflow`] when the
    /// total overflows.
    pub fn from_counts(counts: Vec<u64>) -> Result<Self, PrivacyError> {
        validate::k(counts.len())?;
        let reports = total(&counts)?;
        Ok(LabelCounts { counts, reports })
    }

    /// Counts one report of label `index`.
    ///
    /// # Errors
    /// [`PrivacyError::LabelOutOfRange`], [`PrivacyError::CountOverflow`].
    #[inline]
    pub fn add(&mut self, index: usize) -> Result<(), PrivacyError> {
        self.add_many(index, 1)
    }

    /// Counts `n` reports of label `index`.
    ///
    /// # Errors
    /// [`PrivacyError::LabelOutOfRange`], [`PrivacyError::CountOverflow`].
    #[inline]
    pub fn add_many(&mut self, index: usize, n: u64) -> Result<(), PrivacyError> {
        let k = self.counts.len();
        let slot = self
            .counts
            .get_mut(index)
            .ok_or(PrivacyError::LabelOutOfRange { index, k })?;
        let reports = self
            .reports
            .checked_add(n)
            .ok_or(PrivacyError::CountOverflow)?;
        // slot <= reports, so this cannot overflow once the total did not.
        *slot += n;
        self.reports = reports;
        Ok(())
    }

    /// Adds another tally of the same counter (e.g. from another day or server instance).
    ///
    /// # Errors
    /// [`PrivacyError::LabelCountMismatch`], [`PrivacyError::CountOverflow`].
    pub fn merge(&mut self, other: &LabelCounts) -> Result<(), PrivacyError> {
        if other.counts.len() != self.counts.len() {
            return Err(PrivacyError::LabelCountMismatch {
                expected: self.counts.len(),
                got: other.counts.len(),
            });
        }
        let reports = self
            .reports
            .checked_add(other.reports)
            .ok_or(PrivacyError::CountOverflow)?;
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.reports = reports;
        Ok(())
    }

    /// The counts, in label order.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The number of labels.
    pub fn k(&self) -> usize {
        self.counts.len()
    }

    /// The number of reports counted (the sum of the counts).
    pub fn reports(&self) -> u64 {
        self.reports
    }

    /// Estimates every label (see [`estimate_counter`]).
    ///
    /// # Errors
    /// As [`estimate_counter`].
    pub fn estimate(
        &self,
        epsilon: Option<f64>,
        confidence: f64,
    ) -> Result<Vec<Estimate>, PrivacyError> {
        estimate_counter(&self.counts, epsilon, confidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rr_estimate_matches_hand_computation() {
        // k = 2, eps = ln 3: p = 3/4, q = 1/4, p - q = 1/2.
        let eps = 3f64.ln();
        let e = estimate_label(1_000, 600, 2, Some(eps), 0.95).unwrap();
        let lambda: f64 = 0.6;
        let raw = (lambda - 0.25) / 0.5; // 0.7
        let var = lambda * (1.0 - lambda) / (1_000.0 * 0.25);
        assert!((e.raw_estimate - raw).abs() < 1e-12);
        assert!((e.variance - var).abs() < 1e-15);
        let half = 1.959_963_984_540_054 * var.sqrt();
        assert!((e.ci_low - (raw - half)).abs() < 1e-9);
        assert!((e.ci_high - (raw + half)).abs() < 1e-9);
    }

    #[test]
    fn wilson_matches_reference() {
        // Wilson 95% interval for 10 of 100: [0.0552, 0.1744] (standard tables).
        let e = estimate_label(100, 10, 2, None, 0.95).unwrap();
        assert_eq!(e.method, Method::Wilson);
        assert!((e.ci_low - 0.0552).abs() < 5e-5, "{}", e.ci_low);
        assert!((e.ci_high - 0.1744).abs() < 5e-5, "{}", e.ci_high);
        let all = estimate_label(7, 7, 2, None, 0.95).unwrap();
        assert_eq!((all.estimate, all.ci_high), (1.0, 1.0));
        assert!(all.ci_low < 1.0);
    }

    #[test]
    fn out_of_range_raw_is_kept_and_clipped() {
        let e = estimate_label(1_000, 0, 4, Some(1.0), 0.95).unwrap();
        assert!(e.raw_estimate < 0.0);
        assert_eq!((e.estimate, e.ci_low), (0.0, 0.0));
        assert!(e.ci_high >= 0.0);
        let e = estimate_label(1_000, 1_000, 4, Some(1.0), 0.95).unwrap();
        assert!(e.raw_estimate > 1.0);
        assert_eq!((e.estimate, e.ci_high), (1.0, 1.0));
    }

    #[test]
    fn errors() {
        assert_eq!(
            estimate_label(0, 0, 2, Some(1.0), 0.95),
            Err(PrivacyError::NoReports)
        );
        assert_eq!(
            estimate_label(5, 6, 2, None, 0.95),
            Err(PrivacyError::ObservedExceedsReports {
                observed: 6,
                reports: 5
            })
        );
        assert!(estimate_counter(&[], None, 0.95).is_err());
        assert_eq!(
            estimate_counter(&[0, 0], None, 0.95),
            Err(PrivacyError::NoReports)
        );
        assert_eq!(
            estimate_counter(&[u64::MAX, 1], None, 0.95),
            Err(PrivacyError::CountOverflow)
        );
        assert!(matches!(
            Estimator::new(2, Some(1e-300), 0.95),
            Err(PrivacyError::EpsilonTooSmall(_))
        ));
        let est = Estimator::new(3, None, 0.9).unwrap();
        assert!(matches!(
            est.estimate_counts(&[1, 2]),
            Err(PrivacyError::LabelCountMismatch { .. })
        ));
    }

    #[test]
    fn label_counts_tally() {
        let mut a = LabelCounts::new(2).unwrap();
        a.add(0).unwrap();
        assert!(a.add(2).is_err());
        let b = LabelCounts::from_counts(vec![3, 4]).unwrap();
        a.merge(&b).unwrap();
        assert_eq!((a.counts(), a.reports()), (&[4u64, 4][..], 8));
        assert!(a.merge(&LabelCounts::new(3).unwrap()).is_err());
        let mut full = LabelCounts::from_counts(vec![u64::MAX, 0]).unwrap();
        assert_eq!(full.add(1), Err(PrivacyError::CountOverflow));
        assert_eq!(full.counts(), &[u64::MAX, 0]);
    }

    #[test]
    fn serializes_with_method_name() {
        let e = estimate_label(10, 5, 2, None, 0.95).unwrap();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["method"], "wilson");
        assert_eq!(json["epsilon"], serde_json::Value::Null);
        assert_eq!(json["reports"], 10);
        let rr = estimate_label(10, 5, 2, Some(1.0), 0.95).unwrap();
        assert_eq!(serde_json::to_value(&rr).unwrap()["method"], "rr_normal");
        let back: Estimate = serde_json::from_value(serde_json::to_value(&rr).unwrap()).unwrap();
        assert_eq!(back, rr);
    }
}
