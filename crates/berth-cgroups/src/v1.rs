//! The cgroup v1 manager: one directory per mounted hierarchy, all at the same relative path.
//!
//! Kernel quirks handled here (each observed on this project's CI host):
//! - **cpuset inheritance**: a new cpuset cgroup starts with empty `cpuset.cpus`/`cpuset.mems`
//!   and attaching a task then fails with `ENOSPC`. Every level we create (including
//!   intermediate parents like `/berth`) copies both from its parent.
//! - **memory vs memsw ordering**: the kernel requires `memory.limit_in_bytes <=
//!   memory.memsw.limit_in_bytes` at every moment, so raising both must write memsw first and
//!   lowering both must write memory first (the same order runc uses).
//! - **freezer**: writing `FROZEN` passes through `FREEZING`; we wait for the state to settle.
//!   A frozen task ignores SIGKILL until thawed, so callers kill, then thaw.
//! - **rmdir EBUSY**: right after the last task exits the kernel may still answer EBUSY; retry.
//! - `blkio.weight` exists only with the CFQ/BFQ schedulers (not with mq-deadline): set only if present.

use crate::error::{CgroupError, Result};
use crate::fsutil;
use crate::layout::V1Hierarchy;
use crate::manager::{CgroupManager, CgroupPath, CgroupStats, Resources};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Nanoseconds per `USER_HZ` tick (cpuacct.stat is in USER_HZ, which Linux fixes at 100 in the ABI).
fn ns_per_tick() -> u64 {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|v| *v > 0)
        .unwrap_or(100) as u64;
    1_000_000_000 / hz
}

/// A container's cgroups across every v1 hierarchy.
#[derive(Debug, Clone)]
pub struct V1Manager {
    path: CgroupPath,
    hierarchies: Vec<V1Hierarchy>,
}

impl V1Manager {
    pub fn new(hierarchies: Vec<V1Hierarchy>, path: CgroupPath) -> Result<V1Manager> {
        fsutil::check_rel(&path.0)?;
        if hierarchies.is_empty() {
            return Err(CgroupError::NoHierarchy(
                "no cgroup v1 hierarchy given; mount the v1 controllers under /sys/fs/cgroup"
                    .into(),
            ));
        }
        Ok(V1Manager { path, hierarchies })
    }

    fn dir_of(&self, h: &V1Hierarchy) -> PathBuf {
        h.mount.join(self.path.0.trim_start_matches('/'))
    }

    /// The container's directory in the hierarchy holding `controller`, if mounted.
    fn dir(&self, controller: &str) -> Option<PathBuf> {
        self.hierarchies
            .iter()
            .find(|h| h.has(controller))
            .map(|h| self.dir_of(h))
    }

    fn need(&self, controller: &'static str) -> Result<PathBuf> {
        self.dir(controller)
            .ok_or_else(|| CgroupError::ControllerMissing {
                controller,
                path: PathBuf::from("/proc/self/mountinfo"),
                available: self
                    .hierarchies
                    .iter()
                    .map(|h| h.key())
                    .collect::<Vec<_>>()
                    .join(" "),
            })
    }

    /// Copy `file` from the parent directory when empty here (cpuset inheritance), fixing
    /// empty parents below `mount` first: an earlier run may have died between a parent's
    /// mkdir and its copy, leaving an unusable empty cpuset.
    fn inherit_up(mount: &Path, dir: &Path, file: &str) -> Result<()> {
        let here = fsutil::read_opt(&dir.join(file))?.unwrap_or_default();
        if !here.trim().is_empty() {
            return Ok(());
        }
        let parent = dir.parent().expect("created dirs have a parent");
        if parent != mount {
            Self::inherit_up(mount, parent, file)?;
        }
        let value = fsutil::read(&parent.join(file))?;
        fsutil::write(&dir.join(file), &value)
    }

