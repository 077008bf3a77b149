//! Shared parameter checks and the normal quantile.

use statrs::distribution::{ContinuousCDF, Normal};

use crate::PrivacyError;

/// Checks that a counter has between 1 and [`crate::MAX_LABELS`] labels.
pub(crate) fn k(k: usize) -> Result<usize, PrivacyError> {
    if k == 0 || k > crate::MAX_LABELS {
        Err(PrivacyError::InvalidLabelCount(k))
    } else {
        Ok(k)
    }
}

/// Checks that epsilon is finite and strictly positive.
pub(crate) fn epsilon(epsilon: f64) -> Result<f64, PrivacyError> {
    if epsilon.is_finite() && epsilon > 0.0 {
        Ok(epsilon)
    } else {
        Err(PrivacyError::InvalidEpsilon(epsilon))
    }
}

/// Checks a confidence level and returns the two-sided normal quantile
/// `z = Φ⁻¹(1 - (1 - confidence) / 2)`.
pub(crate) fn z_for(confidence: f64) -> Result<f64, PrivacyError> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(PrivacyError::InvalidConfidence(confidence));
    }
    let tail = (1.0 - confidence) / 2.0;
    let upper = 1.0 - tail;
    if !(upper > 0.5 && upper < 1.0) {
        // The confidence is so close to 0 or 1 that the quantile is 0 or infinite.
        return Err(PrivacyError::InvalidConfidence(confidence));
    }
    let z = Normal::standard().inverse_cdf(upper);
    if z.is_finite() && z > 0.0 {
        Ok(z)
    } else {
        Err(PrivacyError::InvalidConfidence(confidence))
    }
}

/// Checks a margin (half-width) in (0, 1].
pub(crate) fn margin(margin: f64) -> Result<f64, PrivacyError> {
    if margin > 0.0 && margin <= 1.0 {
        Ok(margin)
    } else {
        Err(PrivacyError::InvalidMargin(margin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_matches_known_quantiles() {
        // Reference values of the standard normal quantile, to 1e-9.
        assert!((z_for(0.95).unwrap() - 1.959_963_984_540_054).abs() < 1e-9);
        assert!((z_for(0.99).unwrap() - 2.575_829_303_548_901).abs() < 1e-9);
        assert!((z_for(0.90).unwrap() - 1.644_853_626_951_472_2).abs() < 1e-9);
    }

    #[test]
    fn bad_parameters_are_errors() {
        for c in [0.0, 1.0, -0.5, 1.5, f64::NAN, f64::INFINITY, 1e-300] {
            assert!(z_for(c).is_err(), "{c}");
        }
        for e in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(epsilon(e).is_err(), "{e}");
        }
        for m in [0.0, -0.1, 1.1, f64::NAN, f64::INFINITY] {
            assert!(margin(m).is_err(), "{m}");
        }
        assert!(k(0).is_err());
        assert!(k(crate::MAX_LABELS + 1).is_err());
        assert_eq!(k(crate::MAX_LABELS), Ok(crate::MAX_LABELS));
        assert_eq!(k(1), Ok(1));
    }
}
