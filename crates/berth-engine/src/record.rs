//! What the engine knows about a container: the record stored at
//! `data_root/containers/<id>/config.json` and returned by inspect.

use crate::spec::ContainerSpec;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Lifecycle state, Docker's words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl ContainerStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Paused => "paused",
            ContainerStatus::Restarting => "restarting",
            ContainerStatus::Removing => "removing",
            ContainerStatus::Exited => "exited",
            ContainerStatus::Dead => "dead",
        }
    }
}

/// Docker's `State` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerState {
    pub status: ContainerStatus,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    pub oom_killed: bool,
    pub dead: bool,
    /// Host PID of the container's init (0 when not running).
    pub pid: i32,
    pub exit_code: i32,
    /// Why the last start failed (empty otherwise).
    pub error: String,
    /// `None` = never (Docker prints `0001-01-01T00:00:00Z`).
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// PID of the shim holding the container (0 when none).
    pub shim_pid: i32,
    /// `State.Health`: set once a container with a healthcheck starts (see [`crate::health`]).
    pub health: Option<crate::health::Health>,
}

/// A mount as inspect shows it (`Mounts` array).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// Volume name (volumes only).
    pub name: String,
    /// Host path.
    pub source: String,
    pub destination: String,
    pub driver: String,
    pub mode: String,
    pub rw: bool,
    pub propagation: String,
    /// Volumes: do not fill a new volume from the image's content.
    pub no_copy: bool,
}

/// Everything the engine stores about a container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerRecord {
    /// 64 lowercase hex characters.
    pub id: String,
    /// With the leading `/`.
    pub name: String,
    pub created: DateTime<Utc>,
    /// The process: `argv[0]` and the rest (entrypoint + cmd resolved).
    pub path: String,
    pub args: Vec<String>,
    /// The config as resolved against the image (env merged, cmd/entrypoint/workdir/user
    /// filled from the image); `config.image` is the reference as the user gave it.
    pub config: ContainerSpec,
    /// `sha256:<hex>` of the image.
    pub image_id: String,
    pub state: ContainerState,
    pub restart_count: u64,
    /// Set when the user stopped it (`unless-stopped` and `always` stay down until started).
    pub manually_stopped: bool,
    pub mounts: Vec<MountPoint>,
    pub log_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
    /// The merged rootfs directory while mounted.
    pub rootfs: String,
    /// Overlay directories for `GraphDriver.Data` (LowerDir, UpperDir, WorkDir, MergedDir).
    pub graph_driver: std::collections::BTreeMap<String, String>,
    /// cgroup path relative to each hierarchy root.
    pub cgroup_path: String,
    /// Exec ids that belong to this container.
    pub exec_ids: Vec<String>,
    /// Network name → this container's endpoint on it (addresses empty while stopped).
    pub networks: std::collections::BTreeMap<String, NetworkEndpoint>,
}

/// A container's place on one network (inspect's `NetworkSettings.Networks.<name>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkEndpoint {
    pub network_id: String,
    pub endpoint_id: String,
    /// Empty while the container is not running.
    pub ip_address: String,
    pub ip_prefix_len: u8,
    pub gateway: String,
    pub mac_address: String,
    /// Published ports: `80/tcp` → (host ip, host port).
    pub ports: Vec<PublishedPort>,
    /// DNS aliases on this network (`--network-alias`, `network connect --alias`).
    pub aliases: Vec<String>,
}

/// One published port as it was bound.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PublishedPort {
    /// `80/tcp`.
    pub container_port: String,
    pub host_ip: String,
    pub host_port: u16,
}

impl ContainerRecord {
    /// The first 12 hex characters of the id.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
    /// Name without the leading `/`.
    pub fn bare_name(&self) -> &str {
        self.name.trim_start_matches('/')
    }
}

/// One row of the container list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    /// The image as the user gave it.
    pub image: String,
    pub image_id: String,
    /// The command as a single string.
    pub command: String,
    pub created: DateTime<Utc>,
    pub state: ContainerStatus,
    /// Human text: `Up 5 seconds`, `Exited (0) 2 minutes ago`, `Created`.
    pub status: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub network_mode: String,
    pub mounts: Vec<MountPoint>,
    /// `80/tcp` → published bindings.
    pub ports: Vec<(String, Vec<crate::spec::PortBinding>)>,
}
