//! IP address management: choosing subnets that do not collide with the host, handing out
//! addresses inside a subnet, deriving MACs. Pure functions; persistence is in `state`.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::error::{NetError, Result};

/// Docker's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 cut into /20s.
/// The first candidate that overlaps nothing on the host (routes) and none of our own
/// networks wins.
pub fn default_pool() -> Vec<Ipv4Net> {
    let mut v: Vec<Ipv4Net> = (17..=31)
        .map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("valid /16"))
        .collect();
    v.extend(
        (0..16).map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).expect("valid /20")),
    );
    v
}

/// True when the two prefixes share at least one address.
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// First candidate overlapping nothing in `taken`.
pub fn pick_subnet(candidates: &[Ipv4Net], taken: &[Ipv4Net]) -> Result<Ipv4Net> {
    candidates
        .iter()
        .map(|c| c.trunc())
        .find(|c| !taken.iter().any(|t| overlaps(c, t)))
        .ok_or(NetError::NoFreeSubnet)
}

/// Checks a user-given subnet/gateway pair and fills in the gateway (first host address).
pub fn validate(subnet: Ipv4Net, gateway: Option<Ipv4Addr>) -> Result<(Ipv4Net, Ipv4Addr)> {
    if subnet.prefix_len() > 30 {
        return Err(NetError::InvalidArgument(format!(
            "subnet {subnet} is too small; use a prefix of /30 or shorter"
        )));
    }
    if subnet.trunc() != subnet {
        return Err(NetError::InvalidArgument(format!(
            "subnet {subnet} has host bits set; did you mean {}?",
            subnet.trunc()
        )));
    }
    let gw = match gateway {
        Some(g) => g,
        None => first_host(subnet),
    };
    if !subnet.contains(&gw) || gw == subnet.network() || gw == subnet.broadcast() {
        return Err(NetError::InvalidArgument(format!(
            "gateway {gw} is not a usable host address of subnet {subnet}"
        )));
    }
    Ok((subnet, gw))
}

fn first_host(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

/// Allocate an address: `requested` if it is usable and free, else the lowest free host
/// address (never the network, broadcast or gateway address).
pub fn allocate(
    network: &str,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    used: &HashSet<Ipv4Addr>,
    requested: Option<Ipv4Addr>,
) -> Result<Ipv4Addr> {
    let usable = |ip: Ipv4Addr| {
        subnet.contains(&ip) && ip != subnet.network() && ip != subnet.broadcast() && ip != gateway
    };
    if let Some(ip) = requested {
        if !usable(ip) {
            return Err(NetError::InvalidArgument(format!(
                "address {ip} is not a usable address of network {network} ({subnet}, gateway {gateway})"
            )));
        }
        if used.contains(&ip) {
            return Err(NetError::AddressInUse {
                ip: ip.to_string(),
                network: network.to_string(),
            });
        }
        return Ok(ip);
    }
    subnet
        .hosts()
        .find(|ip| usable(*ip) && !used.contains(ip))
        .ok_or_else(|| NetError::PoolExhausted(network.to_string()))
}

/// Docker's MAC derivation: `02:42:` followed by the IPv4 address bytes (locally
/// administered, unicast, and unique as long as the IP is).
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn picks_first_subnet_not_on_the_host() {
        let taken = [
            net("172.17.0.0/16"),
            net("172.18.5.0/24"),
            net("0.0.0.0/0").trunc(),
        ];
        // the default route is excluded by callers; here only specific routes count
        let got = pick_subnet(&default_pool(), &taken[..2]).unwrap();
        assert_eq!(got, net("172.19.0.0/16"));
        assert!(pick_subnet(&[net("10.0.0.0/8")], &[net("10.1.0.0/16")]).is_err());
    }

    #[test]
    fn allocates_lowest_free_skipping_gateway() {
        let s = net("10.9.0.0/29");
        let (s, gw) = validate(s, None).unwrap();
        assert_eq!(gw, Ipv4Addr::new(10, 9, 0, 1));
        let mut used = HashSet::new();
        let a = allocate("n", s, gw, &used, None).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 9, 0, 2));
        used.insert(a);
        assert_eq!(
            allocate("n", s, gw, &used, None).unwrap(),
            Ipv4Addr::new(10, 9, 0, 3)
        );
        for i in 3..=6 {
            used.insert(Ipv4Addr::new(10, 9, 0, i));
        }
        assert!(matches!(
            allocate("n", s, gw, &used, None),
            Err(NetError::PoolExhausted(_))
        ));
        assert!(matches!(
            allocate("n", s, gw, &used, Some(Ipv4Addr::new(10, 9, 0, 7))),
            Err(NetError::InvalidArgument(_))
        ));
        assert!(matches!(
            allocate("n", s, gw, &used, Some(Ipv4Addr::new(10, 9, 0, 4))),
            Err(NetError::AddressInUse { .. })
        ));
    }

    #[test]
    fn validates_subnets_and_gateways() {
        assert!(validate(net("10.0.0.1/24"), None).is_err());
        assert!(validate(net("10.0.0.0/31"), None).is_err());
        assert!(validate(net("10.0.0.0/24"), Some(Ipv4Addr::new(10, 0, 1, 1))).is_err());
        assert!(validate(net("10.0.0.0/24"), Some(Ipv4Addr::new(10, 0, 0, 255))).is_err());
        assert_eq!(
            validate(net("10.0.0.0/24"), Some(Ipv4Addr::new(10, 0, 0, 254)))
                .unwrap()
                .1,
            Ipv4Addr::new(10, 0, 0, 254)
        );
    }

    #[test]
    fn mac_like_docker() {
        assert_eq!(
            mac_string(mac_for(Ipv4Addr::new(172, 17, 0, 2))),
            "02:42:ac:11:00:02"
        );
    }
}
