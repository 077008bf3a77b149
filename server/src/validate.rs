//! Every acceptance rule of DESIGN.md section 7, checked against the config a report names.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use clearcount_privacy::estimate::Mechanism;
use clearcount_privacy::oue::UnaryEncoding;

use crate::configs::LoadedConfig;
use crate::report::{FORMAT, Report, canonical_json};

/// How many completed weeks back a report may be.
pub const MAX_WEEKS_OLD: u64 = 4;

/// A report that passed every check, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The canonical JSON that is stored and published.
    pub canonical: String,
    /// What makes two uploads the same report (see [`report_key`]).
    pub key: String,
    /// The week (its Monday).
    pub week: NaiveDate,
    /// The log index of the config it was checked against.
    pub config_index: u64,
    /// One compact row per program, for aggregation.
    pub rows: Vec<ProgramRow>,
}

/// The aggregation view of one program in one report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProgramRow {
    /// Program name.
    pub program: String,
    /// Reported version (semver or `devel`).
    pub version: String,
    /// Reported OS.
    pub os: String,
    /// Reported architecture.
    pub arch: String,
    /// The label index of every counter of the program in config order, comma-separated,
    /// `-` for a counter absent because it expires during the week.
    pub labels: String,
}

/// Why a well-formed report is refused. Every message names the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// Unknown `format`.
    #[error("unknown report format {0} (this server accepts format {FORMAT})")]
    Format(u32),
    /// `week` is not a date.
    #[error("week `{0}` is not a date in YYYY-MM-DD form")]
    WeekSyntax(String),
    /// `week` is not a Monday.
    #[error("week {0} is not a Monday ({1})")]
    WeekNotMonday(NaiveDate, Weekday),
    /// The week has not ended yet.
    #[error("week {0} has not ended yet (weeks are reported after they end; today is {1} UTC)")]
    WeekFuture(NaiveDate, NaiveDate),
    /// The week is too old.
    #[error("week {0} is more than {MAX_WEEKS_OLD} weeks old (oldest accepted: {1})")]
    WeekTooOld(NaiveDate, NaiveDate),
    /// Origin does not match the log.
    #[error("config origin `{0}` is not this server's log origin `{1}`")]
    Origin(String, String),
    /// Index past the log.
    #[error("config index {0} is not in the log (the log has {1} entries)")]
    UnknownConfig(u64, u64),
    /// The entry at the index is not a usable config.
    #[error("config entry {0} is not a usable config: {1}")]
    UnusableConfig(u64, String),
    /// `x` out of [0, sample_rate).
    #[error("x = {0} is outside [0, {1}) (the sample rate of config {2})")]
    X(f64, f64, u64),
    /// No programs.
    #[error("report has no programs")]
    NoPrograms,
    /// A program twice.
    #[error("program `{0}` appears more than once")]
    DuplicateProgram(String),
    /// Program not in the config.
    #[error("unknown program `{0}` (not in config {1})")]
    UnknownProgram(String, u64),
    /// Version not accepted.
    #[error("version `{1}` of program `{0}` is not accepted: {2}")]
    Version(String, String, String),
    /// OS not accepted.
    #[error("os `{1}` of program `{0}` is not accepted by config {2}")]
    Os(String, String, u64),
    /// Arch not accepted.
    #[error("arch `{1}` of program `{0}` is not accepted by config {2}")]
    Arch(String, String, u64),
    /// Counter not in the program.
    #[error("unknown counter `{1}` of program `{0}`")]
    UnknownCounter(String, String),
    /// Counter expired before the week.
    #[error("counter `{1}` of program `{0}` expired on {2}, before week {3}")]
    ExpiredCounter(String, String, NaiveDate, NaiveDate),
    /// Label not allowed.
    #[error("label `{2}` is not allowed for counter `{1}` of program `{0}` (allowed: {3})")]
    Label(String, String, String, String),
    /// A required counter is missing.
    #[error("counter `{1}` of program `{0}` is missing")]
    MissingCounter(String, String),
}

/// Parses a `YYYY-MM-DD` date strictly (zero-padded, nothing else).
pub fn parse_day(s: &str) -> Option<NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    (d.format("%Y-%m-%d").to_string() == s).then_some(d)
}

/// The Monday that starts the week containing `day`.
pub fn week_of(day: NaiveDate) -> NaiveDate {
    day - Days::new(u64::from(day.weekday().num_days_from_monday()))
}

/// Which weeks a server accepts besides the ended ones at most [`MAX_WEEKS_OLD`] old.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeekRule {
    /// Only weeks that have ended (DESIGN.md section 7): every real server.
    #[default]
    Ended,
    /// Also the current week: a development server (`serve --dev`), which takes the reports
    /// of `clearcount upload --now` from tool authors testing their integration.
    AlsoCurrent,
}

