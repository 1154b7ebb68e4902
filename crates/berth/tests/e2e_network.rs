//! E2E, root tier: networking through the real docker CLI and berth's own CLI (issue 5's
//! "What it must show"): published ports on 127.0.0.1, the bridge IP, `-P`, `port`, user
//! networks with DNS by name, isolation between networks, `--network none`, the network
//! verbs, a used host port refused, NetworkSettings in inspect — and nothing of this
//! daemon's (veths, bridges, nft rules, leases) left behind afterwards. With
//! `BERTH_FIREWALL=iptables` in the environment the daemon uses the iptables fallback and
//! the same tests check its chains instead.
//!
//! All traffic goes to 127.0.0.1 or to the test's own containers.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{eventually, ok, Daemon, Run};

/// Names of this daemon's kernel objects, read from its command line.
struct Owned {
    bridge: String,
    nft_table: String,
    veth_prefix: String,
    user_bridge_prefix: String,
}

fn owned(d: &Daemon) -> Owned {
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", d.pid())).expect("daemon cmdline");
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let get = |k: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{k}=")).map(str::to_string))
            .unwrap_or_else(|| panic!("daemon started without --{k}: {args:?}"))
    };
    Owned {
        bridge: get("bridge"),
        nft_table: get("nft-table"),
        veth_prefix: get("veth-prefix"),
        user_bridge_prefix: get("user-bridge-prefix"),
    }
}

fn links() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn bridge_ports(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn nft_table(table: &str) -> Option<String> {
    let o = std::process::Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// `iptables-save` lines of this daemon's chains (`<nft table>-PORTS` etc.), present when
/// it runs with the iptables fallback (`BERTH_FIREWALL=iptables`).
fn iptables_lines(table: &str) -> Vec<String> {
    let out = std::process::Command::new("iptables-save")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let ours = format!("{table}-");
    out.lines()
        .filter(|l| {
            l.split_whitespace()
                .any(|w| w.trim_start_matches(':').starts_with(&ours))
        })
        .map(str::to_string)
        .collect()
}

/// Whether the daemon's firewall publishes a host port: an element of berth's nft port
/// maps (`tcp . 127.0.0.1 . PORT : ...` or `tcp . PORT : ...`), or a DNAT rule in its
/// iptables port chain.
fn publishes(o: &Owned, port: u16) -> bool {
    nft_table(&o.nft_table).is_some_and(|t| t.contains(&format!(" . {port} : ")))
        || iptables_lines(&o.nft_table)
            .iter()
            .any(|l| l.contains(&format!("--dport {port} ")) && l.contains("-j DNAT"))
}

/// With every container removed: no veth of ours, no port on our bridge, no published
/// port in our nft table, no lease in the state file, no user bridge of ours.
fn assert_clean(d: &Daemon, o: &Owned, host_ports: &[u16]) {
    let ours = |l: &String| l.starts_with(&o.veth_prefix) || l.starts_with(&o.user_bridge_prefix);
    assert!(
        eventually(Duration::from_secs(10), || !links().iter().any(ours)
            && bridge_ports(&o.bridge).is_empty()),
        "links of ours remain: {:?}, bridge ports {:?}",
        links().into_iter().filter(ours).collect::<Vec<_>>(),
        bridge_ports(&o.bridge)
    );
    let t = nft_table(&o.nft_table).unwrap_or_default();
    assert!(
        eventually(Duration::from_secs(10), || host_ports
            .iter()
            .all(|p| !publishes(o, *p))),
        "published ports remain in table {}:\n{t}",
        o.nft_table
    );
    let state = std::fs::read_to_string(d.dir.path().join("data/network/networks.json"))
        .or_else(|_| {
            // Wherever the daemon keeps it under its data root.
            find_file(&d.dir.path().join("data"), "networks.json")
                .map(std::fs::read_to_string)
                .unwrap_or_else(|| Ok(String::new()))
        })
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&state).unwrap_or_default();
    let eps = &v["endpoints"];
    assert!(
        eps.is_null() || eps.as_object().is_some_and(|m| m.is_empty()),
        "leases remain: {eps}"
    );
}

fn find_file(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        }
    }
    None
}

