//! What a caller asks for when it creates a container: the engine's own shape of Docker's
//! `Config` + `HostConfig` (the daemon maps the wire types onto these; nothing here is HTTP).
//!
//! Optional fields left `None` take the image's default (cmd, entrypoint, workdir, user,
//! stop signal) or Docker's default (memory unlimited, default capabilities, seccomp on).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A container to create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerSpec {
    /// Name without or with the leading `/`; a random `adjective_noun` when unset.
    pub name: Option<String>,
    /// Image reference as the user typed it (`busybox`, `127.0.0.1:5000/busybox:1`, an id).
    pub image: String,
    /// Command; `None` takes the image's `Cmd` (an explicit empty list clears it).
    pub cmd: Option<Vec<String>>,
    /// Entrypoint; `None` takes the image's; `Some(vec![])` clears it (`--entrypoint ""`).
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` entries, added over the image's env.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`.
    pub user: Option<String>,
    /// Defaults to the first 12 characters of the id.
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// Added over the image's labels.
    pub labels: BTreeMap<String, String>,
    /// `80/tcp`, `53/udp`; merged with the image's.
    pub exposed_ports: Vec<String>,
    /// Volumes declared in the config (anonymous volumes at these paths).
    pub volumes: Vec<String>,
    /// `SIGTERM`, `TERM`, `15`; the image's or SIGTERM when unset.
    pub stop_signal: Option<String>,
    /// Seconds to wait after the stop signal; the engine's default when unset.
    pub stop_timeout: Option<i64>,
    pub host: HostSpec,
    /// `--network-alias`: extra DNS names on the network of the mode (user networks).
    pub network_aliases: Vec<String>,
    /// `--health-*` / `Config.Healthcheck`; after create, merged with the image's
    /// (see [`crate::health`]).
    pub healthcheck: Option<crate::health::HealthCheck>,
    /// `Config.Shell`: the argv a `CMD-SHELL` healthcheck runs its command with (Docker's
    /// `SHELL`); empty takes the image's, and without one `/bin/sh -c`.
    pub shell: Vec<String>,
}

/// Host-side settings (Docker's `HostConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostSpec {
    /// Bytes; 0 = unlimited.
    pub memory: i64,
    /// Memory + swap in bytes; 0 = twice the memory (Docker), -1 = unlimited.
    pub memory_swap: i64,
    pub memory_reservation: i64,
    /// CPUs in units of 1e-9 (`--cpus 1.5` → 1_500_000_000).
    pub nano_cpus: i64,
    /// Relative weight; 0 = default.
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    /// `None` or ≤ 0 = unlimited.
    pub pids_limit: Option<i64>,
    pub ulimits: Vec<Ulimit>,
    pub oom_kill_disable: bool,
    /// `/dev/shm` size in bytes; 0 = 64 MiB.
    pub shm_size: i64,
    pub read_only_rootfs: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    /// `seccomp=unconfined`, `seccomp=<profile json or path>`, `no-new-privileges[:true]`.
    pub security_opt: Vec<String>,
    /// path → options (`rw,size=64m`).
    pub tmpfs: BTreeMap<String, String>,
    /// `-v` strings: `/host:/ctr[:ro]`, `name:/ctr[:ro]`.
    pub binds: Vec<String>,
    /// `--mount` entries.
    pub mounts: Vec<MountSpec>,
    /// Run berth's init as PID 1 (`--init`).
    pub init: Option<bool>,
    pub restart_policy: RestartPolicy,
    /// `--rm`.
    pub auto_remove: bool,
    /// `bridge` (default), `host`, `none`, `container:<id>`, or a network name.
    pub network_mode: String,
    /// `80/tcp` → host bindings.
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    pub publish_all_ports: bool,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `host:ip` entries for /etc/hosts.
    pub extra_hosts: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    /// Log rotation overrides (`max-size`, `max-file`).
    pub log_opts: BTreeMap<String, String>,
}

/// `--ulimit name=soft:hard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A `--mount` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountSpec {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// Host path (bind), volume name (volume; empty = anonymous), empty for tmpfs.
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// tmpfs size in bytes (0 = unlimited).
    pub tmpfs_size: i64,
    /// tmpfs mode bits (0 = 1777).
    pub tmpfs_mode: u32,
    /// Bind propagation (`rprivate` default).
    pub propagation: String,
    /// For volumes: do not copy the image's content into a new volume.
    pub no_copy: bool,
}

/// A host port a container port is published on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// `--restart`: what the engine's monitor does when the container exits by itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartPolicy {
    /// `""`/`no`, `always`, `unless-stopped`, `on-failure`.
    pub name: String,
    /// For `on-failure`: give up after this many restarts (0 = never give up).
    pub maximum_retry_count: i64,
}

impl RestartPolicy {
    /// Check the name (Docker's messages).
    pub fn validate(&self) -> crate::Result<()> {
        match self.name.as_str() {
            "" | "no" => {
                if self.maximum_retry_count != 0 {
                    return Err(crate::EngineError::invalid(
                        "invalid restart policy: maximum retry count can only be used with 'on-failure'",
                    ));
                }
                Ok(())
            }
            "always" | "unless-stopped" => {
                if self.maximum_retry_count != 0 {
                    return Err(crate::EngineError::invalid(
                        "invalid restart policy: maximum retry count can only be used with 'on-failure'",
                    ));
                }
                Ok(())
            }
            "on-failure" => {
                if self.maximum_retry_count < 0 {
                    return Err(crate::EngineError::invalid(
                        "invalid restart policy: maximum retry count cannot be negative",
                    ));
                }
                Ok(())
            }
            other => Err(crate::EngineError::invalid(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure' or 'unless-stopped'"
            ))),
        }
    }

    /// Whether the policy restarts at all (`no` does not).
    pub fn is_none(&self) -> bool {
        matches!(self.name.as_str(), "" | "no")
    }
}
