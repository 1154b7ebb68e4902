//! E2E, root tier: `docker cp` / `berth cp` both ways (running, stopped and never-started
//! containers, volumes, `-`, `-L`, `-a`, read-only rootfs, symlinks planted by the container),
//! `export`, `diff`, and the archive endpoints' codes.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{ok, registry, Daemon};

fn setup(test: &str) -> Option<(Daemon, berth_testkit::registry::RegistryGuard, String)> {
    if !berth_testkit::require_root(test) {
        return None;
    }
    let (reg, img) = registry();
    let d = Daemon::start();
    ok(&d, &d.docker(&["pull", &img]));
    Some((d, reg, img))
}

/// [`setup`], and a container `name` running `sleep 1000`.
fn setup_running(
    test: &str,
    name: &str,
) -> Option<(Daemon, berth_testkit::registry::RegistryGuard)> {
    let (d, reg, img) = setup(test)?;
    ok(
        &d,
        &d.docker(&["run", "-d", "--name", name, &img, "sleep", "1000"]),
    );
    Some((d, reg))
}

/// A local tree: `src/a.txt`, `src/sub/b.txt`.
fn local_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("src/sub")).unwrap();
    std::fs::write(dir.join("src/a.txt"), b"alpha\n").unwrap();
    std::fs::write(dir.join("src/sub/b.txt"), b"bravo\n").unwrap();
}

/// Mount points of this daemon's containers seen by the host (none may be left by a cp).
fn host_mounts_under(p: &Path) -> Vec<String> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = p.display().to_string();
    mi.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&p))
        .map(str::to_string)
        .collect()
}

fn sh(cmd: &str) -> common::Run {
    let mut c = Command::new("sh");
    c.args(["-c", cmd]);
    common::run_cmd(c, None, Duration::from_secs(60))
}