/// Checks the week rules alone: a Monday, ended by `today`, at most [`MAX_WEEKS_OLD`] old.
pub fn check_week(week: &str, today: NaiveDate) -> Result<NaiveDate, Rejection> {
    check_week_with(week, today, WeekRule::Ended)
}

/// [`check_week`], with the current week also accepted under [`WeekRule::AlsoCurrent`].
pub fn check_week_with(
    week: &str,
    today: NaiveDate,
    rule: WeekRule,
) -> Result<NaiveDate, Rejection> {
    let w =
        parse_day(week).ok_or_else(|| Rejection::WeekSyntax(week.chars().take(40).collect()))?;
    if w.weekday() != Weekday::Mon {
        return Err(Rejection::WeekNotMonday(w, w.weekday()));
    }
    let current = rule == WeekRule::AlsoCurrent && w == week_of(today);
    if !current
        && w.checked_add_days(Days::new(7))
            .is_none_or(|end| end > today)
    {
        return Err(Rejection::WeekFuture(w, today));
    }
    let oldest = week_of(today) - Days::new(7 * MAX_WEEKS_OLD);
    if w < oldest {
        return Err(Rejection::WeekTooOld(w, oldest));
    }
    Ok(w)
}

/// Validates a parsed report against `config` (the entry at `report.config.index`, or `None`
/// when the log has no such entry), the log's `origin` and size, and `today` (UTC).
pub fn validate(
    report: &Report,
    origin: &str,
    log_size: u64,
    config: Option<&LoadedConfig>,
    today: NaiveDate,
) -> Result<Accepted, Rejection> {
    validate_with(report, origin, log_size, config, today, WeekRule::Ended)
}

/// [`validate`] under a [`WeekRule`].
pub fn validate_with(
    report: &Report,
    origin: &str,
    log_size: u64,
    config: Option<&LoadedConfig>,
    today: NaiveDate,
    rule: WeekRule,
) -> Result<Accepted, Rejection> {
    if report.format != FORMAT {
        return Err(Rejection::Format(report.format));
    }
    let week = check_week_with(&report.week, today, rule)?;
    if report.config.origin != origin {
        return Err(Rejection::Origin(
            report.config.origin.chars().take(100).collect(),
            origin.to_string(),
        ));
    }
    let idx = report.config.index;
    let config = config.ok_or(Rejection::UnknownConfig(idx, log_size))?;
    let cfg = config
        .parsed
        .as_ref()
        .map_err(|e| Rejection::UnusableConfig(idx, e.clone()))?;
    if !(report.x >= 0.0 && report.x < cfg.sample_rate && report.x < 1.0) {
        return Err(Rejection::X(report.x, cfg.sample_rate, idx));
    }
    if report.programs.is_empty() {
        return Err(Rejection::NoPrograms);
    }
    let week_last = week + Days::new(6);
    let mut rows = Vec::with_capacity(report.programs.len());
    for (i, p) in report.programs.iter().enumerate() {
        let name = short(&p.name);
        if report.programs[..i].iter().any(|q| q.name == p.name) {
            return Err(Rejection::DuplicateProgram(name));
        }
        let def = config
            .program(&p.name)
            .ok_or_else(|| Rejection::UnknownProgram(name.clone(), idx))?;
        if p.version != "devel" {
            match semver::Version::parse(&p.version) {
                Err(e) => {
                    return Err(Rejection::Version(
                        name,
                        short(&p.version),
                        format!("not semver or `devel` ({e})"),
                    ));
                }
                Ok(v) if !v.build.is_empty() => {
                    return Err(Rejection::Version(
                        name,
                        short(&p.version),
                        "build metadata is not accepted".into(),
                    ));
                }
                Ok(v) if !def.versions.as_ref().is_some_and(|r| r.matches(&v)) => {
                    return Err(Rejection::Version(
                        name,
                        short(&p.version),
                        "outside the config's versions (report it as `devel`)".into(),
                    ));
                }
                Ok(_) => {}
            }
        }
        if !config.allows_os(&p.os) {
            return Err(Rejection::Os(name, short(&p.os), idx));
        }
        if !config.allows_arch(&p.arch) {
            return Err(Rejection::Arch(name, short(&p.arch), idx));
        }
        let mut labels: Vec<Slot> = vec![Slot::Absent; def.counters.len()];
        for (cname, label) in &p.counters.0 {
            let (ci, c) = def
                .counter(cname)
                .ok_or_else(|| Rejection::UnknownCounter(name.clone(), short(cname)))?;
            if c.expires < week {
                return Err(Rejection::ExpiredCounter(
                    name,
                    c.name.clone(),
                    c.expires,
                    week,
                ));
            }
            labels[ci] = c.slot(label).ok_or_else(|| {
                let allowed = match c.mechanism {
                    Mechanism::Oue => format!(
                        "{} characters 0 or 1, one a label of {}",
                        c.labels.len(),
                        c.labels.join(", ")
                    ),
                    Mechanism::Krr | Mechanism::None => c.labels.join(", "),
                };
                Rejection::Label(name.clone(), c.name.clone(), short(label), allowed)
            })?;
        }
        for (c, l) in def.counters.iter().zip(&labels) {
            // Counters live for the whole week are required; those expiring during it optional.
            if *l == Slot::Absent && c.is_live_through(week_last) {
                return Err(Rejection::MissingCounter(name, c.name.clone()));
            }
        }
        rows.push(ProgramRow {
            program: p.name.clone(),
            version: p.version.clone(),
            os: p.os.clone(),
            arch: p.arch.clone(),
            labels: encode_labels(&labels),
        });
    }
    Ok(Accepted {
        canonical: canonical_json(report),
        key: report_key(idx, week, report.x),
        week,
        config_index: idx,
        rows,
    })
}

