//! The upload report (DESIGN.md section 4), built from a local report and a verified config by a
//! pure function: [`build`]. Nothing here touches the disk, the network, the clock or a global.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use clearcount_config_log::config::{
    Config, Counter as ConfigCounter, CounterKind, NONE_LABEL, Versions,
};
use clearcount_privacy::estimate::Mechanism;
use clearcount_privacy::oue::UnaryEncoding;
use clearcount_privacy::rr::RandomizedResponse;
use clearcount_privacy::sampling;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::clock::Week;
use crate::report::{LocalReport, ProgramCounts};

/// The upload report format version.
pub const UPLOAD_FORMAT: u32 = 1;
/// The version reported for versions outside the config's requirement.
pub const DEVEL: &str = "devel";
/// The label that unknown category labels are reported as, when the config has it.
pub const OTHER_LABEL: &str = "other";

/// Which log entry a report obeys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRef {
    /// The log origin (the config's `origin`).
    pub origin: String,
    /// The log index of the config entry.
    pub index: u64,
}

/// One program in an upload report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadProgram {
    /// Program name, from the config.
    pub name: String,
    /// The version, when it satisfies the config's requirement, else `devel`.
    pub version: String,
    /// Operating system, from the config's allowlist.
    pub os: String,
    /// Architecture, from the config's allowlist.
    pub arch: String,
    /// Every live counter of the program, exactly once, with one label of its label set.
    pub counters: BTreeMap<String, String>,
}

/// A weekly upload report: exactly the JSON sent to `POST /upload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadReport {
    /// Always [`UPLOAD_FORMAT`].
    pub format: u32,
    /// The week (its Monday).
    pub week: String,
    /// The config obeyed.
    pub config: ConfigRef,
    /// The sampling draw, uniform in [0, 1), below the config's sample rate.
    pub x: f64,
    /// The reported programs (at least one).
    pub programs: Vec<UploadProgram>,
}

impl UploadReport {
    /// The compact JSON body that is sent (and kept as the copy of what was sent).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Pretty JSON of the same report, for people.
    pub fn to_pretty_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Why a program of the local report is not in the upload report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    /// The user did not opt this program in before the week started.
    NotOptedIn,
    /// The config does not list the program.
    NotInConfig,
    /// The config does not accept this operating system.
    Os(String),
    /// The config does not accept this architecture.
    Arch(String),
    /// The config's entry for the program cannot be used (e.g. a bad label set).
    UnusableConfig(String),
    /// Every counter of the program has expired.
    NoLiveCounters,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skipped::NotOptedIn => f.write_str("not opted in (mode on) before the week started"),
            Skipped::NotInConfig => f.write_str("not in the config"),
            Skipped::Os(os) => write!(f, "os {os} is not in the config's allowlist"),
            Skipped::Arch(a) => write!(f, "arch {a} is not in the config's allowlist"),
            Skipped::UnusableConfig(why) => write!(f, "config entry unusable: {why}"),
            Skipped::NoLiveCounters => f.write_str("every counter of the program has expired"),
        }
    }
}

/// What [`build`] decided for one week.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The report to send.
    Send(UploadReport),
    /// The draw `x` was not below the sample rate: nothing is sent for this week, ever.
    NotSampled {
        /// The draw.
        x: f64,
        /// The config's sample rate.
        sample_rate: f64,
    },
    /// No program of the week may be reported (see the skip reasons).
    NothingToReport,
    /// The local report's week is not a valid week.
    BadWeek,
}

/// The result of [`build`]: the outcome and, per program entry of the local report that was
/// left out, why.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// The decision.
    pub outcome: Outcome,
    /// Programs left out, with the reason: `(name, version, os, arch, reason)`.
    pub skipped: Vec<(String, String, String, String, Skipped)>,
}

