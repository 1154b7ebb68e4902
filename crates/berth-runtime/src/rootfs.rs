//! Building the container's filesystem view, inside the init's new mount namespace, in the
//! order runc established: root propagation → bind the rootfs onto itself → the spec's mounts
//! in order → /dev devices, ptmx and symlinks ([`crate::devices`]) → pivot_root →
//! (hostname, sysctls) → read-only and masked paths → read-only rootfs.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{symlink, DirBuilderExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::{umount2, MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{Mount, Spec};

use crate::error::{Context, Error, Result};
use crate::mount_opts::{self, MountOpts};

/// A cgroup hierarchy to show inside the container at `/sys/fs/cgroup/<name>`.
#[derive(Debug, Clone)]
pub(crate) struct CgroupMount {
    /// Directory name under the cgroup mount, e.g. `memory`, `cpu`, `systemd`, or empty for v2.
    pub name: String,
    /// `cgroup` or `cgroup2`.
    pub fstype: &'static str,
    /// Mount data, e.g. `memory` or `none,name=systemd`.
    pub data: String,
    /// The container's directory in this hierarchy on the host (bind source without cgroupns).
    pub host_dir: PathBuf,
    /// Names of co-mounted controllers that get a symlink (`cpu` → `cpu,cpuacct`).
    pub aliases: Vec<String>,
}

pub(crate) struct RootfsPlan<'a> {
    /// The mount/mknod calls go through here (the kernel, or a recorder in unit tests).
    pub sys: &'a dyn Sys,
    /// Called once before anything that needs the init to be in its cgroups (a cgroup
    /// mount): the parent attaches the init while the init already mounts (the attach can
    /// wait for an RCU grace period, milliseconds on a busy host).
    pub cgroups_joined: std::cell::RefCell<&'a mut dyn FnMut() -> Result<()>>,
    pub rootfs: &'a Path,
    pub spec: &'a Spec,
    pub cgroups: &'a [CgroupMount],
    pub cgroupns: bool,
    pub userns: bool,
}

/// The syscall seam: the calls that change the mount table or create device nodes, so the
/// order of a container's filesystem setup can be unit-tested with a recording fake while
/// the root tier exercises the real kernel.
pub(crate) trait Sys {
    fn mount(
        &self,
        src: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()>;
    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: u64) -> nix::Result<()>;
}

/// The real kernel.
pub(crate) struct Kernel;

impl Sys for Kernel {
    fn mount(
        &self,
        src: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        nix::mount::mount(src, target, fstype, flags, data)
    }

    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: u64) -> nix::Result<()> {
        nix::sys::stat::mknod(path, kind, perm, dev)
    }
}

pub(crate) fn mnt<S: AsRef<Path> + ?Sized, T: AsRef<Path> + ?Sized>(
    sys: &dyn Sys,
    src: Option<&S>,
    target: &T,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    sys.mount(
        src.map(|s| s.as_ref()),
        target.as_ref(),
        fstype,
        flags,
        data,
    )
}

pub(crate) fn none() -> Option<&'static str> {
    None
}

