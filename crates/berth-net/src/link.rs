//! Links over netlink: bridges, veth pairs, addresses, routes. No `ip` execs (each exec of
//! `ip` costs ~2 ms here; a netlink round trip costs tens of microseconds).

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use futures_util::StreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteType};
use rtnetlink::{LinkBridge, LinkBridgePort, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{NetError, Result};
use crate::netns::link_index;

/// A link as listed on the host.
#[derive(Debug, Clone)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// Index of the bridge it is a port of.
    pub master: Option<u32>,
}

/// All links in the namespace of `h`.
pub async fn list_links(h: &rtnetlink::Handle) -> Result<Vec<LinkInfo>> {
    let mut out = Vec::new();
    let mut s = h.link().get().execute();
    while let Some(msg) = s.next().await {
        let msg = msg.map_err(|e| NetError::netlink("list links", e))?;
        let mut name = String::new();
        let mut master = None;
        for a in &msg.attributes {
            match a {
                LinkAttribute::IfName(n) => name = n.clone(),
                LinkAttribute::Controller(m) => master = Some(*m),
                _ => {}
            }
        }
        out.push(LinkInfo {
            index: msg.header.index,
            name,
            master,
        });
    }
    Ok(out)
}

/// Index of the link named `name`, if it exists.
pub async fn find_link(h: &rtnetlink::Handle, name: &str) -> Result<Option<u32>> {
    let mut s = h.link().get().match_name(name.to_string()).execute();
    match s.next().await {
        Some(Ok(m)) => Ok(Some(m.header.index)),
        Some(Err(rtnetlink::Error::NetlinkError(e))) if e.raw_code() == -libc_enodev() => Ok(None),
        Some(Err(e)) => Err(NetError::netlink(format!("get link {name}"), e)),
        None => Ok(None),
    }
}

const fn libc_enodev() -> i32 {
    19 // ENODEV: "no such device" is how the kernel answers a lookup of a missing name
}

/// Destination prefixes of all unicast IPv4 routes except default routes (what a new
/// subnet must not overlap).
pub async fn host_routes(h: &rtnetlink::Handle) -> Result<Vec<Ipv4Net>> {
    let mut out = Vec::new();
    let mut s = h
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(msg) = s.next().await {
        let msg = msg.map_err(|e| NetError::netlink("list routes", e))?;
        if msg.header.kind != RouteType::Unicast || msg.header.destination_prefix_length == 0 {
            continue;
        }
        for a in &msg.attributes {
            if let RouteAttribute::Destination(RouteAddress::Inet(d)) = a {
                if let Ok(n) = Ipv4Net::new(*d, msg.header.destination_prefix_length) {
                    out.push(n.trunc());
                }
            }
        }
    }
    Ok(out)
}

/// Create (or adopt) the bridge, give it the gateway address and a stable MAC, bring it up.
pub async fn ensure_bridge(
    h: &rtnetlink::Handle,
    name: &str,
    gateway: Ipv4Addr,
    prefix_len: u8,
    mac: [u8; 6],
    mtu: u32,
) -> Result<u32> {
    let index = match find_link(h, name).await? {
        Some(i) => i,
        None => {
            // A fixed MAC keeps the bridge address stable as ports come and go (otherwise the
            // bridge takes the lowest port MAC and neighbours' ARP caches go stale).
            h.link()
                .add(LinkBridge::new(name).address(mac.to_vec()).mtu(mtu).build())
                .execute()
                .await
                .map_err(|e| NetError::netlink(format!("create bridge {name}"), e))?;
            link_index(h, name).await?
        }
    };
    match h
        .address()
        .add(index, gateway.into(), prefix_len)
        .execute()
        .await
    {
        Ok(()) => {}
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -17 => {} // EEXIST: adopted bridge
        Err(e) => {
            return Err(NetError::netlink(
                format!("add {gateway}/{prefix_len} to {name}"),
                e,
            ))
        }
    }
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| NetError::netlink(format!("set {name} up"), e))?;
    Ok(index)
}

/// Delete a link by name; a missing link is not an error (deleting one veth end removes
/// both, and a container's exit removes its veth with its netns).
pub async fn delete_link(h: &rtnetlink::Handle, name: &str) -> Result<()> {
    let Some(index) = find_link(h, name).await? else {
        return Ok(());
    };
    match h.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -19 => Ok(()),
        Err(e) => Err(NetError::netlink(format!("delete link {name}"), e)),
    }
}

/// What one veth pair needs.
pub struct VethSpec<'a> {
    pub host_name: &'a str,
    pub peer_name: &'a str,
    pub peer_netns: &'a std::fs::File,
    pub peer_mac: [u8; 6],
    pub mtu: u32,
    pub bridge_index: u32,
}

/// Create the veth pair in one request: the host end is created up and enslaved to the
/// bridge, the peer is created directly inside the container netns with its final name
/// (`eth0`), MAC and MTU — no separate move/rename round trips. Then `hairpin on` on the
/// bridge port, so a container can reach its own published ports.
pub async fn add_veth(h: &rtnetlink::Handle, v: &VethSpec<'_>) -> Result<u32> {
    let peer = LinkUnspec::new_with_name(v.peer_name)
        .address(v.peer_mac.to_vec())
        .mtu(v.mtu)
        .setns_by_fd(v.peer_netns.as_raw_fd())
        .build();
    let msg = LinkVeth::new(v.host_name, v.peer_name)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .mtu(v.mtu)
        .controller(v.bridge_index)
        .up()
        .build();
    h.link().add(msg).execute().await.map_err(|e| {
        NetError::netlink(
            format!("create veth {} <-> {}", v.host_name, v.peer_name),
            e,
        )
    })?;
    let index = link_index(h, v.host_name).await?;
    h.link()
        .set_port(LinkBridgePort::new(index).hairpin(true).build())
        .execute()
        .await
        .map_err(|e| NetError::netlink(format!("set hairpin on {}", v.host_name), e))?;
    Ok(index)
}

/// Inside the container: address on the interface, interface and lo up, default route.
pub async fn configure_container_side(
    h: &rtnetlink::Handle,
    ifname: &str,
    ip: Ipv4Addr,
    prefix_len: u8,
    gateway: Option<Ipv4Addr>,
) -> Result<u32> {
    let index = link_index(h, ifname).await?;
    h.address()
        .add(index, ip.into(), prefix_len)
        .execute()
        .await
        .map_err(|e| NetError::netlink(format!("add {ip}/{prefix_len} to {ifname}"), e))?;
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| NetError::netlink(format!("set {ifname} up"), e))?;
    crate::netns::loopback_up(h).await?;
    if let Some(gw) = gateway {
        add_default_route(h, index, gw).await?;
    }
    Ok(index)
}

/// `ip route add default via GW dev IFINDEX` in the namespace of `h`.
pub async fn add_default_route(h: &rtnetlink::Handle, index: u32, gw: Ipv4Addr) -> Result<()> {
    h.route()
        .add(
            RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .build(),
        )
        .execute()
        .await
        .map_err(|e| NetError::netlink(format!("add default route via {gw}"), e))
}
