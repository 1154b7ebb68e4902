//! Shared helpers of the root-tier network tests. All traffic stays on loopback and in
//! namespaces the tests create.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use berth_net::{FirewallBackend, NetConfig, NetworkManager};
use berth_testkit::netns::{NetNs, Proc};
use ipnet::Ipv4Net;

static SUBNETS: AtomicU32 = AtomicU32::new(0);

/// A /24 unlikely to collide with other test processes — 10.(150+pid%100).(n).0/24 — and
/// not overlapping any route on the host right now.
pub fn unique_subnet() -> Ipv4Net {
    let out = std::process::Command::new("ip")
        .args(["-4", "route"])
        .output()
        .unwrap();
    let routes: Vec<Ipv4Net> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    loop {
        let n = SUBNETS.fetch_add(1, Ordering::Relaxed);
        let b = 150 + ((std::process::id() + n / 256) % 100) as u8;
        let net = Ipv4Net::new(Ipv4Addr::new(10, b, (n % 256) as u8, 0), 24).unwrap();
        if !routes
            .iter()
            .any(|r| r.contains(&net.network()) || net.contains(&r.network()))
        {
            return net;
        }
    }
}

/// An instance config with unique kernel names; the user-network pool holds fresh /24s.
pub fn config(upstream: Option<SocketAddr>) -> NetConfig {
    config_with(upstream, FirewallBackend::Nftables)
}

/// [`config`] with the given firewall backend (the conformance tests run with both).
pub fn config_with(upstream: Option<SocketAddr>, firewall: FirewallBackend) -> NetConfig {
    let tag = berth_testkit::unique::name("");
    let short: String = tag
        .chars()
        .rev()
        .take(5)
        .collect::<String>()
        .chars()
        .rev()
        .collect();
    NetConfig {
        default_bridge: format!("bb{tag}").chars().take(15).collect(),
        default_subnet: Some(unique_subnet()),
        user_bridge_prefix: format!("bu{short}x"),
        veth_prefix: format!("bv{short}x"),
        // short: with iptables the chains are `<table>-PORTS` etc. (<= 28 bytes)
        nft_table: format!("bt_{tag}"),
        address_pool: (0..4).map(|_| unique_subnet()).collect(),
        dns_upstreams: Some(upstream.into_iter().collect()),
        firewall,
        ..NetConfig::default()
    }
}

/// Removes every kernel object of an instance by name (links with our prefixes, our nft
/// table), also when the test panics before `teardown_all`. Synchronous on purpose: it
/// must work from `Drop` during unwinding.
pub struct Cleanup(pub NetConfig);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let c = &self.0;
        for name in host_links_with_prefix(&c.veth_prefix)
            .into_iter()
            .chain(host_links_with_prefix(&c.user_bridge_prefix))
            .chain(
                host_links_with_prefix(&c.default_bridge)
                    .into_iter()
                    .filter(|n| *n == c.default_bridge),
            )
        {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &name])
                .output();
        }
        let _ = std::process::Command::new(berth_net_nft())
            .args(["delete", "table", "ip", &c.nft_table])
            .stderr(std::process::Stdio::null())
            .output();
        if c.firewall == berth_net::FirewallBackend::Iptables {
            berth_testkit::iptables::remove_chains(&c.nft_table);
        }
    }
}

/// The `iptables-save` lines that mention the chains of the instance whose nft table name
/// is `table` (short names only: chains are `<table>-PORTS`, `-POST`, `-FWD`).
pub fn iptables_lines_of(table: &str) -> Vec<String> {
    let ours = format!("{table}-");
    berth_testkit::iptables::save()
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .any(|w| w.trim_start_matches(':').starts_with(&ours))
        })
        .map(str::to_string)
        .collect()
}

fn berth_net_nft() -> &'static str {
    ["/usr/sbin/nft", "/sbin/nft"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("nft")
}

/// A manager in a fresh temp dir, plus the guard that cleans up after it (keep both alive;
/// declare the guard before namespaces so it drops after them).
pub async fn open(upstream: Option<SocketAddr>) -> (NetworkManager, tempfile::TempDir, Cleanup) {
    open_with(upstream, FirewallBackend::Nftables).await
}

/// [`open`] with the given firewall backend.
pub async fn open_with(
    upstream: Option<SocketAddr>,
    firewall: FirewallBackend,
) -> (NetworkManager, tempfile::TempDir, Cleanup) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(upstream, firewall);
    let guard = Cleanup(cfg.clone());
    let m = NetworkManager::open(dir.path(), cfg)
        .await
        .expect("open network manager");
    (m, dir, guard)
}

/// Run `f` on a thread inside the namespace at `path`.
pub fn in_netns<R: Send + 'static>(path: &Path, f: impl FnOnce() -> R + Send + 'static) -> R {
    let path: PathBuf = path.to_path_buf();
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).expect("open netns");
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread")
}

/// Ask the embedded DNS (127.0.0.11:53 inside `ns`) for an A record.
pub fn dns_a(ns: &Path, name: &str) -> Option<(u8, Vec<Ipv4Addr>)> {
    let name = name.to_string();
    in_netns(ns, move || {
        let s = UdpSocket::bind("127.0.0.1:0").ok()?;
        s.set_read_timeout(Some(Duration::from_secs(4))).ok()?;
        let q = berth_net::dns::wire::build_query(0x4242, &name, berth_net::dns::wire::TYPE_A);
        s.send_to(&q, "127.0.0.11:53").ok()?;
        let mut buf = [0u8; 1500];
        let n = s.recv(&mut buf).ok()?;
        berth_net::dns::wire::parse_a_answers(&buf[..n])
    })
}

