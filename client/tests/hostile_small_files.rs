//! Hostile small files: a FIFO, a symlink to a file outside, a dangling symlink, a directory
//! or a 2 GiB sparse file where clearcount keeps one of its small files (the mode file, the
//! debug log, the reduction lock and marker, the uploader's endpoint and day token). The host
//! tool runs as it would without clearcount (its output, exit code 0, nothing on stderr) and
//! never hangs; clearcount never writes through a link or creates its target, never reads the
//! big file whole (the peak RSS stays small), and sets aside what it owns so the next run has
//! a usable file again.
//!
//! No timing is asserted: each run has a watchdog that only catches a hang (it kills the run
//! after 20 s and fails). The times are measured in docs/perf/client.md.
#![cfg(all(unix, feature = "cli"))]

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{NOW, WEEK, count, greet_file};
use hostile::{THINGS, Thing};

/// A run still going after this long is a hang (a normal run takes milliseconds).
const WATCHDOG: Duration = Duration::from_secs(20);
/// Peak RSS (KiB) far above greet's own (3 to 4 MiB), far below a 2 GiB file read whole.
const RSS_LIMIT_KIB: u64 = 256 * 1024;
/// The example tools' log key: greet's upload directory is `upload/telemetry.example.org_config`.
const LOG_KEY: &str =
    "telemetry.example.org/config+b59e49b9+ASh3/3wT4sVlg0dVfsOW+n7twqUeLyaZTmHGrAke2Rpj";
const UPLOAD_DIR: &str = "upload/telemetry.example.org_config";

/// What a symlink points to: a valid mode file (mode local), so that following the link in
/// place of the mode file would show (greet would record). Other files just must not change.
const OUTSIDE: &[u8] = b"mode local 2026-11-18T12:00:00Z\n";

