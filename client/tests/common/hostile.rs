//! Hostile things to put where clearcount keeps one of its small files. Shared by the unit
//! tests of `src/support.rs` (which include this file with `#[path]`) and
//! `tests/hostile_small_files.rs`.

use std::fs;
use std::path::Path;
use std::process::Command;

/// What is found where a small file belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thing {
    /// A FIFO (opening it for reading blocks until a writer comes).
    Fifo,
    /// A symlink to a regular file outside.
    Symlink,
    /// A symlink to a path outside that does not exist.
    Dangling,
    /// A directory (not empty).
    Directory,
    /// A 2 GiB sparse regular file.
    Sparse,
}

/// Every [`Thing`].
pub const THINGS: [Thing; 5] = [
    Thing::Fifo,
    Thing::Symlink,
    Thing::Dangling,
    Thing::Directory,
    Thing::Sparse,
];

/// Puts `thing` at `path` (creating its directory). Symlinks point to `outside`, which then
/// holds `contents` ([`Thing::Symlink`]) or does not exist ([`Thing::Dangling`]).
pub fn plant(thing: Thing, path: &Path, outside: &Path, contents: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    match thing {
        Thing::Fifo => {
            let st = Command::new("mkfifo").arg(path).status().unwrap();
            assert!(st.success(), "mkfifo {}", path.display());
        }
        Thing::Symlink => {
            fs::write(outside, contents).unwrap();
            std::os::unix::fs::symlink(outside, path).unwrap();
        }
        Thing::Dangling => std::os::unix::fs::symlink(outside, path).unwrap(),
        Thing::Directory => fs::create_dir_all(path.join("inside")).unwrap(),
        Thing::Sparse => fs::File::create(path).unwrap().set_len(2 << 30).unwrap(),
    }
}

/// Asserts that `outside` still holds `contents` ([`Thing::Symlink`]: nothing was written
/// through the link) or still does not exist (otherwise: nothing created its target).
pub fn assert_outside_untouched(thing: Thing, outside: &Path, contents: &[u8], what: &str) {
    match thing {
        Thing::Symlink => assert_eq!(fs::read(outside).unwrap(), contents, "{what}"),
        _ => assert!(
            fs::symlink_metadata(outside).is_err(),
            "{what}: created outside"
        ),
    }
}
