//! Optimized unary encoding checked statistically (issue 19, DESIGN.md section 5), with fixed
//! seeds and the tolerances stated beside each assertion:
//!
//! - the bits it draws have the stated probabilities;
//! - its intervals cover the truth at n = 100 and 1,000 (exactly, from the binomial law of
//!   each label's bit count, and through the real mechanism report by report);
//! - at k = 16 and ε = 1 its intervals are narrower than k-ary randomized response's by the
//!   factor the two variances predict.

mod common;

use clearcount_privacy::estimate::Estimator;
use clearcount_privacy::oue::UnaryEncoding;
use clearcount_privacy::rr::RandomizedResponse;
use common::{Categorical, exact_coverage};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// A dominant label, a long tail, and a label at 1%: 16 shares summing to 1.
fn shares() -> Vec<f64> {
    let mut f = vec![0.40, 0.20, 0.10, 0.05, 0.01];
    let rest = (1.0 - f.iter().sum::<f64>()) / 11.0;
    f.extend(std::iter::repeat_n(rest, 11));
    f
}

#[test]
fn bits_have_the_stated_probabilities() {
    let oue = UnaryEncoding::new(4, 1.0).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(19);
    const DRAWS: u64 = 200_000;
    let mut ones = [0u64; 4];
    for _ in 0..DRAWS {
        for (v, bit) in oue.randomize(2, &mut rng).unwrap().into_iter().enumerate() {
            ones[v] += u64::from(bit);
        }
    }
    // Each frequency within 4.5 standard errors of its probability (false alarm < 1e-4).
    for (v, &c) in ones.iter().enumerate() {
        let want = if v == 2 { 0.5 } else { oue.q() };
        let se = (want * (1.0 - want) / DRAWS as f64).sqrt();
        let got = c as f64 / DRAWS as f64;
        assert!(
            (got - want).abs() < 4.5 * se,
            "bit {v}: {got} against {want}"
        );
    }
}

#[test]
fn intervals_cover_at_100_and_1000_reports() {
    let f = shares();
    for epsilon in [0.5, 1.0, 4.0] {
        let oue = UnaryEncoding::new(16, epsilon).unwrap();
        let est = Estimator::oue(16, epsilon, 0.95).unwrap();
        for n in [100u64, 1_000] {
            for (v, &share) in f.iter().enumerate() {
                let lambda = oue.q() + share * oue.p_minus_q();
                let c = exact_coverage(&est, n, lambda, share);
                // The floor of issue 18 and 19: 93%. The ceiling: 97% at 1,000 reports; at
                // 100, clipping at 0 takes the lower misses away from shares near 0 (the
                // interval [0, x] still holds them), which leaves up to 97.5% plus the
                // lattice's excess, so 98% there (the same rule as the k-RR coverage test).
                let ceiling = if n >= 1_000 { 0.97 } else { 0.98 };
                assert!(
                    (0.93..=ceiling).contains(&c),
                    "eps {epsilon} n {n} label {v} (share {share:.4}): coverage {c:.4}"
                );
            }
        }
    }
}

/// Reports drawn through the real mechanism, week after week: per label, the simulated
/// coverage agrees with the exact one, and the consistent estimates sum to 1.
#[test]
fn reports_through_the_real_mechanism() {
    const WEEKS: usize = 1_000;
    const N: u64 = 100;
    let f = shares();
    let (k, epsilon) = (16, 1.0);
    let oue = UnaryEncoding::new(k, epsilon).unwrap();
    let est = Estimator::oue(k, epsilon, 0.95).unwrap();
    let truth = Categorical::new(&f);
    let mut rng = ChaCha20Rng::seed_from_u64(1916);
    let mut covered = vec![0usize; k];
    for _ in 0..WEEKS {
        let mut ones = vec![0u64; k];
        for _ in 0..N {
            let bits = oue.randomize(truth.sample(&mut rng), &mut rng).unwrap();
            for (c, b) in ones.iter_mut().zip(bits) {
                *c += u64::from(b);
            }
        }
        let e = est.estimate_bits(N, &ones).unwrap();
        let sum: f64 = e.iter().map(|e| e.estimate).sum();
        assert!((sum - 1.0).abs() < 1e-9, "estimates sum to {sum}");
        for (v, e) in e.iter().enumerate() {
            covered[v] += usize::from(e.ci_low <= f[v] && f[v] <= e.ci_high);
        }
    }
    for (v, &c) in covered.iter().enumerate() {
        let lambda = oue.q() + f[v] * oue.p_minus_q();
        let exact = exact_coverage(&est, N, lambda, f[v]);
        let simulated = c as f64 / WEEKS as f64;
        // Within 4.5 standard errors of a 1,000-week share (about 0.031 at 95%).
        let se = (exact * (1.0 - exact) / WEEKS as f64).sqrt();
        assert!(
            (simulated - exact).abs() < 4.5 * se,
            "label {v}: simulated {simulated:.4}, exact {exact:.4}"
        );
    }
}

