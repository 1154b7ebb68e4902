//! The shim's wire protocol on `STATE-DIR/shim.sock` (a unix stream socket), shared by the
//! server and [`crate::client`].
//!
//! A connection starts with one request line (`\n`-terminated, at most 64 KiB):
//!
//! | request | reply | then |
//! |---|---|---|
//! | `START` | `OK <pid>` | closed |
//! | `ATTACH stdin=0\|1 stdout=0\|1 stderr=0\|1 logs=0\|1` | `OK` | output stream; client bytes → container stdin |
//! | `RESIZE <rows> <cols>` | `OK` | closed |
//! | `WAIT` | `EXIT <code> <oom_killed 0\|1>` when the container exits | closed |
//! | `EXEC <json>` | `OK <pid>` | the exec's stream, closed after `exec-<id>.json` is written |
//! | `RESIZE-EXEC <exec_id> <rows> <cols>` | `OK` | closed |
//! | `KILL <signal>` (number or name) | `OK` | closed |
//!
//! Any failure replies `ERR <message>` and closes; a runtime failure's message starts with its
//! kind: `ERR not_found: ...` (Docker exit 127), `ERR permission_denied: ...` (126) or
//! `ERR failed: ...`. A client that sends `WAIT` while the shim is already finishing still gets
//! `EXIT`; once the shim is gone, `exit.json` holds the same answer.
//!
//! Attach semantics: `stdin=1` bytes go to the process's stdin; when such a client shuts down
//! its write side and no other stdin attacher remains, the process's stdin is closed (Docker's
//! StdinOnce; not for a TTY). A client whose unsent output exceeds 8 MiB is disconnected
//! (the log keeps everything). `logs=1` first replays the newest ≤ 4 MiB of the json-file log. Streams without a TTY use Docker's
//! multiplexed framing (an 8-byte header: stream 1=stdout 2=stderr, three zero bytes, u32
//! big-endian length, then the payload); with a TTY the bytes are raw.

use std::fmt;

/// Stream ids in Docker's multiplexed framing.
pub const STREAM_STDOUT: u8 = 1;
pub const STREAM_STDERR: u8 = 2;

/// Longest request line accepted.
pub const MAX_REQUEST: usize = 64 * 1024;

/// Docker's 8-byte frame header for `len` bytes of `stream`.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Errors in a request or reply line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("unknown shim request {0:?}; expected START, ATTACH, RESIZE, WAIT, EXEC, RESIZE-EXEC or KILL")]
    Unknown(String),
    #[error("bad shim request {line:?}: {reason}")]
    Bad { line: String, reason: String },
    #[error("bad shim reply {0:?}")]
    BadReply(String),
}

/// What an attach client wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachOpts {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Replay the log file before live output.
    pub logs: bool,
    /// Docker's StdinOnce: when the last stdin attacher of the container's init leaves, close
    /// its stdin. Off for `run -d -i` + `attach`: the next attach still finds stdin open.
    /// Absent on the wire means on (what shims before this field did); exec stdin always is.
    pub stdin_once: bool,
}

impl Default for AttachOpts {
    fn default() -> Self {
        AttachOpts {
            stdin: false,
            stdout: false,
            stderr: false,
            logs: false,
            stdin_once: true,
        }
    }
}

/// An `EXEC` request's JSON.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExecRequest {
    pub exec_id: String,
    /// An OCI runtime-spec `Process` object.
    pub process: serde_json::Value,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub stdin: bool,
}

/// One request line.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Start,
    Attach(AttachOpts),
    Resize {
        rows: u16,
        cols: u16,
    },
    Wait,
    Exec(ExecRequest),
    ResizeExec {
        exec_id: String,
        rows: u16,
        cols: u16,
    },
    Kill(i32),
}

fn bad(line: &str, reason: impl Into<String>) -> ProtocolError {
    ProtocolError::Bad {
        line: line.chars().take(200).collect(),
        reason: reason.into(),
    }
}

