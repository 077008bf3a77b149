//! `clearcount-server demo`: the whole pipeline in one command, on loopback.
//!
//! 1. A log key is generated and a config log created in a temporary directory; two versions
//!    of a sample counter config are published (two programs, seven counters of both kinds,
//!    all with randomized response; see [`model`]).
//! 2. The server starts (embedded SQLite in the temporary directory) with its clock set to
//!    yesterday, the day of the simulated uploads.
//! 3. Simulated installs, each in its own clearcount directory, go through the real client code:
//!    the consent file says mode `on` since before the first simulated week; counts of each
//!    week are written into real counter files ([`clearcount::file::CounterFile`]); then one
//!    upload run ([`clearcount::upload::run::run`]) reduces the weeks, fetches and verifies the
//!    latest config from the server's log (signature, inclusion), builds each week's report
//!    with sampling and randomized response, and posts it over HTTP. Installs run in worker
//!    processes (the same binary, `demo --worker`): counter files are mapped for the rest of a
//!    process, so one process cannot host tens of thousands of them.
//! 4. The server is stopped gracefully and the aggregates published as files; it then serves
//!    again with the real clock, so yesterday's raw reports are published too. The table of
//!    true versus estimated shares is built from the aggregates downloaded from it over HTTP.
//! 5. It serves the dashboard until Ctrl-C or SIGTERM (`--exit`: stop at once).
//!
//! The true shares are exact: the demo knows the true label of every simulated install and
//! week (before randomized response), among the installs that used the program that week.

pub mod model;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use clearcount::Layout;
use clearcount::clock::Week;
use clearcount::file::CounterFile;
use clearcount::format::Meta;
use clearcount::mode::{Consent, Mode, ModeFile};
use clearcount::upload::run::{
    self as client_run, HttpTransport, PostResult, RunOptions, Transport,
};
use clearcount::upload::state::{Endpoint, LogState};
use clearcount::upload::verify::{self, ConfigFetchError, VerifiedConfig};
use clearcount_config_log::note::Signer;
use clearcount_config_log::reader::HttpSource;
use clearcount_config_log::store::LogStore;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::aggregate::WeekAggregates;
use crate::configs::ConfigLog;
use crate::http::{Clock, Limits};
use crate::server::{self, ServeOptions};
use crate::storage::Db;
use model::Truth;

/// The origin (log key name) of the demo's config log.
pub const ORIGIN: &str = "demo.clearcount.example/config";
/// Most weeks the demo simulates: the server accepts reports at most 4 weeks old.
pub const MAX_WEEKS: usize = 4;
/// Installs one worker process simulates before it exits.
pub const CHUNK: usize = 500;

/// Options of `clearcount-server demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Number of simulated installs. Each has its own clearcount directory and runs the real
    /// client code: counter files, weekly reduction, config verification, randomized
    /// response, sampling and an HTTP upload per week.
    #[arg(long, value_name = "N", default_value_t = 20_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000),
          env = "CLEARCOUNT_DEMO_INSTALLS")]
    pub installs: u64,
    /// Number of past weeks simulated (the dashboard charts them; at most 4, the oldest week
    /// the server accepts).
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..=MAX_WEEKS as u64),
          env = "CLEARCOUNT_DEMO_WEEKS")]
    pub weeks: u64,
    /// The config's sample rate: the fraction of weekly reports that are uploaded.
    #[arg(long, value_name = "RATE", default_value_t = 1.0, value_parser = sample_rate,
          env = "CLEARCOUNT_DEMO_SAMPLE_RATE")]
    pub sample_rate: f64,
    /// Where the dashboard is served once the simulation is done (port 0: any free port). If
    /// the default port is busy, a free one is used.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        env = "CLEARCOUNT_DEMO_LISTEN"
    )]
    pub listen: SocketAddr,
    /// Stop once the table is printed instead of serving until Ctrl-C.
    #[arg(long, env = "CLEARCOUNT_DEMO_EXIT")]
    pub exit: bool,
    /// Print the table of every simulated week (default: the latest week, and a coverage
    /// line for every week).
    #[arg(long, env = "CLEARCOUNT_DEMO_ALL_WEEKS")]
    pub all_weeks: bool,
    /// Seed of the simulated usage (randomized response and sampling always use the
    /// client's cryptographic random source, as in production).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        env = "CLEARCOUNT_DEMO_SEED"
    )]
    pub seed: u64,
    /// Worker processes running installs at once.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u64).range(1..=64),
          env = "CLEARCOUNT_DEMO_PROCESSES")]
    pub processes: u64,
    /// Threads per worker process.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=256),
          env = "CLEARCOUNT_DEMO_THREADS")]
    pub threads: u64,
    /// Keep everything (log, signer key, database, published files) in DIR instead of a
    /// temporary directory that is removed at the end.
    #[arg(long, value_name = "DIR", env = "CLEARCOUNT_DEMO_DIR")]
    pub dir: Option<PathBuf>,
    /// Internal: run as a worker process (reads its job on stdin).
    #[arg(long, hide = true)]
    pub worker: bool,
}

