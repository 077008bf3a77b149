//! The recording API: [`Counter`] and [`Category`], and their slow paths.
//!
//! An increment of a started counter is one relaxed add to its word in the memory-mapped
//! counter file (found once, then cached). The slow path finds the word through the runtime
//! ([`runtime::with_cell`]) or keeps the count in memory until recording starts; the runtime
//! calls back through [`runtime::Registered`] to write those counts and to forget cached words
//! when the week's file changes. This module uses the runtime; the runtime does not use it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::mapping::CellSlot;
use crate::runtime::{self, ACTIVE, DISABLED, Registered, STATE, UNSTARTED};

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
            None => self.add_cold(n),
        }
    }

    /// The slow path of [`Counter::add`]: not started, or the word not yet known.
    #[cold]
    #[inline(never)]
    fn add_cold(&'static self, mut n: u64) {
        runtime::register(&self.registered, self);
        loop {
            match STATE.load(Ordering::SeqCst) {
                UNSTARTED => {
                    saturating_add(&self.pending, n);
                    if STATE.load(Ordering::SeqCst) == UNSTARTED {
                        return;
                    }
                    n = 0;
                }
                ACTIVE => {
                    runtime::lazy_week_timer();
                    runtime::with_cell(self.name, |cell, caching, _| {
                        if caching {
                            self.cell.set(cell);
                        }
                        let total = n.saturating_add(self.pending.swap(0, Ordering::SeqCst));
                        if total > 0 {
                            saturating_add(cell, total);
                        }
                    });
                    return;
                }
                _ => return,
            }
        }
    }
}

impl Registered for Counter {
    fn flush(&'static self) {
        self.add_cold(0);
    }

    fn forget(&self) {
        self.cell.clear();
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter").field("name", &self.name).finish()
    }
}

struct LabelCell {
    label: Box<str>,
    pending: u64,
    cell: Option<&'static AtomicU64>,
    epoch: u64,
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
    name: &'static str,
    labels: Mutex<Vec<LabelCell>>,
    registered: AtomicBool,
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
        self.add_labelled(label, n);
    }

    fn labels(&self) -> MutexGuard<'_, Vec<LabelCell>> {
        self.labels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Labels are looked up under the category's lock (then the runtime's, in that order).
    fn add_labelled(&'static self, label: &str, n: u64) {
        if label.is_empty() || label.len() + self.name.len() + 1 > crate::format::MAX_NAME {
            return;
        }
        runtime::register(&self.registered, self);
        if STATE.load(Ordering::Relaxed) == ACTIVE {
            runtime::lazy_week_timer();
        }
        let mut labels = self.labels();
        let i = match labels.iter().position(|l| &*l.label == label) {
            Some(i) => i,
            None => {
                if labels.len() >= MAX_LABELS {
                    return;
                }
                labels.push(LabelCell {
                    label: label.into(),
                    pending: 0,
                    cell: None,
                    epoch: 0,
                });
                labels.len() - 1
            }
        };
        let lc = &mut labels[i];
        if let Some(cell) = lc.cell.filter(|_| lc.epoch == runtime::epoch()) {
            saturating_add(cell, n);
            return;
        }
        match STATE.load(Ordering::SeqCst) {
            UNSTARTED => lc.pending = lc.pending.saturating_add(n),
            ACTIVE => {
                let name = format!("{}:{}", self.name, label);
                runtime::with_cell(&name, |cell, caching, epoch| {
                    lc.cell = caching.then_some(cell);
                    lc.epoch = epoch;
                    let total = n.saturating_add(std::mem::take(&mut lc.pending));
                    if total > 0 {
                        saturating_add(cell, total);
                    }
                });
            }
            _ => {}
        }
    }
}

impl Registered for Category {
    fn flush(&'static self) {
        let pending: Vec<Box<str>> = self
            .labels()
            .iter()
            .filter(|l| l.pending > 0)
            .map(|l| l.label.clone())
            .collect();
        for l in pending {
            self.add_labelled(&l, 0);
        }
    }

    /// Labels compare their epoch instead (their words are found under the category's lock).
    fn forget(&self) {}
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
