//! `berth cp`: files between a container and the local filesystem, with Docker's path rules.
//!
//! `CONTAINER:SRC DEST` asks the daemon for a tar of SRC (`GET /containers/{id}/archive`)
//! and extracts it at DEST; `SRC CONTAINER:DEST` stats DEST (`HEAD`), makes a tar of SRC
//! named for where it must land, and uploads it into the directory it lands in (`PUT`).
//! `-` on either side is a tar stream on stdin/stdout.
//!
//! Where a copy lands (moby's `PrepareArchiveCopy`), for `cp SRC DST`:
//! - DST is an existing directory: into it, as `DST/base(SRC)` (`SRC/.`: the content of
//!   SRC directly into DST);
//! - DST is an existing file: SRC must be a file, which replaces it;
//! - DST does not exist: SRC is copied *as* DST (its parent must exist); a DST ending in
//!   `/` asserts a directory, so a file SRC is an error there.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use berth_client::{Client, Query};

use crate::{CmdResult, Failure};

/// `berth cp`.
#[derive(Debug, clap::Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long = "archive")]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH|-
    pub src: String,
    /// DEST_PATH|- or CONTAINER:DEST_PATH
    pub dest: String,
}

/// The stat the daemon sends in `X-Docker-Container-Path-Stat`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct PathStat {
    #[serde(default)]
    mode: u32,
    #[serde(default, rename = "linkTarget")]
    link_target: String,
}

const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
/// Go's `ModeType` without the directory bit: anything but a regular file or a directory.
const GO_MODE_IRREGULAR: u32 =
    (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19);

/// `CONTAINER:PATH` → (container, path); a local path otherwise (absolute, `./x:y`, no `:`).
pub fn split_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') && !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

/// Splits a path into its directory and the entry in it (moby's `SplitPathDirEntry`):
/// `/a/b/` → (`/a`, `b`), `/a/b/.` → (`/a/b`, `.`), `/` → (`/`, `/`).
pub fn split_dir_entry(path: &str) -> (String, String) {
    let dot = path.ends_with("/.") || path == ".";
    let cleaned = clean(path);
    let cleaned = if dot && cleaned != "/" && cleaned != "." {
        format!("{cleaned}/.")
    } else if dot {
        format!("{}/.", cleaned.trim_end_matches('/'))
    } else {
        cleaned
    };
    if cleaned == "/" {
        return ("/".into(), "/".into());
    }
    match cleaned.rsplit_once('/') {
        Some(("", b)) => ("/".into(), b.into()),
        Some((d, b)) => (d.into(), b.into()),
        None => (".".into(), cleaned),
    }
}

/// Lexical cleaning (Go's `filepath.Clean`).
fn clean(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..");
                }
            }
            n => out.push(n),
        }
    }
    let j = out.join("/");
    match (abs, j.is_empty()) {
        (true, _) => format!("/{j}"),
        (false, true) => ".".into(),
        (false, false) => j,
    }
}

fn asserts_dir(p: &str) -> bool {
    p.ends_with('/') || p.ends_with("/.") || p == "."
}

/// What the copy does at the destination: extract into `dir`, the tar's top entry renamed
/// from `from` to `to` (when they differ).
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub dir: String,
    pub rename_to: String,
}

/// moby's `PrepareArchiveCopy`: where to extract and under which name.
pub fn prepare(
    src_path: &str,
    src_is_dir: bool,
    rebase: Option<&str>,
    dst_path: &str,
    dst_exists: bool,
    dst_is_dir: bool,
) -> Result<Plan, Failure> {
    let (dst_dir, dst_base) = split_dir_entry(dst_path);
    let (_, src_base) = split_dir_entry(src_path);
    let src_base = rebase.map(str::to_string).unwrap_or(src_base);
    if dst_exists && dst_is_dir {
        return Ok(Plan {
            dir: dst_path.to_string(),
            rename_to: src_base,
        });
    }
    if dst_exists && src_is_dir {
        return Err(Failure::new(1, "cannot copy directory"));
    }
    if !dst_exists && !src_is_dir && asserts_dir(dst_path) {
        return Err(Failure::new(1, "no such directory"));
    }
    Ok(Plan {
        dir: dst_dir,
        rename_to: dst_base,
    })
}

