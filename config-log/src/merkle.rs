//! RFC 6962 Merkle tree hashes, inclusion and consistency proofs, RFC 9162 verification.
//!
//! A tree over `n` entries has leaf hashes `SHA-256(0x00 || entry)` and interior hashes
//! `SHA-256(0x01 || left || right)`; the root of `n > 1` leaves splits them at the largest
//! power of two strictly smaller than `n`. Proofs are generated from the hashes of complete
//! subtrees (what tlog tiles store, see [`NodeSource`]) and verified with the algorithms of
//! RFC 9162 sections 2.1.3.2 and 2.1.4.2.
//!
//! ```
//! use clearcount_config_log::merkle::{MemoryTree, leaf_hash, verify_inclusion, verify_consistency};
//!
//! let mut tree = MemoryTree::new();
//! for entry in [&b"a"[..], b"b", b"c", b"d", b"e"] {
//!     tree.push(leaf_hash(entry));
//! }
//! let root3 = tree.root(3).unwrap();
//! let root5 = tree.root(5).unwrap();
//! let proof = tree.inclusion_proof(1, 5).unwrap();
//! verify_inclusion(1, 5, &leaf_hash(b"b"), &proof, &root5).unwrap();
//! let proof = tree.consistency_proof(3, 5).unwrap();
//! verify_consistency(3, 5, &proof, &root3, &root5).unwrap();
//! ```

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf, an interior node or a tree root.
pub type Hash = [u8; 32];

/// Why a proof could not be built or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// A hash (leaf, root or proof element) is not 32 bytes long.
    #[error("a hash is {0} bytes long, not 32")]
    HashSize(usize),
    /// The leaf index is not below the tree size.
    #[error("index {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The sizes do not allow a consistency proof (the second is smaller than the first).
    #[error("tree size {new} is smaller than {old}")]
    SizeOrder {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
    },
    /// The proof has the wrong number of hashes for these sizes.
    #[error("proof has {got} hashes, expected {want}")]
    ProofLength {
        /// Hashes in the proof.
        got: usize,
        /// Hashes the sizes call for.
        want: usize,
    },
    /// The proof does not lead to the given root (or roots).
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    /// Consistency from the empty tree is not a proof (see [`verify_consistency`]).
    #[error("consistency from the empty tree is trivial and not verified by proof")]
    FromEmptyTree,
    /// A node needed for the proof is not available (a tile is missing or too short).
    #[error("node hash (level {level}, index {index}) is not available: {reason}")]
    MissingNode {
        /// Tree level (0 = leaves).
        level: u8,
        /// Index of the node within its level.
        index: u64,
        /// Why.
        reason: String,
    },
}

/// The hash of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The leaf hash of an entry: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Converts a byte slice to a [`tyalias@Hash`], refusing any length but 32.
pub fn hash_from_slice(bytes: &[u8]) -> Result<Hash, ProofError> {
    bytes
        .try_into()
        .map_err(|_| ProofError::HashSize(bytes.len()))
}

/// The root of the tree over these leaf hashes (RFC 6962 MTH), computed directly.
pub fn root_of_leaves(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&root_of_leaves(&leaves[..k]), &root_of_leaves(&leaves[k..]))
        }
    }
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Read access to the hashes of complete subtrees: node `(level, index)` is the root of
/// leaves `index * 2^level .. (index + 1) * 2^level`. Tiles store exactly these.
pub trait NodeSource {
    /// The hash of node `(level, index)`.
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError>;
}

/// The hash of leaves `lo..hi` (`lo` aligned as in every RFC 6962 split), from complete
/// subtrees: the range is cut into maximal aligned power-of-two pieces, folded right to left.
pub fn range_hash<S: NodeSource + ?Sized>(src: &S, lo: u64, hi: u64) -> Result<Hash, ProofError> {
    if lo >= hi {
        return Ok(empty_root());
    }
    // At most 64 pieces (their sizes are distinct powers of two): kept on the stack, as
    // this runs for every proof element.
    let mut pieces = [[0u8; 32]; 64];
    let mut count = 0;
    let mut at = lo;
    while at < hi {
        // Largest aligned power of two starting at `at` that fits in the range.
        let align = if at == 0 { 63 } else { at.trailing_zeros() };
        let fit = 63 - (hi - at).leading_zeros();
        let level = align.min(fit) as u8;
        pieces[count] = src.node(level, at >> level)?;
        count += 1;
        at += 1u64 << level;
    }
    let mut acc = pieces[count - 1];
    for left in pieces[..count - 1].iter().rev() {
        acc = node_hash(left, &acc);
    }
    Ok(acc)
}

/// The root of the first `size` leaves.
pub fn tree_root<S: NodeSource + ?Sized>(src: &S, size: u64) -> Result<Hash, ProofError> {
    range_hash(src, 0, size)
}

