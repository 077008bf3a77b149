//! C2SP signed notes with Ed25519; key formats of Go's `golang.org/x/mod/sumdb/note`.
//!
//! - verifier key: `name+hex8(keyid)+base64(0x01 || public key)`
//! - signer key: `PRIVATE+KEY+name+hex8(keyid)+base64(0x01 || seed)`
//! - key id: the first 4 bytes of `SHA-256(name || "\n" || 0x01 || public key)`
//! - note: text (ending in `\n`), a blank line, then lines `— name base64(keyid || sig)`.
//!
//! Signing reproduces Go's notes byte for byte (Ed25519 is deterministic).
//!
//! ```
//! use clearcount_config_log::note::{Signer, Verifier, sign, open};
//!
//! let signer = Signer::generate("example.org/log")?;
//! let verifier: Verifier = signer.verifier();
//! let text = verifier.to_string(); // "example.org/log+<keyid>+<key>"
//! let verifier = Verifier::parse(&text)?;
//! let signed = sign("hello\n", &[], &[&signer])?;
//! let opened = open(signed.as_bytes(), &[verifier])?;
//! assert_eq!(opened.text, "hello\n");
//! # Ok::<(), clearcount_config_log::note::NoteError>(())
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The algorithm byte of Ed25519 keys.
const ALG_ED25519: u8 = 0x01;
/// The prefix of a signature line: U+2014 EM DASH and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// At most this many signature lines are read (as Go does).
pub const MAX_SIGNATURES: usize = 100;

/// Why a key or a note was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The verifier key text is not `name+hex8+base64`.
    #[error("malformed verifier key")]
    MalformedVerifier,
    /// The signer key text is not `PRIVATE+KEY+name+hex8+base64`.
    #[error("malformed signer key")]
    MalformedSigner,
    /// The key uses an algorithm other than Ed25519.
    #[error("unknown key algorithm")]
    UnknownAlgorithm,
    /// The key id does not match the name and key.
    #[error("key id does not match the key name and key")]
    KeyIdMismatch,
    /// The key name is empty, contains a space or a `+`.
    #[error("invalid key name {0:?}")]
    InvalidName(String),
    /// The note is not a well-formed signed note.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// A signature by a known key does not verify.
    #[error("invalid signature for key {name}+{key_id:08x}")]
    InvalidSignature {
        /// Key name.
        name: String,
        /// Key id.
        key_id: u32,
    },
    /// Several given verifiers have this name and key id.
    #[error("ambiguous key {name}+{key_id:08x}")]
    AmbiguousKey {
        /// Key name.
        name: String,
        /// Key id.
        key_id: u32,
    },
    /// No signature by any given key.
    #[error("note has no verifiable signatures")]
    Unverified,
    /// The random number generator failed.
    #[error("random number generator failed")]
    Random,
}

/// The key id of an Ed25519 key: the first 4 bytes, big-endian, of
/// `SHA-256(name || "\n" || 0x01 || public key)`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Whether a key name is valid: non-empty, no Unicode white space, no `+`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

/// Parses exactly 8 hex digits (either case), as Go's `strconv.ParseUint(s, 16, 32)` with a
/// length check does.
fn parse_hex8(s: &str) -> Option<u32> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// A public key that verifies notes.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key_id: u32,
    public_key: [u8; 32],
    /// The key decoded once (a point decompression per verification would cost a tenth of
    /// it); `None` when the 32 bytes are not a curve point: then no signature verifies, as in
    /// Go, whose `note.NewVerifier` accepts such a key too.
    decoded: Option<VerifyingKey>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verifier({self})")
    }
}

impl Verifier {
    /// Parses a verifier key `name+hex8(keyid)+base64(0x01 || public key)`.
    pub fn parse(text: &str) -> Result<Verifier, NoteError> {
        let (name, rest) = text.split_once('+').ok_or(NoteError::MalformedVerifier)?;
        let (hex8, key64) = rest.split_once('+').ok_or(NoteError::MalformedVerifier)?;
        let id = parse_hex8(hex8).ok_or(NoteError::MalformedVerifier)?;
        let key = B64
            .decode(key64)
            .map_err(|_| NoteError::MalformedVerifier)?;
        if !is_valid_name(name) || key.is_empty() {
            return Err(NoteError::MalformedVerifier);
        }
        if key[0] != ALG_ED25519 {
            return Err(NoteError::UnknownAlgorithm);
        }
        let public_key: [u8; 32] = key[1..]
            .try_into()
            .map_err(|_| NoteError::MalformedVerifier)?;
        if key_id(name, &public_key) != id {
            return Err(NoteError::KeyIdMismatch);
        }
        Ok(Verifier::new(name, id, public_key))
    }

