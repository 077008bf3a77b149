//! C2SP tlog-checkpoint: `origin\nsize\nbase64(root)\n` plus optional extension lines, the
//! text of a signed note.
//!
//! ```
//! use clearcount_config_log::checkpoint::Checkpoint;
//! use clearcount_config_log::merkle::empty_root;
//!
//! let c = Checkpoint::new("example.org/log", 0, empty_root());
//! let text = c.to_text();
//! assert_eq!(text, "example.org/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n");
//! assert_eq!(Checkpoint::parse(&text)?, c);
//! # Ok::<(), clearcount_config_log::checkpoint::CheckpointError>(())
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::merkle::Hash;
use crate::note::{self, NoteError, Signer, Verifier};

/// Why text is not a checkpoint, or a signed checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The text is not a checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The signed note around it failed.
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// The checkpoint is of another log.
    #[error("checkpoint origin is {found:?}, expected {expected:?}")]
    Origin {
        /// The origin the key names.
        expected: String,
        /// The origin in the checkpoint.
        found: String,
    },
}

/// A checkpoint: the origin (the log's name), the tree size and the root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Number of entries.
    pub size: u64,
    /// The tree root.
    pub root: Hash,
    /// Extension lines (each without its newline), kept verbatim.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: &str, size: u64, root: Hash) -> Self {
        Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// Parses checkpoint text (the note text, ending in a newline). Strict: the size is
    /// canonical decimal, the root canonical base64 of 32 bytes, no line is empty.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("does not end in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or("");
        if origin.is_empty() {
            return Err(CheckpointError::Malformed("empty origin"));
        }
        if origin.chars().any(char::is_control) {
            return Err(CheckpointError::Malformed("control character in origin"));
        }
        let size_text = lines
            .next()
            .ok_or(CheckpointError::Malformed("no size line"))?;
        let canonical = !size_text.is_empty()
            && size_text.bytes().all(|b| b.is_ascii_digit())
            && (size_text == "0" || !size_text.starts_with('0'));
        if !canonical {
            return Err(CheckpointError::Malformed("size is not a decimal number"));
        }
        let size: u64 = size_text
            .parse()
            .map_err(|_| CheckpointError::Malformed("size is too large"))?;
        let root_text = lines
            .next()
            .ok_or(CheckpointError::Malformed("no root hash line"))?;
        let root: Hash = B64
            .decode(root_text)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(CheckpointError::Malformed("root is not base64 of 32 bytes"))?;
        let mut extensions = Vec::new();
        for line in lines {
            if line.is_empty() {
                return Err(CheckpointError::Malformed("empty extension line"));
            }
            if line.chars().any(char::is_control) {
                return Err(CheckpointError::Malformed("control character"));
            }
            extensions.push(line.to_string());
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }

    /// The checkpoint text.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }

    /// The signed checkpoint note (the signer's name must be the origin).
    pub fn sign(&self, signer: &Signer) -> Result<String, CheckpointError> {
        if signer.name() != self.origin {
            return Err(CheckpointError::Origin {
                expected: signer.name().to_string(),
                found: self.origin.clone(),
            });
        }
        Ok(note::sign(&self.to_text(), &[], &[signer])?)
    }

    /// Opens a signed checkpoint note: the signature by `verifier` must verify and the
    /// origin must be the key's name.
    pub fn open(msg: &[u8], verifier: &Verifier) -> Result<Checkpoint, CheckpointError> {
        let opened = note::open(msg, std::slice::from_ref(verifier))?;
        let c = Checkpoint::parse(&opened.text)?;
        if c.origin != verifier.name() {
            return Err(CheckpointError::Origin {
                expected: verifier.name().to_string(),
                found: c.origin,
            });
        }
        Ok(c)
    }

    /// Parses a signed checkpoint note WITHOUT verifying any signature (for tools that have
    /// no key; never trust the result).
    pub fn parse_note_unverified(msg: &[u8]) -> Result<Checkpoint, CheckpointError> {
        Checkpoint::parse(note::text_unverified(msg)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_canonical_text() {
        let root = B64.encode([7u8; 32]);
        for bad in [
            format!("o\n01\n{root}\n"),
            format!("o\n+1\n{root}\n"),
            format!("o\n1\n{root}"),
            format!("\n1\n{root}\n"),
            format!("o\n1\n{root}\n\n"),
            "o\n1\nAAAA\n".to_string(),
            "o\n1\n".to_string(),
            format!("o\n99999999999999999999\n{root}\n"),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
        }
        let ok = Checkpoint::parse(&format!("o\n1\n{root}\next one\n")).unwrap();
        assert_eq!(ok.extensions, vec!["ext one".to_string()]);
        assert_eq!(Checkpoint::parse(&ok.to_text()).unwrap(), ok);
    }

    #[test]
    fn sign_and_open() {
        let s = Signer::generate("example.org/log").unwrap();
        let c = Checkpoint::new("example.org/log", 3, [1; 32]);
        let note = c.sign(&s).unwrap();
        assert_eq!(Checkpoint::open(note.as_bytes(), &s.verifier()).unwrap(), c);
        let other = Signer::generate("other").unwrap();
        assert!(c.sign(&other).is_err());
        assert!(Checkpoint::open(note.as_bytes(), &other.verifier()).is_err());
    }
}
