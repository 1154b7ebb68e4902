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
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
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
        let entry = Entry {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream: stream.as_str().to_string(),
            time: now_rfc3339_nano(),
        };
        let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        line.push(b'\n');
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
