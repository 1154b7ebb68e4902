//! start, stop, kill, restart, rm, rename, pause, unpause, wait, top, port, prune.

use berth_api::container::{
    ContainerInspect, ContainerPruneResponse, ContainerTopResponse, ContainerWaitResponse,
};
use berth_client::{Client, Query};

use super::filters_json;
use crate::app::{
    KillArgs, NamesArgs, PortArgs, PruneArgs, RenameArgs, RmArgs, StartArgs, StopArgs, TopArgs,
};
use crate::{CmdResult, Failure};

/// Runs `f` on every name, printing the name on success and errors on stderr; exit 1 if
/// any failed (Docker's multi-container behaviour).
async fn each<F, Fut>(names: &[String], print: bool, mut f: F) -> CmdResult
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), berth_client::ClientError>>,
{
    let mut failed = false;
    for n in names {
        match f(n.clone()).await {
            Ok(()) => {
                if print {
                    println!("{n}");
                }
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// `POST /containers/{name}/{action}{query}` for each name, printing the names that worked
/// (start, stop, restart, kill, pause, unpause all share this shape).
async fn post_each(c: &Client, names: &[String], action: &str, query: &str) -> CmdResult {
    each(names, true, |n| async move {
        c.post_status(&format!("/containers/{n}/{action}{query}"))
            .await
            .map(|_| ())
    })
    .await
}

pub async fn start(c: &Client, a: StartArgs) -> CmdResult {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(Failure::new(
                1,
                "you cannot start and attach multiple containers at once",
            ));
        }
        return super::run::start_attached(
            c,
            &a.containers[0],
            a.interactive,
            a.detach_keys.as_deref(),
        )
        .await;
    }
    post_each(c, &a.containers, "start", "").await
}

pub async fn stop(c: &Client, a: StopArgs) -> CmdResult {
    stop_or_restart(c, a, "stop").await
}

pub async fn restart(c: &Client, a: StopArgs) -> CmdResult {
    stop_or_restart(c, a, "restart").await
}

async fn stop_or_restart(c: &Client, a: StopArgs, action: &str) -> CmdResult {
    let q = Query::new()
        .opt("t", a.time)
        .opt("signal", a.signal.clone())
        .encode();
    post_each(c, &a.containers, action, &q).await
}

pub async fn kill(c: &Client, a: KillArgs) -> CmdResult {
    let q = Query::new().opt("signal", a.signal.clone()).encode();
    post_each(c, &a.containers, "kill", &q).await
}

pub async fn rm(c: &Client, a: RmArgs) -> CmdResult {
    let q = Query::new()
        .flag("force", a.force)
        .flag("v", a.volumes)
        .encode();
    each(&a.containers, true, |n| {
        let q = q.clone();
        async move { c.delete(&format!("/containers/{n}{q}")).await.map(|_| ()) }
    })
    .await
}

pub async fn simple(c: &Client, a: NamesArgs, verb: &str) -> CmdResult {
    post_each(c, &a.containers, verb, "").await
}

pub async fn rename(c: &Client, a: RenameArgs) -> CmdResult {
    let q = Query::new().add("name", &a.new_name).encode();
    c.post_status(&format!("/containers/{}/rename{q}", a.container))
        .await?;
    Ok(0)
}

pub async fn wait(c: &Client, a: NamesArgs) -> CmdResult {
    let mut failed = false;
    for n in &a.containers {
        let r = async {
            let mut s = c
                .post_stream(
                    &format!("/containers/{n}/wait?condition=not-running"),
                    Client::empty_body(),
                    None,
                    &[],
                )
                .await?;
            s.next_json::<ContainerWaitResponse>().await
        }
        .await;
        match r {
            Ok(Some(w)) => println!("{}", w.status_code),
            Ok(None) => {
                eprintln!("wait for {n}: the daemon closed the stream without a status");
                failed = true;
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub async fn top(c: &Client, a: TopArgs) -> CmdResult {
    let q = Query::new()
        .opt(
            "ps_args",
            if a.ps_args.is_empty() {
                None
            } else {
                Some(a.ps_args.join(" "))
            },
        )
        .encode();
    let t: ContainerTopResponse = c
        .get_json(&format!("/containers/{}/top{q}", a.container))
        .await?;
    let mut rows = vec![t.titles];
    rows.extend(t.processes);
    // docker's top writes through a tabwriter with a minimum width of 20.
    print!("{}", crate::table::render_min(&rows, 20));
    Ok(0)
}

pub async fn port(c: &Client, a: PortArgs) -> CmdResult {
    let i: ContainerInspect = c
        .get_json(&format!("/containers/{}/json", a.container))
        .await?;
    let want = a.port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for (port, binds) in &i.network_settings.ports {
        if want.as_ref().is_some_and(|w| w != port) {
            continue;
        }
        for b in binds.iter().flatten() {
            let ip = if b.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                &b.host_ip
            };
            if want.is_some() {
                println!("{ip}:{}", b.host_port);
            } else {
                println!("{port} -> {ip}:{}", b.host_port);
            }
            found = true;
        }
    }
    if let (Some(w), false) = (want, found) {
        return Err(Failure::new(
            1,
            format!("Error: No public port '{w}' published for {}", a.container),
        ));
    }
    Ok(0)
}

pub async fn prune(c: &Client, a: PruneArgs) -> CmdResult {
    let q = Query::new()
        .opt("filters", filters_json(&a.filter)?)
        .encode();
    let r: ContainerPruneResponse = c
        .post_json::<(), _>(&format!("/containers/prune{q}"), None)
        .await?;
    if !r.containers_deleted.is_empty() {
        println!("Deleted Containers:");
        for id in &r.containers_deleted {
            println!("{id}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::units::human_size(r.space_reclaimed as f64)
    );
    Ok(0)
}