/// `GET /` over HTTP/1.0 with a Rust client; the body, or None.
fn http_get(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1.").then_some(out)
}

fn fetch(addr: SocketAddr, page: &str) -> Result<(), String> {
    let mut last = None;
    if eventually(Duration::from_secs(10), || {
        last = http_get(addr);
        last.as_deref().is_some_and(|b| b.contains(page))
    }) {
        Ok(())
    } else {
        Err(format!(
            "GET http://{addr}/ did not return {page:?}: {last:?}"
        ))
    }
}

/// A unique /24 in 172.16.0.0/12 for a user network (per process and call).
fn subnet() -> (String, String) {
    let tag = berth_testkit::unique::name("s");
    let h = tag.bytes().fold(std::process::id() as u64, |a, b| {
        a.wrapping_mul(131).wrapping_add(u64::from(b))
    }) % 4096;
    let (b2, b3) = (16 + h / 256, h % 256);
    (format!("172.{b2}.{b3}.0/24"), format!("172.{b2}.{b3}.1"))
}

fn setup(test: &str) -> Option<(Daemon, berth_testkit::registry::RegistryGuard, String)> {
    common::docker_setup(test, false)
}

/// `sh -c` that writes a page and serves it with busybox httpd on port 80.
fn httpd_cmd(page: &str) -> String {
    format!("mkdir -p /www && echo {page} > /www/index.html && exec httpd -f -p 80 -h /www")
}

/// Which CLI drives the daemon.
#[derive(Clone, Copy)]
enum Cli {
    Docker,
    Berth,
}

fn cli(d: &Daemon, c: Cli, args: &[&str]) -> Run {
    match c {
        Cli::Docker => d.docker(args),
        Cli::Berth => d.berth(args),
    }
}

fn ip_of(d: &Daemon, c: Cli, name: &str) -> std::net::Ipv4Addr {
    let r = cli(
        d,
        c,
        &["inspect", "-f", "{{.NetworkSettings.IPAddress}}", name],
    );
    ok(d, &r);
    r.stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no IP address for {name}: {r:?}"))
}

