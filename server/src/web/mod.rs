//! The public web pages: the dashboard (`/`, `/programs/{name}`) and the config review page
//! (`/config` and `/config/{index}` when a browser asks for HTML).
//!
//! Everything is rendered on the server as HTML with inline SVG charts: no JavaScript, nothing
//! loaded from another host (a strict `Content-Security-Policy` says so to the browser), no
//! cookies. Every string is escaped by the [`maud`] templates. Each chart has a `<title>`, an
//! `aria-labelledby` pointing at its heading, and a data table beneath it.
//!
//! Week aggregates are cached in memory ([`cache::AggCache`]); rendered pages are cached per
//! snapshot of the aggregates, so a page is computed once per change of the data.
//!
//! - [`routes`]: the dashboard routes, to merge into the server's router;
//! - [`wants_html`] and [`config_page`]: content negotiation and the review page for `/config`.

pub mod cache;
pub mod config_page;
pub mod layout;
pub mod pages;
pub mod svg;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::AppState;

pub use config_page::config_page;

/// The `Content-Security-Policy` of every page: nothing but inline styles and same-origin or
/// `data:` images; no scripts, no fonts, no frames, no form targets, no other hosts.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
                       base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard's shared state: the server state, the aggregate cache and rendered pages.
pub struct Web {
    app: Arc<AppState>,
    cache: Arc<cache::AggCache>,
    /// Rendered pages by path, with the snapshot generation they were rendered from.
    pages: Mutex<HashMap<String, (u64, Bytes)>>,
}

impl Web {
    /// The dashboard over `app`.
    pub fn new(app: Arc<AppState>) -> Web {
        Web {
            app,
            cache: Arc::new(cache::AggCache::default()),
            pages: Mutex::new(HashMap::new()),
        }
    }

    /// A rendered page from the cache, or renders it with `render` and keeps it.
    async fn page(
        &self,
        key: &str,
        render: impl FnOnce(&cache::Snapshot) -> Option<String>,
    ) -> Response {
        let snap = match self.cache.snapshot(&self.app).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("dashboard: reading aggregates: {e}");
                return html_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    layout::error_page("Service unavailable", "The database cannot be read."),
                );
            }
        };
        if let Some((g, body)) = self
            .pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            && *g == snap.generation
        {
            return html_response(StatusCode::OK, body.clone());
        }
        match render(&snap) {
            Some(html) => {
                let body = Bytes::from(html);
                let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
                // Pages of older snapshots are dead weight: drop them.
                pages.retain(|_, (g, _)| *g == snap.generation);
                // Bounded: unknown program names are never cached (render returns None).
                pages.insert(key.to_string(), (snap.generation, body.clone()));
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
/// Starts warming the aggregate cache in the background when called inside a Tokio runtime.
pub fn routes<S: Clone + Send + Sync + 'static>(app: Arc<AppState>) -> Router<S> {
    let web = Arc::new(Web::new(app));
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let w = web.clone();
        rt.spawn(async move {
            if let Err(e) = w.cache.snapshot(&w.app).await {
                tracing::error!("dashboard warm-up: {e}");
            }
        });
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
