//! The network: how packets reach the process.
//!
//! On a bridge network the container has its own network namespace holding one end of a
//! *veth pair* (a virtual cable), named `eth0` inside; the other end lives in the host's
//! namespace and is a port of the network's Linux bridge, whose address is the
//! container's gateway. A published port is a DNAT rule in berth's nftables table: packets
//! for `host_ip:host_port` get their destination rewritten to `container_ip:port`. Names
//! resolve through the DNS server written in the container's `/etc/resolv.conf`.

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
    /// The nft rules that implement it, `chain: rule` as `nft list table` prints them.
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
    let table = if endpoints.iter().any(|e| !e.ports.is_empty()) {
        mgr.firewall_rules().await.unwrap_or_default()
    } else {
        String::new()
    };
    let rules = parse_nft_table(&table);
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
                rules: port_rules(
                    &rules,
                    &p.host_ip.to_string(),
                    p.host_port,
                    &ep.ip.to_string(),
                    p.container_port,
                    &proto,
                    &bridge,
                ),
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

/// `(chain, rule)` for every rule line of an `nft list table` text.
pub fn parse_nft_table(text: &str) -> Vec<(String, String)> {
    let mut chain = String::new();
    let mut out = Vec::new();
    for l in text.lines() {
        let l = l.trim();
        if let Some(rest) = l.strip_prefix("chain ") {
            chain = rest.trim_end_matches('{').trim().to_string();
        } else if l == "}" || l.is_empty() || l.starts_with("type ") || l.starts_with("table ") {
            continue;
        } else if !chain.is_empty() {
            out.push((chain.clone(), l.to_string()));
        }
    }
    out
}

/// The rules behind one published port: the DNAT rule, the jumps that lead to its chain,
/// and (for a loopback host address) the masquerade that lets 127.0.0.1 reach the bridge.
fn port_rules(
    rules: &[(String, String)],
    host_ip: &str,
    host_port: u16,
    ip: &str,
    port: u16,
    proto: &str,
    bridge: &str,
) -> Vec<String> {
    let dnat = format!("dnat to {ip}:{port}");
    let dport = format!("{proto} dport {host_port} ");
    let mut out = Vec::new();
    let mut chains = Vec::new();
    for (c, r) in rules {
        let addr_ok = host_ip == "0.0.0.0" || r.contains(&format!("daddr {host_ip} "));
        if r.contains(&dnat) && r.contains(&dport) && addr_ok {
            out.push(format!("{c}: {r}"));
            chains.push(c.clone());
        }
    }
    if out.is_empty() {
        return out;
    }
    let mut jumps = Vec::new();
    for (c, r) in rules {
        if chains.iter().any(|t| r == &format!("jump {t}")) {
            jumps.push(format!("{c}: {r}"));
        }
        let loopback = host_ip.starts_with("127.") || host_ip == "0.0.0.0";
        if loopback
            && !bridge.is_empty()
            && r.contains("127.0.0.0/8")
            && r.contains(&format!("\"{bridge}\""))
            && r.contains("masquerade")
        {
            jumps.push(format!("{c}: {r}"));
        }
    }
    jumps.extend(out);
    jumps
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = r#"table ip berth {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump ports
	}

	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 127.0.0.0/8 oifname "berth0" masquerade
		ip saddr 172.17.0.0/16 oifname != "berth0" masquerade
	}

	chain ports {
		ip daddr 127.0.0.1 tcp dport 18777 dnat to 172.17.0.2:80
		ip daddr 127.0.0.1 tcp dport 18778 dnat to 172.17.0.3:80
	}
}
"#;

    #[test]
    fn rules_of_a_port() {
        let rules = parse_nft_table(TABLE);
        assert_eq!(rules[0], ("prerouting".into(), "jump ports".into()));
        let r = port_rules(
            &rules,
            "127.0.0.1",
            18777,
            "172.17.0.2",
            80,
            "tcp",
            "berth0",
        );
        assert_eq!(
            r,
            vec![
                "prerouting: jump ports",
                "postrouting: ip saddr 127.0.0.0/8 oifname \"berth0\" masquerade",
                "ports: ip daddr 127.0.0.1 tcp dport 18777 dnat to 172.17.0.2:80",
            ]
        );
        assert!(port_rules(&rules, "127.0.0.1", 1, "172.17.0.2", 80, "tcp", "berth0").is_empty());
    }

    #[test]
    fn resolv() {
        assert_eq!(
            nameservers("search x\nnameserver 127.0.0.11\nnameserver  1.1.1.1\n"),
            vec!["127.0.0.11", "1.1.1.1"]
        );
    }
}
