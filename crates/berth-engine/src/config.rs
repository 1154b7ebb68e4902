//! How an [`Engine`](crate::Engine) is opened: where it keeps state and which binary runs shims.

use std::path::PathBuf;

/// Engine settings. `Default` gives Docker-like paths under berth's own names.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Persistent state: containers/, volumes/, images (`/var/lib/berth`).
    pub data_root: PathBuf,
    /// Runtime state that dies with a reboot: shim state dirs, bundles (`/run/berth`).
    pub exec_root: PathBuf,
    /// Registries reached over plain HTTP (`HOST:PORT`).
    pub insecure_registries: Vec<String>,
    /// cgroup parent for containers, relative to each hierarchy root. The kernel may be
    /// shared with another engine, so never `/docker`.
    pub cgroup_parent: String,
    /// The `berth` binary: started as `berth shim ...` per container, and bind-mounted as
    /// the container's init for `--init`. Defaults to the current executable.
    pub berth_binary: PathBuf,
    /// json-file log rotation: bytes per file (Docker's `max-size`; berth rotates by default).
    pub log_max_size: u64,
    /// json-file log rotation: files kept (Docker's `max-file`).
    pub log_max_files: u32,
    /// The init for `--init`, bind-mounted at `/sbin/berth-init`; `None` = `berth-init`
    /// next to `berth_binary`. It must be statically linked to run inside any image
    /// (`scripts/build-init.sh` builds it so).
    pub init_binary: Option<PathBuf>,
    /// Networking (bridges, veths, nftables, embedded DNS); `None` = containers get only
    /// a loopback interface. The kernel is shared: give tests unique names.
    pub net: Option<berth_net::NetConfig>,
    /// Seconds `stop` waits after the stop signal before SIGKILL when the container sets none.
    pub default_stop_timeout: u64,
    /// Fork shims from a long-lived zygote process instead of exec'ing each (the daemon
    /// turns it on; off by default so a library user's test binary is never run as a shim).
    pub shim_zygote: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            data_root: PathBuf::from("/var/lib/berth"),
            exec_root: PathBuf::from("/run/berth"),
            insecure_registries: Vec::new(),
            cgroup_parent: "/berth".to_string(),
            berth_binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("berth")),
            log_max_size: 10 * 1024 * 1024,
            log_max_files: 3,
            default_stop_timeout: 10,
            init_binary: None,
            net: Some(berth_net::NetConfig::default()),
            shim_zygote: false,
        }
    }
}

impl EngineConfig {
    /// The init binary `--init` mounts.
    pub fn init_binary(&self) -> PathBuf {
        self.init_binary
            .clone()
            .unwrap_or_else(|| self.berth_binary.with_file_name("berth-init"))
    }
}