fn num<T: std::str::FromStr>(line: &str, what: &str, v: Option<&str>) -> Result<T, ProtocolError> {
    let v = v.ok_or_else(|| bad(line, format!("missing {what}")))?;
    v.parse()
        .map_err(|_| bad(line, format!("{what} {v:?} is not a valid number")))
}

/// Parse a signal given as a number (`15`) or a name (`SIGTERM`, `TERM`).
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

impl Request {
    /// Parse one request line (without the trailing newline).
    pub fn parse(line: &str) -> Result<Request, ProtocolError> {
        let line = line.trim_end_matches(['\r', '\n']);
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let mut args = rest.split_whitespace();
        match verb {
            "START" => Ok(Request::Start),
            "WAIT" => Ok(Request::Wait),
            "ATTACH" => {
                let mut o = AttachOpts::default();
                for kv in args {
                    let (k, v) = kv
                        .split_once('=')
                        .ok_or_else(|| bad(line, format!("{kv:?} is not key=0|1")))?;
                    let v = match v {
                        "0" => false,
                        "1" => true,
                        _ => return Err(bad(line, format!("{k} must be 0 or 1"))),
                    };
                    match k {
                        "stdin" => o.stdin = v,
                        "stdout" => o.stdout = v,
                        "stderr" => o.stderr = v,
                        "logs" => o.logs = v,
                        "stdin_once" => o.stdin_once = v,
                        _ => return Err(bad(line, format!("unknown attach option {k:?}"))),
                    }
                }
                Ok(Request::Attach(o))
            }
            "RESIZE" => Ok(Request::Resize {
                rows: num(line, "rows", args.next())?,
                cols: num(line, "cols", args.next())?,
            }),
            "RESIZE-EXEC" => Ok(Request::ResizeExec {
                exec_id: args
                    .next()
                    .ok_or_else(|| bad(line, "missing exec id"))?
                    .to_string(),
                rows: num(line, "rows", args.next())?,
                cols: num(line, "cols", args.next())?,
            }),
            "KILL" => {
                let s = args.next().ok_or_else(|| bad(line, "missing signal"))?;
                parse_signal(s)
                    .map(Request::Kill)
                    .ok_or_else(|| bad(line, format!("unknown signal {s:?}")))
            }
            "EXEC" => serde_json::from_str::<ExecRequest>(rest)
                .map(Request::Exec)
                .map_err(|e| bad(line, format!("exec json: {e}"))),
            _ => Err(ProtocolError::Unknown(verb.chars().take(40).collect())),
        }
    }

    /// The request line, with its newline.
    pub fn to_line(&self) -> String {
        let b = |v: bool| u8::from(v);
        match self {
            Request::Start => "START\n".into(),
            Request::Wait => "WAIT\n".into(),
            Request::Attach(o) => format!(
                "ATTACH stdin={} stdout={} stderr={} logs={}{}\n",
                b(o.stdin),
                b(o.stdout),
                b(o.stderr),
                b(o.logs),
                // Only when off: a shim from before the field keeps working.
                if o.stdin_once { "" } else { " stdin_once=0" }
            ),
            Request::Resize { rows, cols } => format!("RESIZE {rows} {cols}\n"),
            Request::ResizeExec {
                exec_id,
                rows,
                cols,
            } => format!("RESIZE-EXEC {exec_id} {rows} {cols}\n"),
            Request::Kill(s) => format!("KILL {s}\n"),
            Request::Exec(e) => format!(
                "EXEC {}\n",
                serde_json::to_string(e).expect("json of plain values")
            ),
        }
    }
}

/// One reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `OK` or `OK <pid>`.
    Ok(Option<i32>),
    /// `EXIT <code> <oom_killed>`.
    Exit { code: i32, oom_killed: bool },
    /// `ERR <message>`.
    Err(String),
}

