//! Unit tier: the conformance suite against fake cgroupfs trees, plus stats parsing from
//! realistic kernel file contents.

use crate::factory::open_at;
use crate::layout::{Layout, V1Hierarchy};
use crate::manager::{CgroupManager, CgroupPath};
use berth_testkit::fakecgroup::FakeCgroupFs;

#[path = "../tests/common/suite.rs"]
mod suite;

fn v1(fake: &FakeCgroupFs, path: &str) -> Box<dyn CgroupManager> {
    let hierarchies = fake
        .v1_mounts()
        .into_iter()
        .map(|(controllers, mount)| V1Hierarchy { controllers, mount })
        .collect();
    open_at(Layout::V1 { hierarchies }, CgroupPath(path.into())).unwrap()
}

fn v2(fake: &FakeCgroupFs, path: &str) -> Box<dyn CgroupManager> {
    open_at(
        Layout::V2 {
            root: fake.root().to_path_buf(),
        },
        CgroupPath(path.into()),
    )
    .unwrap()
}

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap().trim().to_string()
}

#[test]
fn v1_fake_conformance() {
    let fake = FakeCgroupFs::v1();
    let m = v1(&fake, "/berth/c1");
    suite::create_makes_every_directory(&*m, &|| fake.kernel_populate());
    // Intermediate parent /berth inherited the cpuset too.
    assert_eq!(read(&fake.root().join("cpuset/berth/cpuset.cpus")), "0-1");
    suite::limits_round_trip(&*m);
    suite::rejects_bad_values(&*m);
    suite::tasks_and_freezer(&*m, 4242);
    for (_, p) in m.paths() {
        assert_eq!(read(&p.join("cgroup.procs")), "4242", "{}", p.display());
    }
    // Self-join writes the kernel's "me" (0) into every hierarchy's tasks (thread move).
    m.join_self().unwrap();
    for (_, p) in m.paths() {
        assert_eq!(read(&p.join("tasks")), "0", "{}", p.display());
    }
    fake.kernel_release("/berth/c1");
    suite::destroy_leaves_nothing(&*m);
}

#[test]
fn v2_fake_conformance() {
    let fake = FakeCgroupFs::v2("cpuset cpu io memory hugetlb pids");
    let m = v2(&fake, "/berth/c1");
    suite::create_makes_every_directory(&*m, &|| fake.kernel_populate());
    assert_eq!(
        read(&fake.root().join("cgroup.subtree_control")),
        "+cpu +memory +pids +cpuset +io"
    );
    suite::limits_round_trip(&*m);
    suite::rejects_bad_values(&*m);
    m.add_task(4242).unwrap();
    assert_eq!(m.pids().unwrap(), vec![4242]);
    m.join_self().unwrap();
    assert_eq!(read(&m.paths()[0].1.join("cgroup.procs")), "0");
    fake.kernel_release("/berth/c1");
    suite::destroy_leaves_nothing(&*m);
}

#[test]
fn v2_hugetlb_only_fails_clearly() {
    let fake = FakeCgroupFs::v2("hugetlb");
    let m = v2(&fake, "/berth/c1");
    suite::create_makes_every_directory(&*m, &|| fake.kernel_populate());
    // Nothing offered that berth wants: subtree_control untouched.
    assert_eq!(read(&fake.root().join("cgroup.subtree_control")), "");
    suite::missing_controller_is_clear(&*m);
}

#[test]
fn v1_memory_order_lowering_writes_memory_first() {
    // With memsw at 128M and memory at 64M, lowering both to 16M must write memory first:
    // the fake cannot enforce the order, so check the final values and the no-swap-file case.
    let fake = FakeCgroupFs::v1();
    let m = v1(&fake, "/c2");
    m.create().unwrap();
    fake.kernel_populate();
    std::fs::remove_file(fake.root().join("memory/c2/memory.memsw.limit_in_bytes")).unwrap();
    m.set(&crate::manager::Resources {
        memory_limit: Some(64 << 20),
        memory_swap: Some(128 << 20),
        ..Default::default()
    })
    .expect("swap limit skipped where the kernel has no swap accounting");
    assert!(!fake
        .root()
        .join("memory/c2/memory.memsw.limit_in_bytes")
        .exists());
}

#[test]
fn v1_blkio_weight_only_where_present() {
    let fake = FakeCgroupFs::v1();
    let m = v1(&fake, "/c3");
    m.create().unwrap();
    fake.kernel_populate();
    let w = crate::manager::Resources {
        blkio_weight: Some(300),
        ..Default::default()
    };
    m.set(&w).unwrap();
    assert!(!fake.root().join("blkio/c3/blkio.weight").exists());
    fake.set_file(&fake.root().join("blkio/c3/blkio.weight"), "500");
    m.set(&w).unwrap();
    assert_eq!(read(&fake.root().join("blkio/c3/blkio.weight")), "300");
}

