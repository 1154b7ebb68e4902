//! Healthcheck helpers of the e2e suites: `State.Health` read through the docker CLI and
//! polled with a deadline (no sleep is an assertion).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{tail, Daemon};

/// `State.Health` of `name` as JSON (`null` without a healthcheck).
#[track_caller]
pub fn health(d: &Daemon, name: &str) -> Value {
    let out = d.docker_ok(&["inspect", "-f", "{{json .State.Health}}", name]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// Polls `State.Health` of `name` until `f` holds (deadline 30 s); `what` names the wait
/// in the failure.
#[track_caller]
pub fn wait_health(d: &Daemon, name: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = health(d, name);
        if f(&h) {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: never {what}: {h:#}\n--- daemon log ---\n{}",
            tail(&d.log(), 30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `docker run -d --name NAME FLAGS... IMG sleep 60`; the container's id.
#[track_caller]
pub fn run_sleeper(d: &Daemon, name: &str, flags: &[&str], img: &str) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(flags);
    args.extend([img, "sleep", "60"]);
    d.docker_ok(&args).trim().to_string()
}

/// Seconds since the epoch (`docker events --since/--until`).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
