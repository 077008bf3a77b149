//! Durability: uploads under load, the server killed with SIGKILL (or stopped with SIGTERM);
//! after a restart every report that got a 200 is stored exactly once. SQLite and PostgreSQL.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clearcount_server::report::{canonical_json, parse};
use common::*;

const LABELS: [&str; 5] = ["0", "1", "10", "100", "1000"];

/// The load comes from one address as fast as it can: no per-source upload limit.
const LOAD: &[&str] = &["--upload-rate", "0"];

/// Uploads from `threads` threads until `stop` is set or the server is gone; returns the
/// canonical JSON of every acknowledged report.
fn load(
    server_url: String,
    threads: usize,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (url, stop, acked) = (server_url.clone(), stop.clone(), acked.clone());
                std::thread::spawn(move || {
                    let c = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(10))
                        .build()
                        .unwrap();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let x = rand::random::<f64>() * 0.5;
                        let body =
                            report(0, WEEK, x, LABELS[(i as usize + t) % 5], "default", "10");
                        match c
                            .post(format!("{url}/upload"))
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                        {
                            Ok(r) if r.status().as_u16() == 200 => {
                                let canon = canonical_json(&parse(body.as_bytes()).unwrap());
                                acked.lock().unwrap().push(canon);
                            }
                            Ok(r) => assert!(
                                r.status().is_server_error(),
                                "a valid report was refused: {}",
                                r.status()
                            ),
                            Err(_) => break, // the server is gone
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
    })
}

fn check_exactly_once(acked: &[String], stored: &[String]) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for s in stored {
        *counts.entry(s.as_str()).or_default() += 1;
    }
    assert!(counts.values().all(|&n| n == 1), "a report is stored twice");
    let missing = acked
        .iter()
        .filter(|a| !counts.contains_key(a.as_str()))
        .count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged reports are lost",
        acked.len()
    );
}

fn kill_under_load(database: Option<&str>) {
    let root = tempdir();
    let (log_dir, data) = paths(root.path());
    make_log(&log_dir, &[CONFIG0]);
    let mut all_acked = Vec::new();
    for round in 0..3 {
        let server = Server::start_with(&log_dir, &data, database, TODAY, LOAD);
        let stop = Arc::new(AtomicBool::new(false));
        let loader = load(server.url(""), 32, stop.clone());
        std::thread::sleep(Duration::from_millis(700 + 300 * round));
        server.kill(); // SIGKILL in the middle of the load
        stop.store(true, Ordering::Relaxed);
        let acked = loader.join().unwrap();
        assert!(
            acked.len() > 50,
            "round {round}: only {} uploads acknowledged",
            acked.len()
        );
        all_acked.extend(acked);
    }
    // Restart and make sure the server still works on the recovered database.
    let server = Server::start_with(&log_dir, &data, database, TODAY, LOAD);
    assert_eq!(
        post(&client(), &server, report(0, WEEK, 0.01, "0", "other", "0")).0,
        200
    );
    server.stop();
    let stored = stored_bodies(&data, database);
    check_exactly_once(&all_acked, &stored);
    eprintln!("{} acknowledged, {} stored", all_acked.len(), stored.len());
}

fn sigterm_under_load(database: Option<&str>) {
    let root = tempdir();
    let (log_dir, data) = paths(root.path());
    make_log(&log_dir, &[CONFIG0]);
    let server = Server::start_with(&log_dir, &data, database, TODAY, LOAD);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(server.url(""), 32, stop.clone());
    std::thread::sleep(Duration::from_millis(800));
    let out = server.stop(); // SIGTERM: must exit 0 after finishing in-flight uploads
    stop.store(true, Ordering::Relaxed);
    let acked = loader.join().unwrap();
    assert!(out.contains("stopped:"), "{out}");
    let stored = stored_bodies(&data, database);
    check_exactly_once(&acked, &stored);
}

#[test]
fn sigkill_sqlite() {
    kill_under_load(None);
}

#[test]
fn sigkill_postgres() {
    if let Some(db) = pg("sigkill") {
        kill_under_load(Some(&db.url));
    }
}

#[test]
fn sigterm_sqlite() {
    sigterm_under_load(None);
}

#[test]
fn sigterm_postgres() {
    if let Some(db) = pg("sigterm") {
        sigterm_under_load(Some(&db.url));
    }
}
