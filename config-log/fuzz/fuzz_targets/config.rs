//! Fuzzes config parsing, then lint and the review diff of whatever parses: none may panic,
//! and every parse error must render.
#![no_main]

use chrono::NaiveDate;
use clearcount_config_log::config::{Config, diff, lint};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Config::parse(data) {
        Ok(config) => {
            let today = NaiveDate::from_ymd_opt(2026, 11, 20).expect("a valid date");
            let problems = lint(&config, today);
            for problem in &problems {
                assert!(!problem.place.is_empty() && !problem.message.is_empty());
            }
            let first = diff(None, &config);
            assert!(!first.text.is_empty());
            let same = diff(Some(&config), &config);
            assert!(same.is_empty());
            // A parsed config serializes back to a config that parses to the same value
            // (NaN is the one value TOML can carry that is not equal to itself).
            let finite = config.sample_rate.is_finite()
                && config.max_epsilon.is_finite()
                && config
                    .programs
                    .iter()
                    .flat_map(|p| &p.counters)
                    .all(|c| c.epsilon.is_none_or(f64::is_finite));
            if finite
                && let Ok(text) = config.to_toml()
                && text.len() <= 65_535
            {
                let again = Config::parse(text.as_bytes()).expect("serialized config parses");
                assert_eq!(again, config);
            }
        }
        Err(err) => assert!(!err.to_string().is_empty()),
    }
});
