//! The iptables backend, for hosts without `nft` or nf_tables: the rules of `nft.rs` in
//! berth-owned chains, loaded with ONE `iptables-restore --noflush` batch (atomic per
//! table; other chains and rules are left alone — `--noflush` only flushes the chains the
//! batch declares, and it declares only ours).
//!
//! Chains (names derived from the nft table name, so several instances never collide):
//! - nat `B-PORTS`: one DNAT per published port, jumped to from `PREROUTING` and `OUTPUT`.
//!   `-p 127.0.0.1:8080:80` → `-d 127.0.0.1 -p tcp --dport 8080 -j DNAT ...`; `-p 8080:80` →
//!   `-m addrtype --dst-type LOCAL -p tcp --dport 8080 -j DNAT ...`.
//! - nat `B-POST` (from `POSTROUTING`): the masquerades (127/8 to the bridge, hairpin, outbound).
//! - filter `B-FWD` (inserted first in `FORWARD`): the forward filter.
//!
//! The jumps from the built-in chains are added only when `iptables-save` does not show
//! them (idempotent) and deleted on removal. A port change re-declares (flushes) and
//! refills `B-PORTS` only: one `iptables-restore` exec, slower than the nftables backend's
//! netlink update but only used where nftables is missing. On Debian 12 `iptables` is
//! iptables-nft: the rules then land in the kernel's nf_tables `ip nat`/`ip filter` tables,
//! but this code path is the same as with iptables-legacy.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use super::Ruleset;
use crate::error::{NetError, Result};

fn find(names: &[&'static str]) -> Option<&'static str> {
    names
        .iter()
        .copied()
        .find(|p| std::path::Path::new(p).exists())
}

/// The installed `iptables-restore`, if any.
pub(crate) fn restore_binary() -> Option<&'static str> {
    find(&["/usr/sbin/iptables-restore", "/sbin/iptables-restore"])
}

fn save_binary() -> &'static str {
    find(&["/usr/sbin/iptables-save", "/sbin/iptables-save"]).unwrap_or("iptables-save")
}

/// Our chain names for `table` (at most 28 bytes, the iptables limit).
pub(crate) struct Chains {
    pub ports: String,
    pub post: String,
    pub fwd: String,
}

pub(crate) fn chains(table: &str) -> Chains {
    let base = if table.len() + "-PORTS".len() <= 28 {
        table.to_string()
    } else {
        // FNV-1a: deterministic, so a restarted daemon finds its chains again.
        let h = table.bytes().fold(0x811c9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x01000193)
        });
        format!("{}-{h:08x}", &table[..13])
    };
    let base = if base.starts_with('-') {
        format!("b{base}")
    } else {
        base
    };
    Chains {
        ports: format!("{base}-PORTS"),
        post: format!("{base}-POST"),
        fwd: format!("{base}-FWD"),
    }
}

/// The jumps from the built-in chains: (table, built-in chain, add command, rule as saved).
fn jumps(c: &Chains) -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("nat", "PREROUTING", c.ports.clone()),
        ("nat", "OUTPUT", c.ports.clone()),
        ("nat", "POSTROUTING", c.post.clone()),
        ("filter", "FORWARD", c.fwd.clone()),
    ]
}

fn jump_line(chain: &str, target: &str) -> String {
    format!("-A {chain} -j {target}")
}

