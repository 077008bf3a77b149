//! Statistical checks of k-ary randomized response (issue 3 acceptance): the keep rate, the
//! uniformity of the other labels, and the epsilon-LDP inequality, exactly and empirically.
//! Every test uses a fixed seed, so a run is reproducible; tolerances are stated beside each check.

use clearcount_privacy::rr::RandomizedResponse;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ChiSquared, ContinuousCDF};

const KS: [usize; 4] = [2, 4, 16, 33];
const EPSILONS: [f64; 4] = [0.5, 1.0, 2.0, 4.0];
const DRAWS: usize = 1_000_000;

/// Outcome of the two checks on one histogram of reported labels for true label `v`.
struct Verdict {
    keep_z: f64,
    chi_square: Option<(f64, f64)>, // (statistic, critical value at alpha 0.001)
}

fn check_histogram(counts: &[u64], v: usize, p: f64) -> Verdict {
    let k = counts.len();
    let n: u64 = counts.iter().sum();
    let keep_rate = counts[v] as f64 / n as f64;
    let se = (p * (1.0 - p) / n as f64).sqrt();
    let keep_z = (keep_rate - p) / se;
    // The other labels: uniform over k - 1 labels given "not kept". Pearson's statistic with
    // k - 2 degrees of freedom (the total of the others is fixed). With k = 2 there is a single
    // other label, so uniformity holds trivially (0 degrees of freedom) and is not tested.
    let chi_square = (k >= 3).then(|| {
        let others = n - counts[v];
        let expected = others as f64 / (k - 1) as f64;
        let stat: f64 = counts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != v)
            .map(|(_, &c)| (c as f64 - expected).powi(2) / expected)
            .sum();
        let critical = ChiSquared::new((k - 2) as f64).unwrap().inverse_cdf(0.999);
        (stat, critical)
    });
    Verdict { keep_z, chi_square }
}

fn histogram(rr: &RandomizedResponse, v: usize, draws: usize, rng: &mut ChaCha8Rng) -> Vec<u64> {
    let mut counts = vec![0u64; rr.k()];
    for _ in 0..draws {
        counts[rr.randomize(v, rng).unwrap()] += 1;
    }
    counts
}

#[test]
fn keep_rate_and_uniform_others() {
    for (ki, &k) in KS.iter().enumerate() {
        for (ei, &eps) in EPSILONS.iter().enumerate() {
            let rr = RandomizedResponse::new(k, eps).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(1_000 + (ki * 10 + ei) as u64);
            // A label in the middle, so that both branches of "skip the true label" are used.
            let v = k / 2;
            let counts = histogram(&rr, v, DRAWS, &mut rng);
            let verdict = check_histogram(&counts, v, rr.p());
            // Tolerance: 4 standard errors of a binomial proportion (two-sided 6e-5 per config).
            assert!(
                verdict.keep_z.abs() <= 4.0,
                "k={k} eps={eps}: keep rate off by {:.2} standard errors",
                verdict.keep_z
            );
            if let Some((stat, critical)) = verdict.chi_square {
                // Tolerance: chi-square test at alpha = 0.001.
                assert!(
                    stat < critical,
                    "k={k} eps={eps}: others not uniform, chi2={stat:.1} >= {critical:.1}"
                );
            }
        }
    }
}

/// The checks above have power: a plausible bug (drawing the substitute from all k labels
/// instead of the k - 1 others, so the true label gets extra weight and the skip is wrong)
/// is caught by them.
#[test]
fn the_checks_catch_a_buggy_mechanism() {
    let (k, eps) = (16usize, 1.0);
    let rr = RandomizedResponse::new(k, eps).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let v = k / 2;
    let mut counts = vec![0u64; k];
    for _ in 0..DRAWS {
        let r = if rng.random_bool(rr.p()) {
            v
        } else {
            // Bug: ignores that the true label must be skipped.
            let other = rng.random_range(0..k - 1);
            if other > v { other + 1 } else { other }
        };
        counts[r] += 1;
    }
    let verdict = check_histogram(&counts, v, rr.p());
    let (stat, critical) = verdict.chi_square.unwrap();
    assert!(
        verdict.keep_z.abs() > 4.0 || stat >= critical,
        "a biased mechanism passed: z={} chi2={stat}",
        verdict.keep_z
    );
}

