//! `status`: what clearcount does here and why, per program, and what it sent.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::Write;

use anyhow::Result;
use clearcount_config_log::config::{Config, widening};

use crate::Layout;
use crate::clock::{self, Week};
use crate::mode::{self, Mode, ModeFile, ModeSetting};
use crate::report;
use crate::upload::state::{self as upload_state, LogState, WeekState};

/// Prints the status. The first line says what holds here, the environment included.
pub(super) fn status(layout: &Layout, out: &mut dyn Write) -> Result<()> {
    let mut s = String::new();
    let ceiling = mode::environment_ceiling();
    match mode::read(layout) {
        Ok(mf) => {
            writeln!(s, "{}", headline(&mf, ceiling))?;
            programs(layout, &mf, ceiling, &mut s)?;
            writeln!(s, "retention: {} weeks", mf.retention())?;
        }
        Err(e) => writeln!(
            s,
            "mode: off (the mode file cannot be used: {e}; `{} local` or `on` replaces it)",
            super::invoked_as()
        )?,
    }
    writeln!(s, "directory: {}", layout.root().display())?;
    uploads(layout, &mut s)?;
    local_files(layout, &mut s)?;
    out.write_all(s.as_bytes())?;
    Ok(())
}

fn describe(s: &ModeSetting) -> String {
    match s.since {
        Some(t) => format!("{} (since {})", s.mode, clock::format_rfc3339(t)),
        None => s.mode.to_string(),
    }
}

/// The first line: the mode every program without a line of its own has here, with the
/// environment's override said first when there is one.
fn headline(mf: &ModeFile, ceiling: Mode) -> String {
    let file = match &mf.global {
        Some(g) if g.mode == Mode::On => format!(
            "{} (set by an earlier clearcount for every program: nothing is uploaded until you \
             opt in per program)",
            describe(g)
        ),
        Some(g) => describe(g),
        None => "local (the default; never changed)".into(),
    };
    match ceiling {
        Mode::Off => format!(
            "mode: off here: DO_NOT_TRACK or CLEARCOUNT_MODE=off is set in this environment, so \
             nothing is recorded or sent from it (the mode file says: {file})"
        ),
        Mode::Local => format!(
            "mode: at most local here: CLEARCOUNT_MODE=local is set in this environment, so \
             nothing is sent from it (the mode file says: {file})"
        ),
        Mode::On => format!("mode: {file}"),
    }
}

/// One line per program known here (in the mode file, or with local data): its mode, the
/// config agreed to, and a newer config waiting for confirmation.
fn programs(layout: &Layout, mf: &ModeFile, ceiling: Mode, s: &mut String) -> Result<()> {
    let mut names: BTreeSet<String> = mf.programs.keys().cloned().collect();
    names.extend(mf.consents.keys().cloned());
    names.extend(local_programs(layout));
    if names.is_empty() {
        return Ok(());
    }
    writeln!(s, "programs:")?;
    for p in &names {
        let own = mf.programs.get(p);
        let set = mf.setting_for(p);
        let mut line = match own {
            Some(o) => describe(o),
            None => format!("{} (as every program)", set.mode),
        };
        if let Some((c, _)) = mf.consent_for(p) {
            let _ = write!(line, ", agreed to config {} of log {}", c.index, c.origin);
        } else if set.mode == Mode::On {
            line.push_str(
                ", but no config agreed to (an earlier clearcount): nothing is uploaded until \
                 you confirm",
            );
        }
        let here = mode::effective(set.mode, ceiling);
        if here != set.mode {
            let _ = write!(line, "; {here} here (environment)");
        }
        writeln!(s, "  {p}: {line}")?;
        if let Some(pending) = pending_config(layout, mf, p) {
            writeln!(s, "    {pending}")?;
        }
    }
    Ok(())
}

/// Programs with counter files or weekly reports here.
fn local_programs(layout: &Layout) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let (now, _) = report::week_in_progress(layout, Week::current());
    out.extend(now.programs.into_iter().map(|p| p.name));
    for w in report::report_weeks(layout) {
        if let Ok(Some(r)) = report::read_report(layout, w) {
            out.extend(r.programs.into_iter().map(|p| p.name));
        }
    }
    out
}

/// The latest verified config of `program`'s log when it asks for more than the one agreed to.
fn pending_config(layout: &Layout, mf: &ModeFile, program: &str) -> Option<String> {
    let (c, _) = mf.consent_for(program)?;
    let state = LogState::new(layout, &c.origin);
    let (latest, bytes) = state.cached_config()?;
    if latest == c.index {
        return None;
    }
    let new = Config::parse(&bytes).ok()?;
    let Some(old) = state.config_copy(c.index) else {
        return Some(format!(
            "pending: config {latest} is the latest; config {}, the one agreed to, is no longer \
             on this machine: confirm again (`{program} telemetry on` or `clearcount on \
             --program {program}`)",
            c.index
        ));
    };
    let more = widening(&old, &new, program);
    if more.is_empty() {
        return None;
    }
    let mut text = format!(
        "pending: config {latest} asks for more than config {}; nothing is sent for {program} \
         until you confirm (`{program} telemetry on` or `clearcount on --program {program}`):",
        c.index
    );
    for w in more {
        let _ = write!(text, "\n      - {w}");
    }
    Some(text)
}

