//! The typed counter config (DESIGN.md section 2), parsed from TOML with unknown keys rejected.

use chrono::NaiveDate;
use clearcount_privacy::estimate::Mechanism;
use clearcount_privacy::oue::UnaryEncoding;
use serde::{Deserialize, Deserializer, Serialize};

/// The largest config file accepted: one tlog-tiles entry.
pub const MAX_CONFIG_BYTES: usize = 65_535;

/// The implicit label of a category counter that was never recorded in the week.
pub const NONE_LABEL: &str = "none";

/// A whole counter config: what may ever be uploaded, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The log origin this config is published in (the signer key's name).
    pub origin: String,
    /// Fraction of opted-in weekly reports that are uploaded, in (0, 1].
    pub sample_rate: f64,
    /// Upper bound of the epsilon sum over a program's counters in one weekly report.
    pub max_epsilon: f64,
    /// Accepted `std::env::consts::OS` values.
    pub os: Vec<String>,
    /// Accepted `std::env::consts::ARCH` values.
    pub arch: Vec<String>,
    /// The programs that may report.
    #[serde(rename = "program", default)]
    pub programs: Vec<Program>,
}

/// One program and its counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// Program name, `[a-z0-9][a-z0-9._/-]*`.
    pub name: String,
    /// The versions that report as themselves; others report as `devel`.
    pub versions: Versions,
    /// The counters of this program.
    #[serde(rename = "counter", default)]
    pub counters: Vec<Counter>,
}

/// The versions of a program that report as themselves (DESIGN.md section 2): a semver
/// requirement, or a list of exact released versions. Any other version reports as `devel`.
///
/// In TOML, `versions = ">=14.0.0"` or `versions = ["14.1.0", "14.1.1"]`.
///
/// ```
/// use clearcount_config_log::config::Versions;
///
/// let exact = Versions::Exact(vec!["14.1.0".into(), "14.1.1".into()]);
/// let accepts = exact.matcher().unwrap();
/// assert!(accepts.matches(&"14.1.1".parse().unwrap()));
/// assert!(!accepts.matches(&"14.1.2".parse().unwrap()));
/// assert_eq!(exact.to_string(), "[14.1.0, 14.1.1]");
/// assert!(Versions::from(">=14").matcher().unwrap().matches(&"14.1.2".parse().unwrap()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Versions {
    /// A semver requirement such as `>=14.0.0` or `^1.2, <1.9`.
    Requirement(String),
    /// Exact released versions such as `14.1.0`.
    Exact(Vec<String>),
}

impl Versions {
    /// The parsed form, or why it does not parse.
    pub fn matcher(&self) -> Result<VersionMatcher, String> {
        match self {
            Versions::Requirement(r) => semver::VersionReq::parse(r)
                .map(VersionMatcher::Requirement)
                .map_err(|e| format!("{r:?} is not a semver requirement: {e}")),
            Versions::Exact(list) => list
                .iter()
                .map(|v| {
                    semver::Version::parse(v)
                        .map_err(|e| format!("{v:?} is not a semver version: {e}"))
                })
                .collect::<Result<_, _>>()
                .map(VersionMatcher::Exact),
        }
    }
}

impl From<&str> for Versions {
    fn from(requirement: &str) -> Versions {
        Versions::Requirement(requirement.to_string())
    }
}

/// A requirement as written; a list as `[a, b]`.
impl std::fmt::Display for Versions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Versions::Requirement(r) => f.write_str(r),
            Versions::Exact(list) => write!(f, "[{}]", list.join(", ")),
        }
    }
}

