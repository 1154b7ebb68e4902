//! `exec`: create, start (hijacked or detached), resize, then the exit code from inspect.

use berth_api::exec::{ExecCreateRequest, ExecInspect, ExecStartRequest, IdResponse};
use berth_client::Client;

use super::attach;
use super::run::env_list;
use crate::app::ExecArgs;
use crate::{CmdResult, Failure};

pub async fn exec(c: &Client, a: ExecArgs) -> CmdResult {
    let container = &a.args[0];
    let cmd = a.args[1..].to_vec();
    let console = if a.tty {
        crate::tty::size().map(|(h, w)| vec![u32::from(h), u32::from(w)])
    } else {
        None
    };
    let req = ExecCreateRequest {
        attach_stdin: a.interactive && !a.detach,
        attach_stdout: !a.detach,
        attach_stderr: !a.detach,
        console_size: console.clone(),
        tty: a.tty,
        env: Some(env_list(&a.env, &a.env_file)?),
        cmd: Some(cmd),
        privileged: a.privileged,
        user: a.user.clone().unwrap_or_default(),
        working_dir: a.workdir.clone().unwrap_or_default(),
        detach_keys: crate::detach::effective(a.detach_keys.as_deref()).unwrap_or_default(),
    };
    if !a.detach {
        attach::check_tty(a.interactive, a.tty)?;
    }
    let created: IdResponse = c
        .post_json(&format!("/containers/{container}/exec"), Some(&req))
        .await?;
    let start = ExecStartRequest {
        detach: a.detach,
        tty: a.tty,
        console_size: console,
    };
    if a.detach {
        c.post(&format!("/exec/{}/start", created.id), Some(&start))
            .await?;
        return Ok(0);
    }
    let body = serde_json::to_vec(&start).unwrap_or_default();
    let io = c
        .hijack(&format!("/exec/{}/start", created.id), Some(body))
        .await?;
    let _raw = if a.tty && a.interactive && crate::tty::stdin_is_tty() {
        crate::tty::RawMode::enable()
    } else {
        None
    };
    if a.tty {
        attach::forward_resize(c, format!("/exec/{}/resize", created.id));
    }
    let keys = (a.tty && a.interactive)
        .then(|| crate::detach::keys_or_default(Some(req.detach_keys.as_str())));
    if attach::pump(io, a.tty, a.interactive, keys).await? == attach::SessionEnd::Detached {
        return Err(Failure::new(1, crate::detach::ESCAPE_MESSAGE));
    }
    let info: ExecInspect = c.get_json(&format!("/exec/{}/json", created.id)).await?;
    match info.exit_code {
        Some(code) => Ok(code as i32),
        None => Err(Failure::new(
            1,
            "the exec's output ended but the daemon has no exit code for it",
        )),
    }
}
