//! Fuzzes the counter-file parser: it must never panic, and what it accepts must be consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(snap) = clearcount::format::parse_bytes(data) {
        assert!(clearcount::format::meta_fits(&snap.meta));
        assert!(snap.counters.keys().all(|k| !k.is_empty() && k.len() <= 255));
    }
});
