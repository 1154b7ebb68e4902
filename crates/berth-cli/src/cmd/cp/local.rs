//! The local side of `berth cp`: the destination resolved through symlinks, a tar of a
//! local source named for where it lands, and the extraction of the daemon's tar.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::{clean, rebase_name, split_dir_entry};
use crate::Failure;

/// Resolves the local destination through symlinks (up to 10): (path, exists, is_dir).
pub(super) fn local_dest(p: &str) -> Result<(String, bool, bool), Failure> {
    let mut path = p.to_string();
    for _ in 0..10 {
        match std::fs::symlink_metadata(path.trim_end_matches("/.")) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = std::fs::read_link(path.trim_end_matches("/."))
                    .map_err(|e| Failure::new(1, e.to_string()))?;
                let t = t.to_string_lossy().into_owned();
                let joined = if t.starts_with('/') {
                    t
                } else {
                    let (d, _) = split_dir_entry(&path);
                    format!("{d}/{t}")
                };
                let (r, _) = rebase_name(&path, &clean(&joined));
                path = r;
            }
            Ok(m) => return Ok((path, true, m.is_dir())),
            Err(_) => {
                let (d, _) = split_dir_entry(&path);
                if !Path::new(&d).is_dir() {
                    return Err(Failure::new(
                        1,
                        format!("invalid output path: directory {d:?} does not exist"),
                    ));
                }
                return Ok((path, false, false));
            }
        }
    }
    Err(Failure::new(1, format!("too many symlinks in {p}")))
}

