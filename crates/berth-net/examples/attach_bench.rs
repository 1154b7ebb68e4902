//! Network setup latency per container: `cargo run --release -p berth-net --example attach_bench [N]`
//! (root). Creates N namespaces (not timed), then times `attach` (veth + IPAM + addresses +
//! routes + DNS socket + state file write), `attach` with one published port (adds the port
//! reservation and the firewall update: map elements over netlink with nftables, an
//! `iptables-restore` exec with `BERTH_FIREWALL=iptables`), and `release_container`
//! (returns before the veth deletion and the rule removal finish).
//! The state file goes to `$BENCH_STATE_DIR` (default: a temp dir under /var/tmp, i.e. disk).

use std::time::{Duration, Instant};

use berth_net::{AttachRequest, NetConfig, NetworkCreate, NetworkManager, PortBinding};
use berth_testkit::netns::NetNs;

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let n = v.len();
    println!(
        "{name:<34} n={n:<4} min {:>6.2} ms  median {:>6.2} ms  p90 {:>6.2} ms  max {:>6.2} ms",
        ms(v[0]),
        ms(v[n / 2]),
        ms(v[(n * 9) / 10]),
        ms(v[n - 1])
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    if !berth_testkit::require_root("attach_bench") {
        return Ok(());
    }
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let base = std::env::var("BENCH_STATE_DIR").unwrap_or_else(|_| "/var/tmp".into());
    let dir = tempfile::tempdir_in(base)?;
    let tag = berth_testkit::unique::name("");
    let cfg = NetConfig {
        default_bridge: format!("bbb{tag}").chars().take(15).collect(),
        default_subnet: Some("10.251.0.0/24".parse()?),
        user_bridge_prefix: "bbu".into(),
        veth_prefix: "bbv".into(),
        nft_table: format!("berth_bench_{tag}"),
        address_pool: vec!["10.252.0.0/22".parse()?],
        dns_upstreams: Some(vec![]),
        ..NetConfig::default()
    };
    let m = NetworkManager::open(dir.path(), cfg).await?;
    let result = run(&m, n).await;
    m.teardown_all().await?;
    result
}

async fn run(m: &NetworkManager, n: usize) -> anyhow::Result<()> {
    m.create_network(NetworkCreate {
        name: "bench".into(),
        ..Default::default()
    })
    .await?;
    let nss: Vec<NetNs> = (0..2 * n)
        .map(|_| NetNs::new("bbn"))
        .collect::<Result<_, _>>()?;
    let (plain, ported) = nss.split_at(n);

    // Interleaved, so load from other processes on the machine hits both cases alike.
    let (mut t_plain, mut t_port) = (Vec::new(), Vec::new());
    for (i, (ns, pns)) in plain.iter().zip(ported).enumerate() {
        let t = Instant::now();
        m.attach(AttachRequest {
            container_id: format!("{i:064x}"),
            container_name: format!("c{i}"),
            netns: ns.path(),
            network: "bench".into(),
            ..Default::default()
        })
        .await?;
        t_plain.push(t.elapsed());
        let t = Instant::now();
        m.attach(AttachRequest {
            container_id: format!("{:064x}", i + n),
            container_name: format!("p{i}"),
            netns: pns.path(),
            network: "bench".into(),
            ports: vec![PortBinding::parse("127.0.0.1::80")?],
            ..Default::default()
        })
        .await?;
        t_port.push(t.elapsed());
    }
    let mut t_rel = Vec::new();
    for i in 0..2 * n {
        let t = Instant::now();
        m.release_container(&format!("{i:064x}")).await?;
        t_rel.push(t.elapsed());
    }
    let t = Instant::now();
    m.settle().await;
    let settle = t.elapsed();
    stats("attach (no ports)", t_plain);
    stats("attach (1 published port)", t_port);
    stats("release_container (returns early)", t_rel);
    println!(
        "background veth deletions: {:.1} ms total for {} veths",
        settle.as_secs_f64() * 1000.0,
        2 * n
    );
    Ok(())
}
