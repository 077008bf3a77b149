//! Page latency (DESIGN.md section 9 and docs/perf/web.md): every page within 50 ms for a year
//! of weekly data of 10 programs with 64 counters each, served by the real server binary over
//! loopback. Prints the first and the worst of ten requests of each page, the requests made
//! while new data was being rendered, and whether each met the budget.
//!
//!     cargo bench -p clearcount-server --bench web_pages

#[path = "../tests/web/mod.rs"]
mod web;

use std::time::{Duration, Instant};

use clearcount_config_log::config::Config;
use web::year::*;
use web::*;

const BUDGET: Duration = Duration::from_millis(50);

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let data = dir.path().join("data");
    let configs = make_year(&log, &data);
    let t = Instant::now();
    let server = Server::start(&log, &data, TODAY);
    println!(
        "start-up (process start to `listening on`, dashboard warmed up): {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let client = reqwest::blocking::Client::new();
    let paths = pages(configs.len());
    let mut timed: Vec<(String, Duration)> = Vec::new();
    for (p, html) in &paths {
        let (first, size) = timed_get(&client, &server.url(p), *html);
        let worst = (0..10)
            .map(|_| timed_get(&client, &server.url(p), *html).0)
            .max()
            .unwrap_or_default();
        println!(
            "{p:<20} {size:>8} bytes  first {:>7.2} ms  worst of 10 {:>6.2} ms",
            first.as_secs_f64() * 1e3,
            worst.as_secs_f64() * 1e3
        );
        timed.push((format!("first {p}"), first));
        timed.push((format!("repeated {p}"), worst));
    }

    // Requests while a newly accepted report is being rendered: none waits for the rendering.
    let cfg = Config::parse(configs[0].as_bytes()).unwrap();
    let week = *open_weeks().last().unwrap();
    upload_all(&server, web::reports(&cfg, 0, &[(week, 1)], 7));
    let accepted = Instant::now();
    let mut during = Vec::new();
    while accepted.elapsed() < Duration::from_secs(5) {
        for p in ["/", "/programs/tool00"] {
            let (d, _) = timed_get(&client, &server.url(p), true);
            during.push(d);
            timed.push((format!("{p} after a report"), d));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let worst_during = during.iter().max().copied().unwrap_or_default();
    println!(
        "after an accepted report: {} requests, worst {:.2} ms",
        during.len(),
        worst_during.as_secs_f64() * 1e3
    );
    let over: Vec<String> = timed
        .iter()
        .filter(|(_, d)| *d >= BUDGET)
        .map(|(p, d)| format!("{p}: {:.1} ms", d.as_secs_f64() * 1e3))
        .collect();
    println!(
        "{} of {} timed requests at or over the 50 ms budget{}{}",
        over.len(),
        timed.len(),
        if over.is_empty() { "" } else { ": " },
        over.join(", ")
    );
}
