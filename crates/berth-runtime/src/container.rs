//! The parent side of `create`: check the spec, make the state dir and cgroups, fork the
//! helper that clones the init, write uid/gid maps, attach the cgroups, run the
//! createRuntime hooks and wait for the init to report Ready. Anything failing undoes it all.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use berth_cgroups::CgroupManager;
use nix::sys::signal::{kill as send_signal, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use crate::error::{Context, Error, Result};
use crate::init::{self, InitPlan, ProcPlan};
use crate::state::{self, Record, Status};
use crate::sync::{self, Msg};
use crate::{capabilities, cgroup, hooks, namespaces, process, seccomp, spec};
use crate::{ConsoleMode, CreateOptions, Created, Runtime};

/// Undoes a half-made container if create fails at any step.
struct Cleanup {
    dir: PathBuf,
    cgroup: Option<Box<dyn CgroupManager>>,
    pid: Option<i32>,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = send_signal(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cgroup::destroy(cg.as_ref());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn warn(w: &[String]) {
    for w in w {
        eprintln!("berth runtime: warning: {w}");
    }
}

pub(crate) fn create(
    rt: &Runtime,
    id: &str,
    bundle: &Path,
    mut opts: CreateOptions,
) -> Result<Created> {
    state::check_id(id)?;
    let t = crate::timing::Timer::new("create");
    let bundle = bundle
        .canonicalize()
        .ctx(|| format!("bundle {}", bundle.display()))?;
    let spec = spec::load(&bundle)?;
    spec::validate(&spec, true)?;
    let rootfs = spec::rootfs(&spec, &bundle)?;
    let process = spec.process().clone().expect("validated");
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console == ConsoleMode::None {
        return Err(Error::spec(
            "process.terminal",
            "is true but no console socket was given; pass --console-socket or set terminal to false",
        ));
    }
    let ns = namespaces::plan(&spec)?;
    let mut warnings = Vec::new();
    let caps = capabilities::plan(process.capabilities().as_ref(), &mut warnings)?;
    let rlimits = process::plan_rlimits(process.rlimits().as_deref().unwrap_or(&[]), &mut warnings);
    let linux = spec.linux().as_ref().expect("validated");
    let seccomp_progs = match linux.seccomp() {
        Some(s) => seccomp::compile(s)?,
        None => vec![],
    };
    let time_offsets = time_offsets(&spec)?;
    unsupported(&spec, &mut warnings);
    let cg_path = cgroup::path(&spec, id)?;
    let resources = cgroup::resources(linux.resources().as_ref());
    if let Some(adj) = process.oom_score_adj() {
        let cur: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if adj < cur
            && !caps::has_cap(
                None,
                caps::CapSet::Effective,
                caps::Capability::CAP_SYS_RESOURCE,
            )
            .unwrap_or(false)
        {
            warnings.push(format!(
                "process.oomScoreAdj {adj} is below the runtime's own {cur} and needs CAP_SYS_RESOURCE; ignored"
            ));
        }
    }

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&rt.root)
        .ctx(|| format!("create state root {}", rt.root.display()))?;
    let dir = state::dir(&rt.root, id);
    match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Exists(id.to_string()))
        }
        Err(e) => return Err(Error::io(format!("create {}", dir.display()), e)),
    }
    let mut guard = Cleanup {
        dir: dir.clone(),
        cgroup: None,
        pid: None,
        armed: true,
    };
    let mgr = cgroup::open(&cg_path)?;
    t.mark("runtime: load the spec, compile seccomp");
    mgr.create()?;
    guard.cgroup = Some(mgr);
    let mgr = guard.cgroup.as_ref().expect("just set");
    mgr.set(&resources)
        .map_err(|e| Error::spec("linux.resources", e.to_string()))?;
    let devices = linux
        .resources()
        .as_ref()
        .and_then(|r| r.devices().clone())
        .unwrap_or_default();
    if let Some(w) = cgroup::apply_devices(mgr.as_ref(), &devices)? {
        warnings.push(w);
    }
    let cgroup_mounts = cgroup::mounts(mgr.as_ref());
    let fifo = dir.join(state::FIFO);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .ctx(|| format!("mkfifo {}", fifo.display()))?;
    // mkfifo honours the umask; the init may run as another (mapped) uid and must open it.
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .ctx(|| format!("chmod {}", fifo.display()))?;

    let (parent_sock, child_sock) = sync::pair()?;
    let plan = InitPlan {
        spec: spec.clone(),
        rootfs: rootfs.clone(),
        ns: ns.clone(),
        fifo,
        cgroups: cgroup_mounts,
        proc: ProcPlan {
            process: process.clone(),
            caps,
            rlimits,
            seccomp: seccomp_progs,
            setgroups_allowed: true,
            terminal,
            stdio: [opts.stdin, opts.stdout, opts.stderr],
        },
    };
    t.mark("runtime: create the cgroups, set limits");
    let keep = plan.proc.keep_fds(&child_sock);
    // The helper joins the cgroups itself so the init is born inside (see helper_main), and
    // counts as a task there until it exits right after the clone: with a pids limit of 1
    // the clone would fail, so then the parent attaches the init instead (slower).
    let self_join = resources.pids_limit != Some(1);
    let helper = {
        let sock = &child_sock;
        let cg = self_join.then_some(mgr.as_ref());
        berth_sys::fork_child(move || {
            init::helper_main(
                cg,
                &plan.ns.joins.clone(),
                plan.ns.new_time.then_some(time_offsets.as_slice()),
                plan.ns.clone_flags,
                sock,
                &keep,
                || {
                    let s = sock.try_clone().expect("dup sync socket");
                    init::init_main(plan, s)
                },
            )
        })
        .ctx(|| "fork".into())?
    };
    drop(child_sock);
    let first = sync::recv(parent_sock.as_fd()).ctx(|| "read from helper".into());
    let _ = waitpid(Pid::from_raw(helper), None);
    let pid = match first? {
        Some((Msg::Pid(pid), _)) => pid,
        Some((Msg::Error { kind, message }, _)) => return Err(sync::child_error(&kind, message)),
        _ => return Err(Error::Init("helper exited before creating the init".into())),
    };
    guard.pid = Some(pid);
    if let Some(mut cb) = opts.on_pid.take() {
        (cb.0)(pid);
    }

    if ns.new_user {
        write_id_maps(pid, &spec)?;
    }
    t.mark("runtime: clone the init into new namespaces");
    sync::send_or_child_error(parent_sock.as_fd(), &Msg::Go)?;
    if !self_join {
        // Why the init is released before the attach: attaching another task waits for an
        // RCU grace period (cgroup_threadgroup_rwsem), milliseconds; the init does its mounts
        // meanwhile and waits for the second Go only before it needs its cgroups (cgroup
        // namespace, cgroup mounts).
        mgr.add_task(pid)?;
    }
    sync::send_or_child_error(parent_sock.as_fd(), &Msg::Go)?;
    t.mark("runtime: init joins its cgroups");

    let record = Record {
        id: id.to_string(),
        pid,
        start_time: state::proc_start_time(pid).unwrap_or(0),
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: state::now_rfc3339(),
        oci_version: spec.version().clone(),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        cgroup_path: cg_path.0.clone(),
        hooks: spec.hooks().clone(),
        seccomp: linux.seccomp().clone(),
    };
    let (console_master, init_phases) = converse(&parent_sock, &spec, &record, &opts.console)?;

    t.mark(INIT_STEP);
    record.save(&rt.root)?;
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, pid)?;
    }
    guard.armed = false;
    t.mark("runtime: save the state");
    warn(&warnings);
    Ok(Created {
        pid,
        console_master,
        phases: with_init_phases(t.steps(), init_phases),
        cgroup_path: Some(cg_path.0.clone()),
    })
}

