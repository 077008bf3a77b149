//! Helpers of the end-to-end tests (`tests/tests/e2e_*.rs`): the `clearcount-log` binary, HTTP
//! downloads, SIGTERM, and parsing the demo's table.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// Builds (once per test process) and returns the `clearcount-log` binary, in the profile of the
/// running test.
pub fn log_bin() -> PathBuf {
    static BUILT: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(|| Mutex::new(None))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.as_ref() {
        return p.clone();
    }
    // .../target/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory")
        .to_path_buf();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args([
        "build",
        "-q",
        "-p",
        "clearcount-config-log",
        "--bin",
        "clearcount-log",
    ]);
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    if let Some(t) = dir.parent() {
        cmd.env("CARGO_TARGET_DIR", t);
    }
    assert!(
        cmd.status().expect("run cargo build").success(),
        "building clearcount-log failed"
    );
    let p = dir.join("clearcount-log");
    *built = Some(p.clone());
    p
}

/// Runs `clearcount-log ARGS` and returns its output, asserting success.
pub fn log_cmd(args: &[&str]) -> Output {
    let o = Command::new(log_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run clearcount-log");
    assert!(
        o.status.success(),
        "clearcount-log {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// `GET url`: the status and the body.
pub fn http_get(url: &str) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .get(url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    (status, r.text().unwrap_or_default())
}

/// `GET url`, asserting 200, parsed as JSON.
pub fn http_json(url: &str) -> serde_json::Value {
    let (status, body) = http_get(url);
    assert_eq!(status, 200, "GET {url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {body}"))
}

/// Sends SIGTERM to a child (with the system's `kill`, so no unsafe code is needed).
pub fn sigterm(child: &Child) {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -TERM failed");
}

/// One row of the demo's table of true versus estimated shares.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoRow {
    /// Week (Monday).
    pub week: String,
    /// Program.
    pub program: String,
    /// Counter.
    pub counter: String,
    /// Label.
    pub label: String,
    /// True share (0..1).
    pub truth: f64,
    /// The consistent estimate (0..1; a counter's sum to 1).
    pub estimate: f64,
    /// The unbiased estimate (may be negative or above 1).
    pub raw: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
    /// What the demo printed in the last column.
    pub verdict: String,
}

fn percent(s: &str) -> Option<f64> {
    s.strip_suffix('%')?.parse::<f64>().ok().map(|p| p / 100.0)
}

/// The rows of the demo's table in its standard output (lines starting with a week date).
pub fn demo_rows(stdout: &str) -> Vec<DemoRow> {
    stdout
        .lines()
        .filter_map(|line| {
            let line = line.replace(['[', ']', ','], " ");
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() != 10 || f[0].len() != 10 || !f[0].starts_with("20") {
                return None;
            }
            Some(DemoRow {
                week: f[0].to_string(),
                program: f[1].to_string(),
                counter: f[2].to_string(),
                label: f[3].to_string(),
                truth: percent(f[4])?,
                estimate: percent(f[5])?,
                raw: percent(f[6])?,
                low: percent(f[7])?,
                high: percent(f[8])?,
                verdict: f[9].to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_table_rows_and_skips_other_lines() {
        let out = "Week 2026-11-09 (ripgrep: 10 installs used it, 10 reports)\n\
                   week        program      counter            label        true  estimate      raw  95% interval\n\
                   2026-11-09  ripgrep      invocations        0           0.00%     0.11%   -1.20%  [ 0.00%,   6.71%] inside\n\
                   2026-11-09  cargo-audit  output             none        4.34%     0.47%    0.52%  [ 0.00%,   9.92%] OUTSIDE\n\
                   week 2026-11-09: 1 of 2 true shares inside their 95% intervals\n";
        let rows = demo_rows(out);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].counter, "invocations");
        assert!((rows[0].high - 0.0671).abs() < 1e-9);
        assert!((rows[0].raw + 0.012).abs() < 1e-9);
        assert!((rows[1].truth - 0.0434).abs() < 1e-9);
        assert_eq!(rows[1].verdict, "OUTSIDE");
    }
}
