//! Optimized unary encoding, OUE (DESIGN.md section 5, contract version 2).
//!
//! A report is a string of `k` bits, one per label. The true label's bit is 1 with probability
//! `1/2`; every other bit is 1 with probability `q = 1 / (e^ε + 1)`, each drawn independently.
//! Two true labels change only their own two bits, so for any report the probability ratio is
//! at most `(1/2)(1 - q) / (q (1/2)) = e^ε`: the mechanism is ε-locally differentially private.
//!
//! Label `v`'s bit is 1 with probability `λ_v = q + f_v (1/2 - q)`, so the same estimator and
//! intervals as k-ary randomized response apply with `p = 1/2`, per label, with `n` the number
//! of reports (the bits of one report do not add up to 1). Where k-RR's `p - q` shrinks like
//! `1/k`, OUE's stays `(e^ε - 1) / (2 (e^ε + 1))` whatever `k`: OUE wins once
//! `k > 3 e^ε + 2` (Wang et al., "Locally Differentially Private Protocols for Frequency
//! Estimation", USENIX Security 2017).

use rand::Rng;
use rand::distr::{Bernoulli, Distribution};

use crate::{PrivacyError, validate};

/// Optimized unary encoding over `k` labels with a given epsilon.
///
/// ```
/// use clearcount_privacy::{oue::UnaryEncoding, secure_rng};
///
/// # fn main() -> Result<(), clearcount_privacy::PrivacyError> {
/// let oue = UnaryEncoding::new(16, 1.0)?;
/// assert!((oue.q() - 1.0 / (1f64.exp() + 1.0)).abs() < 1e-15);
/// let bits = oue.randomize(3, &mut secure_rng()?)?;
/// assert_eq!(bits.len(), 16);
/// assert_eq!(UnaryEncoding::to_text(&bits).len(), 16); // "0100…"
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnaryEncoding {
    k: usize,
    epsilon: f64,
    q: f64,
    half_minus_q: f64,
    true_bit: Bernoulli,
    other_bit: Bernoulli,
}

impl UnaryEncoding {
    /// The mechanism for `k` labels (`1 ≤ k ≤` [`crate::MAX_LABELS`]) and `epsilon` (finite,
    /// `> 0`).
    ///
    /// # Errors
    /// [`PrivacyError::InvalidLabelCount`], [`PrivacyError::InvalidEpsilon`].
    pub fn new(k: usize, epsilon: f64) -> Result<Self, PrivacyError> {
        let k = validate::k(k)?;
        let epsilon = validate::epsilon(epsilon)?;
        let q = 1.0 / (epsilon.exp() + 1.0);
        // 1/2 - q = (e^ε - 1) / (2 (e^ε + 1)), without cancellation at small epsilon.
        let half_minus_q = epsilon.exp_m1() / (2.0 * (epsilon.exp() + 1.0));
        let bad = |_| PrivacyError::InvalidEpsilon(epsilon);
        Ok(UnaryEncoding {
            k,
            epsilon,
            q,
            half_minus_q,
            true_bit: Bernoulli::new(0.5).map_err(bad)?,
            other_bit: Bernoulli::new(q).map_err(bad)?,
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

    /// The probability that the true label's bit is 1: `1/2`.
    pub fn p(&self) -> f64 {
        0.5
    }

    /// The probability that another label's bit is 1: `1 / (e^ε + 1)`.
    pub fn q(&self) -> f64 {
        self.q
    }

    /// `p - q`, computed without cancellation.
    pub fn p_minus_q(&self) -> f64 {
        self.half_minus_q
    }

    /// The bits reported for true label `index`, one per label.
    ///
    /// # Errors
    /// [`PrivacyError::LabelOutOfRange`] when `index >= k`.
    pub fn randomize<R: Rng + ?Sized>(
        &self,
        index: usize,
        rng: &mut R,
    ) -> Result<Vec<bool>, PrivacyError> {
        if index >= self.k {
            return Err(PrivacyError::LabelOutOfRange { index, k: self.k });
        }
        Ok((0..self.k)
            .map(|v| {
                if v == index {
                    self.true_bit.sample(rng)
                } else {
                    self.other_bit.sample(rng)
                }
            })
            .collect())
    }

    /// The report value of `bits`: one `0` or `1` a label, in label order.
    pub fn to_text(bits: &[bool]) -> String {
        bits.iter().map(|&b| if b { '1' } else { '0' }).collect()
    }

    /// The bits of a report value of `k` characters `0`/`1`, or `None` for anything else.
    pub fn parse(text: &str, k: usize) -> Option<Vec<bool>> {
        if text.len() != k {
            return None;
        }
        text.bytes()
            .map(|b| match b {
                b'0' => Some(false),
                b'1' => Some(true),
                _ => None,
            })
            .collect()
    }
}

/// How many times the reports of OUE k-ary randomized response needs for the same accuracy on
/// rare labels, at `k` labels and `epsilon`: the ratio of the two estimators' variances at a
/// share near 0, `(e^ε + k - 2) / (4 e^ε)` (Wang et al. 2017). Above 1, OUE is the better choice;
/// that happens once `k > 3 e^ε + 2`. About 1.5 at k = 16, ε = 1 and 3.0 at k = 32.
///
/// ```
/// use clearcount_privacy::oue::krr_report_factor;
///
/// assert!((krr_report_factor(16, 1.0) - 1.54).abs() < 0.01);
/// assert!(krr_report_factor(5, 1.0) < 1.0); // k-RR wins: 5 < 3e + 2
/// ```
pub fn krr_report_factor(k: usize, epsilon: f64) -> f64 {
    let e = epsilon.exp();
    (e + k as f64 - 2.0) / (4.0 * e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn the_factor_crosses_one_where_oue_starts_to_win() {
        for eps in [0.5, 1.0, 2.0, 4.0] {
            let crossing = 3.0 * f64::exp(eps) + 2.0;
            let below = crossing.floor() as usize;
            assert!(krr_report_factor(below, eps) <= 1.0, "{eps}");
            assert!(krr_report_factor(below + 1, eps) > 1.0, "{eps}");
        }
        assert!((krr_report_factor(32, 1.0) - 3.01).abs() < 0.01);
    }

    #[test]
    fn text_round_trips_and_rejects_other_shapes() {
        let bits = [true, false, false, true];
        assert_eq!(UnaryEncoding::to_text(&bits), "1001");
        assert_eq!(UnaryEncoding::parse("1001", 4).unwrap(), bits);
        for bad in ["100", "10011", "10a1", "1 01", "１001"] {
            assert_eq!(UnaryEncoding::parse(bad, 4), None, "{bad}");
        }
    }

    #[test]
    fn the_ratio_of_any_report_is_at_most_e_to_the_epsilon() {
        let oue = UnaryEncoding::new(3, 1.3).unwrap();
        // P(report | v) for the two bits that differ between true labels 0 and 1.
        let (p, q) = (oue.p(), oue.q());
        let worst = (p * (1.0 - q)) / (q * (1.0 - p));
        assert!((worst - 1.3f64.exp()).abs() < 1e-12, "{worst}");
        assert!((oue.p_minus_q() - (p - q)).abs() < 1e-15);
        assert!(UnaryEncoding::new(3, 0.0).is_err() && UnaryEncoding::new(0, 1.0).is_err());
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        assert!(oue.randomize(3, &mut rng).is_err());
    }
}
