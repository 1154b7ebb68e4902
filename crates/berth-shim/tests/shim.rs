//! Shim tests. `harness = false`: this binary is also the shim (`<this> shim ARGS`), because
//! the launcher re-executes its own executable the way `berth shim` does.
//!
//! Unit tier (no root): the host-process test double backend drives the real I/O loop,
//! protocol, log writer and records. Root tier: a busybox container through runc (a
//! runc-compatible runtime), including a real OOM kill.

use berth_shim::args::{Config, RuntimeChoice};
use berth_shim::client::{self, read_frame, ClientError, ShimClient};
use berth_shim::logfile::{self, Entry};
use berth_shim::protocol::{AttachOpts, ExecRequest};
use std::io::{Read, Write};
use std::net::Shutdown;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "shim/root.rs"]
mod root;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("shim") {
        std::process::exit(berth_shim::main(args[2..].to_vec()));
    }
    let tests: &[berth_testkit::harness::Test] = &[
        (
            "output_reaches_log_and_attach_and_exit_is_recorded",
            output_reaches_log_and_attach_and_exit_is_recorded,
        ),
        (
            "stdin_reaches_cat_and_half_close_ends_it",
            stdin_reaches_cat_and_half_close_ends_it,
        ),
        (
            "exec_streams_and_records_exit_before_close",
            exec_streams_and_records_exit_before_close,
        ),
        ("kill_gives_128_plus_signal", kill_gives_128_plus_signal),
        (
            "stdin_stays_open_without_stdin_once",
            stdin_stays_open_without_stdin_once,
        ),
        (
            "shim_outlives_launcher_and_is_small",
            shim_outlives_launcher_and_is_small,
        ),
        (
            "zygote_forks_shims_and_dies_with_its_daemon",
            zygote_forks_shims_and_dies_with_its_daemon,
        ),
        (
            "rotation_keeps_n_files_and_loses_no_line",
            rotation_keeps_n_files_and_loses_no_line,
        ),
        (
            "slow_attach_client_is_dropped_not_the_container",
            slow_attach_client_is_dropped_not_the_container,
        ),
        (
            "missing_and_unexecutable_commands_are_distinguished",
            missing_and_unexecutable_commands_are_distinguished,
        ),
        ("tty_resize_and_raw_output", tty_resize_and_raw_output),
        ("attach_logs_replays_history", attach_logs_replays_history),
        ("bad_requests_get_err", bad_requests_get_err),
        (
            "vanished_clients_do_not_make_the_shim_spin",
            vanished_clients_do_not_make_the_shim_spin,
        ),
        (
            "kill_before_start_and_many_waiters",
            kill_before_start_and_many_waiters,
        ),
        (
            "root_busybox_container_through_runc",
            root::root_busybox_container_through_runc,
        ),
        ("root_oom_kill_is_recorded", root::root_oom_kill_is_recorded),
        (
            "root_busybox_container_through_berth_runtime",
            root::root_busybox_container_through_berth_runtime,
        ),
        (
            "root_oom_kill_is_recorded_berth_runtime",
            root::root_oom_kill_is_recorded_berth_runtime,
        ),
        ("root_exec_and_tty_runc", root::root_exec_and_tty_runc),
        (
            "root_exec_and_tty_berth_runtime",
            root::root_exec_and_tty_berth_runtime,
        ),
        (
            "root_berth_shim_binary_rss",
            root::root_berth_shim_binary_rss,
        ),
        (
            "root_container_starts_with_clean_signal_state",
            root::root_container_starts_with_clean_signal_state,
        ),
    ];
    berth_testkit::harness::run(&args, tests)
}

/// One shim under test; on drop it kills what is still running (only our own container).
struct Ctx {
    dir: tempfile::TempDir,
    cfg: Config,
}

