//! Running the server: storage, config log, HTTP, graceful shutdown; and offline aggregation.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;

use crate::aggregate::WeekAggregates;
use crate::configs::{ConfigLog, LogError};
use crate::downloads::DayFiles;
use crate::http::{AppState, Clock, Limits, router};
use crate::metrics::Metrics;
use crate::sources::Sources;
use crate::storage::{Db, Store, StoreError};
use crate::validate::WeekRule;

/// Threads of the async runtime's blocking pool (file reads and metadata of downloads, page
/// rendering). With tokio's default of 512, a burst of requests starts hundreds of threads,
/// each with its own allocator heap (mimalloc keeps pages per thread) that outlives the burst:
/// 200 downloads that were never read grew the server by 90-165 MB, about 650 KB a thread;
/// with 16 threads, by 13-15 MB. Reads from the page cache take microseconds, so the small
/// pool serves the same bursts.
pub const MAX_BLOCKING_THREADS: usize = 16;

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The config log directory (tlog-tiles).
    pub log_dir: PathBuf,
    /// The data directory: the SQLite database (unless `database` is set) and the download
    /// cache (a temporary directory when `None`).
    pub data_dir: Option<PathBuf>,
    /// A `postgres://` URL, or `None` for SQLite in the data directory.
    pub database: Option<String>,
    /// Address to listen on (port 0: any free port, printed at start).
    pub listen: SocketAddr,
    /// The clock.
    pub clock: Clock,
    /// HTTP limits.
    pub limits: Limits,
    /// A development server (`serve --dev`): also accepts the current week, and says so on
    /// every page.
    pub dev: bool,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The config log could not be read.
    #[error("config log: {0}")]
    Log(#[from] LogError),
    /// Listening or serving failed.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    /// Listening failed.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// Neither a data directory nor a database URL.
    #[error("a data directory (--data) is needed unless a PostgreSQL URL (--database) is given")]
    NoStorage,
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Runs the server until `shutdown` resolves, then finishes in-flight requests, stores every
/// queued report and returns. Binds first (a taken port fails at once), then computes the
/// aggregates and renders the dashboard (see [`crate::web::ready`]) before accepting the first
/// connection, then prints `listening on ADDR` to stderr.
pub async fn serve(
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| ServeError::Bind(opts.listen, e))?;
    let addr = listener.local_addr()?;
    let log = ConfigLog::open(&opts.log_dir)?;
    let data_dir = match (&opts.data_dir, &opts.database) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(_)) => None,
        (None, None) => return Err(ServeError::NoStorage),
    };
    let db = Db::connect(
        opts.database.as_deref(),
        data_dir.as_deref().unwrap_or(Path::new(".")),
    )
    .await?;
    let writers = match db {
        Db::Sqlite(_) => 1,
        Db::Postgres(_) => 4,
    };
    let kind = db.kind();
    let limits = opts.limits;
    let stats = Arc::new(Metrics::default());
    let sources = Arc::new(Sources::new(
        limits.conn.max_connections_per_source,
        limits.upload_rate,
        &limits.trusted_proxies,
    ));
    let state = Arc::new(AppState {
        log,
        log_dir: opts.log_dir.clone(),
        store: Store::new(db, writers),
        clock: opts.clock,
        stats: stats.clone(),
        sources: sources.clone(),
        trusted_proxies: limits.trusted_proxies.clone(),
        day_files: DayFiles::new(data_dir.map(|d| d.join("downloads")).as_deref())?,
        body_timeout: limits.body_timeout,
        weeks: if opts.dev {
            WeekRule::AlsoCurrent
        } else {
            WeekRule::Ended
        },
    });
    // The dashboard computes the aggregates and renders its pages before the first connection
    // is accepted, so that no request waits for that.
    let app = router(state.clone(), &limits);
    let warm = std::time::Instant::now();
    crate::web::ready(&state).await;
    tracing::info!("dashboard ready in {} ms", warm.elapsed().as_millis());
    eprintln!("listening on {addr}");
    if opts.dev {
        eprintln!(
            "DEVELOPMENT SERVER: accepts reports of the week in progress (clearcount upload \
             --now); not for real users"
        );
    }
    tracing::info!(
        "serving on {addr} with {kind} storage, at most {} connections ({} a source)",
        limits.conn.max_connections,
        limits.conn.max_connections_per_source
    );
    crate::conn::serve(
        listener,
        app,
        limits.conn,
        sources,
        stats,
        shutdown,
        Duration::from_secs(30),
    )
    .await;
    state.store.shutdown().await;
    state.store.db().close().await;
    tracing::info!("stopped: every acknowledged report is committed");
    Ok(())
}

/// Recomputes one week's aggregates from the stored rows, with intervals at `confidence`.
pub async fn aggregate_week(
    db: &Db,
    log: &ConfigLog,
    week: NaiveDate,
    confidence: f64,
) -> Result<WeekAggregates, StoreError> {
    let groups = db.week_groups(week).await?;
    Ok(crate::aggregate::compute(week, &groups, log, confidence))
}

/// Writes `agg` as `WEEK.json` and `WEEK.csv` into `dir` (atomically: temp file then rename).
pub fn write_aggregates(dir: &Path, agg: &WeekAggregates) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let json = dir.join(format!("{}.json", agg.week));
    let csv = dir.join(format!("{}.csv", agg.week));
    write_atomic(&json, agg.to_json().as_bytes())?;
    write_atomic(&csv, agg.to_csv().as_bytes())?;
    Ok((json, csv))
}

/// Writes a file via a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes every published file into `out`: `reports/DAY.ndjson` for each completed day (before
/// `today`), `aggregates/WEEK.json` and `.csv` for each week, and `index.json`, laid out like
/// the server's `/data/` so a bucket or CDN can serve it as is. Returns the number of files.
pub async fn export(
    db: &Db,
    log: &ConfigLog,
    out: &Path,
    today: NaiveDate,
) -> Result<usize, ServeError> {
    let mut files = 0;
    let mut days_index = Vec::new();
    for (day, n) in db.days().await? {
        if day >= today {
            continue;
        }
        let mut body = String::new();
        for r in db.reports_of_day(day).await? {
            body.push_str(&r);
            body.push('\n');
        }
        std::fs::create_dir_all(out.join("reports"))?;
        write_atomic(&out.join(format!("reports/{day}.ndjson")), body.as_bytes())?;
        files += 1;
        days_index.push(serde_json::json!({ "day": day.to_string(), "reports": n,
            "url": format!("reports/{day}.ndjson") }));
    }
    let mut weeks_index = Vec::new();
    for week in db.weeks().await? {
        let agg = aggregate_week(db, log, week, crate::aggregate::CONFIDENCE).await?;
        write_aggregates(&out.join("aggregates"), &agg)?;
        files += 2;
        weeks_index.push(serde_json::json!({ "week": week.to_string(),
            "json": format!("aggregates/{week}.json"), "csv": format!("aggregates/{week}.csv") }));
    }
    let index = serde_json::json!({ "today": today.to_string(), "reports": days_index,
        "aggregates": weeks_index });
    std::fs::create_dir_all(out)?;
    write_atomic(
        &out.join("index.json"),
        serde_json::to_string_pretty(&index)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(files + 1)
}
