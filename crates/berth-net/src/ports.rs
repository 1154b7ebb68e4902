//! Host port reservation. A published port is reserved by holding a socket *bound* (not
//! listening) to host_ip:port for as long as it is published: the kernel then refuses the
//! port to anyone else (and to our own second request), and the bind itself is the
//! "is it free?" check — a DNAT on a port another program already serves would silently
//! steal its local connections (host-facts C9). Packets never reach the reserving socket:
//! they are DNATed in prerouting/output before the socket lookup.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrIn};

use crate::error::{NetError, Result};
use crate::model::Protocol;

/// Bind host_ip:port (port 0 = a free ephemeral port) and return the holding socket and
/// the actual port.
pub fn reserve(host_ip: Ipv4Addr, port: u16, proto: Protocol) -> Result<(OwnedFd, u16)> {
    let ty = match proto {
        Protocol::Tcp => SockType::Stream,
        Protocol::Udp => SockType::Datagram,
    };
    let fd = socket::socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| NetError::io("create port reservation socket", e.into()))?;
    match socket::bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(host_ip, port)),
    ) {
        Ok(()) => {}
        Err(Errno::EADDRINUSE) | Err(Errno::EACCES) => {
            return Err(NetError::PortAllocated {
                addr: format!("{host_ip}:{port}"),
            })
        }
        Err(Errno::EADDRNOTAVAIL) => {
            return Err(NetError::InvalidArgument(format!(
                "cannot publish on {host_ip}: it is not an address of this host"
            )))
        }
        Err(e) => {
            return Err(NetError::io(
                format!("bind {host_ip}:{port}/{proto}"),
                e.into(),
            ))
        }
    }
    let actual = socket::getsockname::<SockaddrIn>(fd.as_raw_fd())
        .map_err(|e| NetError::io("getsockname of port reservation", e.into()))?
        .port();
    Ok((fd, actual))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_reservation_of_a_port_is_refused_with_docker_wording() {
        let (_a, port) = reserve(Ipv4Addr::LOCALHOST, 0, Protocol::Tcp).unwrap();
        assert_ne!(port, 0);
        let e = reserve(Ipv4Addr::LOCALHOST, port, Protocol::Tcp).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Bind for 127.0.0.1:{port} failed: port is already allocated")
        );
        // a listener somebody else holds counts too
        let l = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        assert!(matches!(
            reserve(Ipv4Addr::LOCALHOST, p, Protocol::Udp),
            Err(NetError::PortAllocated { .. })
        ));
    }
}