impl Ctx {
    fn new(args: &[&str], f: impl FnOnce(&mut Config)) -> Ctx {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle");
        std::fs::create_dir_all(&bundle).unwrap();
        let spec = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": args, "env": ["PATH=/usr/bin:/bin"], "cwd": "/"},
            "root": {"path": "rootfs"}
        });
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec(&spec).unwrap(),
        )
        .unwrap();
        let mut cfg = Config {
            id: berth_testkit::unique::name("shim"),
            bundle,
            state_dir: dir.path().join("state"),
            runtime_root: dir.path().join("runtime"),
            log_path: dir.path().join("log/c.log"),
            tty: false,
            stdin: false,
            log_max_size: 10 << 20,
            log_max_files: 3,
            runtime: RuntimeChoice::Process,
            detached: false,
            early_pid: false,
        };
        f(&mut cfg);
        Ctx { dir, cfg }
    }

    fn launch(&self) -> Result<client::Launched, ClientError> {
        client::launch(&std::env::current_exe().unwrap(), &["shim"], &self.cfg)
    }

    fn client(&self) -> ShimClient {
        ShimClient::new(&self.cfg.state_dir)
    }

    fn entries(&self) -> Vec<Entry> {
        logfile::read_all(&self.cfg.log_path, self.cfg.log_max_files)
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        let c = self.client();
        if c.is_alive() {
            let _ = c.kill(9);
            let _ = c.wait();
        }
        let _ = &self.dir;
    }
}

/// Read a framed stream to EOF: (stdout, stderr).
fn read_framed(s: &mut impl Read) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some((id, data)) = read_frame(s).unwrap() {
        match id {
            1 => out.extend(data),
            2 => err.extend(data),
            x => panic!("bad stream id {x}"),
        }
    }
    (
        String::from_utf8_lossy(&out).into(),
        String::from_utf8_lossy(&err).into(),
    )
}

fn all_opts() -> AttachOpts {
    AttachOpts {
        stdin: false,
        stdout: true,
        stderr: true,
        logs: false,
        stdin_once: true,
    }
}

fn output_reaches_log_and_attach_and_exit_is_recorded() {
    let ctx = Ctx::new(
        &[
            "/bin/sh",
            "-c",
            "echo out1; echo err1 >&2; printf tail; exit 3",
        ],
        |_| {},
    );
    let l = ctx.launch().expect("launch");
    assert!(l.pid > 0 && l.shim_pid > 0);
    // shim.json is written right after the report (off the start path).
    let t = Instant::now();
    let shim = loop {
        if let Some(s) = client::read_shim(&ctx.cfg.state_dir).unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "no shim.json");
        std::thread::sleep(Duration::from_millis(2));
    };
    assert_eq!((shim.shim_pid, shim.pid), (l.shim_pid, l.pid));
    let c = ctx.client();
    let mut a = c.attach(all_opts()).unwrap();
    assert_eq!(c.start().unwrap(), l.pid);
    let (out, err) = read_framed(&mut a);
    assert_eq!(out, "out1\ntail");
    assert_eq!(err, "err1\n");
    assert_eq!(c.wait().unwrap(), (3, false));
    let ex = client::read_exit(&ctx.cfg.state_dir)
        .unwrap()
        .expect("exit.json");
    assert_eq!((ex.exit_code, ex.oom_killed, ex.pid), (3, false, l.pid));
    assert!(ex.finished_at.ends_with('Z'));
    let e = ctx.entries();
    let got: Vec<(&str, &str)> = e
        .iter()
        .map(|e| (e.stream.as_str(), e.log.as_str()))
        .collect();
    assert!(
        got.contains(&("stdout", "out1\n")) && got.contains(&("stderr", "err1\n")),
        "{got:?}"
    );
    assert_eq!(
        got.last().unwrap(),
        &("stdout", "tail"),
        "partial line flushed at exit"
    );
    // The shim is gone and its socket removed; WAIT still answers from exit.json.
    wait_gone(&c);
    assert!(!c.socket_path().exists());
    assert_eq!(c.wait().unwrap(), (3, false));
}

