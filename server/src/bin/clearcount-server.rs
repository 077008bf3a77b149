//! `clearcount-server`: serve, aggregate, export, demo.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use clearcount_server::configs::ConfigLog;
use clearcount_server::conn::{ConnLimits, default_max_connections, default_per_source};
use clearcount_server::http::{Clock, Limits};
use clearcount_server::server::{self, ServeOptions};
use clearcount_server::sources::RateLimit;
use clearcount_server::storage::Db;
use clearcount_server::validate::parse_day;

/// mimalloc instead of glibc malloc: the ingest path allocates per request on several threads,
/// where glibc's free-list work (consolidation, unlinking) showed as about a tenth of the CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The clearcount server: accepts weekly usage reports that match the logged counter config,
/// stores them without any identifier, and publishes raw reports and aggregates.
///
/// Every option can also be set by the environment variable named in its help.
#[derive(Parser)]
#[command(name = "clearcount-server", version, about, long_about = None)]
struct Cli {
    /// Log lines as plain text or as JSON objects, one a line (on stderr; colours only when
    /// stderr is a terminal). CLEARCOUNT_LOG sets the level filter (default info).
    #[arg(
        long,
        value_name = "FORMAT",
        env = "CLEARCOUNT_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Clone)]
struct Storage {
    /// The config log directory (tlog-tiles files written by `clearcount-log`).
    #[arg(long, value_name = "DIR", env = "CLEARCOUNT_LOG_DIR")]
    log: PathBuf,
    /// The data directory: the SQLite database (unless --database is given) and the download
    /// cache. Optional with --database (the cache then lives in a temporary directory).
    #[arg(
        long,
        value_name = "DIR",
        env = "CLEARCOUNT_DATA",
        required_unless_present = "database"
    )]
    data: Option<PathBuf>,
    /// A PostgreSQL URL (postgres://user@host:port/db) shared by any number of server
    /// instances. Default: embedded SQLite in the data directory.
    #[arg(long, value_name = "URL", env = "CLEARCOUNT_DATABASE_URL")]
    database: Option<String>,
    /// Pretend today's UTC date is this day (testing and replays only).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = day_arg, hide_short_help = true,
          env = "CLEARCOUNT_TODAY")]
    today: Option<NaiveDate>,
}

impl Storage {
    /// The data directory, which offline commands need even with PostgreSQL (for their output).
    fn data_dir(&self) -> anyhow::Result<&PathBuf> {
        self.data
            .as_ref()
            .context("--data is needed to know where to write (or give --out)")
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server: POST /upload, /log/, /config, /data/, /healthz.
    ///
    /// Stops gracefully on SIGTERM or Ctrl-C: in-flight uploads finish and every acknowledged
    /// report is committed first.
    Serve {
        #[command(flatten)]
        storage: Storage,
        /// Address to listen on (port 0 picks a free port; the address is printed on stderr).
        #[arg(
            long,
            value_name = "ADDR",
            default_value = "127.0.0.1:8080",
            env = "CLEARCOUNT_LISTEN"
        )]
        listen: SocketAddr,
        /// Connections open at once (default: the file limit less 128); more wait in the
        /// kernel's queue.
        #[arg(long, value_name = "N", env = "CLEARCOUNT_MAX_CONNECTIONS")]
        max_connections: Option<usize>,
        /// Connections open at once from one source (a /24 or /48 network); more are closed at
        /// once (default: an eighth of --max-connections, at least 16).
        #[arg(long, value_name = "N", env = "CLEARCOUNT_MAX_CONNECTIONS_PER_SOURCE")]
        max_connections_per_source: Option<usize>,
        /// Seconds to receive a request's head, from the connection's opening or the end of the
        /// previous response (so also the idle keep-alive timeout).
        #[arg(
            long,
            value_name = "SECONDS",
            default_value_t = 10,
            env = "CLEARCOUNT_HEADER_TIMEOUT"
        )]
        header_timeout: u64,
        /// Seconds to receive an upload's body.
        #[arg(
            long,
            value_name = "SECONDS",
            default_value_t = 10,
            env = "CLEARCOUNT_BODY_TIMEOUT"
        )]
        body_timeout: u64,
        /// Seconds a response may wait for the client to read anything before the connection
        /// is closed.
        #[arg(
            long,
            value_name = "SECONDS",
            default_value_t = 30,
            env = "CLEARCOUNT_WRITE_TIMEOUT"
        )]
        write_timeout: u64,
        /// Seconds from a request's head to its response's head, body included.
        #[arg(
            long,
            value_name = "SECONDS",
            default_value_t = 30,
            env = "CLEARCOUNT_REQUEST_TIMEOUT"
        )]
        request_timeout: u64,
        /// Uploads a second one source (a /24 or /48 network) may send after its burst;
        /// beyond it, 429 with Retry-After. 0 turns the limiter off (benchmarks).
        #[arg(long, value_name = "PER_SECOND", default_value_t = RateLimit::DEFAULT.rate,
              env = "CLEARCOUNT_UPLOAD_RATE")]
        upload_rate: f64,
        /// Uploads one source may send at once before --upload-rate applies.
        #[arg(long, value_name = "N", default_value_t = RateLimit::DEFAULT.burst,
              env = "CLEARCOUNT_UPLOAD_BURST")]
        upload_burst: f64,
        /// A reverse proxy whose X-Forwarded-For header names the client (its last address)
        /// for the limiter; repeatable, or comma-separated in the environment variable.
        #[arg(
            long,
            value_name = "IP",
            env = "CLEARCOUNT_TRUSTED_PROXY",
            value_delimiter = ','
        )]
        trusted_proxy: Vec<IpAddr>,
        /// Run a local development server for tool authors: it also accepts reports of the
        /// week in progress (sent with `clearcount upload --now`), so that you can see your
        /// tool's first report at once, and says DEVELOPMENT SERVER on every page. Never for
        /// real users: a real server takes only weeks that have ended.
        #[arg(long, env = "CLEARCOUNT_DEV")]
        dev: bool,
    },
    /// Recompute the aggregates of one week offline and write WEEK.json and WEEK.csv.
    Aggregate {
        #[command(flatten)]
        storage: Storage,
        /// The week (its Monday, YYYY-MM-DD).
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = day_arg, env = "CLEARCOUNT_WEEK")]
        week: NaiveDate,
        /// Where to write the files (default: DATA/published/aggregates).
        #[arg(long, value_name = "DIR", env = "CLEARCOUNT_OUT")]
        out: Option<PathBuf>,
        /// Confidence level of the intervals: 0.90, 0.95 or 0.99.
        #[arg(long, value_name = "LEVEL", default_value = "0.95",
              value_parser = clearcount_server::aggregate::parse_level,
              env = "CLEARCOUNT_CONFIDENCE")]
        confidence: f64,
    },
    /// Write every published file (completed days' reports, all weeks' aggregates and an
    /// index) into a directory, for serving from a bucket or CDN.
    Export {
        #[command(flatten)]
        storage: Storage,
        /// Target directory (default: DATA/published).
        #[arg(long, value_name = "DIR", env = "CLEARCOUNT_OUT")]
        out: Option<PathBuf>,
    },
    /// Run the whole pipeline on loopback in one command: a config log, the server (SQLite in
    /// a temporary directory), thousands of simulated installs running the real client code,
    /// published aggregates, a table of true versus estimated shares, and the dashboard.
    ///
    /// Serves the dashboard until Ctrl-C (or SIGTERM) unless --exit is given.
    Demo(clearcount_server::demo::DemoArgs),
}

