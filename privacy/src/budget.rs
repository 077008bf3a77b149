//! The privacy budget (DESIGN.md sections 2 and 5).
//!
//! A weekly report of a program holds one randomized label per counter, each randomized
//! independently with that counter's epsilon, so by sequential composition the report as a whole
//! is ε-locally differentially private with `ε = Σ counters' ε`. A counter without epsilon is sent
//! unrandomized: it has no formal guarantee at all, and contributes 0 to this sum only because the
//! sum cannot express "unbounded" (the config review must say so loudly).
//!
//! Each week's report is randomized afresh, so over `w` weeks the budget spent on a value is
//! `w · ε` ([`over_weeks`]): a value that never changes is revealed ever more precisely by
//! averaging the weekly reports.

use crate::{PrivacyError, validate};

/// The largest epsilon a single counter may have in a config (DESIGN.md section 2).
pub const MAX_COUNTER_EPSILON: f64 = 8.0;

/// Relative slack allowed by [`check_report_epsilon`] for floating-point rounding of the sum
/// (e.g. ten counters of 0.4 add up to 4.000000000000001).
pub const SUM_TOLERANCE: f64 = 1e-9;

/// The epsilon of one program's weekly report: the sum of its counters' epsilons, where `None`
/// (no randomized response) contributes 0.
///
/// ```
/// use clearcount_privacy::budget::report_epsilon;
/// assert_eq!(report_epsilon([Some(1.0), None, Some(0.5)]), 1.5);
/// assert_eq!(report_epsilon(Vec::<Option<f64>>::new()), 0.0);
/// ```
pub fn report_epsilon<I: IntoIterator<Item = Option<f64>>>(epsilons: I) -> f64 {
    epsilons.into_iter().flatten().sum()
}

/// Checks one counter's epsilon against the config rules: finite, `0 < ε <= 8`.
///
/// # Errors
/// [`PrivacyError::InvalidEpsilon`] or [`PrivacyError::EpsilonAboveLimit`].
pub fn check_counter_epsilon(epsilon: f64) -> Result<f64, PrivacyError> {
    let epsilon = validate::epsilon(epsilon)?;
    if epsilon > MAX_COUNTER_EPSILON {
        return Err(PrivacyError::EpsilonAboveLimit {
            epsilon,
            limit: MAX_COUNTER_EPSILON,
        });
    }
    Ok(epsilon)
}

/// Checks that a program's counters fit the config's `max_epsilon` and returns their sum. Every
/// present epsilon must be valid ([`check_counter_epsilon`]); the sum may exceed `max_epsilon`
/// by at most a relative [`SUM_TOLERANCE`] (rounding).
///
/// ```
/// use clearcount_privacy::{PrivacyError, budget::check_report_epsilon};
/// assert_eq!(check_report_epsilon([Some(1.0), Some(1.0), None], 4.0), Ok(2.0));
/// assert!(matches!(
///     check_report_epsilon([Some(3.0), Some(2.0)], 4.0),
///     Err(PrivacyError::BudgetExceeded { .. })
/// ));
/// ```
///
/// # Errors
/// [`PrivacyError::InvalidEpsilon`] for a bad `max_epsilon` or counter epsilon,
/// [`PrivacyError::EpsilonAboveLimit`] for a counter above 8, and
/// [`PrivacyError::BudgetExceeded`] when the sum is too large.
pub fn check_report_epsilon<I: IntoIterator<Item = Option<f64>>>(
    epsilons: I,
    max_epsilon: f64,
) -> Result<f64, PrivacyError> {
    let max = validate::epsilon(max_epsilon)?;
    let mut total = 0.0;
    for epsilon in epsilons.into_iter().flatten() {
        total += check_counter_epsilon(epsilon)?;
    }
    if total > max * (1.0 + SUM_TOLERANCE) {
        return Err(PrivacyError::BudgetExceeded { total, max });
    }
    Ok(total)
}

/// The budget spent on a value by `weeks` independently randomized weekly reports of epsilon
/// `per_report` (basic sequential composition: `weeks · per_report`). This is the bound that
/// holds for a value that never changes; averaging its weekly reports reveals it ever better.
///
/// ```
/// assert_eq!(clearcount_privacy::budget::over_weeks(1.5, 52), 78.0);
/// ```
pub fn over_weeks(per_report: f64, weeks: u32) -> f64 {
    per_report * f64::from(weeks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_limits() {
        assert_eq!(report_epsilon([None, None]), 0.0);
        assert_eq!(
            check_report_epsilon([Some(0.4); 10], 4.0).map(|t| t > 3.99),
            Ok(true)
        );
        assert!(check_report_epsilon([Some(8.5)], 10.0).is_err());
        assert!(check_report_epsilon([Some(-1.0)], 10.0).is_err());
        assert!(check_report_epsilon([Some(f64::NAN)], 10.0).is_err());
        assert!(check_report_epsilon([Some(1.0)], 0.0).is_err());
        assert!(check_report_epsilon([Some(1.0)], f64::NAN).is_err());
        assert_eq!(check_report_epsilon([None], 1.0), Ok(0.0));
        assert_eq!(check_counter_epsilon(8.0), Ok(8.0));
        assert_eq!(
            check_report_epsilon([Some(2.0), Some(2.1)], 4.0),
            Err(PrivacyError::BudgetExceeded {
                total: 4.1,
                max: 4.0
            })
        );
    }
}
