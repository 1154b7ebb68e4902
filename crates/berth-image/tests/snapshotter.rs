//! Root tier: snapshotter conformance (after containerd's snapshot test suite): create,
//! mount, remove in a lower layer, a directory replaced in an upper layer, 128 layers.

mod common;

use berth_image::{ChainId, Snapshots};
use berth_testkit::images::LayerBuilder;
use common::*;

fn layer(f: impl FnOnce(&mut LayerBuilder)) -> Vec<u8> {
    let mut l = LayerBuilder::new();
    f(&mut l);
    l.finish()
}

fn apply(s: &Snapshots, parent: Option<&ChainId>, tar: Vec<u8>) -> ChainId {
    s.apply_layer(parent, &mut &tar[..], None).unwrap().0
}

#[test]
fn create_mount_and_layer_reuse() {
    if !berth_testkit::require_root("create_mount_and_layer_reuse") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let s = Snapshots::open(&d.path().join("image")).unwrap();
    let base = apply(
        &s,
        None,
        layer(|l| {
            l.dir("etc", 0o755)
                .file("etc/a", 0o644, b"a")
                .fifo("etc/fifo")
                .char_device("etc/null", 1, 3);
        }),
    );
    assert!(s.exists(&base));
    // the same tar again: same chain ID, nothing new
    assert_eq!(
        apply(
            &s,
            None,
            layer(|l| {
                l.dir("etc", 0o755)
                    .file("etc/a", 0o644, b"a")
                    .fifo("etc/fifo")
                    .char_device("etc/null", 1, 3);
            })
        ),
        base
    );
    assert_eq!(s.list(), vec![base.clone()]);
    let top = apply(
        &s,
        Some(&base),
        layer(|l| {
            l.dir("etc", 0o755).file("etc/b", 0o644, b"b");
        }),
    );
    let m = s
        .prepare_container_rootfs("c1", &[base.clone(), top.clone()])
        .unwrap();
    assert_eq!(m.lowerdirs, vec![s.fs_dir(&top), s.fs_dir(&base)]);
    let mnt = mount_at(&m, d.path());
    assert_eq!(
        tree(&mnt.0),
        vec!["etc", "etc/a", "etc/b", "etc/fifo", "etc/null"]
    );
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let null = std::fs::symlink_metadata(mnt.0.join("etc/null")).unwrap();
    assert!(null.file_type().is_char_device() && null.rdev() == rustix_dev(1, 3));
    assert!(std::fs::symlink_metadata(mnt.0.join("etc/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    drop(mnt);
    // a missing parent is refused
    let e = s
        .apply_layer(
            Some(&berth_image::Digest::of(b"nope")),
            &mut &layer(|_| {})[..],
            None,
        )
        .unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
    // expected diff ID checked
    let e = s
        .apply_layer(
            None,
            &mut &layer(|l| {
                l.file("z", 0o644, b"z");
            })[..],
            Some(&base),
        )
        .unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");
    s.remove_container_rootfs("c1").unwrap();
    assert!(s.container_layers().is_empty());
}

#[test]
fn remove_directory_in_lower_layer() {
    if !berth_testkit::require_root("remove_directory_in_lower_layer") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let s = Snapshots::open(&d.path().join("image")).unwrap();
    let l1 = apply(
        &s,
        None,
        layer(|l| {
            l.dir("lib", 0o755)
                .dir("lib/sub", 0o755)
                .file("lib/sub/f", 0o644, b"f")
                .file("lib/g", 0o644, b"g");
        }),
    );
    // layer 2 deletes lib/sub entirely and lib/g
    let l2 = apply(
        &s,
        Some(&l1),
        layer(|l| {
            l.dir("lib", 0o755)
                .whiteout("lib/sub")
                .whiteout("lib/g")
                .file("lib/h", 0o644, b"h");
        }),
    );
    let m = s
        .prepare_container_rootfs("c2", &[l1.clone(), l2.clone()])
        .unwrap();
    let mnt = mount_at(&m, d.path());
    assert_eq!(tree(&mnt.0), vec!["lib", "lib/h"]);
    // and through the mount: removing a lower dir writes a whiteout in upper only
    std::fs::remove_file(mnt.0.join("lib/h")).unwrap();
    std::fs::remove_dir(mnt.0.join("lib")).unwrap();
    assert!(is_whiteout(&m.upper.join("lib")));
    assert!(s.fs_dir(&l1).join("lib/sub/f").exists());
    assert!(s.fs_dir(&l2).join("lib/h").exists());
    drop(mnt);
    // a single layer with an upper mounts too (one lower)
    let m1 = s
        .prepare_container_rootfs("c3", std::slice::from_ref(&l1))
        .unwrap();
    let mnt = mount_at(&m1, &d.path().join("one"));
    assert_eq!(tree(&mnt.0), vec!["lib", "lib/g", "lib/sub", "lib/sub/f"]);
    drop(mnt);
    // container rootfs keeps its layers through GC bookkeeping
    assert_eq!(s.container_layers().len(), 3);
    s.remove_container_rootfs("c2").unwrap();
    s.remove_container_rootfs("c3").unwrap();
    s.remove(&l2).unwrap();
    assert!(!s.exists(&l2));
    assert!(s.exists(&l1));
}

#[test]
fn mount_128_layers() {
    if !berth_testkit::require_root("mount_128_layers") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let s = Snapshots::open(&d.path().join("image")).unwrap();
    let mut chain: Vec<ChainId> = Vec::new();
    for i in 0..128 {
        let tar = layer(|l| {
            l.dir("layers", 0o755).file(
                &format!("layers/{i:03}"),
                0o644,
                format!("{i}").as_bytes(),
            );
            l.file("top", 0o644, format!("{i}").as_bytes());
            if i > 0 {
                l.whiteout(&format!("layers/{:03}", i - 1));
            }
        });
        let c = apply(&s, chain.last(), tar);
        chain.push(c);
    }
    let m = s.prepare_container_rootfs("c128", &chain).unwrap();
    let opts: usize = m.lowerdirs.iter().map(|p| p.as_os_str().len() + 1).sum();
    assert!(
        opts > 4096,
        "the test must exceed mount(2)'s page limit ({opts})"
    );
    let mnt = mount_at(&m, d.path());
    assert_eq!(std::fs::read_to_string(mnt.0.join("top")).unwrap(), "127");
    assert_eq!(tree(&mnt.0), vec!["layers", "layers/127", "top"]);
    drop(mnt);
    s.remove_container_rootfs("c128").unwrap();
}

fn rustix_dev(major: u64, minor: u64) -> u64 {
    // glibc's makedev
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

#[test]
fn metadata_is_preserved() {
    if !berth_testkit::require_root("metadata_is_preserved") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let d = tempfile::tempdir().unwrap();
    let s = Snapshots::open(&d.path().join("image")).unwrap();
    let c = apply(
        &s,
        None,
        layer(|l| {
            l.dir("usr", 0o755).dir("usr/bin", 0o755);
            l.file_owned("usr/bin/su", 0o4755, 0, 0, b"su");
            l.file_owned("usr/bin/mine", 0o2750, 1000, 1001, b"mine");
            l.dir("tmp", 0o1777);
            l.file_xattrs(
                "usr/bin/ping",
                0o755,
                b"ping",
                &[("user.berth", b"v"), ("trusted.berth", b"t")],
            );
            l.symlink("usr/bin/link", "su");
        }),
    );
    let fs = s.fs_dir(&c);
    let md = |p: &str| std::fs::symlink_metadata(fs.join(p)).unwrap();
    assert_eq!(md("usr/bin/su").mode() & 0o7777, 0o4755);
    let mine = md("usr/bin/mine");
    assert_eq!(
        (mine.mode() & 0o7777, mine.uid(), mine.gid()),
        (0o2750, 1000, 1001)
    );
    assert_eq!(md("tmp").mode() & 0o7777, 0o1777);
    // directory mtimes are set after their contents
    assert_eq!(md("usr/bin").mtime(), berth_testkit::images::MTIME as i64);
    assert_eq!(
        md("usr/bin/link").mtime(),
        berth_testkit::images::MTIME as i64
    );
    let x = |name: &str| {
        let o = std::process::Command::new("getfattr")
            .args(["--only-values", "-n", name])
            .arg(fs.join("usr/bin/ping"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    assert_eq!(x("user.berth"), "v");
    assert_eq!(x("trusted.berth"), "t");
}

#[test]
fn layers_cannot_set_overlay_xattrs() {
    if !berth_testkit::require_root("layers_cannot_set_overlay_xattrs") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let s = Snapshots::open(&d.path().join("image")).unwrap();
    let c = apply(
        &s,
        None,
        layer(|l| {
            l.file_xattrs(
                "f",
                0o644,
                b"f",
                &[
                    ("trusted.overlay.redirect", b"/etc"),
                    ("user.overlay.opaque", b"y"),
                    ("user.ok", b"1"),
                ],
            );
        }),
    );
    let out = std::process::Command::new("getfattr")
        .args(["-d", "-m", "-"])
        .arg(s.fs_dir(&c).join("f"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("user.ok") && !text.contains("overlay"),
        "{text}"
    );
}
