//! What the engine writes into a container's `/etc/resolv.conf` and `/etc/hosts`.

use std::net::{IpAddr, Ipv4Addr};

/// The embedded DNS address inside every bridge-attached container (as Docker's).
pub const EMBEDDED_DNS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// resolv.conf for a container attached to bridge networks: the embedded DNS server, plus
/// the host's `search` and `options` lines (`host_resolv_conf` is the host's file content).
/// The embedded server resolves container names and forwards everything else to the
/// host's resolvers from the host namespace, so loopback resolvers on the host
/// (127.0.0.53 etc.) work too.
pub fn resolv_conf_embedded(host_resolv_conf: &str) -> String {
    let mut out = format!("nameserver {EMBEDDED_DNS}\n");
    let mut has_ndots = false;
    for line in host_resolv_conf.lines() {
        let l = line.trim();
        if l.starts_with("search ") || l.starts_with("domain ") {
            out.push_str(l);
            out.push('\n');
        } else if l.starts_with("options ") {
            has_ndots |= l.contains("ndots:");
            out.push_str(l);
            out.push('\n');
        }
    }
    if !has_ndots {
        out.push_str("options ndots:0\n");
    }
    out
}

/// resolv.conf for `--network host`: the host's file unchanged. For `--network none`
/// Docker also copies the host's file (it cannot be used without a network anyway).
pub fn resolv_conf_host(host_resolv_conf: &str) -> String {
    host_resolv_conf.to_string()
}

/// Upstream resolvers from resolv.conf content (port 53).
pub fn nameservers(resolv_conf: &str) -> Vec<std::net::SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<IpAddr>().ok())
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .collect()
}

/// `/etc/hosts` as Docker writes it: localhost entries, then the container's own
/// addresses with its hostname, then `--add-host` extras.
pub fn hosts_file(hostname: &str, own_ips: &[Ipv4Addr], extra: &[(String, IpAddr)]) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (name, ip) in extra {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    for ip in own_ips {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_points_at_embedded_dns_and_keeps_search() {
        let r = resolv_conf_embedded("nameserver 10.0.0.53\nsearch corp.example\noptions edns0\n");
        assert_eq!(
            r,
            "nameserver 127.0.0.11\nsearch corp.example\noptions edns0\noptions ndots:0\n"
        );
        assert_eq!(
            nameservers("nameserver 10.0.0.53\n# c\nnameserver ::1\n").len(),
            2
        );
    }

    #[test]
    fn hosts_has_own_name() {
        let h = hosts_file("abc123", &[Ipv4Addr::new(172, 18, 0, 2)], &[]);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("172.18.0.2\tabc123\n"));
    }
}
