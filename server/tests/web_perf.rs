//! Every page answers within 50 ms for a year of weekly data of 10 programs with 64 counters
//! each: the data set is stored through the store, then the real server binary is timed over
//! loopback HTTP. Figures are printed (run with `--nocapture`); see docs/perf/web.md.

mod web;

use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use clearcount_config_log::config::Config;
use clearcount_server::storage::Db;
use clearcount_server::validate::{Accepted, ProgramRow, encode_labels};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use web::*;

const PROGRAMS: usize = 10;
const COUNTERS: usize = 64;
const WEEKS: u64 = 52;
/// Reports per week per config entry.
const REPORTS: usize = 40;
/// Programs per config entry (a config must fit in 65,535 bytes).
const PER_CONFIG: usize = 4;
const BUDGET: Duration = Duration::from_millis(50);

fn program_toml(p: usize) -> String {
    let mut s = format!("\n[[program]]\nname = \"tool{p:02}\"\nversions = \">=1.0.0\"\n");
    for c in 0..COUNTERS {
        if c % 2 == 0 {
            s.push_str(&format!(
                "\n[[program.counter]]\nname = \"c{c:02}\"\nkind = \"count\"\nbuckets = [0, 1, 10, 100, 1000]\nepsilon = 0.1\ndescription = \"d\"\nrationale = \"r\"\nowner = \"o@x.org\"\nlink = \"https://x.org/{c}\"\nexpires = \"2099-01-01\"\n"
            ));
        } else {
            s.push_str(&format!(
                "\n[[program.counter]]\nname = \"c{c:02}\"\nkind = \"category\"\nlabels = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]\nepsilon = 0.1\ndescription = \"d\"\nrationale = \"r\"\nowner = \"o@x.org\"\nlink = \"https://x.org/{c}\"\nexpires = \"2099-01-01\"\n"
            ));
        }
    }
    s
}

fn configs() -> Vec<String> {
    (0..PROGRAMS)
        .collect::<Vec<_>>()
        .chunks(PER_CONFIG)
        .map(|ps| {
            let mut s = format!(
                "origin = \"{ORIGIN}\"\nsample_rate = 1.0\nmax_epsilon = 8.0\nos = [\"linux\", \"macos\", \"windows\"]\narch = [\"x86_64\", \"aarch64\"]\n"
            );
            for p in ps {
                s.push_str(&program_toml(*p));
            }
            s
        })
        .collect()
}

/// Stores a year of reports straight through the store (the HTTP path refuses weeks older
/// than four weeks, which is the point of the window, so old weeks are written directly).
fn fill(data: &std::path::Path, configs: &[String], today: NaiveDate) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = Db::connect(None, data).await.unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let last = clearcount_server::validate::week_of(today) - Days::new(7);
        let mut n = 0u64;
        for wi in 0..WEEKS {
            let week = last - Days::new(7 * (WEEKS - 1 - wi));
            let mut batch = Vec::new();
            for (ci, text) in configs.iter().enumerate() {
                let cfg = Config::parse(text.as_bytes()).unwrap();
                for _ in 0..REPORTS {
                    let rows = cfg
                        .programs
                        .iter()
                        .map(|p| {
                            let labels: Vec<Option<u16>> = p
                                .counters
                                .iter()
                                .map(|c| {
                                    let k = c.report_labels().len();
                                    Some(rng.random_range(0..k).min(rng.random_range(0..k)) as u16)
                                })
                                .collect();
                            ProgramRow {
                                program: p.name.clone(),
                                version: ["1.0.0", "1.2.0", "devel"][rng.random_range(0..3)].into(),
                                os: cfg.os[rng.random_range(0..cfg.os.len())].clone(),
                                arch: cfg.arch[rng.random_range(0..cfg.arch.len())].clone(),
                                labels: encode_labels(&labels),
                            }
                        })
                        .collect();
                    batch.push(Accepted {
                        canonical: format!("{{\"perf\":{n}}}"),
                        week,
                        config_index: ci as u64,
                        rows,
                    });
                    n += 1;
                }
            }
            let items: Vec<_> = batch.iter().map(|a| (a, week + Days::new(8))).collect();
            db.insert_batch(&items).await.unwrap();
        }
        db.close().await;
        n
    })
}

fn timed_get(client: &reqwest::blocking::Client, url: &str, html: bool) -> (Duration, usize) {
    let mut r = client.get(url);
    if html {
        r = r.header("accept", "text/html");
    }
    let start = Instant::now();
    let resp = r.send().unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    let body = resp.bytes().unwrap();
    (start.elapsed(), body.len())
}

