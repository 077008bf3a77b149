//! Property tests of the report parser and validator (the stable-toolchain twin of
//! `server/fuzz`): no input makes them panic; every report built from the config is accepted;
//! an accepted report's canonical JSON is a fixed point.

use chrono::NaiveDate;
use clearcount_server::configs::LoadedConfig;
use clearcount_server::report::{canonical_json, parse};
use clearcount_server::validate::validate;
use proptest::prelude::*;

const ORIGIN: &str = "fuzz.clearcount.example/config";

fn config() -> LoadedConfig {
    LoadedConfig::new(0, include_bytes!("../fuzz/config.toml").to_vec())
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
}

fn check(body: &[u8], cfg: &LoadedConfig) -> bool {
    let Ok(report) = parse(body) else {
        return false;
    };
    match validate(
        &report,
        ORIGIN,
        1,
        (report.config.index == 0).then_some(cfg),
        today(),
    ) {
        Ok(a) => {
            let again = parse(a.canonical.as_bytes()).expect("canonical JSON parses");
            assert_eq!(canonical_json(&again), a.canonical);
            assert!(validate(&again, ORIGIN, 1, Some(cfg), today()).is_ok());
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    }
}

fn valid_report() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["2026-10-26", "2026-11-02", "2026-11-09", "2026-11-16"]),
        0.0f64..0.5,
        prop::sample::select(vec!["0", "1", "10", "100", "1000"]),
        prop::sample::select(vec!["default", "pcre2", "other", "none"]),
        prop::sample::select(vec!["14.0.0", "14.1.0", "15.0.0-rc.1", "devel", "99.0.0"]),
        prop::sample::select(vec!["linux", "macos"]),
        prop::sample::select(vec!["x86_64", "aarch64"]),
        any::<bool>(),
        prop::sample::select(vec!["a", "b", "none"]),
    )
        .prop_map(|(week, x, inv, engine, version, os, arch, old, old_label)| {
            // `old` expires on 2026-10-29: optional in the week of 2026-10-26 only.
            let old = if old && week == "2026-10-26" { format!(r#","old":"{old_label}""#) } else { String::new() };
            format!(
                r#"{{"format":1,"week":"{week}","config":{{"origin":"{ORIGIN}","index":0}},"x":{x},"programs":[{{"name":"ripgrep","version":"{version}","os":"{os}","arch":"{arch}","counters":{{"engine":"{engine}","invocations":"{inv}"{old}}}}}]}}"#
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        check(&body, &config());
    }

    #[test]
    fn json_looking_text_never_panics(body in r#"[\[\]{}":,0-9a-z.\-\\ ]{0,300}"#) {
        check(body.as_bytes(), &config());
    }

    #[test]
    fn valid_reports_are_accepted(body in valid_report()) {
        // Pre-releases do not match ">=14.0.0" (semver rules): those must be refused.
        let expect = !body.contains("-rc.1");
        prop_assert_eq!(check(body.as_bytes(), &config()), expect, "{}", body);
    }

    #[test]
    fn mutated_reports_never_panic(
        body in valid_report(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut bytes = body.into_bytes();
        for (at, byte, op) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        check(&bytes, &config());
    }

    #[test]
    fn reports_with_injected_fields_are_refused(
        body in valid_report(),
        key in "[a-z]{1,8}",
        at in 0usize..3,
    ) {
        let known = ["format", "week", "config", "x", "programs", "origin", "index", "name", "version", "os", "arch", "counters"];
        prop_assume!(!known.contains(&key.as_str()));
        let anchor = [r#""format":1"#, r#""index":0"#, r#""arch":""#][at];
        let injected = body.replacen(anchor, &format!(r#""{key}":"v",{anchor}"#), 1);
        let e = parse(injected.as_bytes()).unwrap_err().to_string();
        prop_assert!(e.contains("unknown field"), "{}", e);
    }
}
