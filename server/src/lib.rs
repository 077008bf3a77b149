//! The clearcount server: validated report ingest, storage, aggregation and publication.
//!
//! - [`report`]: strict parsing of upload reports (untrusted bytes);
//! - [`validate`]: every acceptance rule of DESIGN.md section 7 against the logged config;
//! - [`configs`]: the configs of the transparency log, read from the log directory and cached;
//! - [`storage`]: SQLite or PostgreSQL with group commit;
//! - [`aggregate`]: weekly estimates with confidence intervals;
//! - [`http`]: the axum router;
//! - [`conn`]: accepting connections with timeouts and bounds, under hostile traffic;
//! - [`sources`]: per-source connection shares and upload limits, without identifiers;
//! - [`downloads`]: completed days' raw reports as files, streamed with bounded memory;
//! - [`metrics`]: process-wide counters in Prometheus text;
//! - [`server`]: running it all with graceful shutdown;
//! - [`demo`]: the whole pipeline in one command (`clearcount-server demo`);
//! - [`web`]: the dashboard and config review pages (HTML, inline SVG).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod aggregate;
pub mod configs;
pub mod conn;
pub mod demo;
pub mod downloads;
pub mod http;
pub mod metrics;
pub mod report;
pub mod server;
pub mod sources;
pub mod storage;
pub mod validate;
pub mod web;
