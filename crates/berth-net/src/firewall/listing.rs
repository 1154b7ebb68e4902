//! Reading our rules back: which lines of `nft list table` (or of `iptables-save`)
//! implement one published port, for `berth explain`.

use super::{iptables, PortKey, PortTarget, MAPS_ADDR, MAPS_ANY};

/// One entry of an `nft list table` text: `("chain prerouting", "jump ports")` or
/// `("map published", "tcp . 127.0.0.1 . 8080 : 10.88.0.2 . 80")` (one per element).
pub(crate) fn parse_nft(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut elements: Option<String> = None;
    for l in text.lines() {
        let l = l.trim();
        if let Some(acc) = elements.as_mut() {
            acc.push(' ');
            acc.push_str(l);
        } else if let Some(rest) = l.strip_prefix("elements = {") {
            elements = Some(rest.to_string());
        } else if let Some(rest) = l.strip_prefix("chain ").or_else(|| l.strip_prefix("map ")) {
            let kind = if l.starts_with("chain ") {
                "chain"
            } else {
                "map"
            };
            section = format!("{kind} {}", rest.trim_end_matches('{').trim());
            continue;
        } else if l == "}" {
            section.clear();
            continue;
        } else if l.is_empty()
            || l.starts_with("type ")
            || l.starts_with("table ")
            || l.starts_with("flags ")
            || l.starts_with("policy ")
            || section.is_empty()
        {
            continue;
        } else {
            out.push((section.clone(), l.to_string()));
            continue;
        }
        // inside `elements = { ... }`, possibly over several lines
        if let Some(acc) = elements.as_ref().filter(|a| a.trim_end().ends_with('}')) {
            let body = acc.trim().trim_end_matches('}');
            for e in body.split(',') {
                let e = e.split_whitespace().collect::<Vec<_>>().join(" ");
                if !e.is_empty() {
                    out.push((section.clone(), e));
                }
            }
            elements = None;
        }
    }
    out
}

fn display(section: &str, rule: &str) -> String {
    // "chain ports" -> "ports: rule"; "map published" -> "map published: element"
    match section.strip_prefix("chain ") {
        Some(c) => format!("{c}: {rule}"),
        None => format!("{section}: {rule}"),
    }
}

fn wants_loopback_masquerade(k: &PortKey) -> bool {
    k.host_ip.is_unspecified() || k.host_ip.is_loopback()
}

