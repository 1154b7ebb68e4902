//! The cgroup manager conformance suite (STYLE habit 5): one set of checks run against every
//! implementation — v1 and v2 on a fake cgroupfs tree (unit tier, `src/conformance_fake.rs`)
//! and on the real kernel (root tier, `tests/real_kernel.rs`).
//!
//! Each check takes a created manager; `settle` is called after directories were created so a
//! fake tree can play the kernel's part (a no-op on the real kernel).

#![allow(dead_code)]

use berth_cgroups::{CgroupManager, Resources};
use std::path::PathBuf;

fn file(m: &dyn CgroupManager, key: &str, name: &str) -> PathBuf {
    let paths = m.paths();
    let dir = paths
        .iter()
        .find(|(k, _)| k.split(',').any(|c| c == key) || (k == "unified"))
        .unwrap_or_else(|| panic!("no hierarchy {key} in {paths:?}"))
        .1
        .clone();
    dir.join(name)
}

fn read(m: &dyn CgroupManager, key: &str, name: &str) -> String {
    let p = file(m, key, name);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// create is idempotent and makes every directory `paths()` names.
pub fn create_makes_every_directory(m: &dyn CgroupManager, settle: &dyn Fn()) {
    m.create().expect("create");
    settle();
    m.create().expect("create twice");
    settle();
    for (k, p) in m.paths() {
        assert!(p.is_dir(), "{k}: {} missing after create", p.display());
    }
    if m.version() == "v1" {
        // cpuset inherited cpus/mems (else attaching fails with ENOSPC).
        assert!(
            !read(m, "cpuset", "cpuset.cpus").is_empty(),
            "cpuset.cpus empty"
        );
        assert!(
            !read(m, "cpuset", "cpuset.mems").is_empty(),
            "cpuset.mems empty"
        );
    }
}

/// Limits land in the right files with the right conversions. `with_memory`: whether the
/// implementation under test has a memory/cpu/pids controller (false on a hugetlb-only v2).
pub fn limits_round_trip(m: &dyn CgroupManager) {
    let r = Resources {
        memory_limit: Some(64 << 20),
        memory_reservation: Some(32 << 20),
        memory_swap: Some(128 << 20),
        cpu_shares: Some(512),
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        pids_limit: Some(32),
        ..Default::default()
    };
    m.set(&r).expect("set limits");
    match m.version() {
        "v1" => {
            assert_eq!(
                read(m, "memory", "memory.limit_in_bytes"),
                (64u64 << 20).to_string()
            );
            assert_eq!(
                read(m, "memory", "memory.soft_limit_in_bytes"),
                (32u64 << 20).to_string()
            );
            if file(m, "memory", "memory.memsw.limit_in_bytes").exists() {
                assert_eq!(
                    read(m, "memory", "memory.memsw.limit_in_bytes"),
                    (128u64 << 20).to_string()
                );
            }
            assert_eq!(read(m, "cpu", "cpu.shares"), "512");
            assert_eq!(read(m, "cpu", "cpu.cfs_quota_us"), "50000");
            assert_eq!(read(m, "cpu", "cpu.cfs_period_us"), "100000");
            assert_eq!(read(m, "pids", "pids.max"), "32");
        }
        _ => {
            assert_eq!(read(m, "unified", "memory.max"), (64u64 << 20).to_string());
            assert_eq!(read(m, "unified", "memory.low"), (32u64 << 20).to_string());
            if file(m, "unified", "memory.swap.max").exists() {
                assert_eq!(
                    read(m, "unified", "memory.swap.max"),
                    (64u64 << 20).to_string()
                );
            }
            // 1 + ((512 - 2) * 9999) / 262142 = 20
            assert_eq!(read(m, "unified", "cpu.weight"), "20");
            assert_eq!(read(m, "unified", "cpu.max"), "50000 100000");
            assert_eq!(read(m, "unified", "pids.max"), "32");
        }
    }
    // Lowering memory below the current memsw limit, then raising both, must both work
    // (v1 orders the two writes by direction).
    let down = Resources {
        memory_limit: Some(16 << 20),
        memory_swap: Some(16 << 20),
        ..Default::default()
    };
    m.set(&down).expect("lower memory and swap");
    let up = Resources {
        memory_limit: Some(256 << 20),
        memory_swap: Some(512 << 20),
        ..Default::default()
    };
    m.set(&up).expect("raise memory and swap");
    let limit_file = if m.version() == "v1" {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    assert_eq!(read(m, "memory", limit_file), (256u64 << 20).to_string());
    // Unlimited again.
    let unl = Resources {
        memory_limit: Some(-1),
        memory_swap: Some(-1),
        cpu_quota: Some(-1),
        pids_limit: Some(-1),
        ..Default::default()
    };
    m.set(&unl).expect("unlimited");
    assert_eq!(read(m, "pids", "pids.max"), "max");
    let st = m.stats().expect("stats");
    assert!(
        st.memory_limit > 256 << 20,
        "unlimited memory reports the host total"
    );
    assert_eq!(st.pids_limit, None);
}

/// Impossible values are refused with an error naming the field, and nothing panics.
pub fn rejects_bad_values(m: &dyn CgroupManager) {
    let cases = [
        (
            Resources {
                memory_limit: Some(0),
                ..Default::default()
            },
            "memory",
        ),
        (
            Resources {
                memory_limit: Some(64 << 20),
                memory_swap: Some(32 << 20),
                ..Default::default()
            },
            "memory_swap",
        ),
        (
            Resources {
                blkio_weight: Some(5),
                ..Default::default()
            },
            "blkio_weight",
        ),
    ];
    for (r, field) in cases {
        let err = m.set(&r).expect_err("bad value accepted");
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
}

/// A limit needing a controller the hierarchy lacks fails with a clear error.
pub fn missing_controller_is_clear(m: &dyn CgroupManager) {
    let err = m
        .set(&Resources {
            memory_limit: Some(64 << 20),
            ..Default::default()
        })
        .expect_err("memory limit without a memory controller");
    let s = err.to_string();
    assert!(s.contains("memory controller is not available"), "{s}");
}

/// A process added shows in pids(); freeze/thaw report their state.
pub fn tasks_and_freezer(m: &dyn CgroupManager, pid: i32) {
    m.add_task(pid).expect("add_task");
    assert!(
        m.pids().expect("pids").contains(&pid),
        "pid {pid} not in cgroup"
    );
    assert!(!m.is_frozen().unwrap());
    m.freeze().expect("freeze");
    assert!(m.is_frozen().unwrap());
    m.thaw().expect("thaw");
    assert!(!m.is_frozen().unwrap());
}

/// destroy removes every directory and is idempotent.
pub fn destroy_leaves_nothing(m: &dyn CgroupManager) {
    m.destroy().expect("destroy");
    for (k, p) in m.paths() {
        assert!(!p.exists(), "{k}: {} left behind", p.display());
    }
    m.destroy().expect("destroy twice");
}
