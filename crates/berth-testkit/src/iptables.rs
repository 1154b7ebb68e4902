//! Cleaning up after a test of berth's iptables firewall backend (`BERTH_FIREWALL=iptables`).
//!
//! berth-net keeps an instance's rules in three chains named after its nft table —
//! nat `<table>-PORTS` (jumped to from `PREROUTING` and `OUTPUT`), nat `<table>-POST` (from
//! `POSTROUTING`) and filter `<table>-FWD` (from `FORWARD`) — and leaves them in place at exit
//! for a restart to restore, as it leaves its nft table. A test removes them itself: the
//! jumps to them, then the chains, and nothing else (the kernel may be shared).

use std::io::Write as _;
use std::process::{Command, Stdio};

/// `iptables-save` output (empty when iptables is not installed).
pub fn save() -> String {
    Command::new("iptables-save")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The chains of the instance whose nft table is `table` (short table names: berth-net
/// shortens names that would pass the 28-byte limit of iptables).
pub fn chains_of(table: &str) -> [String; 3] {
    ["PORTS", "POST", "FWD"].map(|s| format!("{table}-{s}"))
}

/// The `iptables-restore --noflush` input that removes `table`'s chains and every rule of
/// another chain jumping to them, from `saved` (`iptables-save` output); empty if none.
pub fn removal_script(saved: &str, table: &str) -> String {
    let ours = chains_of(table);
    let mut input = String::new();
    for t in ["nat", "filter"] {
        let head = format!("*{t}");
        let sec: Vec<&str> = saved
            .lines()
            .skip_while(|l| *l != head)
            .skip(1)
            .take_while(|l| *l != "COMMIT")
            .collect();
        let mut lines: Vec<String> = sec
            .iter()
            .filter(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                let jumps_to_ours = words
                    .windows(2)
                    .any(|w| w[0] == "-j" && ours.iter().any(|c| c == w[1]));
                words.first() == Some(&"-A")
                    && words.get(1).is_some_and(|c| !ours.iter().any(|o| o == c))
                    && jumps_to_ours
            })
            .map(|l| l.replacen("-A ", "-D ", 1))
            .collect();
        let chains: Vec<&String> = ours
            .iter()
            .filter(|c| sec.iter().any(|l| l.starts_with(&format!(":{c} "))))
            .collect();
        lines.extend(chains.iter().map(|c| format!("-F {c}")));
        lines.extend(chains.iter().map(|c| format!("-X {c}")));
        if !lines.is_empty() {
            input.push_str(&format!("*{t}\n{}\nCOMMIT\n", lines.join("\n")));
        }
    }
    input
}

/// Removes `table`'s chains and the jumps to them (best effort: a cleanup, also after a
/// failed test; nothing happens without iptables).
pub fn remove_chains(table: &str) {
    let input = removal_script(&save(), table);
    if input.is_empty() {
        return;
    }
    if let Ok(mut child) = Command::new("iptables-restore")
        .arg("--noflush")
        .stdin(Stdio::piped())
        .spawn()
    {
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.as_bytes());
        }
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_chains_and_the_jumps_to_them_are_removed() {
        let saved = "\
*nat
:PREROUTING ACCEPT [0:0]
:bt-PORTS - [0:0]
:bt-POST - [0:0]
:bt2-PORTS - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j bt-PORTS
-A OUTPUT -j bt-PORTS
-A PREROUTING -j bt2-PORTS
-A POSTROUTING -j bt-POST
-A bt-PORTS -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80
-A bt-POST -s 127.0.0.0/8 -o br1 -j MASQUERADE
COMMIT
*filter
:FORWARD ACCEPT [0:0]
:bt-FWD - [0:0]
-A FORWARD -j bt-FWD
-A FORWARD -j bt-FWDX
-A bt-FWD -o br1 -j DROP
COMMIT
";
        assert_eq!(
            removal_script(saved, "bt"),
            "\
*nat
-D PREROUTING -m addrtype --dst-type LOCAL -j bt-PORTS
-D OUTPUT -j bt-PORTS
-D POSTROUTING -j bt-POST
-F bt-PORTS
-F bt-POST
-X bt-PORTS
-X bt-POST
COMMIT
*filter
-D FORWARD -j bt-FWD
-F bt-FWD
-X bt-FWD
COMMIT
"
        );
        assert_eq!(removal_script(saved, "nosuch"), "");
    }

    /// Root tier: real chains with real jumps (an empty chain jumped to returns at once, so
    /// the rules change no traffic while they exist) are all gone after `remove_chains`.
    #[test]
    fn remove_chains_on_the_real_tables() {
        if !crate::require_root("remove_chains_on_the_real_tables")
            || Command::new("iptables").arg("-V").output().is_err()
        {
            return;
        }
        let table = crate::unique::name("bti");
        let [ports, post, fwd] = chains_of(&table);
        // Removed also when an assertion fails.
        struct Guard(String);
        impl Drop for Guard {
            fn drop(&mut self) {
                remove_chains(&self.0);
            }
        }
        let _guard = Guard(table.clone());
        let ipt = |args: &[&str]| {
            let st = Command::new("iptables").args(args).status().unwrap();
            assert!(st.success(), "iptables {args:?}");
        };
        ipt(&["-t", "nat", "-N", &ports]);
        ipt(&["-t", "nat", "-N", &post]);
        ipt(&["-t", "filter", "-N", &fwd]);
        ipt(&[
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-d",
            "127.0.0.1/32",
            "-j",
            &ports,
        ]);
        ipt(&["-t", "nat", "-A", "POSTROUTING", "-j", &post]);
        ipt(&["-t", "filter", "-I", "FORWARD", "1", "-j", &fwd]);
        ipt(&[
            "-t", "nat", "-A", &ports, "-p", "tcp", "--dport", "1", "-j", "RETURN",
        ]);
        let mentions = || {
            save()
                .lines()
                .filter(|l| l.contains(&format!("{table}-")))
                .count()
        };
        assert_eq!(mentions(), 7, "{}", save());
        remove_chains(&table);
        assert_eq!(mentions(), 0, "{}", save());
    }
}
