//! docker-py (the Python SDK) against the daemon: another client's view of the API.

use std::ffi::OsStr;
use std::process::Command;
use std::time::Duration;

use super::{run_cmd, tail, Daemon};

/// Whether python3 with the `docker` package is installed; says the test is skipped if not.
pub fn available(test: &str) -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import docker"])
        .output();
    if probe.is_ok_and(|o| o.status.success()) {
        return true;
    }
    eprintln!("skipping {test}: python3 with the docker package is not installed");
    false
}

/// Runs `script` (given `args`, the daemon's socket in `BERTH_SOCK`); it must succeed and
/// print `marker`.
#[track_caller]
pub fn run(d: &Daemon, script: &str, args: &[&str], marker: &str) {
    run_with_env(d, script, args, &[], marker);
}

/// [`run`] with more environment variables (`DOCKER_CONFIG` for a login).
#[track_caller]
pub fn run_with_env(d: &Daemon, script: &str, args: &[&str], env: &[(&str, &OsStr)], marker: &str) {
    let mut c = Command::new("python3");
    c.args(["-c", script]).args(args).env("BERTH_SOCK", &d.sock);
    c.envs(env.iter().copied());
    let r = run_cmd(c, None, Duration::from_secs(120));
    assert_eq!(
        r.code,
        0,
        "{r:?}\n--- daemon log ---\n{}",
        tail(&d.log(), 30)
    );
    assert!(r.stdout.contains(marker), "{r:?}");
}