fn day_arg(s: &str) -> Result<NaiveDate, String> {
    parse_day(s).ok_or_else(|| format!("`{s}` is not a YYYY-MM-DD date"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The demo draws a progress bar: only warnings interrupt it.
    let default_level = if matches!(cli.command, Command::Demo(_)) {
        "warn"
    } else {
        "info,sqlx=warn"
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLEARCOUNT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_target(false);
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    if let Command::Demo(args) = cli.command {
        // Outside any async runtime: the demo runs its own, and blocking clients.
        return Ok(clearcount_server::demo::run(args)?);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(clearcount_server::server::MAX_BLOCKING_THREADS)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            storage,
            listen,
            max_connections,
            max_connections_per_source,
            header_timeout,
            body_timeout,
            write_timeout,
            request_timeout,
            upload_rate,
            upload_burst,
            trusted_proxy,
            dev,
        } => {
            let secs = |s: u64| Duration::from_secs(s.max(1));
            let max_connections = max_connections
                .unwrap_or_else(default_max_connections)
                .max(1);
            let opts = ServeOptions {
                log_dir: storage.log,
                data_dir: storage.data,
                database: storage.database,
                listen,
                clock: Clock {
                    fixed: storage.today,
                },
                limits: Limits {
                    request_timeout: secs(request_timeout),
                    body_timeout: secs(body_timeout),
                    conn: ConnLimits {
                        header_timeout: secs(header_timeout),
                        write_timeout: secs(write_timeout),
                        max_connections,
                        max_connections_per_source: max_connections_per_source
                            .unwrap_or_else(|| default_per_source(max_connections))
                            .clamp(1, max_connections),
                    },
                    upload_rate: (upload_rate > 0.0).then_some(RateLimit {
                        rate: upload_rate,
                        burst: upload_burst.max(1.0),
                    }),
                    trusted_proxies: trusted_proxy,
                },
                dev,
            };
            server::serve(opts, server::shutdown_signal()).await?;
        }
        Command::Aggregate {
            storage,
            week,
            out,
            confidence,
        } => {
            let start = Instant::now();
            let log = ConfigLog::open(&storage.log)?;
            let out = match out {
                Some(o) => o,
                None => storage.data_dir()?.join("published/aggregates"),
            };
            let db = connect(&storage).await?;
            let agg = server::aggregate_week(&db, &log, week, confidence).await?;
            let (json, csv) = server::write_aggregates(&out, &agg)?;
            let reports: u64 = agg.programs.iter().map(|p| p.reports).sum();
            eprintln!(
                "aggregated {reports} program reports of week {week} in {:.3} s: {} and {}",
                start.elapsed().as_secs_f64(),
                json.display(),
                csv.display()
            );
            db.close().await;
        }
        Command::Export { storage, out } => {
            let log = ConfigLog::open(&storage.log)?;
            let out = match out {
                Some(o) => o,
                None => storage.data_dir()?.join("published"),
            };
            let db = connect(&storage).await?;
            let today = Clock {
                fixed: storage.today,
            }
            .today();
            let n = server::export(&db, &log, &out, today).await?;
            eprintln!("exported {n} files to {}", out.display());
            db.close().await;
        }
        Command::Demo(_) => bail!("the demo runs outside the async runtime"),
    }
    Ok(())
}

async fn connect(storage: &Storage) -> anyhow::Result<Db> {
    let data = storage.data.clone().unwrap_or_default();
    Ok(Db::connect(storage.database.as_deref(), &data).await?)
}
