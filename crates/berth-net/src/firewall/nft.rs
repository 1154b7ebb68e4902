//! The nftables backend: berth's own table, rebuilt in ONE `nft -j -f -` batch when
//! networks change (`add table; delete table; add table; maps; chains; rules`), so the
//! kernel switches from the old rules to the new ones atomically and a half-applied state
//! never exists. We never touch another table (another engine may share the kernel) and
//! never flush the ruleset. Published ports change over netlink (`nfnl.rs`).
//!
//! What the table holds (family `ip`, IPv4 only):
//! - maps `published_addr` / `published_port` (key `inet_proto . ipv4_addr . inet_service`,
//!   values the container address / port, for `-p 127.0.0.1:8080:80`) and
//!   `published_any_addr` / `published_any_port` (key `inet_proto . inet_service`, for
//!   `-p 8080:80`): one element per published port in each map of its pair. One map with
//!   the value `ipv4_addr . inet_service` would be neater, but nft 1.0.6 crashes parsing a
//!   concatenated map value in JSON.
//! - `prerouting` / `output` (nat, priority -100 — nft 1.0.6 rejects the name `dstnat` for
//!   `hook output`) jump to the regular chain `ports`, which holds two fixed rules:
//!   `dnat ip to K map @published_addr : K map @published_port` with
//!   `K = meta l4proto . ip daddr . th dport`, and `fib daddr type local dnat ip to
//!   K' map @published_any_addr : K' map @published_any_port` with
//!   `K' = meta l4proto . th dport`. A lookup miss ends the rule (no DNAT). `th dport`
//!   needs no protocol match: the key starts with the protocol, and only tcp/udp keys exist.
//! - `postrouting` (nat, priority 100), per bridge network:
//!   - `ip saddr 127.0.0.0/8 oifname BR masquerade`: a DNATed connection from 127.0.0.1 would
//!     otherwise leave with a loopback source, which the container cannot answer. Together
//!     with `route_localnet=1` on the bridge (set when the bridge is created; without it the
//!     kernel drops the packet as a martian) this makes 127.0.0.1 publishing work without a
//!     userland proxy, keeping client addresses for all non-loopback clients.
//!   - `oifname BR ip saddr SUBNET ct status dnat masquerade`: hairpin — a container reaching
//!     its own (or a neighbour's) published port would get the reply straight from the
//!     peer, bypassing the reverse NAT. (Also needs `hairpin on` on the bridge port.)
//!   - not internal: `ip saddr SUBNET oifname != BR masquerade` (outbound NAT).
//! - `forward` (filter, priority 0, policy accept): br_netfilter is on, so even traffic
//!   between two ports of one bridge passes the FORWARD hook. Per network:
//!   same bridge → accept; to the bridge: established/related accept, DNATed (published)
//!   accept, everything else drop (this isolates user networks from each other); from the
//!   bridge: internal → drop, else accept. Another ruleset's FORWARD policy drop can still
//!   drop our traffic: nft base chains cannot override each other and we do not edit theirs.

use std::borrow::Cow;
use std::collections::HashSet;

use ipnet::Ipv4Net;
use nftables::batch::Batch;
use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Map, Meta, MetaKey, NamedExpression, Payload,
    PayloadField, Prefix, CT,
};
use nftables::schema::{
    Chain, Map as NfMap, NfListObject, Nftables, Rule, SetType, SetTypeValue, Table,
};
use nftables::stmt::{JumpTarget, Match, NATFamily, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::{PortKey, PortTarget, Ruleset, MAPS_ADDR, MAPS_ANY};
use crate::error::{NetError, Result};

/// Regular chain holding the two DNAT rules that look up the port maps (jumped to from
/// prerouting/output).
const PORTS_CHAIN: &str = "ports";

fn s(v: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(v.into()))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn payload(proto: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Borrowed(proto),
            field: Cow::Borrowed(field),
        },
    )))
}

fn prefix(net: Ipv4Net) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(s(net.network().to_string())),
        len: u32::from(net.prefix_len()),
    }))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: Cow::Borrowed(key),
        family: None,
        dir: None,
    }))
}

fn m(left: Expression<'static>, op: Operator, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn iif(br: &str) -> Statement<'static> {
    m(meta(MetaKey::Iifname), Operator::EQ, s(br))
}

fn oif(br: &str) -> Statement<'static> {
    m(meta(MetaKey::Oifname), Operator::EQ, s(br))
}

