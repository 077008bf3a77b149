//! k-ary randomized response (DESIGN.md section 5).
//!
//! Over a counter's `k` labels (indexes `0..k`), the true label is kept with probability
//! `p = e^ε / (e^ε + k - 1)`; otherwise one of the other `k - 1` labels is reported, uniformly
//! (`q = 1 / (e^ε + k - 1)` each). For every output `r` and pair of true labels `v`, `v'`,
//! `P(r | v) ≤ e^ε · P(r | v')`: the mechanism is ε-locally differentially private.

use rand::Rng;
use rand::distr::{Bernoulli, Distribution};

use crate::{PrivacyError, validate};

/// k-ary randomized response with a given epsilon, ready to randomize labels.
///
/// ```
/// use clearcount_privacy::{rr::RandomizedResponse, secure_rng};
///
/// # fn main() -> Result<(), clearcount_privacy::PrivacyError> {
/// let rr = RandomizedResponse::new(4, 1.0)?;
/// // p = e / (e + 3), q = 1 / (e + 3)
/// assert!((rr.p() - 1f64.exp() / (1f64.exp() + 3.0)).abs() < 1e-15);
/// assert!((rr.p() + 3.0 * rr.q() - 1.0).abs() < 1e-15);
///
/// let mut rng = secure_rng()?; // a CSPRNG seeded by the OS: use one per report
/// let reported = rr.randomize(1, &mut rng)?;
/// assert!(reported < 4);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomizedResponse {
    k: usize,
    epsilon: f64,
    p: f64,
    q: f64,
    p_minus_q: f64,
    keep: Bernoulli,
}

impl RandomizedResponse {
    /// The mechanism for a counter of `k` labels (`1 ≤ k ≤` [`crate::MAX_LABELS`]; with `k = 1`
    /// the only label is always kept) and privacy parameter `epsilon` (finite, `> 0`).
    ///
    /// # Errors
    /// [`PrivacyError::InvalidLabelCount`] when `k = 0` or `k > MAX_LABELS`,
    /// [`PrivacyError::InvalidEpsilon`] when epsilon is not finite or not positive.
    pub fn new(k: usize, epsilon: f64) -> Result<Self, PrivacyError> {
        let k = validate::k(k)?;
        let epsilon = validate::epsilon(epsilon)?;
        let (p, q, p_minus_q) = keep_and_other(k, epsilon);
        // p is in (0, 1] by construction; Bernoulli only rejects values outside [0, 1].
        let keep = Bernoulli::new(p).map_err(|_| PrivacyError::InvalidEpsilon(epsilon))?;
        Ok(RandomizedResponse {
            k,
            epsilon,
            p,
            q,
            p_minus_q,
            keep,
        })
    }

    /// The number of labels.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The privacy parameter epsilon.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The probability of reporting the true label, `e^ε / (e^ε + k - 1)`.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// The probability of reporting one given other label, `1 / (e^ε + k - 1)` (0 when `k = 1`).
    pub fn q(&self) -> f64 {
        self.q
    }

    /// `p - q = (e^ε - 1) / (e^ε + k - 1)`, computed without cancellation (for `k = 1`, 1). The
    /// estimators divide by it; it shrinks towards 0 as epsilon does.
    pub fn p_minus_q(&self) -> f64 {
        self.p_minus_q
    }

    /// `P(reported | true_label)`: `p` when they are equal, `q` otherwise, and 0 when either is
    /// out of range.
    pub fn probability(&self, reported: usize, true_label: usize) -> f64 {
        if reported >= self.k || true_label >= self.k {
            0.0
        } else if reported == true_label {
            self.p
        } else {
            self.q
        }
    }

