//! Generating one classic-BPF seccomp program from a per-syscall rule table.
//!
//! Why not seccompiler's generator (still used to install the program): it emits a linear
//! chain of comparisons, one filter per distinct action. For Docker's default profile that is
//! two filters of ~800 instructions, and the kernel pays for their size at every container
//! start: converting and JIT-compiling them, and then emulating them once for every syscall
//! number to fill its per-syscall action cache (`seccomp_cache_prepare`, with interrupts off).
//! `perf` put that at ~0.7 ms of each start here. This generator instead merges runs of
//! syscall numbers with the same unconditional action into ranges and dispatches on the
//! number with a binary search tree: ~190 instructions for that profile, ~10 executed per
//! syscall instead of up to ~400. Semantics are the old stack's (see `seccomp.rs`), and a
//! differential test checks both programs agree on every syscall number and argument class.

use std::collections::BTreeMap;

use seccompiler::sock_filter;

// Classic BPF opcodes (linux/bpf_common.h).
/// BPF_LD | BPF_W | BPF_ABS.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_ALU_AND_K: u16 = 0x04 | 0x50;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGT_K: u16 = 0x05 | 0x20;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
const BPF_RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// The kernel's limit on a filter's length (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;

/// `SECCOMP_RET_*` return values.
pub(crate) mod ret {
    pub const KILL_PROCESS: u32 = 0x8000_0000;
    pub const KILL_THREAD: u32 = 0;
    pub const TRAP: u32 = 0x0003_0000;
    pub const ERRNO: u32 = 0x0005_0000;
    pub const TRACE: u32 = 0x7ff0_0000;
    pub const LOG: u32 = 0x7ffc_0000;
    pub const ALLOW: u32 = 0x7fff_0000;
    pub const DATA: u32 = 0x0000_ffff;
}

/// How restrictive a return value is: lower wins, as the kernel ranks the answers of
/// stacked filters (`ACTION_ONLY` compared as a signed number).
pub(crate) fn rank(action: u32) -> i32 {
    (action & !ret::DATA) as i32
}

/// A comparison of one 64-bit syscall argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq(u64),
    Ne(u64),
    Lt(u64),
    Le(u64),
    Gt(u64),
    Ge(u64),
    /// `(arg & mask) == value`.
    MaskedEq {
        mask: u64,
        value: u64,
    },
}

/// One condition: argument `index` (0..=5) compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cond {
    pub index: u8,
    pub cmp: Cmp,
}

/// A rule of one syscall: when all `conds` hold (none = always), answer `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub action: u32,
    pub conds: Vec<Cond>,
}

/// Everything the program decides: the native architecture's audit value, the answer for
/// syscalls without a matching rule, and the rules per syscall number. For a syscall, the
/// most restrictive action among its matching rules wins; with none matching, `default`.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub audit_arch: u32,
    pub default: u32,
    pub rules: BTreeMap<u32, Vec<Rule>>,
}

/// What a range of syscall numbers does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Leaf {
    Always(u32),
    /// Conditional rules, most restrictive first; then the default.
    Rules(Vec<Rule>),
}

/// Generate the program. Errors only when it would exceed the kernel's length limit.
pub(crate) fn generate(t: &Table) -> Result<Vec<sock_filter>, String> {
    let mut out = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JMP_JEQ_K, t.audit_arch, 1, 0),
        stmt(BPF_RET_K, ret::KILL_PROCESS),
        stmt(BPF_LD_W_ABS, OFF_NR),
    ];
    let ranges = ranges(t);
    out.extend(tree(&ranges, t.default)?);
    if out.len() > MAX_INSNS {
        return Err(format!(
            "the seccomp profile compiles to {} BPF instructions, more than the kernel's {MAX_INSNS}; use fewer argument rules",
            out.len()
        ));
    }
    Ok(out)
}

