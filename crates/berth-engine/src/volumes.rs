//! Named volumes, local driver: `data_root/volumes/<name>/_data`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A volume to create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeSpec {
    /// Empty = a random 64-hex name (anonymous volume).
    pub name: String,
    /// Only `local` (or empty).
    pub driver: String,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// A volume as inspect and list show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub created_at: Option<DateTime<Utc>>,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// Always `local`.
    pub scope: String,
    /// Whether it was created for one container without a name.
    pub anonymous: bool,
}
