//! Networks through berth-net: the container is attached after its shim created it (its
//! network namespace exists, the process has not started), so the program starts with
//! `eth0`, its address, routes, published ports and DNS in place.

use crate::engine::Container;
use crate::error::{EngineError, Result};
use crate::record::{ContainerRecord, NetworkEndpoint, PublishedPort};
use crate::Engine;
use berth_net::{AttachRequest, NetError, PortBinding};
use std::path::PathBuf;
use std::sync::Arc;

pub use berth_net::{Network, NetworkCreate};

pub(crate) fn net_error(e: NetError) -> EngineError {
    let kind = match e.kind() {
        berth_net::ErrorKind::NotFound => crate::ErrorKind::NotFound,
        berth_net::ErrorKind::Conflict => crate::ErrorKind::Conflict,
        berth_net::ErrorKind::InvalidArgument => crate::ErrorKind::InvalidArgument,
        berth_net::ErrorKind::Unavailable => crate::ErrorKind::Unavailable,
    };
    EngineError::new(kind, e.to_string())
}

/// The network a mode attaches to (`None`: host, none, container:<id>).
pub(crate) fn network_of_mode(mode: &str) -> Option<&str> {
    match mode {
        "" | "default" | "bridge" => Some("bridge"),
        "host" | "none" => None,
        m if m.starts_with("container:") => None,
        m => Some(m),
    }
}

/// `PortBindings` (+ `-P`: every exposed port without a binding, on a random port).
pub(crate) fn port_bindings(rec: &ContainerRecord) -> Result<Vec<PortBinding>> {
    let h = &rec.config.host;
    let mut out = Vec::new();
    let parse_key = |k: &str| -> Result<(u16, berth_net::Protocol)> {
        let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
        let proto = match proto {
            "tcp" => berth_net::Protocol::Tcp,
            "udp" => berth_net::Protocol::Udp,
            p => {
                return Err(EngineError::invalid(format!(
                    "invalid protocol {p:?} in port {k:?}; use tcp or udp"
                )))
            }
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| EngineError::invalid(format!("invalid port {k:?}")))?;
        Ok((port, proto))
    };
    for (k, binds) in &h.port_bindings {
        let (container_port, proto) = parse_key(k)?;
        let binds = if binds.is_empty() {
            vec![Default::default()]
        } else {
            binds.clone()
        };
        for b in binds {
            let host_ip = match b.host_ip.as_str() {
                "" => None,
                ip => Some(ip.parse().map_err(|_| {
                    EngineError::invalid(format!(
                        "invalid host IP {ip:?} for port {k}; give an IPv4 address"
                    ))
                })?),
            };
            let host_port = match b.host_port.as_str() {
                "" | "0" => None,
                p => Some(p.parse().map_err(|_| {
                    EngineError::invalid(format!("invalid host port {p:?} for port {k}"))
                })?),
            };
            out.push(PortBinding {
                host_ip,
                host_port,
                container_port,
                proto,
            });
        }
    }
    if h.publish_all_ports {
        for k in &rec.config.exposed_ports {
            if !h.port_bindings.contains_key(k) {
                let (container_port, proto) = parse_key(k)?;
                out.push(PortBinding {
                    host_ip: None,
                    host_port: None,
                    container_port,
                    proto,
                });
            }
        }
    }
    Ok(out)
}

impl Engine {
    pub(crate) fn net(&self) -> Option<&berth_net::NetworkManager> {
        self.inner.net.as_ref()
    }

    /// Check at create that a named network exists.
    pub(crate) fn check_network_mode(&self, mode: &str) -> Result<()> {
        if let (Some(name), Some(net)) = (network_of_mode(mode), self.net()) {
            net.network(name)
                .map_err(|_| EngineError::not_found(format!("network {name} not found")))?;
        }
        Ok(())
    }

