//! Image services: the engine's face over berth-image (pull, list, inspect, tag, remove,
//! import), with the "in use by a container" checks the store cannot make.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The runtime defaults an image carries (OCI image config `config`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// One row of the image list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageSummary {
    /// `sha256:<hex>` of the config.
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: Option<DateTime<Utc>>,
    pub size: u64,
    pub labels: BTreeMap<String, String>,
    /// Containers using it (-1 when not computed).
    pub containers: i64,
}

/// What image inspect shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageDetails {
    pub summary: ImageSummary,
    pub config: ImageConfig,
    pub architecture: String,
    pub os: String,
    pub variant: String,
    /// Diff ids, bottom first.
    pub layers: Vec<String>,
    pub author: String,
    pub comment: String,
}

/// One pull progress message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PullProgress {
    /// Short layer id, when the message is about a layer.
    pub id: Option<String>,
    /// `Pulling fs layer`, `Downloading`, `Pull complete`, `Digest: ...`, `Status: ...`.
    pub status: String,
    pub current: Option<u64>,
    pub total: Option<u64>,
}

/// Progress sink for pulls.
pub type ProgressSender = tokio::sync::mpsc::UnboundedSender<PullProgress>;

/// One line of the `rmi` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageDeleteItem {
    Untagged(String),
    Deleted(String),
}
