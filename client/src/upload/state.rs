//! What the uploader keeps on disk, per log, under `<dir>/upload/<log>/`:
//!
//! | path | what |
//! |---|---|
//! | `endpoint` | the server URL and pinned log key, as the host tool's start last recorded them |
//! | `token-YYYY-MM-DD` | the day's token: created once a day by the first host process |
//! | `lock` | held by the one uploader running |
//! | `checkpoint` | the last signed checkpoint accepted (verified) |
//! | `config.toml`, `config-index` | the latest verified config and its log index |
//! | `configs/INDEX.toml` | every config verified on this machine, by log index (consent is to one of them) |
//! | `child-YYYY-MM-DD` | an upload child started that day and not yet arrived |
//! | `lost-child` | why an earlier day's upload child never arrived (shown by `status`) |
//! | `alarm` | a verification failure (fork, rollback, bad signature, failed inclusion) |
//! | `notice` | the last week sent, for the optional one-line notice of the host tool |
//! | `weeks/WEEK.pending.json` | a built, sampled report not yet accepted (resent as is) |
//! | `weeks/WEEK.sent.json` | the exact bytes accepted by the server (the copy kept) |
//! | `weeks/WEEK.rejected.json` (+ `.why`) | refused by the server (4xx): never retried |
//! | `weeks/WEEK.unsampled` | not sampled (`x >= sample_rate`): nothing is sent for that week |
//! | `weeks/WEEK.withdrawn` | built, then consent was withdrawn or narrowed before it left: never sent |
//! | `weeks/WEEK.now.json` | the last report of the week in progress sent early by `clearcount upload --now` (to a development server); the week's own upload is not affected |
//!
//! Every small file here is read with a cap and never through a symlink or from a FIFO; one
//! that is not a regular file of sensible size is set aside (`NAME.set-aside-...`) and read as
//! absent, so the next write replaces it (see [`crate::Layout`]); the alarm excepted, which
//! then reads as an alarm (see [`LogState::alarm`]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::clock::Week;
use crate::report::{ReportError, write_atomic};
use crate::{Layout, support};

/// Largest `endpoint` file read (a URL and a key).
const ENDPOINT_CAP: u64 = 4 * 1024;
/// Largest checkpoint note read (config-log's own limit for a checkpoint).
const CHECKPOINT_CAP: u64 = 64 * 1024;
/// Largest cached config read (the config schema's limit: 65,535 bytes).
const CONFIG_CAP: u64 = 65_535;
/// Largest alarm, refusal reason or `config-index` read.
const TEXT_CAP: u64 = 64 * 1024;

/// A server and the pinned verifier key of its config log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The server URL, e.g. `https://telemetry.example.org`.
    pub server: String,
    /// The log's verifier key, `name+hex(keyid)+base64(0x01||pubkey)`.
    pub log_key: String,
}

impl Endpoint {
    /// An endpoint (not checked: see [`Endpoint::check`]).
    pub fn new(server: impl Into<String>, log_key: impl Into<String>) -> Endpoint {
        Endpoint {
            server: server.into().trim_end_matches('/').to_string(),
            log_key: log_key.into().trim().to_string(),
        }
    }

    /// The log origin: the key's name (what precedes the first `+`).
    pub fn origin(&self) -> &str {
        self.log_key.split('+').next().unwrap_or("")
    }

    /// Whether the URL is http(s) and the key parses (without the `upload` feature, which has
    /// no key parser, whether it has the key's shape: `name+8 hex digits+base64`; the
    /// `clearcount` command that runs the upload then parses it).
    pub fn check(&self) -> Result<(), String> {
        if !(self.server.starts_with("https://") || self.server.starts_with("http://")) {
            return Err(format!("server {:?} is not an http(s) URL", self.server));
        }
        if self
            .server
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err("server URL has spaces".into());
        }
        #[cfg(feature = "upload")]
        return clearcount_config_log::note::Verifier::parse(&self.log_key)
            .map(|_| ())
            .map_err(|e| format!("log key: {e}"));
        #[cfg(not(feature = "upload"))]
        {
            let parts: Vec<&str> = self.log_key.splitn(3, '+').collect();
            let base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
            match parts[..] {
                [name, id, key]
                    if !name.is_empty()
                        && id.len() == 8
                        && id.chars().all(|c| c.is_ascii_hexdigit())
                        && !key.is_empty()
                        && key.chars().all(base64) =>
                {
                    Ok(())
                }
                _ => Err("log key: not name+keyid+key".into()),
            }
        }
    }

    /// The text of the `endpoint` file.
    pub fn render(&self) -> String {
        format!("server {}\nlog-key {}\n", self.server, self.log_key)
    }

    /// Parses the `endpoint` file.
    pub fn parse(text: &str) -> Option<Endpoint> {
        let mut server = None;
        let mut key = None;
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("server", s)) => server = Some(s.trim()),
                Some(("log-key", k)) => key = Some(k.trim()),
                _ => {}
            }
        }
        let e = Endpoint::new(server?, key?);
        e.check().ok()?;
        Some(e)
    }
}

