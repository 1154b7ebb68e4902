//! Signal state a new process must not inherit from its creator.

use std::io;

/// Reset every catchable signal to its default action and unblock all signals.
///
/// Why: dispositions set to "ignore" survive execve. Rust programs ignore SIGPIPE from
/// `main`, so a container started by a Rust caller would otherwise run with SIGPIPE ignored
/// (and `yes | head` would never end); a blocked mask would be inherited the same way.
pub fn reset_signals() -> io::Result<()> {
    // SIG_DFL is 0 and we want no flags, restorer or mask: the kernel's struct sigaction
    // is then all zeroes on every architecture. The raw syscall also reaches the signals
    // glibc reserves for itself (32, 33), which its wrapper refuses to touch.
    let dfl = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `dfl` is a valid, zeroed kernel sigaction (SIG_DFL) that outlives the
        // call; the old-action pointer is null; sigsetsize is 8 as the kernel requires.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<libc::c_void>(),
                8usize,
            )
        };
    }
    // SAFETY: `set` is a properly initialised sigset_t living across both calls; the old
    // mask pointer is null (not wanted).
    let ret = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())
    };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sigpipe_back_to_default_in_a_child() {
        let pid = crate::fork_child(|| {
            super::reset_signals().unwrap();
            let s = std::fs::read_to_string("/proc/self/status").unwrap();
            let ign = s.lines().find(|l| l.starts_with("SigIgn:")).unwrap();
            i32::from(!ign.ends_with("0000000000000000"))
        })
        .unwrap();
        let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
        assert_eq!(
            st,
            nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 0)
        );
    }
}
