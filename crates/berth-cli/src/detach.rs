//! Detach keys on the client side, as the docker CLI handles them: on a terminal (`-t` with
//! stdin attached) the CLI watches its own stdin for the sequence (`ctrl-p,ctrl-q` unless
//! `--detach-keys` says otherwise), sends nothing of it, and leaves: the container keeps
//! running. Without a TTY the bytes go through and the daemon finds the sequence.
//!
//! After a detach `run` and `start -a` exit 0 silently; `attach` and `exec` report
//! `read escape sequence` and exit 1 (docker's `term.EscapeError` surfaces there).

/// Docker's default sequence.
pub const DEFAULT_KEYS: &[u8] = &[0x10, 0x11];

/// What `attach`/`exec` print after a detach (moby's `term.EscapeError`).
pub const ESCAPE_MESSAGE: &str = "read escape sequence";

/// moby's `term.ToBytes`: `ctrl-p,ctrl-q` → `[0x10, 0x11]`; `ctrl-a`…`ctrl-z`, `ctrl-@`,
/// `ctrl-[`, `ctrl-\`, `ctrl-]`, `ctrl-^`, `ctrl-_`, `DEL`, or single characters.
pub fn parse_keys(spec: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for k in spec.split(',') {
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

/// The sequence to watch for: `--detach-keys` when it parses, else the default (the docker
/// CLI warns and falls back the same way; the daemon rejects a bad one with a 400).
pub fn keys_or_default(spec: Option<&str>) -> Vec<u8> {
    match spec.filter(|s| !s.is_empty()).map(parse_keys) {
        Some(Ok(k)) if !k.is_empty() => k,
        _ => DEFAULT_KEYS.to_vec(),
    }
}

/// The detach keys in effect: `--detach-keys`, else `detachKeys` from the docker CLI's
/// `config.json` (as docker's `ConfigFile().DetachKeys`), else none (the default applies).
pub fn effective(flag: Option<&str>) -> Option<String> {
    if let Some(f) = flag.filter(|f| !f.is_empty()) {
        return Some(f.to_string());
    }
    let path = crate::credentials::config_path().ok()?;
    from_config(&std::fs::read_to_string(path).ok()?)
}

/// `detachKeys` of a `config.json` text.
fn from_config(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v.get("detachKeys")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Finds the sequence in stdin chunks (a match may span reads); bytes of a partial match
/// are held back and released if the match fails, as moby's `EscapeProxy` does.
#[derive(Debug)]
pub struct EscapeScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeScanner {
    pub fn new(keys: Vec<u8>) -> Self {
        EscapeScanner { keys, matched: 0 }
    }

    /// (bytes to send, whether the sequence completed).
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
        assert_eq!(parse_keys("ctrl-p,ctrl-q").unwrap(), DEFAULT_KEYS);
        assert_eq!(
            parse_keys("ctrl-a,x,DEL,ctrl-@").unwrap(),
            vec![1, b'x', 127, 0]
        );
        assert_eq!(
            parse_keys("ctrl-1").unwrap_err(),
            "Unknown character: 'ctrl-1'"
        );
        assert!(parse_keys("abc").is_err());
        assert_eq!(keys_or_default(Some("nonsense")), DEFAULT_KEYS);
        assert_eq!(keys_or_default(None), DEFAULT_KEYS);
        assert_eq!(keys_or_default(Some("ctrl-x")), vec![0x18]);
        assert_eq!(
            from_config(r#"{"auths":{},"detachKeys":"ctrl-e,e"}"#).as_deref(),
            Some("ctrl-e,e")
        );
        assert_eq!(from_config(r#"{"auths":{}}"#), None);
        assert_eq!(effective(Some("ctrl-a")).as_deref(), Some("ctrl-a"));
    }

    #[test]
    fn scanner_matches_across_reads_and_releases_false_starts() {
        let mut s = EscapeScanner::new(DEFAULT_KEYS.to_vec());
        assert_eq!(s.feed(b"ls\r\x10"), (b"ls\r".to_vec(), false));
        assert_eq!(s.feed(b"x"), (b"\x10x".to_vec(), false));
        assert_eq!(s.feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(s.feed(b"\x11after"), (Vec::new(), true));
    }
}
