//! The only module with `unsafe`: mapping counter files into memory as arrays of atomic words,
//! and the cached pointer a [`Counter`](crate::Counter) keeps to its word.
//!
//! Mappings are never unmapped: when a file grows or the week changes, the old mapping is kept
//! (it costs address space only, and at most a few per process per week), so every reference
//! handed out stays valid for the rest of the process.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// Maps the first `words` words of `file` read-write and shared, for the rest of the process.
///
/// The caller must have checked that the file is at least `words * 8` bytes long; clearcount
/// never shrinks a counter file (old files are unlinked, which keeps the pages alive).
pub(crate) fn map_words(file: &File, words: usize) -> io::Result<&'static [AtomicU64]> {
    if words == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
    }
    let bytes = words
        .checked_mul(8)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "mapping too large"))?;
    let map = memmap2::MmapOptions::new().len(bytes).map_raw(file)?;
    let ptr = map.as_mut_ptr();
    if ptr.is_null() || (ptr as usize) % std::mem::align_of::<AtomicU64>() != 0 {
        return Err(io::Error::other("misaligned mapping"));
    }
    // Never unmapped: the words must outlive every reference given out.
    std::mem::forget(map);
    // SAFETY:
    // - `ptr` points to a live mapping of exactly `bytes = words * 8` bytes, and the mapping is
    //   never unmapped (the `MmapRaw` was forgotten above), so the memory stays valid for
    //   `'static`.
    // - `ptr` is non-null and aligned for `AtomicU64` (checked above; mappings are page aligned).
    // - `AtomicU64` has the size and alignment of `u64` and every bit pattern is a valid value, so
    //   whatever the file holds is a valid `[AtomicU64]`.
    // - The memory is only ever accessed through atomic operations: by this process through the
    //   returned slice (shared references to atomics allow concurrent mutation), and by other
    //   processes through the same code. Nothing in this process creates a `&mut` to it.
    // - The mapping is shared (MAP_SHARED) and writable; the file was opened read-write.
    // Residual risk, documented: another party truncating the file while it is mapped makes
    // accesses fault (SIGBUS); clearcount itself never truncates a counter file.
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<AtomicU64>().cast_const(), words) })
}

/// A cached reference to a counter's word in a mapping, or nothing.
pub(crate) struct CellSlot(AtomicPtr<AtomicU64>);

impl CellSlot {
    /// An empty slot.
    pub(crate) const fn new() -> CellSlot {
        CellSlot(AtomicPtr::new(std::ptr::null_mut()))
    }

    /// The cached word, if any.
    #[inline(always)]
    pub(crate) fn get(&self) -> Option<&'static AtomicU64> {
        let p = self.0.load(Ordering::Acquire);
        // SAFETY: the only non-null values ever stored are by `set`, which takes a
        // `&'static AtomicU64`; such a reference is valid for the rest of the process (mappings
        // are never unmapped, see `map_words`), and atomics may be shared between threads.
        unsafe { p.cast_const().as_ref() }
    }

    /// Caches `cell`.
    pub(crate) fn set(&self, cell: &'static AtomicU64) {
        self.0
            .store(std::ptr::from_ref(cell).cast_mut(), Ordering::Release);
    }

    /// Forgets the cached word (the week changed).
    pub(crate) fn clear(&self) {
        self.0.store(std::ptr::null_mut(), Ordering::Release);
    }
}
