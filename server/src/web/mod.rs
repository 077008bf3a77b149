//! The public web pages: the dashboard (`/`, `/programs/{name}`) and the config review page
//! (`/config` and `/config/{index}` when a browser asks for HTML).
//!
//! Everything is rendered on the server as HTML with inline SVG charts: no JavaScript, nothing
//! loaded from another host (a strict `Content-Security-Policy` says so to the browser), no
//! cookies. Every string is escaped by the [`maud`] templates. Each chart has a `<title>`, an
//! `aria-labelledby` pointing at its heading, and a data table beneath it.
//!
//! Week aggregates are cached in memory ([`cache::AggCache`]). A background task computes
//! them and renders `/` and every program page before the server accepts connections
//! ([`ready`]), then re-renders them in the background when the data changed (checked every
//! [`REVALIDATE`]): requests are always answered from rendered pages, at most a few seconds
//! behind the data. Config review pages are cached per log size ([`config_page`]).
//!
//! - [`routes`]: the dashboard routes, to merge into the server's router;
//! - [`wants_html`] and [`config_page`]: content negotiation and the review page for `/config`.

pub mod cache;
pub mod config_page;
pub mod layout;
pub mod pages;
pub mod svg;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

use crate::http::AppState;

pub use config_page::config_page;

/// The `Content-Security-Policy` of every page: nothing but inline styles and same-origin or
/// `data:` images; no scripts, no fonts, no frames, no form targets, no other hosts.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
                       base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How often the background task checks whether the aggregates changed (reports accepted by
/// this server, a new day, or the [`cache::TTL`] ran out) and, if so, re-renders every
/// dashboard page.
pub const REVALIDATE: Duration = Duration::from_secs(2);

/// The dashboard's shared state: the server state, the aggregate cache and rendered pages.
pub struct Web {
    app: Arc<AppState>,
    cache: Arc<cache::AggCache>,
    /// Rendered pages by path, with the snapshot generation they were rendered from.
    pages: Mutex<HashMap<String, (u64, Bytes)>>,
    /// Whether a background task keeps `pages` up to date (see [`routes`]).
    background: bool,
}

/// The warm-up state of every dashboard built inside a runtime, by its server state, for
/// [`ready`].
static WARMUPS: Mutex<Vec<(Weak<AppState>, watch::Receiver<bool>)>> = Mutex::new(Vec::new());

/// Waits until the dashboard built by [`routes`] over `app` has computed the aggregates and
/// rendered `/` and every program page (returns at once when there is no such dashboard).
/// The server calls it before it accepts connections, so that no request waits for that.
pub async fn ready(app: &Arc<AppState>) {
    let rx = {
        let mut w = WARMUPS.lock().unwrap_or_else(|e| e.into_inner());
        w.retain(|(a, _)| a.strong_count() > 0);
        w.iter()
            .find(|(a, _)| std::ptr::eq(a.as_ptr(), Arc::as_ptr(app)))
            .map(|(_, rx)| rx.clone())
    };
    if let Some(mut rx) = rx {
        // An error means the task ended (runtime shutting down): nothing to wait for.
        let _ = rx.wait_for(|done| *done).await;
    }
}

impl Web {
    /// The dashboard over `app`; `background` tells whether [`Web::keep_current`] runs.
    fn new(app: Arc<AppState>, background: bool) -> Web {
        Web {
            app,
            cache: Arc::new(cache::AggCache::default()),
            pages: Mutex::new(HashMap::new()),
            background,
        }
    }

    fn lock_pages(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Bytes)>> {
        self.pages.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `body`, rendered from snapshot `generation`, unless a newer one is kept already.
    fn keep(&self, key: &str, generation: u64, body: Bytes) {
        let mut pages = self.lock_pages();
        match pages.get(key) {
            Some((g, _)) if *g > generation => {}
            _ => {
                pages.insert(key.to_string(), (generation, body));
            }
        }
    }

    /// Renders `/` and every program page of `snap` that is not rendered from it yet, on a
    /// blocking thread, and forgets pages of programs that no longer exist.
    async fn render_all(self: &Arc<Self>, snap: Arc<cache::Snapshot>) {
        let web = self.clone();
        let done = tokio::task::spawn_blocking(move || {
            let names = pages::program_names(&web.app, &snap);
            let mut keys = vec![("/".to_string(), None)];
            keys.extend(
                names
                    .iter()
                    .map(|n| (format!("/programs/{n}"), Some(n.as_str()))),
            );
            web.lock_pages()
                .retain(|k, _| keys.iter().any(|(key, _)| key == k));
            for (key, name) in &keys {
                let current = web
                    .lock_pages()
                    .get(key)
                    .is_some_and(|(g, _)| *g == snap.generation);
                if current {
                    continue;
                }
                let html = match name {
                    None => Some(pages::dashboard(&web.app, &snap)),
                    Some(n) => pages::program(&web.app, &snap, n),
                };
                if let Some(html) = html {
                    web.keep(key, snap.generation, Bytes::from(html));
                }
            }
        })
        .await;
        if let Err(e) = done {
            tracing::error!("dashboard rendering: {e}");
        }
    }

    /// The background task: computes the aggregates and renders every page (then marks the
    /// dashboard ready), and from then on every [`REVALIDATE`] refreshes the aggregates when
    /// they may have changed and re-renders the pages of a new snapshot. Requests are served
    /// the pages rendered last meanwhile, so they never wait for either.
    async fn keep_current(self: Arc<Self>, ready: watch::Sender<bool>) {
        match self.cache.snapshot(&self.app).await {
            Ok(snap) => self.render_all(snap).await,
            Err(e) => tracing::error!("dashboard warm-up: {e}"),
        }
        let _ = ready.send(true);
        let mut every = tokio::time::interval(REVALIDATE);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            // Only this task holds the dashboard: its router is gone.
            if Arc::strong_count(&self) == 1 {
                return;
            }
            if !self.cache.stale(&self.app) {
                continue;
            }
            match self.cache.refresh(&self.app).await {
                Ok(snap) => self.render_all(snap).await,
                Err(e) => tracing::error!("dashboard refresh: {e}"),
            }
        }
    }

    /// A rendered page from the cache, or renders it with `render` and keeps it.
    ///
    /// With the background task, the page rendered last is served as it is (at most about
    /// [`REVALIDATE`] plus one refresh and rendering behind the data); only a page never
    /// rendered yet is rendered here, from the latest snapshot.
    async fn page(
        &self,
        key: &str,
        render: impl FnOnce(&cache::Snapshot) -> Option<String>,
    ) -> Response {
        if self.background
            && let Some((_, body)) = self.lock_pages().get(key)
        {
            return html_response(StatusCode::OK, body.clone());
        }
        let latest = if self.background {
            self.cache.latest()
        } else {
            None
        };
        let snap = match latest {
            Some(s) => s,
            None => match self.cache.snapshot(&self.app).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("dashboard: reading aggregates: {e}");
                    return html_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        layout::error_page("Service unavailable", "The database cannot be read."),
                    );
                }
            },
        };
        if let Some((g, body)) = self.lock_pages().get(key)
            && *g == snap.generation
        {
            return html_response(StatusCode::OK, body.clone());
        }
        match render(&snap) {
            Some(html) => {
                let body = Bytes::from(html);
                if !self.background {
                    // Pages of older snapshots are dead weight: drop them.
                    self.lock_pages().retain(|_, (g, _)| *g == snap.generation);
                }
                // Bounded: unknown program names are never cached (render returns None).
                self.keep(key, snap.generation, body.clone());
                html_response(StatusCode::OK, body)
            }
            None => html_response(
                StatusCode::NOT_FOUND,
                layout::error_page("Not found", "No such program has a config or any reports."),
            ),
        }
    }
}

