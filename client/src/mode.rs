//! Modes and consent: `off`, `local` (the default) and `on`, with the date each was set.
//!
//! The mode file (`<dir>/mode`) is a small text file written by `clearcount on|off|local` and a
//! tool's own `TOOL telemetry on|off|local`:
//!
//! ```text
//! # clearcount consent settings: change them with `clearcount on|off|local`
//! mode local 2026-11-20T10:00:00Z
//! program ripgrep on 2026-11-21T09:30:00Z
//! program fd off 2026-11-22T08:00:00Z
//! consent ripgrep telemetry.example.org/config 6
//! retention-weeks 8
//! notify-uploads on
//! ```
//!
//! Consent is per program and per config (DESIGN.md section 3). A program uploads only when its
//! own line says `on` and a `consent` line names the log origin and the config index the user
//! was shown when they said yes; a later config is used for it only if it asks for no more
//! (see `clearcount_config_log::config::widening`). The `mode` line applies to programs without
//! a line of their own and only ever lowers: `off` or `local` for every program at once. A
//! `mode on` line (written by clearcount before consent was per program) and a `program ... on`
//! line without a `consent` line keep recording on, but upload nothing until the user confirms
//! per program.
//!
//! The environment can only lower the mode: `DO_NOT_TRACK` set to anything but empty, `0` or
//! `false` means `off`, and `CLEARCOUNT_MODE=off|local` lowers it.

use crate::flock::FileLock;
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::str::FromStr;

use crate::{Layout, clock, report, support};

/// The environment variable that turns everything off when set to anything but empty, `0`, `false`.
pub const DO_NOT_TRACK_ENV: &str = "DO_NOT_TRACK";
/// The environment variable that can lower (never raise) the mode: `off` or `local`.
pub const MODE_ENV: &str = "CLEARCOUNT_MODE";
/// Default number of weeks that local reports are kept.
pub const DEFAULT_RETENTION_WEEKS: u32 = 8;
/// Largest accepted retention.
pub const MAX_RETENTION_WEEKS: u32 = 520;

/// What clearcount does for a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// Nothing is recorded, no file is written, nothing is sent.
    Off,
    /// Counters are recorded and reduced to weekly reports on this machine; nothing is sent.
    Local,
    /// Like `local`, and sampled, privatized weekly reports are uploaded.
    On,
}

impl Mode {
    /// The lowercase name (`off`, `local`, `on`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Local => "local",
            Mode::On => "on",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ();
    fn from_str(s: &str) -> Result<Mode, ()> {
        match s {
            "off" => Ok(Mode::Off),
            "local" => Ok(Mode::Local),
            "on" => Ok(Mode::On),
            _ => Err(()),
        }
    }
}

/// A mode and the instant it was set (seconds since the epoch; `None` when unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeSetting {
    /// The mode.
    pub mode: Mode,
    /// When it was set.
    pub since: Option<i64>,
}

/// The config a user agreed to for one program: the log it is in and its index there.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Consent {
    /// The log origin (the name of the log's key).
    pub origin: String,
    /// The log index of the config the user was shown.
    pub index: u64,
}

/// The parsed mode file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModeFile {
    /// The mode for every program without an override (`None`: never set, meaning `local`).
    pub global: Option<ModeSetting>,
    /// Per-program overrides.
    pub programs: BTreeMap<String, ModeSetting>,
    /// Per program: the config the user agreed to when they opted it in.
    pub consents: BTreeMap<String, Consent>,
    /// How many weeks of local reports to keep (`None`: the default, 8).
    pub retention_weeks: Option<u32>,
    /// Whether host tools print one line on stderr after an upload happened (default: no).
    pub notify_uploads: bool,
}

/// Why a mode file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModeFileError {
    /// The file is not UTF-8 text.
    #[error("the mode file is not UTF-8 text")]
    NotText,
    /// The file is larger than any mode file written by clearcount.
    #[error("the mode file is too large ({0} bytes)")]
    TooLarge(usize),
    /// A line could not be understood.
    #[error("line {line} of the mode file is not understood: {text:?}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// The line (truncated).
        text: String,
    },
}

const MAX_MODE_FILE: usize = 64 * 1024;

