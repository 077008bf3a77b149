//! The ingest benchmark's reference (DESIGN.md section 9): a bare axum server that only reads
//! the request body and answers 200, on the same runtime and allocator set-up as
//! `clearcount-server`. `server/bench/run.sh` loads it with the same wrk script in the same run.
//!
//!     cargo run --release -p clearcount-server --example bare_axum -- 127.0.0.1:18081

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into());
    let app = Router::new().route(
        "/upload",
        post(|body: Bytes| async move {
            std::hint::black_box(body.len());
            r#"{"status":"ok"}"#
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
