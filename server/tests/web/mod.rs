//! Fixtures of the web tests: a real config log, the real server binary over loopback, and
//! reports POSTed over HTTP or stored through the store.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{Days, NaiveDate};
use clearcount_config_log::config::Config;
use clearcount_config_log::note::Signer;
use clearcount_config_log::store::LogStore;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub mod year;

pub const ORIGIN: &str = "web.clearcount.example/config";
/// The fixed "today" of every test server: a Wednesday.
pub const TODAY: &str = "2026-11-25";

pub fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// The weeks a report may name on TODAY, oldest first.
pub fn open_weeks() -> Vec<NaiveDate> {
    let first = day("2026-10-26");
    (0..4).map(|i| first + Days::new(7 * i)).collect()
}

/// Config 0 of the browser test: two programs, a count and two categories (one with a
/// hostile description and a link with `&`), one counter without randomized response.
pub const CONFIG0: &str = r#"origin = "web.clearcount.example/config"
sample_rate = 0.5
max_epsilon = 6.0
os = ["linux", "macos", "windows"]
arch = ["x86_64", "aarch64"]

[[program]]
name = "ripgrep"
versions = ">=14.0.0"

[[program.counter]]
name = "invocations"
kind = "count"
buckets = [0, 1, 10, 100, 1000]
epsilon = 2.0
description = "How many times rg ran in the week."
rationale = "Interactive or scripted use?"
owner = "maintainer@example.org"
link = "https://example.org/issues/1"
expires = "2099-06-30"

[[program.counter]]
name = "engine"
kind = "category"
labels = ["default", "pcre2", "other"]
epsilon = 2.0
description = "Which regex engine is used most. <script>alert('x')</script> & \"quotes\""
rationale = "Can pcre2 become optional?"
owner = "maintainer@example.org"
link = "https://example.org/issues/2?a=1&b=2"
expires = "2099-06-30"

[[program]]
name = "fd"
versions = ">=8.0.0"

[[program.counter]]
name = "runs"
kind = "count"
buckets = [0, 10]
description = "Runs in the week."
rationale = "Is fd used daily?"
owner = "maintainer@example.org"
link = "https://example.org/issues/4"
expires = "2099-06-30"
"#;

/// Config 1: `engine` gains a label, the sample rate grows.
pub fn config1() -> String {
    CONFIG0
        .replace(
            r#"labels = ["default", "pcre2", "other"]"#,
            r#"labels = ["default", "pcre2", "fancy", "other"]"#,
        )
        .replace("sample_rate = 0.5", "sample_rate = 0.6")
}

/// Creates a log in `dir` holding `configs` (linted as of 2020-01-01) and publishes its
/// verifier key as `verifier.key`.
pub fn make_log(dir: &Path, configs: &[&str]) -> Signer {
    let signer = Signer::generate(ORIGIN).unwrap();
    let mut log = LogStore::init(dir, &signer).unwrap();
    for c in configs {
        log.append_config(c.as_bytes(), &signer, day("2020-01-01"))
            .unwrap();
    }
    std::fs::write(
        dir.join(clearcount_server::web::config_page::VERIFIER_KEY_FILE),
        format!("{}\n", signer.verifier()),
    )
    .unwrap();
    signer
}

/// Random valid report bodies for config `index` (parsed as `cfg`), one per `(week, n)`.
pub fn reports(cfg: &Config, index: u64, weeks: &[(NaiveDate, usize)], seed: u64) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    let versions = ["14.1.0", "14.1.1", "devel"];
    for &(week, n) in weeks {
        for _ in 0..n {
            let programs: Vec<serde_json::Value> = cfg
                .programs
                .iter()
                .map(|p| {
                    let counters: serde_json::Map<String, serde_json::Value> = p
                        .counters
                        .iter()
                        .map(|c| {
                            let labels = c.report_labels();
                            // Skewed towards the first labels so the charts show a shape.
                            let i = rng
                                .random_range(0..labels.len())
                                .min(rng.random_range(0..labels.len()));
                            (c.name.clone(), labels[i].clone().into())
                        })
                        .collect();
                    let version = if p.name == "fd" {
                        "devel"
                    } else {
                        versions[rng.random_range(0..versions.len())]
                    };
                    serde_json::json!({
                        "name": p.name,
                        "version": version,
                        "os": cfg.os[rng.random_range(0..cfg.os.len())],
                        "arch": cfg.arch[rng.random_range(0..cfg.arch.len())],
                        "counters": counters,
                    })
                })
                .collect();
            let x: f64 = rng.random_range(0.0..cfg.sample_rate);
            out.push(
                serde_json::json!({
                    "format": 1,
                    "week": week.to_string(),
                    "config": { "origin": cfg.origin, "index": index },
                    "x": x,
                    "programs": programs,
                })
                .to_string(),
            );
        }
    }
    out
}

