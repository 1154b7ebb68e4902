//! Configuration of one berth-net instance. Every kernel-global name is configurable so
//! several instances (tests running in parallel, or berth next to another engine) never
//! collide on the shared kernel.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use ipnet::Ipv4Net;

use crate::error::{NetError, Result};

/// Names and defaults for one instance.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Linux bridge of the default `bridge` network (Docker: `docker0`).
    pub default_bridge: String,
    /// Subnet of the default network; `None` = first pool entry free on this host.
    pub default_subnet: Option<Ipv4Net>,
    /// User network bridges are named this prefix + hex of the network id, cut to 15
    /// bytes (Docker: `br-` + 12 hex).
    pub user_bridge_prefix: String,
    /// Host veth ends are named this prefix + hex of the endpoint id (Docker: `veth` + 7).
    pub veth_prefix: String,
    /// Our nftables table (family `ip`).
    pub nft_table: String,
    /// Candidate subnets for networks created without `--subnet`.
    pub address_pool: Vec<Ipv4Net>,
    /// MTU of bridges and veths.
    pub mtu: u32,
    /// Upstream resolvers for names that are not containers; `None` = the host's
    /// `/etc/resolv.conf` nameservers.
    pub dns_upstreams: Option<Vec<SocketAddr>>,
    /// Where the embedded DNS listens inside each container.
    pub dns_address: SocketAddrV4,
    /// The tool that installs NAT and port rules. `Auto`: the environment variable
    /// `BERTH_FIREWALL` if set, else nftables when available, else iptables.
    pub firewall: FirewallBackend,
}

/// Which firewall tool berth-net drives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FirewallBackend {
    /// `BERTH_FIREWALL`, else nftables if `nft` and nf_tables are there, else iptables.
    #[default]
    Auto,
    /// Our own nftables table; ports as map elements changed over netlink.
    Nftables,
    /// berth-owned iptables chains loaded with `iptables-restore --noflush` (the fallback
    /// for hosts without nftables).
    Iptables,
}

impl std::str::FromStr for FirewallBackend {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(FirewallBackend::Auto),
            "nftables" | "nft" => Ok(FirewallBackend::Nftables),
            "iptables" => Ok(FirewallBackend::Iptables),
            o => Err(NetError::InvalidArgument(format!(
                "unknown firewall backend {o:?}: use auto, nftables or iptables"
            ))),
        }
    }
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            default_bridge: "berth0".into(),
            default_subnet: None,
            user_bridge_prefix: "br-".into(),
            veth_prefix: "veth".into(),
            nft_table: "berth".into(),
            address_pool: crate::ipam::default_pool(),
            mtu: 1500,
            dns_upstreams: None,
            dns_address: SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 11), 53),
            firewall: FirewallBackend::Auto,
        }
    }
}

impl NetConfig {
    /// Checks names fit the kernel's 15-byte interface names and leave room for ids.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(NetError::InvalidArgument(m));
        if self.default_bridge.is_empty() || self.default_bridge.len() > 15 {
            return bad(format!(
                "bridge name {:?} must be 1-15 bytes",
                self.default_bridge
            ));
        }
        for (what, p) in [
            ("user bridge prefix", &self.user_bridge_prefix),
            ("veth prefix", &self.veth_prefix),
        ] {
            if p.len() > 11 {
                return bad(format!(
                    "{what} {p:?} is too long: at most 11 bytes, to leave 4 hex digits of id"
                ));
            }
        }
        if self.nft_table.is_empty()
            || !self
                .nft_table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return bad(format!(
                "nft table name {:?} must be non-empty [A-Za-z0-9_-]",
                self.nft_table
            ));
        }
        if !(576..=65535).contains(&self.mtu) {
            return bad(format!("mtu {} out of range 576-65535", self.mtu));
        }
        Ok(())
    }

    /// `prefix` + as many hex digits of `id` as fit in 15 bytes.
    pub(crate) fn ifname(prefix: &str, id: &str) -> String {
        let room = 15usize.saturating_sub(prefix.len());
        format!("{prefix}{}", &id[..room.min(id.len())])
    }
}
