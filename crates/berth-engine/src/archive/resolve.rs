//! Paths inside a container's root, resolved by the kernel with the root as `/`.
//!
//! Every lookup goes through `openat2(root, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`:
//! `..` stops at the root and an absolute symlink planted by the container (`evil -> /`)
//! resolves to the container's `/`, never the host's. Mount points inside the root (volumes,
//! binds) are crossed, as a process in the container would see them. Nothing here joins
//! host path strings.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// How every path of the container is resolved.
pub(crate) const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Docker's `PathStat` (the `X-Docker-Container-Path-Stat` header, base64 JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits (type in the high bits, as the docker CLI decodes them).
    pub mode: u32,
    /// RFC 3339 with nanoseconds.
    pub mtime: String,
    /// For a symlink: its target resolved inside the container (absolute), else empty.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    pub fn is_dir(&self) -> bool {
        self.mode & GO_MODE_DIR != 0
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & GO_MODE_SYMLINK != 0
    }
}

pub const GO_MODE_DIR: u32 = 1 << 31;
pub const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_DEVICE: u32 = 1 << 26;
const GO_MODE_NAMED_PIPE: u32 = 1 << 25;
const GO_MODE_SOCKET: u32 = 1 << 24;
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_CHAR_DEVICE: u32 = 1 << 21;
const GO_MODE_STICKY: u32 = 1 << 20;

/// `st_mode` → Go's `os.FileMode`.
pub fn go_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match FileType::from_raw_mode(st_mode) {
        FileType::Directory => GO_MODE_DIR,
        FileType::Symlink => GO_MODE_SYMLINK,
        FileType::BlockDevice => GO_MODE_DEVICE,
        FileType::CharacterDevice => GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
        FileType::Fifo => GO_MODE_NAMED_PIPE,
        FileType::Socket => GO_MODE_SOCKET,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        m |= GO_MODE_SETUID;
    }
    if st_mode & 0o2000 != 0 {
        m |= GO_MODE_SETGID;
    }
    if st_mode & 0o1000 != 0 {
        m |= GO_MODE_STICKY;
    }
    m
}

/// The path relative to the root for `openat2` (`.` for the root itself); keeps a trailing
/// `/` or `/.` (they make the kernel follow a final symlink, as Docker's stat does).
pub(crate) fn rel(path: &str) -> PathBuf {
    let t = path.trim_start_matches('/');
    if t.is_empty() {
        PathBuf::from(".")
    } else {
        PathBuf::from(t)
    }
}

/// Opens `path` inside `root`.
pub(crate) fn open(root: &impl AsFd, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    rustix::fs::openat2(root, path, flags | OFlags::CLOEXEC, Mode::empty(), IN_ROOT)
        .map_err(io::Error::from)
}

/// `lstat` of `path` inside `root` (a trailing `/` or `/.` follows a final symlink).
pub(crate) fn lstat(root: &impl AsFd, path: &str) -> io::Result<Stat> {
    let fd = open(root, &rel(path), OFlags::PATH | OFlags::NOFOLLOW)?;
    rustix::fs::fstat(&fd).map_err(io::Error::from)
}

/// Docker's name for a requested path: its base name, `.` for `dir/.`, `/` for the root.
pub fn base_name(path: &str) -> String {
    if path.ends_with("/.") || path == "." {
        return ".".into();
    }
    // filepath.Base(filepath.Join("/", path)): `..` resolved lexically, the root is `/`.
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            n => out.push(n),
        }
    }
    out.last()
        .map_or_else(|| "/".to_string(), |n| n.to_string())
}

