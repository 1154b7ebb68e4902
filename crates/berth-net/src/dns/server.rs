//! One UDP listener per container, bound to 127.0.0.11:53 *inside* the container netns (the
//! socket is created there by `netns::open_in_netns`, served here by a tokio task on the
//! host). Names are answered from berth-net's state; other names are forwarded to the
//! host's resolvers from a host-namespace socket, so loopback resolvers on the host work.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use super::wire;
use crate::error::{NetError, Result};

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

/// Serve DNS on `sock` for `container_id` until the returned task is aborted.
pub fn spawn(
    sock: std::net::UdpSocket,
    container_id: String,
    resolver: Arc<dyn Resolver>,
    upstreams: Arc<Vec<SocketAddr>>,
) -> Result<JoinHandle<()>> {
    sock.set_nonblocking(true)
        .map_err(|e| NetError::io("set DNS socket nonblocking", e))?;
    let sock =
        Arc::new(UdpSocket::from_std(sock).map_err(|e| NetError::io("register DNS socket", e))?);
    Ok(tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = match sock.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(container = %container_id, "dns recv: {e}");
                    continue;
                }
            };
            let pkt = buf[..n].to_vec();
            let reply = match wire::parse_query(&pkt) {
                Err(_) => wire::error_reply(&pkt, wire::RCODE_FORMERR),
                Ok(q) if q.qclass != wire::CLASS_IN => {
                    Some(wire::answer(&pkt, &q, &[], wire::RCODE_NOTIMP))
                }
                Ok(q) => match resolver.lookup(&container_id, &q.name) {
                    Lookup::Found(ips) if q.qtype == wire::TYPE_A => {
                        Some(wire::answer(&pkt, &q, &ips, wire::RCODE_NOERROR))
                    }
                    // Our name, other type (AAAA, MX...): "no data", as Docker answers.
                    Lookup::Found(_) => Some(wire::answer(&pkt, &q, &[], wire::RCODE_NOERROR)),
                    Lookup::NotOurs { forward: false } => {
                        Some(wire::answer(&pkt, &q, &[], wire::RCODE_REFUSED))
                    }
                    Lookup::NotOurs { forward: true } => {
                        let (sock, ups) = (sock.clone(), upstreams.clone());
                        tokio::spawn(async move {
                            let reply = forward(&pkt, &ups).await.or_else(|| {
                                wire::parse_query(&pkt)
                                    .ok()
                                    .map(|q| wire::answer(&pkt, &q, &[], wire::RCODE_SERVFAIL))
                            });
                            if let Some(r) = reply {
                                let _ = sock.send_to(&r, peer).await;
                            }
                        });
                        None
                    }
                },
            };
            if let Some(r) = reply {
                let _ = sock.send_to(&r, peer).await;
            }
        }
    }))
}

/// Relay the query to each upstream in turn; the first answer with the same id wins.
async fn forward(pkt: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
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
