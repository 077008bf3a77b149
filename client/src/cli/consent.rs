//! `on`, `off`, `local` and `off --purge`: consent per program and per config.
//!
//! A tool's own `TOOL telemetry on|off|local` acts on that tool alone; the `clearcount` command
//! acts on every program unless given `--program`. Opting in shows the verified config of each
//! program (and, when the user had agreed to an earlier config, exactly what is new) and
//! records, per confirmed program, the log and config index shown. Every consent command first
//! tells an upload child started by its own process to give up, so that it never starts an
//! upload.

use std::fs;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clearcount_config_log::config::{Widening, widening};

use crate::clock;
use crate::mode::{self, Consent, Mode, ModeFile};
use crate::report;
use crate::upload::state::{self as upload_state, Endpoint, LogState};
use crate::upload::verify::{self, VerifiedConfig};
use crate::{Layout, file};

use super::{EndpointArgs, describe_config, endpoints, note_environment};

/// Who a consent command acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Scope {
    /// One program.
    Program(String),
    /// Every program.
    Every,
}

impl Scope {
    /// `--program NAME`, else `--all`, else the host tool's own program (an embedded command),
    /// else every program (the `clearcount` command).
    pub(super) fn of(program: Option<String>, all: bool) -> Result<Scope> {
        match program {
            Some(p) if !crate::valid_program_name(&p) => {
                bail!("{p:?} is not a program name (lowercase letters, digits and ._/-)")
            }
            Some(p) => Ok(Scope::Program(p)),
            None if all => Ok(Scope::Every),
            None => Ok(crate::runtime::host_program()
                .map_or(Scope::Every, |p| Scope::Program(p.to_string()))),
        }
    }

    fn words(&self) -> String {
        match self {
            Scope::Program(p) => format!("program {p}"),
            Scope::Every => "every program".to_string(),
        }
    }

    fn covers(&self, program: &str) -> bool {
        match self {
            Scope::Program(p) => p == program,
            Scope::Every => true,
        }
    }
}

/// One program the user may opt in, under the verified config of its log.
struct Candidate<'a> {
    program: String,
    endpoint: &'a Endpoint,
    verified: &'a VerifiedConfig,
    /// What the config asks for beyond the one agreed to before (`None`: no earlier consent).
    new_since: Option<(u64, Vec<Widening>)>,
}

impl Candidate<'_> {
    fn consent(&self) -> Consent {
        Consent {
            origin: self.verified.config.origin.clone(),
            index: self.verified.index,
        }
    }
}

