//! Reading a container's json-file log (written by its shim), with rotation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which output a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStreamKind {
    Stdout,
    Stderr,
}

/// One log entry (a line, or a chunk of a partial line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: LogStreamKind,
    pub time: DateTime<Utc>,
    pub bytes: Vec<u8>,
}

/// `logs` options (Docker's query).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    /// Only the last N lines (`None` = all).
    pub tail: Option<usize>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub stdout: bool,
    pub stderr: bool,
}

/// The entries, in order; the channel closes at the end (or, with `follow`, when the
/// container stops and everything is read). An error ends the stream.
pub type LogReceiver = tokio::sync::mpsc::Receiver<crate::Result<LogEntry>>;
