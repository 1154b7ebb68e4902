//! # berth-cgroups: cgroup v1 and v2 behind one trait
//!
//! A *cgroup* is a kernel group of processes that shares resource limits and accounting.
//! Two layouts exist in the wild:
//!
//! - **v1** (this project's CI machine): one mounted hierarchy per controller
//!   (`/sys/fs/cgroup/memory`, `/sys/fs/cgroup/cpu`, `/sys/fs/cgroup/cpuacct`, ...). A container
//!   gets one directory *per hierarchy*, all with the same relative path.
//! - **v2** (modern distros): one unified tree (`/sys/fs/cgroup`), one directory per container,
//!   controllers enabled through `cgroup.subtree_control`.
//!
//! A host is "hybrid" when both are mounted; berth uses v1 whenever the v2 mount lacks the
//! resource controllers (e.g. only `hugetlb`), which is exactly where crun gives up.
//!
//! Vocabulary used across berth:
//! - [`CgroupPath`]: the container's path relative to each hierarchy root, e.g. `/berth/abc123`.
//! - [`Resources`]: the limits berth sets (a Docker-shaped subset of the OCI `LinuxResources`).
//! - [`CgroupStats`]: raw counters, shaped so the engine can build Docker's stats JSON.
//!
//! ## Worked example
//!
//! ```no_run
//! use berth_cgroups::{open, CgroupPath, Resources};
//! let cg = open(CgroupPath("/berth/abc123".into()))?; // v1 or v2, detected from mountinfo
//! cg.create()?;
//! cg.set(&Resources { memory_limit: Some(32 << 20), pids_limit: Some(64), ..Default::default() })?;
//! cg.add_task(std::process::id() as i32)?; // normally the container's init, before exec
//! let st = cg.stats()?;
//! println!("working set {} of {}", st.memory_working_set(), st.memory_limit);
//! # Ok::<(), berth_cgroups::CgroupError>(())
//! ```
//!
//! ## Memory: usage vs working set
//!
//! The kernel's usage (`memory.usage_in_bytes` in v1, `memory.current` in v2) counts page
//! cache too, which the kernel drops under pressure. Docker's `docker stats` shows the
//! **working set = usage − inactive_file**, where inactive_file is `total_inactive_file` from
//! v1's `memory.stat` (the hierarchical total) or `inactive_file` from v2's `memory.stat`
//! (see [`CgroupStats::memory_working_set`]); the limit is the cgroup's limit, or the host's
//! `MemTotal` when unlimited.
//!
//! Lifecycle: `create` (mkdir in every hierarchy, cpuset inherits cpus/mems) → `set` limits →
//! `add_task(pid)` before the container's process execs → `stats` while it runs →
//! `freeze`/`thaw` for pause → `destroy` after the last task is gone.

#![forbid(unsafe_code)]

// The conformance suite in tests/common is shared with the unit tests, which name the crate.
#[cfg(test)]
extern crate self as berth_cgroups;
#[cfg(test)]
mod conformance_fake;
mod error;
mod factory;
mod fsutil;
pub mod layout;
mod manager;
pub mod v1;
pub mod v2;

pub use error::{CgroupError, Result};
pub use factory::{open, open_at};
pub use layout::{Layout, V1Hierarchy};
pub use manager::{CgroupManager, CgroupPath, CgroupStats, Resources};
