//! Property tests of the math: bounds of the estimators, ordering of the intervals, the
//! planner's monotonicity and consistency, and no panics on any input.

use clearcount_privacy::budget::{check_report_epsilon, report_epsilon};
use clearcount_privacy::estimate::{Estimator, Interval, LabelCounts, estimate_counter};
use clearcount_privacy::planner::{margin_for, plan, reports_needed, sample_rate_for};
use clearcount_privacy::rr::RandomizedResponse;
use clearcount_privacy::sampling::{draw_x, is_sampled, validate_sample_rate};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn epsilon_opt() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![Just(None), (0.01f64..12.0).prop_map(Some)]
}

/// Any f64 at all, including NaN, infinities, zeros, subnormals and huge values.
fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        Just(1.0),
        Just(f64::MIN_POSITIVE / 4.0),
        Just(1e-300),
    ]
}

/// The interval of one label (`k` labels, `epsilon`, `confidence`).
fn interval(
    reports: u64,
    observed: u64,
    k: usize,
    epsilon: Option<f64>,
    confidence: f64,
) -> Result<Interval, clearcount_privacy::PrivacyError> {
    Estimator::new(k, epsilon, confidence)?.interval(reports, observed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn estimate_is_bounded_and_ordered(
        reports in 1u64..=1_000_000_000_000,
        frac in 0.0f64..=1.0,
        k in 1usize..=64,
        epsilon in epsilon_opt(),
        confidence in 0.5f64..0.9999,
    ) {
        let observed = ((reports as f64 * frac) as u64).min(reports);
        let e = interval(reports, observed, k, epsilon, confidence).unwrap();
        prop_assert!(e.raw_estimate.is_finite() && e.variance.is_finite() && e.variance >= 0.0);
        // Never zero width, and the unbiased estimate (clipped) always inside.
        prop_assert!(0.0 <= e.ci_low && e.ci_low < e.ci_high && e.ci_high <= 1.0);
        let clipped = e.raw_estimate.clamp(0.0, 1.0);
        prop_assert!(e.ci_low <= clipped && clipped <= e.ci_high);
        if epsilon.is_none() {
            // Without randomized response the estimate is the observed share itself.
            prop_assert!((e.raw_estimate - observed as f64 / reports as f64).abs() < 1e-15);
        }
    }

    #[test]
    fn wider_confidence_gives_wider_interval(
        reports in 1u64..=10_000_000,
        frac in 0.0f64..=1.0,
        k in 1usize..=33,
        epsilon in epsilon_opt(),
        c1 in 0.5f64..0.99,
        extra in 0.0f64..0.0099,
    ) {
        let observed = ((reports as f64 * frac) as u64).min(reports);
        let narrow = interval(reports, observed, k, epsilon, c1).unwrap();
        let wide = interval(reports, observed, k, epsilon, c1 + extra).unwrap();
        prop_assert!(wide.ci_low <= narrow.ci_low + 1e-12);
        prop_assert!(wide.ci_high >= narrow.ci_high - 1e-12);
    }

    #[test]
    fn raw_and_consistent_estimates_of_a_counter_sum_to_one(
        counts in prop::collection::vec(0u64..1_000_000, 1..=33),
        epsilon in epsilon_opt(),
    ) {
        prop_assume!(counts.iter().any(|&c| c > 0));
        let all = estimate_counter(&counts, epsilon, 0.95).unwrap();
        let rr_scale = epsilon.map_or(1.0, |e| 1.0 / RandomizedResponse::new(counts.len(), e).unwrap().p_minus_q());
        let sum: f64 = all.iter().map(|e| e.raw_estimate).sum();
        prop_assert!((sum - 1.0).abs() <= 1e-12 * counts.len() as f64 * rr_scale.max(1.0));
        let consistent: f64 = all.iter().map(|e| e.estimate).sum();
        prop_assert!((consistent - 1.0).abs() <= 1e-9, "{}", consistent);
        for e in &all {
            prop_assert!(e.estimate >= 0.0 && e.estimate <= e.ci_high);
            prop_assert!(e.ci_low < e.ci_high);
        }
        let tally = LabelCounts::from_counts(counts.clone()).unwrap();
        prop_assert_eq!(tally.estimate(epsilon, 0.95).unwrap(), all);
    }

    #[test]
    fn planner_is_monotonic(
        k in 1usize..=33,
        eps in 0.05f64..8.0,
        m1 in 0.001f64..0.5,
        m_extra in 0.0f64..0.5,
        c1 in 0.5f64..0.995,
        c_extra in 0.0f64..0.0049,
        eps_extra in 0.0f64..4.0,
    ) {
        let m2 = m1 + m_extra; // m2 >= m1
        let c2 = c1 + c_extra; // c2 >= c1
        let e2 = eps + eps_extra; // e2 >= eps
        for epsilon in [None, Some(eps)] {
            let base = reports_needed(k, epsilon, m1, c1).unwrap();
            // A larger margin never needs more reports; a higher confidence never fewer.
            prop_assert!(reports_needed(k, epsilon, m2, c1).unwrap() <= base);
            prop_assert!(reports_needed(k, epsilon, m1, c2).unwrap() >= base);
            // More labels never need fewer reports.
            prop_assert!(reports_needed(k + 1, epsilon, m1, c1).unwrap() >= base);
            // The planned n reaches the margin, and one report fewer would not.
            prop_assert!(margin_for(k, epsilon, base, c1).unwrap() <= m1 * (1.0 + 1e-12));
            if base > 1 {
                prop_assert!(margin_for(k, epsilon, base - 1, c1).unwrap() > m1 * (1.0 - 1e-12));
            }
        }
        // A larger epsilon (less noise) never needs more reports, and randomized response never
        // needs fewer than no randomized response.
        let rr = reports_needed(k, Some(eps), m1, c1).unwrap();
        prop_assert!(reports_needed(k, Some(e2), m1, c1).unwrap() <= rr);
        prop_assert!(reports_needed(k, None, m1, c1).unwrap() <= rr);
    }

    #[test]
    fn sample_rate_is_a_valid_rate(reports in 1u64..1_000_000_000, installs in 0u64..2_000_000_000) {
        match sample_rate_for(reports, installs) {
            Ok(rate) => {
                prop_assert!(installs >= reports);
                prop_assert!(validate_sample_rate(rate).is_ok());
                // At least the mean rate (headroom), and never the whole population for
                // nothing: at most the mean plus 10 standard deviations (or 1).
                let mean = reports as f64 / installs as f64;
                prop_assert!(rate >= mean * (1.0 - 1e-12), "{} < {}", rate, mean);
                let sd = (mean * (1.0 - mean) / installs as f64).sqrt();
                prop_assert!(rate <= (mean + 10.0 * sd + 1e-3 * mean).min(1.0), "{}", rate);
            }
            Err(_) => prop_assert!(installs < reports),
        }
    }

    #[test]
    fn randomize_stays_in_range(k in 1usize..=200, eps in 0.001f64..50.0, seed: u64, v in 0usize..300) {
        let rr = RandomizedResponse::new(k, eps).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        match rr.randomize(v, &mut rng) {
            Ok(r) => { prop_assert!(v < k); prop_assert!(r < k); }
            Err(_) => prop_assert!(v >= k),
        }
        prop_assert!(rr.p() >= rr.q() && rr.p() <= 1.0 && rr.q() >= 0.0);
    }

    #[test]
    fn draw_x_is_in_unit_interval(seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..64 {
            let x = draw_x(&mut rng);
            prop_assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn no_panics_on_any_input(
        a in any_f64(), b in any_f64(), c in any_f64(),
        k in any::<usize>(), small_k in 0usize..40,
        n in any::<u64>(), m in any::<u64>(),
        installs in prop::option::of(any::<u64>()),
        counts in prop::collection::vec(any::<u64>(), 0..40),
        eps_list in prop::collection::vec(prop::option::of(any_f64()), 0..70),
    ) {
        for kk in [k, small_k] {
            let _ = RandomizedResponse::new(kk, a);
            let _ = interval(n, m, kk, Some(a), b);
            let _ = interval(n, m, kk, None, b);
            let _ = interval(n, n / 2, kk, Some(a), b);
            let _ = Estimator::new(kk, Some(a), c).map(|e| e.estimate_counts(&counts));
            let _ = reports_needed(kk, Some(a), b, c);
            let _ = reports_needed(kk, None, b, c);
            let _ = margin_for(kk, Some(a), n, c);
            let _ = plan(kk, Some(a), b, c, installs);
            let _ = plan(kk, None, b, c, installs);
            let _ = LabelCounts::new(kk);
        }
        let _ = estimate_counter(&counts, Some(a), b);
        let _ = estimate_counter(&counts, None, b);
        let _ = LabelCounts::from_counts(counts.clone());
        let _ = sample_rate_for(n, m);
        let _ = is_sampled(a, b);
        let _ = validate_sample_rate(a);
        let _ = report_epsilon(eps_list.clone());
        let _ = check_report_epsilon(eps_list, a);
        if let Ok(rr) = RandomizedResponse::new(small_k, a) {
            let mut rng = ChaCha8Rng::seed_from_u64(n);
            let _ = rr.randomize(k, &mut rng);
            let _ = rr.randomize(small_k / 2, &mut rng);
        }
    }

    #[test]
    fn plan_agrees_with_its_parts(
        k in 1usize..=33,
        epsilon in epsilon_opt(),
        margin in 0.005f64..0.3,
        confidence in 0.5f64..0.999,
        installs in prop::option::of(0u64..10_000_000),
    ) {
        let p = plan(k, epsilon, margin, confidence, installs).unwrap();
        prop_assert_eq!(p.reports, reports_needed(k, epsilon, margin, confidence).unwrap());
        match installs {
            None => prop_assert!(p.sample_rate.is_none() && p.enough_installs.is_none()),
            Some(i) => {
                let rate = p.sample_rate.unwrap();
                prop_assert!(rate > 0.0 && rate <= 1.0);
                prop_assert_eq!(p.enough_installs, Some(i >= p.reports));
                let reached = p.expected_margin.unwrap();
                if i >= p.reports {
                    prop_assert!(p.reports_p5.unwrap() >= p.reports);
                    prop_assert!(reached <= margin * (1.0 + 1e-12));
                } else {
                    prop_assert!(reached > margin * (1.0 - 1e-12));
                }
            }
        }
    }
}
