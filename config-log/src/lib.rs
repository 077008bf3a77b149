//! The public counter config of clearcount and the transparency log that publishes it.
//!
//! - [`config`]: the TOML schema, lint and the human review diff.
//! - [`merkle`], [`note`], [`checkpoint`], [`tiles`]: RFC 6962 / RFC 9162 trees and proofs, C2SP
//!   signed notes (byte-compatible with Go's `golang.org/x/mod/sumdb/note`), tlog-checkpoint and
//!   tlog-tiles.
//! - [`store`]: the log as static tlog-tiles files, with crash-safe appends.
//! - [`reader`]: the verifying reader clients use to accept a config only with proof.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod checkpoint;
pub mod config;
mod flock;
pub mod merkle;
pub mod note;
pub mod reader;
pub mod store;
pub mod tiles;
