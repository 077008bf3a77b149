//! Benchmarks of the privacy crate (issue 3): randomizing one report of 64 counters (client),
//! and aggregating one week of 1,000,000 reports of 64 counters (server): the counting pass
//! over label indexes and the estimation from label counts; and the same two with optimized
//! unary encoding (issue 19), whose week is counted bit by bit.
//!
//! Run: `CARGO_TARGET_DIR=/work/targets/privacy cargo bench -p clearcount-privacy --bench privacy`

use std::hint::black_box;

use clearcount_privacy::estimate::{Estimator, LabelCounts};
use clearcount_privacy::oue::UnaryEncoding;
use clearcount_privacy::rr::RandomizedResponse;
use clearcount_privacy::sampling::{draw_x, is_sampled};
use clearcount_privacy::secure_rng;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_chacha::ChaCha8Rng;

const COUNTERS: usize = 64;
const WEEK_REPORTS: usize = 1_000_000;

/// 64 counters with 2 to 33 labels, epsilon 4/64 each (a report's budget of 4).
fn counters() -> Vec<RandomizedResponse> {
    (0..COUNTERS)
        .map(|i| RandomizedResponse::new(2 + i % 32, 4.0 / COUNTERS as f64).unwrap())
        .collect()
}

fn randomize_report(c: &mut Criterion) {
    let rrs = counters();
    let truth: Vec<usize> = rrs.iter().enumerate().map(|(i, rr)| i % rr.k()).collect();
    let mut out = vec![0usize; COUNTERS];
    let mut group = c.benchmark_group("randomize_report_64_counters");
    group.throughput(Throughput::Elements(COUNTERS as u64));

    // The mechanism alone with a fast seeded RNG.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    group.bench_function("chacha8_seeded", |b| {
        b.iter(|| {
            for ((rr, &v), o) in rrs.iter().zip(&truth).zip(out.iter_mut()) {
                *o = rr.randomize(v, &mut rng).unwrap();
            }
            black_box(&out);
        })
    });

    // With the CSPRNG uploads use, created once.
    let mut rng: StdRng = secure_rng().unwrap();
    group.bench_function("std_rng", |b| {
        b.iter(|| {
            for ((rr, &v), o) in rrs.iter().zip(&truth).zip(out.iter_mut()) {
                *o = rr.randomize(v, &mut rng).unwrap();
            }
            black_box(&out);
        })
    });

    // What a client does per weekly report: seed a CSPRNG from the OS, draw x, decide, and
    // randomize every counter.
    group.bench_function("full_report_os_seeded", |b| {
        b.iter(|| {
            let mut rng = secure_rng().unwrap();
            let x = draw_x(&mut rng);
            if is_sampled(x, 1.0) {
                for ((rr, &v), o) in rrs.iter().zip(&truth).zip(out.iter_mut()) {
                    *o = rr.randomize(v, &mut rng).unwrap();
                }
            }
            black_box((x, &out));
        })
    });
    group.finish();
}

/// A week of randomized reports as label indexes, report-major as a server reads them (one row
/// of 64 labels per report).
fn week_of_reports(rrs: &[RandomizedResponse]) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut labels = Vec::with_capacity(WEEK_REPORTS * COUNTERS);
    for report in 0..WEEK_REPORTS {
        for rr in rrs {
            let v = (report * 31 + rr.k()) % rr.k();
            labels.push(rr.randomize(v, &mut rng).unwrap() as u8);
        }
    }
    labels
}

