//! Root tier: the rest of the spec — user/groups/umask/cwd/env, hooks, time namespace,
//! sysctls, bind mounts, console socket, annotations, oom_score_adj, exec via the CLI.

mod common;

use std::os::fd::AsFd;

use berth_runtime::{ConsoleMode, CreateOptions};
use common::{fixture, wait_code};
use serde_json::json;

#[test]
fn user_groups_umask_cwd_env() {
    let Some(f) = fixture("user", |s| {
        s["process"]["user"] =
            json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 63});
        s["process"]["cwd"] = json!("/tmp");
        s["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
    }) else {
        return;
    };
    let r = f.report();
    assert_eq!(r["uid"], json!([1000, 1000, 1000, 1000]));
    assert_eq!(r["gid"], json!([1001, 1001, 1001, 1001]));
    assert_eq!(r["groups"], json!([10, 20]));
    assert_eq!(r["Umask"], "0077");
    assert_eq!(r["cwd"], "/tmp");
    let env: Vec<&str> = r["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"FOO=bar baz"), "{env:?}");
    assert!(env.contains(&"HOME=/"), "HOME added: {env:?}");
    // a non-root user keeps no capabilities unless ambient
    assert_eq!(r["CapEff"], "0000000000000000");
}

#[test]
fn hooks_run_at_each_point_with_state_on_stdin() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().display().to_string();
    let Some(f) = fixture("hooks", |s| {
        let host = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {o}/{name}.json")]});
        s["hooks"] = json!({
            "createRuntime": [host("createRuntime")],
            "createContainer": [host("createContainer")],
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/shm/started"]}],
            "poststart": [host("poststart")],
            "poststop": [host("poststop")],
        });
        s["process"]["args"] = json!(["sh", "-c", "cat /dev/shm/started"]);
    }) else {
        return;
    };
    let (code, stdout, err) = f.run();
    assert_eq!(code, 0, "{err}");
    let started: serde_json::Value =
        serde_json::from_str(&stdout).expect("startContainer ran inside");
    assert_eq!(started["id"], f.id.as_str());
    for (name, status) in [
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("poststart", "running"),
    ] {
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.path().join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(v["id"], f.id.as_str(), "{name}");
        assert_eq!(v["status"], status, "{name}");
        assert!(v["pid"].as_i64().unwrap() > 0, "{name}");
    }
    f.rt.delete(&f.id, false).unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("poststop.json")).unwrap()).unwrap();
    assert_eq!(v["status"], "stopped");
}

#[test]
fn failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    let Some(f) = fixture("hook-fail", |s| {
        s["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    }) else {
        return;
    };
    let e =
        f.rt.create(&f.id, &f.bundle, CreateOptions::default())
            .unwrap_err();
    assert!(e.to_string().contains("hooks.createRuntime[0]"), "{e}");
    assert!(!f.dir.path().join("state").join(&f.id).exists());
}

#[test]
fn time_namespace_offsets_boottime() {
    let Some(f) = fixture("timens", |s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        s["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1000000, "nanosecs": 0}});
        s["process"]["args"] = json!(["cat", "/proc/uptime"]);
    }) else {
        return;
    };
    let (code, out, err) = f.run();
    assert_eq!(code, 0, "{err}");
    let up: f64 = out.split_whitespace().next().unwrap().parse().unwrap();
    assert!(up > 1000000.0, "{out}");
}

#[test]
fn sysctls_and_oom_score_adj_apply() {
    let Some(f) = fixture("sysctl", |s| {
        s["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        s["process"]["oomScoreAdj"] = json!(500);
        s["process"]["args"] = json!([
            "sh",
            "-c",
            "cat /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj"
        ]);
    }) else {
        return;
    };
    let (code, out, err) = f.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), vec!["1", "500"]);
}

#[test]
fn bind_mounts_ro_and_rw() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello"), "hi\n").unwrap();
    let d = data.path().display().to_string();
    let Some(f) = fixture("binds", |s| {
        let m = s["mounts"].as_array_mut().unwrap();
        m.push(
            json!({"destination": "/ro", "type": "bind", "source": d, "options": ["rbind", "ro"]}),
        );
        m.push(json!({"destination": "/rw", "type": "none", "source": d, "options": ["bind", "rw", "rprivate"]}));
        m.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]}));
        s["process"]["args"] = json!(["sh", "-c",
            "cat /ro/hello; echo x > /ro/new 2>/dev/null && echo BAD; echo w > /rw/new && echo rw-ok; echo t > /scratch/t && echo tmpfs-ok"]);
    }) else {
        return;
    };
    let (code, out, err) = f.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        vec!["hi", "rw-ok", "tmpfs-ok"],
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(data.path().join("new")).unwrap(),
        "w\n"
    );
    // mounts made in the container's namespace are not visible on the host
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(&f.rootfs.join("ro").display().to_string()));
}

#[test]
fn console_socket_receives_the_master() {
    let Some(f) = fixture("console-sock", |s| {
        s["process"]["terminal"] = json!(true);
        s["process"]["args"] = json!(["sh", "-c", "tty; stty size; stty -F /dev/console size"]);
        s["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    }) else {
        return;
    };
    let sock_path = f.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let t = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        berth_sys::recv_fd(conn.as_fd()).unwrap()
    });
    let c =
        f.rt.create(
            &f.id,
            &f.bundle,
            CreateOptions {
                console: ConsoleMode::Socket(sock_path),
                ..Default::default()
            },
        )
        .unwrap();
    let (master, name) = t.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&name), "/dev/pts/0");
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
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.contains("/dev/pts/0") && out.matches("33 111").count() == 2,
        "{out:?}"
    );
}

