//! A year of weekly data of 10 programs with 64 counters each, stored through the store: the
//! data set of the page test (`tests/web_perf.rs`) and the page benchmark
//! (`benches/web_pages.rs`).

use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use clearcount_config_log::config::Config;
use clearcount_server::storage::Db;
use clearcount_server::validate::{Accepted, ProgramRow, Slot, encode_labels};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::ORIGIN;

pub const PROGRAMS: usize = 10;
pub const COUNTERS: usize = 64;
pub const WEEKS: u64 = 52;
/// Reports per week per config entry.
pub const REPORTS: usize = 40;
/// Programs per config entry (a config must fit in 65,535 bytes).
pub const PER_CONFIG: usize = 4;

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

pub fn configs() -> Vec<String> {
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
pub fn fill(data: &std::path::Path, configs: &[String], today: NaiveDate) -> u64 {
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
                            let labels: Vec<Slot> = p
                                .counters
                                .iter()
                                .map(|c| {
                                    let k = c.report_labels().len();
                                    Slot::Label(
                                        rng.random_range(0..k).min(rng.random_range(0..k)) as u16
                                    )
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
                        key: format!("perf/{n}"),
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

pub fn timed_get(client: &reqwest::blocking::Client, url: &str, html: bool) -> (Duration, usize) {
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

/// The pages of the year: the dashboard, every program, every config (HTML), and the latest
/// config as HTML and as TOML (`true`: asked for as HTML).
pub fn pages(configs: usize) -> Vec<(String, bool)> {
    let mut paths: Vec<(String, bool)> = vec![("/".into(), true)];
    for p in 0..PROGRAMS {
        paths.push((format!("/programs/tool{p:02}"), true));
    }
    for i in 0..configs {
        paths.push((format!("/config/{i}"), true));
    }
    paths.push(("/config".into(), true));
    paths.push(("/config".into(), false));
    paths
}

/// A log of the year's configs in `log` and the year's reports in `data`; returns the configs.
pub fn make_year(log: &std::path::Path, data: &std::path::Path) -> Vec<String> {
    let configs = configs();
    for c in &configs {
        assert!(c.len() < 65_535, "config of {} bytes", c.len());
    }
    let refs: Vec<&str> = configs.iter().map(|s| s.as_str()).collect();
    super::make_log(log, &refs);
    let t = Instant::now();
    let reports = fill(data, &configs, super::day(super::TODAY));
    eprintln!(
        "stored {reports} reports ({WEEKS} weeks, {PROGRAMS} programs x {COUNTERS} counters) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    configs
}
