//! The counter-file format (version 1) and a parser that never trusts what it reads.
//!
//! A counter file is an array of 64-bit words in native byte order (every word is accessed
//! atomically while the file is mapped):
//!
//! | words | content |
//! |---|---|
//! | 0 | magic, the bytes `clrcount` |
//! | 1 | format version (1) |
//! | 2 | header length in words (64) |
//! | 3 | word index of the first hash table (64) |
//! | 4 | allocation pointer: word index of the first free word (bump allocator) |
//! | 5..8 | reserved (0) |
//! | 8..64 | metadata: program, version, os, arch, week, each a length byte and UTF-8 bytes |
//!
//! A hash table at word `t` holds `[next table, slot count, used slots, slots...]`; a slot is 0
//! (empty) or the word index of a record. Tables are open-addressing with linear probing on the
//! FNV-1a hash of the name. When the last table is three quarters full a table twice as large is
//! allocated and linked from it; tables are never rehashed, so other processes can keep using
//! the records they already hold. A record is `[value, name length, name bytes...]`.
//!
//! Several processes may insert the same name into different tables at the same moment; a
//! reader therefore sums all records of a name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::Week;

/// The magic word: the bytes `clrcount` in file order.
pub const MAGIC: u64 = u64::from_ne_bytes(*b"clrcount");
/// The format version written by this library.
pub const VERSION: u64 = 1;
/// Header length in words.
pub const HEADER_WORDS: usize = 64;
/// Header word: format version.
pub const W_VERSION: usize = 1;
/// Header word: header length.
pub const W_HEADER: usize = 2;
/// Header word: first table.
pub const W_TABLE0: usize = 3;
/// Header word: allocation pointer.
pub const W_ALLOC: usize = 4;
/// First metadata word.
pub const W_META: usize = 8;
/// Metadata bytes available.
pub const META_BYTES: usize = (HEADER_WORDS - W_META) * 8;
/// Size of a new file, in words (16 KiB).
pub const INITIAL_WORDS: usize = 2048;
/// Largest file accepted or grown to, in words (16 MiB).
pub const MAX_WORDS: usize = 2 * 1024 * 1024;
/// Slots of the first table.
pub const INITIAL_SLOTS: usize = 256;
/// Smallest accepted table.
pub const MIN_SLOTS: usize = 16;
/// Largest table.
pub const MAX_SLOTS: usize = 1 << 18;
/// Most tables in a chain.
pub const MAX_TABLES: usize = 16;
/// Longest counter name in bytes.
pub const MAX_NAME: usize = 255;
/// Table header words: next, slots, used.
pub const TABLE_HEADER: usize = 3;
/// Record header words: value, name length.
pub const RECORD_HEADER: usize = 2;

/// Why a counter file is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Length is not a whole number of words, too small or too large.
    #[error("impossible file length ({0} bytes)")]
    Length(usize),
    /// Not a counter file.
    #[error("wrong magic")]
    Magic,
    /// A counter file written on a machine of the other byte order.
    #[error("counter file of the other byte order")]
    ForeignEndian,
    /// A format version this library does not know.
    #[error("unknown format version {0}")]
    Version(u64),
    /// The header is inconsistent.
    #[error("corrupt header: {0}")]
    Header(&'static str),
    /// The metadata is malformed.
    #[error("corrupt metadata: {0}")]
    Meta(&'static str),
    /// The tables or records are inconsistent.
    #[error("corrupt table: {0}")]
    Table(&'static str),
}

/// What a counter file is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Meta {
    /// Program name.
    pub program: String,
    /// Program version.
    pub version: String,
    /// `std::env::consts::OS` of the recording process.
    pub os: String,
    /// `std::env::consts::ARCH` of the recording process.
    pub arch: String,
    /// The week the counts belong to.
    pub week: Week,
}

/// A parsed counter file: its metadata and the total of every counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// What the file is about.
    pub meta: Meta,
    /// Counter name (`name` or `name:label`) to count.
    pub counters: BTreeMap<String, u64>,
}

