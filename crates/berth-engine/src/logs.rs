//! Reading a container's json-file log (written by its shim), with rotation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which output a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStreamKind {
    Stdout,
    Stderr,
}

/// One log entry (a line, or a chunk of a partial line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: LogStreamKind,
    pub time: DateTime<Utc>,
    pub bytes: Vec<u8>,
}

/// `logs` options (Docker's query).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    /// Only the last N lines (`None` = all).
    pub tail: Option<usize>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub stdout: bool,
    pub stderr: bool,
}

/// The entries, in order; the channel closes at the end (or, with `follow`, when the
/// container stops and everything is read). An error ends the stream.
pub type LogReceiver = tokio::sync::mpsc::Receiver<crate::Result<LogEntry>>;

use crate::error::{EngineError, Result};
use crate::Engine;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `since`/`until`: Unix seconds with an optional fraction (`1700000000.5`) or RFC 3339.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().map_err(|_| {
        EngineError::invalid(format!(
            "invalid timestamp {s:?}; give Unix seconds or RFC 3339"
        ))
    })?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(9).collect();
        let n: u32 = digits
            .parse()
            .map_err(|_| EngineError::invalid(format!("invalid timestamp {s:?}")))?;
        n * 10u32.pow(9 - digits.len() as u32)
    };
    DateTime::from_timestamp(secs, nanos)
        .ok_or_else(|| EngineError::invalid(format!("invalid timestamp {s:?}")))
}

#[derive(serde::Deserialize)]
struct RawEntry {
    log: String,
    stream: String,
    time: String,
}

/// Parse one json-file line.
pub(crate) fn parse_line(line: &str) -> Option<LogEntry> {
    let raw: RawEntry = serde_json::from_str(line).ok()?;
    let stream = match raw.stream.as_str() {
        "stderr" => LogStreamKind::Stderr,
        _ => LogStreamKind::Stdout,
    };
    let time = DateTime::parse_from_rfc3339(&raw.time)
        .ok()?
        .with_timezone(&Utc);
    Some(LogEntry {
        stream,
        time,
        bytes: raw.log.into_bytes(),
    })
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The log files, oldest first (`log.N` … `log.1`, `log`).
fn files(path: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut n = 1;
    while rotated(path, n).exists() {
        v.push(rotated(path, n));
        n += 1;
    }
    v.reverse();
    v.push(path.to_path_buf());
    v
}

fn wanted(e: &LogEntry, o: &LogOptions) -> bool {
    let stream_ok = match e.stream {
        LogStreamKind::Stdout => o.stdout,
        LogStreamKind::Stderr => o.stderr,
    };
    stream_ok
        && o.since.map(|s| e.time >= s).unwrap_or(true)
        && o.until.map(|u| e.time <= u).unwrap_or(true)
}

/// A reader that follows one path across rotation.
struct Follower {
    path: PathBuf,
    reader: Option<BufReader<std::fs::File>>,
    ino: u64,
    partial: String,
}

impl Follower {
    /// Open the current file positioned at its end (everything before was already read).
    fn at_end(path: &Path, pos: u64) -> Follower {
        let mut f = Follower {
            path: path.to_path_buf(),
            reader: None,
            ino: 0,
            partial: String::new(),
        };
        if let Ok(mut file) = std::fs::File::open(path) {
            f.ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
            let _ = file.seek(SeekFrom::Start(pos));
            f.reader = Some(BufReader::new(file));
        }
        f
    }

    /// New complete lines, following a rotation when the path now names another file.
    fn poll(&mut self, out: &mut Vec<String>) {
        self.drain(out);
        let cur = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        if cur.is_some() && cur != Some(self.ino) {
            // Rotated: the old file (still open) is complete; continue with the new one.
            self.drain(out);
            self.partial.clear();
            *self = Follower::at_end(&self.path.clone(), 0);
            self.drain(out);
        }
    }

    fn drain(&mut self, out: &mut Vec<String>) {
        let Some(r) = self.reader.as_mut() else {
            if self.path.exists() {
                *self = Follower::at_end(&self.path.clone(), 0);
            }
            return;
        };
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line.ends_with('\n') {
                        let mut full = std::mem::take(&mut self.partial);
                        full.push_str(&line);
                        out.push(full);
                    } else {
                        self.partial.push_str(&line);
                    }
                }
            }
        }
    }
}

