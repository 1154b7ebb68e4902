//! Compiling the spec's `linux.seccomp` into one BPF program (pure Rust, no libseccomp).
//!
//! Semantics: for each syscall, the most restrictive action among the rules that match
//! (all their argument conditions hold) answers; with none matching, `defaultAction`. Rules
//! whose action is the default are dropped (they cannot change the answer). This is what
//! the kernel computes for a stack of filters, which is how berth used to install a profile
//! with seccompiler (one filter per action; kept in the tests as the reference the new
//! generator is checked against). The program itself comes from [`crate::seccomp_bpf`].
//! Only the native architecture is compiled (x86_64 or aarch64); names the kernel table does
//! not know are skipped, as libseccomp-based runtimes do for names from newer kernels.

use std::str::FromStr;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use seccompiler::BpfProgram;

use crate::error::{Error, Result};
use crate::seccomp_bpf::{ret, Cmp, Cond, Rule, Table};

const EPERM: u32 = 1;

fn action(a: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<u32> {
    Ok(match a {
        LinuxSeccompAction::ScmpActAllow => ret::ALLOW,
        LinuxSeccompAction::ScmpActErrno => ret::ERRNO | (errno.unwrap_or(EPERM) & ret::DATA),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ret::KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => ret::KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => ret::TRAP,
        LinuxSeccompAction::ScmpActTrace => ret::TRACE | (errno.unwrap_or(EPERM) & ret::DATA),
        LinuxSeccompAction::ScmpActLog => ret::LOG,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(Error::spec(
                field,
                "SCMP_ACT_NOTIFY needs a listenerPath, which berth does not support yet",
            ))
        }
    })
}

/// The native architecture's `AUDIT_ARCH_*` value.
fn audit_arch() -> u32 {
    #[cfg(target_arch = "aarch64")]
    {
        0xC000_00B7
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        0xC000_003E
    }
}

fn syscall_nr(name: &str) -> Option<u32> {
    syscalls::Sysno::from_str(name).ok().map(|s| s.id() as u32)
}

/// The rule table of a profile.
fn table(s: &LinuxSeccomp) -> Result<Table> {
    let default = action(
        s.default_action(),
        s.default_errno_ret(),
        "linux.seccomp.defaultAction",
    )?;
    let mut t = Table {
        audit_arch: audit_arch(),
        default,
        rules: Default::default(),
    };
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(sc.action(), sc.errno_ret(), &format!("{field}.action"))?;
        if act == default {
            continue;
        }
        let mut conds = Vec::new();
        for (j, a) in sc.args().iter().flatten().enumerate() {
            if a.index() > 5 {
                return Err(Error::spec(
                    format!("{field}.args[{j}].index"),
                    "syscalls have at most 6 arguments (0..5)",
                ));
            }
            let v = a.value();
            let cmp = match a.op() {
                LinuxSeccompOperator::ScmpCmpNe => Cmp::Ne(v),
                LinuxSeccompOperator::ScmpCmpLt => Cmp::Lt(v),
                LinuxSeccompOperator::ScmpCmpLe => Cmp::Le(v),
                LinuxSeccompOperator::ScmpCmpEq => Cmp::Eq(v),
                LinuxSeccompOperator::ScmpCmpGe => Cmp::Ge(v),
                LinuxSeccompOperator::ScmpCmpGt => Cmp::Gt(v),
                // libseccomp's SCMP_CMP_MASKED_EQ: (arg & value) == valueTwo.
                LinuxSeccompOperator::ScmpCmpMaskedEq => Cmp::MaskedEq {
                    mask: v,
                    value: a.value_two().unwrap_or(0),
                },
            };
            conds.push(Cond {
                index: a.index() as u8,
                cmp,
            });
        }
        for name in sc.names() {
            let Some(nr) = syscall_nr(name) else { continue };
            t.rules.entry(nr).or_default().push(Rule {
                action: act,
                conds: conds.clone(),
            });
        }
    }
    Ok(t)
}