/// Random access to the words of a counter file.
pub trait Words {
    /// Number of words.
    fn len(&self) -> usize;
    /// Word `i`, or `None` out of range.
    fn word(&self, i: usize) -> Option<u64>;
    /// Whether there are no words.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The words of a byte buffer (a file read into memory). The length must be a multiple of 8.
pub struct ByteWords<'a>(pub &'a [u8]);

impl Words for ByteWords<'_> {
    fn len(&self) -> usize {
        self.0.len() / 8
    }
    fn word(&self, i: usize) -> Option<u64> {
        let start = i.checked_mul(8)?;
        let b = self.0.get(start..start.checked_add(8)?)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_ne_bytes(a))
    }
}

impl Words for [AtomicU64] {
    fn len(&self) -> usize {
        <[AtomicU64]>::len(self)
    }
    fn word(&self, i: usize) -> Option<u64> {
        self.get(i).map(|w| w.load(Ordering::Acquire))
    }
}

/// FNV-1a, 64 bits.
pub fn hash(name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Words needed by a record for a name of `len` bytes.
pub fn record_words(len: usize) -> usize {
    RECORD_HEADER + len.div_ceil(8)
}

/// Reads `len` bytes packed into words starting at word `start`.
pub fn read_bytes<W: Words + ?Sized>(w: &W, start: usize, len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut i = start;
    while out.len() < len {
        let bytes = w.word(i)?.to_ne_bytes();
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&bytes[..take]);
        i += 1;
    }
    Some(out)
}

/// Packs bytes into words (zero padded).
pub fn pack_bytes(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a[..c.len()].copy_from_slice(c);
            u64::from_ne_bytes(a)
        })
        .collect()
}

fn meta_bytes(meta: &Meta) -> Option<Vec<u8>> {
    let week = meta.week.to_string();
    let mut out = Vec::with_capacity(META_BYTES);
    for s in [
        meta.program.as_str(),
        meta.version.as_str(),
        meta.os.as_str(),
        meta.arch.as_str(),
        week.as_str(),
    ] {
        let len = u8::try_from(s.len()).ok()?;
        if len == 0 {
            return None;
        }
        out.push(len);
        out.extend_from_slice(s.as_bytes());
    }
    (out.len() <= META_BYTES).then_some(out)
}

/// Whether `meta` fits in a header.
pub fn meta_fits(meta: &Meta) -> bool {
    meta_bytes(meta).is_some()
}

/// The words of a new, empty counter file for `meta`.
pub fn initial_words(meta: &Meta) -> Option<Vec<u64>> {
    let mut w = vec![0u64; INITIAL_WORDS];
    w[0] = MAGIC;
    w[W_VERSION] = VERSION;
    w[W_HEADER] = HEADER_WORDS as u64;
    w[W_TABLE0] = HEADER_WORDS as u64;
    w[W_ALLOC] = (HEADER_WORDS + TABLE_HEADER + INITIAL_SLOTS) as u64;
    for (i, word) in pack_bytes(&meta_bytes(meta)?).into_iter().enumerate() {
        w[W_META + i] = word;
    }
    w[HEADER_WORDS + 1] = INITIAL_SLOTS as u64;
    Some(w)
}

/// Serializes words to file bytes.
pub fn words_to_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

fn idx(v: u64) -> Option<usize> {
    usize::try_from(v).ok()
}

