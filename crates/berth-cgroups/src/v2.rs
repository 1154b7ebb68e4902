//! The cgroup v2 manager: one directory in the unified hierarchy.
//!
//! Controllers must be enabled top-down: a cgroup can use `memory` only if its parent lists
//! `memory` in `cgroup.subtree_control`, which requires the grandparent to, and so on. `create`
//! enables what each level offers (of cpu, memory, pids, cpuset, io). The "no internal
//! processes" rule means a parent with processes cannot enable controllers for its children,
//! which is why containers live in leaf cgroups under a process-free parent like `/berth`.
//!
//! Docker → v2 conversions: `memory.swap.max = memory_swap - memory` (Docker's swap value is the
//! total); `cpu.weight = 1 + ((shares - 2) * 9999) / 262142` (runc's and crun's formula);
//! `io.weight = 1 + ((blkio_weight - 10) * 9999) / 990`.

use crate::error::{CgroupError, Result};
use crate::fsutil;
use crate::manager::{CgroupManager, CgroupPath, CgroupStats, Resources};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Controllers berth enables for containers, where the hierarchy offers them.
const WANTED: &[&str] = &["cpu", "memory", "pids", "cpuset", "io"];

/// Docker's `--cpu-shares` (2..262144) to cgroup2's `cpu.weight` (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    let s = shares.clamp(2, 262144);
    1 + ((s - 2) * 9999) / 262142
}

/// Docker's blkio weight (10..1000) to cgroup2's `io.weight` (1..10000).
pub fn blkio_to_io_weight(w: u16) -> u64 {
    let w = u64::from(w.clamp(10, 1000));
    1 + ((w - 10) * 9999) / 990
}

/// A container's cgroup in the unified hierarchy.
#[derive(Debug, Clone)]
pub struct V2Manager {
    root: PathBuf,
    path: CgroupPath,
}

impl V2Manager {
    pub fn new(root: PathBuf, path: CgroupPath) -> Result<V2Manager> {
        fsutil::check_rel(&path.0)?;
        Ok(V2Manager { root, path })
    }

    fn dir(&self) -> PathBuf {
        self.root.join(self.path.0.trim_start_matches('/'))
    }

    /// Controllers usable in the container's cgroup (its `cgroup.controllers`).
    fn available(&self) -> Result<String> {
        Ok(fsutil::read_opt(&self.dir().join("cgroup.controllers"))?.unwrap_or_default())
    }

    fn need(&self, controller: &'static str) -> Result<()> {
        let avail = self.available()?;
        if avail.split_whitespace().any(|c| c == controller) {
            Ok(())
        } else {
            Err(CgroupError::ControllerMissing {
                controller,
                path: self.dir(),
                available: avail,
            })
        }
    }

    fn w(&self, file: &str, value: &str) -> Result<()> {
        fsutil::write(&self.dir().join(file), value)
    }

    /// Enable the wanted controllers that `dir` offers in its `cgroup.subtree_control`.
    fn enable_subtree(dir: &Path) -> Result<()> {
        let offered = fsutil::read_opt(&dir.join("cgroup.controllers"))?.unwrap_or_default();
        let enabled = fsutil::read_opt(&dir.join("cgroup.subtree_control"))?.unwrap_or_default();
        let missing: Vec<String> = WANTED
            .iter()
            .filter(|c| offered.split_whitespace().any(|o| o == **c))
            .filter(|c| !enabled.split_whitespace().any(|o| o == **c))
            .map(|c| format!("+{c}"))
            .collect();
        if !missing.is_empty() {
            // One write: only offered controllers are asked for, so it cannot fail for one
            // of them being absent.
            fsutil::write(&dir.join("cgroup.subtree_control"), &missing.join(" "))?;
        }
        Ok(())
    }

