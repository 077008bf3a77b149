//! Helpers for clearcount's end-to-end tests: build and start the real binaries over loopback,
//! make config logs, and serve tampered logs or misbehaving upload endpoints.

pub mod e2e;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use clearcount_config_log::note::Signer;
use clearcount_config_log::store::LogStore;

/// The origin (key name) of every test log.
pub const ORIGIN: &str = "test.clearcount.example/config";

/// A config for the example tool `greet` (counters `invocations`, `names`, `style`), with
/// sample rate 1 so that every report is sent.
pub fn greet_config(sample_rate: f64) -> String {
    format!(
        r#"origin = "{ORIGIN}"
sample_rate = {sample_rate:?}
max_epsilon = 8.0
os = ["linux", "macos", "windows"]
arch = ["x86_64", "aarch64"]

[[program]]
name = "greet"
versions = ">=0.1.0"

[[program.counter]]
name = "invocations"
kind = "count"
buckets = [0, 1, 2, 5, 10, 100]
epsilon = 1.0
description = "How many times greet ran in the week."
rationale = "Is greet used interactively or in scripts?"
owner = "maintainer@example.org"
link = "https://example.org/issues/1"
expires = "2099-06-30"

[[program.counter]]
name = "style"
kind = "category"
labels = ["plain", "loud", "other"]
epsilon = 1.0
description = "Plain or loud greetings."
rationale = "Can --loud be removed?"
owner = "maintainer@example.org"
link = "https://example.org/issues/2"
expires = "2099-06-30"
"#
    )
}

/// Parses `YYYY-MM-DD`.
pub fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a YYYY-MM-DD day")
}

/// A fresh signer for the test origin.
pub fn signer() -> Signer {
    Signer::generate(ORIGIN).expect("generate a signer")
}

/// Creates a log in `dir` signed by `signer` holding `configs` (linted as of 2020-01-01).
pub fn make_log(dir: &Path, signer: &Signer, configs: &[&str]) -> LogStore {
    let mut log = LogStore::init(dir, signer).expect("init log");
    for c in configs {
        log.append_config(c.as_bytes(), signer, day("2020-01-01"))
            .expect("append config");
    }
    log
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let t = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).expect("copy file");
        }
    }
}

fn target_profile_dir() -> PathBuf {
    // .../target/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target profile directory")
        .to_path_buf()
}

static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();

