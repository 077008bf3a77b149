//! The dashboard and the config page in a real headless Chromium, driven over WebDriver
//! (chromedriver + fantoccini): the charts render with one bar and one whisker per label, the
//! data tables match the published JSON aggregates, the browser logs no console error and
//! requests nothing from another host, the pages fit a phone's width, and screenshots are
//! saved under `target/tmp/web-screenshots/` (and into `docs/screenshots/` when
//! `CLEARCOUNT_UPDATE_SCREENSHOTS=1`).
//!
//! Without Chromium the test says it is skipped, unless `CI=true`, where it fails.

mod web;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clearcount_privacy::estimate::Estimator;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use scraper::{Html, Selector};
use serde_json::{Value, json};
use web::*;

/// The labels the dashboard shows: a count counter's buckets as ranges (`10` followed by `100`
/// is `10-99`; the last is `1000+`), other labels as they are.
fn shown_labels(counter: &Value) -> Vec<String> {
    let labels: Vec<&str> = counter["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["label"].as_str().unwrap())
        .collect();
    if counter["kind"] != "count" {
        return labels.iter().map(|l| l.to_string()).collect();
    }
    let bounds: Vec<u64> = labels.iter().map(|l| l.parse().unwrap()).collect();
    (0..bounds.len())
        .map(|i| match bounds.get(i + 1) {
            Some(&next) if next == bounds[i] + 1 => bounds[i].to_string(),
            Some(&next) => format!("{}-{}", bounds[i], next - 1),
            None => format!("{}+", bounds[i]),
        })
        .collect()
}

fn find(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_driver(chromedriver: &Path) -> (Driver, u16) {
    let port = free_port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (driver, port)
}

/// chromedriver's log endpoint (not in the W3C protocol): browser console or performance log.
#[derive(Debug)]
struct GetLog(&'static str);

impl WebDriverCompatibleCommand for GetLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }
    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({ "type": self.0 }).to_string()),
        )
    }
}

async fn log_entries(c: &Client, kind: &'static str) -> Vec<Value> {
    match c.issue_cmd(GetLog(kind)).await.unwrap() {
        Value::Array(a) => a,
        other => panic!("unexpected log answer {other}"),
    }
}

/// Fails on any console message of level SEVERE or WARNING (CSP violations are errors).
async fn assert_no_console_errors(c: &Client, page: &str) {
    let bad: Vec<Value> = log_entries(c, "browser")
        .await
        .into_iter()
        .filter(|e| matches!(e["level"].as_str(), Some("SEVERE") | Some("WARNING")))
        .collect();
    assert!(bad.is_empty(), "{page}: console errors {bad:?}");
}

/// Every URL the browser requested since the last call (from the DevTools network events).
async fn requested_urls(c: &Client) -> Vec<String> {
    log_entries(c, "performance")
        .await
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e["message"].as_str()?).ok())
        .filter(|m| m["message"]["method"] == "Network.requestWillBeSent")
        .filter_map(|m| {
            m["message"]["params"]["request"]["url"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

async fn only_own_host(c: &Client, origin: &str, page: &str) {
    let urls = requested_urls(c).await;
    assert!(
        !urls.is_empty(),
        "{page}: no request seen in the performance log"
    );
    // Browser-internal pages (the first blank tab) are not requests to a host.
    let internal = |u: &str| {
        ["chrome:", "chrome-", "about:", "data:"]
            .iter()
            .any(|s| u.starts_with(s))
    };
    for u in urls.iter().filter(|u| !internal(u)) {
        assert!(
            u.starts_with(origin),
            "{page}: request to another host: {u}"
        );
    }
    // The same from the page's own resource timing: nothing but the document.
    let resources = c
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(resources, json!([]), "{page}: loaded sub-resources");
}

async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.unwrap().len()
}

fn screenshot_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots")];
    if std::env::var("CLEARCOUNT_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots"));
    }
    dirs
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    for d in screenshot_dirs() {
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), &png).unwrap();
    }
}

/// The page fits the window: no sideways scrolling of the page itself.
async fn fits_width(c: &Client, page: &str) {
    let v = c
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth]",
            vec![],
        )
        .await
        .unwrap();
    let (sw, iw) = (v[0].as_f64().unwrap(), v[1].as_f64().unwrap());
    assert!(sw <= iw + 1.0, "{page}: {sw}px wide in a {iw}px window");
}