/// A running server binary, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `clearcount-server serve` on a free loopback port with a fixed today.
    pub fn start(log: &Path, data: &Path, today: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clearcount-server"))
            .arg("serve")
            .arg("--log")
            .arg(log)
            .arg("--data")
            .arg(data)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--today")
            .arg(today)
            .env("CLEARCOUNT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start clearcount-server");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line.strip_prefix("listening on ") {
                    let _ = tx.send(a.trim().to_string());
                } else {
                    eprintln!("server: {line}");
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server did not start")
            .parse()
            .unwrap();
        Server { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs every body to `/upload` from a few threads; panics unless every one gets 200.
pub fn upload_all(server: &Server, bodies: Vec<String>) {
    let url = server.url("/upload");
    let chunks: Vec<Vec<String>> = bodies
        .chunks(bodies.len().div_ceil(4).max(1))
        .map(|c| c.to_vec())
        .collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let url = url.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                for b in chunk {
                    let r = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(b)
                        .send()
                        .unwrap();
                    let status = r.status();
                    assert_eq!(status, 200, "{}", r.text().unwrap_or_default());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// GETs `path` with a browser's Accept header; returns status, headers and body.
pub fn get_html(server: &Server, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = reqwest::blocking::Client::new()
        .get(server.url(path))
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().unwrap())
}

/// A server filled with two configs and reports of the open weeks, POSTed over HTTP.
pub struct Filled {
    pub dir: tempfile::TempDir,
    pub server: Server,
    pub weeks: Vec<NaiveDate>,
}

pub fn filled_server() -> Filled {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let c1 = config1();
    make_log(&log, &[CONFIG0, &c1]);
    let server = Server::start(&log, &dir.path().join("data"), TODAY);
    let empty = get_html(&server, "/").2;
    let weeks = open_weeks();
    let cfg0 = Config::parse(CONFIG0.as_bytes()).unwrap();
    let cfg1 = Config::parse(c1.as_bytes()).unwrap();
    // Config 0 in every week, config 1 also in the last two (so the latest week has two
    // config indexes for ripgrep's `engine`).
    let old: Vec<(NaiveDate, usize)> = weeks
        .iter()
        .enumerate()
        .map(|(i, w)| (*w, 30 + 10 * i))
        .collect();
    let new: Vec<(NaiveDate, usize)> = weeks[2..].iter().map(|w| (*w, 25)).collect();
    let mut bodies = reports(&cfg0, 0, &old, 7);
    bodies.extend(reports(&cfg1, 1, &new, 8));
    upload_all(&server, bodies);
    wait_for_pages(&server, &empty);
    Filled { dir, server, weeks }
}

/// Waits until the dashboard, re-rendered in the background after reports were accepted,
/// differs from `before` and then stays the same for longer than the server's revalidation
/// period (every page of a snapshot is rendered in the same pass, `/` first).
pub fn wait_for_pages(server: &Server, before: &str) {
    let quiet = clearcount_server::web::REVALIDATE + Duration::from_millis(1500);
    let start = std::time::Instant::now();
    let mut last = before.to_string();
    let mut since = None::<std::time::Instant>;
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the dashboard did not settle"
        );
        let now = get_html(server, "/").2;
        if now != last {
            last = now;
            since = Some(std::time::Instant::now());
        } else if since.is_some_and(|t| t.elapsed() > quiet) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
