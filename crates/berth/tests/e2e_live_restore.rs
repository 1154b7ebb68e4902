//! E2E, root tier: live restore. The daemon is SIGKILLed while a container writes logs;
//! the container keeps running under its shim; a restarted daemon re-adopts it; `ps`,
//! `logs -f` and `stop` work on it and no log line is lost.

mod common;

use std::time::Duration;

use common::{ok, registry, Daemon};

fn consecutive(out: &str) -> Result<usize, String> {
    let mut n = 0usize;
    for (i, l) in out.lines().enumerate() {
        if l != format!("line {i}") {
            return Err(format!("line {i} is {l:?}"));
        }
        n = i + 1;
    }
    Ok(n)
}

#[test]
fn daemon_killed_and_restarted_readopts_running_container() {
    if !berth_testkit::require_root("daemon_killed_and_restarted_readopts_running_container") {
        return;
    }
    let (_reg, img) = registry();
    let mut d = Daemon::start();
    ok(&d, &d.berth(&["pull", &img]));
    let script = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.02; done";
    ok(
        &d,
        &d.berth(&["run", "-d", "--name", "logger", &img, "sh", "-c", script]),
    );
    let pid = d.berth(&["inspect", "-f", "{{.State.Pid}}", "logger"]);
    ok(&d, &pid);
    let pid: u32 = pid.stdout.trim().parse().expect("pid");
    std::thread::sleep(Duration::from_millis(500));

    d.kill9();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the container died with the daemon"
    );
    d.restart();
    // /run is ext4 on this project's machines: the daemon put its exec root on a tmpfs of its
    // own, which outlived the killed daemon (the shim's socket and state are still there).
    let fs = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(d.exec_root.path())
        .output()
        .expect("stat -f");
    let fs = String::from_utf8_lossy(&fs.stdout).trim().to_string();
    assert_eq!(fs, "tmpfs", "exec root filesystem");

    let ps = d.berth(&["ps"]);
    ok(&d, &ps);
    assert!(
        ps.stdout
            .lines()
            .any(|l| l.ends_with(" logger") && l.contains("Up ")),
        "{}",
        ps.stdout
    );
    let again = d.berth(&[
        "inspect",
        "-f",
        "{{.State.Pid}} {{.State.Running}}",
        "logger",
    ]);
    assert_eq!(again.stdout.trim(), format!("{pid} true"), "{again:?}");

    // Follow the logs while stopping: the follower ends when the container stops.
    let host = d.host.clone();
    let follower = std::thread::spawn(move || {
        let mut c = std::process::Command::new(common::BERTH);
        c.env("BERTH_HOST", host).args(["logs", "-f", "logger"]);
        common::run_cmd(c, None, Duration::from_secs(60))
    });
    std::thread::sleep(Duration::from_millis(500));
    ok(&d, &d.berth(&["stop", "-t", "1", "logger"]));
    let f = follower.join().expect("follower thread");
    assert_eq!(f.code, 0, "{f:?}");
    let followed = consecutive(&f.stdout).unwrap_or_else(|e| panic!("logs -f lost lines: {e}"));
    let logs = d.berth(&["logs", "logger"]);
    ok(&d, &logs);
    let total = consecutive(&logs.stdout).unwrap_or_else(|e| panic!("logs lost lines: {e}"));
    assert!(
        total >= followed && followed > 20,
        "followed {followed}, total {total}"
    );
}

#[test]
fn sigterm_stops_the_daemon_even_with_open_streams() {
    if !berth_testkit::require_root("sigterm_stops_the_daemon_even_with_open_streams") {
        return;
    }
    let mut d = Daemon::start();
    // An open `events` stream never ends by itself.
    let mut c = std::process::Command::new(common::BERTH);
    c.env("BERTH_HOST", &d.host).arg("events");
    let events = std::thread::spawn(move || common::run_cmd(c, None, Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(500));
    let took = d.terminate(Duration::from_secs(10));
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(5)),
        "daemon still running 10 s after SIGTERM"
    );
    assert!(!d.sock.exists(), "socket left behind");
    let ev = events.join().expect("events thread");
    assert_ne!(
        ev.code, -9,
        "the events stream did not end with the daemon: {ev:?}"
    );
    d.restart();
    ok(&d, &d.berth(&["ps"]));
}
