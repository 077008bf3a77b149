//! The sample-size planner (DESIGN.md section 5, contract version 2).
//!
//! **Reports.** A label's interval has half-width about `z·sqrt(λ(1-λ)/n) / (p - q)`, where
//! `λ = q + f (p - q)` is its response rate. Whatever the true share `f` in [0, 1], `λ` lies in
//! `[q, p]`, so the exact worst case is `λ* = 1/2` clamped to `[q, p]`, and `n` reports
//! guarantee a half-width of at most `e` when
//!
//! `n >= z² λ*(1-λ*) / (e² (p-q)²)`.
//!
//! Where `[q, p]` holds 1/2 (few labels or a large epsilon, and always without randomized
//! response: `p = 1`, `q = 0`) this is the textbook `z² / (4 e² (p-q)²)`: about 16,588 reports
//! for a 1% margin at 99% confidence without randomized response. With many labels and a small
//! epsilon `p < 1/2`, and the bound is several times smaller (k = 32, ε = 0.5, 5% at 95%:
//! 186,616 reports instead of 972,999). [`reports_needed`] returns the smallest such integer.
//!
//! **Sample rate.** The reports a week brings are random: each of `N` opted-in installs is
//! sampled independently with the configured rate `r`, so their number is Binomial(N, r). A
//! rate of `n / N` reaches `n` only about half of the weeks. [`sample_rate_for`] gives the
//! smallest rate (rounded up to 4 significant digits, for a config file) at which the target
//! is reached with probability at least [`HEADROOM`] (95%), from the exact binomial tail.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};
use statrs::function::gamma::ln_gamma;

use crate::estimate::Mechanism;
use crate::oue::UnaryEncoding;
use crate::rr::RandomizedResponse;
use crate::{PrivacyError, validate};

/// The probability with which a planned sample rate reaches the target number of reports.
pub const HEADROOM: f64 = 0.95;

/// `(p, q, p - q)` for `k` labels and optional epsilon (`(1, 0, 1)` without randomized
/// response), validated.
fn rates(k: usize, epsilon: Option<f64>) -> Result<(f64, f64, f64), PrivacyError> {
    validate::k(k)?;
    match epsilon {
        None => Ok((1.0, 0.0, 1.0)),
        Some(eps) => {
            let rr = RandomizedResponse::new(k, eps)?;
            Ok((rr.p(), rr.q(), rr.p_minus_q()))
        }
    }
}

/// `(p, q, p - q)` of optimized unary encoding over `k` labels with `epsilon`, validated.
fn oue_rates(k: usize, epsilon: f64) -> Result<(f64, f64, f64), PrivacyError> {
    let oue = UnaryEncoding::new(k, epsilon)?;
    Ok((oue.p(), oue.q(), oue.p_minus_q()))
}

/// The smallest `n` with `z sqrt(λ*(1-λ*) / n) / (p - q) <= margin`, `λ*` = 1/2 clamped to
/// `[q, p]`, for `rates = (p, q, p - q)`.
fn needed(rates: (f64, f64, f64), margin: f64, confidence: f64) -> Result<u64, PrivacyError> {
    let sd = worst_sd(rates);
    let margin = validate::margin(margin)?;
    let z = validate::z_for(confidence)?;
    // Written as a square of a ratio so that intermediate values do not underflow.
    let root = z * sd / margin;
    let n = (root * root).ceil();
    // 2^64 is exactly representable; anything at or above it (or inf/NaN) does not fit.
    if n.is_nan() || n >= 18_446_744_073_709_551_616.0 {
        return Err(PrivacyError::PlanTooLarge);
    }
    Ok((n as u64).max(1))
}

/// [`reports_needed`] for a counter randomized with optimized unary encoding (`p = 1/2`,
/// `q = 1/(e^ε + 1)` for every label whatever `k`).
///
/// ```
/// use clearcount_privacy::planner::{reports_needed, reports_needed_oue};
///
/// # fn main() -> Result<(), clearcount_privacy::PrivacyError> {
/// // k = 32, epsilon = 1: OUE needs far fewer reports than k-ary randomized response.
/// assert!(reports_needed_oue(32, 1.0, 0.05, 0.95)? * 2 < reports_needed(32, Some(1.0), 0.05, 0.95)?);
/// // k = 2: k-RR is better.
/// assert!(reports_needed_oue(2, 1.0, 0.05, 0.95)? > reports_needed(2, Some(1.0), 0.05, 0.95)?);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// As [`reports_needed`].
pub fn reports_needed_oue(
    k: usize,
    epsilon: f64,
    margin: f64,
    confidence: f64,
) -> Result<u64, PrivacyError> {
    needed(oue_rates(k, epsilon)?, margin, confidence)
}

