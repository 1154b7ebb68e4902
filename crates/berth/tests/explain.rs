//! Root tier: `berth explain` against the kernel. A container with limits, a volume, a
//! published port (and a user network) is explained, and every fact is checked against
//! what the kernel says through another door: /proc/<pid>/ns/*, /proc/<pid>/cgroup and the
//! cgroup files, /proc/<pid>/mountinfo, /proc/<pid>/status, the link list (sysfs and
//! `ip -j` inside the netns), `nft -j list table`. Also: the start timeline adds up to
//! the run's wall time, and stopped and unknown containers get a clear answer.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ok, Daemon};
use serde_json::Value;

fn setup(test: &str) -> Option<Daemon> {
    if !berth_testkit::require_root(test) {
        return None;
    }
    let d = Daemon::start();
    let tar = d.dir.path().join("bb.tar");
    std::fs::write(
        &tar,
        berth_testkit::images::busybox_layer_tar().expect("busybox tar"),
    )
    .expect("write tar");
    ok(
        &d,
        &d.berth(&["import", tar.to_str().expect("utf-8 path"), "bb:1"]),
    );
    Some(d)
}

/// Removes a network this test created, also when an assertion fails (its bridge lives in
/// the shared kernel). Declared after the daemon, so it drops first.
struct NetworkGuard<'a>(&'a Daemon, String);

impl Drop for NetworkGuard<'_> {
    fn drop(&mut self) {
        let ids = self.0.berth(&["ps", "-aq", "--no-trunc"]);
        for id in ids.stdout.split_whitespace() {
            let _ = self.0.berth(&["rm", "-f", id]);
        }
        let _ = self.0.raw("DELETE", &format!("/networks/{}", self.1), None);
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn explain_json(d: &Daemon, id: &str) -> Value {
    let r = d.berth(&["explain", "--format", "json", id]);
    ok(d, &r);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("explain json: {e}\n{}", r.stdout))
}

fn read(p: &str) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {p}: {e}"))
}

fn s(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        other => other.to_string(),
    }
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

fn ns_inode(path: &str) -> u64 {
    let l = std::fs::read_link(path).unwrap_or_else(|e| panic!("readlink {path}: {e}"));
    let l = l.to_string_lossy();
    l.split_once(":[")
        .and_then(|(_, r)| r.strip_suffix(']'))
        .and_then(|x| x.parse().ok())
        .expect("ns inode")
}

/// `ip -j ...` inside the container's network namespace.
fn ip_in(pid: i64, args: &[&str]) -> Value {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "ip", "-j"])
        .args(args)
        .output()
        .expect("run nsenter ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ip json")
}

