use super::*;
use crate::record::ContainerRecord;
use std::sync::atomic::{AtomicUsize, Ordering};

const MS: i64 = 1_000_000;
const S: i64 = 1_000_000_000;

fn hc(test: &[&str]) -> HealthCheck {
    HealthCheck {
        test: test.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn image_hc() -> berth_image::Healthcheck {
    berth_image::Healthcheck {
        test: Some(vec!["CMD".into(), "img-check".into()]),
        interval: Some(10 * S),
        timeout: Some(3 * S),
        start_period: Some(S),
        start_interval: None,
        retries: Some(7),
    }
}

#[test]
fn merge_takes_the_images_where_the_container_is_silent() {
    assert_eq!(merge(None, None), None);
    let c = hc(&["CMD-SHELL", "true"]);
    assert_eq!(merge(Some(c.clone()), None), Some(c));
    // No container healthcheck: the image's whole.
    let m = merge(None, Some(&image_hc())).unwrap();
    assert_eq!(m.test, vec!["CMD", "img-check"]);
    assert_eq!((m.interval, m.timeout, m.retries), (10 * S, 3 * S, 7));
    // `--health-interval` alone: the image's test, the container's interval.
    let m = merge(
        Some(HealthCheck {
            interval: 2 * S,
            ..Default::default()
        }),
        Some(&image_hc()),
    )
    .unwrap();
    assert_eq!(m.test, vec!["CMD", "img-check"]);
    assert_eq!((m.interval, m.timeout, m.start_period), (2 * S, 3 * S, S));
    // The container's test and retries win; `--no-healthcheck` stays NONE.
    let mut c = hc(&["CMD", "mine"]);
    c.retries = 1;
    let m = merge(Some(c), Some(&image_hc())).unwrap();
    assert_eq!((m.test[1].as_str(), m.retries), ("mine", 1));
    let m = merge(Some(hc(&["NONE"])), Some(&image_hc())).unwrap();
    assert_eq!(m.probe_command(&[]), None);
}

#[test]
fn validation_uses_dockers_words() {
    assert!(hc(&["CMD", "x"]).validate().is_ok());
    let mut h = hc(&["CMD", "x"]);
    h.interval = MS / 2;
    let e = h.validate().unwrap_err();
    assert_eq!(e.kind, crate::ErrorKind::InvalidArgument);
    assert_eq!(e.message, "Interval in Healthcheck cannot be less than 1ms");
    h.interval = MS;
    h.timeout = -5;
    assert_eq!(
        h.validate().unwrap_err().message,
        "Timeout in Healthcheck cannot be less than 1ms"
    );
    h.timeout = 0;
    h.retries = -1;
    assert_eq!(
        h.validate().unwrap_err().message,
        "Retries in Healthcheck cannot be negative"
    );
}

#[test]
fn probe_commands_and_defaults() {
    assert_eq!(
        hc(&["CMD", "curl", "-f", "x"]).probe_command(&[]).unwrap(),
        vec!["curl", "-f", "x"]
    );
    assert_eq!(
        hc(&["CMD-SHELL", "exit 1"]).probe_command(&[]).unwrap(),
        vec!["/bin/sh", "-c", "exit 1"]
    );
    assert_eq!(hc(&["NONE"]).probe_command(&[]), None);
    assert_eq!(hc(&[]).probe_command(&[]), None);
    assert_eq!(hc(&["HTTP", "x"]).probe_command(&[]), None);
    let d = HealthCheck::default();
    assert_eq!(d.interval(), Duration::from_secs(30));
    assert_eq!(d.timeout(), Duration::from_secs(30));
    assert_eq!(d.start_period(), Duration::ZERO);
    assert_eq!(d.start_interval(), Duration::from_secs(5));
    assert_eq!(d.retries(), 3);
}

#[test]
fn cmd_shell_runs_with_the_containers_shell() {
    let shell: Vec<String> = vec![
        "/bin/ash".into(),
        "-eo".into(),
        "pipefail".into(),
        "-c".into(),
    ];
    assert_eq!(
        hc(&["CMD-SHELL", "check | grep ok"])
            .probe_command(&shell)
            .unwrap(),
        vec!["/bin/ash", "-eo", "pipefail", "-c", "check | grep ok"]
    );
    // CMD is exec'd as given, whatever the shell.
    assert_eq!(
        hc(&["CMD", "true"]).probe_command(&shell).unwrap(),
        vec!["true"]
    );
}

#[test]
fn the_images_shell_is_the_containers_unless_it_sets_one_and_both_show_in_image_config() {
    let img = crate::images::ImageConfig {
        shell: vec!["/bin/ash".into(), "-c".into()],
        ..Default::default()
    };
    let mut spec = crate::ContainerSpec::default();
    crate::create::merge_image_defaults(&mut spec, &img);
    assert_eq!(spec.shell, vec!["/bin/ash", "-c"]);
    let mut spec = crate::ContainerSpec {
        shell: vec!["/bin/bash".into(), "-c".into()],
        ..Default::default()
    };
    crate::create::merge_image_defaults(&mut spec, &img);
    assert_eq!(spec.shell, vec!["/bin/bash", "-c"]);
    // From the image config as stored (`"Shell"` in the OCI config's `config`).
    let cfg: berth_image::ImageConfig = serde_json::from_str(
        r#"{"architecture":"amd64","os":"linux","config":{"Shell":["/bin/zsh","-c"],
            "Healthcheck":{"Test":["CMD-SHELL","check"],"Interval":2000000000}},
            "rootfs":{"type":"layers","diff_ids":[]}}"#,
    )
    .unwrap();
    let ic = crate::images::image_config_of(&cfg);
    assert_eq!(ic.shell, vec!["/bin/zsh", "-c"]);
    // The image's HEALTHCHECK, for image inspect.
    let h = ic.healthcheck.unwrap();
    assert_eq!(
        (h.test[1].as_str(), h.interval, h.retries),
        ("check", 2 * S, 0)
    );
}