/// The absolute local path (moby's `resolveLocalPath`), keeping a trailing `/` or `/.`.
fn local_abs(p: &str) -> Result<String, Failure> {
    let base = if p.starts_with('/') {
        PathBuf::new()
    } else {
        std::env::current_dir().map_err(|e| Failure::new(1, e.to_string()))?
    };
    let mut abs = clean(&base.join(p).to_string_lossy());
    if p.ends_with("/.") || p == "." {
        abs.push_str("/.");
    } else if p.ends_with('/') && abs != "/" {
        abs.push('/');
    }
    Ok(abs)
}

/// `GetRebaseName`: the trailing `/` or `/.` of `path` carried to `resolved`, and the
/// name the entry must keep when the link's target has another base name.
fn rebase_name(path: &str, resolved: &str) -> (String, Option<String>) {
    let mut resolved = resolved.to_string();
    if path.ends_with("/.") && !resolved.ends_with("/.") {
        resolved.push_str("/.");
    } else if path.ends_with('/') && !resolved.ends_with('/') {
        resolved.push('/');
    }
    let (_, pb) = split_dir_entry(path);
    let (_, rb) = split_dir_entry(&resolved);
    let rebase = (pb != rb).then_some(pb);
    (resolved, rebase)
}

async fn stat(c: &Client, ctr: &str, path: &str) -> Result<PathStat, berth_client::ClientError> {
    let q = Query::new().add("path", path).encode();
    let (h, _) = c
        .request(
            "HEAD",
            &format!("/containers/{ctr}/archive{q}"),
            Client::empty_body(),
            None,
        )
        .await?;
    Ok(decode_stat(&h))
}