fn aggregate_week(c: &mut Criterion) {
    let rrs = counters();
    let labels = week_of_reports(&rrs);
    let mut group = c.benchmark_group("aggregate_week_1m_reports_64_counters");
    group.sample_size(10);

    // The counting pass: 64,000,000 labels into 64 tallies.
    group.throughput(Throughput::Elements((WEEK_REPORTS * COUNTERS) as u64));
    group.bench_function("count_labels", |b| {
        b.iter(|| {
            let mut tallies: Vec<LabelCounts> = rrs
                .iter()
                .map(|rr| LabelCounts::new(rr.k()).unwrap())
                .collect();
            for report in labels.chunks_exact(COUNTERS) {
                for (tally, &label) in tallies.iter_mut().zip(report) {
                    tally.add(usize::from(label)).unwrap();
                }
            }
            black_box(tallies)
        })
    });

    // The estimation from label counts: every label of every counter.
    let tallies: Vec<LabelCounts> = {
        let mut t: Vec<LabelCounts> = rrs
            .iter()
            .map(|rr| LabelCounts::new(rr.k()).unwrap())
            .collect();
        for report in labels.chunks_exact(COUNTERS) {
            for (tally, &label) in t.iter_mut().zip(report) {
                tally.add(usize::from(label)).unwrap();
            }
        }
        t
    };
    drop(labels);
    let labels_total: usize = rrs.iter().map(|rr| rr.k()).sum();
    group.throughput(Throughput::Elements(labels_total as u64));
    group.sample_size(100);
    group.bench_function("estimate_from_counts", |b| {
        b.iter(|| {
            let all: Vec<_> = rrs
                .iter()
                .zip(&tallies)
                .map(|(rr, tally)| {
                    Estimator::new(rr.k(), Some(rr.epsilon()), 0.95)
                        .unwrap()
                        .estimate_counts(tally.counts())
                        .unwrap()
                })
                .collect();
            black_box(all)
        })
    });
    group.finish();
}

/// The same 64 counters with optimized unary encoding (issue 19).
fn oue_counters() -> Vec<UnaryEncoding> {
    counters()
        .iter()
        .map(|rr| UnaryEncoding::new(rr.k(), rr.epsilon()).unwrap())
        .collect()
}

fn randomize_report_oue(c: &mut Criterion) {
    let oues = oue_counters();
    let truth: Vec<usize> = oues.iter().enumerate().map(|(i, o)| i % o.k()).collect();
    let mut group = c.benchmark_group("randomize_report_64_counters_oue");
    group.throughput(Throughput::Elements(COUNTERS as u64));
    let mut rng: StdRng = secure_rng().unwrap();
    group.bench_function("std_rng", |b| {
        b.iter(|| {
            let out: Vec<String> = oues
                .iter()
                .zip(&truth)
                .map(|(o, &v)| UnaryEncoding::to_text(&o.randomize(v, &mut rng).unwrap()))
                .collect();
            black_box(out)
        })
    });
    group.finish();
}

/// A week of OUE reports, one bit mask a counter (bit v for label v), report-major.
fn week_of_oue_reports(oues: &[UnaryEncoding]) -> Vec<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut masks = Vec::with_capacity(WEEK_REPORTS * COUNTERS);
    for report in 0..WEEK_REPORTS {
        for o in oues {
            let v = (report * 31 + o.k()) % o.k();
            let bits = o.randomize(v, &mut rng).unwrap();
            masks.push(
                bits.iter()
                    .rev()
                    .fold(0u64, |m, &b| (m << 1) | u64::from(b)),
            );
        }
    }
    masks
}

fn aggregate_week_oue(c: &mut Criterion) {
    let oues = oue_counters();
    let masks = week_of_oue_reports(&oues);
    let mut group = c.benchmark_group("aggregate_week_1m_reports_64_counters_oue");
    group.sample_size(10);
    // The counting pass: every set bit of 64,000,000 masks into its label's tally.
    group.throughput(Throughput::Elements((WEEK_REPORTS * COUNTERS) as u64));
    let count = |masks: &[u64]| {
        let mut ones: Vec<Vec<u64>> = oues.iter().map(|o| vec![0; o.k()]).collect();
        for report in masks.chunks_exact(COUNTERS) {
            for (tally, &mask) in ones.iter_mut().zip(report) {
                let mut m = mask;
                while m != 0 {
                    tally[m.trailing_zeros() as usize] += 1;
                    m &= m - 1;
                }
            }
        }
        ones
    };
    group.bench_function("count_bits", |b| b.iter(|| black_box(count(&masks))));
    let ones = count(&masks);
    drop(masks);
    let labels_total: usize = oues.iter().map(|o| o.k()).sum();
    group.throughput(Throughput::Elements(labels_total as u64));
    group.sample_size(100);
    group.bench_function("estimate_from_bit_counts", |b| {
        b.iter(|| {
            let all: Vec<_> = oues
                .iter()
                .zip(&ones)
                .map(|(o, ones)| {
                    Estimator::oue(o.k(), o.epsilon(), 0.95)
                        .unwrap()
                        .estimate_bits(WEEK_REPORTS as u64, ones)
                        .unwrap()
                })
                .collect();
            black_box(all)
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    randomize_report,
    aggregate_week,
    randomize_report_oue,
    aggregate_week_oue
);
criterion_main!(benches);