pub(super) struct ChanReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl ChanReader {
    pub(super) fn new(rx: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        ChanReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChanReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.cur = c;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// An entry name with its top `from` replaced by `to` (`/` as `from` means "under the root").
pub fn rename(name: &str, from: &str, to: &str) -> Option<String> {
    let name = name.trim_end_matches('/');
    let rest = if from == "/" {
        Some(name.trim_start_matches('/'))
    } else if name == from || (from == "." && name.is_empty()) {
        Some("")
    } else {
        name.strip_prefix(from).and_then(|r| r.strip_prefix('/'))
    }?;
    let out = match (to, rest.is_empty()) {
        ("." | "/", true) => ".".to_string(),
        ("." | "/", false) => rest.to_string(),
        (t, true) => t.to_string(),
        (t, false) => format!("{t}/{rest}"),
    };
    Some(out)
}

/// A relative path with no `..`, or `None`.
fn safe_rel(p: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Extracts the daemon's tar into `dir`, renaming the top entry; never writes outside `dir`
/// (no `..`, and every parent is checked to be under `dir` after symlinks), never replaces
/// a directory with a file or the reverse (Docker's `NoOverwriteDirNonDir`), no chown.
pub(super) fn extract_local(
    input: impl Read,
    dir: &Path,
    from: &str,
    to: &str,
) -> Result<(), Failure> {
    let fail = |m: String| Failure::new(1, m);
    let root = std::fs::canonicalize(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let mut ar = tar::Archive::new(input);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_unpack_xattrs(false);
    let mut dir_times: Vec<(PathBuf, u64)> = Vec::new();
    for e in ar
        .entries()
        .map_err(|e| fail(format!("reading the archive: {e}")))?
    {
        let mut e = e.map_err(|e| fail(format!("reading the archive: {e}")))?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let Some(name) = rename(&raw, from, to) else {
            continue;
        };
        let Some(rel) = safe_rel(&name) else {
            return Err(fail(format!(
                "archive entry {raw:?} escapes the destination"
            )));
        };
        let target = root.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| fail(format!("{}: {e}", parent.display())))?;
            let real = std::fs::canonicalize(parent).map_err(|e| fail(e.to_string()))?;
            if !real.starts_with(&root) {
                return Err(fail(format!(
                    "archive entry {raw:?} escapes the destination"
                )));
            }
        }
        let kind = e.header().entry_type();
        let is_dir = kind == tar::EntryType::Directory;
        if let Ok(m) = std::fs::symlink_metadata(&target) {
            if rel.as_os_str().is_empty() {
                continue;
            }
            if m.is_dir() && !is_dir {
                return Err(fail(format!(
                    "cannot overwrite directory {:?} with non-directory {raw:?}",
                    target.display().to_string()
                )));
            }
            if !m.is_dir() && is_dir {
                return Err(fail(format!(
                    "cannot overwrite non-directory {:?} with directory {raw:?}",
                    target.display().to_string()
                )));
            }
            if !m.is_dir() {
                let _ = std::fs::remove_file(&target);
            }
        }
        if kind == tar::EntryType::Link {
            let l = e
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let l = rename(&l, from, to).and_then(|n| safe_rel(&n));
            let Some(l) = l else {
                return Err(fail(format!("archive entry {raw:?}: bad hardlink target")));
            };
            std::fs::hard_link(root.join(l), &target).map_err(|e| fail(format!("{raw}: {e}")))?;
            continue;
        }
        if is_dir {
            dir_times.push((target.clone(), e.header().mtime().unwrap_or(0)));
        }
        e.unpack(&target)
            .map_err(|er| fail(format!("{raw}: {er}")))?;
    }
    for (d, t) in dir_times.into_iter().rev() {
        let ft = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t);
        if let Ok(f) = std::fs::File::open(&d) {
            let _ = f.set_modified(ft);
        }
    }
    Ok(())
}

/// `ResolveHostSourcePath`: with `-L` the path with every symlink followed; without, only
/// the parent's (the source itself is copied as the symlink it is).
pub(super) fn local_source(p: &str, follow: bool) -> Result<(String, Option<String>), Failure> {
    let err = |e: std::io::Error| Failure::new(1, format!("lstat {p}: {e}"));
    if follow {
        let real = std::fs::canonicalize(p.trim_end_matches("/.")).map_err(err)?;
        let (r, rebase) = rebase_name(p, &real.to_string_lossy());
        return Ok((r, rebase));
    }
    let (d, b) = split_dir_entry(p);
    let rd = std::fs::canonicalize(&d).map_err(err)?;
    let resolved = if b == "/" {
        "/".to_string()
    } else {
        format!("{}/{b}", rd.to_string_lossy().trim_end_matches('/'))
    };
    let mut rebase = None;
    if p.ends_with('/') {
        let (_, rb) = split_dir_entry(&resolved);
        if rb != b {
            rebase = Some(b);
        }
    }
    Ok((resolved, rebase))
}

/// Writes a tar of the local `src` to `out`, its top entry named `top` (`.`: the content
/// only).
pub(super) fn local_tar<W: std::io::Write>(src: &str, top: &str, out: W) -> Result<W, Failure> {
    let fail = |e: std::io::Error| Failure::new(1, format!("archiving {src}: {e}"));
    let path = Path::new(src.trim_end_matches("/."));
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let md = std::fs::symlink_metadata(path).map_err(fail)?;
    if md.is_dir() {
        if top == "." || top == "/" {
            for e in std::fs::read_dir(path).map_err(fail)? {
                let e = e.map_err(fail)?;
                let name = e.file_name();
                let ep = e.path();
                if e.file_type().map_err(fail)?.is_dir() {
                    b.append_dir_all(&name, &ep).map_err(fail)?;
                } else {
                    b.append_path_with_name(&ep, &name).map_err(fail)?;
                }
            }
        } else {
            b.append_dir_all(top, path).map_err(fail)?;
        }
    } else {
        b.append_path_with_name(path, top).map_err(fail)?;
    }
    b.into_inner().map_err(fail)
}

/// The message of a write whose reader went away (the daemon answered before the end).
pub(super) const UPLOAD_ENDED: &str = "the upload ended before the archive did";

/// A `Write` for a blocking thread whose bytes an async reader ([`ChannelRead`]) takes.
pub(super) struct ChannelWrite {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

/// The async side of [`channel`]: the request body of an upload.
pub(super) struct ChannelRead {
    // In a mutex only to be `Sync` (the body wants it); polled through `get_mut`.
    rx: std::sync::Mutex<tokio::sync::mpsc::Receiver<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

const CHUNK: usize = 64 << 10;

/// A blocking writer and the async reader of its bytes.
pub(super) fn channel() -> (ChannelWrite, ChannelRead) {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    (
        ChannelWrite {
            tx,
            buf: Vec::with_capacity(CHUNK),
        },
        ChannelRead {
            rx: std::sync::Mutex::new(rx),
            cur: Vec::new(),
            pos: 0,
        },
    )
}

impl std::io::Write for ChannelWrite {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, UPLOAD_ENDED))
    }
}

