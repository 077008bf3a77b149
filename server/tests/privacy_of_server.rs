//! The server keeps no client address or user agent: uploads (good and bad) and reads come
//! from 127.0.0.77 with a distinctive user agent; then the server's captured stdout/stderr,
//! every file of its data directory (SQLite database, WAL) and every published file (fetched
//! over HTTP and written by `export`) are searched for either: never found. Published raw
//! reports are canonical JSON, sorted by content, not by arrival.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;

use common::*;

const PEER: &str = "127.0.0.77";
const AGENT: &str = "fingerprint-agent/7.7.7";

fn files_containing(dir: &Path, needle: &[u8], found: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_containing(&p, needle, found);
        } else {
            let bytes = std::fs::read(&p).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(p.display().to_string());
            }
        }
    }
}

#[test]
fn no_address_or_agent_is_kept_anywhere() {
    let root = tempdir();
    let (log_dir, data) = paths(root.path());
    make_log(&log_dir, &[CONFIG0]);
    let peer_client = reqwest::blocking::Client::builder()
        .local_address(IpAddr::V4(PEER.parse::<Ipv4Addr>().unwrap()))
        .user_agent(AGENT)
        .build()
        .unwrap();

    // Day one: uploads from the distinct address, sent with pretty-printed JSON.
    let server = Server::start(&log_dir, &data, None, TODAY);
    let mut sent = Vec::new();
    for i in 0..40 {
        let body = report(
            0,
            WEEK,
            0.4 - 0.01 * f64::from(i),
            ["0", "1", "10"][i as usize % 3],
            "default",
            "0",
        );
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        )
        .unwrap();
        let r = peer_client
            .post(server.url("/upload"))
            .header("content-type", "application/json")
            .body(pretty)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        sent.push(body);
    }
    for bad in ["{", "{\"format\":9}", "[]"] {
        let r = peer_client
            .post(server.url("/upload"))
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .unwrap();
        assert!(r.status().is_client_error());
    }
    for path in [
        "/healthz",
        "/config",
        "/config/0",
        "/log/checkpoint",
        "/data/",
        "/nope",
    ] {
        peer_client.get(server.url(path)).send().unwrap();
    }
    let out1 = server.stop();

    // Day two: the first day is complete and published.
    let server = Server::start(&log_dir, &data, None, "2026-11-26");
    let published = root.path().join("published");
    std::fs::create_dir_all(&published).unwrap();
    let ndjson = peer_client
        .get(server.url(&format!("/data/reports/{TODAY}.ndjson")))
        .send()
        .unwrap();
    assert_eq!(ndjson.status().as_u16(), 200);
    let ndjson = ndjson.text().unwrap();
    let lines: Vec<&str> = ndjson.lines().collect();
    assert_eq!(lines.len(), sent.len());
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "raw reports are published sorted by content");
    for l in &lines {
        assert!(
            !l.contains(' ') && !l.contains('\n'),
            "canonical, not the client's formatting: {l}"
        );
    }
    std::fs::write(published.join("reports.ndjson"), &ndjson).unwrap();
    for path in [
        format!("/data/aggregates/{WEEK}.json"),
        format!("/data/aggregates/{WEEK}.csv"),
        "/data/".into(),
    ] {
        let r = peer_client.get(server.url(&path)).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        std::fs::write(published.join(path.replace('/', "_")), r.bytes().unwrap()).unwrap();
    }
    // Today's reports are not published before the day ends.
    assert_eq!(
        peer_client
            .get(server.url("/data/reports/2026-11-26.ndjson"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    let out2 = server.stop();

    let exported = root.path().join("exported");
    let export = Command::new(bin())
        .args(["export", "--today", "2026-11-26", "--log"])
        .arg(&log_dir)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&exported)
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(exported.join(format!("reports/{TODAY}.ndjson"))).unwrap(),
        ndjson
    );

    let logs = format!(
        "{out1}{out2}{}{}",
        String::from_utf8_lossy(&export.stdout),
        String::from_utf8_lossy(&export.stderr)
    );
    assert!(logs.contains("listening on"), "output was captured: {logs}");
    for needle in [PEER, AGENT] {
        assert!(
            !logs.contains(needle),
            "{needle} in the server's output:\n{logs}"
        );
        let mut found = Vec::new();
        for dir in [&data, &published, &exported] {
            files_containing(dir, needle.as_bytes(), &mut found);
        }
        assert!(found.is_empty(), "{needle} found in {found:?}");
    }
    // The searched places are not empty: the database holds the reports.
    let mut found = Vec::new();
    files_containing(&data, b"ripgrep", &mut found);
    assert!(!found.is_empty());
}