/// The runtime's steps with the init's own ones in place of the step that waited for it;
/// what the init did not measure (process start, handshakes) stays as "init: other".
/// The runtime's step that covers the init's own work; replaced by the init's phases.
const INIT_STEP: &str = "init: set up inside its namespaces";

fn with_init_phases(steps: Vec<(String, u64)>, init: Vec<(String, u64)>) -> Vec<(String, u64)> {
    let mut out = Vec::with_capacity(steps.len() + init.len());
    for (name, us) in steps {
        if name == INIT_STEP && !init.is_empty() {
            let measured: u64 = init.iter().map(|p| p.1).sum();
            out.extend(init.iter().cloned());
            out.push((
                "init: other (start, handshakes)".into(),
                us.saturating_sub(measured),
            ));
        } else {
            out.push((name, us));
        }
    }
    out
}

/// Steps and their durations, microseconds.
type Phases = Vec<(String, u64)>;

/// Serve the init's requests until it reports Ready (or fails).
fn converse(
    sock: &OwnedFd,
    spec: &Spec,
    record: &Record,
    console: &ConsoleMode,
) -> Result<(Option<OwnedFd>, Phases)> {
    let mut master = None;
    let mut phases = Vec::new();
    loop {
        match sync::recv(sock.as_fd()).ctx(|| "read from init".into())? {
            Some((Msg::CreateRuntime, _)) => {
                let st = record.to_state(Status::Creating);
                #[allow(deprecated)]
                if let Some(h) = spec.hooks().as_ref() {
                    for (phase, list) in [
                        ("prestart", h.prestart()),
                        ("createRuntime", h.create_runtime()),
                    ] {
                        if let Some(list) = list {
                            hooks::run(list, &st, phase)?;
                        }
                    }
                }
                let json = serde_json::to_string(&st).expect("state serializes");
                sync::send(sock.as_fd(), &Msg::GoWithState(json)).ctx(|| "sync".into())?;
            }
            Some((Msg::Console(name), Some(fd))) => {
                master = Some(deliver_console(console, &name, fd)?);
            }
            Some((Msg::Phases(p), _)) => phases = p,
            Some((Msg::Ready, _)) => return Ok((master.flatten(), phases)),
            Some((Msg::Error { kind, message }, _)) => {
                return Err(sync::child_error(&kind, message))
            }
            Some((m, _)) => return Err(Error::Init(format!("unexpected message {m:?}"))),
            None => return Err(Error::Init("container init exited during setup".into())),
        }
    }
}