fn wait_gone(c: &ShimClient) {
    let t = Instant::now();
    while c.socket_path().exists() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stdin_reaches_cat_and_half_close_ends_it() {
    let ctx = Ctx::new(&["/bin/cat"], |c| c.stdin = true);
    ctx.launch().unwrap();
    let c = ctx.client();
    let mut a = c
        .attach(AttachOpts {
            stdin: true,
            ..all_opts()
        })
        .unwrap();
    c.start().unwrap();
    a.write_all(b"hello\nworld\n").unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    let (out, _) = read_framed(&mut a);
    assert_eq!(out, "hello\nworld\n");
    assert_eq!(c.wait().unwrap(), (0, false));
}

/// Without StdinOnce (`run -d -i`, then `attach`): a stdin attacher leaving does not close
/// the container's stdin; the next attacher still reaches it.
fn stdin_stays_open_without_stdin_once() {
    let ctx = Ctx::new(&["/bin/cat"], |c| c.stdin = true);
    ctx.launch().unwrap();
    let c = ctx.client();
    c.start().unwrap();
    let opts = AttachOpts {
        stdin: true,
        stdin_once: false,
        ..all_opts()
    };
    let mut first = c.attach(opts).unwrap();
    first.write_all(b"one\n").unwrap();
    first.shutdown(Shutdown::Write).unwrap();
    drop(first);
    let mut second = c.attach(opts).unwrap();
    second.write_all(b"two\n").unwrap();
    // cat is still running and echoes the second attacher's line.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ctx.entries().iter().any(|e| e.log == "two\n") {
        assert!(
            Instant::now() < deadline,
            "stdin was closed: {:?}",
            ctx.entries()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // cat still reads: stop it. (The engine gives every attach of a container the same
    // StdinOnce; the half-close that ends it is `stdin_reaches_cat_and_half_close_ends_it`.)
    drop(second);
    c.kill(nix::sys::signal::Signal::SIGKILL as i32).unwrap();
    assert_eq!(c.wait().unwrap(), (137, false));
}

fn exec_streams_and_records_exit_before_close() {
    let ctx = Ctx::new(&["/bin/sleep", "30"], |_| {});
    ctx.launch().unwrap();
    let c = ctx.client();
    c.start().unwrap();
    let req = ExecRequest {
        exec_id: "e1".into(),
        process: serde_json::json!({"args": ["/bin/sh", "-c", "read x; echo got-$x; echo e >&2; exit 5"], "env": ["PATH=/bin"], "cwd": "/"}),
        tty: false,
        stdin: true,
    };
    let (pid, mut s) = c.exec(&req).unwrap();
    assert!(pid > 0);
    s.write_all(b"abc\n").unwrap();
    let (out, err) = read_framed(&mut s);
    assert_eq!((out.as_str(), err.as_str()), ("got-abc\n", "e\n"));
    // The record is on disk before the stream closed.
    let rec = client::read_exec_exit(&ctx.cfg.state_dir, "e1")
        .unwrap()
        .expect("exec-e1.json");
    assert_eq!(rec.exit_code, 5);
    // Exec output is not the container's log.
    assert!(ctx.entries().iter().all(|e| !e.log.contains("got-")));
    // Half-close ends the exec's stdin (read gets EOF); an unknown command is "not found".
    let (_, mut s2) = c
        .exec(&ExecRequest {
            exec_id: "e2".into(),
            ..req.clone()
        })
        .unwrap();
    s2.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_framed(&mut s2).0, "got-\n");
    assert_eq!(
        client::read_exec_exit(&ctx.cfg.state_dir, "e2")
            .unwrap()
            .unwrap()
            .exit_code,
        5
    );
    let bad = ExecRequest {
        exec_id: "e3".into(),
        process: serde_json::json!({"args": ["nosuchcmd"], "env": ["PATH=/bin"], "cwd": "/"}),
        tty: false,
        stdin: false,
    };
    assert!(matches!(c.exec(&bad), Err(ClientError::NotFound(_))));
    c.kill(9).unwrap();
    assert_eq!(c.wait().unwrap(), (137, false));
}

fn kill_gives_128_plus_signal() {
    let ctx = Ctx::new(&["/bin/sleep", "30"], |_| {});
    ctx.launch().unwrap();
    let c = ctx.client();
    c.start().unwrap();
    let w = c.wait_stream().unwrap();
    c.kill(15).unwrap();
    let mut line = String::new();
    std::io::BufReader::new(w).read_line_compat(&mut line);
    assert_eq!(line.trim(), "EXIT 143 0");
    assert_eq!(
        client::read_exit(&ctx.cfg.state_dir)
            .unwrap()
            .unwrap()
            .exit_code,
        143
    );
}

trait ReadLineCompat {
    fn read_line_compat(&mut self, s: &mut String);
}
impl<R: Read> ReadLineCompat for std::io::BufReader<R> {
    fn read_line_compat(&mut self, s: &mut String) {
        use std::io::BufRead;
        self.read_line(s).unwrap();
    }
}

fn status_kb(pid: i32, file: &str, key: &str) -> u64 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    st.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// "VmRSS N kB (anon A, file F; PSS P)" of a process.
fn vm_rss_kb(pid: i32) -> String {
    format!(
        "{} kB (RssAnon {} kB, RssFile {} kB, Pss {} kB)",
        status_kb(pid, "status", "VmRSS:"),
        status_kb(pid, "status", "RssAnon:"),
        status_kb(pid, "status", "RssFile:"),
        status_kb(pid, "smaps_rollup", "Pss:")
    )
}

fn shim_outlives_launcher_and_is_small() {
    let ctx = Ctx::new(&["/bin/sleep", "30"], |_| {});
    let l = ctx.launch().unwrap();
    // The launcher has exited (launch() waited for it); the shim lives on in its own session.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", l.shim_pid)).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let sid: i32 = fields[3].parse().unwrap();
    assert_eq!(sid, l.shim_pid, "the shim leads its own session");
    let c = ctx.client();
    c.start().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(c.is_alive());
    let busy = status_kb(l.shim_pid, "status", "RssFile:");
    // A second after its last request the shim drops the mappings of the code it ran to set
    // up and to serve it (berth_sys::memory::release_startup_pages): its file-backed resident
    // set shrinks to what the idle loop runs.
    std::thread::sleep(Duration::from_millis(1800));
    let idle = status_kb(l.shim_pid, "status", "RssFile:");
    println!(
        "  idle shim VmRSS: {} (this test binary as the shim; RssFile {busy} kB 0.2 s after START)",
        vm_rss_kb(l.shim_pid)
    );
    assert!(
        idle + 256 <= busy,
        "RssFile {busy} kB after START, {idle} kB idle: start-up code was not released"
    );
    if let Err(e) = c.kill(9) {
        panic!(
            "kill: {e}; exit.json {:?}; shim.log {:?}",
            client::read_exit(&ctx.cfg.state_dir),
            std::fs::read_to_string(ctx.cfg.state_dir.join("shim.log"))
        );
    }
    assert_eq!(c.wait().unwrap().0, 137);
}

/// A zygote started as the daemon starts it (stdin a pipe from the "daemon").
struct Zygote {
    child: std::process::Child,
    socket: PathBuf,
}

impl Zygote {
    fn start(dir: &Path) -> Zygote {
        let socket = dir.join("z.sock");
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["shim", "zygote", "--socket"])
            .arg(&socket)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while !socket.exists() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "zygote did not listen"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Zygote { child, socket }
    }

    /// One request line; the reply line.
    fn ask(&self, line: &str) -> String {
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        s.write_all(line.as_bytes()).unwrap();
        s.write_all(b"\n").unwrap();
        let mut reply = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut reply).unwrap();
        reply
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn zygote_forks_shims_and_dies_with_its_daemon() {
    let zdir = tempfile::tempdir().unwrap();
    let mut z = Zygote::start(zdir.path());
    let socket_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&z.socket).unwrap().permissions(),
    );
    assert_eq!(
        socket_mode & 0o777,
        0o600,
        "only the daemon's user may connect"
    );

    // A container that exits: the forked shim reports on the connection, runs it, records it.
    let quick = Ctx::new(&["/bin/sh", "-c", "echo from-zygote; exit 4"], |_| {});
    let reply = z.ask(&serde_json::to_string(&quick.cfg.to_args()).unwrap());
    let r: berth_shim::launch::LaunchReply = serde_json::from_str(reply.trim()).unwrap();
    let berth_shim::launch::LaunchReply::Ok { shim_pid, pid, .. } = r else {
        panic!("zygote launch failed: {reply}");
    };
    assert!(shim_pid > 0 && pid > 0 && shim_pid != z.child.id() as i32);
    let c = quick.client();
    let mut a = c.attach(all_opts()).unwrap();
    assert_eq!(c.start().unwrap(), pid);
    assert_eq!(read_framed(&mut a).0, "from-zygote\n");
    assert_eq!(c.wait().unwrap(), (4, false));

    // Bad requests get the launcher's error shape, and the zygote keeps serving.
    for (bad, want) in [("not json", "JSON array"), (r#"["--id","x"]"#, "--bundle")] {
        let reply = z.ask(bad);
        let r: berth_shim::launch::LaunchReply = serde_json::from_str(reply.trim()).unwrap();
        match r {
            berth_shim::launch::LaunchReply::Err { error, kind } => {
                assert_eq!(kind, "invalid_argument");
                assert!(error.contains(want), "{error}");
            }
            other => panic!("{bad:?} was accepted: {other:?}"),
        }
    }

    // A running container's shim outlives the zygote, which exits when its daemon's pipe closes.
    let long = Ctx::new(&["/bin/sleep", "30"], |_| {});
    let reply = z.ask(&serde_json::to_string(&long.cfg.to_args()).unwrap());
    assert!(reply.contains("shim_pid"), "{reply}");
    let c = long.client();
    c.start().unwrap();
    drop(z.child.stdin.take());
    let t = Instant::now();
    loop {
        if let Some(st) = z.child.try_wait().unwrap() {
            assert!(st.success(), "zygote exit: {st}");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "zygote outlived its daemon"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(c.is_alive(), "the shim died with the zygote");
    c.kill(9).unwrap();
    assert_eq!(c.wait().unwrap().0, 137);
}

fn rotation_keeps_n_files_and_loses_no_line() {
    let n = 20000;
    let script = format!("i=0; while [ $i -lt {n} ]; do echo line-$i; i=$((i+1)); done");
    let ctx = Ctx::new(&["/bin/sh", "-c", &script], |c| {
        c.log_max_size = 64 * 1024;
        c.log_max_files = 3;
    });
    ctx.launch().unwrap();
    let c = ctx.client();
    let mut a = c.attach(all_opts()).unwrap();
    c.start().unwrap();
    let (out, _) = read_framed(&mut a);
    // The attach client saw every line.
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), n);
    assert_eq!(c.wait().unwrap(), (0, false));
    let p = &ctx.cfg.log_path;
    let files: Vec<PathBuf> = std::fs::read_dir(p.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        assert!(
            std::fs::metadata(f).unwrap().len() <= 64 * 1024,
            "{}",
            f.display()
        );
    }
    let kept: Vec<usize> = ctx
        .entries()
        .iter()
        .map(|e| e.log.trim().strip_prefix("line-").unwrap().parse().unwrap())
        .collect();
    assert_eq!(*kept.last().unwrap(), n - 1);
    assert!(
        kept.windows(2).all(|w| w[1] == w[0] + 1),
        "lines lost inside the kept files"
    );
    assert!(kept.len() > 1000);
}

