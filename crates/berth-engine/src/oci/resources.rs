//! `HostSpec` limits → OCI `linux.resources` and `process.rlimits`, with Docker's validation
//! messages and clamping to the engine's own hard rlimits (this host: nofile ≤ 20000 and no
//! CAP_SYS_RESOURCE to raise it).

use crate::spec::HostSpec;
use serde_json::{json, Value};

/// Reject settings Docker rejects at create time (its messages).
pub fn validate(host: &HostSpec, ncpu: u32) -> Result<(), String> {
    if host.memory != 0 && host.memory < 6 * 1024 * 1024 {
        return Err("Minimum memory limit allowed is 6MB".into());
    }
    if host.memory_swap > 0 {
        if host.memory == 0 {
            return Err(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
                    .into(),
            );
        }
        if host.memory_swap < host.memory {
            return Err(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            );
        }
    }
    if host.nano_cpus != 0 && (host.cpu_quota != 0 || host.cpu_period != 0) {
        return Err("Conflicting options: Nano CPUs and CPU Period cannot both be set".into());
    }
    if host.nano_cpus < 0 || host.nano_cpus > i64::from(ncpu) * 1_000_000_000 {
        return Err(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        ));
    }
    if host.nano_cpus > 0 && host.nano_cpus < 10_000_000 {
        return Err(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        ));
    }
    if host.cpu_shares < 0 {
        return Err("invalid CPU shares: must not be negative".into());
    }
    for u in &host.ulimits {
        rlimit_type(&u.name)?;
        if u.soft > u.hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            ));
        }
    }
    Ok(())
}

/// The OCI `linux.resources` object.
pub fn linux_resources(host: &HostSpec, devices: Vec<Value>) -> Value {
    let mut r = json!({ "devices": devices });
    let mut mem = serde_json::Map::new();
    if host.memory > 0 {
        mem.insert("limit".into(), json!(host.memory));
        // Docker: swap unset (0) = twice the memory; -1 = unlimited.
        let swap = match host.memory_swap {
            0 => host.memory * 2,
            s => s,
        };
        mem.insert("swap".into(), json!(swap));
    }
    if host.memory_reservation > 0 {
        mem.insert("reservation".into(), json!(host.memory_reservation));
    }
    if host.oom_kill_disable {
        mem.insert("disableOOMKiller".into(), json!(true));
    }
    if !mem.is_empty() {
        r["memory"] = Value::Object(mem);
    }
    let mut cpu = serde_json::Map::new();
    if host.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(host.cpu_shares));
    }
    if host.nano_cpus > 0 {
        let period: i64 = 100_000;
        cpu.insert("period".into(), json!(period));
        cpu.insert(
            "quota".into(),
            json!(host.nano_cpus * period / 1_000_000_000),
        );
    } else {
        if host.cpu_period > 0 {
            cpu.insert("period".into(), json!(host.cpu_period));
        }
        if host.cpu_quota != 0 {
            cpu.insert("quota".into(), json!(host.cpu_quota));
        }
    }
    if !host.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(host.cpuset_cpus));
    }
    if !host.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(host.cpuset_mems));
    }
    if !cpu.is_empty() {
        r["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = host.pids_limit.filter(|p| *p > 0) {
        r["pids"] = json!({ "limit": p });
    }
    r
}

/// Docker's default device cgroup rules (moby `oci/defaults.go` + `DefaultSimpleDevices`).
pub fn default_device_rules(privileged: bool) -> Vec<Value> {
    if privileged {
        return vec![json!({"allow": true, "access": "rwm"})];
    }
    let dev = |t: &str, maj: i64, min: Option<i64>, access: &str| {
        let mut d = json!({"allow": true, "type": t, "major": maj, "access": access});
        if let Some(m) = min {
            d["minor"] = json!(m);
        }
        d
    };
    vec![
        json!({"allow": false, "access": "rwm"}),
        json!({"allow": true, "type": "c", "access": "m"}),
        json!({"allow": true, "type": "b", "access": "m"}),
        dev("c", 1, Some(3), "rwm"),    // null
        dev("c", 1, Some(8), "rwm"),    // random
        dev("c", 1, Some(7), "rwm"),    // full
        dev("c", 5, Some(0), "rwm"),    // tty
        dev("c", 1, Some(5), "rwm"),    // zero
        dev("c", 1, Some(9), "rwm"),    // urandom
        dev("c", 136, None, "rwm"),     // pts
        dev("c", 5, Some(2), "rwm"),    // ptmx
        dev("c", 10, Some(200), "rwm"), // tun
    ]
}

