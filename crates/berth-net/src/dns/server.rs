//! One DNS server per container, bound to 127.0.0.11:53 (UDP and TCP) *inside* the container
//! netns (the sockets are created there by `netns::open_in_netns`, served here by a tokio
//! task on the host). Names are answered from berth-net's state; other names are forwarded
//! to the host's resolvers from host-namespace sockets, so loopback resolvers on the host
//! work too.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use super::wire;
use crate::error::{NetError, Result};
use crate::netns::DnsSockets;

/// The answer of the name lookup for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A container name/alias/short id on a network the asking container is on.
    Found(Vec<Ipv4Addr>),
    /// Not one of ours: forward (`true`) unless the container is only on internal networks.
    NotOurs { forward: bool },
}

/// Where names come from (implemented by the network manager over its state).
pub trait Resolver: Send + Sync + 'static {
    fn lookup(&self, container_id: &str, name: &str) -> Lookup;
}

/// How long to wait for one upstream before trying the next.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle TCP client connections are closed after this.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// What to do with one query.
enum Action {
    Reply(Vec<u8>),
    Forward,
    Ignore,
}

struct Ctx {
    container_id: String,
    resolver: Arc<dyn Resolver>,
    upstreams: Arc<Vec<SocketAddr>>,
}

impl Ctx {
    fn decide(&self, pkt: &[u8]) -> Action {
        let q = match wire::parse_query(pkt) {
            Ok(q) => q,
            Err(_) => {
                return wire::error_reply(pkt, wire::RCODE_FORMERR)
                    .map_or(Action::Ignore, Action::Reply)
            }
        };
        if q.qclass != wire::CLASS_IN {
            return Action::Reply(wire::answer(pkt, &q, &[], wire::RCODE_NOTIMP));
        }
        match self.resolver.lookup(&self.container_id, &q.name) {
            Lookup::Found(ips) if q.qtype == wire::TYPE_A => {
                Action::Reply(wire::answer(pkt, &q, &ips, wire::RCODE_NOERROR))
            }
            // Our name, other type (AAAA, MX...): "no data", as Docker answers.
            Lookup::Found(_) => Action::Reply(wire::answer(pkt, &q, &[], wire::RCODE_NOERROR)),
            Lookup::NotOurs { forward: false } => {
                Action::Reply(wire::answer(pkt, &q, &[], wire::RCODE_REFUSED))
            }
            Lookup::NotOurs { forward: true } => Action::Forward,
        }
    }
}

fn servfail(pkt: &[u8]) -> Option<Vec<u8>> {
    wire::parse_query(pkt)
        .ok()
        .map(|q| wire::answer(pkt, &q, &[], wire::RCODE_SERVFAIL))
}

/// Serve DNS on the sockets for `container_id` until the returned task is aborted.
pub fn spawn(
    socks: DnsSockets,
    container_id: String,
    resolver: Arc<dyn Resolver>,
    upstreams: Arc<Vec<SocketAddr>>,
) -> Result<JoinHandle<()>> {
    socks
        .udp
        .set_nonblocking(true)
        .map_err(|e| NetError::io("set DNS socket nonblocking", e))?;
    socks
        .tcp
        .set_nonblocking(true)
        .map_err(|e| NetError::io("set DNS socket nonblocking", e))?;
    let udp = Arc::new(
        UdpSocket::from_std(socks.udp).map_err(|e| NetError::io("register DNS socket", e))?,
    );
    let tcp =
        TcpListener::from_std(socks.tcp).map_err(|e| NetError::io("register DNS TCP socket", e))?;
    let ctx = Arc::new(Ctx {
        container_id,
        resolver,
        upstreams,
    });
    Ok(tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        let tcp_loop = async {
            loop {
                if let Ok((stream, _)) = tcp.accept().await {
                    while conns.try_join_next().is_some() {}
                    conns.spawn(serve_tcp(stream, ctx.clone()));
                }
            }
        };
        tokio::join!(serve_udp(udp, ctx.clone()), tcp_loop);
    }))
}

async fn serve_udp(sock: Arc<UdpSocket>, ctx: Arc<Ctx>) {
    let mut forwards = tokio::task::JoinSet::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(container = %ctx.container_id, "dns recv: {e}");
                continue;
            }
        };
        let pkt = buf[..n].to_vec();
        match ctx.decide(&pkt) {
            Action::Reply(r) => {
                let _ = sock.send_to(&r, peer).await;
            }
            Action::Ignore => {}
            Action::Forward => {
                while forwards.try_join_next().is_some() {}
                let (sock, ups) = (sock.clone(), ctx.upstreams.clone());
                forwards.spawn(async move {
                    if let Some(r) = forward_udp(&pkt, &ups).await.or_else(|| servfail(&pkt)) {
                        let _ = sock.send_to(&r, peer).await;
                    }
                });
            }
        }
    }
}

/// DNS over TCP: 2-byte length prefix per message (RFC 1035 4.2.2), several per connection.
async fn serve_tcp(mut s: TcpStream, ctx: Arc<Ctx>) {
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, s.read_u16()).await else {
            return;
        };
        let mut pkt = vec![0u8; usize::from(len)];
        if s.read_exact(&mut pkt).await.is_err() {
            return;
        }
        let reply = match ctx.decide(&pkt) {
            Action::Reply(r) => Some(r),
            Action::Ignore => None,
            Action::Forward => forward_tcp(&pkt, &ctx.upstreams)
                .await
                .or_else(|| servfail(&pkt)),
        };
        let Some(r) = reply else { return };
        let Ok(rlen) = u16::try_from(r.len()) else {
            return;
        };
        if s.write_u16(rlen).await.is_err() || s.write_all(&r).await.is_err() {
            return;
        }
    }
}

/// Relay the query to each upstream in turn; the first answer with the same id wins.
async fn forward_udp(pkt: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .ok()?;
        let Ok(s) = UdpSocket::bind(bind).await else {
            continue;
        };
        if s.connect(up).await.is_err() || s.send(pkt).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok(n)) = tokio::time::timeout(UPSTREAM_TIMEOUT, s.recv(&mut buf)).await {
            if n >= 2 && buf[..2] == pkt[..2] {
                buf.truncate(n);
                return Some(buf);
            }
        }
    }
    None
}

async fn forward_tcp(pkt: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let len = u16::try_from(pkt.len()).ok()?;
    for up in upstreams {
        let attempt = async {
            let mut s = TcpStream::connect(up).await.ok()?;
            s.write_u16(len).await.ok()?;
            s.write_all(pkt).await.ok()?;
            let n = s.read_u16().await.ok()?;
            let mut buf = vec![0u8; usize::from(n)];
            s.read_exact(&mut buf).await.ok()?;
            (buf.len() >= 2 && buf[..2] == pkt[..2]).then_some(buf)
        };
        if let Ok(Some(r)) = tokio::time::timeout(UPSTREAM_TIMEOUT, attempt).await {
            return Some(r);
        }
    }
    None
}