/// Every fact of a running container's explanation, checked against the kernel.
fn check_running(
    d: &Daemon,
    ex: &Value,
    mem: u64,
    cpu_quota: &str,
    pids_max: &str,
    host_port: u16,
    network: &str,
) {
    assert_eq!(ex["running"], true, "{ex}");
    assert_eq!(ex["status"], "running");
    let id = s(&ex["id"]);
    let pid: i64 = d
        .berth(&["inspect", "-f", "{{.State.Pid}}", &id])
        .stdout
        .trim()
        .parse()
        .expect("pid");
    let proc_ = format!("/proc/{pid}");

    // process
    let p = &ex["process"];
    assert_eq!(p["host_pid"], pid);
    let status = read(&format!("{proc_}/status"));
    let nspid: Vec<i64> = status_field(&status, "NSpid")
        .split_whitespace()
        .map(|x| x.parse().expect("nspid"))
        .collect();
    assert_eq!(p["pid_inside"], *nspid.last().expect("nspid"));
    assert_eq!(p["pid_inside"], 1);
    let ppid: i64 = read(&format!("{proc_}/stat"))
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|x| x.parse().ok())
        .expect("ppid");
    assert_eq!(p["shim_pid"], ppid, "the shim is the init's parent");
    let cmdline: Vec<String> = read(&format!("{proc_}/cmdline"))
        .split('\0')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(p["command"], serde_json::json!(cmdline));
    let uid_map: Vec<Vec<u64>> = read(&format!("{proc_}/uid_map"))
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(|x| x.parse().expect("map"))
                .collect()
        })
        .collect();
    assert_eq!(p["uid_map"], serde_json::json!(uid_map));

    // namespaces
    let ns = ex["namespaces"].as_array().expect("namespaces");
    assert_eq!(ns.len(), 8);
    for n in ns {
        let kind = s(&n["kind"]);
        let inode = ns_inode(&format!("{proc_}/ns/{kind}"));
        assert_eq!(n["inode"], inode, "{kind}");
        // The test runs in the host's namespaces.
        let host = ns_inode(&format!("/proc/self/ns/{kind}"));
        let want = if inode == host { "host" } else { "own" };
        assert_eq!(n["owner"], want, "{kind}");
        if ["mnt", "pid", "net", "uts", "ipc", "cgroup"].contains(&kind.as_str()) {
            assert_eq!(n["owner"], "own", "{kind}");
        }
    }

    // cgroups
    let cg = &ex["cgroups"];
    let proc_cgroup = read(&format!("{proc_}/cgroup"));
    let hier = cg["hierarchies"].as_array().expect("hierarchies");
    assert!(!hier.is_empty());
    let mut checked_dirs = 0;
    for h in hier {
        let ctrls = s(&h["controllers"]);
        let want: BTreeSet<&str> = if ctrls == "unified" {
            BTreeSet::new()
        } else {
            ctrls.split(',').collect()
        };
        let line = proc_cgroup
            .lines()
            .find(|l| {
                let f: Vec<&str> = l.splitn(3, ':').collect();
                f.len() == 3
                    && f[1]
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .collect::<BTreeSet<_>>()
                        == want
            })
            .unwrap_or_else(|| panic!("no {ctrls} line in\n{proc_cgroup}"));
        let kpath = line.splitn(3, ':').nth(2).expect("path");
        assert_eq!(s(&h["path"]), kpath, "{ctrls}");
        if kpath == s(&cg["path"]) {
            let procs = read(&format!("{}/cgroup.procs", s(&h["dir"])));
            assert!(
                procs.lines().any(|l| l.trim() == pid.to_string()),
                "{ctrls}: {pid} not in {procs}"
            );
            checked_dirs += 1;
        }
    }
    assert!(
        checked_dirs >= 3,
        "the process is in berth's cgroup in each resource hierarchy"
    );
    let limits = cg["limits"].as_array().expect("limits");
    for l in limits {
        // The value shown is the file's content.
        assert_eq!(s(&l["value"]), read(&s(&l["file"])).trim(), "{l}");
        if let Some(uf) = l["usage_file"].as_str() {
            assert!(std::path::Path::new(uf).exists(), "{uf}");
        }
    }
    let find = |file: &str| {
        limits
            .iter()
            .find(|l| s(&l["file"]).ends_with(file))
            .unwrap_or_else(|| panic!("no {file} in {limits:?}"))
    };
    let m = find("memory.limit_in_bytes");
    assert_eq!(s(&m["value"]), mem.to_string());
    assert_eq!(m["set"], true);
    assert!(s(&m["usage"]).parse::<u64>().expect("memory usage") > 0);
    assert_eq!(s(&find("cpu.cfs_quota_us")["value"]), cpu_quota);
    let pl = find("pids.max");
    assert_eq!(s(&pl["value"]), pids_max);
    let pids_current = read(&s(&pl["usage_file"])).trim().to_string();
    assert_eq!(pids_current, "1", "only the sleep runs");
    assert_eq!(s(&pl["usage"]), pids_current);

    // filesystem
    let fs = &ex["filesystem"];
    assert_eq!(fs["mounted"], true);
    let mountinfo = read(&format!("{proc_}/mountinfo"));
    let root_line = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .expect("root mount");
    assert!(root_line.contains(" - overlay "), "{root_line}");
    let sopts = root_line
        .split(" - overlay ")
        .nth(1)
        .expect("opts")
        .split_once(' ')
        .expect("source")
        .1;
    let lower: Vec<&str> = sopts
        .split(',')
        .filter_map(|o| {
            o.strip_prefix("lowerdir=")
                .or_else(|| o.strip_prefix("lowerdir+="))
        })
        .flat_map(|v| v.split(':'))
        .collect();
    let ov = &fs["overlay"];
    let ex_lower: Vec<String> = ov["lower"]
        .as_array()
        .expect("lower")
        .iter()
        .map(|l| s(&l["dir"]))
        .collect();
    assert_eq!(ex_lower, lower);
    assert!(
        sopts.contains(&format!("upperdir={}", s(&ov["upper"]))),
        "{sopts}"
    );
    assert!(
        sopts.contains(&format!("workdir={}", s(&ov["work"]))),
        "{sopts}"
    );
    // Each lowerdir is the snapshot of one of the image's layers.
    let layers: Value = serde_json::from_str(
        &d.berth(&["inspect", "-f", "{{json .RootFS.Layers}}", "bb:1"])
            .stdout,
    )
    .expect("layers");
    assert!(
        ov["lower"]
            .as_array()
            .expect("lower")
            .iter()
            .any(|l| s(&l["kind"]) == "init"),
        "the test image lacks /etc/hosts: its containers get an init layer: {ov}"
    );
    for (i, l) in ov["lower"].as_array().expect("lower").iter().enumerate() {
        if s(&l["kind"]) == "init" {
            // The image's shared init layer: top-most, with only the mount points the test
            // image lacks (it has /proc, /sys and /dev; not /etc/hosts).
            assert_eq!(i, 0, "the init layer is above the image's layers: {ov}");
            let dir = std::path::PathBuf::from(s(&l["dir"]));
            assert!(dir.join("etc/hosts").is_file(), "{l}");
            assert!(!dir.join("proc").exists(), "never shadows the image: {l}");
            continue;
        }
        let chain = s(&l["chain_id"]);
        assert!(chain.starts_with("sha256:"), "{l}");
        assert!(
            s(&l["dir"]).contains(chain.trim_start_matches("sha256:")),
            "{l}"
        );
        assert!(
            layers.as_array().expect("layers").contains(&l["diff_id"]),
            "{l} not in {layers}"
        );
    }
    // Every other mount of the container is listed, with mountinfo's fields.
    let others: Vec<&str> = mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4) != Some("/"))
        .collect();
    let mounts = fs["mounts"].as_array().expect("mounts");
    assert_eq!(mounts.len(), others.len());
    for (m, line) in mounts.iter().zip(&others) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(m["mount_id"], f[0].parse::<u64>().expect("id"));
        assert_eq!(s(&m["target"]), f[4]);
        assert_eq!(m["read_only"], f[5].split(',').any(|o| o == "ro"), "{line}");
    }
    let vol = mounts
        .iter()
        .find(|m| m["target"] == "/data")
        .expect("volume mount");
    assert_eq!(vol["purpose"], "volume");
    let ro: Vec<String> = fs["read_only"]
        .as_array()
        .expect("ro")
        .iter()
        .map(s)
        .collect();
    assert!(ro.contains(&"/sys".to_string()), "{ro:?}");

    // network
    let net = &ex["network"];
    assert_eq!(net["netns_inode"], ns_inode(&format!("{proc_}/ns/net")));
    let ifs = net["interfaces"].as_array().expect("interfaces");
    assert_eq!(ifs.len(), 1, "{net}");
    let i = &ifs[0];
    assert_eq!(i["network"], network);
    let veth = s(&i["host_veth"]);
    assert_eq!(
        s(&i["host_ifindex"]),
        read(&format!("/sys/class/net/{veth}/ifindex")).trim()
    );
    let master = std::fs::read_link(format!("/sys/class/net/{veth}/master")).expect("veth master");
    assert_eq!(
        s(&i["bridge"]),
        master.file_name().expect("bridge").to_string_lossy()
    );
    let links = ip_in(pid, &["link", "show", &s(&i["container_ifname"])]);
    assert_eq!(links[0]["ifindex"], i["container_ifindex"]);
    assert_eq!(links[0]["address"], i["mac"]);
    // The peer of the container end is the host end.
    assert_eq!(links[0]["link_index"], i["host_ifindex"], "{links}");
    let addrs = ip_in(pid, &["addr", "show", &s(&i["container_ifname"])]);
    let a = addrs[0]["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .find(|a| a["family"] == "inet")
        .expect("inet");
    assert_eq!(a["local"], i["ip"]);
    assert_eq!(a["prefixlen"], i["prefix_len"]);
    let routes = ip_in(pid, &["route", "show", "default"]);
    assert_eq!(routes[0]["gateway"], i["gateway"]);
    // Published port: its entries in the port maps and the rule that looks them up are in
    // the table, and every line explain shows is too.
    let ports = net["ports"].as_array().expect("ports");
    assert_eq!(ports.len(), 1);
    let p = &ports[0];
    assert_eq!(p["host_port"], host_port);
    assert_eq!(p["host_ip"], "127.0.0.1");
    assert_eq!(p["container_ip"], i["ip"]);
    let table = s(&net["nft_table"]);
    let out = Command::new("nft")
        .args(["-j", "list", "table", "ip", &table])
        .output()
        .expect("nft");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nj: Value = serde_json::from_slice(&out.stdout).expect("nft json");
    let elem = |map: &str| {
        nj["nftables"]
            .as_array()
            .expect("nftables")
            .iter()
            .filter_map(|o| o.get("map"))
            .find(|m| m["name"] == map)
            .and_then(|m| m["elem"].as_array().cloned())
            .unwrap_or_default()
    };
    // [{"concat":["tcp","127.0.0.1",PORT]}, "IP"] and [..., 80]
    let key = serde_json::json!({"concat": ["tcp", "127.0.0.1", host_port]});
    assert!(
        elem("published_addr").contains(&serde_json::json!([key, i["ip"]])),
        "no address map element for {host_port} in {nj}"
    );
    assert!(
        elem("published_port").contains(&serde_json::json!([key, 80])),
        "no port map element for {host_port} in {nj}"
    );
    let text = String::from_utf8_lossy(
        &Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .expect("nft")
            .stdout,
    )
    .into_owned();
    let rules: Vec<String> = p["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(s)
        .collect();
    assert!(
        rules.contains(&format!(
            "map published_addr: tcp . 127.0.0.1 . {host_port} : {}",
            s(&i["ip"])
        )),
        "{rules:?}"
    );
    assert!(
        rules
            .iter()
            .any(|r| r.contains("dnat") && r.contains("map @published_addr")),
        "{rules:?}"
    );
    for r in &rules {
        let (_, rule) = r.split_once(": ").expect("chain: rule");
        assert!(
            text.lines().any(|l| l.trim() == rule) || text.contains(rule),
            "{rule} not in\n{text}"
        );
    }
    let resolv = read(&format!("{proc_}/root/etc/resolv.conf"));
    let servers: Vec<&str> = resolv
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .map(str::trim)
        .collect();
    assert_eq!(net["dns_servers"], serde_json::json!(servers));

    // security
    let sec = &ex["security"];
    let cap_eff = status_field(&status, "CapEff");
    assert_eq!(s(&sec["cap_eff_hex"]), cap_eff);
    let bits = u64::from_str_radix(&cap_eff, 16).expect("hex").count_ones() as usize;
    assert_eq!(sec["cap_eff"].as_array().expect("caps").len(), bits);
    assert!(sec["cap_eff"]
        .as_array()
        .expect("caps")
        .contains(&Value::from("CAP_NET_BIND_SERVICE")));
    assert!(!sec["cap_eff"]
        .as_array()
        .expect("caps")
        .contains(&Value::from("CAP_SYS_ADMIN")));
    assert_eq!(s(&sec["cap_bnd_hex"]), status_field(&status, "CapBnd"));
    let mode = match status_field(&status, "Seccomp").as_str() {
        "0" => "disabled",
        "1" => "strict",
        "2" => "filter",
        _ => "unknown",
    };
    assert_eq!(sec["seccomp_mode"], mode);
    assert_eq!(sec["seccomp_mode"], "filter");
    assert_eq!(sec["seccomp_profile"], "default");
    assert!(
        sec["seccomp_allowed_syscalls"].as_u64().expect("count") > 250,
        "{sec}"
    );
    assert_eq!(
        sec["no_new_privs"],
        status_field(&status, "NoNewPrivs") == "1"
    );
    for mp in sec["masked_paths"].as_array().expect("masked") {
        let path = s(&mp["path"]);
        let mounted = mountinfo
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(path.as_str()));
        assert_eq!(mp["state"] == "masked", mounted, "{mp}");
    }
}