fn local_daddr() -> Statement<'static> {
    let mut flags = HashSet::new();
    flags.insert(FibFlag::Daddr);
    m(
        Expression::Named(NamedExpression::Fib(Fib {
            result: FibResult::Type,
            flags,
        })),
        Operator::EQ,
        s("local"),
    )
}

/// The key of a port in its maps: `proto . ip . port`, or `proto . port` for any address.
fn map_key(k: &PortKey) -> Expression<'static> {
    let mut key = vec![s(k.proto.as_str())];
    if !k.host_ip.is_unspecified() {
        key.push(s(k.host_ip.to_string()));
    }
    key.push(Expression::Number(u32::from(k.host_port)));
    Expression::Named(NamedExpression::Concat(key))
}

impl Ruleset {
    fn table(&self) -> Table<'static> {
        Table {
            family: NfFamily::IP,
            name: Cow::Owned(self.table.clone()),
            handle: None,
        }
    }

    fn chain(
        &self,
        name: &'static str,
        ty: NfChainType,
        hook: NfHook,
        prio: i32,
    ) -> NfListObject<'static> {
        NfListObject::Chain(Chain {
            family: NfFamily::IP,
            table: Cow::Owned(self.table.clone()),
            name: Cow::Borrowed(name),
            _type: Some(ty),
            hook: Some(hook),
            prio: Some(prio),
            policy: Some(NfChainPolicy::Accept),
            ..Chain::default()
        })
    }

    fn rule(&self, chain: &'static str, expr: Vec<Statement<'static>>) -> NfListObject<'static> {
        NfListObject::Rule(Rule {
            family: NfFamily::IP,
            table: Cow::Owned(self.table.clone()),
            chain: Cow::Borrowed(chain),
            expr: Cow::Owned(expr),
            ..Rule::default()
        })
    }

    /// The four port maps, with the current ports as their initial elements. (nft 1.0.6
    /// cannot parse a concatenated map *value* such as `ipv4_addr . inet_service` in JSON
    /// — it crashes — so the DNAT address and port come from two maps with the same key.)
    fn maps(&self, b: &mut Batch<'static>) {
        use SetType::{InetProto, InetService, Ipv4Addr};
        for ((addr_map, port_map), any) in [(MAPS_ADDR, false), (MAPS_ANY, true)] {
            let key = if any {
                vec![InetProto, InetService]
            } else {
                vec![InetProto, Ipv4Addr, InetService]
            };
            let ports: Vec<(&PortKey, &PortTarget)> = self
                .ports
                .iter()
                .filter(|(k, _)| k.host_ip.is_unspecified() == any)
                .collect();
            for (name, value) in [(addr_map, Ipv4Addr), (port_map, InetService)] {
                let elem: Vec<Expression<'static>> = ports
                    .iter()
                    .map(|(k, t)| {
                        let v = if value == Ipv4Addr {
                            s(t.ip.to_string())
                        } else {
                            Expression::Number(u32::from(t.port))
                        };
                        Expression::List(vec![map_key(k), v])
                    })
                    .collect();
                b.add(NfListObject::Map(Box::new(NfMap {
                    family: NfFamily::IP,
                    table: Cow::Owned(self.table.clone()),
                    name: Cow::Borrowed(name),
                    set_type: SetTypeValue::Concatenated(Cow::Owned(key.clone())),
                    map: SetTypeValue::Single(value),
                    elem: (!elem.is_empty()).then_some(Cow::Owned(elem)),
                    ..NfMap::default()
                })));
            }
        }
    }

    /// `dnat ip to KEY map @ADDR_MAP : KEY map @PORT_MAP`
    fn dnat_map(key: Vec<Expression<'static>>, (addr, port): (&str, &str)) -> Statement<'static> {
        let lookup = |map: &str| {
            Expression::Named(NamedExpression::Map(Box::new(Map {
                key: Expression::Named(NamedExpression::Concat(key.clone())),
                data: s(format!("@{map}")),
            })))
        };
        Statement::DNAT(Some(NAT {
            addr: Some(lookup(addr)),
            family: Some(NATFamily::IP),
            port: Some(lookup(port)),
            flags: None,
        }))
    }

    fn regular_chain(&self, name: &'static str) -> Chain<'static> {
        Chain {
            family: NfFamily::IP,
            table: Cow::Owned(self.table.clone()),
            name: Cow::Borrowed(name),
            ..Chain::default()
        }
    }

    /// The batch that atomically replaces our table with this content.
    pub fn to_nftables(&self) -> Nftables<'static> {
        let mut b = Batch::new();
        // `add` is a no-op when the table exists; then delete + re-create it from scratch.
        b.add(NfListObject::Table(self.table()));
        b.delete(NfListObject::Table(self.table()));
        b.add(NfListObject::Table(self.table()));
        self.maps(&mut b);
        b.add(self.chain("prerouting", NfChainType::NAT, NfHook::Prerouting, -100));
        b.add(self.chain("output", NfChainType::NAT, NfHook::Output, -100));
        b.add(self.chain("postrouting", NfChainType::NAT, NfHook::Postrouting, 100));
        b.add(self.chain("forward", NfChainType::Filter, NfHook::Forward, 0));
        b.add(NfListObject::Chain(self.regular_chain(PORTS_CHAIN)));
        let jump = || {
            vec![Statement::Jump(JumpTarget {
                target: Cow::Borrowed(PORTS_CHAIN),
            })]
        };
        b.add(self.rule("prerouting", jump()));
        b.add(self.rule("output", jump()));
        let l4 = || meta(MetaKey::L4proto);
        b.add(self.rule(
            PORTS_CHAIN,
            vec![Self::dnat_map(
                vec![l4(), payload("ip", "daddr"), payload("th", "dport")],
                MAPS_ADDR,
            )],
        ));
        b.add(self.rule(
            PORTS_CHAIN,
            vec![
                local_daddr(),
                Self::dnat_map(vec![l4(), payload("th", "dport")], MAPS_ANY),
            ],
        ));

        for n in &self.networks {
            let loopback: Ipv4Net = "127.0.0.0/8".parse().expect("valid prefix");
            b.add(self.rule(
                "postrouting",
                vec![
                    m(payload("ip", "saddr"), Operator::EQ, prefix(loopback)),
                    oif(&n.bridge),
                    Statement::Masquerade(None),
                ],
            ));
            b.add(self.rule(
                "postrouting",
                vec![
                    oif(&n.bridge),
                    m(payload("ip", "saddr"), Operator::EQ, prefix(n.subnet)),
                    m(ct("status"), Operator::IN, s("dnat")),
                    Statement::Masquerade(None),
                ],
            ));
            if !n.internal {
                b.add(self.rule(
                    "postrouting",
                    vec![
                        m(payload("ip", "saddr"), Operator::EQ, prefix(n.subnet)),
                        m(meta(MetaKey::Oifname), Operator::NEQ, s(n.bridge.clone())),
                        Statement::Masquerade(None),
                    ],
                ));
            }
        }

        // Inbound rules of every bridge first, so "A -> B" meets B's drop before A's accept.
        for n in &self.networks {
            b.add(self.rule(
                "forward",
                vec![iif(&n.bridge), oif(&n.bridge), Statement::Accept(None)],
            ));
            b.add(self.rule(
                "forward",
                vec![
                    oif(&n.bridge),
                    m(
                        ct("state"),
                        Operator::IN,
                        Expression::List(vec![s("established"), s("related")]),
                    ),
                    Statement::Accept(None),
                ],
            ));
            if !n.internal {
                b.add(self.rule(
                    "forward",
                    vec![
                        oif(&n.bridge),
                        m(ct("status"), Operator::IN, s("dnat")),
                        Statement::Accept(None),
                    ],
                ));
            }
            b.add(self.rule("forward", vec![oif(&n.bridge), Statement::Drop(None)]));
        }
        for n in &self.networks {
            let verdict = if n.internal {
                Statement::Drop(None)
            } else {
                Statement::Accept(None)
            };
            b.add(self.rule("forward", vec![iif(&n.bridge), verdict]));
        }
        b.to_nftables()
    }
}