    /// Attach a created (not yet started) container whose init is `pid`.
    pub(crate) async fn connect_networks(&self, c: &Arc<Container>, pid: i32) -> Result<()> {
        let rec = c.snapshot();
        let mode = rec.config.host.network_mode.as_str();
        let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let Some(network) = network_of_mode(mode) else {
            if mode == "none" {
                berth_net::setup_loopback(&netns).await.map_err(net_error)?;
            }
            return Ok(());
        };
        let Some(net) = self.net() else {
            // Networking is off: the container gets loopback only.
            berth_net::setup_loopback(&netns).await.map_err(net_error)?;
            return Ok(());
        };
        // The networks recorded at create or connected since (the mode's network first: it
        // owns the default route). All disconnected: loopback only.
        let mut names: Vec<String> = Vec::new();
        if rec.networks.contains_key(network) {
            names.push(network.to_string());
        }
        names.extend(
            rec.networks
                .keys()
                .filter(|k| k.as_str() != network)
                .cloned(),
        );
        if names.is_empty() {
            berth_net::setup_loopback(&netns).await.map_err(net_error)?;
            return Ok(());
        }
        let mut first_ip = None;
        for (i, name) in names.iter().enumerate() {
            let ports = if i == 0 { port_bindings(&rec)? } else { vec![] };
            let ep = self.attach_one(net, &rec, &netns, name, ports).await?;
            if first_ip.is_none() {
                first_ip = Some(ep.ip_address.clone());
            }
            c.update(|r| {
                r.networks.insert(name.clone(), ep);
            });
        }
        // The files are bind-mounted already: rewrite them in place (same inode).
        let hostname = rec.config.hostname.clone().unwrap_or_default();
        let hosts = crate::oci::etc_files::hosts(
            &hostname,
            first_ip.as_deref(),
            &rec.config.host.extra_hosts,
        )
        .map_err(EngineError::invalid)?;
        std::fs::write(&rec.hosts_path, hosts)
            .map_err(|e| EngineError::io("write /etc/hosts", e))?;
        let is_user_network = names[0] != "bridge";
        if is_user_network && rec.config.host.dns.is_empty() {
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            std::fs::write(
                &rec.resolv_conf_path,
                berth_net::resolv_conf_embedded(&host),
            )
            .map_err(|e| EngineError::io("write /etc/resolv.conf", e))?;
        }
        Ok(())
    }

    async fn attach_one(
        &self,
        net: &berth_net::NetworkManager,
        rec: &ContainerRecord,
        netns: &std::path::Path,
        network: &str,
        ports: Vec<PortBinding>,
    ) -> Result<NetworkEndpoint> {
        let ep = net
            .attach(AttachRequest {
                container_id: rec.id.clone(),
                container_name: rec.bare_name().to_string(),
                netns: netns.to_path_buf(),
                network: network.to_string(),
                aliases: rec
                    .networks
                    .get(network)
                    .map(|e| e.aliases.clone())
                    .unwrap_or_default(),
                ports,
                ip: None,
            })
            .await
            .map_err(net_error)?;
        Ok(NetworkEndpoint {
            network_id: ep.network_id.clone(),
            endpoint_id: ep.id.clone(),
            ip_address: ep.ip.to_string(),
            ip_prefix_len: ep.prefix_len,
            gateway: ep.gateway.to_string(),
            mac_address: ep.mac.clone(),
            ports: ep
                .ports
                .iter()
                .map(|p| PublishedPort {
                    container_port: format!("{}/{}", p.container_port, p.proto.as_str()),
                    host_ip: p.host_ip.to_string(),
                    host_port: p.host_port,
                })
                .collect(),
            aliases: ep.aliases.clone(),
        })
    }

    /// `network connect`: attach a running container now, or a stopped one at its next start.
    pub async fn network_connect(&self, network: &str, container: &str) -> Result<()> {
        self.network_connect_aliases(network, container, &[]).await
    }