#[test]
fn explain_matches_the_kernel() {
    let Some(d) = setup("explain_matches_the_kernel") else {
        return;
    };
    let name = berth_testkit::unique::name("ex");
    let port = free_port();
    let mem: u64 = 64 << 20;
    // `run --explain=json` prints the id, then the explanation.
    let r = d.berth(&[
        "run",
        "-d",
        "--explain=json",
        "--name",
        &name,
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "-v",
        &format!("{name}-vol:/data"),
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "bb:1",
        "sleep",
        "1000",
    ]);
    ok(&d, &r);
    let (id, json) = r.stdout.split_once('\n').expect("id line");
    let ex: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(ex["id"], id.trim());
    check_running(&d, &ex, mem, "50000", "50", port, "bridge");
    // `explain` later says the same of the unchanging facts.
    let again = explain_json(&d, &name);
    assert_eq!(again["namespaces"], ex["namespaces"]);
    assert_eq!(again["filesystem"]["overlay"], ex["filesystem"]["overlay"]);
    // The text form names each section.
    let t = d.berth(&["explain", &name]);
    ok(&d, &t);
    for section in [
        "PROCESS",
        "NAMESPACES",
        "CGROUPS",
        "FILESYSTEM",
        "NETWORK",
        "SECURITY",
        "START TIMELINE",
    ] {
        assert!(
            t.stdout.contains(section),
            "{section} missing:\n{}",
            t.stdout
        );
    }
    assert!(
        t.stdout.contains(&format!("127.0.0.1:{port} -> ")),
        "{}",
        t.stdout
    );
    // Attached `run --explain`: the explanation goes to stderr, stdout stays the program's.
    let r = d.berth(&[
        "run",
        "--rm",
        "--explain",
        "bb:1",
        "sh",
        "-c",
        "sleep 1; echo out",
    ]);
    ok(&d, &r);
    assert_eq!(r.stdout, "out\n");
    assert!(
        r.stderr.contains("PROCESS") && r.stderr.contains("sh -c sleep 1; echo out"),
        "{}",
        r.stderr
    );
    // A bad format is refused before anything is created.
    let r = d.berth(&["run", "-d", "--explain=yaml", "bb:1", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("--format json"), "{r:?}");
}

#[test]
fn explain_on_a_user_network() {
    let Some(d) = setup("explain_on_a_user_network") else {
        return;
    };
    let net = berth_testkit::unique::name("exnet");
    let (st, _, body) = d
        .raw(
            "POST",
            "/networks/create",
            Some(&format!("{{\"Name\":\"{net}\"}}")),
        )
        .expect("daemon answers");
    assert_eq!(st, 201, "POST /networks/create: {body}");
    let _net_guard = NetworkGuard(&d, net.clone());
    let name = berth_testkit::unique::name("exu");
    let port = free_port();
    let r = d.berth(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        &net,
        "-m",
        "32m",
        "--cpus",
        "0.25",
        "--pids-limit",
        "20",
        "-v",
        &format!("{name}-vol:/data"),
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "bb:1",
        "sleep",
        "1000",
    ]);
    ok(&d, &r);
    let ex = explain_json(&d, &name);
    check_running(&d, &ex, 32 << 20, "25000", "20", port, &net);
    ok(&d, &d.berth(&["rm", "-f", &name]));
}

