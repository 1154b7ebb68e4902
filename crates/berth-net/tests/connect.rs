//! Root tier: `network connect/disconnect` (a second interface, no second default route,
//! names from both networks), concurrent attaches get distinct leases, `--network none`.

mod common;

use std::collections::HashSet;

use berth_net::{AttachRequest, NetError, NetworkCreate};
use berth_testkit::netns::NetNs;
use common::*;

fn req(ns: &NetNs, id: char, name: &str, net: &str) -> AttachRequest {
    AttachRequest {
        container_id: id.to_string().repeat(64),
        container_name: name.into(),
        netns: ns.path(),
        network: net.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_disconnect_and_concurrent_attach() {
    if !berth_testkit::require_root("connect_disconnect_and_concurrent_attach") {
        return;
    }
    let (m, _dir, _cleanup) = open(Some(fake_upstream())).await;
    m.create_network(NetworkCreate {
        name: "front".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    m.create_network(NetworkCreate {
        name: "back".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let a = NetNs::new("bca").unwrap();
    let f = NetNs::new("bcf").unwrap();
    let k = NetNs::new("bck").unwrap();
    let ea = m.attach(req(&a, 'a', "app", "front")).await.unwrap();
    let ef = m.attach(req(&f, 'f', "fe", "front")).await.unwrap();
    let ek = m.attach(req(&k, 'k', "db", "back")).await.unwrap();
    assert_eq!(
        dns_a(&a.path(), "db").map(|r| r.1 != vec![ek.ip]),
        Some(true),
        "db not visible yet"
    );

    // network connect: eth1, no default route, both networks' names resolve
    let ea2 = m.attach(req(&a, 'a', "app", "back")).await.unwrap();
    assert_eq!(ea2.container_ifname, "eth1");
    let idx = String::from_utf8_lossy(
        &a.run("cat", &["/sys/class/net/eth1/ifindex"])
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    assert_eq!(idx, ea2.container_ifindex.to_string());
    let host_idx =
        std::fs::read_to_string(format!("/sys/class/net/{}/ifindex", ea2.host_veth)).unwrap();
    assert_eq!(host_idx.trim(), ea2.host_ifindex.to_string());
    assert!(ea.default_route && !ea2.default_route);
    let routes =
        String::from_utf8_lossy(&a.run("ip", &["-4", "route"]).unwrap().stdout).into_owned();
    assert_eq!(routes.matches("default").count(), 1, "{routes}");
    assert!(routes.contains("dev eth1"), "{routes}");
    assert_eq!(dns_a(&a.path(), "db"), Some((0, vec![ek.ip])));
    assert_eq!(dns_a(&a.path(), "fe"), Some((0, vec![ef.ip])));
    let e = m.attach(req(&a, 'a', "app", "back")).await.unwrap_err();
    assert!(matches!(e, NetError::AlreadyAttached { .. }), "{e}");

    // disconnect removes eth1 at once; connecting again reuses the name
    m.detach(&"a".repeat(64), "back").await.unwrap();
    let links = String::from_utf8_lossy(&a.run("ip", &["-o", "link"]).unwrap().stdout).into_owned();
    assert!(!links.contains("eth1"), "{links}");
    assert_eq!(
        m.attach(req(&a, 'a', "app", "back"))
            .await
            .unwrap()
            .container_ifname,
        "eth1"
    );
    assert!(matches!(
        m.detach(&"z".repeat(64), "back").await,
        Err(NetError::NotAttached { .. })
    ));

    // disconnecting the network that holds the default route moves it to the other one
    m.detach(&"a".repeat(64), "front").await.unwrap();
    let routes =
        String::from_utf8_lossy(&a.run("ip", &["-4", "route"]).unwrap().stdout).into_owned();
    assert!(
        routes.contains(&format!("default via {} dev eth1", ek.gateway)),
        "{routes}"
    );
    assert!(m.container_endpoints(&"a".repeat(64))[0].default_route);

    // concurrent attaches: distinct addresses, all reachable from the host
    let nss: Vec<NetNs> = (0..6).map(|_| NetNs::new("bcp").unwrap()).collect();
    let futs = nss.iter().enumerate().map(|(i, ns)| {
        m.attach(AttachRequest {
            container_id: format!("{i:064x}"),
            container_name: format!("p{i}"),
            netns: ns.path(),
            network: "front".into(),
            ..Default::default()
        })
    });
    let eps: Vec<_> = futures_util::future::join_all(futs)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let ips: HashSet<_> = eps.iter().map(|e| e.ip).chain([ef.ip]).collect();
    assert_eq!(ips.len(), 7, "leases must be distinct");
    for e in &eps {
        let out = std::process::Command::new("/bin/busybox")
            .args(["ping", "-c1", "-W2", &e.ip.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "ping {}", e.ip);
    }

    // --network none: only lo, and it is up
    let none = NetNs::new("bcn").unwrap();
    none.run("ip", &["link", "set", "lo", "down"]).unwrap();
    berth_net::setup_loopback(&none.path()).await.unwrap();
    let l = String::from_utf8_lossy(&none.run("ip", &["-o", "link"]).unwrap().stdout).into_owned();
    assert_eq!(l.lines().count(), 1, "{l}");
    assert!(l.contains("lo:") && l.contains("UP"), "{l}");
    assert!(matches!(
        m.attach(req(&none, 'n', "n", "none")).await,
        Err(NetError::NotAttachable(_))
    ));
    assert!(matches!(
        m.attach(req(&none, 'n', "n", "host")).await,
        Err(NetError::NotAttachable(_))
    ));

    m.teardown_all().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_instances_choose_different_subnets() {
    if !berth_testkit::require_root("concurrent_instances_choose_different_subnets") {
        return;
    }
    let pool = vec![unique_subnet(), unique_subnet()];
    let mk = || {
        let mut c = config(None);
        c.default_subnet = None;
        c.address_pool = pool.clone();
        c
    };
    let (c1, c2) = (mk(), mk());
    let (_g1, _g2) = (Cleanup(c1.clone()), Cleanup(c2.clone()));
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (m1, m2) = tokio::join!(
        berth_net::NetworkManager::open(d1.path(), c1),
        berth_net::NetworkManager::open(d2.path(), c2)
    );
    let (m1, m2) = (m1.unwrap(), m2.unwrap());
    let s1 = m1.network("bridge").unwrap().subnet.unwrap();
    let s2 = m2.network("bridge").unwrap().subnet.unwrap();
    assert_ne!(
        s1, s2,
        "two instances opened together must not share a subnet"
    );
    // the pool is now exhausted for a third network
    let e = m1
        .create_network(NetworkCreate {
            name: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(e, NetError::NoFreeSubnet), "{e}");
    m1.teardown_all().await.unwrap();
    m2.teardown_all().await.unwrap();
}
