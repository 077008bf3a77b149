//! Whether a program's weekly report may be uploaded under a given config: the user's consent
//! for that program, that log and that config (DESIGN.md section 3).
//!
//! A program's report of week W may be sent under config N of log L only when:
//!
//! 1. the program's own line in the mode file says `on`, set before W started, and the
//!    environment does not lower it;
//! 2. its `consent` line names log L (config M, the one the user was shown);
//! 3. config N asks for no more than config M ([`widening`] is empty). N = M always passes;
//!    a later N that asks for more waits for a new yes (`TOOL telemetry on` shows what is new).
//!
//! The consented config M is read from the uploader's copies (`configs/M.toml`, written when a
//! config is verified); the check never uses the network.

use clearcount_config_log::config::{Config, Widening, widening};

use crate::clock::{self, Week};
use crate::mode::{self, Mode, ModeFile};

use super::state::LogState;

/// Why a program's report may not be sent under a config.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The program is not in mode on (or the environment lowers it).
    NotOn,
    /// In mode on from an earlier clearcount, with no config consented to.
    NoConsent,
    /// Opted in after the week started: only later weeks are ever uploaded.
    TooLate {
        /// When the user opted in.
        since: i64,
    },
    /// The consent names another log.
    OtherLog {
        /// The origin consented to.
        origin: String,
    },
    /// The config asks for more than the one consented to.
    AsksForMore {
        /// The config consented to.
        consented: u64,
        /// The config that would be used.
        index: u64,
        /// What it asks for beyond the consented one.
        widenings: Vec<Widening>,
    },
    /// The consented config is not on this machine any more, so nothing can be compared.
    ConsentedConfigMissing {
        /// Its index.
        consented: u64,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotOn => f.write_str("not in mode on"),
            Refusal::NoConsent => f.write_str(
                "in mode on from an earlier clearcount, but no config was agreed to: confirm \
                 with `clearcount on --program NAME` or the tool's `telemetry on`",
            ),
            Refusal::TooLate { since } => write!(
                f,
                "opted in at {}, after the week started: only later weeks are sent",
                clock::format_rfc3339(*since)
            ),
            Refusal::OtherLog { origin } => {
                write!(f, "the consent given is for another config log ({origin})")
            }
            Refusal::AsksForMore {
                consented,
                index,
                widenings,
            } => {
                write!(
                    f,
                    "config {index} asks for more than config {consented}, the one agreed to; \
                     nothing is sent until it is confirmed (`telemetry on`):"
                )?;
                for w in widenings {
                    write!(f, "\n      - {w}")?;
                }
                Ok(())
            }
            Refusal::ConsentedConfigMissing { consented } => write!(
                f,
                "config {consented}, the one agreed to, is no longer on this machine: confirm \
                 again (`telemetry on`)"
            ),
        }
    }
}

/// Whether `program`'s report of `week` may be sent under `config` (log index `index`), per the
/// mode file `mf` and the environment `ceiling`. `state` holds the copies of verified configs.
pub fn check(
    mf: &ModeFile,
    ceiling: Mode,
    program: &str,
    week: Week,
    state: &LogState,
    index: u64,
    config: &Config,
) -> Result<(), Refusal> {
    let since = opted_in(mf, ceiling, program)?;
    if since >= week.start_unix() {
        return Err(Refusal::TooLate { since });
    }
    covers(mf, program, state, index, config)
}

/// [`check`] without rule 1's "before the week started": for `clearcount upload --now`, which
/// the user runs to send the week in progress at once (to a development server).
pub fn check_now(
    mf: &ModeFile,
    ceiling: Mode,
    program: &str,
    state: &LogState,
    index: u64,
    config: &Config,
) -> Result<(), Refusal> {
    opted_in(mf, ceiling, program)?;
    covers(mf, program, state, index, config)
}

/// When `program` was opted in, if it is in mode on with a consent.
fn opted_in(mf: &ModeFile, ceiling: Mode, program: &str) -> Result<i64, Refusal> {
    if mode::effective(mf.setting_for(program).mode, ceiling) != Mode::On {
        return Err(Refusal::NotOn);
    }
    match mf.consent_for(program) {
        Some((_, since)) => Ok(since),
        None => Err(Refusal::NoConsent),
    }
}

/// Rules 2 and 3: the consent of an opted-in `program` covers config `index` of `config`'s log.
fn covers(
    mf: &ModeFile,
    program: &str,
    state: &LogState,
    index: u64,
    config: &Config,
) -> Result<(), Refusal> {
    let Some((consent, _)) = mf.consent_for(program) else {
        return Err(Refusal::NoConsent);
    };
    if consent.origin != config.origin {
        return Err(Refusal::OtherLog {
            origin: consent.origin.clone(),
        });
    }
    if consent.index == index {
        return Ok(());
    }
    let Some(consented) = state.config_copy(consent.index) else {
        return Err(Refusal::ConsentedConfigMissing {
            consented: consent.index,
        });
    };
    let widenings = widening(&consented, config, program);
    if widenings.is_empty() {
        Ok(())
    } else {
        Err(Refusal::AsksForMore {
            consented: consent.index,
            index,
            widenings,
        })
    }
}
