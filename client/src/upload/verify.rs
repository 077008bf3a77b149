//! Fetching the latest config from the log and verifying it against the pinned key and the
//! remembered checkpoint.

use clearcount_config_log::checkpoint::Checkpoint;
use clearcount_config_log::config::Config;
use clearcount_config_log::note::Verifier;
use clearcount_config_log::reader::{HttpSource, LogReader, TileSource, VerifyError};

use super::state::{Endpoint, LogState};

/// A config proven to be in the log.
#[derive(Debug, Clone)]
pub struct VerifiedConfig {
    /// The parsed config.
    pub config: Config,
    /// Its exact bytes (the log entry).
    pub bytes: Vec<u8>,
    /// Its log index.
    pub index: u64,
    /// The checkpoint that proves it (now remembered).
    pub checkpoint: Checkpoint,
    /// The remembered checkpoint before this verification, if any.
    pub previous: Option<Checkpoint>,
}

/// Why no verified config is available.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFetchError {
    /// Evidence that the log misbehaves (bad signature, another key, rollback, fork, a modified
    /// entry or tile): recorded as an alarm; nothing is uploaded until the user clears it.
    #[error("ALARM: {0}")]
    Alarm(String),
    /// An alarm recorded earlier is still standing.
    #[error("an earlier alarm stands: {0}")]
    AlarmStanding(String),
    /// The log could not be reached or answered garbage: tried again another day.
    #[error("config log unavailable: {0}")]
    Unavailable(String),
    /// The key or URL is unusable.
    #[error("bad endpoint: {0}")]
    BadEndpoint(String),
    /// The verified entry is not a usable config.
    #[error("the config at index {index} cannot be used: {why}")]
    BadConfig {
        /// Its index.
        index: u64,
        /// Why.
        why: String,
    },
    /// Local files could not be written.
    #[error("{0}")]
    Local(String),
}

/// Whether a verification failure is evidence against the log (an alarm) rather than a
/// transient problem.
pub fn is_alarm(e: &VerifyError) -> bool {
    matches!(
        e,
        VerifyError::Signature(_)
            | VerifyError::Origin { .. }
            | VerifyError::Rollback { .. }
            | VerifyError::Fork { .. }
            | VerifyError::Inclusion { .. }
            | VerifyError::MalformedTile { .. }
    )
}

/// Fetches and verifies the latest config of `endpoint`'s log over HTTP.
pub fn fetch_verified(
    endpoint: &Endpoint,
    state: &LogState,
    index: Option<u64>,
) -> Result<VerifiedConfig, ConfigFetchError> {
    let source = HttpSource::for_server(&endpoint.server)
        .map_err(|e| ConfigFetchError::Unavailable(e.to_string()))?;
    verify_with(endpoint, state, &source, index)
}

/// Verifies the latest checkpoint of the log at `source` and the config at `index` (default:
/// the latest entry): signature by the pinned key, consistency with the remembered checkpoint,
/// inclusion of the entry. On success the checkpoint is remembered, the config cached (when it
/// is the latest) and a copy kept by index (consent is to one config); a failure that is
/// evidence against the log raises the alarm.
pub fn verify_with<S: TileSource>(
    endpoint: &Endpoint,
    state: &LogState,
    source: S,
    index: Option<u64>,
) -> Result<VerifiedConfig, ConfigFetchError> {
    let verifier = Verifier::parse(&endpoint.log_key)
        .map_err(|e| ConfigFetchError::BadEndpoint(format!("log key: {e}")))?;
    let reader = LogReader::new(verifier, source);
    let previous = match state.checkpoint_note() {
        // The remembered note was verified when it was stored; a damaged one is re-verified
        // and otherwise ignored (trust on first use again would hide a rollback, so it is an
        // alarm instead).
        Some(note) => match reader.open_checkpoint(&note) {
            Ok(c) => Some(c),
            Err(e) => {
                let text = format!("the remembered checkpoint no longer verifies: {e}");
                let _ = state.raise_alarm(&alarm_text(endpoint, &text));
                return Err(ConfigFetchError::Alarm(text));
            }
        },
        None => None,
    };
    let classify = |e: VerifyError| {
        if is_alarm(&e) {
            let text = e.to_string();
            let _ = state.raise_alarm(&alarm_text(endpoint, &text));
            ConfigFetchError::Alarm(text)
        } else {
            ConfigFetchError::Unavailable(e.to_string())
        }
    };
    let (checkpoint, note) = reader.latest(previous.as_ref()).map_err(classify)?;
    if checkpoint.size == 0 {
        return Err(ConfigFetchError::Unavailable("the log is empty".into()));
    }
    let index = index.unwrap_or(checkpoint.size - 1);
    let bytes = reader.entry(&checkpoint, index).map_err(classify)?;
    let config = Config::parse(&bytes).map_err(|e| ConfigFetchError::BadConfig {
        index,
        why: e.to_string(),
    })?;
    if config.origin != endpoint.origin() {
        return Err(ConfigFetchError::BadConfig {
            index,
            why: format!(
                "its origin {:?} is not the log's {:?}",
                config.origin,
                endpoint.origin()
            ),
        });
    }
    // Only the latest config is cached; the checkpoint is remembered either way.
    let (cache_index, cache_bytes) = if index == checkpoint.size - 1 {
        (index, bytes.clone())
    } else {
        state
            .cached_config()
            .unwrap_or_else(|| (index, bytes.clone()))
    };
    state
        .remember(&note, cache_index, &cache_bytes)
        .and_then(|()| state.keep_config_copy(index, &bytes))
        .map_err(|e| ConfigFetchError::Local(e.to_string()))?;
    Ok(VerifiedConfig {
        config,
        bytes,
        index,
        checkpoint,
        previous,
    })
}

fn alarm_text(endpoint: &Endpoint, what: &str) -> String {
    format!(
        "time: {}\nserver: {}\nlog: {}\nproblem: {what}\n",
        crate::clock::format_rfc3339(crate::clock::now_unix()),
        endpoint.server,
        endpoint.origin()
    )
}