/// The response rate in `[q, p]` whose estimate varies most: 1/2 clamped to `[q, p]`.
pub fn worst_rate(k: usize, epsilon: Option<f64>) -> Result<f64, PrivacyError> {
    let (p, q, _) = rates(k, epsilon)?;
    Ok(0.5f64.clamp(q, p))
}

/// `sqrt(λ*(1-λ*)) / (p - q)`: the worst-case standard deviation of one report's contribution
/// to an estimate.
fn worst_sd((p, q, sep): (f64, f64, f64)) -> f64 {
    let l = 0.5f64.clamp(q, p);
    (l * (1.0 - l)).sqrt() / sep
}

/// The number of weekly reports needed so that every label's confidence interval at
/// `confidence` has half-width at most `margin`, whatever the true frequencies, for a counter
/// of `k` labels randomized with `epsilon` (`None`: no randomized response).
///
/// ```
/// use clearcount_privacy::planner::reports_needed;
///
/// # fn main() -> Result<(), clearcount_privacy::PrivacyError> {
/// assert_eq!(reports_needed(2, None, 0.01, 0.99)?, 16_588); // 16,587.24 rounded up
/// // Randomized response costs reports: k = 5, epsilon = 1, same margin.
/// assert!(reports_needed(5, Some(1.0), 0.01, 0.99)? > 16_588 * 7);
/// // Where no label's response rate can reach 1/2, the worst case is p itself.
/// assert_eq!(reports_needed(32, Some(0.5), 0.05, 0.95)?, 186_616);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`PrivacyError::InvalidLabelCount`], [`PrivacyError::InvalidEpsilon`],
/// [`PrivacyError::InvalidMargin`] (outside (0, 1]), [`PrivacyError::InvalidConfidence`], and
/// [`PrivacyError::PlanTooLarge`] when the answer does not fit in a `u64`.
pub fn reports_needed(
    k: usize,
    epsilon: Option<f64>,
    margin: f64,
    confidence: f64,
) -> Result<u64, PrivacyError> {
    needed(rates(k, epsilon)?, margin, confidence)
}

/// The half-width every label's interval at `confidence` is guaranteed not to exceed (to the
/// normal approximation) with `reports` reports, the inverse of [`reports_needed`]:
/// `z sqrt(λ*(1-λ*) / n) / (p - q)`, capped at 1.
///
/// ```
/// let m = clearcount_privacy::planner::margin_for(2, None, 16_588, 0.99)?;
/// assert!(m <= 0.01 && m > 0.0099);
/// # Ok::<(), clearcount_privacy::PrivacyError>(())
/// ```
///
/// # Errors
/// [`PrivacyError::NoReports`] when `reports = 0`, and as [`reports_needed`].
pub fn margin_for(
    k: usize,
    epsilon: Option<f64>,
    reports: u64,
    confidence: f64,
) -> Result<f64, PrivacyError> {
    let sd = worst_sd(rates(k, epsilon)?);
    let z = validate::z_for(confidence)?;
    if reports == 0 {
        return Err(PrivacyError::NoReports);
    }
    let m = z * sd / (reports as f64).sqrt();
    Ok(if m.is_finite() { m.min(1.0) } else { 1.0 })
}

/// `P(Binomial(n, r) >= t)`, summed term by term over the smaller tail (statrs's incomplete
/// beta stops after 140 continued-fraction steps, too few for millions of installs), or from
/// the normal approximation when the variance exceeds [`LARGE_VARIANCE`].
fn chance_of_reaching(t: u64, n: u64, r: f64) -> f64 {
    if t == 0 || r >= 1.0 {
        return if t <= n { 1.0 } else { 0.0 };
    }
    if t > n || r <= 0.0 {
        return 0.0;
    }
    let mean = n as f64 * r;
    let variance = mean * (1.0 - r);
    if variance > LARGE_VARIANCE {
        // Summing would take ~10 sd terms: use the normal approximation with continuity
        // correction, whose error is far below the 4 significant digits of a planned rate.
        let z = (t as f64 - 0.5 - mean) / variance.sqrt();
        return Normal::standard().sf(z);
    }
    if (t as f64) > mean {
        upper_tail(t, n, r)
    } else {
        1.0 - lower_tail(t - 1, n, r)
    }
}

