//! The start timeline: how long each step of a container's start took, measured by the
//! engine while it happened (not estimated afterwards).
//!
//! `create` records its steps (resolve the image, volumes, the overlay snapshot, the
//! record) into `create-timeline.json` beside the record; the first `start` after it
//! adds the time the client took between the two requests and its own steps (mount the
//! rootfs, write the bundle, spawn the shim — which clones the container's process into
//! its new namespaces — connect the networks, `START` — the exec of the user's program)
//! and stores the whole as `timeline.json`. Later starts (restarts) store only their own
//! steps. Laps are contiguous, so the steps add up to the wall time from the first
//! measured instant to the last.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

const FILE: &str = "timeline.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StartTimeline {
    /// Wall-clock time of the first measured instant.
    pub began_at: Option<DateTime<Utc>>,
    /// Whether the steps include the container's `create` (its first start).
    pub includes_create: bool,
    pub steps: Vec<TimelineStep>,
    /// Sum of the steps' durations, microseconds.
    pub total_us: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimelineStep {
    /// `create`, `client` or `start`.
    pub phase: String,
    pub name: String,
    /// What happens in this step, for people.
    pub what: String,
    /// Microseconds from the timeline's beginning to this step's start.
    pub offset_us: u64,
    pub duration_us: u64,
}

/// Measures contiguous steps.
#[derive(Debug)]
pub struct Recorder {
    phase: &'static str,
    began_at: DateTime<Utc>,
    origin: Instant,
    last: Instant,
    steps: Vec<TimelineStep>,
}

impl Recorder {
    pub fn new(phase: &'static str) -> Self {
        let now = Instant::now();
        Recorder {
            phase,
            began_at: Utc::now(),
            origin: now,
            last: now,
            steps: Vec::new(),
        }
    }

    /// End the current step (started at the previous lap) and name it.
    pub fn lap(&mut self, name: &str) {
        self.lap_at(name, Instant::now());
    }

    /// End the current step at `now` (an instant taken a little earlier) and name it.
    pub fn lap_at(&mut self, name: &str, now: Instant) {
        let now = now.max(self.last);
        // Both ends from the origin, so rounding never opens a gap between steps.
        let start = (self.last - self.origin).as_micros() as u64;
        let end = (now - self.origin).as_micros() as u64;
        self.steps.push(TimelineStep {
            phase: self.phase.to_string(),
            name: name.to_string(),
            what: describe(name).to_string(),
            offset_us: start,
            duration_us: end - start,
        });
        self.last = now;
    }

    /// Add to the last step's description what only this run can say.
    pub fn annotate_last(&mut self, more: &str) {
        if let Some(s) = self.steps.last_mut() {
            s.what = if s.what.is_empty() {
                more.to_string()
            } else {
                format!("{}; {more}", s.what)
            };
        }
    }

    /// Replace the last step by the parts it was measured in by someone else (the shim and
    /// the runtime report theirs): `parts` in order, and first, what they did not cover (the
    /// request to the shim and its reply) as `shim start, request and reply`.
    pub fn split_last(&mut self, parts: &[(String, u64)]) {
        if parts.is_empty() {
            return;
        }
        let Some(last) = self.steps.pop() else {
            return;
        };
        let measured: u64 = parts.iter().map(|p| p.1).sum();
        let mut offset = last.offset_us;
        let rest = (
            "shim start, request and reply".to_string(),
            last.duration_us.saturating_sub(measured),
        );
        for (name, us) in std::iter::once(&rest).chain(parts.iter()) {
            // Never past the end of the step that was measured here.
            let d = (*us).min(last.offset_us + last.duration_us - offset);
            self.steps.push(TimelineStep {
                phase: last.phase.clone(),
                name: name.clone(),
                what: describe(name).to_string(),
                offset_us: offset,
                duration_us: d,
            });
            offset += d;
        }
        // Rounding: the parts end exactly where the step did.
        if let Some(s) = self.steps.last_mut() {
            s.duration_us += last.offset_us + last.duration_us - offset;
        }
    }

    fn finish(&self) -> (DateTime<Utc>, Vec<TimelineStep>) {
        (self.began_at, self.steps.clone())
    }
}

