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
    c.bench_function(
        "verify 1M log: consistency+inclusion only (no signature, tiles cached)",
        |b| {
            b.iter(|| {
                reader
                    .check_consistency(black_box(&old), &v.checkpoint)
                    .unwrap();
                reader.entry(&v.checkpoint, black_box(INDEX)).unwrap()
            })
        },
    );
    let note = reader.source().files["checkpoint"].clone();
    c.bench_function("checkpoint signature only", |b| {
        b.iter(|| reader.open_checkpoint(black_box(&note)).unwrap())
    });
    ed25519_backends(c, &signer, &note);
}

/// Ed25519 verification of the checkpoint note's actual text, key and signature, with ring
/// and with ed25519-dalek, back to back in one run (the choice of backend rests on this).
fn ed25519_backends(c: &mut Criterion, signer: &Signer, note: &[u8]) {
    use base64::Engine;
    let (text, sigs) = clearcount_config_log::note::split(note).unwrap();
    let b64 = sigs.trim_end().rsplit(' ').next().unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let sig: [u8; 64] = raw[4..].try_into().unwrap();
    let public = *signer.verifier().public_key();
    let msg = text.as_bytes();

    let ring_key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public);
    c.bench_function("ed25519 verify: ring", |b| {
        b.iter(|| ring_key.verify(black_box(msg), black_box(&sig)).unwrap())
    });
    let dalek_key = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    let dalek_sig = ed25519_dalek::Signature::from_bytes(&sig);
    c.bench_function("ed25519 verify: dalek verify_strict", |b| {
        b.iter(|| {
            dalek_key
                .verify_strict(black_box(msg), black_box(&dalek_sig))
                .unwrap()
        })
    });
    c.bench_function("ed25519 verify: dalek verify (non-strict)", |b| {
        use ed25519_dalek::Verifier;
        b.iter(|| {
            dalek_key
                .verify(black_box(msg), black_box(&dalek_sig))
                .unwrap()
        })
    });
    c.bench_function("ed25519 verify: dalek (key decoded each time)", |b| {
        use ed25519_dalek::Verifier;
        b.iter(|| {
            ed25519_dalek::VerifyingKey::from_bytes(black_box(&public))
                .unwrap()
                .verify(
                    black_box(msg),
                    &ed25519_dalek::Signature::from_bytes(black_box(&sig)),
                )
                .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
