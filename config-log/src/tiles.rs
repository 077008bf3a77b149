//! C2SP tlog-tiles with tile height 8: tile coordinates and paths, hash tiles and entry
//! bundles.
//!
//! A hash tile at level `L` and index `N` holds the hashes of tree level `8L`, nodes
//! `256N .. 256N + W`; a full tile has `W = 256`, a partial one (`.p/W`) fewer. Entry bundles
//! (`tile/entries/N`) hold entries `256N ..`, each as a big-endian `u16` length and the bytes.
//! Indexes are written in groups of three digits, all but the last prefixed with `x`.
//!
//! ```
//! use clearcount_config_log::tiles::Tile;
//!
//! let t = Tile::hash(0, 1234067, 89);
//! assert_eq!(t.path(), "tile/0/x001/x234/067.p/89");
//! assert_eq!(Tile::parse_path("tile/0/x001/x234/067.p/89")?, t);
//! assert_eq!(Tile::entries_for_index(300, 301).path(), "tile/entries/001.p/45");
//! # Ok::<(), clearcount_config_log::tiles::TileError>(())
//! ```

use crate::merkle::{Hash, node_hash};

/// Tile height: each tile spans 8 tree levels.
pub const HEIGHT: u8 = 8;
/// Hashes (or entries) in a full tile.
pub const WIDTH: u64 = 1 << HEIGHT;
/// Largest entry an entry bundle can hold.
pub const MAX_ENTRY: usize = u16::MAX as usize;

/// Why a tile path or tile content was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// The path is not a tile path.
    #[error("malformed tile path {path:?}: {reason}")]
    Path {
        /// The path.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The tile's content does not have the shape its path says.
    #[error("malformed tile {path}: {reason}")]
    Content {
        /// The tile path.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Which kind of tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileKind {
    /// A hash tile of this tile level (tree level `8 * level`).
    Hash(u8),
    /// An entry bundle.
    Entries,
}

/// A tile: kind, index and width (`1..=256`; 256 is a full tile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    /// Hash tile level, or entry bundle.
    pub kind: TileKind,
    /// Tile index within its level.
    pub index: u64,
    /// Number of hashes or entries (`1..=256`).
    pub width: u16,
}

impl Tile {
    /// A hash tile.
    pub fn hash(level: u8, index: u64, width: u16) -> Tile {
        Tile {
            kind: TileKind::Hash(level),
            index,
            width,
        }
    }

    /// An entry bundle.
    pub fn entries(index: u64, width: u16) -> Tile {
        Tile {
            kind: TileKind::Entries,
            index,
            width,
        }
    }

    /// The entry bundle holding entry `index` in a log of `size` entries (`index < size`).
    pub fn entries_for_index(index: u64, size: u64) -> Tile {
        let n = index / WIDTH;
        Tile::entries(n, width_at(size, n))
    }

    /// Whether this is a full tile.
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == WIDTH
    }

    /// The tile's path, e.g. `tile/0/x001/234.p/5` or `tile/entries/000`.
    pub fn path(&self) -> String {
        let level = match self.kind {
            TileKind::Hash(l) => l.to_string(),
            TileKind::Entries => "entries".to_string(),
        };
        format!("tile/{level}/{}", n_with_suffix(self.index, self.width))
    }

    /// Parses a tile path (strict: canonical index, `0 < W < 256`, level `0..=63`).
    pub fn parse_path(path: &str) -> Result<Tile, TileError> {
        let err = |reason| TileError::Path {
            path: path.to_string(),
            reason,
        };
        let rest = path.strip_prefix("tile/").ok_or(err("not under tile/"))?;
        let (level, rest) = rest.split_once('/').ok_or(err("no index"))?;
        let kind = if level == "entries" {
            TileKind::Entries
        } else {
            let l = parse_level(level).ok_or(err("bad level"))?;
            TileKind::Hash(l)
        };
        let (index, width) = parse_n_suffix(rest).map_err(err)?;
        Ok(Tile { kind, index, width })
    }
}

/// Width of tile `n` at a level that has `count` complete nodes (or entries).
fn width_at(count: u64, n: u64) -> u16 {
    let start = n.saturating_mul(WIDTH);
    count.saturating_sub(start).min(WIDTH) as u16
}

fn parse_level(s: &str) -> Option<u8> {
    let canonical = !s.is_empty()
        && s.len() <= 2
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    let l: u8 = if canonical { s.parse().ok()? } else { None? };
    (l <= 63).then_some(l)
}

