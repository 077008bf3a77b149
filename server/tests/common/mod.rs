//! Shared helpers of the server's integration tests: real logs, the real server binary over
//! loopback, and per-test PostgreSQL databases.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use clearcount_config_log::note::Signer;
use clearcount_config_log::store::LogStore;

pub const ORIGIN: &str = "test.clearcount.example/config";
/// The fixed "today" of every test server: a Wednesday.
pub const TODAY: &str = "2026-11-25";
/// The most recent complete week before TODAY.
pub const WEEK: &str = "2026-11-16";

pub fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Config 0: ripgrep (two counters with RR, one expired on 2026-10-29) and fd (no RR).
pub const CONFIG0: &str = r#"origin = "test.clearcount.example/config"
sample_rate = 0.5
max_epsilon = 8.0
os = ["linux", "macos", "windows"]
arch = ["x86_64", "aarch64"]

[[program]]
name = "ripgrep"
versions = ">=14.0.0"

[[program.counter]]
name = "invocations"
kind = "count"
buckets = [0, 1, 10, 100, 1000]
epsilon = 1.0
description = "How many times rg ran in the week."
rationale = "Interactive or scripted use?"
owner = "maintainer@example.org"
link = "https://example.org/issues/1"
expires = "2099-06-30"

[[program.counter]]
name = "engine"
kind = "category"
labels = ["default", "pcre2", "other"]
epsilon = 1.0
description = "Which regex engine is used most."
rationale = "Can pcre2 become optional?"
owner = "maintainer@example.org"
link = "https://example.org/issues/2"
expires = "2099-06-30"

[[program.counter]]
name = "old"
kind = "category"
labels = ["a", "b"]
epsilon = 0.5
description = "A finished experiment."
rationale = "Was it used?"
owner = "maintainer@example.org"
link = "https://example.org/issues/3"
expires = "2026-10-29"

[[program]]
name = "fd"
versions = ["8.7.0", "8.7.1"]

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

/// Config 1: like config 0 but `engine` changed its definition (epsilon and a label).
pub fn config1() -> String {
    CONFIG0
        .replace(
            r#"labels = ["default", "pcre2", "other"]
epsilon = 1.0"#,
            r#"labels = ["default", "pcre2", "fancy", "other"]
epsilon = 2.0"#,
        )
        .replace("sample_rate = 0.5", "sample_rate = 0.6")
}

/// Creates a log in `dir` holding `configs` (linted as of 2020-01-01 so expiry dates pass).
pub fn make_log(dir: &Path, configs: &[&str]) -> (Signer, LogStore) {
    let signer = Signer::generate(ORIGIN).unwrap();
    let mut log = LogStore::init(dir, &signer).unwrap();
    for c in configs {
        log.append_config(c.as_bytes(), &signer, day("2020-01-01"))
            .unwrap();
    }
    (signer, log)
}

/// A valid report body for config 0 (or 1), week, x and labels.
pub fn report(index: u64, week: &str, x: f64, inv: &str, engine: &str, runs: &str) -> String {
    format!(
        r#"{{"format":1,"week":"{week}","config":{{"origin":"{ORIGIN}","index":{index}}},"x":{x},"programs":[{{"name":"ripgrep","version":"14.1.0","os":"linux","arch":"x86_64","counters":{{"invocations":"{inv}","engine":"{engine}"}}}},{{"name":"fd","version":"devel","os":"macos","arch":"aarch64","counters":{{"runs":"{runs}"}}}}]}}"#
    )
}

/// A running server binary whose stdout and stderr are captured.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub output: Arc<Mutex<String>>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_clearcount-server")
}

fn capture(
    r: impl std::io::Read + Send + 'static,
    out: Arc<Mutex<String>>,
    tx: Option<std::sync::mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &tx {
                let _ = tx.send(line.clone());
            }
            let mut o = out.lock().unwrap();
            o.push_str(&line);
            o.push('\n');
        }
    });
}

impl Server {
    /// Starts `clearcount-server serve` on a free loopback port.
    pub fn start(log: &Path, data: &Path, database: Option<&str>, today: &str) -> Server {
        Server::start_with(log, data, database, today, &[])
    }

    pub fn start_with(
        log: &Path,
        data: &Path,
        database: Option<&str>,
        today: &str,
        extra: &[&str],
    ) -> Server {
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .arg("--log")
            .arg(log)
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--today", today])
            .args(extra);
        if let Some(db) = database {
            cmd.arg("--database").arg(db);
        }
        Server::spawn(cmd)
    }

    /// Starts `clearcount-server serve` with the given arguments under a soft limit of
    /// `files` open files (set by the shell before it becomes the server).
    pub fn start_with_file_limit(files: u64, args: &[&std::ffi::OsStr]) -> Server {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
            .arg(bin())
            .arg("serve")
            .args(args);
        Server::spawn(cmd)
    }

    /// Spawns `cmd` (a server) with captured output and waits for its address.
    pub fn spawn(mut cmd: Command) -> Server {
        cmd.env_remove("CLEARCOUNT_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("start clearcount-server");
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        capture(child.stdout.take().unwrap(), output.clone(), None);
        capture(child.stderr.take().unwrap(), output.clone(), Some(tx));
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("listening on ") {
                        break a.parse().unwrap();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("server did not start: {}", output.lock().unwrap());
                }
            }
        };
        Server {
            child,
            addr,
            output,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "server exited with {status}: {}",
                    self.output()
                );
                break;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(50));
        self.output()
    }

    /// SIGKILL.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output()
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub fn post(
    c: &reqwest::blocking::Client,
    s: &Server,
    body: impl Into<reqwest::blocking::Body>,
) -> (u16, String) {
    let r = c
        .post(s.url("/upload"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// Runs an async block on a fresh runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The bodies stored in the database (SQLite in `data` or PostgreSQL at `url`).
pub fn stored_bodies(data: &Path, url: Option<&str>) -> Vec<String> {
    block_on(async {
        let db = clearcount_server::storage::Db::connect(url, data)
            .await
            .unwrap();
        let mut out = Vec::new();
        for (d, _) in db.days().await.unwrap() {
            out.extend(db.reports_of_day(d).await.unwrap());
        }
        let n = db.count_reports().await.unwrap();
        assert_eq!(n as usize, out.len());
        db.close().await;
        out
    })
}

/// A PostgreSQL database of its own for one test, dropped at the end.
pub struct PgDb {
    pub url: String,
    admin: String,
    name: String,
}

/// A fresh database, or `None` (with a note) when CLEARCOUNT_TEST_POSTGRES is unset. With
/// CI=true an unset variable fails the test instead.
pub fn pg(test: &str) -> Option<PgDb> {
    let Ok(admin) = std::env::var("CLEARCOUNT_TEST_POSTGRES") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true but CLEARCOUNT_TEST_POSTGRES is unset: PostgreSQL tests cannot be skipped in CI"
            );
        }
        eprintln!(
            "SKIPPED {test}: set CLEARCOUNT_TEST_POSTGRES=postgres://... to run it against PostgreSQL"
        );
        return None;
    };
    let name = format!(
        "cc_{}_{}_{}",
        test,
        std::process::id(),
        rand::random::<u32>()
    );
    block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    });
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin.clone());
    Some(PgDb {
        url: format!("{base}/{name}"),
        admin,
        name,
    })
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        block_on(async move {
            use sqlx::Connection;
            if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await;
                let _ = c.close().await;
            }
        });
    }
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn paths(root: &Path) -> (PathBuf, PathBuf) {
    (root.join("log"), root.join("data"))
}
