//! Time and weeks.
//!
//! A week starts on Monday 00:00 UTC and is named by that date (`2026-11-16`).
//!
//! **For tests only:** the environment variable `CLEARCOUNT_TEST_NOW` (an RFC 3339 instant)
//! moves the clock. The clock then starts at that instant when the process first reads it and
//! runs forward in real time, so a test can start a process just before a week ends and watch it
//! switch files. Never set it outside tests.

use std::fmt;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// The environment variable that moves the clock in tests (RFC 3339). For tests only.
pub const TEST_NOW_ENV: &str = "CLEARCOUNT_TEST_NOW";

const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;

/// Seconds since the Unix epoch, honouring `CLEARCOUNT_TEST_NOW` (tests only).
pub fn now_unix() -> i64 {
    static BASE: OnceLock<Option<(i64, Instant)>> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let v = std::env::var(TEST_NOW_ENV).ok()?;
        let t = DateTime::parse_from_rfc3339(v.trim()).ok()?;
        Some((t.timestamp(), Instant::now()))
    });
    match base {
        Some((secs, at)) => secs.saturating_add(i64::try_from(at.elapsed().as_secs()).unwrap_or(0)),
        None => match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        },
    }
}

/// A week: Monday 00:00 UTC to the next Monday, named by its first day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Week {
    /// Days since 1970-01-01 of the Monday that starts the week.
    monday: i64,
}

impl Week {
    /// The week that contains the instant `unix` (seconds since the epoch).
    pub fn containing(unix: i64) -> Week {
        let days = unix.div_euclid(DAY);
        // 1970-01-01 was a Thursday: Monday-based weekday index is (days + 3) mod 7.
        Week {
            monday: days - (days + 3).rem_euclid(7),
        }
    }

    /// The current week (see [`now_unix`]).
    pub fn current() -> Week {
        Week::containing(now_unix())
    }

    /// Parses a week name `YYYY-MM-DD`, which must be a Monday.
    pub fn parse(s: &str) -> Option<Week> {
        if s.len() != 10 || !s.is_ascii() {
            return None;
        }
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        if d.weekday() != chrono::Weekday::Mon {
            return None;
        }
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
        let w = Week {
            monday: d.signed_duration_since(epoch).num_days(),
        };
        // Round-trip so that only the canonical spelling is accepted.
        (w.to_string() == s).then_some(w)
    }

    /// Seconds since the epoch at which the week starts.
    pub fn start_unix(self) -> i64 {
        self.monday.saturating_mul(DAY)
    }

    /// Seconds since the epoch at which the week ends (the next week starts).
    pub fn end_unix(self) -> i64 {
        self.start_unix().saturating_add(WEEK)
    }

    /// The week `n` weeks later (negative: earlier).
    pub fn plus_weeks(self, n: i64) -> Week {
        Week {
            monday: self.monday.saturating_add(n.saturating_mul(7)),
        }
    }

    /// Whole weeks from `self` to `later` (negative if `later` is earlier).
    pub fn weeks_until(self, later: Week) -> i64 {
        (later.monday - self.monday).div_euclid(7)
    }
}

impl fmt::Display for Week {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match DateTime::<Utc>::from_timestamp(self.start_unix(), 0) {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%d")),
            None => write!(f, "invalid-week"),
        }
    }
}

/// Formats an instant as RFC 3339 in UTC with second precision.
pub fn format_rfc3339(unix: i64) -> String {
    match DateTime::<Utc>::from_timestamp(unix, 0) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "invalid-time".to_string(),
    }
}

/// Parses an RFC 3339 instant into seconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday_utc() {
        // 2026-11-16 is a Monday; 2026-11-22T23:59:59Z is the Sunday evening of that week.
        let sunday = parse_rfc3339("2026-11-22T23:59:59Z").unwrap();
        assert_eq!(Week::containing(sunday).to_string(), "2026-11-16");
        assert_eq!(Week::containing(sunday + 1).to_string(), "2026-11-23");
        let monday = parse_rfc3339("2026-11-16T00:00:00Z").unwrap();
        assert_eq!(Week::containing(monday).start_unix(), monday);
        assert_eq!(Week::containing(monday - 1).to_string(), "2026-11-09");
        // Before the epoch too.
        assert_eq!(Week::containing(-1).to_string(), "1969-12-29");
    }

    #[test]
    fn parse_accepts_only_canonical_mondays() {
        assert!(Week::parse("2026-11-16").is_some());
        assert!(Week::parse("2026-11-17").is_none());
        assert!(Week::parse("2026-11-16 ").is_none());
        assert!(Week::parse("2026-13-16").is_none());
        assert!(Week::parse("").is_none());
        let w = Week::parse("2026-11-16").unwrap();
        assert_eq!(w.plus_weeks(1).to_string(), "2026-11-23");
        assert_eq!(w.weeks_until(w.plus_weeks(-8)), -8);
    }
}
