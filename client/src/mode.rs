//! Modes and consent: `off`, `local` (the default) and `on`, with the date each was set.
//!
//! The mode file (`<dir>/mode`) is a small text file written by `clearcount on|off|local`:
//!
//! ```text
//! # clearcount consent settings: change them with `clearcount on|off|local`
//! mode local 2026-11-20T10:00:00Z
//! program ripgrep off 2026-11-21T09:30:00Z
//! retention-weeks 8
//! notify-uploads on
//! ```
//!
//! The environment can only lower the mode: `DO_NOT_TRACK` set to anything but empty, `0` or
//! `false` means `off`, and `CLEARCOUNT_MODE=off|local` lowers it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::clock;

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

/// The parsed mode file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModeFile {
    /// The mode for every program without an override (`None`: never set, meaning `local`).
    pub global: Option<ModeSetting>,
    /// Per-program overrides.
    pub programs: BTreeMap<String, ModeSetting>,
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
}

/// Whether a `DO_NOT_TRACK` value asks for no tracking (anything but empty, `0`, `false`).
pub fn do_not_track_value(v: &str) -> bool {
    let v = v.trim();
    !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
}

/// What the environment allows at most: `DO_NOT_TRACK` and `CLEARCOUNT_MODE` can only lower.
pub fn environment_ceiling() -> Mode {
    if let Some(v) = std::env::var_os(DO_NOT_TRACK_ENV)
        && do_not_track_value(&v.to_string_lossy())
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
    fn rejects_damage() {
        assert!(ModeFile::parse(b"mode maybe").is_err());
        assert!(ModeFile::parse(b"mode on yesterday").is_err());
        assert!(ModeFile::parse(b"\xff").is_err());
        assert!(ModeFile::parse(b"retention-weeks 0").is_err());
        assert!(ModeFile::parse(b"program Bad/Name on").is_err());
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