/// Builds the upload report of one week: a pure function of the local report, the verified
/// config (and its log index), which programs the user had opted in before the week, and a
/// random number generator (pass [`clearcount_privacy::secure_rng`] for real reports; tests may
/// pass a seeded one).
///
/// Rules (DESIGN.md section 4): a program is reported only when `opted_in(name)` holds, the
/// config lists it and accepts the os and arch; versions outside the requirement (or with build
/// metadata, or not semver) are sent as `devel`; when the local report has several entries for
/// one program (several versions), their counts are added and the version with the most counts
/// is reported; counters not live for the whole week are dropped; every other counter appears
/// exactly once: `count` as the bucket of the weekly total, `category` as the week's most used
/// label (`none` if never recorded; labels the config does not know count as `other` when the
/// config has it, and are ignored otherwise; ties go to the label listed first); each label then
/// goes through the counter's mechanism with its epsilon: k-ary randomized response (the value
/// is a label), or optimized unary encoding (the value is one `0`/`1` a label). `x` is drawn once, and the
/// report exists only when `x < sample_rate`.
///
/// ```
/// use clearcount::report::LocalReport;
/// use clearcount::upload::build::{build, Outcome};
/// use clearcount_config_log::config::Config;
/// use rand::SeedableRng;
///
/// let config = Config::parse(br#"
/// origin = "example.org/config"
/// sample_rate = 1.0
/// max_epsilon = 4.0
/// os = ["linux"]
/// arch = ["x86_64"]
/// [[program]]
/// name = "greet"
/// versions = ">=1.0.0"
/// [[program.counter]]
/// name = "invocations"
/// kind = "count"
/// buckets = [0, 1, 10]
/// description = "runs"
/// rationale = "why"
/// owner = "me@example.org"
/// link = "https://example.org/1"
/// expires = "2099-01-01"
/// "#)?;
/// let local = LocalReport::parse(br#"{"format":1,"week":"2026-11-16","programs":[
///   {"name":"greet","version":"1.2.0","os":"linux","arch":"x86_64","counters":{"invocations":12}}]}"#)?;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
/// let built = build(&local, &config, 0, &|_| true, &mut rng);
/// let Outcome::Send(report) = built.outcome else { panic!("sample rate 1 always sends") };
/// assert_eq!(report.programs[0].counters["invocations"], "10");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn build<R: Rng + ?Sized>(
    local: &LocalReport,
    config: &Config,
    index: u64,
    opted_in: &dyn Fn(&str) -> bool,
    rng: &mut R,
) -> Built {
    let mut skipped = Vec::new();
    let Some(week) = local.week() else {
        return Built {
            outcome: Outcome::BadWeek,
            skipped,
        };
    };
    let Some(last_day) = week_last_day(week) else {
        return Built {
            outcome: Outcome::BadWeek,
            skipped,
        };
    };

    // Group the local entries of each program that may be reported.
    let mut groups: BTreeMap<&str, Vec<&ProgramCounts>> = BTreeMap::new();
    for p in &local.programs {
        let skip = |why: Skipped, skipped: &mut Vec<_>| {
            skipped.push((
                p.name.clone(),
                p.version.clone(),
                p.os.clone(),
                p.arch.clone(),
                why,
            ));
        };
        if config.program(&p.name).is_none() {
            skip(Skipped::NotInConfig, &mut skipped);
        } else if !opted_in(&p.name) {
            skip(Skipped::NotOptedIn, &mut skipped);
        } else if !config.os.contains(&p.os) {
            skip(Skipped::Os(p.os.clone()), &mut skipped);
        } else if !config.arch.contains(&p.arch) {
            skip(Skipped::Arch(p.arch.clone()), &mut skipped);
        } else {
            groups.entry(p.name.as_str()).or_default().push(p);
        }
    }

    // The draw comes first and is fresh for every report.
    let x = sampling::draw_x(rng);
    let mut programs = Vec::new();
    for (name, entries) in groups {
        let Some(def) = config.program(name) else {
            continue;
        };
        let first = entries[0];
        let skip_all = |why: Skipped, skipped: &mut Vec<_>| {
            for p in &entries {
                skipped.push((
                    p.name.clone(),
                    p.version.clone(),
                    p.os.clone(),
                    p.arch.clone(),
                    why.clone(),
                ));
            }
        };
        // The most used entry gives the version (and os and arch).
        let main = entries
            .iter()
            .copied()
            .max_by_key(|p| {
                (
                    p.counters.values().fold(0u64, |a, b| a.saturating_add(*b)),
                    p.version.clone(),
                )
            })
            .unwrap_or(first);
        let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
        for p in &entries {
            for (k, v) in &p.counters {
                let e = totals.entry(k.as_str()).or_insert(0);
                *e = e.saturating_add(*v);
            }
        }
        let live: Vec<&ConfigCounter> = def
            .counters
            .iter()
            .filter(|c| c.is_live_on(last_day))
            .collect();
        if live.is_empty() {
            skip_all(Skipped::NoLiveCounters, &mut skipped);
            continue;
        }
        let mut counters = BTreeMap::new();
        let mut problem = None;
        for c in live {
            match report_label(c, &totals, rng) {
                Ok(label) => {
                    counters.insert(c.name.clone(), label);
                }
                Err(why) => {
                    problem = Some(format!("counter {}: {why}", c.name));
                    break;
                }
            }
        }
        if let Some(why) = problem {
            skip_all(Skipped::UnusableConfig(why), &mut skipped);
            continue;
        }
        programs.push(UploadProgram {
            name: def.name.clone(),
            version: reported_version(&main.version, &def.versions),
            os: main.os.clone(),
            arch: main.arch.clone(),
            counters,
        });
    }
    let outcome = if programs.is_empty() {
        Outcome::NothingToReport
    } else if !sampling::is_sampled(x, config.sample_rate) {
        Outcome::NotSampled {
            x,
            sample_rate: config.sample_rate,
        }
    } else {
        Outcome::Send(UploadReport {
            format: UPLOAD_FORMAT,
            week: week.to_string(),
            config: ConfigRef {
                origin: config.origin.clone(),
                index,
            },
            x,
            programs,
        })
    };
    Built { outcome, skipped }
}