/// At k = 16 and ε = 1, through the real mechanisms, OUE's mean half-width is k-RR's divided
/// by the factor its variance predicts, `sqrt(λ_k (1 - λ_k) / (p_k - q_k)^2 /
/// (λ_o (1 - λ_o) / (1/2 - q_o)^2))` per label.
#[test]
fn narrower_than_k_rr_by_the_predicted_factor() {
    const WEEKS: usize = 300;
    const N: u64 = 1_000;
    let f = shares();
    let (k, epsilon) = (16, 1.0);
    let rr = RandomizedResponse::new(k, epsilon).unwrap();
    let oue = UnaryEncoding::new(k, epsilon).unwrap();
    let (est_rr, est_oue) = (
        Estimator::new(k, Some(epsilon), 0.95).unwrap(),
        Estimator::oue(k, epsilon, 0.95).unwrap(),
    );
    let truth = Categorical::new(&f);
    let mut rng = ChaCha20Rng::seed_from_u64(16);
    let (mut width_rr, mut width_oue) = (vec![0.0; k], vec![0.0; k]);
    for _ in 0..WEEKS {
        let (mut counts, mut ones) = (vec![0u64; k], vec![0u64; k]);
        for _ in 0..N {
            let v = truth.sample(&mut rng);
            counts[rr.randomize(v, &mut rng).unwrap()] += 1;
            for (c, b) in ones.iter_mut().zip(oue.randomize(v, &mut rng).unwrap()) {
                *c += u64::from(b);
            }
        }
        let a = est_rr.estimate_counts(&counts).unwrap();
        let b = est_oue.estimate_bits(N, &ones).unwrap();
        for v in 0..k {
            width_rr[v] += a[v].ci_high - a[v].ci_low;
            width_oue[v] += b[v].ci_high - b[v].ci_low;
        }
    }
    let spread = |lambda: f64, gap: f64| (lambda * (1.0 - lambda)).sqrt() / gap;
    // Compared on the labels whose intervals are never clipped at 0 (shares of 5% and more):
    // clipping shortens the wider k-RR intervals of the small shares more, which would
    // flatter OUE beyond the variance's prediction.
    let wide: Vec<usize> = (0..k).filter(|&v| f[v] >= 0.05).collect();
    let (mut predicted, mut simulated) = (0.0, 0.0);
    for &v in &wide {
        let lambda_rr = rr.q() + f[v] * rr.p_minus_q();
        let lambda_oue = oue.q() + f[v] * oue.p_minus_q();
        let factor = spread(lambda_rr, rr.p_minus_q()) / spread(lambda_oue, oue.p_minus_q());
        let got = width_rr[v] / width_oue[v];
        eprintln!(
            "label {v} (share {}): predicted {factor:.3}, simulated {got:.3}",
            f[v]
        );
        predicted += factor;
        simulated += got;
    }
    let n = wide.len() as f64;
    let (predicted, simulated) = (predicted / n, simulated / n);
    eprintln!(
        "k-RR half-width / OUE half-width: predicted {predicted:.3}, simulated {simulated:.3}"
    );
    // Wilson's half-width is the normal one within about 1% at these counts (at least 50 of
    // 1,000 for every label of either mechanism); 3% covers that and the noise of 300 weeks.
    // The factor itself is about 1.3 (in reports, its square), far from 1.
    assert!(predicted > 1.2, "predicted {predicted}");
    assert!(
        (simulated / predicted - 1.0).abs() < 0.03,
        "simulated {simulated:.3} against predicted {predicted:.3}"
    );
}
