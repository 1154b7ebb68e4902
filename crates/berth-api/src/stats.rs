//! `GET /containers/{id}/stats`: the snake_case object (cgroup v1 field names), and the
//! docker CLI's formulas for its columns so berth's CLI prints the same numbers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PidsStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    pub total_usage: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percpu_usage: Option<Vec<u64>>,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ThrottlingData {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuStats {
    pub cpu_usage: CpuUsage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_cpu_usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online_cpus: Option<u32>,
    pub throttling_data: ThrottlingData,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failcnt: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioStatEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_serviced_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_queue_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_service_time_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_wait_time_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_merged_recursive: Option<Vec<BlkioStatEntry>>,
    pub io_time_recursive: Option<Vec<BlkioStatEntry>>,
    pub sectors_recursive: Option<Vec<BlkioStatEntry>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// One stats object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatsResponse {
    pub name: String,
    pub id: String,
    pub read: String,
    pub preread: String,
    pub num_procs: u32,
    pub pids_stats: PidsStats,
    pub cpu_stats: CpuStats,
    pub precpu_stats: CpuStats,
    pub memory_stats: MemoryStats,
    pub blkio_stats: BlkioStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, NetworkStats>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_stats: Option<serde_json::Value>,
}

impl StatsResponse {
    /// CPU % exactly as the docker CLI computes it (`calculateCPUPercentUnix`).
    pub fn cpu_percent(&self) -> f64 {
        let cpu_delta = self.cpu_stats.cpu_usage.total_usage as f64
            - self.precpu_stats.cpu_usage.total_usage as f64;
        let sys_delta = self.cpu_stats.system_cpu_usage.unwrap_or(0) as f64
            - self.precpu_stats.system_cpu_usage.unwrap_or(0) as f64;
        let mut online = self.cpu_stats.online_cpus.unwrap_or(0) as f64;
        if online == 0.0 {
            online = self
                .cpu_stats
                .cpu_usage
                .percpu_usage
                .as_ref()
                .map_or(0, Vec::len) as f64;
        }
        if sys_delta > 0.0 && cpu_delta > 0.0 {
            cpu_delta / sys_delta * online * 100.0
        } else {
            0.0
        }
    }

    /// Memory usage minus the inactive page cache (v1 `total_inactive_file`, v2 `inactive_file`).
    pub fn memory_usage(&self) -> u64 {
        let usage = self.memory_stats.usage.unwrap_or(0);
        let stats = self.memory_stats.stats.as_ref();
        let inactive = stats
            .and_then(|s| {
                s.get("total_inactive_file")
                    .or_else(|| s.get("inactive_file"))
            })
            .copied()
            .unwrap_or(0);
        if inactive < usage {
            usage - inactive
        } else {
            usage
        }
    }

    pub fn memory_percent(&self) -> f64 {
        match self.memory_stats.limit {
            Some(l) if l > 0 => self.memory_usage() as f64 / l as f64 * 100.0,
            _ => 0.0,
        }
    }

    /// (rx, tx) bytes summed over interfaces.
    pub fn network_io(&self) -> (u64, u64) {
        self.networks.as_ref().map_or((0, 0), |n| {
            n.values()
                .fold((0, 0), |(r, t), s| (r + s.rx_bytes, t + s.tx_bytes))
        })
    }

    /// (read, write) bytes.
    pub fn block_io(&self) -> (u64, u64) {
        let mut rw = (0, 0);
        for e in self.blkio_stats.io_service_bytes_recursive.iter().flatten() {
            match e.op.chars().next() {
                Some('r' | 'R') => rw.0 += e.value,
                Some('w' | 'W') => rw.1 += e.value,
                _ => {}
            }
        }
        rw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_formulas() {
        let s: StatsResponse = serde_json::from_str(
            r#"{"cpu_stats":{"cpu_usage":{"total_usage":300},"system_cpu_usage":2000,"online_cpus":2},
                "precpu_stats":{"cpu_usage":{"total_usage":100},"system_cpu_usage":1000},
                "memory_stats":{"usage":1000,"limit":4000,"stats":{"total_inactive_file":200}},
                "blkio_stats":{"io_service_bytes_recursive":[{"major":8,"minor":0,"op":"Read","value":5},{"major":8,"minor":0,"op":"write","value":7}]}}"#,
        )
        .unwrap();
        assert!((s.cpu_percent() - 40.0).abs() < 1e-9);
        assert_eq!(s.memory_usage(), 800);
        assert!((s.memory_percent() - 20.0).abs() < 1e-9);
        assert_eq!(s.block_io(), (5, 7));
    }
}
