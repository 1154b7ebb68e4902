//! `exec`: a new process in a running container. A helper joins the init's namespaces
//! (setns; the pid namespace only applies to children), then clones the process with
//! `CLONE_PARENT`, so it is inside the container's pid namespace *and* a child of the caller,
//! which can waitpid it — no subreaper needed. The helper joins the container's cgroups
//! first (see `init::helper_main`), so the process is born inside them.

use std::os::fd::AsFd;

use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use crate::error::{Context, Error, Result};
use crate::init::{self, ProcPlan};
use crate::state::{self, Record, Status};
use crate::sync::{self, Msg};
use crate::{capabilities, cgroup, namespaces, process, seccomp};
use crate::{ConsoleMode, Created, ExecOptions, Runtime};

pub(crate) fn exec(rt: &Runtime, id: &str, p: &Process, opts: ExecOptions) -> Result<Created> {
    let st = crate::lifecycle::state(rt, id)?;
    if st.status != Status::Running && st.status != Status::Created {
        return Err(Error::WrongState {
            id: id.into(),
            status: st.status.as_str(),
            what: "exec needs a running container".into(),
        });
    }
    let rec = Record::load(&rt.root, id)?;
    match p.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => {
            return Err(Error::spec(
                "process.args",
                "empty; give the command to run",
            ))
        }
    }
    if !p.cwd().is_absolute() {
        return Err(Error::spec("process.cwd", "must be an absolute path"));
    }
    let terminal = p.terminal().unwrap_or(false);
    if terminal && opts.console == ConsoleMode::None {
        return Err(Error::spec(
            "process.terminal",
            "is true but no console socket was given",
        ));
    }
    let mut warnings = Vec::new();
    let caps = capabilities::plan(p.capabilities().as_ref(), &mut warnings)?;
    let rlimits = process::plan_rlimits(p.rlimits().as_deref().unwrap_or(&[]), &mut warnings);
    let seccomp = match &rec.seccomp {
        Some(s) => seccomp::compile(s)?,
        None => vec![],
    };
    let joins = namespaces::of_process(rec.pid);
    let in_userns = joins
        .iter()
        .any(|(f, _)| *f == nix::sched::CloneFlags::CLONE_NEWUSER);
    let mgr = cgroup::open(&berth_cgroups::CgroupPath(rec.cgroup_path.clone()))?;
    let plan = ProcPlan {
        process: p.clone(),
        caps,
        rlimits,
        seccomp,
        setgroups_allowed: !in_userns
            || std::fs::read_to_string(format!("/proc/{}/setgroups", rec.pid))
                .map(|s| s.trim() == "allow")
                .unwrap_or(true),
        terminal,
        stdio: [opts.stdin, opts.stdout, opts.stderr],
    };
    let (parent_sock, child_sock) = sync::pair()?;
    let keep = plan.keep_fds(&child_sock);
    let helper = {
        let sock = &child_sock;
        let joins = joins.clone();
        let cg = mgr.as_ref();
        berth_sys::fork_child(move || {
            init::helper_main(
                Some(cg),
                &joins,
                None,
                nix::sched::CloneFlags::empty(),
                sock,
                &keep,
                || {
                    let s = sock.try_clone().expect("dup sync socket");
                    init::exec_main(plan, s)
                },
            )
        })
        .ctx(|| "fork".into())?
    };
    drop(child_sock);
    let first = sync::recv(parent_sock.as_fd()).ctx(|| "read from exec helper".into());
    let _ = waitpid(Pid::from_raw(helper), None);
    let pid = match first? {
        Some((Msg::Pid(pid), _)) => pid,
        Some((Msg::Error { kind, message }, _)) => return Err(sync::child_error(&kind, message)),
        _ => return Err(Error::Init("exec helper exited early".into())),
    };
    let fail = |e: Error| {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        e
    };
    // The helper joined the cgroups before the clone: the process was born inside.
    sync::send(parent_sock.as_fd(), &Msg::Go)
        .ctx(|| "release exec process".into())
        .map_err(fail)?;
    let mut master = None;
    loop {
        match sync::recv(parent_sock.as_fd()).ctx(|| "read from exec process".into()) {
            Ok(Some((Msg::Console(name), Some(fd)))) => match &opts.console {
                ConsoleMode::ReturnMaster => master = Some(fd),
                ConsoleMode::Socket(path) => {
                    let s = std::os::unix::net::UnixStream::connect(path)
                        .ctx(|| format!("connect console socket {}", path.display()))
                        .map_err(fail)?;
                    berth_sys::send_fd(s.as_fd(), name.as_bytes(), fd.as_fd())
                        .ctx(|| "send console".into())
                        .map_err(fail)?;
                }
                ConsoleMode::None => {}
            },
            Ok(Some((Msg::Ready, _))) => break,
            Ok(Some((Msg::Error { kind, message }, _))) => {
                return Err(fail(sync::child_error(&kind, message)))
            }
            Ok(_) => return Err(fail(Error::Init("exec process exited during setup".into()))),
            Err(e) => return Err(fail(e)),
        }
    }
    if let Some(pf) = &opts.pid_file {
        crate::container::write_pid_file(pf, pid)?;
    }
    for w in &warnings {
        eprintln!("berth runtime: warning: {w}");
    }
    let _ = state::dir(&rt.root, id);
    Ok(Created {
        pid,
        console_master: master,
        phases: Vec::new(),
        cgroup_path: None,
    })
}
