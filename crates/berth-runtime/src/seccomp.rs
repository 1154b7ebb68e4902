//! Compiling the spec's `linux.seccomp` into BPF with `seccompiler` (pure Rust, no libseccomp).
//!
//! seccompiler gives every rule of one filter the same match action, while an OCI profile
//! mixes actions (Docker's: allow-list, `clone3` → ENOSYS, default EPERM). The kernel runs
//! every installed filter and takes the most restrictive answer (for equal actions, the
//! newest filter wins), so one OCI profile becomes a small stack:
//!
//! - base filter: every syscall that has any rule → ALLOW when its conditions hold, all
//!   else → `defaultAction`;
//! - one filter per other action A: A's rules → A, all else → ALLOW.
//!
//! A syscall matching a rule with action A gets ALLOW from the base and A from its filter,
//! hence A; a syscall matching nothing gets the default. Only the native architecture is
//! compiled (x86_64 or aarch64); names the kernel table does not know are skipped, as
//! libseccomp-based runtimes do for names from newer kernels.

use std::collections::BTreeMap;
use std::str::FromStr;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{Error, Result};

const EPERM: u32 = 1;

fn action(a: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<SeccompAction> {
    Ok(match a {
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActErrno => SeccompAction::Errno(errno.unwrap_or(EPERM)),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActTrace => SeccompAction::Trace(errno.unwrap_or(EPERM)),
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(Error::spec(
                field,
                "SCMP_ACT_NOTIFY needs a listenerPath, which berth does not support yet",
            ))
        }
    })
}

fn arch() -> TargetArch {
    #[cfg(target_arch = "aarch64")]
    {
        TargetArch::aarch64
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        TargetArch::x86_64
    }
}

fn syscall_nr(name: &str) -> Option<i64> {
    syscalls::Sysno::from_str(name).ok().map(|s| s.id() as i64)
}

/// Compile; the programs are installed in order with `seccompiler::apply_filter`.
pub(crate) fn compile(s: &LinuxSeccomp) -> Result<Vec<BpfProgram>> {
    let default = action(
        s.default_action(),
        s.default_errno_ret(),
        "linux.seccomp.defaultAction",
    )?;
    // (action) -> syscall nr -> rules (empty vec = unconditional)
    let mut by_action: Vec<(SeccompAction, BTreeMap<i64, Vec<SeccompRule>>)> = Vec::new();
    let mut base: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(sc.action(), sc.errno_ret(), &format!("{field}.action"))?;
        if act == default {
            continue;
        }
        let mut conds = Vec::new();
        for (j, a) in sc.args().iter().flatten().enumerate() {
            let op = match a.op() {
                LinuxSeccompOperator::ScmpCmpNe => SeccompCmpOp::Ne,
                LinuxSeccompOperator::ScmpCmpLt => SeccompCmpOp::Lt,
                LinuxSeccompOperator::ScmpCmpLe => SeccompCmpOp::Le,
                LinuxSeccompOperator::ScmpCmpEq => SeccompCmpOp::Eq,
                LinuxSeccompOperator::ScmpCmpGe => SeccompCmpOp::Ge,
                LinuxSeccompOperator::ScmpCmpGt => SeccompCmpOp::Gt,
                LinuxSeccompOperator::ScmpCmpMaskedEq => SeccompCmpOp::MaskedEq(a.value()),
            };
            // libseccomp's SCMP_CMP_MASKED_EQ: (arg & value) == valueTwo.
            let value = match a.op() {
                LinuxSeccompOperator::ScmpCmpMaskedEq => a.value_two().unwrap_or(0),
                _ => a.value(),
            };
            if a.index() > 5 {
                return Err(Error::spec(
                    format!("{field}.args[{j}].index"),
                    "syscalls have at most 6 arguments (0..5)",
                ));
            }
            let c = SeccompCondition::new(a.index() as u8, SeccompCmpArgLen::Qword, op, value)
                .map_err(|e| Error::spec(format!("{field}.args[{j}]"), e.to_string()))?;
            conds.push(c);
        }
        let rule = if conds.is_empty() {
            None
        } else {
            Some(
                SeccompRule::new(conds)
                    .map_err(|e| Error::spec(format!("{field}.args"), e.to_string()))?,
            )
        };
        let slot = if act == SeccompAction::Allow {
            None
        } else {
            let pos = match by_action.iter().position(|(a, _)| *a == act) {
                Some(p) => p,
                None => {
                    by_action.push((act.clone(), BTreeMap::new()));
                    by_action.len() - 1
                }
            };
            Some(pos)
        };
        for name in sc.names() {
            let Some(nr) = syscall_nr(name) else { continue };
            add_rule(&mut base, nr, rule.clone());
            if let Some(pos) = slot {
                add_rule(&mut by_action[pos].1, nr, rule.clone());
            }
        }
    }
    let mut out = Vec::new();
    let mk = |rules, mismatch: SeccompAction, matched: SeccompAction| -> Result<BpfProgram> {
        let f = SeccompFilter::new(rules, mismatch, matched, arch())
            .map_err(|e| Error::spec("linux.seccomp", e.to_string()))?;
        f.try_into()
            .map_err(|e: seccompiler::BackendError| Error::spec("linux.seccomp", e.to_string()))
    };
    if default != SeccompAction::Allow {
        out.push(mk(base, default, SeccompAction::Allow)?);
    }
    for (act, rules) in by_action {
        out.push(mk(rules, SeccompAction::Allow, act)?);
    }
    Ok(out)
}

/// An unconditional rule (`None`) absorbs conditional ones: seccompiler encodes
/// "always" as an empty rule list.
fn add_rule(map: &mut BTreeMap<i64, Vec<SeccompRule>>, nr: i64, rule: Option<SeccompRule>) {
    match (map.get_mut(&nr), rule) {
        (Some(v), _) if v.is_empty() => {}
        (Some(v), Some(r)) => v.push(r),
        (Some(v), None) => v.clear(),
        (None, Some(r)) => {
            map.insert(nr, vec![r]);
        }
        (None, None) => {
            map.insert(nr, vec![]);
        }
    }
}

/// Install the programs in order (no TSYNC: the init is single-threaded).
pub(crate) fn apply(progs: &[BpfProgram]) -> std::io::Result<()> {
    for p in progs {
        seccompiler::apply_filter(p).map_err(std::io::Error::other)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_profile_shape_compiles() {
        let json = r#"{
          "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
          "architectures": ["SCMP_ARCH_X86_64"],
          "syscalls": [
            {"names": ["read","write","openat","exit_group","not_a_real_syscall"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}
          ]}"#;
        let s: LinuxSeccomp = serde_json::from_str(json).unwrap();
        let progs = compile(&s).unwrap();
        assert_eq!(progs.len(), 2);
    }

    #[test]
    fn full_docker_profile_compiles() {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/seccomp-oci.json");
        let s: LinuxSeccomp = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        let progs = compile(&s).unwrap();
        assert!(!progs.is_empty());
    }

    #[test]
    fn notify_is_refused_with_field() {
        let s: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )
        .unwrap();
        let e = compile(&s).unwrap_err().to_string();
        assert!(e.contains("linux.seccomp.syscalls[0].action"), "{e}");
    }
}