/// Resolve `unsafe_path` inside `root` following symlinks as if `root` were `/`, so a
/// malicious symlink in an image cannot make us mount over the host (like filepath-securejoin).
pub(crate) fn secure_join(root: &Path, unsafe_path: &Path) -> PathBuf {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<std::ffi::OsString> = unsafe_path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut follows = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&c);
        let full = root.join(&candidate);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.file_type().is_symlink() && follows < 255 => {
                follows += 1;
                let target = fs::read_link(&full).unwrap_or_default();
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for comp in target.components().rev() {
                    match comp {
                        Component::Normal(s) => pending.push(s.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved = candidate,
        }
    }
    root.join(resolved)
}

/// Everything before pivot_root.
pub(crate) fn prepare(plan: &RootfsPlan<'_>) -> Result<()> {
    let sys = plan.sys;
    let linux = plan.spec.linux().as_ref();
    let prop = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty());
    let prop_flags = match prop {
        Some(p) => mount_opts::propagation(p).ok_or_else(|| {
            Error::spec(
                "linux.rootfsPropagation",
                format!("{p:?} is not one of private, rprivate, shared, rshared, slave, rslave, unbindable"),
            )
        })?,
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    // Why: our mounts must not propagate back to the host (and the host's may reach us
    // only as a slave). A shared rootfs would also make pivot_root fail, so it is applied
    // after the pivot.
    let first = if prop_flags.contains(MsFlags::MS_SHARED) {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    } else {
        prop_flags
    };
    mnt(sys, none(), "/", none(), first, none()).ctx(|| "make / a slave mount".into())?;
    // pivot_root needs the new root to be a mount point.
    mnt(
        sys,
        Some(plan.rootfs),
        plan.rootfs,
        none(),
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none(),
    )
    .ctx(|| format!("bind mount rootfs {}", plan.rootfs.display()))?;

    let mounts = plan.spec.mounts().as_deref().unwrap_or(&[]);
    let mut dev_is_bind = false;
    for (i, m) in mounts.iter().enumerate() {
        let opts = mount_opts::parse(m.options().as_deref().unwrap_or(&[]));
        if m.destination() == Path::new("/dev") && opts.bind {
            dev_is_bind = true;
        }
        mount_one(plan, i, m, &opts)?;
    }
    if !dev_is_bind {
        crate::devices::create(plan)?;
    }
    Ok(())
}

fn mount_one(plan: &RootfsPlan<'_>, i: usize, m: &Mount, o: &MountOpts) -> Result<()> {
    let sys = plan.sys;
    let dest = secure_join(plan.rootfs, m.destination());
    let typ = m.typ().as_deref().unwrap_or("none");
    let field = || format!("mounts[{i}] ({typ} on {})", m.destination().display());
    if typ == "cgroup" || typ == "cgroup2" {
        (plan.cgroups_joined.borrow_mut())()?;
        return mount_cgroups(plan, &dest, o).map_err(|e| Error::Init(format!("{}: {e}", field())));
    }
    let bind = o.bind || typ == "bind";
    if bind {
        let src = m.source().clone().unwrap_or_default();
        let is_dir = fs::metadata(&src).map(|m| m.is_dir()).unwrap_or(true);
        make_target(&dest, is_dir).ctx(field)?;
        let mut flags = MsFlags::MS_BIND;
        if o.recursive {
            flags |= MsFlags::MS_REC;
        }
        mnt(sys, Some(&src), &dest, none(), flags, none()).ctx(field)?;
        let extra = o.flags
            & !(MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_SILENT);
        if !extra.is_empty() {
            remount_bind(sys, &dest, extra).ctx(field)?;
        }
    } else {
        make_target(&dest, true).ctx(field)?;
        let src = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
        let data = (!o.data.is_empty()).then_some(o.data.as_str());
        let r = mnt(sys, Some(&src), &dest, Some(typ), o.flags, data);
        match r {
            Ok(()) => {}
            // Why: sysfs can only be mounted by the owner of the network namespace; without a
            // new netns (or in a user namespace) fall back to binding the host's /sys, as runc does.
            Err(nix::errno::Errno::EPERM) if typ == "sysfs" => {
                mnt(
                    sys,
                    Some("/sys"),
                    &dest,
                    none(),
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    none(),
                )
                .ctx(field)?;
                remount_bind(sys, &dest, o.flags | MsFlags::MS_RDONLY).ctx(field)?;
            }
            Err(nix::errno::Errno::EPERM) if typ == "mqueue" => {
                mnt(
                    sys,
                    Some("/dev/mqueue"),
                    &dest,
                    none(),
                    MsFlags::MS_BIND,
                    none(),
                )
                .ctx(field)?;
            }
            Err(e) => return Err(Error::io(field(), e)),
        }
    }
    for p in &o.propagation {
        mnt(sys, none(), &dest, none(), *p, none()).ctx(field)?;
    }
    Ok(())
}

/// Change the flags of a bind mount, keeping the flags the kernel locks (nosuid, nodev,
/// noexec inherited from the source) or remount fails with EPERM.
fn remount_bind(sys: &dyn Sys, dest: &Path, flags: MsFlags) -> nix::Result<()> {
    let mut keep = MsFlags::empty();
    if let Ok(st) = nix::sys::statvfs::statvfs(dest) {
        use nix::sys::statvfs::FsFlags;
        let f = st.flags();
        for (s, m) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        ] {
            if f.contains(s) {
                keep |= m;
            }
        }
    }
    mnt(
        sys,
        none(),
        dest,
        none(),
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | keep,
        none(),
    )
}

pub(crate) fn make_target(dest: &Path, dir: bool) -> std::io::Result<()> {
    if dir {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dest)
    } else {
        if let Some(p) = dest.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(p)?;
        }
        if !dest.exists() {
            fs::File::create(dest)?;
        }
        Ok(())
    }
}