fn slow_attach_client_is_dropped_not_the_container() {
    // 24 MiB of output while one attach client never reads.
    let ctx = Ctx::new(
        &[
            "/bin/sh",
            "-c",
            "head -c 25165824 /dev/zero | tr '\\0' x; echo; echo done",
        ],
        |c| {
            c.log_max_size = 1 << 20;
            c.log_max_files = 2;
        },
    );
    ctx.launch().unwrap();
    let c = ctx.client();
    let mut slow = c.attach(all_opts()).unwrap();
    c.start().unwrap();
    let t = Instant::now();
    assert_eq!(c.wait().unwrap(), (0, false));
    assert!(t.elapsed() < Duration::from_secs(20));
    assert_eq!(
        ctx.entries().last().unwrap().log,
        "done\n",
        "the log has the end"
    );
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match slow.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(
        got < 24 << 20,
        "the slow client was dropped (got {got} bytes)"
    );
}

fn missing_and_unexecutable_commands_are_distinguished() {
    let ctx = Ctx::new(&["nosuchcmd"], |_| {});
    assert!(
        matches!(ctx.launch(), Err(ClientError::NotFound(_))),
        "{:?}",
        ctx.launch()
    );
    let ctx2 = Ctx::new(&["/x"], |_| {});
    let f = ctx2.dir.path().join("not-executable");
    std::fs::write(&f, "#!/bin/sh\n").unwrap();
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ctx2.cfg.bundle.join("config.json")).unwrap())
            .unwrap();
    spec["process"]["args"] = serde_json::json!([f]);
    std::fs::write(
        ctx2.cfg.bundle.join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    assert!(
        matches!(ctx2.launch(), Err(ClientError::PermissionDenied(_))),
        "{:?}",
        ctx2.launch()
    );
}

