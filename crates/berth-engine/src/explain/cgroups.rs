//! cgroups: what the process may use.
//!
//! A cgroup is a directory in a cgroup filesystem; writing a PID to its `cgroup.procs`
//! puts the process under the limits written in the directory's files. With cgroup v1
//! every controller (memory, cpu, pids, ...) has its own hierarchy, so a container is in
//! one directory per hierarchy; with v2 there is one unified directory. The kernel tells
//! which with `/proc/<pid>/cgroup` (`ID:controllers:path`); the limits and the live usage
//! are plain files in each directory, read here as they are.

use super::{read_proc, ExplainError};
use crate::record::ContainerRecord;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CgroupFacts {
    /// `v1` or `v2`.
    pub version: String,
    /// The path berth chose (relative to each hierarchy root).
    pub path: String,
    pub hierarchies: Vec<CgroupHierarchy>,
    /// Each limit with the live usage beside it.
    pub limits: Vec<CgroupLimit>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CgroupHierarchy {
    /// Controllers of the hierarchy (`memory`, `cpu,cpuacct`, `name=systemd`) or `unified`.
    pub controllers: String,
    /// The process's path in it, as `/proc/<pid>/cgroup` says.
    pub path: String,
    /// The directory on the host.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CgroupLimit {
    /// `memory`, `cpu`, `pids`, `cpuset`.
    pub controller: String,
    /// What it limits, in words.
    pub what: String,
    /// The file holding the limit and its raw content.
    pub file: PathBuf,
    pub value: String,
    /// Whether a limit is set (not the kernel's "unlimited"/inherited default).
    pub set: bool,
    /// The limit for people (`64 MiB`, `0.50 CPUs`, `unlimited`).
    pub human: String,
    /// The file with the live usage and its raw content (empty when there is none).
    pub usage_file: Option<PathBuf>,
    pub usage: String,
    pub usage_human: String,
}

pub(crate) fn collect(rec: &ContainerRecord) -> Result<CgroupFacts, ExplainError> {
    let pid = rec.state.pid;
    let proc_cgroup = read_proc(pid, "cgroup")?;
    let mgr =
        berth_cgroups::open(berth_cgroups::CgroupPath(rec.cgroup_path.clone())).map_err(|e| {
            ExplainError::Read {
                path: rec.cgroup_path.clone(),
                source: std::io::Error::other(e.to_string()),
            }
        })?;
    let version = mgr.version().to_string();
    let mut hierarchies = Vec::new();
    for (key, dir) in mgr.paths() {
        let path = kernel_path(&proc_cgroup, &key).unwrap_or_default();
        hierarchies.push(CgroupHierarchy {
            controllers: key,
            path,
            dir,
        });
    }
    let dir_of = |controller: &str| -> Option<PathBuf> {
        hierarchies
            .iter()
            .find(|h| {
                h.controllers == "unified" || h.controllers.split(',').any(|c| c == controller)
            })
            .map(|h| h.dir.clone())
    };
    let limits = if version == "v2" {
        v2_limits(&dir_of)
    } else {
        v1_limits(&dir_of)
    };
    Ok(CgroupFacts {
        version,
        path: rec.cgroup_path.clone(),
        hierarchies,
        limits,
    })
}

/// The path of the hierarchy with `controllers` (`memory`, `cpu,cpuacct`, `unified`) in a
/// `/proc/<pid>/cgroup` text.
pub fn kernel_path(proc_cgroup: &str, controllers: &str) -> Option<String> {
    let want: Vec<&str> = if controllers == "unified" {
        vec![]
    } else {
        controllers.split(',').collect()
    };
    proc_cgroup.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        let mut have: Vec<&str> = ctrls.split(',').filter(|c| !c.is_empty()).collect();
        let mut w = want.clone();
        have.sort_unstable();
        w.sort_unstable();
        (have == w).then(|| path.to_string())
    })
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

struct Probe<'a> {
    controller: &'a str,
    what: &'a str,
    file: &'a str,
    usage: Option<(&'a str, &'a str)>,
    unlimited: fn(&str) -> bool,
    human: fn(&str) -> String,
}

/// `pids.max` reads the same on v1 and v2.
const PIDS: Probe<'static> = Probe {
    controller: "pids",
    what: "max tasks",
    file: "pids.max",
    usage: Some(("pids", "pids.current")),
    unlimited: |v| v == "max",
    human: |v| {
        if v == "max" {
            "unlimited".into()
        } else {
            format!("{v} tasks")
        }
    },
};

