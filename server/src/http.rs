//! The HTTP API (DESIGN.md section 7) on axum.
//!
//! Nothing here reads any request header other than `Content-Type` (and, for the `/config`
//! pages, `Accept` and `Host`; for uploads through a trusted proxy, `X-Forwarded-For`), and no
//! request-logging middleware is installed: the only log lines are server-side errors. The peer
//! address is read only by the upload limiter, which keeps a keyed hash of its prefix in memory
//! ([`crate::sources`]).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{NaiveDate, Utc};

use crate::configs::ConfigLog;
use crate::conn::ConnLimits;
use crate::downloads::DayFiles;
use crate::metrics::{Metrics, Reject};
use crate::report::{self, MAX_REPORT_BYTES, ParseError};
use crate::sources::{RateLimit, Sources};
use crate::storage::{Outcome, Store};
use crate::validate::{WeekRule, parse_day, validate_with};

/// Where "today" comes from: the UTC clock, or a fixed day (tests and replays).
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    /// A fixed UTC day, if set.
    pub fixed: Option<NaiveDate>,
}

impl Clock {
    /// Today's UTC date.
    pub fn today(&self) -> NaiveDate {
        self.fixed.unwrap_or_else(|| Utc::now().date_naive())
    }
}

/// Everything the handlers share.
pub struct AppState {
    /// The config log.
    pub log: ConfigLog,
    /// The log directory, served under `/log/`.
    pub log_dir: PathBuf,
    /// The report store.
    pub store: Store,
    /// The clock.
    pub clock: Clock,
    /// Counters, served at `/metrics`.
    pub stats: Arc<Metrics>,
    /// Per-source connection shares and upload limits.
    pub sources: Arc<Sources>,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// Completed days' raw reports as files.
    pub day_files: DayFiles,
    /// Time limit of an upload's body.
    pub body_timeout: Duration,
    /// Which weeks uploads may be of: [`WeekRule::AlsoCurrent`] on a development server
    /// (`serve --dev`), whose every page then says so.
    pub weeks: WeekRule,
}

/// Limits of the HTTP layer.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time limit of one request until its response starts, body included.
    pub request_timeout: Duration,
    /// Time limit of an upload's body.
    pub body_timeout: Duration,
    /// Connection limits and timeouts.
    pub conn: ConnLimits,
    /// Uploads per source, or `None` for no limit.
    pub upload_rate: Option<RateLimit>,
    /// Peers (reverse proxies) whose `X-Forwarded-For` header names the client.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            conn: ConnLimits::default(),
            upload_rate: Some(RateLimit::DEFAULT),
            trusted_proxies: Vec::new(),
        }
    }
}

/// The full router.
pub fn router(state: Arc<AppState>, limits: &Limits) -> Router {
    let app = Router::new()
        .route("/upload", post(upload))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/log/checkpoint", get(log_checkpoint))
        .route("/log/tile/{*path}", get(log_tile))
        .route("/config", get(config_latest))
        .route("/config/{index}", get(config_index))
        .route("/data/", get(data_index))
        .route("/data", get(data_index))
        .route("/data/reports/{file}", get(data_reports))
        .route("/data/aggregates/{file}", get(data_aggregates))
        .merge(crate::web::routes(state.clone()))
        .fallback(not_found);
    let app = if state.weeks == WeekRule::AlsoCurrent {
        app.layer(axum::middleware::map_response(dev_marked))
    } else {
        app
    };
    app.layer(
        tower::ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(state.clone(), timed))
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                limits.request_timeout,
            )),
    )
    .with_state(state)
}

/// The banner at the top of every page of a development server.
pub const DEV_BANNER: &str = "<p class=\"warn\" role=\"alert\">DEVELOPMENT SERVER (serve --dev): \
    it accepts reports of the week in progress, for tool authors testing their integration with \
    `clearcount upload --now`. Nothing here is real usage data.</p>";

/// Marks a development server's responses: the header `x-clearcount-dev` on every response, the
/// [`DEV_BANNER`] at the top of every HTML page and `[dev]` in its title.
async fn dev_marked(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    parts.headers.insert(
        "x-clearcount-dev",
        HeaderValue::from_static("development server: accepts the current week"),
    );
    let html = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !html {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "page too large");
    };
    let page = String::from_utf8_lossy(&bytes)
        .replacen("<title>", "<title>[dev] ", 1)
        .replacen("<main>", &format!("<main>{DEV_BANNER}"), 1);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::ETAG);
    Response::from_parts(parts, Body::from(page))
}