    /// `network connect --alias A`: as [`Engine::network_connect`], with DNS aliases.
    pub async fn network_connect_aliases(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
    ) -> Result<()> {
        let net = self.net_or_unavailable()?;
        let c = self.lookup(container)?;
        let _g = c.lifecycle.lock().await;
        let rec = c.snapshot();
        if network_of_mode(&rec.config.host.network_mode).is_none() {
            return Err(EngineError::conflict(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network (network mode {})",
                rec.config.host.network_mode
            )));
        }
        let n = net.network(network).map_err(net_error)?;
        if rec.networks.contains_key(&n.name) {
            return Err(EngineError::conflict(format!(
                "endpoint with name {} already exists in network {}",
                rec.bare_name(),
                n.name
            )));
        }
        let ep = if rec.state.running && rec.state.pid > 0 {
            let netns = PathBuf::from(format!("/proc/{}/ns/net", rec.state.pid));
            let mut with = rec.clone();
            with.networks.insert(
                n.name.clone(),
                NetworkEndpoint {
                    aliases: aliases.to_vec(),
                    ..Default::default()
                },
            );
            self.attach_one(net, &with, &netns, &n.name, vec![]).await?
        } else {
            NetworkEndpoint {
                network_id: n.id.clone(),
                aliases: aliases.to_vec(),
                ..Default::default()
            }
        };
        c.update(|r| {
            r.networks.insert(n.name.clone(), ep);
        });
        self.save(&c)?;
        self.emit(
            "network",
            "connect",
            &n.id,
            [
                ("container".to_string(), rec.id.clone()),
                ("name".to_string(), n.name.clone()),
            ]
            .into(),
        );
        Ok(())
    }

    /// `network disconnect`.
    pub async fn network_disconnect(&self, network: &str, container: &str) -> Result<()> {
        let net = self.net_or_unavailable()?;
        let c = self.lookup(container)?;
        let _g = c.lifecycle.lock().await;
        let rec = c.snapshot();
        let n = net.network(network).map_err(net_error)?;
        if !rec.networks.contains_key(&n.name) {
            return Err(EngineError::not_found(format!(
                "container {} is not connected to network {}",
                rec.id, n.name
            )));
        }
        if rec.state.running {
            net.detach(&rec.id, &n.name).await.map_err(net_error)?;
        }
        c.update(|r| {
            r.networks.remove(&n.name);
        });
        self.save(&c)?;
        self.emit(
            "network",
            "disconnect",
            &n.id,
            [
                ("container".to_string(), rec.id.clone()),
                ("name".to_string(), n.name.clone()),
            ]
            .into(),
        );
        Ok(())
    }

    /// Release a stopped container's endpoints; inspect keeps the network, without addresses.
    pub(crate) async fn disconnect_networks(&self, c: &Container) {
        if let Some(net) = self.net() {
            if let Err(e) = net.release_container(&c.id).await {
                tracing::warn!(container = %c.id, "release network endpoints: {e}");
            }
        }
        c.update(|r| {
            for ep in r.networks.values_mut() {
                ep.ip_address.clear();
                ep.ip_prefix_len = 0;
                ep.gateway.clear();
                ep.mac_address.clear();
                ep.endpoint_id.clear();
                ep.ports.clear(); // aliases stay: they apply again at the next start
            }
        });
    }

    fn net_or_unavailable(&self) -> Result<&berth_net::NetworkManager> {
        self.net()
            .ok_or_else(|| EngineError::unavailable("networking is disabled in this engine"))
    }

    /// `network create`.
    pub async fn network_create(&self, req: NetworkCreate) -> Result<Network> {
        let n = self
            .net_or_unavailable()?
            .create_network(req)
            .await
            .map_err(net_error)?;
        self.emit(
            "network",
            "create",
            &n.id,
            [("name".to_string(), n.name.clone())].into(),
        );
        Ok(n)
    }

    /// `network ls` (bridge, host and none always included).
    pub async fn network_list(&self) -> Result<Vec<Network>> {
        Ok(self.net().map(|n| n.list_networks()).unwrap_or_default())
    }

    /// `network inspect`, with the containers attached (id → endpoint).
    pub async fn network_inspect(&self, key: &str) -> Result<(Network, Vec<berth_net::Endpoint>)> {
        let net = self.net_or_unavailable()?;
        let n = net.network(key).map_err(net_error)?;
        let eps = net.network_endpoints(key).map_err(net_error)?;
        Ok((n, eps))
    }

    /// `network rm`.
    pub async fn network_remove(&self, key: &str) -> Result<()> {
        let net = self.net_or_unavailable()?;
        let n = net.network(key).map_err(net_error)?;
        net.remove_network(key).await.map_err(net_error)?;
        self.emit(
            "network",
            "destroy",
            &n.id,
            [("name".to_string(), n.name)].into(),
        );
        Ok(())
    }

    /// `network prune`: user networks without containers (matching `labels`).
    pub async fn network_prune(
        &self,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<String>> {
        self.net_or_unavailable()?
            .prune_networks(labels)
            .await
            .map_err(net_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::PortBinding as Pb;

    #[test]
    fn modes() {
        assert_eq!(network_of_mode(""), Some("bridge"));
        assert_eq!(network_of_mode("default"), Some("bridge"));
        assert_eq!(network_of_mode("mynet"), Some("mynet"));
        assert_eq!(network_of_mode("host"), None);
        assert_eq!(network_of_mode("container:abc"), None);
    }

    #[test]
    fn port_bindings_from_config() {
        let mut r = ContainerRecord::default();
        r.config.host.port_bindings.insert(
            "80/tcp".into(),
            vec![Pb {
                host_ip: "127.0.0.1".into(),
                host_port: "8080".into(),
            }],
        );
        r.config.host.port_bindings.insert("53/udp".into(), vec![]);
        r.config.exposed_ports = vec!["80/tcp".into(), "443/tcp".into()];
        r.config.host.publish_all_ports = true;
        let b = port_bindings(&r).unwrap();
        assert_eq!(b.len(), 3);
        assert!(b.contains(&PortBinding {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: Some(8080),
            container_port: 80,
            proto: berth_net::Protocol::Tcp
        }));
        assert!(b.contains(&PortBinding {
            host_ip: None,
            host_port: None,
            container_port: 53,
            proto: berth_net::Protocol::Udp
        }));
        assert!(b.contains(&PortBinding {
            host_ip: None,
            host_port: None,
            container_port: 443,
            proto: berth_net::Protocol::Tcp
        }));
        r.config.host.port_bindings.insert("x/tcp".into(), vec![]);
        assert!(port_bindings(&r).is_err());
    }
}