fn decode_stat(h: &[(String, String)]) -> PathStat {
    h.iter()
        .find(|(k, _)| k == "x-docker-container-path-stat")
        .and_then(|(_, v)| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub async fn cp(c: &Client, a: CpArgs) -> CmdResult {
    match (split_arg(&a.src), split_arg(&a.dest)) {
        ((Some(_), _), (Some(_), _)) => Err(Failure::new(
            1,
            "copying between containers is not supported",
        )),
        ((None, _), (None, _)) => Err(Failure::new(
            1,
            "must specify at least one container source",
        )),
        ((Some(ctr), src), (None, dst)) => from_container(c, &a, ctr, src, dst).await,
        ((None, src), (Some(ctr), dst)) => to_container(c, &a, src, ctr, dst).await,
    }
}

fn empty_path(ctr_side: bool) -> Failure {
    let _ = ctr_side;
    Failure::new(1, "filepath can not be empty")
}

async fn from_container(c: &Client, a: &CpArgs, ctr: &str, src: &str, dst: &str) -> CmdResult {
    if src.is_empty() || dst.is_empty() {
        return Err(empty_path(true));
    }
    let mut src_path = src.to_string();
    let mut rebase = None;
    if a.follow_link {
        if let Ok(st) = stat(c, ctr, src).await {
            if st.mode & GO_MODE_SYMLINK != 0 {
                let mut target = st.link_target.clone();
                if !target.starts_with('/') {
                    let (parent, _) = split_dir_entry(src);
                    target = clean(&format!("{parent}/{target}"));
                }
                let (t, r) = rebase_name(src, &target);
                src_path = t;
                rebase = r;
            }
        }
    }
    let q = Query::new().add("path", &src_path).encode();
    let (h, mut body) = c
        .request(
            "GET",
            &format!("/containers/{ctr}/archive{q}"),
            Client::empty_body(),
            None,
        )
        .await?;
    let st = decode_stat(&h);
    if dst == "-" {
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = body.chunk().await? {
            out.write_all(&chunk)
                .map_err(|e| Failure::new(1, e.to_string()))?;
        }
        out.flush().map_err(|e| Failure::new(1, e.to_string()))?;
        return Ok(0);
    }
    let dst_abs = local_abs(dst)?;
    // The destination as it is locally, symlinks followed (`CopyInfoDestinationPath`).
    let (dst_real, exists, is_dir) = local_dest(&dst_abs)?;
    let plan = prepare(
        &src_path,
        st.mode & GO_MODE_DIR != 0,
        rebase.as_deref(),
        &dst_real,
        exists,
        is_dir,
    )?;
    let (_, top) = split_dir_entry(&src_path);
    // Pipe the body into a blocking extractor.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
    let dir = PathBuf::from(&plan.dir);
    let from = top.clone();
    let to = plan.rename_to.clone();
    let worker = std::thread::spawn(move || {
        let r = ChanReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        };
        extract_local(r, &dir, &from, &to)
    });
    let mut total = 0usize;
    while let Some(chunk) = body.chunk().await? {
        total += chunk.len();
        if tx.send(chunk.to_vec()).is_err() {
            break;
        }
    }
    drop(tx);
    worker
        .join()
        .map_err(|_| Failure::new(1, "the extraction failed"))??;
    if !a.quiet && stderr_is_tty() {
        eprintln!(
            "Successfully copied {} to {dst}",
            crate::units::human_size(total as f64)
        );
    }
    Ok(0)
}

fn stderr_is_tty() -> bool {
    rustix::termios::isatty(std::io::stderr())
}

/// Resolves the local destination through symlinks (up to 10): (path, exists, is_dir).
fn local_dest(p: &str) -> Result<(String, bool, bool), Failure> {
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

struct ChanReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
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
fn extract_local(input: impl Read, dir: &Path, from: &str, to: &str) -> Result<(), Failure> {
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

async fn to_container(c: &Client, a: &CpArgs, src: &str, ctr: &str, dst: &str) -> CmdResult {
    if src.is_empty() || dst.is_empty() {
        return Err(empty_path(false));
    }
    let mut dst_path = dst.to_string();
    let mut st = stat(c, ctr, dst).await;
    if let Ok(s) = &st {
        if s.mode & GO_MODE_SYMLINK != 0 {
            let mut target = s.link_target.clone();
            if !target.starts_with('/') {
                let (parent, _) = split_dir_entry(dst);
                target = clean(&format!("{parent}/{target}"));
            }
            dst_path = target.clone();
            st = stat(c, ctr, &target).await;
        }
    }
    let (exists, is_dir) = match &st {
        Ok(s) => {
            if s.mode & GO_MODE_IRREGULAR != 0 {
                return Err(Failure::new(
                    1,
                    format!("destination \"{ctr}:{dst}\" must be a directory or a regular file"),
                ));
            }
            (true, s.mode & GO_MODE_DIR != 0)
        }
        // A missing container is an error now; a missing path may still be created.
        Err(e) if e.status() == Some(404) && e.message().starts_with("No such container") => {
            return Err(Failure::from(stat(c, ctr, dst).await.err().unwrap_or_else(
                || berth_client::ClientError::Http("stat failed".into()),
            )))
        }
        Err(_) => (false, false),
    };
    let q = |dir: &str| {
        Query::new()
            .add("path", dir)
            .add("noOverwriteDirNonDir", "true")
            .flag("copyUIDGID", a.archive)
            .encode()
    };
    let (dir, body, size) = if src == "-" {
        if !is_dir {
            return Err(Failure::new(
                1,
                format!("destination \"{ctr}:{dst}\" must be a directory"),
            ));
        }
        (
            dst_path.clone(),
            Client::body_from_reader(tokio::io::stdin()),
            None,
        )
    } else {
        let src_abs = local_abs(src)?;
        let (resolved, rebase) = local_source(&src_abs, a.follow_link)?;
        let md = std::fs::symlink_metadata(resolved.trim_end_matches("/."))
            .map_err(|e| Failure::new(1, format!("lstat {src_abs}: {e}")))?;
        let plan = prepare(
            &resolved,
            md.is_dir(),
            rebase.as_deref(),
            &dst_path,
            exists,
            is_dir,
        )?;
        let tarball = local_tar(&resolved, &plan.rename_to)?;
        let n = tarball.len();
        let body = Client::body_from_reader(std::io::Cursor::new(tarball));
        (plan.dir, body, Some(n))
    };
    c.request(
        "PUT",
        &format!("/containers/{ctr}/archive{}", q(&dir)),
        body,
        Some("application/x-tar"),
    )
    .await?;
    if let (Some(n), false, true) = (size, a.quiet, stderr_is_tty()) {
        eprintln!(
            "Successfully copied {} to {ctr}:{dst}",
            crate::units::human_size(n as f64)
        );
    }
    Ok(0)
}

/// `ResolveHostSourcePath`: with `-L` the path with every symlink followed; without, only
/// the parent's (the source itself is copied as the symlink it is).
fn local_source(p: &str, follow: bool) -> Result<(String, Option<String>), Failure> {
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

/// A tar of the local `src`, its top entry named `top` (`.`: the content only).
fn local_tar(src: &str, top: &str) -> Result<Vec<u8>, Failure> {
    let fail = |e: std::io::Error| Failure::new(1, format!("archiving {src}: {e}"));
    let path = Path::new(src.trim_end_matches("/."));
    let mut b = tar::Builder::new(Vec::new());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_split_like_docker() {
        assert_eq!(split_arg("web:/etc/hosts"), (Some("web"), "/etc/hosts"));
        assert_eq!(split_arg("/tmp/a:b"), (None, "/tmp/a:b"));
        assert_eq!(split_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_arg("file.txt"), (None, "file.txt"));
        assert_eq!(split_arg("-"), (None, "-"));
    }

    #[test]
    fn dir_entries() {
        assert_eq!(split_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(split_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_dir_entry("/a"), ("/".into(), "a".into()));
        assert_eq!(split_dir_entry("/"), ("/".into(), "/".into()));
        assert_eq!(split_dir_entry("x"), (".".into(), "x".into()));
    }

    #[test]
    fn where_copies_land() {
        // into an existing directory, under the source's name
        let p = prepare("/etc", true, None, "/tmp/out", true, true).unwrap();
        assert_eq!(
            p,
            Plan {
                dir: "/tmp/out".into(),
                rename_to: "etc".into()
            }
        );
        // `dir/.`: the content only
        let p = prepare("/etc/.", true, None, "/tmp/out", true, true).unwrap();
        assert_eq!(p.rename_to, ".");
        // a missing destination: the copy takes its name
        let p = prepare("/etc", true, None, "/tmp/new", false, false).unwrap();
        assert_eq!(
            p,
            Plan {
                dir: "/tmp".into(),
                rename_to: "new".into()
            }
        );
        // a file over a file
        let p = prepare("/etc/hostname", false, None, "/tmp/h", true, false).unwrap();
        assert_eq!(
            p,
            Plan {
                dir: "/tmp".into(),
                rename_to: "h".into()
            }
        );
        assert_eq!(
            prepare("/etc", true, None, "/tmp/h", true, false)
                .unwrap_err()
                .message,
            "cannot copy directory"
        );
        assert_eq!(
            prepare("/etc/hostname", false, None, "/tmp/nodir/", false, false)
                .unwrap_err()
                .message,
            "no such directory"
        );
    }

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
        let t = local_tar(src.to_str().unwrap(), "copy").unwrap();
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
}
