//! E2E, root tier: healthchecks with the real docker CLI (`--health-*` flags, an image's
//! `HEALTHCHECK` merged with the container's), `docker ps` STATUS and `--filter health=`,
//! `health_status` events, and `State.Health` over the raw API against the v1.47 swagger.
//! Every wait polls with a deadline; no sleep is an assertion.

mod common;

use std::time::{Duration, Instant};

use common::health::{health, run_sleeper, unix_now, wait_health};
use common::{docker_py, ok, Daemon};
use serde_json::Value;

fn setup(test: &str) -> Option<(Daemon, berth_testkit::registry::RegistryGuard, String)> {
    common::docker_setup(test, true)
}

/// Polls `State.Health.Status` until it is `want` (deadline 30 s).
#[track_caller]
fn wait_status(d: &Daemon, name: &str, want: &str) -> Value {
    wait_health(d, name, &format!("became {want}"), |h| h["Status"] == want)
}

/// `2026-11-28T11:30:30.123456789Z` (fraction optional, `Z` or `+hh:mm`).
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !(digits(0..4)
            && digits(5..7)
            && digits(8..10)
            && digits(11..13)
            && digits(14..16)
            && digits(17..19))
        || (b[4], b[7], b[10], b[13], b[16]) != (b'-', b'-', b'T', b':', b':')
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    rest == "Z" || (rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')))
}

fn ps_status(d: &Daemon, name: &str) -> String {
    let r = d.docker(&["ps", "--format", "{{.Names}}\t{{.Status}}"]);
    ok(d, &r);
    r.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}\t")))
        .unwrap_or_else(|| panic!("{name} is not in docker ps: {}", r.stdout))
        .to_string()
}

/// `POST /v1.47/containers/create?name=NAME` with `body`, which must answer 201.
#[track_caller]
fn api_create(d: &Daemon, name: &str, body: &Value) {
    let path = format!("/v1.47/containers/create?name={name}");
    let (s, _, b) = d
        .raw("POST", &path, Some(&body.to_string()))
        .expect("reply");
    assert_eq!(s, 201, "{b}");
}

/// `Config.Healthcheck` of `name` is `CMD-SHELL true` every second (`--health-cmd true`
/// or the shell form `HEALTHCHECK CMD true`, with `--health-interval 1s`).
#[track_caller]
fn assert_true_every_second(d: &Daemon, name: &str) {
    let out = d.docker_ok(&["inspect", "-f", "{{json .Config.Healthcheck}}", name]);
    let cfg: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        cfg["Test"],
        serde_json::json!(["CMD-SHELL", "true"]),
        "{cfg}"
    );
    assert_eq!(cfg["Interval"], 1_000_000_000i64, "{cfg}");
}