#[test]
fn terminal_without_console_is_a_clear_error() {
    let Some(f) = fixture("no-console", |s| s["process"]["terminal"] = json!(true)) else {
        return;
    };
    let e =
        f.rt.create(&f.id, &f.bundle, CreateOptions::default())
            .unwrap_err();
    assert!(e.to_string().contains("process.terminal"), "{e}");
    assert!(!f.dir.path().join("state").join(&f.id).exists());
}

#[test]
fn annotations_show_in_state_and_list() {
    let Some(f) = fixture("annotations", |s| {
        s["annotations"] = json!({"org.berth.test": "yes"});
        s["process"]["args"] = json!(["/bin/checker", "sleep", "30"]);
    }) else {
        return;
    };
    let c =
        f.rt.create(&f.id, &f.bundle, CreateOptions::default())
            .unwrap();
    let st = f.rt.state(&f.id).unwrap();
    assert_eq!(
        st.annotations.get("org.berth.test").map(String::as_str),
        Some("yes")
    );
    let j = serde_json::to_value(&st).unwrap();
    assert_eq!(j["ociVersion"], "1.0.2-dev");
    assert_eq!(j["status"], "created");
    let l = f.rt.list().unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].id, f.id);
    f.rt.delete(&f.id, false).unwrap();
    assert_eq!(wait_code(c.pid, 10), 128 + libc::SIGKILL);
}

#[test]
fn exec_through_the_cli_returns_the_exit_code() {
    let Some(f) = fixture("cli-exec", |s| {
        s["process"]["args"] = json!(["/bin/checker", "sleep", "30"])
    }) else {
        return;
    };
    let c =
        f.rt.create(&f.id, &f.bundle, CreateOptions::default())
            .unwrap();
    f.rt.start(&f.id).unwrap();
    let root = f.dir.path().join("state").display().to_string();
    let id = f.id.clone();
    let pid = berth_sys::fork_child(move || {
        // Drop what other test threads had open when we forked (files being written, pipes).
        berth_sys::close_fds_except(&[]).unwrap();
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .unwrap();
        nix::unistd::dup2_stdin(null.as_fd()).unwrap();
        nix::unistd::dup2_stdout(null.as_fd()).unwrap();
        berth_runtime::cli::main(
            ["--root", &root, "exec", &id, "--", "sh", "-c", "exit 7"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
    })
    .unwrap();
    assert_eq!(wait_code(pid, 20), 7);
    f.rt.kill(&f.id, libc::SIGKILL, true).unwrap();
    wait_code(c.pid, 10);
}

#[test]
fn device_cgroup_denies_devices_not_allowed() {
    let Some(f) = fixture("devices", |s| {
        for k in ["bounding", "effective", "permitted"] {
            s["process"]["capabilities"][k] =
                json!(["CAP_MKNOD", "CAP_DAC_OVERRIDE", "CAP_SYSLOG"]);
        }
        // c 1:11 is /dev/kmsg: harmless to read, not in the allowed list.
        s["process"]["args"] = json!(["sh", "-c",
            "mknod /dev/kmsg2 c 1 11 && (head -c 1 /dev/kmsg2 >/dev/null 2>&1 && echo kmsg-open || echo kmsg-denied); head -c 1 /dev/zero | wc -c"]);
    }) else {
        return;
    };
    let (code, out, err) = f.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        vec!["kmsg-denied", "1"],
        "{out}"
    );
}

#[test]
fn device_cgroup_allow_all_rule_allows() {
    let Some(f) = fixture("devices-all", |s| {
        for k in ["bounding", "effective", "permitted"] {
            s["process"]["capabilities"][k] =
                json!(["CAP_MKNOD", "CAP_DAC_OVERRIDE", "CAP_SYSLOG"]);
        }
        s["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
        s["process"]["args"] = json!(["sh", "-c",
            "mknod /dev/kmsg2 c 1 11 && (head -c 1 /dev/kmsg2 >/dev/null 2>&1 && echo kmsg-open || echo kmsg-denied)"]);
    }) else {
        return;
    };
    let (code, out, err) = f.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "kmsg-open");
}

/// A named network namespace (`ip netns add`), removed on drop.
struct NetNs(String);

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

#[test]
fn joins_a_network_namespace_by_path() {
    if !berth_testkit::require_root("netns-join") {
        return;
    }
    let ns = NetNs(berth_testkit::unique::name("btns"));
    let ok = std::process::Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .unwrap()
        .success()
        && std::process::Command::new("ip")
            .args([
                "-n", &ns.0, "link", "add", "berthv0", "type", "veth", "peer", "name", "berthv1",
            ])
            .status()
            .unwrap()
            .success();
    assert!(ok, "ip netns setup");
    let path = format!("/run/netns/{}", ns.0);
    let Some(f) = fixture("netns-join", |s| {
        for n in s["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = json!(path);
            }
        }
    }) else {
        return;
    };
    let r = f.report();
    let mut ifs: Vec<&str> = r["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    ifs.sort();
    assert_eq!(ifs, vec!["berthv0", "berthv1", "lo"]);
}

#[test]
fn force_delete_cleans_a_half_created_container() {
    let Some(f) = fixture("half", |_| {}) else {
        return;
    };
    let dir = f.dir.path().join("state").join(&f.id);
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(
        f.rt.delete(&f.id, false).unwrap_err().kind(),
        berth_runtime::ErrorKind::NotFound
    );
    f.rt.delete(&f.id, true).unwrap();
    assert!(!dir.exists());
}
