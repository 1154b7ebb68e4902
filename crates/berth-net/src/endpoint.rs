//! Endpoints: connecting a container's netns to a bridge network and back.
//!
//! Attach, in order: (1) under the state lock, pick the IP (the lease), the interface name,
//! reserve host ports; (2) without the lock, create the veth pair straight into the netns
//! while, concurrently, a short-lived thread opens a netlink socket (and the DNS socket)
//! inside the netns; configure the container side; (3) record and persist, start the DNS
//! server, and append DNAT rules only if ports were published (no nft exec otherwise).
//! Any failure rolls back the lease, the reservations and the veth.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

use crate::config::NetConfig;
use crate::error::{NetError, Result};
use crate::ipam;
use crate::link::{self, VethSpec};
use crate::manager::{new_id, NetworkManager};
use crate::model::{AttachRequest, Driver, Endpoint, PublishedPort};
use crate::netns;
use crate::ports;

impl NetworkManager {
    /// Connect a container (its netns) to a bridge network. Returns the endpoint with the
    /// IP, MAC, gateway, interface names and the published ports (host ports resolved).
    pub async fn attach(&self, req: AttachRequest) -> Result<Endpoint> {
        if req.container_id.is_empty() {
            return Err(NetError::InvalidArgument(
                "container id must not be empty".into(),
            ));
        }
        let netns_file = std::fs::File::open(&req.netns).map_err(|e| {
            NetError::io(
                format!(
                    "open network namespace {} (is the container running?)",
                    req.netns.display()
                ),
                e,
            )
        })?;

        // (1) lease, names, port reservations
        let (net, mut ep, fds, want_dns) = {
            let mut st = self.state();
            let net = st.find_network(&req.network)?.clone();
            if net.driver != Driver::Bridge {
                return Err(NetError::NotAttachable(net.name));
            }
            let (Some(subnet), Some(gw)) = (net.subnet, net.gateway) else {
                return Err(NetError::NotAttachable(net.name));
            };
            let mine: Vec<&Endpoint> = st.endpoints_of(&req.container_id).collect();
            if mine.iter().any(|e| e.network_id == net.id) {
                return Err(NetError::AlreadyAttached {
                    container: req.container_name.clone(),
                    network: net.name,
                });
            }
            let used_if: HashSet<&str> = mine.iter().map(|e| e.container_ifname.as_str()).collect();
            let ifname = (0..)
                .map(|i| format!("eth{i}"))
                .find(|n| !used_if.contains(n.as_str()))
                .unwrap_or_default();
            let default_route = !mine.iter().any(|e| e.default_route);
            let want_dns = mine.is_empty();
            let used_ip: HashSet<Ipv4Addr> = st.endpoints_on(&net.id).map(|e| e.ip).collect();
            let ip = ipam::allocate(&net.name, subnet, gw, &used_ip, req.ip)?;

            let mut fds: Vec<OwnedFd> = Vec::new();
            let mut published = Vec::new();
            if net.internal && !req.ports.is_empty() {
                tracing::warn!(network = %net.name, "ports are not published on internal networks (as in Docker)");
            } else {
                for p in &req.ports {
                    let host_ip = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
                    let (fd, host_port) =
                        ports::reserve(host_ip, p.host_port.unwrap_or(0), p.proto)?;
                    fds.push(fd);
                    published.push(PublishedPort {
                        host_ip,
                        host_port,
                        container_port: p.container_port,
                        proto: p.proto,
                    });
                }
            }
            let id = new_id();
            let ep = Endpoint {
                host_veth: NetConfig::ifname(&self.inner.cfg.veth_prefix, &id),
                id,
                container_id: req.container_id.clone(),
                container_name: req.container_name.trim_start_matches('/').to_string(),
                network_id: net.id.clone(),
                network_name: net.name.clone(),
                ip,
                prefix_len: subnet.prefix_len(),
                gateway: gw,
                mac: ipam::mac_string(ipam::mac_for(ip)),
                container_ifname: ifname,
                host_ifindex: 0,
                container_ifindex: 0,
                aliases: req.aliases.clone(),
                ports: published,
                netns: req.netns.clone(),
                default_route,
                mtu: self.inner.cfg.mtu,
            };
            // The endpoint in the state *is* the lease: nobody else can take this IP now.
            st.endpoints.insert(ep.id.clone(), ep.clone());
            (net, ep, fds, want_dns)
        };

        // (2) kernel work, no lock held
        let dns_bind = want_dns.then_some(self.inner.cfg.dns_address);
        let res = async {
            let bridge_index =
                match link::find_link(&self.inner.host, net.bridge.as_deref().unwrap_or_default())
                    .await?
                {
                    Some(i) => i,
                    None => self.ensure_bridge(&net).await?, // e.g. deleted behind our back
                };
            let spec = VethSpec {
                host_name: &ep.host_veth,
                peer_name: &ep.container_ifname,
                peer_netns: &netns_file,
                peer_mac: ipam::mac_for(ep.ip),
                mtu: ep.mtu,
                bridge_index,
            };
            let (veth, inside) = tokio::join!(
                link::add_veth(&self.inner.host, &spec),
                netns::open_in_netns(&req.netns, None)
            );
            let host_ifindex = veth?;
            let inside = inside?;
            let gw = ep.default_route.then_some(ep.gateway);
            let container_ifindex = link::configure_container_side(
                &inside.handle,
                &ep.container_ifname,
                ep.ip,
                ep.prefix_len,
                gw,
            )
            .await?;
            // After `lo` is up (configure_container_side), see `bind_dns_in_netns`.
            let dns = match dns_bind {
                Some(addr) => Some(netns::bind_dns_in_netns(&req.netns, addr).await?),
                None => None,
            };
            Ok::<_, NetError>((dns, host_ifindex, container_ifindex))
        }
        .await;
        let dns_sock = match res {
            Ok((s, host_ifindex, container_ifindex)) => {
                ep.host_ifindex = host_ifindex;
                ep.container_ifindex = container_ifindex;
                if let Some(stored) = self.state().endpoints.get_mut(&ep.id) {
                    stored.host_ifindex = host_ifindex;
                    stored.container_ifindex = container_ifindex;
                }
                s
            }
            Err(e) => {
                self.state().endpoints.remove(&ep.id);
                drop(fds);
                let _ = link::delete_link(&self.inner.host, &ep.host_veth).await;
                return Err(e);
            }
        };

        // (3) record, DNS, firewall
        if let Some(sock) = dns_sock {
            let task = crate::dns::server::spawn(
                sock,
                ep.container_id.clone(),
                self.resolver(),
                self.inner.upstreams.clone(),
            )?;
            if let Some(old) = self.live().dns.insert(ep.container_id.clone(), task) {
                old.abort();
            }
        }
        self.live().ports.insert(ep.id.clone(), fds);
        {
            let st = self.state();
            self.save(&st)?;
        }
        if !ep.ports.is_empty() {
            if let Err(e) = self.apply_ports().await {
                let _ = self.detach(&ep.container_id, &ep.network_id).await;
                return Err(e);
            }
        }
        Ok(ep)
    }

