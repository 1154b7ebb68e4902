//! Daemon restart and full cleanup.

use std::collections::{HashMap, HashSet};

use crate::error::Result;
use crate::link;
use crate::manager::NetworkManager;
use crate::model::{Driver, Endpoint, RunningContainer};
use crate::netns;
use crate::ports;

impl NetworkManager {
    /// After a daemon restart: keep the endpoints of containers still running (re-reserve
    /// their host ports, restart their embedded DNS), drop the endpoints of everything else
    /// (leases, veths), delete veths on our bridges that no endpoint owns, and rebuild the
    /// firewall. What is on disk is reconciled with what runs, trusting neither alone.
    pub async fn restore(&self, running: &[RunningContainer]) -> Result<()> {
        let live_ns: HashMap<&str, &RunningContainer> = running
            .iter()
            .map(|r| (r.container_id.as_str(), r))
            .collect();
        let (stale, kept): (Vec<Endpoint>, Vec<Endpoint>) = {
            let mut st = self.state();
            let (stale, kept): (Vec<Endpoint>, Vec<Endpoint>) = st
                .endpoints
                .values()
                .cloned()
                .partition(|e| !live_ns.contains_key(e.container_id.as_str()));
            for e in &stale {
                st.endpoints.remove(&e.id);
            }
            for e in kept.iter() {
                if let Some(ep) = st.endpoints.get_mut(&e.id) {
                    ep.netns = live_ns[e.container_id.as_str()].netns.clone();
                }
            }
            self.save(&st)?;
            (stale, kept)
        };
        // bridges may be gone (reboot) — re-create them
        let bridges: Vec<_> = self
            .state()
            .networks
            .values()
            .filter(|n| n.driver == Driver::Bridge)
            .cloned()
            .collect();
        let mut bridge_idx = HashSet::new();
        for n in &bridges {
            bridge_idx.insert(self.ensure_bridge(n).await?);
        }
        for e in &stale {
            link::delete_link(&self.inner.host, &e.host_veth).await?;
        }
        let owned: HashSet<String> = kept.iter().map(|e| e.host_veth.clone()).collect();
        for l in link::list_links(&self.inner.host).await? {
            if l.master.is_some_and(|m| bridge_idx.contains(&m)) && !owned.contains(&l.name) {
                link::delete_link(&self.inner.host, &l.name).await?;
            }
        }
        let mut dns_done = HashSet::new();
        for e in &kept {
            let mut fds = Vec::new();
            let mut lost = Vec::new();
            for p in &e.ports {
                match ports::reserve(p.host_ip, p.host_port, p.proto) {
                    Ok((fd, _)) => fds.push(fd),
                    Err(err) => {
                        // Somebody took the port while we were down: do not DNAT it (that
                        // would steal their local connections); the mapping is dropped.
                        tracing::warn!(container = %e.container_id, "dropping published port: {err}");
                        lost.push(p.clone());
                    }
                }
            }
            if !lost.is_empty() {
                let mut st = self.state();
                if let Some(ep) = st.endpoints.get_mut(&e.id) {
                    ep.ports.retain(|p| !lost.contains(p));
                }
                self.save(&st)?;
            }
            self.live().ports.insert(e.id.clone(), fds);
            if dns_done.insert(e.container_id.clone())
                && !self.live().dns.contains_key(&e.container_id)
            {
                match netns::open_in_netns(
                    &live_ns[e.container_id.as_str()].netns,
                    Some(self.inner.cfg.dns_address),
                )
                .await
                {
                    Ok(s) => {
                        if let Some(sock) = s.dns {
                            let t = crate::dns::server::spawn(
                                sock,
                                e.container_id.clone(),
                                self.resolver(),
                                self.inner.upstreams.clone(),
                            )?;
                            self.live().dns.insert(e.container_id.clone(), t);
                        }
                    }
                    Err(err) => {
                        tracing::warn!(container = %e.container_id, "restarting embedded DNS: {err}")
                    }
                }
            }
        }
        self.apply_firewall().await
    }

    /// Remove everything of ours from the kernel: embedded DNS servers, port reservations,
    /// veths, bridges, our firewall rules (nftables table or iptables chains) — and all leases (endpoints) from the state.
    /// Network definitions stay (bridges are re-created by the next `open`).
    pub async fn teardown_all(&self) -> Result<()> {
        {
            let mut live = self.live();
            for (_, t) in live.dns.drain() {
                t.abort();
            }
            live.ports.clear();
        }
        self.settle().await;
        let (veths, bridges): (Vec<String>, Vec<String>) = {
            let mut st = self.state();
            let v = st.endpoints.values().map(|e| e.host_veth.clone()).collect();
            let b = st
                .networks
                .values()
                .filter_map(|n| n.bridge.clone())
                .collect();
            st.endpoints.clear();
            self.save(&st)?;
            (v, b)
        };
        // veths still on our bridges (including ones the state does not know)
        let links = link::list_links(&self.inner.host).await?;
        let idx: HashSet<u32> = links
            .iter()
            .filter(|l| bridges.contains(&l.name))
            .map(|l| l.index)
            .collect();
        let mut doomed: HashSet<String> = veths.into_iter().collect();
        doomed.extend(
            links
                .iter()
                .filter(|l| l.master.is_some_and(|m| idx.contains(&m)))
                .map(|l| l.name.clone()),
        );
        let h = &self.inner.host;
        let dels = doomed.iter().map(|v| link::delete_link(h, v));
        for r in futures_util::future::join_all(dels).await {
            r?;
        }
        for b in &bridges {
            link::delete_link(h, b).await?;
        }
        self.flush()?;
        self.remove_firewall().await
    }
}

impl NetworkManager {
    /// Daemon exit *without* cleanup: stop the embedded DNS servers and release the port
    /// reservations held by this process; kernel objects (bridges, veths, rules) and the
    /// state stay for the next `open` + `restore`.
    pub fn close(&self) {
        let mut live = self.live();
        for (_, t) in live.dns.drain() {
            t.abort();
        }
        live.ports.clear();
        drop(live);
        if let Err(e) = self.flush() {
            tracing::warn!("{e}");
        }
    }
}
