//! The sampling draw (DESIGN.md section 4): every weekly report draws `x` uniformly from [0, 1)
//! with a cryptographic RNG, fresh for every report, and is uploaded only when
//! `x < sample_rate`. The server re-checks `0 <= x < sample_rate`.

use rand::rngs::{OsRng, StdRng};
use rand::{Rng, SeedableRng, TryRngCore};

use crate::PrivacyError;

/// 2^-53: the spacing of the 53-bit grid `draw_x` returns.
const TWO_POW_MINUS_53: f64 = 1.0 / ((1u64 << 53) as f64);

/// A cryptographically secure RNG freshly seeded from the operating system (rand's `StdRng`, a
/// ChaCha stream cipher). Create one per report and use it for [`draw_x`] and
/// [`crate::rr::RandomizedResponse::randomize`].
///
/// ```
/// let mut rng = clearcount_privacy::secure_rng()?;
/// let x = clearcount_privacy::sampling::draw_x(&mut rng);
/// assert!((0.0..1.0).contains(&x));
/// # Ok::<(), clearcount_privacy::PrivacyError>(())
/// ```
///
/// # Errors
/// [`PrivacyError::SecureRngUnavailable`] when the OS random source fails.
pub fn secure_rng() -> Result<StdRng, PrivacyError> {
    StdRng::try_from_os_rng().map_err(|e| PrivacyError::SecureRngUnavailable(e.to_string()))
}

/// A uniform draw from [0, 1) on the grid of multiples of 2^-53: 53 random bits (the top bits of
/// one `u64`), every value equally likely. Pass a cryptographically secure `rng` for real reports
/// (see [`secure_rng`]); tests may pass a seeded one.
///
/// ```
/// use rand::SeedableRng;
/// let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(42);
/// let x = clearcount_privacy::sampling::draw_x(&mut rng);
/// assert!((0.0..1.0).contains(&x));
/// ```
pub fn draw_x<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    bits_to_unit(rng.next_u64())
}

/// [`draw_x`] straight from the operating system's random source (`OsRng`).
///
/// ```
/// let x = clearcount_privacy::sampling::draw_x_secure()?;
/// assert!((0.0..1.0).contains(&x));
/// # Ok::<(), clearcount_privacy::PrivacyError>(())
/// ```
///
/// # Errors
/// [`PrivacyError::SecureRngUnavailable`] when the OS random source fails.
pub fn draw_x_secure() -> Result<f64, PrivacyError> {
    let bits = OsRng
        .try_next_u64()
        .map_err(|e| PrivacyError::SecureRngUnavailable(e.to_string()))?;
    Ok(bits_to_unit(bits))
}

/// Maps 64 random bits to [0, 1) using the top 53 (exactly representable in an `f64`).
fn bits_to_unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * TWO_POW_MINUS_53
}

/// Whether a report with draw `x` is sampled at `sample_rate`: `0 <= x < sample_rate`. Returns
/// false for NaN or negative `x` and for a NaN rate, so a bad value never uploads.
///
/// ```
/// use clearcount_privacy::sampling::is_sampled;
/// assert!(is_sampled(0.1308, 0.25));
/// assert!(!is_sampled(0.25, 0.25));
/// assert!(is_sampled(0.999, 1.0));
/// ```
pub fn is_sampled(x: f64, sample_rate: f64) -> bool {
    x >= 0.0 && x < sample_rate
}

/// Checks a config's sample rate: `0 < sample_rate <= 1` (DESIGN.md section 2).
///
/// # Errors
/// [`PrivacyError::InvalidSampleRate`] otherwise (including NaN).
pub fn validate_sample_rate(sample_rate: f64) -> Result<f64, PrivacyError> {
    if sample_rate > 0.0 && sample_rate <= 1.0 {
        Ok(sample_rate)
    } else {
        Err(PrivacyError::InvalidSampleRate(sample_rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_mapping_bounds() {
        assert_eq!(bits_to_unit(0), 0.0);
        let top = bits_to_unit(u64::MAX);
        assert!(top < 1.0);
        assert_eq!(top, 1.0 - TWO_POW_MINUS_53);
        // The 53 top bits all matter: the smallest step is 2^-53.
        assert_eq!(bits_to_unit(1 << 11), TWO_POW_MINUS_53);
        // The low 11 bits are dropped.
        assert_eq!(bits_to_unit((1 << 11) - 1), 0.0);
    }

    #[test]
    fn sampled_decision() {
        assert!(!is_sampled(f64::NAN, 0.5));
        assert!(!is_sampled(0.1, f64::NAN));
        assert!(!is_sampled(-0.0001, 0.5));
        assert!(is_sampled(0.0, 1e-9));
        assert!(!is_sampled(0.0, 0.0));
    }

    #[test]
    fn sample_rate_validation() {
        assert!(validate_sample_rate(1.0).is_ok());
        assert!(validate_sample_rate(1e-6).is_ok());
        for r in [0.0, -0.1, 1.0000001, f64::NAN, f64::INFINITY] {
            assert!(validate_sample_rate(r).is_err(), "{r}");
        }
    }

    #[test]
    fn secure_sources_work() {
        let x = draw_x_secure().unwrap();
        assert!((0.0..1.0).contains(&x));
        let mut rng = secure_rng().unwrap();
        let a = draw_x(&mut rng);
        let b = draw_x(&mut rng);
        assert!((0.0..1.0).contains(&a) && (0.0..1.0).contains(&b));
        // Two 53-bit draws collide with probability 2^-53.
        assert_ne!(a, b);
    }
}
