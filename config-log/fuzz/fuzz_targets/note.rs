//! Signed notes: opening arbitrary bytes never panics; a note that opens re-signs to a note
//! that opens with the same text.
#![no_main]

use clearcount_config_log::note::{self, Signer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let signer = Signer::from_seed("fuzz.example/log", [3; 32]).unwrap();
    let verifier = signer.verifier();
    let _ = note::split(data);
    let _ = note::text_unverified(data);
    if let Ok(opened) = note::open(data, std::slice::from_ref(&verifier)) {
        let again = note::sign(&opened.text, &opened.unverified, &[&signer]).unwrap();
        assert_eq!(note::open(again.as_bytes(), &[verifier]).unwrap().text, opened.text);
    }
    // Signing arbitrary text either fails cleanly or opens again.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(signed) = note::sign(text, &[], &[&signer]) {
            if let Ok(opened) = note::open(signed.as_bytes(), &[signer.verifier()]) {
                assert_eq!(opened.text, text);
            }
        }
    }
});