    /// `network disconnect`: remove one endpoint of a *running* container. The veth is
    /// deleted before returning (the interface name becomes reusable in the container).
    pub async fn detach(&self, container_id: &str, network: &str) -> Result<()> {
        let ep = self.forget_endpoint(container_id, network)?;
        if !ep.ports.is_empty() {
            self.apply_ports().await?;
        }
        link::delete_link(&self.inner.host, &ep.host_veth).await?;
        if ep.default_route {
            self.move_default_route(container_id).await?;
        }
        Ok(())
    }

    /// The endpoint holding the default route went away: give the route to another
    /// endpoint of the container, if any (Docker does the same on disconnect).
    async fn move_default_route(&self, container_id: &str) -> Result<()> {
        let next = {
            let mut st = self.state();
            let Some(next) = st
                .endpoints
                .values_mut()
                .find(|e| e.container_id == container_id)
            else {
                return Ok(());
            };
            next.default_route = true;
            let next = next.clone();
            self.save(&st)?;
            next
        };
        let inside = netns::open_in_netns(&next.netns, None).await?;
        let index = netns::link_index(&inside.handle, &next.container_ifname).await?;
        link::add_default_route(&inside.handle, index, next.gateway).await
    }

    /// Container stopped or removed: release all its endpoints (leases, port reservations,
    /// DNS) and return. The slow kernel parts finish in the background (`settle()` waits
    /// for them): removing its DNAT rules (an nf_tables commit that deletes waits for RCU,
    /// ~12-19 ms here) and deleting the veths (~20 ms each; they also go away by themselves
    /// when the netns dies). Until the rules are gone, a new container publishing the same
    /// host port may see its first packets go to the old rule for a few milliseconds.
    pub async fn release_container(&self, container_id: &str) -> Result<()> {
        let eps: Vec<Endpoint> = self.state().endpoints_of(container_id).cloned().collect();
        let mut had_ports = false;
        for ep in &eps {
            self.forget_endpoint(container_id, &ep.network_id)?;
            had_ports |= !ep.ports.is_empty();
        }
        if eps.is_empty() {
            return Ok(());
        }
        let me = self.clone();
        let task = tokio::spawn(async move {
            if had_ports {
                if let Err(e) = me.apply_ports().await {
                    tracing::warn!("removing published ports of released container: {e}");
                }
            }
            // The container's netns dies with its init, and the kernel removes both veth ends
            // with it (batched, in its own time). Deleting them here as well doubled the
            // RTNL-held work and made the next container's veth wait for it (`run --rm` back
            // to back: 31.6 ± 9.5 ms → 21.7 ± 2.6 ms). Only a veth still there after a while
            // (its namespace kept alive: a container joined it) is deleted here, and only the
            // same interface (a restarted container gets a new veth of the same name).
            tokio::time::sleep(VETH_GRACE).await;
            for ep in eps {
                if !link_still_there(&ep.host_veth, ep.host_ifindex) {
                    continue;
                }
                if let Err(e) = link::delete_link(&me.inner.host, &ep.host_veth).await {
                    tracing::warn!("deleting veth {}: {e}", ep.host_veth);
                }
            }
        });
        let mut live = self.live();
        live.background.retain(|t| !t.is_finished());
        live.background.push(task);
        Ok(())
    }

