//! The rest of the lifecycle on an existing container: state, start (open the exec fifo),
//! kill, delete, pause/resume, list, ps.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill as send_signal, Signal};
use nix::unistd::Pid;

use crate::error::{Context, Error, Result};
use crate::state::{self, Record, State, Status};
use crate::{cgroup, hooks, Runtime};

fn status_of(rt: &Runtime, rec: &Record) -> Status {
    if !rec.alive() {
        return Status::Stopped;
    }
    if let Ok(mgr) = cgroup::open(&berth_cgroups::CgroupPath(rec.cgroup_path.clone())) {
        if mgr.is_frozen().unwrap_or(false) {
            return Status::Paused;
        }
    }
    if state::dir(&rt.root, &rec.id).join(state::FIFO).exists() {
        Status::Created
    } else {
        Status::Running
    }
}

pub(crate) fn state(rt: &Runtime, id: &str) -> Result<State> {
    state::check_id(id)?;
    let rec = Record::load(&rt.root, id)?;
    Ok(rec.to_state(status_of(rt, &rec)))
}

pub(crate) fn start(rt: &Runtime, id: &str) -> Result<()> {
    state::check_id(id)?;
    let t = crate::timing::Timer::new("start");
    let rec = Record::load(&rt.root, id)?;
    let st = status_of(rt, &rec);
    if st != Status::Created {
        return Err(Error::WrongState {
            id: id.into(),
            status: st.as_str(),
            what: "only a created container can be started".into(),
        });
    }
    let fifo = state::dir(&rt.root, id).join(state::FIFO);
    // Non-blocking open: a blocking one would hang forever if the init died meanwhile.
    let f = nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("open {}", fifo.display()))?;
    loop {
        let mut fds = [nix::poll::PollFd::new(
            f.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let n = match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)) {
            Err(nix::errno::Errno::EINTR) => 0,
            r => r.ctx(|| "poll exec fifo".into())?,
        };
        if n > 0 {
            let mut b = [0u8; 1];
            match nix::unistd::read(&f, &mut b) {
                Ok(1) => break,
                Ok(_) | Err(nix::errno::Errno::EAGAIN) => {}
                Err(e) => return Err(Error::io("read exec fifo", e)),
            }
        }
        if !rec.alive() {
            return Err(Error::WrongState {
                id: id.into(),
                status: "stopped",
                what: "the init exited before start".into(),
            });
        }
    }
    t.mark("init released");
    let _ = std::fs::remove_file(&fifo);
    if let Some(list) = rec.hooks.as_ref().and_then(|h| h.poststart().clone()) {
        // poststart failures are logged, not fatal (OCI).
        if let Err(e) = hooks::run(&list, &rec.to_state(Status::Running), "poststart") {
            eprintln!("berth runtime: warning: {e}");
        }
    }
    Ok(())
}

fn signal(sig: i32) -> Result<Signal> {
    Signal::try_from(sig).map_err(|_| Error::spec("signal", format!("{sig} is not a valid signal")))
}

pub(crate) fn kill(rt: &Runtime, id: &str, sig: i32, all: bool) -> Result<()> {
    state::check_id(id)?;
    let rec = Record::load(&rt.root, id)?;
    let sig = signal(sig)?;
    let st = status_of(rt, &rec);
    if st == Status::Stopped && !all {
        return Err(Error::WrongState {
            id: id.into(),
            status: st.as_str(),
            what: "cannot signal a stopped container".into(),
        });
    }
    if all {
        let mgr = cgroup::open(&berth_cgroups::CgroupPath(rec.cgroup_path.clone()))?;
        for p in mgr.pids()? {
            let _ = send_signal(Pid::from_raw(p), sig);
        }
        Ok(())
    } else {
        send_signal(Pid::from_raw(rec.pid), sig).ctx(|| format!("kill {}", rec.pid))
    }
}