    fn set_memory(&self, r: &Resources) -> Result<()> {
        if r.memory_limit.is_none() && r.memory_reservation.is_none() && r.memory_swap.is_none() {
            return Ok(());
        }
        self.need("memory")?;
        let max = |v: i64| {
            if v < 0 {
                "max".to_string()
            } else {
                v.to_string()
            }
        };
        if let Some(m) = r.memory_limit {
            if m == 0 || m < -1 {
                return Err(CgroupError::Invalid {
                    field: "memory",
                    reason: format!("{m} bytes; give a positive number of bytes or -1"),
                });
            }
        }
        // swap.max before memory.max is fine in v2 (the two are independent limits).
        if let Some(s) = r.memory_swap {
            let swap = match (s, r.memory_limit) {
                (-1, _) => "max".to_string(),
                (s, Some(m)) if m > 0 => {
                    if s < m {
                        return Err(CgroupError::Invalid {
                            field: "memory_swap",
                            reason: format!("memory+swap limit {s} is smaller than the memory limit {m}; it must be at least the memory limit, or -1"),
                        });
                    }
                    (s - m).to_string()
                }
                (s, _) => {
                    return Err(CgroupError::Invalid {
                        field: "memory_swap",
                        reason: format!("memory+swap limit {s} needs a memory limit too (Docker semantics: it is the total)"),
                    })
                }
            };
            let f = self.dir().join("memory.swap.max");
            if f.exists() {
                fsutil::write(&f, &swap)?;
            }
        }
        if let Some(m) = r.memory_limit {
            self.w("memory.max", &max(m))?;
        }
        if let Some(res) = r.memory_reservation {
            self.w("memory.low", &max(res))?;
        }
        Ok(())
    }

    fn set_cpu(&self, r: &Resources) -> Result<()> {
        if r.cpu_shares.is_none() && r.cpu_quota.is_none() && r.cpu_period.is_none() {
            return Ok(());
        }
        self.need("cpu")?;
        if let Some(s) = r.cpu_shares {
            self.w("cpu.weight", &shares_to_weight(s).to_string())?;
        }
        if r.cpu_quota.is_some() || r.cpu_period.is_some() {
            let quota = match r.cpu_quota {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".to_string(),
            };
            let period = r.cpu_period.unwrap_or(100_000);
            self.w("cpu.max", &format!("{quota} {period}"))?;
        }
        Ok(())
    }

    fn wait_frozen(&self, want: bool) -> Result<bool> {
        let events = self.dir().join("cgroup.events");
        fsutil::wait_until(Duration::from_secs(5), || {
            let t = fsutil::read(&events)?;
            Ok(fsutil::keyed(&t, "frozen") == Some(u64::from(want)))
        })
    }
}

/// Sum `rbytes=` and `wbytes=` over the devices of an `io.stat` file.
pub(crate) fn parse_io_stat(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for tok in text.split_whitespace() {
        if let Some(v) = tok.strip_prefix("rbytes=") {
            r += v.parse::<u64>().unwrap_or(0);
        } else if let Some(v) = tok.strip_prefix("wbytes=") {
            w += v.parse::<u64>().unwrap_or(0);
        }
    }
    (r, w)
}

