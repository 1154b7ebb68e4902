//! Published ports as nf_tables map elements, changed over netlink (no `nft` exec).
//!
//! Publishing a port used to run `nft -j -f -` (~5 ms: fork/exec, libnftables parsing the
//! JSON, fetching the ruleset cache). The static part of our table now looks up two maps
//! (see `nft.rs`), so a container's ports are only *map elements*, and adding or removing
//! them is one NFNL batch on a netlink socket:
//!
//! ```text
//! NFNL_MSG_BATCH_BEGIN (res_id = NFNL_SUBSYS_NFTABLES)
//!   NFT_MSG_DELSETELEM  table, map "published_addr",  [key]...          (stale keys)
//!   NFT_MSG_DELSETELEM  table, map "published_port",  [key]...
//!   NFT_MSG_NEWSETELEM  table, map "published_addr",  [key : addr]...   (new keys)
//!   NFT_MSG_NEWSETELEM  table, map "published_port",  [key : port]...
//!   ... the same for "published_any_addr" / "published_any_port"
//! NFNL_MSG_BATCH_END
//! ```
//!
//! The kernel applies the batch as one transaction (all or nothing) and answers every
//! message flagged `NLM_F_ACK` with an `NLMSG_ERROR` (code 0 = ok) before `send` returns.
//! Messages come from `netlink-packet-netfilter` (rust-netlink, the org of rtnetlink), the
//! socket from `netlink-sys`; `rustables` talks the same protocol but is GPL-3.0, and
//! `nftnl`/`mnl` need the C libraries libnftnl/libmnl.
//!
//! Element encoding (nf_tables registers are 4 bytes; every field of a concatenation is
//! padded to 4): key `meta l4proto . ip daddr . th dport` = `[proto,0,0,0, a,b,c,d, p_hi,
//! p_lo,0,0]`, key `meta l4proto . th dport` = `[proto,0,0,0, p_hi,p_lo,0,0]`; values
//! `ipv4_addr` = `[a,b,c,d]`, `inet_service` = `[p_hi,p_lo]` (network byte order).

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::time::Duration;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST};
use netlink_packet_netfilter::nftables::{
    DataAttribute, GenMessage, ListAttribute, NfTablesMessage, SetElementAttribute, SetElementList,
    SetElementMessage,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use super::{PortKey, PortTarget, MAPS_ADDR, MAPS_ANY};
use crate::error::{NetError, Result};

const NFNL_SUBSYS_NFTABLES: u16 = 10;

/// The maps (address, port) a key lives in: a specific host address or "any local address".
fn maps_of(k: &PortKey) -> (&'static str, &'static str) {
    if k.host_ip.is_unspecified() {
        MAPS_ANY
    } else {
        MAPS_ADDR
    }
}

/// The key bytes of `k` in its map.
pub(crate) fn key_bytes(k: &PortKey) -> Vec<u8> {
    let mut v = vec![k.proto.ip_proto(), 0, 0, 0];
    if !k.host_ip.is_unspecified() {
        v.extend_from_slice(&k.host_ip.octets());
    }
    v.extend_from_slice(&k.host_port.to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v
}

fn nft_msg(inner: NfTablesMessage, seq: u32) -> NetlinkMessage<NetfilterMessage> {
    let mut m = NetlinkMessage::from(NetfilterMessage::new(
        NetfilterHeader::new(NetfilterProtoFamily::IPv4, 0, 0),
        inner,
    ));
    m.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    m.header.sequence_number = seq;
    m
}

fn control(c: ControlMessage, seq: u32) -> NetlinkMessage<NetfilterMessage> {
    let mut m = NetlinkMessage::from(NetfilterMessage::new(
        NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, NFNL_SUBSYS_NFTABLES),
        c,
    ));
    m.header.flags = NLM_F_REQUEST;
    m.header.sequence_number = seq;
    m
}

fn elements(table: &str, map: &str, elems: Vec<Vec<SetElementAttribute>>) -> SetElementMessage {
    SetElementMessage {
        attributes: vec![
            SetElementList::Table(table.to_string()),
            SetElementList::Set(map.to_string()),
            SetElementList::Elements(elems.into_iter().map(ListAttribute::Element).collect()),
        ],
    }
}

/// The messages (without batch begin/end) that turn `installed` into `desired`: delete
/// keys that are gone or point elsewhere now, then add keys that are new or changed.
/// Empty when nothing changes.
pub(crate) fn diff_messages(
    table: &str,
    installed: &BTreeMap<PortKey, PortTarget>,
    desired: &BTreeMap<PortKey, PortTarget>,
) -> Vec<NfTablesMessage> {
    let mut out = Vec::new();
    let key = |k: &PortKey| SetElementAttribute::Key(DataAttribute::Value(key_bytes(k)));
    for maps in [MAPS_ADDR, MAPS_ANY] {
        let gone: Vec<&PortKey> = installed
            .iter()
            .filter(|(k, t)| maps_of(k) == maps && desired.get(k) != Some(t))
            .map(|(k, _)| k)
            .collect();
        if !gone.is_empty() {
            for map in [maps.0, maps.1] {
                let elems = gone.iter().map(|k| vec![key(k)]).collect();
                out.push(NfTablesMessage::DeleteSetElement(elements(
                    table, map, elems,
                )));
            }
        }
    }
    for maps in [MAPS_ADDR, MAPS_ANY] {
        let new: Vec<(&PortKey, &PortTarget)> = desired
            .iter()
            .filter(|(k, t)| maps_of(k) == maps && installed.get(k) != Some(t))
            .collect();
        if new.is_empty() {
            continue;
        }
        let value = |b: Vec<u8>| SetElementAttribute::Data(DataAttribute::Value(b));
        let addrs = new
            .iter()
            .map(|(k, t)| vec![key(k), value(t.ip.octets().to_vec())])
            .collect();
        out.push(NfTablesMessage::NewSetElement(elements(
            table, maps.0, addrs,
        )));
        let ports = new
            .iter()
            .map(|(k, t)| vec![key(k), value(t.port.to_be_bytes().to_vec())])
            .collect();
        out.push(NfTablesMessage::NewSetElement(elements(
            table, maps.1, ports,
        )));
    }
    out
}

fn open_socket() -> Result<Socket> {
    let mut s = Socket::new(NETLINK_NETFILTER)
        .map_err(|e| NetError::io("open a netfilter netlink socket", e))?;
    s.bind_auto()
        .map_err(|e| NetError::io("bind the netfilter netlink socket", e))?;
    // The kernel answers before `send` returns; the timeout only guards against a reply
    // that never comes (it must not hang the daemon).
    nix::sys::socket::setsockopt(
        &s.as_fd(),
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(2, 0),
    )
    .map_err(|e| NetError::io("set the netlink receive timeout", e.into()))?;
    Ok(s)
}

fn emit(msgs: &mut [NetlinkMessage<NetfilterMessage>]) -> Vec<u8> {
    let mut buf = Vec::new();
    for m in msgs.iter_mut() {
        m.finalize();
        let start = buf.len();
        buf.resize(start + m.buffer_len(), 0);
        m.serialize(&mut buf[start..]);
    }
    buf
}

fn libc_dontwait() -> i32 {
    nix::sys::socket::MsgFlags::MSG_DONTWAIT.bits()
}

/// Read replies until `want` acks arrived; the first error wins.
fn read_acks(s: &Socket, want: usize) -> Result<Vec<NetlinkMessage<NetfilterMessage>>> {
    let mut got = 0;
    let mut first_err = None;
    let mut replies = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while got < want {
        if std::time::Instant::now() > deadline {
            return Err(NetError::Firewall(
                "no answer from nf_tables over netlink".into(),
            ));
        }
        // After an error, take only what is already queued: a batch that failed as a
        // whole (e.g. EPERM at its start) is answered once, not once per message.
        let flags = if first_err.is_some() {
            libc_dontwait()
        } else {
            0
        };
        let n = match s.recv(&mut &mut buf[..], flags) {
            Ok(n) => n,
            Err(_) if first_err.is_some() => break,
            Err(e) => return Err(NetError::io("read the nf_tables netlink reply", e)),
        };
        let mut off = 0;
        while off < n {
            let m = NetlinkMessage::<NetfilterMessage>::deserialize(&buf[off..n])
                .map_err(|e| NetError::Firewall(format!("bad nf_tables netlink reply: {e}")))?;
            let len = (m.header.length as usize).max(16);
            off += (len + 3) & !3;
            match m.payload {
                NetlinkPayload::Error(ref e) => {
                    got += 1;
                    if let Some(code) = e.code {
                        first_err.get_or_insert(std::io::Error::from_raw_os_error(-code.get()));
                    }
                }
                NetlinkPayload::Done(_) => got += 1,
                _ => replies.push(m),
            }
        }
    }
    match first_err {
        Some(e) => Err(NetError::Firewall(format!(
            "nf_tables refused the port map update: {e}"
        ))),
        None => Ok(replies),
    }
}

/// Send `msgs` as one NFNL batch (one transaction) and wait for every ack.
pub(crate) fn send_batch(msgs: Vec<NfTablesMessage>) -> Result<()> {
    if msgs.is_empty() {
        return Ok(());
    }
    let n = msgs.len();
    let mut all = vec![control(ControlMessage::BatchBegin, 1)];
    for (i, m) in msgs.into_iter().enumerate() {
        let mut m = nft_msg(m, i as u32 + 2);
        if matches!(
            m.payload,
            NetlinkPayload::InnerMessage(NetfilterMessage {
                inner: NetfilterMessageInner::NfTables(NfTablesMessage::NewSetElement(_)),
                ..
            })
        ) {
            m.header.flags |= NLM_F_CREATE;
        }
        all.push(m);
    }
    all.push(control(ControlMessage::BatchEnd, n as u32 + 2));
    let s = open_socket()?;
    s.send(&emit(&mut all), 0)
        .map_err(|e| NetError::io("send the nf_tables netlink batch", e))?;
    read_acks(&s, n).map(|_| ())
}

/// Is nf_tables usable from here (the kernel has it, we may use it)? Asks for the ruleset
/// generation id, the cheapest nf_tables request.
pub(crate) fn nf_tables_available() -> bool {
    let probe = || -> Result<bool> {
        let s = open_socket()?;
        let mut m = [nft_msg(
            NfTablesMessage::GetGen(GenMessage { attributes: vec![] }),
            1,
        )];
        s.send(&emit(&mut m), 0)
            .map_err(|e| NetError::io("send", e))?;
        let replies = read_acks(&s, 1)?;
        Ok(!replies.is_empty())
    };
    probe().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;
    use std::net::Ipv4Addr;

    fn key(ip: [u8; 4], port: u16, proto: Protocol) -> PortKey {
        PortKey {
            proto,
            host_ip: Ipv4Addr::from(ip),
            host_port: port,
        }
    }

    #[test]
    fn element_bytes_match_what_nft_writes() {
        // `nft --debug=netlink add element ... { tcp . 127.0.0.1 . 18080 : 10.1.0.2 . 80 }`
        // printed `00000006 0100007f 0000a046 : 0200010a 00005000` (u32 words, LE host).
        let k = key([127, 0, 0, 1], 18080, Protocol::Tcp);
        assert_eq!(
            key_bytes(&k),
            [6, 0, 0, 0, 127, 0, 0, 1, 0x46, 0xa0, 0, 0].to_vec()
        );
        // `{ udp . 18081 : ... }` -> `00000011 0000a146`
        let any = key([0, 0, 0, 0], 18081, Protocol::Udp);
        assert_eq!(key_bytes(&any), [17, 0, 0, 0, 0x46, 0xa1, 0, 0].to_vec());
    }

    #[test]
    fn diff_deletes_stale_and_changed_keys_then_adds() {
        let t = |p| PortTarget {
            ip: Ipv4Addr::new(10, 1, 0, 2),
            port: p,
        };
        let a = key([127, 0, 0, 1], 1000, Protocol::Tcp);
        let b = key([0, 0, 0, 0], 1001, Protocol::Tcp);
        let c = key([0, 0, 0, 0], 1002, Protocol::Udp);
        let installed = BTreeMap::from([(a, t(80)), (b, t(81))]);
        let desired = BTreeMap::from([(b, t(82)), (c, t(83))]);
        let msgs = diff_messages("tbl", &installed, &desired);
        let kinds: Vec<&str> = msgs
            .iter()
            .map(|m| match m {
                NfTablesMessage::DeleteSetElement(_) => "del",
                NfTablesMessage::NewSetElement(_) => "add",
                _ => "other",
            })
            .collect();
        // del a (addr maps), del b (any maps: changed target), add b+c (any maps)
        assert_eq!(kinds, ["del", "del", "del", "del", "add", "add"]);
        assert!(diff_messages("tbl", &desired, &desired).is_empty());
    }
}
