//! The error type of this crate.

use thiserror::Error;

/// Everything that can go wrong in this crate: invalid parameters or inputs. No function of this
/// crate panics on bad input; it returns one of these instead.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum PrivacyError {
    /// A counter needs between 1 and [`crate::MAX_LABELS`] labels.
    #[error("a counter needs between 1 and 65536 labels, got {0}")]
    InvalidLabelCount(usize),
    /// Epsilon must be a finite number greater than 0.
    #[error("epsilon must be finite and greater than 0, got {0}")]
    InvalidEpsilon(f64),
    /// A counter's epsilon is above the limit allowed by the config rules.
    #[error("epsilon {epsilon} is above the limit of {limit}")]
    EpsilonAboveLimit {
        /// The epsilon given.
        epsilon: f64,
        /// The largest epsilon allowed.
        limit: f64,
    },
    /// A confidence level must lie strictly between 0 and 1.
    #[error("confidence must lie strictly between 0 and 1, got {0}")]
    InvalidConfidence(f64),
    /// A margin (half-width of a confidence interval) must lie in (0, 1].
    #[error("margin must be greater than 0 and at most 1, got {0}")]
    InvalidMargin(f64),
    /// A sample rate must lie in (0, 1].
    #[error("sample rate must be greater than 0 and at most 1, got {0}")]
    InvalidSampleRate(f64),
    /// A label index is not below the number of labels.
    #[error("label index {index} is out of range for a counter of {k} labels")]
    LabelOutOfRange {
        /// The index given.
        index: usize,
        /// The number of labels.
        k: usize,
    },
    /// There are no reports, so there is nothing to estimate (n = 0).
    #[error("no reports: an estimate needs at least 1 report")]
    NoReports,
    /// A label was observed more often than there are reports.
    #[error("observed count {observed} exceeds the number of reports {reports}")]
    ObservedExceedsReports {
        /// The observed count of the label.
        observed: u64,
        /// The number of reports.
        reports: u64,
    },
    /// A counter's label counts do not match its number of labels.
    #[error("expected counts for {expected} labels, got {got}")]
    LabelCountMismatch {
        /// The number of labels of the counter.
        expected: usize,
        /// The number of counts given.
        got: usize,
    },
    /// Epsilon is so small that `p - q` underflows and nothing can be estimated or planned.
    #[error("epsilon {0} is too small to estimate from")]
    EpsilonTooSmall(f64),
    /// The label counts of a counter add up to more than `u64::MAX`.
    #[error("label counts overflow a 64-bit total")]
    CountOverflow,
    /// The epsilons of a program's counters add up to more than the config's `max_epsilon`.
    #[error("the report's epsilon {total} exceeds max_epsilon {max}")]
    BudgetExceeded {
        /// The sum of the counters' epsilons.
        total: f64,
        /// The allowed maximum.
        max: f64,
    },
    /// Fewer installs than the reports needed: even a sample rate of 1 cannot reach the margin.
    #[error("{installs} installs cannot yield the {needed} weekly reports needed")]
    TooFewInstalls {
        /// Reports needed.
        needed: u64,
        /// Installs available.
        installs: u64,
    },
    /// The planned number of reports does not fit in a `u64` (margin or epsilon far too small).
    #[error("the number of reports needed is too large to represent")]
    PlanTooLarge,
    /// The operating system's random number generator failed.
    #[error("the operating system's secure random number generator failed: {0}")]
    SecureRngUnavailable(String),
}