/// The batch that removes our table (and nothing else); a no-op when it does not exist.
pub fn delete_table(table: &str) -> Nftables<'static> {
    let t = Table {
        family: NfFamily::IP,
        name: Cow::Owned(table.to_string()),
        handle: None,
    };
    let mut b = Batch::new();
    b.add(NfListObject::Table(t.clone()));
    b.delete(NfListObject::Table(t));
    b.to_nftables()
}

/// Run `nft -j -f -` with the batch.
pub async fn apply(batch: &Nftables<'_>) -> Result<()> {
    let payload = serde_json::to_string(batch).map_err(|e| NetError::Firewall(e.to_string()))?;
    nftables::helper::apply_ruleset_raw_async(
        &payload,
        Some(nft_program()),
        std::iter::empty::<&str>(),
    )
    .await
    .map(|_| ())
    .map_err(|e| match e {
        nftables::helper::NftablesError::NftFailed { stderr, .. } => {
            NetError::Firewall(stderr.trim().to_string())
        }
        other => NetError::Firewall(other.to_string()),
    })
}

/// `nft` from the usual sbin locations (root's PATH may lack /usr/sbin under some runners).
pub fn nft_program() -> &'static str {
    nft_binary().unwrap_or("nft")
}

/// The installed `nft`, if any.
pub(crate) fn nft_binary() -> Option<&'static str> {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// `nft list table ip <table>` as text (for `berth explain` and debugging).
pub async fn list_table_text(table: &str) -> Result<String> {
    let out = tokio::process::Command::new(nft_program())
        .args(["list", "table", "ip", table])
        .output()
        .await
        .map_err(|e| NetError::io("run nft list table", e))?;
    if !out.status.success() {
        return Err(NetError::Firewall(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Names of the `ip`-family tables currently in the kernel (for checks and tests).
pub async fn list_ip_tables() -> Result<Vec<String>> {
    let out = tokio::process::Command::new(nft_program())
        .args(["-j", "list", "tables"])
        .output()
        .await
        .map_err(|e| NetError::io("run nft -j list tables", e))?;
    if !out.status.success() {
        return Err(NetError::Firewall(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| NetError::Firewall(format!("nft output: {e}")))?;
    Ok(v["nftables"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o.get("table"))
                .filter(|t| t["family"] == "ip")
                .filter_map(|t| t["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::firewall::FwNetwork;
    use crate::model::Protocol;
    use std::net::Ipv4Addr;

    #[test]
    fn ruleset_json_has_port_maps_masquerade_and_isolation() {
        let key = |ip: [u8; 4], port| PortKey {
            proto: Protocol::Tcp,
            host_ip: Ipv4Addr::from(ip),
            host_port: port,
        };
        let to = PortTarget {
            ip: "10.1.0.2".parse().unwrap(),
            port: 80,
        };
        let r = Ruleset {
            table: "bt".into(),
            networks: vec![
                FwNetwork {
                    bridge: "br1".into(),
                    subnet: "10.1.0.0/24".parse().unwrap(),
                    internal: false,
                },
                FwNetwork {
                    bridge: "br2".into(),
                    subnet: "10.2.0.0/24".parse().unwrap(),
                    internal: true,
                },
            ],
            ports: [
                (key([0, 0, 0, 0], 8080), to),
                (key([127, 0, 0, 1], 8081), to),
            ]
            .into(),
        };
        let j = serde_json::to_string(&r.to_nftables()).unwrap();
        // the rules that look up the maps, as `nft -j list table` prints them
        assert!(
            j.contains(r#"{"dnat":{"addr":{"map":{"key":{"concat":[{"meta":{"key":"l4proto"}},{"payload":{"protocol":"ip","field":"daddr"}},{"payload":{"protocol":"th","field":"dport"}}]},"data":"@published_addr"}},"family":"ip","port":{"map":{"key":{"concat":[{"meta":{"key":"l4proto"}},{"payload":{"protocol":"ip","field":"daddr"}},{"payload":{"protocol":"th","field":"dport"}}]},"data":"@published_port"}}}}"#),
            "{j}"
        );
        assert!(j.contains(r#""data":"@published_any_addr""#), "{j}");
        assert!(j.contains(r#""data":"@published_any_port""#), "{j}");
        // the maps hold the ports
        assert!(
            j.contains(r#""elem":[[{"concat":["tcp",8080]},"10.1.0.2"]]"#),
            "{j}"
        );
        assert!(
            j.contains(r#""elem":[[{"concat":["tcp","127.0.0.1",8081]},80]]"#),
            "{j}"
        );
        assert!(
            j.contains(r#""fib":{"result":"type","flags":["daddr"]}"#),
            "{j}"
        );
        assert!(j.contains(r#""prio":-100"#));
        assert!(j.contains(r#""jump":{"target":"ports"}"#), "{j}");
        // internal network: no outbound masquerade rule for 10.2.0.0/24 with oifname !=
        assert_eq!(j.matches(r#""op":"!=""#).count(), 1, "{j}");
        // the batch starts by deleting our table only
        assert!(
            j.starts_with(
                r#"{"nftables":[{"add":{"table":{"family":"ip","name":"bt"}}},{"delete":{"table""#
            ),
            "{j}"
        );
    }
}
