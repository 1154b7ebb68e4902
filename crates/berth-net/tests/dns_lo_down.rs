//! Root tier, regression: a container's `lo` is still down when berth-net attaches it (the
//! runtime has not started the process yet). The embedded DNS must still answer *from*
//! 127.0.0.11 — resolvers (busybox, glibc) use connected sockets and drop replies from any
//! other source; a socket bound while `lo` was down answered from 127.0.0.1.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use berth_net::{AttachRequest, NetworkCreate};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_from_its_own_address_when_lo_was_down() {
    if !berth_testkit::require_root("dns_answers_from_its_own_address_when_lo_was_down") {
        return;
    }
    let (m, _dir, _cleanup) = open(None).await;
    m.create_network(NetworkCreate {
        name: "web".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    // A namespace whose `lo` was never up (NetNs::new brings it up; a later `down` keeps
    // 127.0.0.1 local, which hides the bug).
    let ns = FreshNs::new();
    let ep = m
        .attach(AttachRequest {
            container_id: "c".repeat(64),
            container_name: "charlie".into(),
            netns: ns.path(),
            network: "web".into(),
            ..Default::default()
        })
        .await
        .expect("attach");
    let got = in_netns(&ns.path(), || {
        let s = UdpSocket::bind("127.0.0.1:0").ok()?;
        s.connect("127.0.0.11:53").ok()?;
        s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        let q = berth_net::dns::wire::build_query(0x4343, "charlie", berth_net::dns::wire::TYPE_A);
        s.send(&q).ok()?;
        let mut buf = [0u8; 1500];
        let n = s.recv(&mut buf).ok()?;
        berth_net::dns::wire::parse_a_answers(&buf[..n])
    });
    assert_eq!(
        got,
        Some((0, vec![ep.ip])),
        "connected resolver got no answer"
    );
    m.release_container(&"c".repeat(64)).await.unwrap();
    m.teardown_all().await.unwrap();
}

/// `ip netns add` without touching `lo`; deleted on drop.
struct FreshNs(String);

impl FreshNs {
    fn new() -> FreshNs {
        let name = berth_testkit::unique::name("bnl");
        let st = std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(st.success(), "ip netns add {name}");
        FreshNs(name)
    }

    fn path(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("/run/netns/{}", self.0))
    }
}

impl Drop for FreshNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}
