//! `version`, `info`, `events`, `system df`.

use berth_api::events::EventMessage;
use berth_api::system::{SystemDf, SystemInfo, SystemVersion};
use berth_client::{Client, Query};

use super::{filters_json, format_value};
use crate::app::{DfArgs, EventsArgs, FormatArgs};
use crate::units::{human_size, parse_timestamp};
use crate::{CmdResult, Failure};

pub async fn version(c: &Client, a: FormatArgs) -> CmdResult {
    let client_part = format!(
        "Client:\n Version:           {}\n API version:       1.47\n OS/Arch:           linux/{}\n",
        env!("CARGO_PKG_VERSION"),
        go_arch()
    );
    let server: Result<SystemVersion, _> = c.get_json("/version").await;
    if let Some(f) = a.format {
        let v = serde_json::json!({
            "Client": {"Version": env!("CARGO_PKG_VERSION"), "ApiVersion": "1.47", "Os": "linux", "Arch": go_arch()},
            "Server": server.as_ref().ok(),
        });
        println!("{}", format_value(&f, &v)?);
        return server.map(|_| 0).map_err(Failure::from);
    }
    print!("{client_part}");
    let s = server?;
    println!();
    println!("Server: {}", s.platform.name);
    println!(" Engine:");
    println!("  Version:          {}", s.version);
    println!(
        "  API version:      {} (minimum version {})",
        s.api_version, s.min_api_version
    );
    println!("  Kernel version:   {}", s.kernel_version);
    println!("  OS/Arch:          {}/{}", s.os, s.arch);
    Ok(0)
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub async fn info(c: &Client, a: FormatArgs) -> CmdResult {
    let i: SystemInfo = c.get_json("/info").await?;
    if let Some(f) = a.format {
        println!(
            "{}",
            format_value(&f, &serde_json::to_value(&i).unwrap_or_default())?
        );
        return Ok(0);
    }
    println!("Client:");
    println!(" Version:    {}", env!("CARGO_PKG_VERSION"));
    println!();
    println!("Server:");
    println!(" Containers: {}", i.containers);
    println!("  Running: {}", i.containers_running);
    println!("  Paused: {}", i.containers_paused);
    println!("  Stopped: {}", i.containers_stopped);
    println!(" Images: {}", i.images);
    println!(" Server Version: {}", i.server_version);
    println!(" Storage Driver: {}", i.driver);
    for [k, v] in &i.driver_status {
        println!("  {k}: {v}");
    }
    println!(" Logging Driver: {}", i.logging_driver);
    println!(" Cgroup Driver: {}", i.cgroup_driver);
    println!(" Cgroup Version: {}", i.cgroup_version);
    println!(
        " Runtimes: {}",
        i.runtimes.keys().cloned().collect::<Vec<_>>().join(" ")
    );
    println!(" Default Runtime: {}", i.default_runtime);
    println!(" Security Options:");
    for s in &i.security_options {
        println!("  {}", s.strip_prefix("name=").unwrap_or(s));
    }
    println!(" Kernel Version: {}", i.kernel_version);
    println!(" Operating System: {}", i.operating_system);
    println!(" OSType: {}", i.os_type);
    println!(" Architecture: {}", i.architecture);
    println!(" CPUs: {}", i.ncpu);
    println!(
        " Total Memory: {}",
        crate::units::bytes_size(i.mem_total as f64)
    );
    println!(" Name: {}", i.name);
    println!(" ID: {}", i.id);
    println!(" Berth Root Dir: {}", i.docker_root_dir);
    println!(" Live Restore Enabled: {}", i.live_restore_enabled);
    for w in i.warnings.iter().flatten() {
        eprintln!("{w}");
    }
    Ok(0)
}

pub async fn events(c: &Client, a: EventsArgs) -> CmdResult {
    // Checked before any event arrives, as docker does (exit 64).
    if let Some(f) = a.format.as_deref().filter(|f| *f != "json") {
        crate::template::Template::parse(f)
            .map_err(|e| Failure::new(64, format!("Error parsing format: {e}")))?;
    }
    let mut q = Query::new();
    if let Some(s) = &a.since {
        q = q.add(
            "since",
            parse_timestamp(s).map_err(|e| Failure::new(125, e))?,
        );
    }
    if let Some(u) = &a.until {
        q = q.add(
            "until",
            parse_timestamp(u).map_err(|e| Failure::new(125, e))?,
        );
    }
    q = q.opt("filters", filters_json(&a.filter)?);
    let mut s = c.get_stream(&format!("/events{}", q.encode())).await?;
    while let Some(e) = s.next_json::<EventMessage>().await? {
        if let Some(f) = &a.format {
            println!(
                "{}",
                format_value(f, &serde_json::to_value(&e).unwrap_or_default())?
            );
            continue;
        }
        let t = chrono::DateTime::from_timestamp(
            e.time_nano / 1_000_000_000,
            (e.time_nano % 1_000_000_000) as u32,
        )
        .unwrap_or_default();
        let attrs: Vec<String> = e
            .actor
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "{} {} {} {} ({})",
            t.format("%Y-%m-%dT%H:%M:%S%.9f%:z"),
            e.r#type,
            e.action,
            e.actor.id,
            attrs.join(", ")
        );
    }
    Ok(0)
}

pub async fn df(c: &Client, a: DfArgs) -> CmdResult {
    let d: SystemDf = c.get_json("/system/df").await?;
    if let Some(f) = a.format {
        println!(
            "{}",
            format_value(&f, &serde_json::to_value(&d).unwrap_or_default())?
        );
        return Ok(0);
    }
    let img_size: i64 = d.images.iter().map(|i| i.size).sum();
    let active_imgs = d.images.iter().filter(|i| i.containers > 0).count();
    let ctr_size: i64 = d.containers.iter().map(|c| c.size_rw.unwrap_or(0)).sum();
    let active_ctr = d.containers.iter().filter(|c| c.state == "running").count();
    let vol_size: i64 = d
        .volumes
        .iter()
        .map(|v| v.usage_data.as_ref().map_or(0, |u| u.size.max(0)))
        .sum();
    let active_vol = d
        .volumes
        .iter()
        .filter(|v| v.usage_data.as_ref().is_some_and(|u| u.ref_count > 0))
        .count();
    let rows = vec![
        vec![
            "TYPE".into(),
            "TOTAL".into(),
            "ACTIVE".into(),
            "SIZE".into(),
            "RECLAIMABLE".into(),
        ],
        vec![
            "Images".into(),
            d.images.len().to_string(),
            active_imgs.to_string(),
            human_size(img_size as f64),
            human_size(0.0),
        ],
        vec![
            "Containers".into(),
            d.containers.len().to_string(),
            active_ctr.to_string(),
            human_size(ctr_size as f64),
            human_size(0.0),
        ],
        vec![
            "Local Volumes".into(),
            d.volumes.len().to_string(),
            active_vol.to_string(),
            human_size(vol_size as f64),
            human_size(0.0),
        ],
        vec![
            "Build Cache".into(),
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
        ],
    ];
    crate::table::print(&rows);
    Ok(0)
}
