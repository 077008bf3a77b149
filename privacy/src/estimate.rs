//! De-biased label frequencies with confidence intervals (DESIGN.md section 5, contract
//! version 2).
//!
//! A privacy mechanism turns a label's true share `f_v` into a **response rate**
//! `λ_v = q + f_v (p - q)`: the chance that one report carries label `v`. For k-ary randomized
//! response `p = e^ε / (e^ε + k - 1)` and `q = 1 / (e^ε + k - 1)`; without randomized response
//! `p = 1`, `q = 0` and `λ_v = f_v`. Another mechanism (optimized unary encoding, say) plugs in
//! through its own `(p, q)`: every formula below uses only them ([`Estimator::with_rates`]).
//!
//! From `n` reports of which `c_v` carry label `v`:
//!
//! - **`raw_estimate`** `f̂_v = (c_v/n - q) / (p - q)`: unbiased, may be negative or above 1;
//!   the raw estimates of a counter's labels add up to exactly 1.
//! - **`estimate`**: the consistent estimate, non-negative and summing to 1 over the counter's
//!   labels: the raw estimates minus one common shift, clipped at 0 (Norm-Sub, [`norm_sub`];
//!   it is the closest point of the probability simplex). It is slightly biased for labels
//!   near 0 (a label nobody has gets a small positive average), but never absurd.
//! - **the interval** `[ci_low, ci_high]`: the Wilson score interval for the response rate
//!   `λ_v`, with the boundary correction of Brown, Cai and DasGupta (2001, section 4.1.1) for
//!   counts within 3 of 0 or `n`, mapped through `(λ - q) / (p - q)` and clipped to [0, 1].
//!   The interval is about the true share; it is built from `c_v` alone, so it always holds
//!   `raw_estimate` (before clipping) but, where the Norm-Sub shift is large, `estimate` may
//!   lie below `ci_low`.
//!
//! **Why Wilson on the response rate.** The normal approximation `f̂ ± z·sd` with the observed
//! rate in the variance is too narrow exactly where it matters: when few reports carry a label
//! the observed rate, and so the variance, is too small (one report gave `[1, 1]`). The score
//! interval takes its variance from the rate being tested instead, and the boundary correction
//! replaces Wilson's bound with a Poisson one where Wilson dips near 0 or 1. The mapping is
//! increasing, so the interval covers `f_v` exactly when the rate interval covers `λ_v`.
//!
//! **Never zero width.** When randomized response is on, the rate interval can lie wholly
//! below `q` (a label observed less often than even a share of 0 explains); clipped, it would
//! be `[0, 0]`. The interval is then `[0, 1/n]`: the data say the share is tiny, but not that
//! it is exactly 0. Symmetrically `[1 - 1/n, 1]` above `p`. (A wider floor, such as the noise
//! level at a share of 0, would make small true shares covered too often: measured, up to 97.5%
//! for a share of 0.015 with k = 32, ε = 1 and 1,000 reports.)
//!
//! **No reports.** With `n = 0` there is nothing to estimate: every function returns
//! [`PrivacyError::NoReports`]; a publisher should omit the counter (or show "no data") rather
//! than print a number.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Gamma};

use crate::rr::RandomizedResponse;
use crate::{PrivacyError, validate};

/// The privacy mechanism a counter's reports went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// No randomized response: reports carry the true label (serialized `"none"`).
    None,
    /// k-ary randomized response (serialized `"krr"`).
    Krr,
    /// Optimized unary encoding: one bit a label (serialized `"oue"`).
    Oue,
}

