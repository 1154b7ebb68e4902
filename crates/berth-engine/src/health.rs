//! Healthchecks: Docker's `HEALTHCHECK` / `--health-*`, a probe exec'd in the container
//! every interval, and `State.Health` built from its results.
//!
//! Vocabulary (Docker's):
//! - a [`HealthCheck`] is the configuration: `Test` (`["NONE"]` disables, `["CMD", argv...]`
//!   runs argv, `["CMD-SHELL", "cmd"]` runs `cmd` with the container's `Config.Shell`, else
//!   `/bin/sh -c cmd`), and the interval, timeout,
//!   start period, start interval (nanoseconds, 0 = default) and retries (0 = 3). The
//!   image's is merged with the container's at create ([`merge`]): each field the container
//!   leaves at zero is the image's;
//! - a [`Health`] is the state in `State.Health`: `starting` until the first probe passes,
//!   then `healthy`, or `unhealthy` after `retries` failures in a row; a failure during the
//!   start period does not count while the container is still `starting`. The last five
//!   [`HealthResult`]s are kept (oldest first).
//!
//! Lifecycle: [`Engine::start_health`] runs where a container becomes running (start,
//! restart, re-adoption after a daemon restart). One task per running container sleeps an
//! interval, runs the probe (an exec through the container's shim, output capped at 4096
//! bytes, exit code from the shim's `exec-<id>.json`), applies the result and emits
//! `health_status: <status>` on a change. Each probe is an exec in Docker's event stream
//! too: `exec_create: /bin/sh -c cmd`, `exec_start: /bin/sh -c cmd` (with `execID`), and
//! `exec_die` (with `execID` and `exitCode`) once it ends. The task ends when the container
//! exits (the monitor bumps the exit counter it watches) or is removed, and with the
//! engine's shutdown; a probe that outlives its timeout is killed and counts as failed
//! (exit -1).
//!
//! Pause (moby's `updateHealthMonitor`, which stops the monitor of a paused container and
//! starts a new one at unpause): no probe runs while the container is paused; a probe
//! running when it is paused is killed and its result dropped (no log entry, no change of
//! status); after the unpause the next probe comes one full delay later, the status kept.

use crate::engine::Container;
use crate::error::{EngineError, Result};
use crate::exec_events::exec_action;
use crate::record::ContainerStatus;
use crate::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Docker's defaults.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: i64 = 3;
/// Results kept in `State.Health.Log`.
pub const MAX_LOG_ENTRIES: usize = 5;
/// Probe output kept per result (more is cut and marked with `...`).
pub const MAX_OUTPUT: usize = 4096;
/// The shortest non-zero duration Docker accepts.
const MIN_DURATION_NS: i64 = 1_000_000;

/// A container's healthcheck configuration (`Config.Healthcheck`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheck {
    /// `[]` = inherit the image's, `["NONE"]`, `["CMD", ...]`, `["CMD-SHELL", "cmd"]`.
    pub test: Vec<String>,
    /// Nanoseconds between probes; 0 = 30 s.
    pub interval: i64,
    /// Nanoseconds a probe may take; 0 = 30 s.
    pub timeout: i64,
    /// Nanoseconds after the start in which failures do not count; 0 = none.
    pub start_period: i64,
    /// Nanoseconds between probes during the start period; 0 = 5 s.
    pub start_interval: i64,
    /// Failures in a row that make the container unhealthy; 0 = 3.
    pub retries: i64,
}

