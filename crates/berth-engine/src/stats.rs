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

use crate::engine::Container;
use crate::error::{EngineError, Result};
use crate::record::ContainerStatus;
use crate::Engine;
use std::sync::Arc;

/// One sample in a container's history.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub time: DateTime<Utc>,
    pub cgroup: CgroupStats,
    pub system_cpu_ns: u64,
}

const HISTORY: usize = 4;

/// Host CPU time in nanoseconds: the first line of /proc/stat (user … steal), in ticks.
pub(crate) fn system_cpu_ns(proc_stat: &str) -> u64 {
    let Some(line) = proc_stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    ticks * (1_000_000_000 / 100)
}

fn read_system_cpu() -> u64 {
    system_cpu_ns(&std::fs::read_to_string("/proc/stat").unwrap_or_default())
}

impl Engine {
    fn sample(&self, c: &Container) -> Result<Sample> {
        let path = c.snapshot().cgroup_path;
        let m = berth_cgroups::open(berth_cgroups::CgroupPath(path))
            .map_err(|e| EngineError::internal(format!("cgroup: {e}")))?;
        let cgroup = m
            .stats()
            .map_err(|e| EngineError::internal(format!("cgroup stats: {e}")))?;
        Ok(Sample {
            time: Utc::now(),
            cgroup,
            system_cpu_ns: read_system_cpu(),
        })
    }

    /// Remember a zero sample at start, so the first one-shot has a precpu baseline.
    pub(crate) fn baseline_sample(&self, c: &Container) {
        let s = Sample {
            time: c.snapshot().state.started_at.unwrap_or_else(Utc::now),
            cgroup: CgroupStats::default(),
            system_cpu_ns: read_system_cpu(),
        };
        let mut h = c.samples.lock().unwrap_or_else(|p| p.into_inner());
        h.clear();
        h.push_back(s);
    }

    fn stats_of(
        &self,
        c: &Arc<Container>,
        pre: Option<Sample>,
    ) -> Result<(ContainerStats, Option<Sample>)> {
        let rec = c.snapshot();
        let online = self.inner.facts.ncpu;
        if !matches!(
            rec.state.status,
            ContainerStatus::Running | ContainerStatus::Paused
        ) {
            return Ok((
                ContainerStats {
                    id: rec.id,
                    name: rec.name,
                    read: Utc::now(),
                    preread: None,
                    cgroup: None,
                    pre_cgroup: None,
                    system_cpu_ns: 0,
                    pre_system_cpu_ns: 0,
                    online_cpus: online,
                },
                None,
            ));
        }
        let now = self.sample(c)?;
        let online = if now.cgroup.cpu_percpu_ns.is_empty() {
            online
        } else {
            now.cgroup.cpu_percpu_ns.len() as u32
        };
        let stats = ContainerStats {
            id: rec.id,
            name: rec.name,
            read: now.time,
            preread: pre.as_ref().map(|p| p.time),
            cgroup: Some(now.cgroup.clone()),
            pre_cgroup: pre.as_ref().map(|p| p.cgroup.clone()),
            system_cpu_ns: now.system_cpu_ns,
            pre_system_cpu_ns: pre.as_ref().map(|p| p.system_cpu_ns).unwrap_or(0),
            online_cpus: online,
        };
        Ok((stats, Some(now)))
    }

    /// One stats sample, with the previous one from the history as `pre` (no sleeping).
    pub async fn container_stats(&self, name: &str) -> Result<ContainerStats> {
        let c = self.lookup(name)?;
        let pre = c
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .back()
            .cloned();
        let (stats, now) = self.stats_of(&c, pre)?;
        if let Some(s) = now {
            let mut h = c.samples.lock().unwrap_or_else(|p| p.into_inner());
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(s);
        }
        Ok(stats)
    }

    /// Stats, one sample per second until the receiver is dropped or the container stops.
    pub async fn container_stats_stream(&self, name: &str) -> Result<StatsReceiver> {
        let c = self.lookup(name)?;
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let engine = self.clone();
        tokio::spawn(async move {
            let mut pre = c
                .samples
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .back()
                .cloned();
            while let Ok((stats, now)) = engine.stats_of(&c, pre.clone()) {
                let stopped = stats.cgroup.is_none();
                if tx.send(stats).await.is_err() || stopped {
                    break;
                }
                if let Some(n) = now {
                    let mut h = c.samples.lock().unwrap_or_else(|p| p.into_inner());
                    if h.len() == HISTORY {
                        h.pop_front();
                    }
                    h.push_back(n.clone());
                    pre = Some(n);
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn system_cpu_from_proc_stat() {
        let s = "cpu  100 0 50 1000 10 0 0 0 0 0\ncpu0 50 0 25 500 5 0 0 0 0 0\n";
        assert_eq!(super::system_cpu_ns(s), 1160 * 10_000_000);
        assert_eq!(super::system_cpu_ns(""), 0);
    }
}