    fn set_memory(&self, r: &Resources) -> Result<()> {
        if r.memory_limit.is_none() && r.memory_reservation.is_none() && r.memory_swap.is_none() {
            return Ok(());
        }
        let dir = self.need("memory")?;
        let limit_f = dir.join("memory.limit_in_bytes");
        let memsw_f = dir.join("memory.memsw.limit_in_bytes");
        if let Some(m) = r.memory_limit {
            check_mem("memory", m)?;
        }
        if let Some(s) = r.memory_swap {
            check_mem("memory_swap", s)?;
            if let (Some(m), true) = (r.memory_limit, s > 0) {
                if m > 0 && s < m {
                    return Err(CgroupError::Invalid {
                        field: "memory_swap",
                        reason: format!(
                            "memory+swap limit {s} is smaller than the memory limit {m}; it must be at least the memory limit, or -1 for unlimited swap"
                        ),
                    });
                }
            }
        }
        // memsw exists only when the kernel accounts swap (swapaccount=1); without it the
        // swap limit cannot be enforced and is skipped, as Docker does (with a warning there).
        let swap = r.memory_swap.filter(|_| memsw_f.exists());
        match (r.memory_limit, swap) {
            (Some(m), Some(s)) => {
                let cur = fsutil::read_u64_or_zero(&limit_f)?;
                // Raising: memsw must grow first; lowering: memory must shrink first.
                if s == -1 || (cur as i128) < s as i128 {
                    fsutil::write(&memsw_f, &s.to_string())?;
                    fsutil::write(&limit_f, &m.to_string())?;
                } else {
                    fsutil::write(&limit_f, &m.to_string())?;
                    fsutil::write(&memsw_f, &s.to_string())?;
                }
            }
            (Some(m), None) => fsutil::write(&limit_f, &m.to_string())?,
            (None, Some(s)) => fsutil::write(&memsw_f, &s.to_string())?,
            (None, None) => {}
        }
        if let Some(res) = r.memory_reservation {
            check_mem("memory_reservation", res)?;
            fsutil::write(&dir.join("memory.soft_limit_in_bytes"), &res.to_string())?;
        }
        Ok(())
    }

    fn set_cpu(&self, r: &Resources) -> Result<()> {
        if r.cpu_shares.is_none() && r.cpu_quota.is_none() && r.cpu_period.is_none() {
            return Ok(());
        }
        let dir = self.need("cpu")?;
        if let Some(s) = r.cpu_shares {
            fsutil::write(&dir.join("cpu.shares"), &s.to_string())?;
        }
        // The period goes first: a quota is validated against the current period.
        if let Some(p) = r.cpu_period {
            fsutil::write(&dir.join("cpu.cfs_period_us"), &p.to_string())?;
        }
        if let Some(q) = r.cpu_quota {
            let q = if q <= 0 { -1 } else { q };
            fsutil::write(&dir.join("cpu.cfs_quota_us"), &q.to_string())?;
        }
        Ok(())
    }
}

fn check_mem(field: &'static str, v: i64) -> Result<()> {
    if v == -1 || v > 0 {
        Ok(())
    } else {
        Err(CgroupError::Invalid {
            field,
            reason: format!("{v} bytes; give a positive number of bytes or -1 for unlimited"),
        })
    }
}

/// Sum the `Read` and `Write` rows of a blkio `io_service_bytes` file.
pub(crate) fn parse_blkio_bytes(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 3 {
            let v = f[2].parse::<u64>().unwrap_or(0);
            match f[1] {
                "Read" => r += v,
                "Write" => w += v,
                _ => {}
            }
        }
    }
    (r, w)
}