/// Checks the program page of ripgrep against the week's JSON aggregates.
async fn check_program_page(c: &Client, base: &str, week: &str) {
    let agg: Value = reqwest::get(format!("{base}/data/aggregates/{week}.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries: Vec<&Value> = agg["programs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["program"] == "ripgrep")
        .collect();
    assert_eq!(
        entries.len(),
        2,
        "the latest week has reports under both configs"
    );
    let html = c.source().await.unwrap();
    let doc = Html::parse_document(&html);
    let sel = |s: &str| Selector::parse(s).unwrap();
    // Group each counter's entries by definition (kind, mechanism, epsilon, labels): one chart
    // per definition, from the counts pooled over its config indexes.
    let mut groups: Vec<(String, Vec<u64>, Vec<&Value>)> = Vec::new();
    for p in &entries {
        let index = p["config_index"].as_u64().unwrap();
        for counter in p["counters"].as_array().unwrap() {
            let name = counter["counter"].as_str().unwrap().to_string();
            let same = |other: &Value| {
                ["counter", "kind", "mechanism", "epsilon"]
                    .iter()
                    .all(|k| other[k] == counter[k])
                    && other["labels"].as_array().unwrap().len()
                        == counter["labels"].as_array().unwrap().len()
                    && other["labels"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .zip(counter["labels"].as_array().unwrap())
                        .all(|(a, b)| a["label"] == b["label"])
            };
            match groups.iter_mut().find(|(_, _, parts)| same(parts[0])) {
                Some((_, indexes, parts)) => {
                    indexes.push(index);
                    parts.push(counter);
                }
                None => groups.push((name, vec![index], vec![counter])),
            }
        }
    }
    let mut charts = 0;
    for (name, indexes, parts) in &groups {
        let labels = parts[0]["labels"].as_array().unwrap();
        let list: Vec<String> = indexes.iter().map(u64::to_string).collect();
        let fig = format!(
            "figure.latest[data-counter='{name}'][data-config-index='{}']",
            list.join(" ")
        );
        // Rendered by the browser: one bar and one whisker per label, with a size.
        assert_eq!(
            count(c, &format!("{fig} svg rect.bar")).await,
            labels.len(),
            "{fig}"
        );
        assert_eq!(
            count(c, &format!("{fig} svg path.whisker")).await,
            labels.len(),
            "{fig}"
        );
        let width = c
            .execute(
                "return document.querySelector(arguments[0]).getBoundingClientRect().width",
                vec![json!(format!("{fig} svg"))],
            )
            .await
            .unwrap();
        assert!(
            width.as_f64().unwrap() > 100.0,
            "{fig}: chart is {width} px wide"
        );
        // The table beneath says what the JSON says, pooled: the counts added up over the
        // config indexes and estimated once.
        let observed: Vec<u64> = (0..labels.len())
            .map(|i| {
                parts
                    .iter()
                    .map(|p| p["labels"][i]["observed"].as_u64().unwrap())
                    .sum()
            })
            .collect();
        let estimates = Estimator::new(labels.len(), parts[0]["epsilon"].as_f64(), 0.95)
            .unwrap()
            .estimate_counts(&observed)
            .unwrap();
        if parts.len() == 1 {
            for (l, e) in labels.iter().zip(&estimates) {
                assert_eq!(l["estimate"].as_f64().unwrap(), e.estimate);
            }
        }
        let rows: Vec<Vec<String>> = doc
            .select(&sel(&format!("{fig} table.estimates tbody tr")))
            .map(|tr| tr.child_elements().map(|td| td.text().collect()).collect())
            .collect();
        let pct = |v: f64| format!("{:.1}%", v * 100.0);
        let shown = shown_labels(parts[0]);
        let want: Vec<Vec<String>> = estimates
            .iter()
            .zip(shown)
            .map(|(e, label)| {
                vec![
                    label,
                    pct(e.estimate),
                    pct(e.ci_low),
                    pct(e.ci_high),
                    pct(e.raw_estimate),
                    e.observed.to_string(),
                    e.reports.to_string(),
                ]
            })
            .collect();
        assert_eq!(rows, want, "{fig}");
        charts += 1;
    }
    // `invocations` is defined the same way under both configs: one pooled chart; `engine`
    // changed: one chart per config.
    assert_eq!(
        charts, 3,
        "invocations pooled, engine under each of two configs"
    );
    assert_eq!(
        count(c, "figure.latest[data-counter='invocations']").await,
        1
    );
    // One line per label in each history chart (each week shows the definition with the most
    // reports: config 0 here, whose `engine` has 3 labels + none), with its confidence band; a
    // breakdown chart per field.
    assert_eq!(
        count(c, "figure.history[data-counter='engine'] svg path.series").await,
        4
    );
    assert_eq!(
        count(
            c,
            "figure.history[data-counter='invocations'] svg path.series"
        )
        .await,
        5
    );
    assert!(count(c, "figure.history svg path.band").await >= 9);
    assert_eq!(count(c, "figure.breakdown svg").await, 3);
    // The version breakdown adds up to the week's reports.
    let total: u64 = entries.iter().map(|p| p["reports"].as_u64().unwrap()).sum();
    let versions: u64 = doc
        .select(&sel("#b-versions-data tbody td"))
        .map(|td| td.text().collect::<String>().parse::<u64>().unwrap())
        .sum();
    assert_eq!(versions, total);
}

#[test]
fn dashboard_and_config_in_headless_chromium() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let chromium = find(
        "CHROMIUM",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
    );
    let chromedriver = find("CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        assert!(!ci, "CI=true but chromium or chromedriver is missing");
        eprintln!(
            "SKIPPED: chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let f = filled_server();
    let base = f.server.url("");
    let last_week = f.weeks.last().unwrap().to_string();
    let (_driver, port) = start_driver(&chromedriver);
    let profile = tempfile::tempdir().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        caps.insert(
            "goog:loggingPrefs".into(),
            json!({ "browser": "ALL", "performance": "ALL" }),
        );
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session");
        c.set_window_size(1280, 1000).await.unwrap();

        // The dashboard.
        c.goto(&format!("{base}/")).await.unwrap();
        assert_eq!(
            c.title().await.unwrap(),
            "clearcount dashboard · clearcount"
        );
        for pi in 0..2 {
            assert_eq!(
                count(&c, &format!("#p{pi}-weeks rect.count")).await,
                f.weeks.len()
            );
        }
        assert_no_console_errors(&c, "/").await;
        only_own_host(&c, &base, "/").await;
        screenshot(&c, "dashboard.png").await;

        // A program page.
        c.goto(&format!("{base}/programs/ripgrep")).await.unwrap();
        check_program_page(&c, &base, &last_week).await;
        assert_no_console_errors(&c, "/programs/ripgrep").await;
        only_own_host(&c, &base, "/programs/ripgrep").await;
        c.set_window_size(1280, 2200).await.unwrap();
        screenshot(&c, "program.png").await;

        // The config review page (the browser's own Accept header picks the HTML).
        c.set_window_size(1280, 1400).await.unwrap();
        c.goto(&format!("{base}/config")).await.unwrap();
        assert_eq!(count(&c, "article.counter").await, 3);
        assert_eq!(count(&c, "section.entry").await, 2);
        let verify = c
            .find(Locator::Css("pre.verify"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            verify.starts_with(&format!("clearcount-log verify {base}/log --key {ORIGIN}+")),
            "{verify}"
        );
        assert_no_console_errors(&c, "/config").await;
        only_own_host(&c, &base, "/config").await;
        screenshot(&c, "config.png").await;

        // Phone-sized: nothing wider than the screen, charts scaled down.
        c.set_window_size(390, 844).await.unwrap();
        for page in ["/", "/programs/ripgrep", "/config"] {
            c.goto(&format!("{base}{page}")).await.unwrap();
            fits_width(&c, page).await;
            assert_no_console_errors(&c, page).await;
        }
        screenshot(&c, "config-phone.png").await;
        c.goto(&format!("{base}/programs/ripgrep")).await.unwrap();
        screenshot(&c, "program-phone.png").await;

        // No cookie was set by any page.
        assert!(c.get_all_cookies().await.unwrap().is_empty());
        c.close().await.unwrap();
    });
}
