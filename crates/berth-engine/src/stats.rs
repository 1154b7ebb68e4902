//! Resource usage: berth-cgroups counters plus a short per-container sample history, so a
//! one-shot reply has a `precpu` sample without sleeping.

use berth_cgroups::CgroupStats;
use chrono::{DateTime, Utc};

/// One stats reply (the daemon shapes Docker's JSON from it).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStats {
    pub id: String,
    /// With the leading `/`.
    pub name: String,
    pub read: DateTime<Utc>,
    /// Time of the previous sample (`None` = no earlier sample).
    pub preread: Option<DateTime<Utc>>,
    /// `None` when the container is not running.
    pub cgroup: Option<CgroupStats>,
    pub pre_cgroup: Option<CgroupStats>,
    /// Host-wide CPU time in nanoseconds (from /proc/stat), now and at the previous sample.
    pub system_cpu_ns: u64,
    pub pre_system_cpu_ns: u64,
    pub online_cpus: u32,
}

/// A stream of samples, about one per second.
pub type StatsReceiver = tokio::sync::mpsc::Receiver<ContainerStats>;
