//! Every report the client's builder makes is accepted by the real server's validator, for a
//! range of local data and configs (strings, versions, expiry, unknown labels, several
//! programs, k-ary randomized response and OUE), and contains no string outside the config except the version and the week.

use clearcount::report::LocalReport;
use clearcount::upload::build::{Outcome, build};
use clearcount_config_log::config::Config;
use clearcount_server::configs::LoadedConfig;

const CONFIG: &str = r#"origin = "test.clearcount.example/config"
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
buckets = [0, 1, 10, 100, 1000]
epsilon = 1.0
description = "d"
rationale = "r"
owner = "o@example.org"
link = "https://example.org/1"
expires = "2099-01-01"

[[program.counter]]
name = "engine"
kind = "category"
labels = ["default", "pcre2", "other"]
epsilon = 2.0
description = "d"
rationale = "r"
owner = "o@example.org"
link = "https://example.org/2"
expires = "2099-01-01"

[[program.counter]]
name = "ending"
kind = "category"
labels = ["a", "b"]
description = "expires in the middle of the week"
rationale = "r"
owner = "o@example.org"
link = "https://example.org/3"
expires = "2026-11-18"

[[program]]
name = "fd"
versions = ">=8.0.0, <9"

[[program.counter]]
name = "runs"
kind = "count"
buckets = [0, 10]
description = "d"
rationale = "r"
owner = "o@example.org"
link = "https://example.org/4"
expires = "2099-01-01"

[[program.counter]]
name = "mode"
kind = "category"
labels = ["glob", "regex", "other"]
epsilon = 1.0
mechanism = "oue"
description = "optimized unary encoding: one bit a label"
rationale = "r"
owner = "o@example.org"
link = "https://example.org/5"
expires = "2099-01-01"
"#;

#[test]
fn built_reports_pass_the_server_validator() {
    let config = Config::parse(CONFIG.as_bytes()).unwrap();
    let loaded = LoadedConfig::new(0, CONFIG.as_bytes().to_vec());
    let versions = [
        "14.1.0",
        "13.9.9",
        "15.0.0-rc.1",
        "14.0.0+git.abc",
        "weird",
        "8.3.1",
        "9.0.0",
    ];
    let oses = ["linux", "macos", "windows"];
    let mut rng = clearcount_privacy::secure_rng().unwrap();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let mut sent = 0;
    for i in 0..600usize {
        let v = versions[i % versions.len()];
        let os = oses[(i / 7) % oses.len()];
        let mut programs = vec![serde_json::json!({
            "name": "rg", "version": v, "os": os, "arch": "x86_64",
            "counters": { "invocations": i * 7 % 1500, "engine:pcre2": i % 3, "engine:jit": i % 5,
                          "ending:a": 1, "secret:thing": 4 }
        })];
        if i % 2 == 0 {
            programs.push(serde_json::json!({
                "name": "fd", "version": versions[(i + 3) % versions.len()], "os": "linux",
                "arch": "aarch64", "counters": { "runs": i % 20, "mode:regex": i % 4 }
            }));
        }
        if i % 3 == 0 {
            programs.push(serde_json::json!({
                "name": "unknown-tool", "version": "1.0.0", "os": "linux", "arch": "x86_64",
                "counters": { "x": 1 }
            }));
        }
        let local = serde_json::json!({ "format": 1, "week": "2026-11-16", "programs": programs });
        let local = LocalReport::parse(local.to_string().as_bytes()).unwrap();
        let built = build(&local, &config, 0, &|_| true, &mut rng);
        let Outcome::Send(report) = built.outcome else {
            assert!(
                local
                    .programs
                    .iter()
                    .all(|p| p.os == "windows" || p.name == "unknown-tool"),
                "{:?}",
                built.outcome
            );
            continue;
        };
        sent += 1;
        let body = report.to_json();
        let parsed = clearcount_server::report::parse(body.as_bytes())
            .unwrap_or_else(|e| panic!("server cannot parse {body}: {e}"));
        clearcount_server::validate::validate(&parsed, &config.origin, 1, Some(&loaded), today)
            .unwrap_or_else(|e| panic!("server refuses {body}: {e}"));
        // No string that is not in the config, except the version and the week.
        for s in strings(&serde_json::from_str(&body).unwrap()) {
            assert!(
                STRUCTURE.contains(&s.as_str())
                    || CONFIG.contains(&format!("\"{s}\""))
                    || CONFIG.contains(&format!("[{s},"))
                    || CONFIG.contains(&format!(" {s},"))
                    || CONFIG.contains(&format!(" {s}]"))
                    || s == "2026-11-16"
                    || s == "devel"
                    || s == "none"
                    || is_oue_value(&s, 4)
                    || versions.contains(&s.as_str()),
                "string {s:?} of {body} is not from the config"
            );
            assert!(
                !s.contains("secret") && !s.contains("jit") && !s.contains("unknown"),
                "{body}"
            );
        }
    }
    assert!(sent > 300, "{sent}");
}

/// An OUE counter's value: `k` characters `0` or `1`, one a label of the config.
fn is_oue_value(s: &str, k: usize) -> bool {
    s.len() == k && s.bytes().all(|b| b == b'0' || b == b'1')
}

/// The keys of the report format itself (DESIGN.md section 4).
const STRUCTURE: &[&str] = &[
    "format", "week", "config", "origin", "index", "x", "programs", "name", "version", "os",
    "arch", "counters",
];

fn strings(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a.iter().flat_map(strings).collect(),
        serde_json::Value::Object(o) => o
            .iter()
            .flat_map(|(k, v)| {
                let mut out = vec![k.clone()];
                out.extend(strings(v));
                out
            })
            .collect(),
        _ => Vec::new(),
    }
}