/// The directory name of a log origin: characters other than `[A-Za-z0-9.-]` become `_`.
pub fn origin_dir_name(origin: &str) -> String {
    let s: String = origin
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

/// The files of one log's uploader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogState {
    dir: PathBuf,
}

/// Where a week stands with one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeekState {
    /// Nothing decided yet.
    Open,
    /// Built and sampled, waiting to be accepted.
    Pending,
    /// Accepted by the server.
    Sent,
    /// Refused by the server (4xx), with its reason.
    Rejected(String),
    /// Not sampled.
    Unsampled,
    /// Built, but consent no longer covered it when it was due to leave: never sent.
    Withdrawn(String),
}

impl LogState {
    /// The state of the log `origin` under `layout`.
    pub fn new(layout: &Layout, origin: &str) -> LogState {
        LogState {
            dir: layout.upload().join(origin_dir_name(origin)),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The endpoint file.
    pub fn endpoint_file(&self) -> PathBuf {
        self.dir.join("endpoint")
    }

    /// The token of the UTC day `day` (`YYYY-MM-DD`).
    pub fn token(&self, day: &str) -> PathBuf {
        self.dir.join(format!("token-{day}"))
    }

    /// The uploader's lock.
    pub fn lock_file(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// The remembered checkpoint note.
    pub fn checkpoint_file(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }

    /// The cached verified config.
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// The log index of the cached config.
    pub fn config_index_file(&self) -> PathBuf {
        self.dir.join("config-index")
    }

    /// The alarm file.
    pub fn alarm_file(&self) -> PathBuf {
        self.dir.join("alarm")
    }

    /// The notice file (last week sent).
    pub fn notice_file(&self) -> PathBuf {
        self.dir.join("notice")
    }

    /// The per-week directory.
    pub fn weeks(&self) -> PathBuf {
        self.dir.join("weeks")
    }

    fn week_file(&self, week: Week, suffix: &str) -> PathBuf {
        self.weeks().join(format!("{week}.{suffix}"))
    }

    /// The pending report of `week`.
    pub fn pending(&self, week: Week) -> PathBuf {
        self.week_file(week, "pending.json")
    }

    /// The copy of the report sent for `week`.
    pub fn sent(&self, week: Week) -> PathBuf {
        self.week_file(week, "sent.json")
    }

    /// The report of `week` the server refused.
    pub fn rejected(&self, week: Week) -> PathBuf {
        self.week_file(week, "rejected.json")
    }

    /// Why the server refused `week`.
    pub fn rejected_why(&self, week: Week) -> PathBuf {
        self.week_file(week, "rejected.why")
    }

    /// The copy of the last report of `week` sent early by `clearcount upload --now`.
    pub fn sent_now(&self, week: Week) -> PathBuf {
        self.week_file(week, "now.json")
    }

    /// The marker of a week not sampled.
    pub fn unsampled(&self, week: Week) -> PathBuf {
        self.week_file(week, "unsampled")
    }

    /// The marker of a week whose report was withdrawn before it left (holds why).
    pub fn withdrawn(&self, week: Week) -> PathBuf {
        self.week_file(week, "withdrawn")
    }

    /// Where `week` stands.
    pub fn week_state(&self, week: Week) -> WeekState {
        if self.sent(week).exists() {
            WeekState::Sent
        } else if self.withdrawn(week).exists() {
            WeekState::Withdrawn(read_text(&self.withdrawn(week), TEXT_CAP).unwrap_or_default())
        } else if self.rejected(week).exists() {
            WeekState::Rejected(read_text(&self.rejected_why(week), TEXT_CAP).unwrap_or_default())
        } else if self.unsampled(week).exists() {
            WeekState::Unsampled
        } else if self.pending(week).exists() {
            WeekState::Pending
        } else {
            WeekState::Open
        }
    }

    /// Every week with a decision, and its state, oldest first.
    pub fn decided_weeks(&self) -> Vec<(Week, WeekState)> {
        let mut weeks: Vec<Week> = fs::read_dir(self.weeks())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| crate::report::week_of_file_name(&e.file_name().to_string_lossy()))
            .collect();
        weeks.sort();
        weeks.dedup();
        weeks
            .into_iter()
            .map(|w| (w, self.week_state(w)))
            .filter(|(_, s)| *s != WeekState::Open)
            .collect()
    }

    /// The recorded endpoint.
    pub fn endpoint(&self) -> Option<Endpoint> {
        Endpoint::parse(&read_text(&self.endpoint_file(), ENDPOINT_CAP)?)
    }

    /// Records `endpoint` (when it differs from the recorded one).
    pub fn record_endpoint(&self, endpoint: &Endpoint) -> Result<(), ReportError> {
        if self.endpoint().as_ref() == Some(endpoint) {
            return Ok(());
        }
        create_dir(&self.dir)?;
        write_atomic(&self.endpoint_file(), endpoint.render().as_bytes())
    }

    /// The alarm text, if any. Something that cannot be read where the alarm belongs (a
    /// symlink, FIFO, directory, an oversized or unreadable file) is an alarm too, never "no
    /// alarm": a wrong type or size is set aside and replaced by an alarm that says so, which
    /// the user clears as any other.
    pub fn alarm(&self) -> Option<String> {
        let path = self.alarm_file();
        let e = match support::read_small(&path, TEXT_CAP) {
            Ok(text) => return text.map(|b| String::from_utf8_lossy(&b).into_owned()),
            Err(e) => e,
        };
        let mut text = format!("the alarm file {} cannot be read: {e}", path.display());
        let aside = if support::is_unfit(&e) {
            support::set_aside(&path).ok()
        } else {
            None
        };
        if let Some(aside) = aside {
            text.push_str(&format!("; it was set aside as {}", aside.display()));
            let _ = write_atomic(&path, text.as_bytes());
        }
        Some(text)
    }

    /// Records an alarm (the first one stays: it is the evidence).
    pub fn raise_alarm(&self, text: &str) -> Result<(), ReportError> {
        if self.alarm_file().exists() {
            return Ok(());
        }
        create_dir(&self.dir)?;
        write_atomic(&self.alarm_file(), text.as_bytes())
    }

    /// Removes the alarm; with `forget_checkpoint`, also the remembered checkpoint (the next
    /// verification trusts the log's checkpoint as on first use).
    pub fn clear_alarm(&self, forget_checkpoint: bool) -> io::Result<bool> {
        let had = remove_if_exists(&self.alarm_file())?;
        if forget_checkpoint {
            remove_if_exists(&self.checkpoint_file())?;
        }
        Ok(had)
    }

    /// The remembered checkpoint note.
    pub fn checkpoint_note(&self) -> Option<Vec<u8>> {
        support::read_kept(&self.checkpoint_file(), CHECKPOINT_CAP)
    }

    /// The cached config and its index.
    pub fn cached_config(&self) -> Option<(u64, Vec<u8>)> {
        let index = read_text(&self.config_index_file(), TEXT_CAP)?
            .trim()
            .parse()
            .ok()?;
        Some((index, support::read_kept(&self.config_file(), CONFIG_CAP)?))
    }

    /// The directory of verified config copies.
    pub fn configs(&self) -> PathBuf {
        self.dir.join("configs")
    }

    /// The copy of the verified config at log index `index`.
    pub fn config_copy_file(&self, index: u64) -> PathBuf {
        self.configs().join(format!("{index}.toml"))
    }

    /// The bytes of the verified config at `index`, when this machine verified it.
    pub fn config_copy_bytes(&self, index: u64) -> Option<Vec<u8>> {
        support::read_kept(&self.config_copy_file(index), CONFIG_CAP)
    }

    /// The verified config at `index`, parsed, when this machine verified it.
    #[cfg(feature = "upload")]
    pub fn config_copy(&self, index: u64) -> Option<clearcount_config_log::config::Config> {
        clearcount_config_log::config::Config::parse(&self.config_copy_bytes(index)?).ok()
    }

    /// Keeps a copy of the verified config at `index` (once; entries never change).
    pub fn keep_config_copy(&self, index: u64, config: &[u8]) -> Result<(), ReportError> {
        let path = self.config_copy_file(index);
        if path.exists() {
            return Ok(());
        }
        create_dir(&self.configs())?;
        write_atomic(&path, config)
    }

    /// The marker of an upload child started on `day` that has not arrived yet.
    pub fn child_marker(&self, day: &str) -> PathBuf {
        self.dir.join(format!("child-{day}"))
    }

    /// The note left when an upload child never arrived (shown by `clearcount status`).
    pub fn lost_child_file(&self) -> PathBuf {
        self.dir.join("lost-child")
    }

    /// Days whose upload child never arrived (markers of days other than `today`).
    pub fn lost_children(&self, today: &str) -> Vec<String> {
        let mut days: Vec<String> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let day = n.strip_prefix("child-")?.to_string();
                (day.len() == 10 && day != today).then_some(day)
            })
            .collect();
        days.sort();
        days
    }

