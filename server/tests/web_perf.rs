//! Every page of a year of weekly data of 10 programs with 64 counters each is served (the data
//! set is stored through the store, then the real server binary is asked over loopback HTTP),
//! and a newly accepted report shows on the pages within seconds without any request waiting
//! for the rendering. How fast the pages answer (the 50 ms budget) is measured by the benchmark
//! `cargo bench -p clearcount-server --bench web_pages`, not here: a timing assertion fails on a
//! busy machine. Sizes are printed (run with `--nocapture`); see docs/perf/web.md.

mod web;

use std::time::{Duration, Instant};

use clearcount_config_log::config::Config;
use web::year::*;
use web::*;

#[test]
fn every_page_of_a_year_of_10_programs_with_64_counters_is_served_and_kept_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let data = dir.path().join("data");
    let configs = make_year(&log, &data);

    // The server computes the aggregates and renders the dashboard before it listens.
    let server = Server::start(&log, &data, TODAY);
    let client = reqwest::blocking::Client::new();
    for (p, html) in pages(configs.len()) {
        let (_, len) = timed_get(&client, &server.url(&p), html);
        assert!(len > 0, "{p} is empty");
        eprintln!("{p:<20} {len:>8} bytes");
    }

    // A report is accepted: the pages of the new data are rendered in the background while
    // the last ones are served, and the new data shows within seconds.
    let cfg = Config::parse(configs[0].as_bytes()).unwrap();
    let week = *open_weeks().last().unwrap();
    let before = body_of(&client, &server.url("/"));
    let program_before = body_of(&client, &server.url("/programs/tool00"));
    upload_all(&server, web::reports(&cfg, 0, &[(week, 1)], 7));
    let accepted = Instant::now();
    let (mut seen, mut program_seen) = (None, None);
    while (seen.is_none() || program_seen.is_none()) && accepted.elapsed() < STALE_BOUND {
        for (p, old, when) in [
            ("/", &before, &mut seen),
            ("/programs/tool00", &program_before, &mut program_seen),
        ] {
            let body = body_of(&client, &server.url(p));
            if when.is_none() && body != *old {
                *when = Some(accepted.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("new data on / after {seen:?}, on /programs/tool00 after {program_seen:?}");
    assert!(
        seen.is_some() && program_seen.is_some(),
        "the pages did not show the accepted report within {STALE_BOUND:?}"
    );
}

/// How long after an accepted report the pages must show it (the server re-renders every
/// 2 s at most; rendering the year takes about a second on a loaded 2-core machine): a
/// generous bound on "eventually", not a speed target.
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
