//! Process creation: fork a helper, clone a namespaced child, leave without unwinding.

use std::io;

/// Leave the current process immediately with `code`, without running destructors, atexit
/// handlers or flushing stdio (what a forked child must do: the buffers belong to the parent).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` has no preconditions; it never returns.
    unsafe { libc::_exit(code) }
}

/// Fork, run `child` in the new process and `_exit` with its return value; return the child's
/// pid in the parent.
///
/// The child of a multi-threaded process holds a copy of memory in which other threads may
/// have held locks at the time of the fork. glibc's `fork` re-initialises the allocator's
/// locks, so allocation is fine; `child` must not take other process-wide locks that a thread
/// could hold (stdout/stderr, `std::env`). Panics inside `child` are caught and turn into
/// exit code 101 so they never unwind into the caller's frames.
pub fn fork_child<F: FnOnce() -> i32>(child: F) -> io::Result<i32> {
    // SAFETY: fork has no memory-safety preconditions by itself; the child branch below runs
    // only `child` and then `_exit`s, never returning into the parent's stack frames.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
            exit_now(code)
        }
        pid => Ok(pid),
    }
}

/// `clone(2)` with `flags | CLONE_PARENT` and no new stack (fork semantics): the child is a
/// sibling of the caller, i.e. a child of the caller's parent, and starts in the namespaces
/// that `flags` (`CLONE_NEW*`) create. Runs `child` in it and `_exit`s with its result;
/// returns the child's pid (as seen from the caller's pid namespace) to the caller.
///
/// Call it only from a single-threaded process (the helper made by [`fork_child`]): the raw
/// syscall bypasses glibc's fork handlers, so locks held by other threads would stay held.
/// `CLONE_NEWPID` makes the child pid 1 of a new pid namespace; `CLONE_PARENT` lets the
/// original caller `waitpid` it although the helper made it.
pub fn clone_parent<F: FnOnce() -> i32>(flags: u64, child: F) -> io::Result<i32> {
    let flags = flags | libc::CLONE_PARENT as u64;
    // SAFETY: without CLONE_VM and with a null stack the kernel duplicates the address space
    // exactly like fork, so the child continues on its own copy of this stack. The other
    // pointer arguments (parent_tid, child_tid, tls) are null and unused for these flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
            exit_now(code)
        }
        pid => Ok(pid as i32),
    }
}

/// `setdomainname(2)` (nix only wraps `sethostname`).
pub fn set_domainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe the bytes of `name`, which outlives the call;
    // the kernel copies them and does not require a NUL terminator.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_child_reports_exit_code() {
        let pid = fork_child(|| 7).unwrap();
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
        assert_eq!(
            status,
            nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 7)
        );
    }

    #[test]
    fn clone_parent_child_is_reaped_by_grandparent() {
        // helper clones a sibling and sends its pid back through a pipe; we reap both.
        let (r, w) = nix::unistd::pipe().unwrap();
        let helper = fork_child(move || {
            let pid = clone_parent(0, || 3).unwrap();
            nix::unistd::write(&w, &pid.to_ne_bytes()).unwrap();
            0
        })
        .unwrap();
        let mut buf = [0u8; 4];
        nix::unistd::read(&r, &mut buf).unwrap();
        let sibling = i32::from_ne_bytes(buf);
        let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(helper), None).unwrap();
        assert!(matches!(st, nix::sys::wait::WaitStatus::Exited(_, 0)));
        let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(sibling), None).unwrap();
        assert_eq!(
            st,
            nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(sibling), 3)
        );
    }
}