/// Records each request's latency (to its response head) in the metrics.
async fn timed(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let start = Instant::now();
    let response = next.run(req).await;
    state.stats.observe(start.elapsed());
    response
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let text = state
        .stats
        .render(state.store.db().kind(), state.store.queued());
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

/// The address an upload comes from: the peer, or for a trusted proxy the last address of its
/// `X-Forwarded-For` (the one the proxy itself appended). `None` without a peer address.
fn client_ip(req: &Request, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = crate::conn::peer(req.extensions())?.ip();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    req.headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .next_back()
        .or(Some(peer))
}

/// A JSON error response.
pub fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    let body = serde_json::json!({ "error": msg.to_string() }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn json_ok(body: String, cache: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such resource")
}

async fn healthz() -> Response {
    ([(header::CACHE_CONTROL, "no-store")], "ok\n").into_response()
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(v) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = v.split(';');
    let mime = parts.next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|p| {
        let p = p.trim().to_ascii_lowercase().replace(' ', "");
        p.is_empty() || p == "charset=utf-8" || p == "charset=\"utf-8\""
    })
}

/// The outcome of an upload body check, before storage (public for fuzzing and tests).
pub fn check_upload(
    state: &AppState,
    body: &[u8],
) -> Result<crate::validate::Accepted, (StatusCode, String)> {
    let report = report::parse(body).map_err(|e| {
        let status = match e {
            ParseError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        (status, e.to_string())
    })?;
    let config = state.log.get(report.config.index).map_err(|e| {
        tracing::error!("reading the config log: {e}");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the config log cannot be read".to_string(),
        )
    })?;
    let size = state.log.size();
    validate_with(
        &report,
        &state.log.origin(),
        size,
        config.as_deref(),
        state.clock.today(),
        state.weeks,
    )
    .map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
}

/// How long the client should wait, as a `Retry-After` value (whole seconds, at least 1).
fn retry_after(wait: Duration) -> HeaderValue {
    HeaderValue::from((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1))
}

async fn upload(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let reject = |why: Reject, status: StatusCode, msg: String| {
        state.stats.reject(why);
        error(status, msg)
    };
    if let Some(ip) = client_ip(&req, &state.trusted_proxies)
        && let Err(wait) = state.sources.take_upload(ip)
    {
        state.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many uploads from this network; retry later",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, retry_after(wait));
        return r;
    }
    if !is_json_content_type(req.headers()) {
        return reject(
            Reject::ContentType,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json".into(),
        );
    }
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > MAX_REPORT_BYTES as u64
    {
        return reject(
            Reject::TooLarge,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("report is larger than {MAX_REPORT_BYTES} bytes"),
        );
    }
    let read = axum::body::to_bytes(req.into_body(), MAX_REPORT_BYTES);
    let body: Bytes = match tokio::time::timeout(state.body_timeout, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return reject(
                Reject::TooLarge,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("report is larger than {MAX_REPORT_BYTES} bytes or the body was cut"),
            );
        }
        Err(_) => {
            return reject(
                Reject::SlowBody,
                StatusCode::REQUEST_TIMEOUT,
                "the report did not arrive in time".into(),
            );
        }
    };
    let accepted = match check_upload(&state, &body) {
        Ok(a) => a,
        Err((status, msg)) => {
            if status.is_server_error() {
                state.stats.failed.fetch_add(1, Ordering::Relaxed);
                return error(status, msg);
            }
            let why = match status {
                StatusCode::PAYLOAD_TOO_LARGE => Reject::TooLarge,
                StatusCode::BAD_REQUEST => Reject::Malformed,
                _ => Reject::Invalid,
            };
            return reject(why, status, msg);
        }
    };
    let ok = || {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"ok"}"#,
        )
            .into_response()
    };
    match state.store.insert(accepted, state.clock.today()).await {
        Ok(Outcome::Stored) => {
            state.stats.accepted.fetch_add(1, Ordering::Relaxed);
            ok()
        }
        Ok(Outcome::Duplicate) => {
            state.stats.duplicates.fetch_add(1, Ordering::Relaxed);
            ok()
        }
        Ok(Outcome::Conflict) => reject(
            Reject::Conflict,
            StatusCode::CONFLICT,
            "a different report with the same config index, week and x is stored already".into(),
        ),
        Err(e) => {
            state.stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!("storing a report: {e}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the report could not be stored; retry later",
            )
        }
    }
}

