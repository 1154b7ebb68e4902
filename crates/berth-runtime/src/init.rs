//! The child side: the helper (joins namespaces, clones the init) and the init itself, which
//! sets up the container in the order the kernel and the spec require and then blocks on
//! the exec fifo until `start`. Nothing here prints: errors travel to the parent over the
//! sync socket (stdout/stderr locks may be held by a thread of the parent at fork time).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Process, Spec};
use seccompiler::BpfProgram;

use crate::capabilities::{self, CapPlan};
use crate::error::{Context, Error, Result};
use crate::namespaces::NsPlan;
use crate::process;
use crate::rootfs::{self, CgroupMount, RootfsPlan};
use crate::seccomp;
use crate::sync::{self, Msg};

/// How to turn a set-up process into the container's process (shared by init and exec).
pub(crate) struct ProcPlan {
    pub process: Process,
    pub caps: CapPlan,
    pub rlimits: Vec<(nix::sys::resource::Resource, u64, u64)>,
    pub seccomp: Vec<BpfProgram>,
    pub setgroups_allowed: bool,
    pub terminal: bool,
    pub stdio: [Option<OwnedFd>; 3],
}

impl ProcPlan {
    /// Descriptors the child must keep: the sync socket and the stdio it was given.
    pub fn keep_fds(&self, sock: &OwnedFd) -> Vec<std::os::fd::RawFd> {
        let mut v = vec![sock.as_raw_fd()];
        v.extend(self.stdio.iter().flatten().map(|f| f.as_raw_fd()));
        v
    }
}

pub(crate) struct InitPlan {
    pub spec: Spec,
    pub rootfs: PathBuf,
    pub ns: NsPlan,
    pub fifo: PathBuf,
    pub cgroups: Vec<CgroupMount>,
    pub proc: ProcPlan,
}

/// Runs in the helper (single-threaded child of the caller): join the container's cgroups,
/// join namespaces, clone the init as the caller's child, report its pid.
///
/// The helper moves *itself* into the cgroups (`CgroupManager::join_self`) so the init is
/// born there: on v1 the parent's `cgroup.procs` write waits for an RCU grace period after a
/// quiet spell (11-15 ms measured), a thread self-move into `tasks` does not (this helper is
/// a fork child, so single-threaded, and the init inherits its cgroups). It does so first, while `/sys/fs/cgroup` is still the host's
/// (a joined mount namespace would hide it) and before a user namespace takes our rights.
/// The helper exits right after the clone, so it leaves the cgroups before anyone waits
/// for them to empty.
pub(crate) fn helper_main(
    cgroup: Option<&dyn berth_cgroups::CgroupManager>,
    joins: &[(CloneFlags, PathBuf)],
    new_time: Option<&[(String, i64, u32)]>,
    clone_flags: CloneFlags,
    sock: &OwnedFd,
    keep: &[std::os::fd::RawFd],
    child: impl FnOnce() -> i32,
) -> i32 {
    let r = (|| -> Result<i32> {
        berth_sys::close_fds_except(keep).ctx(|| "close inherited descriptors".into())?;
        if let Some(cg) = cgroup {
            cg.join_self().map_err(|e| {
                Error::Init(format!(
                    "join the container's cgroups before starting its process: {e}"
                ))
            })?;
        }
        // Open every namespace first: once in a user namespace we may no longer open the
        // others (e.g. /proc/PID/ns/* of a process whose credentials just changed).
        let mut fds = Vec::with_capacity(joins.len());
        for (f, path) in joins {
            let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                .ctx(|| format!("linux.namespaces: open {}", path.display()))?;
            fds.push((*f, fd, path));
        }
        for (f, fd, path) in fds {
            setns(fd.as_fd(), f).ctx(|| format!("linux.namespaces: join {}", path.display()))?;
        }
        if let Some(offsets) = new_time {
            unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
                .ctx(|| "linux.namespaces: new time namespace".into())?;
            if !offsets.is_empty() {
                let mut s = String::new();
                for (clock, secs, nanos) in offsets {
                    s.push_str(&format!("{clock} {secs} {nanos}\n"));
                }
                std::fs::write("/proc/self/timens_offsets", s)
                    .ctx(|| "linux.timeOffsets".into())?;
            }
        }
        berth_sys::clone_parent(clone_flags.bits() as u64, child)
            .ctx(|| format!("clone with namespaces {clone_flags:?}"))
    })();
    match r {
        Ok(pid) => match sync::send(sock.as_fd(), &Msg::Pid(pid)) {
            Ok(()) => 0,
            Err(_) => 1,
        },
        Err(e) => {
            sync::report(sock, &e);
            1
        }
    }
}

