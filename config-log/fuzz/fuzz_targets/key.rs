//! Verifier and signer key text: parsing never panics, and what parses formats back exactly.
#![no_main]

use clearcount_config_log::note::{Signer, Verifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = Verifier::parse(text) {
        assert_eq!(Verifier::parse(&v.to_string()).unwrap(), v);
    }
    if let Ok(s) = Signer::parse(text) {
        assert_eq!(Signer::parse(&s.to_key_string()).unwrap().verifier(), s.verifier());
    }
});
