//! Volumes, events, stats, exec, disk usage.

use std::collections::BTreeMap;

use berth_api::events::{EventActor, EventMessage};
use berth_api::exec::{ExecInspect, ProcessConfig};
use berth_api::stats::{
    BlkioStatEntry, BlkioStats, CpuStats, CpuUsage, MemoryStats, PidsStats, StatsResponse,
    ThrottlingData,
};
use berth_api::volume::{Volume as WireVolume, VolumeUsageData};
use berth_engine::{ContainerStats, Event, ExecRecord, Volume};

use super::rfc3339;

pub fn volume(v: &Volume) -> WireVolume {
    WireVolume {
        name: v.name.clone(),
        driver: if v.driver.is_empty() {
            "local".into()
        } else {
            v.driver.clone()
        },
        mountpoint: v.mountpoint.clone(),
        created_at: v.created_at.map(|t| rfc3339(Some(t))).unwrap_or_default(),
        status: None,
        labels: v.labels.clone(),
        scope: if v.scope.is_empty() {
            "local".into()
        } else {
            v.scope.clone()
        },
        options: v.options.clone(),
        usage_data: None,
    }
}

pub fn volume_with_usage(v: &Volume, size: u64, refs: u64) -> WireVolume {
    let mut w = volume(v);
    w.usage_data = Some(VolumeUsageData {
        size: size as i64,
        ref_count: refs as i64,
    });
    w
}

pub fn event(e: &Event) -> EventMessage {
    let nanos = e.time.timestamp_nanos_opt().unwrap_or(0);
    let container = e.kind == "container";
    EventMessage {
        status: if container {
            e.action.clone()
        } else {
            String::new()
        },
        id: if container {
            e.actor_id.clone()
        } else {
            String::new()
        },
        from: if container {
            e.attributes.get("image").cloned().unwrap_or_default()
        } else {
            String::new()
        },
        r#type: e.kind.clone(),
        action: e.action.clone(),
        actor: EventActor {
            id: e.actor_id.clone(),
            attributes: e.attributes.clone(),
        },
        scope: "local".into(),
        time: e.time.timestamp(),
        time_nano: nanos,
    }
}

/// Builds a `CpuStats` from an engine cgroup sample (a macro so the daemon need not name
/// berth-cgroups' type: the daemon's arrows point to the api and the engine only).
macro_rules! cpu_stats {
    ($c:expr, $system:expr, $online:expr) => {
        match $c {
            None => CpuStats::default(),
            Some(c) => CpuStats {
                cpu_usage: CpuUsage {
                    total_usage: c.cpu_total_ns,
                    percpu_usage: if c.cpu_percpu_ns.is_empty() {
                        None
                    } else {
                        Some(c.cpu_percpu_ns.clone())
                    },
                    usage_in_kernelmode: c.cpu_system_ns,
                    usage_in_usermode: c.cpu_user_ns,
                },
                system_cpu_usage: Some($system),
                online_cpus: Some($online),
                throttling_data: ThrottlingData {
                    periods: c.cpu_periods,
                    throttled_periods: c.cpu_throttled_periods,
                    throttled_time: c.cpu_throttled_time_ns,
                },
            },
        }
    };
}

/// Docker's stats object. A container that is not running has only `id` and `name`.
pub fn stats(s: &ContainerStats) -> StatsResponse {
    let mut out = StatsResponse {
        name: s.name.clone(),
        id: s.id.clone(),
        read: rfc3339(Some(s.read)),
        preread: rfc3339(s.preread),
        ..Default::default()
    };
    let Some(c) = s.cgroup.as_ref() else {
        return out;
    };
    out.pids_stats = PidsStats {
        current: Some(c.pids_current),
        limit: c.pids_limit,
    };
    out.cpu_stats = cpu_stats!(Some(c), s.system_cpu_ns, s.online_cpus);
    out.precpu_stats = cpu_stats!(s.pre_cgroup.as_ref(), s.pre_system_cpu_ns, s.online_cpus);
    let mut stat: BTreeMap<String, u64> = c.memory_stat.clone();
    // The CLI subtracts `total_inactive_file` (v1) or `inactive_file` (v2) from usage.
    stat.entry("total_inactive_file".into())
        .or_insert(c.memory_inactive_file);
    out.memory_stats = MemoryStats {
        usage: Some(c.memory_usage),
        max_usage: Some(c.memory_max_usage),
        stats: Some(stat),
        failcnt: Some(0),
        limit: Some(c.memory_limit),
    };
    out.blkio_stats = BlkioStats {
        io_service_bytes_recursive: Some(vec![
            BlkioStatEntry {
                op: "read".into(),
                value: c.blkio_read_bytes,
                ..Default::default()
            },
            BlkioStatEntry {
                op: "write".into(),
                value: c.blkio_write_bytes,
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    out
}

pub fn exec(e: &ExecRecord) -> ExecInspect {
    let (entry, args) = match e.spec.cmd.split_first() {
        Some((a, rest)) => (a.clone(), rest.to_vec()),
        None => (String::new(), Vec::new()),
    };
    ExecInspect {
        can_remove: false,
        detach_keys: e.spec.detach_keys.clone(),
        id: e.id.clone(),
        running: e.running,
        exit_code: e.exit_code.map(i64::from),
        process_config: ProcessConfig {
            privileged: e.spec.privileged,
            user: e.spec.user.clone().unwrap_or_default(),
            tty: e.spec.tty,
            entrypoint: entry,
            arguments: args,
        },
        open_stdin: e.spec.attach_stdin,
        open_stderr: e.spec.attach_stderr,
        open_stdout: e.spec.attach_stdout,
        container_id: e.container_id.clone(),
        pid: i64::from(e.pid),
    }
}
