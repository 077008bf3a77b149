//! One upload run: reduce, decide each ended week, verify the config, build, send the oldest
//! due report.
//!
//! Used by the detached upload child, by `clearcount upload [--dry-run]`, and in-process by
//! simulations: everything it needs (directory, clock, environment ceiling, transport) is
//! passed in.

use crate::flock::FileLock;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Read as _;
use std::time::Duration;

use crate::clock::{self, Week};
use crate::mode::{self, ConsentLock, Mode, ModeFile};
use crate::report::{self, ReportError};
use crate::{Layout, support};

use super::any_consent;
use super::build::{self, Outcome};
use super::consent;
use super::state::{Endpoint, LogState, WeekState};
use super::verify::{self, ConfigFetchError, VerifiedConfig};

/// The oldest week the server accepts, in weeks before the current one.
pub const MAX_WEEKS_OLD: i64 = 4;
/// Connect timeout of an upload.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a run waits for another uploader to finish.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);
/// Largest report kept for sending (the server takes at most 64 KiB).
const MAX_REPORT: u64 = 64 * 1024;
/// Total timeout of one upload request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// What the server said to a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostResult {
    /// 2xx: stored.
    Accepted,
    /// 4xx: refused; never retried.
    Refused(u16, String),
    /// Anything else (no connection, timeout, 5xx, 3xx): retried on a later day.
    Failed(String),
}

/// How a run reaches the log and the server. [`HttpTransport`] is the real one.
pub trait Transport {
    /// Fetches and verifies the latest config (see [`verify::fetch_verified`]).
    fn config(
        &self,
        endpoint: &Endpoint,
        state: &LogState,
    ) -> Result<VerifiedConfig, ConfigFetchError>;
    /// Sends one report body to `{server}/upload`.
    fn post(&self, endpoint: &Endpoint, body: &[u8]) -> PostResult;
}

/// The real transport: HTTP(S) with connect and total timeouts. Every report goes on a new
/// connection of a new HTTP client (no connection pool, no TLS session shared with another
/// report), so that nothing on the path can link two reports by their connection.
#[derive(Debug, Clone, Default)]
pub struct HttpTransport;

impl HttpTransport {
    /// A transport with [`CONNECT_TIMEOUT`] and [`REQUEST_TIMEOUT`]. Creating it costs nothing
    /// and opens no connection.
    pub fn new() -> HttpTransport {
        HttpTransport
    }

    /// A new client for one report: its connection is used for that report alone.
    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .user_agent("clearcount")
            .http_status_as_error(false)
            .max_idle_connections(0)
            .build()
            .new_agent()
    }
}

impl Transport for HttpTransport {
    fn config(
        &self,
        endpoint: &Endpoint,
        state: &LogState,
    ) -> Result<VerifiedConfig, ConfigFetchError> {
        verify::fetch_verified(endpoint, state, None)
    }

    fn post(&self, endpoint: &Endpoint, body: &[u8]) -> PostResult {
        let url = format!("{}/upload", endpoint.server);
        match Self::agent()
            .post(&url)
            .header("content-type", "application/json")
            .send(body)
        {
            Ok(mut resp) => {
                let status = resp.status();
                let mut raw = Vec::new();
                let _ = resp.body_mut().as_reader().take(2048).read_to_end(&mut raw);
                let text: String = String::from_utf8_lossy(&raw).chars().take(500).collect();
                if status.is_success() {
                    PostResult::Accepted
                } else if status.is_client_error() {
                    PostResult::Refused(status.as_u16(), text)
                } else {
                    PostResult::Failed(format!("HTTP {status}: {text}"))
                }
            }
            Err(e) => PostResult::Failed(format!("POST {url}: {e}")),
        }
    }
}

/// Options of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Build and keep the week's decision, print it, but send nothing.
    pub dry_run: bool,
    /// The time (seconds since the epoch).
    pub now: i64,
    /// The environment's ceiling ([`mode::environment_ceiling`] for real runs).
    pub ceiling: Mode,
}

impl RunOptions {
    /// A real run now, honouring the environment.
    pub fn now() -> RunOptions {
        RunOptions {
            dry_run: false,
            now: clock::now_unix(),
            ceiling: mode::environment_ceiling(),
        }
    }
}