/// The init's main: set everything up, report Ready, wait for start, exec.
pub(crate) fn init_main(plan: InitPlan, sock: OwnedFd) -> i32 {
    match init(plan, &sock) {
        Ok(never) => match never {},
        Err(e) => {
            sync::report(&sock, &e);
            1
        }
    }
}

fn init(mut plan: InitPlan, sock: &OwnedFd) -> Result<std::convert::Infallible> {
    if !(plan.ns.new_user || plan.ns.joined_user) {
        // See exec_main: a container process (e.g. one exec'd into a created container)
        // must not reach the host runtime binary through our /proc/PID/exe. In a user
        // namespace container root cannot write that binary anyway, and a non-dumpable
        // process there could not open its own /proc/self/fd (owned by the host's root).
        nix::sys::prctl::set_dumpable(false).ctx(|| "PR_SET_DUMPABLE".into())?;
    }
    // First Go: uid/gid maps are written (the parent attaches our cgroups meanwhile).
    sync::wait_go(sock.as_fd()).ctx(|| "wait for parent".into())?;
    if plan.ns.new_user {
        // We have every capability in the new user namespace but are not yet uid 0 in it.
        let _ = nix::unistd::setresgid(0.into(), 0.into(), 0.into());
        let _ = nix::unistd::setresuid(0.into(), 0.into(), 0.into());
    }
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    set_stdio(&mut plan.proc.stdio)?;
    // Keep a handle on the fifo before pivot_root hides the host path.
    let fifo = open(&plan.fifo, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| format!("open {}", plan.fifo.display()))?;

    // Second Go: we are in our cgroups; only then may the cgroup namespace be made, as its
    // root is the cgroup we are in when we unshare it.
    let mut joined = false;
    let new_cgroup = plan.ns.new_cgroup;
    let mut join = || -> Result<()> {
        if !joined {
            sync::wait_go(sock.as_fd()).ctx(|| "wait for cgroups".into())?;
            if new_cgroup {
                unshare(CloneFlags::CLONE_NEWCGROUP).ctx(|| "new cgroup namespace".into())?;
            }
            joined = true;
        }
        Ok(())
    };
    let rp = RootfsPlan {
        sys: &rootfs::Kernel,
        cgroups_joined: std::cell::RefCell::new(&mut join),
        rootfs: &plan.rootfs,
        spec: &plan.spec,
        cgroups: &plan.cgroups,
        cgroupns: plan.ns.new_cgroup,
        userns: plan.ns.new_user || plan.ns.joined_user,
    };
    let t0 = std::time::Instant::now();
    rootfs::prepare(&rp)?;
    (rp.cgroups_joined.borrow_mut())()?;
    let t_prepared = t0.elapsed();
    // createRuntime hooks run in the parent now; createContainer hooks here, in our mount
    // namespace, before pivot_root.
    sync::send(sock.as_fd(), &Msg::CreateRuntime).ctx(|| "sync".into())?;
    let state_json = sync::wait_go(sock.as_fd())
        .ctx(|| "wait for createRuntime hooks".into())?
        .unwrap_or_default();
    if let Some(h) = plan
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().clone())
    {
        run_hooks_json(&h, &state_json, "createContainer")?;
    }
    let t_hooks = t0.elapsed();
    rootfs::pivot(&rootfs::Kernel, &plan.rootfs)?;
    let t_pivoted = t0.elapsed();
    if plan.proc.terminal {
        setup_console(sock, &plan.proc.process, true)?;
    }
    if plan.ns.new_uts {
        if let Some(h) = plan.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            nix::unistd::sethostname(h).ctx(|| "hostname".into())?;
        }
        if let Some(d) = plan.spec.domainname().as_deref().filter(|d| !d.is_empty()) {
            berth_sys::set_domainname(d).ctx(|| "domainname".into())?;
        }
    }
    if let Some(sysctl) = plan.spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        for (k, v) in sysctl {
            let path = format!("/proc/sys/{}", k.replace('.', "/"));
            std::fs::write(&path, v).ctx(|| format!("linux.sysctl.{k}"))?;
        }
    }
    // After the sysctls: /proc/sys becomes read-only here.
    rootfs::finish(&rootfs::Kernel, &plan.spec)?;
    let (path, args, env) = finalize_process(&plan.proc)?;
    let us = |d: std::time::Duration| d.as_micros() as u64;
    let phases = vec![
        (
            "init: mount rootfs, /proc, /dev, volumes".to_string(),
            us(t_prepared),
        ),
        (
            "init: createRuntime hooks handshake".to_string(),
            us(t_hooks - t_prepared),
        ),
        ("init: pivot_root".to_string(), us(t_pivoted - t_hooks)),
        (
            "init: masks, read-only paths, hostname, find the program".to_string(),
            us(t0.elapsed() - t_pivoted),
        ),
    ];
    sync::send(sock.as_fd(), &Msg::Phases(phases)).ctx(|| "sync".into())?;
    sync::send(sock.as_fd(), &Msg::Ready).ctx(|| "sync".into())?;
    // From here on the parent may be gone: failures go to the container's stderr.
    let r = (|| -> Result<std::convert::Infallible> {
        // Block until `start` opens the fifo for reading.
        let w = open(
            Path::new(&format!("/proc/self/fd/{}", fifo.as_raw_fd())),
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| "open exec fifo (is /proc mounted?)".into())?;
        nix::unistd::write(&w, b"0").ctx(|| "write exec fifo".into())?;
        drop(w);
        drop(fifo);
        let hooks = plan.spec.hooks().as_ref();
        if let Some(h) = hooks.and_then(|h| h.start_container().clone()) {
            run_hooks_json(&h, &state_json, "startContainer")?;
        }
        exec_now(&plan.proc, &path, &args, &env)
    })();
    match r {
        Ok(never) => match never {},
        Err(e) => {
            let msg = format!("berth runtime: container init: {e}\n");
            let _ = nix::unistd::write(std::io::stderr(), msg.as_bytes());
            berth_sys::exit_now(1)
        }
    }
}