/// Sorted, gap-free ranges `(first nr, leaf)` covering 0..=u32::MAX; each range runs to the
/// next one's first number. Neighbours with the same unconditional answer are merged.
fn ranges(t: &Table) -> Vec<(u32, Leaf)> {
    let mut out: Vec<(u32, Leaf)> = vec![(0, Leaf::Always(t.default))];
    for (&nr, rules) in &t.rules {
        let leaf = leaf_of(rules, t.default);
        push(&mut out, nr, leaf);
        if let Some(next) = nr.checked_add(1) {
            push(&mut out, next, Leaf::Always(t.default));
        }
    }
    out
}

fn push(out: &mut Vec<(u32, Leaf)>, from: u32, leaf: Leaf) {
    if let Some((start, last)) = out.last_mut() {
        if *start == from {
            // Only the default filler that followed the previous number can sit here.
            *last = leaf;
            // It may now equal the range before it.
            if out.len() >= 2 && out[out.len() - 2].1 == out[out.len() - 1].1 {
                out.pop();
            }
            return;
        }
        if *last == leaf {
            return;
        }
    }
    out.push((from, leaf));
}

/// The leaf of one syscall: an unconditional rule decides alone (the most restrictive
/// unconditional one), conditional rules that could still win are kept in rank order.
fn leaf_of(rules: &[Rule], default: u32) -> Leaf {
    let always = rules
        .iter()
        .filter(|r| r.conds.is_empty())
        .map(|r| r.action)
        .min_by_key(|a| rank(*a));
    let mut conditional: Vec<Rule> = rules
        .iter()
        .filter(|r| !r.conds.is_empty())
        .filter(|r| always.is_none_or(|a| rank(r.action) < rank(a)))
        .cloned()
        .collect();
    // Stable: among equal ranks the earlier rule answers first.
    conditional.sort_by_key(|r| rank(r.action));
    match (always, conditional.is_empty()) {
        (Some(a), true) => Leaf::Always(a),
        (None, true) => Leaf::Always(default),
        (fallback, false) => {
            let mut rs = conditional;
            rs.push(Rule {
                action: fallback.unwrap_or(default),
                conds: vec![],
            });
            Leaf::Rules(rs)
        }
    }
}

/// A binary search over the ranges on the syscall number in A. Jumps are forward only and
/// conditional offsets are 8-bit, so a far "true" branch goes through a `ja`.
fn tree(ranges: &[(u32, Leaf)], default: u32) -> Result<Vec<sock_filter>, String> {
    if ranges.len() == 1 {
        return leaf_code(&ranges[0].1, default);
    }
    let mid = ranges.len() / 2;
    let left = tree(&ranges[..mid], default)?;
    let right = tree(&ranges[mid..], default)?;
    let k = ranges[mid].0;
    let mut out = Vec::with_capacity(left.len() + right.len() + 2);
    match u8::try_from(left.len()) {
        Ok(skip) => out.push(jump(BPF_JMP_JGE_K, k, skip, 0)),
        Err(_) => {
            out.push(jump(BPF_JMP_JGE_K, k, 0, 1));
            out.push(stmt(BPF_JMP_JA, left.len() as u32));
        }
    }
    out.extend(left);
    out.extend(right);
    Ok(out)
}

/// A jump target inside a rule block, patched once the block is laid out.
#[derive(Clone, Copy)]
enum To {
    Next,
    /// The end of this condition's code (it holds).
    Pass,
    /// The start of the next rule (this one does not hold).
    Fail,
}

struct Insn {
    code: u16,
    k: u32,
    jt: To,
    jf: To,
}