fn result(at: DateTime<Utc>, code: i64) -> HealthResult {
    HealthResult {
        start: at,
        end: at,
        exit_code: code,
        output: format!("code {code}"),
    }
}

#[test]
fn transitions_follow_retries_and_reset_on_success() {
    let t0 = Utc::now();
    let mut h = Health::default();
    assert_eq!(h.status, HealthStatus::Starting);
    assert_eq!(h.apply(result(t0, 1), 2, Duration::ZERO, Some(t0)), None);
    assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 1));
    assert_eq!(
        h.apply(result(t0, 1), 2, Duration::ZERO, Some(t0)),
        Some(HealthStatus::Unhealthy)
    );
    assert_eq!(h.failing_streak, 2);
    assert_eq!(
        h.apply(result(t0, 0), 2, Duration::ZERO, Some(t0)),
        Some(HealthStatus::Healthy)
    );
    assert_eq!(h.failing_streak, 0);
    // Exit codes other than 0 (2, -1 for a timeout) are failures.
    h.apply(result(t0, -1), 2, Duration::ZERO, Some(t0));
    assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 1));
    assert_eq!(
        h.apply(result(t0, 2), 2, Duration::ZERO, Some(t0)),
        Some(HealthStatus::Unhealthy)
    );
}

#[test]
fn start_period_failures_do_not_count_while_starting() {
    let started = Utc::now();
    let period = Duration::from_secs(10);
    let early = started + chrono::Duration::seconds(3);
    let late = started + chrono::Duration::seconds(11);
    let mut h = Health::default();
    for _ in 0..5 {
        h.apply(result(early, 1), 1, period, Some(started));
    }
    assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
    assert_eq!(h.log.len(), 5, "ignored failures are still logged");
    // Once healthy, a failure in the start period counts.
    h.apply(result(early, 0), 1, period, Some(started));
    assert_eq!(
        h.apply(result(early, 1), 1, period, Some(started)),
        Some(HealthStatus::Unhealthy)
    );
    // After the period, failures count while starting too.
    let mut h = Health::default();
    assert_eq!(
        h.apply(result(late, 1), 1, period, Some(started)),
        Some(HealthStatus::Unhealthy)
    );
}

#[test]
fn log_keeps_the_last_five_oldest_first() {
    let t0 = Utc::now();
    let mut h = Health::default();
    for code in 0..8 {
        h.apply(result(t0, code), 100, Duration::ZERO, None);
    }
    let codes: Vec<i64> = h.log.iter().map(|r| r.exit_code).collect();
    assert_eq!(codes, vec![3, 4, 5, 6, 7]);
}

