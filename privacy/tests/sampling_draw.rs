//! The sampling draw x: uniform on [0, 1) with 53 random bits, and the sampling decision.
//! Fixed seeds except for the OS-seeded draw; tolerances stated beside each check.

use clearcount_privacy::sampling::{draw_x, draw_x_secure, is_sampled};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ChiSquared, ContinuousCDF};

#[test]
fn draw_x_is_uniform() {
    const N: usize = 1_000_000;
    const BINS: usize = 1_000;
    let mut rng = ChaCha8Rng::seed_from_u64(60_000);
    let mut bins = vec![0u64; BINS];
    for _ in 0..N {
        let x = draw_x(&mut rng);
        assert!((0.0..1.0).contains(&x));
        bins[(x * BINS as f64) as usize] += 1;
    }
    let expected = (N / BINS) as f64;
    let stat: f64 = bins
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    // Chi-square test of uniformity over 1,000 bins at alpha = 0.001.
    let critical = ChiSquared::new((BINS - 1) as f64)
        .unwrap()
        .inverse_cdf(0.999);
    assert!(stat < critical, "chi2 {stat} >= {critical}");
}

#[test]
fn draw_x_has_53_random_bits() {
    const N: usize = 200_000;
    let mut rng = ChaCha8Rng::seed_from_u64(60_001);
    let mut ones = [0u64; 53];
    for _ in 0..N {
        // x is a multiple of 2^-53, so x * 2^53 is an exact integer below 2^53.
        let bits = (draw_x(&mut rng) * (1u64 << 53) as f64) as u64;
        for (b, count) in ones.iter_mut().enumerate() {
            *count += (bits >> b) & 1;
        }
    }
    // Every one of the 53 bits, down to the lowest, is a fair coin: its share of ones is
    // within 4.5 standard errors of 1/2 (two-sided 7e-6 per bit, 53 bits).
    let se = (0.25 / N as f64).sqrt();
    for (b, &count) in ones.iter().enumerate() {
        let share = count as f64 / N as f64;
        assert!(
            (share - 0.5).abs() <= 4.5 * se,
            "bit {b}: share of ones {share}"
        );
    }
}

#[test]
fn sampling_rate_is_honoured() {
    const N: usize = 1_000_000;
    let mut rng = ChaCha8Rng::seed_from_u64(60_002);
    for rate in [0.01, 0.25, 0.5, 1.0] {
        let sampled = (0..N)
            .filter(|_| is_sampled(draw_x(&mut rng), rate))
            .count();
        let share = sampled as f64 / N as f64;
        // Within 4 standard errors of the rate (exactly 1 for rate 1).
        let se = (rate * (1.0 - rate) / N as f64).sqrt();
        assert!(
            (share - rate).abs() <= 4.0 * se,
            "rate {rate}: share {share}"
        );
    }
}

#[test]
fn os_draw_is_uniform_enough() {
    // Not seedable: the bound is 6 standard errors of the mean of 20,000 uniforms (a false
    // alarm about once in 500 million runs).
    const N: usize = 20_000;
    let draws: Vec<f64> = (0..N).map(|_| draw_x_secure().unwrap()).collect();
    assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
    let mean = draws.iter().sum::<f64>() / N as f64;
    let se = (1.0 / 12.0 / N as f64).sqrt();
    assert!((mean - 0.5).abs() <= 6.0 * se, "mean {mean}");
}
