//! `berth-init`: the minimal PID 1 that `--init` puts in front of the command (Docker uses
//! tini). It exists because a shell or server started as PID 1 neither reaps orphaned
//! children (they stay zombies) nor gets default signal actions (the kernel drops SIGTERM
//! to a PID 1 without a handler, so `docker stop` waits for the timeout).
//!
//! What it does: block every signal and read them from a signalfd; start the command;
//! forward every signal except SIGCHLD to it; on SIGCHLD reap *all* exited children
//! (it is also a child subreaper, so orphans reach it outside a pid namespace too); exit
//! with the command's status (128 + signal when killed) once the command has exited.
//!
//! It is bind-mounted into the container as `/sbin/berth-init` and invoked as
//! `berth-init -- CMD ARGS...`. It must be statically linked to run inside any image, so it
//! is its own tiny crate (no dependency but nix), built with
//! `RUSTFLAGS=-Ctarget-feature=+crt-static` into `target/static` by `scripts/build-init.sh`,
//! which puts it next to `berth`, where the daemon looks for it.

#![forbid(unsafe_code)]

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Shell-style status of a wait result, when it is an exit.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Run `args` (after an optional `--`) under the init; returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let args: Vec<String> = match args.first().map(String::as_str) {
        Some("--") => args[1..].to_vec(),
        _ => args,
    };
    let Some(cmd) = args.first() else {
        eprintln!("berth-init: usage: berth-init -- COMMAND [ARG...]");
        return 2;
    };
    // Start the command first: a child inherits the signal mask, and std's spawn does not
    // reset it, so blocking before the spawn would leave the command deaf to signals.
    // (A signal in the short window before the block below takes its default action.)
    let child = match std::process::Command::new(cmd).args(&args[1..]).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth-init: exec {cmd}: {e}");
            return match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                std::io::ErrorKind::PermissionDenied => 126,
                _ => 1,
            };
        }
    };
    let all = SigSet::all();
    if let Err(e) = all.thread_block() {
        eprintln!("berth-init: block signals: {e}");
        return 1;
    }
    // Orphans of the command become ours even when we are not the namespace's PID 1.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let sfd = match SignalFd::with_flags(&all, SfdFlags::SFD_CLOEXEC) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("berth-init: signalfd: {e}");
            return 1;
        }
    };
    let child_pid = Pid::from_raw(child.id() as i32);
    drop(child); // we reap it ourselves
                 // A SIGCHLD from before the block was not queued: reap once before waiting.
    if let Some(code) = reap(child_pid) {
        return code;
    }
    loop {
        let info = match sfd.read_signal() {
            Ok(Some(i)) => i,
            Ok(None) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("berth-init: read signal: {e}");
                return 1;
            }
        };
        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        if sig != Signal::SIGCHLD {
            let _ = kill(child_pid, sig);
            continue;
        }
        if let Some(code) = reap(child_pid) {
            return code;
        }
    }
}

/// Reap every exited child (signals coalesce: one SIGCHLD, many children); the main
/// child's code when it was among them.
fn reap(main: Pid) -> Option<i32> {
    let mut main_code = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(st) => {
                if st.pid() == Some(main) {
                    main_code = exit_code(st);
                }
            }
        }
    }
    main_code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let p = Pid::from_raw(5);
        assert_eq!(exit_code(WaitStatus::Exited(p, 3)), Some(3));
        assert_eq!(
            exit_code(WaitStatus::Signaled(p, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(exit_code(WaitStatus::StillAlive), None);
    }

    #[test]
    fn usage_without_command() {
        assert_eq!(main(vec!["--".into()]), 2);
    }
}
