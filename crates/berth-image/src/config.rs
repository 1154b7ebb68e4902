//! The image config blob (Docker's `application/vnd.docker.container.image.v1+json`, the OCI
//! `application/vnd.oci.image.config.v1+json` is the same JSON) — what a container gets as
//! defaults: Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts, Volumes, StopSignal,
//! Healthcheck, Labels. Own serde types rather than oci-spec's because OCI drops Docker's
//! fields (Healthcheck, OnBuild, Shell) and the engine needs them. Unknown fields are kept.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::DiffId;

/// The whole config blob.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Container defaults (`config` in the JSON).
    #[serde(default)]
    pub config: ContainerConfig,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Fields berth does not interpret, kept for inspect.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Defaults a container inherits from its image (Docker's PascalCase names).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Docker's healthcheck (durations in nanoseconds).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// `rootfs`: the ordered diff IDs, bottom layer first.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RootFs {
    #[serde(rename = "type", default = "layers")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<DiffId>,
}

fn layers() -> String {
    "layers".into()
}

/// One `history` entry.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_layer: Option<bool>,
}

/// Errors of [`ImageConfig::from_json`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("image config is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("image config has rootfs type {0:?}, expected \"layers\"")]
    RootfsType(String),
}

impl ImageConfig {
    /// Parses and sanity-checks a config blob.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let c: ImageConfig = serde_json::from_slice(bytes)?;
        if c.rootfs.kind != "layers" {
            return Err(ConfigError::RootfsType(c.rootfs.kind));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_config() {
        let j = br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"],
          "ExposedPorts":{"80/tcp":{}},"Healthcheck":{"Test":["CMD","true"],"Interval":1000},"StopSignal":"SIGQUIT",
          "ArgsEscaped":true},"rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},
          "container":"abc"}"#;
        let c = ImageConfig::from_json(j).unwrap();
        assert_eq!(c.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(c.config.healthcheck.as_ref().unwrap().interval, Some(1000));
        assert!(c.config.exposed_ports.unwrap().contains_key("80/tcp"));
        assert!(c.config.other.contains_key("ArgsEscaped"));
        assert!(c.other.contains_key("container"));
        assert!(ImageConfig::from_json(b"not json").is_err());
        assert!(ImageConfig::from_json(br#"{"rootfs":{"type":"x","diff_ids":[]}}"#).is_err());
    }
}
