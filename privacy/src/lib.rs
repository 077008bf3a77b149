//! The mathematics that makes clearcount uploads safe and its aggregates useful
//! (DESIGN.md section 5):
//!
//! - [`rr`]: k-ary randomized response over a counter's labels;
//! - [`oue`]: optimized unary encoding, one randomized bit a label;
//! - [`sampling`]: the uniform draw `x` in [0, 1) that decides whether a weekly report is sampled,
//!   and a cryptographically secure RNG for reports ([`secure_rng`]);
//! - [`budget`]: the privacy budget (epsilon) of a report, and how it composes over weeks;
//! - [`estimate`]: unbiased and consistent label frequencies with score-type confidence
//!   intervals, from label counts, for any mechanism given by its `(p, q)`;
//! - [`planner`]: how many reports a margin needs, and the sample rate that yields them.
//!
//! This crate depends on no other clearcount crate. Every function validates its input and
//! returns a [`PrivacyError`] instead of panicking.
//!
//! ```
//! use clearcount_privacy::{estimate::Estimator, rr::RandomizedResponse, secure_rng};
//!
//! # fn main() -> Result<(), clearcount_privacy::PrivacyError> {
//! // A client randomizes label 2 of a 5-label counter with epsilon 1.
//! let rr = RandomizedResponse::new(5, 1.0)?;
//! let mut rng = secure_rng()?;
//! let reported = rr.randomize(2, &mut rng)?;
//! assert!(reported < 5);
//!
//! // The server estimates every label's frequency from the label counts it received.
//! let estimator = Estimator::new(5, Some(1.0), 0.95)?;
//! let estimates = estimator.estimate_counts(&[400, 250, 150, 120, 80])?;
//! assert_eq!(estimates.len(), 5);
//! let first = &estimates[0];
//! // The unbiased raw estimate lies in its interval; the published one is consistent.
//! assert!(first.ci_low <= first.raw_estimate && first.raw_estimate <= first.ci_high);
//! assert!((estimates.iter().map(|e| e.estimate).sum::<f64>() - 1.0).abs() < 1e-9);
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod budget;
mod error;
pub mod estimate;
pub mod oue;
pub mod planner;
pub mod rr;
pub mod sampling;
mod validate;

pub use error::PrivacyError;

/// The most labels a counter may have in this crate (k). Configs allow far fewer (at most 32
/// buckets or labels plus `none`); the cap only keeps tallies of absurd sizes from allocating.
pub const MAX_LABELS: usize = 1 << 16;
pub use sampling::secure_rng;
