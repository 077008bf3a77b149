//! The consent and inspection commands, embeddable in a host tool with clap.
//!
//! ```no_run
//! use clap::{Parser, Subcommand};
//! use std::process::ExitCode;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(subcommand)]
//!     command: Command,
//! }
//!
//! #[derive(Subcommand)]
//! enum Command {
//!     /// See and change what clearcount records for this tool.
//!     #[command(subcommand)]
//!     Telemetry(clearcount::cli::TelemetryCommand),
//! }
//!
//! fn main() -> ExitCode {
//!     match Cli::parse().command {
//!         Command::Telemetry(cmd) => clearcount::cli::run(cmd),
//!     }
//! }
//! ```

mod consent;
mod status;

use std::fmt::Write as _;
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use clap::{Parser, Subcommand};

use crate::Layout;
use crate::clock::{self, Week};
use crate::mode::{self, Mode, ModeFile};
use crate::report::{self, LocalReport, ReportError};
use crate::upload::run::{self as upload_run, HttpTransport, RunOptions};
use crate::upload::state::{self as upload_state, Endpoint, LogState};
use crate::upload::verify;
use clearcount_config_log::config::{Config, CounterKind};
use consent::Scope;

/// The `clearcount` command.
#[derive(Debug, Parser)]
#[command(
    name = "clearcount",
    version,
    about = "See and change what clearcount records and sends",
    long_about = "See and change what clearcount records and sends.\n\n\
        Tools that use clearcount count events on this machine (mode `local`, the default), \
        reduce them to weekly reports that stay here, and upload privatized reports only in \
        mode `on`. DO_NOT_TRACK=1 or CLEARCOUNT_MODE=off turn everything off; CLEARCOUNT_DIR \
        moves the directory."
)]
pub struct ClearcountCli {
    /// What to do.
    #[command(subcommand)]
    pub command: TelemetryCommand,
}

/// The consent and inspection subcommands (`on`, `off`, `local`, `status`, `view`, `export`,
/// `clean`, `upload`, `config`, `notify`). Embed them in a host tool as `mytool telemetry ...`
/// and run them with [`run`].
///
/// Building these subcommands' arguments is deferred until the user names the `telemetry`
/// subcommand (or asks for its help): a host tool that embeds them pays nothing for them on
/// its ordinary runs (clap would otherwise build every argument of every subcommand at each
/// start). The parsed command is [`TelemetryAction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryCommand(pub TelemetryAction);

impl clap::FromArgMatches for TelemetryCommand {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        TelemetryAction::from_arg_matches(m).map(TelemetryCommand)
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
}

impl Subcommand for TelemetryCommand {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        cmd.defer(|c| keep_about(c, TelemetryAction::augment_subcommands))
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(|c| keep_about(c, TelemetryAction::augment_subcommands_for_update))
    }

    fn has_subcommand(name: &str) -> bool {
        TelemetryAction::has_subcommand(name)
    }
}

/// Adds the subcommands but keeps the about text the host gave its `telemetry` subcommand (the
/// derive would set this enum's documentation, and deferred, it would come last).
fn keep_about(cmd: clap::Command, augment: fn(clap::Command) -> clap::Command) -> clap::Command {
    use clap::builder::Resettable;
    let keep = |text: Option<&clap::builder::StyledStr>| {
        text.cloned().map_or(Resettable::Reset, Resettable::Value)
    };
    let (about, long_about) = (keep(cmd.get_about()), keep(cmd.get_long_about()));
    augment(cmd).about(about).long_about(long_about)
}