impl CgroupManager for V2Manager {
    fn version(&self) -> &'static str {
        "v2"
    }

    fn create(&self) -> Result<()> {
        let dirs = fsutil::descend(&self.root, &self.path.0);
        let mut parent = self.root.clone();
        for dir in dirs {
            Self::enable_subtree(&parent)?;
            fsutil::mkdir(&dir)?;
            parent = dir;
        }
        Ok(())
    }

    fn set(&self, r: &Resources) -> Result<()> {
        self.set_memory(r)?;
        self.set_cpu(r)?;
        if r.cpuset_cpus.is_some() || r.cpuset_mems.is_some() {
            self.need("cpuset")?;
            if let Some(c) = &r.cpuset_cpus {
                self.w("cpuset.cpus", c)?;
            }
            if let Some(m) = &r.cpuset_mems {
                self.w("cpuset.mems", m)?;
            }
        }
        if let Some(p) = r.pids_limit {
            self.need("pids")?;
            let v = if p <= 0 {
                "max".to_string()
            } else {
                p.to_string()
            };
            self.w("pids.max", &v)?;
        }
        if let Some(bw) = r.blkio_weight {
            if !(10..=1000).contains(&bw) {
                return Err(CgroupError::Invalid {
                    field: "blkio_weight",
                    reason: format!("{bw} is outside 10..1000"),
                });
            }
            // io.weight needs an IO scheduler with weights (BFQ); skip where absent, like v1.
            let f = self.dir().join("io.weight");
            if f.exists() {
                fsutil::write(&f, &format!("default {}", blkio_to_io_weight(bw)))?;
            }
        }
        Ok(())
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        self.w("cgroup.procs", &pid.to_string())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        fsutil::read_pids(&self.dir().join("cgroup.procs"))
    }

    fn stats(&self) -> Result<CgroupStats> {
        let d = self.dir();
        let mut s = CgroupStats::default();
        if let Some(t) = fsutil::read_opt(&d.join("cpu.stat"))? {
            s.cpu_total_ns = fsutil::keyed(&t, "usage_usec").unwrap_or(0) * 1000;
            s.cpu_user_ns = fsutil::keyed(&t, "user_usec").unwrap_or(0) * 1000;
            s.cpu_system_ns = fsutil::keyed(&t, "system_usec").unwrap_or(0) * 1000;
            s.cpu_periods = fsutil::keyed(&t, "nr_periods").unwrap_or(0);
            s.cpu_throttled_periods = fsutil::keyed(&t, "nr_throttled").unwrap_or(0);
            s.cpu_throttled_time_ns = fsutil::keyed(&t, "throttled_usec").unwrap_or(0) * 1000;
        }
        s.memory_usage = fsutil::read_u64_or_zero(&d.join("memory.current"))?;
        s.memory_max_usage = fsutil::read_u64_or_zero(&d.join("memory.peak"))?;
        let total = fsutil::host_mem_total();
        s.memory_limit = match fsutil::read_opt(&d.join("memory.max"))? {
            Some(t) => match fsutil::parse_u64_or_max(&d.join("memory.max"), &t)? {
                Some(v) if v <= total => v,
                _ => total,
            },
            None => total,
        };
        if let Some(t) = fsutil::read_opt(&d.join("memory.stat"))? {
            s.memory_stat = fsutil::parse_flat_keyed(&t).into_iter().collect();
            s.memory_inactive_file = s.memory_stat.get("inactive_file").copied().unwrap_or(0);
        }
        if let Some(t) = fsutil::read_opt(&d.join("memory.events"))? {
            s.memory_oom_kills = fsutil::keyed(&t, "oom_kill").unwrap_or(0);
        }
        s.pids_current = fsutil::read_u64_or_zero(&d.join("pids.current"))?;
        if let Some(t) = fsutil::read_opt(&d.join("pids.max"))? {
            s.pids_limit = fsutil::parse_u64_or_max(&d.join("pids.max"), &t)?;
        }
        if let Some(t) = fsutil::read_opt(&d.join("io.stat"))? {
            (s.blkio_read_bytes, s.blkio_write_bytes) = parse_io_stat(&t);
        }
        Ok(s)
    }

    fn freeze(&self) -> Result<()> {
        self.w("cgroup.freeze", "1")?;
        if self.wait_frozen(true)? {
            Ok(())
        } else {
            let _ = self.w("cgroup.freeze", "0");
            Err(CgroupError::FreezeTimeout {
                path: self.dir(),
                state: "frozen",
            })
        }
    }

    fn thaw(&self) -> Result<()> {
        self.w("cgroup.freeze", "0")?;
        if self.wait_frozen(false)? {
            Ok(())
        } else {
            Err(CgroupError::FreezeTimeout {
                path: self.dir(),
                state: "thawed",
            })
        }
    }

    fn is_frozen(&self) -> Result<bool> {
        let t = fsutil::read_opt(&self.dir().join("cgroup.events"))?.unwrap_or_default();
        Ok(fsutil::keyed(&t, "frozen") == Some(1))
    }

    fn destroy(&self) -> Result<()> {
        fsutil::rmdir_retry(&self.dir())
    }

    fn paths(&self) -> Vec<(String, PathBuf)> {
        vec![("unified".to_string(), self.dir())]
    }
}