/// Compile; the programs are installed in order with `seccompiler::apply_filter` (one
/// program now; a list so a profile could still need more).
pub(crate) fn compile(s: &LinuxSeccomp) -> Result<Vec<BpfProgram>> {
    let t = table(s)?;
    let prog = crate::seccomp_bpf::generate(&t).map_err(|e| Error::spec("linux.seccomp", e))?;
    Ok(vec![prog])
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
    use crate::seccomp_bpf::{rank, run};
    use std::collections::BTreeMap;

    const ARCH: u32 = 0xC000_003E;

    /// The answer of a stack of programs, as the kernel combines them: the most restrictive
    /// return value; among equal actions the newest (last installed) filter's.
    fn run_stack(progs: &[BpfProgram], nr: u32, args: [u64; 6]) -> u32 {
        let mut best: Option<u32> = None;
        for p in progs.iter().rev() {
            let r = run(p, ARCH, nr, args);
            if best.is_none_or(|b| rank(r) < rank(b)) {
                best = Some(r);
            }
        }
        best.expect("at least one program")
    }

    /// berth's previous compiler, built on seccompiler's generator: one filter for the allow
    /// list and one per other action. The reference the single program must agree with.
    fn reference(s: &LinuxSeccomp) -> Vec<BpfProgram> {
        use seccompiler::{
            SeccompAction as A, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
            SeccompRule, TargetArch,
        };
        let to_action = |r: u32| -> A {
            match r & !ret::DATA {
                ret::ALLOW => A::Allow,
                ret::ERRNO => A::Errno(r & ret::DATA),
                ret::KILL_THREAD => A::KillThread,
                ret::KILL_PROCESS => A::KillProcess,
                ret::TRAP => A::Trap,
                ret::TRACE => A::Trace(r & ret::DATA),
                ret::LOG => A::Log,
                other => panic!("action {other:#x}"),
            }
        };
        let t = table(s).unwrap();
        let default = to_action(t.default);
        let mut base: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        let mut by_action: Vec<(A, BTreeMap<i64, Vec<SeccompRule>>)> = Vec::new();
        fn add(map: &mut BTreeMap<i64, Vec<SeccompRule>>, nr: i64, rule: Option<SeccompRule>) {
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
        for (nr, rules) in &t.rules {
            for r in rules {
                let conds: Vec<SeccompCondition> = r
                    .conds
                    .iter()
                    .map(|c| {
                        let (op, v) = match c.cmp {
                            Cmp::Eq(v) => (SeccompCmpOp::Eq, v),
                            Cmp::Ne(v) => (SeccompCmpOp::Ne, v),
                            Cmp::Lt(v) => (SeccompCmpOp::Lt, v),
                            Cmp::Le(v) => (SeccompCmpOp::Le, v),
                            Cmp::Gt(v) => (SeccompCmpOp::Gt, v),
                            Cmp::Ge(v) => (SeccompCmpOp::Ge, v),
                            Cmp::MaskedEq { mask, value } => (SeccompCmpOp::MaskedEq(mask), value),
                        };
                        SeccompCondition::new(c.index, SeccompCmpArgLen::Qword, op, v).unwrap()
                    })
                    .collect();
                let rule = (!conds.is_empty()).then(|| SeccompRule::new(conds).unwrap());
                let act = to_action(r.action);
                add(&mut base, *nr as i64, rule.clone());
                if act != A::Allow {
                    let pos = match by_action.iter().position(|(a, _)| *a == act) {
                        Some(p) => p,
                        None => {
                            by_action.push((act.clone(), BTreeMap::new()));
                            by_action.len() - 1
                        }
                    };
                    add(&mut by_action[pos].1, *nr as i64, rule);
                }
            }
        }
        let mk = |rules, mismatch, matched| -> BpfProgram {
            SeccompFilter::new(rules, mismatch, matched, TargetArch::x86_64)
                .unwrap()
                .try_into()
                .unwrap()
        };
        let mut out = Vec::new();
        if default != A::Allow {
            out.push(mk(base, default, A::Allow));
        }
        for (act, rules) in by_action {
            out.push(mk(rules, A::Allow, act));
        }
        out
    }

    /// Argument values around every constant the profile compares with.
    fn probes(s: &LinuxSeccomp) -> Vec<u64> {
        let mut v = vec![0u64, 1, u64::MAX, 0x1_0000_0000];
        for sc in s.syscalls().iter().flatten() {
            for a in sc.args().iter().flatten() {
                for x in [a.value(), a.value_two().unwrap_or(0)] {
                    v.extend([x, x.wrapping_sub(1), x.wrapping_add(1), !x, x | 0x8000_0000]);
                }
            }
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    fn differential(json: &str) {
        let s: LinuxSeccomp = serde_json::from_str(json).unwrap();
        let new = compile(&s).unwrap();
        assert_eq!(new.len(), 1);
        let old = reference(&s);
        let probes = probes(&s);
        let t = table(&s).unwrap();
        let nrs: Vec<u32> = (0..600u32)
            .chain([0x4000_0000, 0x4000_0001, u32::MAX - 1, u32::MAX])
            .collect();
        for nr in nrs {
            // Which argument slots this syscall's rules look at.
            let slots: Vec<usize> = t
                .rules
                .get(&nr)
                .map(|rs| {
                    let mut v: Vec<usize> = rs
                        .iter()
                        .flat_map(|r| r.conds.iter().map(|c| c.index as usize))
                        .collect();
                    v.sort_unstable();
                    v.dedup();
                    v
                })
                .unwrap_or_default();
            let mut cases: Vec<[u64; 6]> = vec![[0; 6]];
            for &slot in &slots {
                let mut next = Vec::new();
                for c in &cases {
                    for &p in &probes {
                        let mut c = *c;
                        c[slot] = p;
                        next.push(c);
                    }
                }
                cases = next;
                if cases.len() > 20_000 {
                    break;
                }
            }
            for args in cases {
                assert_eq!(
                    run(&new[0], ARCH, nr, args),
                    run_stack(&old, nr, args),
                    "syscall {nr} args {args:x?}"
                );
            }
        }
        assert_eq!(run(&new[0], 0x4000_0003, 0, [0; 6]), ret::KILL_PROCESS);
    }

    #[test]
    fn docker_default_profile_agrees_with_the_filter_stack() {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/seccomp-oci.json");
        let json = std::fs::read_to_string(p).unwrap();
        differential(&json);
        let s: LinuxSeccomp = serde_json::from_str(&json).unwrap();
        let new = compile(&s).unwrap();
        let old: usize = reference(&s).iter().map(Vec::len).sum();
        assert!(
            new[0].len() * 3 < old,
            "{} instructions, the filter stack had {old}",
            new[0].len()
        );
    }

    #[test]
    fn mixed_actions_agree_with_the_filter_stack() {
        differential(
            r#"{
          "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
          "syscalls": [
            {"names": ["read","write","openat","exit_group","not_a_real_syscall"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index":0,"value":40,"op":"SCMP_CMP_NE"}]},
            {"names": ["mmap"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mmap"], "action": "SCMP_ACT_KILL", "args": [{"index":2,"value":7,"op":"SCMP_CMP_GE"},{"index":3,"value":100,"op":"SCMP_CMP_LT"}]},
            {"names": ["kill"], "action": "SCMP_ACT_TRAP", "args": [{"index":1,"value":9,"op":"SCMP_CMP_LE"}]},
            {"names": ["kill"], "action": "SCMP_ACT_LOG", "args": [{"index":1,"value":3,"op":"SCMP_CMP_GT"}]},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}
          ]}"#,
        );
        differential(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [
            {"names": ["mkdir","mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["chmod"], "action": "SCMP_ACT_KILL_PROCESS", "args": [{"index":1,"value":2048,"valueTwo":2048,"op":"SCMP_CMP_MASKED_EQ"}]}
          ]}"#,
        );
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