// ---- log serving ----

/// Checks a tlog-tiles path below `tile/` (`<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`) and
/// returns whether it is a partial tile. Anything else (and so any traversal) is `None`.
pub fn check_tile_path(path: &str) -> Option<bool> {
    let segs: Vec<&str> = path.split('/').collect();
    let (first, rest) = segs.split_first()?;
    let level_ok = *first == "entries"
        || (!first.is_empty() && first.len() <= 2 && first.bytes().all(|b| b.is_ascii_digit()));
    if !level_ok || rest.is_empty() {
        return None;
    }
    let three = |s: &str| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit());
    let mut i = 0;
    while i < rest.len() && rest[i].starts_with('x') {
        if !three(&rest[i][1..]) {
            return None;
        }
        i += 1;
    }
    let last = rest.get(i)?;
    if three(last) {
        return (i + 1 == rest.len()).then_some(false);
    }
    let base = last.strip_suffix(".p")?;
    if !three(base) || i + 2 != rest.len() {
        return None;
    }
    let w = rest[i + 1];
    let width: u32 = w.parse().ok()?;
    ((1..=255).contains(&width) && w == width.to_string()).then_some(true)
}

async fn static_file(path: PathBuf, content_type: &'static str, cache: &'static str) -> Response {
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, cache),
            ],
            Body::from(bytes),
        )
            .into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            error(StatusCode::NOT_FOUND, "no such log file")
        }
        Err(e) => {
            tracing::error!("reading a log file: {e}");
            error(StatusCode::INTERNAL_SERVER_ERROR, "log file unreadable")
        }
    }
}

async fn log_checkpoint(State(state): State<Arc<AppState>>) -> Response {
    static_file(
        state.log_dir.join("checkpoint"),
        "text/plain; charset=utf-8",
        "public, max-age=10",
    )
    .await
}

async fn log_tile(State(state): State<Arc<AppState>>, Path(path): Path<String>) -> Response {
    match check_tile_path(&path) {
        None => error(StatusCode::NOT_FOUND, "not a tlog-tiles tile path"),
        Some(partial) => {
            let cache = if partial {
                "public, max-age=60"
            } else {
                "public, max-age=31536000, immutable"
            };
            static_file(
                state.log_dir.join("tile").join(&path),
                "application/octet-stream",
                cache,
            )
            .await
        }
    }
}

// ---- configs ----

fn toml_response(index: u64, bytes: Vec<u8>, cache: &'static str) -> Response {
    let mut r = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response();
    r.headers_mut()
        .insert("clearcount-config-index", HeaderValue::from(index));
    // The same URL serves the HTML review page to browsers (see `crate::web::wants_html`).
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

async fn config_latest(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if crate::web::wants_html(&headers, uri.query()) {
        return crate::web::config_page(&state, None, &headers).await;
    }
    match state.log.latest() {
        Ok(Some(c)) => toml_response(c.index, c.bytes.clone(), "public, max-age=10"),
        Ok(None) => error(StatusCode::NOT_FOUND, "the log has no config yet"),
        Err(e) => {
            tracing::error!("reading the config log: {e}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the config log cannot be read",
            )
        }
    }
}

async fn config_index(
    State(state): State<Arc<AppState>>,
    Path(index): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let Some(i) = index.parse::<u64>().ok().filter(|i| i.to_string() == index) else {
        return error(
            StatusCode::NOT_FOUND,
            "config index must be a decimal number",
        );
    };
    if crate::web::wants_html(&headers, uri.query()) {
        return crate::web::config_page(&state, Some(i), &headers).await;
    }
    match state.log.get(i) {
        Ok(Some(c)) => toml_response(
            c.index,
            c.bytes.clone(),
            "public, max-age=31536000, immutable",
        ),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("config index {i} is not in the log"),
        ),
        Err(e) => {
            tracing::error!("reading the config log: {e}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the config log cannot be read",
            )
        }
    }
}

// ---- publication ----

fn db_error(e: impl std::fmt::Display) -> Response {
    tracing::error!("database read: {e}");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the database cannot be read",
    )
}

