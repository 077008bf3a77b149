//! Commands that run and audit the log: keygen, init, append, checkpoint, verify, prove, note.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clearcount_config_log::checkpoint::Checkpoint;
use clearcount_config_log::merkle;
use clearcount_config_log::note::{self, Signer, Verifier};
use clearcount_config_log::reader::{DirSource, HttpSource, LogReader, TileSource};
use clearcount_config_log::store::{LogStore, StoreError};

/// Reads a signer key file.
fn read_signer(path: &Path) -> Result<Signer> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the signer key file {}", path.display()))?;
    Signer::parse(text.trim()).with_context(|| {
        format!(
            "{} is not a signer key (expected PRIVATE+KEY+name+keyid+key, as written by `clearcount-log keygen`)",
            path.display()
        )
    })
}

/// Reads a verifier key given as text or as a file holding it.
fn read_verifier(key: &str) -> Result<Verifier> {
    if let Ok(v) = Verifier::parse(key.trim()) {
        return Ok(v);
    }
    let text = std::fs::read_to_string(key).with_context(|| {
        format!("--key {key:?} is neither a verifier key (name+keyid+key) nor a readable file")
    })?;
    Verifier::parse(text.trim())
        .with_context(|| format!("{key} does not hold a verifier key (name+keyid+key)"))
}

fn stdout_write(data: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(data)
        .context("cannot write to standard output")?;
    out.flush().context("cannot write to standard output")
}

pub fn keygen(name: &str, out: &Path) -> Result<()> {
    let signer = Signer::generate(name)
        .with_context(|| format!("cannot make a key named {name:?} (no spaces or '+' allowed)"))?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(out).with_context(|| {
        format!(
            "cannot create {} (an existing key is never overwritten)",
            out.display()
        )
    })?;
    file.write_all(format!("{}\n", signer.to_key_string()).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "wrote the signer key to {} (mode 0600; keep it secret). Verifier key:",
        out.display()
    );
    stdout_write(format!("{}\n", signer.verifier()).as_bytes())
}

pub fn init(dir: &Path, key: &Path) -> Result<()> {
    let signer = read_signer(key)?;
    let log = LogStore::init(dir, &signer)
        .with_context(|| format!("cannot create a log in {}", dir.display()))?;
    eprintln!(
        "created an empty log {:?} in {}; verifier key:",
        log.origin(),
        dir.display()
    );
    stdout_write(format!("{}\n", signer.verifier()).as_bytes())
}

pub fn append(dir: &Path, config: &Path, key: &Path) -> Result<()> {
    let signer = read_signer(key)?;
    let bytes =
        std::fs::read(config).with_context(|| format!("cannot read {}", config.display()))?;
    let mut log =
        LogStore::open(dir).with_context(|| format!("cannot open the log in {}", dir.display()))?;
    let today = chrono::Utc::now().date_naive();
    match log.append_config(&bytes, &signer, today) {
        Ok(index) => {
            eprintln!(
                "appended {} as entry {index}; the log now has {} entries",
                config.display(),
                log.size()
            );
            stdout_write(format!("{index}\n").as_bytes())
        }
        Err(StoreError::Lint(problems)) => {
            let list: Vec<String> = problems
                .iter()
                .map(|p| format!("  {}: {}", p.place, p.message))
                .collect();
            bail!(
                "{} fails lint, nothing appended:\n{}",
                config.display(),
                list.join("\n")
            )
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot append {} to the log in {}",
                config.display(),
                dir.display()
            )
        }),
    }
}