/// Encodes a tile index as x-prefixed groups of three digits: `1234067` is `x001/x234/067`.
pub fn encode_index(n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    let mut rest = n / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// The index part of a tile path with its `.p/W` suffix when `width < 256`.
pub fn n_with_suffix(index: u64, width: u16) -> String {
    if u64::from(width) >= WIDTH {
        encode_index(index)
    } else {
        format!("{}.p/{}", encode_index(index), width)
    }
}

/// Parses the index part of a tile path (after `tile/L/`): the index and the width (256 for
/// a full tile). Strict: every group three digits, all but the last `x`-prefixed, the index
/// canonical and within `u64`, `0 < W < 256`.
pub fn parse_n_suffix(s: &str) -> Result<(u64, u16), &'static str> {
    let (n_part, width) = match s.split_once(".p/") {
        Some((n, w)) => {
            let canonical = !w.is_empty()
                && w.len() <= 3
                && w.bytes().all(|b| b.is_ascii_digit())
                && !w.starts_with('0');
            if !canonical {
                return Err("bad partial width");
            }
            let w: u16 = w.parse().map_err(|_| "bad partial width")?;
            if u64::from(w) >= WIDTH {
                return Err("partial width must be below 256");
            }
            (n, w)
        }
        None => (s, WIDTH as u16),
    };
    let groups: Vec<&str> = n_part.split('/').collect();
    let mut n: u64 = 0;
    for (i, g) in groups.iter().enumerate() {
        let digits = if i + 1 < groups.len() {
            g.strip_prefix('x').ok_or("index group without x prefix")?
        } else {
            g
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("index group is not three digits");
        }
        let d: u64 = digits.parse().map_err(|_| "bad index group")?;
        n = n
            .checked_mul(1000)
            .and_then(|n| n.checked_add(d))
            .ok_or("index too large")?;
    }
    if encode_index(n) != n_part {
        return Err("index not in canonical form");
    }
    Ok((n, width))
}

/// Every hash tile of a tree of `size` entries, level by level (full tiles and, where a
/// level ends mid-tile, the partial tile of that width).
pub fn hash_tiles_for_size(size: u64) -> Vec<Tile> {
    tiles_for_size_with_height(HEIGHT, size)
}

/// Hash tiles of the tree of `size` at any tile height (for cross-checking Go's tests,
/// which use other heights). Widths are relative to `2^height`.
#[doc(hidden)]
pub fn tiles_for_size_with_height(height: u8, size: u64) -> Vec<Tile> {
    let width = 1u64 << height;
    let mut out = Vec::new();
    let mut level = 0u8;
    loop {
        let shift = u32::from(level) * u32::from(height);
        if shift >= 64 {
            break;
        }
        let count = size >> shift;
        if count == 0 {
            break;
        }
        for n in 0..count.div_ceil(width) {
            let w = (count - n * width).min(width);
            out.push(Tile::hash(level, n, w as u16));
        }
        level += 1;
    }
    out
}

/// The hash tiles a tree of `new` entries has that one of `old` entries has not (what an
/// append from `old` to `new` writes).
pub fn new_hash_tiles(old: u64, new: u64) -> Vec<Tile> {
    new_tiles_with_height(HEIGHT, old, new)
}

/// [`new_hash_tiles`] at any tile height.
#[doc(hidden)]
pub fn new_tiles_with_height(height: u8, old: u64, new: u64) -> Vec<Tile> {
    let before = tiles_for_size_with_height(height, old);
    tiles_for_size_with_height(height, new)
        .into_iter()
        .filter(|t| !before.contains(t))
        .collect()
}

/// The hash tile (of a tree of `size`) that holds node `(level, index)`, and the position
/// of the node inside that tile at internal level `level % 8`.
pub fn tile_for_node(level: u8, index: u64, size: u64) -> (Tile, u8, u64) {
    let tile_level = level / HEIGHT;
    let r = level % HEIGHT;
    let per_tile = WIDTH >> r;
    let n = index / per_tile;
    let count = size >> (u32::from(tile_level) * u32::from(HEIGHT));
    (
        Tile::hash(tile_level, n, width_at(count, n)),
        r,
        index % per_tile,
    )
}

