//! The process side of a container: rlimits (clamped), user and groups, PATH lookup, env.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType, Process};

use crate::error::{Error, Result};

fn resource(t: PosixRlimitType) -> Resource {
    match t {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// The rlimits to set, clamped to our own hard limits: without CAP_SYS_RESOURCE a hard limit
/// cannot be raised (this host: nofile hard 20000 while Docker asks 1048576). Computed in the
/// parent so warnings reach the caller.
pub(crate) fn plan_rlimits(
    rl: &[PosixRlimit],
    warnings: &mut Vec<String>,
) -> Vec<(Resource, u64, u64)> {
    let can_raise = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false);
    rl.iter()
        .map(|r| {
            let res = resource(r.typ());
            let (mut soft, mut hard) = (r.soft(), r.hard());
            if !can_raise {
                if let Ok((_, cur_hard)) = getrlimit(res) {
                    if hard > cur_hard {
                        warnings.push(format!(
                            "process.rlimits {}: hard {} above the runtime's own {}; clamped",
                            r.typ(),
                            hard,
                            cur_hard
                        ));
                        hard = cur_hard;
                        soft = soft.min(hard);
                    }
                }
            }
            (res, soft, hard)
        })
        .collect()
}

pub(crate) fn apply_rlimits(rl: &[(Resource, u64, u64)]) -> std::io::Result<()> {
    for (res, soft, hard) in rl {
        setrlimit(*res, *soft, *hard)?;
    }
    Ok(())
}

/// setgroups + setresgid + setresuid. Capabilities survive thanks to PR_SET_KEEPCAPS.
pub(crate) fn set_user(p: &Process, setgroups_allowed: bool) -> std::io::Result<()> {
    let u = p.user();
    if setgroups_allowed {
        let groups: Vec<Gid> = u
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| Gid::from_raw(*g))
            .collect();
        setgroups(&groups)?;
    }
    let gid = Gid::from_raw(u.gid());
    setresgid(gid, gid, gid)?;
    let uid = Uid::from_raw(u.uid());
    setresuid(uid, uid, uid)?;
    Ok(())
}

/// Find the executable like execvp would, but up front so a missing command is reported to
/// the caller of create (Docker maps not-found to exit 127, not-executable to 126).
pub(crate) fn lookup(cmd: &str, env: &[String], cwd: &Path) -> Result<PathBuf> {
    let check = |p: &Path| -> Option<Result<PathBuf>> {
        let meta = std::fs::metadata(p).ok()?;
        if meta.is_dir() {
            return Some(Err(Error::CommandNotExecutable(cmd.to_string())));
        }
        if nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_err()
            || meta.permissions().mode() & 0o111 == 0
        {
            return Some(Err(Error::CommandNotExecutable(cmd.to_string())));
        }
        Some(Ok(p.to_path_buf()))
    };
    if cmd.contains('/') {
        let p = if Path::new(cmd).is_absolute() {
            PathBuf::from(cmd)
        } else {
            cwd.join(cmd)
        };
        return check(&p).unwrap_or_else(|| Err(Error::CommandNotFound(cmd.to_string())));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = None;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        match check(&Path::new(dir).join(cmd)) {
            Some(Ok(p)) => return Ok(p),
            Some(Err(e)) => denied = denied.or(Some(e)),
            None => {}
        }
    }
    Err(denied.unwrap_or_else(|| Error::CommandNotFound(cmd.to_string())))
}

/// The environment, with HOME added from /etc/passwd when missing (as runc does).
pub(crate) fn env_with_home(env: &[String], uid: u32) -> Vec<String> {
    let mut env = env.to_vec();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid))
                        .then(|| f[5].to_string())
                })
            })
            .unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    env
}

pub(crate) fn cstrings(v: &[String], field: &str) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| {
            CString::new(s.as_bytes())
                .map_err(|_| Error::spec(field, format!("{s:?} contains a NUL byte")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_sh_and_reports_missing() {
        let env = vec!["PATH=/usr/bin:/bin".to_string()];
        assert!(lookup("sh", &env, Path::new("/")).is_ok());
        let e = lookup("no-such-cmd-xyz", &env, Path::new("/")).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::CommandNotFound);
        let e = lookup("/etc/passwd", &env, Path::new("/")).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::CommandNotExecutable);
    }

    #[test]
    fn rlimits_are_clamped_not_refused() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let r: PosixRlimit = serde_json::from_str(&format!(
            r#"{{"type":"RLIMIT_NOFILE","soft":{},"hard":{}}}"#,
            hard.saturating_add(10),
            hard.saturating_add(10)
        ))
        .unwrap();
        let mut w = Vec::new();
        let plan = plan_rlimits(&[r], &mut w);
        if !caps::has_cap(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_RESOURCE,
        )
        .unwrap()
        {
            assert_eq!(plan[0].2, hard);
            assert_eq!(w.len(), 1);
        }
    }
}