/// What one week got.
#[derive(Debug, Clone, PartialEq)]
pub struct WeekLine {
    /// The week.
    pub week: Week,
    /// What happened or would happen, and why.
    pub why: String,
    /// The exact JSON body sent or to be sent, if any.
    pub body: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    /// General notes (mode, alarm, config used, network problems).
    pub notes: Vec<String>,
    /// Per week.
    pub weeks: Vec<WeekLine>,
    /// Weeks accepted by the server in this run.
    pub sent: Vec<Week>,
    /// Whether the run used the network.
    pub network: bool,
}

impl RunSummary {
    /// The summary as text for people.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for n in &self.notes {
            let _ = writeln!(s, "{n}");
        }
        for w in &self.weeks {
            let _ = writeln!(s, "week {}: {}", w.week, w.why);
            if let Some(b) = &w.body {
                let _ = writeln!(s, "{b}");
            }
        }
        s
    }
}

/// One upload run for `endpoint`'s log in `layout` (see the module docs). Never panics; in
/// modes off and local, and when no program has consent, it returns before touching the
/// network.
pub fn run(
    layout: &Layout,
    endpoint: &Endpoint,
    opts: &RunOptions,
    transport: &dyn Transport,
) -> RunSummary {
    let mut sum = RunSummary::default();
    let Some(mf) = consent_now(layout, opts, &mut sum) else {
        return sum;
    };
    if let Err(e) = endpoint.check() {
        sum.notes.push(format!("cannot upload: {e}"));
        return sum;
    }
    let state = LogState::new(layout, endpoint.origin());
    let Some(lock) = uploader_lock(&state, &mut sum) else {
        return sum;
    };
    let run = Run {
        layout,
        endpoint,
        opts,
        transport,
        state: &state,
    };
    run.locked(&mf, &mut sum);
    let _ = lock.unlock_file();
    sum
}

/// The lines that say which programs a report leaves out and why: those whose consent does
/// not cover the config (`refusals`), and those the build skipped for another reason than
/// consent.
pub(super) fn left_out(
    refusals: &BTreeMap<&str, consent::Refusal>,
    built: &build::Built,
) -> String {
    let mut why = String::new();
    for (p, r) in refusals {
        let _ = write!(why, "\n    left out {p}: {r}");
    }
    for (name, version, os, arch, reason) in &built.skipped {
        if !matches!(reason, build::Skipped::NotOptedIn) {
            let _ = write!(why, "\n    left out {name} {version} {os}/{arch}: {reason}");
        }
    }
    why
}

/// Whether the log raised an alarm, which blocks every upload until the user clears it (with a
/// note that says how).
pub(super) fn alarmed(state: &LogState, sum: &mut RunSummary) -> bool {
    let Some(alarm) = state.alarm() else {
        return false;
    };
    sum.notes.push(format!(
        "ALARM: nothing is uploaded until it is cleared (`clearcount config verify`, then \
         `clearcount config clear-alarm`):\n{}",
        alarm.trim_end()
    ));
    true
}

/// Reads mode and consent; `None` (with a note) when nothing may be sent.
pub(super) fn consent_now(
    layout: &Layout,
    opts: &RunOptions,
    sum: &mut RunSummary,
) -> Option<ModeFile> {
    let mf = match mode::read(layout) {
        Ok(m) => m,
        Err(e) => {
            sum.notes.push(format!(
                "the mode file cannot be used ({e}): treated as off, nothing is sent"
            ));
            return None;
        }
    };
    if any_consent(&mf, opts.ceiling) {
        return Some(mf);
    }
    sum.notes.push(format!(
        "no program is opted in{}: nothing is sent and the network is not used",
        if opts.ceiling < Mode::On {
            " (the environment keeps the mode lower)"
        } else {
            ""
        }
    ));
    None
}

