//! One upload run: reduce, decide each ended week, verify the config, build, send.
//!
//! Used by the detached upload child, by `clearcount upload [--dry-run]`, and in-process by
//! simulations: everything it needs (directory, clock, environment ceiling, transport) is
//! passed in.

use std::fmt::Write as _;
use std::fs;
use std::io::Read as _;
use std::time::Duration;

use crate::clock::{self, Week};
use crate::mode::{self, Mode, ModeFile};
use crate::report::{self, ReportError};
use crate::{Layout, runtime};

use super::any_program_on;
use super::build::{self, Outcome};
use super::state::{Endpoint, LogState, WeekState};
use super::verify::{self, ConfigFetchError, VerifiedConfig};

/// The oldest week the server accepts, in weeks before the current one.
pub const MAX_WEEKS_OLD: i64 = 4;
/// Connect timeout of an upload.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a run waits for another uploader to finish.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);
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

/// The real transport: HTTP(S) with connect and total timeouts.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    agent: std::sync::OnceLock<ureq::Agent>,
}

impl HttpTransport {
    /// A transport with [`CONNECT_TIMEOUT`] and [`REQUEST_TIMEOUT`]. Creating it costs nothing
    /// and opens no connection; the HTTP client is made on first use.
    pub fn new() -> HttpTransport {
        HttpTransport {
            agent: std::sync::OnceLock::new(),
        }
    }

    fn agent(&self) -> &ureq::Agent {
        self.agent.get_or_init(|| {
            ureq::Agent::config_builder()
                .timeout_connect(Some(CONNECT_TIMEOUT))
                .timeout_global(Some(REQUEST_TIMEOUT))
                .user_agent("clearcount")
                .http_status_as_error(false)
                .build()
                .new_agent()
        })
    }
}

