//! NAT, port publishing and forwarding rules: what they are, independent of the tool that
//! installs them, and the choice of that tool.
//!
//! Two backends implement the same rules:
//! - **nftables** (`nft.rs` + `nfnl.rs`, the default): our own table; the static part
//!   (chains, masquerade, forward filter, the two DNAT rules that look up the port maps) is
//!   applied atomically through `nft -j -f -` when networks change; a published port is
//!   one element in each of two maps — `published_addr` (`tcp . 127.0.0.1 . 8080 :
//!   10.88.0.2`) and `published_port` (`tcp . 127.0.0.1 . 8080 : 80`), or
//!   `published_any_addr`/`published_any_port` (`tcp . 8080 : ...`) for any local
//!   address — added and removed over netlink without an exec.
//! - **iptables** (`iptables.rs`, the fallback when `nft` or nf_tables is absent): the
//!   same rules in berth-owned chains, loaded with one `iptables-restore --noflush` batch.
//!
//! The choice: [`FirewallBackend`] in the config, else the environment variable
//! `BERTH_FIREWALL` (`nftables` | `iptables`), else nftables when the `nft` binary exists
//! and the kernel answers nf_tables requests, else iptables.

mod iptables;
mod listing;
mod nfnl;
mod nft;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::config::FirewallBackend;
use crate::error::{NetError, Result};
use crate::model::Protocol;

pub use nft::list_ip_tables;

/// Maps (DNAT address, DNAT port) of ports published on a specific host address, keyed
/// by `proto . host address . host port`.
pub(crate) const MAPS_ADDR: (&str, &str) = ("published_addr", "published_port");
/// Maps (DNAT address, DNAT port) of ports published on any local address, keyed by
/// `proto . host port`.
pub(crate) const MAPS_ANY: (&str, &str) = ("published_any_addr", "published_any_port");

/// A bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwNetwork {
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub internal: bool,
}

/// The host side of a published port: what a packet must be addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortKey {
    pub proto: Protocol,
    /// 0.0.0.0 = any local address.
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
}

/// Where a published port leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortTarget {
    pub ip: Ipv4Addr,
    pub port: u16,
}

/// All published ports.
pub type PortMap = BTreeMap<PortKey, PortTarget>;

/// The complete desired content of our rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub table: String,
    pub networks: Vec<FwNetwork>,
    pub ports: PortMap,
}

/// The tool that installs the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Nftables,
    Iptables,
}

/// berth's rules in the kernel, through one backend.
#[derive(Debug)]
pub(crate) struct Firewall {
    pub(crate) backend: Backend,
    pub(crate) table: String,
}

impl Firewall {
    /// Pick the backend (see the module doc).
    pub(crate) fn select(table: &str, wanted: FirewallBackend) -> Result<Firewall> {
        let wanted = match wanted {
            FirewallBackend::Auto => match std::env::var("BERTH_FIREWALL") {
                Ok(v) if !v.is_empty() => v.parse()?,
                _ => FirewallBackend::Auto,
            },
            w => w,
        };
        let nft = nft::nft_binary().is_some();
        let ipt = iptables::restore_binary().is_some();
        let backend = match wanted {
            FirewallBackend::Nftables => Backend::Nftables,
            FirewallBackend::Iptables if !ipt => {
                return Err(NetError::Firewall(
                    "the iptables firewall backend was requested but iptables-restore is not installed; install the iptables package".into(),
                ))
            }
            FirewallBackend::Iptables => Backend::Iptables,
            FirewallBackend::Auto if nft && nfnl::nf_tables_available() => Backend::Nftables,
            FirewallBackend::Auto if ipt => Backend::Iptables,
            FirewallBackend::Auto if nft => Backend::Nftables, // let nft report what is wrong
            FirewallBackend::Auto => {
                return Err(NetError::Firewall(
                    "neither nft nor iptables-restore is installed; install the nftables package".into(),
                ))
            }
        };
        Ok(Firewall {
            backend,
            table: table.to_string(),
        })
    }

    /// Replace all our rules (and the published ports) with `rs`, atomically per backend
    /// transaction.
    pub(crate) async fn apply_full(&self, rs: &Ruleset) -> Result<()> {
        match self.backend {
            Backend::Nftables => nft::apply(&rs.to_nftables()).await,
            Backend::Iptables => iptables::apply_full(rs).await,
        }
    }

    /// Bring the published ports from `installed` to `rs.ports` (nothing else changes).
    pub(crate) async fn sync_ports(&self, installed: &PortMap, rs: &Ruleset) -> Result<()> {
        if installed == &rs.ports {
            return Ok(());
        }
        match self.backend {
            Backend::Nftables => {
                nfnl::send_batch(nfnl::diff_messages(&self.table, installed, &rs.ports))
            }
            Backend::Iptables => iptables::apply_ports(rs).await,
        }
    }

    /// Remove what the *other* backend of ours left from an earlier run (the daemon ran
    /// with `BERTH_FIREWALL=iptables` before, or nft was installed since), so stale DNATs
    /// of the old backend cannot shadow the new rules. Best effort; called only when the
    /// state says the backend changed (it never runs the other tool otherwise).
    pub(crate) async fn remove_other_backend(&self) {
        let res = match self.backend {
            Backend::Nftables if iptables::restore_binary().is_some() => {
                iptables::remove(&self.table).await
            }
            Backend::Iptables if nft::nft_binary().is_some() => {
                nft::apply(&nft::delete_table(&self.table)).await
            }
            _ => Ok(()),
        };
        if let Err(e) = res {
            tracing::debug!("removing rules of the other firewall backend: {e}");
        }
    }

    /// Remove everything of ours; a no-op when nothing is there.
    pub(crate) async fn remove(&self) -> Result<()> {
        match self.backend {
            Backend::Nftables => nft::apply(&nft::delete_table(&self.table)).await,
            Backend::Iptables => iptables::remove(&self.table).await,
        }
    }

    /// Our rules as the tool prints them (`nft list table`, or our lines of `iptables-save`).
    pub(crate) async fn listing(&self) -> Result<String> {
        match self.backend {
            Backend::Nftables => nft::list_table_text(&self.table).await,
            Backend::Iptables => iptables::listing(&self.table).await,
        }
    }

    /// The lines of `listing` that implement one published port: the jumps into the port
    /// chain, the rule that does the DNAT (for nftables: the rule that looks up the map,
    /// and the map element), and for loopback/any host addresses the masquerade of
    /// 127.0.0.0/8 towards `bridge`. Each as `chain: rule` (or `map NAME: element`).
    pub(crate) fn port_rules(
        &self,
        listing: &str,
        key: &PortKey,
        target: &PortTarget,
        bridge: &str,
    ) -> Vec<String> {
        match self.backend {
            Backend::Nftables => listing::nft_port_rules(listing, key, target, bridge),
            Backend::Iptables => {
                listing::iptables_port_rules(listing, &self.table, key, target, bridge)
            }
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self.backend {
            Backend::Nftables => "nftables",
            Backend::Iptables => "iptables",
        }
    }
}