    /// Endpoints of one container (for `NetworkSettings` in inspect).
    pub fn container_endpoints(&self, container_id: &str) -> Vec<Endpoint> {
        self.state().endpoints_of(container_id).cloned().collect()
    }

    /// Wait for background veth deletions to finish (up to [`VETH_GRACE`] after the last
    /// release).
    pub async fn settle(&self) {
        let tasks: Vec<_> = std::mem::take(&mut self.live().background);
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Drop the endpoint from the state (lease), its port reservations, and the DNS server
    /// when it was the container's last endpoint. Persists.
    fn forget_endpoint(&self, container_id: &str, network: &str) -> Result<Endpoint> {
        let mut st = self.state();
        let ep = st
            .endpoints
            .values()
            .find(|e| {
                e.container_id == container_id
                    && (e.network_id == network
                        || e.network_name == network
                        || (!network.is_empty() && e.network_id.starts_with(network)))
            })
            .cloned()
            .ok_or_else(|| NetError::NotAttached {
                container: container_id.to_string(),
                network: network.to_string(),
            })?;
        st.endpoints.remove(&ep.id);
        let last = st.endpoints_of(container_id).next().is_none();
        self.save(&st)?;
        drop(st);
        let mut live = self.live();
        live.ports.remove(&ep.id);
        if last {
            if let Some(t) = live.dns.remove(container_id) {
                t.abort();
            }
        }
        Ok(ep)
    }
}

/// How long a released container's veth may take to vanish with its namespace before it is
/// deleted explicitly.
pub const VETH_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether the host end `name` still exists as the interface `ifindex` (0: unknown, any).
fn link_still_there(name: &str, ifindex: u32) -> bool {
    match std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")) {
        Ok(s) => ifindex == 0 || s.trim().parse::<u32>().ok() == Some(ifindex),
        Err(_) => false,
    }
}
