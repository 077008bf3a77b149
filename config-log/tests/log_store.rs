//! The log store, the verifying reader and the real `clearcount-log` binary against
//! tampering (modified entry, tile, checkpoint; a fork; a rollback) and crashes (SIGKILL of
//! `append` at random moments).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use clearcount_config_log::checkpoint::Checkpoint;
use clearcount_config_log::note::Signer;
use clearcount_config_log::reader::{DirSource, LogReader, VerifyError};
use clearcount_config_log::store::{LogStore, StoreError};
use rand::{Rng, SeedableRng};

const ORIGIN: &str = "telemetry.example.org/config";
const BIN: &str = env!("CARGO_BIN_EXE_clearcount-log");

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
}

/// A config that passes lint; `tag` makes each one different.
fn config(origin: &str, tag: &str) -> Vec<u8> {
    format!(
        r#"origin = "{origin}"
sample_rate = 0.25
max_epsilon = 4.0
os = ["linux", "macos"]
arch = ["x86_64"]

[[program]]
name = "ripgrep"
versions = ">=14.0.0"

[[program.counter]]
name = "invocations"
kind = "count"
buckets = [0, 1, 10, 100]
epsilon = 1.0
description = "How many times rg ran in the week ({tag})."
rationale = "Are most users interactive or scripted?"
owner = "maintainer@example.org"
link = "https://github.com/example/ripgrep/issues/1"
expires = "2099-06-30"
"#
    )
    .into_bytes()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    signer: Signer,
    key_file: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let signer = Signer::generate(ORIGIN).unwrap();
        let key_file = root.join("signer.key");
        std::fs::write(&key_file, signer.to_key_string()).unwrap();
        Fixture {
            _tmp: tmp,
            root,
            signer,
            key_file,
        }
    }

    fn vkey(&self) -> String {
        self.signer.verifier().to_string()
    }

    /// A log named `name` with one config per tag.
    fn log(&self, name: &str, tags: &[&str]) -> PathBuf {
        let dir = self.root.join(name);
        let mut log = LogStore::init(&dir, &self.signer).unwrap();
        for t in tags {
            log.append_config(&config(ORIGIN, t), &self.signer, today())
                .unwrap();
        }
        dir
    }

    fn reader(&self, dir: &Path) -> LogReader<DirSource> {
        LogReader::new(self.signer.verifier(), DirSource::new(dir))
    }

    fn verify_cli(&self, dir: &Path, since: Option<&Path>) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("verify").arg(dir).arg("--key").arg(self.vkey());
        if let Some(s) = since {
            cmd.arg("--since").arg(s);
        }
        cmd.output().unwrap()
    }

    fn save_checkpoint(&self, dir: &Path, name: &str) -> PathBuf {
        let path = self.root.join(name);
        std::fs::copy(dir.join("checkpoint"), &path).unwrap();
        path
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn flip_byte(path: &Path, at: usize) {
    let mut data = std::fs::read(path).unwrap();
    data[at] ^= 0x20;
    std::fs::write(path, data).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn intact_log_verifies_everywhere() {
    let f = Fixture::new();
    let dir = f.log("log", &["a", "b", "c"]);
    let out = f.verify_cli(&dir, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let reader = f.reader(&dir);
    for i in 0..3 {
        let v = reader.verify(None, i).unwrap();
        assert_eq!(v.entry, config(ORIGIN, ["a", "b", "c"][i as usize]));
    }
    assert!(matches!(
        reader.verify(None, 3),
        Err(VerifyError::NoSuchEntry { index: 3, size: 3 })
    ));
}

#[test]
fn modified_entry_is_caught() {
    let f = Fixture::new();
    let dir = f.log("log", &["a", "b", "c"]);
    // Byte 10 of the bundle lies inside entry 0 ("origin = ..." after the 2-byte length).
    flip_byte(&dir.join("tile/entries/000.p/3"), 10);
    let out = f.verify_cli(&dir, None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("hash of entry 0 differs from the entry in its bundle"),
        "{}",
        stderr(&out)
    );
    let err = f.reader(&dir).verify(None, 0).unwrap_err();
    assert_eq!(err, VerifyError::Inclusion { index: 0, size: 3 });
    assert!(err.to_string().starts_with("inclusion:"));
}

#[test]
fn modified_tile_is_caught() {
    let f = Fixture::new();
    let dir = f.log("log", &["a", "b", "c"]);
    // The hash of entry 0 (first 32 bytes of the level-0 tile).
    flip_byte(&dir.join("tile/0/000.p/3"), 5);
    let out = f.verify_cli(&dir, None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("malformed tile tile/0/000.p/3"),
        "{}",
        stderr(&out)
    );
    // Entry 1's proof uses entry 0's hash: the reader names the tiles.
    let err = f.reader(&dir).verify(None, 1).unwrap_err();
    assert!(matches!(err, VerifyError::MalformedTile { .. }), "{err:?}");
    // A truncated tile is malformed too.
    let path = dir.join("tile/0/000.p/3");
    let data = std::fs::read(&path).unwrap();
    std::fs::write(&path, &data[..40]).unwrap();
    let err = f.reader(&dir).verify(None, 1).unwrap_err();
    assert!(
        matches!(&err, VerifyError::MalformedTile { path, .. } if path == "tile/0/000.p/3"),
        "{err:?}"
    );
}

#[test]
fn modified_checkpoint_is_caught() {
    let f = Fixture::new();
    let dir = f.log("log", &["a", "b", "c"]);
    let cp = dir.join("checkpoint");
    let text = std::fs::read_to_string(&cp).unwrap();
    std::fs::write(&cp, text.replacen("\n3\n", "\n2\n", 1)).unwrap();
    let out = f.verify_cli(&dir, None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("signature"), "{}", stderr(&out));
    assert!(matches!(
        f.reader(&dir).verify(None, 0),
        Err(VerifyError::Signature(_))
    ));
    // Garbage instead of a checkpoint.
    std::fs::write(&cp, "not a checkpoint").unwrap();
    assert!(matches!(
        f.reader(&dir).verify(None, 0),
        Err(VerifyError::MalformedCheckpoint(_))
    ));
    // A checkpoint signed by another key.
    let other = Signer::generate(ORIGIN).unwrap();
    let forged = Checkpoint::new(ORIGIN, 3, [9; 32]).sign(&other).unwrap();
    std::fs::write(&cp, forged).unwrap();
    assert!(matches!(
        f.reader(&dir).verify(None, 0),
        Err(VerifyError::Signature(_))
    ));
    let out = f.verify_cli(&dir, None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("signature"), "{}", stderr(&out));
}

#[test]
fn fork_is_caught() {
    let f = Fixture::new();
    let honest = f.log("honest", &["a", "b", "c"]);
    let seen = f.save_checkpoint(&honest, "seen.cp");
    let remembered =
        Checkpoint::open(&std::fs::read(&seen).unwrap(), &f.signer.verifier()).unwrap();
    // Same key, same size, other entries: a fork.
    let forked = f.log("forked", &["a", "x", "c"]);
    let err = f.reader(&forked).verify(Some(&remembered), 0).unwrap_err();
    assert!(matches!(err, VerifyError::Fork { .. }), "{err:?}");
    let out = f.verify_cli(&forked, Some(&seen));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("fork"), "{}", stderr(&out));
    // A fork that grew further: consistency fails.
    let grown = f.log("grown", &["a", "x", "c", "d", "e"]);
    let err = f.reader(&grown).verify(Some(&remembered), 4).unwrap_err();
    assert!(matches!(err, VerifyError::Fork { .. }), "{err:?}");
    let out = f.verify_cli(&grown, Some(&seen));
    assert!(stderr(&out).contains("fork"), "{}", stderr(&out));
    // The honest log that grew is consistent.
    let mut log = LogStore::open(&honest).unwrap();
    log.append_config(&config(ORIGIN, "d"), &f.signer, today())
        .unwrap();
    f.reader(&honest).verify(Some(&remembered), 3).unwrap();
    let out = f.verify_cli(&honest, Some(&seen));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn rollback_is_caught() {
    let f = Fixture::new();
    let dir = f.log("log", &["a", "b"]);
    let old_copy = f.root.join("old");
    copy_dir(&dir, &old_copy);
    let mut log = LogStore::open(&dir).unwrap();
    log.append_config(&config(ORIGIN, "c"), &f.signer, today())
        .unwrap();
    let seen = f.save_checkpoint(&dir, "seen.cp");
    let remembered =
        Checkpoint::open(&std::fs::read(&seen).unwrap(), &f.signer.verifier()).unwrap();
    // The server now serves the older log.
    let err = f
        .reader(&old_copy)
        .verify(Some(&remembered), 0)
        .unwrap_err();
    assert_eq!(
        err,
        VerifyError::Rollback {
            remembered: 3,
            latest: 2
        }
    );
    let out = f.verify_cli(&old_copy, Some(&seen));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("rollback"), "{}", stderr(&out));
}

#[test]
fn append_refuses_bad_configs() {
    let f = Fixture::new();
    let dir = f.log("log", &["a"]);
    let mut log = LogStore::open(&dir).unwrap();
    let foreign = config("other.example/config", "a");
    assert!(matches!(
        log.append_config(&foreign, &f.signer, today()),
        Err(StoreError::WrongOrigin { .. })
    ));
    let expired = String::from_utf8(config(ORIGIN, "a"))
        .unwrap()
        .replace("2099-06-30", "2020-01-01");
    assert!(matches!(
        log.append_config(expired.as_bytes(), &f.signer, today()),
        Err(StoreError::Lint(_))
    ));
    assert!(matches!(
        log.append_config(b"not = [toml", &f.signer, today()),
        Err(StoreError::Config(_))
    ));
    // Through the binary: exit non-zero, nothing appended.
    let bad = f.root.join("bad.toml");
    std::fs::write(&bad, &foreign).unwrap();
    let out = Command::new(BIN)
        .args(["append"])
        .arg(&dir)
        .arg(&bad)
        .arg("--key")
        .arg(&f.key_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("origin"), "{}", stderr(&out));
    assert_eq!(LogStore::open(&dir).unwrap().size(), 1);
}

#[test]
fn concurrent_appends_are_serialized() {
    let f = Fixture::new();
    let dir = f.log("log", &[]);
    let cfg = f.root.join("c.toml");
    std::fs::write(&cfg, config(ORIGIN, "same")).unwrap();
    let spawned: Vec<_> = (0..6)
        .map(|_| {
            Command::new(BIN)
                .arg("append")
                .arg(&dir)
                .arg(&cfg)
                .arg("--key")
                .arg(&f.key_file)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut indexes: Vec<u64> = spawned
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, (0..6).collect::<Vec<u64>>());
    let report = f.reader(&dir).audit(None).unwrap();
    assert_eq!(report.checkpoint.size, 6);
}

/// SIGKILL `clearcount-log append` at random moments (fixed seed, 60 runs): afterwards the
/// checkpoint is the old or the new one and the whole log verifies.
#[test]
fn killed_appends_leave_a_verifying_log() {
    let f = Fixture::new();
    let dir = f.log("log", &["a", "b"]);
    let cfg = f.root.join("c.toml");
    let cfg_bytes = config(ORIGIN, "crash");
    std::fs::write(&cfg, &cfg_bytes).unwrap();
    let append = || {
        Command::new(BIN)
            .arg("append")
            .arg(&dir)
            .arg(&cfg)
            .arg("--key")
            .arg(&f.key_file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long one append takes here, to spread the kills over its whole run.
    let started = Instant::now();
    assert!(append().wait().unwrap().success());
    let full = started.elapsed().max(Duration::from_millis(2));
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_c0de);
    let reader = f.reader(&dir);
    let (mut old_seen, mut new_seen) = (0, 0);
    for run in 0..60 {
        let before = std::fs::read(dir.join("checkpoint")).unwrap();
        let before_cp = reader.open_checkpoint(&before).unwrap();
        let delay = full.mul_f64(rng.random_range(0.0..1.3));
        let mut child = append();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL on Unix; fails only if it already exited.
        child.wait().unwrap();
        let after = std::fs::read(dir.join("checkpoint")).unwrap();
        let after_cp = reader.open_checkpoint(&after).unwrap();
        if after == before {
            old_seen += 1;
        } else {
            assert_eq!(after_cp.size, before_cp.size + 1, "run {run}");
            assert_eq!(
                LogStore::open(&dir).unwrap().entry(before_cp.size).unwrap(),
                cfg_bytes
            );
            reader.check_consistency(&before_cp, &after_cp).unwrap();
            new_seen += 1;
        }
        let report = reader
            .audit(None)
            .unwrap_or_else(|e| panic!("run {run}: {e}"));
        assert_eq!(report.checkpoint, after_cp);
        if run % 15 == 0 {
            let out = f.verify_cli(&dir, None);
            assert!(out.status.success(), "run {run}: {}", stderr(&out));
        }
    }
    eprintln!("kills: {old_seen} left the old checkpoint, {new_seen} the new one");
    assert!(
        old_seen > 0,
        "no kill landed before the checkpoint was replaced"
    );
    // After all that, appends still work and the log still verifies.
    assert!(append().wait().unwrap().success());
    let out = f.verify_cli(&dir, None);
    assert!(out.status.success(), "{}", stderr(&out));
}
