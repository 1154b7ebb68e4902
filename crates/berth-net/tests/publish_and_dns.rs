//! Root tier: two "containers" (namespaces) on a user network — container-to-container
//! HTTP, DNS by name and alias, forwarding to an upstream, publishing on 127.0.0.1, on all
//! addresses, `-P`, hairpin, port conflicts; then teardown leaves nothing behind. The
//! publishing tests run against both firewall backends (nftables, and the iptables
//! fallback — on Debian 12 iptables-nft, but berth's iptables code path all the same).

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use berth_net::{AttachRequest, FirewallBackend, NetError, NetworkCreate, PortBinding};
use berth_testkit::netns::NetNs;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_talk_resolve_and_publish() {
    if berth_testkit::require_root("containers_talk_resolve_and_publish") {
        talk_resolve_and_publish(FirewallBackend::Nftables).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_talk_resolve_and_publish_iptables() {
    if berth_testkit::require_root("containers_talk_resolve_and_publish_iptables") {
        talk_resolve_and_publish(FirewallBackend::Iptables).await
    }
}

async fn talk_resolve_and_publish(backend: FirewallBackend) {
    let upstream = fake_upstream();
    let (m, _dir, _cleanup) = open_with(Some(upstream), backend).await;
    let cfg = m.config().clone();
    m.create_network(NetworkCreate {
        name: "web".into(),
        ..Default::default()
    })
    .await
    .unwrap();

    let a = NetNs::new("bna").unwrap();
    let b = NetNs::new("bnb").unwrap();
    let lo_port = berth_testkit::unique::free_port();
    let any_port = berth_testkit::unique::free_port();
    let ea = m
        .attach(AttachRequest {
            container_id: "a".repeat(64),
            container_name: "alpha".into(),
            netns: a.path(),
            network: "web".into(),
            aliases: vec!["backend".into()],
            ports: vec![
                PortBinding::parse(&format!("127.0.0.1:{lo_port}:80")).unwrap(),
                PortBinding::parse(&format!("{any_port}:80")).unwrap(),
                PortBinding::parse("80").unwrap(), // -P: ephemeral host port
            ],
            ip: None,
        })
        .await
        .expect("attach a");
    let eb = m
        .attach(AttachRequest {
            container_id: "b".repeat(64),
            container_name: "bravo".into(),
            netns: b.path(),
            network: "web".into(),
            ..Default::default()
        })
        .await
        .expect("attach b");
    assert_eq!(ea.container_ifname, "eth0");
    assert_eq!(
        ea.mac,
        format!(
            "02:42:{}",
            ea.ip.octets().map(|o| format!("{o:02x}")).join(":")
        )
    );
    assert_ne!(ea.ip, eb.ip);
    let ephemeral = ea.ports[2].host_port;
    assert_ne!(ephemeral, 0);

    let (_httpd, _www) = httpd(&a, "hello from alpha");

    // container -> container by IP
    let ip_a = ea.ip.to_string();
    assert!(
        host_get(SocketAddr::from((ea.ip, 80)))
            .unwrap()
            .contains("hello from alpha"),
        "host -> container IP"
    );
    assert!(ns_get_ok(&b, &ip_a, 80, "hello from alpha"), "b -> a by IP");

    // embedded DNS: name, alias, short id; unknown names go to the upstream
    assert_eq!(dns_a(&b.path(), "alpha"), Some((0, vec![ea.ip])));
    assert_eq!(dns_a(&b.path(), "BACKEND"), Some((0, vec![ea.ip])));
    assert_eq!(dns_a(&b.path(), &"a".repeat(12)), Some((0, vec![ea.ip])));
    assert_eq!(dns_a(&a.path(), "bravo"), Some((0, vec![eb.ip])));
    assert_eq!(
        dns_a(&b.path(), "example.test"),
        Some((0, vec![Ipv4Addr::new(198, 51, 100, 7)])),
        "forwarded"
    );
    // the same over TCP, local and forwarded
    assert_eq!(
        dns_a_tcp(&b.path(), "alpha"),
        Some((0, vec![ea.ip])),
        "TCP DNS"
    );
    assert_eq!(
        dns_a_tcp(&b.path(), "example.test"),
        Some((0, vec![Ipv4Addr::new(198, 51, 100, 7)])),
        "TCP DNS forwarded"
    );
    // two-sided: busybox inside b resolves "backend" through the resolv.conf berth-net writes
    b.write_etc(
        "resolv.conf",
        &berth_net::resolv_conf_embedded("nameserver 127.0.0.1\n"),
    )
    .unwrap();
    assert!(
        ns_get_ok(&b, "backend", 80, "hello from alpha"),
        "b -> a by alias via DNS"
    );

    // publishing
    assert!(
        host_get(SocketAddr::from((Ipv4Addr::LOCALHOST, lo_port)))
            .unwrap()
            .contains("hello from alpha"),
        "127.0.0.1 publish"
    );
    assert!(
        host_get(SocketAddr::from((Ipv4Addr::LOCALHOST, any_port)))
            .unwrap()
            .contains("hello from alpha"),
        "0.0.0.0 publish via lo"
    );
    assert!(
        host_get(SocketAddr::from((ea.gateway, any_port)))
            .unwrap()
            .contains("hello from alpha"),
        "via bridge IP"
    );
    assert!(
        host_get(SocketAddr::from((Ipv4Addr::LOCALHOST, ephemeral)))
            .unwrap()
            .contains("hello from alpha"),
        "-P"
    );
    // neighbour through the published port, and hairpin: a reaches its own published port
    assert!(
        ns_get_ok(&b, &ea.gateway.to_string(), any_port, "hello from alpha"),
        "b -> published port"
    );
    assert!(
        ns_get_ok(&a, &ea.gateway.to_string(), any_port, "hello from alpha"),
        "hairpin"
    );

    // port conflicts: ours, and somebody else's listener
    let c = NetNs::new("bnc").unwrap();
    let req = |spec: String| AttachRequest {
        container_id: "c".repeat(64),
        container_name: "charlie".into(),
        netns: c.path(),
        network: "web".into(),
        ports: vec![PortBinding::parse(&spec).unwrap()],
        ..Default::default()
    };
    let e = m
        .attach(req(format!("127.0.0.1:{lo_port}:80")))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("Bind for 127.0.0.1:{lo_port} failed: port is already allocated")
    );
    let foreign = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fport = foreign.local_addr().unwrap().port();
    let e = m.attach(req(format!("{fport}:80"))).await.unwrap_err();
    assert!(matches!(e, NetError::PortAllocated { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!("Bind for 0.0.0.0:{fport} failed: port is already allocated")
    );
    assert_eq!(
        m.network_endpoints("web").unwrap().len(),
        2,
        "failed attaches leave no lease"
    );

    let rules = m.firewall_rules().await.unwrap();
    // explain's view: the exact lines behind each port, all in the listing
    let pr = m.published_port_rules(&"a".repeat(64)).await.unwrap();
    assert_eq!(pr.len(), 3);
    let lo = pr.iter().find(|p| p.port.host_port == lo_port).unwrap();
    let (wants, dnat_rule) = match backend {
        FirewallBackend::Iptables => (
            vec![format!(
                "{t}-PORTS: -A {t}-PORTS -d 127.0.0.1/32 -p tcp -m tcp --dport {lo_port} -j DNAT --to-destination {}:80",
                ea.ip,
                t = cfg.nft_table
            )],
            "-j DNAT",
        ),
        _ => (
            vec![
                format!(
                    "map published_addr: tcp . 127.0.0.1 . {lo_port} : {}",
                    ea.ip
                ),
                format!("map published_port: tcp . 127.0.0.1 . {lo_port} : 80"),
            ],
            "map @published_port",
        ),
    };
    for want in wants {
        assert!(lo.rules.contains(&want), "{want} not in {:?}", lo.rules);
    }
    assert!(
        lo.rules.iter().any(|r| r.contains(dnat_rule)),
        "{:?}",
        lo.rules
    );
    assert!(
        lo.rules
            .iter()
            .any(|r| r.contains("127.0.0.0/8") && r.to_lowercase().ends_with("masquerade")),
        "{:?}",
        lo.rules
    );
    for r in pr.iter().flat_map(|p| &p.rules) {
        let line = r.split_once(": ").unwrap().1;
        assert!(
            rules.contains(line.split(" : ").next().unwrap()),
            "{r} not in {rules}"
        );
    }
    assert_eq!(published_ports(&cfg), 3, "one entry per published port");
    // release a: its published port is free again and its name gone from DNS
    m.release_container(&"a".repeat(64)).await.unwrap();
    m.settle().await;
    assert_eq!(published_ports(&cfg), 0, "published ports removed");
    assert!(
        std::net::TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, lo_port)).is_ok(),
        "port released"
    );
    assert_eq!(
        dns_a(&b.path(), "alpha").map(|r| r.1),
        Some(vec![Ipv4Addr::new(198, 51, 100, 7)]),
        "name gone"
    );

    // teardown: nothing of ours remains
    m.teardown_all().await.unwrap();
    assert!(
        host_links_with_prefix(&cfg.veth_prefix).is_empty(),
        "veths left"
    );
    assert!(
        host_links_with_prefix(&cfg.user_bridge_prefix).is_empty(),
        "user bridges left"
    );
    assert!(
        !host_links_with_prefix(&cfg.default_bridge).contains(&cfg.default_bridge),
        "default bridge left"
    );
    assert!(!rules_left(&cfg).await, "firewall rules left");
    assert!(
        m.network_endpoints("web").unwrap().is_empty(),
        "leases left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_publish_on_loopback() {
    if berth_testkit::require_root("udp_publish_on_loopback") {
        udp_publish(FirewallBackend::Nftables).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_publish_on_loopback_iptables() {
    if berth_testkit::require_root("udp_publish_on_loopback_iptables") {
        udp_publish(FirewallBackend::Iptables).await
    }
}

async fn udp_publish(backend: FirewallBackend) {
    let (m, _dir, _cleanup) = open_with(None, backend).await;
    let a = NetNs::new("bnu").unwrap();
    let port = berth_testkit::unique::free_port();
    let ep = m
        .attach(AttachRequest {
            container_id: "u".repeat(64),
            container_name: "udp".into(),
            netns: a.path(),
            network: "bridge".into(),
            ports: vec![PortBinding::parse(&format!("127.0.0.1:{port}:7777/udp")).unwrap()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ep.ports[0].proto, berth_net::Protocol::Udp);
    // a UDP echo server inside the "container" (socket created in its netns)
    let (tx, rx) = std::sync::mpsc::channel();
    let ns_path = a.path();
    let echo = std::thread::spawn(move || {
        in_netns(&ns_path, move || {
            let s = std::net::UdpSocket::bind("0.0.0.0:7777").unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            tx.send(()).unwrap();
            let mut buf = [0u8; 64];
            if let Ok((n, peer)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], peer);
            }
        })
    });
    rx.recv().unwrap();
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    c.send_to(b"ping-udp", ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = c
        .recv_from(&mut buf)
        .expect("UDP echo through the published port");
    assert_eq!(&buf[..n], b"ping-udp");
    assert_eq!(from, SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    echo.join().unwrap();
    m.teardown_all().await.unwrap();
}
