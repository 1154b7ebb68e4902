//! Root tier: the engine end to end — real shim, real runtime, real overlay and cgroups — on a
//! busybox image imported from Debian's busybox-static. `harness = false`: this binary is
//! also `berth` for the engine (`<this> shim ...`, `<this> runtime ...`), the way the daemon's
//! own binary is.
//!
//! Each test gets its own data/exec roots and a unique cgroup parent; a guard kills what the
//! test started, unmounts and removes its cgroups even when an assertion fails.

use berth_engine::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("shim") => std::process::exit(berth_shim::main(args[2..].to_vec())),
        Some("runtime") => std::process::exit(berth_runtime::cli::main(args[2..].to_vec())),
        Some("init") => std::process::exit(berth_init::main(args[2..].to_vec())),
        _ => {}
    }
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let tests: &[berth_testkit::harness::Test] = &[
        ("run_echo_logs_exit_code_remove", || {
            block_on(run_echo_logs_exit_code_remove())
        }),
        ("missing_command_is_127", || {
            block_on(missing_command_is_127())
        }),
        ("oom_kill_is_137_and_recorded", || {
            block_on(oom_kill_is_137_and_recorded())
        }),
        ("named_volume_keeps_data_and_is_filled_from_image", || {
            block_on(named_volume_keeps_data_and_is_filled_from_image())
        }),
        ("attach_before_start_gets_stdin_and_output", || {
            block_on(attach_before_start_gets_stdin_and_output())
        }),
        ("exec_stop_signal_and_stats", || {
            block_on(exec_stop_signal_and_stats())
        }),
        ("auto_remove_and_conflicts", || {
            block_on(auto_remove_and_conflicts())
        }),
        ("run_rm_timings", || block_on(run_rm_timings())),
        ("images_save_load_tag_remove", || {
            block_on(images_save_load_tag_remove())
        }),
        ("bridge_network_and_published_port", || {
            block_on(bridge_network_and_published_port())
        }),
        ("restart_policy_on_failure", || {
            block_on(restart_policy_on_failure())
        }),
        ("init_reaps_orphans_and_forwards_signals", || {
            block_on(init_reaps_orphans_and_forwards_signals())
        }),
        ("init_in_a_container", || block_on(init_in_a_container())),
        ("live_restore_readopts_running_container", || {
            block_on(live_restore_readopts_running_container())
        }),
    ];
    berth_testkit::harness::run(&args, tests)
}

/// Runs one async test on its own runtime; root-tier, so it returns early when not root.
fn block_on(test: impl std::future::Future<Output = ()>) {
    if !berth_testkit::require_root("root_engine") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
}