impl CgroupManager for V1Manager {
    fn version(&self) -> &'static str {
        "v1"
    }

    fn create(&self) -> Result<()> {
        for h in &self.hierarchies {
            let cpuset = h.has("cpuset");
            let dirs = fsutil::descend(&h.mount, &self.path.0);
            for (i, dir) in dirs.iter().enumerate() {
                let created = fsutil::mkdir(dir)?;
                if cpuset && created && i + 1 < dirs.len() {
                    // A parent we make copies its cpuset into the cgroups made under it
                    // from now on: the leaf then needs no copy (4 cgroup file opens fewer
                    // per start). Best effort; the copy below covers it.
                    let _ = fsutil::write(&dir.join("cgroup.clone_children"), "1");
                }
            }
            if cpuset {
                if let Some(leaf) = dirs.last() {
                    Self::inherit_up(&h.mount, leaf, "cpuset.cpus")?;
                    Self::inherit_up(&h.mount, leaf, "cpuset.mems")?;
                }
            }
        }
        Ok(())
    }

    fn set(&self, r: &Resources) -> Result<()> {
        self.set_memory(r)?;
        self.set_cpu(r)?;
        if r.cpuset_cpus.is_some() || r.cpuset_mems.is_some() {
            let dir = self.need("cpuset")?;
            if let Some(c) = &r.cpuset_cpus {
                fsutil::write(&dir.join("cpuset.cpus"), c)?;
            }
            if let Some(m) = &r.cpuset_mems {
                fsutil::write(&dir.join("cpuset.mems"), m)?;
            }
        }
        if let Some(p) = r.pids_limit {
            let dir = self.need("pids")?;
            let v = if p <= 0 {
                "max".to_string()
            } else {
                p.to_string()
            };
            fsutil::write(&dir.join("pids.max"), &v)?;
        }
        if let Some(w) = r.blkio_weight {
            if !(10..=1000).contains(&w) {
                return Err(CgroupError::Invalid {
                    field: "blkio_weight",
                    reason: format!("{w} is outside 10..1000"),
                });
            }
            if let Some(dir) = self.dir("blkio") {
                for f in ["blkio.weight", "blkio.bfq.weight"] {
                    if dir.join(f).exists() {
                        fsutil::write(&dir.join(f), &w.to_string())?;
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        for h in &self.hierarchies {
            fsutil::write(&self.dir_of(h).join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// `0` into `tasks`, not `cgroup.procs`: a single-thread move of `current` skips the
    /// global `cgroup_threadgroup_rwsem` write lock, whose first taking after a quiet spell
    /// waits for an RCU grace period (11-15 ms measured here, for `cgroup.procs` whether the
    /// pid is our own or not). Moves the whole process only when it is single-threaded.
    fn join_self(&self) -> Result<()> {
        for h in &self.hierarchies {
            fsutil::write(&self.dir_of(h).join("tasks"), "0")?;
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        // Every hierarchy holds the same tasks; prefer pids/memory, else the first one.
        let dir = self
            .dir("pids")
            .or_else(|| self.dir("memory"))
            .unwrap_or_else(|| self.dir_of(&self.hierarchies[0]));
        fsutil::read_pids(&dir.join("cgroup.procs"))
    }

    fn stats(&self) -> Result<CgroupStats> {
        let mut s = CgroupStats::default();
        if let Some(d) = self.dir("cpuacct") {
            s.cpu_total_ns = fsutil::read_u64_or_zero(&d.join("cpuacct.usage"))?;
            if let Some(t) = fsutil::read_opt(&d.join("cpuacct.usage_percpu"))? {
                s.cpu_percpu_ns = t
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
            }
            if let Some(t) = fsutil::read_opt(&d.join("cpuacct.stat"))? {
                let tick = ns_per_tick();
                s.cpu_user_ns = fsutil::keyed(&t, "user").unwrap_or(0) * tick;
                s.cpu_system_ns = fsutil::keyed(&t, "system").unwrap_or(0) * tick;
            }
        }
        if let Some(d) = self.dir("cpu") {
            if let Some(t) = fsutil::read_opt(&d.join("cpu.stat"))? {
                s.cpu_periods = fsutil::keyed(&t, "nr_periods").unwrap_or(0);
                s.cpu_throttled_periods = fsutil::keyed(&t, "nr_throttled").unwrap_or(0);
                s.cpu_throttled_time_ns = fsutil::keyed(&t, "throttled_time").unwrap_or(0);
            }
        }
        if let Some(d) = self.dir("memory") {
            s.memory_usage = fsutil::read_u64_or_zero(&d.join("memory.usage_in_bytes"))?;
            s.memory_max_usage = fsutil::read_u64_or_zero(&d.join("memory.max_usage_in_bytes"))?;
            let limit = fsutil::read_u64_or_zero(&d.join("memory.limit_in_bytes"))?;
            let total = fsutil::host_mem_total();
            // "Unlimited" reads as a huge page-aligned number (9223372036854771712).
            s.memory_limit = if limit == 0 || limit > total {
                total
            } else {
                limit
            };
            if let Some(t) = fsutil::read_opt(&d.join("memory.stat"))? {
                s.memory_stat = fsutil::parse_flat_keyed(&t).into_iter().collect();
                s.memory_inactive_file = s
                    .memory_stat
                    .get("total_inactive_file")
                    .or_else(|| s.memory_stat.get("inactive_file"))
                    .copied()
                    .unwrap_or(0);
            }
            if let Some(t) = fsutil::read_opt(&d.join("memory.oom_control"))? {
                s.memory_oom_kills = fsutil::keyed(&t, "oom_kill").unwrap_or(0);
            }
        }
        if let Some(d) = self.dir("pids") {
            s.pids_current = fsutil::read_u64_or_zero(&d.join("pids.current"))?;
            if let Some(t) = fsutil::read_opt(&d.join("pids.max"))? {
                s.pids_limit = fsutil::parse_u64_or_max(&d.join("pids.max"), &t)?;
            }
        }
        if let Some(d) = self.dir("blkio") {
            let text = match fsutil::read_opt(&d.join("blkio.throttle.io_service_bytes"))? {
                Some(t) => Some(t),
                None => fsutil::read_opt(&d.join("blkio.io_service_bytes"))?,
            };
            if let Some(t) = text {
                (s.blkio_read_bytes, s.blkio_write_bytes) = parse_blkio_bytes(&t);
            }
        }
        Ok(s)
    }

    fn freeze(&self) -> Result<()> {
        let f = self.need("freezer")?.join("freezer.state");
        // The write can return before all tasks stopped (FREEZING); re-request until FROZEN.
        let ok = fsutil::wait_until(Duration::from_secs(5), || {
            fsutil::write(&f, "FROZEN")?;
            Ok(fsutil::read(&f)? == "FROZEN")
        })?;
        if ok {
            Ok(())
        } else {
            // Leave it thawed rather than half-frozen.
            let _ = fsutil::write(&f, "THAWED");
            Err(CgroupError::FreezeTimeout {
                path: f,
                state: "FROZEN",
            })
        }
    }

    fn thaw(&self) -> Result<()> {
        let f = self.need("freezer")?.join("freezer.state");
        let ok = fsutil::wait_until(Duration::from_secs(5), || {
            fsutil::write(&f, "THAWED")?;
            Ok(fsutil::read(&f)? == "THAWED")
        })?;
        if ok {
            Ok(())
        } else {
            Err(CgroupError::FreezeTimeout {
                path: f,
                state: "THAWED",
            })
        }
    }

    fn is_frozen(&self) -> Result<bool> {
        let f = self.need("freezer")?.join("freezer.state");
        Ok(fsutil::read_opt(&f)?.as_deref() == Some("FROZEN"))
    }

    fn destroy(&self) -> Result<()> {
        let mut first_err = None;
        for h in &self.hierarchies {
            if let Err(e) = fsutil::rmdir_retry(&self.dir_of(h)) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn paths(&self) -> Vec<(String, PathBuf)> {
        self.hierarchies
            .iter()
            .map(|h| (h.key(), self.dir_of(h)))
            .collect()
    }
}
