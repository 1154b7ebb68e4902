//! Root tier: the conformance suite on the real kernel. v1 as this host mounts it (detected
//! through `open`), and v2 on the host's cgroup2 mount as far as it allows (on this CI host it
//! only offers hugetlb: create/add_task/pids/freeze/destroy work, limits fail clearly).

mod common;

use berth_cgroups::{open, open_at, CgroupManager, CgroupPath, Layout, Resources};
use common::suite;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Kills the children this test started and removes the cgroup dirs it made, also on panic.
struct Cleanup {
    children: Vec<Child>,
    /// Directories to remove, deepest last pushed first removed.
    dirs: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for d in &self.dirs {
            // A frozen task ignores SIGKILL until thawed.
            let _ = std::fs::write(d.join("freezer.state"), "THAWED");
            let _ = std::fs::write(d.join("cgroup.freeze"), "0");
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in self.dirs.iter().rev() {
            for _ in 0..50 {
                match std::fs::remove_dir(d) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    _ => break,
                }
            }
        }
    }
}

/// Parent `/berth-test-<unique>` and child path under it.
fn unique_paths() -> (String, CgroupPath) {
    let parent = format!("/berth-test-{}", berth_testkit::unique::name("cg"));
    let child = CgroupPath(format!("{parent}/x"));
    (parent, child)
}

/// Register every directory (parent and leaf) of the manager for cleanup.
fn track(m: &dyn CgroupManager, parent: &str, clean: &mut Cleanup) {
    for (_, leaf) in m.paths() {
        let root = leaf.ancestors().nth(2).unwrap().to_path_buf();
        clean.dirs.push(root.join(parent.trim_start_matches('/')));
        clean.dirs.push(leaf);
    }
}

fn sleeper() -> Child {
    Command::new("/bin/busybox")
        .args(["sleep", "60"])
        .spawn()
        .expect("spawn busybox sleep")
}

#[test]
fn v1_real_kernel_conformance() {
    if !berth_testkit::require_root("v1_real_kernel_conformance") {
        return;
    }
    let (parent, path) = unique_paths();
    let m = open(path).expect("open");
    let mut clean = Cleanup {
        children: vec![],
        dirs: vec![],
    };
    track(&*m, &parent, &mut clean);
    suite::create_makes_every_directory(&*m, &|| {});
    // The parent berth made copies its cpuset into later children itself; the leaf has one.
    if let Some((_, leaf)) = m.paths().into_iter().find(|(k, _)| k == "cpuset") {
        let read = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap();
        let made = leaf.parent().unwrap();
        assert_eq!(read(made.join("cgroup.clone_children")).trim(), "1");
        assert!(!read(leaf.join("cpuset.cpus")).trim().is_empty());
        assert!(!read(leaf.join("cpuset.mems")).trim().is_empty());
    }
    suite::limits_round_trip(&*m);
    suite::rejects_bad_values(&*m);
    clean.children.push(sleeper());
    let pid = clean.children[0].id() as i32;
    suite::tasks_and_freezer(&*m, pid);
    let st = m.stats().expect("stats");
    assert!(st.pids_current >= 1 || m.version() == "v2", "{st:?}");
    // A child cannot be destroyed while tasks remain: a clear Busy error naming the pid.
    let err = m.destroy().expect_err("destroy with a live task");
    assert!(err.to_string().contains(&pid.to_string()), "{err}");
    let mut c = clean.children.pop().unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    suite::destroy_leaves_nothing(&*m);
}

