//! Fuzzes the other on-disk parsers: the mode file and local reports.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = clearcount::mode::ModeFile::parse(data) {
        assert_eq!(clearcount::mode::ModeFile::parse(m.render().as_bytes()).ok(), Some(m));
    }
    if let Ok(r) = clearcount::LocalReport::parse(data) {
        assert_eq!(clearcount::LocalReport::parse(r.to_json().as_bytes()).ok(), Some(r));
    }
});