fn probe(dir_of: &dyn Fn(&str) -> Option<PathBuf>, p: &Probe<'_>) -> Option<CgroupLimit> {
    let dir = dir_of(p.controller)?;
    let file = dir.join(p.file);
    if !file.exists() {
        return None;
    }
    let value = read(&file);
    let (usage_file, usage, usage_human) = match p.usage {
        Some((uctrl, ufile)) => match dir_of(uctrl).map(|d| d.join(ufile)) {
            Some(f) if f.exists() => {
                let u = read(&f);
                let h = usage_human(ufile, &u);
                (Some(f), u, h)
            }
            _ => (None, String::new(), String::new()),
        },
        None => (None, String::new(), String::new()),
    };
    Some(CgroupLimit {
        controller: p.controller.to_string(),
        what: p.what.to_string(),
        set: !(p.unlimited)(&value),
        human: (p.human)(&value),
        file,
        value,
        usage_file,
        usage,
        usage_human,
    })
}

fn usage_human(file: &str, v: &str) -> String {
    if file.contains("usage_in_bytes") || file == "memory.current" {
        return v.parse().map(bytes_human).unwrap_or_default();
    }
    if file == "cpuacct.usage" {
        return v
            .parse::<u64>()
            .map(|ns| format!("{:.3} s of CPU time", ns as f64 / 1e9))
            .unwrap_or_default();
    }
    if file == "cpu.stat" {
        // v2: `usage_usec N` on the first line.
        return v
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|x| x.trim().parse::<u64>().ok())
            .map(|us| format!("{:.3} s of CPU time", us as f64 / 1e6))
            .unwrap_or_default();
    }
    if file == "pids.current" {
        return format!("{v} tasks");
    }
    v.to_string()
}

/// 1 GiB / 64 MiB / 512 KiB / 100 B.
pub fn bytes_human(b: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (u, n) in UNITS {
        if b >= n {
            let v = b as f64 / n as f64;
            return if v.fract() == 0.0 {
                format!("{} {u}", v as u64)
            } else {
                format!("{v:.1} {u}")
            };
        }
    }
    format!("{b} B")
}

/// v1 says "unlimited" with a huge page-aligned number (≥ 2^62).
fn v1_mem_unlimited(v: &str) -> bool {
    v.parse::<u64>().map(|n| n >= 1 << 62).unwrap_or(true)
}

fn v1_limits(dir_of: &dyn Fn(&str) -> Option<PathBuf>) -> Vec<CgroupLimit> {
    let probes = [
        Probe {
            controller: "memory",
            what: "memory limit",
            file: "memory.limit_in_bytes",
            usage: Some(("memory", "memory.usage_in_bytes")),
            unlimited: v1_mem_unlimited,
            human: |v| {
                if v1_mem_unlimited(v) {
                    "unlimited".into()
                } else {
                    v.parse().map(bytes_human).unwrap_or_default()
                }
            },
        },
        Probe {
            controller: "memory",
            what: "memory + swap limit",
            file: "memory.memsw.limit_in_bytes",
            usage: Some(("memory", "memory.memsw.usage_in_bytes")),
            unlimited: v1_mem_unlimited,
            human: |v| {
                if v1_mem_unlimited(v) {
                    "unlimited".into()
                } else {
                    v.parse().map(bytes_human).unwrap_or_default()
                }
            },
        },
        Probe {
            controller: "cpu",
            what: "CPU quota per period (µs)",
            file: "cpu.cfs_quota_us",
            usage: Some(("cpuacct", "cpuacct.usage")),
            unlimited: |v| v == "-1",
            human: |v| {
                if v == "-1" {
                    "unlimited".into()
                } else {
                    format!("{v} µs")
                }
            },
        },
        Probe {
            controller: "cpu",
            what: "CPU period (µs)",
            file: "cpu.cfs_period_us",
            usage: None,
            unlimited: |_| false,
            human: |v| format!("{v} µs"),
        },
        Probe {
            controller: "cpu",
            what: "CPU shares (relative weight)",
            file: "cpu.shares",
            usage: None,
            unlimited: |v| v == "1024",
            human: |v| v.to_string(),
        },
        PIDS,
        Probe {
            controller: "cpuset",
            what: "CPUs allowed",
            file: "cpuset.cpus",
            usage: None,
            unlimited: |_| false,
            human: |v| format!("CPUs {v}"),
        },
        Probe {
            controller: "cpuset",
            what: "memory nodes allowed",
            file: "cpuset.mems",
            usage: None,
            unlimited: |_| false,
            human: |v| format!("nodes {v}"),
        },
    ];
    let mut out: Vec<CgroupLimit> = probes.iter().filter_map(|p| probe(dir_of, p)).collect();
    add_cpus(&mut out, "cpu.cfs_quota_us", "cpu.cfs_period_us");
    out
}

