//! Damaged, foreign and hostile counter files and directories: the host tool keeps running
//! with its own output and exit code, clearcount prints nothing and never trusts bad files.
// The example host tool `greet` needs the `cli` feature.
#![cfg(feature = "cli")]

mod common;

use std::fs;
use std::path::Path;

use common::{WEEK, assert_greeted, count, greet, greet_file};

/// A valid counter file of greet with a few counters, as bytes.
fn valid_file() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    assert_greeted(&greet(dir.path(), &["alice"]));
    fs::read(greet_file(dir.path())).unwrap()
}

fn set_aside_files(dir: &Path) -> usize {
    fs::read_dir(dir.join("local"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".corrupt"))
        .count()
}

/// Puts `bytes` where greet's counter file goes, runs greet, and checks that the bad file was
/// set aside and a fresh one counts this run.
fn check_replaced(what: &str, bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = greet_file(dir.path());
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, bytes).unwrap();
    let out = greet(dir.path(), &["alice"]);
    assert_greeted(&out);
    assert_eq!(set_aside_files(dir.path()), 1, "{what}: set aside");
    assert_eq!(
        count(dir.path(), WEEK, "greet", "invocations"),
        1,
        "{what}: fresh file"
    );
    // The host tool's error path is untouched too.
    let out = greet(dir.path(), &[""]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "greet: empty name\n");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(count(dir.path(), WEEK, "greet", "invocations"), 2, "{what}");
}