async fn data_index(State(state): State<Arc<AppState>>) -> Response {
    let today = state.clock.today();
    let db = state.store.db();
    let (days, weeks) = match (db.days().await, db.weeks().await) {
        (Ok(d), Ok(w)) => (d, w),
        (Err(e), _) | (_, Err(e)) => return db_error(e),
    };
    let reports: Vec<_> = days
        .iter()
        .filter(|(d, _)| *d < today)
        .map(|(d, n)| {
            serde_json::json!({ "day": d.to_string(), "reports": n,
                "url": format!("/data/reports/{d}.ndjson") })
        })
        .collect();
    let aggregates: Vec<_> = weeks
        .iter()
        .map(|w| {
            serde_json::json!({ "week": w.to_string(),
                "json": format!("/data/aggregates/{w}.json"),
                "csv": format!("/data/aggregates/{w}.csv") })
        })
        .collect();
    let body = serde_json::json!({
        "today": today.to_string(),
        "reports": reports,
        "aggregates": aggregates,
    });
    json_ok(
        serde_json::to_string_pretty(&body).unwrap_or_default(),
        "public, max-age=60",
    )
}

async fn data_reports(State(state): State<Arc<AppState>>, Path(file): Path<String>) -> Response {
    let Some(day) = file.strip_suffix(".ndjson").and_then(parse_day) else {
        return error(
            StatusCode::NOT_FOUND,
            "expected /data/reports/YYYY-MM-DD.ndjson",
        );
    };
    if day >= state.clock.today() {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "day {day} is not complete yet (reports of a UTC day are published after it ends)"
            ),
        );
    }
    let path = match state.day_files.path(state.store.db(), day).await {
        Ok(p) => p,
        Err(e) => return db_error(e),
    };
    let len = match tokio::fs::metadata(&path).await {
        Ok(m) => m.len(),
        Err(e) => return db_error(e),
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
            (header::CACHE_CONTROL, "public, max-age=86400".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(crate::downloads::chunks(path)),
    )
        .into_response()
}

/// The query of an aggregates download.
#[derive(Debug, serde::Deserialize)]
struct AggregatesQuery {
    /// `0.90`, `0.95` (the default) or `0.99`.
    confidence: Option<String>,
}

async fn data_aggregates(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    Query(query): Query<AggregatesQuery>,
) -> Response {
    let confidence = match query
        .confidence
        .as_deref()
        .map(crate::aggregate::parse_level)
    {
        None => crate::aggregate::CONFIDENCE,
        Some(Ok(level)) => level,
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    let (stem, csv) = if let Some(s) = file.strip_suffix(".json") {
        (s, false)
    } else if let Some(s) = file.strip_suffix(".csv") {
        (s, true)
    } else {
        return error(
            StatusCode::NOT_FOUND,
            "expected /data/aggregates/WEEK.json or .csv",
        );
    };
    let Some(week) = parse_day(stem) else {
        return error(StatusCode::NOT_FOUND, "week must be YYYY-MM-DD");
    };
    let groups = match state.store.db().week_groups(week).await {
        Ok(g) => g,
        Err(e) => return db_error(e),
    };
    let agg = crate::aggregate::compute(week, &groups, &state.log, confidence);
    if csv {
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=60"),
            ],
            agg.to_csv(),
        )
            .into_response()
    } else {
        json_ok(agg.to_json(), "public, max-age=60")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths() {
        assert_eq!(check_tile_path("0/000"), Some(false));
        assert_eq!(check_tile_path("0/x001/234"), Some(false));
        assert_eq!(check_tile_path("entries/000.p/5"), Some(true));
        assert_eq!(check_tile_path("1/000.p/255"), Some(true));
        for bad in [
            "",
            "0",
            "../checkpoint",
            "0/../../etc/passwd",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/05",
            "0/x01/000",
            "0/000/",
            "abc/000",
            "0/000.p",
            "0/000.p/5/6",
            "/0/000",
            "0/x001",
            "0/0001",
        ] {
            assert_eq!(check_tile_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json_content_type(&h));
        for (v, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("text/plain", false),
            ("application/json; charset=latin1", false),
            ("application/jsonx", false),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            assert_eq!(is_json_content_type(&h), ok, "{v}");
        }
    }
}