/// runc's console-socket protocol: connect, send the master with the pty name as payload.
fn deliver_console(mode: &ConsoleMode, name: &str, master: OwnedFd) -> Result<Option<OwnedFd>> {
    match mode {
        ConsoleMode::ReturnMaster => Ok(Some(master)),
        ConsoleMode::Socket(path) => {
            let s = std::os::unix::net::UnixStream::connect(path)
                .ctx(|| format!("connect console socket {}", path.display()))?;
            berth_sys::send_fd(s.as_fd(), name.as_bytes(), master.as_fd())
                .ctx(|| format!("send console to {}", path.display()))?;
            Ok(None)
        }
        ConsoleMode::None => Ok(None),
    }
}

/// Settings berth accepts but does not apply yet: said once, on stderr, not silently.
fn unsupported(spec: &Spec, warnings: &mut Vec<String>) {
    let mut w = |field: &str| warnings.push(format!("{field} is not supported yet; ignored"));
    if let Some(p) = spec.process() {
        if p.scheduler().is_some() {
            w("process.scheduler");
        }
        if p.io_priority().is_some() {
            w("process.ioPriority");
        }
        if p.exec_cpu_affinity().is_some() {
            w("process.execCPUAffinity");
        }
    }
    if let Some(l) = spec.linux() {
        if l.personality().is_some() {
            w("linux.personality");
        }
        if l.intel_rdt().is_some() {
            w("linux.intelRdt");
        }
        if l.memory_policy().is_some() {
            w("linux.memoryPolicy");
        }
        if l.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
            w("linux.netDevices");
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
            w(&format!("mounts[{i}].uidMappings (idmapped mounts)"));
        }
    }
}

fn time_offsets(spec: &Spec) -> Result<Vec<(String, i64, u32)>> {
    let mut out = Vec::new();
    if let Some(t) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    {
        for (clock, off) in t {
            if clock != "monotonic" && clock != "boottime" {
                return Err(Error::spec(
                    format!("linux.timeOffsets.{clock}"),
                    "only monotonic and boottime clocks can be offset",
                ));
            }
            out.push((
                clock.clone(),
                off.secs().unwrap_or(0),
                off.nanosecs().unwrap_or(0),
            ));
        }
    }
    Ok(out)
}

/// The parent writes the maps (the child cannot map ids it does not own).
fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref().expect("validated");
    for (file, maps) in [
        ("uid_map", linux.uid_mappings()),
        ("gid_map", linux.gid_mappings()),
    ] {
        let mut s = String::new();
        for m in maps.iter().flatten() {
            s.push_str(&format!(
                "{} {} {}\n",
                m.container_id(),
                m.host_id(),
                m.size()
            ));
        }
        let p = format!("/proc/{pid}/{file}");
        std::fs::write(&p, s).map_err(|e| {
            Error::spec(
                format!("linux.{}Mappings", &file[..3]),
                format!("writing {p}: {e}"),
            )
        })?;
    }
    Ok(())
}

/// `--pid-file`: replaced whole (a supervisor polling it never reads half a number).
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    berth_sys::file::write_replace(path, pid.to_string().as_bytes(), 0o644, false)
        .ctx(|| format!("write pid file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_phases_replace_the_init_step_and_keep_the_sum() {
        let s = |n: &str, us| (n.to_string(), us);
        let steps = vec![s("runtime: a", 10), s(INIT_STEP, 100), s("runtime: b", 5)];
        let init = vec![s("init: mounts", 60), s("init: pivot_root", 30)];
        let out = with_init_phases(steps.clone(), init);
        let names: Vec<&str> = out.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "runtime: a",
                "init: mounts",
                "init: pivot_root",
                "init: other (start, handshakes)",
                "runtime: b"
            ]
        );
        assert_eq!(out.iter().map(|p| p.1).sum::<u64>(), 115);
        // Without the init's phases the step stays as it is.
        assert_eq!(with_init_phases(steps.clone(), vec![]), steps);
    }
}