/// Published port on 127.0.0.1, the bridge IP, `port`, `-P`, a used port refused,
/// NetworkSettings — with the given CLI; then everything released.
fn publish_suite(c: Cli) {
    let test = match c {
        Cli::Docker => "docker_publish_ports",
        Cli::Berth => "berth_publish_ports",
    };
    let Some((mut d, _reg, img)) = setup(test) else {
        return;
    };
    let o = owned(&d);
    ok(&d, &cli(&d, c, &["pull", &img]));
    let port = berth_testkit::unique::free_port();
    let spec = format!("127.0.0.1:{port}:80");
    let page = format!("page-{}", berth_testkit::unique::name("p"));
    let r = cli(
        &d,
        c,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &spec,
            &img,
            "sh",
            "-c",
            &httpd_cmd(&page),
        ],
    );
    ok(&d, &r);
    // 127.0.0.1:<port> → the container's port 80.
    fetch(SocketAddr::from(([127, 0, 0, 1], port)), &page).unwrap();
    // ... through an element of the port maps (which `assert_clean` then finds gone)
    assert!(publishes(&o, port), "port {port} not in the firewall rules");
    // The bridge IP, port 80.
    let ip = ip_of(&d, c, "web");
    fetch(SocketAddr::from((ip, 80)), &page).unwrap();
    // port
    let p = cli(&d, c, &["port", "web"]);
    ok(&d, &p);
    assert_eq!(
        p.stdout.trim(),
        format!("80/tcp -> 127.0.0.1:{port}"),
        "{p:?}"
    );
    let p = cli(&d, c, &["port", "web", "80"]);
    ok(&d, &p);
    assert_eq!(p.stdout.trim(), format!("127.0.0.1:{port}"), "{p:?}");
    // NetworkSettings as the swagger shapes it.
    let full = cli(&d, c, &["inspect", "web"]);
    ok(&d, &full);
    let v: serde_json::Value = serde_json::from_str(&full.stdout).expect("inspect JSON");
    let ns = &v[0]["NetworkSettings"];
    assert_eq!(ns["IPAddress"], ip.to_string(), "{ns}");
    let gw: std::net::Ipv4Addr = ns["Gateway"]
        .as_str()
        .unwrap_or("")
        .parse()
        .expect("Gateway");
    assert_ne!(gw, ip);
    let mac = ns["MacAddress"].as_str().unwrap_or("");
    assert_eq!(mac.len(), 17, "MacAddress {ns}");
    assert_eq!(
        ns["Ports"]["80/tcp"],
        serde_json::json!([{"HostIp": "127.0.0.1", "HostPort": port.to_string()}]),
        "{ns}"
    );
    let bridge_net = &ns["Networks"]["bridge"];
    assert_eq!(bridge_net["IPAddress"], ip.to_string(), "{ns}");
    assert_eq!(bridge_net["Gateway"], gw.to_string(), "{ns}");
    assert_eq!(bridge_net["MacAddress"], mac, "{ns}");
    assert!(bridge_net["IPPrefixLen"].as_i64().unwrap_or(0) > 0, "{ns}");
    assert_eq!(
        bridge_net["NetworkID"].as_str().unwrap_or("").len(),
        64,
        "{ns}"
    );
    assert!(
        !bridge_net["EndpointID"].as_str().unwrap_or("").is_empty(),
        "{ns}"
    );
    // A second container asking for the same host port: refused, nothing left of it.
    let links_before = links();
    let r = cli(
        &d,
        c,
        &[
            "run", "-d", "--name", "web2", "-p", &spec, &img, "sleep", "30",
        ],
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "Bind for 127.0.0.1:{port} failed: port is already allocated"
        )),
        "{r:?}"
    );
    let state = cli(
        &d,
        c,
        &[
            "inspect",
            "-f",
            "{{.State.Running}} {{.NetworkSettings.IPAddress}}",
            "web2",
        ],
    );
    if state.code == 0 {
        assert_eq!(state.stdout.trim(), "false", "{state:?}");
    }
    let new_links: Vec<String> = links()
        .into_iter()
        .filter(|l| !links_before.contains(l) && l.starts_with(&o.veth_prefix))
        .collect();
    assert!(
        new_links.is_empty(),
        "veths left by the refused run: {new_links:?}"
    );
    assert_eq!(
        bridge_ports(&o.bridge).len(),
        1,
        "{:?}",
        bridge_ports(&o.bridge)
    );
    // The first still serves.
    fetch(SocketAddr::from(([127, 0, 0, 1], port)), &page).unwrap();
    // -P: the exposed port on an ephemeral host port, shown by `port`.
    let page2 = format!("page-{}", berth_testkit::unique::name("q"));
    let r = cli(
        &d,
        c,
        &[
            "run",
            "-d",
            "--name",
            "pub",
            "--expose",
            "80",
            "-P",
            &img,
            "sh",
            "-c",
            &httpd_cmd(&page2),
        ],
    );
    ok(&d, &r);
    let p = cli(&d, c, &["port", "pub", "80/tcp"]);
    ok(&d, &p);
    let first = p.stdout.lines().next().unwrap_or("").trim().to_string();
    let (_, eph) = first.rsplit_once(':').unwrap_or_else(|| panic!("{p:?}"));
    let eph: u16 = eph.parse().unwrap_or_else(|_| panic!("{p:?}"));
    assert!(eph > 0);
    fetch(SocketAddr::from(([127, 0, 0, 1], eph)), &page2).unwrap();
    // Hairpin: the container reaches its own published port through the host's (gateway)
    // address.
    let hp = cli(
        &d,
        c,
        &[
            "exec",
            "pub",
            "sh",
            "-c",
            &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {gw} {eph}"),
        ],
    );
    assert!(hp.stdout.contains(&page2), "hairpin: {hp:?}");
    // A daemon killed and restarted restores the rules of the running containers.
    if matches!(c, Cli::Docker) {
        d.restart();
        fetch(SocketAddr::from(([127, 0, 0, 1], port)), &page).unwrap();
        fetch(SocketAddr::from(([127, 0, 0, 1], eph)), &page2).unwrap();
        let p = cli(&d, c, &["port", "web"]);
        assert_eq!(
            p.stdout.trim(),
            format!("80/tcp -> 127.0.0.1:{port}"),
            "{p:?}"
        );
    }
    // Stopping releases veths, ports, rules and leases (the records stay).
    ok(&d, &cli(&d, c, &["stop", "-t", "1", "web", "pub"]));
    assert_clean(&d, &o, &[port, eph]);
    let st = cli(
        &d,
        c,
        &["inspect", "-f", "{{.NetworkSettings.IPAddress}}|", "web"],
    );
    ok(&d, &st);
    assert_eq!(st.stdout.trim(), "|", "{st:?}");
    // Remove everything: no veth, port, rule or lease of ours remains.
    for n in ["web", "web2", "pub"] {
        let _ = cli(&d, c, &["rm", "-f", n]);
    }
    assert_clean(&d, &o, &[port, eph]);
    assert!(
        TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(500)
        )
        .is_err(),
        "port {port} still answers after rm"
    );
    drop(d);
    assert!(!links().contains(&o.bridge), "bridge {} left", o.bridge);
    assert!(
        nft_table(&o.nft_table).is_none(),
        "nft table {} left",
        o.nft_table
    );
    let left = iptables_lines(&o.nft_table);
    assert!(left.is_empty(), "iptables rules left: {left:?}");
}

