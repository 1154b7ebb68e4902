//! /dev inside the container: the default device nodes (null, zero, full, random, urandom,
//! tty), the spec's `linux.devices`, /dev/ptmx → pts/ptmx and the /proc/self/fd symlinks.
//! In a user namespace mknod is refused, so the host's nodes are bind-mounted instead.

use std::fs;
use std::os::unix::fs::{symlink, DirBuilderExt};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::{makedev, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::error::{Context, Error, Result};
use crate::rootfs::{make_target, mnt, none, secure_join, RootfsPlan};

const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Create the default devices and `linux.devices` in the rootfs's /dev, then the ptmx and
/// /proc/self/fd symlinks.
pub(crate) fn create(plan: &RootfsPlan<'_>) -> Result<()> {
    let dev = secure_join(plan.rootfs, Path::new("/dev"));
    make_target(&dev, true).ctx(|| "mkdir /dev".into())?;
    for (name, major, minor) in DEFAULT_DEVICES {
        let path = dev.join(name);
        make_device(plan, &path, SFlag::S_IFCHR, major, minor, 0o666, None)
            .ctx(|| format!("create device /dev/{name}"))?;
    }
    let devices: &[LinuxDevice] = plan
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    for (i, d) in devices.iter().enumerate() {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::spec(
                    format!("linux.devices[{i}].type"),
                    "\"a\" is only valid in device cgroup rules",
                ))
            }
        };
        let path = secure_join(plan.rootfs, d.path());
        let mode = d.file_mode().unwrap_or(0o666);
        let owner = Some((d.uid().unwrap_or(0), d.gid().unwrap_or(0)));
        make_device(
            plan,
            &path,
            kind,
            d.major() as u64,
            d.minor() as u64,
            mode,
            owner,
        )
        .ctx(|| format!("linux.devices[{i}] ({})", d.path().display()))?;
    }
    // /dev/ptmx → the container's own devpts instance.
    let ptmx = dev.join("ptmx");
    let _ = fs::remove_file(&ptmx);
    symlink("pts/ptmx", &ptmx).ctx(|| "symlink /dev/ptmx".into())?;
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let p = dev.join(link);
        if fs::symlink_metadata(&p).is_err() {
            symlink(target, &p).ctx(|| format!("symlink /dev/{link}"))?;
        }
    }
    if Path::new("/proc/kcore").exists() && fs::symlink_metadata(dev.join("core")).is_err() {
        symlink("/proc/kcore", dev.join("core")).ctx(|| "symlink /dev/core".into())?;
    }
    Ok(())
}

fn make_device(
    plan: &RootfsPlan<'_>,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    let sys = plan.sys;
    if let Some(parent) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)?;
    }
    let _ = fs::remove_file(path);
    let made = if plan.userns {
        Err(nix::errno::Errno::EPERM)
    } else {
        sys.mknod(
            path,
            kind,
            Mode::from_bits_truncate(mode & 0o7777),
            makedev(major, minor),
        )
    };
    match made {
        Ok(()) => {
            // mknod honours the umask; set the exact mode asked for.
            nix::sys::stat::fchmodat(
                nix::fcntl::AT_FDCWD,
                path,
                Mode::from_bits_truncate(mode & 0o7777),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )?;
            if let Some((uid, gid)) = owner {
                nix::unistd::chown(
                    path,
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                )?;
            }
            Ok(())
        }
        // Why: mknod is refused in a user namespace; bind the host's node instead (runc does too).
        Err(nix::errno::Errno::EPERM) => {
            fs::File::create(path)?;
            let host = PathBuf::from(format!(
                "/dev/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ));
            mnt(sys, Some(&host), path, none(), MsFlags::MS_BIND, none())?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