fn tty_resize_and_raw_output() {
    let ctx = Ctx::new(
        &["/bin/sh", "-c", "stty size; echo -n x | od -c | head -1"],
        |c| c.tty = true,
    );
    ctx.launch().unwrap();
    let c = ctx.client();
    c.resize(33, 101).unwrap();
    let mut a = c.attach(all_opts()).unwrap();
    c.start().unwrap();
    let mut out = String::new();
    a.read_to_string(&mut out).unwrap();
    assert!(
        out.contains("33 101\r\n"),
        "raw tty output with CRLF: {out:?}"
    );
    assert!(ctx.entries().iter().any(|e| e.log.contains("33 101")));
    assert_eq!(c.wait().unwrap().0, 0);
}

fn attach_logs_replays_history() {
    let ctx = Ctx::new(&["/bin/sh", "-c", "echo first; read x; echo second"], |c| {
        c.stdin = true
    });
    ctx.launch().unwrap();
    let c = ctx.client();
    let mut feeder = c
        .attach(AttachOpts {
            stdin: true,
            stdout: false,
            stderr: false,
            logs: false,
            stdin_once: true,
        })
        .unwrap();
    c.start().unwrap();
    let t = Instant::now();
    while !ctx.entries().iter().any(|e| e.log == "first\n") {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut late = c
        .attach(AttachOpts {
            logs: true,
            ..all_opts()
        })
        .unwrap();
    feeder.write_all(b"go\n").unwrap();
    let (out, _) = read_framed(&mut late);
    assert_eq!(out, "first\nsecond\n");
}

fn bad_requests_get_err() {
    let ctx = Ctx::new(&["/bin/sleep", "30"], |_| {});
    ctx.launch().unwrap();
    let c = ctx.client();
    for bad in ["HELLO\n", "RESIZE 1\n", "EXEC {\n", "KILL NOPE\n"] {
        let mut s = std::os::unix::net::UnixStream::connect(c.socket_path()).unwrap();
        s.write_all(bad.as_bytes()).unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        assert!(r.starts_with("ERR "), "{bad:?} → {r:?}");
    }
    assert!(matches!(c.resize(10, 10), Err(ClientError::Shim(m)) if m.contains("no tty")));
    assert!(c.is_alive(), "bad requests do not hurt the shim");
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn vanished_clients_do_not_make_the_shim_spin() {
    let ctx = Ctx::new(&["/bin/sleep", "30"], |_| {});
    let l = ctx.launch().unwrap();
    let c = ctx.client();
    c.start().unwrap();
    // A waiter and an attacher that go away without a word.
    drop(c.wait_stream().unwrap());
    drop(c.attach(all_opts()).unwrap());
    std::thread::sleep(Duration::from_millis(100));
    let before = cpu_ticks(l.shim_pid);
    std::thread::sleep(Duration::from_millis(500));
    let used = cpu_ticks(l.shim_pid) - before;
    assert!(used <= 2, "the idle shim used {used} ticks in 0.5 s");
    c.kill(9).unwrap();
    assert_eq!(c.wait().unwrap(), (137, false));
}

fn kill_before_start_and_many_waiters() {
    let ctx = Ctx::new(&["/bin/sleep", "30"], |_| {});
    ctx.launch().unwrap();
    let c = ctx.client();
    let waiters: Vec<_> = (0..5).map(|_| c.wait_stream().unwrap()).collect();
    c.kill(9).unwrap();
    for w in waiters {
        let mut line = String::new();
        std::io::BufReader::new(w).read_line_compat(&mut line);
        assert_eq!(line, "EXIT 137 0\n");
    }
    // An attach after the end gets OK and an immediate EOF.
    wait_gone(&c);
    assert!(
        c.attach(all_opts()).is_err(),
        "the shim is gone after the exit"
    );
    assert_eq!(c.wait().unwrap(), (137, false));
}
