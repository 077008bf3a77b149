//! A server serving a forked log, a rolled-back checkpoint, a modified config entry, or a
//! checkpoint signed by another key: nothing is uploaded, `clearcount status` shows the alarm,
//! and the host tool behaves exactly as before.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clearcount_tests::*;

const WAIT: Duration = Duration::from_secs(60);

struct Case {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    key: String,
    fake: FakeServer,
}

/// A good log served by the fake server; `clearcount config verify` remembers its checkpoint.
fn setup(configs: &[&str]) -> (Case, clearcount_config_log::note::Signer, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cc");
    let log_dir = tmp.path().join("log");
    let signer = signer();
    make_log(&log_dir, &signer, configs);
    let key = signer.verifier().to_string();
    let fake = FakeServer::start(Behaviour {
        log_dir: log_dir.clone(),
        config_override: HashMap::new(),
        upload_status: 200,
        upload_delay: Duration::ZERO,
    });
    let v = clearcount(
        &dir,
        "2026-11-08T10:00:00Z",
        &[
            "config",
            "verify",
            "--server",
            &fake.url(),
            "--log-key",
            &key,
        ],
    );
    assert!(v.status.success(), "{v:?}");
    assert!(stdout(&v).contains("OK"), "{}", stdout(&v));
    (
        Case {
            _tmp: tmp,
            dir,
            key,
            fake,
        },
        signer,
        log_dir,
    )
}

/// Records a week after opting in, then lets the child run against the tampered server.
fn expect_alarm(c: &Case, what: &str) {
    let url = c.fake.url();
    let ep = Some((url.as_str(), c.key.as_str()));
    set_mode(&c.dir, "on", "2026-11-08T12:00:00Z");
    let mut outputs = Vec::new();
    for (now, args) in [
        ("2026-11-10T10:00:00Z", vec!["alice"]),
        ("2026-11-17T10:00:00Z", vec!["alice"]),
        ("2026-11-17T10:01:00Z", vec!["--loud", ""]),
    ] {
        outputs.push(greet(&c.dir, now, ep, &args));
    }
    assert!(wait_runs(&c.dir, 2, WAIT), "no upload child finished");
    // The host tool's behaviour and exit codes are those of greet without clearcount.
    assert_eq!(stdout(&outputs[0]), "Hello, alice!\n");
    assert_eq!(outputs[0].status.code(), Some(0));
    assert_eq!(stdout(&outputs[1]), "Hello, alice!\n");
    assert_eq!(outputs[1].status.code(), Some(0));
    assert_eq!(outputs[2].status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&outputs[2].stderr),
        "greet: empty name\n"
    );
    assert!(outputs[0].stderr.is_empty() && outputs[1].stderr.is_empty());
    std::thread::sleep(Duration::from_millis(300));
    assert!(c.fake.posts().is_empty(), "uploaded despite {what}");
    let status = stdout(&clearcount(&c.dir, "2026-11-17T11:00:00Z", &["status"]));
    let debug = std::fs::read_to_string(c.dir.join("debug.log")).unwrap_or_default();
    assert!(status.contains("ALARM"), "{what}: {status}\n{debug}");
    let alarm = std::fs::read_to_string(upload_state(&c.dir).join("alarm")).unwrap();
    assert!(
        alarm.contains(what),
        "expected {what:?} in the alarm: {alarm}"
    );
    // Still nothing uploaded on later days while the alarm stands, and no network is needed
    // to say so.
    let o = greet(&c.dir, "2026-11-18T10:00:00Z", ep, &["alice"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(wait_runs(&c.dir, 3, WAIT));
    assert!(c.fake.posts().is_empty());
    // `config verify` fails and names the alarm; clearing it is documented and works.
    let v = clearcount(&c.dir, "2026-11-18T11:00:00Z", &["config", "verify"]);
    assert_eq!(v.status.code(), Some(1), "{v:?}");
    let cleared = clearcount(
        &c.dir,
        "2026-11-18T11:00:00Z",
        &["config", "clear-alarm", "--forget-checkpoint"],
    );
    assert!(
        stdout(&cleared).contains("cleared the alarm"),
        "{cleared:?}"
    );
    let status = stdout(&clearcount(&c.dir, "2026-11-18T11:00:00Z", &["status"]));
    assert!(!status.contains("ALARM"), "{status}");
}

fn replace_dir(c: &Case, new_log: &Path) {
    c.fake.set(|b| b.log_dir = new_log.to_path_buf());
}

#[test]
fn forked_log() {
    let c0 = greet_config(1.0);
    let (case, signer, log_dir) = setup(&[&c0]);
    // Same key, but a different history: entry 0 differs.
    let fork = log_dir.with_file_name("fork");
    make_log(&fork, &signer, &[&greet_config(0.9), &c0]);
    replace_dir(&case, &fork);
    expect_alarm(&case, "fork");
}

#[test]
fn rolled_back_checkpoint() {
    let c0 = greet_config(1.0);
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old");
    // The old state of the log (one entry), kept before the log grew.
    let signer = signer();
    let mut log = make_log(&old, &signer, &[&c0]);
    let grown = tmp.path().join("grown");
    copy_dir(&old, &grown);
    drop(log);
    log = clearcount_config_log::store::LogStore::open(&grown).unwrap();
    log.append_config(greet_config(0.9).as_bytes(), &signer, day("2020-01-01"))
        .unwrap();
    let case_dir = tmp.path().join("cc");
    let key = signer.verifier().to_string();
    let fake = FakeServer::start(Behaviour {
        log_dir: grown.clone(),
        config_override: HashMap::new(),
        upload_status: 200,
        upload_delay: Duration::ZERO,
    });
    let v = clearcount(
        &case_dir,
        "2026-11-08T10:00:00Z",
        &[
            "config",
            "verify",
            "--server",
            &fake.url(),
            "--log-key",
            &key,
        ],
    );
    assert!(stdout(&v).contains("checkpoint of 2 entries"), "{v:?}");
    fake.set(|b| b.log_dir = old.clone());
    let case = Case {
        _tmp: tmp,
        dir: case_dir,
        key,
        fake,
    };
    expect_alarm(&case, "rollback");
}

#[test]
fn modified_config_entry() {
    let c0 = greet_config(1.0);
    let (case, _signer, _log_dir) = setup(&[&c0]);
    // The entry served at /config/0 is not the logged one (a counter quietly added a label).
    let modified = c0.replace(
        r#"["plain", "loud", "other"]"#,
        r#"["plain", "loud", "name", "other"]"#,
    );
    assert_ne!(modified, c0);
    case.fake.set(|b| {
        b.config_override.insert(0, modified.into_bytes());
    });
    expect_alarm(&case, "inclusion");
}

#[test]
fn checkpoint_signed_by_another_key() {
    let c0 = greet_config(1.0);
    let (case, _signer, log_dir) = setup(&[&c0]);
    // Same origin name, same config, another key.
    let other = log_dir.with_file_name("other");
    make_log(&other, &signer(), &[&c0, &greet_config(0.9)]);
    replace_dir(&case, &other);
    expect_alarm(&case, "signature");
}
