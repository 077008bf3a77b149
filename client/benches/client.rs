//! The recording path: `Counter::inc` on a started program against a relaxed
//! `AtomicU64::fetch_add` in the same run, `inc` in mode off, and a labelled increment; and
//! whole-process start-up of the example tool `greet` against `greet_plain`, the same tool
//! without clearcount, and of `greet_lite`, the recording-only build of the same tool.
//!
//! `cargo bench` does not build examples, so build them from the same sources first (the
//! second build is optional: without it `greet_lite` is left out):
//!
//! ```sh
//! cargo build --release -p clearcount --examples
//! cargo build --release -p clearcount --no-default-features --example greet_lite \
//!     --target-dir target/no-default-features
//! cargo bench -p clearcount --bench client
//! ```
//!
//! Without them the start-up group is skipped with a note on stderr.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clearcount::{Category, Counter};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

static BASELINE: AtomicU64 = AtomicU64::new(0);
static RUNS: Counter = Counter::new("invocations");
static ENGINE: Category = Category::new("engine");

fn recording(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    clearcount::Settings::new("bench", "1.0.0")
        .dir(dir.path())
        .start();
    assert!(clearcount::recording(), "the benchmark must record");
    // Default settings: the first increments of a process take the cold path until the week
    // timer starts (see `Settings::week_timer`); the warm-up is far past that.
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

/// `target/release/examples`, next to this benchmark's `target/release/deps`.
fn examples_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?.join("examples");
    let built = ["greet", "greet_plain"]
        .iter()
        .all(|n| dir.join(n).is_file());
    built.then_some(dir)
}

/// One run of an example tool as a user would start it, with clearcount's directory at `cc`.
fn run_tool(exe: &Path, cc: &Path, do_not_track: bool) {
    let mut cmd = Command::new(exe);
    cmd.arg("alice")
        .env("CLEARCOUNT_DIR", cc)
        .env_remove("CLEARCOUNT_MODE")
        .env_remove("DO_NOT_TRACK")
        .stdout(Stdio::null());
    if do_not_track {
        cmd.env("DO_NOT_TRACK", "1");
    }
    let status = cmd.status().expect("run the example tool");
    assert!(status.success(), "{} failed: {status}", exe.display());
}

/// Runs of each tool per iteration of the paired start-up benchmark.
const PAIRED_RUNS: usize = 5;

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn start_up(c: &mut Criterion) {
    let Some(examples) = examples_dir() else {
        eprintln!(
            "start-up skipped: build the examples first \
             (cargo build --release -p clearcount --examples)"
        );
        return;
    };
    let (greet, plain) = (examples.join("greet"), examples.join("greet_plain"));
    let cc = tempfile::tempdir().expect("temporary directory");
    // The measured case is the common one: mode local, this week's counter file exists.
    run_tool(&greet, cc.path(), false);
    let files = std::fs::read_dir(cc.path().join("local"))
        .map(|d| d.flatten().count())
        .unwrap_or(0);
    assert!(files > 0, "greet must record into {}", cc.path().display());

    // `target/no-default-features/release/examples/greet_lite`, beside `target/release`.
    let lite = examples
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("no-default-features/release/examples/greet_lite"))
        .filter(|p| p.is_file());
    if lite.is_none() {
        eprintln!("greet_lite left out: build it first (see this file's header)");
    }

    let mut g = c.benchmark_group("start-up");
    g.bench_function("greet_plain (without clearcount)", |b| {
        b.iter(|| run_tool(&plain, cc.path(), false))
    });
    g.bench_function("greet, mode local", |b| {
        b.iter(|| run_tool(&greet, cc.path(), false))
    });
    g.bench_function("greet, DO_NOT_TRACK=1", |b| {
        b.iter(|| run_tool(&greet, cc.path(), true))
    });
    if let Some(lite) = &lite {
        g.bench_function("greet_lite (recording only), mode local", |b| {
            b.iter(|| run_tool(lite, cc.path(), false))
        });
    }
    // Process start-up on a virtual machine has a heavy tail and drifts over seconds, which the
    // means above show. These pair a tool with `greet_plain` run by run and keep the fastest of
    // `PAIRED_RUNS` of each: the time clearcount adds, with the tail and the drift taken out.
    g.sample_size(20).sampling_mode(SamplingMode::Flat);
    let mut paired = |name: &str, tool: &Path| {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let (mut with, mut without) = (Duration::MAX, Duration::MAX);
                        for _ in 0..PAIRED_RUNS {
                            without = without.min(timed(|| run_tool(&plain, cc.path(), false)));
                            with = with.min(timed(|| run_tool(tool, cc.path(), false)));
                        }
                        with.saturating_sub(without)
                    })
                    .sum()
            })
        });
    };
    paired("added by clearcount (paired, fastest of 5)", &greet);
    if let Some(lite) = &lite {
        paired(
            "added by clearcount, recording only (paired, fastest of 5)",
            lite,
        );
    }
    g.finish();
}

criterion_group!(benches, recording, start_up);
criterion_main!(benches);
