//! The config review page: `/config` and `/config/{index}` for people.
//!
//! It shows a config for humans (every program and counter with its description, rationale,
//! owner, link, expiry, buckets or labels, epsilon and the sample rate), the human diff of every
//! log entry against the one before it (from [`clearcount_config_log::config::diff`]), the
//! current signed checkpoint, and the exact `clearcount-log verify` command to audit the log.
//!
//! Rendered pages are kept per log size (and checkpoint, key file, day and host): the log only
//! grows, and a new entry changes the size, so a page is rendered once per change.
//!
//! The verifier key shown in that command is read from the public file [`VERIFIER_KEY_FILE`]
//! in the log directory, and shown only when it verifies the current checkpoint.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use chrono::NaiveDate;
use clearcount_config_log::checkpoint::Checkpoint;
use clearcount_config_log::config::{Change, Config, CounterView, ReviewDiff, diff};
use clearcount_config_log::note::Verifier;
use maud::{Markup, html};

use super::html_response;
use super::layout::{error_page, page};
use crate::configs::LoadedConfig;
use crate::http::AppState;

/// The file in the log directory that holds the log's verifier key (public, one line:
/// `name+hex(keyid)+base64(0x01||pubkey)`), put there by the operator.
pub const VERIFIER_KEY_FILE: &str = "verifier.key";

/// What the review page shows besides the configs.
#[derive(Debug, Clone, Default)]
pub struct LogView {
    /// The signed checkpoint note, exactly as served at `/log/checkpoint`.
    pub checkpoint: Option<Vec<u8>>,
    /// The verifier key, when published and it verifies the checkpoint.
    pub verifier: Option<String>,
    /// Why a published verifier key is not shown.
    pub verifier_problem: Option<String>,
    /// The URL under which the log is served (`…/log`), when known.
    pub log_url: Option<String>,
}

/// The log base URL from the request's `Host` header (`http` for loopback hosts, else
/// `https`), or `None` when the header is missing or not a plain host name.
pub fn log_url(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !ok {
        return None;
    }
    let local =
        host.starts_with("localhost") || host.starts_with("127.") || host.starts_with("[::1]");
    let scheme = if local { "http" } else { "https" };
    Some(format!("{scheme}://{host}/log"))
}

/// The public files of the log directory that the page shows: the checkpoint note and the
/// verifier key file's text.
type LogFiles = (Option<Vec<u8>>, Option<String>);

async fn read_log_files(state: &AppState) -> LogFiles {
    let checkpoint = tokio::fs::read(state.log_dir.join("checkpoint")).await.ok();
    let key = tokio::fs::read_to_string(state.log_dir.join(VERIFIER_KEY_FILE))
        .await
        .ok();
    (checkpoint, key)
}

fn view_of((checkpoint, key): LogFiles, log_url: Option<String>) -> LogView {
    let mut view = LogView {
        log_url,
        ..LogView::default()
    };
    if let Some(text) = key {
        let key = text.trim();
        match Verifier::parse(key) {
            Ok(v) => match checkpoint.as_deref().map(|c| Checkpoint::open(c, &v)) {
                Some(Ok(_)) => view.verifier = Some(key.to_string()),
                Some(Err(e)) => {
                    view.verifier_problem = Some(format!(
                        "the published verifier key does not verify the current checkpoint: {e}"
                    ))
                }
                None => {}
            },
            Err(e) => {
                view.verifier_problem =
                    Some(format!("the published verifier key is malformed: {e}"))
            }
        }
    }
    view.checkpoint = checkpoint;
    view
}

/// Reads the checkpoint and the verifier key from the log directory.
pub async fn log_view(state: &AppState, headers: &HeaderMap) -> LogView {
    view_of(read_log_files(state).await, log_url(headers))
}

/// At most this many rendered review pages are kept (all of them for one log size: a new
/// entry makes every page outdated, as each shows the log size).
const MAX_CACHED_PAGES: usize = 32;

/// What a rendered review page depends on besides the log's files: the log directory, the
/// entry (`None`: latest with history), the log size, the day (expiry marks) and the log URL
/// (from the `Host` header).
type PageKey = (PathBuf, Option<u64>, u64, NaiveDate, Option<String>);

/// Rendered review pages, with the log files they were rendered from. The log only grows, so
/// a page rendered for a size and the same checkpoint and key files is still exact.
static PAGES: LazyLock<Mutex<HashMap<PageKey, (LogFiles, Bytes)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn cached_page(key: &PageKey, files: &LogFiles) -> Option<Bytes> {
    let pages = PAGES.lock().unwrap_or_else(|e| e.into_inner());
    pages
        .get(key)
        .filter(|(f, _)| f == files)
        .map(|(_, body)| body.clone())
}