fn leaf_code(leaf: &Leaf, default: u32) -> Result<Vec<sock_filter>, String> {
    let rules = match leaf {
        Leaf::Always(a) => return Ok(vec![stmt(BPF_RET_K, *a)]),
        Leaf::Rules(rules) => rules,
    };
    let mut out = Vec::new();
    for rule in rules {
        let mut block: Vec<(Insn, usize)> = Vec::new(); // (insn, end of its condition)
        for c in &rule.conds {
            let code = cond_code(c);
            let end = block.len() + code.len();
            block.extend(code.into_iter().map(|i| (i, end)));
        }
        // The rule holds: answer. `Fail` lands just past this return.
        let fail = block.len() + 1;
        for (i, (insn, pass)) in block.iter().enumerate() {
            let off = |to: To| -> Result<u8, String> {
                let target = match to {
                    To::Next => i + 1,
                    To::Pass => *pass,
                    To::Fail => fail,
                };
                u8::try_from(target - (i + 1))
                    .map_err(|_| "a seccomp rule has too many argument conditions".to_string())
            };
            out.push(sock_filter {
                code: insn.code,
                jt: off(insn.jt)?,
                jf: off(insn.jf)?,
                k: insn.k,
            });
        }
        out.push(stmt(BPF_RET_K, rule.action));
        if rule.conds.is_empty() {
            return Ok(out);
        }
    }
    out.push(stmt(BPF_RET_K, default));
    Ok(out)
}

/// Load the 32-bit word at `off` of `seccomp_data` into A.
fn ld(off: u32) -> Insn {
    Insn {
        code: BPF_LD_W_ABS,
        k: off,
        jt: To::Next,
        jf: To::Next,
    }
}

/// A conditional jump (or an ALU step, with both targets `Next`).
fn j(code: u16, k: u32, jt: To, jf: To) -> Insn {
    Insn { code, k, jt, jf }
}

/// The code of one condition on the 64-bit argument as two 32-bit halves (little endian:
/// low word first in `seccomp_data`). The syscall number in A is not needed afterwards.
fn cond_code(c: &Cond) -> Vec<Insn> {
    let lo_off = OFF_ARGS + 8 * c.index as u32;
    let hi_off = lo_off + 4;
    let hi = |v: u64| (v >> 32) as u32;
    let lo = |v: u64| v as u32;
    use To::*;
    match c.cmp {
        Cmp::Eq(v) => vec![
            ld(hi_off),
            j(BPF_JMP_JEQ_K, hi(v), Next, Fail),
            ld(lo_off),
            j(BPF_JMP_JEQ_K, lo(v), Next, Fail),
        ],
        Cmp::Ne(v) => vec![
            ld(hi_off),
            j(BPF_JMP_JEQ_K, hi(v), Next, Pass),
            ld(lo_off),
            j(BPF_JMP_JEQ_K, lo(v), Fail, Next),
        ],
        // Above v: the high word above v's, or equal and the low word above (at, for Ge).
        Cmp::Gt(v) => above(v, BPF_JMP_JGT_K, lo_off, Pass, Fail),
        Cmp::Ge(v) => above(v, BPF_JMP_JGE_K, lo_off, Pass, Fail),
        // Lt is not Ge, Le is not Gt: the same test with the outcomes swapped.
        Cmp::Lt(v) => above(v, BPF_JMP_JGE_K, lo_off, Fail, Pass),
        Cmp::Le(v) => above(v, BPF_JMP_JGT_K, lo_off, Fail, Pass),
        Cmp::MaskedEq { mask, value } => vec![
            ld(hi_off),
            j(BPF_ALU_AND_K, hi(mask), Next, Next),
            j(BPF_JMP_JEQ_K, hi(value), Next, Fail),
            ld(lo_off),
            j(BPF_ALU_AND_K, lo(mask), Next, Next),
            j(BPF_JMP_JEQ_K, lo(value), Next, Fail),
        ],
    }
}