#[test]
fn docker_publish_ports() {
    publish_suite(Cli::Docker);
}

#[test]
fn berth_publish_ports() {
    publish_suite(Cli::Berth);
}

/// `--network none`: only lo.
#[test]
fn network_none_has_only_lo() {
    let Some((d, _reg, img)) = setup("network_none_has_only_lo") else {
        return;
    };
    for c in [Cli::Docker, Cli::Berth] {
        let r = cli(
            &d,
            c,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                &img,
                "ls",
                "/sys/class/net",
            ],
        );
        ok(&d, &r);
        assert_eq!(
            r.stdout.split_whitespace().collect::<Vec<_>>(),
            ["lo"],
            "{r:?}"
        );
    }
    // The default network gives eth0 besides lo.
    let r = d.berth(&["run", "--rm", &img, "ls", "/sys/class/net"]);
    ok(&d, &r);
    assert_eq!(
        r.stdout.split_whitespace().collect::<Vec<_>>(),
        ["eth0", "lo"],
        "{r:?}"
    );
    // `run --rm` leaves no veth, lease or bridge port behind.
    let o = owned(&d);
    assert_clean(&d, &o, &[]);
}

/// `nc` inside a throwaway client container on `net`: the page from `host`, or the error.
fn fetch_in(d: &Daemon, img: &str, net: &str, host: &str) -> Run {
    d.docker(&[
        "run",
        "--rm",
        "--network",
        net,
        img,
        "sh",
        "-c",
        &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} 80"),
    ])
}