fn keep_page(key: PageKey, files: LogFiles, body: Bytes) {
    let mut pages = PAGES.lock().unwrap_or_else(|e| e.into_inner());
    // Pages of another size of the same log are outdated for good.
    pages.retain(|k, _| k.0 != key.0 || k.2 == key.2);
    if pages.len() >= MAX_CACHED_PAGES {
        pages.clear();
    }
    pages.insert(key, (files, body));
}

/// The HTML review page of the latest config (`index` `None`, with the whole history) or of
/// entry `index` (with its diff against the entry before it).
pub async fn config_page(state: &AppState, index: Option<u64>, headers: &HeaderMap) -> Response {
    let size = state.log.size();
    let target = match index {
        Some(i) => i,
        None if size == 0 => {
            return html_response(
                StatusCode::NOT_FOUND,
                error_page("No config yet", "The log has no config entry yet."),
            );
        }
        None => size - 1,
    };
    if target >= size {
        return html_response(
            StatusCode::NOT_FOUND,
            error_page(
                "No such config",
                &format!("Config index {target} is not in the log of {size} entries."),
            ),
        );
    }
    let last = if index.is_none() { size - 1 } else { target };
    let first = if index.is_none() {
        0
    } else {
        target.saturating_sub(1)
    };
    let files = read_log_files(state).await;
    let url = log_url(headers);
    let today = state.clock.today();
    let key: PageKey = (state.log_dir.clone(), index, size, today, url.clone());
    if let Some(body) = cached_page(&key, &files) {
        return html_response(StatusCode::OK, body);
    }
    let mut entries = Vec::new();
    for i in first..=last {
        match state.log.get(i) {
            Ok(Some(c)) => entries.push(c),
            Ok(None) => break,
            Err(e) => {
                tracing::error!("reading the config log: {e}");
                return html_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    error_page("Service unavailable", "The config log cannot be read."),
                );
            }
        }
    }
    let view = view_of(files.clone(), url);
    let html = render(
        &entries,
        target,
        index.is_none(),
        size,
        &state.log.origin(),
        &view,
        today,
    );
    let body = Bytes::from(html);
    keep_page(key, files, body.clone());
    html_response(StatusCode::OK, body)
}

/// Renders the page from consecutive log entries (`entries[0]` is the entry before `target`
/// when there is one), without any I/O.
pub fn render(
    entries: &[Arc<LoadedConfig>],
    target: u64,
    with_history: bool,
    size: u64,
    origin: &str,
    view: &LogView,
    today: NaiveDate,
) -> String {
    let find = |i: u64| entries.iter().find(|e| e.index == i);
    let Some(current) = find(target) else {
        return error_page("No such config", "The entry could not be read.");
    };
    let prev = target.checked_sub(1).and_then(find);
    let title = if with_history {
        format!("Counter config #{target} (latest)")
    } else {
        format!("Counter config #{target}")
    };
    let body = html! {
        p {
            "Entry " (target) " of the transparency log " code { (origin) } " (" (size) " entries). "
            "This is everything that clients of this server may ever report, and why. "
            "Exact file: " a href=(format!("/config/{target}?raw")) { "config " (target) " (TOML)" } "."
            @if !with_history { " " a href="/config" { "Latest config and full history" } "." }
        }
        @match &current.parsed {
            Ok(cfg) => { (config_view(cfg, today)) }
            Err(e) => { p.bad { "This entry is not a usable config: " (e) } }
        }
        h2 id="changes" { "What changed in entry " (target) }
        (entry_diff(prev.map(|p| &**p), current))
        @if with_history && entries.len() > 1 {
            h2 id="history" { "History of the log" }
            p { "Every entry of the log, newest first, with what changed against the entry before it." }
            @for e in entries.iter().rev() {
                section.entry id=(format!("entry-{}", e.index)) {
                    h3 { a href=(format!("/config/{}", e.index)) { "Entry " (e.index) } }
                    p.downloads { a href=(format!("/config/{}?raw", e.index)) { "TOML" } }
                    (entry_diff(e.index.checked_sub(1).and_then(find).map(|p| &**p), e))
                }
            }
        }
        (checkpoint_view(view, size))
    };
    page(&title, body)
}