impl<'de> Deserialize<'de> for Versions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Versions, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Versions;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a semver requirement (\">=1.0.0\") or a list of exact versions ([\"1.0.0\"])",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Versions, E> {
                Ok(Versions::from(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Versions, A::Error> {
                let mut list = Vec::new();
                while let Some(v) = seq.next_element::<String>()? {
                    list.push(v);
                }
                Ok(Versions::Exact(list))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// [`Versions`] parsed: which versions report as themselves.
#[derive(Debug, Clone)]
pub enum VersionMatcher {
    /// Versions matching the requirement.
    Requirement(semver::VersionReq),
    /// Exactly these versions.
    Exact(Vec<semver::Version>),
}

impl VersionMatcher {
    /// Whether `version` reports as itself.
    pub fn matches(&self, version: &semver::Version) -> bool {
        match self {
            VersionMatcher::Requirement(r) => r.matches(version),
            VersionMatcher::Exact(list) => list.contains(version),
        }
    }
}

/// How a counter's weekly value becomes one label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CounterKind {
    /// The weekly total, reported as the bucket it falls in.
    Count,
    /// The most-used label of the week (`none` when never recorded).
    Category,
}

/// How a counter with `epsilon` randomizes its value (DESIGN.md sections 2 and 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RrMechanism {
    /// k-ary randomized response: the report carries one label (`"krr"`, the default).
    Krr,
    /// Optimized unary encoding: the report carries one bit a label (`"oue"`).
    Oue,
}

/// One counter: its kind, its labels, its privacy parameter and its justification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counter {
    /// Counter name, `[a-z0-9][a-z0-9/_.-]*`.
    pub name: String,
    /// Count or category.
    pub kind: CounterKind,
    /// For `count`: strictly increasing lower bounds starting at 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<u64>>,
    /// For `category`: distinct labels (`none` is implicit and reserved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Randomized response parameter; `None` means no randomized response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// How a counter with `epsilon` randomizes its value; absent means k-ary randomized
    /// response (contract version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<RrMechanism>,
    /// What is counted.
    pub description: String,
    /// Why it is needed: the question it answers.
    pub rationale: String,
    /// Who answers for it.
    pub owner: String,
    /// Where it was discussed.
    pub link: String,
    /// The last day it may be reported, written `"2027-06-30"` (or as a TOML date,
    /// `2027-06-30`).
    #[serde(deserialize_with = "date")]
    pub expires: NaiveDate,
}

impl Counter {
    /// The labels a report may carry for this counter, in config order: the bucket lower
    /// bounds as decimal strings for `count`, the labels followed by `none` for `category`.
    pub fn report_labels(&self) -> Vec<String> {
        match self.kind {
            CounterKind::Count => self
                .buckets
                .iter()
                .flatten()
                .map(|b| b.to_string())
                .collect(),
            CounterKind::Category => self
                .labels
                .iter()
                .flatten()
                .cloned()
                .chain(std::iter::once(NONE_LABEL.to_string()))
                .collect(),
        }
    }

    /// The privacy mechanism of its reports: none without `epsilon`, else `mechanism` (k-ary
    /// randomized response when absent).
    pub fn privacy_mechanism(&self) -> Mechanism {
        match (self.epsilon, self.mechanism) {
            (None, _) => Mechanism::None,
            (Some(_), None | Some(RrMechanism::Krr)) => Mechanism::Krr,
            (Some(_), Some(RrMechanism::Oue)) => Mechanism::Oue,
        }
    }

    /// Whether `value` may be a report's value of this counter: one of
    /// [`Counter::report_labels`], or with `mechanism = "oue"` one `0` or `1` a label.
    pub fn allows_value(&self, value: &str) -> bool {
        match self.privacy_mechanism() {
            Mechanism::Oue => UnaryEncoding::parse(value, self.report_labels().len()).is_some(),
            _ => self.report_labels().iter().any(|l| l == value),
        }
    }

    /// Whether the counter may still be reported on `day` (it expires after its `expires` day).
    pub fn is_live_on(&self, day: NaiveDate) -> bool {
        day <= self.expires
    }
}

/// Reads a day written as a string (`"2027-06-30"`) or as a TOML local date (`2027-06-30`).
fn date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
    use serde::de::Error;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Toml(toml::value::Datetime),
    }
    let expected = "a date like \"2027-06-30\"";
    match Written::deserialize(deserializer) {
        Ok(Written::Text(text)) => text
            .parse::<NaiveDate>()
            .map_err(|_| D::Error::custom(format!("{text:?} is not {expected}"))),
        Ok(Written::Toml(dt)) => match (dt.date, dt.time, dt.offset) {
            (Some(d), None, None) => {
                NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
                    .ok_or_else(|| D::Error::custom(format!("{dt} is not {expected}")))
            }
            _ => Err(D::Error::custom(format!(
                "{dt} is not {expected}: give the day only"
            ))),
        },
        Err(_) => Err(D::Error::custom(format!("expected {expected}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Day {
        #[serde(deserialize_with = "date")]
        day: NaiveDate,
    }

    fn day(toml_text: &str) -> Result<NaiveDate, String> {
        toml::from_str::<Day>(toml_text)
            .map(|d| d.day)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn dates_as_strings_or_toml_dates() {
        let expected = NaiveDate::from_ymd_opt(2027, 6, 30).unwrap();
        assert_eq!(day("day = \"2027-06-30\""), Ok(expected));
        assert_eq!(day("day = 2027-06-30"), Ok(expected));
        assert_eq!(
            day("day = \"June\""),
            Err("\"June\" is not a date like \"2027-06-30\"".into())
        );
        assert!(
            day("day = 2027-06-30T10:00:00")
                .unwrap_err()
                .contains("day only")
        );
        assert!(day("day = 10:00:00").unwrap_err().contains("day only"));
        assert_eq!(
            day("day = 3"),
            Err("expected a date like \"2027-06-30\"".into())
        );
    }
}
