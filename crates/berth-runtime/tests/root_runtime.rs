//! Root tier: real containers from a busybox rootfs, checked from inside by berth-checker.

mod common;

use std::path::Path;

use berth_runtime::{CreateOptions, ErrorKind, Status};
use common::{fixture, pipe, wait_code};
use serde_json::json;

#[test]
fn pid1_hostname_only_lo_and_only_own_processes() {
    let Some(f) = fixture("pid1", |s| {
        s["hostname"] = json!("berth-test");
        s["domainname"] = json!("berth.example");
    }) else {
        return;
    };
    let r = f.report();
    assert_eq!(r["pid"], 1);
    assert_eq!(r["hostname"], "berth-test");
    assert_eq!(r["domainname"], "berth.example");
    assert_eq!(r["interfaces"], json!(["lo"]));
    assert_eq!(
        r["processes"],
        json!([1]),
        "only the checker is visible in /proc"
    );
    assert_eq!(r["uid"][0], 0);
    assert_eq!(r["cwd"], "/");
    assert_eq!(r["SigBlk"], "0000000000000000");
}

#[test]
fn signal_dispositions_are_not_inherited() {
    // The test harness (Rust) ignores SIGPIPE; the container's process must not inherit it.
    // `cat` is exec'd directly by the init, so its status shows what it was given.
    let Some(f) = fixture("signals", |s| {
        s["process"]["args"] = json!(["cat", "/proc/self/status"])
    }) else {
        return;
    };
    let (code, out, err) = f.run();
    assert_eq!(code, 0, "{err}");
    let ign = out.lines().find(|l| l.starts_with("SigIgn:")).unwrap();
    assert!(ign.ends_with("0000000000000000"), "{ign}");
}

#[test]
fn capabilities_are_exactly_the_specs() {
    let Some(f) = fixture("caps", |s| {
        let set = json!(["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]);
        for k in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            s["process"]["capabilities"][k] = set.clone();
        }
    }) else {
        return;
    };
    let r = f.report();
    // CAP_CHOWN = bit 0, CAP_NET_BIND_SERVICE = bit 10
    for k in ["CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"] {
        assert_eq!(r[k], "0000000000000401", "{k}");
    }
    assert_eq!(r["NoNewPrivs"], "1");
}

#[test]
fn capability_we_lack_is_dropped_with_a_warning_not_an_error() {
    // This host's root has no CAP_SYS_RESOURCE in its bounding set.
    let Some(f) = fixture("caps-lacking", |s| {
        s["process"]["capabilities"]["bounding"] = json!(["CAP_SYS_RESOURCE", "CAP_KILL"]);
        s["process"]["capabilities"]["effective"] = json!(["CAP_SYS_RESOURCE", "CAP_KILL"]);
        s["process"]["capabilities"]["permitted"] = json!(["CAP_SYS_RESOURCE", "CAP_KILL"]);
    }) else {
        return;
    };
    let r = f.report();
    let eff = u64::from_str_radix(r["CapEff"].as_str().unwrap(), 16).unwrap();
    assert_ne!(eff & (1 << 5), 0, "CAP_KILL kept");
}

#[test]
fn seccomp_answers_with_the_configured_errno() {
    let Some(f) = fixture("seccomp", |s| {
        s["process"]["args"] = json!(["/bin/checker", "try-syscall", "mkdir"]);
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]
        });
    }) else {
        return;
    };
    let (code, out, err) = f.run();
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["errno"], 95, "{out}");
}

#[test]
fn docker_default_profile_denies_and_allows() {
    let profile: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/seccomp-oci.json"
        ))
        .unwrap(),
    )
    .unwrap();
    for (call, want) in [("clone3", 38), ("unshare-user", 1), ("getpid", 0)] {
        let p = profile.clone();
        let Some(f) = fixture("seccomp-docker", |s| {
            s["process"]["args"] = json!(["/bin/checker", "try-syscall", call]);
            s["linux"]["seccomp"] = p;
        }) else {
            return;
        };
        let (code, out, err) = f.run();
        assert_eq!(code, 0, "{call}: {err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["errno"], want, "{call}: {out}");
    }
}

#[test]
fn masked_paths_are_empty_and_missing_ones_are_skipped() {
    let Some(f) = fixture("masked", |s| {
        s["process"]["args"] = json!(["sh", "-c", "wc -c < /proc/keys; ls -A /sys/firmware | wc -l; echo x > /proc/sys/kernel/hostname 2>/dev/null || echo ro"]);
    }) else {
        return;
    };
    let (code, out, err) = f.run();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(lines, vec!["0", "0", "ro"], "{out}");
}