/// A fresh clearcount directory `cc` and an `outside` path beside it, in a temporary directory.
struct Scene {
    _tmp: tempfile::TempDir,
    cc: PathBuf,
    outside: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Scene {
    fn new() -> Scene {
        let tmp = tempfile::tempdir().unwrap();
        let cc = tmp.path().join("cc");
        fs::create_dir_all(&cc).unwrap();
        let outside = tmp.path().join("outside");
        Scene {
            _tmp: tmp,
            cc,
            outside,
            env: Vec::new(),
        }
    }

    /// Mode local, set explicitly, with greet's upload endpoint on a closed loopback port: the
    /// start path records the endpoint and claims the day's token, and sends nothing.
    fn with_upload(mut self) -> Scene {
        fs::write(self.cc.join("mode"), format!("mode local {NOW}\n")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        self.env = vec![
            ("GREET_TELEMETRY_SERVER", format!("http://127.0.0.1:{port}")),
            ("GREET_TELEMETRY_LOG_KEY", LOG_KEY.to_string()),
        ];
        self
    }

    /// Runs `greet alice` (under `/usr/bin/time` when it exists, for the peak RSS) and checks
    /// what every run must show: no hang, greet's own output, nothing from clearcount, a
    /// small peak RSS, and the outside file untouched (or still absent).
    fn greet(&self, what: &str, thing: Option<Thing>) {
        let greet = common::example("greet");
        let rss_file = self.cc.with_file_name("rss");
        let time = Path::new("/usr/bin/time");
        let mut cmd = if time.exists() {
            let mut c = common::command(time, Some(&self.cc));
            c.args(["-f", "%M", "-o"]).arg(&rss_file).arg(&greet);
            c
        } else {
            common::command(&greet, Some(&self.cc))
        };
        cmd.arg("alice")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let out = run_with_watchdog(cmd, what);
        common::assert_greeted(&out);
        if let Ok(text) = fs::read_to_string(&rss_file) {
            let kib: u64 = text.trim().parse().expect("peak RSS from /usr/bin/time");
            assert!(kib < RSS_LIMIT_KIB, "{what}: peak RSS {kib} KiB");
        }
        if let Some(thing) = thing {
            hostile::assert_outside_untouched(thing, &self.outside, OUTSIDE, what);
        } else {
            assert!(fs::symlink_metadata(&self.outside).is_err(), "{what}");
        }
    }

    /// Entries beside `rel` named `NAME.set-aside-...`.
    fn set_aside(&self, rel: &str) -> usize {
        let path = self.cc.join(rel);
        let prefix = format!("{}.set-aside-", path.file_name().unwrap().to_string_lossy());
        fs::read_dir(path.parent().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .count()
    }

    /// Whether `rel` is now a regular file (not followed: a symlink is not).
    fn is_regular(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.cc.join(rel)).is_ok_and(|m| m.file_type().is_file())
    }

    fn text(&self, rel: &str) -> String {
        fs::read_to_string(self.cc.join(rel)).unwrap_or_default()
    }

    fn greet_counted(&self) -> u64 {
        count(&self.cc, WEEK, "greet", "invocations")
    }
}

/// Runs `cmd` (its own process group) to the end, or kills the group and fails after
/// [`WATCHDOG`].
fn run_with_watchdog(mut cmd: Command, what: &str) -> Output {
    let mut child = cmd.spawn().expect("start greet");
    let started = Instant::now();
    while child.try_wait().expect("wait for greet").is_none() {
        if started.elapsed() > WATCHDOG {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
            panic!("{what}: greet hung (killed after {WATCHDOG:?})");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.wait_with_output().expect("greet's output")
}

/// Plants each hostile thing at `rel` in a fresh scene (prepared by `prepare`), runs greet,
/// and hands the scene to `check`.
fn each_thing(rel: &str, prepare: impl Fn(Scene) -> Scene, check: impl Fn(&Scene, Thing, &str)) {
    for thing in THINGS {
        let scene = prepare(Scene::new());
        hostile::plant(thing, &scene.cc.join(rel), &scene.outside, OUTSIDE);
        let what = format!("{thing:?} at {rel}");
        scene.greet(&what, Some(thing));
        check(&scene, thing, &what);
    }
}

#[test]
fn mode_file() {
    // An unusable mode file means off: nothing recorded, and it stays where it is (setting it
    // aside would turn the next run's mode into the default, local).
    each_thing(
        "mode",
        |s| s,
        |s, thing, what| {
            assert!(!s.cc.join("local").exists(), "{what}: recorded");
            let kept = fs::symlink_metadata(s.cc.join("mode")).unwrap();
            assert_eq!(kept.is_dir(), thing == Thing::Directory, "{what}");
            assert_eq!(s.set_aside("mode"), 0, "{what}");
        },
    );
}

#[test]
fn debug_log() {
    // An empty file in place of the counter file makes clearcount write to the debug log.
    let damaged = |s: Scene| {
        let f = greet_file(&s.cc);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, b"").unwrap();
        s
    };
    each_thing("debug.log", damaged, |s, _, what| {
        assert!(s.is_regular("debug.log"), "{what}");
        assert!(s.text("debug.log").contains("setting it aside"), "{what}");
        assert_eq!(s.set_aside("debug.log"), 1, "{what}");
        assert_eq!(s.greet_counted(), 1, "{what}");
    });
}

#[test]
fn reduction_lock() {
    // A first run in a week checks whether a reduction is due, under the lock.
    each_thing(
        "local/.reduce.lock",
        |s| s,
        |s, thing, what| {
            assert!(s.is_regular("local/.reduce.lock"), "{what}");
            // A regular file, even a large one, is a usable lock: it is never read.
            let aside = usize::from(thing != Thing::Sparse);
            assert_eq!(s.set_aside("local/.reduce.lock"), aside, "{what}");
            assert!(
                s.text("local/next-reduction").trim().parse::<i64>().is_ok(),
                "{what}: the reduction ran"
            );
            assert_eq!(s.greet_counted(), 1, "{what}");
        },
    );
}

#[test]
fn reduction_marker() {
    each_thing(
        "local/next-reduction",
        |s| s,
        |s, _, what| {
            assert!(s.is_regular("local/next-reduction"), "{what}");
            assert!(
                s.text("local/next-reduction").trim().parse::<i64>().is_ok(),
                "{what}: rewritten"
            );
            assert_eq!(s.set_aside("local/next-reduction"), 1, "{what}");
            assert_eq!(s.greet_counted(), 1, "{what}");
        },
    );
}

#[test]
fn upload_endpoint() {
    let rel = format!("{UPLOAD_DIR}/endpoint");
    each_thing(&rel, Scene::with_upload, |s, _, what| {
        assert!(s.is_regular(&rel), "{what}");
        assert!(
            s.text(&rel).starts_with("server http://127.0.0.1:"),
            "{what}"
        );
        assert_eq!(s.set_aside(&rel), 1, "{what}");
        assert_eq!(s.greet_counted(), 1, "{what}");
    });
}

#[test]
fn upload_day_token() {
    // Something in place of the day's token means the day is taken: nothing more happens.
    let rel = format!("{UPLOAD_DIR}/token-{}", &NOW[..10]);
    each_thing(&rel, Scene::with_upload, |s, _, what| {
        assert!(fs::symlink_metadata(s.cc.join(&rel)).is_ok(), "{what}");
        assert_eq!(s.greet_counted(), 1, "{what}");
    });
}

/// Without anything planted, the same runs reach every file above: the hostile tests test
/// the paths they mean to.
#[test]
fn the_same_runs_reach_each_file() {
    let s = Scene::new().with_upload();
    s.greet("first run of the week", None);
    assert!(s.is_regular("local/.reduce.lock"));
    assert!(s.is_regular("local/next-reduction"));
    assert!(s.is_regular(&format!("{UPLOAD_DIR}/endpoint")));
    assert!(s.is_regular(&format!("{UPLOAD_DIR}/token-{}", &NOW[..10])));
    assert_eq!(s.greet_counted(), 1);
    // A damaged counter file is written to the debug log.
    let s = Scene::new();
    let f = greet_file(&s.cc);
    fs::create_dir_all(f.parent().unwrap()).unwrap();
    fs::write(f, b"").unwrap();
    s.greet("damaged counter file", None);
    assert!(s.text("debug.log").contains("setting it aside"));
    // And a mode file that is read: `off` is obeyed.
    let s = Scene::new();
    fs::write(s.cc.join("mode"), format!("mode off {NOW}\n")).unwrap();
    s.greet("mode off", None);
    assert!(!s.cc.join("local").exists());
}