/// What a [`TelemetryCommand`] asks for.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum TelemetryAction {
    /// Opt in: record locally and upload sampled, privatized weekly reports.
    ///
    /// First fetches the counter config from the server's transparency log, verifies it with
    /// the pinned log key, and shows every counter that may be reported, with its rationale,
    /// its epsilon and the sample rate; when you agreed to an earlier config, it shows exactly
    /// what the new one asks for beyond it. Consent is per program and per config: a tool's own
    /// `telemetry on` opts in that tool alone; `clearcount on` lists the programs of every
    /// config it could fetch and verify and opts in those you confirm. A later config that asks
    /// for more is not used until you confirm again. Only weeks that start after now are ever
    /// uploaded. If a config cannot be fetched and verified, nothing changes and the command
    /// fails. Asks for confirmation when run in a terminal; scripts pass --yes.
    ///
    /// The server and key come from --server and --log-key, else from the host tool (`mytool
    /// telemetry on`), else from what tools recorded in the clearcount directory.
    On {
        /// Confirm without asking (for scripts; required when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
        /// Opt in only this program (default: the tool's own program for `TOOL telemetry on`,
        /// every program of the verified configs for `clearcount on`).
        #[arg(long, value_name = "NAME")]
        program: Option<String>,
        /// Where the server and its log are.
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Opt out: record nothing, write nothing, send nothing.
    Off {
        /// Also delete every file clearcount keeps for the scope (counter files, weekly
        /// reports, upload state and sent copies), and list what was deleted.
        #[arg(long)]
        purge: bool,
        /// Only this program (default: the tool's own program for `TOOL telemetry off`,
        /// every program for `clearcount off`).
        #[arg(long, value_name = "NAME", conflicts_with = "all")]
        program: Option<String>,
        /// Every program, also from a tool's own `telemetry off`.
        #[arg(long)]
        all: bool,
    },
    /// Record and keep weekly reports on this machine only, never upload (the default).
    Local {
        /// Only this program (default: the tool's own program for `TOOL telemetry local`,
        /// every program for `clearcount local`, which leaves programs that are off off).
        #[arg(long, value_name = "NAME", conflicts_with = "all")]
        program: Option<String>,
        /// Every program, also from a tool's own `telemetry local`.
        #[arg(long)]
        all: bool,
    },
    /// Show the mode and since when, overrides, the environment, directories and stored weeks.
    Status,
    /// Show the weekly counts: completed weeks and the week in progress, or one week.
    View {
        /// The week to show (its Monday, YYYY-MM-DD); the current week shows counts so far.
        #[arg(long, value_name = "WEEK")]
        week: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the local report of a completed week as JSON, for sharing by hand.
    Export {
        /// The week (its Monday, YYYY-MM-DD).
        #[arg(long, value_name = "WEEK")]
        week: String,
    },
    /// Reduce ended weeks to reports now and delete data older than the retention period.
    Clean,
    /// Reduce ended weeks and upload the weeks that are due now (mode on only), or with --now
    /// the week in progress to a development server.
    ///
    /// In modes off and local nothing is sent and the network is not used. With --dry-run,
    /// prints exactly the JSON that would be sent for each week and why every other week is
    /// not sent; the week's random draw is made and kept, so a later upload sends exactly what
    /// the dry run printed.
    ///
    /// With --now, sends the report of the week in progress at once: for tool authors who
    /// test their integration against a development server (`clearcount-server serve --dev`);
    /// a real server refuses a week that has not ended. It needs your consent as always (mode
    /// on for the program, which `TOOL telemetry on` gives), uses the verified config, samples
    /// and randomizes as a weekly upload does, and includes the counts of the week so far,
    /// also those recorded before you opted in this week. It leaves the week's own upload
    /// alone and keeps a copy of what it sent (`weeks/WEEK.now.json` in the upload
    /// directory). Exits 1 when nothing was accepted.
    Upload {
        /// Send nothing; print what would be sent and why.
        #[arg(long)]
        dry_run: bool,
        /// Send the week in progress now, to a development server (see above).
        #[arg(long, conflicts_with = "child")]
        now: bool,
        /// Run as the detached upload child of a recording-only tool, which starts it at most
        /// once a day with its token's `DAY:NONCE`; not for people.
        #[arg(long, hide = true, value_name = "DAY:NONCE", requires_all = ["server", "log_key"], conflicts_with = "dry_run")]
        child: Option<String>,
        /// Where the server and its log are.
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Review the counter config from the log, verified with the pinned key.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Whether tools print one line on stderr after they uploaded a report (default: off).
    Notify {
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

/// Where the config log and server are: both options together, or neither.
#[derive(Debug, Clone, PartialEq, Eq, Default, clap::Args)]
pub struct EndpointArgs {
    /// The clearcount server URL (e.g. `https://telemetry.example.org`).
    #[arg(long, value_name = "URL", requires = "log_key")]
    pub server: Option<String>,
    /// The config log's verifier key (name+hex(keyid)+base64(key)) to pin.
    #[arg(long, value_name = "KEY", requires = "server")]
    pub log_key: Option<String>,
}

/// `clearcount config ...`: review and verify the config.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ConfigCommand {
    /// Print the latest config (or the one at --index), after verifying it is in the log.
    Show {
        /// The log index of the config (default: the latest).
        #[arg(long, value_name = "N")]
        index: Option<u64>,
        /// Where the server and its log are.
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Show what changed: from the config last accepted on this machine (or --from N, or the
    /// previous entry) to the latest, with the privacy budget per program.
    Diff {
        /// The log index to compare from.
        #[arg(long, value_name = "N")]
        from: Option<u64>,
        /// Where the server and its log are.
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Verify the log now: checkpoint signature, consistency with the checkpoint remembered,
    /// and inclusion of the latest config. Exits 1 on failure (and records an alarm when the
    /// failure is evidence against the log).
    Verify {
        /// Where the server and its log are.
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Clear an alarm after looking into it, so uploads can resume.
    ClearAlarm {
        /// Also forget the remembered checkpoint: the next verification trusts the log's
        /// current checkpoint as on first use (needed after a fork or rollback you accept).
        #[arg(long)]
        forget_checkpoint: bool,
        /// Where the server and its log are.
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
}

/// How the user types these commands here: `clearcount`, or in a host tool that called
/// [`crate::start`], `TOOL telemetry` (TOOL: the name the tool was run by, else its program
/// name), so that every hint names a command the user has.
pub fn invoked_as() -> String {
    let Some(program) = crate::runtime::host_program() else {
        return "clearcount".to_string();
    };
    let exe = std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace));
    format!("{} telemetry", exe.as_deref().unwrap_or(program))
}

/// Runs a command against the default directory ([`crate::default_dir`]), printing to stdout
/// and errors to stderr. Returns 0 on success, 1 on failure, 2 when confirmation is missing.
pub fn run(cmd: TelemetryCommand) -> ExitCode {
    let Some(layout) = Layout::default_layout() else {
        if crate::under_cargo_test() {
            eprintln!(
                "{}: running under cargo test (CARGO_BIN_EXE_* is set), where clearcount uses \
                 no directory unless CLEARCOUNT_DIR names one (a temporary directory)",
                invoked_as()
            );
        } else {
            eprintln!(
                "{}: no configuration directory; set CLEARCOUNT_DIR",
                invoked_as()
            );
        }
        return ExitCode::FAILURE;
    };
    run_in(cmd, &layout)
}

/// Runs a command against `layout`.
pub fn run_in(cmd: TelemetryCommand, layout: &Layout) -> ExitCode {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match execute(cmd, layout, &mut out) {
        Ok(code) => code,
        Err(e) => {
            let _ = out.flush();
            eprintln!("{}: {e:#}", invoked_as());
            ExitCode::FAILURE
        }
    }
}

fn execute(cmd: TelemetryCommand, layout: &Layout, out: &mut dyn Write) -> Result<ExitCode> {
    match cmd.0 {
        TelemetryAction::On {
            yes,
            program,
            endpoint,
        } => {
            let scope = Scope::of(program, false)?;
            return consent::on(layout, &scope, &endpoint, yes, out);
        }
        TelemetryAction::Off {
            purge,
            program,
            all,
        } => consent::lower(layout, &Scope::of(program, all)?, Mode::Off, purge, out)?,
        TelemetryAction::Local { program, all } => {
            consent::lower(layout, &Scope::of(program, all)?, Mode::Local, false, out)?
        }
        TelemetryAction::Status => status::status(layout, out)?,
        TelemetryAction::View { week, json } => view(layout, week.as_deref(), json, out)?,
        TelemetryAction::Export { week } => {
            let w = parse_week(&week)?;
            if w >= Week::current() {
                bail!(
                    "week {w} is not over yet; `{} view --week {w}` shows it so far",
                    invoked_as()
                );
            }
            reduce_quietly(layout);
            match report::read_report(layout, w)? {
                Some(r) => out.write_all(r.to_json().as_bytes())?,
                None => bail!("no report for week {w}"),
            }
        }
        TelemetryAction::Upload {
            child: Some(marker),
            endpoint:
                EndpointArgs {
                    server: Some(server),
                    log_key: Some(key),
                },
            ..
        } => {
            let ep = Endpoint::new(server, key);
            if ep.check().is_ok() && crate::upload::is_child(layout, &ep, &marker) {
                crate::upload::run::child_main(layout.clone(), ep);
            }
            bail!("not an upload child: no token of today holds {marker}");
        }
        TelemetryAction::Upload {
            dry_run,
            now,
            endpoint,
            ..
        } => {
            return upload_now(layout, &endpoint, dry_run, now, out);
        }
        TelemetryAction::Config(c) => return config_command(layout, c, out),
        TelemetryAction::Notify { state } => {
            let mf = mode::update(layout, |mf| mf.notify_uploads = state == "on")
                .map_err(|e| anyhow!(e))?;
            writeln!(
                out,
                "{}",
                if mf.notify_uploads {
                    "Tools now print one line on stderr after they uploaded a report."
                } else {
                    "Tools print nothing about uploads (the default)."
                }
            )?;
        }
        TelemetryAction::Clean => {
            let s = report::reduce(layout, clock::now_unix(), retention(layout))?;
            for w in &s.reduced {
                writeln!(out, "reduced week {w} into {}", layout.report(*w).display())?;
            }
            for p in &s.set_aside {
                writeln!(out, "set aside damaged file {}", p.display())?;
            }
            for p in &s.expired {
                writeln!(out, "deleted {}", p.display())?;
            }
            if s.reduced.is_empty() && s.set_aside.is_empty() && s.expired.is_empty() {
                writeln!(out, "nothing to do")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_week(s: &str) -> Result<Week> {
    Week::parse(s).ok_or_else(|| anyhow!("{s:?} is not a week: give its Monday as YYYY-MM-DD"))
}

pub(super) fn note_environment(out: &mut dyn Write) -> Result<()> {
    match mode::environment_ceiling() {
        Mode::Off => writeln!(
            out,
            "Note: DO_NOT_TRACK or CLEARCOUNT_MODE=off in this environment keeps it off here."
        )?,
        Mode::Local => writeln!(
            out,
            "Note: CLEARCOUNT_MODE=local in this environment keeps it local here."
        )?,
        Mode::On => {}
    }
    Ok(())
}

fn read_modes(layout: &Layout) -> Result<ModeFile> {
    mode::read(layout).map_err(|e| anyhow!(e))
}

fn retention(layout: &Layout) -> u32 {
    read_modes(layout)
        .map(|m| m.retention())
        .unwrap_or(mode::DEFAULT_RETENTION_WEEKS)
}

fn reduce_quietly(layout: &Layout) {
    match report::reduce(layout, clock::now_unix(), retention(layout)) {
        Ok(_) | Err(ReportError::Busy) => {}
        Err(e) => eprintln!("{}: weekly reduction: {e}", invoked_as()),
    }
}

/// The endpoints a command works on: --server and --log-key (recorded for next time), else the
/// host tool's, else every endpoint recorded in the directory.
pub(super) fn endpoints(layout: &Layout, args: &EndpointArgs) -> Result<Vec<Endpoint>> {
    if let (Some(server), Some(key)) = (&args.server, &args.log_key) {
        let ep = Endpoint::new(server.as_str(), key.as_str());
        ep.check().map_err(|e| anyhow!(e))?;
        let _ = LogState::new(layout, ep.origin()).record_endpoint(&ep);
        return Ok(vec![ep]);
    }
    if let Some(ep) = crate::upload::host_endpoint() {
        return Ok(vec![ep.clone()]);
    }
    Ok(crate::upload::recorded_endpoints(layout))
}

fn one_endpoint(layout: &Layout, args: &EndpointArgs) -> Result<Endpoint> {
    let mut eps = endpoints(layout, args)?;
    match eps.len() {
        0 => {
            bail!("no server known: no tool has recorded one yet; pass --server URL --log-key KEY")
        }
        1 => Ok(eps.remove(0)),
        _ => {
            let list: Vec<String> = eps
                .iter()
                .map(|e| format!("{} ({})", e.server, e.origin()))
                .collect();
            bail!(
                "several servers are known ({}); choose one with --server and --log-key",
                list.join(", ")
            )
        }
    }
}

/// A config for people: what may be reported, why, and with which protection.
pub fn describe_config(
    c: &Config,
    index: u64,
    verified_size: Option<u64>,
    program: Option<&str>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Config {index} of the log {}", c.origin);
    match verified_size {
        Some(n) => {
            let _ = writeln!(
                s,
                "  verified: in the log's signed tree of {n} entries, consistent with what this \
                 machine saw before"
            );
        }
        None => {
            let _ = writeln!(s, "  (cached copy, verified when it was fetched)");
        }
    }
    let _ = writeln!(
        s,
        "  sample rate {}: each weekly report is uploaded with this probability (a fresh \
         random draw per week), otherwise not at all",
        c.sample_rate
    );
    let _ = writeln!(
        s,
        "  at most epsilon {} per program per weekly report; os {}; arch {}",
        c.max_epsilon,
        c.os.join(", "),
        c.arch.join(", ")
    );
    for p in &c.programs {
        if program.is_some_and(|want| want != p.name) {
            continue;
        }
        let _ = writeln!(
            s,
            "\n  program {} (versions {}; other versions are reported as `devel`)",
            p.name, p.versions
        );
        for k in &p.counters {
            let kind = match k.kind {
                CounterKind::Count => "count, reported as the bucket of the weekly total",
                CounterKind::Category => "category, reported as the most used label",
            };
            let rr = match k.epsilon {
                Some(e) => format!("randomized response with epsilon {e}"),
                None => "NO randomized response: the true label is sent".to_string(),
            };
            let _ = writeln!(s, "    counter {} ({kind})", k.name);
            let _ = writeln!(s, "      labels: {}", k.report_labels().join(", "));
            let _ = writeln!(s, "      privacy: {rr}");
            let _ = writeln!(s, "      what: {}", k.description.trim());
            let _ = writeln!(s, "      why: {}", k.rationale.trim());
            let _ = writeln!(
                s,
                "      owner {}, {}, expires {}",
                k.owner, k.link, k.expires
            );
        }
    }
    if program.is_some_and(|want| c.program(want).is_none()) {
        let _ = writeln!(
            s,
            "\n  program {} is not in this config: nothing of it can be uploaded",
            program.unwrap_or_default()
        );
    }
    s.push('\n');
    s
}

fn upload_now(
    layout: &Layout,
    args: &EndpointArgs,
    dry_run: bool,
    week_in_progress: bool,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    // Off and local never reach the network, whatever the endpoint.
    let mf = read_modes(layout).unwrap_or_default();
    let mut opts = RunOptions::now();
    opts.dry_run = dry_run;
    if !crate::upload::any_consent(&mf, opts.ceiling) {
        reduce_quietly(layout);
        writeln!(
            out,
            "No program is opted in: nothing is sent and the network is not used.\n\
             Weekly reports stay on this machine (`{} view`).",
            invoked_as()
        )?;
        return Ok(if week_in_progress {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    let eps = endpoints(layout, args)?;
    if eps.is_empty() {
        writeln!(
            out,
            "No tool has recorded a server yet: nothing to upload to (pass --server and --log-key)."
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut code = ExitCode::SUCCESS;
    for ep in &eps {
        writeln!(out, "== {} (log {})", ep.server, ep.origin())?;
        let sum = if week_in_progress {
            crate::upload::now::run_now(layout, ep, &opts, &HttpTransport::new())
        } else {
            upload_run::run(layout, ep, &opts, &HttpTransport::new())
        };
        out.write_all(sum.render().as_bytes())?;
        let nothing = week_in_progress && sum.sent.is_empty() && !dry_run;
        if nothing || sum.notes.iter().any(|n| n.contains("ALARM")) {
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

fn config_command(layout: &Layout, cmd: ConfigCommand, out: &mut dyn Write) -> Result<ExitCode> {
    match cmd {
        ConfigCommand::Show { index, endpoint } => {
            let ep = one_endpoint(layout, &endpoint)?;
            let state = LogState::new(layout, ep.origin());
            let v = verify::fetch_verified(&ep, &state, index)?;
            writeln!(
                out,
                "# config {} of log {} from {}, verified: included in the signed tree of {} \
                 entries",
                v.index, v.config.origin, ep.server, v.checkpoint.size
            )?;
            out.write_all(&v.bytes)?;
        }
        ConfigCommand::Diff { from, endpoint } => {
            let ep = one_endpoint(layout, &endpoint)?;
            let state = LogState::new(layout, ep.origin());
            let cached = state.cached_config();
            let new = verify::fetch_verified(&ep, &state, None)?;
            let old: Option<(u64, Vec<u8>)> = match from {
                Some(i) => {
                    let v = verify::fetch_verified(&ep, &state, Some(i))?;
                    Some((v.index, v.bytes))
                }
                None => match cached {
                    Some((i, b)) if i != new.index => Some((i, b)),
                    _ if new.index > 0 => {
                        let v = verify::fetch_verified(&ep, &state, Some(new.index - 1))?;
                        Some((v.index, v.bytes))
                    }
                    _ => None,
                },
            };
            let old_cfg = match &old {
                Some((_, b)) => Some(Config::parse(b).map_err(|e| anyhow!("old config: {e}"))?),
                None => None,
            };
            match &old {
                Some((i, _)) => writeln!(out, "# from config {i} to config {}", new.index)?,
                None => writeln!(out, "# config {} is the first of the log", new.index)?,
            }
            let d = clearcount_config_log::config::diff(old_cfg.as_ref(), &new.config);
            out.write_all(d.text.as_bytes())?;
            if !d.text.ends_with('\n') {
                writeln!(out)?;
            }
        }
        ConfigCommand::Verify { endpoint } => {
            let mut failed = false;
            let eps = endpoints(layout, &endpoint)?;
            if eps.is_empty() {
                bail!("no server known: pass --server URL --log-key KEY");
            }
            for ep in &eps {
                let state = LogState::new(layout, ep.origin());
                let before = state.checkpoint_note().is_some();
                match verify::fetch_verified(ep, &state, None) {
                    Ok(v) => {
                        writeln!(
                            out,
                            "{} (log {}): OK: checkpoint of {} entries signed by the pinned key; \
                             {}; config {} included",
                            ep.server,
                            ep.origin(),
                            v.checkpoint.size,
                            match (&v.previous, before) {
                                (Some(p), _) => format!(
                                    "consistent with the checkpoint of {} entries seen before",
                                    p.size
                                ),
                                _ =>
                                    "first checkpoint seen on this machine (now remembered)".into(),
                            },
                            v.index
                        )?;
                    }
                    Err(e) => {
                        failed = true;
                        writeln!(out, "{} (log {}): FAILED: {e}", ep.server, ep.origin())?;
                    }
                }
                if let Some(a) = state.alarm() {
                    failed = true;
                    writeln!(
                        out,
                        "ALARM standing (nothing is uploaded):\n{}\nClear it with `{} \
                         config clear-alarm` (add --forget-checkpoint to trust the log's \
                         current state).",
                        a.trim_end(),
                        invoked_as()
                    )?;
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        ConfigCommand::ClearAlarm {
            forget_checkpoint,
            endpoint,
        } => {
            let states: Vec<LogState> = if endpoint.server.is_some() {
                endpoints(layout, &endpoint)?
                    .iter()
                    .map(|e| LogState::new(layout, e.origin()))
                    .collect()
            } else {
                upload_state::logs(layout)
            };
            let mut n = 0;
            for st in states {
                if st.clear_alarm(forget_checkpoint)? {
                    n += 1;
                    writeln!(out, "cleared the alarm in {}", st.dir().display())?;
                }
            }
            if n == 0 {
                writeln!(out, "no alarm to clear")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn render(r: &LocalReport, label: &str, s: &mut String) -> Result<()> {
    writeln!(s, "week {} ({label})", r.week)?;
    if r.programs.is_empty() {
        writeln!(s, "  nothing recorded")?;
    }
    for p in &r.programs {
        writeln!(s, "  {} {} {}/{}", p.name, p.version, p.os, p.arch)?;
        let width = p.counters.keys().map(String::len).max().unwrap_or(0);
        for (k, v) in &p.counters {
            writeln!(s, "    {k:<width$}  {v}")?;
        }
    }
    Ok(())
}

fn view(layout: &Layout, week: Option<&str>, json: bool, out: &mut dyn Write) -> Result<()> {
    reduce_quietly(layout);
    let current = Week::current();
    let mut s = String::new();
    let mut problems = Vec::new();
    match week {
        Some(w) => {
            let w = parse_week(w)?;
            let (r, label) = if w == current {
                let (r, p) = report::week_in_progress(layout, w);
                problems = p;
                (r, "in progress")
            } else {
                match report::read_report(layout, w)? {
                    Some(r) => (r, "completed"),
                    None => {
                        let (r, p) = report::week_in_progress(layout, w);
                        problems = p;
                        if r.programs.is_empty() {
                            bail!("no report for week {w}");
                        }
                        (r, "ended, not reduced yet")
                    }
                }
            };
            if json {
                s = r.to_json();
            } else {
                render(&r, label, &mut s)?;
            }
        }
        None => {
            let mut completed = Vec::new();
            for w in report::report_weeks(layout) {
                if let Some(r) = report::read_report(layout, w)? {
                    completed.push(r);
                }
            }
            let (now, p) = report::week_in_progress(layout, current);
            problems = p;
            if json {
                let v = serde_json::json!({ "completed": completed, "in_progress": now });
                s = serde_json::to_string_pretty(&v)?;
                s.push('\n');
            } else {
                for r in &completed {
                    render(r, "completed", &mut s)?;
                }
                render(&now, "in progress", &mut s)?;
            }
        }
    }
    out.write_all(s.as_bytes())?;
    for p in problems {
        eprintln!("{}: skipped {p}", invoked_as());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// A host tool embeds the deferred subcommands: they parse, their help is complete, and
    /// the host's own about text for `telemetry` stays.
    #[test]
    fn embedded_in_a_host_tool() {
        #[derive(Parser)]
        #[command(name = "host")]
        struct Host {
            #[command(subcommand)]
            command: Option<HostCommand>,
        }
        #[derive(Subcommand)]
        enum HostCommand {
            /// What host records.
            #[command(subcommand)]
            Telemetry(TelemetryCommand),
        }
        Host::command().debug_assert();
        let h = Host::try_parse_from(["host", "telemetry", "view", "--json"]).unwrap();
        let Some(HostCommand::Telemetry(t)) = h.command else {
            panic!("telemetry not parsed")
        };
        assert_eq!(
            t.0,
            TelemetryAction::View {
                week: None,
                json: true
            }
        );
        assert!(Host::try_parse_from(["host", "telemetry", "view", "--bogus"]).is_err());
        let mut cmd = Host::command();
        cmd.build();
        let sub = cmd.find_subcommand("telemetry").unwrap();
        assert_eq!(sub.get_about().unwrap().to_string(), "What host records");
        assert!(sub.find_subcommand("on").is_some() && sub.find_subcommand("config").is_some());
    }

    #[test]
    fn cli_is_well_formed() {
        ClearcountCli::command().debug_assert();
        let c = ClearcountCli::try_parse_from(["clearcount", "off", "--purge", "--program", "rg"])
            .unwrap();
        assert_eq!(
            c.command.0,
            TelemetryAction::Off {
                purge: true,
                program: Some("rg".into()),
                all: false,
            }
        );
        assert!(
            ClearcountCli::try_parse_from(["clearcount", "off", "--all", "--program", "rg"])
                .is_err()
        );
        assert!(ClearcountCli::try_parse_from(["clearcount", "export"]).is_err());
        assert!(ClearcountCli::try_parse_from(["clearcount", "upload", "--server", "x"]).is_err());
        let c = ClearcountCli::try_parse_from(["clearcount", "config", "verify"]).unwrap();
        assert!(matches!(
            c.command.0,
            TelemetryAction::Config(ConfigCommand::Verify { .. })
        ));
    }
}
