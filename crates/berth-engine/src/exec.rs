//! `exec`: extra processes in a running container, run through its shim.

use serde::{Deserialize, Serialize};

/// An exec to create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub privileged: bool,
    /// The detach sequence for a hijacked start with stdin (`ctrl-p,ctrl-q` when empty).
    pub detach_keys: String,
}

/// `exec start` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecStartOptions {
    /// Run in the background; no stream is returned.
    pub detach: bool,
    /// Initial size (rows, cols) for a TTY.
    pub console_size: Option<(u16, u16)>,
}

/// What `exec inspect` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub spec: ExecSpec,
    pub running: bool,
    /// `None` until the process exits.
    pub exit_code: Option<i32>,
    pub pid: i32,
}

use crate::attach::AttachStream;
use crate::error::{EngineError, Result};
use crate::record::ContainerStatus;
use crate::Engine;
use std::sync::{Arc, Mutex};

/// An exec the engine tracks.
pub(crate) struct ExecEntry {
    pub record: Mutex<ExecRecord>,
}

impl ExecEntry {
    fn snapshot(&self) -> ExecRecord {
        self.record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    fn update<R>(&self, f: impl FnOnce(&mut ExecRecord) -> R) -> R {
        f(&mut self.record.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The exec's OCI process: the container's (caps, rlimits, no-new-privileges) with the
/// exec's argv, env, cwd, user and terminal.
pub(crate) fn exec_process(
    container_process: &serde_json::Value,
    spec: &ExecSpec,
    container_env: &[String],
    hostname: &str,
    rootfs: &std::path::Path,
    default_user: &str,
) -> std::result::Result<serde_json::Value, String> {
    let mut p = container_process.clone();
    let user_spec = spec
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| default_user.to_string());
    let user = crate::oci::user::resolve(&user_spec, rootfs)?;
    let env = crate::oci::merge_env(container_env, &spec.env);
    let env = crate::oci::process_env(&env, hostname, spec.tty, &user.home);
    p["args"] = serde_json::json!(spec.cmd);
    p["env"] = serde_json::json!(env);
    p["terminal"] = serde_json::json!(spec.tty);
    let mut u = serde_json::json!({"uid": user.uid, "gid": user.gid});
    if !user.additional_gids.is_empty() {
        u["additionalGids"] = serde_json::json!(user.additional_gids);
    }
    p["user"] = u;
    if let Some(w) = spec.working_dir.as_deref().filter(|w| !w.is_empty()) {
        p["cwd"] = serde_json::json!(w);
    }
    if spec.privileged {
        let all: Vec<&str> = crate::oci::caps::ALL_CAPS.to_vec();
        p["capabilities"] =
            serde_json::json!({"bounding": all, "effective": all, "permitted": all});
    }
    if let Some(o) = p.as_object_mut() {
        o.remove("consoleSize");
    }
    Ok(p)
}

impl Engine {
    fn exec_entry(&self, id: &str) -> Result<Arc<ExecEntry>> {
        self.inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::no_such_exec(id))
    }

    /// Pick up the exit code the shim wrote for an exec.
    fn refresh_exec(&self, e: &ExecEntry) {
        let r = e.snapshot();
        if r.exit_code.is_some() || r.pid == 0 {
            return;
        }
        let file = crate::shim_client::exec_exit_file(&self.state_dir(&r.container_id), &r.id);
        if let Some(code) = crate::shim_client::read_exec_exit(&file) {
            e.update(|r| {
                r.exit_code = Some(code);
                r.running = false;
            });
        }
    }

    /// The exec's stream ended: pick up its exit code and, when the shim recorded one,
    /// emit `exec_die` (moby's, with `execID` and `exitCode`).
    fn exec_ended(&self, e: &ExecEntry) {
        self.refresh_exec(e);
        let r = e.snapshot();
        let (Some(code), Ok(c)) = (r.exit_code, self.lookup(&r.container_id)) else {
            return;
        };
        self.emit_container(
            &c,
            "exec_die",
            &[("execID", r.id.clone()), ("exitCode", code.to_string())],
        );
    }

    /// Mark a stopped container's execs finished.
    pub(crate) fn finish_execs(&self, container_id: &str) {
        let execs: Vec<Arc<ExecEntry>> = self
            .inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for e in execs {
            if e.snapshot().container_id == container_id {
                self.refresh_exec(&e);
                e.update(|r| r.running = false);
            }
        }
    }

    pub(crate) fn forget_execs(&self, container_id: &str) {
        self.inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, e| e.snapshot().container_id != container_id);
    }

    /// Create an exec in a running container; returns its id.
    pub async fn exec_create(&self, container: &str, spec: ExecSpec) -> Result<String> {
        let c = self.lookup(container)?;
        let rec = c.snapshot();
        match rec.state.status {
            ContainerStatus::Running => {}
            ContainerStatus::Paused => {
                return Err(EngineError::conflict(format!(
                    "Container {} is paused, unpause the container before exec",
                    rec.id
                )))
            }
            _ => {
                return Err(EngineError::conflict(format!(
                    "Container {} is not running",
                    rec.id
                )))
            }
        }
        if spec.cmd.is_empty() {
            return Err(EngineError::invalid("No exec command specified"));
        }
        let id = crate::names::new_id();
        let action = crate::exec_events::exec_action("exec_create", &spec.cmd);
        let entry = Arc::new(ExecEntry {
            record: Mutex::new(ExecRecord {
                id: id.clone(),
                container_id: rec.id.clone(),
                spec,
                running: false,
                exit_code: None,
                pid: 0,
            }),
        });
        self.inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), entry);
        c.update(|r| r.exec_ids.push(id.clone()));
        self.emit_container(&c, &action, &[("execID", id.clone())]);
        Ok(id)
    }

    /// Start an exec; returns its stream unless detached.
    pub async fn exec_start(
        &self,
        id: &str,
        opts: ExecStartOptions,
    ) -> Result<Option<AttachStream>> {
        let e = self.exec_entry(id)?;
        let r = e.snapshot();
        if r.pid != 0 {
            return Err(EngineError::conflict(format!(
                "Error: Exec command {id} has already run"
            )));
        }
        let c = self.lookup(&r.container_id)?;
        let rec = c.snapshot();
        if rec.state.status != ContainerStatus::Running {
            return Err(EngineError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let bundle_cfg: serde_json::Value =
            crate::store::read_json(&self.bundle_dir(&rec.id).join("config.json"))
                .map_err(|e| EngineError::io("read the container's bundle config", e))?;
        let hostname = rec.config.hostname.clone().unwrap_or_default();
        let mut process = exec_process(
            &bundle_cfg["process"],
            &r.spec,
            &rec.config.env,
            &hostname,
            &self.rootfs_dir(&rec.id),
            rec.config.user.as_deref().unwrap_or(""),
        )
        .map_err(EngineError::invalid)?;
        if let (true, Some((rows, cols))) = (r.spec.tty, opts.console_size) {
            process["consoleSize"] = serde_json::json!({"height": rows, "width": cols});
        }
        let req = serde_json::json!({
            "exec_id": id,
            "process": process,
            "tty": r.spec.tty,
            "stdin": r.spec.attach_stdin && !opts.detach,
        });
        // Before the process starts, as dockerd (a start that fails has its exec_start too).
        self.emit_container(
            &c,
            &crate::exec_events::exec_action("exec_start", &r.spec.cmd),
            &[("execID", id.to_string())],
        );
        let (pid, stream) = crate::shim_client::exec(&self.state_dir(&rec.id), &req.to_string())
            .await
            .map_err(|err| crate::shim_client::start_error(&err.message))?;
        e.update(|x| {
            x.pid = pid;
            x.running = true;
        });
        if opts.detach {
            let engine = self.clone();
            tokio::spawn(async move {
                let mut s = stream;
                let _ = tokio::io::copy(&mut s, &mut tokio::io::sink()).await;
                engine.exec_ended(&e);
            });
            return Ok(None);
        }
        let engine = self.clone();
        let stream = crate::exec_events::ExitWatch::new(stream, move || engine.exec_ended(&e));
        Ok(Some(AttachStream {
            io: Box::new(stream),
            tty: r.spec.tty,
        }))
    }

    pub async fn exec_inspect(&self, id: &str) -> Result<ExecRecord> {
        let e = self.exec_entry(id)?;
        self.refresh_exec(&e);
        Ok(e.snapshot())
    }

    pub async fn exec_resize(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        let e = self.exec_entry(id)?;
        let r = e.snapshot();
        if !r.running {
            return Err(EngineError::conflict(format!("Exec {id} is not running")));
        }
        crate::shim_client::resize_exec(&self.state_dir(&r.container_id), id, rows, cols).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_process_overrides_the_containers() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nbob:x:7:7::/home/bob:/bin/sh\n",
        )
        .unwrap();
        let cp = serde_json::json!({
            "args": ["sleep", "1"], "env": ["X=1"], "cwd": "/", "terminal": false,
            "user": {"uid": 0, "gid": 0}, "noNewPrivileges": true,
            "capabilities": {"bounding": ["CAP_KILL"]}
        });
        let spec = ExecSpec {
            cmd: vec!["cat".into(), "/etc/hostname".into()],
            env: vec!["Y=2".into()],
            user: Some("bob".into()),
            working_dir: Some("/tmp".into()),
            tty: true,
            ..Default::default()
        };
        let p = exec_process(&cp, &spec, &["X=1".into()], "h", d.path(), "").unwrap();
        assert_eq!(p["args"], serde_json::json!(["cat", "/etc/hostname"]));
        assert_eq!(p["user"]["uid"], 7);
        assert_eq!(p["cwd"], "/tmp");
        assert_eq!(p["terminal"], true);
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(
            p["capabilities"]["bounding"],
            serde_json::json!(["CAP_KILL"])
        );
        let env: Vec<String> = serde_json::from_value(p["env"].clone()).unwrap();
        assert!(env.contains(&"X=1".to_string()) && env.contains(&"Y=2".to_string()));
        assert!(env.contains(&"HOME=/home/bob".to_string()));
        let _: oci_spec::runtime::Process = serde_json::from_value(p).unwrap();
    }
}
