//! `clearcount upload --now`: the week in progress, sent at once.
//!
//! For a tool author testing an integration against a development server
//! (`clearcount-server serve --dev`, which accepts the current week; a real server refuses a
//! week that has not ended). Everything else is as for a weekly upload: nothing leaves in modes
//! off and local, only programs the user opted in are included, under a config their consent
//! covers, verified against the pinned log key, sampled and with randomized response; consent
//! is re-read under the consent lock just before the request. What differs: the counts are
//! those of the week so far, including those recorded before the user opted in during this
//! week (the user asks for exactly that by running the command), and nothing is recorded about
//! the week's own upload, which happens (or not) as it would have: the copy of what was sent
//! goes to `weeks/WEEK.now.json`.

use crate::flock::FileLock;
use std::collections::BTreeMap;

use crate::Layout;
use crate::clock::Week;
use crate::mode::ConsentLock;
use crate::report::{self, LocalReport};

use super::build::{self, Outcome};
use super::consent::{self, Refusal};
use super::run::{self, PostResult, RunOptions, RunSummary, Transport, WeekLine};
use super::state::{Endpoint, LogState};
use super::verify::VerifiedConfig;

/// Sends the report of the week in progress (see the module docs); with `opts.dry_run`, only
/// shows it. The summary's `sent` holds the week when the server accepted it. Never panics.
pub fn run_now(
    layout: &Layout,
    endpoint: &Endpoint,
    opts: &RunOptions,
    transport: &dyn Transport,
) -> RunSummary {
    let mut sum = RunSummary::default();
    if run::consent_now(layout, opts, &mut sum).is_none() {
        return sum;
    }
    if let Err(e) = endpoint.check() {
        sum.notes.push(format!("cannot upload: {e}"));
        return sum;
    }
    let state = LogState::new(layout, endpoint.origin());
    let Some(lock) = run::uploader_lock(&state, &mut sum) else {
        return sum;
    };
    let now = Now {
        layout,
        endpoint,
        opts,
        transport,
        state: &state,
        week: Week::containing(opts.now),
    };
    now.locked(&mut sum);
    let _ = lock.unlock_file();
    sum
}

struct Now<'a> {
    layout: &'a Layout,
    endpoint: &'a Endpoint,
    opts: &'a RunOptions,
    transport: &'a dyn Transport,
    state: &'a LogState,
    week: Week,
}

impl Now<'_> {
    fn line(&self, sum: &mut RunSummary, why: String, body: Option<String>) {
        sum.weeks.push(WeekLine {
            week: self.week,
            why,
            body,
        });
    }

    fn locked(&self, sum: &mut RunSummary) {
        let (local, problems) = report::week_in_progress(self.layout, self.week);
        for p in problems {
            sum.notes.push(format!("skipped {p}"));
        }
        if local.programs.is_empty() {
            let why = "nothing recorded in this week yet (run the tool first): nothing sent";
            self.line(sum, why.into(), None);
            return;
        }
        if run::alarmed(self.state, sum) {
            return;
        }
        let verified = {
            let _consent = ConsentLock::shared(self.layout);
            if run::consent_now(self.layout, self.opts, sum).is_none() {
                return;
            }
            sum.network = true;
            match self.transport.config(self.endpoint, self.state) {
                Ok(v) => v,
                Err(e) => {
                    sum.notes
                        .push(format!("no verified config, nothing sent: {e}"));
                    return;
                }
            }
        };
        sum.notes.push(format!(
            "config: index {} of log {} (verified against checkpoint of size {})",
            verified.index, verified.config.origin, verified.checkpoint.size
        ));
        self.build_and_send(&local, &verified, sum);
    }

    /// Whether the user's consent lets `program` be sent now under `verified`.
    fn consent(
        &self,
        mf: &crate::mode::ModeFile,
        program: &str,
        verified: &VerifiedConfig,
    ) -> Result<(), Refusal> {
        consent::check_now(
            mf,
            self.opts.ceiling,
            program,
            self.state,
            verified.index,
            &verified.config,
        )
    }

    /// Why each program of `local` in the config may not be sent now (re-reading consent).
    fn refusals<'r>(
        &self,
        local: &'r LocalReport,
        verified: &VerifiedConfig,
    ) -> Option<BTreeMap<&'r str, Refusal>> {
        let mf = crate::mode::read(self.layout).ok()?;
        Some(
            local
                .programs
                .iter()
                .filter(|p| verified.config.program(&p.name).is_some())
                .filter_map(|p| {
                    self.consent(&mf, &p.name, verified)
                        .err()
                        .map(|r| (p.name.as_str(), r))
                })
                .collect(),
        )
    }

    fn build_and_send(&self, local: &LocalReport, verified: &VerifiedConfig, sum: &mut RunSummary) {
        let mut rng = match clearcount_privacy::secure_rng() {
            Ok(r) => r,
            Err(e) => {
                sum.notes.push(format!("no secure random source: {e}"));
                return;
            }
        };
        let Some(refusals) = self.refusals(local, verified) else {
            sum.notes
                .push("the mode file cannot be read: nothing is sent".into());
            return;
        };
        let allowed = |p: &str| !refusals.contains_key(p);
        let built = build::build(local, &verified.config, verified.index, &allowed, &mut rng);
        let why = run::left_out(&refusals, &built);
        match built.outcome {
            Outcome::Send(r) => self.send(&r, verified, &why, sum),
            Outcome::NotSampled { x, sample_rate } => self.line(
                sum,
                format!(
                    "not sampled (x = {x:.4} is not below the sample rate {sample_rate}): \
                     nothing sent. A real week would send nothing either; each `upload --now` \
                     draws again (a test config with sample_rate = 1.0 always sends){why}"
                ),
                None,
            ),
            Outcome::NothingToReport | Outcome::BadWeek => self.line(
                sum,
                format!("not sent: nothing in it may be reported{why}"),
                None,
            ),
        }
    }

    fn send(
        &self,
        report: &build::UploadReport,
        verified: &VerifiedConfig,
        why: &str,
        sum: &mut RunSummary,
    ) {
        let body = report.to_json();
        if self.opts.dry_run {
            let what = format!(
                "the week so far would be sent to {}/upload exactly as below{why}",
                self.endpoint.server
            );
            self.line(sum, what, Some(body));
            return;
        }
        let _consent = ConsentLock::shared(self.layout);
        let still = crate::mode::read(self.layout).ok().is_some_and(|mf| {
            report
                .programs
                .iter()
                .all(|p| self.consent(&mf, &p.name, verified).is_ok())
        });
        if !still {
            self.line(sum, "not sent: consent changed before it left".into(), None);
            return;
        }
        match self.transport.post(self.endpoint, body.as_bytes()) {
            PostResult::Accepted => {
                let copy = self.state.sent_now(self.week);
                let _ = self.state.write_week(&copy, body.as_bytes());
                sum.sent.push(self.week);
                let what = format!("the week so far was sent (copy: {}){why}", copy.display());
                self.line(sum, what, Some(body));
            }
            PostResult::Refused(code, msg) => {
                let what = format!(
                    "refused by the server: HTTP {code}: {}\n    (only a development server, \
                     `clearcount-server serve --dev`, accepts the week in progress){why}",
                    msg.trim()
                );
                self.line(sum, what, None);
            }
            PostResult::Failed(msg) => {
                self.line(sum, format!("not sent: {msg}{why}"), None);
            }
        }
    }
}
