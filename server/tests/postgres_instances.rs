//! Two server instances on different ports share one PostgreSQL database (started at the same
//! moment, so schema creation races), take interleaved uploads and publish identical data.

mod common;

use common::*;

#[test]
fn two_instances_share_one_database() {
    let Some(db) = pg("instances") else { return };
    let root = tempdir();
    let (log_dir, _) = paths(root.path());
    make_log(&log_dir, &[CONFIG0, &config1()]);
    let (la, lb) = (log_dir.clone(), log_dir.clone());
    let (ua, ub) = (db.url.clone(), db.url.clone());
    let (da, dbb) = (root.path().join("data-a"), root.path().join("data-b"));
    let ta = std::thread::spawn(move || Server::start(&la, &da, Some(&ua), TODAY));
    let tb = std::thread::spawn(move || Server::start(&lb, &dbb, Some(&ub), TODAY));
    let (a, b) = (ta.join().unwrap(), tb.join().unwrap());
    assert_ne!(a.addr, b.addr);

    let c = client();
    let labels = ["0", "1", "10", "100", "1000"];
    let engines = ["default", "pcre2", "other"];
    let mut n = 0;
    for i in 0..300usize {
        let server = if i % 2 == 0 { &a } else { &b };
        let week = ["2026-11-16", "2026-11-09"][i % 3 % 2];
        let (index, x) = if i % 5 == 0 {
            (1, 0.55)
        } else {
            (0, 0.001 * i as f64)
        };
        let engine = if index == 1 && i % 10 == 0 {
            "fancy"
        } else {
            engines[i % 3]
        };
        let body = report(
            index,
            week,
            x + 1e-9 * i as f64,
            labels[i % 5],
            engine,
            ["0", "10"][i % 2],
        );
        let (status, text) = post(&c, server, body);
        assert_eq!(status, 200, "{text}");
        n += 1;
    }
    for path in [
        "/data/aggregates/2026-11-16.json",
        "/data/aggregates/2026-11-16.csv",
        "/data/aggregates/2026-11-09.json",
        "/data/aggregates/2026-11-09.csv",
        "/data/",
    ] {
        let ra = c.get(a.url(path)).send().unwrap().text().unwrap();
        let rb = c.get(b.url(path)).send().unwrap().text().unwrap();
        assert_eq!(ra, rb, "{path} differs between instances");
    }
    let agg: clearcount_server::aggregate::WeekAggregates = c
        .get(a.url("/data/aggregates/2026-11-16.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(agg.programs.iter().any(|p| p.config_index == 1));
    a.stop();
    b.stop();
    assert_eq!(stored_bodies(root.path(), Some(&db.url)).len(), n);
}