/// Above this variance (a standard deviation of about 3,200 reports) binomial tails are
/// computed with the normal approximation.
const LARGE_VARIANCE: f64 = 1e7;

/// `ln P(Binomial(n, r) = x)`.
fn ln_pmf(x: u64, n: u64, r: f64) -> f64 {
    let (x, n) = (x as f64, n as f64);
    ln_gamma(n + 1.0) - ln_gamma(x + 1.0) - ln_gamma(n - x + 1.0)
        + x * r.ln()
        + (n - x) * (-r).ln_1p()
}

/// `P(X <= m)` for `X ~ Binomial(n, r)`, `0 < r < 1`, summed downwards from `m` until the
/// terms no longer count.
fn lower_tail(m: u64, n: u64, r: f64) -> f64 {
    let mean = n as f64 * r;
    let odds = (1.0 - r) / r;
    let mut term = ln_pmf(m, n, r).exp();
    let mut sum = term;
    let mut x = m;
    while x > 0 {
        // P(x - 1) = P(x) * x / (n - x + 1) * (1 - r) / r
        term *= x as f64 / (n - x + 1) as f64 * odds;
        x -= 1;
        sum += term;
        if (x as f64) < mean && term <= sum * 1e-17 {
            break;
        }
    }
    sum.min(1.0)
}

/// `P(X >= m)` for `X ~ Binomial(n, r)`, `0 < r < 1`, summed upwards from `m`.
fn upper_tail(m: u64, n: u64, r: f64) -> f64 {
    let mean = n as f64 * r;
    let odds = r / (1.0 - r);
    let mut term = ln_pmf(m, n, r).exp();
    let mut sum = term;
    let mut x = m;
    while x < n {
        // P(x + 1) = P(x) * (n - x) / (x + 1) * r / (1 - r)
        term *= (n - x) as f64 / (x + 1) as f64 * odds;
        x += 1;
        sum += term;
        if (x as f64) > mean && term <= sum * 1e-17 {
            break;
        }
    }
    sum.min(1.0)
}

/// `x` rounded up to 4 significant digits (a rate a person can type into a config), at most 1.
fn round_up_4(x: f64) -> f64 {
    if x <= 0.0 {
        return x;
    }
    let scale = 10f64.powi(3 - x.log10().floor() as i32);
    ((x * scale).ceil() / scale).min(1.0)
}

/// The sample rate at which `installs` opted-in installs yield at least `reports` weekly
/// reports with probability at least [`HEADROOM`]: the smallest such rate, from the exact
/// binomial tail, rounded up to 4 significant digits; in (0, 1].
///
/// ```
/// use clearcount_privacy::{PrivacyError, planner::sample_rate_for};
/// // 16,588 of 165,880 installs: 0.1 on average, a little more with 95% headroom.
/// let rate = sample_rate_for(16_588, 165_880)?;
/// assert!(rate > 0.1 && rate < 0.1025, "{rate}");
/// assert_eq!(sample_rate_for(100, 100), Ok(1.0));
/// assert!(matches!(sample_rate_for(100, 99), Err(PrivacyError::TooFewInstalls { .. })));
/// # Ok::<(), PrivacyError>(())
/// ```
///
/// # Errors
/// [`PrivacyError::NoReports`] when `reports = 0`, [`PrivacyError::TooFewInstalls`] when
/// `installs < reports` (even sampling every report cannot reach the target).
pub fn sample_rate_for(reports: u64, installs: u64) -> Result<f64, PrivacyError> {
    if reports == 0 {
        return Err(PrivacyError::NoReports);
    }
    if installs < reports {
        return Err(PrivacyError::TooFewInstalls {
            needed: reports,
            installs,
        });
    }
    // The chance grows with the rate: bisect between the mean rate (chance about 1/2) and 1.
    let (mut low, mut high) = (reports as f64 / installs as f64, 1.0);
    if chance_of_reaching(reports, installs, low) >= HEADROOM {
        high = low;
    }
    for _ in 0..64 {
        if high - low <= high * 1e-9 {
            break;
        }
        let mid = 0.5 * (low + high);
        if chance_of_reaching(reports, installs, mid) >= HEADROOM {
            high = mid;
        } else {
            low = mid;
        }
    }
    Ok(round_up_4(high))
}

