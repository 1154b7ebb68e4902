//! Docker's json-file log format, with rotation.
//!
//! One JSON object per line: `{"log":"hello\n","stream":"stdout","time":"2026-11-28T05:30:00.123456789Z"}`.
//! Output is split at newlines; a line longer than [`MAX_PARTIAL`] is written in pieces
//! without the trailing `\n` (like Docker's partial messages), and a trailing partial line is
//! flushed at exit. When the file would exceed `max_size` it is rotated: `FILE.(n-2)` →
//! `FILE.(n-1)`, ..., `FILE` → `FILE.1`, keeping `max_files` files in total (1 = truncate).
//! Entries are written whole with one `write` each, so a reader never sees a torn line.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A partial line longer than this is written out without waiting for its newline.
pub const MAX_PARTIAL: usize = 16 * 1024;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
    fn idx(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// One json-file entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// RFC 3339 with nanoseconds, UTC (Go's RFC3339Nano parses it).
pub fn now_rfc3339_nano() -> String {
    let mut out = Vec::with_capacity(30);
    push_rfc3339_nano(&mut out, std::time::SystemTime::now());
    String::from_utf8(out).unwrap_or_default()
}

/// Append `t` as `2026-11-28T05:30:00.123456789Z` (always nine digits, like chrono's
/// `to_rfc3339_opts(Nanos, true)`).
///
/// By hand rather than with chrono, and [`push_entry`] rather than serde_json, because this is
/// the one path a shim runs for every line of output for the container's whole life: chrono's
/// and serde's formatting machinery spread over ~10 windows of 64 KB of text (the kernel maps
/// code 64 KB around each fault), more than the whole idle shim. Tested against both.
fn push_rfc3339_nano(out: &mut Vec<u8>, t: std::time::SystemTime) {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm, proleptic Gregorian).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    push_digits(out, year, 4);
    let parts: [(u8, u64, u32); 6] = [
        (b'-', month, 2),
        (b'-', day, 2),
        (b'T', rem / 3600, 2),
        (b':', rem / 60 % 60, 2),
        (b':', rem % 60, 2),
        (b'.', u64::from(d.subsec_nanos()), 9),
    ];
    for (sep, v, width) in parts {
        out.push(sep);
        push_digits(out, v, width);
    }
    out.push(b'Z');
}

/// `v` in decimal, zero-padded to `width` digits (its low `width` digits if longer).
fn push_digits(out: &mut Vec<u8>, v: u64, width: u32) {
    for k in (0..width).rev() {
        out.push(b'0' + (v / 10u64.pow(k) % 10) as u8);
    }
}

/// Append `bytes` as a JSON string: invalid UTF-8 becomes U+FFFD (as `from_utf8_lossy`),
/// `"` `\\` and control characters are escaped (as serde_json does).
fn push_json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        for &b in chunk.valid().as_bytes() {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                0..=0x1f => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 15)]);
                }
                _ => out.push(b),
            }
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    out.push(b'"');
}

/// Append one json-file line: `{"log":…,"stream":…,"time":…}` and a newline.
fn push_entry(out: &mut Vec<u8>, stream: Stream, bytes: &[u8], t: std::time::SystemTime) {
    out.extend_from_slice(b"{\"log\":");
    push_json_string(out, bytes);
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    push_rfc3339_nano(out, t);
    out.extend_from_slice(b"\"}\n");
}

/// Writer of one container's json-file log.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    max_size: u64,
    max_files: u32,
    file: File,
    size: u64,
    partial: [Vec<u8>; 2],
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl LogWriter {
    /// Open (append) the log; `max_size` 0 disables rotation.
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<LogWriter> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            max_size,
            max_files: max_files.max(1),
            file,
            size,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Add output; complete lines are written at once.
    pub fn write(&mut self, stream: Stream, mut data: &[u8]) -> io::Result<()> {
        let i = stream.idx();
        while !data.is_empty() {
            match data.iter().position(|b| *b == b'\n') {
                Some(nl) => {
                    let mut line = std::mem::take(&mut self.partial[i]);
                    line.extend_from_slice(&data[..=nl]);
                    data = &data[nl + 1..];
                    self.emit(stream, &line)?;
                }
                None => {
                    self.partial[i].extend_from_slice(data);
                    data = &[];
                }
            }
            while self.partial[i].len() >= MAX_PARTIAL {
                let rest = self.partial[i].split_off(MAX_PARTIAL);
                let piece = std::mem::replace(&mut self.partial[i], rest);
                self.emit(stream, &piece)?;
            }
        }
        Ok(())
    }

    /// Write out partial lines (at exit).
    pub fn flush_partial(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let p = std::mem::take(&mut self.partial[stream.idx()]);
            if !p.is_empty() {
                self.emit(stream, &p)?;
            }
        }
        Ok(())
    }

    fn emit(&mut self, stream: Stream, bytes: &[u8]) -> io::Result<()> {
        let mut line = Vec::with_capacity(bytes.len() + 80);
        push_entry(&mut line, stream, bytes, std::time::SystemTime::now());
        if self.max_size > 0 && self.size > 0 && self.size + line.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        for n in (1..self.max_files - 1).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// The log and its rotated files, oldest first.
fn files(path: &Path, max_files: u32) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..max_files.max(1))
        .rev()
        .map(|n| rotated(path, n))
        .collect();
    files.push(path.to_path_buf());
    files
}

