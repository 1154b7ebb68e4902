//! A fake cgroupfs tree in a tempdir, with the files the kernel creates, so cgroup managers
//! can be tested without root: what they write is read back as plain files.
//!
//! A plain directory does not grow files on `mkdir` as cgroupfs does, so after a manager
//! creates directories the test calls [`FakeCgroupFs::kernel_populate`] (the kernel's part),
//! and before `destroy` [`FakeCgroupFs::kernel_release`] (cgroupfs lets rmdir remove a
//! directory full of control files; a plain fs does not).

use std::path::{Path, PathBuf};

/// Which layout the fake tree mimics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeKind {
    V1,
    V2,
}

/// The v1 hierarchies of this project's CI host (cpu and cpuacct mounted apart).
pub const V1_HIERARCHIES: &[(&str, &str)] = &[
    ("cpu", "cpu"),
    ("cpuacct", "cpuacct"),
    ("cpuset", "cpuset"),
    ("memory", "memory"),
    ("devices", "devices"),
    ("freezer", "freezer"),
    ("blkio", "blkio"),
    ("pids", "pids"),
    ("name=systemd", "systemd"),
];

const UNLIMITED: &str = "9223372036854771712";

/// Files (and their initial contents) the kernel creates in a *new* v1 cgroup of a hierarchy.
fn v1_files(controller: &str) -> Vec<(&'static str, String)> {
    let mut f = vec![("cgroup.procs", String::new()), ("tasks", String::new())];
    match controller {
        "cpu" => f.extend([
            ("cpu.shares", "1024".into()),
            ("cpu.cfs_period_us", "100000".into()),
            ("cpu.cfs_quota_us", "-1".into()),
            (
                "cpu.stat",
                "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n".into(),
            ),
        ]),
        "cpuacct" => f.extend([
            ("cpuacct.usage", "0".into()),
            ("cpuacct.usage_percpu", "0 0 ".into()),
            ("cpuacct.stat", "user 0\nsystem 0\n".into()),
        ]),
        "cpuset" => f.extend([("cpuset.cpus", "\n".into()), ("cpuset.mems", "\n".into())]),
        "memory" => f.extend([
            ("memory.limit_in_bytes", UNLIMITED.into()),
            ("memory.soft_limit_in_bytes", UNLIMITED.into()),
            ("memory.memsw.limit_in_bytes", UNLIMITED.into()),
            ("memory.usage_in_bytes", "0".into()),
            ("memory.max_usage_in_bytes", "0".into()),
            (
                "memory.stat",
                "cache 0\nrss 0\ntotal_inactive_file 0\n".into(),
            ),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n".into(),
            ),
        ]),
        "freezer" => f.push(("freezer.state", "THAWED".into())),
        "blkio" => f.push(("blkio.throttle.io_service_bytes", "Total 0\n".into())),
        "pids" => f.extend([("pids.max", "max".into()), ("pids.current", "0".into())]),
        _ => {}
    }
    f
}

/// Files the kernel creates in a new v2 cgroup whose parent enabled `enabled` controllers.
fn v2_files(enabled: &[String]) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("cgroup.procs", String::new()),
        ("cgroup.controllers", enabled.join(" ")),
        ("cgroup.subtree_control", String::new()),
        ("cgroup.freeze", "0".into()),
        ("cgroup.events", "populated 0\nfrozen 0\n".into()),
        (
            "cpu.stat",
            "usage_usec 0\nuser_usec 0\nsystem_usec 0\n".into(),
        ),
    ];
    for c in enabled {
        match c.as_str() {
            "cpu" => f.extend([
                ("cpu.weight", "100".into()),
                ("cpu.max", "max 100000".into()),
            ]),
            "memory" => f.extend([
                ("memory.max", "max".into()),
                ("memory.low", "0".into()),
                ("memory.swap.max", "max".into()),
                ("memory.current", "0".into()),
                ("memory.peak", "0".into()),
                ("memory.stat", "anon 0\nfile 0\ninactive_file 0\n".into()),
                (
                    "memory.events",
                    "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n".into(),
                ),
            ]),
            "pids" => f.extend([("pids.max", "max".into()), ("pids.current", "0".into())]),
            "cpuset" => f.extend([
                ("cpuset.cpus", String::new()),
                ("cpuset.mems", String::new()),
            ]),
            "io" => f.push(("io.stat", String::new())),
            _ => {}
        }
    }
    f
}