/// What a step does, by the names the engine laps with.
fn describe(name: &str) -> &'static str {
    match name {
        "validate config" => "check the request: limits, security options, network mode",
        "resolve image" => "find the image by name in the local store, read its config",
        "volumes" => "create or look up the named and anonymous volumes",
        "snapshot" => "create the container's empty upper and work dirs over the image's layer snapshots",
        "save record" => "write the container's record to disk (atomically)",
        "client start-up, create request" => {
            "the client process is forked and exec'd, parses the command line, connects and sends the create request"
        }
        "pull image" => "the client pulled the image (not found locally) before creating",
        "between requests" => "the client got the create reply and sent the start request",
        "mount rootfs" => "mount the overlay: image layers (read-only) + the upper dir",
        "etc files, volumes, spec" => "write /etc/hosts, hostname, resolv.conf; build the OCI spec",
        "write bundle" => "write the OCI spec as the bundle's config.json",
        "spawn shim (runtime create)" => {
            "start the shim, which runs the runtime: it clones the process into new namespaces, joins the cgroups, sets up the mounts and waits before exec"
        }
        "shim start, request and reply" => {
            "the daemon asks the shim zygote for a shim, which forks one; the shim's report comes back"
        }
        "shim: stdio, log, socket" => {
            "the new shim takes its own session, opens the json log, listens on its socket, makes the stdio pipes"
        }
        "runtime: load the spec, compile seccomp" => {
            "read and check config.json, plan namespaces, capabilities, rlimits; compile the seccomp profile to BPF"
        }
        "runtime: create the cgroups, set limits" => {
            "mkdir the container's cgroup in each hierarchy and write its limits (memory, cpu, pids, devices)"
        }
        "runtime: clone the init into new namespaces" => {
            "fork a helper that joins the cgroups, then clone(2) the init with CLONE_NEWNS|NEWPID|NEWNET|NEWUTS|NEWIPC"
        }
        "runtime: init joins its cgroups" => "release the init once it is in its cgroups",
        "init: mount rootfs, /proc, /dev, volumes" => {
            "in its new mount namespace the init mounts /proc, /dev (tmpfs, device nodes), /sys, cgroups, volumes and /etc files under the rootfs"
        }
        "init: createRuntime hooks handshake" => "tell the runtime the mounts are done; it runs createRuntime hooks",
        "init: pivot_root" => "pivot_root into the rootfs and detach the old root",
        "init: masks, read-only paths, hostname, find the program" => {
            "mask /proc paths, make /proc/sys etc. read-only, set the hostname and sysctls, look the program up in PATH"
        }
        "init: other (start, handshakes)" => "the init's start and its messages to the runtime",
        "runtime: save the state" => "write the runtime's state.json for this container",
        "shim: fork the runtime helper, get its reply" => {
            "the shim runs the runtime in a forked helper (so the long-lived shim stays small) and reads its reply"
        }
        "shim: report" => "report the shim's and the container's pids to the daemon",
        "networks" => "veth pair into the bridge, address and routes in the netns, port rules",
        "attach, wait, START" => "connect waiters; the runtime execs the user's program",
        "publish state, start monitor" => {
            "mark it running, emit the start event, start watching for its exit"
        }
        _ => "",
    }
}

/// `create` finished: its steps, kept (in memory, with the container) until the first start.
pub fn create_timeline(rec: &Recorder) -> StartTimeline {
    let (began_at, steps) = rec.finish();
    StartTimeline {
        began_at: Some(began_at),
        includes_create: true,
        total_us: steps.iter().map(|s| s.duration_us).sum(),
        steps,
    }
}

/// A start finished: its timeline, with the create before it on the first start.
pub fn start_timeline(create: Option<StartTimeline>, rec: &Recorder) -> StartTimeline {
    let (began_at, start_steps) = rec.finish();
    let mut tl = StartTimeline {
        began_at: Some(began_at),
        ..Default::default()
    };
    let mut offset = 0u64;
    if let Some(c) = create.filter(|c| c.began_at.is_some()) {
        let c_began = c.began_at.unwrap_or(began_at);
        let c_end = c_began + chrono::Duration::microseconds(c.total_us as i64);
        tl.began_at = Some(c_began);
        tl.includes_create = true;
        tl.steps = c.steps;
        let gap = (began_at - c_end).num_microseconds().unwrap_or(0).max(0) as u64;
        tl.steps.push(TimelineStep {
            phase: "client".into(),
            name: "between requests".into(),
            what: describe("between requests").into(),
            offset_us: c.total_us,
            duration_us: gap,
        });
        offset = c.total_us + gap;
    }
    for mut s in start_steps {
        s.offset_us += offset;
        tl.steps.push(s);
    }
    tl.total_us = tl.steps.iter().map(|s| s.duration_us).sum();
    tl
}

/// Keep a start's timeline on disk (for `explain` after a daemon restart); off the request
/// path, the engine holds the same in memory.
pub fn store(container_dir: &Path, tl: &StartTimeline) {
    write(&container_dir.join(FILE), tl);
}

/// The client's share of a run, which only the client can measure: it says when it
/// started and how long it spent pulling the image (query parameters of its create
/// request). Prepended to the create's steps, so the timeline covers the whole `run`.
/// Values that cannot be true (a start after the create began, or over a minute
/// before it) are ignored.
pub fn add_client_steps(tl: &mut StartTimeline, client_started: DateTime<Utc>, pull_us: u64) {
    let Some(began) = tl.began_at else { return };
    let lead = (began - client_started).num_microseconds().unwrap_or(-1);
    if !(0..=60_000_000).contains(&lead) || tl.steps.first().is_some_and(|s| s.phase == "client") {
        return;
    }
    let lead = lead as u64;
    let pull_us = pull_us.min(lead);
    let mut steps = vec![TimelineStep {
        phase: "client".into(),
        name: "client start-up, create request".into(),
        what: describe("client start-up, create request").into(),
        offset_us: 0,
        duration_us: lead - pull_us,
    }];
    if pull_us > 0 {
        steps.push(TimelineStep {
            phase: "client".into(),
            name: "pull image".into(),
            what: describe("pull image").into(),
            offset_us: lead - pull_us,
            duration_us: pull_us,
        });
    }
    for mut st in std::mem::take(&mut tl.steps) {
        st.offset_us += lead;
        steps.push(st);
    }
    tl.steps = steps;
    tl.began_at = Some(client_started);
    tl.total_us += lead;
}

