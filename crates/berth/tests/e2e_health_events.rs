//! E2E, root tier: what a healthcheck shows besides `State.Health`, with the real docker
//! CLI: each probe is an exec in `docker events` (`exec_create` / `exec_start` with the
//! probe's command, `exec_die` with its exit code, 137 for one killed at its timeout);
//! `CMD-SHELL` runs with the container's `Config.Shell`; and a paused container is not
//! probed (moby's health monitor stops at pause and starts again at unpause).
//! Every wait polls with a deadline; no sleep is an assertion of something happening.

mod common;

use std::time::{Duration, Instant};

use common::health::{health, run_sleeper, unix_now, wait_health};
use common::{ok, Daemon};
use serde_json::Value;

fn setup(test: &str) -> Option<(Daemon, berth_testkit::registry::RegistryGuard, String)> {
    common::docker_setup(test, true)
}

/// Now as `secs.nanos`, the precision `docker events --since` accepts.
fn unix_now_precise() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// `docker events` of one container from `since` to now + 1 s, one
/// `action|execID|exitCode` line each.
fn events(d: &Daemon, name: &str, since: &str) -> Vec<String> {
    let until = (unix_now() + 1).to_string();
    let r = d.docker(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        &format!("container={name}"),
        "--format",
        // `index` gives "" for a missing attribute (a field path prints `<no value>`).
        r#"{{.Action}}|{{index .Actor.Attributes "execID"}}|{{index .Actor.Attributes "exitCode"}}"#,
    ]);
    ok(d, &r);
    r.stdout.lines().map(str::to_string).collect()
}

