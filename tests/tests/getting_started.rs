//! Follows docs/getting-started.md command by command: a new crate depending on clearcount by
//! path, its config, its log, a `serve --dev` server, and the tool's first report arriving.
//!
//! The guide's `sh` blocks are run line by line in a fresh temporary directory; its blocks
//! marked `file=PATH` are written to PATH. Where the test must differ from a person, it does
//! so as the guide's last section says: `git clone` is a link to this checkout, `cargo install`
//! uses the commands built here, `cargo` runs offline (the crate's lock file starts as the
//! workspace's, so that nothing new is resolved) with a target directory shared between runs
//! (`target/getting-started/target`; the walk itself happens in a directory of the system's
//! temporary directory named after this checkout, emptied first, so that the package paths stay
//! the same and a second run rebuilds only the new crate), `~` is a temporary home, the clearcount directory is a temporary
//! one, the server listens on a free port, `telemetry on` gets `--yes`, and the key printed by
//! `keygen` is pasted into `src/main.rs` as the guide asks.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use clearcount_tests::e2e::{http_get, http_json, log_bin};
use clearcount_tests::{clearcount_bin, server_bin};

const GUIDE: &str = include_str!("../../docs/getting-started.md");
const KEY_PLACEHOLDER: &str = "<the verifier key keygen printed>";
const GUIDE_SERVER: &str = "http://127.0.0.1:8080";

/// A block of the guide that the test acts on.
#[derive(Debug)]
enum Block {
    /// The lines of an `sh` block.
    Sh(Vec<String>),
    /// A block marked `file=PATH`.
    File(String, String),
}

fn blocks(guide: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = guide.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        let file = info
            .split_whitespace()
            .find_map(|w| w.strip_prefix("file="));
        if let Some(path) = file {
            out.push(Block::File(path.to_string(), body.join("\n") + "\n"));
        } else if info.trim() == "sh" {
            let cmds = body
                .iter()
                .map(|l| l.split(" #").next().unwrap_or("").trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            out.push(Block::Sh(cmds));
        }
    }
    out
}

/// The workspace root and its target directory.
fn workspace() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    // .../target/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("test executable");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("target directory")
        .to_path_buf();
    (root, target)
}

/// A running server, killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The walk through the guide: where it stands and what it saw.
struct Walk {
    cwd: PathBuf,
    home: PathBuf,
    clearcount_dir: PathBuf,
    target: PathBuf,
    workspace: PathBuf,
    installed: HashMap<String, PathBuf>,
    key: Option<String>,
    url: Option<String>,
    server: Option<Running>,
    sent_week: Option<String>,
    checks: Vec<&'static str>,
}

