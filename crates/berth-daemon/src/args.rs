//! `berth daemon` flags.

use std::path::PathBuf;

use clap::Parser;

/// The Docker Engine API on a unix socket.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "berth daemon",
    about = "Run the berth daemon: the Docker Engine API on a unix socket"
)]
pub struct DaemonArgs {
    /// Persistent state (containers, images, volumes).
    #[arg(long, default_value = "/var/lib/berth")]
    pub data_root: PathBuf,
    /// Runtime state (shim dirs, bundles, the pidfile).
    #[arg(long, default_value = "/run/berth")]
    pub exec_root: PathBuf,
    /// Socket to listen on (`unix:///path`).
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///run/berth/berth.sock"
    )]
    pub host: String,
    /// Registries reached over plain HTTP (`HOST:PORT`); repeatable.
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// cgroup parent for containers.
    #[arg(long, default_value = "/berth")]
    pub cgroup_parent: String,
    /// The static init binary `run --init` uses (default: `berth-init` next to `berth`;
    /// build it with scripts/build-init.sh).
    #[arg(long = "init-path")]
    pub init_path: Option<PathBuf>,
    /// Bridge of the default `bridge` network (`none` disables container networking).
    #[arg(short = 'b', long = "bridge", default_value = "berth0")]
    pub bridge: String,
    /// Subnet of the default network (e.g. `10.88.0.0/16`); default: the first free pool entry.
    #[arg(long = "fixed-cidr")]
    pub fixed_cidr: Option<String>,
    /// nftables table (family `ip`) holding berth's NAT and port rules.
    #[arg(long = "nft-table", default_value = "berth")]
    pub nft_table: String,
    /// Prefix of host-side veth names.
    #[arg(long = "veth-prefix", default_value = "veth")]
    pub veth_prefix: String,
    /// Prefix of user-defined network bridges.
    #[arg(long = "user-bridge-prefix", default_value = "br-")]
    pub user_bridge_prefix: String,
    /// Pidfile (default: `<exec-root>/berth.pid`).
    #[arg(short = 'p', long)]
    pub pidfile: Option<PathBuf>,
    /// Log level filter (`info`, `debug`, ...).
    #[arg(short = 'l', long, default_value = "info")]
    pub log_level: String,
}

impl DaemonArgs {
    /// The socket path from `-H unix:///path` (or a bare path).
    pub fn socket_path(&self) -> Result<PathBuf, String> {
        socket_path(&self.host)
    }

    pub fn pidfile_path(&self) -> PathBuf {
        self.pidfile
            .clone()
            .unwrap_or_else(|| self.exec_root.join("berth.pid"))
    }
}

/// `unix:///run/x.sock` or `/run/x.sock` → the path.
pub fn socket_path(host: &str) -> Result<PathBuf, String> {
    if let Some(p) = host.strip_prefix("unix://") {
        if p.is_empty() {
            return Err(format!(
                "invalid socket address {host:?}: use unix:///path/to/berth.sock"
            ));
        }
        return Ok(PathBuf::from(p));
    }
    if host.starts_with('/') {
        return Ok(PathBuf::from(host));
    }
    Err(format!(
        "unsupported address {host:?}: berth listens on unix sockets only (unix:///path)"
    ))
}
