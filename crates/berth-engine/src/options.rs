//! Small option and result types shared by the container services.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Docker's `filters`: key → accepted values (`{"status":["running"],"label":["a=b"]}`).
pub type Filters = BTreeMap<String, Vec<String>>;

/// `create` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateResult {
    pub id: String,
    pub warnings: Vec<String>,
}

/// `list` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Include stopped containers.
    pub all: bool,
    /// Only the `limit` most recently created (0 = no limit; implies `all`).
    pub limit: usize,
    pub filters: Filters,
}

/// `remove` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoveOptions {
    /// Kill a running container first.
    pub force: bool,
    /// Remove anonymous volumes too.
    pub volumes: bool,
}

/// `wait` condition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WaitCondition {
    /// Return at once if not running, else at the next exit (the `docker wait` default).
    #[default]
    NotRunning,
    /// The next exit, even if the container is not running yet (`docker run`).
    NextExit,
    /// After the container is removed (`docker run --rm`).
    Removed,
}

impl WaitCondition {
    /// Parse Docker's query value (`not-running`, `next-exit`, `removed`, empty).
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(crate::EngineError::invalid(format!(
                "invalid condition: \"{other}\"; use not-running, next-exit or removed"
            ))),
        }
    }
}

/// What `wait` resolves to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitResult {
    pub status_code: i64,
    /// Set when the wait could not observe an exit (e.g. the engine shut down).
    pub error: Option<String>,
}

/// `top` reply: `ps` columns and rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopResult {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// `prune` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    pub deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// `attach` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Replay the logs first.
    pub logs: bool,
    /// Stream live output (Docker's `stream=1`).
    pub stream: bool,
}
