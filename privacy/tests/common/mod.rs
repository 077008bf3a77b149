//! Helpers shared by the statistical tests.
#![allow(dead_code)]

use clearcount_privacy::sampling::draw_x;
use rand::Rng;

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
