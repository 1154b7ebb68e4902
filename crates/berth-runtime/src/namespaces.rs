//! Which namespaces to create (one clone with all the flags) and which to join by path.

use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub(crate) struct NsPlan {
    /// Flags for the single clone of the init (without cgroup and time, see below).
    pub clone_flags: CloneFlags,
    /// Namespaces to enter (setns) in the helper before the clone; user first.
    pub joins: Vec<(CloneFlags, PathBuf)>,
    pub new_user: bool,
    pub joined_user: bool,
    /// Why separate: the cgroup namespace's root is the cgroup the process is in when it
    /// unshares, so the init unshares it only after the parent has moved it into the
    /// container's cgroup.
    pub new_cgroup: bool,
    /// Why separate: clone(2) cannot take CLONE_NEWTIME (it collides with the exit-signal
    /// bits); the helper unshares it, which applies to its next child, the init.
    pub new_time: bool,
    pub new_uts: bool,
}

pub(crate) fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

pub(crate) fn plan(spec: &Spec) -> Result<NsPlan> {
    let mut p = NsPlan {
        clone_flags: CloneFlags::empty(),
        joins: Vec::new(),
        new_user: false,
        joined_user: false,
        new_cgroup: false,
        new_time: false,
        new_uts: false,
    };
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::spec("linux", "missing"))?;
    for ns in linux.namespaces().iter().flatten() {
        let f = flag(ns.typ());
        match ns.path() {
            Some(path) if !path.as_os_str().is_empty() => {
                if ns.typ() == LinuxNamespaceType::User {
                    p.joined_user = true;
                    p.joins.insert(0, (f, path.clone()));
                } else {
                    p.joins.push((f, path.clone()));
                }
            }
            _ => match ns.typ() {
                LinuxNamespaceType::Cgroup => p.new_cgroup = true,
                LinuxNamespaceType::Time => p.new_time = true,
                t => {
                    if t == LinuxNamespaceType::User {
                        p.new_user = true;
                    }
                    if t == LinuxNamespaceType::Uts {
                        p.new_uts = true;
                    }
                    p.clone_flags |= f;
                }
            },
        }
    }
    Ok(p)
}

/// The namespaces of a running process that differ from ours, to join for `exec`.
pub(crate) fn of_process(pid: i32) -> Vec<(CloneFlags, PathBuf)> {
    let kinds = [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    let mut out = Vec::new();
    for (name, f) in kinds {
        let theirs = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
        let a = std::fs::read_link(&theirs).ok();
        let b = std::fs::read_link(format!("/proc/self/ns/{name}")).ok();
        if a.is_some() && a != b {
            out.push((f, theirs));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_clone_for_new_namespaces_cgroup_and_time_apart_user_joined_first() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[
                {"type":"pid"},{"type":"network","path":"/run/netns/x"},{"type":"mount"},
                {"type":"uts"},{"type":"cgroup"},{"type":"time"},{"type":"user","path":"/proc/1/ns/user"}]}}"#,
        )
        .unwrap();
        let p = plan(&spec).unwrap();
        assert_eq!(
            p.clone_flags,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS
        );
        assert!(p.new_cgroup && p.new_time && p.new_uts && p.joined_user && !p.new_user);
        assert_eq!(
            p.joins[0].0,
            CloneFlags::CLONE_NEWUSER,
            "user namespace joined first"
        );
        assert_eq!(p.joins[1].1, PathBuf::from("/run/netns/x"));
    }
}