impl Default for HttpTransport {
    fn default() -> Self {
        Self::new()
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
        match self
            .agent()
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

/// Whether `program`'s reports of `week` may be uploaded: mode on (after the ceiling), set
/// before the week started.
pub fn opted_in_for(mf: &ModeFile, ceiling: Mode, program: &str, week: Week) -> bool {
    let s = mf.setting_for(program);
    mode::effective(s.mode, ceiling) == Mode::On && s.since.is_some_and(|t| t < week.start_unix())
}

/// One upload run for `endpoint`'s log in `layout` (see the module docs). Never panics; in
/// modes off and local it returns before touching the network.
pub fn run(
    layout: &Layout,
    endpoint: &Endpoint,
    opts: &RunOptions,
    transport: &dyn Transport,
) -> RunSummary {
    let mut sum = RunSummary::default();
    let mf = match runtime::read_mode_file(layout) {
        Ok(m) => m,
        Err(e) => {
            sum.notes.push(format!(
                "the mode file cannot be used ({e}): treated as off, nothing is sent"
            ));
            return sum;
        }
    };
    if !any_program_on(&mf, opts.ceiling) {
        sum.notes.push(format!(
            "mode is not on for any program{}: nothing is sent and the network is not used",
            if opts.ceiling < Mode::On {
                " (the environment keeps it lower)"
            } else {
                ""
            }
        ));
        return sum;
    }
    if let Err(e) = endpoint.check() {
        sum.notes.push(format!("cannot upload: {e}"));
        return sum;
    }
    let state = LogState::new(layout, endpoint.origin());
    if let Err(e) = fs::create_dir_all(state.dir()) {
        sum.notes
            .push(format!("cannot create {}: {e}", state.dir().display()));
        return sum;
    }
    let lock = match fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state.lock_file())
    {
        Ok(f) => f,
        Err(e) => {
            sum.notes.push(format!("cannot open the upload lock: {e}"));
            return sum;
        }
    };
    // One uploader at a time: wait (bounded) for the one running to finish.
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    while lock.try_lock().is_err() {
        if std::time::Instant::now() >= deadline {
            sum.notes
                .push("another upload is still running: nothing done".to_string());
            return sum;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    run_locked(layout, endpoint, opts, transport, &mf, &state, &mut sum);
    let _ = lock.unlock();
    sum
}

fn run_locked(
    layout: &Layout,
    endpoint: &Endpoint,
    opts: &RunOptions,
    transport: &dyn Transport,
    mf: &ModeFile,
    state: &LogState,
    sum: &mut RunSummary,
) {
    let now = opts.now;
    // A host process may be reducing right now (the first start of a week does): wait for it,
    // so that the week it is writing is seen.
    for attempt in 0.. {
        match report::reduce(layout, now, mf.retention()) {
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
    let current = Week::containing(now);
    let oldest = current.plus_weeks(-MAX_WEEKS_OLD);
    let mut resend = Vec::new();
    let mut candidates = Vec::new();
    for w in report::report_weeks(layout) {
        if w >= current {
            continue;
        }
        let line = |why: String| WeekLine {
            week: w,
            why,
            body: None,
        };
        match state.week_state(w) {
            WeekState::Sent => sum.weeks.push(line(format!(
                "already sent (copy: {})",
                state.sent(w).display()
            ))),
            WeekState::Rejected(why) => sum.weeks.push(line(format!(
                "refused by the server earlier, never retried: {}",
                why.trim()
            ))),
            WeekState::Unsampled => sum
                .weeks
                .push(line("not sampled: nothing is sent for this week".into())),
            WeekState::Pending if w < oldest => {
                let _ = fs::rename(state.pending(w), state.rejected(w));
                let _ = state.write_week(
                    &state.rejected_why(w),
                    b"too old for the server (more than 4 weeks) before it could be sent\n",
                );
                sum.weeks
                    .push(line("dropped: it could not be sent within 4 weeks".into()));
            }
            WeekState::Pending => resend.push(w),
            WeekState::Open if w < oldest => sum.weeks.push(line(format!(
                "not sent: older than the {MAX_WEEKS_OLD} weeks the server accepts"
            ))),
            WeekState::Open => {
                let programs: Vec<String> = match report::read_report(layout, w) {
                    Ok(Some(r)) => r.programs.iter().map(|p| p.name.clone()).collect(),
                    _ => Vec::new(),
                };
                if programs
                    .iter()
                    .any(|p| opted_in_for(mf, opts.ceiling, p, w))
                {
                    candidates.push(w);
                } else {
                    sum.weeks.push(line(format!(
                        "not sent: no program of this week was in mode on before the week \
                         started{}",
                        opt_in_note(mf)
                    )));
                }
            }
        }
    }
    if resend.is_empty() && candidates.is_empty() {
        sum.notes
            .push("nothing to send: the network is not used".to_string());
        return;
    }
    if let Some(alarm) = state.alarm() {
        sum.notes.push(format!(
            "ALARM: nothing is uploaded until it is cleared (`clearcount config verify`, then \
             `clearcount config clear-alarm`):\n{}",
            alarm.trim_end()
        ));
        return;
    }
    sum.network = true;
    if !candidates.is_empty() {
        let verified = match transport.config(endpoint, state) {
            Ok(v) => v,
            Err(e) => {
                sum.notes
                    .push(format!("no verified config, nothing sent: {e}"));
                return;
            }
        };
        sum.notes.push(format!(
            "config: index {} of log {} (verified against checkpoint of size {})",
            verified.index, verified.config.origin, verified.checkpoint.size
        ));
        for w in candidates {
            let local = match report::read_report(layout, w) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    sum.weeks.push(WeekLine {
                        week: w,
                        why: format!("local report unreadable: {e}"),
                        body: None,
                    });
                    continue;
                }
            };
            let mut rng = match clearcount_privacy::secure_rng() {
                Ok(r) => r,
                Err(e) => {
                    sum.notes.push(format!("no secure random source: {e}"));
                    return;
                }
            };
            let opted = |p: &str| opted_in_for(mf, opts.ceiling, p, w);
            let built = build::build(&local, &verified.config, verified.index, &opted, &mut rng);
            let mut why = String::new();
            for (name, version, os, arch, reason) in &built.skipped {
                let _ = write!(why, "\n    left out {name} {version} {os}/{arch}: {reason}");
            }
            match built.outcome {
                Outcome::Send(r) => {
                    let body = r.to_json();
                    if let Err(e) = state.write_week(&state.pending(w), body.as_bytes()) {
                        sum.notes
                            .push(format!("cannot keep the report of {w}: {e}"));
                        return;
                    }
                    resend.push(w);
                    if !why.is_empty() {
                        sum.notes.push(format!("week {w}:{why}"));
                    }
                }
                Outcome::NotSampled { x, sample_rate } => {
                    let _ = state.write_week(
                        &state.unsampled(w),
                        format!("x {x} >= sample_rate {sample_rate}\n").as_bytes(),
                    );
                    sum.weeks.push(WeekLine {
                        week: w,
                        why: format!(
                            "not sampled (x = {x:.4} is not below the sample rate \
                             {sample_rate}): nothing is sent for this week{why}"
                        ),
                        body: None,
                    });
                }
                Outcome::NothingToReport | Outcome::BadWeek => sum.weeks.push(WeekLine {
                    week: w,
                    why: format!("not sent: nothing in it may be reported{why}"),
                    body: None,
                }),
            }
        }
    }
    resend.sort();
    let mut failed = false;
    for w in resend {
        let Ok(body) = fs::read(state.pending(w)) else {
            continue;
        };
        let text = String::from_utf8_lossy(&body).into_owned();
        if opts.dry_run {
            sum.weeks.push(WeekLine {
                week: w,
                why: format!(
                    "sampled: would be sent to {}/upload exactly as below (kept in {})",
                    endpoint.server,
                    state.pending(w).display()
                ),
                body: Some(text),
            });
            continue;
        }
        if failed {
            sum.weeks.push(WeekLine {
                week: w,
                why: "waiting: will be sent on a later day".into(),
                body: None,
            });
            continue;
        }
        match transport.post(endpoint, &body) {
            PostResult::Accepted => {
                let _ = fs::rename(state.pending(w), state.sent(w));
                let _ = report::write_atomic(
                    &state.notice_file(),
                    format!("{w} {}\n", endpoint.server).as_bytes(),
                );
                sum.sent.push(w);
                sum.weeks.push(WeekLine {
                    week: w,
                    why: format!("sent (copy: {})", state.sent(w).display()),
                    body: Some(text),
                });
            }
            PostResult::Refused(code, msg) => {
                let _ = fs::rename(state.pending(w), state.rejected(w));
                let why = format!("HTTP {code}: {msg}\n");
                let _ = state.write_week(&state.rejected_why(w), why.as_bytes());
                sum.weeks.push(WeekLine {
                    week: w,
                    why: format!(
                        "refused by the server, dropped (never retried): {}",
                        why.trim()
                    ),
                    body: None,
                });
            }
            PostResult::Failed(msg) => {
                failed = true;
                sum.weeks.push(WeekLine {
                    week: w,
                    why: format!("not sent now ({msg}): retried on a later day"),
                    body: None,
                });
            }
        }
    }
    state.expire_before(current.plus_weeks(-i64::from(mf.retention())));
}

fn opt_in_note(mf: &ModeFile) -> String {
    match mf.global {
        Some(g) if g.mode == Mode::On => match g.since {
            Some(t) => format!(" (mode on since {})", clock::format_rfc3339(t)),
            None => " (mode on, date unknown)".into(),
        },
        _ => String::new(),
    }
}
