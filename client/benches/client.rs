//! The recording path: `Counter::inc` on a started program against a relaxed
//! `AtomicU64::fetch_add` in the same run, `inc` in mode off, and a labelled increment.
//! Start-up of the example tool is measured with hyperfine (see docs/perf/client.md).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use clearcount::{Category, Counter};
use criterion::{Criterion, criterion_group, criterion_main};

static BASELINE: AtomicU64 = AtomicU64::new(0);
static RUNS: Counter = Counter::new("invocations");
static ENGINE: Category = Category::new("engine");

fn recording(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    clearcount::Settings::new("bench", "1.0.0")
        .dir(dir.path())
        .week_timer(false)
        .start();
    assert!(clearcount::recording(), "the benchmark must record");
    RUNS.inc();
    ENGINE.inc("pcre2");

    let mut g = c.benchmark_group("increment");
    g.bench_function("AtomicU64::fetch_add relaxed", |b| {
        b.iter(|| black_box(&BASELINE).fetch_add(black_box(1), Ordering::Relaxed))
    });
    g.bench_function("Counter::inc started", |b| {
        b.iter(|| black_box(&RUNS).inc())
    });
    g.bench_function("Category::inc started", |b| {
        b.iter(|| black_box(&ENGINE).inc(black_box("pcre2")))
    });
    clearcount::__set_disabled_for_benchmarks(true);
    g.bench_function("Counter::inc mode off", |b| {
        b.iter(|| black_box(&RUNS).inc())
    });
    clearcount::__set_disabled_for_benchmarks(false);
    g.finish();
}

criterion_group!(benches, recording);
criterion_main!(benches);
