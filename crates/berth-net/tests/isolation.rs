//! Root tier: user networks are isolated from each other; an `--internal` network has no
//! way out while a normal one reaches an "outside" namespace through NAT.

mod common;

use std::net::Ipv4Addr;

use berth_net::{AttachRequest, NetworkCreate};
use berth_testkit::netns::NetNs;
use common::*;

/// A namespace standing in for "the world": reachable from the host over a veth pair.
fn outside() -> (NetNs, Ipv4Addr, Ipv4Addr) {
    let ns = NetNs::new("bno").unwrap();
    let net = unique_subnet();
    let host_ip = Ipv4Addr::from(u32::from(net.network()) + 1);
    let out_ip = Ipv4Addr::from(u32::from(net.network()) + 2);
    let host_end = berth_testkit::unique::name("bx");
    let ok = |args: &[&str]| {
        let o = std::process::Command::new("ip")
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    ok(&[
        "link",
        "add",
        &host_end,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ns.name(),
    ]);
    ok(&["addr", "add", &format!("{host_ip}/24"), "dev", &host_end]);
    ok(&["link", "set", &host_end, "up"]);
    ns.run(
        "ip",
        &["addr", "add", &format!("{out_ip}/24"), "dev", "eth0"],
    )
    .unwrap();
    ns.run("ip", &["link", "set", "eth0", "up"]).unwrap();
    // a route back to everything, so only our rules (not missing routes) can stop traffic
    ns.run(
        "ip",
        &["route", "add", "default", "via", &host_ip.to_string()],
    )
    .unwrap();
    (ns, out_ip, host_ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_are_isolated_and_internal_has_no_way_out() {
    if !berth_testkit::require_root("networks_are_isolated_and_internal_has_no_way_out") {
        return;
    }
    let (m, _dir, _cleanup) = open(Some(fake_upstream())).await;
    m.create_network(NetworkCreate {
        name: "one".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    m.create_network(NetworkCreate {
        name: "two".into(),
        internal: true,
        ..Default::default()
    })
    .await
    .unwrap();

    let a = NetNs::new("bia").unwrap();
    let b = NetNs::new("bib").unwrap();
    let attach = |ns: &NetNs, id: char, name: &str, net: &str| AttachRequest {
        container_id: id.to_string().repeat(64),
        container_name: name.into(),
        netns: ns.path(),
        network: net.into(),
        ..Default::default()
    };
    let published = berth_testkit::unique::free_port();
    let mut req_a = attach(&a, 'a', "alpha", "one");
    req_a.ports = vec![berth_net::PortBinding::parse(&format!("{published}:80")).unwrap()];
    let ea = m.attach(req_a).await.unwrap();
    let eb = m.attach(attach(&b, 'b', "bravo", "two")).await.unwrap();
    let (_ha, _wa) = httpd(&a, "hello from alpha");
    let (_hb, _wb) = httpd(&b, "hello from bravo");
    // both serve (from the host, which is not forwarding)
    assert!(host_get((ea.ip, 80).into()).unwrap().contains("alpha"));
    assert!(host_get((eb.ip, 80).into()).unwrap().contains("bravo"));

    // isolation both ways
    assert!(
        !ns_get(&a, &eb.ip.to_string(), 80).contains("bravo"),
        "one -> two must be dropped"
    );
    assert!(
        !ns_get(&b, &ea.ip.to_string(), 80).contains("alpha"),
        "two -> one must be dropped"
    );

    // the way out: normal network reaches the outside through masquerade, internal does not
    let (out, out_ip, host_ip) = outside();
    let (_ho, _wo) = httpd(&out, "hello from outside");
    assert!(
        ns_get_ok(&a, &out_ip.to_string(), 80, "outside"),
        "normal network reaches out"
    );
    assert!(
        !ns_get(&b, &out_ip.to_string(), 80).contains("outside"),
        "internal network must not reach out"
    );

    // the classic `-p`: a client outside the host reaches the published port via the
    // host's address (prerouting DNAT + forward accept of DNATed traffic)
    assert!(
        ns_get_ok(&out, &host_ip.to_string(), published, "hello from alpha"),
        "published port from outside"
    );
    // ...but not the container address directly (not published = not forwarded)
    out.run(
        "ip",
        &[
            "route",
            "add",
            &ea.ip.to_string(),
            "via",
            &host_ip.to_string(),
        ],
    )
    .unwrap();
    assert!(
        !ns_get(&out, &ea.ip.to_string(), 80).contains("alpha"),
        "unpublished access from outside"
    );

    // DNS: other network's names are not visible; internal containers get no forwarding
    assert_eq!(
        dns_a(&a.path(), "bravo").map(|r| r.1),
        Some(vec![Ipv4Addr::new(198, 51, 100, 7)])
    );
    assert_eq!(
        dns_a(&b.path(), "example.test").map(|r| r.0),
        Some(5),
        "REFUSED on internal"
    );
    assert_eq!(
        dns_a(&b.path(), "bravo"),
        Some((0, vec![eb.ip])),
        "own name still resolves"
    );

    // a network in use cannot be removed; after release it can, and prune removes the rest
    assert!(m.remove_network("one").await.is_err());
    m.release_container(&"a".repeat(64)).await.unwrap();
    m.release_container(&"b".repeat(64)).await.unwrap();
    m.remove_network("one").await.unwrap();
    assert_eq!(
        m.prune_networks(&Default::default()).await.unwrap(),
        vec!["two".to_string()]
    );
    assert_eq!(
        m.list_networks()
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["bridge", "host", "none"]
    );
    m.teardown_all().await.unwrap();
}