/// User networks: create with options, DNS by name, isolation, ls/inspect/connect/
/// disconnect/rm/prune — with the docker CLI.
#[test]
fn docker_user_networks() {
    let Some((d, _reg, img)) = setup("docker_user_networks") else {
        return;
    };
    let o = owned(&d);
    ok(&d, &d.docker(&["pull", &img]));
    let (n1, n2, n3) = (
        berth_testkit::unique::name("na"),
        berth_testkit::unique::name("nb"),
        berth_testkit::unique::name("nc"),
    );
    let (sub1, gw1) = subnet();
    let r = d.docker(&[
        "network",
        "create",
        "--subnet",
        &sub1,
        "--gateway",
        &gw1,
        "--label",
        "team=e2e",
        &n1,
    ]);
    ok(&d, &r);
    let id1 = r.stdout.trim().to_string();
    assert_eq!(id1.len(), 64, "{r:?}");
    // n2 takes its subnet from the pool (one free on this host, not n1's).
    ok(&d, &d.docker(&["network", "create", &n2]));
    let sub2 = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
        &n2,
    ]);
    ok(&d, &sub2);
    let (pool_subnet, pool_gw) = sub2.stdout.trim().split_once(' ').unwrap_or(("", ""));
    assert!(
        pool_subnet.contains('/') && pool_gw.parse::<std::net::Ipv4Addr>().is_ok(),
        "{sub2:?}"
    );
    assert_ne!(pool_subnet, sub1);
    let (sub3, gw3) = subnet();
    ok(
        &d,
        &d.docker(&[
            "network",
            "create",
            "--internal",
            "--subnet",
            &sub3,
            "--gateway",
            &gw3,
            "--label",
            "prune=me",
            &n3,
        ]),
    );
    // ls: bridge, host, none and ours.
    let ls = d.docker(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    ok(&d, &ls);
    for want in ["bridge bridge", "host host", "none null"]
        .into_iter()
        .map(String::from)
        .chain([&n1, &n2, &n3].map(|n| format!("{n} bridge")))
    {
        assert!(
            ls.stdout.lines().any(|l| l == want),
            "{want:?} not in {ls:?}"
        );
    }
    let dup = d.docker(&["network", "create", &n1]);
    assert_ne!(dup.code, 0, "{dup:?}");
    assert!(dup.stderr.contains("already exists"), "{dup:?}");
    // inspect
    let i = d.docker(&["network", "inspect", &n1]);
    ok(&d, &i);
    let v: serde_json::Value = serde_json::from_str(&i.stdout).expect("network inspect JSON");
    assert_eq!(v[0]["Name"], n1.as_str());
    assert_eq!(v[0]["Id"], id1.as_str());
    assert_eq!(v[0]["Driver"], "bridge");
    assert_eq!(v[0]["Scope"], "local");
    assert_eq!(v[0]["Internal"], false);
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], sub1.as_str(), "{v}");
    assert_eq!(v[0]["IPAM"]["Config"][0]["Gateway"], gw1.as_str(), "{v}");
    assert_eq!(v[0]["Labels"]["team"], "e2e", "{v}");
    let i3 = d.docker(&["network", "inspect", "-f", "{{.Internal}}", &n3]);
    ok(&d, &i3);
    assert_eq!(i3.stdout.trim(), "true");
    // Two servers on n1, one on n2.
    let (pa, pc) = ("page-a-1", "page-c-1");
    ok(
        &d,
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "srv-a",
            "--network",
            &n1,
            "--network-alias",
            "web-alias",
            &img,
            "sh",
            "-c",
            &httpd_cmd(pa),
        ]),
    );
    ok(
        &d,
        &d.docker(&[
            "run",
            "-d",
            "--name",
            "srv-c",
            "--network",
            &n2,
            &img,
            "sh",
            "-c",
            &httpd_cmd(pc),
        ]),
    );
    let ip_a = d.docker(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{n1}\").IPAddress}}}}"),
        "srv-a",
    ]);
    ok(&d, &ip_a);
    let ip_a = ip_a.stdout.trim().to_string();
    assert!(
        ip_a.starts_with(sub1.trim_end_matches("0/24")),
        "{ip_a} not in {sub1}"
    );
    // By name from another container on n1.
    let mut last = None;
    assert!(
        eventually(Duration::from_secs(15), || {
            let r = fetch_in(&d, &img, &n1, "srv-a");
            let good = r.stdout.contains(pa);
            last = Some(r);
            good
        }),
        "fetch by name failed: {last:?}\n{}",
        common::tail(&d.log(), 30)
    );
    // By --network-alias, shown in inspect.
    let r = fetch_in(&d, &img, &n1, "web-alias");
    assert!(r.stdout.contains(pa), "fetch by alias: {r:?}");
    let al = d.docker(&[
        "inspect",
        "-f",
        &format!("{{{{json (index .NetworkSettings.Networks \"{n1}\").Aliases}}}}"),
        "srv-a",
    ]);
    ok(&d, &al);
    assert_eq!(al.stdout.trim(), r#"["web-alias"]"#, "{al:?}");
    // network inspect lists the container.
    let i = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}",
        &n1,
    ]);
    ok(&d, &i);
    assert!(i.stdout.trim().starts_with("srv-a "), "{i:?}");
    assert!(i.stdout.contains(&ip_a), "{i:?}");
    // From n2: neither the name resolves nor the address answers.
    let r = fetch_in(&d, &img, &n2, "srv-a");
    assert!(!r.stdout.contains(pa), "{r:?}");
    let r = fetch_in(&d, &img, &n2, &ip_a);
    assert!(
        !r.stdout.contains(pa),
        "cross-network traffic got through: {r:?}"
    );
    // But n2's own server answers there (the client itself works).
    let r = fetch_in(&d, &img, &n2, "srv-c");
    assert!(r.stdout.contains(pc), "{r:?}");
    // connect / disconnect: srv-c joins n1 and is reachable there by name.
    ok(
        &d,
        &d.docker(&["network", "connect", "--alias", "c-alias", &n1, "srv-c"]),
    );
    let nets = d.docker(&[
        "inspect",
        "-f",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        "srv-c",
    ]);
    ok(&d, &nets);
    assert!(
        nets.stdout.contains(&n1) && nets.stdout.contains(&n2),
        "{nets:?}"
    );
    let r = fetch_in(&d, &img, &n1, "srv-c");
    assert!(r.stdout.contains(pc), "{r:?}");
    let r = fetch_in(&d, &img, &n1, "c-alias");
    assert!(r.stdout.contains(pc), "fetch by connect --alias: {r:?}");
    let again = d.docker(&["network", "connect", &n1, "srv-c"]);
    assert_ne!(again.code, 0, "{again:?}");
    ok(&d, &d.docker(&["network", "disconnect", &n1, "srv-c"]));
    let nets = d.docker(&[
        "inspect",
        "-f",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        "srv-c",
    ]);
    assert_eq!(nets.stdout.trim(), n2, "{nets:?}");
    let r = fetch_in(&d, &img, &n1, "srv-c");
    assert!(!r.stdout.contains(pc), "{r:?}");
    // rm refuses a network in use; prune removes only unused ones matching the filter.
    let busy = d.docker(&["network", "rm", &n1]);
    assert_ne!(busy.code, 0, "{busy:?}");
    let pr = d.docker(&["network", "prune", "-f", "--filter", "label=prune=me"]);
    ok(&d, &pr);
    assert!(pr.stdout.contains(&n3), "{pr:?}");
    assert!(
        !pr.stdout.contains(&n1) && !pr.stdout.contains(&n2),
        "{pr:?}"
    );
    let gone = d.docker(&["network", "inspect", &n3]);
    assert_ne!(gone.code, 0, "{gone:?}");
    // Clean up: containers, then networks; their bridges go too.
    let user_bridges: Vec<String> = links()
        .into_iter()
        .filter(|l| l.starts_with(&o.user_bridge_prefix))
        .collect();
    assert_eq!(user_bridges.len(), 2, "{user_bridges:?}");
    ok(&d, &d.docker(&["rm", "-f", "srv-a", "srv-c"]));
    ok(&d, &d.docker(&["network", "rm", &n1, &n2]));
    let ls = d.docker(&["network", "ls", "--format", "{{.Name}}"]);
    ok(&d, &ls);
    let mut names: Vec<&str> = ls.stdout.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["bridge", "host", "none"], "{ls:?}");
    assert_clean(&d, &o, &[]);
}

