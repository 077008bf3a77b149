//! Tile paths, hash tiles and entry bundles: parsing never panics; paths that parse are
//! canonical; bundles that parse encode back to the same bytes.
#![no_main]

use clearcount_config_log::tiles::{self, Tile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(path) = std::str::from_utf8(data) {
        if let Ok(t) = Tile::parse_path(path) {
            assert_eq!(t.path(), path);
        }
    }
    let width = data.first().map_or(1, |b| u16::from(*b) + 1);
    let body = data.get(1..).unwrap_or(&[]);
    let bundle = Tile::entries(0, width);
    if let Ok(entries) = tiles::parse_entry_bundle(&bundle, body) {
        assert_eq!(tiles::encode_entry_bundle(&entries).unwrap(), body);
    }
    if let Ok(hashes) = tiles::parse_hash_tile(&Tile::hash(0, 0, width), body) {
        assert_eq!(tiles::encode_hash_tile(&hashes), body);
    }
});