/// The Sunday that ends `week`.
pub fn week_last_day(week: Week) -> Option<NaiveDate> {
    chrono::DateTime::from_timestamp(week.start_unix(), 0)
        .map(|t| t.date_naive())
        .and_then(|d| d.checked_add_days(Days::new(6)))
}

/// The version sent for `version` under the config's `versions`: the version itself when it
/// is semver without build metadata and among `versions`, else [`DEVEL`].
pub fn reported_version(version: &str, versions: &Versions) -> String {
    let Ok(accepted) = versions.matcher() else {
        return DEVEL.to_string();
    };
    match semver::Version::parse(version) {
        Ok(v) if v.build.is_empty() && accepted.matches(&v) => v.to_string(),
        _ => DEVEL.to_string(),
    }
}

/// The true label of a counter for the week's totals, before randomized response.
pub fn true_label(c: &ConfigCounter, totals: &BTreeMap<&str, u64>) -> Result<String, String> {
    let labels = c.report_labels();
    if labels.is_empty() {
        return Err("no labels".into());
    }
    match c.kind {
        CounterKind::Count => {
            let total = totals.get(c.name.as_str()).copied().unwrap_or(0);
            let buckets = c.buckets.as_deref().unwrap_or(&[]);
            let i = buckets
                .iter()
                .rposition(|b| *b <= total)
                .ok_or("no bucket holds the total (buckets must start at 0)")?;
            Ok(labels[i].clone())
        }
        CounterKind::Category => {
            let known = c.labels.as_deref().unwrap_or(&[]);
            let has_other = known.iter().any(|l| l == OTHER_LABEL);
            let prefix = format!("{}:", c.name);
            let mut per: BTreeMap<usize, u64> = BTreeMap::new();
            for (k, v) in totals {
                let Some(label) = k.strip_prefix(&prefix) else {
                    continue;
                };
                if *v == 0 {
                    continue;
                }
                let i = match known.iter().position(|l| l == label && l != NONE_LABEL) {
                    Some(i) => i,
                    None if has_other => match known.iter().position(|l| l == OTHER_LABEL) {
                        Some(i) => i,
                        None => continue,
                    },
                    None => continue,
                };
                let e = per.entry(i).or_insert(0);
                *e = e.saturating_add(*v);
            }
            // Most used; ties go to the label listed first.
            let best = per
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(i, _)| *i);
            Ok(match best {
                Some(i) => known[i].clone(),
                None => NONE_LABEL.to_string(),
            })
        }
    }
}