#[test]
fn timeline_adds_up_to_the_wall_time_of_the_run() {
    let Some(d) = setup("timeline_adds_up_to_the_wall_time_of_the_run") else {
        return;
    };
    // Warm the daemon's image lookup once, so each run below is a typical one.
    ok(&d, &d.berth(&["run", "--rm", "bb:1", "true"]));
    // The machine may be busy (parallel tests, builds): every run must add up within 25%
    // and never exceed the wall time; the median run within 15% (below).
    let mut apart = Vec::new();
    for i in 0..5 {
        let name = berth_testkit::unique::name(&format!("tl{i}"));
        let port = free_port();
        // The run's wall time: from spawning `berth run -d` to it printing the container's
        // id (read with a blocking read; the harness's helper polls every 20 ms).
        let t0 = Instant::now();
        let mut child = Command::new(common::BERTH)
            .env("BERTH_HOST", &d.host)
            .args([
                "run",
                "-d",
                "--name",
                &name,
                "-p",
                &format!("127.0.0.1:{port}:80"),
                "bb:1",
                "sleep",
                "1000",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run berth");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("read the id");
        let wall = t0.elapsed();
        assert!(child.wait().expect("wait").success());
        assert_eq!(line.trim().len(), 64, "{line}");
        let ex = explain_json(&d, &name);
        let tl = &ex["timeline"];
        assert_eq!(tl["includes_create"], true, "{tl}");
        let steps = tl["steps"].as_array().expect("steps");
        let names: Vec<String> = steps.iter().map(|x| s(&x["name"])).collect();
        for want in [
            "client start-up, create request",
            "resolve image",
            "snapshot",
            "mount rootfs",
            "networks",
            // The shim's start, split by what the shim and the runtime measured.
            "shim start, request and reply",
            "runtime: load the spec, compile seccomp",
            "runtime: create the cgroups, set limits",
            "runtime: clone the init into new namespaces",
            "init: mount rootfs, /proc, /dev, volumes",
            "init: pivot_root",
            "attach, wait, START",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing in {names:?}"
            );
        }
        let sum: u64 = steps
            .iter()
            .map(|x| x["duration_us"].as_u64().expect("us"))
            .sum();
        assert_eq!(tl["total_us"], sum);
        let wall_us = wall.as_micros() as f64;
        let diff = (wall_us - sum as f64).abs() / wall_us;
        eprintln!(
            "run {i}: steps {sum} µs, wall {wall_us} µs, {:.1}% apart",
            diff * 100.0
        );
        assert!(
            (sum as f64) <= wall_us,
            "the steps take longer than the run: {tl}"
        );
        assert!(
            diff <= 0.25,
            "steps add up to {sum} µs, the run took {wall_us} µs ({:.1}% apart): {tl}",
            diff * 100.0
        );
        apart.push(diff);
        // Offsets are contiguous: each step starts where the previous ended.
        for w in steps.windows(2) {
            let end =
                w[0]["offset_us"].as_u64().expect("o") + w[0]["duration_us"].as_u64().expect("d");
            assert_eq!(end, w[1]["offset_us"].as_u64().expect("o"), "{w:?}");
        }
        ok(&d, &d.berth(&["rm", "-f", &name]));
    }
    apart.sort_by(f64::total_cmp);
    // The median within 15%: what the timeline cannot see is the client's own work before
    // its `main` and after the reply (exec, HTTP and JSON in this *debug* build: ~2-3 ms),
    // a fixed cost that weighs more as the start path gets faster (steps ~20 ms here since
    // session 3; it was 10% against ~30 ms before).
    assert!(
        apart[2] <= 0.15,
        "median run: steps {:.1}% apart from the wall time ({apart:?})",
        apart[2] * 100.0
    );
}

#[test]
fn explain_of_stopped_and_unknown_containers() {
    let Some(d) = setup("explain_of_stopped_and_unknown_containers") else {
        return;
    };
    // Unknown: 404 from the API, a clear message and a failure from the CLI.
    let (st, _, body) = d
        .raw("GET", "/berth/containers/no-such-thing/explain", None)
        .expect("daemon answers");
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("No such container"), "{body}");
    let (st, _, _) = d
        .raw("GET", "/v1.47/berth/containers/no-such-thing/explain", None)
        .expect("daemon answers");
    assert_eq!(st, 404);
    let r = d.berth(&["explain", "no-such-thing"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("No such container: no-such-thing"),
        "{r:?}"
    );

    // Stopped: says so and shows only what is still true.
    let name = berth_testkit::unique::name("exs");
    ok(
        &d,
        &d.berth(&["run", "-d", "--name", &name, "bb:1", "sleep", "1000"]),
    );
    let running = explain_json(&d, &name);
    let pid = running["process"]["host_pid"].as_i64().expect("pid");
    ok(&d, &d.berth(&["stop", "-t", "1", &name]));
    assert!(common::eventually(Duration::from_secs(10), || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    }));
    let ex = explain_json(&d, &name);
    assert_eq!(ex["running"], false);
    assert_eq!(ex["status"], "exited");
    assert!(s(&ex["note"]).contains("is not running"), "{ex}");
    for k in ["process", "cgroups", "network", "security"] {
        assert!(ex[k].is_null(), "{k} shown for a stopped container: {ex}");
    }
    assert_eq!(ex["namespaces"], serde_json::json!([]));
    assert_eq!(ex["filesystem"]["mounted"], false);
    assert_eq!(ex["filesystem"]["mounts"], serde_json::json!([]));
    // The stored layers are still true (and the dirs exist); the last start's timeline too.
    assert_eq!(
        ex["filesystem"]["overlay"]["lower"],
        running["filesystem"]["overlay"]["lower"]
    );
    assert!(std::path::Path::new(&s(&ex["filesystem"]["overlay"]["upper"])).is_dir());
    assert_eq!(ex["timeline"], running["timeline"]);
    let t = d.berth(&["explain", &name]);
    ok(&d, &t);
    assert!(t.stdout.contains("is not running"), "{}", t.stdout);
    assert!(!t.stdout.contains("PROCESS"), "{}", t.stdout);
    // A created, never started container.
    let c = d.berth(&["create", "bb:1", "true"]);
    ok(&d, &c);
    let ex = explain_json(&d, c.stdout.trim());
    assert_eq!(ex["running"], false);
    assert!(s(&ex["note"]).contains("never started"), "{ex}");
    assert!(ex["timeline"].is_null(), "no start yet: {ex}");
}

