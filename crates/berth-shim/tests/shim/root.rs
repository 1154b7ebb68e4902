//! Root tier of the shim tests: busybox containers through runc and through berth's own
//! runtime (in-process), with real namespaces, cgroups and OOM kills.

use super::*;

fn runc() -> Option<PathBuf> {
    ["/usr/sbin/runc", "/usr/bin/runc"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A busybox bundle (rootfs from Debian's busybox-static) with a unique cgroup, run by runc,
/// or with `berth` by berth's own runtime in-process.
fn busybox_ctx_with(
    berth: bool,
    args: &[&str],
    f: impl FnOnce(&mut serde_json::Value, &mut Config),
) -> Option<(Ctx, String)> {
    if !berth_testkit::require_root("shim root tier") {
        return None;
    }
    let Some(runc) = runc() else {
        eprintln!("skipping: runc is not installed (apt-get install runc)");
        return None;
    };
    let mut ctx = Ctx::new(args, |_| {});
    let rootfs = ctx.cfg.bundle.join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for a in ["sh", "cat", "echo", "sleep", "dd", "head", "tr", "hostname"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let out = std::process::Command::new(&runc)
        .arg("spec")
        .current_dir(&ctx.cfg.bundle)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(ctx.cfg.bundle.join("config.json"));
    let out2 = std::process::Command::new(&runc)
        .arg("spec")
        .current_dir(&ctx.cfg.bundle)
        .output()
        .unwrap();
    assert!(
        out2.status.success() || out.status.success(),
        "runc spec failed"
    );
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ctx.cfg.bundle.join("config.json")).unwrap())
            .unwrap();
    let cg = format!(
        "/berth-test-{}/{}",
        berth_testkit::unique::name("sh"),
        ctx.cfg.id
    );
    spec["process"]["args"] = serde_json::json!(args);
    spec["process"]["terminal"] = serde_json::json!(false);
    spec["linux"]["cgroupsPath"] = serde_json::json!(cg);
    f(&mut spec, &mut ctx.cfg);
    std::fs::write(
        ctx.cfg.bundle.join("config.json"),
        serde_json::to_vec_pretty(&spec).unwrap(),
    )
    .unwrap();
    ctx.cfg.runtime = if berth {
        RuntimeChoice::Berth
    } else {
        RuntimeChoice::Binary(runc)
    };
    Some((ctx, cg))
}

/// Remove the test's cgroup parent in every v1 hierarchy (runc removes the leaf).
struct CgroupParent(String);
impl Drop for CgroupParent {
    fn drop(&mut self) {
        let parent = Path::new(&self.0)
            .parent()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches('/')
            .to_string();
        let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        let hierarchies: Vec<_> = rd.flatten().map(|h| h.path()).collect();
        // The shim deletes the container's cgroup after the test has its answer: give it
        // up to 2 s, or the parent (still holding the leaf) would be left behind.
        for _ in 0..100 {
            let mut left = false;
            for h in &hierarchies {
                let _ = std::fs::remove_dir(h.join(self.0.trim_start_matches('/')));
                let p = h.join(&parent);
                left |= std::fs::remove_dir(&p).is_err() && p.exists();
            }
            if !left {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

pub(super) fn root_busybox_container_through_runc() {
    busybox_container(false)
}

pub(super) fn root_busybox_container_through_berth_runtime() {
    busybox_container(true)
}

fn busybox_container(berth: bool) {
    let Some((ctx, cg)) = busybox_ctx_with(
        berth,
        &[
            "/bin/sh",
            "-c",
            "echo pid=$$; read x; echo got-$x; echo oops >&2; exit 7",
        ],
        |_, c| c.stdin = true,
    ) else {
        return;
    };
    let _cg = CgroupParent(cg.clone());
    let l = ctx.launch().expect("launch through runc");
    let c = ctx.client();
    let mut a = c
        .attach(AttachOpts {
            stdin: true,
            ..all_opts()
        })
        .unwrap();
    c.start().unwrap();
    a.write_all(b"abc\n").unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    let (out, err) = read_framed(&mut a);
    assert_eq!(out, "pid=1\ngot-abc\n", "PID 1 in its own pid namespace");
    assert_eq!(err, "oops\n");
    assert_eq!(c.wait().unwrap(), (7, false));
    let ex = client::read_exit(&ctx.cfg.state_dir).unwrap().unwrap();
    assert_eq!((ex.exit_code, ex.pid), (7, l.pid));
    let e = ctx.entries();
    assert!(
        e.iter()
            .any(|e| e.stream == "stdout" && e.log == "got-abc\n"),
        "{e:?}"
    );
    // runtime delete ran: the container's cgroup is gone.
    wait_gone(&c);
    assert!(!Path::new("/sys/fs/cgroup/memory")
        .join(cg.trim_start_matches('/'))
        .exists());
}

pub(super) fn root_oom_kill_is_recorded() {
    oom(false)
}

pub(super) fn root_oom_kill_is_recorded_berth_runtime() {
    oom(true)
}

fn oom(berth: bool) {
    let Some((ctx, cg)) = busybox_ctx_with(
        berth,
        &[
            "/bin/dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=200M",
            "count=1",
        ],
        |spec, _| {
            spec["linux"]["resources"]["memory"] =
                serde_json::json!({"limit": 33554432, "swap": 33554432});
        },
    ) else {
        return;
    };
    let _cg = CgroupParent(cg);
    ctx.launch().expect("launch");
    let c = ctx.client();
    c.start().unwrap();
    assert_eq!(c.wait().unwrap(), (137, true));
    assert!(
        client::read_exit(&ctx.cfg.state_dir)
            .unwrap()
            .unwrap()
            .oom_killed
    );
}

pub(super) fn root_exec_and_tty_runc() {
    exec_and_tty(false)
}

pub(super) fn root_exec_and_tty_berth_runtime() {
    exec_and_tty(true)
}

/// A tty container (raw output, resize), and execs with and without a tty.
fn exec_and_tty(berth: bool) {
    let Some((ctx, cg)) = busybox_ctx_with(
        berth,
        &[
            "/bin/sh",
            "-c",
            "read x; echo in-tty-$x; stty size; exec sleep 30",
        ],
        |spec, c| {
            c.tty = true;
            c.stdin = true;
            spec["process"]["terminal"] = serde_json::json!(true);
        },
    ) else {
        return;
    };
    let _cg = CgroupParent(cg);
    ctx.launch().expect("launch tty container");
    let c = ctx.client();
    c.resize(40, 120).unwrap();
    let mut a = c
        .attach(AttachOpts {
            stdin: true,
            ..all_opts()
        })
        .unwrap();
    c.start().unwrap();
    a.write_all(b"zz\n").unwrap();
    let mut seen = String::new();
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    while !seen.contains("40 120") && t.elapsed() < Duration::from_secs(5) {
        let n = a.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(
        seen.contains("in-tty-zz\r\n") && seen.contains("40 120"),
        "{seen:?}"
    );
    // exec without a tty: framed; with a tty: raw, resizable.
    let env = serde_json::json!(["PATH=/bin"]);
    let (_, mut s) = c
        .exec(&ExecRequest {
            exec_id: "x1".into(),
            // pid 1 is still the shell for a moment after its last output ("exec sleep 30"):
            // look until it is sleep (5 s at most).
            process: serde_json::json!({"args": ["/bin/sh", "-c", "i=0; while [ $i -lt 50 ]; do c=$(tr '\\0' ' ' < /proc/1/cmdline); case \"$c\" in sleep*) break;; esac; i=$((i+1)); sleep 0.1; done; echo \"$c\"; exit 4"], "env": env, "cwd": "/", "user": {"uid": 0, "gid": 0}}),
            tty: false,
            stdin: false,
        })
        .unwrap();
    let (out, _) = read_framed(&mut s);
    assert!(
        out.starts_with("sleep 30"),
        "exec sees the container's pid 1: {out:?}"
    );
    assert_eq!(
        client::read_exec_exit(&ctx.cfg.state_dir, "x1")
            .unwrap()
            .unwrap()
            .exit_code,
        4
    );
    let (_, mut t2) = c
        .exec(&ExecRequest {
            exec_id: "x2".into(),
            process: serde_json::json!({"args": ["/bin/sh", "-c", "sleep 0.3; stty size"], "env": env, "cwd": "/", "user": {"uid": 0, "gid": 0}}),
            tty: true,
            stdin: false,
        })
        .unwrap();
    c.resize_exec("x2", 12, 34).unwrap();
    let mut out = String::new();
    let _ = t2.read_to_string(&mut out);
    assert!(out.contains("12 34"), "{out:?}");
    assert_eq!(
        client::read_exec_exit(&ctx.cfg.state_dir, "x2")
            .unwrap()
            .unwrap()
            .exit_code,
        0
    );
    c.kill(9).unwrap();
    assert_eq!(c.wait().unwrap(), (137, false));
}

/// The real binaries as the shim, idle, with a busybox container: `berth shim` and the small
/// `berth-shim` (release builds preferred). Prints VmRSS and its split; the figure for the
/// ≤ 1 MB target.
pub(super) fn root_berth_shim_binary_rss() {
    let root = berth_testkit::workspace_root();
    let mut measured = 0;
    for name in ["berth", "berth-shim"] {
        let bin = ["target/release", "target/debug"]
            .iter()
            .map(|d| root.join(d).join(name))
            .find(|p| p.exists());
        let Some(bin) = bin else {
            eprintln!("  {name} not built; skipped");
            continue;
        };
        let Some((ctx, cg)) = busybox_ctx_with(true, &["/bin/sleep", "30"], |_, _| {}) else {
            return;
        };
        let _cg = CgroupParent(cg);
        let l = client::launch(&bin, &["shim"], &ctx.cfg).expect("shim binary");
        let c = ctx.client();
        c.start().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        println!(
            "  idle shim VmRSS with {}: {}",
            bin.display(),
            vm_rss_kb(l.shim_pid)
        );
        c.kill(9).unwrap();
        assert_eq!(c.wait().unwrap().0, 137);
        measured += 1;
    }
    if measured == 0 {
        eprintln!("  skipping: build berth first (cargo build -p berth)");
    }
}

/// The shim blocks SIGCHLD and ignores SIGPIPE (Rust's default); neither may leak into the
/// container or an exec: a blocked mask and ignored dispositions both survive execve.
pub(super) fn root_container_starts_with_clean_signal_state() {
    let show = "grep -E '^Sig(Blk|Ign)' /proc/self/status";
    for berth in [false, true] {
        let script = format!("{show}; exec sleep 30");
        let Some((ctx, cg)) = busybox_ctx_with(berth, &["/bin/sh", "-c", &script], |_, _| {})
        else {
            return;
        };
        let _cg = CgroupParent(cg);
        ctx.launch().unwrap();
        let c = ctx.client();
        c.start().unwrap();
        let runtime = if berth { "berth runtime" } else { "runc" };
        let t = Instant::now();
        while !ctx.entries().iter().any(|e| e.log.starts_with("SigIgn")) {
            assert!(t.elapsed() < Duration::from_secs(5), "{runtime}: no output");
            std::thread::sleep(Duration::from_millis(10));
        }
        let init: String = ctx.entries().iter().map(|e| e.log.clone()).collect();
        let (_, mut s) = c
            .exec(&ExecRequest {
                exec_id: "sig".into(),
                process: serde_json::json!({"args": ["/bin/sh", "-c", show], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}}),
                tty: false,
                stdin: false,
            })
            .unwrap();
        let (exec, _) = read_framed(&mut s);
        for (who, out) in [("init", &init), ("exec", &exec)] {
            let field = |k: &str| {
                out.lines()
                    .find(|l| l.starts_with(k))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .map(|v| u64::from_str_radix(v, 16).unwrap())
                    .unwrap_or_else(|| panic!("{runtime} {who}: {k} missing in {out:?}"))
            };
            assert_eq!(
                field("SigBlk:"),
                0,
                "{runtime} {who}: blocked signals leaked"
            );
            assert_eq!(
                field("SigIgn:") & (1 << (libc::SIGPIPE - 1)),
                0,
                "{runtime} {who}: SIGPIPE ignored"
            );
        }
        c.kill(9).unwrap();
        assert_eq!(c.wait().unwrap(), (137, false));
    }
}