/// A fake cgroupfs. For v1, one directory per hierarchy under the root; for v2, the root is
/// the unified mount.
pub struct FakeCgroupFs {
    dir: tempfile::TempDir,
    pub kind: FakeKind,
}

fn write(p: &Path, s: &str) {
    std::fs::write(p, s).unwrap_or_else(|e| panic!("fake cgroupfs: write {}: {e}", p.display()));
}

impl FakeCgroupFs {
    /// A v1 tree shaped like this CI host, root cpuset `0-1` / `0`.
    pub fn v1() -> FakeCgroupFs {
        let fake = FakeCgroupFs {
            dir: tempfile::tempdir().expect("tempdir"),
            kind: FakeKind::V1,
        };
        for (ctl, dir) in V1_HIERARCHIES {
            let root = fake.root().join(dir);
            std::fs::create_dir_all(&root).expect("mkdir fake hierarchy");
            for (f, v) in v1_files(ctl) {
                write(&root.join(f), &v);
            }
            if *ctl == "cpuset" {
                write(&root.join("cpuset.cpus"), "0-1\n");
                write(&root.join("cpuset.mems"), "0\n");
            }
        }
        fake
    }

    /// A v2 tree whose root offers `controllers` (e.g. `"cpuset cpu io memory pids"`, or
    /// `"hugetlb"` like this host's hybrid mount).
    pub fn v2(controllers: &str) -> FakeCgroupFs {
        let fake = FakeCgroupFs {
            dir: tempfile::tempdir().expect("tempdir"),
            kind: FakeKind::V2,
        };
        let r = fake.root();
        write(&r.join("cgroup.controllers"), controllers);
        write(&r.join("cgroup.subtree_control"), "");
        write(&r.join("cgroup.procs"), "1\n");
        fake
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// v1: (controllers, mount point) per hierarchy, for building the manager's layout.
    pub fn v1_mounts(&self) -> Vec<(Vec<String>, PathBuf)> {
        V1_HIERARCHIES
            .iter()
            .map(|(c, d)| (vec![c.to_string()], self.root().join(d)))
            .collect()
    }

    /// Play the kernel after mkdir: give every directory without `cgroup.procs` the control
    /// files a new cgroup has (existing files are left as the manager wrote them).
    pub fn kernel_populate(&self) {
        match self.kind {
            FakeKind::V1 => {
                for (ctl, d) in V1_HIERARCHIES {
                    walk(&self.root().join(d), &mut |dir| {
                        for (f, v) in v1_files(ctl) {
                            if !dir.join(f).exists() {
                                write(&dir.join(f), &v);
                            }
                        }
                    });
                }
            }
            FakeKind::V2 => walk(self.root(), &mut |dir| {
                let parent = dir.parent().expect("child has parent");
                let sub = std::fs::read_to_string(parent.join("cgroup.subtree_control"))
                    .unwrap_or_default();
                let enabled: Vec<String> = sub
                    .split_whitespace()
                    .map(|c| c.trim_start_matches('+').to_string())
                    .collect();
                for (f, v) in v2_files(&enabled) {
                    // cgroup.controllers always mirrors the parent's subtree_control.
                    if f == "cgroup.controllers" || !dir.join(f).exists() {
                        write(&dir.join(f), &v);
                    }
                }
            }),
        }
    }

    /// Play cgroupfs before rmdir: remove the control files of the cgroup at `rel`
    /// (in every hierarchy for v1) so a plain rmdir can succeed.
    pub fn kernel_release(&self, rel: &str) {
        let rel = rel.trim_start_matches('/');
        let dirs: Vec<PathBuf> = match self.kind {
            FakeKind::V1 => V1_HIERARCHIES
                .iter()
                .map(|(_, d)| self.root().join(d).join(rel))
                .collect(),
            FakeKind::V2 => vec![self.root().join(rel)],
        };
        for d in dirs {
            if let Ok(rd) = std::fs::read_dir(&d) {
                for e in rd.flatten() {
                    if e.path().is_file() {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
    }

    /// Write a file as the kernel would (e.g. counters for stats parsing tests).
    pub fn set_file(&self, path: &Path, contents: &str) {
        write(path, contents);
    }
}

/// Visit every directory strictly below `root`, parents first.
fn walk(root: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        f(&d);
        walk(&d, f);
    }
}