/// `on`: fetch and verify each config in scope, show it, ask, record consent per program.
pub(super) fn on(
    layout: &Layout,
    scope: &Scope,
    args: &EndpointArgs,
    yes: bool,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    crate::upload::cancel_upload_child();
    writeln!(
        out,
        "Opting in {}.\n\n\
         Opted-in tools record counters on this machine, reduce them to weekly reports in {}, \
         and upload a weekly report only when it is sampled, only for counters listed in the \
         public, logged counter config shown below, and only after randomized response. Only \
         weeks that start after now are ever uploaded, one report a day. A later config that \
         asks for more is not used until you confirm it. `{} status` lists every report \
         sent, and keeps a copy of each.\n",
        scope.words(),
        layout.reports().display(),
        super::invoked_as()
    )?;
    let eps = endpoints(layout, args)?;
    if eps.is_empty() {
        bail!(
            "no tool has told clearcount where it uploads, so there is no config to show: \
             nothing changed. Pass --server and --log-key, or run a tool first."
        );
    }
    let mut verified = Vec::new();
    for ep in &eps {
        let state = LogState::new(layout, ep.origin());
        let v = verify::fetch_verified(ep, &state, None).map_err(|e| {
            anyhow!(
                "could not fetch and verify the config of {} (log {}): {e}\nNothing changed.",
                ep.server,
                ep.origin()
            )
        })?;
        verified.push((ep, state, v));
    }
    let mf = mode::read(layout).unwrap_or_default();
    let mut candidates = Vec::new();
    let mut already = Vec::new();
    for (ep, state, v) in &verified {
        for p in v.config.programs.iter().filter(|p| scope.covers(&p.name)) {
            let same = |c: &Consent| c.origin == v.config.origin && c.index == v.index;
            if mf.consent_for(&p.name).is_some_and(|(c, _)| same(c)) {
                already.push(format!("{} (config {})", p.name, v.index));
                continue;
            }
            let new_since = earlier_consent(&mf, &p.name, ep, state, v)?;
            candidates.push(Candidate {
                program: p.name.clone(),
                endpoint: ep,
                verified: v,
                new_since,
            });
        }
    }
    if candidates.is_empty() && !already.is_empty() {
        writeln!(
            out,
            "Already on under the latest config: {}. Nothing changed.",
            already.join(", ")
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if candidates.is_empty() {
        let logs: Vec<String> = verified
            .iter()
            .map(|(ep, _, v)| format!("config {} of log {}", v.index, ep.origin()))
            .collect();
        bail!(
            "{} is not in {}: nothing of it could ever be uploaded. Nothing changed.",
            scope.words(),
            logs.join(", ")
        );
    }
    show(&verified, &candidates, scope, out)?;
    let Some(chosen) = confirm(&candidates, yes, out)? else {
        return Ok(ExitCode::from(2));
    };
    if chosen.is_empty() {
        writeln!(out, "Nothing changed.")?;
        return Ok(ExitCode::from(2));
    }
    let now = clock::now_unix();
    mode::update(layout, |mf| {
        for c in &chosen {
            mf.opt_in(&c.program, c.consent(), now);
        }
    })
    .map_err(|e| anyhow!(e))?;
    for c in &chosen {
        writeln!(
            out,
            "clearcount is on for {} under config {} of log {} (uploads to {}).",
            c.program, c.verified.index, c.verified.config.origin, c.endpoint.server
        )?;
    }
    note_environment(out)?;
    Ok(ExitCode::SUCCESS)
}

/// The config the user agreed to earlier for `program` in this log, if another one: its index
/// and what `v` asks for beyond it (fetched and verified when this machine has no copy).
fn earlier_consent(
    mf: &ModeFile,
    program: &str,
    ep: &Endpoint,
    state: &LogState,
    v: &VerifiedConfig,
) -> Result<Option<(u64, Vec<Widening>)>> {
    let Some(c) = mf.consents.get(program) else {
        return Ok(None);
    };
    if c.origin != v.config.origin || c.index == v.index {
        return Ok(None);
    }
    let old = match state.config_copy(c.index) {
        Some(old) => old,
        None => verify::fetch_verified(ep, state, Some(c.index))?.config,
    };
    Ok(Some((c.index, widening(&old, &v.config, program))))
}

/// Shows each verified config that has a candidate (restricted to the scope), then what is
/// new for each program that had agreed to an earlier config.
fn show(
    verified: &[(&Endpoint, LogState, VerifiedConfig)],
    candidates: &[Candidate<'_>],
    scope: &Scope,
    out: &mut dyn Write,
) -> Result<()> {
    let only = match scope {
        Scope::Program(p) => Some(p.as_str()),
        Scope::Every => None,
    };
    for (ep, _, v) in verified {
        if !candidates.iter().any(|c| std::ptr::eq(c.verified, v)) {
            continue;
        }
        writeln!(out, "From {}:", ep.server)?;
        let text = describe_config(&v.config, v.index, Some(v.checkpoint.size), only);
        out.write_all(text.as_bytes())?;
    }
    for c in candidates {
        match &c.new_since {
            Some((old, w)) if w.is_empty() => writeln!(
                out,
                "{}: you agreed to config {old}; config {} asks for nothing more.",
                c.program, c.verified.index
            )?,
            Some((old, w)) => {
                writeln!(
                    out,
                    "{}: you agreed to config {old}. What config {} asks for beyond it:",
                    c.program, c.verified.index
                )?;
                for item in w {
                    writeln!(out, "  - {item}")?;
                }
            }
            None => {}
        }
    }
    Ok(())
}

/// Asks for confirmation: everything with `--yes`; otherwise, in a terminal, once for a single
/// program and once per program for several. `None` when stdin is not a terminal.
fn confirm<'a, 'b>(
    candidates: &'a [Candidate<'b>],
    yes: bool,
    out: &mut dyn Write,
) -> Result<Option<Vec<&'a Candidate<'b>>>> {
    if yes {
        return Ok(Some(candidates.iter().collect()));
    }
    if !io::stdin().is_terminal() {
        out.flush()?;
        eprintln!(
            "{}: not changing consent without confirmation: stdin is not a terminal. \
             Add --yes to confirm.",
            super::invoked_as()
        );
        return Ok(None);
    }
    let mut chosen = Vec::new();
    for c in candidates {
        let question = if candidates.len() == 1 {
            format!("\nTurn clearcount on for {}? [y/N] ", c.program)
        } else {
            format!(
                "Opt in {} (config {} of log {})? [y/N] ",
                c.program, c.verified.index, c.verified.config.origin
            )
        };
        write!(out, "{question}")?;
        out.flush()?;
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line)?;
        if matches!(line.trim(), "y" | "Y" | "yes" | "Yes" | "YES") {
            chosen.push(c);
        }
    }
    Ok(Some(chosen))
}

/// `off` and `local`: lower the scope (withdrawing its consent), then purge if asked.
pub(super) fn lower(
    layout: &Layout,
    scope: &Scope,
    to: Mode,
    purge: bool,
    out: &mut dyn Write,
) -> Result<()> {
    crate::upload::cancel_upload_child();
    let now = clock::now_unix();
    mode::update(layout, |mf| match scope {
        Scope::Program(p) => mf.lower_program(p, to, now),
        Scope::Every => mf.lower_all(to, now),
    })
    .map_err(|e| anyhow!(e))?;
    match to {
        Mode::Off => writeln!(
            out,
            "clearcount is off for {}: nothing is recorded or sent.",
            scope.words()
        )?,
        _ => writeln!(
            out,
            "clearcount is local for {}: counters and weekly reports stay on this machine.",
            scope.words()
        )?,
    }
    if purge {
        let deleted = self::purge(layout, scope)?;
        if deleted.is_empty() {
            writeln!(out, "Nothing to delete.")?;
        } else {
            writeln!(out, "Deleted:")?;
            for (path, what) in deleted {
                writeln!(out, "  {} ({what})", path.display())?;
            }
        }
    }
    if to == Mode::Local {
        note_environment(out)?;
    }
    Ok(())
}

/// Deletes every file clearcount keeps for `scope` (only the mode file remains); returns what
/// it deleted.
fn purge(layout: &Layout, scope: &Scope) -> Result<Vec<(PathBuf, String)>> {
    let mut deleted = Vec::new();
    match scope {
        Scope::Every => {
            for (dir, what) in [
                (layout.local(), "counter files"),
                (layout.reports(), "weekly reports"),
                (
                    layout.upload(),
                    "upload state, sent copies and verified configs",
                ),
            ] {
                if fs::symlink_metadata(&dir).is_ok() {
                    let n = count_files(&dir);
                    remove_any(&dir)?;
                    deleted.push((dir, format!("{what}, {n} file(s)")));
                }
            }
            let log = layout.debug_log();
            if fs::symlink_metadata(&log).is_ok() {
                remove_any(&log)?;
                deleted.push((log, "debug log".into()));
            }
        }
        Scope::Program(p) => purge_program(layout, p, &mut deleted)?,
    }
    Ok(deleted)
}

/// Deletes one program's counter files, its entries in the weekly reports, and every kept
/// upload report that holds it.
fn purge_program(layout: &Layout, p: &str, deleted: &mut Vec<(PathBuf, String)>) -> Result<()> {
    for (_, path) in report::counter_files(layout) {
        if file::read_snapshot(&path).is_ok_and(|s| s.meta.program == p) {
            fs::remove_file(&path).with_context(|| format!("deleting {}", path.display()))?;
            deleted.push((path, "counter file".into()));
        }
    }
    for w in report::report_weeks(layout) {
        let Ok(Some(mut r)) = report::read_report(layout, w) else {
            continue;
        };
        let before = r.programs.len();
        let left = r.retain_program(|name| name != p);
        if r.programs.len() == before {
            continue;
        }
        let path = layout.report(w);
        if left {
            report::write_atomic(&path, r.to_json().as_bytes())?;
            deleted.push((path, format!("{p}'s entries of the weekly report")));
        } else {
            fs::remove_file(&path).with_context(|| format!("deleting {}", path.display()))?;
            deleted.push((path, "weekly report".into()));
        }
    }
    for state in upload_state::logs(layout) {
        for (w, _) in state.decided_weeks() {
            for path in [state.pending(w), state.sent(w), state.rejected(w)] {
                let holds = crate::support::read_small(&path, 64 * 1024)
                    .ok()
                    .flatten()
                    .and_then(|b| {
                        serde_json::from_slice::<crate::upload::build::UploadReport>(&b).ok()
                    })
                    .is_some_and(|r| r.programs.iter().any(|x| x.name == p));
                if holds {
                    fs::remove_file(&path)
                        .with_context(|| format!("deleting {}", path.display()))?;
                    deleted.push((path, "upload report holding it".into()));
                }
            }
        }
    }
    Ok(())
}

fn count_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 1;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            _ => 1,
        })
        .sum()
}

/// Removes a file, a link or a directory tree (never following a link).
fn remove_any(path: &std::path::Path) -> Result<()> {
    let is_dir = fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    let r = if is_dir {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    r.with_context(|| format!("deleting {}", path.display()))
}