#[test]
fn ldp_inequality_holds_exactly() {
    for k in [1usize, 2, 3, 4, 16, 33] {
        for eps in [0.01, 0.5, 1.0, 2.0, 4.0, 8.0] {
            let rr = RandomizedResponse::new(k, eps).unwrap();
            let bound = eps.exp();
            let mut tightest: f64 = 0.0;
            for r in 0..k {
                for v in 0..k {
                    for w in 0..k {
                        let (a, b) = (rr.probability(r, v), rr.probability(r, w));
                        // Relative slack 1e-12 for the rounding of p and q.
                        assert!(a <= bound * b * (1.0 + 1e-12), "k={k} eps={eps} r={r}");
                        if b > 0.0 {
                            tightest = tightest.max(a / b);
                        }
                    }
                }
                let total: f64 = (0..k).map(|v| rr.probability(v, r)).sum();
                assert!((total - 1.0).abs() < 1e-12, "P(. | {r}) sums to {total}");
            }
            // The bound is attained (p / q = e^eps), so epsilon is not overstated either.
            if k > 1 {
                assert!((tightest / bound - 1.0).abs() < 1e-12, "k={k} eps={eps}");
            }
        }
    }
}

#[test]
#[allow(clippy::needless_range_loop)] // (r, v, w) index a matrix of frequencies: clearer as is
fn ldp_inequality_holds_empirically() {
    const N: usize = 200_000;
    for (i, &k) in [2usize, 4, 8].iter().enumerate() {
        for (j, &eps) in [0.5, 1.0, 2.0].iter().enumerate() {
            let rr = RandomizedResponse::new(k, eps).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(5_000 + (i * 10 + j) as u64);
            let freq: Vec<Vec<f64>> = (0..k)
                .map(|v| {
                    histogram(&rr, v, N, &mut rng)
                        .iter()
                        .map(|&c| c as f64 / N as f64)
                        .collect()
                })
                .collect();
            let bound = eps.exp();
            for r in 0..k {
                for v in 0..k {
                    for w in 0..k {
                        let (a, b) = (freq[v][r], freq[w][r]);
                        // Check P^(r|v) - e^eps P^(r|w) <= 5 standard errors of that difference.
                        // Where the mechanism is tight (r = v != w) the difference has mean 0,
                        // so a tolerance is unavoidable; 5 one-sided SEs (p = 3e-7) over the
                        // 1,752 comparisons of this test keeps a false alarm below 1e-3.
                        let se = (a * (1.0 - a) / N as f64
                            + bound * bound * b * (1.0 - b) / N as f64)
                            .sqrt();
                        assert!(
                            a - bound * b <= 5.0 * se,
                            "k={k} eps={eps} r={r} v={v} w={w}: {a} > e^eps * {b}"
                        );
                    }
                }
            }
            // And the empirical worst ratio is close to e^eps (not far below: the mechanism
            // spends what it claims). The relative SE of a ratio p^/q^ is at most 1% here (q >= 0.07,
            // N = 200,000); the largest of <= 56 such ratios stays within 5%.
            let worst = (0..k)
                .flat_map(|r| (0..k).flat_map(move |v| (0..k).map(move |w| (r, v, w))))
                .filter(|&(r, _, w)| freq[w][r] > 0.0)
                .map(|(r, v, w)| freq[v][r] / freq[w][r])
                .fold(0.0, f64::max);
            assert!(
                (worst / bound - 1.0).abs() < 0.05,
                "k={k} eps={eps}: worst ratio {worst} vs {bound}"
            );
        }
    }
}
