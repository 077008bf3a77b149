//! The DESIGN.md target: verifying a config (checkpoint signature + consistency proof +
//! inclusion proof) in a log of 1,000,000 entries takes under 100 microseconds, with the
//! tiles in memory and cached.
//!
//! Run: `cargo bench -p clearcount-config-log --bench log_verify`

use std::hint::black_box;

use clearcount_config_log::checkpoint::Checkpoint;
use clearcount_config_log::merkle::{MemoryTree, leaf_hash};
use clearcount_config_log::note::Signer;
use clearcount_config_log::reader::{LogReader, MemorySource};
use clearcount_config_log::tiles::{self, Tile, TileKind};
use criterion::{Criterion, criterion_group, criterion_main};

const SIZE: u64 = 1_000_000;
const OLD: u64 = 999_000;
const INDEX: u64 = 500_000;

fn entry(i: u64) -> Vec<u8> {
    format!("origin = \"bench.example/config\"\n# config {i}\n").into_bytes()
}

/// The static files of a 1,000,000-entry log (every hash tile, the bundle of INDEX) and the
/// checkpoint remembered at OLD entries.
fn setup() -> (Signer, MemorySource, Checkpoint) {
    let signer = Signer::from_seed("bench.example/config", [7; 32]).unwrap();
    let tree = MemoryTree::from_leaves((0..SIZE).map(|i| leaf_hash(&entry(i))));
    let mut source = MemorySource::new();
    for tile in tiles::hash_tiles_for_size(SIZE) {
        let TileKind::Hash(level) = tile.kind else {
            continue;
        };
        let start = (tile.index * tiles::WIDTH) as usize;
        let hashes = &tree.level(level * tiles::HEIGHT)[start..start + usize::from(tile.width)];
        source.insert(tile.path(), tiles::encode_hash_tile(hashes));
    }
    let bundle = Tile::entries_for_index(INDEX, SIZE);
    let first = bundle.index * tiles::WIDTH;
    let entries: Vec<Vec<u8>> = (first..first + u64::from(bundle.width))
        .map(entry)
        .collect();
    source.insert(bundle.path(), tiles::encode_entry_bundle(&entries).unwrap());
    let checkpoint = Checkpoint::new(signer.name(), SIZE, tree.root(SIZE).unwrap());
    source.insert("checkpoint", checkpoint.sign(&signer).unwrap());
    let old = Checkpoint::new(signer.name(), OLD, tree.root(OLD).unwrap());
    (signer, source, old)
}

fn bench(c: &mut Criterion) {
    let (signer, source, old) = setup();
    let reader = LogReader::new(signer.verifier(), &source);
    // Warm the tile cache (and check that it all verifies).
    let v = reader.verify(Some(&old), INDEX).unwrap();
    assert_eq!(v.entry, entry(INDEX));

    c.bench_function(
        "verify 1M log: signature+consistency+inclusion (tiles cached)",
        |b| {
            b.iter(|| {
                reader
                    .verify(black_box(Some(&old)), black_box(INDEX))
                    .unwrap()
            })
        },
    );
    c.bench_function(
        "verify 1M log: cold reader (parse + hash every tile needed)",
        |b| {
            b.iter(|| {
                let cold = LogReader::new(signer.verifier(), &source);
                cold.verify(black_box(Some(&old)), black_box(INDEX))
                    .unwrap()
            })
        },
    );
    let note = reader.source().files["checkpoint"].clone();
    c.bench_function("checkpoint signature only", |b| {
        b.iter(|| reader.open_checkpoint(black_box(&note)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