    fn new(name: &str, key_id: u32, public_key: [u8; 32]) -> Verifier {
        Verifier {
            name: name.to_string(),
            key_id,
            public_key,
            decoded: VerifyingKey::from_bytes(&public_key).ok(),
        }
    }

    /// The key name (for a log: its origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// Whether `sig` (64 bytes, without the key id) is this key's signature of `msg`.
    ///
    /// The rules are those of Go's `crypto/ed25519.Verify`, which Go's note package uses (and
    /// ring's, which this crate used before): S must be canonical (below the group order),
    /// the check is the cofactorless `[S]B = R + [k]A` with the computed R compared to the
    /// signature's R byte for byte, and small-order keys and R are not refused. That is
    /// ed25519-dalek's `verify`; its `verify_strict` would also refuse small-order points,
    /// which Go accepts, so a note valid for Go could fail here (and it is slower). A log's
    /// key is pinned, so a weak key could only be the log operator's own choice.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        use ed25519_dalek::Verifier as _;
        let (Some(key), Ok(sig)) = (&self.decoded, ed25519_dalek::Signature::from_slice(sig))
        else {
            return false;
        };
        key.verify(msg, &sig).is_ok()
    }
}

impl fmt::Display for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = Vec::with_capacity(33);
        key.push(ALG_ED25519);
        key.extend_from_slice(&self.public_key);
        write!(f, "{}+{:08x}+{}", self.name, self.key_id, B64.encode(key))
    }
}

impl std::str::FromStr for Verifier {
    type Err = NoteError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Verifier::parse(s)
    }
}

/// A private key that signs notes. Its [`Debug`](fmt::Debug) output hides the seed.
pub struct Signer {
    verifier: Verifier,
    seed: [u8; 32],
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({}, seed hidden)", self.verifier)
    }
}

impl Signer {
    /// A new key named `name` from the operating system's CSPRNG.
    pub fn generate(name: &str) -> Result<Signer, NoteError> {
        use rand::TryRngCore;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|_| NoteError::Random)?;
        Signer::from_seed(name, seed)
    }

    /// The key named `name` with this Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Signer, NoteError> {
        if !is_valid_name(name) {
            return Err(NoteError::InvalidName(name.to_string()));
        }
        let key = SigningKey::from_bytes(&seed);
        let public_key = key.verifying_key().to_bytes();
        Ok(Signer {
            verifier: Verifier::new(name, key_id(name, &public_key), public_key),
            seed,
            key,
        })
    }

    /// Parses a signer key `PRIVATE+KEY+name+hex8(keyid)+base64(0x01 || seed)`.
    pub fn parse(text: &str) -> Result<Signer, NoteError> {
        let rest = text
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::MalformedSigner)?;
        let (name, rest) = rest.split_once('+').ok_or(NoteError::MalformedSigner)?;
        let (hex8, key64) = rest.split_once('+').ok_or(NoteError::MalformedSigner)?;
        let id = parse_hex8(hex8).ok_or(NoteError::MalformedSigner)?;
        let key = B64.decode(key64).map_err(|_| NoteError::MalformedSigner)?;
        if !is_valid_name(name) || key.is_empty() {
            return Err(NoteError::MalformedSigner);
        }
        if key[0] != ALG_ED25519 {
            return Err(NoteError::UnknownAlgorithm);
        }
        let seed: [u8; 32] = key[1..]
            .try_into()
            .map_err(|_| NoteError::MalformedSigner)?;
        let signer = Signer::from_seed(name, seed)?;
        if signer.verifier.key_id != id {
            return Err(NoteError::KeyIdMismatch);
        }
        Ok(signer)
    }

    /// The signer key text (secret!), as Go writes it.
    pub fn to_key_string(&self) -> String {
        let mut key = Vec::with_capacity(33);
        key.push(ALG_ED25519);
        key.extend_from_slice(&self.seed);
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.verifier.name,
            self.verifier.key_id,
            B64.encode(key)
        )
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.verifier.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.verifier.key_id
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> Verifier {
        self.verifier.clone()
    }

    /// The raw 64-byte Ed25519 signature of `msg`.
    pub fn sign_raw(&self, msg: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.key.sign(msg).to_bytes()
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Key name.
    pub name: String,
    /// Key id (the first 4 bytes of the decoded signature).
    pub key_id: u32,
    /// The base64 text of `key id || signature`.
    pub base64: String,
}

