//! Per-container `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, written under the
//! container's directory and bind-mounted into it (so the image's files stay untouched).

/// `/etc/hosts`: Docker's fixed header, the container's own address line, `--add-host`s.
pub fn hosts(hostname: &str, ip: Option<&str>, extra_hosts: &[String]) -> Result<String, String> {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for e in extra_hosts {
        let (h, addr) = e.split_once(':').ok_or_else(|| {
            format!("invalid argument \"{e}\" for \"--add-host\" flag: bad format for add-host")
        })?;
        s.push_str(&format!("{addr}\t{h}\n"));
    }
    if let Some(ip) = ip {
        s.push_str(&format!("{ip}\t{hostname}\n"));
    }
    Ok(s)
}

/// `/etc/resolv.conf` from the host's: loopback nameservers are dropped (they are not
/// reachable from the container's network namespace); when none is left, Docker's public
/// defaults are written. `--dns*` options replace the respective lines.
pub fn resolv_conf(
    host_conf: &str,
    dns: &[String],
    search: &[String],
    options: &[String],
    host_network: bool,
) -> String {
    if host_network && dns.is_empty() && search.is_empty() && options.is_empty() {
        return host_conf.to_string();
    }
    let mut nameservers = Vec::new();
    let mut searches = Vec::new();
    let mut opts = Vec::new();
    for line in host_conf.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => {
                if let Some(ns) = f.next() {
                    let loopback = ns.starts_with("127.") || ns == "::1";
                    if host_network || !loopback {
                        nameservers.push(ns.to_string());
                    }
                }
            }
            Some("search") | Some("domain") => searches.extend(f.map(str::to_string)),
            Some("options") => opts.extend(f.map(str::to_string)),
            _ => {}
        }
    }
    if !dns.is_empty() {
        nameservers = dns.to_vec();
    }
    if nameservers.is_empty() {
        nameservers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    if !search.is_empty() {
        searches = search.to_vec();
    }
    if !options.is_empty() {
        opts = options.to_vec();
    }
    let mut s = String::new();
    for ns in &nameservers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    if !searches.is_empty() && searches != ["."] {
        s.push_str(&format!("search {}\n", searches.join(" ")));
    }
    if !opts.is_empty() {
        s.push_str(&format!("options {}\n", opts.join(" ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_has_header_own_line_and_extras() {
        let h = hosts("abc123", Some("10.0.0.2"), &["db:10.0.0.9".into()]).unwrap();
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.contains("10.0.0.9\tdb\n"));
        assert!(h.ends_with("10.0.0.2\tabc123\n"));
        assert!(hosts("x", None, &["nocolon".into()]).is_err());
    }

    #[test]
    fn resolv_drops_loopback() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example.org\noptions edns0\n";
        let r = resolv_conf(host, &[], &[], &[], false);
        assert_eq!(
            r,
            "nameserver 192.0.2.53\nsearch example.org\noptions edns0\n"
        );
        let only_lo = resolv_conf("nameserver 127.0.0.1\n", &[], &[], &[], false);
        assert_eq!(only_lo, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let custom = resolv_conf(host, &["1.1.1.1".into()], &["a.b".into()], &[], false);
        assert_eq!(custom, "nameserver 1.1.1.1\nsearch a.b\noptions edns0\n");
        assert_eq!(resolv_conf(host, &[], &[], &[], true), host);
    }
}