/// Which features [`build`] builds with.
enum Features {
    /// The default features and these (comma-separated).
    With(&'static str),
    /// `--no-default-features`, in a target directory of its own (`target/no-default-features`),
    /// since `cargo test --workspace` builds the same targets with the workspace's features.
    NoDefault,
}

/// Returns a binary of the workspace in the profile of the running test, building it with
/// `cargo build -p PACKAGE (--bin NAME | --example NAME) [--features ...]` when it is missing
/// (`cargo test --workspace` builds every binary before the tests run; examples may be
/// missing). Set `CLEARCOUNT_TESTS_REBUILD=1` to rebuild once per test process anyway.
fn build(package: &str, kind: &str, name: &str, features: Features) -> PathBuf {
    let map = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    let no_default = matches!(features, Features::NoDefault);
    let key = format!("{package}/{kind}/{name}/{no_default}");
    if let Some(p) = map.get(&key) {
        return p.clone();
    }
    let mut dir = target_profile_dir();
    if no_default {
        let profile = dir.file_name().expect("profile").to_owned();
        dir = dir
            .parent()
            .expect("target directory")
            .join("no-default-features")
            .join(profile);
    }
    let path = if kind == "--example" {
        dir.join("examples").join(name)
    } else {
        dir.join(name)
    };
    if path.exists() && std::env::var_os("CLEARCOUNT_TESTS_REBUILD").is_none() {
        map.insert(key, path.clone());
        return path;
    }
    let release = dir.file_name().is_some_and(|n| n == "release");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-q", "-p", package, kind, name]);
    match features {
        Features::With("") => {}
        Features::With(f) => {
            cmd.args(["--features", f]);
        }
        Features::NoDefault => {
            cmd.arg("--no-default-features");
        }
    }
    if release {
        cmd.arg("--release");
    }
    if let Some(t) = dir.parent() {
        cmd.env("CARGO_TARGET_DIR", t);
    }
    let st = cmd.status().expect("run cargo build");
    assert!(st.success(), "building {key} failed");
    map.insert(key, path.clone());
    path
}

/// The `clearcount-server` binary.
pub fn server_bin() -> PathBuf {
    build(
        "clearcount-server",
        "--bin",
        "clearcount-server",
        Features::With(""),
    )
}

/// The `clearcount` command.
pub fn clearcount_bin() -> PathBuf {
    build(
        "clearcount",
        "--bin",
        "clearcount",
        Features::With("cli,upload"),
    )
}

/// The example host tool `greet` (client/examples/greet.rs).
pub fn greet_bin() -> PathBuf {
    build(
        "clearcount",
        "--example",
        "greet",
        Features::With("cli,upload"),
    )
}

/// The example host tool `wave` (client/examples/wave.rs): a required subcommand.
pub fn wave_bin() -> PathBuf {
    build(
        "clearcount",
        "--example",
        "wave",
        Features::With("cli,upload"),
    )
}

/// The recording-only example host tool `greet_lite` (client/examples/greet_lite.rs), built
/// without clearcount's default features: it hands its uploads to the `clearcount` command.
pub fn greet_lite_bin() -> PathBuf {
    build("clearcount", "--example", "greet_lite", Features::NoDefault)
}

/// A command for a clearcount-using program with a clean environment: every clearcount
/// variable removed, the directory `dir`, the clock at `now` (RFC 3339), and the server and log
/// key of the example tools (greet, wave) when given.
pub fn command(program: &Path, dir: &Path, now: &str, endpoint: Option<(&str, &str)>) -> Command {
    let mut c = Command::new(program);
    for v in [
        "DO_NOT_TRACK",
        "CLEARCOUNT_MODE",
        "CLEARCOUNT_DIR",
        "CLEARCOUNT_TEST_NOW",
        "CLEARCOUNT_UPLOAD_CHILD",
        "GREET_TELEMETRY_SERVER",
        "GREET_TELEMETRY_LOG_KEY",
        "WAVE_TELEMETRY_SERVER",
        "WAVE_TELEMETRY_LOG_KEY",
        "WAVE_PARSE_FIRST",
    ] {
        c.env_remove(v);
    }
    c.env("CLEARCOUNT_DIR", dir).env("CLEARCOUNT_TEST_NOW", now);
    if let Some((server, key)) = endpoint {
        for tool in ["GREET", "WAVE"] {
            c.env(format!("{tool}_TELEMETRY_SERVER"), server)
                .env(format!("{tool}_TELEMETRY_LOG_KEY"), key);
        }
    }
    c.stdin(Stdio::null());
    c
}

/// Runs greet with `args` and returns its output.
pub fn greet(dir: &Path, now: &str, endpoint: Option<(&str, &str)>, args: &[&str]) -> Output {
    command(&greet_bin(), dir, now, endpoint)
        .args(args)
        .output()
        .expect("run greet")
}

/// Runs `clearcount` with `args` and returns its output.
pub fn clearcount(dir: &Path, now: &str, args: &[&str]) -> Output {
    command(&clearcount_bin(), dir, now, None)
        .args(args)
        .output()
        .expect("run clearcount")
}

/// Stdout of an output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes the mode file of `dir` directly, as of `since` (RFC 3339): `off` and `local` for
/// every program; `on` opts greet in under config 0 of the test log (what `greet telemetry on
/// --yes` records against a log whose latest config is the first).
pub fn set_mode(dir: &Path, mode: &str, since: &str) {
    let text = match mode {
        "on" => format!("program greet on {since}\nconsent greet {ORIGIN} 0\n"),
        _ => format!("mode {mode} {since}\n"),
    };
    std::fs::create_dir_all(dir).expect("create dir");
    std::fs::write(dir.join("mode"), text).expect("write mode");
}

/// How many upload runs the child processes finished in `dir` (from the debug log).
pub fn finished_runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("debug.log"))
        .unwrap_or_default()
        .matches("upload: run finished")
        .count()
}