/// `type: cgroup`: a tmpfs with one mount per hierarchy (v1), or the cgroup2 filesystem.
/// With a cgroup namespace the kernel shows the container's cgroup as the root; without one
/// the container's host directories are bound in.
fn mount_cgroups(plan: &RootfsPlan<'_>, dest: &Path, o: &MountOpts) -> Result<()> {
    let sys = plan.sys;
    make_target(dest, true).ctx(|| "mkdir".into())?;
    let base = (o.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)
        & !(MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC);
    let ro = o.flags.contains(MsFlags::MS_RDONLY);
    let v2_only = plan.cgroups.len() == 1 && plan.cgroups[0].fstype == "cgroup2";
    if v2_only {
        let c = &plan.cgroups[0];
        let flags = base
            | if ro {
                MsFlags::MS_RDONLY
            } else {
                MsFlags::empty()
            };
        if plan.cgroupns {
            mnt(sys, Some("cgroup2"), dest, Some("cgroup2"), flags, none())
                .ctx(|| "cgroup2".into())?;
        } else {
            mnt(
                sys,
                Some(&c.host_dir),
                dest,
                none(),
                MsFlags::MS_BIND,
                none(),
            )
            .ctx(|| "bind cgroup".into())?;
            remount_bind(sys, dest, flags).ctx(|| "remount cgroup".into())?;
        }
        return Ok(());
    }
    mnt(
        sys,
        Some("tmpfs"),
        dest,
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )
    .ctx(|| "tmpfs for cgroups".into())?;
    for c in plan.cgroups {
        let sub = dest.join(&c.name);
        make_target(&sub, true).ctx(|| format!("mkdir {}", sub.display()))?;
        let flags = base
            | if ro {
                MsFlags::MS_RDONLY
            } else {
                MsFlags::empty()
            };
        if plan.cgroupns {
            mnt(
                sys,
                Some("cgroup"),
                &sub,
                Some(c.fstype),
                flags,
                Some(c.data.as_str()),
            )
            .ctx(|| format!("mount cgroup {}", c.data))?;
        } else {
            mnt(
                sys,
                Some(&c.host_dir),
                &sub,
                none(),
                MsFlags::MS_BIND,
                none(),
            )
            .ctx(|| format!("bind {}", c.host_dir.display()))?;
            remount_bind(sys, &sub, flags).ctx(|| format!("remount {}", sub.display()))?;
        }
        for a in &c.aliases {
            let _ = symlink(&c.name, dest.join(a));
        }
    }
    if ro {
        mnt(
            sys,
            none(),
            dest,
            none(),
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base,
            Some("mode=755"),
        )
        .ctx(|| "remount cgroup tmpfs read-only".into())?;
    }
    Ok(())
}

/// Make `rootfs` the root (`pivot_root(".", ".")`, then lazily detach the old root).
pub(crate) fn pivot(sys: &dyn Sys, rootfs: &Path) -> Result<()> {
    let old = open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /".into())?;
    let new = open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", rootfs.display()))?;
    nix::unistd::fchdir(new.as_fd()).ctx(|| "chdir rootfs".into())?;
    nix::unistd::pivot_root(".", ".").ctx(|| "pivot_root".into())?;
    nix::unistd::fchdir(old.as_fd()).ctx(|| "chdir old root".into())?;
    // The old root is stacked under the new one; make it a slave so the detach does not
    // propagate to the host, then detach it.
    mnt(
        sys,
        none(),
        ".",
        none(),
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        none(),
    )
    .ctx(|| "make old root a slave".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach old root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())?;
    Ok(())
}

/// After pivot_root: masked paths, read-only paths, rootfs propagation and read-only rootfs.
pub(crate) fn finish(sys: &dyn Sys, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or(&[])
    {
        readonly_path(sys, p).ctx(|| format!("linux.readonlyPaths: {p}"))?;
    }
    for p in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or(&[])
    {
        mask_path(sys, p).ctx(|| format!("linux.maskedPaths: {p}"))?;
    }
    if let Some(p) = linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        if let Some(f) = mount_opts::propagation(p) {
            if f.contains(MsFlags::MS_SHARED) {
                mnt(sys, none(), "/", none(), f, none())
                    .ctx(|| "linux.rootfsPropagation".into())?;
            }
        }
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        remount_bind(sys, Path::new("/"), MsFlags::MS_RDONLY).ctx(|| "root.readonly".into())?;
    }
    Ok(())
}

fn readonly_path(sys: &dyn Sys, p: &str) -> std::io::Result<()> {
    match mnt(
        sys,
        Some(p),
        p,
        none(),
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none(),
    ) {
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        r => r?,
    }
    remount_bind(sys, Path::new(p), MsFlags::MS_RDONLY | MsFlags::MS_REC)?;
    Ok(())
}