/// A fake upstream resolver on 127.0.0.1 (UDP and TCP on the same port): answers every
/// A query with 198.51.100.7.
pub fn fake_upstream() -> SocketAddr {
    let (s, t) = loop {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        if let Ok(t) = std::net::TcpListener::bind(s.local_addr().unwrap()) {
            break (s, t);
        }
    };
    let addr = s.local_addr().unwrap();
    let answer = |q: &[u8]| {
        let p = berth_net::dns::wire::parse_query(q).ok()?;
        Some(berth_net::dns::wire::answer(
            q,
            &p,
            &[Ipv4Addr::new(198, 51, 100, 7)],
            0,
        ))
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = s.recv_from(&mut buf) {
            if let Some(a) = answer(&buf[..n]) {
                let _ = s.send_to(&a, peer);
            }
        }
    });
    std::thread::spawn(move || {
        for mut c in t.incoming().flatten() {
            let mut len = [0u8; 2];
            if c.read_exact(&mut len).is_err() {
                continue;
            }
            let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
            if c.read_exact(&mut q).is_ok() {
                if let Some(a) = answer(&q) {
                    let _ = c.write_all(&(a.len() as u16).to_be_bytes());
                    let _ = c.write_all(&a);
                }
            }
        }
    });
    addr
}

/// Like [`dns_a`] over TCP (2-byte length prefix).
pub fn dns_a_tcp(ns: &Path, name: &str) -> Option<(u8, Vec<Ipv4Addr>)> {
    let name = name.to_string();
    in_netns(ns, move || {
        let mut s =
            TcpStream::connect_timeout(&"127.0.0.11:53".parse().ok()?, Duration::from_secs(3))
                .ok()?;
        s.set_read_timeout(Some(Duration::from_secs(4))).ok()?;
        let q = berth_net::dns::wire::build_query(0x4343, &name, berth_net::dns::wire::TYPE_A);
        s.write_all(&(q.len() as u16).to_be_bytes()).ok()?;
        s.write_all(&q).ok()?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).ok()?;
        let mut r = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut r).ok()?;
        berth_net::dns::wire::parse_a_answers(&r)
    })
}

/// busybox httpd serving `body` on port 80 inside `ns`.
pub fn httpd(ns: &NetNs, body: &str) -> (Proc, tempfile::TempDir) {
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), body).unwrap();
    let p = ns
        .spawn(
            "/bin/busybox",
            &[
                "httpd",
                "-f",
                "-p",
                "80",
                "-h",
                www.path().to_str().unwrap(),
            ],
        )
        .expect("start httpd");
    (p, www)
}

/// HTTP GET from the host (test process), retrying while the server starts.
pub fn host_get(addr: SocketAddr) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match r {
            Ok(body) if !body.is_empty() => return Ok(body),
            Ok(_) | Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Ok(_) => return Err(format!("empty reply from {addr}")),
            Err(e) => return Err(format!("{addr}: {e}")),
        }
    }
}

/// HTTP GET with busybox nc from inside `ns` (addr may be a name: resolved via /etc/resolv.conf).
pub fn ns_get(ns: &NetNs, host: &str, port: u16) -> String {
    let script =
        format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 3 {host} {port}");
    let out = ns.sh(&script).expect("run nc");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like [`ns_get`] but retries for up to 5 s until the reply contains `want` (for
/// positive checks against a server that may still be starting).
pub fn ns_get_ok(ns: &NetNs, host: &str, port: u16, want: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if ns_get(ns, host, port).contains(want) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Link names on the host starting with `prefix`.
pub fn host_links_with_prefix(prefix: &str) -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Number of published ports installed for the instance: elements of the nftables port
/// address maps, or DNAT rules in our iptables port chain.
pub fn published_ports(cfg: &NetConfig) -> usize {
    match cfg.firewall {
        FirewallBackend::Iptables => iptables_lines_of(&cfg.nft_table)
            .iter()
            .filter(|l| l.contains(" -j DNAT "))
            .count(),
        _ => port_elements(&cfg.nft_table),
    }
}

/// Whether any firewall rule of the instance is left in the kernel: our nft table, or any
/// line of `iptables-save` mentioning our chains.
pub async fn rules_left(cfg: &NetConfig) -> bool {
    berth_net::list_ip_tables()
        .await
        .unwrap()
        .contains(&cfg.nft_table)
        || !iptables_lines_of(&cfg.nft_table).is_empty()
}

/// Number of published ports in our table: elements of the port address maps
/// `published_addr` and `published_any_addr` (via `nft -j list table`).
pub fn port_elements(table: &str) -> usize {
    let out = std::process::Command::new(berth_net_nft())
        .args(["-j", "list", "table", "ip", table])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["nftables"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o.get("map"))
                .filter(|m| m["name"] == "published_addr" || m["name"] == "published_any_addr")
                .map(|m| m["elem"].as_array().map_or(0, |e| e.len()))
                .sum()
        })
        .unwrap_or(0)
}