#[test]
fn readonly_rootfs_refuses_writes() {
    let Some(f) = fixture("ro-rootfs", |s| {
        s["process"]["args"] = json!(["/bin/checker", "write", "/newfile"]);
    }) else {
        return;
    };
    let (code, out, _) = f.run();
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["errno"], libc::EROFS);
    assert!(!f.rootfs.join("newfile").exists());
}

#[test]
fn user_namespace_maps_root_to_the_configured_host_uid() {
    let Some(f) = fixture("userns", |s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    }) else {
        return;
    };
    // The mapped root must be able to reach the rootfs through the tempdir.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(f.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut host_uid = String::new();
    let (code, out, err) = f.run_with(|pid| {
        let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        host_uid = st
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_string();
    });
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["uid"][0], 0, "root inside");
    assert_eq!(host_uid, "100000", "host view of the container's root");
}

#[test]
fn lifecycle_state_kill_delete_per_oci() {
    let Some(f) = fixture("lifecycle", |s| {
        s["process"]["args"] = json!(["/bin/checker", "sleep", "30"]);
    }) else {
        return;
    };
    let c =
        f.rt.create(&f.id, &f.bundle, CreateOptions::default())
            .unwrap();
    let st = f.rt.state(&f.id).unwrap();
    assert_eq!(st.status, Status::Created);
    assert_eq!(st.pid, c.pid);
    assert_eq!(st.id, f.id);
    assert_eq!(st.bundle, f.bundle.canonicalize().unwrap());
    // a second create with the same id is a conflict
    let e =
        f.rt.create(&f.id, &f.bundle, CreateOptions::default())
            .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    f.rt.start(&f.id).unwrap();
    assert_eq!(f.rt.state(&f.id).unwrap().status, Status::Running);
    assert_eq!(f.rt.start(&f.id).unwrap_err().kind(), ErrorKind::Conflict);
    assert_eq!(f.rt.ps(&f.id).unwrap(), vec![c.pid]);
    assert_eq!(
        f.rt.delete(&f.id, false).unwrap_err().kind(),
        ErrorKind::Conflict
    );
    f.rt.pause(&f.id).unwrap();
    assert_eq!(f.rt.state(&f.id).unwrap().status, Status::Paused);
    f.rt.resume(&f.id).unwrap();
    assert_eq!(f.rt.state(&f.id).unwrap().status, Status::Running);
    f.rt.kill(&f.id, libc::SIGKILL, false).unwrap();
    assert_eq!(wait_code(c.pid, 10), 128 + libc::SIGKILL);
    let st = f.rt.state(&f.id).unwrap();
    assert_eq!(st.status, Status::Stopped);
    assert!(f.rt.kill(&f.id, libc::SIGTERM, false).is_err());
    let cg = berth_cgroups::open(berth_cgroups::CgroupPath(f.cgroup.clone())).unwrap();
    let dirs = cg.paths();
    assert!(dirs.iter().any(|(_, p)| p.exists()));
    f.rt.delete(&f.id, false).unwrap();
    assert_eq!(f.rt.state(&f.id).unwrap_err().kind(), ErrorKind::NotFound);
    assert!(
        !f.dir.path().join("state").join(&f.id).exists(),
        "state dir removed"
    );
    for (_, p) in dirs {
        assert!(!p.exists(), "cgroup {} removed", p.display());
    }
    assert!(f.rt.list().unwrap().iter().all(|s| s.id != f.id));
}

#[test]
fn force_delete_of_paused_container_leaves_nothing() {
    let Some(f) = fixture("force-delete", |s| {
        s["process"]["args"] = json!(["sh", "-c", "sleep 30 & sleep 30"]);
    }) else {
        return;
    };
    let c =
        f.rt.create(&f.id, &f.bundle, CreateOptions::default())
            .unwrap();
    f.rt.start(&f.id).unwrap();
    // wait for the second process to appear
    for _ in 0..200 {
        if f.rt.ps(&f.id).unwrap().len() >= 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let pids = f.rt.ps(&f.id).unwrap();
    f.rt.pause(&f.id).unwrap();
    let cg = berth_cgroups::open(berth_cgroups::CgroupPath(f.cgroup.clone())).unwrap();
    f.rt.delete(&f.id, true).unwrap();
    assert_eq!(wait_code(c.pid, 10), 128 + libc::SIGKILL);
    for (_, p) in cg.paths() {
        assert!(!p.exists(), "cgroup {} removed", p.display());
    }
    for p in pids {
        let alive = std::fs::read_to_string(format!("/proc/{p}/stat"))
            .map(|s| !s.contains(") Z"))
            .unwrap_or(false);
        assert!(!alive || p == c.pid, "process {p} left behind");
    }
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.contains(f.rootfs.to_str().unwrap()),
        "no mount of the rootfs left on the host"
    );
    assert!(!f.dir.path().join("state").join(&f.id).exists());
}