/// A test's engine, roots and cleanup.
struct Env {
    dir: tempfile::TempDir,
    cfg: EngineConfig,
    engine: Option<Engine>,
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("berth-engine-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let cfg = EngineConfig {
            data_root: dir.path().join("data"),
            // Short: the shim socket path must fit 107 bytes.
            exec_root: PathBuf::from("/run").join(berth_testkit::unique::name("bte")),
            cgroup_parent: format!("/{}", berth_testkit::unique::name("bte")),
            // `BERTH_BINARY=target/release/berth` measures with a release shim and runtime.
            berth_binary: std::env::var_os("BERTH_BINARY")
                .map(PathBuf::from)
                .unwrap_or_else(|| std::env::current_exe().unwrap()),
            default_stop_timeout: 2,
            // Unique kernel-global names: the kernel is shared with other engines and tests.
            net: Some(berth_net::NetConfig {
                default_bridge: berth_testkit::unique::name("btbr"),
                user_bridge_prefix: berth_testkit::unique::name("btu"),
                veth_prefix: berth_testkit::unique::name("btv"),
                nft_table: berth_testkit::unique::name("btnft"),
                // Our own random /24s: the shared kernel may already route the usual pools
                // (another engine, or leftovers on a bridge that is not ours).
                address_pool: test_pool(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let engine = Engine::open(cfg.clone()).await.unwrap();
        // The busybox image, imported from a tarball as `docker import` would.
        let tar = dir.path().join("busybox.tar");
        std::fs::write(&tar, berth_testkit::images::busybox_layer_tar().unwrap()).unwrap();
        engine
            .image_import(&tar, Some("busybox:latest"))
            .await
            .unwrap();
        Env {
            dir,
            cfg,
            engine: Some(engine),
        }
    }

    fn e(&self) -> &Engine {
        self.engine.as_ref().unwrap()
    }

    async fn create(&self, f: impl FnOnce(&mut ContainerSpec)) -> String {
        let mut s = ContainerSpec {
            image: "busybox".into(),
            ..Default::default()
        };
        f(&mut s);
        self.e().create_container(s).await.unwrap().id
    }

    /// create + wait(next-exit) + start + result.
    async fn run(&self, f: impl FnOnce(&mut ContainerSpec)) -> (String, i64) {
        let id = self.create(f).await;
        let w = self
            .e()
            .wait_container(&id, WaitCondition::NextExit)
            .await
            .unwrap();
        self.e().start_container(&id).await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(20), w.result())
            .await
            .expect("container exit");
        (id, r.status_code)
    }

    async fn logs(&self, id: &str) -> (String, String) {
        let mut rx = self
            .e()
            .container_logs(
                id,
                LogOptions {
                    stdout: true,
                    stderr: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let (mut out, mut err) = (String::new(), String::new());
        while let Some(e) = rx.recv().await {
            let e = e.unwrap();
            let s = String::from_utf8_lossy(&e.bytes).to_string();
            match e.stream {
                LogStreamKind::Stdout => out.push_str(&s),
                LogStreamKind::Stderr => err.push_str(&s),
            }
        }
        (out, err)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(e) = self.engine.take() {
            e.shutdown();
        }
        // Kill what we started (by pid, from the shims' records), unmount, drop cgroups,
        // remove our bridge and nft table.
        let states = self.cfg.exec_root.join("containers");
        if let Ok(rd) = std::fs::read_dir(&states) {
            for d in rd.flatten() {
                if let Ok(b) = std::fs::read(d.path().join("shim.json")) {
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b) {
                        for k in ["pid", "shim_pid"] {
                            if let Some(p) = v[k].as_i64().filter(|p| *p > 1) {
                                let _ = nix::sys::signal::kill(
                                    nix::unistd::Pid::from_raw(p as i32),
                                    nix::sys::signal::SIGKILL,
                                );
                            }
                        }
                    }
                }
                let _ = berth_image::unmount(&d.path().join("bundle/rootfs"));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        let parent = self.cfg.cgroup_parent.trim_start_matches('/').to_string();
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in rd.flatten() {
                let p = h.path().join(&parent);
                if let Ok(kids) = std::fs::read_dir(&p) {
                    for k in kids.flatten() {
                        if k.path().is_dir() {
                            let _ = std::fs::remove_dir(k.path());
                        }
                    }
                }
                let _ = std::fs::remove_dir(&p);
            }
        }
        // Mounts below the test dirs (overlays of containers) must be gone before rm -rf.
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            for root in [self.dir.path(), self.cfg.exec_root.as_path()] {
                let root = root.display().to_string();
                for l in info.lines() {
                    if let Some(m) = l.split(' ').nth(4) {
                        if m.starts_with(&root) {
                            let _ = berth_image::unmount(Path::new(m));
                        }
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.cfg.exec_root);
        if let Some(n) = &self.cfg.net {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &n.default_bridge])
                .output();
            // User network bridges a failed test left behind (our unique prefix only).
            if let Ok(out) = std::process::Command::new("ip")
                .args(["-br", "link"])
                .output()
            {
                for l in String::from_utf8_lossy(&out.stdout).lines() {
                    let name = l
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .split('@')
                        .next()
                        .unwrap_or("");
                    if name.starts_with(&n.user_bridge_prefix) {
                        let _ = std::process::Command::new("ip")
                            .args(["link", "del", name])
                            .output();
                    }
                }
            }
            let _ = std::process::Command::new("nft")
                .args(["delete", "table", "ip", &n.nft_table])
                .output();
        }
    }
}

fn test_pool() -> Vec<ipnet::Ipv4Net> {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
    (0..16u64)
        .map(|i| {
            let x = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(i.wrapping_mul(1442695040888963407));
            format!("10.{}.{}.0/24", 200 + (x >> 33) % 50, (x >> 17) % 256)
                .parse()
                .unwrap()
        })
        .collect()
}

fn sh(s: &mut ContainerSpec, script: &str) {
    s.cmd = Some(vec!["sh".into(), "-c".into(), script.into()]);
}

async fn run_echo_logs_exit_code_remove() {
    let env = Env::new().await;
    let t0 = Instant::now();
    let (id, code) = env
        .run(|s| {
            s.name = Some("hello".into());
            sh(s, "echo hello; echo oops >&2; cat /etc/hostname; exit 3");
        })
        .await;
    println!("  create+start+exit: {:?}", t0.elapsed());
    assert_eq!(code, 3);
    let (out, err) = env.logs(&id).await;
    assert_eq!(out, format!("hello\n{}\n", &id[..12]));
    assert_eq!(err, "oops\n");
    let r = env.e().inspect_container("hello").await.unwrap();
    assert_eq!(r.state.status, ContainerStatus::Exited);
    assert_eq!(r.state.exit_code, 3);
    assert!(!r.state.running && r.state.pid == 0);
    assert!(r.state.finished_at.unwrap() >= r.state.started_at.unwrap());
    // Exited containers are listed only with `all`.
    assert!(env
        .e()
        .list_containers(ListOptions::default())
        .await
        .unwrap()
        .is_empty());
    let all = env
        .e()
        .list_containers(ListOptions {
            all: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert!(all[0].status.starts_with("Exited (3)"), "{}", all[0].status);
    // The rootfs is unmounted after the exit.
    assert!(!std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&format!("{id}/bundle/rootfs")));
    env.e()
        .remove_container("hello", RemoveOptions::default())
        .await
        .unwrap();
    assert_eq!(
        env.e().inspect_container(&id).await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert!(!env.cfg.data_root.join("containers").join(&id).exists());
}

async fn missing_command_is_127() {
    let env = Env::new().await;
    let id = env.create(|s| s.cmd = Some(vec!["nosuchcmd".into()])).await;
    let e = env.e().start_container(&id).await.unwrap_err();
    println!("  start error: {}", e.message);
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e:?}");
    let r = env.e().inspect_container(&id).await.unwrap();
    assert_eq!(r.state.exit_code, 127);
    assert!(!r.state.running);
    env.e()
        .remove_container(&id, RemoveOptions::default())
        .await
        .unwrap();
    // With --rm, a failed start removes the container (Docker does too).
    let id = env
        .create(|s| {
            s.host.auto_remove = true;
            s.cmd = Some(vec!["nosuchcmd".into()]);
        })
        .await;
    let w = env
        .e()
        .wait_container(&id, WaitCondition::Removed)
        .await
        .unwrap();
    assert!(env.e().start_container(&id).await.is_err());
    let r = tokio::time::timeout(Duration::from_secs(10), w.result())
        .await
        .unwrap();
    assert_eq!(r.status_code, 127);
    assert_eq!(
        env.e().inspect_container(&id).await.unwrap_err().kind,
        ErrorKind::NotFound
    );
}

async fn oom_kill_is_137_and_recorded() {
    let env = Env::new().await;
    let (id, code) = env
        .run(|s| {
            s.host.memory = 32 << 20;
            sh(s, "a=$(head -c 200m /dev/zero | tr '\\0' a); echo survived");
        })
        .await;
    assert_eq!(code, 137);
    let r = env.e().inspect_container(&id).await.unwrap();
    assert!(r.state.oom_killed, "{:?}", r.state);
    assert_eq!(r.config.host.memory, 32 << 20);
}

async fn named_volume_keeps_data_and_is_filled_from_image() {
    let env = Env::new().await;
    let (a, code) = env
        .run(|s| {
            s.host.binds = vec!["keep:/data".into(), "etcvol:/mnt/etc".into()];
            sh(s, "echo persisted > /data/x");
        })
        .await;
    assert_eq!(code, 0);
    env.e()
        .remove_container(
            &a,
            RemoveOptions {
                force: false,
                volumes: true,
            },
        )
        .await
        .unwrap();
    // Named volumes survive `rm -v`.
    let v = env.e().volume_inspect("keep").await.unwrap();
    assert!(Path::new(&v.mountpoint).join("x").exists());
    let (b, code) = env
        .run(|s| {
            s.host.binds = vec!["keep:/data:ro".into()];
            sh(s, "cat /data/x; echo no > /data/y || echo readonly");
        })
        .await;
    assert_eq!(code, 0);
    let (out, _) = env.logs(&b).await;
    assert_eq!(out, "persisted\nreadonly\n");
    // In use → conflict; after removal it goes.
    let e = env.e().volume_remove("keep", false).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    env.e()
        .remove_container(&b, RemoveOptions::default())
        .await
        .unwrap();
    env.e().volume_remove("keep", false).await.unwrap();
    // A new volume over an image directory is filled from the image (copy-up).
    let (c, _) = env
        .run(|s| {
            s.host.binds = vec!["fromimg:/etc".into()];
            sh(s, "true");
        })
        .await;
    let v = env.e().volume_inspect("fromimg").await.unwrap();
    assert!(
        std::fs::read_to_string(Path::new(&v.mountpoint).join("passwd"))
            .unwrap()
            .starts_with("root:")
    );
    env.e()
        .remove_container(&c, RemoveOptions::default())
        .await
        .unwrap();
    let names: Vec<String> = env
        .e()
        .volume_list(Filters::new())
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert!(
        names.contains(&"fromimg".to_string()) && names.contains(&"etcvol".to_string()),
        "{names:?}"
    );
}

/// Read a multiplexed stream to EOF: (stdout, stderr).
async fn demux(io: &mut Box<dyn AttachIo>) -> (String, String) {
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), io.read_to_end(&mut buf))
        .await
        .expect("stream end")
        .unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i + 8 <= buf.len() {
        let len = u32::from_be_bytes([buf[i + 4], buf[i + 5], buf[i + 6], buf[i + 7]]) as usize;
        let payload = &buf[i + 8..(i + 8 + len).min(buf.len())];
        match buf[i] {
            2 => err.extend_from_slice(payload),
            _ => out.extend_from_slice(payload),
        }
        i += 8 + len;
    }
    (
        String::from_utf8_lossy(&out).into(),
        String::from_utf8_lossy(&err).into(),
    )
}

async fn attach_before_start_gets_stdin_and_output() {
    let env = Env::new().await;
    let id = env
        .create(|s| {
            s.open_stdin = true;
            s.stdin_once = true;
            s.cmd = Some(vec!["cat".into()]);
        })
        .await;
    let mut a = env
        .e()
        .attach_container(
            &id,
            AttachOptions {
                stdin: true,
                stdout: true,
                stderr: true,
                stream: true,
                logs: false,
            },
        )
        .await
        .unwrap();
    assert!(!a.tty);
    let w = env
        .e()
        .wait_container(&id, WaitCondition::NextExit)
        .await
        .unwrap();
    a.io.write_all(b"hi\n").await.unwrap();
    a.io.shutdown().await.unwrap();
    env.e().start_container(&id).await.unwrap();
    let (out, _) = demux(&mut a.io).await;
    assert_eq!(out, "hi\n");
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), w.result())
            .await
            .unwrap()
            .status_code,
        0
    );
}

