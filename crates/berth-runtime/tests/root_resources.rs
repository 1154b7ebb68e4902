//! Root tier: cgroup limits set from `linux.resources` are enforced on real containers.

mod common;

use common::fixture;
use serde_json::json;

fn stats(cgroup: &str) -> berth_cgroups::CgroupStats {
    berth_cgroups::open(berth_cgroups::CgroupPath(cgroup.to_string()))
        .unwrap()
        .stats()
        .unwrap()
}

#[test]
fn memory_limit_kills_a_200m_allocation() {
    let Some(f) = fixture("oom", |s| {
        s["process"]["args"] = json!(["/bin/checker", "alloc", "200M"]);
        s["linux"]["resources"]["memory"] = json!({"limit": 33554432, "swap": 33554432});
    }) else {
        return;
    };
    let (code, out, err) = f.run();
    assert_eq!(code, 137, "out={out} err={err}");
    let st = stats(&f.cgroup);
    assert!(st.memory_oom_kills >= 1, "{st:?}");
    assert_eq!(st.memory_limit, 33554432);
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    let Some(f) = fixture("pids", |s| {
        s["process"]["args"] = json!(["/bin/checker", "fork-bomb"]);
        s["linux"]["resources"]["pids"] = json!({"limit": 20});
    }) else {
        return;
    };
    let (code, out, err) = f.run();
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["failed"].as_u64().unwrap() > 0, "{out}");
    assert!(v["forked"].as_u64().unwrap() < 20, "{out}");
    assert_eq!(v["errno"], libc::EAGAIN, "{out}");
}

#[test]
fn cpu_quota_throttles() {
    let Some(f) = fixture("cpu", |s| {
        s["process"]["args"] = json!(["/bin/checker", "spin", "0.5s"]);
        s["linux"]["resources"]["cpu"] = json!({"quota": 10000, "period": 100000, "shares": 512});
    }) else {
        return;
    };
    let (code, _, err) = f.run();
    assert_eq!(code, 0, "{err}");
    let st = stats(&f.cgroup);
    assert!(st.cpu_throttled_periods > 0, "{st:?}");
    assert!(st.cpu_periods > 0, "{st:?}");
}

#[test]
fn the_container_sees_its_own_limits() {
    let Some(f) = fixture("cg-view", |s| {
        s["linux"]["resources"]["memory"] = json!({"limit": 67108864});
        s["linux"]["resources"]["pids"] = json!({"limit": 50});
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup"}));
    }) else {
        return;
    };
    let r = f.report();
    assert_eq!(r["cgroup"]["memory_limit"], 67108864, "{}", r["cgroup"]);
    assert_eq!(r["cgroup"]["pids_max"], 50, "{}", r["cgroup"]);
    // with a cgroup namespace the container's cgroup is its root
    assert!(
        r["cgroup_file"].as_str().unwrap().contains("memory:/\n")
            || r["cgroup_file"].as_str().unwrap().ends_with("memory:/"),
        "{}",
        r["cgroup_file"]
    );
}

#[test]
fn init_is_born_in_its_cgroups_and_the_helper_is_gone() {
    // 20: the helper joins the cgroups itself before cloning the init; 1: no room for the
    // helper next to the init, so the parent attaches the init instead.
    for limit in [20, 1] {
        let Some(f) = fixture("cg-born", |s| {
            s["process"]["args"] = json!(["/bin/checker", "sleep", "30"]);
            s["linux"]["resources"]["pids"] = json!({ "limit": limit });
        }) else {
            return;
        };
        let c =
            f.rt.create(&f.id, &f.bundle, berth_runtime::CreateOptions::default())
                .unwrap();
        let mgr = berth_cgroups::open(berth_cgroups::CgroupPath(f.cgroup.clone())).unwrap();
        for (name, dir) in mgr.paths() {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
            assert_eq!(procs.trim(), c.pid.to_string(), "limit {limit}, {name}");
        }
        f.rt.kill(&f.id, libc::SIGKILL, true).unwrap();
        common::wait_code(c.pid, 10);
        f.rt.delete(&f.id, false).unwrap();
        assert!(mgr.paths().iter().all(|(_, d)| !d.exists()), "destroyed");
    }
}