/// Waits until `finished_runs(dir) >= n` (at most `limit`); returns whether it happened.
pub fn wait_runs(dir: &Path, n: usize, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if finished_runs(dir) >= n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The upload state directory of the test log in `dir`.
pub fn upload_state(dir: &Path) -> PathBuf {
    dir.join("upload")
        .join(clearcount::upload::state::origin_dir_name(ORIGIN))
}

/// The set-up of the upload tests: a temporary directory holding a log with
/// `greet_config(1.0)` and the real server serving it, and the clearcount directory to use.
pub struct GreetServer {
    /// The clearcount directory (`TMP/cc`, not created yet).
    pub dir: PathBuf,
    /// The server, with `--today today`.
    pub server: Server,
    /// Its URL.
    pub url: String,
    /// The log's verifier key.
    pub key: String,
    /// Removed on drop, after the server is killed (fields drop in order).
    pub tmp: tempfile::TempDir,
}

impl GreetServer {
    /// Makes the log and starts the server with `--today today`.
    pub fn start(today: &str) -> GreetServer {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let log_dir = tmp.path().join("log");
        let signer = signer();
        make_log(&log_dir, &signer, &[&greet_config(1.0)]);
        let server = Server::start(&log_dir, &tmp.path().join("data"), today);
        GreetServer {
            dir: tmp.path().join("cc"),
            url: server.url(),
            server,
            key: signer.verifier().to_string(),
            tmp,
        }
    }
}

/// A running `clearcount-server serve`, killed on drop.
pub struct Server {
    child: Child,
    /// Its address.
    pub addr: SocketAddr,
    output: Arc<Mutex<String>>,
    data: PathBuf,
    today: NaiveDate,
}

impl Server {
    /// Starts the real server on a free loopback port, serving `log`, storing in `data`, with
    /// `--today today`.
    pub fn start(log: &Path, data: &Path, today: &str) -> Server {
        Server::start_with(log, data, today, &[])
    }

    /// [`Server::start`] with more arguments of `serve` (`--dev`, say).
    pub fn start_with(log: &Path, data: &Path, today: &str, args: &[&str]) -> Server {
        let mut child = Command::new(server_bin())
            .arg("serve")
            .args(args)
            .arg("--log")
            .arg(log)
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--today", today])
            .env_remove("CLEARCOUNT_DATABASE_URL")
            .env("CLEARCOUNT_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start clearcount-server");
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let out = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line.clone());
                let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                o.push_str(&line);
                o.push('\n');
            }
        });
        let end = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("listening on ") {
                        break a.trim().parse().expect("listen address");
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
            data: data.to_path_buf(),
            today: day(today),
        }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the server wrote on stderr.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The report bodies stored on the server's "today".
    pub fn stored(&self) -> Vec<String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let db = clearcount_server::storage::Db::connect(None, &self.data)
                .await
                .expect("open db");
            let r = db.reports_of_day(self.today).await.expect("read reports");
            db.close().await;
            r
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the [`FakeServer`] answers.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// The log directory served under `/log/` (and its entries at `/config/{i}`).
    pub log_dir: PathBuf,
    /// Entries served at `/config/{i}` instead of the log's.
    pub config_override: HashMap<u64, Vec<u8>>,
    /// The status answered to `POST /upload`.
    pub upload_status: u16,
    /// How long to wait before answering an upload.
    pub upload_delay: Duration,
}