/// Per log: alarms, the checkpoint accepted, the config in use, a lost upload child, and every
/// week decided.
fn uploads(layout: &Layout, s: &mut String) -> Result<()> {
    let logs = upload_state::logs(layout);
    if logs.is_empty() {
        writeln!(s, "uploads: none (no tool has named a server yet)")?;
        return Ok(());
    }
    for st in logs {
        match st.endpoint() {
            Some(e) => writeln!(s, "uploads to {} (log {}):", e.server, e.origin())?,
            None => writeln!(s, "uploads ({}):", st.dir().display())?,
        }
        if let Some(a) = st.alarm() {
            writeln!(
                s,
                "  ALARM: the config log failed verification; nothing is uploaded until it is \
                 cleared (`{me} config verify`, then `{me} config clear-alarm`):",
                me = super::invoked_as()
            )?;
            for line in a.lines() {
                writeln!(s, "    {line}")?;
            }
        }
        if let Some(text) = crate::support::read_kept(&st.lost_child_file(), 4096) {
            let text = String::from_utf8_lossy(&text);
            writeln!(s, "  upload child: {}", text.trim_end())?;
        }
        match st.checkpoint_note().and_then(|n| {
            clearcount_config_log::checkpoint::Checkpoint::parse_note_unverified(&n).ok()
        }) {
            Some(c) => writeln!(s, "  log checkpoint accepted: {} entries", c.size)?,
            None => writeln!(s, "  log checkpoint accepted: none yet")?,
        }
        if let Some((i, _)) = st.cached_config() {
            writeln!(
                s,
                "  latest config verified: index {i} (`{} config show`)",
                super::invoked_as()
            )?;
        }
        weeks(&st, s)?;
    }
    let notify = mode::read(layout)
        .map(|m| m.notify_uploads)
        .unwrap_or(false);
    let hint = format!("off (`{} notify on`)", super::invoked_as());
    writeln!(
        s,
        "upload notices on stderr: {}",
        if notify { "on" } else { &hint }
    )?;
    Ok(())
}

fn weeks(st: &LogState, s: &mut String) -> Result<()> {
    let decided = st.decided_weeks();
    let sent: Vec<_> = decided
        .iter()
        .filter(|(_, w)| *w == WeekState::Sent)
        .collect();
    if sent.is_empty() {
        writeln!(s, "  reports sent: none")?;
    } else {
        writeln!(s, "  reports sent (exact copies):")?;
        for (w, _) in sent {
            writeln!(s, "    week {w}: {}", st.sent(*w).display())?;
        }
    }
    for (w, state) in &decided {
        match state {
            WeekState::Pending => writeln!(
                s,
                "  week {w}: waiting to be sent (one report a day, oldest first)"
            )?,
            WeekState::Rejected(why) => writeln!(
                s,
                "  week {w}: refused by the server, dropped: {}",
                why.trim()
            )?,
            WeekState::Withdrawn(why) => {
                writeln!(s, "  week {w}: withdrawn, never sent: {}", why.trim())?
            }
            WeekState::Unsampled => writeln!(s, "  week {w}: not sampled, nothing sent")?,
            WeekState::Open | WeekState::Sent => {}
        }
    }
    Ok(())
}

/// The week in progress, counter files, reports and the debug log.
fn local_files(layout: &Layout, s: &mut String) -> Result<()> {
    let current = Week::containing(clock::now_unix());
    writeln!(
        s,
        "current week: {current} (ends {})",
        clock::format_rfc3339(current.end_unix())
    )?;
    let files = report::counter_files(layout);
    let pending: BTreeSet<Week> = files
        .iter()
        .map(|(w, _)| *w)
        .filter(|w| *w < current)
        .collect();
    let this_week = files.iter().filter(|(w, _)| *w == current).count();
    writeln!(s, "counter files this week: {this_week}")?;
    if !pending.is_empty() {
        let list: Vec<String> = pending.iter().map(Week::to_string).collect();
        writeln!(s, "ended weeks waiting for reduction: {}", list.join(", "))?;
    }
    let weeks = report::report_weeks(layout);
    if weeks.is_empty() {
        writeln!(s, "weekly reports: none")?;
    } else {
        let list: Vec<String> = weeks.iter().map(Week::to_string).collect();
        writeln!(s, "weekly reports: {}", list.join(", "))?;
    }
    if let Ok(m) = fs::symlink_metadata(layout.debug_log()) {
        writeln!(
            s,
            "debug log: {} ({} bytes)",
            layout.debug_log().display(),
            m.len()
        )?;
    }
    Ok(())
}
