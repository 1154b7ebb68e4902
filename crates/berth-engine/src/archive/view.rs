//! A private view of a container's filesystem: its rootfs plus its volumes and binds, in a
//! mount namespace of one thread (moby's `containerFSView`).
//!
//! The thread unshares its mount namespace (`CLONE_NEWNS`, which also unshares its
//! `fs_struct`), makes every mount a slave (nothing it mounts propagates back to the host),
//! mounts the container's overlay when it is not running (a running one's is already on
//! the bundle's `rootfs`), and bind-mounts the volumes at their destinations, resolved inside
//! the root (`openat2 RESOLVE_IN_ROOT`, then the mount goes onto `/proc/self/fd/N` of the
//! resolved directory: a symlink swapped in later cannot redirect it). Then the operation
//! runs on that thread. At the end the thread unmounts what it mounted, in reverse; and when
//! it exits, its namespace dies with every mount in it, so even a panic leaks nothing into
//! the host's mount table.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use tokio::sync::oneshot;

use super::resolve::{self, IN_ROOT};

/// What a view is made of.
#[derive(Debug, Clone)]
pub(crate) struct ViewPlan {
    /// The bundle's rootfs directory (the mount target).
    pub rootfs: PathBuf,
    /// The overlay to mount there (a container that is not running), else `None`.
    pub overlay: Option<berth_image::RootfsMount>,
    pub mounts: Vec<ViewMount>,
}

/// One bind into the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ViewMount {
    pub source: PathBuf,
    /// Absolute path in the container.
    pub destination: String,
    pub rw: bool,
}

/// The view, as the operation sees it.
pub(crate) struct View {
    /// The container's `/` (an `O_PATH` directory fd in the private namespace).
    pub root: OwnedFd,
    /// The same directory by path (valid on the view's thread only).
    pub rootfs: PathBuf,
}

/// Mounts made by the view, unmounted in reverse when dropped.
struct Mounted(Vec<PathBuf>);

impl Drop for Mounted {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            if rustix::mount::unmount(p, UnmountFlags::empty()).is_err() {
                let _ = rustix::mount::unmount(p, UnmountFlags::DETACH);
            }
        }
    }
}

fn ctx(what: String) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Runs `f` in the view on a thread of its own. `ready` resolves once the view is set up (or
/// failed to be); `done` with `f`'s result.
pub(crate) fn spawn<T, F>(
    plan: ViewPlan,
    f: F,
) -> (oneshot::Receiver<io::Result<()>>, oneshot::Receiver<T>)
where
    T: Send + 'static,
    F: FnOnce(&View) -> T + Send + 'static,
{
    let (ready_tx, ready_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("berth-fsview".into())
        .spawn(move || {
            let mut mounted = Mounted(Vec::new());
            let view = match setup(&plan, &mut mounted) {
                Ok(v) => v,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let out = f(&view);
            // The fds first: an open directory keeps its mount busy.
            drop(view);
            drop(mounted);
            let _ = done_tx.send(out);
        });
    if let Err(e) = spawned {
        // The closure (and its senders) is gone: report on a fresh channel.
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Err(e));
        let (_, done) = oneshot::channel();
        return (rx, done);
    }
    (ready_rx, done_rx)
}

fn setup(plan: &ViewPlan, mounted: &mut Mounted) -> io::Result<View> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_FS)
        .map_err(|e| io::Error::other(format!("unshare the mount namespace: {e}")))?;
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )
    .map_err(|e| ctx("make / a slave mount".into())(e.into()))?;
    if let Some(m) = &plan.overlay {
        std::fs::create_dir_all(&plan.rootfs)
            .map_err(ctx(format!("create {}", plan.rootfs.display())))?;
        berth_image::mount(m, &plan.rootfs).map_err(|e| io::Error::other(e.to_string()))?;
        mounted.0.push(plan.rootfs.clone());
    }
    let open_root = || {
        rustix::fs::open(
            &plan.rootfs,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ctx(format!("open {}", plan.rootfs.display()))(e.into()))
    };
    let root = open_root()?;
    let mut mounts = plan.mounts.clone();
    mounts.sort_by_key(|m| m.destination.split('/').filter(|c| !c.is_empty()).count());
    for m in &mounts {
        let Ok(md) = std::fs::metadata(&m.source) else {
            continue;
        };
        let target = ensure_target(&root, &m.destination, md.is_dir()).map_err(ctx(format!(
            "mount point {} in the container",
            m.destination
        )))?;
        let fdpath = format!("/proc/self/fd/{}", target.as_raw_fd());
        rustix::mount::mount_bind_recursive(&m.source, fdpath.as_str()).map_err(|e| {
            ctx(format!("bind {} on {}", m.source.display(), m.destination))(e.into())
        })?;
        let real = std::fs::read_link(&fdpath).map_err(ctx(format!("readlink {fdpath}")))?;
        mounted.0.push(real.clone());
        if !m.rw {
            rustix::mount::mount_remount(&real, MountFlags::BIND | MountFlags::RDONLY, "")
                .map_err(|e| ctx(format!("make {} read-only", m.destination))(e.into()))?;
        }
    }
    Ok(View {
        root,
        rootfs: plan.rootfs.clone(),
    })
}

/// The mount point `dest` inside the root, created (directories 0755, or an empty file) when
/// missing, as the runtime would at start; returns it opened `O_PATH`.
fn ensure_target(root: &OwnedFd, dest: &str, dir: bool) -> io::Result<OwnedFd> {
    let rel = resolve::rel(dest);
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    match resolve::open(root, &rel, flags) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {}
        Err(e) => return Err(e),
    }
    let comps: Vec<&std::ffi::OsStr> = rel.iter().collect();
    let mut parent = resolve::open(root, Path::new("."), flags | OFlags::DIRECTORY)?;
    for (i, c) in comps.iter().enumerate() {
        let prefix: PathBuf = comps[..=i].iter().collect();
        let last = i + 1 == comps.len();
        match resolve::open(root, &prefix, flags) {
            Ok(fd) => {
                parent = fd;
                continue;
            }
            Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {}
            Err(e) => return Err(e),
        }
        if last && !dir {
            match rustix::fs::openat(
                &parent,
                *c,
                OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            ) {
                Ok(_) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
        } else {
            match rustix::fs::mkdirat(&parent, *c, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        parent = rustix::fs::openat2(root, &prefix, flags, Mode::empty(), IN_ROOT)?;
    }
    Ok(parent)
}
