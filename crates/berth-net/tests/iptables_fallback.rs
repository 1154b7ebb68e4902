//! Root tier: the iptables fallback (forced with `FirewallBackend::Iptables`, as
//! `BERTH_FIREWALL=iptables` does) hooks its chains into the built-in ones, publishes ports
//! with the same semantics as nftables — 127.0.0.1, any address through the bridge IP,
//! hairpin — and leaves no chain or jump behind after teardown. (publish_and_dns.rs and
//! restore.rs also run their suites against this backend.) On Debian 12 `iptables` is iptables-nft: the rules land in the
//! kernel's nf_tables `ip nat`/`ip filter` tables, but berth's iptables code path (one
//! `iptables-restore --noflush` batch into berth-owned chains) is what runs.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use berth_net::{AttachRequest, FirewallBackend, NetworkManager, PortBinding};
use berth_testkit::netns::NetNs;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iptables_fallback_publishes_and_cleans_up() {
    if !berth_testkit::require_root("iptables_fallback_publishes_and_cleans_up") {
        return;
    }
    if !std::path::Path::new("/usr/sbin/iptables-restore").exists()
        && !std::path::Path::new("/sbin/iptables-restore").exists()
    {
        panic!("iptables-restore is required for this test (Debian package iptables)");
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(None, FirewallBackend::Iptables);
    let _cleanup = Cleanup(cfg.clone());
    let m = NetworkManager::open(dir.path(), cfg.clone()).await.unwrap();
    assert_eq!(m.firewall_backend(), "iptables");
    let t = &cfg.nft_table;
    let lines = iptables_lines_of(t);
    for want in [
        format!("-A PREROUTING -j {t}-PORTS"),
        format!("-A OUTPUT -j {t}-PORTS"),
        format!("-A POSTROUTING -j {t}-POST"),
        format!("-A FORWARD -j {t}-FWD"),
    ] {
        assert!(lines.contains(&want), "{want} not in {lines:#?}");
    }
    assert!(
        !berth_net::list_ip_tables().await.unwrap().contains(t),
        "no nft table of ours with the iptables backend"
    );

    let a = NetNs::new("bia").unwrap();
    let lo_port = berth_testkit::unique::free_port();
    let any_port = berth_testkit::unique::free_port();
    let ep = m
        .attach(AttachRequest {
            container_id: "a".repeat(64),
            container_name: "alpha".into(),
            netns: a.path(),
            network: "bridge".into(),
            ports: vec![
                PortBinding::parse(&format!("127.0.0.1:{lo_port}:80")).unwrap(),
                PortBinding::parse(&format!("{any_port}:80")).unwrap(),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    let (_httpd, _www) = httpd(&a, "hello over iptables");
    for (addr, what) in [
        (
            SocketAddr::from((Ipv4Addr::LOCALHOST, lo_port)),
            "127.0.0.1",
        ),
        (SocketAddr::from((ep.gateway, any_port)), "bridge IP"),
        (
            SocketAddr::from((Ipv4Addr::LOCALHOST, any_port)),
            "any via lo",
        ),
    ] {
        assert!(
            host_get(addr)
                .unwrap_or_else(|e| panic!("{what}: {e}"))
                .contains("hello over iptables"),
            "{what}"
        );
    }
    assert!(
        ns_get_ok(&a, &ep.gateway.to_string(), any_port, "hello over iptables"),
        "hairpin"
    );
    // a second request for the port is refused, with Docker's wording
    let b = NetNs::new("bib").unwrap();
    let e = m
        .attach(AttachRequest {
            container_id: "b".repeat(64),
            container_name: "bravo".into(),
            netns: b.path(),
            network: "bridge".into(),
            ports: vec![PortBinding::parse(&format!("127.0.0.1:{lo_port}:80")).unwrap()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("port is already allocated"), "{e}");

    // explain's view
    let pr = m.published_port_rules(&"a".repeat(64)).await.unwrap();
    let lo = pr.iter().find(|p| p.port.host_port == lo_port).unwrap();
    let dnat = format!(
        "{t}-PORTS: -A {t}-PORTS -d 127.0.0.1/32 -p tcp -m tcp --dport {lo_port} -j DNAT --to-destination {}:80",
        ep.ip
    );
    assert!(lo.rules.contains(&dnat), "{:?}", lo.rules);
    assert!(
        lo.rules
            .iter()
            .any(|r| r.contains("-s 127.0.0.0/8") && r.ends_with("MASQUERADE")),
        "{:?}",
        lo.rules
    );

    // release: the DNAT rules go, the chains stay
    m.release_container(&"a".repeat(64)).await.unwrap();
    m.settle().await;
    let lines = iptables_lines_of(t);
    assert!(
        !lines.iter().any(|l| l.contains("-j DNAT")),
        "DNAT left after release: {lines:#?}"
    );

    m.teardown_all().await.unwrap();
    let left = iptables_lines_of(t);
    assert!(left.is_empty(), "iptables rules left: {left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_picks_nftables_when_nft_and_nf_tables_are_there() {
    if !berth_testkit::require_root("auto_picks_nftables_when_nft_and_nf_tables_are_there") {
        return;
    }
    let expected = match std::env::var("BERTH_FIREWALL").as_deref() {
        Ok("iptables") => "iptables",
        _ => "nftables", // nft is installed here and the kernel has nf_tables
    };
    let (m, _dir, _cleanup) = open_with(None, FirewallBackend::Auto).await;
    assert_eq!(m.firewall_backend(), expected);
    m.teardown_all().await.unwrap();
    assert!(!rules_left(m.config()).await, "rules left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_backend_across_a_restart_removes_the_old_rules() {
    if !berth_testkit::require_root("switching_backend_across_a_restart_removes_the_old_rules") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ipt = config_with(None, FirewallBackend::Iptables);
    let nft = berth_net::NetConfig {
        firewall: FirewallBackend::Nftables,
        ..ipt.clone()
    };
    let _cleanup = (Cleanup(ipt.clone()), Cleanup(nft.clone()));
    let a = NetNs::new("bsw").unwrap();
    let port = berth_testkit::unique::free_port();
    let m1 = NetworkManager::open(dir.path(), ipt.clone()).await.unwrap();
    m1.attach(AttachRequest {
        container_id: "s".repeat(64),
        container_name: "switch".into(),
        netns: a.path(),
        network: "bridge".into(),
        ports: vec![PortBinding::parse(&format!("127.0.0.1:{port}:80")).unwrap()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(published_ports(&ipt), 1);
    m1.close();
    drop(m1);

    // "daemon restart" with the other backend
    let m2 = NetworkManager::open(dir.path(), nft.clone()).await.unwrap();
    m2.restore(&[berth_net::RunningContainer {
        container_id: "s".repeat(64),
        netns: a.path(),
    }])
    .await
    .unwrap();
    assert_eq!(m2.firewall_backend(), "nftables");
    let left = iptables_lines_of(&ipt.nft_table);
    assert!(left.is_empty(), "old iptables rules left: {left:#?}");
    assert_eq!(published_ports(&nft), 1, "the port moved to the nft maps");
    let (_h, _w) = httpd(&a, "switched");
    assert!(host_get(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .unwrap()
        .contains("switched"));
    m2.teardown_all().await.unwrap();
    assert!(!rules_left(&nft).await, "rules left");
}
