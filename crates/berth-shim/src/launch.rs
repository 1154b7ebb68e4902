//! Starting a shim: the launcher (what the daemon runs) and the detached shim it leaves
//! behind.
//!
//! `berth shim ARGS` (launcher) forks the shim with stdout on a pipe and stderr appended to
//! `STATE-DIR/shim.log` (`berth shim ARGS --detached` runs the shim part directly), reads one
//! JSON line from that pipe, prints it and exits: 0 with `{"shim_pid":N,"pid":M}`, 1 with `{"error":"...","kind":"..."}`.
//! The detached shim calls `setsid` (its own session, so the daemon's signals and terminal do
//! not reach it), becomes a child subreaper (the container's init, created by the runtime,
//! is re-parented to it and reaped by it), creates the container, listens on
//! `STATE-DIR/shim.sock`, writes `shim.json`, reports, points stdout at /dev/null and serves.

use crate::args::{Config, RuntimeChoice};
use crate::backend::{Backend, BackendError, Io};
use crate::cli_backend::CliBackend;
use crate::fdio;
use crate::lib_backend::LibBackend;
use crate::logfile::{self, LogWriter};
use crate::process_backend::ProcessBackend;
use crate::records::{self, ShimRecord};
use crate::server::{InitIo, Server};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;

/// The launcher's JSON reply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum LaunchReply {
    Ok {
        shim_pid: i32,
        pid: i32,
        /// Where the shim's time went (name, microseconds): its own set-up, the runtime's
        /// steps, its report. The engine puts them in the container's start timeline.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        phases: Vec<(String, u64)>,
    },
    Err {
        error: String,
        kind: String,
    },
}

/// Run the launcher: start the detached shim and relay its report. Returns the exit code.
pub fn launch(cfg: &Config) -> i32 {
    let reply = launch_inner(cfg);
    let ok = matches!(reply, LaunchReply::Ok { .. });
    println!("{}", serde_json::to_string(&reply).unwrap_or_default());
    if ok {
        0
    } else {
        1
    }
}

pub(crate) fn err(kind: &str, msg: String) -> LaunchReply {
    LaunchReply::Err {
        error: msg,
        kind: kind.into(),
    }
}

fn launch_inner(cfg: &Config) -> LaunchReply {
    let (report_r, report_w) = match fdio::pipe() {
        Ok(p) => p,
        Err(e) => return err("failed", format!("create a pipe: {e}")),
    };
    // Descriptors the daemon leaked to us (not close-on-exec) must not reach the container.
    let _ = berth_sys::fd::mark_cloexec_from(3);
    // fork, not a re-exec of this (large) binary: the start path saves an execve and a
    // round of dynamic relocation.
    let pid = match fork_detached(cfg, report_w) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let reap = || {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    };
    let mut line = String::new();
    let _ = BufReader::new(std::fs::File::from(report_r)).read_line(&mut line);
    match serde_json::from_str::<LaunchReply>(line.trim()) {
        Ok(r) => {
            if matches!(r, LaunchReply::Err { .. }) {
                reap();
            }
            r
        }
        Err(_) => {
            reap();
            err(
                "failed",
                format!(
                    "the shim exited before reporting; see {}",
                    cfg.state_dir.join("shim.log").display()
                ),
            )
        }
    }
}

/// Fork the detached shim for `cfg` with `report` as its stdout (where it writes its one-line
/// JSON report), stderr appended to `STATE-DIR/shim.log`, stdin on /dev/null and no other
/// descriptor. Used by the launcher (a pipe) and the zygote (the daemon's connection). The
/// caller must be single-threaded: the child uses the allocator and stdio freely. Returns the
/// shim's pid; `report` is closed in the caller either way, so EOF on its other end means the
/// shim is gone.
pub(crate) fn fork_detached(
    cfg: &Config,
    report: impl Into<std::os::fd::OwnedFd>,
) -> Result<i32, LaunchReply> {
    let report: std::os::fd::OwnedFd = report.into();
    if let Err(e) = std::fs::create_dir_all(&cfg.state_dir) {
        return Err(err(
            "failed",
            format!("create state dir {}: {e}", cfg.state_dir.display()),
        ));
    }
    let log = cfg.state_dir.join("shim.log");
    let stderr = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
    {
        Ok(f) => f,
        Err(e) => return Err(err("failed", format!("open {}: {e}", log.display()))),
    };
    let child_cfg = cfg.clone();
    berth_sys::process::fork_child(move || {
        if let Ok(null) = fdio::dev_null() {
            let _ = nix::unistd::dup2_stdin(&null);
        }
        let _ = nix::unistd::dup2_stdout(&report);
        let _ = nix::unistd::dup2_stderr(&stderr);
        drop(report);
        drop(stderr);
        // Nothing of the parent's (a zygote's listening socket, a daemon's leaked fds) stays.
        let _ = berth_sys::fd::close_fds_except(&[]);
        // Hold no directory busy (a mount point the daemon may want to unmount).
        let _ = nix::unistd::chdir("/");
        serve(child_cfg)
    })
    .map_err(|e| err("failed", format!("fork the shim: {e}")))
}