#[test]
fn every_page_within_50ms_for_a_year_of_10_programs_with_64_counters() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let data = dir.path().join("data");
    let configs = configs();
    for c in &configs {
        assert!(c.len() < 65_535, "config of {} bytes", c.len());
    }
    let refs: Vec<&str> = configs.iter().map(|s| s.as_str()).collect();
    make_log(&log, &refs);
    let t = Instant::now();
    let reports = fill(&data, &configs, day(TODAY));
    eprintln!(
        "stored {reports} reports ({} weeks, {PROGRAMS} programs x {COUNTERS} counters) in {:.1} s",
        WEEKS,
        t.elapsed().as_secs_f64()
    );

    // The server computes the aggregates and renders the dashboard before it listens.
    let t = Instant::now();
    let server = Server::start(&log, &data, TODAY);
    eprintln!(
        "start-up (process start to `listening on`, dashboard warmed up): {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let client = reqwest::blocking::Client::new();
    let mut paths: Vec<(String, bool)> = vec![("/".into(), true)];
    for p in 0..PROGRAMS {
        paths.push((format!("/programs/tool{p:02}"), true));
    }
    for i in 0..configs.len() {
        paths.push((format!("/config/{i}"), true));
    }
    paths.push(("/config".into(), true));
    paths.push(("/config".into(), false));

    // The first request of each page: the dashboard pages were rendered before the server
    // listened; each config page is rendered here once.
    let mut cold = Vec::new();
    for (p, html) in &paths {
        let (d, len) = timed_get(&client, &server.url(p), *html);
        cold.push((p.clone(), d, len));
    }
    // Then every page, many times: the steady state the budget is about.
    let mut worst: Vec<(String, Duration, usize)> = Vec::new();
    for (p, html) in &paths {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..10 {
            let (d, len) = timed_get(&client, &server.url(p), *html);
            times.push(d);
            size = len;
        }
        times.sort();
        worst.push((p.clone(), *times.last().unwrap(), size));
    }
    for ((p, c, _), (_, w, size)) in cold.iter().zip(&worst) {
        eprintln!(
            "{p:<20} {:>8} bytes  first {:>7.2} ms  worst of 10 {:>6.2} ms",
            size,
            c.as_secs_f64() * 1e3,
            w.as_secs_f64() * 1e3
        );
    }

    // A report is accepted: the pages of the new data are rendered in the background while
    // the last ones are served, so no request waits, and the new data shows within seconds.
    let cfg = Config::parse(configs[0].as_bytes()).unwrap();
    let week = *open_weeks().last().unwrap();
    let before = body_of(&client, &server.url("/"));
    let program_before = body_of(&client, &server.url("/programs/tool00"));
    upload_all(&server, web::reports(&cfg, 0, &[(week, 1)], 7));
    let accepted = Instant::now();
    let mut after: Vec<(String, Duration)> = Vec::new();
    let (mut seen, mut program_seen) = (None, None);
    while (seen.is_none() || program_seen.is_none()) && accepted.elapsed() < STALE_BOUND {
        for (p, old, when) in [
            ("/", &before, &mut seen),
            ("/programs/tool00", &program_before, &mut program_seen),
        ] {
            let start = Instant::now();
            let body = body_of(&client, &server.url(p));
            after.push((p.to_string(), start.elapsed()));
            if when.is_none() && body != *old {
                *when = Some(accepted.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let worst_after = after.iter().map(|(_, d)| *d).max().unwrap_or_default();
    eprintln!(
        "after an accepted report: {} requests, worst {:.2} ms; new data on / after {:?}, on \
         /programs/tool00 after {:?}",
        after.len(),
        worst_after.as_secs_f64() * 1e3,
        seen,
        program_seen
    );
    assert!(
        seen.is_some() && program_seen.is_some(),
        "the pages did not show the accepted report within {STALE_BOUND:?}"
    );

    if cfg!(debug_assertions) {
        eprintln!("debug build: the 50 ms budget is checked in release builds only");
        return;
    }
    // Every timed request: the first of each page, the worst of its ten repeats, and every
    // request while the new data was being rendered. One of them may exceed the budget (up to
    // three times it) when the shared 2-core CI machine deschedules the server; a regression
    // (a request that renders, or waits for the warm-up) slows every page of its kind and
    // still fails.
    let mut timed: Vec<(String, Duration)> = Vec::new();
    timed.extend(cold.iter().map(|(p, c, _)| (format!("first {p}"), *c)));
    timed.extend(worst.iter().map(|(p, w, _)| (format!("repeated {p}"), *w)));
    timed.extend(
        after
            .iter()
            .map(|(p, d)| (format!("{p} after a report"), *d)),
    );
    let over: Vec<String> = timed
        .iter()
        .filter(|(_, d)| *d >= BUDGET)
        .map(|(p, d)| format!("{p}: {:.1} ms", d.as_secs_f64() * 1e3))
        .collect();
    assert!(
        over.len() <= 1 && timed.iter().all(|(_, d)| *d < 3 * BUDGET),
        "{} of {} requests took 50 ms or more: {over:?}",
        over.len(),
        timed.len()
    );
}

/// How long after an accepted report the pages must show it (the server re-renders every
/// 2 s at most; rendering the year takes about a second on a loaded 2-core machine).
const STALE_BOUND: Duration = Duration::from_secs(15);

fn body_of(client: &reqwest::blocking::Client, url: &str) -> Vec<u8> {
    let resp = client
        .get(url)
        .header("accept", "text/html")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    resp.bytes().unwrap().to_vec()
}