fn report_label<R: Rng + ?Sized>(
    c: &ConfigCounter,
    totals: &BTreeMap<&str, u64>,
    rng: &mut R,
) -> Result<String, String> {
    let label = true_label(c, totals)?;
    let labels = c.report_labels();
    let (Some(eps), mechanism) = (c.epsilon, c.privacy_mechanism()) else {
        return Ok(label);
    };
    let i = labels
        .iter()
        .position(|l| *l == label)
        .ok_or("label not in the label set")?;
    match mechanism {
        Mechanism::Oue => {
            let oue = UnaryEncoding::new(labels.len(), eps).map_err(|e| e.to_string())?;
            let bits = oue.randomize(i, rng).map_err(|e| e.to_string())?;
            Ok(UnaryEncoding::to_text(&bits))
        }
        Mechanism::Krr | Mechanism::None => {
            let rr = RandomizedResponse::new(labels.len(), eps).map_err(|e| e.to_string())?;
            let j = rr.randomize(i, rng).map_err(|e| e.to_string())?;
            labels
                .get(j)
                .cloned()
                .ok_or_else(|| "randomized label out of range".to_string())
        }
    }
}

/// Checks a report against DESIGN.md section 4 and the config: format, week, config origin, `x`
/// in `[0, sample_rate)`, at least one program, each listed once, in the config with an allowed
/// os and arch, a version that is `devel` or satisfies the requirement, and exactly the
/// counters live through the week, each with a label of its set. Returns what is wrong.
pub fn check_report(report: &UploadReport, config: &Config) -> Result<(), String> {
    if report.format != UPLOAD_FORMAT {
        return Err(format!("format {}", report.format));
    }
    let week = Week::parse(&report.week).ok_or("week is not a Monday")?;
    let last = week_last_day(week).ok_or("week out of range")?;
    if report.config.origin != config.origin {
        return Err("origin differs from the config's".into());
    }
    if !sampling::is_sampled(report.x, config.sample_rate) {
        return Err(format!("x {} not below {}", report.x, config.sample_rate));
    }
    if report.programs.is_empty() {
        return Err("no programs".into());
    }
    for (i, p) in report.programs.iter().enumerate() {
        if report.programs[..i].iter().any(|q| q.name == p.name) {
            return Err(format!("program {} twice", p.name));
        }
        let def = config
            .program(&p.name)
            .ok_or_else(|| format!("program {} not in config", p.name))?;
        if !config.os.contains(&p.os) || !config.arch.contains(&p.arch) {
            return Err(format!("os/arch {}/{} not allowed", p.os, p.arch));
        }
        if p.version != DEVEL && reported_version(&p.version, &def.versions) != p.version {
            return Err(format!(
                "version {} outside the config's versions",
                p.version
            ));
        }
        let live: Vec<&ConfigCounter> =
            def.counters.iter().filter(|c| c.is_live_on(last)).collect();
        if live.len() != p.counters.len() {
            return Err(format!(
                "program {}: {} counters, {} live",
                p.name,
                p.counters.len(),
                live.len()
            ));
        }
        for c in live {
            let label = p
                .counters
                .get(&c.name)
                .ok_or_else(|| format!("counter {} missing", c.name))?;
            if !c.allows_value(label) {
                return Err(format!("counter {}: value {label} not allowed", c.name));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    pub(crate) const CONFIG: &str = r#"origin = "test.example/config"
sample_rate = 1.0
max_epsilon = 8.0
os = ["linux", "macos"]
arch = ["x86_64", "aarch64"]

[[program]]
name = "rg"
versions = ">=14.0.0"

[[program.counter]]
name = "invocations"
kind = "count"
buckets = [0, 1, 10, 100]
description = "d"
rationale = "r"
owner = "o@example.org"
link = "https://example.org/1"
expires = "2099-01-01"

[[program.counter]]
name = "engine"
kind = "category"
labels = ["default", "pcre2", "other"]
description = "d"
rationale = "r"
owner = "o@example.org"
link = "https://example.org/2"
expires = "2099-01-01"

[[program.counter]]
name = "gone"
kind = "category"
labels = ["a"]
description = "d"
rationale = "r"
owner = "o@example.org"
link = "https://example.org/3"
expires = "2026-11-18"
"#;

    fn local(json: &str) -> LocalReport {
        LocalReport::parse(json.as_bytes()).unwrap()
    }

    fn send(b: Built) -> UploadReport {
        match b.outcome {
            Outcome::Send(r) => r,
            other => panic!("expected a report, got {other:?}"),
        }
    }

    #[test]
    fn exact_labels_without_rr() {
        let config = Config::parse(CONFIG.as_bytes()).unwrap();
        let l = local(
            r#"{"format":1,"week":"2026-11-16","programs":[
            {"name":"rg","version":"14.1.0","os":"linux","arch":"x86_64","counters":{"invocations":10,"engine:pcre2":3,"engine:default":2,"engine:weird":9}},
            {"name":"rg","version":"13.0.0","os":"linux","arch":"x86_64","counters":{"invocations":1}},
            {"name":"fd","version":"1.0.0","os":"linux","arch":"x86_64","counters":{"runs":1}}]}"#,
        );
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let b = build(&l, &config, 3, &|_| true, &mut rng);
        assert_eq!(b.skipped.len(), 1);
        assert_eq!(b.skipped[0].4, Skipped::NotInConfig);
        let r = send(b);
        check_report(&r, &config).unwrap();
        assert_eq!(r.config.index, 3);
        let p = &r.programs[0];
        // Counts of both versions are added: 11 falls in bucket 10; the most used is 14.1.0.
        assert_eq!(p.counters["invocations"], "10");
        // 9 unknown labels count as `other` and win.
        assert_eq!(p.counters["engine"], "other");
        assert_eq!(p.version, "14.1.0");
        // `gone` expired during the week: dropped.
        assert!(!p.counters.contains_key("gone"));
    }

    #[test]
    fn none_devel_and_skips() {
        let config = Config::parse(CONFIG.as_bytes()).unwrap();
        let l = local(
            r#"{"format":1,"week":"2026-11-16","programs":[
            {"name":"rg","version":"15.0.0-beta.1","os":"linux","arch":"aarch64","counters":{}}]}"#,
        );
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let r = send(build(&l, &config, 0, &|_| true, &mut rng));
        assert_eq!(r.programs[0].version, "devel");
        assert_eq!(r.programs[0].counters["engine"], "none");
        assert_eq!(r.programs[0].counters["invocations"], "0");
        let b = build(&l, &config, 0, &|_| false, &mut rng);
        assert_eq!(b.outcome, Outcome::NothingToReport);
        assert_eq!(b.skipped[0].4, Skipped::NotOptedIn);
        let windows = local(
            r#"{"format":1,"week":"2026-11-16","programs":[
            {"name":"rg","version":"14.0.0","os":"windows","arch":"x86_64","counters":{}}]}"#,
        );
        let b = build(&windows, &config, 0, &|_| true, &mut rng);
        assert_eq!(b.skipped[0].4, Skipped::Os("windows".into()));
    }

    #[test]
    fn versions_outside_the_config_report_as_devel() {
        let req = Versions::from(">=14");
        assert_eq!(reported_version("14.0.0+abc", &req), "devel");
        assert_eq!(reported_version("not-semver", &req), "devel");
        assert_eq!(reported_version("14.2.1", &req), "14.2.1");
        assert_eq!(reported_version("13.9.0", &req), "devel");
        let exact = Versions::Exact(vec!["14.1.0".into(), "14.1.1".into()]);
        assert_eq!(reported_version("14.1.1", &exact), "14.1.1");
        assert_eq!(reported_version("14.1.2", &exact), "devel");
        assert_eq!(reported_version("14.1.1-rc.1", &exact), "devel");
        assert_eq!(reported_version("14.1.1+abc", &exact), "devel");
    }

    #[test]
    fn sampling_decides() {
        let config = Config::parse(
            CONFIG
                .replace("sample_rate = 1.0", "sample_rate = 0.25")
                .as_bytes(),
        )
        .unwrap();
        let l = local(
            r#"{"format":1,"week":"2026-11-16","programs":[
            {"name":"rg","version":"14.1.0","os":"linux","arch":"x86_64","counters":{"invocations":2}}]}"#,
        );
        let mut rng = ChaCha20Rng::seed_from_u64(99);
        let mut sent = 0;
        let n = 4000;
        for _ in 0..n {
            match build(&l, &config, 0, &|_| true, &mut rng).outcome {
                Outcome::Send(r) => {
                    assert!(r.x < 0.25);
                    sent += 1;
                }
                Outcome::NotSampled { x, .. } => assert!(x >= 0.25),
                o => panic!("{o:?}"),
            }
        }
        // Binomial(4000, 0.25): mean 1000, sd 27.4; 5 sd tolerance.
        assert!((863..=1137).contains(&sent), "{sent}");
    }

    #[test]
    fn randomized_response_keeps_at_rate_p() {
        // epsilon 1 over 4 buckets: p = e / (e + 3) = 0.4754.
        let config = Config::parse(
            CONFIG
                .replace(
                    "buckets = [0, 1, 10, 100]\n",
                    "buckets = [0, 1, 10, 100]\nepsilon = 1.0\n",
                )
                .as_bytes(),
        )
        .unwrap();
        let l = local(
            r#"{"format":1,"week":"2026-11-16","programs":[
            {"name":"rg","version":"14.1.0","os":"linux","arch":"x86_64","counters":{"invocations":50}}]}"#,
        );
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let n = 20_000;
        let mut kept = 0;
        for _ in 0..n {
            let r = send(build(&l, &config, 0, &|_| true, &mut rng));
            check_report(&r, &config).unwrap();
            if r.programs[0].counters["invocations"] == "10" {
                kept += 1;
            }
        }
        let p = 1f64.exp() / (1f64.exp() + 3.0);
        let sd = (p * (1.0 - p) / n as f64).sqrt();
        let got = kept as f64 / n as f64;
        // 5 standard deviations.
        assert!((got - p).abs() < 5.0 * sd, "kept {got}, p {p}");
    }

    #[test]
    fn unary_encoding_sends_one_bit_a_label() {
        // epsilon 1 over 4 buckets with OUE: the true bucket's bit is 1 at rate 1/2, every other
        // bit at q = 1 / (e + 1) = 0.2689.
        let config = Config::parse(
            CONFIG
                .replace(
                    "buckets = [0, 1, 10, 100]\n",
                    "buckets = [0, 1, 10, 100]\nepsilon = 1.0\nmechanism = \"oue\"\n",
                )
                .as_bytes(),
        )
        .unwrap();
        let l = local(
            r#"{"format":1,"week":"2026-11-16","programs":[
            {"name":"rg","version":"14.1.0","os":"linux","arch":"x86_64","counters":{"invocations":50}}]}"#,
        );
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let n = 20_000;
        let mut ones = [0u32; 4];
        for _ in 0..n {
            let r = send(build(&l, &config, 0, &|_| true, &mut rng));
            check_report(&r, &config).unwrap();
            let bits = r.programs[0].counters["invocations"].as_bytes().to_vec();
            assert_eq!(bits.len(), 4);
            for (one, b) in ones.iter_mut().zip(bits) {
                *one += u32::from(b == b'1');
            }
        }
        let q = 1.0 / (1f64.exp() + 1.0);
        for (i, one) in ones.iter().enumerate() {
            let rate = if i == 2 { 0.5 } else { q };
            let sd = (rate * (1.0 - rate) / n as f64).sqrt();
            let got = f64::from(*one) / n as f64;
            // 5 standard deviations.
            assert!(
                (got - rate).abs() < 5.0 * sd,
                "bit {i}: {got} against {rate}"
            );
        }
        let mut wrong = send(build(&l, &config, 0, &|_| true, &mut rng));
        wrong.programs[0]
            .counters
            .insert("invocations".into(), "10".into());
        assert!(
            check_report(&wrong, &config).is_err(),
            "a label where bits belong"
        );
    }
}