/// Polls [`events`] until `done` holds (deadline `secs`); `what` names the wait.
#[track_caller]
fn wait_events(
    d: &Daemon,
    name: &str,
    since: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let lines = events(d, name, since);
        if done(&lines) {
            return lines;
        }
        assert!(Instant::now() < deadline, "{what}: {lines:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The exec `exec_create: {cmd}` → `exec_start: {cmd}` → `exec_die` with `code`, in that
/// order with one exec id; returns the id.
#[track_caller]
fn exec_triple(lines: &[String], cmd: &str, code: &str) -> String {
    let create = lines
        .iter()
        .position(|l| l.starts_with(&format!("exec_create: {cmd}|")))
        .unwrap_or_else(|| panic!("no exec_create: {cmd}: {lines:#?}"));
    let id = lines[create].split('|').nth(1).unwrap().to_string();
    assert_eq!(id.len(), 64, "execID: {lines:#?}");
    let start = lines
        .iter()
        .position(|l| *l == format!("exec_start: {cmd}|{id}|"))
        .unwrap_or_else(|| panic!("no exec_start for {cmd}: {lines:#?}"));
    let die = lines
        .iter()
        .position(|l| *l == format!("exec_die|{id}|{code}"))
        .unwrap_or_else(|| panic!("no exec_die {code} for {cmd}: {lines:#?}"));
    assert!(create < start && start < die, "{lines:#?}");
    id
}

fn last_start(h: &Value) -> String {
    h["Log"]
        .as_array()
        .and_then(|l| l.last())
        .map(|e| e["Start"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[test]
fn probes_are_execs_in_docker_events() {
    let Some((d, _reg, img)) = setup("probes_are_execs_in_docker_events") else {
        return;
    };
    let since = unix_now_precise();
    let flags = ["--health-cmd", "exit 0", "--health-interval", "1s"];
    run_sleeper(&d, "hev", &flags, &img);
    wait_health(&d, "hev", "healthy", |h| h["Status"] == "healthy");
    let lines = events(&d, "hev", &since);
    // The first probe's three events, in order, with one exec id.
    exec_triple(&lines, "/bin/sh -c exit 0", "0");
    assert!(
        lines.iter().any(|l| l == "health_status: healthy||"),
        "{lines:#?}"
    );
    // `--filter event=exec_start` matches the action with its command (moby's fuzzy match).
    let until = (unix_now() + 1).to_string();
    let r = d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=hev",
        "--filter",
        "event=exec_start",
        "--format",
        "{{.Action}}",
    ]);
    ok(&d, &r);
    assert!(
        !r.stdout.is_empty()
            && r.stdout
                .lines()
                .all(|l| l == "exec_start: /bin/sh -c exit 0"),
        "{r:?}"
    );

    // A probe killed at its timeout dies with 137 (SIGKILL), as dockerd's.
    let since = unix_now_precise();
    let flags = [
        "--health-cmd",
        "sleep 30",
        "--health-interval",
        "1s",
        "--health-timeout",
        "300ms",
    ];
    run_sleeper(&d, "hkill", &flags, &img);
    wait_health(&d, "hkill", "a timed-out probe", |h| {
        h["Log"]
            .as_array()
            .is_some_and(|l| l.iter().any(|e| e["ExitCode"] == -1))
    });
    wait_events(
        &d,
        "hkill",
        &since,
        10,
        "no exec_die with exitCode 137",
        |lines| {
            lines
                .iter()
                .any(|l| l.starts_with("exec_die|") && l.ends_with("|137"))
        },
    );
}

#[test]
fn cmd_shell_runs_with_config_shell() {
    let Some((d, _reg, img)) = setup("cmd_shell_runs_with_config_shell") else {
        return;
    };
    // The docker CLI has no flag for Config.Shell: the raw API, as an SDK would send it.
    // `/bin/echo via-shell` as the shell makes the probe print what it was run with.
    let body = serde_json::json!({
        "Image": img,
        "Cmd": ["sleep", "60"],
        "Shell": ["/bin/echo", "via-shell"],
        "Healthcheck": {"Test": ["CMD-SHELL", "probe arg"], "Interval": 500_000_000i64},
    })
    .to_string();
    let (st, _, reply) = d
        .raw("POST", "/v1.47/containers/create?name=hshell", Some(&body))
        .expect("create over the socket");
    assert_eq!(st, 201, "{reply}");
    ok(&d, &d.docker(&["start", "hshell"]));
    let h = wait_health(&d, "hshell", "probed", |h| {
        h["Log"].as_array().is_some_and(|l| !l.is_empty())
    });
    let first = &h["Log"][0];
    assert_eq!(first["Output"], "via-shell probe arg\n", "{h:#}");
    assert_eq!(first["ExitCode"], 0, "{h:#}");
    let r = d.docker(&["inspect", "-f", "{{json .Config.Shell}}", "hshell"]);
    ok(&d, &r);
    assert_eq!(r.stdout.trim(), r#"["/bin/echo","via-shell"]"#);
    // Without one, Shell is omitted and CMD-SHELL runs with /bin/sh -c.
    let flags = ["--health-cmd", "echo $0", "--health-interval", "500ms"];
    run_sleeper(&d, "hsh", &flags, &img);
    let h = wait_health(&d, "hsh", "probed", |h| {
        h["Log"].as_array().is_some_and(|l| !l.is_empty())
    });
    assert_eq!(h["Log"][0]["Output"], "/bin/sh\n", "{h:#}");
    let r = d.docker(&["inspect", "-f", "{{json .Config.Shell}}", "hsh"]);
    ok(&d, &r);
    assert_eq!(r.stdout.trim(), "null");
}

#[test]
fn a_paused_container_is_not_probed() {
    let Some((d, _reg, img)) = setup("a_paused_container_is_not_probed") else {
        return;
    };
    let flags = ["--health-cmd", "true", "--health-interval", "500ms"];
    run_sleeper(&d, "hpause", &flags, &img);
    wait_health(&d, "hpause", "healthy", |h| h["Status"] == "healthy");
    ok(&d, &d.docker(&["pause", "hpause"]));
    // A probe finishing as the pause lands may still be recorded: settle first.
    std::thread::sleep(Duration::from_millis(300));
    let paused_at = unix_now_precise();
    let before = health(&d, "hpause");
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(2500) {
        let h = health(&d, "hpause");
        assert_eq!(
            h["Status"], "healthy",
            "the status changed while paused: {h:#}"
        );
        assert_eq!(
            last_start(&h),
            last_start(&before),
            "a probe ran while paused: {h:#}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let lines = events(&d, "hpause", &paused_at);
    assert!(
        !lines.iter().any(|l| l.starts_with("exec_create")),
        "{lines:#?}"
    );
    ok(&d, &d.docker(&["unpause", "hpause"]));
    let h = wait_health(&d, "hpause", "probed after the unpause", |h| {
        last_start(h) != last_start(&before)
    });
    assert_eq!(h["Status"], "healthy", "{h:#}");
    assert_eq!(h["FailingStreak"], 0, "{h:#}");

    // Paused mid-probe: the probe is killed (it dies at the thaw: exec_die 137) and its
    // result is never recorded.
    let since = unix_now_precise();
    let flags = [
        "--health-cmd",
        "sleep 3",
        "--health-interval",
        "200ms",
        "--health-timeout",
        "20s",
    ];
    run_sleeper(&d, "hmid", &flags, &img);
    let started = |l: &String| l.starts_with("exec_start: ");
    let lines = wait_events(&d, "hmid", &since, 20, "no probe started", |lines| {
        lines.iter().any(started)
    });
    let id = lines.iter().find(|l| started(l)).unwrap();
    let id = id.split('|').nth(1).unwrap().to_string();
    // Well inside the 3 s probe, after its process started.
    std::thread::sleep(Duration::from_millis(700));
    ok(&d, &d.docker(&["pause", "hmid"]));
    std::thread::sleep(Duration::from_millis(300));
    ok(&d, &d.docker(&["unpause", "hmid"]));
    let unpaused = Instant::now();
    let died = format!("exec_die|{id}|137");
    let what = "no exec_die 137 for the probe cut by the pause";
    wait_events(&d, "hmid", &since, 10, what, |lines| lines.contains(&died));
    // The next probe (a fresh 200 ms, then 3 s of sleep) cannot have ended within 3 s of
    // the unpause: any result before that would be the cancelled one.
    let h = health(&d, "hmid");
    if unpaused.elapsed() < Duration::from_secs(3) {
        assert!(
            h["Log"].as_array().is_none_or(Vec::is_empty),
            "the cancelled probe left a result: {h:#}"
        );
    }
}

#[test]
fn docker_exec_has_exec_die_too() {
    let Some((d, _reg, img)) = setup("docker_exec_has_exec_die_too") else {
        return;
    };
    ok(
        &d,
        &d.docker(&["run", "-d", "--name", "hexec", &img, "sleep", "60"]),
    );
    let since = unix_now_precise();
    ok(&d, &d.docker(&["exec", "hexec", "true"]));
    let r = d.docker(&["exec", "hexec", "sh", "-c", "exit 3"]);
    assert_eq!(r.code, 3, "{r:?}");
    ok(
        &d,
        &d.docker(&["exec", "-d", "hexec", "sh", "-c", "exit 4"]),
    );
    let lines = wait_events(&d, "hexec", &since, 10, "three exec_die", |lines| {
        lines.iter().filter(|l| l.starts_with("exec_die|")).count() >= 3
    });
    // Per exec: create, start, die with its code; moby's `<entrypoint> <args>` (so `true `).
    for (cmd, code) in [("true ", "0"), ("sh -c exit 3", "3"), ("sh -c exit 4", "4")] {
        exec_triple(&lines, cmd, code);
    }
}
