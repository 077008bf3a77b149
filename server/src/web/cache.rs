//! The in-memory cache of week aggregates behind the dashboard.
//!
//! A week can receive reports only while it is at most [`MAX_WEEKS_OLD`] weeks old (DESIGN.md
//! section 7), so the aggregates of older weeks are final: they are computed once and kept.
//! The few open weeks, and the list of weeks, are recomputed by the first page request after
//! this server accepted a report (concurrent requests wait for that one refresh), and otherwise
//! after [`TTL`], which catches reports accepted by other instances sharing a PostgreSQL
//! database; such a TTL refresh runs in the background while the old snapshot is served.
//!
//! Every refresh that changes anything produces a new [`Snapshot`] with a new generation
//! number, which the page cache keys on.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};

use crate::aggregate::WeekAggregates;
use crate::http::AppState;
use crate::storage::StoreError;
use crate::validate::{MAX_WEEKS_OLD, week_of};

/// Open weeks are recomputed (in the background) at least this often.
pub const TTL: Duration = Duration::from_secs(30);

/// The aggregates of every week with reports, as of one refresh.
#[derive(Debug)]
pub struct Snapshot {
    /// Changes whenever any week's aggregates or the set of weeks change.
    pub generation: u64,
    /// Every week with reports, oldest first.
    pub weeks: Vec<Arc<WeekAggregates>>,
    /// The week dates, in the same order as `weeks`.
    pub dates: Vec<NaiveDate>,
    /// The server's UTC day when the snapshot was taken.
    pub today: NaiveDate,
    /// Every day with stored reports and how many, oldest first (the raw-report links).
    pub days: Vec<(NaiveDate, u64)>,
    checked: Instant,
    accepted: u64,
}

impl Snapshot {
    fn fresh(&self, accepted: u64, today: NaiveDate) -> bool {
        today == self.today && accepted == self.accepted && self.checked.elapsed() < TTL
    }

    /// Whether anything changed locally since the snapshot, so that it must not be served.
    fn outdated(&self, accepted: u64, today: NaiveDate) -> bool {
        today != self.today || accepted != self.accepted
    }
}

#[derive(Default)]
struct Inner {
    final_weeks: BTreeMap<NaiveDate, Arc<WeekAggregates>>,
    generation: u64,
}

/// The cache: the current snapshot and what a refresh needs.
#[derive(Default)]
pub struct AggCache {
    current: RwLock<Option<Arc<Snapshot>>>,
    refresh: Arc<tokio::sync::Mutex<Inner>>,
}

/// Whether no report for `week` can be accepted any more on `today`.
pub fn is_final(week: NaiveDate, today: NaiveDate) -> bool {
    week < week_of(today) - Days::new(7 * MAX_WEEKS_OLD)
}

impl AggCache {
    fn current(&self) -> Option<Arc<Snapshot>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The latest snapshot taken, however old, without refreshing anything (`None` before the
    /// first refresh).
    pub fn latest(&self) -> Option<Arc<Snapshot>> {
        self.current()
    }

    /// Whether [`AggCache::snapshot`] would recompute something now: there is no snapshot,
    /// this server accepted reports or the day changed since it was taken, or its TTL ran out.
    pub fn stale(&self, app: &AppState) -> bool {
        let accepted = app.stats.accepted.load(Ordering::Relaxed);
        self.current()
            .is_none_or(|s| !s.fresh(accepted, app.clock.today()))
    }

    /// Recomputes the open weeks and the list of weeks now (waiting for a refresh already
    /// running, then doing another one, so that every report accepted before the call counts).
    pub async fn refresh(&self, app: &AppState) -> Result<Arc<Snapshot>, StoreError> {
        let mut inner = self.refresh.lock().await;
        self.refresh_locked(&mut inner, app).await
    }

    /// The current snapshot: returned at once when fresh, or when only the TTL ran out (a
    /// background refresh is started); recomputed first when this server accepted reports
    /// since it was taken, or the day changed, or there is none yet.
    pub async fn snapshot(
        self: &Arc<Self>,
        app: &Arc<AppState>,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let accepted = app.stats.accepted.load(Ordering::Relaxed);
        let today = app.clock.today();
        if let Some(s) = self.current() {
            if s.fresh(accepted, today) {
                return Ok(s);
            }
            if !s.outdated(accepted, today) {
                // Only the TTL ran out: serve this one, refresh behind it.
                if let Ok(mut guard) = self.refresh.clone().try_lock_owned() {
                    let (cache, app) = (self.clone(), app.clone());
                    tokio::spawn(async move {
                        if let Err(e) = cache.refresh_locked(&mut guard, &app).await {
                            tracing::error!("dashboard refresh: {e}");
                        }
                    });
                }
                return Ok(s);
            }
        }
        let mut inner = self.refresh.lock().await;
        // Another request may have refreshed while we waited.
        let accepted = app.stats.accepted.load(Ordering::Relaxed);
        if let Some(s) = self.current()
            && s.fresh(accepted, today)
        {
            return Ok(s);
        }
        self.refresh_locked(&mut inner, app).await
    }

    async fn refresh_locked(
        &self,
        inner: &mut Inner,
        app: &AppState,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let accepted = app.stats.accepted.load(Ordering::Relaxed);
        let today = app.clock.today();
        let checked = Instant::now();
        let db = app.store.db();
        let dates = db.weeks().await?;
        let days = db.days().await?;
        let old = self.current();
        let mut weeks = Vec::with_capacity(dates.len());
        for &week in &dates {
            if let Some(a) = inner.final_weeks.get(&week) {
                weeks.push(a.clone());
                continue;
            }
            let groups = db.week_groups(week).await?;
            let agg = Arc::new(crate::aggregate::compute(
                week,
                &groups,
                &app.log,
                crate::aggregate::CONFIDENCE,
            ));
            if is_final(week, today) {
                inner.final_weeks.insert(week, agg.clone());
            }
            weeks.push(agg);
        }
        inner
            .final_weeks
            .retain(|w, _| dates.binary_search(w).is_ok());
        let same = old
            .as_ref()
            .is_some_and(|o| o.dates == dates && o.weeks == weeks && o.days == days);
        if !same {
            inner.generation += 1;
        }
        let snap = Arc::new(Snapshot {
            generation: inner.generation,
            weeks,
            dates,
            today,
            days,
            checked,
            accepted,
        });
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(snap.clone());
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        crate::validate::parse_day(s).unwrap()
    }

    #[test]
    fn finality_follows_the_acceptance_window() {
        // Today Wednesday 2026-11-25: the oldest week accepted is 2026-10-26.
        let today = d("2026-11-25");
        assert!(!is_final(d("2026-10-26"), today));
        assert!(is_final(d("2026-10-19"), today));
        assert!(!is_final(d("2026-11-16"), today));
        // Every week that check_week accepts is not final.
        let mut w = d("2026-01-05");
        while w < today {
            if crate::validate::check_week(&w.to_string(), today).is_ok() {
                assert!(!is_final(w, today), "{w}");
            }
            w = w + Days::new(7);
        }
    }
}