impl HealthCheck {
    /// Docker's checks of a create request (before the image's values are merged in).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
        ] {
            if v != 0 && v < MIN_DURATION_NS {
                return Err(EngineError::invalid(format!(
                    "{name} in Healthcheck cannot be less than 1ms"
                )));
            }
        }
        if self.retries < 0 {
            return Err(EngineError::invalid(
                "Retries in Healthcheck cannot be negative",
            ));
        }
        Ok(())
    }

    /// The probe's argv; `None` when there is no probe (`NONE`, empty, an unknown kind).
    /// `shell` is the container's `Config.Shell` (moby's `getShell`): a `CMD-SHELL` probe
    /// runs with it, or with `/bin/sh -c` when it is empty.
    pub fn probe_command(&self, shell: &[String]) -> Option<Vec<String>> {
        let (kind, rest) = self.test.split_first()?;
        match kind.as_str() {
            "CMD" => Some(rest.to_vec()),
            "CMD-SHELL" => {
                let mut argv = if shell.is_empty() {
                    vec!["/bin/sh".to_string(), "-c".to_string()]
                } else {
                    shell.to_vec()
                };
                argv.extend(rest.iter().cloned());
                Some(argv)
            }
            _ => None,
        }
    }

    fn dur(ns: i64, default: Duration) -> Duration {
        if ns <= 0 {
            default
        } else {
            Duration::from_nanos(ns as u64)
        }
    }
    pub fn interval(&self) -> Duration {
        Self::dur(self.interval, DEFAULT_INTERVAL)
    }
    pub fn timeout(&self) -> Duration {
        Self::dur(self.timeout, DEFAULT_TIMEOUT)
    }
    pub fn start_period(&self) -> Duration {
        Self::dur(self.start_period, Duration::ZERO)
    }
    pub fn start_interval(&self) -> Duration {
        Self::dur(self.start_interval, DEFAULT_START_INTERVAL)
    }
    pub fn retries(&self) -> i64 {
        if self.retries <= 0 {
            DEFAULT_RETRIES
        } else {
            self.retries
        }
    }
}

/// The image's healthcheck under the container's (moby's `merge`): no container config takes
/// the image's whole; otherwise each field left empty or zero is the image's.
pub fn merge(
    container: Option<HealthCheck>,
    image: Option<&berth_image::Healthcheck>,
) -> Option<HealthCheck> {
    let Some(img) = image else {
        return container;
    };
    let mut h = container.unwrap_or_default();
    if h.test.is_empty() {
        h.test = img.test.clone().unwrap_or_default();
    }
    let fill = |v: &mut i64, from: Option<i64>| {
        if *v == 0 {
            *v = from.unwrap_or(0);
        }
    };
    fill(&mut h.interval, img.interval);
    fill(&mut h.timeout, img.timeout);
    fill(&mut h.start_period, img.start_period);
    fill(&mut h.start_interval, img.start_interval);
    fill(&mut h.retries, img.retries);
    Some(h)
}

/// `State.Health.Status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
    /// The suffix of `docker ps`'s `Up ...` (`health: starting`, `healthy`, `unhealthy`).
    pub fn ps_text(&self) -> &'static str {
        match self {
            HealthStatus::Starting => "health: starting",
            other => other.as_str(),
        }
    }
}

/// One probe run (`State.Health.Log[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResult {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// 0 healthy, anything else a failure; -1 when the probe could not run or timed out.
    pub exit_code: i64,
    pub output: String,
}

/// `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: i64,
    /// The last [`MAX_LOG_ENTRIES`] results, oldest first.
    pub log: Vec<HealthResult>,
}

