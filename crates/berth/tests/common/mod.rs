//! E2E harness: a `berth daemon` with its own data root, exec root, socket and cgroup
//! parent, started from the binary under test and killed by PID on drop (after removing
//! every container it still has); a loopback registry holding busybox; helpers to run the
//! real docker CLI and berth's own CLI against the daemon.

#![allow(dead_code)]

pub mod docker_py;
pub mod health;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");
pub const DOCKER: &str = "/usr/local/bin/docker";

/// What a command did.
#[derive(Debug, Clone)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `cmd` with `stdin` bytes, killing it after `timeout`.
pub fn run_cmd(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Run {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn command");
    if let Some(data) = stdin {
        let mut si = child.stdin.take().expect("stdin");
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = si.write_all(&data);
        });
    }
    wait_with_timeout(child, timeout)
}

/// Runs `cmd_line` (a shell command line) on a pseudo-terminal through `script`, with `envs`.
/// Its stdin is a pipe held open until it ends: at EOF on its stdin `script` sends the
/// terminal an end-of-file, and an attached TTY session ends with its client's stdin
/// (dockerd's rule, and berth's), so a `/dev/null` stdin raced with the command's output.
pub fn run_in_pty(cmd_line: &str, envs: &[(&str, &std::ffi::OsStr)], timeout: Duration) -> Run {
    let mut cmd = Command::new("script");
    cmd.args(["-qec", cmd_line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn script");
    let stdin = child.stdin.take();
    let r = wait_with_timeout(child, timeout);
    drop(stdin);
    r
}

/// Waits for `child`'s output, killing it (by its PID) after `timeout`.
fn wait_with_timeout(child: Child, timeout: Duration) -> Run {
    let pid = child.id();
    let deadline = Instant::now() + timeout;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    loop {
        if let Ok(r) = rx.try_recv() {
            return Run::from(r.expect("wait for command"));
        }
        if Instant::now() > deadline {
            // Only the process this harness started, by its PID.
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            let r = rx.recv().expect("reaped");
            let mut out = Run::from(r.expect("wait"));
            out.stderr.push_str("\n[killed: timeout]");
            out.code = -9;
            return out;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `berth daemon` under test.
pub struct Daemon {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    /// Short, because shim socket paths live under it (108-byte `sun_path`).
    pub exec_root: tempfile::TempDir,
    pub sock: PathBuf,
    pub host: String,
    docker_config: PathBuf,
    cgroup_parent: String,
    args: Vec<std::ffi::OsString>,
    /// Our default bridge and nft table, removed on drop.
    bridge: String,
    nft_table: String,
    /// The daemon's executable ([`BERTH`] unless [`Daemon::start_from`]).
    bin: PathBuf,
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_from(Path::new(BERTH))
    }

    /// A daemon run from another copy of berth (e.g. one with a different `berth-shim` beside
    /// it); the CLI commands still run [`BERTH`].
    pub fn start_from(bin: &Path) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .expect("tempdir");
        let sock = dir.path().join("berth.sock");
        let host = format!("unix://{}", sock.display());
        let cgroup_parent = format!("/{}", berth_testkit::unique::name("be2e"));
        let exec_root = tempfile::Builder::new()
            .prefix("be")
            .rand_bytes(6)
            .tempdir_in("/run")
            .expect("exec root");
        let docker_config = dir.path().join("docker-config");
        std::fs::create_dir_all(&docker_config).expect("docker config dir");
        let args: Vec<std::ffi::OsString> = vec![
            "daemon".into(),
            "--data-root".into(),
            dir.path().join("data").into(),
            "--exec-root".into(),
            exec_root.path().into(),
            "-H".into(),
            host.clone().into(),
            "--cgroup-parent".into(),
            cgroup_parent.clone().into(),
        ];
        // The kernel is shared: a bridge, nft table, veth prefix and subnet of our own.
        let tag = berth_testkit::unique::name("n");
        let tag: String = tag.chars().filter(char::is_ascii_alphanumeric).collect();
        let short = &tag[tag.len().saturating_sub(6)..];
        let subnet_byte = 100
            + (std::process::id() as usize + short.bytes().map(usize::from).sum::<usize>()) % 150;
        let (bridge, nft_table) = (format!("bb{short}"), format!("bt{short}"));
        let net_args = [
            format!("--bridge={bridge}"),
            format!("--nft-table={nft_table}"),
            format!(
                "--veth-prefix=vb{}",
                &short[short.len().saturating_sub(3)..]
            ),
            format!(
                "--user-bridge-prefix=ub{}",
                &short[short.len().saturating_sub(3)..]
            ),
            format!(
                "--fixed-cidr=10.{subnet_byte}.{}.0/24",
                short.bytes().map(usize::from).sum::<usize>() % 250
            ),
        ];
        let mut args = args;
        args.extend(net_args.iter().map(std::ffi::OsString::from));
        let mut d = Daemon {
            child: None,
            dir,
            exec_root,
            sock,
            host,
            docker_config,
            cgroup_parent,
            args,
            bridge,
            nft_table,
            bin: bin.to_path_buf(),
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("log file");
        let child = Command::new(&self.bin)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth daemon");
        self.child = Some(child);
        self.wait_ready();
    }

    /// SIGKILLs the daemon (by its PID); containers keep running under their shims.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-9")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }

    /// SIGTERMs the daemon (by its PID) and returns how long it took to exit, if it did
    /// within `limit`.
    pub fn terminate(&mut self, limit: Duration) -> Option<Duration> {
        let mut c = self.child.take()?;
        let t0 = Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        while t0.elapsed() < limit {
            if let Ok(Some(_)) = c.try_wait() {
                return Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(c);
        None
    }

    /// Starts the daemon again with the same roots and socket.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    fn wait_ready(&mut self) {
        let d = self;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = d.child.as_mut().map(Child::try_wait) {
                d.child = None;
                panic!("berth daemon exited with {status}; log:\n{}", d.log());
            }
            if d.raw("HEAD", "/_ping", None)
                .is_some_and(|(s, _, _)| s == 200)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "berth daemon did not answer /_ping within 20 s; log:\n{}",
            d.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The real docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Run {
        self.docker_in(args, None, Duration::from_secs(120))
    }

    pub fn docker_in(&self, args: &[&str], stdin: Option<&[u8]>, timeout: Duration) -> Run {
        let mut c = Command::new(DOCKER);
        c.env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_CONTEXT")
            .args(args);
        run_cmd(c, stdin, timeout)
    }

    /// The docker CLI, which must succeed (else the daemon log is shown); its stdout.
    #[track_caller]
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let r = self.docker(args);
        ok(self, &r);
        r.stdout
    }

    /// berth's own CLI against this daemon.
    pub fn berth(&self, args: &[&str]) -> Run {
        self.berth_in(args, None, Duration::from_secs(120))
    }

    pub fn berth_in(&self, args: &[&str], stdin: Option<&[u8]>, timeout: Duration) -> Run {
        let mut c = Command::new(BERTH);
        c.env("BERTH_HOST", &self.host).args(args);
        run_cmd(c, stdin, timeout)
    }

    /// berth's CLI, which must succeed (else the daemon log is shown); its stdout.
    #[track_caller]
    pub fn berth_ok(&self, args: &[&str]) -> String {
        let r = self.berth(args);
        ok(self, &r);
        r.stdout
    }

    /// One raw HTTP/1.1 request over the socket: (status, headers, body).
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Option<(u16, String, String)> {
        raw_request(&self.sock, method, path, body)
    }

    /// [`Daemon::raw`] with a binary body (a tar, compressed or not).
    pub fn raw_bytes(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Option<(u16, String, String)> {
        raw_request_bytes(&self.sock, method, path, body)
    }
}

/// A raw request (no client library, so malformed input reaches the daemon as sent).
pub fn raw_request(
    sock: &Path,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Option<(u16, String, String)> {
    raw_request_bytes(sock, method, path, body.unwrap_or("").as_bytes())
}

/// [`raw_request`] with any bytes as the body.
pub fn raw_request_bytes(
    sock: &Path,
    method: &str,
    path: &str,
    b: &[u8],
) -> Option<(u16, String, String)> {
    let mut s = UnixStream::connect(sock).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: api.moby.localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        b.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    s.write_all(b).ok()?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head.to_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Some((status, head.to_string(), body))
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Remove every container first (stops their shims, unmounts, frees cgroups).
        let ids = self.berth_in(&["ps", "-aq", "--no-trunc"], None, Duration::from_secs(30));
        for id in ids.stdout.split_whitespace() {
            let _ = self.berth_in(&["rm", "-f", "-v", id], None, Duration::from_secs(30));
        }
        // Then the user networks this daemon made (their bridges would outlive it).
        let _ = self.berth_in(&["network", "prune", "-f"], None, Duration::from_secs(30));
        if let Some(mut c) = self.child.take() {
            // The daemon this harness started, by its PID.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        remove_cgroup_parent(&self.cgroup_parent);
        // The daemon mounts a tmpfs at its exec root when /run is not one (it outlives the
        // daemon, for live restore): unmount it, so the temp dir can go.
        let _ = Command::new("umount")
            .arg(self.exec_root.path())
            .stderr(Stdio::null())
            .status();
        // The bridge and nft table of this daemon only (unique names).
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.nft_table])
            .stderr(Stdio::null())
            .status();
        // With `BERTH_FIREWALL=iptables` the daemon keeps its rules in iptables chains
        // (left in place at exit, like its nft table, for a restart to restore).
        berth_testkit::iptables::remove_chains(&self.nft_table);
    }
}

/// Removes the (empty) cgroup directories this test's daemon created under its unique
/// parent, in every mounted hierarchy, deepest first. Only `rmdir`: a cgroup still holding
/// a process stays (and the leak shows up on the next run).
fn remove_cgroup_parent(parent: &str) {
    let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for line in mi.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        if !post.starts_with("cgroup") {
            continue;
        }
        let Some(mnt) = pre.split_whitespace().nth(4) else {
            continue;
        };
        let root = Path::new(mnt).join(parent.trim_start_matches('/'));
        rmdir_tree(&root);
    }
}

fn rmdir_tree(p: &Path) {
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                rmdir_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(p);
}

/// A loopback registry with busybox pushed, plus the image reference.
pub fn registry() -> (berth_testkit::registry::RegistryGuard, String) {
    berth_testkit::images::busybox_in_registry().expect("loopback registry with busybox")
}

/// The set-up of the berth CLI suites: root, a loopback registry with busybox and a
/// daemon; with `pull`, the image pulled through berth's CLI. `None` (the test is skipped,
/// with a message) without root.
pub fn berth_setup(
    test: &str,
    pull: bool,
) -> Option<(Daemon, berth_testkit::registry::RegistryGuard, String)> {
    if !berth_testkit::require_root(test) {
        return None;
    }
    let (reg, img) = registry();
    let d = Daemon::start();
    if pull {
        d.berth_ok(&["pull", &img]);
    }
    Some((d, reg, img))
}

/// The set-up of the docker CLI suites: [`berth_setup`] when the docker CLI is installed
/// (else `None`, with a message); with `pull`, the image pulled through the docker CLI.
pub fn docker_setup(
    test: &str,
    pull: bool,
) -> Option<(Daemon, berth_testkit::registry::RegistryGuard, String)> {
    if !std::path::Path::new(DOCKER).exists() {
        eprintln!("skipping {test}: {DOCKER} is not installed");
        return None;
    }
    let (d, reg, img) = berth_setup(test, false)?;
    if pull {
        d.docker_ok(&["pull", "-q", &img]);
    }
    Some((d, reg, img))
}

/// Asserts a command succeeded, showing its output and the daemon log otherwise.
#[track_caller]
pub fn ok(d: &Daemon, r: &Run) {
    assert_eq!(
        r.code,
        0,
        "command failed: {r:?}\n--- daemon log ---\n{}",
        tail(&d.log(), 40)
    );
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `run --name hog -m 32m IMG dd ...` of 128 MiB through berth's CLI: it must exit 137 and
/// inspect must say `OOMKilled: true`.
#[track_caller]
pub fn assert_memory_hog_is_oom_killed(d: &Daemon, img: &str) {
    let hog = d.berth(&[
        "run",
        "--name",
        "hog",
        "-m",
        "32m",
        img,
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=128M",
        "count=1",
    ]);
    assert_eq!(hog.code, 137, "{hog:?}");
    let oom = d.berth(&["inspect", "-f", "{{.State.OOMKilled}}", "hog"]);
    assert_eq!(oom.stdout.trim(), "true", "{oom:?}");
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
