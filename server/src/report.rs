//! The upload report on the wire (DESIGN.md section 4): strict parsing of untrusted bytes.
//!
//! Parsing is deliberately stricter than `serde_json` defaults: unknown fields, duplicated keys
//! (including duplicated counters, which a plain map would silently collapse), wrong types,
//! nesting deeper than the report's own shape and bodies that are not UTF-8 are all refused
//! with a message that names the problem.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The largest report body accepted, in bytes.
pub const MAX_REPORT_BYTES: usize = 64 * 1024;

/// The deepest JSON nesting a report can legitimately have (report, config/programs, program,
/// counters) plus headroom; anything deeper is refused before parsing.
pub const MAX_DEPTH: usize = 6;

/// The only report format this server knows.
pub const FORMAT: u32 = 1;

/// A weekly upload report as sent by a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Report format version; only [`FORMAT`] is accepted.
    pub format: u32,
    /// The Monday (UTC) that names the week, `YYYY-MM-DD`.
    pub week: String,
    /// The config entry of the log the client obeyed.
    pub config: ConfigRef,
    /// The sampling draw, uniform in [0, 1).
    pub x: f64,
    /// One entry per reported program.
    pub programs: Vec<ProgramReport>,
}

/// Which log entry a report was built against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRef {
    /// The log origin.
    pub origin: String,
    /// The log index of the config entry.
    pub index: u64,
}

/// The part of a report about one program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramReport {
    /// Program name from the config.
    pub name: String,
    /// Program version (semver) or `devel`.
    pub version: String,
    /// `std::env::consts::OS`.
    pub os: String,
    /// `std::env::consts::ARCH`.
    pub arch: String,
    /// Counter name to label, each counter at most once.
    pub counters: Counters,
}

/// Counter name to reported label, in the order received; duplicated names are a parse error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counters(pub Vec<(String, String)>);

impl Counters {
    /// The label reported for `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l.as_str())
    }
}

impl Serialize for Counters {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Counters {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountersVisitor;
        impl<'de> Visitor<'de> for CountersVisitor {
            type Value = Counters;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object mapping counter names to label strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Counters, A::Error> {
                let mut out: Vec<(String, String)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let label = map.next_value::<String>()?;
                    if out.iter().any(|(n, _)| *n == name) {
                        return Err(de::Error::custom(format!("duplicated counter `{name}`")));
                    }
                    if out.len() >= 256 {
                        return Err(de::Error::custom("more than 256 counters in one program"));
                    }
                    out.push((name, label));
                }
                Ok(Counters(out))
            }
        }
        deserializer.deserialize_map(CountersVisitor)
    }
}

/// Why bytes are not a well-formed report (before any check against the config).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// Larger than [`MAX_REPORT_BYTES`].
    #[error("report is larger than {MAX_REPORT_BYTES} bytes")]
    TooLarge,
    /// Empty body.
    #[error("report body is empty")]
    Empty,
    /// Not UTF-8.
    #[error("report is not valid UTF-8 (invalid byte at offset {0})")]
    Utf8(usize),
    /// Nested deeper than a report can be.
    #[error("JSON nesting is deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The top level is not a JSON object.
    #[error("a report must be a JSON object")]
    NotObject,
    /// An array where the report has none (objects must not be given in array form).
    #[error("JSON arrays are allowed only as the value of `programs`")]
    UnexpectedArray,
    /// Not JSON of the report's shape; the message names the field and position.
    #[error("invalid report JSON: {0}")]
    Json(String),
}

/// Parses a report body strictly. See the module documentation for what is refused.
///
/// ```
/// let body = br#"{"format":1,"week":"2026-11-16","config":{"origin":"o","index":0},
///   "x":0.1,"programs":[{"name":"p","version":"1.0.0","os":"linux","arch":"x86_64",
///   "counters":{"c":"0"}}]}"#;
/// let report = clearcount_server::report::parse(body).unwrap();
/// assert_eq!(report.programs[0].counters.get("c"), Some("0"));
/// assert!(clearcount_server::report::parse(b"{\"format\":1,\"format\":1}").is_err());
/// ```
pub fn parse(body: &[u8]) -> Result<Report, ParseError> {
    if body.len() > MAX_REPORT_BYTES {
        return Err(ParseError::TooLarge);
    }
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ParseError::Empty);
    }
    if let Err(e) = std::str::from_utf8(body) {
        return Err(ParseError::Utf8(e.valid_up_to()));
    }
    if nesting_depth(body) > MAX_DEPTH {
        return Err(ParseError::TooDeep);
    }
    check_arrays(body)?;
    serde_json::from_slice::<Report>(body).map_err(|e| ParseError::Json(e.to_string()))
}

