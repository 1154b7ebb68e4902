//! Doing work inside a container's network namespace without ever moving a tokio worker.
//!
//! `setns(CLONE_NEWNET)` changes the namespace of the calling *thread*, and a socket stays
//! bound to the namespace it was created in for its whole life. So: a short-lived OS thread
//! enters the namespace, creates the sockets (a netlink socket registered with the caller's
//! tokio reactor, and optionally the embedded DNS socket), hands them back and exits. All
//! netlink requests then run as ordinary async code on the caller's runtime — no per-call
//! runtime, no blocking, and the worker threads never leave the host namespace.

use std::fs::File;
use std::net::{SocketAddrV4, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use nix::sched::CloneFlags;
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::proto::Connection;

use crate::error::{NetError, Result};

/// Sockets opened inside a network namespace.
pub struct NetnsSockets {
    /// Netlink handle bound to the namespace; its connection task is already spawned.
    pub handle: rtnetlink::Handle,
    /// DNS sockets bound to the requested address inside the namespace.
    pub dns: Option<DnsSockets>,
}

/// The embedded DNS server's sockets (UDP, and TCP for truncated answers and `+tcp` clients).
pub struct DnsSockets {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
}

type Conn = Connection<RouteNetlinkMessage>;

/// Open a netlink connection (and optionally a DNS socket) inside the namespace at `netns`.
pub async fn open_in_netns(netns: &Path, dns_bind: Option<SocketAddrV4>) -> Result<NetnsSockets> {
    let rt = tokio::runtime::Handle::current();
    let path: PathBuf = netns.to_path_buf();
    let (tx, rx) =
        tokio::sync::oneshot::channel::<Result<(Conn, rtnetlink::Handle, Option<DnsSockets>)>>();
    std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || {
            let _ = tx.send(in_netns_thread(&path, &rt, dns_bind));
        })
        .map_err(|e| NetError::io("spawn netns thread", e))?;
    let (conn, handle, dns) = rx.await.map_err(|_| {
        NetError::io(
            "netns thread",
            std::io::Error::other("thread exited without an answer"),
        )
    })??;
    tokio::spawn(conn);
    Ok(NetnsSockets { handle, dns })
}

fn in_netns_thread(
    path: &Path,
    rt: &tokio::runtime::Handle,
    dns_bind: Option<SocketAddrV4>,
) -> Result<(Conn, rtnetlink::Handle, Option<DnsSockets>)> {
    let f = File::open(path).map_err(|e| {
        NetError::io(
            format!(
                "open network namespace {} (is the container still running?)",
                path.display()
            ),
            e,
        )
    })?;
    nix::sched::setns(&f, CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetError::io(format!("setns into {}", path.display()), e.into()))?;
    // The netlink socket registers with the caller's reactor but is created here, in the netns.
    let _guard = rt.enter();
    let (conn, handle, _) = rtnetlink::new_connection()
        .map_err(|e| NetError::io("open netlink socket in container netns", e))?;
    let dns = match dns_bind {
        Some(addr) => Some(dns_sockets(addr)?),
        None => None,
    };
    Ok((conn, handle, dns))
}

/// Bind the embedded DNS sockets inside the namespace at `netns`. Call it once `lo` is up:
/// a socket bound to 127.0.0.11 while `lo` is down replies from 127.0.0.1 (the kernel picks
/// the source then), and resolvers drop such answers.
pub async fn bind_dns_in_netns(netns: &Path, addr: SocketAddrV4) -> Result<DnsSockets> {
    let path: PathBuf = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel::<Result<DnsSockets>>();
    std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || {
            let r = File::open(&path)
                .map_err(|e| NetError::io(format!("open network namespace {}", path.display()), e))
                .and_then(|f| {
                    nix::sched::setns(&f, CloneFlags::CLONE_NEWNET).map_err(|e| {
                        NetError::io(format!("setns into {}", path.display()), e.into())
                    })
                })
                .and_then(|()| dns_sockets(addr));
            let _ = tx.send(r);
        })
        .map_err(|e| NetError::io("spawn netns thread", e))?;
    rx.await.map_err(|_| {
        NetError::io(
            "netns thread",
            std::io::Error::other("thread exited without an answer"),
        )
    })?
}

fn dns_sockets(addr: SocketAddrV4) -> Result<DnsSockets> {
    Ok(DnsSockets {
        udp: UdpSocket::from(bind_freebind(addr, SockType::Datagram)?),
        tcp: {
            let fd = bind_freebind(addr, SockType::Stream)?;
            socket::listen(
                &fd,
                socket::Backlog::new(64).unwrap_or(socket::Backlog::MAXCONN),
            )
            .map_err(|e| NetError::io("listen on DNS TCP socket", e.into()))?;
            TcpListener::from(fd)
        },
    })
}

/// Bind a socket with IP_FREEBIND: the container's `lo` may not be up yet (its
/// 127.0.0.1/8 appears only when it is), and 127.0.0.11 must be bindable before that.
fn bind_freebind(addr: SocketAddrV4, ty: SockType) -> Result<OwnedFd> {
    let fd = socket::socket(
        AddressFamily::Inet,
        ty,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| NetError::io("create DNS socket", e.into()))?;
    socket::setsockopt(&fd, sockopt::IpFreebind, &true)
        .map_err(|e| NetError::io("set IP_FREEBIND", e.into()))?;
    // a restarted daemon must be able to listen again while old connections linger
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)
        .map_err(|e| NetError::io("set SO_REUSEADDR", e.into()))?;
    socket::bind(fd.as_raw_fd(), &SockaddrIn::from(addr)).map_err(|e| {
        NetError::io(
            format!("bind DNS socket {addr} in container netns"),
            e.into(),
        )
    })?;
    Ok(fd)
}

/// Bring `lo` up inside a namespace (what `--network none` needs, and every container).
pub async fn loopback_up(handle: &rtnetlink::Handle) -> Result<()> {
    let idx = link_index(handle, "lo").await?;
    handle
        .link()
        .set(rtnetlink::LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(|e| NetError::netlink("set lo up", e))
}

/// The index of a link by name, in the namespace of `handle`.
pub async fn link_index(handle: &rtnetlink::Handle, name: &str) -> Result<u32> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.next().await {
        Some(Ok(msg)) => Ok(msg.header.index),
        Some(Err(e)) => Err(NetError::netlink(format!("get link {name}"), e)),
        None => Err(NetError::io(
            format!("link {name}"),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )),
    }
}

/// Bring up `lo` in the namespace at `netns` (for `--network none`).
pub async fn setup_loopback(netns: &Path) -> Result<()> {
    let s = open_in_netns(netns, None).await?;
    loopback_up(&s.handle).await
}