/// "arg > v" (`low_op` JGT) or "arg >= v" (JGE) on the two halves of the argument at
/// `lo_off`; `yes` and `no` say where each outcome goes (Pass: the condition holds, Fail:
/// the rule does not match).
fn above(v: u64, low_op: u16, lo_off: u32, yes: To, no: To) -> Vec<Insn> {
    let (hi, lo) = ((v >> 32) as u32, v as u32);
    vec![
        ld(lo_off + 4),
        j(BPF_JMP_JGT_K, hi, yes, To::Next),
        j(BPF_JMP_JEQ_K, hi, To::Next, no),
        ld(lo_off),
        j(low_op, lo, yes, no),
    ]
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// A classic-BPF interpreter for the instructions above, for tests: the answer of `prog`
/// for syscall `nr` on `arch` with `args`.
#[cfg(test)]
pub(crate) fn run(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            OFF_NR => nr,
            OFF_ARCH => arch,
            o if (OFF_ARGS..OFF_ARGS + 48).contains(&o) => {
                let i = ((o - OFF_ARGS) / 8) as usize;
                if (o - OFF_ARGS).is_multiple_of(8) {
                    args[i] as u32
                } else {
                    (args[i] >> 32) as u32
                }
            }
            o => panic!("load at offset {o}"),
        }
    };
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let i = &prog[pc];
        pc += 1;
        match i.code {
            BPF_LD_W_ABS => a = word(i.k),
            BPF_ALU_AND_K => a &= i.k,
            BPF_JMP_JA => pc += i.k as usize,
            BPF_JMP_JEQ_K | BPF_JMP_JGT_K | BPF_JMP_JGE_K => {
                let t = match i.code {
                    BPF_JMP_JEQ_K => a == i.k,
                    BPF_JMP_JGT_K => a > i.k,
                    _ => a >= i.k,
                };
                pc += if t { i.jt } else { i.jf } as usize;
            }
            BPF_RET_K => return i.k,
            c => panic!("unknown opcode {c:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARCH: u32 = 0xC000_003E;

    fn table(default: u32, rules: &[(u32, Rule)]) -> Table {
        let mut t = Table {
            audit_arch: ARCH,
            default,
            rules: BTreeMap::new(),
        };
        for (nr, r) in rules {
            t.rules.entry(*nr).or_default().push(r.clone());
        }
        t
    }

    fn always(action: u32) -> Rule {
        Rule {
            action,
            conds: vec![],
        }
    }

    #[test]
    fn ranges_merge_and_cover_everything() {
        let eperm = ret::ERRNO | 1;
        let t = table(
            eperm,
            &[
                (0, always(ret::ALLOW)),
                (1, always(ret::ALLOW)),
                (2, always(ret::ALLOW)),
                (5, always(ret::ALLOW)),
                (u32::MAX, always(ret::ALLOW)),
            ],
        );
        let r = ranges(&t);
        let starts: Vec<u32> = r.iter().map(|(s, _)| *s).collect();
        assert_eq!(starts, vec![0, 3, 5, 6, u32::MAX]);
        let p = generate(&t).unwrap();
        for (nr, want) in [
            (0, ret::ALLOW),
            (2, ret::ALLOW),
            (3, eperm),
            (4, eperm),
            (5, ret::ALLOW),
            (6, eperm),
            (0x4000_0000, eperm),
            (u32::MAX, ret::ALLOW),
        ] {
            assert_eq!(run(&p, ARCH, nr, [0; 6]), want, "nr {nr}");
        }
        assert_eq!(run(&p, 0x4000_0003, 0, [0; 6]), ret::KILL_PROCESS);
    }

    #[test]
    fn every_comparison_on_both_halves() {
        let vals = [
            0u64,
            1,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0001,
            0xffff_ffff_ffff_fffe,
            u64::MAX,
        ];
        let eperm = ret::ERRNO | 1;
        for &v in &vals {
            for cmp in [
                Cmp::Eq(v),
                Cmp::Ne(v),
                Cmp::Lt(v),
                Cmp::Le(v),
                Cmp::Gt(v),
                Cmp::Ge(v),
                Cmp::MaskedEq {
                    mask: 0xffff_0000_0000_ffff,
                    value: v & 0xffff_0000_0000_ffff,
                },
            ] {
                let rule = Rule {
                    action: ret::ALLOW,
                    conds: vec![Cond { index: 3, cmp }],
                };
                let p = generate(&table(eperm, &[(7, rule)])).unwrap();
                for &x in &vals {
                    let want = match cmp {
                        Cmp::Eq(v) => x == v,
                        Cmp::Ne(v) => x != v,
                        Cmp::Lt(v) => x < v,
                        Cmp::Le(v) => x <= v,
                        Cmp::Gt(v) => x > v,
                        Cmp::Ge(v) => x >= v,
                        Cmp::MaskedEq { mask, value } => x & mask == value,
                    };
                    let got = run(&p, ARCH, 7, [0, 0, 0, x, 0, 0]);
                    assert_eq!(got == ret::ALLOW, want, "{cmp:?} on {x:#x}: got {got:#x}");
                }
            }
        }
    }

    #[test]
    fn most_restrictive_match_wins_else_default() {
        let enosys = ret::ERRNO | 38;
        let eperm = ret::ERRNO | 1;
        let cond = |v| Cond {
            index: 0,
            cmp: Cmp::Eq(v),
        };
        let t = table(
            eperm,
            &[
                (
                    9,
                    Rule {
                        action: ret::ALLOW,
                        conds: vec![cond(1)],
                    },
                ),
                (
                    9,
                    Rule {
                        action: enosys,
                        conds: vec![cond(2)],
                    },
                ),
                (
                    9,
                    Rule {
                        action: ret::KILL_THREAD,
                        conds: vec![
                            cond(1),
                            Cond {
                                index: 1,
                                cmp: Cmp::Gt(5),
                            },
                        ],
                    },
                ),
                (10, always(ret::ALLOW)),
                (
                    10,
                    Rule {
                        action: ret::LOG,
                        conds: vec![cond(1)],
                    },
                ),
            ],
        );
        let p = generate(&t).unwrap();
        assert_eq!(run(&p, ARCH, 9, [1, 0, 0, 0, 0, 0]), ret::ALLOW);
        assert_eq!(run(&p, ARCH, 9, [1, 6, 0, 0, 0, 0]), ret::KILL_THREAD);
        assert_eq!(run(&p, ARCH, 9, [2, 0, 0, 0, 0, 0]), enosys);
        assert_eq!(run(&p, ARCH, 9, [3, 0, 0, 0, 0, 0]), eperm);
        // LOG is more restrictive than ALLOW, so the conditional LOG rule is checked first.
        assert_eq!(run(&p, ARCH, 10, [1, 0, 0, 0, 0, 0]), ret::LOG);
        assert_eq!(run(&p, ARCH, 10, [0, 0, 0, 0, 0, 0]), ret::ALLOW);
    }

    #[test]
    fn far_branches_use_ja() {
        // Many conditional syscalls make subtrees longer than an 8-bit jump.
        let rules: Vec<(u32, Rule)> = (0..200u32)
            .map(|nr| {
                (
                    nr * 2,
                    Rule {
                        action: ret::ALLOW,
                        conds: vec![Cond {
                            index: 0,
                            cmp: Cmp::Eq(nr as u64),
                        }],
                    },
                )
            })
            .collect();
        let t = table(ret::ERRNO | 1, &rules);
        let p = generate(&t).unwrap();
        assert!(p.iter().any(|i| i.code == BPF_JMP_JA));
        for nr in 0..400u32 {
            let want = if nr % 2 == 0 {
                ret::ALLOW
            } else {
                ret::ERRNO | 1
            };
            assert_eq!(run(&p, ARCH, nr, [(nr / 2) as u64, 0, 0, 0, 0, 0]), want);
            if nr % 2 == 0 {
                assert_eq!(run(&p, ARCH, nr, [9999, 0, 0, 0, 0, 0]), ret::ERRNO | 1);
            }
        }
    }
}