impl Health {
    /// Apply one result (moby's `handleProbeResult`); returns the new status when it changed.
    pub fn apply(
        &mut self,
        result: HealthResult,
        retries: i64,
        start_period: Duration,
        started_at: Option<DateTime<Utc>>,
    ) -> Option<HealthStatus> {
        let old = self.status;
        let ok = result.exit_code == 0;
        let in_start_period = started_at
            .map(|s| (result.start - s).to_std().unwrap_or(Duration::ZERO) < start_period)
            .unwrap_or(false);
        if self.log.len() >= MAX_LOG_ENTRIES {
            self.log.drain(..=self.log.len() - MAX_LOG_ENTRIES);
        }
        self.log.push(result);
        if ok {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !(self.status == HealthStatus::Starting && in_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        (self.status != old).then_some(self.status)
    }
}

/// What a probe reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProbeOutcome {
    pub exit_code: i64,
    pub output: String,
}

/// Runs one probe: (engine, container, argv, timeout) → outcome. The real one is
/// [`exec_probe`]; tests give a fake.
pub(crate) type Prober = Arc<
    dyn Fn(
            Engine,
            Arc<Container>,
            Vec<String>,
            Duration,
        ) -> Pin<Box<dyn Future<Output = ProbeOutcome> + Send>>
        + Send
        + Sync,
>;

/// How long to sleep before the next probe (moby's `getInterval`): the interval, or during
/// the start period the start interval while still starting, but never past its end.
pub(crate) fn next_delay(
    hc: &HealthCheck,
    status: HealthStatus,
    since_start: Duration,
) -> Duration {
    let period = hc.start_period();
    let interval = hc.interval();
    if since_start >= period {
        return interval;
    }
    let remaining = period - since_start;
    if remaining < interval {
        return remaining;
    }
    if status == HealthStatus::Starting {
        hc.start_interval()
    } else {
        interval
    }
}

/// Bytes kept up to [`MAX_OUTPUT`]; more sets `truncated`.
#[derive(Debug, Default)]
pub(crate) struct LimitedOutput {
    buf: Vec<u8>,
    truncated: bool,
}

impl LimitedOutput {
    pub fn push(&mut self, data: &[u8]) {
        let keep = (MAX_OUTPUT - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }
    /// The text, with `...` when some was cut (Docker's form).
    pub fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

/// Docker's multiplexed stream (8-byte headers) fed in arbitrary chunks: payloads of
/// stdout and stderr go to the output in order.
#[derive(Debug, Default)]
pub(crate) struct Demux {
    header: Vec<u8>,
    remaining: usize,
}

impl Demux {
    pub fn feed(&mut self, mut data: &[u8], out: &mut LimitedOutput) {
        while !data.is_empty() {
            if self.remaining == 0 {
                let need = 8 - self.header.len();
                let take = need.min(data.len());
                self.header.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.header.len() == 8 {
                    let h = &self.header;
                    self.remaining = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
                    self.header.clear();
                }
                continue;
            }
            let take = self.remaining.min(data.len());
            out.push(&data[..take]);
            self.remaining -= take;
            data = &data[take..];
        }
    }
}

/// Go's `time.Duration` text for the timeout message (`30s`, `1.5s`, `500ms`, `1m30s`).
pub(crate) fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    let trim = |v: f64, unit: &str| {
        let s = format!("{v:.9}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{s}{unit}")
    };
    if ns < 1_000_000 {
        return trim(ns as f64 / 1e3, "µs");
    }
    if ns < 1_000_000_000 {
        return trim(ns as f64 / 1e6, "ms");
    }
    let total_secs = d.as_secs();
    let (h, m) = (total_secs / 3600, (total_secs / 60) % 60);
    let secs = trim(
        (total_secs % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9,
        "s",
    );
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

/// A probe that could not start, in Docker's words (its `Output`): `OCI runtime exec failed:
/// exec failed: unable to start container process: exec: "x": executable file not found in
/// $PATH: unknown`. The shim's reply starts with its kind (`not_found: ...`).
pub(crate) fn exec_failure(shim_message: &str) -> String {
    let detail = match shim_message.find("exec: ") {
        Some(i) => &shim_message[i..],
        None => shim_message
            .split_once(": ")
            .filter(|(k, _)| matches!(*k, "not_found" | "permission_denied" | "failed"))
            .map_or(shim_message, |(_, rest)| rest),
    };
    format!("OCI runtime exec failed: exec failed: unable to start container process: {detail}: unknown")
}

/// The real probe: an exec in the container through its shim (the container's user, env and
/// working directory, no TTY, no stdin), killed at the timeout.
pub(crate) fn exec_probe() -> Prober {
    Arc::new(|engine, c, argv, timeout| {
        Box::pin(async move {
            match engine.run_probe(&c, argv, timeout).await {
                Ok(o) => o,
                Err(e) => ProbeOutcome {
                    exit_code: -1,
                    output: e.message,
                },
            }
        })
    })
}

impl Engine {
    /// Start the healthcheck of a container that just became running (a no-op without one).
    /// `fresh`: a start or restart resets the status to `starting` (Docker); a re-adoption by a
    /// restarted daemon keeps what the record says.
    pub(crate) fn start_health(&self, c: &Arc<Container>, fresh: bool) {
        self.start_health_with(c, fresh, exec_probe());
    }

    pub(crate) fn start_health_with(&self, c: &Arc<Container>, fresh: bool, probe: Prober) {
        // Only the healthcheck and the shell are copied: this runs on every start.
        let Some((hc, shell)) = c.update(|r| {
            let hc = r.config.healthcheck.clone()?;
            Some((hc, r.config.shell.clone()))
        }) else {
            return;
        };
        let Some(argv) = hc.probe_command(&shell) else {
            if !hc.test.is_empty() && hc.test[0] != "NONE" {
                tracing::warn!(container = %c.id, "unknown healthcheck type {:?} (expected CMD or CMD-SHELL): no probe", hc.test[0]);
            }
            return;
        };
        c.update(|r| {
            let h = r.state.health.get_or_insert_with(Health::default);
            if fresh {
                h.status = HealthStatus::Starting;
                h.failing_streak = 0;
            }
        });
        // The watch's pause flag follows the record from here on (pause and unpause send it);
        // set it now for a container re-adopted paused, or stopped while paused.
        let paused = c.status() == ContainerStatus::Paused;
        c.state_tx
            .send_if_modified(|s| std::mem::replace(&mut s.paused, paused) != paused);
        let generation = c.state_tx.borrow().exits;
        let weak = self.weak();
        let c = c.clone();
        self.spawn_task(async move {
            probe_loop(weak, c, hc, argv, generation, probe).await;
        });
    }

    /// One probe through the shim.
    async fn run_probe(
        &self,
        c: &Arc<Container>,
        argv: Vec<String>,
        timeout: Duration,
    ) -> Result<ProbeOutcome> {
        use tokio::io::AsyncReadExt;
        let rec = c.snapshot();
        let exec_id = crate::names::new_id();
        let exec_attr = [("execID", exec_id.clone())];
        self.emit_container(c, &exec_action("exec_create", &argv), &exec_attr);
        let start_action = exec_action("exec_start", &argv);
        let bundle_cfg: serde_json::Value =
            crate::store::read_json(&self.bundle_dir(&rec.id).join("config.json"))
                .map_err(|e| EngineError::io("read the container's bundle config", e))?;
        let spec = crate::ExecSpec {
            cmd: argv,
            attach_stdout: true,
            attach_stderr: true,
            ..Default::default()
        };
        let process = crate::exec::exec_process(
            &bundle_cfg["process"],
            &spec,
            &rec.config.env,
            rec.config.hostname.as_deref().unwrap_or_default(),
            &self.rootfs_dir(&rec.id),
            rec.config.user.as_deref().unwrap_or(""),
        )
        .map_err(EngineError::invalid)?;
        let req = serde_json::json!({
            "exec_id": exec_id,
            "process": process,
            "tty": false,
            "stdin": false,
        });
        let state_dir = self.state_dir(&rec.id);
        let exit_file = crate::shim_client::exec_exit_file(&state_dir, &exec_id);
        self.emit_container(c, &start_action, &exec_attr);
        // Dropped before the probe ends (the container stopped or was paused, the engine
        // shut down): the probe process is killed, not left running in the container, and
        // its exec_die comes whenever the shim records its end.
        let (weak, cc, id) = (self.weak(), c.clone(), exec_id.clone());
        let on_exit: Box<dyn FnOnce(i32) + Send> = Box::new(move |code| {
            // Not after the container's `destroy`.
            if cc.state_tx.borrow().removed {
                return;
            }
            if let Some(engine) = Engine::from_weak(&weak) {
                engine.emit_container(
                    &cc,
                    "exec_die",
                    &[("execID", id), ("exitCode", code.to_string())],
                );
            }
        });
        // The start in a task of its own: dropped while the shim starts the process (a pause
        // at that moment), the task still finishes, and its unclaimed guard then kills the
        // probe and reports its end.
        let request = req.to_string();
        let guard_file = exit_file.clone();
        let started = tokio::spawn(async move {
            let (pid, stream) = crate::shim_client::exec(&state_dir, &request).await?;
            let guard = RunningProbe {
                pid,
                exit_file: guard_file,
                done: false,
                on_exit: Some(on_exit),
            };
            Ok::<_, EngineError>((guard, stream))
        });
        let (mut guard, mut stream) = started
            .await
            .map_err(|e| EngineError::internal(format!("healthcheck probe start: {e}")))?
            .map_err(|e| EngineError::internal(exec_failure(&e.message)))?;
        let mut out = LimitedOutput::default();
        let mut demux = Demux::default();
        let read_all = async {
            let mut buf = vec![0u8; 8192];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => demux.feed(&buf[..n], &mut out),
                }
            }
        };
        let timed_out = tokio::time::timeout(timeout, read_all).await.is_err();
        if timed_out {
            // Kill the probe so timed-out probes do not pile up; the shim reaps it.
            guard.kill();
            // Wait (bounded) for the shim to see it die, so its record can be cleaned up.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let mut sink = vec![0u8; 8192];
                while let Ok(n) = stream.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
            // The killed probe's end (137), when the shim saw it within the wait; else the
            // guard's drop looks for it later.
            guard.collect();
            let text = out.text();
            let msg = if text.is_empty() {
                format!("Health check exceeded timeout ({})", go_duration(timeout))
            } else {
                format!(
                    "Health check exceeded timeout ({}): {text}",
                    go_duration(timeout)
                )
            };
            return Ok(ProbeOutcome {
                exit_code: -1,
                output: msg,
            });
        }
        match guard.collect() {
            Some(code) => Ok(ProbeOutcome {
                exit_code: i64::from(code),
                output: out.text(),
            }),
            None => Err(EngineError::internal(format!(
                "healthcheck for container {} has no exit code",
                rec.id
            ))),
        }
    }
}

/// Takes the exit code the shim recorded for a probe (`exec-<id>.json`), removing its file.
fn take_exit(exit_file: &std::path::Path) -> Option<i32> {
    let code = crate::shim_client::read_exec_exit(exit_file)?;
    let _ = std::fs::remove_file(exit_file);
    Some(code)
}

/// A probe process in the container, killed on drop unless it finished.
struct RunningProbe {
    pid: i32,
    exit_file: std::path::PathBuf,
    done: bool,
    /// Reports the probe's end (`exec_die`), once.
    on_exit: Option<Box<dyn FnOnce(i32) + Send>>,
}

impl RunningProbe {
    /// The exit code, when the shim recorded it: reported, its file removed, the probe done.
    fn collect(&mut self) -> Option<i32> {
        let code = take_exit(&self.exit_file)?;
        self.done = true;
        if let Some(f) = self.on_exit.take() {
            f(code);
        }
        Some(code)
    }

