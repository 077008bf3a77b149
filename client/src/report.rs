//! Local weekly reports: reduction of counter files, retention, reading and merging.
//!
//! A local report (`<dir>/reports/<week>.json`) holds the exact counts of every counter recorded
//! in that week, per program, version, os and arch:
//!
//! ```json
//! {
//!   "format": 1,
//!   "week": "2026-11-16",
//!   "programs": [
//!     {
//!       "name": "greet",
//!       "version": "1.0.0",
//!       "os": "linux",
//!       "arch": "x86_64",
//!       "counters": { "invocations": 12, "style:loud": 3 }
//!     }
//!   ]
//! }
//! ```
//!
//! It never leaves the machine by itself.

use crate::flock::FileLock;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::clock::{self, Week};
use crate::file::{self, COUNT_SUFFIX};
use crate::format::{Meta, Snapshot};
use crate::{Layout, support};

/// The local report format version.
pub const REPORT_FORMAT: u32 = 1;
/// How long after a week ends its counter files are reduced (late writers finish first).
pub const GRACE_SECONDS: i64 = 3600;
/// Largest local report accepted.
pub const MAX_REPORT_BYTES: usize = 16 * 1024 * 1024;

/// The counts of one program, version, os and arch in one week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramCounts {
    /// Program name.
    pub name: String,
    /// Program version.
    pub version: String,
    /// Operating system (`std::env::consts::OS`).
    pub os: String,
    /// Architecture (`std::env::consts::ARCH`).
    pub arch: String,
    /// Counter name (`name` or `name:label`) to exact count.
    pub counters: BTreeMap<String, u64>,
}

/// The local report of one week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalReport {
    /// Always [`REPORT_FORMAT`].
    pub format: u32,
    /// The week (its Monday, `YYYY-MM-DD`).
    pub week: String,
    /// One entry per program, version, os and arch, sorted.
    pub programs: Vec<ProgramCounts>,
}