fn sample_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if r > 0.0 && r <= 1.0 {
        Ok(r)
    } else {
        Err("the sample rate must be in (0, 1]".into())
    }
}

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A local file or process problem.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The config log could not be created.
    #[error("config log: {0}")]
    Log(#[from] clearcount_config_log::store::StoreError),
    /// A key could not be made.
    #[error("log key: {0}")]
    Key(#[from] clearcount_config_log::note::NoteError),
    /// The server failed.
    #[error("server: {0}")]
    Serve(#[from] server::ServeError),
    /// Storage failed.
    #[error("storage: {0}")]
    Store(#[from] crate::storage::StoreError),
    /// An HTTP request to the demo server failed.
    #[error("HTTP: {0}")]
    Http(String),
    /// A worker process failed.
    #[error("worker: {0}")]
    Worker(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let what = what.into();
    move |e| DemoError::Io(what, e)
}

/// The job of one worker process (JSON on its stdin).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    server: String,
    log_key: String,
    /// Directory under which each install gets `install-NNNNNN`.
    base: PathBuf,
    start: usize,
    end: usize,
    seed: u64,
    /// The simulated weeks, oldest first (Mondays).
    weeks: Vec<String>,
    /// When every install opted in (before the first week).
    opt_in: i64,
    /// The log index of the config every install agreed to (the latest).
    config_index: u64,
    /// The instant of the upload runs.
    now: i64,
    threads: usize,
    /// Keep the directory of this install (for people to look at); others are removed.
    keep: Option<usize>,
}

/// What a worker sends back.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobResult {
    truth: Truth,
    /// Weekly reports accepted by the server.
    sent: u64,
    /// Weekly reports not sampled.
    unsampled: u64,
    /// Problems (at most a few kept).
    problems: Vec<String>,
    problem_count: u64,
}

/// The transport of the simulated installs: the client's own verification
/// ([`verify::verify_with`]) and HTTP upload, sharing one connection pool per worker instead of
/// building an HTTP client per install.
struct SharedTransport {
    http: HttpTransport,
    source: HttpSource,
}

impl Transport for SharedTransport {
    fn config(
        &self,
        endpoint: &Endpoint,
        state: &LogState,
    ) -> Result<VerifiedConfig, ConfigFetchError> {
        verify::verify_with(endpoint, state, &self.source, None)
    }

    fn post(&self, endpoint: &Endpoint, body: &[u8]) -> PostResult {
        self.http.post(endpoint, body)
    }
}

/// Runs `clearcount-server demo` (see the module docs). Must run in the `clearcount-server`
/// binary, outside any async runtime: installs run in worker processes of the current
/// executable (`demo --worker`).
pub fn run(args: DemoArgs) -> Result<(), DemoError> {
    if args.worker {
        return worker_main(&args);
    }
    let started = Instant::now();
    let weeks = args.weeks as usize;
    let installs = args.installs as usize;

    // Directories.
    let tmp;
    let root = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(io(format!("create {}", d.display())))?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("clearcount-demo-")
                .tempdir()
                .map_err(io("create a temporary directory"))?;
            tmp.path().to_path_buf()
        }
    };
    let (log_dir, data_dir) = (root.join("log"), root.join("data"));
    // The simulated installs' own directories: RAM-backed when possible, because every install
    // writes (and fsyncs) a dozen small files, as a real client does once a week.
    let shm = Path::new("/dev/shm");
    let installs_tmp = tempfile::Builder::new()
        .prefix("clearcount-demo-installs-")
        .tempdir_in(if shm.is_dir() {
            shm.to_path_buf()
        } else {
            root.clone()
        })
        .map_err(io("create the installs' directory"))?;

    // Time: the uploads happen "yesterday"; the server publishes yesterday's raw reports today.
    let today = Utc::now().date_naive();
    let upload_day = today - Days::new(1);
    let now = upload_day
        .and_hms_opt(12, 0, 0)
        .map(|t| t.and_utc().timestamp())
        .unwrap_or_default();
    let current = Week::containing(now);
    let sim_weeks: Vec<Week> = (1..=weeks as i64)
        .rev()
        .map(|k| current.plus_weeks(-k))
        .collect();
    let opt_in = sim_weeks[0].start_unix() - 3 * 86_400 + 9 * 3600;

    // The log: a key, and two versions of the config.
    let signer = Signer::generate(ORIGIN)?;
    let log_key = signer.verifier().to_string();
    std::fs::create_dir_all(&root).map_err(io("create the demo directory"))?;
    std::fs::write(root.join("log-signer.key"), signer.to_key_string())
        .map_err(io("write the signer key"))?;
    let mut log = LogStore::init(&log_dir, &signer)?;
    let expires = today + Days::new(365);
    let mut index = 0;
    for v in [1, 2] {
        let text = model::config_text(ORIGIN, args.sample_rate, expires, v);
        std::fs::write(root.join(format!("config-v{v}.toml")), &text)
            .map_err(io("write the config"))?;
        index = log.append_config(text.as_bytes(), &signer, today)?;
    }
    eprintln!("clearcount demo in {}", root.display());
    eprintln!("  log key (pinned by every install): {log_key}");
    eprintln!(
        "  config published at log index {index} (two programs, {} counters, all with randomized response), sample rate {}",
        model::programs()
            .iter()
            .map(|p| p.counters.len())
            .sum::<usize>(),
        args.sample_rate
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(crate::server::MAX_BLOCKING_THREADS)
        .enable_all()
        .build()
        .map_err(io("start the async runtime"))?;

    // Phase 1: ingest, with the server's clock on the upload day.
    let ingest_addr = free_addr(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let (stop1, stopped1) = tokio::sync::oneshot::channel::<()>();
    let ingest = rt.spawn(server::serve(
        serve_options(&log_dir, &data_dir, ingest_addr, Some(upload_day)),
        async move {
            let _ = stopped1.await;
        },
    ));
    let ingest_url = format!("http://{ingest_addr}");
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| DemoError::Http(e.to_string()))?;
    wait_healthy(&http, &ingest_url, &ingest)?;
    eprintln!(
        "  simulating {installs} installs over {weeks} week(s) ({} to {}), uploads on {upload_day}",
        sim_weeks[0],
        sim_weeks[weeks - 1]
    );

    let job = Job {
        server: ingest_url.clone(),
        log_key: log_key.clone(),
        base: installs_tmp.path().to_path_buf(),
        start: 0,
        end: 0,
        seed: args.seed,
        weeks: sim_weeks.iter().map(ToString::to_string).collect(),
        opt_in,
        config_index: index,
        now,
        threads: args.threads as usize,
        keep: Some(0),
    };
    let sim_start = Instant::now();
    let result = run_workers(&job, installs, args.processes as usize);
    let sim_time = sim_start.elapsed();
    let _ = stop1.send(());
    let served = rt.block_on(ingest);
    let result = result?;
    match served {
        Ok(r) => r?,
        Err(e) => return Err(DemoError::Worker(format!("the server task failed: {e}"))),
    }
    eprintln!(
        "  {} weekly reports accepted ({} not sampled) from {installs} installs in {:.1} s ({:.0} installs/s)",
        result.sent,
        result.unsampled,
        sim_time.as_secs_f64(),
        installs as f64 / sim_time.as_secs_f64().max(1e-9)
    );
    if result.problem_count > 0 {
        eprintln!("  {} problems, for example:", result.problem_count);
        for p in &result.problems {
            eprintln!("    {p}");
        }
    }

    // Publish the aggregates as files too (what `clearcount-server export` writes).
    let published = data_dir.join("published");
    rt.block_on(async {
        let log = ConfigLog::open(&log_dir).map_err(server::ServeError::from)?;
        let db = Db::connect(None, &data_dir).await?;
        let r = server::export(&db, &log, &published, today).await;
        db.close().await;
        r.map_err(DemoError::from)
    })?;

    // Phase 2: serve with the real clock: yesterday's reports are a completed day.
    let listen = match free_addr(args.listen) {
        Ok(a) => a,
        Err(e) if args.listen.port() == 8080 => {
            let a = free_addr(SocketAddr::new(args.listen.ip(), 0))?;
            eprintln!("  {} is busy ({e}); serving on {a} instead", args.listen);
            a
        }
        Err(e) => return Err(e),
    };
    let (stop2, stopped2) = tokio::sync::oneshot::channel::<()>();
    let serving = rt.spawn(server::serve(
        serve_options(&log_dir, &data_dir, listen, None),
        async move {
            tokio::select! {
                _ = server::shutdown_signal() => {},
                _ = stopped2 => {},
            }
        },
    ));
    let url = format!("http://{listen}");
    wait_healthy(&http, &url, &serving)?;

    // The table, from the aggregates downloaded over HTTP.
    let raw_url = format!("{url}/data/reports/{upload_day}.ndjson");
    let raw = get(&http, &raw_url)?;
    let raw_reports = raw.lines().filter(|l| !l.trim().is_empty()).count();
    let mut aggs = Vec::new();
    for w in &sim_weeks {
        let body = get(&http, &format!("{url}/data/aggregates/{w}.json"))?;
        let agg: WeekAggregates = serde_json::from_str(&body)
            .map_err(|e| DemoError::Http(format!("aggregates of {w}: {e}")))?;
        aggs.push(agg);
    }
    let table = Table::build(&result.truth, &aggs);
    let mut out = std::io::stdout().lock();
    let _ = table.print(&mut out, args.all_weeks);
    let _ = writeln!(
        out,
        "\n{raw_reports} raw reports of {upload_day} downloaded from {raw_url}"
    );
    let _ = writeln!(
        out,
        "\nServing at {url}/ ({:.1} s so far)",
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(out, "  dashboard:     {url}/");
    let _ = writeln!(out, "  raw reports:   {raw_url}");
    for w in &sim_weeks {
        let _ = writeln!(
            out,
            "  aggregates:    {url}/data/aggregates/{w}.json  ({url}/data/aggregates/{w}.csv)"
        );
    }
    let _ = writeln!(out, "  config review: {url}/config/{index}");
    let _ = writeln!(out, "  config log:    {url}/log/checkpoint");
    let _ = writeln!(out, "  published files: {}", published.display());
    let _ = writeln!(
        out,
        "  one simulated install's clearcount directory: {}",
        installs_tmp.path().join("install-000000").display()
    );
    if !args.exit {
        let _ = writeln!(out, "Press Ctrl-C to stop.");
    }
    let _ = out.flush();
    drop(out);
    if args.exit {
        let _ = stop2.send(());
    }
    match rt.block_on(serving) {
        Ok(r) => r?,
        Err(e) => return Err(DemoError::Worker(format!("the server task failed: {e}"))),
    }
    Ok(())
}

fn serve_options(
    log: &Path,
    data: &Path,
    listen: SocketAddr,
    day: Option<NaiveDate>,
) -> ServeOptions {
    ServeOptions {
        log_dir: log.to_path_buf(),
        data_dir: Some(data.to_path_buf()),
        database: None,
        listen,
        clock: Clock { fixed: day },
        // Thousands of simulated installs upload from this one machine.
        limits: Limits {
            upload_rate: None,
            ..Limits::default()
        },
        dev: false,
    }
}

/// Checks that `addr` can be bound; port 0 picks a free port. Returns the address to use.
fn free_addr(addr: SocketAddr) -> Result<SocketAddr, DemoError> {
    let l = TcpListener::bind(addr).map_err(io(format!("listen on {addr}")))?;
    l.local_addr().map_err(io("local address"))
}

fn wait_healthy<T>(
    http: &reqwest::blocking::Client,
    url: &str,
    task: &tokio::task::JoinHandle<T>,
) -> Result<(), DemoError> {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if task.is_finished() {
            return Err(DemoError::Http(format!(
                "the server at {url} stopped at start"
            )));
        }
        if http
            .get(format!("{url}/healthz"))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        if Instant::now() > end {
            return Err(DemoError::Http(format!(
                "the server at {url} did not start"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn get(http: &reqwest::blocking::Client, url: &str) -> Result<String, DemoError> {
    let r = http
        .get(url)
        .send()
        .map_err(|e| DemoError::Http(format!("GET {url}: {e}")))?;
    let status = r.status();
    let text = r
        .text()
        .map_err(|e| DemoError::Http(format!("GET {url}: {e}")))?;
    if !status.is_success() {
        return Err(DemoError::Http(format!("GET {url}: {status}: {text}")));
    }
    Ok(text)
}

enum Event {
    Progress,
    Done(Box<JobResult>),
    Failed(String),
}

/// Runs the installs in chunks of [`CHUNK`] in worker processes, `processes` at a time, with a
/// progress bar on stderr; merges their results.
fn run_workers(job: &Job, installs: usize, processes: usize) -> Result<JobResult, DemoError> {
    let exe = std::env::current_exe().map_err(io("find the current executable"))?;
    let bar = indicatif::ProgressBar::new(installs as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "  installs {bar:40.cyan/blue} {pos}/{len} {per_sec:>12} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let chunks: Vec<(usize, usize)> = (0..installs)
        .step_by(CHUNK)
        .map(|s| (s, (s + CHUNK).min(installs)))
        .collect();
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<Event>();
    let total = Mutex::new(JobResult {
        truth: Truth::new(job.weeks.len()),
        sent: 0,
        unsampled: 0,
        problems: Vec::new(),
        problem_count: 0,
    });
    let failure: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..processes.min(chunks.len()) {
            let tx = tx.clone();
            let (exe, next, chunks, failure) = (&exe, &next, &chunks, &failure);
            s.spawn(move || {
                loop {
                    if failure.lock().is_ok_and(|f| f.is_some()) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(start, end)) = chunks.get(i) else {
                        return;
                    };
                    let job = Job {
                        start,
                        end,
                        ..job.clone()
                    };
                    if let Err(e) = run_worker(exe, &job, &tx) {
                        let _ = tx.send(Event::Failed(e));
                        return;
                    }
                }
            });
        }
        drop(tx);
        for ev in rx {
            match ev {
                Event::Progress => bar.inc(1),
                Event::Done(r) => {
                    if let Ok(mut t) = total.lock() {
                        t.truth.merge(&r.truth);
                        t.sent += r.sent;
                        t.unsampled += r.unsampled;
                        t.problem_count += r.problem_count;
                        for p in r.problems {
                            if t.problems.len() < 5 {
                                t.problems.push(p);
                            }
                        }
                    }
                }
                Event::Failed(e) => {
                    if let Ok(mut f) = failure.lock() {
                        f.get_or_insert(e);
                    }
                }
            }
        }
    });
    bar.finish_and_clear();
    if let Some(e) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(DemoError::Worker(e));
    }
    Ok(total.into_inner().unwrap_or_else(|e| e.into_inner()))
}

fn run_worker(exe: &Path, job: &Job, tx: &mpsc::Sender<Event>) -> Result<(), String> {
    let mut child = Command::new(exe)
        .args(["demo", "--worker"])
        .env("CLEARCOUNT_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("start {}: {e}", exe.display()))?;
    let spec = serde_json::to_vec(job).map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&spec)
            .map_err(|e| format!("send the job to a worker: {e}"))?;
    }
    let stdout = child.stdout.take().ok_or("no worker stdout")?;
    let mut done = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("read a worker: {e}"))?;
        if line == "progress" {
            let _ = tx.send(Event::Progress);
        } else if let Some(json) = line.strip_prefix("result ") {
            let r: JobResult =
                serde_json::from_str(json).map_err(|e| format!("a worker's result: {e}"))?;
            let _ = tx.send(Event::Done(Box::new(r)));
            done = true;
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("wait for a worker: {e}"))?;
    if !status.success() || !done {
        return Err(format!(
            "the worker for installs {}..{} failed ({status})",
            job.start, job.end
        ));
    }
    Ok(())
}

/// The worker process: simulates installs `start..end` with `threads` threads, prints
/// `progress` after each and `result JSON` at the end.
fn worker_main(_args: &DemoArgs) -> Result<(), DemoError> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(io("read the job"))?;
    let job: Job =
        serde_json::from_slice(&input).map_err(|e| DemoError::Worker(format!("job: {e}")))?;
    let weeks: Vec<Week> = job.weeks.iter().filter_map(|w| Week::parse(w)).collect();
    if weeks.len() != job.weeks.len() {
        return Err(DemoError::Worker(
            "a week of the job is not a Monday".into(),
        ));
    }
    let endpoint = Endpoint::new(&job.server, &job.log_key);
    let transport = SharedTransport {
        http: HttpTransport::new(),
        source: HttpSource::for_server(&job.server).map_err(|e| DemoError::Http(e.to_string()))?,
    };
    let next = AtomicUsize::new(job.start);
    let total = Mutex::new(JobResult {
        truth: Truth::new(weeks.len()),
        sent: 0,
        unsampled: 0,
        problems: Vec::new(),
        problem_count: 0,
    });
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    std::thread::scope(|s| {
        for _ in 0..job.threads.max(1) {
            s.spawn(|| {
                let mut mine = JobResult {
                    truth: Truth::new(weeks.len()),
                    sent: 0,
                    unsampled: 0,
                    problems: Vec::new(),
                    problem_count: 0,
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= job.end {
                        break;
                    }
                    if let Err(e) = install(i, &job, &weeks, &endpoint, &transport, &mut mine) {
                        mine.problem_count += 1;
                        if mine.problems.len() < 5 {
                            mine.problems.push(format!("install {i}: {e}"));
                        }
                    }
                    if let Ok(mut o) = stdout.lock() {
                        let _ = writeln!(o, "progress");
                        let _ = o.flush();
                    }
                }
                if let Ok(mut t) = total.lock() {
                    t.truth.merge(&mine.truth);
                    t.sent += mine.sent;
                    t.unsampled += mine.unsampled;
                    t.problem_count += mine.problem_count;
                    t.problems.extend(mine.problems);
                    t.problems.truncate(5);
                }
            });
        }
    });
    let total = total.into_inner().unwrap_or_else(|e| e.into_inner());
    let json = serde_json::to_string(&total).map_err(|e| DemoError::Worker(e.to_string()))?;
    let mut o = std::io::stdout().lock();
    writeln!(o, "result {json}")
        .and_then(|()| o.flush())
        .map_err(io("write the result"))
}

/// One simulated install: consent, counter files for each week it used a program, one upload
/// run of the real client.
fn install(
    i: usize,
    job: &Job,
    weeks: &[Week],
    endpoint: &Endpoint,
    transport: &SharedTransport,
    out: &mut JobResult,
) -> Result<(), String> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        job.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64),
    );
    let inst = model::install(&mut rng);
    let dir = job.base.join(format!("install-{i:06}"));
    let layout = Layout::new(&dir);
    std::fs::create_dir_all(layout.local())
        .map_err(|e| format!("create {}: {e}", dir.display()))?;
    // Every install opted in each program under the latest config, before the first week.
    let specs = model::programs();
    let mut consent = ModeFile::default();
    for spec in &specs {
        let agreed = Consent {
            origin: ORIGIN.to_string(),
            index: job.config_index,
        };
        consent.opt_in(spec.name, agreed, job.opt_in);
    }
    std::fs::write(layout.mode_file(), consent.render()).map_err(|e| format!("mode file: {e}"))?;
    let mut used_weeks = 0;
    for (t, week) in weeks.iter().enumerate() {
        let mut used = false;
        for &(p, version) in &inst.programs {
            let Some(usage) = model::week_usage(&mut rng, p, t, weeks.len()) else {
                continue;
            };
            let meta = Meta {
                program: specs[p].name.to_string(),
                version: version.to_string(),
                os: inst.os.to_string(),
                arch: inst.arch.to_string(),
                week: *week,
            };
            let mut file = CounterFile::open(&layout.local(), &meta).map_err(|e| e.to_string())?;
            for (name, n) in &usage.counts {
                file.cell(name)
                    .map_err(|e| e.to_string())?
                    .fetch_add(*n, Ordering::Relaxed);
            }
            out.truth.add(t, p, &usage.truth);
            used = true;
        }
        used_weeks += u64::from(used);
    }
    // One upload run a day (a run sends at most one report), until every week is decided.
    let (mut sent, mut unsampled) = (0, 0);
    let mut summary = client_run::RunSummary::default();
    for day in 0..weeks.len().max(1) as i64 {
        let opts = RunOptions {
            dry_run: false,
            now: job.now + day * 86_400,
            ceiling: Mode::On,
        };
        summary = client_run::run(&layout, endpoint, &opts, transport);
        sent += summary.sent.len() as u64;
        unsampled += summary
            .weeks
            .iter()
            .filter(|w| w.why.starts_with("not sampled ("))
            .count() as u64;
    }
    out.sent += sent;
    out.unsampled += unsampled;
    if job.keep != Some(i) {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if sent + unsampled != used_weeks {
        return Err(format!(
            "{sent} weeks sent and {unsampled} not sampled of {used_weeks}:\n{}",
            summary.render()
        ));
    }
    Ok(())
}