/// A note after [`open`]: its text and its signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedNote {
    /// The text, ending in `\n`.
    pub text: String,
    /// Signatures that verified, in note order, without duplicates.
    pub sigs: Vec<Signature>,
    /// Signatures by keys not given, in note order, identical ones once.
    pub unverified: Vec<Signature>,
}

/// Signs `text` (which must end in `\n`) with every signer, as Go's `note.Sign` does: the
/// text, a blank line, the `existing` signatures that no signer replaces (same name and key
/// id), then the new signatures in signer order.
pub fn sign(text: &str, existing: &[Signature], signers: &[&Signer]) -> Result<String, NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text does not end in a newline"));
    }
    let line = |name: &str, b64: &str| format!("{SIG_PREFIX}{name} {b64}\n");
    let mut fresh = String::new();
    for s in signers {
        if !is_valid_name(s.name()) {
            return Err(NoteError::InvalidName(s.name().to_string()));
        }
        let mut raw = Vec::with_capacity(68);
        raw.extend_from_slice(&s.key_id().to_be_bytes());
        raw.extend_from_slice(&s.sign_raw(text.as_bytes()));
        fresh.push_str(&line(s.name(), &B64.encode(raw)));
    }
    let replaced = |sig: &Signature| {
        signers
            .iter()
            .any(|s| s.name() == sig.name && s.key_id() == sig.key_id)
    };
    let mut kept = String::new();
    for sig in existing {
        if !is_valid_name(&sig.name) {
            return Err(NoteError::Malformed(
                "invalid name in an existing signature",
            ));
        }
        if replaced(sig) {
            continue;
        }
        let raw = B64
            .decode(&sig.base64)
            .map_err(|_| NoteError::Malformed("existing signature is not base64"))?;
        if raw.len() < 4 || u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) != sig.key_id {
            return Err(NoteError::Malformed(
                "existing signature does not start with its key id",
            ));
        }
        kept.push_str(&line(&sig.name, &sig.base64));
    }
    Ok(format!("{text}\n{kept}{fresh}"))
}

/// Splits a signed note into its text and its signature block, checking the framing (valid
/// UTF-8, no control characters but newline, a blank line before the signatures, a final
/// newline) but no signature.
pub fn split(msg: &[u8]) -> Result<(&str, &str), NoteError> {
    let s = std::str::from_utf8(msg).map_err(|_| NoteError::Malformed("not UTF-8"))?;
    if s.chars().any(|c| (c as u32) < 0x20 && c != '\n') {
        return Err(NoteError::Malformed("control character"));
    }
    let at = s
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let (text, sigs) = (&s[..at + 1], &s[at + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(NoteError::Malformed(
            "signature block empty or without final newline",
        ));
    }
    Ok((text, sigs))
}

/// The text of a signed note, checking its framing and signature syntax but verifying no
/// signature. Use only where no key is at hand and the text is not trusted.
pub fn text_unverified(msg: &[u8]) -> Result<&str, NoteError> {
    let (text, sigs) = split(msg)?;
    parse_sig_lines(sigs)?;
    Ok(text)
}

struct SigLine<'a> {
    name: &'a str,
    key_id: u32,
    b64: &'a str,
    sig: Vec<u8>,
}

fn parse_sig_lines(sigs: &str) -> Result<Vec<SigLine<'_>>, NoteError> {
    let mut out = Vec::new();
    for line in sigs.split_terminator('\n') {
        let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
            "a line after the blank line is not a signature",
        ))?;
        let (name, b64) = rest.split_once(' ').unwrap_or((rest, ""));
        let raw = B64
            .decode(b64)
            .map_err(|_| NoteError::Malformed("signature is not base64"))?;
        if !is_valid_name(name) || b64.is_empty() || raw.len() < 5 {
            return Err(NoteError::Malformed("bad signature line"));
        }
        if out.len() == MAX_SIGNATURES {
            return Err(NoteError::Malformed("more than 100 signatures"));
        }
        out.push(SigLine {
            name,
            key_id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
            b64,
            sig: raw[4..].to_vec(),
        });
    }
    Ok(out)
}

