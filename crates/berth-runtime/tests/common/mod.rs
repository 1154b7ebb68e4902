//! Shared fixture for the root-tier runtime tests: a busybox+checker bundle in a tempdir,
//! a runtime root of its own, a unique container id, and helpers to run and capture.

#![allow(dead_code)]

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_runtime::{CreateOptions, Runtime};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub rt: Runtime,
    pub id: String,
    /// The container's cgroup: `/<unique parent>/<id>`, so no test leaves the runtime's
    /// default `/berth` parent behind on a shared host.
    pub cgroup: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Whatever the test did, leave nothing behind: the container, then its parent.
        let _ = self.rt.delete(&self.id, true);
        if let Some((parent, _)) = self.cgroup.rsplit_once('/') {
            if let Ok(m) = berth_cgroups::open(berth_cgroups::CgroupPath(parent.to_string())) {
                let _ = m.destroy();
            }
            // runc (the comparison tests) also makes it in a hybrid host's cgroup2 mount.
            let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/unified{parent}"));
        }
    }
}

/// `None` (test skipped) when not root.
pub fn fixture(test: &str, tweak: impl FnOnce(&mut serde_json::Value)) -> Option<Fixture> {
    if !berth_testkit::require_root(test) {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    let rootfs = berth_testkit::rootfs::busybox_rootfs(&bundle).expect("busybox rootfs");
    berth_testkit::rootfs::with_checker(&rootfs).expect("checker");
    let id = berth_testkit::unique::name("rt");
    let cgroup = format!("/{}/{id}", berth_testkit::unique::name("brtcg"));
    berth_testkit::rootfs::bundle(&bundle, |s| {
        s["process"]["args"] = serde_json::json!(["/bin/checker"]);
        s["linux"]["cgroupsPath"] = serde_json::json!(cgroup);
        tweak(s);
    })
    .unwrap();
    let rt = Runtime::new(dir.path().join("state"));
    Some(Fixture {
        id,
        cgroup,
        dir,
        bundle,
        rootfs,
        rt,
    })
}

pub fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
}

/// Wait for our child with a deadline (kill it after `secs`); returns the shell-style code.
pub fn wait_code(pid: i32, secs: u64) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) => {}
            Err(e) => panic!("waitpid {pid}: {e}"),
        }
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
            panic!("container process {pid} did not exit within {secs}s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Fixture {
    /// create + start, capture stdout/stderr, wait; returns (code, stdout, stderr).
    /// `before_wait` runs after start (e.g. to read cgroup stats while it runs).
    pub fn run(&self) -> (i32, String, String) {
        self.run_with(|_| {})
    }

    pub fn run_with(&self, after_start: impl FnOnce(i32)) -> (i32, String, String) {
        let (out_r, out_w) = pipe();
        let (err_r, err_w) = pipe();
        let created = self
            .rt
            .create(
                &self.id,
                &self.bundle,
                CreateOptions {
                    stdout: Some(out_w),
                    stderr: Some(err_w),
                    ..Default::default()
                },
            )
            .expect("create");
        self.rt.start(&self.id).expect("start");
        after_start(created.pid);
        let t_err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::fs::File::from(err_r).read_to_string(&mut s);
            s
        });
        let mut out = String::new();
        let _ = std::fs::File::from(out_r).read_to_string(&mut out);
        let code = wait_code(created.pid, 60);
        (code, out, t_err.join().unwrap())
    }

    /// The checker's JSON report (the process args must be the checker).
    pub fn report(&self) -> serde_json::Value {
        let (code, out, err) = self.run();
        assert_eq!(code, 0, "checker failed: {err}");
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON {e}: {out}"))
    }
}
