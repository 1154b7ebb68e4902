//! Detach keys, Docker's way of leaving an attached session without stopping the container:
//! the `--detach-keys` / `detachKeys` spelling (`ctrl-p,ctrl-q`) and a scanner that finds
//! the sequence in a byte stream. Shared by the daemon (which watches a hijacked stdin) and
//! the CLI (which watches its own terminal, as the docker CLI does).

/// Docker's default sequence, as written.
pub const DEFAULT_SPEC: &str = "ctrl-p,ctrl-q";

/// Docker's default sequence, as bytes.
pub const DEFAULT_KEYS: &[u8] = &[0x10, 0x11];

/// moby's `term.ToBytes`: `ctrl-p,ctrl-q` → `[0x10, 0x11]`; `ctrl-a`…`ctrl-z`, `ctrl-@`,
/// `ctrl-[`, `ctrl-\`, `ctrl-]`, `ctrl-^`, `ctrl-_`, `DEL`, or single characters. Blank
/// entries are skipped. The error is the docker CLI's text (`Unknown character: 'x'`).
pub fn parse_keys(spec: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for k in spec.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        if let Some(c) = k.strip_prefix("ctrl-") {
            out.push(match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(format!("Unknown character: '{k}'")),
            });
        } else if k == "DEL" {
            out.push(127);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!("Unknown character: '{k}'"));
        }
    }
    Ok(out)
}

/// Finds the sequence in a stream split across reads; bytes of a partial match are held
/// back and released if the match fails, as moby's `EscapeProxy` does.
#[derive(Debug)]
pub struct EscapeScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeScanner {
    /// An empty `keys` never matches: everything passes through.
    pub fn new(keys: Vec<u8>) -> Self {
        EscapeScanner { keys, matched: 0 }
    }

    /// (bytes to pass on, whether the sequence completed).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        if self.keys.is_empty() {
            return (input.to_vec(), false);
        }
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            if self.matched > 0 {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                    continue;
                }
            }
            out.push(b);
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_like_moby() {
        assert_eq!(parse_keys(DEFAULT_SPEC).unwrap(), DEFAULT_KEYS);
        assert_eq!(parse_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse_keys("DEL, ctrl-@").unwrap(), vec![127, 0]);
        assert_eq!(parse_keys("").unwrap(), Vec::<u8>::new());
        assert_eq!(
            parse_keys("ctrl-1").unwrap_err(),
            "Unknown character: 'ctrl-1'"
        );
        assert!(parse_keys("abc").is_err());
    }

    #[test]
    fn scanner_matches_across_reads_and_releases_partial_matches() {
        let mut s = EscapeScanner::new(DEFAULT_KEYS.to_vec());
        assert_eq!(s.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(s.feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(s.feed(b"\x11rest"), (Vec::new(), true));
        let mut none = EscapeScanner::new(Vec::new());
        assert_eq!(none.feed(b"\x10\x11"), (b"\x10\x11".to_vec(), false));
    }
}