/// One row of the table.
#[derive(Debug, Clone)]
struct Row {
    week: String,
    program: String,
    counter: String,
    label: String,
    truth: f64,
    /// The consistent estimate (non-negative, summing to 1 over the counter's labels).
    estimate: f64,
    /// The unbiased estimate (may be negative).
    raw: f64,
    low: f64,
    high: f64,
}

impl Row {
    fn inside(&self) -> bool {
        self.low <= self.truth && self.truth <= self.high
    }
}

/// Per program of a week: its name, the installs that used it, the reports aggregated.
type WeekCounts = Vec<(String, u64, u64)>;

/// True versus estimated shares.
struct Table {
    rows: Vec<Row>,
    /// Per week: the week and its [`WeekCounts`].
    weeks: Vec<(String, WeekCounts)>,
}

impl Table {
    fn build(truth: &Truth, aggs: &[WeekAggregates]) -> Table {
        let specs = model::programs();
        let mut rows = Vec::new();
        let mut weeks = Vec::new();
        for (t, agg) in aggs.iter().enumerate() {
            // The latest config index of each program (all installs used the latest config).
            let mut by_program: BTreeMap<&str, &crate::aggregate::ProgramAggregate> =
                BTreeMap::new();
            for p in &agg.programs {
                let e = by_program.entry(p.program.as_str()).or_insert(p);
                if p.config_index > e.config_index {
                    *e = p;
                }
            }
            let mut counts = Vec::new();
            for (pi, spec) in specs.iter().enumerate() {
                let users = truth
                    .users
                    .get(t)
                    .and_then(|u| u.get(pi))
                    .copied()
                    .unwrap_or(0);
                let pa = by_program.get(spec.name);
                counts.push((spec.name.to_string(), users, pa.map_or(0, |p| p.reports)));
                for (ci, c) in spec.counters.iter().enumerate() {
                    let ca = pa.and_then(|p| p.counters.iter().find(|x| x.counter == c.name));
                    for (li, label) in c.labels().iter().enumerate() {
                        let n = truth
                            .labels
                            .get(t)
                            .and_then(|w| w.get(pi))
                            .and_then(|p| p.get(ci))
                            .and_then(|c| c.get(li))
                            .copied()
                            .unwrap_or(0);
                        let la = ca.and_then(|c| c.labels.iter().find(|l| &l.label == label));
                        rows.push(Row {
                            week: agg.week.clone(),
                            program: spec.name.to_string(),
                            counter: c.name.to_string(),
                            label: label.clone(),
                            truth: if users > 0 {
                                n as f64 / users as f64
                            } else {
                                0.0
                            },
                            estimate: la.map_or(0.0, |l| l.estimate),
                            raw: la.map_or(0.0, |l| l.raw_estimate),
                            low: la.map_or(0.0, |l| l.ci_low),
                            high: la.map_or(1.0, |l| l.ci_high),
                        });
                    }
                }
            }
            weeks.push((agg.week.clone(), counts));
        }
        Table { rows, weeks }
    }

