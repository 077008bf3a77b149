//! Property tests: proofs over random trees of up to 2,000 entries verify and break when a
//! bit flips; the log's parsers never panic on arbitrary input.

use clearcount_config_log::checkpoint::Checkpoint;
use clearcount_config_log::merkle::{MemoryTree, extends, leaf_hash, verify_inclusion};
use clearcount_config_log::note::{self, Signer, Verifier};
use clearcount_config_log::tiles::{self, Tile};
use proptest::prelude::*;

/// A tree of `n` distinct leaves (by `seed`), large enough to hold sizes up to `2n`.
fn tree(seed: u64, n: u64) -> (Vec<[u8; 32]>, MemoryTree) {
    let leaves: Vec<[u8; 32]> = (0..2 * n)
        .map(|i| leaf_hash(format!("{seed}/{i}").as_bytes()))
        .collect();
    let t = MemoryTree::from_leaves(leaves.iter().copied());
    (leaves, t)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Every inclusion proof of a random tree verifies; a flipped bit in the proof, the root,
    /// or a size that changes the proof's shape fails.
    #[test]
    fn inclusion_proofs(seed in any::<u64>(), n in 1u64..=2000, flips in prop::collection::vec(any::<u64>(), 64)) {
        let (leaves, t) = tree(seed, n);
        let root = t.root(n).unwrap();
        for i in 0..n {
            let proof = t.inclusion_proof(i, n).unwrap();
            prop_assert!(verify_inclusion(i, n, &leaves[i as usize], &proof, &root).is_ok());
        }

        for (k, f) in flips.iter().enumerate() {
            let i = f % n;
            let proof = t.inclusion_proof(i, n).unwrap();
            let leaf = leaves[i as usize];
            let bit = (f >> 32) as usize % 256;
            let mut bad_root = root;
            bad_root[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(verify_inclusion(i, n, &leaf, &proof, &bad_root).is_err());
            let mut bad_leaf = leaf;
            bad_leaf[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(verify_inclusion(i, n, &bad_leaf, &proof, &root).is_err());
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let e = k % bad.len();
                bad[e][bit / 8] ^= 1 << (bit % 8);
                prop_assert!(verify_inclusion(i, n, &leaf, &bad, &root).is_err());
            }
            // A flipped index bit always fails (the leaf is another one's).
            let idx_bit = (f >> 40) % 11;
            let j = i ^ (1 << idx_bit);
            prop_assert!(verify_inclusion(j, n, &leaf, &proof, &root).is_err());
            // A flipped size bit fails whenever the genuine proof for that size has another
            // length (RFC 9162 proofs bind the size only through their shape; checkpoints bind
            // it by signature).
            let size_bit = (f >> 48) % 11;
            let m = n ^ (1 << size_bit);
            if m > i && m <= 2 * n && m != n
                && t.inclusion_proof(i, m).unwrap().len() != proof.len() {
                prop_assert!(verify_inclusion(i, m, &leaf, &proof, &root).is_err());

            }
        }
    }

    /// Consistency proofs between sampled pairs of sizes verify; flipped bits fail.
    #[test]
    fn consistency_proofs(seed in any::<u64>(), n in 1u64..=2000, pairs in prop::collection::vec((any::<u64>(), any::<u64>(), any::<u16>()), 100)) {
        let (_, t) = tree(seed, n);
        for (a, b, bit) in pairs {
            let new = 1 + b % n;
            let old = a % (new + 1);
            let proof = t.consistency_proof(old, new).unwrap();
            let (old_root, new_root) = (t.root(old).unwrap(), t.root(new).unwrap());
            prop_assert!(extends(old, new, &proof, &old_root, &new_root).is_ok(), "{} -> {}", old, new);
            let bit = usize::from(bit) % 256;
            let (byte, mask) = (bit / 8, 1u8 << (bit % 8));
            let mut bad = old_root;
            bad[byte] ^= mask;
            prop_assert!(extends(old, new, &proof, &bad, &new_root).is_err());
            // (Every root extends the empty tree, so from size 0 only the old root matters.)
            if old > 0 && old < new {
                let mut bad = new_root;
                bad[byte] ^= mask;
                prop_assert!(extends(old, new, &proof, &old_root, &bad).is_err());
            }
            for e in 0..proof.len() {
                let mut bad = proof.clone();
                bad[e][byte] ^= mask;
                prop_assert!(extends(old, new, &bad, &old_root, &new_root).is_err());
            }
            // Other sizes whose genuine proof has another length fail.
            for m in [old ^ 1, old ^ 2, old ^ 4] {
                if m < new && m != old && t.consistency_proof(m, new).unwrap().len() != proof.len() {
                    prop_assert!(extends(m, new, &proof, &old_root, &new_root).is_err());
                }
            }
            for m in [new ^ 1, new ^ 2, new ^ 8] {
                if m > old && m != new && m <= 2 * n && t.consistency_proof(old, m).unwrap().len() != proof.len() {
                    prop_assert!(extends(old, m, &proof, &old_root, &new_root).is_err());
                }
            }
        }
    }

    /// Key, note, checkpoint and tile parsers never panic on arbitrary bytes.
    #[test]
    fn parsers_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&data);
        let _ = Verifier::parse(&text);
        let _ = Signer::parse(&text);
        let _ = Checkpoint::parse(&text);
        let _ = Checkpoint::parse_note_unverified(&data);
        let _ = note::split(&data);
        let v = Verifier::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").unwrap();
        let _ = note::open(&data, &[v]);
        let _ = Tile::parse_path(&text);
        let _ = tiles::parse_n_suffix(&text);
        for width in [1u16, 2, 255, 256] {
            let _ = tiles::parse_entry_bundle(&Tile::entries(0, width), &data);
            let _ = tiles::parse_hash_tile(&Tile::hash(0, 0, width), &data);
        }
    }

    /// Structured near-misses: notes made of signature-like lines and tile-like paths.
    #[test]
    fn near_miss_inputs_never_panic(
        lines in prop::collection::vec("(— [a-zA-Z+ ]{0,12} [A-Za-z0-9+/=]{0,100}|[a-z0-9 ]{0,20}|)", 0..8),
        path in "tile/(entries|[0-9]{1,3})(/x?[0-9]{1,4}){0,4}(\\.p(/[0-9]{0,4})?)?",
    ) {
        let msg = lines.join("\n");
        let _ = note::open(msg.as_bytes(), &[]);
        let _ = Checkpoint::parse_note_unverified(msg.as_bytes());
        if let Ok(t) = Tile::parse_path(&path) {
            prop_assert_eq!(Tile::parse_path(&t.path()).unwrap(), t);
        }
    }
}