fn rlimit_type(name: &str) -> Result<(&'static str, &'static str), String> {
    Ok(match name {
        "nofile" => ("RLIMIT_NOFILE", "Max open files"),
        "nproc" => ("RLIMIT_NPROC", "Max processes"),
        "core" => ("RLIMIT_CORE", "Max core file size"),
        "memlock" => ("RLIMIT_MEMLOCK", "Max locked memory"),
        "stack" => ("RLIMIT_STACK", "Max stack size"),
        "fsize" => ("RLIMIT_FSIZE", "Max file size"),
        "cpu" => ("RLIMIT_CPU", "Max cpu time"),
        "as" => ("RLIMIT_AS", "Max address space"),
        "data" => ("RLIMIT_DATA", "Max data size"),
        "rss" => ("RLIMIT_RSS", "Max resident set"),
        "locks" => ("RLIMIT_LOCKS", "Max file locks"),
        "sigpending" => ("RLIMIT_SIGPENDING", "Max pending signals"),
        "msgqueue" => ("RLIMIT_MSGQUEUE", "Max msgqueue size"),
        "nice" => ("RLIMIT_NICE", "Max nice priority"),
        "rtprio" => ("RLIMIT_RTPRIO", "Max realtime priority"),
        "rttime" => ("RLIMIT_RTTIME", "Max realtime timeout"),
        other => return Err(format!("invalid ulimit type: {other}")),
    })
}

/// The engine's own hard limit for `label` (a `/proc/self/limits` row), `None` = unlimited.
fn own_hard_limit(limits: &str, label: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with(label))?;
    let rest = line[label.len()..].split_whitespace().collect::<Vec<_>>();
    rest.get(1).and_then(|h| h.parse().ok())
}

/// `--ulimit`s → OCI rlimits, clamped to what the engine can grant (warnings say so).
pub fn rlimits(host: &HostSpec, own_limits: &str) -> (Vec<Value>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for u in &host.ulimits {
        let Ok((typ, label)) = rlimit_type(&u.name) else {
            continue;
        };
        let (mut soft, mut hard) = (u.soft.max(0) as u64, u.hard.max(0) as u64);
        if u.hard < 0 {
            hard = u64::MAX;
        }
        if u.soft < 0 {
            soft = u64::MAX;
        }
        if let Some(max) = own_hard_limit(own_limits, label) {
            if hard > max {
                warnings.push(format!(
                    "ulimit {} hard limit {} exceeds what berth may grant on this host; clamped to {max}",
                    u.name, hard
                ));
                hard = max;
            }
            soft = soft.min(hard);
        }
        out.push(json!({"type": typ, "soft": soft, "hard": hard}));
    }
    (out, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Ulimit;

    #[test]
    fn memory_cpu_pids() {
        let h = HostSpec {
            memory: 32 << 20,
            nano_cpus: 1_500_000_000,
            cpu_shares: 512,
            cpuset_cpus: "0".into(),
            pids_limit: Some(20),
            ..Default::default()
        };
        let r = linux_resources(&h, vec![]);
        assert_eq!(r["memory"]["limit"], 32 << 20);
        assert_eq!(r["memory"]["swap"], 64 << 20);
        assert_eq!(r["cpu"]["quota"], 150_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["pids"]["limit"], 20);
        let _: oci_spec::runtime::LinuxResources = serde_json::from_value(r).unwrap();
        let unlimited = linux_resources(
            &HostSpec {
                memory: 8 << 20,
                memory_swap: -1,
                pids_limit: Some(-1),
                ..Default::default()
            },
            vec![],
        );
        assert_eq!(unlimited["memory"]["swap"], -1);
        assert!(unlimited.get("pids").is_none());
    }

    #[test]
    fn docker_validation_messages() {
        let v = |h: HostSpec| validate(&h, 2);
        assert_eq!(
            v(HostSpec {
                memory: 1024,
                ..Default::default()
            })
            .unwrap_err(),
            "Minimum memory limit allowed is 6MB"
        );
        assert!(v(HostSpec {
            memory: 8 << 20,
            memory_swap: 4 << 20,
            ..Default::default()
        })
        .unwrap_err()
        .contains("memoryswap"));
        assert!(v(HostSpec {
            nano_cpus: 3_000_000_000,
            ..Default::default()
        })
        .unwrap_err()
        .contains("only 2 CPUs"));
        assert!(v(HostSpec {
            nano_cpus: 1_000_000_000,
            cpu_quota: 1000,
            ..Default::default()
        })
        .is_err());
        assert!(v(HostSpec {
            ulimits: vec![Ulimit {
                name: "bogus".into(),
                soft: 1,
                hard: 1
            }],
            ..Default::default()
        })
        .is_err());
        assert!(v(HostSpec::default()).is_ok());
    }

    #[test]
    fn rlimits_clamp_to_own_hard_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            20000                20000                files\n";
        let h = HostSpec {
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 1048576,
                hard: 1048576,
            }],
            ..Default::default()
        };
        let (r, w) = rlimits(&h, limits);
        assert_eq!(
            r[0],
            json!({"type": "RLIMIT_NOFILE", "soft": 20000, "hard": 20000})
        );
        assert_eq!(w.len(), 1);
        let h = HostSpec {
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 100,
                hard: 200,
            }],
            ..Default::default()
        };
        let (r, w) = rlimits(&h, limits);
        assert_eq!(r[0]["soft"], 100);
        assert!(w.is_empty());
    }
}