/// Visit every entry of a log and its rotated files, oldest first, one line in memory at a time.
fn for_each(path: &Path, max_files: u32, mut f: impl FnMut(Entry)) {
    use std::io::BufRead;
    for file in files(path, max_files) {
        if let Ok(fh) = File::open(&file) {
            for line in io::BufReader::new(fh).lines().map_while(Result::ok) {
                if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                    f(e);
                }
            }
        }
    }
}

/// Read every entry of a log and its rotated files, oldest first.
pub fn read_all(path: &Path, max_files: u32) -> Vec<Entry> {
    let mut out = Vec::new();
    for_each(path, max_files, |e| out.push(e));
    out
}

/// The newest entries whose payloads total at most `cap` bytes, oldest first (for
/// `ATTACH logs=1`: a replay must not balloon the shim's memory or overflow the client).
pub fn read_tail(path: &Path, max_files: u32, cap: usize) -> Vec<Entry> {
    let mut total = 0usize;
    for_each(path, max_files, |e| total += e.log.len());
    let mut skip = total.saturating_sub(cap);
    let mut out = Vec::new();
    for_each(path, max_files, |e| {
        if skip > 0 {
            skip = skip.saturating_sub(e.log.len());
            return;
        }
        out.push(e);
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (no `rand` in this crate).
    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *state >> 17
    }

    #[test]
    fn timestamps_match_chrono() {
        use std::time::{Duration, UNIX_EPOCH};
        let mut cases: Vec<(u64, u32)> = vec![
            (0, 0),
            (951_782_400, 1),             // 2000-02-29
            (1_709_164_799, 999_999_999), // 2024-02-28T23:59:59.999999999
            (1_709_164_800, 0),           // 2024-02-29
            (4_107_542_400, 5),           // 2100-03-01
            (946_684_799, 999_999_999),   // 1999-12-31T23:59:59.999999999
            (253_402_300_799, 123),       // 9999-12-31T23:59:59
        ];
        let mut st = 7u64;
        for _ in 0..20_000 {
            cases.push((
                lcg(&mut st) % 253_402_300_800,
                (lcg(&mut st) % 1_000_000_000) as u32,
            ));
        }
        for (secs, nanos) in cases {
            let mut ours = Vec::new();
            push_rfc3339_nano(&mut ours, UNIX_EPOCH + Duration::new(secs, nanos));
            let want = chrono::DateTime::from_timestamp(secs as i64, nanos)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            assert_eq!(String::from_utf8(ours).unwrap(), want, "{secs}.{nanos}");
        }
    }

    #[test]
    fn json_strings_match_serde_on_any_bytes() {
        let mut inputs: Vec<Vec<u8>> = vec![
            (0..=255u8).collect(),
            b"plain".to_vec(),
            "héllo ✓ 😀".as_bytes().to_vec(),
            vec![0xe2, 0x82],       // truncated sequence
            vec![0xf0, 0x28, 0x8c], // invalid continuation
            vec![0xed, 0xa0, 0x80], // a surrogate, invalid in UTF-8
        ];
        let mut st = 11u64;
        for _ in 0..5_000 {
            let len = (lcg(&mut st) % 40) as usize;
            // Bias towards the interesting bytes: controls, quotes, backslashes, high bytes.
            let pick = b"\x00\x1f\"\\\n\t\x7f\x80\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80az ";
            inputs.push(
                (0..len)
                    .map(|_| match lcg(&mut st) % 3 {
                        0 => (lcg(&mut st) % 256) as u8,
                        _ => pick[(lcg(&mut st) % pick.len() as u64) as usize],
                    })
                    .collect(),
            );
        }
        for bytes in inputs {
            let mut ours = Vec::new();
            push_json_string(&mut ours, &bytes);
            let want = serde_json::to_string(&String::from_utf8_lossy(&bytes)).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), want, "{bytes:?}");
        }
    }

    #[test]
    fn entries_are_the_json_that_serde_reads() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_764_307_800, 42);
        let mut line = Vec::new();
        push_entry(&mut line, Stream::Stderr, b"a \"b\"\n", t);
        assert_eq!(
            String::from_utf8(line.clone()).unwrap(),
            "{\"log\":\"a \\\"b\\\"\\n\",\"stream\":\"stderr\",\"time\":\"2025-11-28T05:30:00.000000042Z\"}\n"
        );
        let e: Entry = serde_json::from_slice(&line).unwrap();
        assert_eq!((e.log.as_str(), e.stream.as_str()), ("a \"b\"\n", "stderr"));
    }

    fn entries(p: &Path) -> Vec<Entry> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn splits_lines_and_keeps_partials() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.log");
        let mut w = LogWriter::open(&p, 0, 3).unwrap();
        w.write(Stream::Stdout, b"hello\nwor").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"ld\n\"quoted\"\tand \xff\n")
            .unwrap();
        w.write(Stream::Stdout, b"no newline").unwrap();
        assert_eq!(entries(&p).len(), 4);
        w.flush_partial().unwrap();
        let e = entries(&p);
        let logs: Vec<(&str, &str)> = e
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            logs,
            [
                ("stdout", "hello\n"),
                ("stderr", "oops\n"),
                ("stdout", "world\n"),
                ("stdout", "\"quoted\"\tand \u{fffd}\n"),
                ("stdout", "no newline"),
            ]
        );
        assert!(
            e[0].time.ends_with('Z') && e[0].time.len() == 30,
            "{}",
            e[0].time
        );
        let raw = std::fs::read_to_string(&p).unwrap();
        assert!(
            raw.starts_with(r#"{"log":"hello\n","stream":"stdout","time":""#),
            "{raw}"
        );
    }

    #[test]
    fn long_lines_are_cut_at_16k() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.log");
        let mut w = LogWriter::open(&p, 0, 1).unwrap();
        let big = vec![b'x'; MAX_PARTIAL * 2 + 10];
        w.write(Stream::Stdout, &big).unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        let e = entries(&p);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].log.len(), MAX_PARTIAL);
        assert_eq!(e[2].log, format!("{}\n", "x".repeat(10)));
    }

    #[test]
    fn rotation_keeps_n_files_and_no_line_is_lost() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.log");
        let mut w = LogWriter::open(&p, 4096, 3).unwrap();
        let n = 1000;
        for i in 0..n {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        assert!(rotated(&p, 1).exists() && rotated(&p, 2).exists());
        assert!(!rotated(&p, 3).exists(), "only 3 files in total");
        for f in [p.clone(), rotated(&p, 1), rotated(&p, 2)] {
            assert!(std::fs::metadata(&f).unwrap().len() <= 4096);
        }
        // The newest lines survive in order, contiguous up to the last one.
        let all = read_all(&p, 3);
        let nums: Vec<usize> = all
            .iter()
            .map(|e| e.log.trim().strip_prefix("line ").unwrap().parse().unwrap())
            .collect();
        assert_eq!(*nums.last().unwrap(), n - 1);
        assert!(
            nums.windows(2).all(|w| w[1] == w[0] + 1),
            "a gap in the kept lines"
        );
        // A capped replay keeps the newest lines only.
        let tail = read_tail(&p, 3, 100);
        assert!(tail.iter().map(|e| e.log.len()).sum::<usize>() <= 100);
        assert_eq!(tail.last().unwrap().log, format!("line {}\n", n - 1));
        assert!(tail.len() >= 9);
    }

    #[test]
    fn max_files_one_truncates() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.log");
        let mut w = LogWriter::open(&p, 200, 1).unwrap();
        for i in 0..50 {
            w.write(Stream::Stdout, format!("{i}\n").as_bytes())
                .unwrap();
        }
        assert!(!rotated(&p, 1).exists());
        assert!(std::fs::metadata(&p).unwrap().len() <= 200);
        assert_eq!(entries(&p).last().unwrap().log, "49\n");
    }
}
