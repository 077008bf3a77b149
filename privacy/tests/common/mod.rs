//! Helpers shared by the statistical tests.
#![allow(dead_code)]

use clearcount_privacy::estimate::Estimator;
use clearcount_privacy::sampling::draw_x;
use rand::Rng;
use statrs::distribution::{Binomial, Discrete};

/// The exact coverage of share `f` by the interval of a label whose count among `n` reports is
/// Binomial(n, `lambda`): the sum of the probabilities of the counts whose interval holds `f`.
pub fn exact_coverage(est: &Estimator, n: u64, lambda: f64, f: f64) -> f64 {
    let b = Binomial::new(lambda, n).unwrap();
    (0..=n)
        .filter(|&x| {
            let i = est.interval(n, x).unwrap();
            i.ci_low <= f && f <= i.ci_high
        })
        .map(|x| b.pmf(x))
        .sum()
}

/// Draws label indexes from a fixed distribution by inverting its cumulative sum.
pub struct Categorical {
    cumulative: Vec<f64>,
}

impl Categorical {
    /// `weights` need not be normalized.
    pub fn new(weights: &[f64]) -> Self {
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        Categorical { cumulative }
    }

    /// The normalized probabilities.
    pub fn probabilities(&self) -> Vec<f64> {
        let mut prev = 0.0;
        self.cumulative
            .iter()
            .map(|&c| {
                let p = c - prev;
                prev = c;
                p
            })
            .collect()
    }

    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let x = draw_x(rng);
        let last = self.cumulative.len() - 1;
        self.cumulative.iter().position(|&c| x < c).unwrap_or(last)
    }
}

/// Label counts of `n` reports whose labels are drawn independently with probabilities
/// `rates` (summing to 1): a multinomial draw, as a chain of binomials (exact, and as fast
/// for a million reports as for ten).
pub fn multinomial<R: Rng + ?Sized>(n: u64, rates: &[f64], rng: &mut R) -> Vec<u64> {
    use rand_distr::{Binomial, Distribution};
    let mut counts = Vec::with_capacity(rates.len());
    let (mut left, mut mass) = (n, 1.0f64);
    for (i, &r) in rates.iter().enumerate() {
        let c = if i + 1 == rates.len() || left == 0 {
            left
        } else {
            let p = if mass > 0.0 {
                (r / mass).clamp(0.0, 1.0)
            } else {
                0.0
            };
            Binomial::new(left, p).expect("a probability").sample(rng)
        };
        counts.push(c);
        left -= c;
        mass -= r;
    }
    counts
}