impl Mechanism {
    /// The name used in configs and downloads: `"none"`, `"krr"` or `"oue"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::None => "none",
            Mechanism::Krr => "krr",
            Mechanism::Oue => "oue",
        }
    }

    /// The mechanism of a name written by [`Mechanism::as_str`].
    pub fn from_name(name: &str) -> Option<Mechanism> {
        [Mechanism::None, Mechanism::Krr, Mechanism::Oue]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

/// The interval and unbiased estimate of one label, from its own count alone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The unbiased `(c_v/n - q) / (p - q)`; may lie outside [0, 1].
    pub raw_estimate: f64,
    /// The plug-in variance of `raw_estimate`, `λ̂(1-λ̂) / (n (p-q)²)` with `λ̂ = c_v/n`.
    pub variance: f64,
    /// The lower end of the interval, in [0, 1].
    pub ci_low: f64,
    /// The upper end of the interval, in [`ci_low`](Self::ci_low), 1], never equal to
    /// `ci_low` unless the mechanism makes the answer certain.
    pub ci_high: f64,
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
    /// The mechanism the reports went through.
    pub mechanism: Mechanism,
    /// The unbiased estimate; may lie outside [0, 1]. The raw estimates of a counter sum to 1.
    pub raw_estimate: f64,
    /// The consistent estimate: in [0, 1], summing to 1 over the counter's labels (Norm-Sub).
    pub estimate: f64,
    /// The plug-in variance of `raw_estimate`.
    pub variance: f64,
    /// The lower end of the interval.
    pub ci_low: f64,
    /// The upper end of the interval; `estimate <= ci_high` always holds.
    pub ci_high: f64,
    /// The nominal confidence level of the interval, e.g. 0.95.
    pub confidence: f64,
}

/// The largest count from either end that gets the Poisson bound instead of Wilson's
/// (Brown, Cai and DasGupta 2001: 2 up to 50 reports, 3 above).
fn boundary_counts(n: u64) -> u64 {
    if n <= 50 { 2 } else { 3 }
}