/// The exec'd process's main (after the helper joined the container's namespaces).
pub(crate) fn exec_main(mut proc: ProcPlan, sock: OwnedFd) -> i32 {
    let r = (|| -> Result<std::convert::Infallible> {
        // Why: until execve this process is a copy of the runtime, visible inside the
        // container's pid namespace; a container process must not open our /proc/PID/exe
        // and later write through it to the host binary (CVE-2019-5736). Non-dumpable
        // processes refuse that; execve makes the new program dumpable again.
        nix::sys::prctl::set_dumpable(false).ctx(|| "PR_SET_DUMPABLE".into())?;
        sync::wait_go(sock.as_fd()).ctx(|| "wait for parent".into())?;
        nix::unistd::setsid().ctx(|| "setsid".into())?;
        set_stdio(&mut proc.stdio)?;
        if proc.terminal {
            setup_console(&sock, &proc.process, false)?;
        }
        let (path, args, env) = finalize_process(&proc)?;
        sync::send(sock.as_fd(), &Msg::Ready).ctx(|| "sync".into())?;
        exec_now(&proc, &path, &args, &env)
    })();
    match r {
        Ok(never) => match never {},
        Err(e) => {
            sync::report(&sock, &e);
            1
        }
    }
}

fn run_hooks_json(hooks: &[oci_spec::runtime::Hook], state_json: &str, phase: &str) -> Result<()> {
    let state: crate::state::State = serde_json::from_str(state_json)
        .map_err(|e| Error::Init(format!("state for {phase} hooks: {e}")))?;
    crate::hooks::run(hooks, &state, phase)
}

fn set_stdio(stdio: &mut [Option<OwnedFd>; 3]) -> Result<()> {
    // dup first so that e.g. a stdout passed as fd 0 is not clobbered by dup2 onto 0.
    let dups: Vec<Option<OwnedFd>> = stdio
        .iter()
        .map(|f| f.as_ref().map(nix::unistd::dup).transpose())
        .collect::<std::result::Result<_, _>>()
        .ctx(|| "dup stdio".into())?;
    for f in stdio.iter_mut() {
        *f = None;
    }
    if let Some(f) = &dups[0] {
        nix::unistd::dup2_stdin(f).ctx(|| "stdin".into())?;
    }
    if let Some(f) = &dups[1] {
        nix::unistd::dup2_stdout(f).ctx(|| "stdout".into())?;
    }
    if let Some(f) = &dups[2] {
        nix::unistd::dup2_stderr(f).ctx(|| "stderr".into())?;
    }
    Ok(())
}