/// `iptables-save` (all tables) as text.
async fn save() -> Result<String> {
    let out = tokio::process::Command::new(save_binary())
        .output()
        .await
        .map_err(|e| NetError::io("run iptables-save", e))?;
    if !out.status.success() {
        return Err(NetError::Firewall(format!(
            "iptables-save: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `iptables-restore --noflush` with `input` on stdin.
async fn restore(input: &str) -> Result<()> {
    let prog = restore_binary().ok_or_else(|| {
        NetError::Firewall("iptables-restore is not installed; install the iptables package".into())
    })?;
    let mut child = tokio::process::Command::new(prog)
        .arg("--noflush")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::io("run iptables-restore", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .await
            .map_err(|e| NetError::io("write to iptables-restore", e))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| NetError::io("wait for iptables-restore", e))?;
    if !out.status.success() {
        return Err(NetError::Firewall(format!(
            "iptables-restore: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// `*table` sections of `iptables-save` output: the lines under `*name` until `COMMIT`.
fn section<'a>(saved: &'a str, table: &str) -> Vec<&'a str> {
    let head = format!("*{table}");
    saved
        .lines()
        .skip_while(|l| l.trim() != head)
        .skip(1)
        .take_while(|l| l.trim() != "COMMIT")
        .collect()
}

fn port_lines(rs: &Ruleset, c: &Chains) -> Vec<String> {
    rs.ports
        .iter()
        .map(|(k, t)| {
            let dst = if k.host_ip.is_unspecified() {
                "-m addrtype --dst-type LOCAL".to_string()
            } else {
                format!("-d {}/32", k.host_ip)
            };
            format!(
                "-A {} {dst} -p {p} -m {p} --dport {} -j DNAT --to-destination {}:{}",
                c.ports,
                k.host_port,
                t.ip,
                t.port,
                p = k.proto.as_str()
            )
        })
        .collect()
}

/// The restore input for the whole rule set (`saved`: current `iptables-save`, to add
/// only the missing jumps).
pub(crate) fn full_input(rs: &Ruleset, saved: &str) -> String {
    let c = chains(&rs.table);
    let mut nat = vec![
        format!(":{} - [0:0]", c.ports),
        format!(":{} - [0:0]", c.post),
    ];
    let mut filter = vec![format!(":{} - [0:0]", c.fwd)];
    for (table, chain, target) in jumps(&c) {
        let line = jump_line(chain, &target);
        if section(saved, table).iter().any(|l| l.trim() == line) {
            continue;
        }
        if table == "nat" {
            nat.push(line);
        } else {
            // first in FORWARD, so our accepts/drops for our bridges come before others'
            filter.push(format!("-I {chain} 1 -j {target}"));
        }
    }
    nat.extend(port_lines(rs, &c));
    for n in &rs.networks {
        let (br, sub) = (&n.bridge, n.subnet);
        nat.push(format!(
            "-A {} -s 127.0.0.0/8 -o {br} -j MASQUERADE",
            c.post
        ));
        nat.push(format!(
            "-A {} -s {sub} -o {br} -m conntrack --ctstate DNAT -j MASQUERADE",
            c.post
        ));
        if !n.internal {
            nat.push(format!("-A {} -s {sub} ! -o {br} -j MASQUERADE", c.post));
        }
    }
    for n in &rs.networks {
        let (f, br) = (&c.fwd, &n.bridge);
        filter.push(format!("-A {f} -i {br} -o {br} -j ACCEPT"));
        filter.push(format!(
            "-A {f} -o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
        ));
        if !n.internal {
            filter.push(format!(
                "-A {f} -o {br} -m conntrack --ctstate DNAT -j ACCEPT"
            ));
        }
        filter.push(format!("-A {f} -o {br} -j DROP"));
    }
    for n in &rs.networks {
        let verdict = if n.internal { "DROP" } else { "ACCEPT" };
        filter.push(format!("-A {} -i {} -j {verdict}", c.fwd, n.bridge));
    }
    format!(
        "*nat\n{}\nCOMMIT\n*filter\n{}\nCOMMIT\n",
        nat.join("\n"),
        filter.join("\n")
    )
}

/// Replace all our chains' content with `rs`.
pub(crate) async fn apply_full(rs: &Ruleset) -> Result<()> {
    let saved = save().await?;
    restore(&full_input(rs, &saved)).await
}

/// Refill the port chain only.
pub(crate) async fn apply_ports(rs: &Ruleset) -> Result<()> {
    let c = chains(&rs.table);
    let mut lines = vec![format!(":{} - [0:0]", c.ports)];
    lines.extend(port_lines(rs, &c));
    restore(&format!("*nat\n{}\nCOMMIT\n", lines.join("\n"))).await
}

/// The restore input that removes our jumps and chains (only what `saved` shows exists);
/// `None` when nothing of ours is there.
pub(crate) fn remove_input(table: &str, saved: &str) -> Option<String> {
    let c = chains(table);
    let mut out = String::new();
    for (t, ours) in [
        ("nat", vec![c.ports.clone(), c.post.clone()]),
        ("filter", vec![c.fwd.clone()]),
    ] {
        let sec = section(saved, t);
        let mut lines = Vec::new();
        for (jt, chain, target) in jumps(&c) {
            let line = jump_line(chain, &target);
            if jt == t {
                for _ in sec.iter().filter(|l| l.trim() == line) {
                    lines.push(format!("-D {chain} -j {target}"));
                }
            }
        }
        for ch in &ours {
            if sec.iter().any(|l| l.starts_with(&format!(":{ch} "))) {
                lines.push(format!("-F {ch}"));
            }
        }
        for ch in &ours {
            if sec.iter().any(|l| l.starts_with(&format!(":{ch} "))) {
                lines.push(format!("-X {ch}"));
            }
        }
        if !lines.is_empty() {
            out.push_str(&format!("*{t}\n{}\nCOMMIT\n", lines.join("\n")));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Remove our jumps and chains.
pub(crate) async fn remove(table: &str) -> Result<()> {
    match remove_input(table, &save().await?) {
        Some(input) => restore(&input).await,
        None => Ok(()),
    }
}

/// Our lines of `iptables-save`, under their `*table` headers.
pub(crate) fn listing_of(table: &str, saved: &str) -> String {
    let c = chains(table);
    let ours = [&c.ports, &c.post, &c.fwd];
    let mut out = String::new();
    for t in ["nat", "filter"] {
        let lines: Vec<&str> = section(saved, t)
            .into_iter()
            .filter(|l| {
                l.split_whitespace()
                    .any(|w| ours.iter().any(|o| w == o.as_str() || w == format!(":{o}")))
            })
            .collect();
        if !lines.is_empty() {
            out.push_str(&format!("*{t}\n{}\n", lines.join("\n")));
        }
    }
    out
}

/// Our rules as `iptables-save` prints them.
pub(crate) async fn listing(table: &str) -> Result<String> {
    Ok(listing_of(table, &save().await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{FwNetwork, PortKey, PortTarget};
    use crate::model::Protocol;
    use std::net::Ipv4Addr;

    fn rs() -> Ruleset {
        Ruleset {
            table: "bt".into(),
            networks: vec![FwNetwork {
                bridge: "br1".into(),
                subnet: "10.1.0.0/24".parse().unwrap(),
                internal: false,
            }],
            ports: [
                (
                    PortKey {
                        proto: Protocol::Tcp,
                        host_ip: Ipv4Addr::LOCALHOST,
                        host_port: 8080,
                    },
                    PortTarget {
                        ip: Ipv4Addr::new(10, 1, 0, 2),
                        port: 80,
                    },
                ),
                (
                    PortKey {
                        proto: Protocol::Udp,
                        host_ip: Ipv4Addr::UNSPECIFIED,
                        host_port: 53,
                    },
                    PortTarget {
                        ip: Ipv4Addr::new(10, 1, 0, 2),
                        port: 5353,
                    },
                ),
            ]
            .into(),
        }
    }

    #[test]
    fn full_batch_declares_our_chains_and_adds_missing_jumps_only() {
        let saved = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j bt-PORTS\nCOMMIT\n*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n";
        let i = full_input(&rs(), saved);
        assert!(
            i.starts_with("*nat\n:bt-PORTS - [0:0]\n:bt-POST - [0:0]\n"),
            "{i}"
        );
        assert!(!i.contains("-A PREROUTING -j bt-PORTS"), "jump exists: {i}");
        assert!(i.contains("-A OUTPUT -j bt-PORTS\n"), "{i}");
        assert!(i.contains("-A POSTROUTING -j bt-POST\n"), "{i}");
        assert!(i.contains("-I FORWARD 1 -j bt-FWD\n"), "{i}");
        assert!(i.contains(
            "-A bt-PORTS -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80\n"
        ));
        assert!(i.contains(
            "-A bt-PORTS -m addrtype --dst-type LOCAL -p udp -m udp --dport 53 -j DNAT --to-destination 10.1.0.2:5353\n"
        ));
        assert!(i.contains("-A bt-POST -s 127.0.0.0/8 -o br1 -j MASQUERADE\n"));
        assert!(i.contains("-A bt-FWD -o br1 -j DROP\n"));
        assert!(i.ends_with("-A bt-FWD -i br1 -j ACCEPT\nCOMMIT\n"), "{i}");
        // nothing but our chains is declared (declaring flushes)
        assert_eq!(i.lines().filter(|l| l.starts_with(':')).count(), 3, "{i}");
    }

    #[test]
    fn removal_deletes_only_what_exists() {
        let saved = "*nat\n:PREROUTING ACCEPT [0:0]\n:bt-PORTS - [0:0]\n-A PREROUTING -j bt-PORTS\n-A PREROUTING -j other\nCOMMIT\n*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n";
        assert_eq!(
            remove_input("bt", saved).unwrap(),
            "*nat\n-D PREROUTING -j bt-PORTS\n-F bt-PORTS\n-X bt-PORTS\nCOMMIT\n"
        );
        assert!(remove_input("bt", "*nat\nCOMMIT\n").is_none());
        assert_eq!(
            listing_of("bt", saved),
            "*nat\n:bt-PORTS - [0:0]\n-A PREROUTING -j bt-PORTS\n"
        );
    }

    #[test]
    fn chain_names_fit_and_stay_unique() {
        let long = "berth_test_0123456789abcdef0123";
        let c = chains(long);
        assert!(c.ports.len() <= 28, "{}", c.ports);
        assert_ne!(c.ports, chains("berth_test_0123456789abcdef0124").ports);
        assert_eq!(chains("berth").fwd, "berth-FWD");
    }
}