impl crate::Engine {
    /// See [`add_client_steps`] (to the container's create timeline, until its first start).
    pub fn add_client_timeline(&self, id: &str, client_started: DateTime<Utc>, pull_us: u64) {
        if let Ok(c) = self.lookup(id) {
            let mut slot = c.timeline.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(tl) = slot.create.as_mut() {
                add_client_steps(tl, client_started, pull_us);
            }
        }
    }

    /// The last start's timeline: the engine's copy, else the one stored on disk.
    pub(crate) fn last_timeline(&self, id: &str) -> Option<StartTimeline> {
        let mem = self.lookup(id).ok().and_then(|c| {
            c.timeline
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .last
                .clone()
        });
        mem.or_else(|| load(&self.container_dir(id)))
    }
}

/// A container's timelines, held with it: the create's until the first start, and the last
/// start's (also stored on disk in the background, for after a daemon restart).
#[derive(Debug, Default)]
pub struct Slot {
    pub create: Option<StartTimeline>,
    pub last: Option<StartTimeline>,
}

/// The last start's timeline, if one was recorded.
pub fn load(container_dir: &Path) -> Option<StartTimeline> {
    let b = std::fs::read(container_dir.join(FILE)).ok()?;
    serde_json::from_slice(&b).ok()
}

/// Not fsync'd: the timeline is a diagnostic, not state to recover from, and the start
/// path should not wait on the disk for it. Written to a temp name and renamed, so a
/// reader never sees half of it.
fn write(path: &Path, tl: &StartTimeline) {
    let Ok(bytes) = serde_json::to_vec(tl) else {
        return;
    };
    let _ = berth_sys::file::write_replace(path, &bytes, 0o644, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_start_adds_up() {
        let d = tempfile::tempdir().unwrap();
        let mut c = Recorder::new("create");
        std::thread::sleep(std::time::Duration::from_millis(3));
        c.lap("resolve image");
        c.lap("save record");
        let ctl = create_timeline(&c);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let t0 = Instant::now();
        let mut s = Recorder::new("start");
        std::thread::sleep(std::time::Duration::from_millis(2));
        s.lap("mount rootfs");
        s.lap("networks");
        let tl = start_timeline(Some(ctl), &s);
        store(d.path(), &tl);
        assert_eq!(load(d.path()).unwrap(), tl);
        assert!(tl.includes_create);
        let names: Vec<_> = tl.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "resolve image",
                "save record",
                "between requests",
                "mount rootfs",
                "networks"
            ]
        );
        assert!(tl.steps[0].duration_us >= 3000);
        assert!(tl.steps[2].duration_us >= 4000, "{:?}", tl.steps[2]);
        assert_eq!(
            tl.total_us,
            tl.steps.iter().map(|s| s.duration_us).sum::<u64>()
        );
        // Offsets are contiguous.
        for w in tl.steps.windows(2) {
            assert_eq!(w[1].offset_us, w[0].offset_us + w[0].duration_us);
        }
        let _ = t0;
        // A restart: only its own steps.
        assert!(tl
            .steps
            .iter()
            .all(|s| s.phase != "client" || s.name == "between requests"));
        let mut s = Recorder::new("start");
        s.lap("mount rootfs");
        let tl = start_timeline(None, &s);
        assert!(!tl.includes_create);
        assert_eq!(tl.steps.len(), 1);
    }

    #[test]
    fn client_steps_are_prepended() {
        let client = Utc::now();
        std::thread::sleep(std::time::Duration::from_millis(4));
        let mut c = Recorder::new("create");
        c.lap("resolve image");
        let mut ctl = create_timeline(&c);
        add_client_steps(&mut ctl, client, 1000);
        // Twice is once.
        add_client_steps(&mut ctl, client, 1000);
        let s = Recorder::new("start");
        let tl = start_timeline(Some(ctl), &s);
        let names: Vec<_> = tl.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "client start-up, create request",
                "pull image",
                "resolve image",
                "between requests"
            ]
        );
        assert_eq!(tl.began_at, Some(client));
        assert!(tl.steps[0].duration_us + tl.steps[1].duration_us >= 4000);
        assert_eq!(tl.steps[1].duration_us, 1000);
        assert_eq!(tl.steps[2].offset_us, tl.steps[0].duration_us + 1000);
        // A client start in the future is ignored.
        let mut c = Recorder::new("create");
        c.lap("resolve image");
        let mut ctl = create_timeline(&c);
        add_client_steps(&mut ctl, Utc::now() + chrono::Duration::seconds(5), 0);
        let s = Recorder::new("start");
        assert_eq!(start_timeline(Some(ctl), &s).steps[0].name, "resolve image");
    }
}
