//! Just enough of the DNS wire format (RFC 1035): parse the one question of a query and build
//! an A answer. Hand-written on purpose (~150 lines, unit-tested): the server only needs the
//! question to decide "ours or forward", and forwarding relays the client's bytes untouched,
//! so a full message model (hickory-proto) would add a dependency tree for no behaviour.

use std::net::Ipv4Addr;

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type AAAA.
pub const TYPE_AAAA: u16 = 28;
/// Class IN.
pub const CLASS_IN: u16 = 1;
/// Response codes.
pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;
/// TTL of our answers (Docker uses 600 s).
pub const TTL: u32 = 600;

/// The question of a standard query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub id: u16,
    /// Lowercase, without the trailing dot.
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    /// Offset just after the question (to copy it into the answer verbatim).
    pub end: usize,
}

/// Why a packet is not a query we can answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("packet shorter than a DNS header")]
    Short,
    #[error("not a standard query")]
    NotQuery,
    #[error("malformed question")]
    BadQuestion,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Parse a query with exactly one question (what every stub resolver sends).
pub fn parse_query(b: &[u8]) -> Result<Question, WireError> {
    if b.len() < 12 {
        return Err(WireError::Short);
    }
    let id = u16_at(b, 0).ok_or(WireError::Short)?;
    let flags = u16_at(b, 2).ok_or(WireError::Short)?;
    let qr = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    if qr || opcode != 0 || u16_at(b, 4) != Some(1) {
        return Err(WireError::NotQuery);
    }
    let mut i = 12;
    let mut labels: Vec<String> = Vec::new();
    let mut total = 0usize;
    loop {
        let len = *b.get(i).ok_or(WireError::BadQuestion)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return Err(WireError::BadQuestion); // also rejects compression pointers
        }
        let label = b.get(i..i + len).ok_or(WireError::BadQuestion)?;
        total += len + 1;
        if total > 255 {
            return Err(WireError::BadQuestion);
        }
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16_at(b, i).ok_or(WireError::BadQuestion)?;
    let qclass = u16_at(b, i + 2).ok_or(WireError::BadQuestion)?;
    Ok(Question {
        id,
        name: labels.join("."),
        qtype,
        qclass,
        end: i + 4,
    })
}

/// Build a response to `query` (whose question is `q`) with A records for `ips`.
pub fn answer(query: &[u8], q: &Question, ips: &[Ipv4Addr], rcode: u8) -> Vec<u8> {
    let rd = query.get(2).map(|f| f & 0x01).unwrap_or(0);
    let mut out = Vec::with_capacity(q.end + ips.len() * 16);
    out.extend_from_slice(&q.id.to_be_bytes());
    // QR=1, opcode 0, AA=1, TC=0, RD copied; RA=1, rcode.
    out.push(0x80 | 0x04 | rd);
    out.push(0x80 | (rcode & 0x0f));
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(ips.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&query[12..q.end]);
    for ip in ips {
        out.extend_from_slice(&[0xc0, 0x0c]); // pointer to the question name
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    out
}

/// A minimal error reply when the question cannot even be parsed (echo id, set rcode).
pub fn error_reply(query: &[u8], rcode: u8) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let mut out = query[..12].to_vec();
    out[2] = 0x80 | (query[2] & 0x79);
    out[3] = 0x80 | (rcode & 0x0f);
    out[4..12].fill(0);
    Some(out)
}

/// Build a query (used by tests and health checks).
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// Parse the A records and rcode of a response (used by tests).
pub fn parse_a_answers(b: &[u8]) -> Option<(u8, Vec<Ipv4Addr>)> {
    let rcode = b.get(3)? & 0x0f;
    let an = u16_at(b, 6)?;
    let mut i = 12;
    // skip the question (no compression in questions we send)
    while *b.get(i)? != 0 {
        i += *b.get(i)? as usize + 1;
    }
    i += 5;
    let mut ips = Vec::new();
    for _ in 0..an {
        // name: pointer or labels
        if b.get(i)? & 0xc0 == 0xc0 {
            i += 2;
        } else {
            while *b.get(i)? != 0 {
                i += *b.get(i)? as usize + 1;
            }
            i += 1;
        }
        let ty = u16_at(b, i)?;
        let rdlen = u16_at(b, i + 8)? as usize;
        let rd = b.get(i + 10..i + 10 + rdlen)?;
        if ty == TYPE_A && rdlen == 4 {
            ips.push(Ipv4Addr::new(rd[0], rd[1], rd[2], rd[3]));
        }
        i += 10 + rdlen;
    }
    Some((rcode, ips))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_roundtrip() {
        let q = build_query(0x1234, "Web.Example.", TYPE_A);
        let p = parse_query(&q).unwrap();
        assert_eq!(
            (p.id, p.name.as_str(), p.qtype, p.qclass),
            (0x1234, "web.example", TYPE_A, CLASS_IN)
        );
        let a = answer(
            &q,
            &p,
            &[Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)],
            RCODE_NOERROR,
        );
        let (rcode, ips) = parse_a_answers(&a).unwrap();
        assert_eq!(rcode, 0);
        assert_eq!(
            ips,
            vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)]
        );
        assert_eq!(&a[0..2], &[0x12, 0x34]);
        assert_eq!(a[2] & 0x80, 0x80, "QR set");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_query(&[0; 5]), Err(WireError::Short));
        let mut q = build_query(1, "a", TYPE_A);
        q[2] |= 0x80; // a response, not a query
        assert_eq!(parse_query(&q), Err(WireError::NotQuery));
        let mut q = build_query(1, "abc", TYPE_A);
        q.truncate(15);
        assert_eq!(parse_query(&q), Err(WireError::BadQuestion));
        let mut q = build_query(1, "abc", TYPE_A);
        q[12] = 0xc0; // compression pointer in a question
        assert_eq!(parse_query(&q), Err(WireError::BadQuestion));
        assert_eq!(
            error_reply(&build_query(7, "x", 1), RCODE_FORMERR).unwrap()[3] & 0x0f,
            RCODE_FORMERR
        );
    }
}
