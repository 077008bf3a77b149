//! Accepting connections under hostile traffic (DESIGN.md section 7, "hostile connections").
//!
//! [`serve`] is the accept loop of the server, in place of `axum::serve`, so that:
//! - a connection must deliver a request head within [`ConnLimits::header_timeout`], counted
//!   from its opening or from the end of the previous response (so the same bound closes idle
//!   keep-alive and silent connections);
//! - a response whose writes make no progress for [`ConnLimits::write_timeout`] is abandoned
//!   and its connection closed ([`WriteDeadline`]), so clients that never read hold nothing
//!   for long;
//! - at most [`ConnLimits::max_connections`] connections are open at once, which
//!   [`default_max_connections`] keeps below the process's file limit; when all are taken the
//!   loop waits for one to close instead of failing `accept` with "too many open files";
//! - one source holds at most its share of them ([`crate::sources::Sources::connect`]):
//!   connections beyond it are closed at once, so one source holding all it can leaves room
//!   for every other.
//!
//! Request bodies have their own time limit in the upload handler, and whole requests the
//! router's timeout.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tower::ServiceExt;

use crate::metrics::Metrics;
use crate::sources::Sources;

/// Connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Time to receive a request head, from the connection's opening or the previous response.
    pub header_timeout: Duration,
    /// Time a response write may make no progress.
    pub write_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one source.
    pub max_connections_per_source: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        let max = default_max_connections();
        ConnLimits {
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_connections: max,
            max_connections_per_source: default_per_source(max),
        }
    }
}

/// The most a connection buffers in each direction. hyper's default (about 400 KiB) lets a
/// download that its client never reads park that much response in the server per
/// connection; request heads and upload bodies need far less, and a download streams in
/// [`crate::downloads::CHUNK`]s.
pub const MAX_BUF: usize = 16 * 1024;

/// File descriptors kept for everything but client connections: the database and its
/// write-ahead log, the config log's files, downloads' files, the runtime.
pub const RESERVED_FILES: u64 = 128;

/// Connections the process can hold: its soft file limit less [`RESERVED_FILES`] (at least 16,
/// at most 1,000,000).
pub fn default_max_connections() -> usize {
    let files = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1_000_000);
    files
        .saturating_sub(RESERVED_FILES)
        .clamp(16, 1_000_000)
        .try_into()
        .unwrap_or(16)
}

/// One source's share of `max` connections: an eighth, at least 16.
pub fn default_per_source(max: usize) -> usize {
    (max / 8).max(16).min(max)
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open connections finish
/// their requests (at most `drain` long) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    sources: Arc<Sources>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_BUF);
    let last_accept_error = AtomicU64::new(0);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    accept_error(&e, &last_accept_error);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(source_slot) = sources.connect(peer.ip()) else {
            metrics.connections_refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(WriteDeadline::new(stream, limits.write_timeout));
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let conn = graceful.watch(http.serve_connection(io, service));
        let open = metrics.clone();
        open.connections_open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            // Errors are the peer's doing (timeouts, resets): nothing to log.
            let _ = conn.await;
            open.connections_open.fetch_sub(1, Ordering::Relaxed);
            drop(source_slot);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open after {} s of shutdown were closed",
            drain.as_secs()
        );
    }
}

/// Logs a failed `accept` at most once a minute (an attacker must not fill the logs).
fn accept_error(e: &io::Error, last: &AtomicU64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if now >= last.load(Ordering::Relaxed) + 60 {
        last.store(now, Ordering::Relaxed);
        tracing::warn!("accepting a connection failed (repeats are not logged for 60 s): {e}");
    }
}

/// A TCP stream whose writes fail with `TimedOut` after making no progress for a while.
pub struct WriteDeadline {
    inner: TcpStream,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl WriteDeadline {
    /// Wraps `inner`.
    pub fn new(inner: TcpStream, limit: Duration) -> WriteDeadline {
        WriteDeadline {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Passes on a finished write (progress: the clock stops) or checks the clock of a stalled
    /// one.
    fn watch<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stalled = None;
            return r;
        }
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if sleep.as_mut().poll(cx).is_ready() {
            self.stalled = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing for the write timeout",
            )));
        }
        Poll::Pending
    }
}

impl AsyncRead for WriteDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, r)
    }
}

/// The peer address of a request, as [`serve`] records it.
pub fn peer(req_extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    req_extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}