/// The dashboard routes (`/` and `/programs/{name}`), to merge into the server's router.
///
/// Inside a Tokio runtime, starts the background task that computes the aggregates, renders
/// every page (see [`ready`]) and keeps them current; outside one, pages are rendered by the
/// first request after each change of the data.
pub fn routes<S: Clone + Send + Sync + 'static>(app: Arc<AppState>) -> Router<S> {
    let rt = tokio::runtime::Handle::try_current().ok();
    let web = Arc::new(Web::new(app.clone(), rt.is_some()));
    if let Some(rt) = rt {
        let (tx, rx) = watch::channel(false);
        WARMUPS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((Arc::downgrade(&app), rx));
        rt.spawn(web.clone().keep_current(tx));
    }
    Router::new()
        .route("/", get(dashboard))
        .route("/programs/{name}", get(program))
        .with_state(web)
}

async fn dashboard(State(web): State<Arc<Web>>) -> Response {
    let app = web.app.clone();
    web.page("/", |snap| Some(pages::dashboard(&app, snap)))
        .await
}

async fn program(State(web): State<Arc<Web>>, Path(name): Path<String>) -> Response {
    let app = web.app.clone();
    let key = format!("/programs/{name}");
    web.page(&key, |snap| pages::program(&app, snap, &name))
        .await
}

