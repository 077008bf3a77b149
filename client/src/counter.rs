//! The recording API: [`Counter`] and [`Category`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::mapping::CellSlot;
use crate::runtime::{self, DISABLED, STATE};

/// Adds `n` to `cell`, saturating at `u64::MAX` instead of wrapping.
///
/// Below 2^63 and for adds below 2^32 this is one relaxed `fetch_add` (after a load of the same
/// cache line); in-flight adds can then never wrap. Above, a compare-exchange loop saturates.
#[inline(always)]
pub(crate) fn saturating_add(cell: &AtomicU64, n: u64) {
    if n < (1 << 32) && cell.load(Ordering::Relaxed) < (1 << 63) {
        cell.fetch_add(n, Ordering::Relaxed);
    } else {
        saturating_add_slow(cell, n);
    }
}

#[cold]
fn saturating_add_slow(cell: &AtomicU64, n: u64) {
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_add(n))
    });
}

/// A counter: a cheap `static` that counts events.
///
/// ```no_run
/// use clearcount::Counter;
///
/// static RUNS: Counter = Counter::new("invocations");
///
/// fn main() {
///     clearcount::start("greet", "1.0.0");
///     RUNS.inc();
/// }
/// ```
///
/// Increments before [`start`](crate::start) are kept in memory and written to the counter file
/// once it runs. In mode `off` an increment is one atomic load and a branch.
pub struct Counter {
    pub(crate) name: &'static str,
    pub(crate) cell: CellSlot,
    pub(crate) pending: AtomicU64,
    pub(crate) registered: AtomicBool,
}

impl Counter {
    /// A counter named `name` (lowercase letters, digits and `/_.-`, as in the counter config).
    pub const fn new(name: &'static str) -> Counter {
        Counter {
            name,
            cell: CellSlot::new(),
            pending: AtomicU64::new(0),
            registered: AtomicBool::new(false),
        }
    }

    /// The counter's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Adds one.
    #[inline]
    pub fn inc(&'static self) {
        self.add(1);
    }

    /// Adds `n` (saturating at `u64::MAX`).
    #[inline]
    pub fn add(&'static self, n: u64) {
        if STATE.load(Ordering::Relaxed) == DISABLED {
            return;
        }
        match self.cell.get() {
            Some(cell) => saturating_add(cell, n),
            None => runtime::counter_cold(self, n),
        }
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter").field("name", &self.name).finish()
    }
}

pub(crate) struct LabelCell {
    pub(crate) label: Box<str>,
    pub(crate) pending: u64,
    pub(crate) cell: Option<&'static AtomicU64>,
    pub(crate) epoch: u64,
}

/// Most distinct labels a category keeps per process; further labels are dropped.
pub const MAX_LABELS: usize = 256;

/// A category counter: counts events per label, recorded as `name:label`.
///
/// ```no_run
/// use clearcount::Category;
///
/// static ENGINE: Category = Category::new("engine");
///
/// fn main() {
///     clearcount::start("greet", "1.0.0");
///     ENGINE.inc("pcre2"); // records `engine:pcre2`
/// }
/// ```
pub struct Category {
    pub(crate) name: &'static str,
    pub(crate) labels: Mutex<Vec<LabelCell>>,
    pub(crate) registered: AtomicBool,
}

impl Category {
    /// A category counter named `name`.
    pub const fn new(name: &'static str) -> Category {
        Category {
            name,
            labels: Mutex::new(Vec::new()),
            registered: AtomicBool::new(false),
        }
    }

    /// The category's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Adds one to `label` (recorded as `name:label`).
    #[inline]
    pub fn inc(&'static self, label: &str) {
        self.add(label, 1);
    }

    /// Adds `n` to `label` (saturating).
    #[inline]
    pub fn add(&'static self, label: &str, n: u64) {
        if STATE.load(Ordering::Relaxed) == DISABLED {
            return;
        }
        runtime::category_add(self, label, n);
    }
}

impl std::fmt::Debug for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Category")
            .field("name", &self.name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_instead_of_wrapping() {
        let c = AtomicU64::new(u64::MAX - 3);
        saturating_add(&c, 2);
        assert_eq!(c.load(Ordering::Relaxed), u64::MAX - 1);
        saturating_add(&c, 5);
        assert_eq!(c.load(Ordering::Relaxed), u64::MAX);
        saturating_add(&c, 1);
        assert_eq!(c.load(Ordering::Relaxed), u64::MAX);
        let c = AtomicU64::new(10);
        saturating_add(&c, u64::MAX);
        assert_eq!(c.load(Ordering::Relaxed), u64::MAX);
        let c = AtomicU64::new(1 << 63);
        saturating_add(&c, 1);
        assert_eq!(c.load(Ordering::Relaxed), (1 << 63) + 1);
    }
}