#[test]
fn delays_follow_the_start_period() {
    let mut h = hc(&["CMD", "x"]);
    h.interval = 10 * S;
    assert_eq!(
        next_delay(&h, HealthStatus::Starting, Duration::ZERO),
        Duration::from_secs(10)
    );
    h.start_period = 60 * S;
    h.start_interval = 2 * S;
    // Starting inside the period: the start interval.
    assert_eq!(
        next_delay(&h, HealthStatus::Starting, Duration::from_secs(1)),
        Duration::from_secs(2)
    );
    // Healthy inside the period: the interval.
    assert_eq!(
        next_delay(&h, HealthStatus::Healthy, Duration::from_secs(1)),
        Duration::from_secs(10)
    );
    // Near the end of the period: what remains of it.
    assert_eq!(
        next_delay(&h, HealthStatus::Starting, Duration::from_secs(55)),
        Duration::from_secs(5)
    );
    // After it: the interval.
    assert_eq!(
        next_delay(&h, HealthStatus::Starting, Duration::from_secs(61)),
        Duration::from_secs(10)
    );
}

#[test]
fn demux_reassembles_split_frames_and_caps_output() {
    let mut stream = Vec::new();
    for (id, payload) in [(1u8, &b"out "[..]), (2, b"err"), (1, b"!\n")] {
        stream.extend_from_slice(&[id, 0, 0, 0]);
        stream.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        stream.extend_from_slice(payload);
    }
    // Fed one byte at a time: headers and payloads split anywhere.
    let mut out = LimitedOutput::default();
    let mut d = Demux::default();
    for b in &stream {
        d.feed(std::slice::from_ref(b), &mut out);
    }
    assert_eq!(out.text(), "out err!\n");
    let mut out = LimitedOutput::default();
    out.push(&vec![b'a'; MAX_OUTPUT - 1]);
    out.push(b"bcd");
    let t = out.text();
    assert_eq!(t.len(), MAX_OUTPUT + 3);
    assert!(t.ends_with("ab..."));
}

#[test]
fn go_durations() {
    assert_eq!(go_duration(Duration::from_secs(30)), "30s");
    assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
    assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
    assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    assert_eq!(go_duration(Duration::ZERO), "0s");
}

#[test]
fn ps_status_and_health_filter() {
    use crate::containers::{matches_filters, status_text};
    let now = Utc::now();
    let mut r = ContainerRecord::default();
    r.state.status = ContainerStatus::Running;
    r.state.started_at = Some(now - chrono::Duration::seconds(3));
    let f = |v: &str| -> crate::Filters { [("health".to_string(), vec![v.to_string()])].into() };
    assert_eq!(status_text(&r, now), "Up 3 seconds");
    assert!(matches_filters(&r, &f("none")).unwrap());
    assert!(!matches_filters(&r, &f("healthy")).unwrap());
    r.state.health = Some(Health::default());
    assert_eq!(status_text(&r, now), "Up 3 seconds (health: starting)");
    assert!(matches_filters(&r, &f("starting")).unwrap());
    r.state.health.as_mut().unwrap().status = HealthStatus::Healthy;
    assert_eq!(status_text(&r, now), "Up 3 seconds (healthy)");
    assert!(matches_filters(&r, &f("healthy")).unwrap());
    assert!(!matches_filters(&r, &f("none")).unwrap());
    r.state.health.as_mut().unwrap().status = HealthStatus::Unhealthy;
    assert_eq!(status_text(&r, now), "Up 3 seconds (unhealthy)");
    r.state.status = ContainerStatus::Paused;
    assert_eq!(status_text(&r, now), "Up 3 seconds (Paused)");
    let e = matches_filters(&r, &f("sick")).unwrap_err();
    assert_eq!(e.message, "invalid filter 'health=sick'");
}

/// An engine on a temp dir with one "running" container (no shim: the probe is fake).
async fn engine_with_running(h: HealthCheck) -> (tempfile::TempDir, Engine, Arc<Container>) {
    let d = tempfile::tempdir().unwrap();
    let engine = Engine::open(crate::EngineConfig {
        data_root: d.path().join("data"),
        exec_root: d.path().join("exec"),
        net: None,
        ..Default::default()
    })
    .await
    .unwrap();
    let id = "b".repeat(64);
    let mut rec = ContainerRecord {
        id: id.clone(),
        name: "/probed".into(),
        ..Default::default()
    };
    rec.config.healthcheck = Some(h);
    rec.state.status = ContainerStatus::Running;
    rec.state.running = true;
    rec.state.started_at = Some(Utc::now());
    let c = Container::new(rec);
    {
        let mut t = engine.inner.containers.write().unwrap();
        t.by_id.insert(id.clone(), c.clone());
        t.names.insert("/probed".into(), id);
    }
    (d, engine, c)
}

