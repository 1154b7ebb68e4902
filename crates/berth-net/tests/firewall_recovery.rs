//! Root tier: when the netlink port-map update fails — here because our nft table was
//! deleted behind berth's back — berth rebuilds its whole table from the state and the
//! published port works.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use berth_net::{AttachRequest, PortBinding};
use berth_testkit::netns::NetNs;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_deleted_behind_our_back_is_rebuilt_on_publish() {
    if !berth_testkit::require_root("table_deleted_behind_our_back_is_rebuilt_on_publish") {
        return;
    }
    let (m, _dir, _cleanup) = open(None).await;
    let cfg = m.config().clone();
    let del = std::process::Command::new("nft")
        .args(["delete", "table", "ip", &cfg.nft_table])
        .status()
        .unwrap();
    assert!(del.success());
    assert!(!rules_left(&cfg).await);

    let a = NetNs::new("bfr").unwrap();
    let port = berth_testkit::unique::free_port();
    m.attach(AttachRequest {
        container_id: "f".repeat(64),
        container_name: "phoenix".into(),
        netns: a.path(),
        network: "bridge".into(),
        ports: vec![PortBinding::parse(&format!("127.0.0.1:{port}:80")).unwrap()],
        ..Default::default()
    })
    .await
    .expect("attach rebuilds the table");
    assert_eq!(published_ports(&cfg), 1);
    let (_h, _w) = httpd(&a, "back again");
    assert!(host_get(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .unwrap()
        .contains("back again"));
    m.teardown_all().await.unwrap();
    assert!(!rules_left(&cfg).await, "rules left");
}