/// Opens a signed note: checks its framing and verifies it with the given keys. Signatures
/// by unknown keys are ignored (and listed); a signature by a known key that does not verify
/// rejects the note; at least one signature must verify.
pub fn open(msg: &[u8], verifiers: &[Verifier]) -> Result<OpenedNote, NoteError> {
    let (text, sigs) = split(msg)?;
    let lines = parse_sig_lines(sigs)?;
    let mut verified: Vec<Signature> = Vec::new();
    let mut unverified: Vec<Signature> = Vec::new();
    for line in lines {
        let mut matching = verifiers
            .iter()
            .filter(|v| v.name == line.name && v.key_id == line.key_id);
        let Some(v) = matching.next() else {
            let sig = Signature {
                name: line.name.to_string(),
                key_id: line.key_id,
                base64: line.b64.to_string(),
            };
            if !unverified.contains(&sig) {
                unverified.push(sig);
            }
            continue;
        };
        if matching.next().is_some() {
            return Err(NoteError::AmbiguousKey {
                name: line.name.to_string(),
                key_id: line.key_id,
            });
        }
        if verified
            .iter()
            .any(|s| s.name == line.name && s.key_id == line.key_id)
        {
            continue;
        }
        if !v.verify(text.as_bytes(), &line.sig) {
            return Err(NoteError::InvalidSignature {
                name: line.name.to_string(),
                key_id: line.key_id,
            });
        }
        verified.push(Signature {
            name: line.name.to_string(),
            key_id: line.key_id,
            base64: line.b64.to_string(),
        });
    }
    if verified.is_empty() {
        return Err(NoteError::Unverified);
    }
    Ok(OpenedNote {
        text: text.to_string(),
        sigs: verified,
        unverified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip() {
        let s = Signer::generate("example.org/log").unwrap();
        let again = Signer::parse(&s.to_key_string()).unwrap();
        assert_eq!(again.verifier(), s.verifier());
        let v = Verifier::parse(&s.verifier().to_string()).unwrap();
        assert_eq!(v, s.verifier());
        let other = Signer::generate("example.org/log").unwrap();
        assert_ne!(other.verifier(), s.verifier());
    }

    #[test]
    fn signed_note_opens_and_tampering_fails() {
        let s = Signer::generate("n").unwrap();
        let note = sign("a\nb\n", &[], &[&s]).unwrap();
        assert_eq!(
            open(note.as_bytes(), &[s.verifier()]).unwrap().text,
            "a\nb\n"
        );
        let tampered = note.replacen("a\n", "c\n", 1);
        assert!(matches!(
            open(tampered.as_bytes(), &[s.verifier()]),
            Err(NoteError::InvalidSignature { .. })
        ));
        assert_eq!(open(note.as_bytes(), &[]), Err(NoteError::Unverified));
    }

    /// The verification rules are Go's `crypto/ed25519` (see [`Verifier::verify`]).
    #[test]
    fn verification_rules_are_gos() {
        let s = Signer::from_seed("n", [3; 32]).unwrap();
        let v = s.verifier();
        let sig = s.sign_raw(b"msg\n");
        assert!(v.verify(b"msg\n", &sig));
        assert!(!v.verify(b"msg\n", &sig[..63]));
        // S + L (the group order) is the same scalar, not canonical: refused, as in Go.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut high = sig;
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(high[32 + i]) + u16::from(L[i]) + carry;
            high[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        assert!(!v.verify(b"msg\n", &high));
        // A small-order key (the identity) with R = identity and S = 0 verifies any message
        // under the cofactorless check: Go accepts it, so we do (verify_strict would not).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = Verifier::new("w", key_id("w", &identity), identity);
        let mut weak_sig = [0u8; 64];
        weak_sig[0] = 1;
        assert!(weak.verify(b"anything\n", &weak_sig));
        // A key that is not a curve point parses (as in Go) but verifies nothing.
        let mut not_point = [0u8; 32];
        not_point[0] = 2;
        let bad =
            Verifier::parse(&Verifier::new("b", key_id("b", &not_point), not_point).to_string())
                .unwrap();
        assert!(bad.decoded.is_none());
        assert!(!bad.verify(b"msg\n", &sig));
    }

    #[test]
    fn invalid_names_are_refused() {
        assert!(Signer::from_seed("bad name", [0; 32]).is_err());
        assert!(Signer::from_seed("a+b", [0; 32]).is_err());
        assert!(Signer::from_seed("", [0; 32]).is_err());
    }
}