/// Checks the header and returns the metadata. Never panics.
pub fn parse_header<W: Words + ?Sized>(w: &W) -> Result<Meta, FormatError> {
    let len = w.len();
    if !(HEADER_WORDS + TABLE_HEADER + MIN_SLOTS..=MAX_WORDS).contains(&len) {
        return Err(FormatError::Length(len.saturating_mul(8)));
    }
    let magic = w.word(0).ok_or(FormatError::Magic)?;
    if magic != MAGIC {
        return Err(if magic == MAGIC.swap_bytes() {
            FormatError::ForeignEndian
        } else {
            FormatError::Magic
        });
    }
    let version = w.word(W_VERSION).unwrap_or(0);
    if version != VERSION {
        return Err(FormatError::Version(version));
    }
    if w.word(W_HEADER) != Some(HEADER_WORDS as u64) {
        return Err(FormatError::Header("header length"));
    }
    if w.word(W_TABLE0) != Some(HEADER_WORDS as u64) {
        return Err(FormatError::Header("first table"));
    }
    let alloc = w
        .word(W_ALLOC)
        .and_then(idx)
        .ok_or(FormatError::Header("alloc"))?;
    // The pointer may run past the end of the file after a crash between allocating and
    // growing, but never beyond the largest file plus what concurrent allocators can add.
    if !(HEADER_WORDS + TABLE_HEADER + MIN_SLOTS..=MAX_WORDS + 64 * 1024).contains(&alloc) {
        return Err(FormatError::Header("allocation pointer out of range"));
    }
    let raw = read_bytes(w, W_META, META_BYTES).ok_or(FormatError::Meta("short"))?;
    let mut fields: Vec<String> = Vec::with_capacity(5);
    let mut pos = 0usize;
    for _ in 0..5 {
        let n = usize::from(*raw.get(pos).ok_or(FormatError::Meta("short"))?);
        if n == 0 {
            return Err(FormatError::Meta("empty field"));
        }
        let b = raw
            .get(pos + 1..pos + 1 + n)
            .ok_or(FormatError::Meta("short"))?;
        let s = std::str::from_utf8(b).map_err(|_| FormatError::Meta("not UTF-8"))?;
        if s.chars().any(char::is_control) {
            return Err(FormatError::Meta("control character"));
        }
        fields.push(s.to_string());
        pos += 1 + n;
    }
    let week = Week::parse(&fields[4]).ok_or(FormatError::Meta("week"))?;
    let mut it = fields.into_iter();
    let mut next = || it.next().unwrap_or_default();
    Ok(Meta {
        program: next(),
        version: next(),
        os: next(),
        arch: next(),
        week,
    })
}

/// Parses a whole counter file: header, every table and every record. Never panics, and
/// rejects anything inconsistent instead of guessing.
pub fn parse<W: Words + ?Sized>(w: &W) -> Result<Snapshot, FormatError> {
    let meta = parse_header(w)?;
    let len = w.len();
    let mut counters: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen_records: BTreeSet<usize> = BTreeSet::new();
    let mut t = HEADER_WORDS;
    let mut tables = 0usize;
    loop {
        tables += 1;
        if tables > MAX_TABLES {
            return Err(FormatError::Table("too many tables"));
        }
        let next = w.word(t).and_then(idx).ok_or(FormatError::Table("short"))?;
        let slots = w
            .word(t + 1)
            .and_then(idx)
            .ok_or(FormatError::Table("short"))?;
        if !slots.is_power_of_two() || !(MIN_SLOTS..=MAX_SLOTS).contains(&slots) {
            return Err(FormatError::Table("slot count"));
        }
        let end = t + TABLE_HEADER + slots;
        if end > len {
            return Err(FormatError::Table("table past the end"));
        }
        let used = w
            .word(t + 2)
            .and_then(idx)
            .ok_or(FormatError::Table("short"))?;
        if used > slots {
            return Err(FormatError::Table("used count"));
        }
        for s in t + TABLE_HEADER..end {
            let r = w.word(s).and_then(idx).ok_or(FormatError::Table("short"))?;
            if r == 0 {
                continue;
            }
            if r < HEADER_WORDS || r.saturating_add(RECORD_HEADER) > len {
                return Err(FormatError::Table("record out of range"));
            }
            if !seen_records.insert(r) {
                return Err(FormatError::Table("record in two slots"));
            }
            let n = w
                .word(r + 1)
                .and_then(idx)
                .ok_or(FormatError::Table("short"))?;
            if n == 0 || n > MAX_NAME || r + record_words(n) > len {
                return Err(FormatError::Table("name length"));
            }
            let name = read_bytes(w, r + RECORD_HEADER, n).ok_or(FormatError::Table("short"))?;
            let name = String::from_utf8(name).map_err(|_| FormatError::Table("name not UTF-8"))?;
            let value = w.word(r).ok_or(FormatError::Table("short"))?;
            let e = counters.entry(name).or_insert(0);
            *e = e.saturating_add(value);
        }
        if next == 0 {
            break;
        }
        if next < end || next >= len {
            return Err(FormatError::Table("bad next table"));
        }
        t = next;
    }
    Ok(Snapshot { meta, counters })
}

