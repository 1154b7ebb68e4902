//! File descriptors: pass them over unix sockets (SCM_RIGHTS), close inherited ones on exec.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// Send `fd` over the unix socket `sock` with a small payload (runc's console-socket protocol
/// sends the terminal master this way, with the pty name as payload).
pub fn send_fd(sock: BorrowedFd<'_>, payload: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let payload = if payload.is_empty() {
        b"\0" as &[u8]
    } else {
        payload
    };
    let iov = [IoSlice::new(payload)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)?;
    Ok(())
}

/// Receive one message and any descriptors riding with it (SCM_RIGHTS). Returns the payload
/// (empty at end of file) and the descriptors, each owned exactly once.
pub fn recv_with_fds(sock: BorrowedFd<'_>) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; 16384];
    let mut cmsg_space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let (fds, len) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r?,
        };
        let mut fds = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(r) = c {
                fds.extend(r);
            }
        }
        break (fds, msg.bytes);
    };
    buf.truncate(len);
    let owned = fds
        .into_iter()
        // SAFETY: SCM_RIGHTS installed these descriptors in our table just now; nobody else
        // owns them, so each is wrapped exactly once.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    Ok((buf, owned))
}

/// Receive one descriptor sent with [`send_fd`]; returns it with the payload.
pub fn recv_fd(sock: BorrowedFd<'_>) -> io::Result<(OwnedFd, Vec<u8>)> {
    let (buf, mut fds) = recv_with_fds(sock)?;
    if fds.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no file descriptor received over the socket",
        ));
    }
    Ok((fds.swap_remove(0), buf))
}

/// Mark every descriptor `>= from` close-on-exec (`close_range(CLOSE_RANGE_CLOEXEC)`), so a
/// container process inherits only what is explicitly passed (stdio, preserved fds).
pub fn mark_cloexec_from(from: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes descriptor flags; no memory is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            from,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Close every descriptor `>= 3` except those in `keep`.
///
/// Why: a child forked from a multi-threaded process inherits whatever the other threads
/// had open at that instant, including files being written (exec'ing such a file later
/// fails with ETXTBSY) and pipe ends whose readers then never see EOF. A container's
/// helper and init live for a while before they exec, so they drop everything they do not
/// own right away. Close-on-exec would come too late.
pub fn close_fds_except(keep: &[std::os::fd::RawFd]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|f| **f >= 3)
        .map(|f| *f as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from = 3u32;
    for k in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if k > from {
            let to = if k == u32::MAX { u32::MAX } else { k - 1 };
            // SAFETY: close_range only closes descriptors; the caller guarantees that nothing
            // it still uses lies outside `keep`.
            let ret = unsafe { libc::syscall(libc::SYS_close_range, from, to, 0u32) };
            if ret == -1 {
                return Err(io::Error::last_os_error());
            }
        }
        from = k.saturating_add(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn close_fds_except_keeps_only_the_listed() {
        let pid = crate::fork_child(|| {
            let a = std::fs::File::open("/proc/self/status").unwrap();
            let b = std::fs::File::open("/proc/self/status").unwrap();
            let c = std::fs::File::open("/proc/self/status").unwrap();
            use std::os::fd::AsRawFd;
            super::close_fds_except(&[b.as_raw_fd()]).unwrap();
            let open = |f: &std::fs::File| {
                std::path::Path::new(&format!("/proc/self/fd/{}", f.as_raw_fd())).exists()
            };
            let ok = !open(&a) && open(&b) && !open(&c);
            std::mem::forget((a, c));
            i32::from(!ok)
        })
        .unwrap();
        let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
        assert_eq!(
            st,
            nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 0)
        );
    }

    #[test]
    fn fd_roundtrip_over_socketpair() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let f = std::fs::File::open("/proc/self/status").unwrap();
        send_fd(a.as_fd(), b"hello", f.as_fd()).unwrap();
        let (got, payload) = recv_fd(b.as_fd()).unwrap();
        assert_eq!(payload, b"hello");
        let mut s = String::new();
        use std::io::Read;
        std::fs::File::from(got).read_to_string(&mut s).unwrap();
        assert!(s.contains("Name:"));
    }
}