impl tokio::io::AsyncRead for ChannelRead {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = &mut *self;
        while this.pos >= this.cur.len() {
            let rx = this.rx.get_mut().unwrap_or_else(|p| p.into_inner());
            match rx.poll_recv(cx) {
                Poll::Ready(Some(c)) => {
                    this.cur = c;
                    this.pos = 0;
                }
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = out.remaining().min(this.cur.len() - this.pos);
        out.put_slice(&this.cur[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// Counts the bytes written through it (the size `cp` reports).
pub(super) struct Counting<W> {
    pub inner: W,
    pub n: u64,
}

impl<W: std::io::Write> std::io::Write for Counting<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(b)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames() {
        assert_eq!(rename("etc/", "etc", "out").as_deref(), Some("out"));
        assert_eq!(
            rename("etc/passwd", "etc", "out").as_deref(),
            Some("out/passwd")
        );
        assert_eq!(rename("etcx/passwd", "etc", "out"), None);
        assert_eq!(rename("./", ".", ".").as_deref(), Some("."));
        assert_eq!(rename("./a", ".", "new").as_deref(), Some("new/a"));
        assert_eq!(
            rename("/bin/sh", "/", "root").as_deref(),
            Some("root/bin/sh")
        );
        assert_eq!(rename("hostname", "hostname", "h").as_deref(), Some("h"));
    }

    #[test]
    fn local_round_trip_renames_the_top_entry() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f"), b"data").unwrap();
        let t = local_tar(src.to_str().unwrap(), "copy", Vec::new()).unwrap();
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        extract_local(t.as_slice(), &out, "copy", "renamed").unwrap();
        assert_eq!(std::fs::read(out.join("renamed/sub/f")).unwrap(), b"data");
        // A file entry over an existing directory is refused.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "x/sub", &b"z"[..]).unwrap();
        let t = b.into_inner().unwrap();
        let e = extract_local(t.as_slice(), &out, "x", "renamed").unwrap_err();
        assert!(
            e.message.contains("cannot overwrite directory"),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn channel_streams_and_a_gone_reader_fails_the_writer() {
        use std::io::Write;
        use tokio::io::AsyncReadExt;
        let (mut w, mut r) = channel();
        let t = std::thread::spawn(move || {
            for i in 0..200_000u32 {
                w.write_all(&i.to_le_bytes()).unwrap();
            }
            w.flush().unwrap();
        });
        let mut all = Vec::new();
        r.read_to_end(&mut all).await.unwrap();
        t.join().unwrap();
        assert_eq!(all.len(), 800_000);
        assert_eq!(&all[799_996..], &199_999u32.to_le_bytes());
        // The reader gone (the daemon answered early): the writer gets an error, no signal.
        let (mut w, r) = channel();
        drop(r);
        let e = std::thread::spawn(move || {
            w.write_all(&vec![0u8; 1 << 20])
                .and_then(|_| w.flush())
                .unwrap_err()
        })
        .join()
        .unwrap();
        assert!(e.to_string().contains(UPLOAD_ENDED), "{e}");
    }
}
