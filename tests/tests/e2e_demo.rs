//! `clearcount-server demo`, run as a user runs it: its table of true versus estimated shares
//! is right, and while it serves, its raw reports and aggregates are downloadable.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clearcount_privacy::estimate::Estimator;
use clearcount_tests::e2e::{demo_rows, http_get, http_json, sigterm};
use clearcount_tests::server_bin;

#[test]
fn the_demo_estimates_true_shares_and_serves_its_data_until_sigterm() {
    let mut child = Command::new(server_bin())
        .args(["demo", "--installs", "2000", "--listen", "127.0.0.1:0"])
        // Four weeks: 108 shares, so that the 90% rule below is a tight test (with 95%
        // intervals, 11 or more misses of 108 has probability well below 1e-3). Given as
        // environment variables, which every demo option also reads.
        .env("CLEARCOUNT_DEMO_WEEKS", "4")
        .env("CLEARCOUNT_DEMO_ALL_WEEKS", "true")
        .env_remove("CLEARCOUNT_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the demo");
    let stderr = child.stderr.take().unwrap();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            s.push_str(&l);
            s.push('\n');
        }
        s
    });
    let start = Instant::now();
    let mut out = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for l in lines.by_ref() {
        let l = l.expect("demo stdout");
        out.push_str(&l);
        out.push('\n');
        if l.starts_with("Press Ctrl-C") {
            break;
        }
    }
    assert!(
        out.contains("Press Ctrl-C"),
        "the demo stopped early:\n{out}"
    );
    assert!(start.elapsed() < Duration::from_secs(300), "{out}");

    // While it serves: the raw reports and every week's aggregates are downloadable.
    let url_after = |prefix: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| l.trim().strip_prefix(prefix))
            .map(|s| s.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    let raw_url = url_after("raw reports:");
    assert_eq!(raw_url.len(), 1, "{out}");
    let (status, raw) = http_get(&raw_url[0]);
    assert_eq!(status, 200, "{raw}");
    let raw_lines: Vec<serde_json::Value> = raw
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON report"))
        .collect();
    assert!(raw_lines.len() > 2000, "{} reports", raw_lines.len());
    assert!(
        out.contains(&format!("{} raw reports of", raw_lines.len())),
        "{out}"
    );
    let agg_urls = url_after("aggregates:");
    assert_eq!(agg_urls.len(), 4, "{out}");
    let mut agg_reports = 0;
    // Per (week, program, counter, label): the unclipped estimate and its standard error,
    // recomputed from the published counts.
    let mut unclipped = std::collections::BTreeMap::new();
    for u in &agg_urls {
        let agg = http_json(u);
        let week = agg["week"].as_str().unwrap().to_string();
        for p in agg["programs"].as_array().unwrap() {
            agg_reports += p["reports"].as_u64().unwrap();
            for c in p["counters"].as_array().unwrap() {
                let labels = c["labels"].as_array().unwrap();
                let est = Estimator::new(labels.len(), c["epsilon"].as_f64(), 0.95).unwrap();
                for l in labels {
                    let e = est
                        .interval(
                            l["reports"].as_u64().unwrap(),
                            l["observed"].as_u64().unwrap(),
                        )
                        .unwrap();
                    let key = (
                        week.clone(),
                        p["program"].as_str().unwrap().to_string(),
                        c["counter"].as_str().unwrap().to_string(),
                        l["label"].as_str().unwrap().to_string(),
                    );
                    unclipped.insert(key, (e.raw_estimate, e.variance.sqrt()));
                }
            }
        }
    }
    // Each raw report is one week of one install, with one or two programs.
    assert!(agg_reports >= raw_lines.len() as u64, "{agg_reports}");
    let dashboard = url_after("dashboard:");
    assert_eq!(http_get(&dashboard[0]).0, 200);

    sigterm(&child);
    let status = child.wait().expect("wait for the demo");
    let err = err_thread.join().unwrap();
    assert!(
        status.success(),
        "the demo failed after SIGTERM: {status}\n{err}"
    );

    // The table: every simulated week, every program, counter and label.
    let rows = demo_rows(&out);
    assert_eq!(rows.len(), 4 * 27, "{out}");
    let weeks: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.week.as_str()).collect();
    assert_eq!(weeks.len(), 4);
    let mut inside = 0;
    for r in &rows {
        // The unbiased estimate, clipped, lies in its interval; the consistent one is never
        // above it (printed to 0.01%, hence the 5e-5).
        let clipped = r.raw.clamp(0.0, 1.0);
        assert!(r.low - 5e-5 <= clipped && clipped <= r.high + 5e-5, "{r:?}");
        assert!(0.0 <= r.estimate && r.estimate <= r.high + 5e-5, "{r:?}");
        assert!(r.low < r.high, "{r:?}");
        assert!((0.0..=1.0).contains(&r.truth), "{r:?}");
        // The printed verdict agrees with the printed numbers (up to their rounding).
        let within = r.low - 5e-5 <= r.truth && r.truth <= r.high + 5e-5;
        if r.verdict == "inside" {
            assert!(within, "{r:?}");
            inside += 1;
        } else {
            assert_eq!(r.verdict, "OUTSIDE");
        }
        // "Near": no true share is more than 5.5 standard errors from the unclipped estimate
        // (the printed interval is clipped to [0, 1], so its width says little near 0). Under
        // the normal approximation the chance of any of 108 rows failing is below 1e-5.
        let key = (
            r.week.clone(),
            r.program.clone(),
            r.counter.clone(),
            r.label.clone(),
        );
        let (raw, se) = unclipped[&key];
        assert!(
            (r.truth - raw).abs() <= 5.5 * se + 5e-5,
            "far outside: {r:?}, unclipped estimate {raw}, standard error {se}"
        );
    }
    for w in &weeks {
        let mut sums: std::collections::BTreeMap<(&str, &str), (f64, f64)> = Default::default();
        for r in rows.iter().filter(|r| r.week == *w) {
            let s = sums.entry((&r.program, &r.counter)).or_default();
            s.0 += r.truth;
            s.1 += r.estimate;
        }
        for (k, (truth, estimate)) in sums {
            assert!(
                (truth - 1.0).abs() < 0.001 * 12.0,
                "{w} {k:?}: true shares sum to {truth}"
            );
            // The published estimates of a counter sum to 1 (up to the printed rounding).
            assert!(
                (estimate - 1.0).abs() < 0.0001 * 12.0,
                "{w} {k:?}: estimates sum to {estimate}"
            );
        }
    }
    assert!(
        inside * 10 >= rows.len() * 9,
        "only {inside} of {} true shares inside their intervals:\n{out}",
        rows.len()
    );
    assert!(
        out.contains(&format!("coverage: {inside} of {}", rows.len())),
        "{out}"
    );
}