/// Open a pty from the container's devpts, hand the master to the parent, make the slave
/// our stdio and controlling terminal.
/// The init (`console_dev`) also binds the slave over /dev/console, as runc does.
fn setup_console(sock: &OwnedFd, p: &Process, console_dev: bool) -> Result<()> {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "open /dev/ptmx".into())?;
    grantpt(&master).ctx(|| "grantpt".into())?;
    unlockpt(&master).ctx(|| "unlockpt".into())?;
    let name = ptsname_r(&master).ctx(|| "ptsname".into())?;
    let slave = open(
        Path::new(&name),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {name}"))?;
    if console_dev {
        let console = Path::new("/dev/console");
        if std::fs::symlink_metadata(console).is_err() {
            let _ = std::fs::File::create(console);
        }
        nix::mount::mount(
            Some(Path::new(&name)),
            console,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| "bind the terminal over /dev/console".into())?;
    }
    if let Some(size) = p.console_size() {
        berth_sys::set_window_size(slave.as_fd(), size.height() as u16, size.width() as u16)
            .ctx(|| "process.consoleSize".into())?;
    }
    let uid = p.user().uid();
    let _ = nix::unistd::fchown(&slave, Some(uid.into()), None);
    sync::send_with_fd(sock.as_fd(), &Msg::Console(name), master.as_fd())
        .ctx(|| "send console".into())?;
    drop(master);
    nix::unistd::dup2_stdin(&slave).ctx(|| "console stdin".into())?;
    nix::unistd::dup2_stdout(&slave).ctx(|| "console stdout".into())?;
    nix::unistd::dup2_stderr(&slave).ctx(|| "console stderr".into())?;
    berth_sys::set_controlling_terminal(std::io::stdin().as_fd()).ctx(|| "TIOCSCTTY".into())?;
    Ok(())
}

/// rlimits → no_new_privileges → seccomp (if it needs privileges) → bounding set → user →
/// capability sets → umask → cwd → PATH lookup. Returns what to execve.
fn finalize_process(p: &ProcPlan) -> Result<(CString, Vec<CString>, Vec<CString>)> {
    let proc = &p.process;
    process::apply_rlimits(&p.rlimits).ctx(|| "process.rlimits".into())?;
    if let Some(adj) = proc.oom_score_adj() {
        // Raising is always allowed; lowering needs CAP_SYS_RESOURCE (warned in the parent).
        let _ = std::fs::write("/proc/self/oom_score_adj", adj.to_string());
    }
    let nnp = proc.no_new_privileges().unwrap_or(false);
    if nnp {
        nix::sys::prctl::set_no_new_privs().ctx(|| "process.noNewPrivileges".into())?;
    } else {
        // Without no_new_privileges, loading a filter needs CAP_SYS_ADMIN: do it while we
        // still hold it.
        seccomp::apply(&p.seccomp).ctx(|| "linux.seccomp".into())?;
    }
    capabilities::apply_bounding(&p.caps).ctx(|| "process.capabilities.bounding".into())?;
    nix::sys::prctl::set_keepcaps(true).ctx(|| "PR_SET_KEEPCAPS".into())?;
    process::set_user(proc, p.setgroups_allowed).ctx(|| "process.user".into())?;
    nix::sys::prctl::set_keepcaps(false).ctx(|| "PR_SET_KEEPCAPS".into())?;
    capabilities::apply_sets(&p.caps).ctx(|| "process.capabilities".into())?;
    let umask = proc.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(Mode::from_bits_truncate(umask as libc::mode_t));
    nix::unistd::chdir(proc.cwd()).ctx(|| format!("process.cwd {}", proc.cwd().display()))?;
    let env = process::env_with_home(proc.env().as_deref().unwrap_or(&[]), proc.user().uid());
    let args = proc.args().clone().unwrap_or_default();
    let path = process::lookup(&args[0], &env, proc.cwd())?;
    let path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::spec("process.args[0]", "contains a NUL byte"))?;
    let args = process::cstrings(&args, "process.args")?;
    let env = process::cstrings(&env, "process.env")?;
    berth_sys::mark_cloexec_from(3).ctx(|| "close inherited descriptors".into())?;
    berth_sys::reset_signals().ctx(|| "reset signal dispositions".into())?;
    Ok((path, args, env))
}

fn exec_now(
    p: &ProcPlan,
    path: &CString,
    args: &[CString],
    env: &[CString],
) -> Result<std::convert::Infallible> {
    if p.process.no_new_privileges().unwrap_or(false) {
        // As late as possible: fewer syscalls of our own must pass the filter.
        seccomp::apply(&p.seccomp).ctx(|| "linux.seccomp".into())?;
    }
    let e = nix::unistd::execve(path, args, env).unwrap_err();
    // The parent is gone by now (after start); tell the container's stderr (raw write:
    // std's stderr lock may be held by a thread of the parent at fork time).
    let msg = format!("berth runtime: exec {}: {e}\n", path.to_string_lossy());
    let _ = nix::unistd::write(std::io::stderr(), msg.as_bytes());
    berth_sys::exit_now(if e == nix::errno::Errno::ENOENT {
        127
    } else {
        126
    })
}