    fn print(&self, out: &mut impl Write, all_weeks: bool) -> std::io::Result<()> {
        let latest = self.weeks.last().map(|w| w.0.clone()).unwrap_or_default();
        for (week, counts) in &self.weeks {
            if !all_weeks && *week != latest {
                continue;
            }
            writeln!(out)?;
            let who: Vec<String> = counts
                .iter()
                .map(|(p, users, reports)| {
                    format!("{p}: {users} installs used it, {reports} reports")
                })
                .collect();
            writeln!(out, "Week {week} ({})", who.join("; "))?;
            writeln!(
                out,
                "{:<10}  {:<12} {:<18} {:<9} {:>7} {:>9} {:>8}  95% interval",
                "week", "program", "counter", "label", "true", "estimate", "raw"
            )?;
            for r in self.rows.iter().filter(|r| r.week == *week) {
                writeln!(
                    out,
                    "{:<10}  {:<12} {:<18} {:<9} {:>6.2}% {:>8.2}% {:>7.2}%  [{:>5.2}%, {:>6.2}%] {}",
                    r.week,
                    r.program,
                    r.counter,
                    r.label,
                    100.0 * r.truth,
                    100.0 * r.estimate,
                    100.0 * r.raw,
                    100.0 * r.low,
                    100.0 * r.high,
                    if r.inside() { "inside" } else { "OUTSIDE" }
                )?;
            }
        }
        writeln!(out)?;
        for (week, _) in &self.weeks {
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.week == *week).collect();
            let inside = rows.iter().filter(|r| r.inside()).count();
            writeln!(
                out,
                "week {week}: {inside} of {} true shares inside their 95% intervals",
                rows.len()
            )?;
        }
        let inside = self.rows.iter().filter(|r| r.inside()).count();
        writeln!(
            out,
            "coverage: {inside} of {} true shares ({:.1}%) inside their 95% intervals",
            self.rows.len(),
            100.0 * inside as f64 / self.rows.len().max(1) as f64
        )?;
        writeln!(
            out,
            "estimate: consistent (non-negative, sums to 1 per counter); raw: unbiased (may be \
             negative); see docs/data.md"
        )
    }
}