/// The 5th percentile of the weekly reports from `installs` installs sampled at `rate`: the
/// largest `m` with `P(reports >= m) >= 95%`.
///
/// ```
/// use clearcount_privacy::planner::{reports_p5, sample_rate_for};
/// let rate = sample_rate_for(1_000, 100_000)?;
/// assert!(reports_p5(100_000, rate) >= 1_000);
/// # Ok::<(), clearcount_privacy::PrivacyError>(())
/// ```
pub fn reports_p5(installs: u64, rate: f64) -> u64 {
    let (mut low, mut high) = (0u64, installs);
    // chance_of_reaching(low) >= HEADROOM holds at 0; find the largest such m.
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if chance_of_reaching(mid, installs, rate) >= HEADROOM {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    low
}

/// A complete plan, as printed by `clearcount-log plan --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The number of labels `k`.
    pub labels: usize,
    /// The counter's epsilon, `None` (JSON `null`) without randomized response.
    pub epsilon: Option<f64>,
    /// The requested half-width.
    pub margin: f64,
    /// The requested confidence level.
    pub confidence: f64,
    /// The two-sided normal quantile for `confidence`.
    pub z: f64,
    /// `p` of randomized response (1 without).
    pub p: f64,
    /// `q` of randomized response (0 without).
    pub q: f64,
    /// The worst-case response rate `λ*`: 1/2 clamped to `[q, p]`.
    pub worst_rate: f64,
    /// Weekly reports needed ([`reports_needed`]).
    pub reports: u64,
    /// With an epsilon: the weekly reports the same counter would need with optimized unary
    /// encoding ([`reports_needed_oue`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oue_reports: Option<u64>,
    /// With an epsilon: the mechanism that needs fewer reports (k-ary on a tie).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub better: Option<Mechanism>,
    /// The installs the plan was made for, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installs: Option<u64>,
    /// The sample rate to configure ([`sample_rate_for`]); 1 when installs are too few.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    /// Whether the installs can yield the reports needed (in 95% of weeks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enough_installs: Option<bool>,
    /// The mean weekly reports at that rate, `installs × sample_rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_reports: Option<f64>,
    /// The 5th percentile of the weekly reports at that rate ([`reports_p5`]): at least
    /// `reports` when there are enough installs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reports_p5: Option<u64>,
    /// The half-width reached in 95% of weeks (with [`Plan::reports_p5`] reports); larger than
    /// `margin` when installs are too few.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_margin: Option<f64>,
}

