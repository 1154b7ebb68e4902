//! The network: how packets reach the process.
//!
//! On a bridge network the container has its own network namespace holding one end of a
//! *veth pair* (a virtual cable), named `eth0` inside; the other end lives in the host's
//! namespace and is a port of the network's Linux bridge, whose address is the
//! container's gateway. A published port is an entry in the port maps of berth's nftables
//! table, looked up by a DNAT rule: packets for `host_ip:host_port` get their destination
//! rewritten to `container_ip:port`. Names resolve through the DNS server written in the
//! container's `/etc/resolv.conf`.

use super::namespaces::NamespaceFacts;
use super::ExplainError;
use crate::record::ContainerRecord;
use crate::Engine;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkFacts {
    /// `bridge`, a network name, `host`, `none` or `container:<id>`.
    pub mode: String,
    /// Inode of the container's network namespace.
    pub netns_inode: u64,
    /// Whether the namespace is the host's (`--network host`).
    pub host_netns: bool,
    pub interfaces: Vec<NetworkInterface>,
    pub ports: Vec<PortFacts>,
    /// berth's nftables table (family `ip`) holding the rules below.
    pub nft_table: String,
    /// `nameserver` lines of the container's /etc/resolv.conf.
    pub dns_servers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkInterface {
    pub network: String,
    pub network_id: String,
    /// The Linux bridge the host end is a port of.
    pub bridge: String,
    pub host_veth: String,
    pub host_ifindex: u32,
    pub container_ifname: String,
    pub container_ifindex: u32,
    pub ip: String,
    pub prefix_len: u8,
    pub mac: String,
    pub gateway: String,
    pub mtu: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortFacts {
    /// `0.0.0.0` when published on every address.
    pub host_ip: String,
    pub host_port: u16,
    pub container_ip: String,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
    /// The firewall lines that implement it, `chain: rule` as `nft list table` prints them
    /// (and `map NAME: element` for its entries in the port maps), or `chain: rule` as
    /// `iptables-save` prints them with the iptables fallback.
    pub rules: Vec<String>,
}

pub(crate) async fn collect(
    engine: &Engine,
    rec: &ContainerRecord,
    ns: &[NamespaceFacts],
) -> Result<Option<NetworkFacts>, ExplainError> {
    let net_ns = ns.iter().find(|n| n.kind == "net");
    let mut facts = NetworkFacts {
        mode: rec.config.host.network_mode.clone(),
        netns_inode: net_ns.map(|n| n.inode).unwrap_or(0),
        host_netns: net_ns.is_some_and(|n| n.owner == "host"),
        dns_servers: std::fs::read_to_string(&rec.resolv_conf_path)
            .map(|t| nameservers(&t))
            .unwrap_or_default(),
        ..Default::default()
    };
    let Some(mgr) = engine.net() else {
        return Ok(Some(facts));
    };
    facts.nft_table = mgr.config().nft_table.clone();
    let endpoints = mgr.container_endpoints(&rec.id);
    // The exact firewall lines behind each published port, as berth-net reads them back
    // from `nft list table` (jump, 127/8 masquerade, the DNAT rule that looks up the port
    // maps, the map elements) or from `iptables-save` with the iptables fallback.
    let port_rules = mgr.published_port_rules(&rec.id).await.unwrap_or_default();
    for ep in endpoints {
        let bridge = mgr
            .network(&ep.network_id)
            .ok()
            .and_then(|n| n.bridge)
            .unwrap_or_default();
        for p in &ep.ports {
            let proto = p.proto.to_string();
            facts.ports.push(PortFacts {
                host_ip: p.host_ip.to_string(),
                host_port: p.host_port,
                container_ip: ep.ip.to_string(),
                container_port: p.container_port,
                rules: port_rules
                    .iter()
                    .find(|r| r.port == *p && r.container_ip == ep.ip)
                    .map(|r| r.rules.clone())
                    .unwrap_or_default(),
                proto,
            });
        }
        facts.interfaces.push(NetworkInterface {
            network: ep.network_name.clone(),
            network_id: ep.network_id.clone(),
            bridge,
            host_veth: ep.host_veth.clone(),
            host_ifindex: ep.host_ifindex,
            container_ifname: ep.container_ifname.clone(),
            container_ifindex: ep.container_ifindex,
            ip: ep.ip.to_string(),
            prefix_len: ep.prefix_len,
            mac: ep.mac.clone(),
            gateway: ep.gateway.to_string(),
            mtu: ep.mtu,
        });
    }
    Ok(Some(facts))
}

fn nameservers(resolv: &str) -> Vec<String> {
    resolv
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv() {
        assert_eq!(
            nameservers("search x\nnameserver 127.0.0.11\nnameserver  1.1.1.1\n"),
            vec!["127.0.0.11", "1.1.1.1"]
        );
    }
}