pub fn checkpoint(dir: &Path) -> Result<()> {
    let log =
        LogStore::open(dir).with_context(|| format!("cannot open the log in {}", dir.display()))?;
    stdout_write(&log.checkpoint_note()?)
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

pub fn verify(dir_or_url: &str, key: &str, since: Option<&Path>) -> Result<()> {
    let verifier = read_verifier(key)?;
    let since = match since {
        None => None,
        Some(path) => {
            let note = std::fs::read(path)
                .with_context(|| format!("cannot read the older checkpoint {}", path.display()))?;
            Some(Checkpoint::open(&note, &verifier).with_context(|| {
                format!(
                    "the older checkpoint {} does not verify with the key",
                    path.display()
                )
            })?)
        }
    };
    if is_url(dir_or_url) {
        let source = HttpSource::new(dir_or_url).map_err(|e| anyhow!("{e}"))?;
        audit(source, verifier, since.as_ref(), dir_or_url)
    } else {
        let dir = Path::new(dir_or_url);
        if !dir.join("checkpoint").exists() {
            bail!("{dir_or_url} holds no log (no checkpoint file)");
        }
        audit(DirSource::new(dir), verifier, since.as_ref(), dir_or_url)
    }
}

fn audit<S: TileSource>(
    source: S,
    verifier: Verifier,
    since: Option<&Checkpoint>,
    name: &str,
) -> Result<()> {
    let reader = LogReader::new(verifier, source);
    let report = reader
        .audit(since)
        .with_context(|| format!("log {name} FAILED verification"))?;
    let c = &report.checkpoint;
    let mut msg = format!(
        "ok: log {:?} at {name}: {} entries, root {}, signature verified, {} hash tiles recomputed from the entries",
        c.origin,
        c.size,
        B64.encode(c.root),
        report.tiles_checked
    );
    if let Some(old) = since {
        msg.push_str(&format!(
            ", consistent with the older checkpoint of {} entries",
            old.size
        ));
    }
    stdout_write(format!("{msg}\n").as_bytes())
}

pub fn prove(dir: &Path, index: u64, old_size: Option<u64>) -> Result<()> {
    let log =
        LogStore::open(dir).with_context(|| format!("cannot open the log in {}", dir.display()))?;
    let size = log.size();
    if index >= size {
        bail!("entry {index} is not in the log, which has {size} entries");
    }
    let tree = log
        .tree()
        .with_context(|| format!("cannot read the tiles of {}", dir.display()))?;
    let entry = log.entry(index)?;
    let leaf = merkle::leaf_hash(&entry);
    let proof = tree.inclusion_proof(index, size)?;
    merkle::verify_inclusion(index, size, &leaf, &proof, &log.root())
        .context("the log's own inclusion proof does not verify: the log is corrupt")?;
    let mut out = String::new();
    out.push_str(&format!("origin {}\n", log.origin()));
    out.push_str(&format!("size {size}\n"));
    out.push_str(&format!("root {}\n", B64.encode(log.root())));
    out.push_str(&format!("index {index}\n"));
    out.push_str(&format!("leaf {}\n", B64.encode(leaf)));
    out.push_str(&format!("inclusion {}\n", proof.len()));
    for h in &proof {
        out.push_str(&format!("{}\n", B64.encode(h)));
    }
    if let Some(old) = old_size {
        if old > size {
            bail!("--old-size {old} is larger than the log ({size} entries)");
        }
        let old_root = tree.root(old)?;
        let proof = tree.consistency_proof(old, size)?;
        merkle::extends(old, size, &proof, &old_root, &log.root())
            .context("the log's own consistency proof does not verify: the log is corrupt")?;
        out.push_str(&format!("old-size {old}\n"));
        out.push_str(&format!("old-root {}\n", B64.encode(old_root)));
        out.push_str(&format!("consistency {}\n", proof.len()));
        for h in &proof {
            out.push_str(&format!("{}\n", B64.encode(h)));
        }
    }
    stdout_write(out.as_bytes())
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut data = Vec::new();
    std::io::stdin()
        .lock()
        .take(1 << 20)
        .read_to_end(&mut data)
        .context("cannot read standard input")?;
    Ok(data)
}

pub fn note_sign(key: &Path) -> Result<()> {
    let signer = read_signer(key)?;
    let data = read_stdin()?;
    let text = String::from_utf8(data).context("the text on standard input is not UTF-8")?;
    let signed = note::sign(&text, &[], &[&signer])
        .context("cannot sign the text (it must end in a newline and have no blank last line)")?;
    // A text with a blank line at its end or control characters would not open again.
    note::split(signed.as_bytes()).context("the text cannot be a note")?;
    stdout_write(signed.as_bytes())
}

pub fn note_verify(key: &str) -> Result<()> {
    let verifier = read_verifier(key)?;
    let data = read_stdin()?;
    let opened = note::open(&data, std::slice::from_ref(&verifier))
        .with_context(|| format!("the note does not verify with {verifier}"))?;
    stdout_write(opened.text.as_bytes())
}
