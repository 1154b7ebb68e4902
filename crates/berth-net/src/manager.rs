//! The network manager: networks (create/list/inspect/remove/prune), the firewall, the
//! name lookups of the embedded DNS. Endpoints are in `endpoint.rs`, restart and cleanup in
//! `lifecycle.rs`.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::Ipv4Net;
use rand::RngCore;
use tokio::task::JoinHandle;

use crate::config::NetConfig;
use crate::dns::server::Resolver;
use crate::error::{NetError, Result};
use crate::firewall::{Firewall, FwNetwork, PortKey, PortMap, PortTarget, Ruleset};
use crate::ipam;
use crate::link;
use crate::model::{Driver, Endpoint, Network, NetworkCreate, PortRules};
use crate::state::{State, STATE_FILE};
use crate::sysctl;

/// Handle to berth-net. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct NetworkManager {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) cfg: NetConfig,
    pub(crate) state_path: PathBuf,
    pub(crate) state: Arc<Mutex<State>>,
    /// Netlink in the host namespace.
    pub(crate) host: rtnetlink::Handle,
    /// nftables or iptables.
    pub(crate) firewall: Firewall,
    /// Serializes firewall rebuilds so the newest state is always applied last.
    pub(crate) fw: tokio::sync::Mutex<()>,
    pub(crate) live: Mutex<Live>,
    pub(crate) upstreams: Arc<Vec<SocketAddr>>,
    /// A background fsync of the state file is scheduled.
    pub(crate) flush_pending: Arc<AtomicBool>,
}

/// In-memory only: what exists because this process holds it.
#[derive(Default)]
pub(crate) struct Live {
    /// Port reservation sockets by endpoint id.
    pub(crate) ports: HashMap<String, Vec<OwnedFd>>,
    /// Embedded DNS task by container id.
    pub(crate) dns: HashMap<String, JoinHandle<()>>,
    /// Veth deletions and firewall refills running in the background.
    pub(crate) background: Vec<JoinHandle<()>>,
    /// The published ports as last installed in the kernel.
    pub(crate) installed: PortMap,
}

/// What changed since the last firewall update.
enum FwChange {
    /// Networks changed (or startup): rebuild all our rules.
    Full,
    /// Only published ports changed: update the port maps (or the port chain).
    Ports,
}

pub(crate) fn new_id() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn valid_name(name: &str) -> bool {
    let mut c = name.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphanumeric())
        && c.all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
}

impl NetworkManager {
    /// Open (or create) the state in `state_dir`, make sure the predefined networks
    /// `bridge`, `host` and `none` exist, create the bridges of all bridge networks, turn
    /// on `ip_forward` and install our nftables table. Must be called inside a tokio runtime.
    pub async fn open(state_dir: &Path, cfg: NetConfig) -> Result<NetworkManager> {
        cfg.validate()?;
        let firewall = Firewall::select(&cfg.nft_table, cfg.firewall)?;
        let state_path = state_dir.join(STATE_FILE);
        let mut st = State::load(&state_path)?;
        let (conn, host, _) =
            rtnetlink::new_connection().map_err(|e| NetError::io("open netlink socket", e))?;
        tokio::spawn(conn);
        sysctl::enable_ip_forward()?;
        let upstreams = match &cfg.dns_upstreams {
            Some(u) => u.clone(),
            None => crate::files::nameservers(
                &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            ),
        };

        // Held until the bridges (and so their routes) exist: see hostlock.rs.
        let lock = crate::hostlock::subnet_lock().await?;
        if !st.networks.values().any(|n| n.name == "bridge") {
            let mut taken = link::host_routes(&host).await?;
            taken.extend(st.networks.values().filter_map(|n| n.subnet));
            let subnet = match cfg.default_subnet {
                Some(s) => {
                    if let Some(o) = taken.iter().find(|o| ipam::overlaps(&s, o)) {
                        return Err(NetError::SubnetOverlap {
                            subnet: s.to_string(),
                            other: o.to_string(),
                        });
                    }
                    s
                }
                None => ipam::pick_subnet(&cfg.address_pool, &taken)?,
            };
            let (subnet, gw) = ipam::validate(subnet, None)?;
            let n = predefined(
                "bridge",
                Driver::Bridge,
                Some((subnet, gw)),
                Some(cfg.default_bridge.clone()),
            );
            st.networks.insert(n.id.clone(), n);
        }
        for (name, driver) in [("host", Driver::Host), ("none", Driver::Null)] {
            if !st.networks.values().any(|n| n.name == name) {
                let n = predefined(name, driver, None, None);
                st.networks.insert(n.id.clone(), n);
            }
        }
        let switched = st
            .firewall
            .replace(firewall.name().to_string())
            .is_some_and(|prev| prev != firewall.name());
        st.save(&state_path)?;
        let bridges: Vec<Network> = st
            .networks
            .values()
            .filter(|n| n.driver == Driver::Bridge)
            .cloned()
            .collect();
        let mgr = NetworkManager {
            inner: Arc::new(Inner {
                cfg,
                state_path,
                state: Arc::new(Mutex::new(st)),
                host,
                firewall,
                fw: tokio::sync::Mutex::new(()),
                live: Mutex::new(Live::default()),
                upstreams: Arc::new(upstreams),
                flush_pending: Arc::new(AtomicBool::new(false)),
            }),
        };
        for n in &bridges {
            mgr.ensure_bridge(n).await?;
        }
        drop(lock);
        if switched {
            mgr.inner.firewall.remove_other_backend().await;
        }
        mgr.apply_firewall().await?;
        Ok(mgr)
    }