#[test]
fn v1_stats_from_realistic_files() {
    let fake = FakeCgroupFs::v1();
    let m = v1(&fake, "/s");
    m.create().unwrap();
    fake.kernel_populate();
    let r = fake.root();
    fake.set_file(&r.join("cpuacct/s/cpuacct.usage"), "123456789\n");
    fake.set_file(
        &r.join("cpuacct/s/cpuacct.usage_percpu"),
        "100000000 23456789 \n",
    );
    fake.set_file(&r.join("cpuacct/s/cpuacct.stat"), "user 7\nsystem 3\n");
    fake.set_file(
        &r.join("cpu/s/cpu.stat"),
        "nr_periods 40\nnr_throttled 12\nthrottled_time 987654321\nnr_bursts 0\nburst_time 0\n",
    );
    fake.set_file(&r.join("memory/s/memory.usage_in_bytes"), "10485760\n");
    fake.set_file(&r.join("memory/s/memory.max_usage_in_bytes"), "20971520\n");
    fake.set_file(&r.join("memory/s/memory.limit_in_bytes"), "33554432\n");
    fake.set_file(
        &r.join("memory/s/memory.stat"),
        "cache 4096000\nrss 6000000\ninactive_file 100\ntotal_cache 4096000\ntotal_rss 6000000\ntotal_inactive_file 4000000\n",
    );
    fake.set_file(
        &r.join("memory/s/memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    );
    fake.set_file(&r.join("pids/s/pids.current"), "3\n");
    fake.set_file(&r.join("pids/s/pids.max"), "64\n");
    fake.set_file(
        &r.join("blkio/s/blkio.throttle.io_service_bytes"),
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\n8:16 Read 1000\n8:16 Write 0\nTotal 13288\n",
    );
    let s = m.stats().unwrap();
    assert_eq!(s.cpu_total_ns, 123456789);
    assert_eq!(s.cpu_percpu_ns, vec![100000000, 23456789]);
    let tick = 1_000_000_000 / 100; // USER_HZ is 100 on Linux
    assert_eq!(s.cpu_user_ns, 7 * tick);
    assert_eq!(s.cpu_system_ns, 3 * tick);
    assert_eq!(
        (
            s.cpu_periods,
            s.cpu_throttled_periods,
            s.cpu_throttled_time_ns
        ),
        (40, 12, 987654321)
    );
    assert_eq!(s.memory_usage, 10485760);
    assert_eq!(s.memory_max_usage, 20971520);
    assert_eq!(s.memory_limit, 33554432);
    assert_eq!(s.memory_inactive_file, 4000000);
    assert_eq!(s.memory_working_set(), 10485760 - 4000000);
    assert_eq!(s.memory_stat.get("total_rss"), Some(&6000000));
    assert_eq!(s.memory_oom_kills, 2);
    assert_eq!((s.pids_current, s.pids_limit), (3, Some(64)));
    assert_eq!((s.blkio_read_bytes, s.blkio_write_bytes), (5096, 8192));
}

#[test]
fn v2_stats_from_realistic_files() {
    let fake = FakeCgroupFs::v2("cpuset cpu io memory pids");
    let m = v2(&fake, "/s");
    m.create().unwrap();
    fake.kernel_populate();
    let d = fake.root().join("s");
    fake.set_file(
        &d.join("cpu.stat"),
        "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 10\nnr_throttled 4\nthrottled_usec 700\nnr_bursts 0\nburst_usec 0\n",
    );
    fake.set_file(&d.join("memory.current"), "8388608\n");
    fake.set_file(&d.join("memory.peak"), "9000000\n");
    fake.set_file(&d.join("memory.max"), "max\n");
    fake.set_file(
        &d.join("memory.stat"),
        "anon 4000000\nfile 4000000\nkernel 100\nactive_file 1000000\ninactive_file 3000000\n",
    );
    fake.set_file(
        &d.join("memory.events"),
        "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n",
    );
    fake.set_file(&d.join("pids.current"), "2\n");
    fake.set_file(&d.join("pids.max"), "max\n");
    fake.set_file(
        &d.join("io.stat"),
        "8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n253:0 rbytes=10 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n",
    );
    let s = m.stats().unwrap();
    assert_eq!(
        (s.cpu_total_ns, s.cpu_user_ns, s.cpu_system_ns),
        (5_000_000, 3_000_000, 2_000_000)
    );
    assert_eq!(
        (
            s.cpu_periods,
            s.cpu_throttled_periods,
            s.cpu_throttled_time_ns
        ),
        (10, 4, 700_000)
    );
    assert_eq!(s.memory_usage, 8388608);
    assert_eq!(s.memory_max_usage, 9000000);
    assert!(s.memory_limit > 9000000, "unlimited → host MemTotal");
    assert_eq!(s.memory_working_set(), 8388608 - 3000000);
    assert_eq!(s.memory_oom_kills, 1);
    assert_eq!((s.pids_current, s.pids_limit), (2, None));
    assert_eq!((s.blkio_read_bytes, s.blkio_write_bytes), (1034, 2068));
}

#[test]
fn bad_paths_are_refused() {
    let fake = FakeCgroupFs::v1();
    for p in ["relative", "/", "/a/../b", ""] {
        let hierarchies = fake
            .v1_mounts()
            .into_iter()
            .map(|(controllers, mount)| V1Hierarchy { controllers, mount })
            .collect();
        let err = open_at(Layout::V1 { hierarchies }, CgroupPath(p.into())).unwrap_err();
        assert!(err.to_string().contains("cgroupsPath"), "{p}: {err}");
    }
}

#[test]
fn weight_conversions_match_runc() {
    assert_eq!(crate::v2::shares_to_weight(2), 1);
    assert_eq!(crate::v2::shares_to_weight(1024), 39);
    assert_eq!(crate::v2::shares_to_weight(262144), 10000);
    assert_eq!(crate::v2::blkio_to_io_weight(10), 1);
    assert_eq!(crate::v2::blkio_to_io_weight(1000), 10000);
}