/// See [`super::Firewall::port_rules`].
pub(crate) fn nft_port_rules(text: &str, k: &PortKey, t: &PortTarget, bridge: &str) -> Vec<String> {
    let entries = parse_nft(text);
    let (addr_map, port_map) = if k.host_ip.is_unspecified() {
        MAPS_ANY
    } else {
        MAPS_ADDR
    };
    let key = if k.host_ip.is_unspecified() {
        format!("{} . {}", k.proto, k.host_port)
    } else {
        format!("{} . {} . {}", k.proto, k.host_ip, k.host_port)
    };
    let elems = [
        (format!("map {addr_map}"), format!("{key} : {}", t.ip)),
        (format!("map {port_map}"), format!("{key} : {}", t.port)),
    ];
    if !elems.iter().all(|e| entries.contains(e)) {
        return Vec::new();
    }
    // `@name` as a whole word (published_addr is not published_any_addr)
    let uses = |r: &str| {
        r.match_indices(&format!("@{addr_map}"))
            .any(|(i, m)| !r[i + m.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'))
    };
    let users: Vec<&(String, String)> = entries
        .iter()
        .filter(|(s, r)| s.starts_with("chain ") && uses(r))
        .collect();
    let mut out = Vec::new();
    for (s, r) in &entries {
        let jumps_to_user = users.iter().any(|(us, _)| {
            us.strip_prefix("chain ")
                .is_some_and(|c| *r == format!("jump {c}"))
        });
        let masq = wants_loopback_masquerade(k)
            && !bridge.is_empty()
            && r.contains("127.0.0.0/8")
            && r.contains(&format!("\"{bridge}\""))
            && r.contains("masquerade");
        if jumps_to_user || masq {
            out.push(display(s, r));
        }
    }
    out.extend(users.iter().map(|(s, r)| display(s, r)));
    out.extend(elems.iter().map(|(s, e)| display(s, e)));
    out
}

/// See [`super::Firewall::port_rules`]; `text` is our `iptables-save` listing.
pub(crate) fn iptables_port_rules(
    text: &str,
    table: &str,
    k: &PortKey,
    t: &PortTarget,
    bridge: &str,
) -> Vec<String> {
    let c = iptables::chains(table);
    let dst = if k.host_ip.is_unspecified() {
        "-m addrtype --dst-type LOCAL".to_string()
    } else {
        format!("-d {}/32", k.host_ip)
    };
    let dnat = format!(
        "-A {} {dst} -p {p} -m {p} --dport {} -j DNAT --to-destination {}:{}",
        c.ports,
        k.host_port,
        t.ip,
        t.port,
        p = k.proto
    );
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    if !lines.contains(&dnat.as_str()) {
        return Vec::new();
    }
    let chain_of = |l: &str| l.split_whitespace().nth(1).unwrap_or_default().to_string();
    let mut out = Vec::new();
    for l in &lines {
        let jump = l.ends_with(&format!(" -j {}", c.ports)) && l.starts_with("-A ");
        let masq = wants_loopback_masquerade(k)
            && l.starts_with(&format!("-A {} -s 127.0.0.0/8 -o {bridge} ", c.post))
            && l.ends_with("MASQUERADE");
        if jump || masq {
            out.push(format!("{}: {l}", chain_of(l)));
        }
    }
    out.push(format!("{}: {dnat}", c.ports));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;
    use std::net::Ipv4Addr;

    const TABLE: &str = r#"table ip berth {
	map published_addr {
		type inet_proto . ipv4_addr . inet_service : ipv4_addr
		elements = { tcp . 127.0.0.1 . 18777 : 172.17.0.2,
			     udp . 127.0.0.1 . 18778 : 172.17.0.3 }
	}

	map published_port {
		type inet_proto . ipv4_addr . inet_service : inet_service
		elements = { tcp . 127.0.0.1 . 18777 : 80,
			     udp . 127.0.0.1 . 18778 : 53 }
	}

	map published_any_addr {
		type inet_proto . inet_service : ipv4_addr
		elements = { tcp . 18779 : 172.17.0.2 }
	}

	map published_any_port {
		type inet_proto . inet_service : inet_service
		elements = { tcp . 18779 : 80 }
	}

	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump ports
	}

	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 127.0.0.0/8 oifname "berth0" masquerade
		ip saddr 172.17.0.0/16 oifname != "berth0" masquerade
	}

	chain ports {
		dnat to meta l4proto . ip daddr . th dport map @published_addr:meta l4proto . ip daddr . th dport map @published_port
		fib daddr type local dnat to meta l4proto . th dport map @published_any_addr:meta l4proto . th dport map @published_any_port
	}
}
"#;

    fn key(ip: Ipv4Addr, port: u16, proto: Protocol) -> PortKey {
        PortKey {
            proto,
            host_ip: ip,
            host_port: port,
        }
    }

    #[test]
    fn nft_rules_of_a_port_are_the_jump_masquerade_lookup_and_element() {
        let t = PortTarget {
            ip: Ipv4Addr::new(172, 17, 0, 3),
            port: 53,
        };
        let k = key(Ipv4Addr::LOCALHOST, 18778, Protocol::Udp);
        assert_eq!(
            nft_port_rules(TABLE, &k, &t, "berth0"),
            vec![
                "prerouting: jump ports",
                "postrouting: ip saddr 127.0.0.0/8 oifname \"berth0\" masquerade",
                "ports: dnat to meta l4proto . ip daddr . th dport map @published_addr:meta l4proto . ip daddr . th dport map @published_port",
                "map published_addr: udp . 127.0.0.1 . 18778 : 172.17.0.3",
                "map published_port: udp . 127.0.0.1 . 18778 : 53",
            ]
        );
        let t = PortTarget {
            ip: Ipv4Addr::new(172, 17, 0, 2),
            port: 80,
        };
        let any = nft_port_rules(
            TABLE,
            &key(Ipv4Addr::UNSPECIFIED, 18779, Protocol::Tcp),
            &t,
            "berth0",
        );
        assert_eq!(
            any[any.len() - 2..],
            [
                "map published_any_addr: tcp . 18779 : 172.17.0.2",
                "map published_any_port: tcp . 18779 : 80"
            ]
        );
        assert!(any
            .iter()
            .any(|r| r.starts_with("ports: fib daddr type local dnat")));
        assert!(
            !any.iter().any(|r| r.contains("@published_addr")),
            "{any:?}"
        );
        // not published -> nothing
        assert!(nft_port_rules(
            TABLE,
            &key(Ipv4Addr::LOCALHOST, 1, Protocol::Tcp),
            &t,
            "berth0"
        )
        .is_empty());
    }

    #[test]
    fn iptables_rules_of_a_port() {
        let text = "*nat\n:bt-PORTS - [0:0]\n-A PREROUTING -j bt-PORTS\n-A OUTPUT -j bt-PORTS\n-A bt-POST -s 127.0.0.0/8 -o br1 -j MASQUERADE\n-A bt-PORTS -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80\n";
        let t = PortTarget {
            ip: Ipv4Addr::new(10, 1, 0, 2),
            port: 80,
        };
        let r = iptables_port_rules(
            text,
            "bt",
            &key(Ipv4Addr::LOCALHOST, 8080, Protocol::Tcp),
            &t,
            "br1",
        );
        assert_eq!(
            r,
            vec![
                "PREROUTING: -A PREROUTING -j bt-PORTS",
                "OUTPUT: -A OUTPUT -j bt-PORTS",
                "bt-POST: -A bt-POST -s 127.0.0.0/8 -o br1 -j MASQUERADE",
                "bt-PORTS: -A bt-PORTS -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80",
            ]
        );
    }
}