impl ModeFile {
    /// Parses a mode file. Never panics; rejects anything it does not fully understand, so a
    /// damaged file is noticed (the caller then falls back to `off`).
    pub fn parse(bytes: &[u8]) -> Result<ModeFile, ModeFileError> {
        if bytes.len() > MAX_MODE_FILE {
            return Err(ModeFileError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ModeFileError::NotText)?;
        let mut out = ModeFile::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || ModeFileError::BadLine {
                line: i + 1,
                text: line.chars().take(80).collect(),
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            let setting = |m: &str, since: Option<&&str>| -> Option<ModeSetting> {
                let mode = m.parse().ok()?;
                let since = match since {
                    None => None,
                    Some(s) => Some(clock::parse_rfc3339(s)?),
                };
                Some(ModeSetting { mode, since })
            };
            match words.as_slice() {
                ["mode", m, rest @ ..] if rest.len() <= 1 => {
                    out.global = Some(setting(m, rest.first()).ok_or_else(bad)?);
                }
                ["program", name, m, rest @ ..] if rest.len() <= 1 => {
                    if !crate::valid_program_name(name) {
                        return Err(bad());
                    }
                    let s = setting(m, rest.first()).ok_or_else(bad)?;
                    out.programs.insert((*name).to_string(), s);
                }
                ["consent", name, origin, index] => {
                    if !crate::valid_program_name(name) || !valid_origin(origin) {
                        return Err(bad());
                    }
                    let index = index.parse().map_err(|_| bad())?;
                    let consent = Consent {
                        origin: (*origin).to_string(),
                        index,
                    };
                    out.consents.insert((*name).to_string(), consent);
                }
                ["retention-weeks", n] => {
                    let n: u32 = n.parse().map_err(|_| bad())?;
                    if n == 0 || n > MAX_RETENTION_WEEKS {
                        return Err(bad());
                    }
                    out.retention_weeks = Some(n);
                }
                ["notify-uploads", "on"] => out.notify_uploads = true,
                ["notify-uploads", "off"] => out.notify_uploads = false,
                _ => return Err(bad()),
            }
        }
        Ok(out)
    }

    /// The text of the file.
    pub fn render(&self) -> String {
        let mut s = String::from(
            "# clearcount consent settings: change them with `clearcount on|off|local`\n",
        );
        let line = |s: &mut String, prefix: String, set: &ModeSetting| {
            s.push_str(&prefix);
            s.push_str(set.mode.as_str());
            if let Some(t) = set.since {
                s.push(' ');
                s.push_str(&clock::format_rfc3339(t));
            }
            s.push('\n');
        };
        if let Some(g) = &self.global {
            line(&mut s, "mode ".into(), g);
        }
        for (name, set) in &self.programs {
            line(&mut s, format!("program {name} "), set);
        }
        for (name, c) in &self.consents {
            s.push_str(&format!("consent {name} {} {}\n", c.origin, c.index));
        }
        if let Some(n) = self.retention_weeks {
            s.push_str(&format!("retention-weeks {n}\n"));
        }
        if self.notify_uploads {
            s.push_str("notify-uploads on\n");
        }
        s
    }

    /// The mode the file sets for `program` (override first, then global, then `local`).
    pub fn setting_for(&self, program: &str) -> ModeSetting {
        self.programs
            .get(program)
            .or(self.global.as_ref())
            .copied()
            .unwrap_or(ModeSetting {
                mode: Mode::Local,
                since: None,
            })
    }

    /// The retention in weeks.
    pub fn retention(&self) -> u32 {
        self.retention_weeks.unwrap_or(DEFAULT_RETENTION_WEEKS)
    }

    /// The consent under which `program` may upload, and since when: only when the program's
    /// own line says `on` with a date and a `consent` line names its config. The environment
    /// ceiling is the caller's to apply.
    pub fn consent_for(&self, program: &str) -> Option<(&Consent, i64)> {
        let s = self.programs.get(program)?;
        if s.mode != Mode::On {
            return None;
        }
        Some((self.consents.get(program)?, s.since?))
    }

    /// Whether any program may upload (before the environment ceiling).
    pub fn any_consent(&self) -> bool {
        self.consents.keys().any(|p| self.consent_for(p).is_some())
    }

    /// Whether `program` is in mode `on` without a consent on record (a mode file of an earlier
    /// clearcount, whose `on` covered every program): it records, but uploads nothing until the
    /// user confirms.
    pub fn on_without_consent(&self, program: &str) -> bool {
        self.setting_for(program).mode == Mode::On && self.consent_for(program).is_none()
    }

    /// Opts `program` in under `consent`, as of `now`.
    pub fn opt_in(&mut self, program: &str, consent: Consent, now: i64) {
        let on = ModeSetting {
            mode: Mode::On,
            since: Some(now),
        };
        self.programs.insert(program.to_string(), on);
        self.consents.insert(program.to_string(), consent);
    }

    /// Sets `program` to `off` or `local` as of `now`, withdrawing its consent.
    pub fn lower_program(&mut self, program: &str, mode: Mode, now: i64) {
        debug_assert!(mode != Mode::On, "opting in goes through opt_in");
        let setting = ModeSetting {
            mode,
            since: Some(now),
        };
        self.programs.insert(program.to_string(), setting);
        self.consents.remove(program);
    }

    /// Lowers every program at once: `off` for all (every override removed), or `local` (every
    /// program that was `on` becomes `local`; programs that are `off` stay off). Every consent
    /// is withdrawn.
    pub fn lower_all(&mut self, mode: Mode, now: i64) {
        debug_assert!(mode != Mode::On, "opting in is per program");
        let setting = ModeSetting {
            mode,
            since: Some(now),
        };
        self.global = Some(setting);
        self.consents.clear();
        if mode == Mode::Off {
            self.programs.clear();
        } else {
            for s in self.programs.values_mut() {
                if s.mode == Mode::On {
                    *s = setting;
                }
            }
        }
    }
}

/// Whether `origin` can stand in a `consent` line: a log key's name (no spaces, no `+`).
fn valid_origin(origin: &str) -> bool {
    !origin.is_empty()
        && origin.len() <= 256
        && !origin
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

/// Reads the mode file of `layout`: a missing file means the defaults; an unreadable, damaged
/// or unfit one (a symlink, FIFO, directory or file over 64 KiB: never followed, blocked on or
/// read whole) is an error, which every reader takes as `off`, the safe reading of a file it
/// cannot understand. An unfit mode file is left in place rather than set aside: without it the
/// defaults (mode `local`) would apply, and a file clearcount cannot read must never raise the
/// mode.
pub fn read(layout: &Layout) -> Result<ModeFile, String> {
    match support::read_small(&layout.mode_file(), MAX_MODE_FILE as u64) {
        Ok(Some(b)) => ModeFile::parse(&b).map_err(|e| e.to_string()),
        Ok(None) => Ok(ModeFile::default()),
        Err(e) => Err(format!("cannot read {}: {e}", layout.mode_file().display())),
    }
}

/// Changes the mode file under the exclusive [`ConsentLock`]: reads it (a damaged file is
/// replaced: the user is stating their choice now), applies `change`, writes it atomically.
/// While an uploader holds the shared lock (it re-reads consent and sends one request), this
/// waits for that request to end; once it returns, no request is started without seeing the
/// change.
pub fn update(layout: &Layout, change: impl FnOnce(&mut ModeFile)) -> Result<ModeFile, String> {
    fs::create_dir_all(layout.root())
        .map_err(|e| format!("creating {}: {e}", layout.root().display()))?;
    let _lock = ConsentLock::exclusive(layout);
    let mut mf = read(layout).unwrap_or_default();
    change(&mut mf);
    report::write_atomic(&layout.mode_file(), mf.render().as_bytes())
        .map_err(|e| format!("writing {}: {e}", layout.mode_file().display()))?;
    Ok(mf)
}

/// A lock that orders consent changes before upload requests: writers of the mode file hold it
/// exclusively, an uploader holds it shared from re-reading consent until its request ends. It
/// is an advisory lock on the clearcount directory itself, so it adds no file (on systems
/// without directory locks it is a no-op, and the re-read alone decides).
#[derive(Debug)]
pub struct ConsentLock {
    _dir: Option<fs::File>,
}

impl ConsentLock {
    /// Takes the lock exclusively (blocks while an upload request is in flight).
    pub fn exclusive(layout: &Layout) -> ConsentLock {
        let dir = fs::File::open(layout.root())
            .ok()
            .filter(|d| d.lock_file().is_ok());
        ConsentLock { _dir: dir }
    }

    /// Takes the lock shared (blocks while consent is being written).
    pub fn shared(layout: &Layout) -> ConsentLock {
        let dir = fs::File::open(layout.root())
            .ok()
            .filter(|d| d.lock_file_shared().is_ok());
        ConsentLock { _dir: dir }
    }
}

/// Whether a `DO_NOT_TRACK` value asks for no tracking (anything but empty, `0`, `false`).
pub fn do_not_track_value(v: &str) -> bool {
    let v = v.trim();
    !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
}

/// What the environment allows at most: `DO_NOT_TRACK` and `CLEARCOUNT_MODE` can only lower.
pub fn environment_ceiling() -> Mode {
    if std::env::var_os(DO_NOT_TRACK_ENV).is_some_and(|v| do_not_track_value(&v.to_string_lossy()))
    {
        return Mode::Off;
    }
    match std::env::var_os(MODE_ENV) {
        Some(v) => match v.to_string_lossy().trim() {
            "off" => Mode::Off,
            "local" => Mode::Local,
            // `on` cannot raise; anything unknown is ignored.
            _ => Mode::On,
        },
        None => Mode::On,
    }
}

/// Applies the environment ceiling to a mode.
pub fn effective(file_mode: Mode, ceiling: Mode) -> Mode {
    file_mode.min(ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut f = ModeFile {
            global: Some(ModeSetting {
                mode: Mode::On,
                since: Some(1_763_000_000),
            }),
            ..Default::default()
        };
        f.programs.insert(
            "ripgrep".into(),
            ModeSetting {
                mode: Mode::Off,
                since: None,
            },
        );
        f.retention_weeks = Some(4);
        f.notify_uploads = true;
        let text = f.render();
        assert_eq!(ModeFile::parse(text.as_bytes()).unwrap(), f);
        assert_eq!(f.setting_for("ripgrep").mode, Mode::Off);
        assert_eq!(f.setting_for("fd").mode, Mode::On);
        assert_eq!(ModeFile::default().setting_for("fd").mode, Mode::Local);
    }

    #[test]
    fn consent_is_per_program_and_lowering_is_global() {
        let mut f = ModeFile::default();
        let c = |index| Consent {
            origin: "o.example/config".into(),
            index,
        };
        f.opt_in("greet", c(3), 100);
        assert_eq!(f.consent_for("greet"), Some((&c(3), 100)));
        assert_eq!(f.consent_for("wave"), None);
        assert_eq!(f.setting_for("wave").mode, Mode::Local);
        assert!(f.any_consent());
        let text = f.render();
        assert!(
            text.contains("consent greet o.example/config 3\n"),
            "{text}"
        );
        assert_eq!(ModeFile::parse(text.as_bytes()).unwrap(), f);
        f.lower_program("greet", Mode::Local, 200);
        assert_eq!(f.consent_for("greet"), None);
        assert!(!f.any_consent());
        f.opt_in("greet", c(4), 300);
        f.lower_program("wave", Mode::Off, 300);
        f.lower_all(Mode::Local, 400);
        assert_eq!(f.setting_for("greet").mode, Mode::Local);
        assert_eq!(f.setting_for("wave").mode, Mode::Off, "local never raises");
        assert!(f.consents.is_empty());
        f.opt_in("greet", c(4), 500);
        f.lower_all(Mode::Off, 600);
        assert!(f.programs.is_empty() && f.consents.is_empty());
        assert_eq!(f.setting_for("greet").mode, Mode::Off);
    }

    #[test]
    fn old_mode_files_keep_working_without_uploading() {
        // Written by clearcount before consent was per program.
        let f =
            ModeFile::parse(b"mode on 2026-11-20T10:00:00Z\nprogram fd on 2026-11-21T10:00:00Z\n")
                .unwrap();
        assert_eq!(f.setting_for("greet").mode, Mode::On, "it still records");
        assert!(f.on_without_consent("greet") && f.on_without_consent("fd"));
        assert!(!f.any_consent());
        // A consent line without an `on` line of its program grants nothing.
        let f = ModeFile::parse(b"mode on\nconsent greet o.example/config 1\n").unwrap();
        assert_eq!(f.consent_for("greet"), None);
    }

    #[test]
    fn rejects_damage() {
        assert!(ModeFile::parse(b"mode maybe").is_err());
        assert!(ModeFile::parse(b"mode on yesterday").is_err());
        assert!(ModeFile::parse(b"\xff").is_err());
        assert!(ModeFile::parse(b"retention-weeks 0").is_err());
        assert!(ModeFile::parse(b"program Bad/Name on").is_err());
        assert!(ModeFile::parse(b"consent greet o.example/config").is_err());
        assert!(ModeFile::parse(b"consent greet o.example/config x").is_err());
        assert!(ModeFile::parse(b"consent greet a+b 1").is_err());
        assert!(ModeFile::parse(b"consent Greet o.example/config 1").is_err());
    }

    #[test]
    fn do_not_track_values() {
        for v in ["1", "true", "yes", "TRUE", " 1 "] {
            assert!(do_not_track_value(v), "{v}");
        }
        for v in ["", "0", "false", "FALSE", " "] {
            assert!(!do_not_track_value(v), "{v:?}");
        }
        assert_eq!(effective(Mode::On, Mode::Local), Mode::Local);
        assert_eq!(effective(Mode::Local, Mode::On), Mode::Local);
        assert_eq!(effective(Mode::Off, Mode::On), Mode::Off);
    }
}