/// The idempotency key of a report (DESIGN.md section 7): its config index, week and `x`
/// (the origin is the log's, the same for every report a server accepts). `x` is written in
/// its shortest exact form, so equal numbers give equal keys whatever the JSON spelling.
pub fn report_key(config_index: u64, week: NaiveDate, x: f64) -> String {
    // `+ 0.0` turns -0 into 0.
    format!("{config_index}/{week}/{}", x + 0.0)
}

/// A counter's value in a stored row ([`ProgramRow::labels`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// Not reported (the counter expires during the week).
    Absent,
    /// The index of the reported label (no randomized response, or k-ary).
    Label(u16),
    /// The reported bits, one a label (optimized unary encoding).
    Bits(Vec<bool>),
}

/// Encodes counter values compactly: `3,-,b0110` (a label index, absent, OUE bits).
pub fn encode_labels(labels: &[Slot]) -> String {
    labels
        .iter()
        .map(|l| match l {
            Slot::Absent => "-".to_string(),
            Slot::Label(i) => i.to_string(),
            Slot::Bits(bits) => format!("b{}", UnaryEncoding::to_text(bits)),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Decodes [`encode_labels`] output; `None` if malformed.
pub fn decode_labels(s: &str) -> Option<Vec<Slot>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split(',')
        .map(|t| match t.strip_prefix('b') {
            _ if t == "-" => Some(Slot::Absent),
            Some(bits) if !bits.is_empty() => {
                UnaryEncoding::parse(bits, bits.len()).map(Slot::Bits)
            }
            Some(_) => None,
            None => t.parse::<u16>().ok().map(Slot::Label),
        })
        .collect()
}

fn short(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

impl crate::configs::CounterDef {
    /// Whether the counter is live on every day up to and including `day`.
    pub fn is_live_through(&self, day: NaiveDate) -> bool {
        day <= self.expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_day(s).unwrap()
    }

    #[test]
    fn week_rules() {
        let today = d("2026-11-25"); // a Wednesday
        assert_eq!(check_week("2026-11-16", today), Ok(d("2026-11-16")));
        assert!(matches!(
            check_week("2026-11-23", today),
            Err(Rejection::WeekFuture(..))
        ));
        assert!(matches!(
            check_week("2026-11-17", today),
            Err(Rejection::WeekNotMonday(..))
        ));
        assert_eq!(check_week("2026-10-26", today), Ok(d("2026-10-26")));
        assert!(matches!(
            check_week("2026-10-19", today),
            Err(Rejection::WeekTooOld(..))
        ));
        assert!(matches!(
            check_week("2026-1-05", today),
            Err(Rejection::WeekSyntax(..))
        ));
        assert!(matches!(
            check_week("+2026-11-16", today),
            Err(Rejection::WeekSyntax(..))
        ));
    }

    #[test]
    fn a_development_server_also_takes_the_current_week_and_nothing_later() {
        let today = d("2026-11-25"); // a Wednesday of the week of 2026-11-23
        let dev = |w| check_week_with(w, today, WeekRule::AlsoCurrent);
        assert_eq!(dev("2026-11-23"), Ok(d("2026-11-23")));
        assert_eq!(dev("2026-11-16"), Ok(d("2026-11-16")));
        assert!(matches!(dev("2026-11-30"), Err(Rejection::WeekFuture(..))));
        assert!(matches!(dev("2026-10-19"), Err(Rejection::WeekTooOld(..))));
        // On the Monday itself, too.
        assert_eq!(
            check_week_with("2026-11-23", d("2026-11-23"), WeekRule::AlsoCurrent),
            Ok(d("2026-11-23"))
        );
    }

    #[test]
    fn labels_roundtrip() {
        let l = vec![
            Slot::Label(3),
            Slot::Absent,
            Slot::Label(0),
            Slot::Bits(vec![false, true, true]),
        ];
        assert_eq!(encode_labels(&l), "3,-,0,b011");
        assert_eq!(decode_labels("3,-,0,b011"), Some(l));
        for bad in ["x", "b", "b012", "3,,1", "-1"] {
            assert_eq!(decode_labels(bad), None, "{bad}");
        }
    }
}