/// Parses a counter file read into memory.
pub fn parse_bytes(bytes: &[u8]) -> Result<Snapshot, FormatError> {
    if bytes.len() % 8 != 0 {
        return Err(FormatError::Length(bytes.len()));
    }
    parse(&ByteWords(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn meta() -> Meta {
        Meta {
            program: "greet".into(),
            version: "1.2.3".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            week: Week::parse("2026-11-16").unwrap(),
        }
    }

    #[test]
    fn empty_file_round_trips() {
        let w = initial_words(&meta()).unwrap();
        let bytes = words_to_bytes(&w);
        assert_eq!(&bytes[..8], b"clrcount");
        let s = parse_bytes(&bytes).unwrap();
        assert_eq!(s.meta, meta());
        assert!(s.counters.is_empty());
    }

    #[test]
    fn records_are_read_and_duplicates_summed() {
        let mut w = initial_words(&meta()).unwrap();
        let mut alloc = w[W_ALLOC] as usize;
        for (slot, name, value) in [
            (3usize, "runs", 5u64),
            (9, "runs", 7),
            (11, "engine:pcre2", u64::MAX),
        ] {
            let r = alloc;
            w[r] = value;
            w[r + 1] = name.len() as u64;
            for (i, x) in pack_bytes(name.as_bytes()).into_iter().enumerate() {
                w[r + 2 + i] = x;
            }
            alloc += record_words(name.len());
            w[HEADER_WORDS + TABLE_HEADER + slot] = r as u64;
        }
        let s = parse_bytes(&words_to_bytes(&w)).unwrap();
        assert_eq!(s.counters["runs"], 12);
        assert_eq!(s.counters["engine:pcre2"], u64::MAX);
    }

    #[test]
    fn damage_is_detected() {
        let good = words_to_bytes(&initial_words(&meta()).unwrap());
        assert_eq!(parse_bytes(&good[..good.len() - 8]).map(|_| ()), Ok(()));
        assert!(matches!(
            parse_bytes(&good[..100]),
            Err(FormatError::Length(_))
        ));
        assert!(matches!(
            parse_bytes(&good[..good.len() - 3]),
            Err(FormatError::Length(_))
        ));
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(parse_bytes(&b), Err(FormatError::Magic));
        let mut b = good.clone();
        b[..8].reverse();
        assert_eq!(parse_bytes(&b), Err(FormatError::ForeignEndian));
        let mut b = good.clone();
        b[HEADER_WORDS * 8 + 8..HEADER_WORDS * 8 + 16].copy_from_slice(&u64::MAX.to_ne_bytes());
        assert!(matches!(parse_bytes(&b), Err(FormatError::Table(_))));
        let mut b = good.clone();
        b[W_ALLOC * 8..W_ALLOC * 8 + 8].copy_from_slice(&(1u64 << 60).to_ne_bytes());
        assert!(matches!(parse_bytes(&b), Err(FormatError::Header(_))));
        // A slot pointing into nowhere.
        let mut b = good;
        let s = (HEADER_WORDS + TABLE_HEADER) * 8;
        b[s..s + 8].copy_from_slice(&(1u64 << 40).to_ne_bytes());
        assert!(matches!(parse_bytes(&b), Err(FormatError::Table(_))));
    }
}