impl Walk {
    fn path(&self, word: &str) -> String {
        match word.strip_prefix("~/") {
            Some(rest) => self.home.join(rest).to_string_lossy().into_owned(),
            None => word.to_string(),
        }
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        for v in [
            "DO_NOT_TRACK",
            "CLEARCOUNT_MODE",
            "CLEARCOUNT_TEST_NOW",
            "CLEARCOUNT_UPLOAD_CHILD",
            "CLEARCOUNT_DEV",
            "CLEARCOUNT_LISTEN",
        ] {
            c.env_remove(v);
        }
        c.current_dir(&self.cwd)
            .env("CLEARCOUNT_DIR", &self.clearcount_dir)
            .env("CARGO_TARGET_DIR", &self.target)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, line: &str, mut c: Command) -> Output {
        let o = c.output().unwrap_or_else(|e| panic!("`{line}`: {e}"));
        assert!(
            o.status.success(),
            "`{line}` failed: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    fn edit_main(&self, from: &str, to: &str) {
        let main = self.cwd.join("src/main.rs");
        let text = std::fs::read_to_string(&main).expect("src/main.rs");
        assert!(text.contains(from), "src/main.rs has no {from:?}");
        std::fs::write(&main, text.replace(from, to)).expect("write src/main.rs");
    }

    fn step(&mut self, line: &str) {
        let words: Vec<String> = line.split_whitespace().map(|w| self.path(w)).collect();
        let args = &words[1..];
        match words[0].as_str() {
            "git" => {
                assert_eq!(args[0], "clone", "{line}");
                std::os::unix::fs::symlink(&self.workspace, self.cwd.join("clearcount"))
                    .expect("link the checkout");
            }
            "cd" => self.cwd = self.cwd.join(&args[0]),
            "cargo" => self.cargo(line, args),
            "clearcount-log" => self.log(line, args),
            "clearcount-server" => self.serve(line, args),
            "clearcount" => {
                let mut c = self.command(&self.installed["clearcount"]);
                c.args(args);
                let o = self.run(line, c);
                self.saw(line, &o);
            }
            other => panic!("the guide runs `{other}`, which this test does not know: {line}"),
        }
    }

    fn cargo(&mut self, line: &str, args: &[String]) {
        match args[0].as_str() {
            "install" => {
                let (name, bin) = match args.last().map(String::as_str) {
                    Some("clearcount/client") => ("clearcount", clearcount_bin()),
                    Some("clearcount/config-log") => ("clearcount-log", log_bin()),
                    Some("clearcount/server") => ("clearcount-server", server_bin()),
                    _ => panic!("unknown install: {line}"),
                };
                self.installed.insert(name.into(), bin);
            }
            sub => {
                if sub == "add" && !self.cwd.join("Cargo.lock").exists() {
                    std::fs::copy(
                        self.workspace.join("Cargo.lock"),
                        self.cwd.join("Cargo.lock"),
                    )
                    .expect("copy Cargo.lock");
                }
                let mut c = self.command(Path::new(env!("CARGO")));
                c.arg(sub).arg("--offline");
                if sub == "run" {
                    c.arg("-q");
                }
                let config_home = self.home.join(".config");
                if sub == "test" {
                    // As on the author's machine: no CLEARCOUNT_DIR, the default directory
                    // where the platform puts it (here in the temporary home).
                    c.env_remove("CLEARCOUNT_DIR")
                        .env("XDG_CONFIG_HOME", &config_home);
                }
                c.args(&args[1..]);
                if args.ends_with(&["telemetry".into(), "on".into()]) {
                    c.arg("--yes");
                }
                let o = self.run(line, c);
                self.saw(line, &o);
                if sub == "test" {
                    let out = String::from_utf8_lossy(&o.stdout);
                    assert!(out.contains("test result: ok. 2 passed"), "{out}");
                    let default = config_home.join("clearcount");
                    assert!(!default.exists(), "cargo test recorded into {default:?}");
                    self.checks
                        .push("cargo test passed and recorded nothing by default");
                }
            }
        }
    }

    fn log(&mut self, line: &str, args: &[String]) {
        let mut c = self.command(&self.installed["clearcount-log"]);
        c.args(args);
        let o = self.run(line, c);
        let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
        match args[0].as_str() {
            "keygen" => {
                assert!(out.starts_with("mytool.example.org/config+"), "{out}");
                self.edit_main(KEY_PLACEHOLDER, &out);
                self.key = Some(out);
                self.checks
                    .push("keygen printed the key pinned in src/main.rs");
            }
            "init" => assert_eq!(Some(&out), self.key.as_ref(), "init prints the same key"),
            "append" => {
                assert_eq!(out, "0", "the first config is entry 0");
                self.checks.push("the config is entry 0 of the log");
            }
            "describe" => {
                assert!(out.starts_with("## What we collect"), "{out}");
                assert!(out.contains("| mytool | `greetings` |"), "{out}");
                assert!(out.contains("published as entry 0 in"), "{out}");
                self.checks.push("describe wrote the README section");
            }
            _ => {}
        }
    }

    fn serve(&mut self, line: &str, args: &[String]) {
        assert!(args.contains(&"--dev".to_string()), "{line}");
        let mut child = self
            .command(&self.installed["clearcount-server"])
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env("CLEARCOUNT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let stderr = child.stderr.take().expect("stderr");
        self.server = Some(Running(child));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let addr = loop {
            let l = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the server printed no address");
            if let Some(a) = l.strip_prefix("listening on ") {
                break a.trim().to_string();
            }
        };
        let url = format!("http://{addr}");
        self.edit_main(GUIDE_SERVER, &url);
        self.url = Some(url);
    }

    /// Checks what the guide says a command shows.
    fn saw(&mut self, line: &str, o: &Output) {
        let out = String::from_utf8_lossy(&o.stdout);
        if line.ends_with("telemetry view") {
            assert!(
                out.contains("greetings") && out.contains("style:plain"),
                "{out}"
            );
            self.checks.push("telemetry view shows the counts");
        } else if line.ends_with("telemetry on") {
            assert!(out.contains("Can --loud be removed?"), "{out}");
            self.checks.push("telemetry on showed the verified config");
        } else if line.ends_with("upload --now") {
            let week = out
                .lines()
                .find(|l| l.contains("the week so far was sent"))
                .and_then(|l| l.strip_prefix("week "))
                .and_then(|l| l.get(..10))
                .unwrap_or_else(|| panic!("nothing sent: {out}"));
            self.sent_week = Some(week.to_string());
            self.checks.push("upload --now sent the week");
        }
    }
}

#[test]
fn the_getting_started_guide_works_command_by_command() {
    let (workspace, target) = workspace();
    // A fresh directory at a fixed place outside the workspace (cargo would take a crate
    // inside it for a member), so that the shared target directory sees the same package paths
    // at every run and rebuilds only mytool.
    let shared = target.join("getting-started");
    let tmp = std::env::temp_dir().join(format!("clearcount-getting-started-{}", {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        workspace.hash(&mut h);
        format!("{:016x}", h.finish())
    }));
    let _ = std::fs::remove_dir_all(&tmp);
    let home = tmp.join("home");
    std::fs::create_dir_all(&home).expect("home");
    let mut walk = Walk {
        cwd: tmp.clone(),
        home,
        clearcount_dir: tmp.join("clearcount-dir"),
        target: shared.join("target"),
        workspace,
        installed: HashMap::new(),
        key: None,
        url: None,
        server: None,
        sent_week: None,
        checks: Vec::new(),
    };
    for block in blocks(GUIDE) {
        match block {
            Block::Sh(lines) => {
                for l in &lines {
                    // Shown with --nocapture: what each step of the guide costs (no assertion).
                    let start = std::time::Instant::now();
                    walk.step(l);
                    eprintln!("{:>6.1} s  {l}", start.elapsed().as_secs_f64());
                }
            }
            Block::File(path, text) => {
                let p = walk.cwd.join(path);
                std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
                std::fs::write(&p, text).expect("write a file of the guide");
            }
        }
    }
    assert_eq!(
        walk.checks,
        [
            "telemetry view shows the counts",
            "keygen printed the key pinned in src/main.rs",
            "the config is entry 0 of the log",
            "telemetry on showed the verified config",
            "upload --now sent the week",
            "describe wrote the README section",
            "cargo test passed and recorded nothing by default",
        ]
    );
    // The first report, seen where the guide says.
    let url = walk.url.clone().expect("a server was started");
    let week = walk.sent_week.clone().expect("a week was sent");
    let (status, page) = http_get(&format!("{url}/programs/mytool"));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("DEVELOPMENT SERVER"), "{page}");
    let agg = http_json(&format!("{url}/data/aggregates/{week}.json"));
    let text = agg.to_string();
    assert!(
        text.contains("\"mytool\"") && text.contains("greetings"),
        "{agg}"
    );
    drop(walk.server.take());
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn the_guide_has_the_blocks_the_walk_needs() {
    let b = blocks(GUIDE);
    let files: Vec<&str> = b
        .iter()
        .filter_map(|b| match b {
            Block::File(p, _) => Some(p.as_str()),
            Block::Sh(_) => None,
        })
        .collect();
    assert_eq!(
        files,
        ["src/main.rs", "telemetry/config.toml", "tests/cli.rs"]
    );
    let main = b.iter().find_map(|b| match b {
        Block::File(p, t) if p == "src/main.rs" => Some(t),
        _ => None,
    });
    let main = main.expect("src/main.rs");
    assert!(main.contains(KEY_PLACEHOLDER) && main.contains(GUIDE_SERVER));
}