/// The maximum nesting depth of arrays and objects in JSON text, ignoring brackets in strings.
/// Works on any bytes (malformed JSON included) without allocating.
pub fn nesting_depth(body: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Serde accepts a struct given as a JSON array of its fields in order; a report must use
/// objects. The only array allowed is the value of the top-level `programs` key.
fn check_arrays(body: &[u8]) -> Result<(), ParseError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // Let serde name what it is unless it is an array (which serde would accept).
        return if first == Some(&b'[') {
            Err(ParseError::NotObject)
        } else {
            Ok(())
        };
    }
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let mut string_start = 0usize;
    let mut last_string: &[u8] = &[];
    let mut prev = 0u8; // previous significant byte outside strings
    for (i, &b) in body.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                last_string = &body[string_start..i];
                prev = b'"';
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                string_start = i + 1;
            }
            b'[' => {
                if !(depth == 1 && prev == b':' && last_string == b"programs") {
                    return Err(ParseError::UnexpectedArray);
                }
                depth += 1;
                prev = b;
            }
            b'{' => {
                depth += 1;
                prev = b;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                prev = b;
            }
            _ if b.is_ascii_whitespace() => {}
            _ => prev = b,
        }
    }
    Ok(())
}

/// The canonical JSON of a report: fixed field order, counters sorted by name, no whitespace,
/// numbers in shortest round-trip form. What the server stores and publishes, so that a
/// client's formatting can never fingerprint it.
pub fn canonical_json(report: &Report) -> String {
    let mut r = report.clone();
    for p in &mut r.programs {
        p.counters.0.sort();
    }
    r.programs.sort_by(|a, b| a.name.cmp(&b.name));
    // Serializing plain strings, integers and a finite f64 cannot fail.
    serde_json::to_string(&r).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"format":1,"week":"2026-11-16","config":{"origin":"o","index":6},"x":0.1308,"programs":[{"name":"ripgrep","version":"14.1.0","os":"linux","arch":"x86_64","counters":{"invocations":"10","engine":"pcre2"}}]}"#;

    #[test]
    fn parses_design_example() {
        let r = parse(GOOD.as_bytes()).unwrap();
        assert_eq!(r.config.index, 6);
        assert_eq!(r.programs[0].counters.0.len(), 2);
    }

    #[test]
    fn refuses_duplicate_counter() {
        let bad = GOOD.replace(
            r#""engine":"pcre2""#,
            r#""engine":"pcre2","engine":"default""#,
        );
        let e = parse(bad.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("duplicated counter `engine`"), "{e}");
    }

    #[test]
    fn refuses_duplicate_field_and_unknown_field() {
        let dup = GOOD.replace(r#""x":0.1308"#, r#""x":0.1308,"x":0.2"#);
        assert!(
            parse(dup.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("duplicate field")
        );
        let unk = GOOD.replace(r#""x":0.1308"#, r#""x":0.1308,"id":"abc""#);
        assert!(
            parse(unk.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
    }

    #[test]
    fn refuses_depth_and_utf8() {
        let deep = "[".repeat(100);
        assert_eq!(parse(deep.as_bytes()), Err(ParseError::TooDeep));
        assert_eq!(parse(b"{\"a\":\"\xff\"}"), Err(ParseError::Utf8(6)));
        assert_eq!(nesting_depth(br#"{"a":"[[[[[[[[["}"#), 1);
        assert_eq!(parse(b"[1]"), Err(ParseError::NotObject));
        let seq = GOOD.replace(r#"{"origin":"o","index":6}"#, r#"["o",6]"#);
        assert_eq!(parse(seq.as_bytes()), Err(ParseError::UnexpectedArray));
        let seq = GOOD
            .replace(
                r#"{"name":"ripgrep","version":"14.1.0","os":"linux","arch":"x86_64","#,
                r#"["ripgrep","14.1.0","linux","x86_64","#,
            )
            .replace(r#""pcre2"}}]"#, r#""pcre2"}]]"#);
        assert_eq!(parse(seq.as_bytes()), Err(ParseError::UnexpectedArray));
        let escaped_key = GOOD.replace(r#""x":0.1308"#, r#""x\u0022":[1],"x":0.1308"#);
        assert_eq!(
            parse(escaped_key.as_bytes()),
            Err(ParseError::UnexpectedArray)
        );
    }

    #[test]
    fn canonical_is_formatting_independent() {
        let spaced = GOOD
            .replace(',', " ,\n ")
            .replace(r#""invocations":"10" ,"#, r#""invocations" : "10","#);
        let a = canonical_json(&parse(GOOD.as_bytes()).unwrap());
        let b = canonical_json(&parse(spaced.as_bytes()).unwrap());
        assert_eq!(a, b);
        assert!(
            a.contains(r#""counters":{"engine":"pcre2","invocations":"10"}"#),
            "{a}"
        );
    }
}
