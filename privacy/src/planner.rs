//! The sample-size planner (DESIGN.md section 5).
//!
//! The interval of [`crate::estimate`] for label `v` has half-width
//! `z·sqrt(λ(1-λ) / (n (p-q)²))`. Since `λ(1-λ) <= 1/4` whatever the true frequencies, `n`
//! reports guarantee a half-width of at most `e` when
//!
//! `n >= z² / (4 e² (p-q)²)`  (without randomized response, `p - q = 1`: `n >= z² / (4 e²)`),
//!
//! which is about 16,588 reports for a 1% margin at 99% confidence without randomized response.
//! [`reports_needed`] returns the smallest such integer. The reports a week brings are random
//! (each opted-in install is sampled independently), so [`sample_rate_for`] gives the rate whose
//! *expected* number of reports is the target; plan with some headroom.

use serde::{Deserialize, Serialize};

use crate::rr::RandomizedResponse;
use crate::{PrivacyError, validate};

/// `p - q` for `k` labels and optional epsilon (1 without randomized response), validated.
fn separation(k: usize, epsilon: Option<f64>) -> Result<f64, PrivacyError> {
    validate::k(k)?;
    match epsilon {
        None => Ok(1.0),
        Some(eps) => Ok(RandomizedResponse::new(k, eps)?.p_minus_q()),
    }
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
    let sep = separation(k, epsilon)?;
    let margin = validate::margin(margin)?;
    let z = validate::z_for(confidence)?;
    // Written as a square of a ratio so that intermediate values do not underflow.
    let root = z / (2.0 * margin * sep);
    let n = (root * root).ceil();
    // 2^64 is exactly representable; anything at or above it (or inf/NaN) does not fit.
    if n.is_nan() || n >= 18_446_744_073_709_551_616.0 {
        return Err(PrivacyError::PlanTooLarge);
    }
    Ok((n as u64).max(1))
}

/// The half-width every label's interval at `confidence` is guaranteed not to exceed with
/// `reports` reports (the inverse of [`reports_needed`]): `z / (2 sqrt(n) (p-q))`, capped at 1.
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
    let sep = separation(k, epsilon)?;
    let z = validate::z_for(confidence)?;
    if reports == 0 {
        return Err(PrivacyError::NoReports);
    }
    let m = z / (2.0 * (reports as f64).sqrt() * sep);
    Ok(if m.is_finite() { m.min(1.0) } else { 1.0 })
}

/// The sample rate that yields `reports` weekly reports on average from `installs` opted-in
/// installs: `reports / installs`, in (0, 1].
///
/// ```
/// use clearcount_privacy::{PrivacyError, planner::sample_rate_for};
/// assert_eq!(sample_rate_for(16_588, 165_880), Ok(0.1));
/// assert_eq!(sample_rate_for(100, 100), Ok(1.0));
/// assert!(matches!(sample_rate_for(100, 99), Err(PrivacyError::TooFewInstalls { .. })));
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
    Ok((reports as f64 / installs as f64).min(1.0))
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
    /// Weekly reports needed ([`reports_needed`]).
    pub reports: u64,
    /// The installs the plan was made for, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installs: Option<u64>,
    /// The sample rate to configure ([`sample_rate_for`]); 1 when installs are too few.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    /// Whether the installs can yield the reports needed (on average).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enough_installs: Option<bool>,
    /// The half-width reached with the expected reports at that rate ([`margin_for`]);
    /// larger than `margin` when installs are too few.
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
/// assert!((p.sample_rate.unwrap() - 0.016588).abs() < 1e-12);
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
    let z = validate::z_for(confidence)?;
    let (p, q) = match epsilon {
        None => (1.0, 0.0),
        Some(eps) => {
            let rr = RandomizedResponse::new(k, eps)?;
            (rr.p(), rr.q())
        }
    };
    let (sample_rate, enough_installs, expected_margin) = match installs {
        None => (None, None, None),
        Some(installs) => match sample_rate_for(reports, installs) {
            Ok(rate) => (
                Some(rate),
                Some(true),
                Some(margin_for(k, epsilon, reports, confidence)?),
            ),
            Err(PrivacyError::TooFewInstalls { .. }) => {
                let reached = if installs == 0 {
                    1.0
                } else {
                    margin_for(k, epsilon, installs, confidence)?
                };
                (Some(1.0), Some(false), Some(reached))
            }
            Err(e) => return Err(e),
        },
    };
    Ok(Plan {
        labels: k,
        epsilon,
        margin,
        confidence,
        z,
        p,
        q,
        reports,
        installs,
        sample_rate,
        enough_installs,
        expected_margin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            (5, [29_126, 5_873, 1_221, 460]),
            (33, [1_033_516, 156_829, 14_601, 1_003]),
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
    fn rr_formula() {
        let rr = RandomizedResponse::new(4, 2.0).unwrap();
        let z: f64 = 1.959_963_984_540_054;
        let expect = (z * z / (4.0 * 0.02 * 0.02 * (rr.p() - rr.q()).powi(2))).ceil() as u64;
        assert_eq!(reports_needed(4, Some(2.0), 0.02, 0.95), Ok(expect));
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
        let bare = serde_json::to_value(plan(2, None, 0.1, 0.9, None).unwrap()).unwrap();
        assert!(bare.get("sample_rate").is_none() && bare["epsilon"].is_null());
        let back: Plan = serde_json::from_value(bare).unwrap();
        assert_eq!(back.installs, None);
        assert_eq!(zero.expected_margin, Some(1.0));
    }
}