pub(crate) fn delete(rt: &Runtime, id: &str, force: bool) -> Result<()> {
    state::check_id(id)?;
    let t = crate::timing::Timer::new("delete");
    let rec = match Record::load(&rt.root, id) {
        Ok(r) => r,
        // A create that was killed half-way leaves a directory without state.json; only
        // --force removes it, since a create may still be running.
        Err(Error::NotFound(_)) if force && state::dir(&rt.root, id).is_dir() => {
            let dir = state::dir(&rt.root, id);
            return std::fs::remove_dir_all(&dir).ctx(|| format!("remove {}", dir.display()));
        }
        Err(e) => return Err(e),
    };
    let st = status_of(rt, &rec);
    let mgr = cgroup::open(&berth_cgroups::CgroupPath(rec.cgroup_path.clone()))?;
    match st {
        Status::Stopped => {}
        // A created container never ran user code: deleting it kills the waiting init (runc).
        Status::Created | Status::Creating => {
            let _ = send_signal(Pid::from_raw(rec.pid), Signal::SIGKILL);
        }
        Status::Running | Status::Paused if !force => {
            return Err(Error::WrongState {
                id: id.into(),
                status: st.as_str(),
                what: "stop it first or delete with --force".into(),
            })
        }
        _ => {}
    }
    if force || st != Status::Stopped {
        // Kill, then thaw: a frozen task ignores SIGKILL until thawed (v1 freezer).
        for p in mgr.pids().unwrap_or_default() {
            let _ = send_signal(Pid::from_raw(p), Signal::SIGKILL);
        }
        let _ = send_signal(Pid::from_raw(rec.pid), Signal::SIGKILL);
        let _ = mgr.thaw();
        let deadline = Instant::now() + Duration::from_secs(10);
        while (rec.alive() || !mgr.pids().unwrap_or_default().is_empty())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    if let Some(list) = rec.hooks.as_ref().and_then(|h| h.poststop().clone()) {
        if let Err(e) = hooks::run(&list, &rec.to_state(Status::Stopped), "poststop") {
            eprintln!("berth runtime: warning: {e}");
        }
    }
    t.mark("processes gone");
    match cgroup::destroy(mgr.as_ref()) {
        Ok(()) => {}
        Err(e) if force => eprintln!("berth runtime: warning: {e}; removing the state anyway"),
        Err(e) => return Err(e),
    }
    t.mark("cgroups removed");
    let dir = state::dir(&rt.root, id);
    std::fs::remove_dir_all(&dir).ctx(|| format!("remove {}", dir.display()))
}

pub(crate) fn pause(rt: &Runtime, id: &str, freeze: bool) -> Result<()> {
    state::check_id(id)?;
    let rec = Record::load(&rt.root, id)?;
    let st = status_of(rt, &rec);
    let ok = if freeze {
        st == Status::Running || st == Status::Created
    } else {
        st == Status::Paused
    };
    if !ok {
        return Err(Error::WrongState {
            id: id.into(),
            status: st.as_str(),
            what: if freeze {
                "only a running container can be paused".into()
            } else {
                "only a paused container can be resumed".into()
            },
        });
    }
    let mgr = cgroup::open(&berth_cgroups::CgroupPath(rec.cgroup_path.clone()))?;
    if freeze {
        mgr.freeze()?;
    } else {
        mgr.thaw()?;
    }
    Ok(())
}

pub(crate) fn list(rt: &Runtime) -> Result<Vec<State>> {
    let rd = match std::fs::read_dir(&rt.root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io(format!("read {}", rt.root.display()), e)),
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Ok(rec) = Record::load(&rt.root, &name) {
            out.push(rec.to_state(status_of(rt, &rec)));
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

pub(crate) fn ps(rt: &Runtime, id: &str) -> Result<Vec<i32>> {
    state::check_id(id)?;
    let rec = Record::load(&rt.root, id)?;
    let mgr = cgroup::open(&berth_cgroups::CgroupPath(rec.cgroup_path.clone()))?;
    let mut p = mgr.pids()?;
    p.sort_unstable();
    Ok(p)
}