#[test]
fn exec_joins_the_container() {
    let Some(f) = fixture("exec", |s| {
        s["hostname"] = json!("exec-host");
        s["process"]["args"] = json!(["/bin/checker", "sleep", "30"]);
    }) else {
        return;
    };
    let c =
        f.rt.create(&f.id, &f.bundle, CreateOptions::default())
            .unwrap();
    f.rt.start(&f.id).unwrap();
    let spec: oci_spec::runtime::Spec =
        serde_json::from_slice(&std::fs::read(f.bundle.join("config.json")).unwrap()).unwrap();
    let mut p = spec.process().clone().unwrap();
    p.set_args(Some(vec!["/bin/checker".into()]));
    let (r, w) = pipe();
    let e =
        f.rt.exec(
            &f.id,
            &p,
            CreateOptions {
                stdout: Some(w),
                ..Default::default()
            },
        )
        .unwrap();
    let mut out = String::new();
    use std::io::Read;
    std::fs::File::from(r).read_to_string(&mut out).unwrap();
    assert_eq!(wait_code(e.pid, 10), 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["hostname"], "exec-host");
    assert_ne!(v["pid"], 1);
    assert_eq!(v["processes"].as_array().unwrap().first().unwrap(), 1);
    // runc spec's default: AUDIT_WRITE, KILL, NET_BIND_SERVICE
    assert_eq!(v["CapEff"], "0000000020000420", "caps applied");
    assert!(
        v["cgroup_file"].as_str().unwrap().contains(&f.id),
        "joined the cgroup"
    );
    // a missing command is reported as not found
    p.set_args(Some(vec!["no-such-command".into()]));
    let e = f.rt.exec(&f.id, &p, CreateOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CommandNotFound, "{e}");
    f.rt.kill(&f.id, libc::SIGKILL, true).unwrap();
    wait_code(c.pid, 10);
}

#[test]
fn terminal_master_is_returned() {
    let Some(f) = fixture("tty", |s| {
        s["process"]["terminal"] = json!(true);
        s["process"]["args"] = json!(["sh", "-c", "tty"]);
    }) else {
        return;
    };
    let c =
        f.rt.create(
            &f.id,
            &f.bundle,
            CreateOptions {
                console: berth_runtime::ConsoleMode::ReturnMaster,
                ..Default::default()
            },
        )
        .unwrap();
    let master = c.console_master.expect("master");
    f.rt.start(&f.id).unwrap();
    let mut out = Vec::new();
    use std::io::Read;
    let mut m = std::fs::File::from(master);
    let mut buf = [0u8; 256];
    while let Ok(n) = m.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(wait_code(c.pid, 10), 0);
    assert!(
        String::from_utf8_lossy(&out).contains("/dev/pts/0"),
        "{out:?}"
    );
}

#[test]
fn missing_command_is_not_found_and_leaves_nothing() {
    let Some(f) = fixture("notfound", |s| s["process"]["args"] = json!(["nope-cmd"])) else {
        return;
    };
    let e =
        f.rt.create(&f.id, &f.bundle, CreateOptions::default())
            .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CommandNotFound, "{e}");
    assert_nothing_left(&f);
    let Some(f) = fixture("noexec", |s| s["process"]["args"] = json!(["/etc/passwd"])) else {
        return;
    };
    let e =
        f.rt.create(&f.id, &f.bundle, CreateOptions::default())
            .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CommandNotExecutable, "{e}");
    assert_nothing_left(&f);
}

fn assert_nothing_left(f: &common::Fixture) {
    assert!(
        !f.dir.path().join("state").join(&f.id).exists(),
        "state dir left"
    );
    let cg = berth_cgroups::open(berth_cgroups::CgroupPath(f.cgroup.clone())).unwrap();
    for (_, p) in cg.paths() {
        assert!(!p.exists(), "cgroup {} left", p.display());
    }
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(f.rootfs.to_str().unwrap()));
}