/// The RFC 6962 audit path of leaf `index` in the tree of the first `size` leaves (the
/// leaf's sibling first, the root's child last).
pub fn inclusion_proof<S: NodeSource + ?Sized>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    let (mut lo, mut hi) = (0u64, size);
    // Walk down from the root; collect siblings, then reverse into leaf-first order.
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            proof.push(range_hash(src, lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(range_hash(src, lo, lo + k)?);
            lo += k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The RFC 6962 consistency proof from the tree of size `old` to the tree of size `new`.
/// From size 0, and between equal sizes, it is the empty proof.
pub fn consistency_proof<S: NodeSource + ?Sized>(
    src: &S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, ProofError> {
    if old > new {
        return Err(ProofError::SizeOrder { old, new });
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo:hi], b), iteratively; collected root-first, then reversed.
    let mut proof = Vec::new();
    let (mut lo, mut hi, mut m, mut complete) = (0u64, new, old, true);
    loop {
        let n = hi - lo;
        if m == n {
            if !complete {
                proof.push(range_hash(src, lo, hi)?);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            proof.push(range_hash(src, lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(range_hash(src, lo, lo + k)?);
            lo += k;
            m -= k;
            complete = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Verifies that `leaf` is entry `index` of the tree of `size` leaves with root `root`
/// (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let computed = root_from_inclusion(index, size, leaf, proof)?;
    if &computed == root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The root that an inclusion proof leads to (RFC 9162 section 2.1.3.2, steps 1 to 4).
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let want = inclusion_proof_len(index, size);
    if proof.len() != want {
        return Err(ProofError::ProofLength {
            got: proof.len(),
            want,
        });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::RootMismatch);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::RootMismatch);
    }
    Ok(r)
}

/// Number of hashes in the inclusion proof of `index` in a tree of `size` (`index < size`).
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = (index >> inner).count_ones();
    (inner + border) as usize
}

/// Verifies that the tree of `new` leaves with root `new_root` extends the tree of `old`
/// leaves with root `old_root` (RFC 9162 section 2.1.4.2).
///
/// Edge cases, decided explicitly: equal sizes need an empty proof and equal roots. From
/// size 0 there is nothing to verify (the proof is empty and every tree extends the empty
/// tree), so, as transparency-dev does, this refuses `old == 0` with
/// [`ProofError::FromEmptyTree`]: callers accept an old size 0 by checking that its root is
/// [`empty_root`] (see [`extends`]).
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ProofError> {
    if new < old {
        return Err(ProofError::SizeOrder { old, new });
    }
    if old == 0 {
        return Err(ProofError::FromEmptyTree);
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::ProofLength {
                got: proof.len(),
                want: 0,
            });
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::ProofLength { got: 0, want: 1 });
    }
    // RFC 9162 2.1.4.2.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::RootMismatch);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s == 0 && &fr == old_root && &sr == new_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Whether the tree `(new, new_root)` extends `(old, old_root)`: for `old == 0`, that
/// `old_root` is the empty-tree hash and `proof` is empty; otherwise [`verify_consistency`].
pub fn extends(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ProofError> {
    if old == 0 && new > 0 {
        if !proof.is_empty() {
            return Err(ProofError::ProofLength {
                got: proof.len(),
                want: 0,
            });
        }
        return if old_root == &empty_root() {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if old == 0 && new == 0 {
        return if proof.is_empty() && old_root == new_root && old_root == &empty_root() {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    verify_consistency(old, new, proof, old_root, new_root)
}

/// An in-memory tree that keeps every complete subtree hash: appends in amortized O(1)
/// hashes, serves [`NodeSource`], and hence proofs and roots for every size up to its own.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    /// `levels[l][i]` is node `(l, i)`.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree over these leaf hashes.
    pub fn from_leaves(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut tree = Self::new();
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends a leaf hash, completing every subtree it closes.
    pub fn push(&mut self, leaf: Hash) {
        let mut level = 0;
        let mut hash = leaf;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(hash);
            let n = self.levels[level].len();
            if n % 2 == 1 {
                break;
            }
            hash = node_hash(&self.levels[level][n - 2], &self.levels[level][n - 1]);
            level += 1;
        }
    }

    /// The complete-subtree hashes of level `level` (node `(level, i)` at position `i`).
    pub fn level(&self, level: u8) -> &[Hash] {
        self.levels
            .get(level as usize)
            .map_or(&[], |v| v.as_slice())
    }

    /// The root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        tree_root(self, size)
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        inclusion_proof(self, index, size)
    }

    /// The consistency proof from size `old` to size `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(new)?;
        consistency_proof(self, old, new)
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.size() {
            return Err(ProofError::IndexOutOfRange {
                index: size,
                size: self.size(),
            });
        }
        Ok(())
    }
}

impl NodeSource for MemoryTree {
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        self.levels
            .get(level as usize)
            .and_then(|l| l.get(usize::try_from(index).ok()?))
            .copied()
            .ok_or_else(|| ProofError::MissingNode {
                level,
                index,
                reason: "beyond the tree".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(n: u64) -> (Vec<Hash>, MemoryTree) {
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let t = MemoryTree::from_leaves(leaves.iter().copied());
        (leaves, t)
    }

    #[test]
    fn memory_tree_roots_match_direct_computation() {
        let (leaves, t) = tree(70);
        for size in 0..=70u64 {
            assert_eq!(
                t.root(size).unwrap(),
                root_of_leaves(&leaves[..size as usize])
            );
        }
    }

    #[test]
    fn proofs_verify_for_all_small_trees() {
        let (leaves, t) = tree(40);
        for size in 1..=40u64 {
            let root = t.root(size).unwrap();
            for index in 0..size {
                let proof = t.inclusion_proof(index, size).unwrap();
                verify_inclusion(index, size, &leaves[index as usize], &proof, &root).unwrap();
            }
            for old in 0..=size {
                let proof = t.consistency_proof(old, size).unwrap();
                let old_root = t.root(old).unwrap();
                extends(old, size, &proof, &old_root, &root).unwrap();
                assert_eq!(
                    old == 0,
                    verify_consistency(old, size, &proof, &old_root, &root).is_err()
                );
            }
        }
    }

    #[test]
    fn split_point_is_largest_smaller_power_of_two() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
    }

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        let (_, t) = tree(3);
        assert!(t.inclusion_proof(3, 3).is_err());
        assert!(t.root(4).is_err());
        assert!(t.consistency_proof(2, 1).is_err());
        assert!(verify_inclusion(0, 0, &[0; 32], &[], &[0; 32]).is_err());
        assert!(verify_inclusion(u64::MAX, 1, &[0; 32], &[], &[0; 32]).is_err());
    }
}