/// Plans a counter: the reports needed and, given a number of opted-in installs, the sample
/// rate. Too few installs is not an error here: the plan says so (`enough_installs = false`,
/// `sample_rate = 1`) and gives the margin those installs reach.
///
/// ```
/// use clearcount_privacy::planner::plan;
///
/// # fn main() -> Result<(), clearcount_privacy::PrivacyError> {
/// let p = plan(2, None, 0.01, 0.99, Some(1_000_000))?;
/// assert_eq!(p.reports, 16_588);
/// assert_eq!(p.enough_installs, Some(true));
/// // A little above 16,588 / 1,000,000, so that 95% of weeks reach 16,588 reports.
/// assert_eq!(p.sample_rate, Some(0.01680));
/// assert!(p.reports_p5.unwrap() >= 16_588 && p.expected_reports.unwrap() > 16_588.0);
///
/// let small = plan(5, Some(1.0), 0.01, 0.99, Some(10_000))?;
/// assert_eq!((small.enough_installs, small.sample_rate), (Some(false), Some(1.0)));
/// assert!(small.expected_margin.unwrap() > 0.01);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// As [`reports_needed`].
pub fn plan(
    k: usize,
    epsilon: Option<f64>,
    margin: f64,
    confidence: f64,
    installs: Option<u64>,
) -> Result<Plan, PrivacyError> {
    let reports = reports_needed(k, epsilon, margin, confidence)?;
    let oue_reports = epsilon
        .map(|e| reports_needed_oue(k, e, margin, confidence))
        .transpose()?;
    let better = oue_reports.map(|oue| {
        if oue < reports {
            Mechanism::Oue
        } else {
            Mechanism::Krr
        }
    });
    let z = validate::z_for(confidence)?;
    let (p, q, _) = rates(k, epsilon)?;
    let (mut sample_rate, mut enough_installs, mut expected_reports) = (None, None, None);
    let (mut p5, mut expected_margin) = (None, None);
    if let Some(installs) = installs {
        let (rate, enough) = match sample_rate_for(reports, installs) {
            Ok(rate) => (rate, true),
            Err(PrivacyError::TooFewInstalls { .. }) => (1.0, false),
            Err(e) => return Err(e),
        };
        let low = reports_p5(installs, rate);
        sample_rate = Some(rate);
        enough_installs = Some(enough);
        expected_reports = Some(installs as f64 * rate);
        p5 = Some(low);
        expected_margin = Some(if low == 0 {
            1.0
        } else {
            margin_for(k, epsilon, low, confidence)?
        });
    }
    Ok(Plan {
        labels: k,
        epsilon,
        margin,
        confidence,
        z,
        p,
        q,
        worst_rate: 0.5f64.clamp(q, p),
        reports,
        oue_reports,
        better,
        installs,
        sample_rate,
        enough_installs,
        expected_reports,
        reports_p5: p5,
        expected_margin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oue_matches_its_closed_form_and_names_the_better_mechanism() {
        // OUE: p = 1/2 for every k, so the worst case is λ* = 1/2: n = z² / (4 e² (1/2 - q)²).
        for (k, eps) in [(2, 1.0), (16, 1.0), (32, 0.5), (5, 4.0)] {
            let z = validate::z_for(0.95).unwrap();
            let q = 1.0 / (f64::exp(eps) + 1.0);
            let closed = (z * z / (4.0 * 0.05f64.powi(2) * (0.5 - q).powi(2))).ceil() as u64;
            assert_eq!(
                reports_needed_oue(k, eps, 0.05, 0.95),
                Ok(closed),
                "k={k} eps={eps}"
            );
        }
        let many = plan(32, Some(1.0), 0.05, 0.95, None).unwrap();
        assert_eq!(many.better, Some(Mechanism::Oue));
        assert!(many.oue_reports.unwrap() < many.reports);
        let few = plan(3, Some(1.0), 0.05, 0.95, None).unwrap();
        assert_eq!(few.better, Some(Mechanism::Krr));
        let plain = plan(3, None, 0.05, 0.95, None).unwrap();
        assert_eq!((plain.oue_reports, plain.better), (None, None));
    }

    #[test]
    fn no_rr_reference() {
        // z(0.99)^2 / (4 * 0.01^2) = 16,587.24...
        assert_eq!(reports_needed(2, None, 0.01, 0.99), Ok(16_588));
        // z(0.95)^2 / (4 * 0.05^2) = 384.15 -> 385, the textbook figure.
        assert_eq!(reports_needed(7, None, 0.05, 0.95), Ok(385));
    }

    #[test]
    fn figures_quoted_in_docs_privacy_md() {
        // The 5%-margin, 95%-confidence table of docs/privacy.md section 5.
        let table: [(usize, [u64; 4]); 3] = [
            (2, [6_405, 1_799, 663, 414]),
            (5, [24_080, 5_659, 1_221, 460]),
            (33, [192_636, 45_271, 8_901, 1_003]),
        ];
        for (k, row) in table {
            for (eps, expect) in [0.5, 1.0, 2.0, 4.0].into_iter().zip(row) {
                assert_eq!(
                    reports_needed(k, Some(eps), 0.05, 0.95),
                    Ok(expect),
                    "k={k} eps={eps}"
                );
            }
            assert_eq!(reports_needed(k, None, 0.05, 0.95), Ok(385));
        }
    }

    #[test]
    fn closed_form_with_the_exact_worst_case() {
        let z: f64 = 1.959_963_984_540_054;
        for (k, eps) in [
            (2usize, 0.5),
            (4, 2.0),
            (5, 1.0),
            (32, 0.5),
            (32, 1.0),
            (33, 4.0),
        ] {
            let rr = RandomizedResponse::new(k, eps).unwrap();
            let l = 0.5f64.clamp(rr.q(), rr.p());
            let exact = z * z * l * (1.0 - l) / (0.02f64.powi(2) * (rr.p() - rr.q()).powi(2));
            let got = reports_needed(k, Some(eps), 0.02, 0.95).unwrap() as f64;
            assert!(
                got >= exact && got < exact + 1.0 + 1e-6 * exact,
                "k={k} eps={eps}"
            );
            assert_eq!(worst_rate(k, Some(eps)).unwrap(), l);
        }
        // The issue's figure: the old worst case 1/2 asked for 972,999 reports here.
        assert_eq!(reports_needed(32, Some(0.5), 0.05, 0.95), Ok(186_616));
    }

    #[test]
    fn binomial_tail_matches_a_direct_sum() {
        for (n, r) in [(10u64, 0.3), (200, 0.01), (1_000, 0.5), (1_000, 0.97)] {
            let pmf: Vec<f64> = (0..=n).map(|x| ln_pmf(x, n, r).exp()).collect();
            for t in (0..=n + 1).step_by(3) {
                let direct: f64 = pmf.iter().skip(t as usize).sum();
                let got = chance_of_reaching(t, n, r);
                assert!(
                    (got - direct).abs() < 1e-11,
                    "n={n} r={r} t={t}: {got} vs {direct}"
                );
            }
        }
        // Summation and normal approximation agree where they meet.
        let (n, r) = (2_000_000_000u64, 0.0051); // variance just above LARGE_VARIANCE
        let sd = (n as f64 * r * (1.0 - r)).sqrt();
        for k in [-2.0, 0.0, 1.645] {
            let t = (n as f64 * r + k * sd).round() as u64;
            let summed = 1.0 - lower_tail(t - 1, n, r);
            assert!((summed - chance_of_reaching(t, n, r)).abs() < 1e-3, "{k}");
        }
        // Millions of installs: the normal approximation is excellent there.
        let (n, r) = (10_000_000u64, 0.01);
        let sd = (n as f64 * r * (1.0 - r)).sqrt();
        let t = (n as f64 * r - 1.644_853_6 * sd).round() as u64;
        assert!((chance_of_reaching(t, n, r) - 0.95).abs() < 0.002);
    }

    #[test]
    fn sample_rate_has_headroom() {
        // 100,000 installs, 1,000 reports: the mean rate 0.01 reaches it half the time; the
        // planned rate 95% of the time: mean + 1.645 sd, about 0.01052.
        let rate = sample_rate_for(1_000, 100_000).unwrap();
        assert!((0.0105..0.0106).contains(&rate), "{rate}");
        assert!(chance_of_reaching(1_000, 100_000, rate) >= HEADROOM);
        // The mean rate reaches it about half the time.
        assert!(chance_of_reaching(1_000, 100_000, 0.01) < 0.6);
        assert_eq!(round_up_4(0.012_341), 0.01235);
        assert_eq!(round_up_4(0.999_99), 1.0);
        assert!(reports_p5(100_000, rate) >= 1_000);
        assert!(reports_p5(100_000, 0.01) < 1_000);
        assert_eq!(reports_p5(10, 1.0), 10);
    }

    #[test]
    fn errors() {
        assert!(reports_needed(0, None, 0.01, 0.99).is_err());
        assert!(reports_needed(2, Some(0.0), 0.01, 0.99).is_err());
        assert!(reports_needed(2, None, 0.0, 0.99).is_err());
        assert!(reports_needed(2, None, 0.01, 1.0).is_err());
        assert_eq!(
            reports_needed(2, None, 1e-300, 0.99),
            Err(PrivacyError::PlanTooLarge)
        );
        assert_eq!(
            reports_needed(2, Some(1e-300), 0.01, 0.99),
            Err(PrivacyError::PlanTooLarge)
        );
        assert_eq!(sample_rate_for(0, 10), Err(PrivacyError::NoReports));
        assert!(margin_for(2, None, 0, 0.95).is_err());
        let zero = plan(2, None, 0.1, 0.9, Some(0)).unwrap();
        let json = serde_json::to_value(&zero).unwrap();
        assert_eq!(json["reports"], 68);
        assert_eq!(json["sample_rate"], 1.0);
        assert_eq!(json["enough_installs"], false);
        assert_eq!(json["reports_p5"], 0);
        let bare = serde_json::to_value(plan(2, None, 0.1, 0.9, None).unwrap()).unwrap();
        assert!(bare.get("sample_rate").is_none() && bare["epsilon"].is_null());
        let back: Plan = serde_json::from_value(bare).unwrap();
        assert_eq!(back.installs, None);
        assert_eq!(zero.expected_margin, Some(1.0));
    }
}
