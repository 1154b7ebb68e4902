//! Container queries and waits: list, inspect, wait, top, prune, attach.
//! (create: `create.rs`; start: `start.rs`; stop/kill/remove/...: `lifecycle.rs`.)

use crate::attach::{AttachStream, PendingAttach};
use crate::engine::Container;
use crate::error::{EngineError, Result};
use crate::options::*;
use crate::record::{ContainerRecord, ContainerStatus, ContainerSummary};
use crate::Engine;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A registered waiter: created at once (so the daemon can send its headers), resolved
/// when the condition is met.
pub struct WaitHandle {
    fut: Pin<Box<dyn Future<Output = WaitResult> + Send>>,
}

impl WaitHandle {
    pub(crate) fn new(fut: impl Future<Output = WaitResult> + Send + 'static) -> Self {
        WaitHandle { fut: Box::pin(fut) }
    }
    /// Wait for the condition.
    pub async fn result(self) -> WaitResult {
        self.fut.await
    }
}

impl std::fmt::Debug for WaitHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitHandle")
    }
}

/// Go's `units.HumanDuration`, which Docker's `Status` column uses.
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let mins = d.num_minutes();
    if mins == 1 {
        return "About a minute".into();
    }
    if mins < 60 {
        return format!("{mins} minutes");
    }
    let hours = d.num_hours();
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours / 24 / 365)
}

/// Docker's human `Status` text.
pub fn status_text(rec: &ContainerRecord, now: DateTime<Utc>) -> String {
    let s = &rec.state;
    match s.status {
        ContainerStatus::Running | ContainerStatus::Paused => {
            let up = s
                .started_at
                .map(|t| human_duration(now - t))
                .unwrap_or_default();
            match (&s.health, s.status) {
                (_, ContainerStatus::Paused) => format!("Up {up} (Paused)"),
                (Some(h), _) => format!("Up {up} ({})", h.status.ps_text()),
                (None, _) => format!("Up {up}"),
            }
        }
        ContainerStatus::Restarting => {
            let ago = s
                .finished_at
                .map(|t| human_duration(now - t))
                .unwrap_or_default();
            format!("Restarting ({}) {ago} ago", s.exit_code)
        }
        ContainerStatus::Removing => "Removal In Progress".into(),
        ContainerStatus::Dead => "Dead".into(),
        ContainerStatus::Created => "Created".into(),
        ContainerStatus::Exited => match s.finished_at {
            Some(t) => format!("Exited ({}) {} ago", s.exit_code, human_duration(now - t)),
            None => format!("Exited ({})", s.exit_code),
        },
    }
}

pub(crate) fn summary(rec: &ContainerRecord, now: DateTime<Utc>) -> ContainerSummary {
    let mut command = rec.path.clone();
    for a in &rec.args {
        command.push(' ');
        command.push_str(a);
    }
    // Published ports as bound (random host ports resolved) while running; the exposed
    // ports alone otherwise, as `docker ps` shows them.
    let mut ports: Vec<(String, Vec<crate::spec::PortBinding>)> = Vec::new();
    let mut add = |key: &str, b: Option<crate::spec::PortBinding>| {
        let slot = match ports.iter_mut().position(|(k, _)| k == key) {
            Some(i) => &mut ports[i].1,
            None => {
                ports.push((key.to_string(), Vec::new()));
                &mut ports.last_mut().expect("just pushed").1
            }
        };
        if let Some(b) = b {
            slot.push(b);
        }
    };
    if rec.state.running {
        for ep in rec.networks.values() {
            for p in &ep.ports {
                add(
                    &p.container_port,
                    Some(crate::spec::PortBinding {
                        host_ip: p.host_ip.clone(),
                        host_port: p.host_port.to_string(),
                    }),
                );
            }
        }
    }
    for p in &rec.config.exposed_ports {
        add(p, None);
    }
    ContainerSummary {
        id: rec.id.clone(),
        names: vec![rec.name.clone()],
        image: rec.config.image.clone(),
        image_id: rec.image_id.clone(),
        command,
        created: rec.created,
        state: rec.state.status,
        status: status_text(rec, now),
        labels: rec.config.labels.clone(),
        network_mode: rec.config.host.network_mode.clone(),
        mounts: rec.mounts.clone(),
        ports,
    }
}