impl Engine {
    /// A container's logs, from its json-file log (rotated files included).
    pub async fn container_logs(&self, name: &str, opts: LogOptions) -> Result<LogReceiver> {
        let c = self.lookup(name)?;
        let rec = c.snapshot();
        let path = PathBuf::from(&rec.log_path);
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let state = c.state_tx.subscribe();
        tokio::task::spawn_blocking(move || {
            let mut entries: Vec<LogEntry> = Vec::new();
            let mut end_pos = 0;
            for f in files(&path) {
                let Ok(file) = std::fs::File::open(&f) else {
                    continue;
                };
                let mut r = BufReader::new(file);
                let mut line = String::new();
                let mut pos = 0u64;
                loop {
                    line.clear();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if !line.ends_with('\n') {
                                break; // a line being written; the follower picks it up
                            }
                            pos += n as u64;
                            if let Some(e) = parse_line(&line) {
                                if wanted(&e, &opts) {
                                    entries.push(e);
                                }
                            }
                        }
                    }
                }
                end_pos = pos;
            }
            if let Some(n) = opts.tail {
                let skip = entries.len().saturating_sub(n);
                entries.drain(..skip);
            }
            for e in entries {
                if tx.blocking_send(Ok(e)).is_err() {
                    return;
                }
            }
            if !opts.follow {
                return;
            }
            let mut fol = Follower::at_end(&path, end_pos);
            let mut lines = Vec::new();
            loop {
                let running = state.borrow().running;
                fol.poll(&mut lines);
                for l in lines.drain(..) {
                    if let Some(e) = parse_line(&l) {
                        if opts.until.map(|u| e.time > u).unwrap_or(false) {
                            return;
                        }
                        if wanted(&e, &opts) && tx.blocking_send(Ok(e)).is_err() {
                            return;
                        }
                    }
                }
                if !running || state.borrow().removed {
                    return;
                }
                if tx.is_closed() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(stream: &str, text: &str, t: &str) -> String {
        format!("{{\"log\":\"{text}\\n\",\"stream\":\"{stream}\",\"time\":\"{t}\"}}\n")
    }

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("1700000000").unwrap().timestamp(), 1_700_000_000);
        assert_eq!(
            parse_time("1700000000.5").unwrap().timestamp_subsec_nanos(),
            500_000_000
        );
        assert_eq!(
            parse_time("2026-11-28T03:21:36.123456789Z")
                .unwrap()
                .timestamp_subsec_nanos(),
            123_456_789
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn rotated_files_are_read_oldest_first() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        std::fs::write(
            rotated(&p, 2),
            line("stdout", "one", "2026-01-01T00:00:01Z"),
        )
        .unwrap();
        std::fs::write(
            rotated(&p, 1),
            line("stderr", "two", "2026-01-01T00:00:02Z"),
        )
        .unwrap();
        std::fs::write(&p, line("stdout", "three", "2026-01-01T00:00:03Z")).unwrap();
        let fs = files(&p);
        assert_eq!(fs.len(), 3);
        let texts: Vec<String> = fs
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter_map(|l| parse_line(&l))
            .map(|e| String::from_utf8(e.bytes).unwrap())
            .collect();
        assert_eq!(texts, vec!["one\n", "two\n", "three\n"]);
    }

    #[test]
    fn follower_crosses_rotation_without_loss() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        std::fs::write(&p, line("stdout", "a", "2026-01-01T00:00:01Z")).unwrap();
        let mut f = Follower::at_end(&p, 0);
        let mut out = Vec::new();
        f.poll(&mut out);
        assert_eq!(out.len(), 1);
        // The writer appends, then rotates (rename) and starts a new file.
        use std::io::Write;
        let mut w = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        w.write_all(line("stdout", "b", "2026-01-01T00:00:02Z").as_bytes())
            .unwrap();
        std::fs::rename(&p, rotated(&p, 1)).unwrap();
        std::fs::write(&p, line("stdout", "c", "2026-01-01T00:00:03Z")).unwrap();
        f.poll(&mut out);
        let texts: Vec<String> = out
            .iter()
            .filter_map(|l| parse_line(l))
            .map(|e| String::from_utf8(e.bytes).unwrap())
            .collect();
        assert_eq!(texts, vec!["a\n", "b\n", "c\n"]);
        // A partial line is held until complete.
        let mut w = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        let l = line("stdout", "d", "2026-01-01T00:00:04Z");
        w.write_all(&l.as_bytes()[..10]).unwrap();
        out.clear();
        f.poll(&mut out);
        assert!(out.is_empty());
        w.write_all(&l.as_bytes()[10..]).unwrap();
        f.poll(&mut out);
        assert_eq!(out.len(), 1);
    }
}