    /// Randomizes the true label `true_index` (in `0..k`): returns it with probability `p`, else
    /// one of the other labels uniformly. Uploads must use a cryptographically secure `rng`, such
    /// as [`crate::secure_rng`]; tests may inject a seeded one.
    ///
    /// # Errors
    /// [`PrivacyError::LabelOutOfRange`] when `true_index >= k`.
    pub fn randomize<R: Rng + ?Sized>(
        &self,
        true_index: usize,
        rng: &mut R,
    ) -> Result<usize, PrivacyError> {
        if true_index >= self.k {
            return Err(PrivacyError::LabelOutOfRange {
                index: true_index,
                k: self.k,
            });
        }
        if self.k == 1 || self.keep.sample(rng) {
            return Ok(true_index);
        }
        // Uniform over the k - 1 other labels: draw from 0..k-1 and skip the true label.
        let other = rng.random_range(0..self.k - 1);
        Ok(if other >= true_index {
            other + 1
        } else {
            other
        })
    }
}

/// `(p, q, p - q)` computed as `1 / (1 + (k-1) e^-ε)`, `e^-ε / (1 + (k-1) e^-ε)` and
/// `(1 - e^-ε) / (1 + (k-1) e^-ε)`, which stay accurate for large epsilon (where `e^ε` would
/// overflow) and for small epsilon (where `p - q` would cancel).
///
/// `exp` and `expm1` come from the `libm` crate rather than the platform's libm: the client
/// links this, and a dynamically linked libm costs every start of the host tool (and the
/// results no longer depend on the platform).
pub(crate) fn keep_and_other(k: usize, epsilon: f64) -> (f64, f64, f64) {
    let others = (k - 1) as f64;
    let w = libm::exp(-epsilon);
    let denom = 1.0 + others * w;
    let p = 1.0 / denom;
    if k == 1 {
        return (p, 0.0, p);
    }
    let q = w / denom;
    let p_minus_q = -libm::expm1(-epsilon) / denom;
    (p, q, p_minus_q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn probabilities_match_the_formula() {
        for k in [1usize, 2, 5, 33] {
            for eps in [0.1, 1.0, 4.0, 8.0] {
                let rr = RandomizedResponse::new(k, eps).unwrap();
                let e = f64::exp(eps);
                let p = e / (e + k as f64 - 1.0);
                let q = 1.0 / (e + k as f64 - 1.0);
                assert!((rr.p() - p).abs() < 1e-14, "k={k} eps={eps}");
                if k > 1 {
                    assert!((rr.q() - q).abs() < 1e-14, "k={k} eps={eps}");
                }
                assert!((rr.p() + (k as f64 - 1.0) * rr.q() - 1.0).abs() < 1e-14);
                assert!((rr.p_minus_q() - (rr.p() - rr.q())).abs() < 1e-14);
            }
        }
    }

    #[test]
    fn huge_epsilon_keeps_and_k1_keeps() {
        let rr = RandomizedResponse::new(3, 1000.0).unwrap();
        assert_eq!(rr.p(), 1.0);
        assert_eq!(rr.q(), 0.0);
        // Tiny epsilon: p - q stays positive and accurate instead of cancelling to 0.
        let tiny = RandomizedResponse::new(2, 1e-18).unwrap();
        assert!((tiny.p_minus_q() - 0.5e-18).abs() < 1e-30);
        let one = RandomizedResponse::new(1, 0.5).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for _ in 0..100 {
            assert_eq!(one.randomize(0, &mut rng), Ok(0));
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            RandomizedResponse::new(0, 1.0),
            Err(PrivacyError::InvalidLabelCount(0))
        );
        assert!(RandomizedResponse::new(2, 0.0).is_err());
        assert!(RandomizedResponse::new(2, f64::NAN).is_err());
        assert!(RandomizedResponse::new(2, f64::INFINITY).is_err());
        let rr = RandomizedResponse::new(3, 1.0).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        assert_eq!(
            rr.randomize(3, &mut rng),
            Err(PrivacyError::LabelOutOfRange { index: 3, k: 3 })
        );
        assert_eq!(rr.probability(3, 0), 0.0);
    }

    #[test]
    fn outputs_cover_every_label() {
        let rr = RandomizedResponse::new(5, 0.1).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            seen[rr.randomize(2, &mut rng).unwrap()] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