/// Docker's `name` filter: a regular expression searched in the name, with its leading `/`
/// or without (`name=web` is a substring, `name=^web$` exact, `name=^/web` too). A value
/// that is not a valid expression matches nothing, as in moby.
fn name_matches(bare: &str, pattern: &str) -> bool {
    match regex::Regex::new(pattern) {
        Ok(re) => re.is_match(bare) || re.is_match(&format!("/{bare}")),
        Err(_) => false,
    }
}

/// Whether a record passes Docker's container filters.
pub(crate) fn matches_filters(rec: &ContainerRecord, filters: &Filters) -> Result<bool> {
    for (key, values) in filters {
        if values.is_empty() {
            continue;
        }
        let ok = match key.as_str() {
            "id" => values.iter().any(|v| rec.id.starts_with(v.as_str())),
            "name" => values.iter().any(|v| name_matches(rec.bare_name(), v)),
            "status" => {
                for v in values {
                    if ![
                        "created",
                        "restarting",
                        "running",
                        "removing",
                        "paused",
                        "exited",
                        "dead",
                    ]
                    .contains(&v.as_str())
                    {
                        return Err(EngineError::invalid(format!("invalid filter 'status={v}'")));
                    }
                }
                values.iter().any(|v| v == rec.state.status.as_str())
            }
            "exited" => values.iter().any(|v| {
                rec.state.status == ContainerStatus::Exited
                    && v.parse::<i32>().ok() == Some(rec.state.exit_code)
            }),
            "label" => values.iter().all(|v| match v.split_once('=') {
                Some((k, val)) => rec.config.labels.get(k).map(|x| x == val).unwrap_or(false),
                None => rec.config.labels.contains_key(v.as_str()),
            }),
            "ancestor" => values.iter().any(|v| {
                rec.config.image == *v
                    || rec.image_id == *v
                    || rec
                        .image_id
                        .trim_start_matches("sha256:")
                        .starts_with(v.trim_start_matches("sha256:"))
                    || crate::images::display_ref(&rec.config.image)
                        == crate::images::display_ref(v)
            }),
            "volume" => values.iter().any(|v| {
                rec.mounts
                    .iter()
                    .any(|m| &m.name == v || &m.destination == v)
            }),
            "network" => values.iter().any(|v| &rec.config.host.network_mode == v),
            "expose" => values.iter().any(|v| {
                let key = if v.contains('/') {
                    v.clone()
                } else {
                    format!("{v}/tcp")
                };
                rec.config.exposed_ports.contains(&key)
            }),
            "publish" => values.iter().any(|v| {
                let key = if v.contains('/') {
                    v.clone()
                } else {
                    format!("{v}/tcp")
                };
                rec.config.host.port_bindings.contains_key(&key)
                    || rec.networks.values().any(|ep| {
                        ep.ports
                            .iter()
                            .any(|p| p.host_port.to_string() == *v || p.container_port == key)
                    })
            }),
            // `before`/`since` are resolved by `list_containers` (they name other containers).
            "health" => {
                for v in values {
                    if !["starting", "healthy", "unhealthy", "none"].contains(&v.as_str()) {
                        return Err(EngineError::invalid(format!("invalid filter 'health={v}'")));
                    }
                }
                let h = rec
                    .state
                    .health
                    .as_ref()
                    .map(|h| h.status.as_str())
                    .unwrap_or("none");
                values.iter().any(|v| v == h)
            }
            "before" | "since" | "isolation" | "is-task" => true,
            other => return Err(EngineError::invalid(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

impl Engine {
    /// List containers (running only unless `all`), newest first.
    pub async fn list_containers(&self, opts: ListOptions) -> Result<Vec<ContainerSummary>> {
        let now = Utc::now();
        let mut recs: Vec<ContainerRecord> =
            self.all_containers().iter().map(|c| c.snapshot()).collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        let all = opts.all
            || opts.limit > 0
            || opts.filters.contains_key("status")
            || opts.filters.contains_key("exited")
            || opts.filters.contains_key("before")
            || opts.filters.contains_key("since");
        // `before` / `since`: created before / after the named container.
        let created_of = |key: &str| -> Result<Option<DateTime<Utc>>> {
            match opts.filters.get(key).and_then(|v| v.first()) {
                Some(n) => Ok(Some(self.lookup(n)?.snapshot().created)),
                None => Ok(None),
            }
        };
        let before = created_of("before")?;
        let since = created_of("since")?;
        let mut out = Vec::new();
        for r in &recs {
            if before.map(|b| r.created >= b).unwrap_or(false)
                || since.map(|s| r.created <= s).unwrap_or(false)
            {
                continue;
            }
            if !all
                && !matches!(
                    r.state.status,
                    ContainerStatus::Running
                        | ContainerStatus::Paused
                        | ContainerStatus::Restarting
                )
            {
                continue;
            }
            if !matches_filters(r, &opts.filters)? {
                continue;
            }
            out.push(summary(r, now));
            if opts.limit > 0 && out.len() >= opts.limit {
                break;
            }
        }
        Ok(out)
    }

    /// The full record of a container, by id, unique id prefix or name.
    pub async fn inspect_container(&self, name: &str) -> Result<ContainerRecord> {
        Ok(self.lookup(name)?.snapshot())
    }

    /// Register a waiter. Errors (no such container) come at once; the handle resolves
    /// when the condition holds.
    pub async fn wait_container(&self, name: &str, condition: WaitCondition) -> Result<WaitHandle> {
        let c = self.lookup(name)?;
        let mut rx = c.state_tx.subscribe();
        let now = rx.borrow().clone();
        let status = c.status();
        let up = matches!(
            status,
            ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Restarting
        );
        if condition == WaitCondition::NotRunning && !up {
            // From the record, which the exit updates together with the status; the watch
            // state follows a moment later (a wait right after a kill saw its stale 0).
            let code = i64::from(c.snapshot().state.exit_code);
            return Ok(WaitHandle::new(async move {
                WaitResult {
                    status_code: code,
                    error: None,
                }
            }));
        }
        let before = now.exits;
        Ok(WaitHandle::new(async move {
            let res = rx
                .wait_for(|s| match condition {
                    WaitCondition::Removed => s.removed,
                    _ => s.exits > before || s.removed,
                })
                .await
                .map(|s| s.exit_code);
            match res {
                Ok(code) => WaitResult {
                    status_code: code,
                    error: None,
                },
                Err(_) => WaitResult {
                    status_code: -1,
                    error: Some("the engine shut down while waiting".into()),
                },
            }
        }))
    }

    /// The container's processes: `ps -ef` shaped from /proc, or the host's `ps` with
    /// `ps_args` (see `top.rs`).
    pub async fn top_container(&self, name: &str, ps_args: Option<&str>) -> Result<TopResult> {
        let ps_args = ps_args.filter(|a| !a.trim().is_empty());
        if let Some(a) = ps_args {
            crate::top::validate_ps_args(a)?;
        }
        let c = self.lookup(name)?;
        let rec = c.snapshot();
        if !matches!(
            rec.state.status,
            ContainerStatus::Running | ContainerStatus::Paused
        ) {
            return Err(EngineError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let m = berth_cgroups::open(berth_cgroups::CgroupPath(rec.cgroup_path.clone()))
            .map_err(|e| EngineError::internal(format!("cgroup: {e}")))?;
        let mut pids = m
            .pids()
            .map_err(|e| EngineError::internal(format!("cgroup: {e}")))?;
        if pids.is_empty() && rec.state.pid > 0 {
            pids.push(rec.state.pid);
        }
        pids.sort_unstable();
        match ps_args {
            Some(a) => crate::top::ps_with_args(&pids, a).await,
            None => Ok(crate::top::ps(&pids)),
        }
    }

    /// Remove every stopped container matching `filters` (`until`, `label`).
    pub async fn prune_containers(&self, filters: Filters) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        let until = filters
            .get("until")
            .and_then(|v| v.first())
            .map(|s| crate::logs::parse_time(s))
            .transpose()?;
        let label_filters: Filters = filters
            .iter()
            .filter(|(k, _)| k.as_str() == "label")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for c in self.all_containers() {
            let rec = c.snapshot();
            if !matches!(
                rec.state.status,
                ContainerStatus::Exited | ContainerStatus::Created | ContainerStatus::Dead
            ) {
                continue;
            }
            if until.map(|u| rec.created >= u).unwrap_or(false)
                || !matches_filters(&rec, &label_filters)?
            {
                continue;
            }
            let size = rec
                .graph_driver
                .get("UpperDir")
                .map(|u| crate::volumes::dir_size(std::path::Path::new(u)))
                .unwrap_or(0);
            if self
                .remove_container(&rec.id, RemoveOptions::default())
                .await
                .is_ok()
            {
                report.deleted.push(rec.id.clone());
                report.space_reclaimed += size;
            }
        }
        self.emit("container", "prune", "", Default::default());
        Ok(report)
    }

    /// Attach to a container's stdio. Works before `start` too (output from the first byte
    /// is delivered, as `docker run` needs).
    pub async fn attach_container(&self, name: &str, opts: AttachOptions) -> Result<AttachStream> {
        let c = self.lookup(name)?;
        let rec = c.snapshot();
        let tty = rec.config.tty;
        match rec.state.status {
            ContainerStatus::Running => {
                let s = crate::shim_client::attach(
                    &self.state_dir(&c.id),
                    opts.stdin,
                    opts.stdout,
                    opts.stderr,
                    opts.logs,
                    rec.config.stdin_once,
                )
                .await?;
                Ok(AttachStream {
                    io: Box::new(s),
                    tty,
                })
            }
            ContainerStatus::Paused => Err(EngineError::conflict(format!(
                "container {} is paused, unpause the container before attach",
                rec.id
            ))),
            _ => Ok(AttachStream {
                io: Box::new(self.pending_attach(&c, opts)),
                tty,
            }),
        }
    }

    fn pending_attach(&self, c: &Arc<Container>, opts: AttachOptions) -> tokio::io::DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        c.pending_attach
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PendingAttach { opts, io: server });
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn name_filter_is_a_regex_with_or_without_the_slash() {
        assert!(name_matches("web", "web"));
        assert!(name_matches("my-web-1", "web"));
        assert!(name_matches("web", "^web$"));
        assert!(!name_matches("web2", "^web$"));
        assert!(name_matches("web", "^/web$"));
        assert!(name_matches("web", "/web"));
        assert!(name_matches("api", "web|api"));
        assert!(!name_matches("web", "(unclosed"));
    }

    #[test]
    fn human_durations_match_go_units() {
        assert_eq!(
            human_duration(Duration::milliseconds(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(Duration::seconds(1)), "1 second");
        assert_eq!(human_duration(Duration::seconds(5)), "5 seconds");
        assert_eq!(human_duration(Duration::seconds(65)), "About a minute");
        assert_eq!(human_duration(Duration::minutes(5)), "5 minutes");
        assert_eq!(human_duration(Duration::minutes(61)), "About an hour");
        assert_eq!(human_duration(Duration::hours(30)), "30 hours");
        assert_eq!(human_duration(Duration::days(3)), "3 days");
        assert_eq!(human_duration(Duration::days(20)), "2 weeks");
    }

    #[test]
    fn status_texts() {
        let now = Utc::now();
        let mut r = ContainerRecord::default();
        assert_eq!(status_text(&r, now), "Created");
        r.state.status = ContainerStatus::Exited;
        r.state.exit_code = 3;
        r.state.finished_at = Some(now - Duration::minutes(2));
        assert_eq!(status_text(&r, now), "Exited (3) 2 minutes ago");
        r.state.status = ContainerStatus::Running;
        r.state.started_at = Some(now - Duration::seconds(5));
        assert_eq!(status_text(&r, now), "Up 5 seconds");
        r.state.status = ContainerStatus::Paused;
        assert_eq!(status_text(&r, now), "Up 5 seconds (Paused)");
    }

    #[test]
    fn filters() {
        let mut r = ContainerRecord {
            id: "abc".repeat(21) + "d",
            name: "/web".into(),
            ..Default::default()
        };
        r.config.labels.insert("tier".into(), "front".into());
        r.state.status = ContainerStatus::Running;
        let f = |k: &str, v: &str| -> Filters { [(k.to_string(), vec![v.to_string()])].into() };
        assert!(matches_filters(&r, &f("name", "we")).unwrap());
        assert!(!matches_filters(&r, &f("name", "db")).unwrap());
        assert!(matches_filters(&r, &f("label", "tier=front")).unwrap());
        assert!(matches_filters(&r, &f("label", "tier")).unwrap());
        assert!(!matches_filters(&r, &f("label", "tier=back")).unwrap());
        assert!(matches_filters(&r, &f("status", "running")).unwrap());
        assert!(matches_filters(&r, &f("id", "abcab")).unwrap());
        assert!(matches_filters(&r, &f("status", "bogus")).is_err());
        r.config.exposed_ports = vec!["80/tcp".into()];
        assert!(matches_filters(&r, &f("expose", "80")).unwrap());
        assert!(!matches_filters(&r, &f("expose", "81")).unwrap());
        assert!(!matches_filters(&r, &f("publish", "80")).unwrap());
        assert!(matches_filters(&r, &f("bogus", "x")).is_err());
    }
}
