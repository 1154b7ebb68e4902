//! `top`: without ps options, `ps -ef` columns read from /proc for the container's pids
//! (no `ps` exec, ~0.1 ms). With ps options (`docker top web aux`), what dockerd does: the
//! host's `ps` with those options plus `-q PID,...` (retried without `-q` for options that
//! refuse it, such as `f`), keeping only the rows whose PID is the container's; the
//! continuation rows of threads (`-` in the PID column, from `m`) follow their process.

use crate::error::EngineError;
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

/// dockerd's guard: the PID column may not be renamed (`-o comm=PID` would make another
/// column pass for it). Mirrors moby's `\s+(\S*)=\s*(PID\S*)` check.
pub fn validate_ps_args(ps_args: &str) -> Result<(), EngineError> {
    let words: Vec<(usize, &str)> = ps_args
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - ps_args.as_ptr() as usize, w))
        .collect();
    for (i, &(at, w)) in words.iter().enumerate() {
        // `\s+` before the key: a word at the very start does not count.
        if at == 0 {
            continue;
        }
        for (eq, _) in w.match_indices('=') {
            let (key, value) = (&w[..eq], &w[eq + 1..]);
            let value = if value.is_empty() {
                words.get(i + 1).map_or("", |(_, n)| *n)
            } else {
                value
            };
            if value.starts_with("PID") && key != "pid" {
                let v: String = value.chars().take_while(|c| !c.is_whitespace()).collect();
                return Err(EngineError::invalid(format!(
                    "specifying \"{key}={v}\" is not allowed"
                )));
            }
        }
    }
    Ok(())
}

/// Runs the host's `ps` with `ps_args` for `pids` (host pids of the container).
pub async fn ps_with_args(pids: &[i32], ps_args: &str) -> Result<TopResult, EngineError> {
    validate_ps_args(ps_args)?;
    let args: Vec<&str> = ps_args.split(' ').filter(|a| !a.is_empty()).collect();
    let list = pids
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let run = |with_pids: bool| {
        let mut c = tokio::process::Command::new("ps");
        c.args(&args);
        if with_pids {
            c.arg(format!("-q{list}"));
        }
        c.env("LC_ALL", "C").stdin(std::process::Stdio::null());
        async move { c.output().await }
    };
    let mut out = run(!pids.is_empty())
        .await
        .map_err(|e| EngineError::internal(format!("ps: {e} (is procps installed?)")))?;
    if !out.status.success() {
        out = run(false)
            .await
            .map_err(|e| EngineError::internal(format!("ps: {e} (is procps installed?)")))?;
    }
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let msg = if line.is_empty() {
            format!("ps: {}", out.status)
        } else {
            format!("ps: {line}")
        };
        return Err(EngineError::internal(msg));
    }
    parse_ps_output(&String::from_utf8_lossy(&out.stdout), pids)
}

/// moby's `fieldsASCII`: split at ASCII whitespace only.
fn fields(s: &str) -> Vec<&str> {
    s.split(['\t', '\n', '\x0c', '\r', ' '])
        .filter(|f| !f.is_empty())
        .collect()
}

/// moby's `parsePSOutput`: titles from the first line; rows of the container's pids, the
/// fields past the last title joined by spaces (the command with its arguments).
pub fn parse_ps_output(out: &str, pids: &[i32]) -> Result<TopResult, EngineError> {
    let mut lines = out.split('\n');
    let titles: Vec<String> = fields(lines.next().unwrap_or(""))
        .into_iter()
        .map(str::to_string)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| EngineError::internal("Couldn't find PID field in ps output"))?;
    let row = |f: Vec<&str>| -> Vec<String> {
        let n = titles.len();
        let mut r: Vec<String> = f.iter().take(n - 1).map(|s| s.to_string()).collect();
        r.push(f.get(n - 1..).map(|x| x.join(" ")).unwrap_or_default());
        r
    };
    let mut processes = Vec::new();
    let mut in_container = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let f = fields(line);
        let Some(p) = f.get(pid_col) else {
            continue;
        };
        if *p == "-" {
            if in_container {
                processes.push(row(f));
            }
            continue;
        }
        let pid: i32 = p
            .parse()
            .map_err(|e| EngineError::internal(format!("Unexpected pid '{p}': {e}")))?;
        in_container = pids.contains(&pid);
        if in_container {
            processes.push(row(f));
        }
    }
    Ok(TopResult { titles, processes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_output_keeps_the_containers_rows_and_threads() {
        let out =
            "USER  PID %CPU COMMAND\nroot    1  0.0 /sbin/init splash\nroot   42  0.1 sleep 300\n\
                   -      -  0.0 -\nroot   43  0.0 other\n-      -  0.0 -\n";
        let t = parse_ps_output(out, &[42]).unwrap();
        assert_eq!(t.titles, ["USER", "PID", "%CPU", "COMMAND"]);
        assert_eq!(
            t.processes,
            vec![
                vec!["root", "42", "0.1", "sleep 300"],
                vec!["-", "-", "0.0", "-"]
            ]
        );
        assert!(parse_ps_output("USER COMMAND\nroot x\n", &[1])
            .unwrap_err()
            .message
            .contains("Couldn't find PID field"));
        assert!(parse_ps_output("PID CMD\nabc x\n", &[1])
            .unwrap_err()
            .message
            .contains("Unexpected pid 'abc'"));
    }

    #[test]
    fn ps_args_may_not_rename_the_pid_column() {
        assert!(validate_ps_args("aux").is_ok());
        assert!(validate_ps_args("-o pid=PID,comm").is_ok());
        assert_eq!(
            validate_ps_args("-o comm=PID").unwrap_err().message,
            "specifying \"comm=PID\" is not allowed"
        );
        assert!(validate_ps_args("-o user= PID").is_err());
    }

    #[tokio::test]
    async fn host_ps_with_args_for_our_pid() {
        let me = std::process::id() as i32;
        if !["/usr/bin/ps", "/bin/ps"]
            .iter()
            .any(|p| std::path::Path::new(p).exists())
        {
            eprintln!("skipping: no ps (procps) on this machine");
            return;
        }
        let t = ps_with_args(&[me], "-o pid,comm").await.unwrap();
        assert_eq!(t.titles, ["PID", "COMMAND"]);
        assert_eq!(t.processes.len(), 1, "{t:?}");
        assert_eq!(t.processes[0][0], me.to_string());
        let bad = ps_with_args(&[me], "--no-such-option").await.unwrap_err();
        assert!(bad.message.starts_with("ps: "), "{}", bad.message);
    }

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