/// A fake probe answering `codes` in turn (then the last one forever), counting its runs.
fn scripted(codes: Vec<i64>, runs: Arc<AtomicUsize>) -> Prober {
    Arc::new(move |_e, _c, argv, _t| {
        let n = runs.fetch_add(1, Ordering::SeqCst);
        let code = codes[n.min(codes.len() - 1)];
        Box::pin(async move {
            ProbeOutcome {
                exit_code: code,
                output: format!("{} -> {code}", argv.join(" ")),
            }
        })
    })
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn loop_goes_healthy_then_unhealthy_with_events_and_stops_on_exit() {
    let mut h = hc(&["CMD-SHELL", "check"]);
    h.interval = 10 * MS;
    h.retries = 2;
    let (_d, engine, c) = engine_with_running(h).await;
    let mut events = engine.subscribe_events();
    let runs = Arc::new(AtomicUsize::new(0));
    engine.start_health_with(&c, true, scripted(vec![0, 1, 1, 1], runs.clone()));
    assert_eq!(
        c.snapshot().state.health.unwrap().status,
        HealthStatus::Starting,
        "starting as soon as the probe loop is set up"
    );
    // The events, healthy then unhealthy, each once (emitted after the record is saved).
    let mut actions = Vec::new();
    while actions.last().map(String::as_str) != Some("health_status: unhealthy") {
        let e = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("no unhealthy event within 10 s")
            .unwrap();
        if e.action.starts_with("health_status") {
            assert_eq!(e.attributes.get("name").map(String::as_str), Some("probed"));
            actions.push(e.action);
        }
    }
    assert_eq!(
        actions,
        vec!["health_status: healthy", "health_status: unhealthy"]
    );
    let h = c.snapshot().state.health.unwrap_or_default();
    assert_eq!(h.status, HealthStatus::Unhealthy);
    assert!(h.failing_streak >= 2, "{h:?}");
    assert_eq!(h.log.last().unwrap().output, "/bin/sh -c check -> 1");
    // Persisted with the record.
    let on_disk: ContainerRecord =
        crate::store::read_json(&engine.container_dir(&c.id).join("config.json")).unwrap();
    assert_eq!(
        on_disk.state.health.unwrap().status,
        HealthStatus::Unhealthy
    );
    // The container exits: the loop ends (no more probes).
    c.state_tx.send_modify(|s| {
        s.exits += 1;
        s.running = false;
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let n = runs.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runs.load(Ordering::SeqCst), n, "probes ran after the exit");
}

#[tokio::test]
async fn no_probe_while_paused_and_none_without_a_test() {
    let mut h = hc(&["CMD", "check"]);
    h.interval = 5 * MS;
    let (_d, engine, c) = engine_with_running(h).await;
    // Paused in the record only (a container re-adopted paused): the loop's start reads it.
    c.update(|r| r.state.status = ContainerStatus::Paused);
    let runs = Arc::new(AtomicUsize::new(0));
    engine.start_health_with(&c, true, scripted(vec![0], runs.clone()));
    assert!(c.state_tx.borrow().paused, "the watch follows the record");
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 0, "probed a paused container");
    set_paused(&c, false);
    wait_until("healthy after unpause", || {
        c.snapshot().state.health.unwrap_or_default().status == HealthStatus::Healthy
    })
    .await;
    engine.shutdown();

    // `NONE`: no loop, no State.Health.
    let (_d, engine, c) = engine_with_running(hc(&["NONE"])).await;
    let runs = Arc::new(AtomicUsize::new(0));
    engine.start_health_with(&c, true, scripted(vec![0], runs.clone()));
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(c.snapshot().state.health, None);
}

/// What pause and unpause do to the record and the watch.
fn set_paused(c: &Container, paused: bool) {
    c.update(|r| {
        r.state.status = if paused {
            ContainerStatus::Paused
        } else {
            ContainerStatus::Running
        };
        r.state.paused = paused;
    });
    c.state_tx.send_modify(|s| s.paused = paused);
}

/// A fake probe that takes `secs` seconds, counting starts and the ones dropped unfinished.
fn slow(secs: u64, started: Arc<AtomicUsize>, dropped: Arc<AtomicUsize>) -> Prober {
    Arc::new(move |_e, _c, _argv, _t| {
        started.fetch_add(1, Ordering::SeqCst);
        let dropped = dropped.clone();
        Box::pin(async move {
            struct OnDrop(Arc<AtomicUsize>, bool);
            impl Drop for OnDrop {
                fn drop(&mut self) {
                    if !self.1 {
                        self.0.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            let mut guard = OnDrop(dropped, false);
            tokio::time::sleep(Duration::from_secs(secs)).await;
            guard.1 = true;
            ProbeOutcome {
                exit_code: 1,
                output: "slow".into(),
            }
        })
    })
}

#[tokio::test]
async fn a_pause_drops_the_running_probe_and_the_unpause_restarts_the_delay() {
    let mut h = hc(&["CMD", "check"]);
    h.interval = 300 * MS;
    let (_d, engine, c) = engine_with_running(h).await;
    c.update(|r| {
        r.state.health = Some(Health {
            status: HealthStatus::Healthy,
            ..Default::default()
        })
    });
    let (started, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    engine.start_health_with(&c, false, slow(3600, started.clone(), dropped.clone()));
    wait_until("a probe running", || started.load(Ordering::SeqCst) == 1).await;
    // moby closes the monitor at pause: the probe is cancelled, its result never recorded.
    set_paused(&c, true);
    wait_until("the probe dropped", || dropped.load(Ordering::SeqCst) == 1).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(started.load(Ordering::SeqCst), 1, "probed while paused");
    let h = c.snapshot().state.health.unwrap();
    assert_eq!(h.status, HealthStatus::Healthy, "{h:?}");
    assert!(h.log.is_empty(), "a cancelled probe left a result: {h:?}");
    // Unpaused: probing again one full interval later (a fresh monitor in moby), the
    // status kept until a result says otherwise.
    set_paused(&c, false);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        started.load(Ordering::SeqCst),
        1,
        "probed right at the unpause"
    );
    wait_until("a probe after the unpause", || {
        started.load(Ordering::SeqCst) == 2
    })
    .await;
    assert_eq!(
        c.snapshot().state.health.unwrap().status,
        HealthStatus::Healthy
    );
    // The container stops while paused: the loop ends without probing again.
    set_paused(&c, true);
    wait_until("the second probe dropped", || {
        dropped.load(Ordering::SeqCst) == 2
    })
    .await;
    c.state_tx.send_modify(|s| {
        s.exits += 1;
        s.running = false;
        s.paused = false;
    });
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(started.load(Ordering::SeqCst), 2);
    engine.shutdown();
}

#[tokio::test]
async fn readoption_keeps_the_recorded_status() {
    let mut h = hc(&["CMD", "check"]);
    h.interval = 60 * S;
    let (_d, engine, c) = engine_with_running(h).await;
    c.update(|r| {
        r.state.health = Some(Health {
            status: HealthStatus::Healthy,
            failing_streak: 0,
            log: vec![],
        })
    });
    let runs = Arc::new(AtomicUsize::new(0));
    engine.start_health_with(&c, false, scripted(vec![1], runs.clone()));
    assert_eq!(
        c.snapshot().state.health.unwrap().status,
        HealthStatus::Healthy
    );
    // A fresh start resets it to starting.
    engine.start_health_with(&c, true, scripted(vec![1], runs));
    let h = c.snapshot().state.health.unwrap();
    assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
    engine.shutdown();
}

#[test]
fn exec_failures_in_dockers_words() {
    assert_eq!(
        exec_failure(
            r#"not_found: executable not found: exec: "nosuch": executable file not found in $PATH"#
        ),
        r#"OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuch": executable file not found in $PATH: unknown"#
    );
    assert_eq!(
        exec_failure("failed: container is stopping"),
        "OCI runtime exec failed: exec failed: unable to start container process: container is stopping: unknown"
    );
}

#[tokio::test]
async fn an_exit_leaves_the_health_unhealthy() {
    let (_d, engine, c) = engine_with_running(hc(&["CMD", "check"])).await;
    c.update(|r| {
        r.state.health = Some(Health {
            status: HealthStatus::Healthy,
            ..Default::default()
        })
    });
    let exit = crate::monitor::ExitInfo {
        code: 0,
        oom: false,
        finished_at: Utc::now(),
        error: String::new(),
    };
    engine.handle_exit(&c, exit).await;
    let r = c.snapshot();
    assert_eq!(r.state.status, ContainerStatus::Exited);
    assert_eq!(r.state.health.unwrap().status, HealthStatus::Unhealthy);
}