/// An estimator for one counter's labels, with the constants (`p`, `q`, `z`, the Poisson
/// quantiles of the boundary correction) computed once.
///
/// ```
/// use clearcount_privacy::estimate::Estimator;
///
/// # fn main() -> Result<(), clearcount_privacy::PrivacyError> {
/// // 10,000 reports of a 3-label counter with epsilon 1, 95% intervals.
/// let estimator = Estimator::new(3, Some(1.0), 0.95)?;
/// let all = estimator.estimate_counts(&[5_000, 3_000, 2_000])?;
/// let raw: f64 = all.iter().map(|e| e.raw_estimate).sum();
/// let consistent: f64 = all.iter().map(|e| e.estimate).sum();
/// assert!((raw - 1.0).abs() < 1e-9 && (consistent - 1.0).abs() < 1e-9);
/// let one = estimator.interval(10_000, 5_000)?;
/// assert_eq!((one.ci_low, one.ci_high), (all[0].ci_low, all[0].ci_high));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimator {
    k: usize,
    epsilon: Option<f64>,
    mechanism: Mechanism,
    q: f64,
    p_minus_q: f64,
    confidence: f64,
    z: f64,
    /// `poisson_low[x - 1]`: the lower `1 - confidence` quantile of a Poisson mean given `x`
    /// events (half the chi-square quantile with `2x` degrees of freedom), `x = 1, 2, 3`.
    poisson_low: [f64; 3],
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
        match epsilon {
            None => Self::with_rates(k, None, Mechanism::None, 1.0, 0.0, 1.0, confidence),
            Some(eps) => {
                let rr = RandomizedResponse::new(k, eps)?;
                Self::with_rates(
                    k,
                    Some(eps),
                    Mechanism::Krr,
                    rr.p(),
                    rr.q(),
                    rr.p_minus_q(),
                    confidence,
                )
            }
        }
    }

    /// An estimator for a counter of `k` labels reported by optimized unary encoding with
    /// `epsilon` ([`crate::oue`]): feed it [`Estimator::estimate_bits`].
    ///
    /// # Errors
    /// As [`Estimator::new`].
    pub fn oue(k: usize, epsilon: f64, confidence: f64) -> Result<Self, PrivacyError> {
        let oue = crate::oue::UnaryEncoding::new(k, epsilon)?;
        Self::with_rates(
            k,
            Some(epsilon),
            Mechanism::Oue,
            oue.p(),
            oue.q(),
            oue.p_minus_q(),
            confidence,
        )
    }

    /// An estimator for any mechanism whose reports carry label `v` with probability
    /// `q + f_v (p - q)` (`p_minus_q` passed separately so that it can be computed without
    /// cancellation). This is where another mechanism's `(p, q)` plugs in.
    ///
    /// # Errors
    /// [`PrivacyError::InvalidLabelCount`], [`PrivacyError::InvalidConfidence`],
    /// [`PrivacyError::EpsilonTooSmall`] when `p - q` is not a positive number whose square is
    /// a normal float (or `p`, `q` are not probabilities).
    pub fn with_rates(
        k: usize,
        epsilon: Option<f64>,
        mechanism: Mechanism,
        p: f64,
        q: f64,
        p_minus_q: f64,
        confidence: f64,
    ) -> Result<Self, PrivacyError> {
        let k = validate::k(k)?;
        let z = validate::z_for(confidence)?;
        // Keep (p-q)^2 a normal float so every quotient below stays finite.
        let usable = (0.0..=1.0).contains(&p)
            && (0.0..=1.0).contains(&q)
            && p_minus_q > 0.0
            && p_minus_q * p_minus_q >= f64::MIN_POSITIVE;
        if !usable {
            return Err(PrivacyError::EpsilonTooSmall(epsilon.unwrap_or(0.0)));
        }
        let alpha = 1.0 - confidence;
        let mut poisson_low = [0.0; 3];
        for (i, slot) in poisson_low.iter_mut().enumerate() {
            let gamma = Gamma::new(i as f64 + 1.0, 1.0)
                .map_err(|_| PrivacyError::InvalidConfidence(confidence))?;
            *slot = gamma.inverse_cdf(alpha);
        }
        Ok(Estimator {
            k,
            epsilon,
            mechanism,
            q,
            p_minus_q,
            confidence,
            z,
            poisson_low,
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

    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The interval for the response rate `λ = observed / reports`: Wilson's score interval,
    /// with the Poisson bound of Brown, Cai and DasGupta where the count is within
    /// [`boundary_counts`] of 0 or `n`. Never zero width for `n >= 1`.
    fn rate_interval(&self, reports: u64, observed: u64) -> (f64, f64) {
        let n = reports as f64;
        let lambda = observed as f64 / n;
        let z = self.z;
        let z2n = z * z / n;
        let center = (lambda + z2n / 2.0) / (1.0 + z2n);
        let half = z / (1.0 + z2n) * (lambda * (1.0 - lambda) / n + z2n / (4.0 * n)).sqrt();
        let (mut low, mut high) = (center - half, center + half);
        let edge = boundary_counts(reports);
        if (1..=edge).contains(&observed) {
            low = self.poisson_low[(observed - 1) as usize] / n;
        }
        let missing = reports - observed;
        if (1..=edge).contains(&missing) {
            high = 1.0 - self.poisson_low[(missing - 1) as usize] / n;
        }
        // Rounding at lambda = 0 or 1: keep the bounds in [0, 1] and around lambda.
        (low.clamp(0.0, lambda), high.clamp(lambda, 1.0))
    }

    /// The unbiased estimate and the interval of one label observed `observed` times among
    /// `reports` reports. The consistent estimate needs every label: see
    /// [`Estimator::estimate_counts`].
    ///
    /// ```
    /// use clearcount_privacy::estimate::Estimator;
    ///
    /// # fn main() -> Result<(), clearcount_privacy::PrivacyError> {
    /// // Without randomized response: Wilson's interval for 10 of 100 is [5.52%, 17.44%].
    /// let w = Estimator::new(2, None, 0.95)?.interval(100, 10)?;
    /// assert!((w.ci_low - 0.0552).abs() < 5e-5 && (w.ci_high - 0.1744).abs() < 5e-5);
    /// // One report is never certain: the interval of its label is wide, not [1, 1].
    /// let one = Estimator::new(5, Some(4.0), 0.95)?.interval(1, 1)?;
    /// assert!(one.ci_low < 0.1 && one.ci_high == 1.0);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`PrivacyError::NoReports`] when `reports = 0`,
    /// [`PrivacyError::ObservedExceedsReports`] when `observed > reports`.
    pub fn interval(&self, reports: u64, observed: u64) -> Result<Interval, PrivacyError> {
        if reports == 0 {
            return Err(PrivacyError::NoReports);
        }
        if observed > reports {
            return Err(PrivacyError::ObservedExceedsReports { observed, reports });
        }
        let n = reports as f64;
        let lambda = observed as f64 / n;
        let (pq, q) = (self.p_minus_q, self.q);
        let raw_estimate = (lambda - q) / pq;
        let variance = lambda * (1.0 - lambda) / (n * pq * pq);
        let (low, high) = self.rate_interval(reports, observed);
        let mut ci_low = ((low - q) / pq).clamp(0.0, 1.0);
        let mut ci_high = ((high - q) / pq).clamp(0.0, 1.0);
        // A rate interval wholly below q (or above p) would clip to [0, 0] (or [1, 1]): end it
        // one report's share, 1/n, from the edge instead.
        let resolution = (1.0 / n).min(1.0);
        if ci_high <= 0.0 {
            ci_high = resolution;
        }
        if ci_low >= 1.0 {
            ci_low = 1.0 - resolution;
        }
        Ok(Interval {
            raw_estimate,
            variance,
            ci_low,
            ci_high,
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
        self.check_len(counts)?;
        self.estimates(total(counts)?, counts)
    }

    /// The estimates of every label from unary-encoded reports ([`crate::oue`]): `ones[v]` is
    /// the number of the `reports` reports whose bit `v` is 1 (one report sets several bits,
    /// so `reports` is given, not summed).
    ///
    /// # Errors
    /// [`PrivacyError::LabelCountMismatch`] when `ones.len() != k`,
    /// [`PrivacyError::NoReports`] when `reports = 0`,
    /// [`PrivacyError::ObservedExceedsReports`] when a count exceeds `reports`.
    pub fn estimate_bits(&self, reports: u64, ones: &[u64]) -> Result<Vec<Estimate>, PrivacyError> {
        self.check_len(ones)?;
        self.estimates(reports, ones)
    }

    fn check_len(&self, counts: &[u64]) -> Result<(), PrivacyError> {
        if counts.len() == self.k {
            Ok(())
        } else {
            Err(PrivacyError::LabelCountMismatch {
                expected: self.k,
                got: counts.len(),
            })
        }
    }

    /// Each label's interval from its count among `reports`, and Norm-Sub over them.
    fn estimates(&self, reports: u64, counts: &[u64]) -> Result<Vec<Estimate>, PrivacyError> {
        let intervals = counts
            .iter()
            .map(|&c| self.interval(reports, c))
            .collect::<Result<Vec<_>, _>>()?;
        let raw: Vec<f64> = intervals.iter().map(|i| i.raw_estimate).collect();
        let consistent = norm_sub(&raw);
        Ok(counts
            .iter()
            .zip(intervals)
            .zip(consistent)
            .map(|((&observed, i), estimate)| Estimate {
                reports,
                observed,
                k: self.k,
                epsilon: self.epsilon,
                mechanism: self.mechanism,
                raw_estimate: i.raw_estimate,
                // Norm-Sub never raises a value above max(raw, 0), which the interval holds.
                estimate: estimate.min(i.ci_high),
                variance: i.variance,
                ci_low: i.ci_low,
                ci_high: i.ci_high,
                confidence: self.confidence,
            })
            .collect())
    }
}

/// The consistent estimates from the raw ones (Norm-Sub): `max(raw_v - δ, 0)` with the one
/// shift `δ` that makes them sum to 1. This is the Euclidean projection onto the probability
/// simplex: when every raw estimate is already in [0, 1] and they sum to 1, nothing changes.
///
/// ```
/// use clearcount_privacy::estimate::norm_sub;
///
/// let e = norm_sub(&[0.7, 0.5, -0.2]);
/// assert!((e[0] - 0.6).abs() < 1e-12 && (e[1] - 0.4).abs() < 1e-12 && e[2] == 0.0);
/// assert_eq!(norm_sub(&[0.25, 0.75]), vec![0.25, 0.75]);
/// ```
///
/// An empty slice gives an empty vector; non-finite inputs give unspecified (but finite or
/// NaN-free where the inputs are) values and are the caller's bug.
pub fn norm_sub(raw: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = raw.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut cumulative = 0.0;
    let mut shift = 0.0;
    for (j, u) in sorted.iter().enumerate() {
        cumulative += u;
        let t = (cumulative - 1.0) / (j + 1) as f64;
        if u - t > 0.0 {
            shift = t;
        }
    }
    raw.iter().map(|r| (r - shift).max(0.0)).collect()
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
    fn rr_interval_is_wilson_on_the_rate_mapped() {
        // k = 2, eps = ln 3: p = 3/4, q = 1/4, p - q = 1/2. 600 of 1,000 report the label.
        let est = Estimator::new(2, Some(3f64.ln()), 0.95).unwrap();
        let e = est.interval(1_000, 600).unwrap();
        assert!((e.raw_estimate - 0.7).abs() < 1e-12);
        assert!((e.variance - 0.6 * 0.4 / (1_000.0 * 0.25)).abs() < 1e-15);
        // Wilson 95% for 600 of 1,000 is [0.56931, 0.62993], mapped.
        assert!(
            (e.ci_low - (0.56931 - 0.25) / 0.5).abs() < 2e-5,
            "{}",
            e.ci_low
        );
        assert!(
            (e.ci_high - (0.62993 - 0.25) / 0.5).abs() < 2e-5,
            "{}",
            e.ci_high
        );
    }

    #[test]
    fn wilson_matches_reference() {
        // Wilson 95% interval for 10 of 100: [0.0552, 0.1744] (standard tables); 10 is far
        // from the boundary, so no correction applies.
        let e = Estimator::new(2, None, 0.95)
            .unwrap()
            .interval(100, 10)
            .unwrap();
        assert!((e.ci_low - 0.0552).abs() < 5e-5, "{}", e.ci_low);
        assert!((e.ci_high - 0.1744).abs() < 5e-5, "{}", e.ci_high);
        let all = Estimator::new(2, None, 0.95)
            .unwrap()
            .interval(7, 7)
            .unwrap();
        assert_eq!(all.ci_high, 1.0);
        assert!(all.ci_low < 1.0);
    }

    #[test]
    fn boundary_counts_get_the_poisson_bound() {
        // Brown, Cai and DasGupta 2001: for x = 1..3 (n > 50) the lower bound is half the
        // 5% quantile of chi-square with 2x degrees of freedom, over n: 0.05129, 0.35536,
        // 0.81769 (chi-square tables: 0.1026, 0.7107, 1.6354).
        let est = Estimator::new(2, None, 0.95).unwrap();
        for (x, q) in [(1, 0.051_293), (2, 0.355_362), (3, 0.817_691)] {
            let e = est.interval(100, x).unwrap();
            assert!((e.ci_low - q / 100.0).abs() < 1e-6, "x={x}: {}", e.ci_low);
            let top = est.interval(100, 100 - x).unwrap();
            assert!((top.ci_high - (1.0 - q / 100.0)).abs() < 1e-6);
        }
        // x = 4 is Wilson's again; at n <= 50 only x <= 2 is corrected.
        let wilson_4 = est.interval(100, 4).unwrap().ci_low;
        assert!(wilson_4 > 0.015 && wilson_4 < 0.016, "{wilson_4}");
        assert!(est.interval(50, 3).unwrap().ci_low > 0.8177 / 50.0);
    }

    #[test]
    fn never_zero_width() {
        for eps in [None, Some(0.5), Some(4.0), Some(8.0)] {
            for k in [2usize, 5, 33] {
                let est = Estimator::new(k, eps, 0.95).unwrap();
                for n in [1u64, 2, 3, 30, 1_000, 1_000_000] {
                    for c in [0, 1, n / 2, n - 1, n] {
                        let e = est.interval(n, c).unwrap();
                        assert!(
                            e.ci_high > e.ci_low,
                            "k={k} eps={eps:?} n={n} c={c}: [{}, {}]",
                            e.ci_low,
                            e.ci_high
                        );
                    }
                }
            }
        }
        // The issue's cases: one and two reports of a label no longer give [1, 1].
        let est = Estimator::new(5, Some(1.0), 0.95).unwrap();
        let one = est.estimate_counts(&[1, 0, 0, 0, 0]).unwrap();
        assert!(one[0].ci_low < 0.05 && one[0].ci_high == 1.0, "{one:?}");
        let two = est.estimate_counts(&[2, 0, 0, 0, 0]).unwrap();
        assert!(two[0].ci_low < 0.2, "{two:?}");
        // A rate far below q: [0, 1/n], not [0, 0]; far above p: [1 - 1/n, 1].
        let low = Estimator::new(2, Some(4.0), 0.95).unwrap();
        let e = low.interval(10_000, 0).unwrap();
        assert_eq!((e.ci_low, e.ci_high), (0.0, 1e-4));
        let e = low.interval(10_000, 10_000).unwrap();
        assert_eq!((e.ci_low, e.ci_high), (1.0 - 1e-4, 1.0));
    }

    #[test]
    fn consistent_estimates_sum_to_one() {
        let est = Estimator::new(5, Some(0.5), 0.95).unwrap();
        let all = est.estimate_counts(&[40, 12, 10, 9, 9]).unwrap();
        let raw: f64 = all.iter().map(|e| e.raw_estimate).sum();
        let sum: f64 = all.iter().map(|e| e.estimate).sum();
        assert!((raw - 1.0).abs() < 1e-12 && (sum - 1.0).abs() < 1e-12);
        assert!(all.iter().any(|e| e.raw_estimate < 0.0));
        for e in &all {
            assert!(e.estimate >= 0.0 && e.estimate <= e.ci_high, "{e:?}");
            assert!(e.ci_low <= e.raw_estimate.max(0.0) && e.raw_estimate.min(1.0) <= e.ci_high);
        }
    }

    #[test]
    fn norm_sub_is_the_simplex_projection() {
        assert_eq!(norm_sub(&[]), Vec::<f64>::new());
        assert_eq!(norm_sub(&[1.0]), vec![1.0]);
        let e = norm_sub(&[1.3, -0.3]);
        assert!((e[0] - 1.0).abs() < 1e-15 && e[1] == 0.0, "{e:?}");
        let e = norm_sub(&[0.5, 0.4, 0.2, -0.1]);
        // Shift 1/30 over the three positive labels.
        let d = 1.0 / 30.0;
        for (got, want) in e.iter().zip([0.5 - d, 0.4 - d, 0.2 - d, 0.0]) {
            assert!((got - want).abs() < 1e-12, "{e:?}");
        }
    }

    #[test]
    fn errors() {
        let est = Estimator::new(2, Some(1.0), 0.95).unwrap();
        assert_eq!(est.interval(0, 0), Err(PrivacyError::NoReports));
        assert_eq!(
            est.interval(5, 6),
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
        assert!(Estimator::with_rates(2, None, Mechanism::Krr, 0.5, 0.5, 0.0, 0.95).is_err());
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
    fn serializes_with_mechanism_name() {
        let e = &estimate_counter(&[5, 5], None, 0.95).unwrap()[0];
        let json = serde_json::to_value(e).unwrap();
        assert_eq!(json["mechanism"], "none");
        assert_eq!(json["epsilon"], serde_json::Value::Null);
        assert_eq!(json["reports"], 10);
        let rr = &estimate_counter(&[5, 5], Some(1.0), 0.95).unwrap()[0];
        assert_eq!(serde_json::to_value(rr).unwrap()["mechanism"], "krr");
        let back: Estimate = serde_json::from_value(serde_json::to_value(rr).unwrap()).unwrap();
        assert_eq!(&back, rr);
    }
}