/// Parses a hash tile of `width` hashes.
pub fn parse_hash_tile(tile: &Tile, data: &[u8]) -> Result<Vec<Hash>, TileError> {
    if data.len() != usize::from(tile.width) * 32 {
        return Err(TileError::Content {
            path: tile.path(),
            reason: format!(
                "{} bytes, expected {} hashes of 32 bytes",
                data.len(),
                tile.width
            ),
        });
    }
    Ok(data
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// Encodes hashes as a hash tile.
pub fn encode_hash_tile(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

/// Parses an entry bundle of exactly `tile.width` entries, nothing after them.
pub fn parse_entry_bundle(tile: &Tile, data: &[u8]) -> Result<Vec<Vec<u8>>, TileError> {
    let mut out = Vec::with_capacity(usize::from(tile.width));
    walk_entry_bundle(tile, data, |_, e| out.push(e.to_vec()))?;
    Ok(out)
}

/// Entry `at` (counted from the bundle's first entry) of an entry bundle, after checking the
/// whole bundle as [`parse_entry_bundle`] does, without copying the other entries.
pub fn entry_in_bundle<'a>(tile: &Tile, data: &'a [u8], at: usize) -> Result<&'a [u8], TileError> {
    let mut found = None;
    walk_entry_bundle(tile, data, |i, e| {
        if i == at {
            found = Some(e);
        }
    })?;
    found.ok_or_else(|| TileError::Content {
        path: tile.path(),
        reason: format!("no entry {at} in a bundle of {}", tile.width),
    })
}

/// Calls `each(i, entry)` for the entries of a bundle, then checks that there were exactly
/// `tile.width` of them and nothing after them.
fn walk_entry_bundle<'a>(
    tile: &Tile,
    data: &'a [u8],
    mut each: impl FnMut(usize, &'a [u8]),
) -> Result<(), TileError> {
    let err = |reason: String| TileError::Content {
        path: tile.path(),
        reason,
    };
    let width = usize::from(tile.width);
    let mut count = 0;
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err(err("truncated entry length".into()));
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        if rest.len() < len {
            return Err(err(format!("entry {count} truncated")));
        }
        let (entry, after) = rest.split_at(len);
        rest = after;
        if count == width {
            return Err(err(format!("more than {width} entries")));
        }
        each(count, entry);
        count += 1;
    }
    if count != width {
        return Err(err(format!("{count} entries, expected {width}")));
    }
    Ok(())
}

/// Encodes entries as an entry bundle; `None` if an entry is longer than 65,535 bytes.
pub fn encode_entry_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for e in entries {
        let e = e.as_ref();
        let len = u16::try_from(e.len()).ok()?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Some(out)
}

/// A hash tile with the hashes of its internal levels: `levels[0]` are the tile's hashes,
/// `levels[r]` the complete nodes `r` levels above them (up to 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileTree {
    levels: Vec<Vec<Hash>>,
}

impl TileTree {
    /// Builds the internal levels over a tile's hashes.
    pub fn new(hashes: Vec<Hash>) -> TileTree {
        let mut levels = vec![hashes];
        while levels.len() < usize::from(HEIGHT) {
            let below = &levels[levels.len() - 1];
            if below.len() < 2 {
                break;
            }
            let above: Vec<Hash> = below
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
            levels.push(above);
        }
        TileTree { levels }
    }

    /// The tile's own hashes.
    pub fn hashes(&self) -> &[Hash] {
        &self.levels[0]
    }

    /// The node `r` levels above the tile's hashes at position `pos`, if complete.
    pub fn node(&self, r: u8, pos: u64) -> Option<Hash> {
        self.levels
            .get(usize::from(r))?
            .get(usize::try_from(pos).ok()?)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_encoding() {
        assert_eq!(encode_index(0), "000");
        assert_eq!(encode_index(1000), "x001/000");
        assert_eq!(encode_index(455667), "x455/667");
        assert_eq!(parse_n_suffix("x001/000"), Ok((1000, 256)));
        assert!(parse_n_suffix("x000/001").is_err());
        assert!(parse_n_suffix("001.p/0").is_err());
        assert!(parse_n_suffix("001.p/05").is_err());
    }

    #[test]
    fn tiles_for_size_counts_levels() {
        assert!(hash_tiles_for_size(0).is_empty());
        assert_eq!(hash_tiles_for_size(1), vec![Tile::hash(0, 0, 1)]);
        assert_eq!(
            hash_tiles_for_size(300),
            vec![
                Tile::hash(0, 0, 256),
                Tile::hash(0, 1, 44),
                Tile::hash(1, 0, 1)
            ]
        );
    }

    #[test]
    fn node_location() {
        // Leaf 300 of a tree of 301: tile 0/1, width 45, position 44.
        assert_eq!(tile_for_node(0, 300, 301), (Tile::hash(0, 1, 45), 0, 44));
        // Node (9, 1) = leaves 512..1024, in a tree of 1024: tile 1/0 width 4, r=1, pos 1.
        assert_eq!(tile_for_node(9, 1, 1024), (Tile::hash(1, 0, 4), 1, 1));
    }

    #[test]
    fn bundles_round_trip_and_reject_garbage() {
        let entries = vec![b"a".to_vec(), Vec::new(), vec![7; 300]];
        let data = encode_entry_bundle(&entries).unwrap();
        let tile = Tile::entries(0, 3);
        assert_eq!(parse_entry_bundle(&tile, &data).unwrap(), entries);
        assert!(parse_entry_bundle(&Tile::entries(0, 2), &data).is_err());
        assert!(parse_entry_bundle(&tile, &data[..data.len() - 1]).is_err());
        let mut longer = data.clone();
        longer.push(0);
        assert!(parse_entry_bundle(&tile, &longer).is_err());
        assert!(encode_entry_bundle(&[vec![0u8; 65536]]).is_none());
    }
}