    /// SIGKILL the probe, only while the shim has not recorded its exit: after that the pid
    /// may be someone else's.
    fn kill(&self) {
        if self.pid > 0 && !self.exit_file.exists() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for RunningProbe {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.kill();
        // The shim writes the exit file once the probe is reaped, which for a probe killed
        // in a frozen container waits for the thaw: remove it when it comes (bounded), so
        // dropped probes leave no files behind in the state directory.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let f = self.exit_file.clone();
            let on_exit = self.on_exit.take();
            rt.spawn(async move {
                for _ in 0..ABANDONED_EXIT_POLLS {
                    if let Some(code) = take_exit(&f) {
                        if let Some(report) = on_exit {
                            report(code);
                        }
                        return;
                    }
                    if !f.parent().is_some_and(|d| d.exists()) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            });
        }
    }
}

/// How many times (every 500 ms) a dropped probe's exit file is looked for: 5 minutes.
const ABANDONED_EXIT_POLLS: u32 = 600;

/// Whether the loop started at `generation` is still the container's: it is running and has
/// not exited (or been removed) since.
fn current(c: &Container, generation: u64) -> bool {
    !gone(&c.state_tx.borrow(), generation)
}

/// Whether the loop has nothing more to do for this container: it stopped, was removed or
/// exited since the loop started.
fn gone(s: &crate::engine::WatchState, generation: u64) -> bool {
    !s.running || s.removed || s.exits != generation
}

async fn probe_loop(
    weak: std::sync::Weak<crate::engine::Inner>,
    c: Arc<Container>,
    hc: HealthCheck,
    argv: Vec<String>,
    generation: u64,
    probe: Prober,
) {
    let mut rx = c.state_tx.subscribe();
    let timeout = hc.timeout();
    let retries = hc.retries();
    let start_period = hc.start_period();
    loop {
        // Paused: no probe until the unpause (moby stops the monitor), then a fresh delay.
        if rx.borrow().paused {
            match rx
                .wait_for(|s| gone(s, generation) || !s.paused)
                .await
                .map(|s| gone(&s, generation))
            {
                Ok(false) => {}
                _ => return,
            }
        }
        let (status, started_at) = c.update(|r| {
            (
                r.state
                    .health
                    .as_ref()
                    .map(|h| h.status)
                    .unwrap_or_default(),
                r.state.started_at,
            )
        });
        let since_start = started_at
            .and_then(|s| (Utc::now() - s).to_std().ok())
            .unwrap_or(Duration::ZERO);
        let delay = next_delay(&hc, status, since_start);
        let interrupted = rx.wait_for(|s| gone(s, generation) || s.paused);
        let ended = tokio::select! {
            _ = tokio::time::sleep(delay) => false,
            r = interrupted => r.map_or(true, |s| gone(&s, generation)),
        };
        if ended {
            return;
        }
        if rx.borrow().paused {
            continue;
        }
        if !current(&c, generation) {
            return;
        }
        let Some(engine) = Engine::from_weak(&weak) else {
            return;
        };
        let start = Utc::now();
        let run = probe(engine.clone(), c.clone(), argv.clone(), timeout);
        // A stop, exit or pause while the probe runs drops it (its process is killed).
        let interrupted = rx.wait_for(|s| gone(s, generation) || s.paused);
        let outcome = tokio::select! {
            o = run => o,
            r = interrupted => {
                if r.map_or(true, |s| gone(&s, generation)) {
                    return;
                }
                continue;
            }
        };
        let result = HealthResult {
            start,
            end: Utc::now(),
            exit_code: outcome.exit_code,
            output: outcome.output,
        };
        // The probe may have raced the container's exit, or a pause.
        if !current(&c, generation) || c.status() != ContainerStatus::Running {
            continue;
        }
        let changed = c.update(|r| {
            let started = r.state.started_at;
            r.state.health.get_or_insert_with(Health::default).apply(
                result,
                retries,
                start_period,
                started,
            )
        });
        engine.save_health(&c);
        if let Some(s) = changed {
            engine.emit_container(&c, &format!("health_status: {}", s.as_str()), &[]);
        }
    }
}

impl Engine {
    /// Keep the health state with the record (no fsync: losing it costs one probe's news).
    /// Only while no lifecycle operation runs: a removal holds that lock, and a write after
    /// it would bring the container's directory back.
    fn save_health(&self, c: &Container) {
        let Ok(_g) = c.lifecycle.try_lock() else {
            return;
        };
        if c.status() != ContainerStatus::Running {
            return;
        }
        if let Err(e) = self.save_started(c) {
            tracing::warn!(container = %c.id, "save health state: {e}");
        }
    }
}

#[cfg(test)]
mod tests;
