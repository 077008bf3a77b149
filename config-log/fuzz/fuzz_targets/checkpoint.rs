//! Checkpoints: parsing never panics; what parses formats back to the same text.
#![no_main]

use clearcount_config_log::checkpoint::Checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Checkpoint::parse_note_unverified(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Checkpoint::parse(text) {
        assert_eq!(c.to_text(), text);
    }
});
