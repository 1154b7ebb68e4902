//! Which cgroup layout the host mounts, read from `/proc/self/mountinfo`.
//!
//! A mountinfo line looks like
//! `35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory`:
//! the mount point is field 5, the filesystem type follows the ` - ` separator, and for v1 the
//! controllers bound to the hierarchy are in the super options (`rw,memory`,
//! `rw,cpu,cpuacct` when co-mounted, `rw,name=systemd` for a named hierarchy).
//!
//! Decision (see [`Layout::choose`]): a cgroup2 mount whose root offers `memory` is used as v2
//! (pure v2 hosts and hybrids that moved controllers to v2); otherwise the v1 hierarchies are used
//! if any resource controller is mounted (this CI host: its cgroup2 only has `hugetlb`); a bare
//! cgroup2 mount without v1 is still used as v2 (limits then fail with a clear error).

use crate::error::{CgroupError, Result};
use std::path::{Path, PathBuf};

/// Controllers berth knows in v1 (named hierarchies like `name=systemd` are kept too).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "rdma",
    "misc",
];

/// One mounted v1 hierarchy: its controllers and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Controllers bound to this hierarchy, e.g. `["cpu"]`, `["cpu", "cpuacct"]`, `["name=systemd"]`.
    pub controllers: Vec<String>,
    /// Mount point, e.g. `/sys/fs/cgroup/memory`.
    pub mount: PathBuf,
}

impl V1Hierarchy {
    /// The key used in [`crate::CgroupManager::paths`]: controllers joined by `,` as mounted.
    pub fn key(&self) -> String {
        self.controllers.join(",")
    }
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One hierarchy per controller (or per co-mounted group).
    V1 { hierarchies: Vec<V1Hierarchy> },
    /// The unified hierarchy mounted at `root`.
    V2 { root: PathBuf },
}

/// What mountinfo shows before choosing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mounts {
    pub v1: Vec<V1Hierarchy>,
    pub v2: Vec<PathBuf>,
}

/// Undo mountinfo's octal escapes (`\040` for a space, `\011` tab, `\012` newline, `\134` backslash).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Mounts {
    /// Parse mountinfo text. Lines that are not cgroup mounts are ignored; a malformed cgroup
    /// line is an error naming it. The first mount of a hierarchy wins (later ones are binds).
    pub fn parse(mountinfo: &str) -> Result<Mounts> {
        let mut m = Mounts::default();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mut r = right.split_whitespace();
            let fstype = r.next().unwrap_or("");
            if fstype != "cgroup" && fstype != "cgroup2" {
                continue;
            }
            let _source = r.next();
            let superopts = r.next().unwrap_or("");
            let mount = left
                .split_whitespace()
                .nth(4)
                .ok_or_else(|| CgroupError::Parse {
                    path: PathBuf::from("/proc/self/mountinfo"),
                    reason: format!("cgroup mount line without a mount point: {line:?}"),
                })?;
            let mount = PathBuf::from(unescape(mount));
            if fstype == "cgroup2" {
                if !m.v2.contains(&mount) {
                    m.v2.push(mount);
                }
                continue;
            }
            let controllers: Vec<String> = superopts
                .split(',')
                .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                .map(str::to_string)
                .collect();
            if controllers.is_empty() {
                continue;
            }
            if m.v1.iter().any(|h| h.controllers == controllers) {
                continue;
            }
            m.v1.push(V1Hierarchy { controllers, mount });
        }
        Ok(m)
    }
}

