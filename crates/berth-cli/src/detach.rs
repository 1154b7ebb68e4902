//! Detach keys on the client side, as the docker CLI handles them: on a terminal (`-t` with
//! stdin attached) the CLI watches its own stdin for the sequence (`ctrl-p,ctrl-q` unless
//! `--detach-keys` says otherwise), sends nothing of it, and leaves: the container keeps
//! running. Without a TTY the bytes go through and the daemon finds the sequence.
//!
//! After a detach `run` and `start -a` exit 0 silently; `attach` and `exec` report
//! `read escape sequence` and exit 1 (docker's `term.EscapeError` surfaces there).

pub use berth_api::detach::{parse_keys, EscapeScanner, DEFAULT_KEYS};

/// What `attach`/`exec` print after a detach (moby's `term.EscapeError`).
pub const ESCAPE_MESSAGE: &str = "read escape sequence";

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Parsing and scanning are tested in `berth_api::detach`; here what the CLI adds.
    #[test]
    fn flag_then_config_then_default() {
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
}
