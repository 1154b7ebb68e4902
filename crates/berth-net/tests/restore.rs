//! Root tier: a daemon restart keeps live containers (ports, DNS) and removes stale ones.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use berth_net::{
    AttachRequest, FirewallBackend, NetworkCreate, NetworkManager, PortBinding, RunningContainer,
};
use berth_testkit::netns::NetNs;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_keeps_live_and_drops_stale() {
    if berth_testkit::require_root("restore_keeps_live_and_drops_stale") {
        keeps_live_and_drops_stale(FirewallBackend::Nftables).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_keeps_live_and_drops_stale_iptables() {
    if berth_testkit::require_root("restore_keeps_live_and_drops_stale_iptables") {
        keeps_live_and_drops_stale(FirewallBackend::Iptables).await
    }
}

async fn keeps_live_and_drops_stale(backend: FirewallBackend) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(Some(fake_upstream()), backend);
    let _cleanup = Cleanup(cfg.clone());
    let m1 = NetworkManager::open(dir.path(), cfg.clone()).await.unwrap();
    m1.create_network(NetworkCreate {
        name: "r".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let a = NetNs::new("bra").unwrap();
    let b = NetNs::new("brb").unwrap();
    let port = berth_testkit::unique::free_port();
    let port2 = berth_testkit::unique::free_port();
    let port3 = berth_testkit::unique::free_port();
    let ea = m1
        .attach(AttachRequest {
            container_id: "a".repeat(64),
            container_name: "alpha".into(),
            netns: a.path(),
            network: "r".into(),
            ports: vec![
                PortBinding::parse(&format!("127.0.0.1:{port}:80")).unwrap(),
                PortBinding::parse(&format!("127.0.0.1:{port2}:80")).unwrap(),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    let eb = m1
        .attach(AttachRequest {
            container_id: "b".repeat(64),
            container_name: "bravo".into(),
            netns: b.path(),
            network: "bridge".into(),
            // b stops while the daemon is down: its port must not stay published
            ports: vec![PortBinding::parse(&format!("127.0.0.1:{port3}:80")).unwrap()],
            ..Default::default()
        })
        .await
        .unwrap();
    let (_h, _w) = httpd(&a, "hello from alpha");
    assert!(host_get(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .unwrap()
        .contains("alpha"));
    // a veth on our bridge that no endpoint owns (e.g. a crash between create and record)
    let stray = format!("{}stray", cfg.veth_prefix);
    let stray_peer = berth_testkit::unique::name("bsp");
    let bridge = m1.network("r").unwrap().bridge.unwrap();
    for args in [
        vec![
            "link",
            "add",
            stray.as_str(),
            "type",
            "veth",
            "peer",
            "name",
            stray_peer.as_str(),
        ],
        vec!["link", "set", stray.as_str(), "master", bridge.as_str()],
    ] {
        assert!(std::process::Command::new("ip")
            .args(&args)
            .status()
            .unwrap()
            .success());
    }

    assert_eq!(published_ports(&cfg), 3, "a's two ports and b's one");
    m1.close();
    drop(m1);

    // while the daemon is down, another program takes port2
    let foreign = std::net::TcpListener::bind(("127.0.0.1", port2)).unwrap();

    // "daemon restart": only a is still running
    let m2 = NetworkManager::open(dir.path(), cfg.clone()).await.unwrap();
    m2.restore(&[RunningContainer {
        container_id: "a".repeat(64),
        netns: a.path(),
    }])
    .await
    .unwrap();
    assert_eq!(m2.container_endpoints(&"a".repeat(64)).len(), 1);
    assert!(
        m2.container_endpoints(&"b".repeat(64)).is_empty(),
        "stale lease dropped"
    );
    assert!(
        host_links_with_prefix(&eb.host_veth).is_empty(),
        "stale veth deleted"
    );
    assert_eq!(
        host_links_with_prefix(&ea.host_veth),
        vec![ea.host_veth.clone()]
    );
    assert!(
        host_get(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .unwrap()
            .contains("alpha"),
        "publish survives"
    );
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_err(),
        "port re-reserved"
    );
    assert_eq!(
        dns_a(&a.path(), "alpha"),
        Some((0, vec![ea.ip])),
        "DNS restarted"
    );
    // the port taken meanwhile is not DNATed (its owner keeps its connections)
    assert_eq!(m2.container_endpoints(&"a".repeat(64))[0].ports.len(), 1);
    // only a's port 1 is left: a's port 2 was taken meanwhile, b's port 3 is stale
    assert_eq!(published_ports(&cfg), 1);
    let c = std::net::TcpStream::connect(("127.0.0.1", port2)).unwrap();
    let (_, peer) = foreign.accept().unwrap();
    assert_eq!(
        peer,
        c.local_addr().unwrap(),
        "connection reached the foreign listener"
    );

    m2.teardown_all().await.unwrap();
    assert!(host_links_with_prefix(&cfg.veth_prefix).is_empty());
    assert!(!rules_left(&cfg).await, "firewall rules left");
}
