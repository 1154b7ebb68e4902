//! The few sysctls berth-net sets (plain file writes under /proc/sys, no `sysctl` exec).

use crate::error::{NetError, Result};

fn write(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| NetError::io(format!("write {value} to {path}"), e))
}

/// Turn IPv4 forwarding on. Never turned back off: another engine on the same kernel may
/// rely on it, and it was 0 at boot here.
pub fn enable_ip_forward() -> Result<()> {
    let p = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(p)
        .map(|v| v.trim() == "1")
        .unwrap_or(false)
    {
        return Ok(());
    }
    write(p, "1")
}

/// `route_localnet=1` on our bridge: lets a connection to 127.0.0.1:PORT, DNATed to a
/// container, leave through the bridge instead of being dropped as a martian (loopback
/// source on a non-loopback device). Scoped to our bridge only.
pub fn enable_route_localnet(bridge: &str) -> Result<()> {
    write(
        &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
        "1",
    )
}