#[test]
fn v1_real_oom_kill_is_counted() {
    if !berth_testkit::require_root("v1_real_oom_kill_is_counted") {
        return;
    }
    let (parent, path) = unique_paths();
    let m = open(path).expect("open");
    let mut clean = Cleanup {
        children: vec![],
        dirs: vec![],
    };
    track(&*m, &parent, &mut clean);
    m.create().unwrap();
    m.set(&Resources {
        memory_limit: Some(32 << 20),
        memory_swap: Some(32 << 20),
        ..Default::default()
    })
    .unwrap();
    // The child waits for a line on stdin, so it is in the cgroup before it allocates:
    // busybox dd with bs=200M mallocs 200 MiB and fills it from /dev/zero.
    let mut child = Command::new("/bin/busybox")
        .args([
            "sh",
            "-c",
            "read go; exec /bin/busybox dd if=/dev/zero of=/dev/null bs=200M count=1",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    m.add_task(child.id() as i32).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    let st = m.stats().unwrap();
    assert!(st.memory_oom_kills >= 1, "{st:?}");
    assert_eq!(st.memory_limit, 32 << 20);
    assert!(
        st.memory_max_usage <= 32 << 20 && st.memory_max_usage > 16 << 20,
        "{st:?}"
    );
    m.destroy().unwrap();
}

#[test]
fn v1_cpu_stats_move() {
    if !berth_testkit::require_root("v1_cpu_stats_move") {
        return;
    }
    let (parent, path) = unique_paths();
    let m = open(path).expect("open");
    let mut clean = Cleanup {
        children: vec![],
        dirs: vec![],
    };
    track(&*m, &parent, &mut clean);
    m.create().unwrap();
    // 10% of one CPU: a busy loop is throttled.
    m.set(&Resources {
        cpu_quota: Some(10_000),
        cpu_period: Some(100_000),
        ..Default::default()
    })
    .unwrap();
    let mut child = Command::new("/bin/busybox")
        .args(["sh", "-c", "read go; while :; do :; done"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    m.add_task(child.id() as i32).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    clean.children.push(child);
    std::thread::sleep(std::time::Duration::from_millis(600));
    let st = m.stats().unwrap();
    assert!(st.cpu_total_ns > 0, "{st:?}");
    assert!(st.cpu_total_ns < 300_000_000, "quota not enforced: {st:?}");
    if m.version() == "v1" {
        assert_eq!(st.cpu_percpu_ns.iter().sum::<u64>(), st.cpu_total_ns);
    }
    assert!(st.cpu_throttled_periods >= 1, "{st:?}");
    assert!(
        st.cpu_user_ns + st.cpu_system_ns <= st.cpu_total_ns + 20_000_000,
        "{st:?}"
    );
    let mut c = clean.children.pop().unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    m.destroy().unwrap();
}

/// The host's cgroup2 mount, when it is not the chosen layout (hybrid host).
fn host_cgroup2() -> Option<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mounts = berth_cgroups::layout::Mounts::parse(&mi).ok()?;
    mounts.v2.into_iter().next()
}

#[test]
fn v2_real_kernel_as_far_as_it_allows() {
    if !berth_testkit::require_root("v2_real_kernel_as_far_as_it_allows") {
        return;
    }
    let Some(root) = host_cgroup2() else {
        eprintln!("skipping: no cgroup2 mount on this host");
        return;
    };
    let (parent, path) = unique_paths();
    let m = open_at(Layout::V2 { root: root.clone() }, path).unwrap();
    let mut clean = Cleanup {
        children: vec![],
        dirs: vec![],
    };
    track(&*m, &parent, &mut clean);
    suite::create_makes_every_directory(&*m, &|| {});
    let offered = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    if offered.split_whitespace().any(|c| c == "memory") {
        suite::limits_round_trip(&*m);
    } else {
        suite::missing_controller_is_clear(&*m);
    }
    clean.children.push(sleeper());
    let pid = clean.children[0].id() as i32;
    suite::tasks_and_freezer(&*m, pid);
    assert_eq!(m.pids().unwrap(), vec![pid]);
    let st = m.stats().unwrap();
    assert!(st.memory_limit > 0);
    let mut c = clean.children.pop().unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    suite::destroy_leaves_nothing(&*m);
}
