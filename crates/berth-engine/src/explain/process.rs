//! The container's first process as the host sees it.
//!
//! Its host PID is an ordinary PID; inside its own PID namespace the same process is
//! PID 1. `/proc/<pid>/status` lists both in `NSpid` (outermost namespace first). The
//! uid/gid maps say how user ids inside translate to the host (`0 0 4294967295` is the
//! identity map: root inside is root outside, no user namespace).

use super::{read_proc, ExplainError};
use crate::record::ContainerRecord;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessFacts {
    /// PID of the container's PID 1 in the host's PID namespace.
    pub host_pid: i32,
    /// Its PID inside the container (the last `NSpid` entry; 1 unless the PID
    /// namespace is shared).
    pub pid_inside: i32,
    /// Every `NSpid` entry, outermost first.
    pub ns_pids: Vec<i32>,
    /// The `berth shim` that holds the container's stdio and reaps it.
    pub shim_pid: i32,
    /// argv as the kernel has it (`/proc/<pid>/cmdline`).
    pub command: Vec<String>,
    /// Real, effective, saved, filesystem uid / gid.
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
    /// Lines of `uid_map` / `gid_map`: `inside outside count`.
    pub uid_map: Vec<[u64; 3]>,
    pub gid_map: Vec<[u64; 3]>,
}

pub(crate) fn collect(rec: &ContainerRecord) -> Result<ProcessFacts, ExplainError> {
    let pid = rec.state.pid;
    let status = read_proc(pid, "status")?;
    let cmdline = read_proc(pid, "cmdline")?;
    let uid_map = parse_id_map(&read_proc(pid, "uid_map")?);
    let gid_map = parse_id_map(&read_proc(pid, "gid_map")?);
    let ns_pids: Vec<i32> = status_ids(&status, "NSpid");
    Ok(ProcessFacts {
        host_pid: pid,
        pid_inside: ns_pids.last().copied().unwrap_or(pid),
        ns_pids,
        shim_pid: rec.state.shim_pid,
        command: cmdline
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        uids: status_ids(&status, "Uid"),
        gids: status_ids(&status, "Gid"),
        uid_map,
        gid_map,
    })
}

/// The value of `key:` in a `/proc/<pid>/status` text.
pub(crate) fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then_some(v.trim())
    })
}

fn status_ids<T: std::str::FromStr>(status: &str, key: &str) -> Vec<T> {
    status_field(status, key)
        .map(|v| {
            v.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn parse_id_map(text: &str) -> Vec<[u64; 3]> {
    text.lines()
        .filter_map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (v.len() == 3).then(|| [v[0], v[1], v[2]])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let s = "Name:\tsleep\nUid:\t0\t0\t0\t0\nNSpid:\t21929\t1\nNoNewPrivs:\t1\n";
        assert_eq!(status_ids::<i32>(s, "NSpid"), vec![21929, 1]);
        assert_eq!(status_ids::<u32>(s, "Uid"), vec![0, 0, 0, 0]);
        assert_eq!(status_field(s, "NoNewPrivs"), Some("1"));
        assert_eq!(status_field(s, "Missing"), None);
    }

    #[test]
    fn id_maps() {
        assert_eq!(
            parse_id_map("         0          0 4294967295\n"),
            vec![[0, 0, 4294967295]]
        );
        assert_eq!(
            parse_id_map("0 100000 65536\n65536 1 1\n"),
            vec![[0, 100000, 65536], [65536, 1, 1]]
        );
    }

    #[test]
    fn own_process() {
        let rec = ContainerRecord {
            state: crate::record::ContainerState {
                pid: std::process::id() as i32,
                shim_pid: 7,
                ..Default::default()
            },
            ..Default::default()
        };
        let p = collect(&rec).unwrap();
        assert_eq!(p.host_pid, std::process::id() as i32);
        assert_eq!(p.shim_pid, 7);
        assert!(!p.command.is_empty());
        assert!(!p.uid_map.is_empty());
    }
}