impl Layout {
    /// Detect the layout of this process's mount namespace.
    pub fn detect() -> Result<Layout> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| CgroupError::io("/proc/self/mountinfo", e))?;
        let mounts = Mounts::parse(&text)?;
        Layout::choose(mounts, |root| {
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default()
        })
    }

    /// The host's layout, detected once per process and then served from memory.
    ///
    /// Why: reading `/proc/self/mountinfo` costs ~0.3 ms on a host with many mounts (the
    /// kernel formats every mount of the namespace), and it was read twice on every container
    /// create and once per stats call. Forked processes (the shim zygote's shims and their
    /// runtime helpers) inherit the detected layout. Moving cgroup mounts while berth runs is
    /// not supported (dockerd detects once at start too); [`Layout::detect`] still reads afresh.
    pub fn host() -> Result<Layout> {
        static HOST: std::sync::OnceLock<Layout> = std::sync::OnceLock::new();
        if let Some(l) = HOST.get() {
            return Ok(l.clone());
        }
        let l = Layout::detect()?;
        Ok(HOST.get_or_init(|| l).clone())
    }

    /// Choose between v1 and v2; `controllers_of` returns a cgroup2 root's `cgroup.controllers`.
    pub fn choose(mounts: Mounts, controllers_of: impl Fn(&Path) -> String) -> Result<Layout> {
        for root in &mounts.v2 {
            let ctl = controllers_of(root);
            if ctl.split_whitespace().any(|c| c == "memory") {
                return Ok(Layout::V2 { root: root.clone() });
            }
        }
        let has_resource_v1 = mounts
            .v1
            .iter()
            .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
        if has_resource_v1 {
            return Ok(Layout::V1 {
                hierarchies: mounts.v1,
            });
        }
        if let Some(root) = mounts.v2.into_iter().next() {
            return Ok(Layout::V2 { root });
        }
        Err(CgroupError::NoHierarchy(
            "neither cgroup v1 controllers nor a cgroup2 filesystem are mounted; mount cgroup2 at /sys/fs/cgroup".into(),
        ))
    }

    /// "v1" or "v2".
    pub fn version(&self) -> &'static str {
        match self {
            Layout::V1 { .. } => "v1",
            Layout::V2 { .. } => "v2",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This CI host: v1 per controller, cpu and cpuacct apart, cgroup2 with only hugetlb.
    pub const HYBRID: &str = "\
23 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const PURE_V2: &str = "\
25 22 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const COMOUNTED: &str = "\
30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,xattr,cpu,cpuacct
31 25 0:27 / /sys/fs/cgroup/my\\040dir rw,nosuid shared:10 - cgroup cgroup rw,clone_children,memory
";

    #[test]
    fn this_host_hybrid_is_v1() {
        let m = Mounts::parse(HYBRID).unwrap();
        assert_eq!(m.v1.len(), 9);
        assert_eq!(m.v2, vec![PathBuf::from("/sys/fs/cgroup/unified")]);
        assert!(m.v1.iter().any(|h| h.controllers == ["name=systemd"]));
        let l = Layout::choose(m, |_| "hugetlb\n".into()).unwrap();
        let Layout::V1 { hierarchies } = l else {
            panic!("expected v1")
        };
        let cpu = hierarchies.iter().find(|h| h.has("cpu")).unwrap();
        assert_eq!(cpu.controllers, ["cpu"]);
        assert_eq!(cpu.mount, PathBuf::from("/sys/fs/cgroup/cpu"));
    }

    #[test]
    fn pure_v2_is_v2() {
        let m = Mounts::parse(PURE_V2).unwrap();
        let l =
            Layout::choose(m, |_| "cpuset cpu io memory hugetlb pids rdma misc".into()).unwrap();
        assert_eq!(
            l,
            Layout::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
    }

    #[test]
    fn v2_with_memory_wins_over_leftover_v1() {
        let text = format!(
            "{PURE_V2}40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
        );
        let l = Layout::choose(Mounts::parse(&text).unwrap(), |_| "memory pids".into()).unwrap();
        assert_eq!(l.version(), "v2");
    }

    #[test]
    fn bare_cgroup2_without_v1_is_v2() {
        let l = Layout::choose(Mounts::parse(PURE_V2).unwrap(), |_| String::new()).unwrap();
        assert_eq!(l.version(), "v2");
    }

    #[test]
    fn comounted_and_escaped_mounts() {
        let m = Mounts::parse(COMOUNTED).unwrap();
        assert_eq!(m.v1[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(m.v1[0].key(), "cpu,cpuacct");
        assert_eq!(m.v1[1].mount, PathBuf::from("/sys/fs/cgroup/my dir"));
        assert_eq!(m.v1[1].controllers, ["memory"]);
    }

    #[test]
    fn nothing_mounted_is_a_clear_error() {
        let err = Layout::choose(Mounts::default(), |_| String::new()).unwrap_err();
        assert!(err.to_string().contains("mount cgroup2"), "{err}");
    }
}