#[test]
fn timeline_shows_the_pull_of_a_missing_image() {
    let Some(d) = setup("timeline_shows_the_pull_of_a_missing_image") else {
        return;
    };
    let (_reg, img) = common::registry();
    let name = berth_testkit::unique::name("expull");
    let t0 = Instant::now();
    let mut child = Command::new(common::BERTH)
        .env("BERTH_HOST", &d.host)
        .args(["run", "-d", "--name", &name, &img, "sleep", "1000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run berth");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("read the id");
    let wall = t0.elapsed().as_micros() as u64;
    assert!(child.wait().expect("wait").success());
    let ex = explain_json(&d, &name);
    let steps = ex["timeline"]["steps"].as_array().expect("steps");
    let pull = steps
        .iter()
        .find(|s| s["name"] == "pull image")
        .unwrap_or_else(|| panic!("no pull step: {steps:?}"));
    assert_eq!(pull["phase"], "client");
    let pull_us = pull["duration_us"].as_u64().expect("us");
    assert!(pull_us > 0 && pull_us < wall, "{pull}");
    let sum: u64 = steps
        .iter()
        .map(|x| x["duration_us"].as_u64().expect("us"))
        .sum();
    assert!(sum <= wall, "steps {sum} µs > wall {wall} µs");
    assert!(
        wall - sum <= wall / 4,
        "steps {sum} µs, wall {wall} µs: {steps:?}"
    );
    // Pulled before the create: the pull comes before the engine's create steps.
    let pos = |n: &str| steps.iter().position(|s| s["name"] == n).expect("step");
    assert!(pos("pull image") < pos("resolve image"));
}