async fn exec_stop_signal_and_stats() {
    let env = Env::new().await;
    let id = env
        .create(|s| {
            s.name = Some("web".into());
            // PID 1 ignores SIGTERM unless it has a handler: trap it and exit 7.
            sh(s, "trap 'exit 7' USR1; while true; do sleep 0.1; done");
            s.stop_signal = Some("SIGUSR1".into());
        })
        .await;
    env.e().start_container("web").await.unwrap();
    let e = env.e().start_container("web").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotModified);
    let r = env.e().inspect_container("web").await.unwrap();
    assert!(r.state.running && r.state.pid > 0);
    // Its own pid namespace: the host pid's NSpid shows 1 inside.
    let status = std::fs::read_to_string(format!("/proc/{}/status", r.state.pid)).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.trim_end().ends_with("\t1"), "{nspid}");

    let xid = env
        .e()
        .exec_create(
            "web",
            ExecSpec {
                cmd: vec!["cat".into(), "/etc/hostname".into()],
                attach_stdout: true,
                attach_stderr: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut s = env
        .e()
        .exec_start(&xid, ExecStartOptions::default())
        .await
        .unwrap()
        .unwrap();
    let (out, _) = demux(&mut s.io).await;
    assert_eq!(out, format!("{}\n", &id[..12]));
    assert_eq!(env.e().exec_inspect(&xid).await.unwrap().exit_code, Some(0));

    let top = env.e().top_container("web", None).await.unwrap();
    assert!(
        top.processes
            .iter()
            .any(|p| p[1] == r.state.pid.to_string()),
        "{top:?}"
    );

    let t0 = Instant::now();
    let st = env.e().container_stats("web").await.unwrap();
    println!("  one-shot stats: {:?}", t0.elapsed());
    assert!(st.cgroup.as_ref().unwrap().memory_usage > 0);
    assert!(st.pre_cgroup.is_some() && st.preread.is_some());
    assert!(st.system_cpu_ns >= st.pre_system_cpu_ns);

    env.e().pause_container("web").await.unwrap();
    assert_eq!(
        env.e().inspect_container("web").await.unwrap().state.status,
        ContainerStatus::Paused
    );
    env.e().unpause_container("web").await.unwrap();

    let t0 = Instant::now();
    env.e().stop_container("web", Some(10), None).await.unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "stop signal was honoured at once"
    );
    let r = env.e().inspect_container("web").await.unwrap();
    assert_eq!(r.state.exit_code, 7);
    let e = env.e().stop_container("web", None, None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotModified);
    let e = env.e().kill_container("web", None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    env.e()
        .remove_container("web", RemoveOptions::default())
        .await
        .unwrap();
}

async fn auto_remove_and_conflicts() {
    let env = Env::new().await;
    let id = env
        .create(|s| {
            s.name = Some("web".into());
            s.cmd = Some(vec!["sleep".into(), "30".into()]);
        })
        .await;
    let e = env
        .e()
        .create_container(ContainerSpec {
            name: Some("/web".into()),
            image: "busybox".into(),
            cmd: Some(vec!["true".into()]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(e.message.contains(&id), "{}", e.message);
    env.e().start_container(&id).await.unwrap();
    let e = env
        .e()
        .remove_container("web", RemoveOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.message, format!("You cannot remove a running container {id}. Stop the container before attempting removal or force remove"));
    // Default stop timeout (2 s in this env): sleep ignores SIGTERM as PID 1 → SIGKILL.
    let t0 = Instant::now();
    env.e().stop_container("web", None, None).await.unwrap();
    let el = t0.elapsed();
    assert!(
        el >= Duration::from_secs(2) && el < Duration::from_secs(6),
        "{el:?}"
    );
    assert_eq!(
        env.e()
            .inspect_container("web")
            .await
            .unwrap()
            .state
            .exit_code,
        137
    );
    env.e()
        .remove_container("web", RemoveOptions::default())
        .await
        .unwrap();

    let e = env
        .e()
        .create_container(ContainerSpec {
            image: "nosuchimage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::NotFound, "No such image: nosuchimage:latest")
    );

    // --rm: the waiter for `removed` resolves after the container is gone.
    let t0 = Instant::now();
    let id = env
        .create(|s| {
            s.host.auto_remove = true;
            s.cmd = Some(vec!["true".into()]);
        })
        .await;
    let w = env
        .e()
        .wait_container(&id, WaitCondition::Removed)
        .await
        .unwrap();
    env.e().start_container(&id).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), w.result())
        .await
        .unwrap();
    println!("  run --rm true: {:?}", t0.elapsed());
    assert_eq!(r.status_code, 0);
    assert_eq!(
        env.e().inspect_container(&id).await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    // Force removal of a running container.
    let id = env
        .create(|s| s.cmd = Some(vec!["sleep".into(), "30".into()]))
        .await;
    env.e().start_container(&id).await.unwrap();
    env.e()
        .remove_container(
            &id,
            RemoveOptions {
                force: true,
                volumes: true,
            },
        )
        .await
        .unwrap();
    assert!(env
        .e()
        .list_containers(ListOptions {
            all: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty());
}

async fn restart_policy_on_failure() {
    let env = Env::new().await;
    let id = env
        .create(|s| {
            s.host.restart_policy = RestartPolicy {
                name: "on-failure".into(),
                maximum_retry_count: 2,
            };
            sh(s, "echo run; exit 5");
        })
        .await;
    env.e().start_container(&id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = env.e().inspect_container(&id).await.unwrap();
        if r.restart_count == 2 && r.state.status == ContainerStatus::Exited {
            assert_eq!(r.state.exit_code, 5);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restart policy did not settle: {:?} count {}",
            r.state,
            r.restart_count
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (out, _) = env.logs(&id).await;
    assert_eq!(out, "run\nrun\nrun\n");
}

async fn live_restore_readopts_running_container() {
    let mut env = Env::new().await;
    let id = env
        .create(|s| {
            s.name = Some("ticker".into());
            sh(
                s,
                "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done",
            );
        })
        .await;
    env.e().start_container(&id).await.unwrap();
    let pid = env.e().inspect_container(&id).await.unwrap().state.pid;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The daemon goes away (its tasks die with it); the container keeps running.
    let old = env.engine.take().unwrap();
    old.shutdown();
    drop(old);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(PathBuf::from(format!("/proc/{pid}")).exists());
    let engine = Engine::open(env.cfg.clone()).await.unwrap();
    env.engine = Some(engine);
    let r = env.e().inspect_container("ticker").await.unwrap();
    assert_eq!(r.state.status, ContainerStatus::Running);
    assert_eq!(r.state.pid, pid);
    // Follow the logs, then stop: no line is lost (0, 1, 2, ... without gaps).
    let mut rx = env
        .e()
        .container_logs(
            "ticker",
            LogOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.e()
        .stop_container("ticker", Some(1), None)
        .await
        .unwrap();
    let mut n = 0u64;
    while let Some(e) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("follow ends when the container stops")
    {
        let line = String::from_utf8(e.unwrap().bytes).unwrap();
        assert_eq!(line.trim(), n.to_string(), "line {n} missing");
        n += 1;
    }
    assert!(n > 10, "{n}");
    let r = env.e().inspect_container("ticker").await.unwrap();
    assert_eq!(r.state.exit_code, 137);
}

/// Zombie children of `pid` (state Z in /proc/*/stat).
fn zombies_of(pid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|s| {
            let Some(close) = s.rfind(')') else {
                return false;
            };
            let f: Vec<&str> = s[close + 2..].split_whitespace().collect();
            f.first() == Some(&"Z") && f.get(1) == Some(&pid.to_string().as_str())
        })
        .count()
}

async fn init_reaps_orphans_and_forwards_signals() {
    // Run on the host (the test binary is not static, so not inside busybox): the init is a
    // subreaper, so the orphaned `sleep` comes to it and must be reaped, not left a zombie.
    let exe = std::env::current_exe().unwrap();
    let mut c = std::process::Command::new(&exe)
        .args([
            "init",
            "--",
            "/bin/busybox",
            "sh",
            "-c",
            "(/bin/busybox sleep 0.05 &); /bin/busybox sleep 0.6; exit 4",
        ])
        .spawn()
        .unwrap();
    let pid = c.id();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(zombies_of(pid), 0, "init left a zombie");
    assert_eq!(c.wait().unwrap().code(), Some(4));

    let mut c = std::process::Command::new(&exe)
        .args([
            "init",
            "--",
            "/bin/busybox",
            "sh",
            "-c",
            "trap 'exit 9' TERM; while true; do /bin/busybox sleep 0.05; done",
        ])
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(c.wait().unwrap().code(), Some(9));

    let out = std::process::Command::new(&exe)
        .args(["init", "--", "/no/such/cmd"])
        .status()
        .unwrap();
    assert_eq!(out.code(), Some(127));
}

async fn bridge_network_and_published_port() {
    let env = Env::new().await;
    let port = berth_testkit::unique::free_port();
    let id = env
        .create(|s| {
            s.name = Some("web".into());
            s.exposed_ports = vec!["80/tcp".into()];
            s.host.port_bindings.insert(
                "80/tcp".into(),
                vec![PortBinding { host_ip: "127.0.0.1".into(), host_port: port.to_string() }],
            );
            sh(s, "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www");
        })
        .await;
    env.e().start_container(&id).await.unwrap();
    let r = env.e().inspect_container(&id).await.unwrap();
    let ep = r.networks.get("bridge").expect("on the default bridge");
    assert!(
        !ep.ip_address.is_empty() && !ep.gateway.is_empty(),
        "{ep:?}"
    );
    assert_eq!(ep.ports.len(), 1);
    assert_eq!(ep.ports[0].host_port, port);
    // /etc/hosts inside names the container by its address.
    let xid = env
        .e()
        .exec_create(
            "web",
            ExecSpec {
                cmd: vec!["cat".into(), "/etc/hosts".into()],
                attach_stdout: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut s = env
        .e()
        .exec_start(&xid, ExecStartOptions::default())
        .await
        .unwrap()
        .unwrap();
    let (hosts, _) = demux(&mut s.io).await;
    assert!(
        hosts.contains(&format!("{}\t{}", ep.ip_address, &id[..12])),
        "{hosts}"
    );
    // The published port reaches httpd (loopback only: 127.0.0.1).
    let mut body = String::new();
    for _ in 0..50 {
        if let Ok(mut c) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            c.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
            let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_string(&mut body)).await;
            if body.contains("hello-from-web") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(body.contains("hello-from-web"), "{body}");
    // A user network connected to the running container: a second interface and address.
    let n = env
        .e()
        .network_create(NetworkCreate {
            name: "btnet".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    env.e().network_connect("btnet", "web").await.unwrap();
    let r = env.e().inspect_container("web").await.unwrap();
    let ep2 = r.networks.get("btnet").expect("connected");
    assert!(
        !ep2.ip_address.is_empty() && ep2.network_id == n.id,
        "{ep2:?}"
    );
    let e = env.e().network_connect("btnet", "web").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    env.e().network_disconnect("btnet", "web").await.unwrap();
    assert!(!env
        .e()
        .inspect_container("web")
        .await
        .unwrap()
        .networks
        .contains_key("btnet"));
    env.e().network_remove("btnet").await.unwrap();
    let list = env
        .e()
        .list_containers(ListOptions::default())
        .await
        .unwrap();
    assert_eq!(
        list[0].ports,
        vec![(
            "80/tcp".to_string(),
            vec![PortBinding {
                host_ip: "127.0.0.1".into(),
                host_port: port.to_string()
            }]
        )]
    );
    env.e()
        .remove_container(
            "web",
            RemoveOptions {
                force: true,
                volumes: false,
            },
        )
        .await
        .unwrap();
    // A network that does not exist is refused at create.
    let e = env
        .e()
        .create_container(ContainerSpec {
            image: "busybox".into(),
            cmd: Some(vec!["true".into()]),
            host: HostSpec {
                network_mode: "nosuchnet".into(),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
}

/// `run --rm true` ten times through the engine; prints median create / start / exit+remove.
/// (Debug builds of a test binary that is also the shim and runtime: absolute numbers are
/// inflated; the split shows where time goes. Fails only if a run fails.)
async fn run_rm_timings() {
    let env = Env::new().await;
    let (mut create, mut start, mut done) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..10 {
        let t0 = Instant::now();
        let id = env
            .create(|s| {
                s.host.auto_remove = true;
                s.host.network_mode = "none".into();
                s.cmd = Some(vec!["true".into()]);
            })
            .await;
        let w = env
            .e()
            .wait_container(&id, WaitCondition::Removed)
            .await
            .unwrap();
        let t1 = Instant::now();
        env.e().start_container(&id).await.unwrap();
        let t2 = Instant::now();
        assert_eq!(w.result().await.status_code, 0);
        let t3 = Instant::now();
        create.push(t1 - t0);
        start.push(t2 - t1);
        done.push(t3 - t2);
    }
    for v in [&mut create, &mut start, &mut done] {
        v.sort();
    }
    println!(
        "  median: create {:?}, start {:?}, exit+remove {:?}",
        create[5], start[5], done[5]
    );
}

async fn images_save_load_tag_remove() {
    let env = Env::new().await;
    let e = env.e();
    e.image_tag("busybox", "example.test/bb", Some("v1"))
        .await
        .unwrap();
    let img = e.image_inspect("example.test/bb:v1").await.unwrap();
    assert_eq!(
        img.summary.repo_tags.len(),
        2,
        "{:?}",
        img.summary.repo_tags
    );
    // In use by a container: refused without force.
    let id = env.create(|s| s.cmd = Some(vec!["true".into()])).await;
    let err = e
        .image_remove(&img.summary.id, false, false)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    e.remove_container(&id, RemoveOptions::default())
        .await
        .unwrap();
    // Save, delete, load back: same id.
    let tar = env.dir.path().join("saved.tar");
    e.image_save(&["busybox:latest".to_string()], &tar)
        .await
        .unwrap();
    let gone = e.image_remove(&img.summary.id, true, true).await.unwrap();
    assert!(
        gone.iter()
            .any(|g| matches!(g, ImageDeleteItem::Deleted(_))),
        "{gone:?}"
    );
    assert_eq!(
        e.image_inspect("busybox").await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    let loaded = e.image_load(&tar).await.unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, img.summary.id);
    let (cid, code) = env.run(|s| s.cmd = Some(vec!["true".into()])).await;
    assert_eq!(code, 0);
    // Prune: the image is used by a (stopped) container, so it stays; without it, it goes.
    let (gone, _) = e.image_prune(true).await.unwrap();
    assert!(gone.is_empty(), "{gone:?}");
    e.remove_container(&cid, RemoveOptions::default())
        .await
        .unwrap();
    let (gone, _bytes) = e.image_prune(true).await.unwrap();
    assert!(
        gone.iter()
            .any(|g| matches!(g, ImageDeleteItem::Deleted(_))),
        "{gone:?}"
    );
    assert!(e
        .image_list(false, Filters::new())
        .await
        .unwrap()
        .is_empty());
}

/// The static `berth-init`, built once into target/static like the checker: a dynamically
/// linked binary cannot run inside the busybox image.
fn static_init() -> PathBuf {
    berth_testkit::rootfs::init_binary().expect("build the static berth-init")
}

async fn init_in_a_container() {
    let init = tokio::task::spawn_blocking(static_init).await.unwrap();
    let mut env = Env::new().await;
    env.cfg.init_binary = Some(init);
    env.engine.take().unwrap().shutdown();
    env.engine = Some(Engine::open(env.cfg.clone()).await.unwrap());
    let id = env
        .create(|s| {
            s.host.init = Some(true);
            // The subshell's sleep is orphaned: PID 1 (berth-init) must reap it.
            sh(s, "(sleep 0.05 &); exec sleep 30");
        })
        .await;
    env.e().start_container(&id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let top = env.e().top_container(&id, None).await.unwrap();
    assert!(
        top.processes.iter().any(|p| p[7].contains("berth-init")),
        "{top:?}"
    );
    for p in &top.processes {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", p[1])).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        assert_ne!(state, "Z", "zombie left in the container: {p:?}");
    }
    // SIGTERM reaches `sleep` through the init: stop is quick and the code is 143.
    let t0 = Instant::now();
    env.e().stop_container(&id, Some(10), None).await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(
        env.e()
            .inspect_container(&id)
            .await
            .unwrap()
            .state
            .exit_code,
        143
    );
}
