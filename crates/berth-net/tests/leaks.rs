//! Root tier: attach/release cycles leak no file descriptors (DNS sockets, port
//! reservations, netlink sockets), no leases and no interfaces. Alone in its own test
//! binary because it counts the process's open fds.

mod common;

use berth_net::{AttachRequest, NetworkCreate};
use berth_testkit::netns::NetNs;
use common::*;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_release_cycles_leak_nothing() {
    if !berth_testkit::require_root("attach_release_cycles_leak_nothing") {
        return;
    }
    let (m, _dir, _cleanup) = open(Some(fake_upstream())).await;
    m.create_network(NetworkCreate {
        name: "cyc".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let ns = NetNs::new("bcy").unwrap();
    let cycle = |i: usize| {
        let m = m.clone();
        let path = ns.path();
        async move {
            let ep = m
                .attach(AttachRequest {
                    container_id: format!("{i:064x}"),
                    container_name: format!("c{i}"),
                    netns: path.clone(),
                    network: "cyc".into(),
                    ports: vec![berth_net::PortBinding::parse("127.0.0.1::80").unwrap()],
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(dns_a(&path, &format!("c{i}")), Some((0, vec![ep.ip])));
            m.release_container(&format!("{i:064x}")).await.unwrap();
            m.settle().await;
            ep.ip
        }
    };
    let first = cycle(0).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let before = open_fds();
    for i in 1..=15 {
        assert_eq!(cycle(i).await, first, "the lease is reused after release");
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let after = open_fds();
    assert!(after <= before + 2, "fd leak: {before} -> {after}");
    assert!(m.network_endpoints("cyc").unwrap().is_empty());
    let links =
        String::from_utf8_lossy(&ns.run("ip", &["-o", "link"]).unwrap().stdout).into_owned();
    assert_eq!(
        links.lines().count(),
        1,
        "only lo left in the netns: {links}"
    );
    m.teardown_all().await.unwrap();
}