/// Why a report or reduction failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The JSON is malformed or has unknown fields.
    #[error("malformed local report: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON is well formed but not a valid report.
    #[error("invalid local report: {0}")]
    Invalid(&'static str),
    /// An I/O error.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Another process is reducing right now.
    #[error("another process is reducing")]
    Busy,
    /// A counter file error.
    #[error(transparent)]
    File(#[from] file::FileError),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ReportError + 'a {
    move |source| ReportError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

impl LocalReport {
    /// An empty report for `week`.
    pub fn new(week: Week) -> LocalReport {
        LocalReport {
            format: REPORT_FORMAT,
            week: week.to_string(),
            programs: Vec::new(),
        }
    }

    /// Parses and validates a report. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<LocalReport, ReportError> {
        if bytes.len() > MAX_REPORT_BYTES {
            return Err(ReportError::Invalid("too large"));
        }
        let r: LocalReport = serde_json::from_slice(bytes)?;
        if r.format != REPORT_FORMAT {
            return Err(ReportError::Invalid("unknown format"));
        }
        if Week::parse(&r.week).is_none() {
            return Err(ReportError::Invalid("week is not a Monday YYYY-MM-DD"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &r.programs {
            for s in [&p.name, &p.version, &p.os, &p.arch] {
                if s.is_empty() || s.len() > 255 {
                    return Err(ReportError::Invalid("empty or long name"));
                }
            }
            if p.counters
                .keys()
                .any(|k| k.is_empty() || k.len() > crate::format::MAX_NAME)
            {
                return Err(ReportError::Invalid("empty or long counter name"));
            }
            if !seen.insert((&p.name, &p.version, &p.os, &p.arch)) {
                return Err(ReportError::Invalid("program listed twice"));
            }
        }
        Ok(r)
    }

    /// The week.
    pub fn week(&self) -> Option<Week> {
        Week::parse(&self.week)
    }

    /// Adds the counts of a counter file (saturating).
    pub fn merge_snapshot(&mut self, snap: &Snapshot) {
        self.merge_counts(&snap.meta, &snap.counters);
    }

    fn merge_counts(&mut self, meta: &Meta, counters: &BTreeMap<String, u64>) {
        let key = |p: &ProgramCounts| {
            (
                p.name.clone(),
                p.version.clone(),
                p.os.clone(),
                p.arch.clone(),
            )
        };
        let want = (
            meta.program.clone(),
            meta.version.clone(),
            meta.os.clone(),
            meta.arch.clone(),
        );
        let i = match self.programs.iter().position(|p| key(p) == want) {
            Some(i) => i,
            None => {
                self.programs.push(ProgramCounts {
                    name: meta.program.clone(),
                    version: meta.version.clone(),
                    os: meta.os.clone(),
                    arch: meta.arch.clone(),
                    counters: BTreeMap::new(),
                });
                self.programs.sort_by_key(key);
                self.programs
                    .iter()
                    .position(|p| key(p) == want)
                    .unwrap_or(0)
            }
        };
        if let Some(p) = self.programs.get_mut(i) {
            for (k, v) in counters {
                let e = p.counters.entry(k.clone()).or_insert(0);
                *e = e.saturating_add(*v);
            }
        }
    }

    /// Pretty JSON (with a final newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Keeps only the entries of `program`; returns whether anything is left.
    pub fn retain_program(&mut self, keep: impl Fn(&str) -> bool) -> bool {
        self.programs.retain(|p| keep(&p.name));
        !self.programs.is_empty()
    }
}

/// The week named at the start of a counter or report file name (`2026-11-16_...`).
pub fn week_of_file_name(name: &str) -> Option<Week> {
    Week::parse(name.get(..10)?)
}

/// Writes `bytes` to `path` atomically (temporary file, then rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    file::size_allowed(bytes.len() as u64)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), support::unique()));
    let result = (|| {
        // `create_new`: never through a symlink planted under the temporary name.
        let mut f = fs::File::create_new(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("sync", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads the stored report of `week`, if any. A symlink, FIFO, directory or file over
/// [`MAX_REPORT_BYTES`] in its place is an error (never followed, blocked on or read whole).
pub fn read_report(layout: &Layout, week: Week) -> Result<Option<LocalReport>, ReportError> {
    let path = layout.report(week);
    match support::read_small(&path, MAX_REPORT_BYTES as u64) {
        Ok(Some(b)) => LocalReport::parse(&b).map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(io_err("read", &path)(e)),
    }
}

/// The weeks that have a stored report, oldest first.
pub fn report_weeks(layout: &Layout) -> Vec<Week> {
    let mut weeks: Vec<Week> = fs::read_dir(layout.reports())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let w = n.strip_suffix(".json")?;
            Week::parse(w)
        })
        .collect();
    weeks.sort();
    weeks
}

/// The counter files in `local/`, with the week in their name.
pub fn counter_files(layout: &Layout) -> Vec<(Week, PathBuf)> {
    let mut out: Vec<(Week, PathBuf)> = fs::read_dir(layout.local())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            if !n.ends_with(COUNT_SUFFIX) {
                return None;
            }
            Some((week_of_file_name(&n)?, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// The counts recorded so far in `week` (read from its counter files, which stay in place).
/// Damaged files are skipped and named in the second value.
pub fn week_in_progress(layout: &Layout, week: Week) -> (LocalReport, Vec<String>) {
    let mut r = LocalReport::new(week);
    let mut problems = Vec::new();
    for (w, path) in counter_files(layout) {
        if w != week {
            continue;
        }
        match file::read_snapshot(&path) {
            Ok(s) if s.meta.week == week => r.merge_snapshot(&s),
            Ok(_) => problems.push(format!("{}: week differs from its name", path.display())),
            Err(e) => problems.push(e.to_string()),
        }
    }
    (r, problems)
}

/// What a reduction did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReduceSummary {
    /// Weeks whose counter files became (or were added to) a report.
    pub reduced: Vec<Week>,
    /// Counter files set aside as damaged.
    pub set_aside: Vec<PathBuf>,
    /// Files deleted because they are older than the retention period.
    pub expired: Vec<PathBuf>,
    /// When the next reduction is due (seconds since the epoch).
    pub next_due: i64,
}

/// Turns the counter files of every ended week (ended at least [`GRACE_SECONDS`] ago) into
/// reports, removes them, and deletes data older than `retention_weeks` weeks. Does nothing if
/// another process is reducing. Never creates the directory.
pub fn reduce(
    layout: &Layout,
    now: i64,
    retention_weeks: u32,
) -> Result<ReduceSummary, ReportError> {
    let local = layout.local();
    if !local.is_dir() {
        return Ok(ReduceSummary {
            next_due: Week::containing(now).end_unix() + GRACE_SECONDS,
            ..Default::default()
        });
    }
    let lock_path = layout.reduce_lock();
    let lock = support::open_lock(&lock_path).map_err(io_err("open", &lock_path))?;
    if lock.try_lock_file().is_err() {
        return Err(ReportError::Busy);
    }
    let result = reduce_locked(layout, now, retention_weeks);
    let _ = lock.unlock_file();
    result
}

fn reduce_locked(
    layout: &Layout,
    now: i64,
    retention_weeks: u32,
) -> Result<ReduceSummary, ReportError> {
    let current = Week::containing(now);
    let mut summary = ReduceSummary::default();
    // The previous week may still be inside its grace period.
    let reducible = |w: Week| w.end_unix() + GRACE_SECONDS <= now;
    summary.next_due = if reducible(current.plus_weeks(-1)) {
        current.end_unix() + GRACE_SECONDS
    } else {
        current.start_unix() + GRACE_SECONDS
    };
    let oldest_kept = current.plus_weeks(-i64::from(retention_weeks));

    let mut by_week: BTreeMap<Week, Vec<PathBuf>> = BTreeMap::new();
    for (w, path) in counter_files(layout) {
        if w < oldest_kept {
            if fs::remove_file(&path).is_ok() {
                summary.expired.push(path);
            }
        } else if reducible(w) {
            by_week.entry(w).or_default().push(path);
        }
    }
    if !by_week.is_empty() {
        fs::create_dir_all(layout.reports()).map_err(io_err("create", &layout.reports()))?;
    }
    for (week, paths) in by_week {
        let mut report = match read_report(layout, week) {
            Ok(Some(r)) => r,
            Ok(None) => LocalReport::new(week),
            Err(ReportError::Io { .. }) | Err(_) => {
                // A damaged report is set aside rather than overwritten.
                let _ = file::set_aside(&layout.report(week));
                LocalReport::new(week)
            }
        };
        let mut done = Vec::new();
        for path in paths {
            match file::read_snapshot(&path) {
                Ok(s) if s.meta.week == week => {
                    report.merge_snapshot(&s);
                    done.push(path);
                }
                Ok(_) | Err(_) => {
                    if file::set_aside(&path).is_ok() {
                        summary.set_aside.push(path);
                    }
                }
            }
        }
        write_atomic(&layout.report(week), report.to_json().as_bytes())?;
        for p in done {
            let _ = fs::remove_file(p);
        }
        summary.reduced.push(week);
    }
    // Expired reports, set-aside files and stray temporary files.
    for dir in [layout.reports(), layout.local()] {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(n) = e.file_name().into_string() else {
                continue;
            };
            let expired = match week_of_file_name(&n) {
                Some(w) => w < oldest_kept,
                None => {
                    n.starts_with(".tmp-")
                        && e.metadata()
                            .ok()
                            .and_then(|m| m.modified().ok())
                            .and_then(|t| t.elapsed().ok())
                            .is_some_and(|d| d.as_secs() > 86_400)
                }
            };
            if expired && fs::remove_file(e.path()).is_ok() {
                summary.expired.push(e.path());
            }
        }
    }
    let _ = write_atomic(
        &layout.reduce_marker(),
        summary.next_due.to_string().as_bytes(),
    );
    Ok(summary)
}

/// Largest `next-reduction` marker read (it holds one number).
const MARKER_CAP: u64 = 64;

/// Reduces if due (cheap otherwise: one small file read). Used at start-up and week changes.
/// A marker that is not a small regular file is set aside, so the reduction rewrites it.
pub(crate) fn maybe_reduce(layout: &Layout, now: i64, retention_weeks: u32) {
    let due = support::read_kept(&layout.reduce_marker(), MARKER_CAP)
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.trim().parse::<i64>().ok());
    if due.is_some_and(|due| now < due && due - now <= 8 * 86_400) {
        return;
    }
    match reduce(layout, now, retention_weeks) {
        Ok(_) | Err(ReportError::Busy) => {}
        Err(e) => support::debug_log(&format!("weekly reduction failed: {e}")),
    }
}

/// Formats an instant for people (UTC).
pub fn human_time(unix: i64) -> String {
    clock::format_rfc3339(unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_bad_reports() {
        assert!(LocalReport::parse(b"{}").is_err());
        assert!(LocalReport::parse(br#"{"format":1,"week":"2026-11-17","programs":[]}"#).is_err());
        assert!(LocalReport::parse(br#"{"format":2,"week":"2026-11-16","programs":[]}"#).is_err());
        assert!(
            LocalReport::parse(br#"{"format":1,"week":"2026-11-16","programs":[],"x":1}"#).is_err()
        );
        let ok = LocalReport::parse(br#"{"format":1,"week":"2026-11-16","programs":[]}"#).unwrap();
        assert_eq!(ok.week().unwrap().to_string(), "2026-11-16");
    }

    #[test]
    fn merging_adds_and_round_trips() {
        let week = Week::parse("2026-11-16").unwrap();
        let meta = Meta {
            program: "greet".into(),
            version: "1.0.0".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            week,
        };
        let mut counters = BTreeMap::new();
        counters.insert("invocations".to_string(), 3u64);
        let snap = Snapshot {
            meta: meta.clone(),
            counters,
        };
        let mut r = LocalReport::new(week);
        r.merge_snapshot(&snap);
        r.merge_snapshot(&snap);
        assert_eq!(r.programs.len(), 1);
        assert_eq!(r.programs[0].counters["invocations"], 6);
        let back = LocalReport::parse(r.to_json().as_bytes()).unwrap();
        assert_eq!(back, r);
    }
}
