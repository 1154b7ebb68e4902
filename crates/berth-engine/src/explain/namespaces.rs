//! Namespaces: what the process can see.
//!
//! Each `/proc/<pid>/ns/<kind>` is a magic link such as `net:[4026532182]`; the number is
//! the namespace's inode, and two processes are in the same namespace exactly when their
//! links have the same inode. Comparing with `/proc/1/ns/*` (the host's init) tells which
//! namespaces the container owns and which it shares with the host (Docker shares the
//! user and time namespaces by default; `--network host` shares net, and so on).
//! Where PID 1's links are not readable (a sandboxed init), the daemon's own namespaces
//! are the reference: the daemon runs in the host's.

use super::{read_proc, ExplainError};
use serde::{Deserialize, Serialize};

/// The namespace kinds, in the order they are shown.
pub const KINDS: [&str; 8] = ["mnt", "pid", "net", "uts", "ipc", "cgroup", "user", "time"];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamespaceFacts {
    /// `mnt`, `pid`, `net`, `uts`, `ipc`, `cgroup`, `user`, `time`.
    pub kind: String,
    /// Inode number of the container's namespace.
    pub inode: u64,
    /// Inode of the host's namespace of the same kind (0 = unreadable).
    pub host_inode: u64,
    /// Where `host_inode` was read: `/proc/1/ns` or `/proc/<daemon pid>/ns`.
    pub compared_with: String,
    /// `own` (the container has its own), `host` (shared with the host) or `unknown`.
    pub owner: String,
    /// What this kind of namespace isolates.
    pub isolates: String,
}

pub(crate) fn collect(pid: i32) -> Result<Vec<NamespaceFacts>, ExplainError> {
    let mut out = Vec::new();
    for kind in KINDS {
        let path = format!("/proc/{pid}/ns/{kind}");
        let link = std::fs::read_link(&path).map_err(|e| ExplainError::read(pid, &path, e))?;
        let inode = parse_ns_link(&link.to_string_lossy()).unwrap_or(0);
        let (host_inode, compared_with) = host_ns(kind);
        let owner = match host_inode {
            0 => "unknown",
            h if h == inode => "host",
            _ => "own",
        };
        out.push(NamespaceFacts {
            kind: kind.to_string(),
            inode,
            host_inode,
            compared_with,
            owner: owner.to_string(),
            isolates: isolates(kind).to_string(),
        });
    }
    // Keep the reads honest: the process must still be there after the last link.
    read_proc(pid, "stat")?;
    Ok(out)
}

/// The host's namespace of `kind`: PID 1's, or the daemon's when PID 1's is unreadable.
fn host_ns(kind: &str) -> (u64, String) {
    let me = std::process::id();
    for dir in ["/proc/1/ns".to_string(), format!("/proc/{me}/ns")] {
        if let Some(i) = std::fs::read_link(format!("{dir}/{kind}"))
            .ok()
            .and_then(|l| parse_ns_link(&l.to_string_lossy()))
        {
            return (i, dir);
        }
    }
    (0, String::new())
}

/// `net:[4026532182]` → 4026532182.
pub fn parse_ns_link(link: &str) -> Option<u64> {
    link.split_once(":[")?.1.strip_suffix(']')?.parse().ok()
}

fn isolates(kind: &str) -> &'static str {
    match kind {
        "mnt" => "the mount table (its own root filesystem)",
        "pid" => "process ids (it is PID 1 and sees only its own processes)",
        "net" => "network devices, addresses, routes, ports, firewall",
        "uts" => "hostname and domain name",
        "ipc" => "System V IPC and POSIX message queues",
        "cgroup" => "the view of /proc/self/cgroup (its cgroup looks like the root)",
        "user" => "user and group ids, capabilities",
        "time" => "the boot-time and monotonic clocks",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links() {
        assert_eq!(parse_ns_link("net:[4026532182]"), Some(4026532182));
        assert_eq!(parse_ns_link("garbage"), None);
        assert_eq!(parse_ns_link("net:[x]"), None);
    }

    #[test]
    fn own_namespaces_are_listed() {
        let ns = collect(std::process::id() as i32).unwrap();
        assert_eq!(ns.len(), KINDS.len());
        assert!(ns.iter().all(|n| n.inode != 0));
        // Our own namespaces are the host's (or the reference's) for every kind.
        assert!(ns.iter().all(|n| n.owner == "host"), "{ns:?}");
    }

    #[test]
    fn gone_process() {
        // PID far above pid_max never exists.
        assert!(matches!(
            collect(i32::MAX - 1),
            Err(ExplainError::ProcessGone(_))
        ));
    }
}