fn report(r: &LaunchReply) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", serde_json::to_string(r).unwrap_or_default());
    let _ = out.flush();
}

/// The detached shim: set up, create the container, report, serve. Returns the exit code.
pub fn serve(cfg: Config) -> i32 {
    let _ = berth_sys::fd::mark_cloexec_from(3);
    let _ = nix::unistd::setsid();
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        report(&err("failed", format!("become a child subreaper: {e}")));
        return 1;
    }
    match cfg.runtime.clone() {
        RuntimeChoice::Process => {
            serve_with(cfg.clone(), ProcessBackend::new(cfg.state_dir.clone()))
        }
        RuntimeChoice::Binary(p) => serve_with(
            cfg.clone(),
            CliBackend {
                program: p,
                prefix: vec![],
                root: cfg.runtime_root.clone(),
                work_dir: cfg.state_dir.clone(),
            },
        ),
        RuntimeChoice::Berth => serve_with(
            cfg.clone(),
            LibBackend {
                rt: berth_runtime::Runtime::new(cfg.runtime_root.clone()),
                early_pid: cfg.early_pid,
            },
        ),
    }
}

/// The container's cgroup path from the bundle's `linux.cgroupsPath`. With berth's runtime an
/// absent path means `/berth/<id>` and a relative one lives under `/berth` (its rule); other
/// runtimes have their own defaults, so only an absolute path is trusted for them.
fn cgroups_path(bundle: &std::path::Path, id: &str, berth_rules: bool) -> Option<String> {
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).ok()?).ok()?;
    let p = cfg["linux"]["cgroupsPath"]
        .as_str()
        .filter(|p| !p.is_empty());
    match (p, berth_rules) {
        (Some(p), _) if p.starts_with('/') => Some(p.to_string()),
        (Some(p), true) if !p.contains(':') => Some(format!("/berth/{p}")),
        (None, true) => Some(format!("/berth/{id}")),
        _ => None,
    }
}

/// Read the OOM-kill counter of a cgroup.
fn oom_reader(path: String) -> Box<dyn Fn() -> Option<u64>> {
    Box::new(move || {
        let m = berth_cgroups::open(berth_cgroups::CgroupPath(path.clone())).ok()?;
        m.stats().ok().map(|s| s.memory_oom_kills)
    })
}

