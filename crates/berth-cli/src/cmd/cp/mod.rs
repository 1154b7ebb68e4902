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

use std::io::Write;
use std::path::PathBuf;

use base64::Engine as _;
use berth_client::{Client, Query};

use crate::{CmdResult, Failure};

mod local;
use local::{extract_local, local_dest, local_source, local_tar, ChanReader, Counting};

// `berth cp`.
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
        let r = ChanReader::new(rx);
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
        // A missing path may still be created (its parent must exist); a missing container
        // is reported by the upload (a HEAD reply has no message to show).
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
        // The tar is written by a thread and streamed as the request body, never whole in
        // memory. A daemon that refuses early drops the body: the writes then fail (no
        // SIGPIPE, which the CLI leaves at its default) and the thread ends.
        let (w, r) = local::channel();
        let top = plan.rename_to.clone();
        let src_c = resolved.clone();
        let writer = std::thread::spawn(move || {
            let mut out = local_tar(&src_c, &top, Counting { inner: w, n: 0 })?;
            out.flush()
                .map_err(|e| Failure::new(1, format!("archiving {src_c}: {e}")))?;
            Ok::<u64, Failure>(out.n)
        });
        (plan.dir, Client::body_from_reader(r), Some(writer))
    };
    let sent = c
        .request(
            "PUT",
            &format!("/containers/{ctr}/archive{}", q(&dir)),
            body,
            Some("application/x-tar"),
        )
        .await;
    let size = match size {
        Some(w) => match w.join() {
            Ok(Ok(n)) => Some(n),
            // A local failure (an unreadable file) explains the daemon's "not a valid tar";
            // a write cut off by the daemon's answer does not.
            Ok(Err(e)) if !e.message.contains(local::UPLOAD_ENDED) => return Err(e),
            Ok(Err(_)) => None,
            Err(_) => return Err(Failure::new(1, "archiving the source failed")),
        },
        None => None,
    };
    sent?;
    if let (Some(n), false, true) = (size, a.quiet, stderr_is_tty()) {
        eprintln!(
            "Successfully copied {} to {ctr}:{dst}",
            crate::units::human_size(n as f64)
        );
    }
    Ok(0)
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
}