fn v2_limits(dir_of: &dyn Fn(&str) -> Option<PathBuf>) -> Vec<CgroupLimit> {
    let probes = [
        Probe {
            controller: "memory",
            what: "memory limit",
            file: "memory.max",
            usage: Some(("memory", "memory.current")),
            unlimited: |v| v == "max",
            human: |v| {
                if v == "max" {
                    "unlimited".into()
                } else {
                    v.parse().map(bytes_human).unwrap_or_default()
                }
            },
        },
        Probe {
            controller: "cpu",
            what: "CPU quota and period (µs)",
            file: "cpu.max",
            usage: Some(("cpu", "cpu.stat")),
            unlimited: |v| v.starts_with("max"),
            human: |v| match v.split_once(' ') {
                Some((q, p)) if q != "max" => {
                    let cpus = q.parse::<f64>().unwrap_or(0.0) / p.parse::<f64>().unwrap_or(1.0);
                    format!("{cpus:.2} CPUs")
                }
                _ => "unlimited".into(),
            },
        },
        Probe {
            controller: "cpu",
            what: "CPU weight",
            file: "cpu.weight",
            usage: None,
            unlimited: |v| v == "100",
            human: |v| v.to_string(),
        },
        PIDS,
        Probe {
            controller: "cpuset",
            what: "CPUs allowed",
            file: "cpuset.cpus.effective",
            usage: None,
            unlimited: |_| false,
            human: |v| format!("CPUs {v}"),
        },
    ];
    probes.iter().filter_map(|p| probe(dir_of, p)).collect()
}

/// v1: say `0.50 CPUs` on the quota line (quota / period), as `--cpus` said it.
fn add_cpus(out: &mut [CgroupLimit], quota: &str, period: &str) {
    let val = |name: &str| {
        out.iter()
            .find(|l| l.file.file_name().is_some_and(|f| f == name))
            .map(|l| l.value.clone())
    };
    if let (Some(q), Some(p)) = (val(quota), val(period)) {
        if let (Ok(q), Ok(p)) = (q.parse::<i64>(), p.parse::<i64>()) {
            if q > 0 && p > 0 {
                if let Some(l) = out
                    .iter_mut()
                    .find(|l| l.file.file_name().is_some_and(|f| f == quota))
                {
                    l.human = format!("{q} µs per {p} µs = {:.2} CPUs", q as f64 / p as f64);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC: &str = "10:hugetlb:/\n8:pids:/x/id\n2:cpuacct:/x/id\n1:cpu:/x/id\n9:name=systemd:/x/id\n0::/\n3:cpu,cpuacct:/y\n";

    #[test]
    fn kernel_paths() {
        assert_eq!(kernel_path(PROC, "pids").as_deref(), Some("/x/id"));
        assert_eq!(kernel_path(PROC, "name=systemd").as_deref(), Some("/x/id"));
        assert_eq!(kernel_path(PROC, "unified").as_deref(), Some("/"));
        assert_eq!(kernel_path(PROC, "cpuacct,cpu").as_deref(), Some("/y"));
        assert_eq!(kernel_path(PROC, "memory"), None);
    }

    #[test]
    fn humans() {
        assert_eq!(bytes_human(64 << 20), "64 MiB");
        assert_eq!(bytes_human(1536), "1.5 KiB");
        assert_eq!(bytes_human(12), "12 B");
        assert!(v1_mem_unlimited("9223372036854771712"));
        assert!(!v1_mem_unlimited("67108864"));
    }

    #[test]
    fn limits_from_files() {
        let d = tempfile::tempdir().unwrap();
        for (f, v) in [
            ("memory.limit_in_bytes", "67108864\n"),
            ("memory.usage_in_bytes", "1048576\n"),
            ("cpu.cfs_quota_us", "50000\n"),
            ("cpu.cfs_period_us", "100000\n"),
            ("pids.max", "max\n"),
            ("pids.current", "1\n"),
        ] {
            std::fs::write(d.path().join(f), v).unwrap();
        }
        let p = d.path().to_path_buf();
        let l = v1_limits(&|_| Some(p.clone()));
        let mem = l.iter().find(|l| l.what == "memory limit").unwrap();
        assert!(mem.set);
        assert_eq!(mem.human, "64 MiB");
        assert_eq!(mem.usage_human, "1 MiB");
        let cpu = l
            .iter()
            .find(|l| l.file.ends_with("cpu.cfs_quota_us"))
            .unwrap();
        assert!(cpu.human.ends_with("0.50 CPUs"), "{}", cpu.human);
        let pids = l.iter().find(|l| l.controller == "pids").unwrap();
        assert!(!pids.set);
        assert_eq!(pids.usage, "1");
    }
}