impl Reply {
    pub fn parse(line: &str) -> Result<Reply, ProtocolError> {
        let line = line.trim_end_matches(['\r', '\n']);
        let err = || ProtocolError::BadReply(line.chars().take(200).collect());
        if line == "OK" {
            return Ok(Reply::Ok(None));
        }
        if let Some(p) = line.strip_prefix("OK ") {
            return p
                .trim()
                .parse()
                .map(|p| Reply::Ok(Some(p)))
                .map_err(|_| err());
        }
        if let Some(m) = line.strip_prefix("ERR ") {
            return Ok(Reply::Err(m.to_string()));
        }
        if let Some(rest) = line.strip_prefix("EXIT ") {
            let mut it = rest.split_whitespace();
            let code = it.next().and_then(|c| c.parse().ok()).ok_or_else(err)?;
            let oom = match it.next() {
                Some("1") => true,
                Some("0") => false,
                _ => return Err(err()),
            };
            return Ok(Reply::Exit {
                code,
                oom_killed: oom,
            });
        }
        Err(err())
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Ok(None) => writeln!(f, "OK"),
            Reply::Ok(Some(p)) => writeln!(f, "OK {p}"),
            Reply::Exit { code, oom_killed } => {
                writeln!(f, "EXIT {code} {}", u8::from(*oom_killed))
            }
            // One line: newlines in the message would break framing.
            Reply::Err(m) => writeln!(f, "ERR {}", m.replace('\n', " ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let reqs = [
            Request::Start,
            Request::Wait,
            Request::Attach(AttachOpts {
                stdin: true,
                stdout: true,
                stderr: false,
                logs: true,
                stdin_once: true,
            }),
            Request::Attach(AttachOpts {
                stdin: true,
                stdin_once: false,
                ..Default::default()
            }),
            Request::Resize { rows: 24, cols: 80 },
            Request::ResizeExec {
                exec_id: "e1".into(),
                rows: 50,
                cols: 132,
            },
            Request::Kill(15),
            Request::Exec(ExecRequest {
                exec_id: "e1".into(),
                process: serde_json::json!({"args": ["sh", "-c", "echo hi\nthere"], "cwd": "/"}),
                tty: false,
                stdin: true,
            }),
        ];
        for r in reqs {
            let line = r.to_line();
            assert_eq!(line.matches('\n').count(), 1, "{line:?}");
            assert_eq!(Request::parse(&line).unwrap(), r);
        }
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(Request::parse("KILL SIGKILL").unwrap(), Request::Kill(9));
        assert_eq!(Request::parse("KILL term").unwrap(), Request::Kill(15));
        assert!(Request::parse("KILL 0").is_err());
        assert!(Request::parse("KILL NOPE").is_err());
    }

    #[test]
    fn bad_requests_are_clear() {
        assert!(matches!(
            Request::parse("HELLO"),
            Err(ProtocolError::Unknown(_))
        ));
        assert!(Request::parse("RESIZE 24")
            .unwrap_err()
            .to_string()
            .contains("cols"));
        assert!(Request::parse("RESIZE x 80")
            .unwrap_err()
            .to_string()
            .contains("rows"));
        assert!(Request::parse("ATTACH stdin=2").is_err());
        assert!(Request::parse("EXEC {not json")
            .unwrap_err()
            .to_string()
            .contains("exec json"));
    }

    #[test]
    fn replies_round_trip() {
        for r in [
            Reply::Ok(None),
            Reply::Ok(Some(42)),
            Reply::Exit {
                code: 137,
                oom_killed: true,
            },
            Reply::Err("no such exec".into()),
        ] {
            assert_eq!(Reply::parse(&r.to_string()).unwrap(), r);
        }
        assert!(Reply::parse("EXIT x 0").is_err());
    }

    #[test]
    fn frame_header_is_dockers() {
        assert_eq!(
            frame_header(STREAM_STDERR, 0x0102),
            [2, 0, 0, 0, 0, 0, 1, 2]
        );
    }
}