/// A small HTTP server of the tests (std only): serves a log directory as it is on disk
/// (possibly tampered with) and answers uploads with a chosen status and delay, recording
/// every body posted.
pub struct FakeServer {
    /// Its address.
    pub addr: SocketAddr,
    /// How it answers (change it while it runs).
    pub behaviour: Arc<Mutex<Behaviour>>,
    /// Every body posted to `/upload`.
    pub posts: Arc<Mutex<Vec<String>>>,
    /// Every request line received.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl FakeServer {
    /// Starts on a free loopback port.
    pub fn start(behaviour: Behaviour) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let behaviour = Arc::new(Mutex::new(behaviour));
        let posts = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (b, p, r) = (behaviour.clone(), posts.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (b, p, r) = (b.clone(), p.clone(), r.clone());
                std::thread::spawn(move || {
                    let _ = serve_one(stream, &b, &p, &r);
                });
            }
        });
        FakeServer {
            addr,
            behaviour,
            posts,
            requests,
        }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bodies posted so far.
    pub fn posts(&self) -> Vec<String> {
        self.posts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes the behaviour.
    pub fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.behaviour.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

fn serve_one(
    stream: TcpStream,
    b: &Mutex<Behaviour>,
    posts: &Mutex<Vec<String>>,
    requests: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len.min(1 << 20)];
    reader.read_exact(&mut body)?;
    requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(format!("{method} {path}"));
    let beh = b.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (status, data) = if method == "POST" && path == "/upload" {
        posts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(String::from_utf8_lossy(&body).into_owned());
        std::thread::sleep(beh.upload_delay);
        let body = if beh.upload_status < 300 {
            br#"{"status":"ok"}"#.to_vec()
        } else {
            br#"{"error":"test server says no"}"#.to_vec()
        };
        (beh.upload_status, body)
    } else if let Some(rel) = path.strip_prefix("/log/") {
        match std::fs::read(beh.log_dir.join(rel)) {
            Ok(d) if !rel.contains("..") => (200, d),
            _ => (404, b"not found".to_vec()),
        }
    } else if let Some(i) = path.strip_prefix("/config/") {
        let i: u64 = i.parse().unwrap_or(u64::MAX);
        match beh.config_override.get(&i) {
            Some(d) => (200, d.clone()),
            None => match LogStore::open(&beh.log_dir).and_then(|l| l.entry(i)) {
                Ok(d) => (200, d),
                Err(_) => (404, b"not found".to_vec()),
            },
        }
    } else {
        (404, b"not found".to_vec())
    };
    let mut s = stream;
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        data.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(&data)?;
    s.flush()
}

/// A loopback port with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A TCP proxy on loopback in front of `upstream` that counts, per client connection, the
/// uploads (`POST /upload` request lines) it carried: what anyone on the path could see of
/// how reports share connections.
pub struct ConnProxy {
    /// Its address.
    pub addr: SocketAddr,
    /// Per connection accepted so far, the uploads it carried.
    uploads: Arc<Mutex<Vec<usize>>>,
}

impl ConnProxy {
    /// Starts on a free loopback port.
    pub fn start(upstream: SocketAddr) -> ConnProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let uploads = Arc::new(Mutex::new(Vec::new()));
        let counts = uploads.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let slot = {
                    let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
                    c.push(0);
                    c.len() - 1
                };
                let (c2, s2) = (client.try_clone(), server.try_clone());
                let (Ok(c2), Ok(s2)) = (c2, s2) else { continue };
                std::thread::spawn(move || {
                    let mut from = server;
                    let mut to = c2;
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
                let counts = counts.clone();
                std::thread::spawn(move || {
                    let (mut from, mut to) = (client, s2);
                    let mut buf = [0u8; 16 * 1024];
                    let mut seen = Vec::new();
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        seen.extend_from_slice(&buf[..n]);
                        let posts = seen
                            .windows(b"POST /upload ".len())
                            .filter(|w| *w == b"POST /upload ")
                            .count();
                        counts.lock().unwrap_or_else(|e| e.into_inner())[slot] = posts;
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        ConnProxy { addr, uploads }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The uploads carried by each connection that carried any.
    pub fn uploads_per_connection(&self) -> Vec<usize> {
        let c = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
        c.iter().copied().filter(|n| *n > 0).collect()
    }
}
