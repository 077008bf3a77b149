//! `clearcount-server`: serve, aggregate, export, demo.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use clearcount_server::configs::ConfigLog;
use clearcount_server::http::{Clock, Limits};
use clearcount_server::server::{self, ServeOptions};
use clearcount_server::storage::Db;
use clearcount_server::validate::parse_day;

/// mimalloc instead of glibc malloc: the ingest path allocates per request on several threads,
/// where glibc's free-list work (consolidation, unlinking) showed as about a tenth of the CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The clearcount server: accepts weekly usage reports that match the logged counter config,
/// stores them without any identifier, and publishes raw reports and aggregates.
#[derive(Parser)]
#[command(name = "clearcount-server", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Storage {
    /// The config log directory (tlog-tiles files written by `clearcount-log`).
    #[arg(long, value_name = "DIR")]
    log: PathBuf,
    /// The data directory; holds the SQLite database unless --database is given.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// A PostgreSQL URL (postgres://user@host:port/db) shared by any number of server
    /// instances. Default: embedded SQLite in the data directory.
    #[arg(long, value_name = "URL", env = "CLEARCOUNT_DATABASE_URL")]
    database: Option<String>,
    /// Pretend today's UTC date is this day (testing and replays only).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = day_arg, hide_short_help = true)]
    today: Option<NaiveDate>,
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
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Requests handled at once; more wait for a slot.
        #[arg(long, value_name = "N", default_value_t = 1024)]
        max_concurrency: usize,
        /// Time limit of one request in seconds, body included.
        #[arg(long, value_name = "SECONDS", default_value_t = 30)]
        request_timeout: u64,
    },
    /// Recompute the aggregates of one week offline and write WEEK.json and WEEK.csv.
    Aggregate {
        #[command(flatten)]
        storage: Storage,
        /// The week (its Monday, YYYY-MM-DD).
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = day_arg)]
        week: NaiveDate,
        /// Where to write the files (default: DATA/published/aggregates).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Write every published file (completed days' reports, all weeks' aggregates and an
    /// index) into a directory, for serving from a bucket or CDN.
    Export {
        #[command(flatten)]
        storage: Storage,
        /// Target directory (default: DATA/published).
        #[arg(long, value_name = "DIR")]
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLEARCOUNT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    if let Command::Demo(args) = cli.command {
        // Outside any async runtime: the demo runs its own, and blocking clients.
        return Ok(clearcount_server::demo::run(args)?);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
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
            max_concurrency,
            request_timeout,
        } => {
            let opts = ServeOptions {
                log_dir: storage.log,
                data_dir: storage.data,
                database: storage.database,
                listen,
                clock: Clock {
                    fixed: storage.today,
                },
                limits: Limits {
                    max_concurrency: max_concurrency.max(1),
                    request_timeout: Duration::from_secs(request_timeout.max(1)),
                },
            };
            server::serve(opts, server::shutdown_signal()).await?;
        }
        Command::Aggregate { storage, week, out } => {
            let start = Instant::now();
            let log = ConfigLog::open(&storage.log)?;
            let db = Db::connect(storage.database.as_deref(), &storage.data).await?;
            let agg = server::aggregate_week(&db, &log, week).await?;
            let out = out.unwrap_or_else(|| storage.data.join("published/aggregates"));
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
            let db = Db::connect(storage.database.as_deref(), &storage.data).await?;
            let out = out.unwrap_or_else(|| storage.data.join("published"));
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
