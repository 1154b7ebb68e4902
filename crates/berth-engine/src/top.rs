//! `top`: `ps -ef` columns read from /proc for the container's pids (no `ps` exec).

use crate::options::TopResult;

fn host_user(uid: u32, passwd: &str) -> String {
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}

fn clock_ticks() -> u64 {
    100
}

/// One `ps -ef` row per pid that still exists.
pub fn ps(pids: &[i32]) -> TopResult {
    let titles = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|b| b.trim().parse::<i64>().ok())
    });
    let mut processes = Vec::new();
    for &pid in pids {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // comm may contain spaces and parentheses: split at the last ')'.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = stat[stat.find('(').map(|i| i + 1).unwrap_or(0)..close].to_string();
        let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ppid = rest.get(1).copied().unwrap_or("0").to_string();
        let utime: u64 = rest.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
        let stime: u64 = rest.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        let start: u64 = rest.get(19).and_then(|v| v.parse().ok()).unwrap_or(0);
        let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|u| {
                        u.split_whitespace()
                            .next()
                            .and_then(|x| x.parse::<u32>().ok())
                    })
            })
            .unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = if cmdline.is_empty() {
            format!("[{comm}]")
        } else {
            String::from_utf8_lossy(&cmdline)
                .trim_end_matches('\0')
                .replace('\0', " ")
        };
        let cpu_secs = (utime + stime) / clock_ticks();
        let time = format!(
            "{:02}:{:02}:{:02}",
            cpu_secs / 3600,
            (cpu_secs / 60) % 60,
            cpu_secs % 60
        );
        let stime_s = boot
            .and_then(|b| chrono::DateTime::from_timestamp(b + (start / clock_ticks()) as i64, 0))
            .map(|t| t.with_timezone(&chrono::Local).format("%H:%M").to_string())
            .unwrap_or_else(|| "?".into());
        processes.push(vec![
            host_user(uid, &passwd),
            pid.to_string(),
            ppid,
            "0".into(),
            stime_s,
            "?".into(),
            time,
            cmd,
        ]);
    }
    TopResult { titles, processes }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ps_of_self() {
        let me = std::process::id() as i32;
        let t = super::ps(&[me, 999_999_999]);
        assert_eq!(t.titles.len(), 8);
        assert_eq!(t.processes.len(), 1);
        assert_eq!(t.processes[0][1], me.to_string());
        assert!(!t.processes[0][7].is_empty());
    }
}