fn mask_path(sys: &dyn Sys, p: &str) -> std::io::Result<()> {
    let meta = match fs::metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        r => r?,
    };
    if meta.is_dir() {
        mnt(
            sys,
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            none(),
        )?;
    } else {
        match mnt(sys, Some("/dev/null"), p, none(), MsFlags::MS_BIND, none()) {
            Err(nix::errno::Errno::ENOENT) => {}
            r => r?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records mount and mknod calls; mknod leaves an empty file so chmod still works.
    #[derive(Default)]
    struct Recorder(std::cell::RefCell<Vec<String>>);

    impl Sys for Recorder {
        fn mount(
            &self,
            src: Option<&Path>,
            target: &Path,
            fstype: Option<&str>,
            flags: MsFlags,
            _data: Option<&str>,
        ) -> nix::Result<()> {
            let src = src.map(|p| p.display().to_string()).unwrap_or_default();
            let bind = if flags.contains(MsFlags::MS_BIND) {
                " bind"
            } else {
                ""
            };
            let ro = if flags.contains(MsFlags::MS_RDONLY) {
                " ro"
            } else {
                ""
            };
            let remount = if flags.contains(MsFlags::MS_REMOUNT) {
                " remount"
            } else {
                ""
            };
            self.0.borrow_mut().push(format!(
                "mount {src} {} {}{bind}{ro}{remount}",
                target.display(),
                fstype.unwrap_or("-")
            ));
            Ok(())
        }

        fn mknod(&self, path: &Path, _kind: SFlag, _perm: Mode, _dev: u64) -> nix::Result<()> {
            self.0
                .borrow_mut()
                .push(format!("mknod {}", path.display()));
            fs::File::create(path).map_err(|_| nix::errno::Errno::EIO)?;
            Ok(())
        }
    }

    #[test]
    fn prepare_follows_runcs_order_without_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("rootfs");
        fs::create_dir_all(&root).unwrap();
        let spec: Spec = serde_json::from_str(&crate::cli::default_spec()).unwrap();
        let rec = Recorder::default();
        let mut joined = 0;
        let mut join = || -> Result<()> {
            joined += 1;
            Ok(())
        };
        {
            let plan = RootfsPlan {
                sys: &rec,
                cgroups_joined: std::cell::RefCell::new(&mut join),
                rootfs: &root,
                spec: &spec,
                cgroups: &[],
                cgroupns: false,
                userns: false,
            };
            prepare(&plan).unwrap();
        }
        assert_eq!(joined, 1, "cgroups joined once, before the cgroup mount");
        let calls = rec.0.into_inner();
        let r = root.display().to_string();
        let want_prefix = [
            "mount  / -".to_string(),
            format!("mount {r} {r} - bind"),
            format!("mount proc {r}/proc proc"),
            format!("mount tmpfs {r}/dev tmpfs"),
            format!("mount devpts {r}/dev/pts devpts"),
            format!("mount shm {r}/dev/shm tmpfs"),
            format!("mount mqueue {r}/dev/mqueue mqueue"),
            format!("mount sysfs {r}/sys sysfs ro"),
            format!("mount tmpfs {r}/sys/fs/cgroup tmpfs"),
            format!("mount  {r}/sys/fs/cgroup - ro remount"),
            format!("mknod {r}/dev/null"),
        ];
        for (i, w) in want_prefix.iter().enumerate() {
            assert!(
                calls[i].contains(w.as_str()),
                "call {i}: {:?} lacks {w:?}\n{calls:#?}",
                calls[i]
            );
        }
        assert_eq!(calls.iter().filter(|c| c.starts_with("mknod")).count(), 6);
        assert_eq!(
            fs::read_link(root.join("dev/ptmx")).unwrap(),
            Path::new("pts/ptmx")
        );
        assert_eq!(
            fs::read_link(root.join("dev/fd")).unwrap(),
            Path::new("/proc/self/fd")
        );
    }

    #[test]
    fn secure_join_keeps_symlinks_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        symlink("/etc", root.join("a/evil")).unwrap();
        symlink("../../../../..", root.join("a/up")).unwrap();
        assert_eq!(
            secure_join(root, Path::new("/a/evil/x")),
            root.join("etc/x")
        );
        assert_eq!(secure_join(root, Path::new("/a/up/tmp")), root.join("tmp"));
        assert_eq!(secure_join(root, Path::new("/../../x")), root.join("x"));
        assert_eq!(secure_join(root, Path::new("/a/b/c")), root.join("a/b/c"));
    }
}