/// Stat as Docker reports it (`HEAD /containers/{id}/archive`).
pub(crate) fn stat(root: &impl AsFd, path: &str) -> io::Result<PathStat> {
    let st = lstat(root, path)?;
    let mode = go_mode(st.st_mode);
    let link_target = if mode & GO_MODE_SYMLINK != 0 {
        follow_in_scope(root, path)?
    } else {
        String::new()
    };
    let mtime = chrono::DateTime::from_timestamp(st.st_mtime, st.st_mtime_nsec as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    Ok(PathStat {
        name: base_name(path),
        size: st.st_size,
        mode,
        mtime,
        link_target,
    })
}

/// Lexical path components, `..` kept (resolved against what precedes them at walk time).
fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn join(c: &[OsString]) -> PathBuf {
    if c.is_empty() {
        PathBuf::from(".")
    } else {
        c.iter().collect()
    }
}

/// Follows every symlink of `path` inside the root, as far as the path exists (moby's
/// `FollowSymlinkInScope`): the absolute container path a symlink finally names.
pub(crate) fn follow_in_scope(root: &impl AsFd, path: &str) -> io::Result<String> {
    let mut pending: std::collections::VecDeque<OsString> =
        components(Path::new(path)).into_iter().collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let dir = match open(
            root,
            &join(&resolved),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW,
        ) {
            Ok(d) => d,
            Err(_) => {
                // The rest does not exist: keep it lexically.
                resolved.push(c);
                continue;
            }
        };
        match rustix::fs::readlinkat(&dir, c.as_os_str(), Vec::new()) {
            Ok(target) => {
                links += 1;
                if links > 255 {
                    return Err(io::Error::from(Errno::LOOP));
                }
                let target = PathBuf::from(OsString::from_vec(target.into_bytes()));
                if target.is_absolute() {
                    resolved.clear();
                }
                for t in components(&target).into_iter().rev() {
                    pending.push_front(t);
                }
            }
            Err(_) => resolved.push(c),
        }
    }
    let mut out = String::from("/");
    out.push_str(&join(&resolved).to_string_lossy());
    if out == "/." {
        out = "/".into();
    }
    Ok(out)
}

/// The parent directory (opened inside the root) and the final name of `path`; `None` as
/// the name when the path names a directory itself (the root, `dir/`, `dir/.`).
pub(crate) fn parent_and_name(
    root: &impl AsFd,
    path: &str,
) -> io::Result<(OwnedFd, Option<OsString>)> {
    let trailing = path.ends_with('/') || path.ends_with("/.") || path == "." || path.is_empty();
    let comps = components(Path::new(path));
    if trailing || comps.is_empty() {
        let d = open(root, &rel(path), OFlags::RDONLY | OFlags::DIRECTORY)?;
        return Ok((d, None));
    }
    let (name, parent) = comps.split_last().expect("not empty");
    if name == OsStr::new("..") {
        let d = open(root, &rel(path), OFlags::RDONLY | OFlags::DIRECTORY)?;
        return Ok((d, None));
    }
    let d = open(root, &join(parent), OFlags::RDONLY | OFlags::DIRECTORY)?;
    Ok((d, Some(name.clone())))
}

/// `true` for the bytes of a name that is `.` or `..`.
pub(crate) fn is_dot(name: &OsStr) -> bool {
    matches!(name.as_bytes(), b"." | b"..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_modes() {
        assert_eq!(go_mode(0o040755), GO_MODE_DIR | 0o755);
        assert_eq!(go_mode(0o100644), 0o644);
        assert_eq!(go_mode(0o120777), GO_MODE_SYMLINK | 0o777);
        assert_eq!(go_mode(0o104755), GO_MODE_SETUID | 0o755);
        assert_eq!(
            go_mode(0o020620),
            GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE | 0o620
        );
    }

    #[test]
    fn base_names() {
        assert_eq!(base_name("/etc/hostname"), "hostname");
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("/etc/."), ".");
        assert_eq!(base_name("/"), "/");
        assert_eq!(base_name("etc"), "etc");
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("real/sub")).unwrap();
        std::fs::write(r.join("real/sub/f"), b"x").unwrap();
        std::os::unix::fs::symlink("/real", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../real/sub", r.join("real/up")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("host")).unwrap();
        let root = rustix::fs::open(r, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        assert_eq!(follow_in_scope(&root, "/abs/sub/f").unwrap(), "/real/sub/f");
        assert_eq!(follow_in_scope(&root, "/real/up").unwrap(), "/real/sub");
        assert_eq!(
            follow_in_scope(&root, "/abs/missing/x").unwrap(),
            "/real/missing/x"
        );
        // An absolute link to /etc names the container's /etc, which does not exist here.
        assert!(lstat(&root, "/host/passwd").is_err());
        let s = stat(&root, "/abs").unwrap();
        assert!(s.is_symlink());
        assert_eq!(s.link_target, "/real");
        assert_eq!(s.name, "abs");
        let s = stat(&root, "/abs/").unwrap();
        assert!(s.is_dir());
        assert_eq!(stat(&root, "/abs/sub/f").unwrap().size, 1);
        assert_eq!(stat(&root, "/../../").unwrap().name, "/");
    }
}