/// Takes the uploader's lock of the log (one uploader at a time), waiting at most
/// [`LOCK_WAIT`] for the one running.
pub(super) fn uploader_lock(state: &LogState, sum: &mut RunSummary) -> Option<fs::File> {
    if let Err(e) = fs::create_dir_all(state.dir()) {
        sum.notes
            .push(format!("cannot create {}: {e}", state.dir().display()));
        return None;
    }
    let lock = match support::open_lock(&state.lock_file()) {
        Ok(f) => f,
        Err(e) => {
            sum.notes.push(format!("cannot open the upload lock: {e}"));
            return None;
        }
    };
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    while lock.try_lock_file().is_err() {
        if std::time::Instant::now() >= deadline {
            sum.notes
                .push("another upload is still running: nothing done".to_string());
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(lock)
}

/// What the weeks of a run come to before anything is built or sent.
#[derive(Debug, Default)]
struct Due {
    /// Built and sampled earlier, waiting to be sent.
    pending: Vec<Week>,
    /// Not decided yet, with some program whose owner opted in before the week.
    open: Vec<Week>,
}

/// One run, with everything it works on.
struct Run<'a> {
    layout: &'a Layout,
    endpoint: &'a Endpoint,
    opts: &'a RunOptions,
    transport: &'a dyn Transport,
    state: &'a LogState,
}

impl Run<'_> {
    /// The run under the uploader's lock: reduce, sort the weeks, decide the open ones, send
    /// the oldest due report (one a day, each on its own connection).
    fn locked(&self, mf: &ModeFile, sum: &mut RunSummary) {
        self.reduce(mf, sum);
        let due = self.sort_weeks(mf, sum);
        if due.pending.is_empty() && due.open.is_empty() {
            sum.notes
                .push("nothing to send: the network is not used".to_string());
            return;
        }
        if alarmed(self.state, sum) {
            return;
        }
        if !due.open.is_empty() && self.decide_open(&due.open, sum).is_none() {
            return;
        }
        self.send_due(sum);
        self.state
            .expire_before(Week::containing(self.opts.now).plus_weeks(-i64::from(mf.retention())));
    }

    /// Reduces ended weeks, waiting for a host process that is reducing right now (the first
    /// start of a week does), so that the week it is writing is seen.
    fn reduce(&self, mf: &ModeFile, sum: &mut RunSummary) {
        for attempt in 0.. {
            match report::reduce(self.layout, self.opts.now, mf.retention()) {
                Err(ReportError::Busy) if attempt < 200 => {
                    std::thread::sleep(Duration::from_millis(25));
                }
                Ok(_) | Err(ReportError::Busy) => break,
                Err(e) => {
                    sum.notes.push(format!("weekly reduction failed: {e}"));
                    break;
                }
            }
        }
    }

    /// Says where every ended week stands; returns the weeks that may lead to an upload.
    fn sort_weeks(&self, mf: &ModeFile, sum: &mut RunSummary) -> Due {
        let current = Week::containing(self.opts.now);
        let oldest = current.plus_weeks(-MAX_WEEKS_OLD);
        let mut due = Due::default();
        for w in report::report_weeks(self.layout) {
            if w >= current {
                continue;
            }
            let why = match self.state.week_state(w) {
                WeekState::Sent => format!("already sent (copy: {})", self.state.sent(w).display()),
                WeekState::Rejected(why) => format!(
                    "refused by the server earlier, never retried: {}",
                    why.trim()
                ),
                WeekState::Withdrawn(why) => format!("withdrawn, never sent: {}", why.trim()),
                WeekState::Unsampled => "not sampled: nothing is sent for this week".into(),
                WeekState::Pending if w < oldest => {
                    self.drop_pending(
                        w,
                        "too old for the server (more than 4 weeks) before it could be sent",
                    );
                    "dropped: it could not be sent within 4 weeks".into()
                }
                WeekState::Pending => {
                    due.pending.push(w);
                    continue;
                }
                WeekState::Open if w < oldest => {
                    format!("not sent: older than the {MAX_WEEKS_OLD} weeks the server accepts")
                }
                WeekState::Open if self.anyone_opted_in(mf, w) => {
                    due.open.push(w);
                    continue;
                }
                WeekState::Open => "not sent: no program of this week was opted in (with a \
                                    config agreed to) before the week started"
                    .into(),
            };
            sum.weeks.push(WeekLine {
                week: w,
                why,
                body: None,
            });
        }
        due
    }

    /// Whether some program of the local report of `week` was opted in before the week.
    fn anyone_opted_in(&self, mf: &ModeFile, week: Week) -> bool {
        let Ok(Some(r)) = report::read_report(self.layout, week) else {
            return false;
        };
        r.programs.iter().any(|p| {
            mf.consent_for(&p.name)
                .is_some_and(|(_, since)| since < week.start_unix())
        })
    }

    /// Moves a pending report to `rejected` with `why` (the server could never take it).
    fn drop_pending(&self, w: Week, why: &str) {
        let _ = fs::rename(self.state.pending(w), self.state.rejected(w));
        let _ = self
            .state
            .write_week(&self.state.rejected_why(w), format!("{why}\n").as_bytes());
    }

    /// Fetches and verifies the latest config (after re-reading consent) and decides every open
    /// week with it: a sampled report is kept as pending, an unsampled week is marked. `None`
    /// when the run must stop.
    fn decide_open(&self, open: &[Week], sum: &mut RunSummary) -> Option<()> {
        let (verified, mf) = {
            let _consent = ConsentLock::shared(self.layout);
            let mf = self.still_allowed(sum)?;
            sum.network = true;
            match self.transport.config(self.endpoint, self.state) {
                Ok(v) => (v, mf),
                Err(e) => {
                    sum.notes
                        .push(format!("no verified config, nothing sent: {e}"));
                    return None;
                }
            }
        };
        sum.notes.push(format!(
            "config: index {} of log {} (verified against checkpoint of size {})",
            verified.index, verified.config.origin, verified.checkpoint.size
        ));
        for &w in open {
            self.decide(w, &verified, &mf, sum)?;
        }
        Some(())
    }

    /// Builds the upload report of one open week under `verified`, for the programs whose
    /// consent covers that config.
    fn decide(
        &self,
        w: Week,
        verified: &VerifiedConfig,
        mf: &ModeFile,
        sum: &mut RunSummary,
    ) -> Option<()> {
        let local = match report::read_report(self.layout, w) {
            Ok(Some(r)) => r,
            Ok(None) => return Some(()),
            Err(e) => {
                sum.weeks.push(WeekLine {
                    week: w,
                    why: format!("local report unreadable: {e}"),
                    body: None,
                });
                return Some(());
            }
        };
        let mut rng = match clearcount_privacy::secure_rng() {
            Ok(r) => r,
            Err(e) => {
                sum.notes.push(format!("no secure random source: {e}"));
                return None;
            }
        };
        // Each program once (a week may hold several versions of it): why consent does not
        // cover this config for it, if it does not.
        let refusals: BTreeMap<&str, consent::Refusal> = local
            .programs
            .iter()
            .filter(|p| verified.config.program(&p.name).is_some())
            .filter_map(|p| {
                let check = consent::check(
                    mf,
                    self.opts.ceiling,
                    &p.name,
                    w,
                    self.state,
                    verified.index,
                    &verified.config,
                );
                check.err().map(|r| (p.name.as_str(), r))
            })
            .collect();
        let allowed = |p: &str| !refusals.contains_key(p);
        let built = build::build(&local, &verified.config, verified.index, &allowed, &mut rng);
        let why = left_out(&refusals, &built);
        let line = |why: String| WeekLine {
            week: w,
            why,
            body: None,
        };
        match built.outcome {
            Outcome::Send(r) => {
                if let Err(e) = self
                    .state
                    .write_week(&self.state.pending(w), r.to_json().as_bytes())
                {
                    sum.notes
                        .push(format!("cannot keep the report of {w}: {e}"));
                    return None;
                }
                if !why.is_empty() {
                    sum.notes.push(format!("week {w}:{why}"));
                }
            }
            Outcome::NotSampled { x, sample_rate } => {
                let _ = self.state.write_week(
                    &self.state.unsampled(w),
                    format!("x {x} >= sample_rate {sample_rate}\n").as_bytes(),
                );
                sum.weeks.push(line(format!(
                    "not sampled (x = {x:.4} is not below the sample rate {sample_rate}): \
                     nothing is sent for this week{why}"
                )));
            }
            Outcome::NothingToReport | Outcome::BadWeek => {
                sum.weeks.push(line(format!(
                    "not sent: nothing in it may be reported{why}"
                )));
            }
        }
        Some(())
    }

    /// Re-reads mode and consent (the caller holds the consent lock): `None`, with a note,
    /// when the user opted out since the run started or the host cancelled this child.
    fn still_allowed(&self, sum: &mut RunSummary) -> Option<ModeFile> {
        if super::cancelled() {
            sum.notes
                .push("a consent command ran in the host: nothing is sent".into());
            return None;
        }
        consent_now(self.layout, self.opts, sum)
    }

    /// Sends the oldest pending report (a dry run shows them all): one report a run, so that
    /// each leaves on its own connection on its own day.
    fn send_due(&self, sum: &mut RunSummary) {
        let mut pending: Vec<Week> = self
            .state
            .decided_weeks()
            .into_iter()
            .filter(|(_, s)| *s == WeekState::Pending)
            .map(|(w, _)| w)
            .collect();
        pending.sort();
        let mut sent_one = false;
        for w in pending {
            let Ok(Some(body)) = support::read_small(&self.state.pending(w), MAX_REPORT) else {
                continue;
            };
            let text = String::from_utf8_lossy(&body).into_owned();
            let line = |why: String, body: Option<String>| WeekLine { week: w, why, body };
            if self.opts.dry_run {
                sum.weeks.push(line(
                    format!(
                        "sampled: would be sent to {}/upload exactly as below (kept in {}; one \
                         report a day, oldest first)",
                        self.endpoint.server,
                        self.state.pending(w).display()
                    ),
                    Some(text),
                ));
            } else if sent_one {
                sum.weeks.push(line(
                    "waiting: one report is sent a day, each on its own connection; this one \
                     leaves on a later day"
                        .into(),
                    None,
                ));
            } else {
                sent_one = true;
                self.send(w, &body, text, sum);
            }
        }
    }

    /// Sends one pending report, after checking under the consent lock that every program in
    /// it is still covered by consent for the config it obeys.
    fn send(&self, w: Week, body: &[u8], text: String, sum: &mut RunSummary) {
        let line = |why: String, body: Option<String>| WeekLine { week: w, why, body };
        let _consent = ConsentLock::shared(self.layout);
        let Some(mf) = self.still_allowed(sum) else {
            sum.weeks.push(line(
                "not sent: consent changed before it left".into(),
                None,
            ));
            return;
        };
        if let Err(why) = self.covered(w, body, &mf) {
            let _ = fs::remove_file(self.state.pending(w));
            let _ = self
                .state
                .write_week(&self.state.withdrawn(w), format!("{why}\n").as_bytes());
            sum.weeks
                .push(line(format!("withdrawn, never sent: {why}"), None));
            return;
        }
        sum.network = true;
        match self.transport.post(self.endpoint, body) {
            PostResult::Accepted => {
                let _ = fs::rename(self.state.pending(w), self.state.sent(w));
                let _ = report::write_atomic(
                    &self.state.notice_file(),
                    format!("{w} {}\n", self.endpoint.server).as_bytes(),
                );
                sum.sent.push(w);
                let why = format!("sent (copy: {})", self.state.sent(w).display());
                sum.weeks.push(line(why, Some(text)));
            }
            PostResult::Refused(code, msg) => {
                let why = format!("HTTP {code}: {msg}");
                self.drop_pending(w, &why);
                let why = format!("refused by the server, dropped (never retried): {why}");
                sum.weeks.push(line(why, None));
            }
            PostResult::Failed(msg) => {
                let why = format!("not sent now ({msg}): retried on a later day");
                sum.weeks.push(line(why, None));
            }
        }
    }

    /// Whether consent (as re-read in `mf`) still covers every program of a pending report.
    fn covered(&self, w: Week, body: &[u8], mf: &ModeFile) -> Result<(), String> {
        let report: build::UploadReport =
            serde_json::from_slice(body).map_err(|e| format!("the kept report is damaged: {e}"))?;
        let index = report.config.index;
        let config = self
            .state
            .config_copy(index)
            .ok_or_else(|| format!("config {index}, which it obeys, is not on this machine"))?;
        for p in &report.programs {
            consent::check(
                mf,
                self.opts.ceiling,
                &p.name,
                w,
                self.state,
                index,
                &config,
            )
            .map_err(|r| format!("{}: {r}", p.name))?;
        }
        Ok(())
    }
}

/// The body of the upload child: one run, then exit. Never returns.
pub(crate) fn child_main(layout: Layout, endpoint: Endpoint) -> ! {
    let _ = std::thread::Builder::new()
        .name("clearcount-deadline".into())
        .stack_size(32 * 1024)
        .spawn(|| {
            std::thread::sleep(super::CHILD_DEADLINE);
            std::process::exit(0);
        });
    support::set_debug_log(layout.debug_log());
    super::wait_for_host();
    if super::cancelled() {
        support::debug_log("upload: a consent command ran in the host: nothing uploaded");
        std::process::exit(0);
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let summary = run(
            &layout,
            &endpoint,
            &RunOptions::now(),
            &HttpTransport::new(),
        );
        for n in &summary.notes {
            support::debug_log(&format!("upload: {n}"));
        }
        for w in &summary.weeks {
            if w.body.is_some() || w.why.contains("retried") || w.why.contains("refused") {
                support::debug_log(&format!("upload: week {}: {}", w.week, w.why));
            }
        }
    }));
    if result.is_err() {
        support::debug_log("upload: the upload child panicked");
    }
    support::debug_log("upload: run finished");
    std::process::exit(0)
}
