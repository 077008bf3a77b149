//! Fuzzes what `POST /upload` does with a body before storage: strict parsing, every validation
//! rule against a real config, and canonical re-serialization. Must never panic; an accepted
//! report's canonical JSON must parse and validate again to itself.
#![no_main]

use std::sync::OnceLock;

use chrono::NaiveDate;
use clearcount_server::configs::LoadedConfig;
use clearcount_server::report::{canonical_json, parse};
use clearcount_server::validate::validate;
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "fuzz.clearcount.example/config";

fn config() -> &'static LoadedConfig {
    static C: OnceLock<LoadedConfig> = OnceLock::new();
    C.get_or_init(|| LoadedConfig::new(0, include_bytes!("../config.toml").to_vec()))
}

fuzz_target!(|body: &[u8]| {
    let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let Ok(report) = parse(body) else { return };
    let cfg = (report.config.index == 0).then(config);
    if let Ok(accepted) = validate(&report, ORIGIN, 1, cfg, today) {
        let again = parse(accepted.canonical.as_bytes()).expect("canonical JSON parses");
        assert_eq!(canonical_json(&again), accepted.canonical);
        assert!(validate(&again, ORIGIN, 1, cfg, today).is_ok());
    }
});