#[test]
fn docker_health_flags_status_ps_and_events() {
    let Some((d, _reg, img)) = setup("docker_health_flags_status_ps_and_events") else {
        return;
    };
    let since = unix_now().to_string();
    // Passing probe: healthy, shown by ps and its filter.
    let ok_id = run_sleeper(
        &d,
        "hok",
        &["--health-cmd", "true", "--health-interval", "1s"],
        &img,
    );
    let h = health(&d, "hok");
    assert!(
        h["Status"] == "starting" || h["Status"] == "healthy",
        "{h:#}"
    );
    let h = wait_status(&d, "hok", "healthy");
    assert_eq!(h["FailingStreak"], 0, "{h:#}");
    let log = h["Log"].as_array().expect("Log");
    assert!(
        !log.is_empty() && log.iter().all(|e| e["ExitCode"] == 0),
        "{h:#}"
    );
    let st = ps_status(&d, "hok");
    assert!(
        st.starts_with("Up ") && st.ends_with("(healthy)"),
        "ps STATUS: {st:?}"
    );
    // The table view too.
    let table = d.docker(&["ps"]);
    ok(&d, &table);
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.contains("hok") && l.contains("(healthy)")),
        "{}",
        table.stdout
    );
    // Config.Healthcheck as sent by the CLI.
    assert_true_every_second(&d, "hok");

    // Failing probe with output: unhealthy after 2 failures, the output in the log.
    run_sleeper(
        &d,
        "hbad",
        &[
            "--health-cmd",
            "echo sick; exit 1",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
        ],
        &img,
    );
    let h = wait_status(&d, "hbad", "unhealthy");
    assert!(h["FailingStreak"].as_i64().unwrap() >= 2, "{h:#}");
    let log = h["Log"].as_array().expect("Log");
    assert!(log.len() >= 2 && log.len() <= 5, "{h:#}");
    let last = log.last().unwrap();
    assert_eq!(last["ExitCode"], 1, "{h:#}");
    assert_eq!(last["Output"], "sick\n", "{h:#}");
    assert!(ps_status(&d, "hbad").ends_with("(unhealthy)"));

    // --filter health=
    let q = |f: &str| {
        let r = d.docker(&["ps", "-q", "--no-trunc", "--filter", f]);
        ok(&d, &r);
        r.stdout
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(q("health=healthy"), vec![ok_id.clone()]);
    assert_eq!(q("health=unhealthy").len(), 1);
    assert!(q("health=none").is_empty());
    let r = d.docker(&["ps", "--filter", "health=sick"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("invalid filter 'health=sick'"), "{r:?}");

    // The events.
    let until = (unix_now() + 1).to_string();
    let ev = d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=health_status",
        "--format",
        "{{.Actor.Attributes.name}} {{.Action}}",
    ]);
    ok(&d, &ev);
    let lines: Vec<&str> = ev.stdout.lines().collect();
    assert!(
        lines.contains(&"hok health_status: healthy"),
        "{}",
        ev.stdout
    );
    assert!(
        lines.contains(&"hbad health_status: unhealthy"),
        "{}",
        ev.stdout
    );

    // Stopped: probes stop; the health stays in inspect, unhealthy (as moby's monitor close).
    ok(&d, &d.docker(&["stop", "-t", "1", "hok"]));
    let after = health(&d, "hok");
    assert_eq!(after["Status"], "unhealthy", "{after:#}");
    let n = after["Log"].as_array().map_or(0, Vec::len);
    // Over two probe intervals, no new log entry appears.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(2500) {
        let now = health(&d, "hok")["Log"].as_array().map_or(0, Vec::len);
        assert_eq!(now, n, "a probe ran after the container stopped");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Started again: back to starting (or already healthy), probing again.
    ok(&d, &d.docker(&["start", "hok"]));
    wait_status(&d, "hok", "healthy");
}