fn entry_diff(prev: Option<&LoadedConfig>, cur: &LoadedConfig) -> Markup {
    let new = match &cur.parsed {
        Ok(n) => n,
        Err(e) => return html! { p.bad { "Entry " (cur.index) " is not a usable config: " (e) } },
    };
    if cur.index == 0 {
        return review(&diff(None, new));
    }
    match prev.map(|p| &p.parsed) {
        Some(Ok(old)) => review(&diff(Some(old), new)),
        Some(Err(_)) => html! {
            p.muted { "The entry before is not a usable config: this one is shown as new." }
            (review(&diff(None, new)))
        },
        None => html! { p.muted { "The entry before " (cur.index) " could not be read." } },
    }
}

fn review(d: &ReviewDiff) -> Markup {
    html! {
        @if d.is_empty() {
            p { "No change." }
        } @else {
            ul.changes {
                @for c in &d.changes { li { (change(c)) } }
            }
        }
        @if !d.budgets.is_empty() {
            div.table-wrap {
                table.budgets {
                    caption { "Privacy budget per program (sum of ε over its counters)" }
                    thead { tr {
                        th scope="col" { "Program" } th scope="col" { "ε total" }
                        th scope="col" { "before" } th scope="col" { "max_epsilon" }
                        th scope="col" { "without randomized response" }
                    } }
                    tbody {
                        @for b in &d.budgets {
                            tr {
                                th scope="row" { (b.program) }
                                td { (b.epsilon_total) }
                                td { @match b.old_epsilon_total { Some(o) => (o), None => "new" } }
                                td { (b.max_epsilon) }
                                td {
                                    @if b.without_randomized_response.is_empty() { "none" }
                                    @else { span.warn { (b.without_randomized_response.join(", ")) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn epsilon(e: Option<f64>) -> Markup {
    html! {
        @match e {
            Some(e) => { "ε = " (e) }
            None => { span.warn { "NO RANDOMIZED RESPONSE: reported as recorded" } }
        }
    }
}

fn counter_summary(c: &CounterView) -> Markup {
    html! {
        code { (c.name) } " (" (c.kind) ", labels " code { (c.report_labels.join(", ")) } ", " (epsilon(c.epsilon)) ", expires " (c.expires) "): "
        (c.description) " Why: " (c.rationale) " Owner: " (c.owner) ". Link: " (link(&c.link))
    }
}

fn change(c: &Change) -> Markup {
    html! {
        @match c {
            Change::Setting { key, old: None, new } => {
                span.added { "+ " } "setting " code { (key) } " = " code { (new) }
            }
            Change::Setting { key, old: Some(old), new } => {
                "~ setting " code { (key) } ": " code { (old) } " → " code { (new) }
            }
            Change::ProgramAdded { program, versions } => {
                span.added { "+ program " } code { (program) } " (versions " code { (versions) } ")"
            }
            Change::ProgramRemoved { program, versions } => {
                span.removed { "− program " } code { (program) } " (versions " code { (versions) } ")"
            }
            Change::ProgramChanged { program, key, old, new } => {
                "~ program " code { (program) } " " code { (key) } ": " code { (old) } " → " code { (new) }
            }
            Change::CounterAdded { program, counter } => {
                span.added { "+ counter " } code { (program) } " " (counter_summary(counter))
            }
            Change::CounterRemoved { program, counter } => {
                span.removed { "− counter " } code { (program) } " " (counter_summary(counter))
            }
            Change::CounterChanged { program, counter, key, old, new, loses_randomized_response } => {
                "~ counter " code { (program) " " (counter) } " " code { (key) } ": " code { (old) } " → " code { (new) }
                @if *loses_randomized_response {
                    " " span.warn { "LOSES RANDOMIZED RESPONSE" }
                }
            }
        }
    }
}

/// A link from the config: a real link only for http(s) URLs, plain text otherwise.
fn link(url: &str) -> Markup {
    let safe = url.starts_with("https://") || url.starts_with("http://");
    html! {
        @if safe { a href=(url) rel="nofollow noopener noreferrer" { (url) } } @else { code { (url) } }
    }
}

fn config_view(cfg: &Config, today: NaiveDate) -> Markup {
    html! {
        h2 id="settings" { "Settings" }
        dl.fields {
            dt { "origin" } dd { code { (cfg.origin) } }
            dt { "sample_rate" } dd {
                (cfg.sample_rate) " (" (format!("{:.1}%", cfg.sample_rate * 100.0))
                " of opted-in weekly reports are uploaded; the others never leave the machine)"
            }
            dt { "max_epsilon" } dd { (cfg.max_epsilon) " per program per weekly report" }
            dt { "os" } dd { (cfg.os.join(", ")) }
            dt { "arch" } dd { (cfg.arch.join(", ")) }
        }
        h2 id="programs" { "Programs and counters" }
        @if cfg.programs.is_empty() { p { "This config allows no program to report anything." } }
        @for p in &cfg.programs {
            @let total: f64 = p.counters.iter().filter_map(|c| c.epsilon).sum();
            @let no_rr: Vec<&str> = p.counters.iter().filter(|c| c.epsilon.is_none()).map(|c| c.name.as_str()).collect();
            section.program id=(format!("program-{}", p.name)) {
                h3 { a href=(format!("/programs/{}", p.name)) { (p.name) } }
                p {
                    "Versions " code { (p.versions) } " (others report as " code { "devel" } "). "
                    (p.counters.len()) " counters; ε sum " (total) " of max " (cfg.max_epsilon) "."
                    @if !no_rr.is_empty() {
                        " " span.warn { (no_rr.len()) " counter(s) without randomized response: " (no_rr.join(", ")) }
                    }
                }
                @for c in &p.counters {
                    @let v = CounterView::of(c);
                    article.counter {
                        h4 { code { (c.name) } @if !c.is_live_on(today) { " " span.bad { "expired" } } }
                        dl.fields {
                            dt { "description" } dd { (c.description) }
                            dt { "rationale" } dd { (c.rationale) }
                            dt { "kind" } dd { (v.kind) }
                            @match c.kind {
                                clearcount_config_log::config::CounterKind::Count => {
                                    dt { "buckets" } dd { code { (v.report_labels.join(", ")) } " (lower bounds of the weekly count)" }
                                }
                                clearcount_config_log::config::CounterKind::Category => {
                                    dt { "labels" } dd { code { (v.report_labels.join(", ")) } " (the most-used label of the week; none: never used)" }
                                }
                            }
                            dt { "epsilon" } dd { (epsilon(c.epsilon)) }
                            dt { "owner" } dd { (c.owner) }
                            dt { "link" } dd { (link(&c.link)) }
                            dt { "expires" } dd { (c.expires) }
                        }
                    }
                }
            }
        }
    }
}

fn checkpoint_view(view: &LogView, size: u64) -> Markup {
    let parsed = view
        .checkpoint
        .as_deref()
        .and_then(|c| Checkpoint::parse_note_unverified(c).ok());
    let url = view
        .log_url
        .clone()
        .unwrap_or_else(|| "https://SERVER/log".to_string());
    let key = view
        .verifier
        .clone()
        .unwrap_or_else(|| "VERIFIER_KEY".to_string());
    html! {
        h2 id="checkpoint" { "Current checkpoint and how to verify it" }
        @match &view.checkpoint {
            Some(note) => {
                p {
                    "The log's signed checkpoint ("
                    a href="/log/checkpoint" { "/log/checkpoint" } ")"
                    @if let Some(c) = &parsed { ": " (c.size) " entries." } @else { "." }
                    @if parsed.as_ref().is_some_and(|c| c.size != size) {
                        " " span.muted { "(the page was rendered for " (size) " entries; the log grew since)" }
                    }
                }
                pre.checkpoint { (String::from_utf8_lossy(note)) }
            }
            None => { p.bad { "The checkpoint cannot be read." } }
        }
        p { "Audit the whole log (every tile and entry recomputed, the signature checked) with:" }
        pre.verify { code { "clearcount-log verify " (url) " --key " (key) } }
        @if view.verifier.is_none() {
            p.muted {
                @if let Some(p) = &view.verifier_problem { span.bad { (p) } " " }
                "This server publishes no verifier key: use the key your client pins (never one "
                "taken from this page alone)."
            }
        } @else {
            p.muted { "Compare this key with the one your client pins: a page can only tell you what the server claims." }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn log_urls() {
        let mut h = HeaderMap::new();
        assert_eq!(log_url(&h), None);
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert_eq!(log_url(&h).as_deref(), Some("http://127.0.0.1:8080/log"));
        h.insert(
            header::HOST,
            HeaderValue::from_static("telemetry.example.org"),
        );
        assert_eq!(
            log_url(&h).as_deref(),
            Some("https://telemetry.example.org/log")
        );
        h.insert(header::HOST, HeaderValue::from_static("evil\"><x"));
        assert_eq!(log_url(&h), None);
    }

    #[test]
    fn only_web_links_are_links() {
        assert!(link("https://x.org/1").into_string().contains("href"));
        let js = link("javascript:alert(1)").into_string();
        assert!(!js.contains("href"));
    }
}
