//! A test helper, not an example to copy: increments counters in a loop and reports progress.
//!
//! `hammer ITERATIONS EVERY [SLEEP_MS]`: does ITERATIONS rounds of `hits.inc()`,
//! `bytes.add(3)` and `kind.inc("a")`, printing `done N` after every EVERY rounds (after the
//! increments of those rounds), then `finished`. With SLEEP_MS it sleeps that long halfway
//! through the loop (used to watch week switches). With `HAMMER_WAIT=1` it prints `ready` and
//! waits for a line on stdin before the loop, so that a test can start many processes at once.
//! With `HAMMER_HOLD=1` it prints `held` after the loop and waits for a line on stdin before
//! it prints `finished`, so that a test can look at the process (its threads) while it lives.

use std::io::Write;

use clearcount::{Category, Counter};

static HITS: Counter = Counter::new("hits");
static BYTES: Counter = Counter::new("bytes");
static KIND: Category = Category::new("kind");
static EARLY: Counter = Counter::new("early");

fn main() {
    // Increments before start are kept.
    EARLY.add(5);
    clearcount::start("hammer", "1.0.0");
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>().unwrap_or(0));
    let iterations = args.next().unwrap_or(0);
    let every = args.next().unwrap_or(1000).max(1);
    let sleep_ms = args.next().unwrap_or(0);
    let out = std::io::stdout();
    let mut out = out.lock();
    let _ = writeln!(out, "recording {}", clearcount::recording());
    let _ = out.flush();
    if std::env::var_os("HAMMER_WAIT").is_some() {
        let _ = writeln!(out, "ready");
        let _ = out.flush();
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    for i in 1..=iterations {
        HITS.inc();
        BYTES.add(3);
        KIND.inc("a");
        if i % every == 0 {
            let _ = writeln!(out, "done {i}");
            let _ = out.flush();
        }
        if sleep_ms > 0 && i == iterations / 2 {
            std::thread::sleep(std::time::Duration::from_millis(sleep_ms));
        }
    }
    if std::env::var_os("HAMMER_HOLD").is_some() {
        let _ = writeln!(out, "held");
        let _ = out.flush();
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    let _ = writeln!(out, "finished");
}