    /// Remembers a verified checkpoint note, and caches the config entry at `index`.
    pub fn remember(&self, note: &[u8], index: u64, config: &[u8]) -> Result<(), ReportError> {
        create_dir(&self.dir)?;
        write_atomic(&self.checkpoint_file(), note)?;
        write_atomic(&self.config_file(), config)?;
        write_atomic(&self.config_index_file(), index.to_string().as_bytes())
    }

    /// Writes a week's file atomically.
    pub fn write_week(&self, path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
        create_dir(&self.weeks())?;
        write_atomic(path, bytes)
    }

    /// Removes tokens of days other than `day`.
    pub fn remove_old_tokens(&self, day: &str) {
        let keep = format!("token-{day}");
        for e in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let n = e.file_name();
            let n = n.to_string_lossy();
            if n.starts_with("token-") && n != keep {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    /// Deletes week files older than `oldest`.
    pub fn expire_before(&self, oldest: Week) {
        for e in fs::read_dir(self.weeks()).into_iter().flatten().flatten() {
            if crate::report::week_of_file_name(&e.file_name().to_string_lossy())
                .is_some_and(|w| w < oldest)
            {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// Every log with a directory under `<dir>/upload/`.
pub fn logs(layout: &Layout) -> Vec<LogState> {
    let mut out: Vec<LogState> = fs::read_dir(layout.upload())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| LogState { dir: e.path() })
        .collect();
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    out
}

/// One of the small text files here (see [`support::read_kept`]); not UTF-8 reads as absent.
fn read_text(path: &Path, cap: u64) -> Option<String> {
    String::from_utf8(support::read_kept(path, cap)?).ok()
}

fn create_dir(dir: &Path) -> Result<(), ReportError> {
    fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        what: "create",
        path: dir.to_path_buf(),
        source,
    })
}

fn remove_if_exists(p: &Path) -> io::Result<bool> {
    match fs::remove_file(p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn hostile_files_read_as_absent_and_an_unreadable_alarm_stays_an_alarm() {
        use crate::support::hostile::{THINGS, assert_outside_untouched, plant};
        for thing in THINGS {
            let dir = tempfile::tempdir().unwrap();
            let state = LogState::new(&Layout::new(dir.path().join("cc")), "test.example/c");
            let files = [
                state.endpoint_file(),
                state.checkpoint_file(),
                state.config_file(),
                state.alarm_file(),
            ];
            let outside = |i: usize| dir.path().join(format!("outside-{i}"));
            for (i, f) in files.iter().enumerate() {
                plant(thing, f, &outside(i), b"x");
            }
            fs::write(state.config_index_file(), b"3\n").unwrap();
            let what = format!("{thing:?}");
            assert_eq!(state.endpoint(), None, "{what}");
            assert_eq!(state.checkpoint_note(), None, "{what}");
            assert_eq!(state.cached_config(), None, "{what}");
            for f in &files[..3] {
                assert!(fs::symlink_metadata(f).is_err(), "{what}: {f:?} set aside");
            }
            let alarm = state.alarm().expect("an unreadable alarm is an alarm");
            assert!(alarm.contains("cannot be read"), "{what}: {alarm}");
            assert_eq!(fs::read_to_string(state.alarm_file()).unwrap(), alarm);
            assert!(state.clear_alarm(false).unwrap(), "{what}");
            assert_eq!(state.alarm(), None, "{what}");
            for i in 0..files.len() {
                assert_outside_untouched(thing, &outside(i), b"x", &what);
            }
        }
    }

    #[test]
    fn endpoint_round_trip_and_names() {
        // The example tools' verifier key: a real one, so that it passes the `upload` feature's
        // key parser as well as the shape check of recording-only builds.
        let key =
            "telemetry.example.org/config+b59e49b9+ASh3/3wT4sVlg0dVfsOW+n7twqUeLyaZTmHGrAke2Rpj";
        let e = Endpoint::new("http://127.0.0.1:8080/", key);
        assert_eq!(e.server, "http://127.0.0.1:8080");
        assert_eq!(e.origin(), "telemetry.example.org/config");
        e.check().unwrap();
        assert_eq!(Endpoint::parse(&e.render()), Some(e.clone()));
        assert!(Endpoint::new("ftp://x", key).check().is_err());
        for bad in [
            "not a key",
            "a+c0d6e8+AXc0",
            "+c0d6e8e4+AXc0",
            "a+c0d6e8e4+",
            "a+c0d6e8e4+A Xc0",
        ] {
            assert!(Endpoint::new("http://x", bad).check().is_err(), "{bad}");
        }
        assert_eq!(Endpoint::parse("server http://x\n"), None);
        assert_eq!(
            origin_dir_name("test.example/config"),
            "test.example_config"
        );
        assert_eq!(origin_dir_name(".."), "_..");
        assert_eq!(origin_dir_name(""), "_");
    }
}