/// `nc` in a throwaway client container on `net`, through berth's CLI.
fn berth_fetch_in(d: &Daemon, img: &str, net: &str, host: &str) -> Run {
    d.berth(&[
        "run",
        "--rm",
        "--network",
        net,
        img,
        "sh",
        "-c",
        &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} 80"),
    ])
}

/// The same user-network story with berth's own CLI.
#[test]
fn berth_user_networks() {
    let Some((d, _reg, img)) = setup("berth_user_networks") else {
        return;
    };
    let o = owned(&d);
    ok(&d, &d.berth(&["pull", &img]));
    let (n1, n2) = (
        berth_testkit::unique::name("ma"),
        berth_testkit::unique::name("mb"),
    );
    let (sub1, gw1) = subnet();
    ok(
        &d,
        &d.berth(&[
            "network",
            "create",
            "--subnet",
            &sub1,
            "--gateway",
            &gw1,
            "--label",
            "k=v",
            &n1,
        ]),
    );
    let (sub2, gw2) = subnet();
    ok(
        &d,
        &d.berth(&[
            "network",
            "create",
            "--internal",
            "--subnet",
            &sub2,
            "--gateway",
            &gw2,
            &n2,
        ]),
    );
    let ls = d.berth(&["network", "ls"]);
    ok(&d, &ls);
    for want in ["bridge", "host", "none", n1.as_str(), n2.as_str()] {
        assert!(
            ls.stdout
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(want)),
            "{want:?} not in {ls:?}"
        );
    }
    let i = d.berth(&["network", "inspect", &n1]);
    ok(&d, &i);
    let v: serde_json::Value = serde_json::from_str(&i.stdout).expect("network inspect JSON");
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], sub1.as_str(), "{v}");
    assert_eq!(v[0]["IPAM"]["Config"][0]["Gateway"], gw1.as_str(), "{v}");
    assert_eq!(v[0]["Labels"]["k"], "v", "{v}");
    let (pa, pb) = ("page-a-2", "page-b-2");
    ok(
        &d,
        &d.berth(&[
            "run",
            "-d",
            "--name",
            "sa",
            "--network",
            &n1,
            "--network-alias",
            "alias-a",
            &img,
            "sh",
            "-c",
            &httpd_cmd(pa),
        ]),
    );
    ok(
        &d,
        &d.berth(&[
            "run",
            "-d",
            "--name",
            "sb",
            "--network",
            &n2,
            &img,
            "sh",
            "-c",
            &httpd_cmd(pb),
        ]),
    );
    let mut last = None;
    assert!(
        eventually(Duration::from_secs(15), || {
            let r = berth_fetch_in(&d, &img, &n1, "sa");
            let good = r.stdout.contains(pa);
            last = Some(r);
            good
        }),
        "fetch by name failed: {last:?}\n{}",
        common::tail(&d.log(), 30)
    );
    let r = berth_fetch_in(&d, &img, &n1, "alias-a");
    assert!(r.stdout.contains(pa), "fetch by alias: {r:?}");
    // Isolation: from n2 neither name nor address of sa answers; n2's own server does.
    // (berth's template engine has no `index`: read the JSON)
    let ia = d.berth(&["inspect", "sa"]);
    ok(&d, &ia);
    let v: serde_json::Value = serde_json::from_str(&ia.stdout).expect("inspect JSON");
    let ip_a = v[0]["NetworkSettings"]["Networks"][n1.as_str()]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        v[0]["NetworkSettings"]["Networks"][n1.as_str()]["Aliases"],
        serde_json::json!(["alias-a"]),
        "{v}"
    );
    let short = &v[0]["Id"].as_str().unwrap_or_default()[..12];
    assert_eq!(
        v[0]["NetworkSettings"]["Networks"][n1.as_str()]["DNSNames"],
        serde_json::json!(["sa", "alias-a", short]),
        "{v}"
    );
    assert!(ip_a.parse::<std::net::Ipv4Addr>().is_ok(), "{ip_a:?}");
    for host in ["sa", ip_a.as_str()] {
        let r = berth_fetch_in(&d, &img, &n2, host);
        assert!(!r.stdout.contains(pa), "{host} reached from {n2}: {r:?}");
    }
    let r = berth_fetch_in(&d, &img, &n2, "sb");
    assert!(r.stdout.contains(pb), "{r:?}");
    // connect --alias / disconnect
    ok(
        &d,
        &d.berth(&["network", "connect", "--alias", "alias-b", &n1, "sb"]),
    );
    let r = berth_fetch_in(&d, &img, &n1, "alias-b");
    assert!(r.stdout.contains(pb), "fetch by connect --alias: {r:?}");
    ok(&d, &d.berth(&["network", "disconnect", &n1, "sb"]));
    let r = berth_fetch_in(&d, &img, &n1, "sb");
    assert!(!r.stdout.contains(pb), "{r:?}");
    // rm refuses a network in use; prune leaves used ones alone.
    let busy = d.berth(&["network", "rm", &n1]);
    assert_ne!(busy.code, 0, "{busy:?}");
    let pr = d.berth(&["network", "prune", "-f"]);
    ok(&d, &pr);
    assert!(
        !pr.stdout.contains(&n1) && !pr.stdout.contains(&n2),
        "{pr:?}"
    );
    ok(&d, &d.berth(&["rm", "-f", "sa", "sb"]));
    let pr = d.berth(&["network", "prune", "-f"]);
    ok(&d, &pr);
    assert!(pr.stdout.contains(&n1) && pr.stdout.contains(&n2), "{pr:?}");
    let ls = d.berth(&["network", "ls", "-q"]);
    ok(&d, &ls);
    assert_eq!(ls.stdout.lines().count(), 3, "{ls:?}");
    assert_clean(&d, &o, &[]);
}

