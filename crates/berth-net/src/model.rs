//! The vocabulary: networks, endpoints (a container's attachment to one network), port
//! bindings. Plain data, serializable, no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};

/// Docker's network drivers that berth implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// A Linux bridge of ours, one per network.
    Bridge,
    /// The host's network namespace (`--network host`).
    Host,
    /// Only loopback (`--network none`); Docker calls the driver `null`.
    Null,
}

impl Driver {
    /// The name Docker shows in `network ls` (`bridge`, `host`, `null`).
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Host => "host",
            Driver::Null => "null",
        }
    }
}

/// A network as stored and as shown by `network ls` / `network inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// 64 hex characters, like Docker.
    pub id: String,
    pub name: String,
    pub driver: Driver,
    /// `None` for host/none.
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    /// Linux bridge device name (bridge driver only).
    pub bridge: Option<String>,
    /// `--internal`: no NAT, no forwarding out of the bridge.
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339 creation time.
    pub created: String,
    /// True for the three networks berth creates itself (`bridge`, `host`, `none`).
    pub predefined: bool,
}

impl Network {
    /// Docker's `Scope`: always `local` here.
    pub fn scope(&self) -> &'static str {
        "local"
    }

    /// True for the default `bridge` network, which (as in Docker) has no name resolution.
    pub fn is_default_bridge(&self) -> bool {
        self.predefined && self.driver == Driver::Bridge
    }
}

/// Options of `network create`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkCreate {
    pub name: String,
    /// Chosen from the pool when `None`.
    pub subnet: Option<Ipv4Net>,
    /// First host address of the subnet when `None`.
    pub gateway: Option<Ipv4Addr>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// The IP protocol number (`meta l4proto`): 6 or 17.
    pub fn ip_proto(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A requested port publication (`-p [ip:][hostPort:]containerPort[/proto]`).
/// `host_port: None` means "any free ephemeral port" — that is also how `-P` is expressed:
/// one binding per exposed port with no host port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// `None` = all addresses (0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub proto: Protocol,
}

impl PortBinding {
    /// Parse Docker's `-p` syntax: `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`,
    /// each optionally followed by `/tcp` or `/udp`. Ranges: [`PortBinding::parse_many`].
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |why: &str| {
            NetError::InvalidArgument(format!(
                "invalid port specification {spec:?}: {why} (expected [ip:][hostPort:]containerPort[/tcp|udp])"
            ))
        };
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, "tcp")) => (r, Protocol::Tcp),
            Some((r, "udp")) => (r, Protocol::Udp),
            Some((_, p)) => return Err(bad(&format!("unknown protocol {p:?}"))),
            None => (spec, Protocol::Tcp),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let port = |s: &str| -> Result<u16> {
            if s.contains('-') {
                return Err(bad("a range needs PortBinding::parse_many"));
            }
            match s.parse::<u16>() {
                Ok(0) | Err(_) => Err(bad(&format!("{s:?} is not a port number 1-65535"))),
                Ok(p) => Ok(p),
            }
        };
        let (host_ip, host_port, container_port) = match parts.as_slice() {
            [c] => (None, None, port(c)?),
            [h, c] => (None, Some(port(h)?), port(c)?),
            [ip, h, c] => {
                let ip: Ipv4Addr = ip
                    .parse()
                    .map_err(|_| bad(&format!("{ip:?} is not an IPv4 address")))?;
                let hp = if h.is_empty() { None } else { Some(port(h)?) };
                (Some(ip), hp, port(c)?)
            }
            _ => return Err(bad("too many ':'")),
        };
        Ok(PortBinding {
            host_ip,
            host_port,
            container_port,
            proto,
        })
    }
}

impl PortBinding {
    /// Like [`PortBinding::parse`], plus Docker's ranges: `8000-8002:80-82`, `80-82` (each
    /// on an ephemeral host port), `127.0.0.1:8000-8001:80-81/udp`. Host and container
    /// ranges must have the same length.
    pub fn parse_many(spec: &str) -> Result<Vec<Self>> {
        if !spec.contains('-') {
            return Ok(vec![Self::parse(spec)?]);
        }
        let bad = |why: String| {
            NetError::InvalidArgument(format!("invalid port specification {spec:?}: {why}"))
        };
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, p)) => (r, format!("/{p}")),
            None => (spec, String::new()),
        };
        let range = |s: &str| -> Result<(u16, u16)> {
            let (a, b) = s.split_once('-').unwrap_or((s, s));
            let p = |x: &str| x.parse::<u16>().ok().filter(|v| *v > 0);
            match (p(a), p(b)) {
                (Some(a), Some(b)) if a <= b => Ok((a, b)),
                _ => Err(bad(format!("{s:?} is not a port or a low-high port range"))),
            }
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (ip, host, cont) = match parts.as_slice() {
            [c] => (None, None, *c),
            [h, c] => (None, Some(*h), *c),
            [ip, h, c] => (Some(*ip), (!h.is_empty()).then_some(*h), *c),
            _ => return Err(bad("too many ':'".into())),
        };
        let (c1, c2) = range(cont)?;
        let host = host.map(range).transpose()?;
        if let Some((h1, h2)) = host {
            if h2 - h1 != c2 - c1 {
                return Err(bad(
                    "host and container port ranges must have the same length".into(),
                ));
            }
        }
        (0..=(c2 - c1))
            .map(|i| {
                let c = c1 + i;
                let one = match (ip, host) {
                    (Some(ip), Some((h1, _))) => format!("{ip}:{}:{c}{proto}", h1 + i),
                    (Some(ip), None) => format!("{ip}::{c}{proto}"),
                    (None, Some((h1, _))) => format!("{}:{c}{proto}", h1 + i),
                    (None, None) => format!("{c}{proto}"),
                };
                Self::parse(&one)
            })
            .collect()
    }
}