/// The scenario, through `cli` (`docker` or `berth`).
fn scenario(d: &Daemon, img: &str, cli: &str) {
    let run = |args: &[&str]| -> common::Run {
        if cli == "docker" {
            d.docker(args)
        } else {
            d.berth(args)
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    local_tree(t);
    let out = t.join("out");
    std::fs::create_dir(&out).unwrap();
    let p = |x: &Path| x.display().to_string();

    ok(d, &run(&["volume", "create", "cpvol"]));
    ok(
        d,
        &run(&[
            "run",
            "-d",
            "--name",
            "web",
            "-v",
            "cpvol:/data",
            img,
            "sleep",
            "1000",
        ]),
    );
    // local dir → existing container dir: lands as /tmp/src
    ok(d, &run(&["cp", &p(&t.join("src")), "web:/tmp/"]));
    let r = run(&["exec", "web", "cat", "/tmp/src/sub/b.txt"]);
    ok(d, &r);
    assert_eq!(r.stdout, "bravo\n");
    // `src/.` → a missing path: the content, as that path
    ok(
        d,
        &run(&["cp", &format!("{}/.", p(&t.join("src"))), "web:/newdir"]),
    );
    let r = run(&["exec", "web", "ls", "/newdir"]);
    ok(d, &r);
    assert_eq!(
        r.stdout.split_whitespace().collect::<Vec<_>>(),
        ["a.txt", "sub"]
    );
    // a file into the volume
    ok(d, &run(&["cp", &p(&t.join("src/a.txt")), "web:/data/"]));
    let r = run(&["exec", "web", "cat", "/data/a.txt"]);
    ok(d, &r);
    assert_eq!(r.stdout, "alpha\n");
    // container file → local file (renamed), and a directory → local dir
    ok(d, &run(&["cp", "web:/etc/hostname", &p(&out.join("h"))]));
    let id = run(&["inspect", "-f", "{{.Id}}", "web"])
        .stdout
        .trim()
        .to_string();
    assert_eq!(
        std::fs::read_to_string(out.join("h")).unwrap(),
        format!("{}\n", &id[..12])
    );
    ok(d, &run(&["cp", "web:/etc", &p(&out)]));
    assert!(std::fs::read_to_string(out.join("etc/passwd"))
        .unwrap()
        .starts_with("root:"));
    ok(d, &run(&["cp", "web:/tmp/src", &p(&out.join("copy"))]));
    assert_eq!(
        std::fs::read(out.join("copy/sub/b.txt")).unwrap(),
        b"bravo\n"
    );
    // a missing path: Docker's 404 text
    let r = run(&["cp", "web:/nonexistent", &p(&out)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("Could not find the file /nonexistent in container web"),
        "{r:?}"
    );
    // No such container, both ways.
    for args in [
        ["cp", "nosuchctr:/etc/hostname", &p(&out)],
        ["cp", &p(&t.join("hello-missing")), "nosuchctr:/tmp"],
    ] {
        if args[1].contains("hello-missing") {
            std::fs::write(t.join("hello-missing"), b"x").unwrap();
        }
        let r = run(&args);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains("No such container: nosuchctr"), "{r:?}");
    }
    // `-` out: a tar on stdout
    let r = sh(&format!(
        "DOCKER_HOST={h} BERTH_HOST={h} {bin} cp web:/etc/hostname - | tar -tf -",
        h = d.host,
        bin = if cli == "docker" {
            common::DOCKER
        } else {
            common::BERTH
        }
    ));
    ok(d, &r);
    assert_eq!(r.stdout.trim(), "hostname");
    // `-` in: a tar from stdin into an existing directory
    let tarball = sh(&format!("tar -C {} -cf - a.txt", p(&t.join("src"))));
    let mut c = Command::new(if cli == "docker" {
        common::DOCKER
    } else {
        common::BERTH
    });
    c.env("DOCKER_HOST", &d.host)
        .env("BERTH_HOST", &d.host)
        .args(["cp", "-", "web:/root"]);
    let tar_bytes = std::process::Command::new("tar")
        .args(["-C", &p(&t.join("src")), "-cf", "-", "a.txt"])
        .output()
        .unwrap()
        .stdout;
    let _ = tarball;
    let r = common::run_cmd(c, Some(&tar_bytes), Duration::from_secs(60));
    ok(d, &r);
    assert_eq!(
        run(&["exec", "web", "cat", "/root/a.txt"]).stdout,
        "alpha\n"
    );
    // -L follows a symlink in the container; without it the link itself comes out
    ok(
        d,
        &run(&["exec", "web", "ln", "-s", "/etc/hostname", "/hn"]),
    );
    ok(
        d,
        &run(&["cp", "-L", "web:/hn", &p(&out.join("hn-followed"))]),
    );
    assert!(std::fs::symlink_metadata(out.join("hn-followed"))
        .unwrap()
        .is_file());
    ok(d, &run(&["cp", "web:/hn", &p(&out.join("hn-link"))]));
    assert_eq!(
        std::fs::read_link(out.join("hn-link")).unwrap(),
        Path::new("/etc/hostname")
    );
    // A symlink planted by the container to escape to the host's /tmp resolves inside it.
    let marker = format!("berth-cp-escape-{}", std::process::id());
    std::fs::write(t.join(&marker), b"inside\n").unwrap();
    ok(d, &run(&["exec", "web", "mkdir", "-p", "/trapdir"]));
    ok(
        d,
        &run(&[
            "exec",
            "web",
            "ln",
            "-s",
            "../../../../../../../tmp",
            "/trapdir/up",
        ]),
    );
    ok(d, &run(&["cp", &p(&t.join(&marker)), "web:/trapdir/up/"]));
    assert!(
        !Path::new("/tmp").join(&marker).exists(),
        "escaped to the host's /tmp"
    );
    assert_eq!(
        run(&["exec", "web", "cat", &format!("/tmp/{marker}")]).stdout,
        "inside\n"
    );

    // Stopped: both ways, and no mount left in the host's table.
    ok(d, &run(&["stop", "-t", "0", "web"]));
    ok(
        d,
        &run(&["cp", "web:/tmp/src/a.txt", &p(&out.join("a-stopped"))]),
    );
    assert_eq!(std::fs::read(out.join("a-stopped")).unwrap(), b"alpha\n");
    ok(
        d,
        &run(&["cp", &p(&t.join("src/sub/b.txt")), "web:/stopped.txt"]),
    );
    ok(
        d,
        &run(&["cp", &p(&t.join("src/sub/b.txt")), "web:/data/stopped.txt"]),
    );
    let rootfs_parent = d.exec_root.path().join("containers").join(&id);
    assert!(
        host_mounts_under(&rootfs_parent).is_empty(),
        "mounts left: {:?}",
        host_mounts_under(&rootfs_parent)
    );
    ok(d, &run(&["start", "web"]));
    assert_eq!(
        run(&["exec", "web", "cat", "/stopped.txt"]).stdout,
        "bravo\n"
    );
    assert_eq!(
        run(&["exec", "web", "cat", "/data/stopped.txt"]).stdout,
        "bravo\n"
    );

    // Never started: the file is there at the first start.
    ok(
        d,
        &run(&["create", "--name", "fresh", img, "cat", "/hello.txt"]),
    );
    std::fs::write(t.join("hello.txt"), b"hello from cp\n").unwrap();
    ok(d, &run(&["cp", &p(&t.join("hello.txt")), "fresh:/"]));
    let r = run(&["start", "-a", "fresh"]);
    ok(d, &r);
    assert_eq!(r.stdout, "hello from cp\n");

    // -a: owned by the container's user.
    ok(
        d,
        &run(&[
            "run",
            "-d",
            "--name",
            "owned",
            "-u",
            "1234:5678",
            img,
            "sleep",
            "1000",
        ]),
    );
    ok(
        d,
        &run(&["cp", "-a", &p(&t.join("hello.txt")), "owned:/tmp/"]),
    );
    let r = run(&["exec", "owned", "stat", "-c", "%u:%g", "/tmp/hello.txt"]);
    ok(d, &r);
    assert_eq!(r.stdout.trim(), "1234:5678");

    // Without a configured user (and without -a), the tar's own ids are kept.
    let ids = t.join("ids.txt");
    std::fs::write(&ids, b"ids\n").unwrap();
    std::os::unix::fs::chown(&ids, Some(4321), Some(4322)).unwrap();
    ok(d, &run(&["cp", "-a", &p(&ids), "web:/tmp/ids-a.txt"]));
    ok(d, &run(&["cp", &p(&ids), "web:/tmp/ids.txt"]));
    for f in ["/tmp/ids-a.txt", "/tmp/ids.txt"] {
        let r = run(&["exec", "web", "stat", "-c", "%u:%g", f]);
        assert_eq!(r.stdout.trim(), "4321:4322", "{f}: {r:?}");
    }

    // Read-only rootfs: Docker's error; a file over a directory: refused.
    ok(
        d,
        &run(&[
            "run",
            "-d",
            "--read-only",
            "--name",
            "ro",
            "-v",
            "cpvol:/data",
            img,
            "sleep",
            "1000",
        ]),
    );
    let r = run(&["cp", &p(&t.join("hello.txt")), "ro:/tmp/"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("container rootfs is marked read-only"),
        "{r:?}"
    );
    // ... but its writable volume takes files.
    ok(d, &run(&["cp", &p(&t.join("hello.txt")), "ro:/data/"]));
    assert_eq!(
        run(&["exec", "ro", "cat", "/data/hello.txt"]).stdout,
        "hello from cp\n"
    );
    let r = run(&["cp", &p(&t.join("src")), "web:/etc/passwd"]);
    assert_ne!(r.code, 0, "{r:?}");
    for c in ["web", "fresh", "owned", "ro"] {
        ok(d, &run(&["rm", "-f", c]));
    }
}

#[test]
fn docker_cp_scenario() {
    let Some((d, _reg, img)) = setup("docker_cp_scenario") else {
        return;
    };
    scenario(&d, &img, "docker");
}

#[test]
fn berth_cp_scenario() {
    let Some((d, _reg, img)) = setup("berth_cp_scenario") else {
        return;
    };
    scenario(&d, &img, "berth");
}

/// `docker cp - CTR:/dir` sends the file as it is given (the CLI decompresses nothing): a tar
/// compressed with gzip, bzip2 or xz by the machine's own tools is extracted, a damaged one
/// is refused with the decoder's reason.
#[test]
fn compressed_uploads() {
    let Some((d, _reg)) = setup_running("compressed_uploads", "packed") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    local_tree(tmp.path());
    let src = tmp.path().join("src").display().to_string();
    for tool in ["gzip", "bzip2", "xz"] {
        let out = Command::new("sh")
            .args(["-c", &format!("tar -C {src} -cf - a.txt sub | {tool} -c")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{tool}: {out:?}");
        let packed = out.stdout;
        let dir = format!("/in-{tool}");
        ok(&d, &d.docker(&["exec", "packed", "mkdir", &dir]));
        let r = d.docker_in(
            &["cp", "-", &format!("packed:{dir}")],
            Some(&packed),
            Duration::from_secs(60),
        );
        ok(&d, &r);
        let r = d.docker(&[
            "exec",
            "packed",
            "cat",
            &format!("{dir}/a.txt"),
            &format!("{dir}/sub/b.txt"),
        ]);
        assert_eq!(r.stdout, "alpha\nbravo\n", "{tool}: {r:?}");

        // Cut short: refused with the format's own reason (a 400, so no retry helps).
        let r = d.docker_in(
            &["cp", "-", &format!("packed:{dir}")],
            Some(&packed[..packed.len() - 12]),
            Duration::from_secs(60),
        );
        assert_ne!(r.code, 0, "{tool}: {r:?}");
        assert!(
            r.stderr
                .contains(&format!("the archive is not a valid {tool} stream")),
            "{tool}: {r:?}"
        );
    }
    let packed = Command::new("sh")
        .args(["-c", &format!("tar -C {src} -cf - a.txt | bzip2 -c")])
        .output()
        .unwrap()
        .stdout;
    let (s, _, body) = d
        .raw_bytes(
            "PUT",
            "/containers/packed/archive?path=/in-bzip2",
            &packed[..packed.len() / 2],
        )
        .unwrap();
    assert_eq!(s, 400, "{body}");
    ok(&d, &d.docker(&["rm", "-f", "packed"]));
}

#[test]
fn export_and_diff() {
    let Some((d, _reg, img)) = setup("export_and_diff") else {
        return;
    };
    let r = d.docker(&[
        "run",
        "--name",
        "changed",
        "-v",
        "/data",
        &img,
        "sh",
        "-c",
        "echo x > /tmp/new; rm /etc/group; echo more >> /etc/passwd; mkdir -p /var/lib/app; echo v > /data/in-volume",
    ]);
    ok(&d, &r);
    for cli in ["docker", "berth"] {
        let r = if cli == "docker" {
            d.docker(&["diff", "changed"])
        } else {
            d.berth(&["diff", "changed"])
        };
        ok(&d, &r);
        let lines: Vec<&str> = r.stdout.lines().collect();
        for want in [
            "C /etc",
            "D /etc/group",
            "C /etc/passwd",
            "C /tmp",
            "A /tmp/new",
            "C /var",
            "A /var/lib",
            "A /var/lib/app",
        ] {
            assert!(
                lines.contains(&want),
                "{cli}: {want:?} missing in {lines:?}"
            );
        }
        assert!(
            !lines
                .iter()
                .any(|l| l.contains("hostname") || l.contains("in-volume")),
            "{cli}: {lines:?}"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    for cli in ["docker", "berth"] {
        let file = tmp.path().join(format!("{cli}.tar"));
        let f = file.display().to_string();
        let r = if cli == "docker" {
            d.docker(&["export", "-o", &f, "changed"])
        } else {
            d.berth(&["export", "-o", &f, "changed"])
        };
        ok(&d, &r);
        let list = sh(&format!("tar -tvf {f}"));
        ok(&d, &list);
        let names: Vec<&str> = list
            .stdout
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .collect();
        assert!(names.contains(&"bin/busybox"), "{names:?}");
        assert!(names.contains(&"tmp/new"), "{names:?}");
        assert!(names.contains(&"etc/passwd"), "{names:?}");
        assert!(
            !names.contains(&"etc/group"),
            "deleted file exported: {names:?}"
        );
        assert!(!names
            .iter()
            .any(|n| n.starts_with('/') || n.starts_with("./")));
        // the volume's content is not part of the export
        assert!(!names.contains(&"data/in-volume"), "{names:?}");
    }
    // Export round trip: import the tar as an image and run it.
    let f = tmp.path().join("docker.tar").display().to_string();
    ok(&d, &d.docker(&["import", &f, "exported:1"]));
    let r = d.docker(&["run", "--rm", "exported:1", "cat", "/tmp/new"]);
    ok(&d, &r);
    assert_eq!(r.stdout, "x\n");
}

#[test]
fn archive_api_codes() {
    let Some((d, _reg, img)) = setup("archive_api_codes") else {
        return;
    };
    ok(&d, &d.docker(&["create", "--name", "cc", &img, "true"]));
    let (s, head, _) = d
        .raw("HEAD", "/containers/cc/archive?path=/etc/passwd", None)
        .unwrap();
    assert_eq!(s, 200);
    let hv = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-docker-container-path-stat:")
                .then(|| l.split_once(':').unwrap().1.trim().to_string())
        })
        .expect("stat header");
    let json = sh(&format!("echo {hv} | base64 -d"));
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["name"], "passwd");
    assert_eq!(v["mode"], 0o644);
    assert!(v["size"].as_i64().unwrap() > 10);
    let (s, _, _) = d
        .raw("HEAD", "/containers/cc/archive?path=/nope", None)
        .unwrap();
    assert_eq!(s, 404);
    let (s, _, body) = d
        .raw("GET", "/containers/cc/archive?path=/nope", None)
        .unwrap();
    assert_eq!(s, 404);
    assert!(
        body.contains("Could not find the file /nope in container cc"),
        "{body}"
    );
    let (s, _, body) = d.raw("GET", "/containers/cc/archive", None).unwrap();
    assert_eq!(s, 400, "{body}");
    let (s, _, _) = d
        .raw("GET", "/containers/nosuch/archive?path=/", None)
        .unwrap();
    assert_eq!(s, 404);
    let (s, _, body) = d
        .raw("PUT", "/containers/cc/archive?path=/etc/passwd", Some(""))
        .unwrap();
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("not a directory"), "{body}");
    let (s, _, body) = d
        .raw(
            "PUT",
            "/containers/cc/archive?path=/tmp",
            Some(&"z".repeat(1024)),
        )
        .unwrap();
    assert_eq!(s, 400, "{body}");
    let (s, _, body) = d.raw("GET", "/containers/cc/changes", None).unwrap();
    assert_eq!(s, 200, "{body}");
    assert_eq!(body.trim(), "[]");

    // A view that fails half-way (a file bound over a directory): an error, and the overlay
    // mounted for it is gone again.
    let f = tempfile::NamedTempFile::new().unwrap();
    let bind = format!("{}:/etc", f.path().display());
    ok(
        &d,
        &d.docker(&["create", "--name", "badbind", "-v", &bind, &img, "true"]),
    );
    let (s, _, body) = d
        .raw("GET", "/containers/badbind/archive?path=/bin", None)
        .unwrap();
    assert_eq!(s, 500, "{body}");
    assert!(body.contains("/etc"), "{body}");
    assert!(
        host_mounts_under(d.exec_root.path())
            .iter()
            .all(|m| m == &d.exec_root.path().display().to_string()),
        "{:?}",
        host_mounts_under(d.exec_root.path())
    );
}

/// One raw ustar header + data, any name (a hostile client writes what it likes).
fn raw_entry(out: &mut Vec<u8>, name: &str, kind: u8, link: &str, data: &[u8]) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

#[test]
fn hostile_tar_stays_in_the_container() {
    let Some((d, _reg)) = setup_running("hostile_tar_stays_in_the_container", "victim") else {
        return;
    };
    let tag = format!("berth-hostile-{}", std::process::id());
    // `..` climbing out: refused, nothing written anywhere.
    let mut t = Vec::new();
    raw_entry(
        &mut t,
        &format!("../../../../../../tmp/{tag}-dotdot"),
        b'0',
        "",
        b"x",
    );
    t.extend_from_slice(&[0u8; 1024]);
    let r = d.docker_in(
        &["cp", "-", "victim:/tmp"],
        Some(&t),
        Duration::from_secs(60),
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("escapes"), "{r:?}");
    assert!(!Path::new(&format!("/tmp/{tag}-dotdot")).exists());
    // An absolute symlink, then a file through it: lands in the container's /tmp.
    let mut t = Vec::new();
    raw_entry(&mut t, "sub/", b'5', "", b"");
    raw_entry(&mut t, "evil", b'2', "/sub", b"");
    raw_entry(&mut t, &format!("evil/{tag}-abs"), b'0', "", b"abs\n");
    // A relative symlink climbing out, then a file through it: the destination's root.
    raw_entry(&mut t, "up", b'2', "../../../../../../../..", b"");
    raw_entry(&mut t, &format!("up/{tag}-rel"), b'0', "", b"rel\n");
    t.extend_from_slice(&[0u8; 1024]);
    ok(&d, &d.docker(&["exec", "victim", "mkdir", "/in"]));
    let r = d.docker_in(
        &["cp", "-", "victim:/in"],
        Some(&t),
        Duration::from_secs(60),
    );
    ok(&d, &r);
    assert!(
        !Path::new(&format!("/tmp/{tag}-abs")).exists(),
        "escaped to the host"
    );
    assert!(
        !Path::new(&format!("/{tag}-rel")).exists(),
        "escaped to the host"
    );
    // `evil -> /sub` resolves against the destination (/in), as moby's chrootarchive does.
    let r = d.docker(&["exec", "victim", "cat", &format!("/in/sub/{tag}-abs")]);
    assert_eq!(r.stdout, "abs\n", "{r:?}");
    let r = d.docker(&["exec", "victim", "cat", &format!("/in/{tag}-rel")]);
    assert_eq!(r.stdout, "rel\n", "{r:?}");
    // A hardlink to a host file: refused.
    let mut t = Vec::new();
    raw_entry(&mut t, "hl", b'1', "../../../../etc/passwd", b"");
    t.extend_from_slice(&[0u8; 1024]);
    let r = d.docker_in(
        &["cp", "-", "victim:/in"],
        Some(&t),
        Duration::from_secs(60),
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("hardlink target"), "{r:?}");
}