/// Bad input gets clear errors, and nothing is left behind.
#[test]
fn network_bad_input() {
    let Some((d, _reg, img)) = setup("network_bad_input") else {
        return;
    };
    let o = owned(&d);
    ok(&d, &d.docker(&["pull", &img]));
    let name = berth_testkit::unique::name("bad");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["network", "create", "--subnet", "10.0.0.300/24", &name],
            "subnet",
        ),
        (vec!["network", "create", "-d", "overlay", &name], "overlay"),
        (vec!["network", "inspect", "no-such-net-xyz"], "not found"),
        (vec!["network", "rm", "no-such-net-xyz"], "not found"),
        (
            vec!["run", "--rm", "--network", "no-such-net-xyz", &img, "true"],
            "not found",
        ),
        (
            vec!["network", "connect", "no-such-net-xyz", "nobody"],
            "No such container",
        ),
        (vec!["network", "rm", "bridge"], "bridge"),
    ];
    for (args, want) in cases {
        let r = d.docker(&args);
        assert_ne!(r.code, 0, "{args:?} succeeded: {r:?}");
        assert!(
            r.stderr.to_lowercase().contains(&want.to_lowercase()),
            "{args:?}: {r:?}"
        );
    }
    let ls = d.docker(&["network", "ls", "-q"]);
    ok(&d, &ls);
    assert_eq!(ls.stdout.lines().count(), 3, "{ls:?}");
    assert_clean(&d, &o, &[]);
}