/// A port actually published: the host side is always concrete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    /// 0.0.0.0 when published on all addresses.
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Protocol,
}

/// The firewall lines behind one published port (see
/// [`crate::NetworkManager::published_port_rules`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRules {
    pub port: PublishedPort,
    pub container_ip: Ipv4Addr,
    /// `chain: rule` (or `map NAME: element`) as the firewall tool lists them.
    pub rules: Vec<String>,
}

/// What the engine asks for when connecting a container to a network.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    /// Full container id (the first 12 characters are also a DNS name, as in Docker).
    pub container_id: String,
    /// Container name without the leading `/`; resolvable by DNS on user networks.
    pub container_name: String,
    /// The container's network namespace: `/proc/<pid>/ns/net` or a bind-mounted file.
    pub netns: PathBuf,
    /// Network name, id or unique id prefix.
    pub network: String,
    /// Extra DNS names on this network (`--network-alias`, `network connect --alias`).
    pub aliases: Vec<String>,
    /// `-p` bindings and, for `-P`, one binding per exposed port with `host_port: None`.
    pub ports: Vec<PortBinding>,
    /// `--ip`: a static address inside the subnet.
    pub ip: Option<Ipv4Addr>,
}

/// A container's attachment to one network (Docker's `EndpointSettings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// 64 hex characters.
    pub id: String,
    pub container_id: String,
    pub container_name: String,
    pub network_id: String,
    pub network_name: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// `02:42:` + the four IP bytes, as Docker derives it.
    pub mac: String,
    /// Host end of the veth pair (a port of the network's bridge).
    pub host_veth: String,
    /// Interface name inside the container (`eth0`, `eth1`, ...).
    pub container_ifname: String,
    /// Interface index of the host end (in the host namespace).
    #[serde(default)]
    pub host_ifindex: u32,
    /// Interface index of the container end (in the container namespace).
    #[serde(default)]
    pub container_ifindex: u32,
    pub aliases: Vec<String>,
    pub ports: Vec<PublishedPort>,
    pub netns: PathBuf,
    /// Whether this endpoint installed the container's default route.
    pub default_route: bool,
    /// MTU of both veth ends.
    pub mtu: u32,
}

/// A running container as the engine knows it at daemon start (input of `restore`).
#[derive(Debug, Clone)]
pub struct RunningContainer {
    pub container_id: String,
    /// Its network namespace now (the pid may have changed since the state was written).
    pub netns: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_port_syntax() {
        let p = PortBinding::parse("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(p.host_port, Some(8080));
        assert_eq!(p.container_port, 80);
        assert_eq!(p.proto, Protocol::Udp);
        let p = PortBinding::parse("8080:80").unwrap();
        assert_eq!(
            (p.host_ip, p.host_port, p.container_port, p.proto),
            (None, Some(8080), 80, Protocol::Tcp)
        );
        let p = PortBinding::parse("80").unwrap();
        assert_eq!((p.host_port, p.container_port), (None, 80));
        let p = PortBinding::parse("127.0.0.1::80").unwrap();
        assert_eq!((p.host_ip, p.host_port), (Some(Ipv4Addr::LOCALHOST), None));
    }

    #[test]
    fn parses_port_ranges() {
        let v = PortBinding::parse_many("127.0.0.1:8000-8002:80-82/udp").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(
            (
                v[2].host_ip,
                v[2].host_port,
                v[2].container_port,
                v[2].proto
            ),
            (Some(Ipv4Addr::LOCALHOST), Some(8002), 82, Protocol::Udp)
        );
        let v = PortBinding::parse_many("80-81").unwrap();
        assert_eq!(
            v.iter()
                .map(|p| (p.host_port, p.container_port))
                .collect::<Vec<_>>(),
            vec![(None, 80), (None, 81)]
        );
        assert_eq!(PortBinding::parse_many("8080:80").unwrap().len(), 1);
        assert!(PortBinding::parse_many("8000-8001:80").is_err());
        assert!(PortBinding::parse_many("82-80").is_err());
        assert!(PortBinding::parse_many("0-3").is_err());
    }

    #[test]
    fn rejects_bad_port_specs() {
        for bad in [
            "",
            "0",
            "70000",
            "a:80",
            "1.2.3:80:80",
            "80/sctp",
            "8000-8001:80",
            "1:2:3:4",
        ] {
            let e = PortBinding::parse(bad).unwrap_err();
            assert!(matches!(e, NetError::InvalidArgument(_)), "{bad}: {e}");
        }
    }
}