fn serve_with<B: Backend>(cfg: Config, mut backend: B) -> i32 {
    let t0 = std::time::Instant::now();
    let fail = |kind: &str, msg: String| {
        report(&err(kind, msg));
        1
    };
    // SIGCHLD through a signalfd: blocked here, read in the poll loop.
    let mut mask = nix::sys::signal::SigSet::empty();
    mask.add(nix::sys::signal::Signal::SIGCHLD);
    if let Err(e) = mask.thread_block() {
        return fail("failed", format!("block SIGCHLD: {e}"));
    }
    let sigfd = match nix::sys::signalfd::SignalFd::with_flags(
        &mask,
        nix::sys::signalfd::SfdFlags::SFD_NONBLOCK | nix::sys::signalfd::SfdFlags::SFD_CLOEXEC,
    ) {
        Ok(s) => s,
        Err(e) => return fail("failed", format!("signalfd: {e}")),
    };
    if let Some(dir) = cfg.log_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let log = match LogWriter::open(&cfg.log_path, cfg.log_max_size, cfg.log_max_files) {
        Ok(l) => l,
        Err(e) => {
            return fail(
                "failed",
                format!("open log {}: {e}", cfg.log_path.display()),
            )
        }
    };
    let sock_path = cfg.state_dir.join(records::SOCKET);
    let _ = std::fs::remove_file(&sock_path);
    let listener = match UnixListener::bind(&sock_path) {
        Ok(l) => l,
        Err(e) => return fail("failed", format!("listen on {}: {e}", sock_path.display())),
    };
    // The container's stdio.
    let mut io = InitIo {
        pid: 0,
        master: None,
        stdout: None,
        stderr: None,
        stdin: None,
    };
    let spawn_io = if cfg.tty {
        Io::Tty
    } else {
        let p = (|| -> std::io::Result<_> {
            let (or, ow) = fdio::pipe()?;
            let (er, ew) = fdio::pipe()?;
            let sin = if cfg.stdin { Some(fdio::pipe()?) } else { None };
            Ok((or, ow, er, ew, sin))
        })();
        let (or, ow, er, ew, sin) = match p {
            Ok(p) => p,
            Err(e) => return fail("failed", format!("create pipes: {e}")),
        };
        io.stdout = Some(or);
        io.stderr = Some(er);
        let child_in = sin.map(|(r, w)| {
            io.stdin = Some(w);
            r
        });
        Io::Pipes {
            stdin: child_in,
            stdout: ow,
            stderr: ew,
        }
    };
    let t_setup = t0.elapsed();
    let spawned = match backend.create(&cfg.id, &cfg.bundle, spawn_io) {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&sock_path);
            // With pass-through stdio the runtime wrote its error to the container's pipes.
            let mut extra = Vec::new();
            for fd in [&io.stderr, &io.stdout].into_iter().flatten() {
                let _ = fdio::set_nonblocking(fd, true);
                let mut b = [0u8; 4096];
                if let Ok(Some(n)) = fdio::read(fd, &mut b) {
                    extra.extend_from_slice(&b[..n]);
                }
            }
            let extra = String::from_utf8_lossy(&extra).trim().to_string();
            let e = match (&e, extra.is_empty()) {
                (BackendError::Failed(m), false) => {
                    BackendError::from_message(&format!("{m}: {extra}"))
                }
                _ => e,
            };
            return fail(e.kind(), format!("create container {}: {e}", cfg.id));
        }
    };
    let t_created = t0.elapsed();
    let cgroup = spawned.cgroup.clone();
    io.pid = spawned.pid;
    io.master = spawned.console;
    let rec = ShimRecord {
        shim_pid: std::process::id() as i32,
        pid: spawned.pid,
        started_at: logfile::now_rfc3339_nano(),
    };
    let mut server = Server::new(
        cfg.id.clone(),
        cfg.state_dir.clone(),
        cfg.log_path.clone(),
        cfg.log_max_files,
        backend,
        log,
        io,
        listener,
        sigfd,
    );
    // The timeline: our set-up, the runtime's steps (the rest of the helper's time is its fork
    // and reply), our record and report.
    let us = |d: std::time::Duration| d.as_micros() as u64;
    let mut phases = vec![("shim: stdio, log, socket".to_string(), us(t_setup))];
    let create_us = us(t_created - t_setup);
    let runtime_us: u64 = spawned.phases.iter().map(|p| p.1).sum();
    phases.extend(spawned.phases);
    if runtime_us > 0 {
        phases.push((
            "shim: fork the runtime helper, get its reply".into(),
            create_us.saturating_sub(runtime_us),
        ));
    } else {
        phases.push(("runtime: create".into(), create_us));
    }
    phases.push(("shim: report".into(), us(t0.elapsed() - t_created)));
    report(&LaunchReply::Ok {
        shim_pid: rec.shim_pid,
        pid: rec.pid,
        phases,
    });
    // After the report, off the start path: the daemon has the pids already and sends START
    // only once its network step is done; the request waits in the socket's backlog.
    if let Err(e) = records::write_replace(&cfg.state_dir, records::SHIM_JSON, &rec, false) {
        eprintln!("berth shim {}: write shim.json: {e}", cfg.id);
    }
    // The OOM-kill counter's baseline, before the process runs (START is not served yet).
    // Berth's runtime says where it put the container; another runtime's bundle is read.
    let berth_rules = cfg.runtime == RuntimeChoice::Berth;
    if let Some(p) = cgroup.or_else(|| cgroups_path(&cfg.bundle, &cfg.id, berth_rules)) {
        let read = oom_reader(p);
        let base = read().unwrap_or(0);
        server.oom = Some((base, read));
    }
    // Nobody reads our stdout any more: a write must not get EPIPE.
    if let Ok(null) = fdio::dev_null() {
        let _ = nix::unistd::dup2_stdout(&null);
    }
    server.run()
}