    /// Our rules as the firewall tool prints them (for `berth explain`: the DNAT, masquerade
    /// and forward rules behind every published port and network): `nft list table`, or
    /// our chains' lines of `iptables-save` with the iptables backend.
    pub async fn firewall_rules(&self) -> Result<String> {
        self.inner.firewall.listing().await
    }

    /// `nftables` or `iptables`: the backend this instance installs its rules with.
    pub fn firewall_backend(&self) -> &'static str {
        self.inner.firewall.name()
    }

    /// For every port the container publishes, the exact lines of [`Self::firewall_rules`]
    /// that implement it (the jumps into the port chain, the 127.0.0.0/8 masquerade for
    /// loopback publishing, the DNAT rule — with nftables, the rule that looks up the port
    /// map plus the map element). A port whose rules are missing gets an empty list.
    pub async fn published_port_rules(&self, container_id: &str) -> Result<Vec<PortRules>> {
        let eps = self.container_endpoints(container_id);
        if eps.iter().all(|e| e.ports.is_empty()) {
            return Ok(Vec::new());
        }
        let listing = self.firewall_rules().await?;
        let mut out = Vec::new();
        for ep in eps {
            let bridge = self.network(&ep.network_id).ok().and_then(|n| n.bridge);
            for p in &ep.ports {
                let key = PortKey {
                    proto: p.proto,
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                };
                let target = PortTarget {
                    ip: ep.ip,
                    port: p.container_port,
                };
                out.push(PortRules {
                    port: p.clone(),
                    container_ip: ep.ip,
                    rules: self.inner.firewall.port_rules(
                        &listing,
                        &key,
                        &target,
                        bridge.as_deref().unwrap_or_default(),
                    ),
                });
            }
        }
        Ok(out)
    }

    /// The configuration this instance runs with.
    pub fn config(&self) -> &NetConfig {
        &self.inner.cfg
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn live(&self) -> MutexGuard<'_, Live> {
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Persist: atomic rename now, fsync in the background (coalesced). Call with the
    /// state lock held so writes are ordered.
    pub(crate) fn save(&self, st: &State) -> Result<()> {
        st.save_unsynced(&self.inner.state_path)?;
        if !self.inner.flush_pending.swap(true, Ordering::AcqRel) {
            let (flag, path) = (
                self.inner.flush_pending.clone(),
                self.inner.state_path.clone(),
            );
            tokio::task::spawn_blocking(move || {
                flag.store(false, Ordering::Release);
                if let Err(e) = crate::state::sync(&path) {
                    tracing::warn!("{e}");
                }
            });
        }
        Ok(())
    }

    /// Make the state durable now (shutdown paths).
    pub(crate) fn flush(&self) -> Result<()> {
        crate::state::sync(&self.inner.state_path)
    }

    pub(crate) async fn ensure_bridge(&self, n: &Network) -> Result<u32> {
        let (Some(br), Some(subnet), Some(gw)) = (&n.bridge, n.subnet, n.gateway) else {
            return Err(NetError::InvalidArgument(format!(
                "network {} is not a bridge network",
                n.name
            )));
        };
        let idx = link::ensure_bridge(
            &self.inner.host,
            br,
            gw,
            subnet.prefix_len(),
            ipam::mac_for(gw),
            self.inner.cfg.mtu,
        )
        .await?;
        sysctl::enable_route_localnet(br)?;
        Ok(idx)
    }

    /// `network create`.
    pub async fn create_network(&self, req: NetworkCreate) -> Result<Network> {
        if !valid_name(&req.name) {
            return Err(NetError::InvalidArgument(format!(
                "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                req.name
            )));
        }
        let lock = crate::hostlock::subnet_lock().await?;
        let routes = link::host_routes(&self.inner.host).await?;
        let net = {
            let mut st = self.state();
            if st.networks.values().any(|n| n.name == req.name) {
                return Err(NetError::NetworkExists(req.name));
            }
            let ours: Vec<Ipv4Net> = st.networks.values().filter_map(|n| n.subnet).collect();
            let subnet = match req.subnet {
                Some(s) => {
                    let s = ipam::validate(s, req.gateway)?.0;
                    if let Some(o) = ours
                        .iter()
                        .chain(routes.iter())
                        .find(|o| ipam::overlaps(&s, o))
                    {
                        return Err(NetError::SubnetOverlap {
                            subnet: s.to_string(),
                            other: o.to_string(),
                        });
                    }
                    s
                }
                None => {
                    let taken: Vec<Ipv4Net> = ours.iter().chain(routes.iter()).copied().collect();
                    ipam::pick_subnet(&self.inner.cfg.address_pool, &taken)?
                }
            };
            let (subnet, gw) = ipam::validate(subnet, req.gateway)?;
            let id = new_id();
            let net = Network {
                bridge: Some(NetConfig::ifname(&self.inner.cfg.user_bridge_prefix, &id)),
                id,
                name: req.name,
                driver: Driver::Bridge,
                subnet: Some(subnet),
                gateway: Some(gw),
                internal: req.internal,
                labels: req.labels,
                created: now_rfc3339(),
                predefined: false,
            };
            st.networks.insert(net.id.clone(), net.clone());
            net
        };
        let res = async {
            self.ensure_bridge(&net).await?;
            drop(lock);
            self.apply_firewall().await
        }
        .await;
        if let Err(e) = res {
            self.state().networks.remove(&net.id);
            if let Some(br) = &net.bridge {
                let _ = link::delete_link(&self.inner.host, br).await;
            }
            return Err(e);
        }
        let st = self.state();
        self.save(&st)?;
        Ok(net)
    }

    /// `network ls`: all networks, predefined ones included, sorted by name.
    pub fn list_networks(&self) -> Vec<Network> {
        let mut v: Vec<Network> = self.state().networks.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// `network inspect`: by id, name or unique id prefix.
    pub fn network(&self, key: &str) -> Result<Network> {
        self.state().find_network(key).cloned()
    }

    /// The endpoints (containers) on a network.
    pub fn network_endpoints(&self, key: &str) -> Result<Vec<Endpoint>> {
        let st = self.state();
        let id = st.find_network(key)?.id.clone();
        Ok(st.endpoints_on(&id).cloned().collect())
    }

    /// `network rm`.
    pub async fn remove_network(&self, key: &str) -> Result<()> {
        let net = {
            let mut st = self.state();
            let net = st.find_network(key)?.clone();
            if net.predefined {
                return Err(NetError::Predefined(net.name));
            }
            let count = st.endpoints_on(&net.id).count();
            if count > 0 {
                return Err(NetError::NetworkInUse {
                    name: net.name,
                    count,
                });
            }
            st.networks.remove(&net.id);
            self.save(&st)?;
            net
        };
        self.apply_firewall().await?;
        if let Some(br) = &net.bridge {
            link::delete_link(&self.inner.host, br).await?;
        }
        Ok(())
    }

    /// `network prune`: remove user networks without endpoints whose labels match all of
    /// `labels` (empty = all). Returns the removed names.
    pub async fn prune_networks(&self, labels: &BTreeMap<String, String>) -> Result<Vec<String>> {
        let victims: Vec<String> = {
            let st = self.state();
            st.networks
                .values()
                .filter(|n| !n.predefined && st.endpoints_on(&n.id).next().is_none())
                .filter(|n| labels.iter().all(|(k, v)| n.labels.get(k) == Some(v)))
                .map(|n| n.id.clone())
                .collect()
        };
        let mut removed = Vec::new();
        for id in victims {
            let name = self.network(&id)?.name;
            match self.remove_network(&id).await {
                Ok(()) => removed.push(name),
                Err(NetError::NetworkInUse { .. }) => {} // raced with an attach: keep it
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Rebuild all our rules from the current state (one atomic batch).
    pub(crate) async fn apply_firewall(&self) -> Result<()> {
        self.apply_rules(FwChange::Full).await
    }

    /// Published ports were added or removed: bring the port maps in line with the state
    /// (over netlink with nftables: no exec, no chain rebuild). Falls back to the full
    /// rebuild if that fails, e.g. because our table was removed behind our back.
    pub(crate) async fn apply_ports(&self) -> Result<()> {
        match self.apply_rules(FwChange::Ports).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::debug!("incremental port update failed ({e}); rebuilding the rules");
                self.apply_rules(FwChange::Full).await
            }
        }
    }

    /// The desired rules, from the state.
    fn ruleset(&self) -> Ruleset {
        let st = self.state();
        let mut networks = Vec::new();
        for n in st.networks.values() {
            if let (Driver::Bridge, Some(br), Some(subnet)) = (n.driver, &n.bridge, n.subnet) {
                networks.push(FwNetwork {
                    bridge: br.clone(),
                    subnet,
                    internal: n.internal,
                });
            }
        }
        let mut ports = PortMap::new();
        for e in st.endpoints.values() {
            for p in &e.ports {
                ports.insert(
                    PortKey {
                        proto: p.proto,
                        host_ip: p.host_ip,
                        host_port: p.host_port,
                    },
                    PortTarget {
                        ip: e.ip,
                        port: p.container_port,
                    },
                );
            }
        }
        Ruleset {
            table: self.inner.cfg.nft_table.clone(),
            networks,
            ports,
        }
    }

    async fn apply_rules(&self, change: FwChange) -> Result<()> {
        let _g = self.inner.fw.lock().await;
        let rs = self.ruleset();
        match change {
            FwChange::Full => self.inner.firewall.apply_full(&rs).await?,
            FwChange::Ports => {
                let installed = self.live().installed.clone();
                self.inner.firewall.sync_ports(&installed, &rs).await?
            }
        }
        self.live().installed = rs.ports;
        Ok(())
    }

    /// Remove all our rules (teardown).
    pub(crate) async fn remove_firewall(&self) -> Result<()> {
        let _g = self.inner.fw.lock().await;
        self.inner.firewall.remove().await?;
        self.live().installed.clear();
        Ok(())
    }

    pub(crate) fn resolver(&self) -> Arc<dyn Resolver> {
        Arc::new(crate::names::StateResolver(self.inner.state.clone()))
    }
}

pub(crate) fn predefined(
    name: &str,
    driver: Driver,
    ip: Option<(Ipv4Net, Ipv4Addr)>,
    bridge: Option<String>,
) -> Network {
    Network {
        id: new_id(),
        name: name.to_string(),
        driver,
        subnet: ip.map(|x| x.0),
        gateway: ip.map(|x| x.1),
        bridge,
        internal: false,
        labels: BTreeMap::new(),
        created: now_rfc3339(),
        predefined: true,
    }
}