/// An HTML response with the security headers of every page: the [`CSP`], `nosniff`, no
/// referrer, no framing. No cookie is ever set.
pub fn html_response(status: StatusCode, body: impl Into<Bytes>) -> Response {
    let mut r = (status, body.into()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=10"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

/// Whether a request for `/config` or `/config/{index}` should get the HTML review page rather
/// than the exact TOML bytes: only when the `Accept` header lists `text/html` (or XHTML)
/// explicitly with a quality at least that of `text/plain`, and the query does not ask for
/// `raw`. Clients that send no `Accept`, `*/*` or `text/plain` keep getting the TOML.
///
/// ```
/// use axum::http::{HeaderMap, HeaderValue, header};
/// use clearcount_server::web::wants_html;
///
/// let mut h = HeaderMap::new();
/// assert!(!wants_html(&h, None));
/// h.insert(header::ACCEPT, HeaderValue::from_static("text/html,*/*;q=0.8"));
/// assert!(wants_html(&h, None));
/// assert!(!wants_html(&h, Some("raw")));
/// h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
/// assert!(!wants_html(&h, None));
/// ```
pub fn wants_html(headers: &HeaderMap, query: Option<&str>) -> bool {
    if query.is_some_and(|q| q.split('&').any(|p| p == "raw" || p.starts_with("raw="))) {
        return false;
    }
    let mut html: Option<f32> = None;
    let mut plain: f32 = 0.0;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = 1.0f32;
            for p in parts {
                if let Some(v) = p.trim().strip_prefix("q=") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            match mime.as_str() {
                "text/html" | "application/xhtml+xml" => {
                    html = Some(html.map_or(q, |h| h.max(q)));
                }
                "text/plain" => plain = plain.max(q),
                _ => {}
            }
        }
    }
    html.is_some_and(|h| h > 0.0 && h >= plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn negotiation() {
        // What browsers send.
        for v in [
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
            "text/html",
            "application/xhtml+xml",
            "TEXT/HTML; q=0.5, text/plain;q=0.4",
        ] {
            assert!(wants_html(&accept(v), None), "{v}");
            assert!(!wants_html(&accept(v), Some("raw")), "{v}");
            assert!(!wants_html(&accept(v), Some("a=1&raw=1")), "{v}");
        }
        // What programs send.
        for v in [
            "*/*",
            "text/plain",
            "application/toml",
            "text/html;q=0",
            "text/plain, text/html;q=0.5",
            "",
        ] {
            assert!(!wants_html(&accept(v), None), "{v}");
        }
        assert!(!wants_html(&HeaderMap::new(), None));
    }

    #[test]
    fn security_headers() {
        let r = html_response(StatusCode::OK, "<!DOCTYPE html>");
        let h = r.headers();
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
        assert!(CSP.starts_with("default-src 'none'"));
        assert!(h.get(header::SET_COOKIE).is_none());
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}
