//! The [`CgroupManager`] contract and the value types it speaks: what a container's cgroup
//! can do, independent of v1 or v2.

use crate::error::Result;
use std::path::PathBuf;

/// Path of a container's cgroup relative to each hierarchy root (always starts with `/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CgroupPath(pub String);

/// Limits berth applies. `None` leaves the kernel default (unlimited / inherited).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Hard memory limit in bytes (`memory.limit_in_bytes` / `memory.max`).
    pub memory_limit: Option<i64>,
    /// Soft limit in bytes (`memory.soft_limit_in_bytes` / `memory.low`).
    pub memory_reservation: Option<i64>,
    /// Memory + swap limit in bytes, Docker semantics (`-1` = unlimited swap).
    pub memory_swap: Option<i64>,
    /// Relative CPU weight, Docker's `--cpu-shares` scale (2..262144, default 1024).
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per period (`-1` = unlimited).
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds (default 100000).
    pub cpu_period: Option<u64>,
    /// cpuset CPU list, e.g. `0-1`.
    pub cpuset_cpus: Option<String>,
    /// cpuset memory node list, e.g. `0`.
    pub cpuset_mems: Option<String>,
    /// Max number of tasks (`-1` or `None` = unlimited).
    pub pids_limit: Option<i64>,
    /// Block IO weight 10..1000, where the kernel offers it.
    pub blkio_weight: Option<u16>,
}

/// Raw counters of one container's cgroup, enough to build Docker's stats reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CgroupStats {
    /// Total CPU time in nanoseconds.
    pub cpu_total_ns: u64,
    /// Per-CPU time in nanoseconds (empty where the kernel does not report it, e.g. v2).
    pub cpu_percpu_ns: Vec<u64>,
    /// CPU time in user mode, nanoseconds.
    pub cpu_user_ns: u64,
    /// CPU time in kernel mode, nanoseconds.
    pub cpu_system_ns: u64,
    pub cpu_throttled_periods: u64,
    pub cpu_periods: u64,
    pub cpu_throttled_time_ns: u64,
    /// Memory usage in bytes as the kernel counts it (includes page cache).
    pub memory_usage: u64,
    /// Peak usage where known.
    pub memory_max_usage: u64,
    /// The effective limit in bytes (host memory when unlimited).
    pub memory_limit: u64,
    /// Page cache: v1 `total_inactive_file`, v2 `inactive_file` — subtracted for the working set.
    pub memory_inactive_file: u64,
    /// Number of OOM kills in this cgroup.
    pub memory_oom_kills: u64,
    /// Memory controller's raw `memory.stat` key/values (Docker passes them through).
    pub memory_stat: std::collections::BTreeMap<String, u64>,
    pub pids_current: u64,
    pub pids_limit: Option<u64>,
    /// Bytes read / written per block device, summed.
    pub blkio_read_bytes: u64,
    pub blkio_write_bytes: u64,
}

impl CgroupStats {
    /// Docker's "working set": usage minus inactive page cache (what `docker stats` shows).
    pub fn memory_working_set(&self) -> u64 {
        self.memory_usage.saturating_sub(self.memory_inactive_file)
    }
}

/// One container's cgroup(s). Implemented by the v1 and v2 managers.
pub trait CgroupManager: Send + Sync + std::fmt::Debug {
    /// Which layout backs this manager (`"v1"` or `"v2"`).
    fn version(&self) -> &'static str;
    /// Create the cgroup directories (idempotent).
    fn create(&self) -> Result<()>;
    /// Write resource limits.
    fn set(&self, resources: &Resources) -> Result<()>;
    /// Move a process (and with it its future children) into the cgroup.
    fn add_task(&self, pid: i32) -> Result<()>;
    /// Move the *calling* process, which must be single-threaded (e.g. a freshly forked
    /// helper), into the cgroup: `0` into every hierarchy's `tasks` on v1 (a thread move of
    /// oneself skips the lock whose first taking waits for an RCU grace period, 11-15 ms
    /// measured, where [`add_task`](Self::add_task) and any `cgroup.procs` write take it),
    /// `0` into `cgroup.procs` on v2. Call it in a helper *before* it forks the real process,
    /// so that process is born inside; the helper counts towards `pids.max` until it exits.
    /// On v1 the cpuset's cpus/mems must already be set ([`create`](Self::create) does that).
    fn join_self(&self) -> Result<()> {
        for (_, dir) in self.paths() {
            let procs = dir.join("cgroup.procs");
            std::fs::write(&procs, "0").map_err(|e| crate::CgroupError::io(&procs, e))?;
        }
        Ok(())
    }
    /// PIDs currently in the cgroup.
    fn pids(&self) -> Result<Vec<i32>>;
    /// Read counters.
    fn stats(&self) -> Result<CgroupStats>;
    /// Freeze every task (pause). v1 freezer: a frozen task ignores SIGKILL until thawed.
    fn freeze(&self) -> Result<()>;
    /// Thaw (resume).
    fn thaw(&self) -> Result<()>;
    /// Whether the cgroup is currently frozen.
    fn is_frozen(&self) -> Result<bool>;
    /// Remove the directories; fails with [`CgroupError::Busy`] while tasks remain.
    fn destroy(&self) -> Result<()>;
    /// Absolute directories per hierarchy (`"memory"` → `/sys/fs/cgroup/memory/berth/x`, or
    /// `"unified"` → ... for v2), for `explain` and for joining the cgroup on exec.
    fn paths(&self) -> Vec<(String, PathBuf)>;
}