#[test]
fn docker_health_timeout_none_and_image_healthcheck() {
    let Some((d, _reg, img)) = setup("docker_health_timeout_none_and_image_healthcheck") else {
        return;
    };
    // A probe that outlives its timeout fails with -1 and is killed.
    run_sleeper(
        &d,
        "hslow",
        &[
            "--health-cmd",
            "sleep 30",
            "--health-interval",
            "1s",
            "--health-timeout",
            "300ms",
            "--health-retries",
            "1",
        ],
        &img,
    );
    let h = wait_status(&d, "hslow", "unhealthy");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], -1, "{h:#}");
    assert_eq!(
        last["Output"], "Health check exceeded timeout (300ms)",
        "{h:#}"
    );
    // Killed probes do not pile up: after three timed-out probes, at most the one in flight
    // is left.
    let deadline = Instant::now() + Duration::from_secs(30);
    while health(&d, "hslow")["Log"].as_array().map_or(0, Vec::len) < 3 {
        assert!(Instant::now() < deadline, "fewer than 3 probes ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    let top = d.docker(&["top", "hslow"]);
    ok(&d, &top);
    let probes = top
        .stdout
        .lines()
        .filter(|l| l.contains("sleep 30"))
        .count();
    assert!(probes <= 1, "{}", top.stdout);

    // --no-healthcheck: no State.Health at all.
    run_sleeper(&d, "hnone", &["--no-healthcheck"], &img);
    assert_eq!(health(&d, "hnone"), Value::Null);
    let st = ps_status(&d, "hnone");
    assert!(st.starts_with("Up ") && !st.contains('('), "{st:?}");
    let r = d.docker(&[
        "run",
        "--rm",
        "--no-healthcheck",
        "--health-cmd",
        "true",
        &img,
        "true",
    ]);
    assert_eq!(r.code, 125, "{r:?}");
    // Docker's validation of the API values.
    let r = d.docker(&[
        "run",
        "--rm",
        "--health-cmd",
        "true",
        "--health-interval",
        "100us",
        &img,
        "true",
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("Interval in Healthcheck cannot be less than 1ms"),
        "{r:?}"
    );

    // An image's HEALTHCHECK, its interval overridden by the container's flag (merge).
    let tar = berth_testkit::images::busybox_layer_tar().expect("busybox tar");
    let r = d.docker_in(
        &["import", "-c", "HEALTHCHECK CMD true", "-", "withhc:1"],
        Some(&tar),
        Duration::from_secs(120),
    );
    ok(&d, &r);
    run_sleeper(&d, "himg", &["--health-interval", "1s"], "withhc:1");
    wait_status(&d, "himg", "healthy");
    // Dockerfile shell form: `HEALTHCHECK CMD true` is `["CMD-SHELL", "true"]`.
    assert_true_every_second(&d, "himg");
    // ... and disabled by --no-healthcheck.
    run_sleeper(&d, "himgoff", &["--no-healthcheck"], "withhc:1");
    assert_eq!(health(&d, "himgoff"), Value::Null);
}

/// `State.Health` over the raw API: exactly the swagger's `Health` object (field names,
/// types, `Status` enum, `HealthcheckResult` items with RFC 3339 times).
#[test]
fn api_state_health_matches_the_swagger() {
    let Some((d, _reg, img)) = setup("api_state_health_matches_the_swagger") else {
        return;
    };
    let body = serde_json::json!({
        "Image": img,
        "Cmd": ["sleep", "60"],
        "Healthcheck": {"Test": ["CMD", "sh", "-c", "echo probe"], "Interval": 200_000_000i64, "Retries": 1},
    });
    api_create(&d, "hapi", &body);
    let (s, _, b) = d
        .raw("POST", "/v1.47/containers/hapi/start", None)
        .expect("reply");
    assert_eq!(s, 204, "{b}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let v = loop {
        let (s, _, b) = d
            .raw("GET", "/v1.47/containers/hapi/json", None)
            .expect("reply");
        assert_eq!(s, 200, "{b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        if v["State"]["Health"]["Status"] == "healthy" {
            break v;
        }
        assert!(Instant::now() < deadline, "never healthy: {v:#}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let schemas: Value =
        serde_json::from_str(include_str!("fixtures/engine-api-v1.47-types.json")).unwrap();
    let schema = &schemas["ContainerInspect"]["properties"]["State"]["properties"]["Health"];
    let h = &v["State"]["Health"];
    let keys = |o: &Value| {
        let mut k: Vec<String> = o.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(h), keys(&schema["properties"]), "{h:#}");
    assert!(["none", "starting", "healthy", "unhealthy"].contains(&h["Status"].as_str().unwrap()));
    assert!(h["FailingStreak"].is_i64(), "{h:#}");
    let log = h["Log"].as_array().expect("Log is an array");
    assert!(!log.is_empty());
    let item = &schema["properties"]["Log"]["items"];
    for e in log {
        assert_eq!(keys(e), keys(&item["properties"]), "{e:#}");
        for t in ["Start", "End"] {
            let s = e[t].as_str().expect("time string");
            assert!(is_rfc3339(s), "{t} is not RFC 3339: {s}");
        }
        assert!(e["ExitCode"].is_i64() && e["Output"].is_string(), "{e:#}");
        assert_eq!(e["Output"], "probe\n");
    }
    // Config.Healthcheck comes back as sent.
    assert_eq!(
        v["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "sh", "-c", "echo probe"])
    );
    // A probe whose program is missing: a failure with -1 and the runtime's words.
    let body = serde_json::json!({
        "Image": img,
        "Cmd": ["sleep", "60"],
        "Healthcheck": {"Test": ["CMD", "nosuchprobe"], "Interval": 200_000_000i64, "Retries": 1},
    });
    api_create(&d, "hmissing", &body);
    ok(&d, &d.docker(&["start", "hmissing"]));
    let h = wait_status(&d, "hmissing", "unhealthy");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], -1, "{h:#}");
    let out = last["Output"].as_str().unwrap();
    assert!(
        out.starts_with("OCI runtime exec failed: exec failed: ")
            && out.contains(r#"exec: "nosuchprobe": executable file not found in $PATH"#),
        "{h:#}"
    );
    // The list's Status carries the health.
    let (_, _, b) = d
        .raw(
            "GET",
            "/v1.47/containers/json?filters=%7B%22health%22%3A%5B%22healthy%22%5D%7D",
            None,
        )
        .expect("reply");
    let list: Value = serde_json::from_str(&b).unwrap();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list:#}");
    assert!(
        rows[0]["Status"].as_str().unwrap().ends_with("(healthy)"),
        "{list:#}"
    );
}

/// A daemon killed and restarted re-adopts the container and its health: the status read
/// back from the record, the probes running again. Through berth's own CLI.
#[test]
fn health_survives_a_daemon_restart_berth_cli() {
    let Some((mut d, _reg, img)) =
        common::berth_setup("health_survives_a_daemon_restart_berth_cli", true)
    else {
        return;
    };
    let r = d.berth(&[
        "run",
        "-d",
        "--name",
        "hlive",
        "--health-cmd",
        "true",
        "--health-interval",
        "500ms",
        &img,
        "sleep",
        "120",
    ]);
    ok(&d, &r);
    let status = |d: &Daemon| {
        let r = d.berth(&["inspect", "-f", "{{json .State.Health}}", "hlive"]);
        ok(d, &r);
        serde_json::from_str::<Value>(r.stdout.trim()).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(&d)["Status"] != "healthy" {
        assert!(Instant::now() < deadline, "never healthy: {:#}", status(&d));
        std::thread::sleep(Duration::from_millis(100));
    }
    let ps = d.berth(&["ps", "--filter", "health=healthy"]);
    ok(&d, &ps);
    assert!(
        ps.stdout
            .lines()
            .any(|l| l.contains("hlive") && l.contains("(healthy)")),
        "{}",
        ps.stdout
    );
    d.restart();
    let after = status(&d);
    assert_eq!(after["Status"], "healthy", "{after:#}");
    let last_start = |h: &Value| {
        h["Log"]
            .as_array()
            .and_then(|l| l.last())
            .map(|e| e["Start"].clone())
    };
    let before = last_start(&after);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = status(&d);
        if last_start(&h) != before {
            assert_eq!(h["Status"], "healthy", "{h:#}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no probe after the restart: {h:#}\n{}",
            common::tail(&d.log(), 30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const PY_SCRIPT: &str = r#"
import os, sys, time, docker
img = sys.argv[1]
c = docker.DockerClient(base_url="unix://" + os.environ["BERTH_SOCK"], version="auto")
c.images.pull(img)
ct = c.containers.run(img, "sleep 60", detach=True, name="pyhealth",
                      healthcheck={"test": ["CMD-SHELL", "exit 0"], "interval": 300_000_000, "retries": 2})
deadline = time.time() + 30
while True:
    ct.reload()
    if ct.health == "healthy":
        break
    assert time.time() < deadline, ct.attrs["State"]
    time.sleep(0.1)
h = ct.attrs["State"]["Health"]
assert set(h) == {"Status", "FailingStreak", "Log"}, h
assert h["FailingStreak"] == 0 and h["Log"][-1]["ExitCode"] == 0, h
assert ct.attrs["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "exit 0"], ct.attrs["Config"]
assert [x.name for x in c.containers.list(filters={"health": "healthy"})] == ["pyhealth"]
ct.remove(force=True)
print("docker-py health ok")
"#;

/// docker-py's `healthcheck=` and `Container.health` (another client's view of the shape).
#[test]
fn docker_py_health() {
    if !berth_testkit::require_root("docker_py_health") || !docker_py::available("docker_py_health")
    {
        return;
    }
    let (_reg, img) = common::registry();
    let d = Daemon::start();
    docker_py::run(&d, PY_SCRIPT, &[&img], "docker-py health ok");
}
