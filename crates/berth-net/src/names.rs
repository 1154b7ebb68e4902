//! Which names a container can resolve: the DNS view over berth-net's state.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use crate::dns::server::{Lookup, Resolver};
use crate::model::Network;
use crate::state::State;

/// Names visible to a container: names, aliases and short ids of the containers on the
/// same *user-defined* networks (the default `bridge` network has no name resolution, as
/// in Docker).
pub(crate) struct StateResolver(pub(crate) Arc<Mutex<State>>);

impl Resolver for StateResolver {
    fn lookup(&self, container_id: &str, name: &str) -> Lookup {
        let st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mine: Vec<&Network> = st
            .endpoints_of(container_id)
            .filter_map(|e| st.networks.get(&e.network_id))
            .collect();
        let mut ips: Vec<Ipv4Addr> = Vec::new();
        for net in mine.iter().filter(|n| !n.is_default_bridge()) {
            for e in st.endpoints_on(&net.id) {
                let hit = e.container_name.eq_ignore_ascii_case(name)
                    || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
                    || (name.len() >= 12 && e.container_id.starts_with(name));
                if hit && !ips.contains(&e.ip) {
                    ips.push(e.ip);
                }
            }
        }
        if ips.is_empty() {
            Lookup::NotOurs {
                forward: mine.iter().any(|n| !n.internal),
            }
        } else {
            Lookup::Found(ips)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    use crate::manager::{new_id, predefined};
    use crate::model::{Driver, Endpoint};

    fn net(name: &str, internal: bool, predefined: bool) -> Network {
        let mut n = predefined_net(name);
        n.internal = internal;
        n.predefined = predefined;
        n
    }

    fn predefined_net(name: &str) -> Network {
        predefined(
            name,
            Driver::Bridge,
            Some(("10.0.0.0/24".parse().unwrap(), Ipv4Addr::new(10, 0, 0, 1))),
            None,
        )
    }

    fn ep(
        container: &str,
        name: &str,
        network: &Network,
        ip: [u8; 4],
        aliases: &[&str],
    ) -> Endpoint {
        Endpoint {
            id: new_id(),
            container_id: container.repeat(64),
            container_name: name.into(),
            network_id: network.id.clone(),
            network_name: network.name.clone(),
            ip: ip.into(),
            prefix_len: 24,
            gateway: Ipv4Addr::new(10, 0, 0, 1),
            mac: String::new(),
            host_veth: String::new(),
            container_ifname: "eth0".into(),
            host_ifindex: 0,
            container_ifindex: 0,
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            ports: vec![],
            netns: PathBuf::new(),
            default_route: true,
            mtu: 1500,
        }
    }

    #[test]
    fn resolves_only_names_on_shared_user_networks() {
        let (def, one, two) = (
            net("bridge", false, true),
            net("one", false, false),
            net("two", true, false),
        );
        let mut st = State::default();
        for n in [&def, &one, &two] {
            st.networks.insert(n.id.clone(), n.clone());
        }
        for e in [
            ep("a", "alpha", &one, [10, 0, 0, 2], &["web"]),
            ep("b", "bravo", &one, [10, 0, 0, 3], &[]),
            ep("c", "charlie", &two, [10, 0, 1, 2], &[]),
            ep("d", "delta", &def, [10, 0, 2, 2], &[]),
            ep("e", "echo", &def, [10, 0, 2, 3], &[]),
        ] {
            st.endpoints.insert(e.id.clone(), e);
        }
        let r = StateResolver(Arc::new(Mutex::new(st)));
        let b = "b".repeat(64);
        assert_eq!(
            r.lookup(&b, "alpha"),
            Lookup::Found(vec![Ipv4Addr::new(10, 0, 0, 2)])
        );
        assert_eq!(
            r.lookup(&b, "web"),
            Lookup::Found(vec![Ipv4Addr::new(10, 0, 0, 2)])
        );
        assert_eq!(
            r.lookup(&b, &"a".repeat(12)),
            Lookup::Found(vec![Ipv4Addr::new(10, 0, 0, 2)])
        );
        assert_eq!(
            r.lookup(&b, "aaaa"),
            Lookup::NotOurs { forward: true },
            "short prefixes are not ids"
        );
        assert_eq!(
            r.lookup(&b, "charlie"),
            Lookup::NotOurs { forward: true },
            "other network"
        );
        // internal-only containers get no forwarding; the default bridge has no names
        assert_eq!(
            r.lookup(&"c".repeat(64), "example.com"),
            Lookup::NotOurs { forward: false }
        );
        assert_eq!(
            r.lookup(&"d".repeat(64), "echo"),
            Lookup::NotOurs { forward: true }
        );
    }
}