fn put_word(b: &mut [u8], i: usize, v: u64) {
    b[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
}

#[test]
fn damaged_files_are_set_aside() {
    let good = valid_file();
    assert_eq!(good.len(), 16 * 1024);
    check_replaced("truncated to 100 bytes", &good[..100]);
    check_replaced("truncated to a partial word", &good[..good.len() - 3]);
    check_replaced("truncated inside the records", &good[..330 * 8]);
    check_replaced("empty", &[]);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let random: Vec<u8> = (0..16 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    check_replaced("random bytes", &random);
    let mut b = good.clone();
    b[..8].copy_from_slice(b"notcount");
    check_replaced("wrong magic", &b);
    let mut b = good.clone();
    put_word(&mut b, 1, 99);
    check_replaced("unknown version", &b);
    let mut b = good.clone();
    put_word(&mut b, 4, 1 << 60);
    check_replaced("huge allocation pointer", &b);
    let mut b = good.clone();
    put_word(&mut b, 65, 1 << 40);
    check_replaced("huge table", &b);
    let mut b = good.clone();
    put_word(&mut b, 64, 1 << 50);
    check_replaced("next table far away", &b);
    let mut b = good.clone();
    put_word(&mut b, 2, 1 << 33);
    check_replaced("huge header", &b);
}

#[test]
fn foreign_and_oversized_files_are_set_aside() {
    // A valid counter file of another program under greet's name.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other");
    let out = common::command(&common::example("hammer"), Some(&other))
        .args(["1", "1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let hammer_file = fs::read_dir(other.join("local"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".count"))
        .unwrap()
        .path();
    check_replaced("another program's file", &fs::read(hammer_file).unwrap());

    // A file claiming a huge size (sparse, 1 GiB).
    let dir = tempfile::tempdir().unwrap();
    let path = greet_file(dir.path());
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = fs::File::create(&path).unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    assert_greeted(&greet(dir.path(), &["alice"]));
    assert_eq!(set_aside_files(dir.path()), 1);
    assert_eq!(count(dir.path(), WEEK, "greet", "invocations"), 1);
}

#[test]
fn directory_or_symlink_in_place_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = greet_file(dir.path());
    fs::create_dir_all(path.join("inside")).unwrap();
    assert_greeted(&greet(dir.path(), &["alice"]));
    assert_eq!(set_aside_files(dir.path()), 1);
    assert_eq!(count(dir.path(), WEEK, "greet", "invocations"), 1);

    #[cfg(unix)]
    {
        // A symlink to someone else's file: never written through.
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        let good = valid_file();
        fs::write(&victim, &good).unwrap();
        let path = greet_file(&dir.path().join("cc"));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        assert_greeted(&greet(&dir.path().join("cc"), &["alice"]));
        assert_eq!(
            fs::read(&victim).unwrap(),
            good,
            "the symlink target is untouched"
        );
        assert_eq!(set_aside_files(&dir.path().join("cc")), 1);
        assert_eq!(
            count(&dir.path().join("cc"), WEEK, "greet", "invocations"),
            1
        );
        // A dangling symlink too.
        let dir = tempfile::tempdir().unwrap();
        let path = greet_file(dir.path());
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &path).unwrap();
        assert_greeted(&greet(dir.path(), &["alice"]));
        assert!(!dir.path().join("nowhere").exists());
        assert_eq!(count(dir.path(), WEEK, "greet", "invocations"), 1);
    }
}

#[test]
fn unwritable_directories() {
    // A directory that cannot be created, even by root.
    assert_greeted(&greet(Path::new("/proc/clearcount-test/cc"), &["alice"]));
    // A regular file where the directory should be.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    assert_greeted(&greet(&file, &["alice"]));
    assert_greeted(&greet(&file.join("cc"), &["alice"]));
    assert_eq!(fs::read(&file).unwrap(), b"x");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Read-only directories (only meaningful when not running as root).
        let dir = tempfile::tempdir().unwrap();
        let cc = dir.path().join("cc");
        fs::create_dir_all(cc.join("local")).unwrap();
        for d in [cc.join("local"), cc.clone()] {
            fs::set_permissions(&d, fs::Permissions::from_mode(0o555)).unwrap();
        }
        assert_greeted(&greet(&cc, &["alice"]));
        let root = fs::write(cc.join("probe"), b"").is_ok();
        if !root {
            assert!(fs::read_dir(cc.join("local")).unwrap().next().is_none());
        }
        for d in [cc.clone(), cc.join("local")] {
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

#[cfg(unix)]
#[test]
fn full_disk_via_file_size_limit() {
    // RLIMIT_FSIZE: writing past it would raise SIGXFSZ and kill the host tool.
    let greet_path = common::example("greet");
    for blocks in ["0", "1", "8"] {
        let dir = tempfile::tempdir().unwrap();
        let out = common::command(Path::new("/bin/sh"), Some(dir.path()))
            .args(["-c", &format!("ulimit -f {blocks}; exec \"$0\" alice")])
            .arg(&greet_path)
            .output()
            .unwrap();
        assert_greeted(&out);
        // Nothing was written that exceeds the limit; no counter file could be created.
        assert!(!greet_file(dir.path()).exists());
    }
    // An existing file that must grow under the limit: new names are dropped, the tool runs.
    let dir = tempfile::tempdir().unwrap();
    assert_greeted(&greet(dir.path(), &["alice"]));
    let out = common::command(Path::new("/bin/sh"), Some(dir.path()))
        .args(["-c", "ulimit -f 32; exec \"$0\" 1000 1000"])
        .arg(common::example("hammer"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(count(dir.path(), WEEK, "greet", "invocations"), 1);
}

#[cfg(target_os = "linux")]
#[test]
fn full_disk_on_a_small_tmpfs() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipping: cannot mount a tmpfs here (RLIMIT_FSIZE test covers a full disk)");
        return;
    }
    // Fill the file system, leaving less than a counter file.
    let mut filler = Vec::new();
    let mut i = 0;
    loop {
        let p = mnt.join(format!("fill{i}"));
        if fs::write(&p, vec![7u8; 4096]).is_err() {
            break;
        }
        filler.push(p);
        i += 1;
    }
    let out = greet(&mnt.join("cc"), &["alice"]);
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    assert_greeted(&out);
}