#[test]
fn bad_config_names_the_field_and_leaves_nothing() {
    type Tweak = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Tweak)> = vec![
        (
            "process.user.uid",
            Box::new(|s| s["process"]["user"]["uid"] = json!("root")),
        ),
        (
            "process.args",
            Box::new(|s| s["process"]["args"] = json!([])),
        ),
        ("ociVersion", Box::new(|s| s["ociVersion"] = json!("2.0.0"))),
        (
            "mounts[0].source",
            Box::new(|s| {
                s["mounts"].as_array_mut().unwrap().insert(0, json!({"destination": "/x", "type": "bind", "source": "/nonexistent/berth", "options": ["bind"]}))
            }),
        ),
        (
            "linux.namespaces[5].path",
            Box::new(|s| {
                s["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "cgroup", "path": "/proc/1/ns/nonexistent"}))
            }),
        ),
        (
            "linux.seccomp.syscalls[0].action",
            Box::new(
                |s| s["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            ),
        ),
        (
            "linux.rootfsPropagation",
            Box::new(|s| s["linux"]["rootfsPropagation"] = json!("sideways")),
        ),
    ];
    for (field, tweak) in cases {
        let Some(f) = fixture("bad-config", |s| tweak(s)) else {
            return;
        };
        let e =
            f.rt.create(&f.id, &f.bundle, CreateOptions::default())
                .unwrap_err();
        assert!(e.to_string().contains(field), "{field}: {e}");
        assert_nothing_left(&f);
    }
}

#[test]
fn rlimits_above_our_hard_limit_are_clamped() {
    let Some(f) = fixture("rlimits", |s| {
        s["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}]);
    }) else {
        return;
    };
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let r = f.report();
    let got = r["rlimits"]["nofile"]["hard"].as_u64().unwrap();
    assert!(got <= hard.max(1048576));
    assert!(Path::new("/proc/self").exists());
}

#[test]
fn seccomp_masked_eq_argument_condition() {
    // unshare(flags) is refused with EACCES only when CLONE_NEWUSER is among the flags.
    for (call, want) in [("unshare-user", libc::EACCES), ("unshare-ns", libc::EPERM)] {
        let Some(f) = fixture("seccomp-masked", |s| {
            s["process"]["args"] = json!(["/bin/checker", "try-syscall", call]);
            s["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
                  "args": [{"index": 0, "value": libc::CLONE_NEWUSER, "valueTwo": libc::CLONE_NEWUSER, "op": "SCMP_CMP_MASKED_EQ"}]}]
            });
        }) else {
            return;
        };
        let (code, out, err) = f.run();
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        // unshare(CLONE_NEWNS) passes the filter and is refused by the kernel (no CAP_SYS_ADMIN)
        assert_eq!(v["errno"], want, "{call}: {out}");
    }
}

#[test]
fn exec_into_a_user_namespace_container() {
    let Some(f) = fixture("userns-exec", |s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        s["process"]["args"] = json!(["/bin/checker", "sleep", "30"]);
    }) else {
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(f.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let c =
        f.rt.create(&f.id, &f.bundle, CreateOptions::default())
            .unwrap();
    f.rt.start(&f.id).unwrap();
    let spec: oci_spec::runtime::Spec =
        serde_json::from_slice(&std::fs::read(f.bundle.join("config.json")).unwrap()).unwrap();
    let mut p = spec.process().clone().unwrap();
    p.set_args(Some(vec!["/bin/checker".into()]));
    let (r, w) = pipe();
    let e =
        f.rt.exec(
            &f.id,
            &p,
            CreateOptions {
                stdout: Some(w),
                ..Default::default()
            },
        )
        .unwrap();
    let host_uid = std::fs::read_to_string(format!("/proc/{}/status", e.pid))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string());
    let mut out = String::new();
    use std::io::Read;
    std::fs::File::from(r).read_to_string(&mut out).unwrap();
    assert_eq!(wait_code(e.pid, 10), 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["uid"][0], 0, "root inside");
    if let Some(u) = host_uid {
        assert!(u == "200000" || u.is_empty(), "host uid {u}");
    }
    f.rt.kill(&f.id, libc::SIGKILL, false).unwrap();
    wait_code(c.pid, 10);
}
