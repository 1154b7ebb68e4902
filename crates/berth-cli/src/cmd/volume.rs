//! `volume create/ls/inspect/rm/prune`.

use std::collections::BTreeMap;

use berth_api::volume::{Volume, VolumeCreateOptions, VolumeListResponse, VolumePruneResponse};
use berth_client::{Client, Query};

use super::{filters_json, format_value};
use crate::app::VolumeCommand;
use crate::{CmdResult, Failure};

fn kv(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|s| {
            let (k, v) = s.split_once('=').unwrap_or((s.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

pub async fn dispatch(c: &Client, cmd: VolumeCommand) -> CmdResult {
    match cmd {
        VolumeCommand::Create(a) => {
            if a.name.is_some() && a.name_flag.is_some() && a.name != a.name_flag {
                return Err(Failure::new(1, "conflicting options: either specify --name or provide positional arg, not both"));
            }
            let body = VolumeCreateOptions {
                name: a.name.or(a.name_flag).unwrap_or_default(),
                driver: a.driver,
                driver_opts: kv(&a.opt),
                labels: kv(&a.label),
            };
            let v: Volume = c.post_json("/volumes/create", Some(&body)).await?;
            println!("{}", v.name);
            Ok(0)
        }
        VolumeCommand::Ls(a) => {
            let q = Query::new()
                .opt("filters", filters_json(&a.filter)?)
                .encode();
            let r: VolumeListResponse = c.get_json(&format!("/volumes{q}")).await?;
            if a.quiet {
                for v in &r.volumes {
                    println!("{}", v.name);
                }
                return Ok(0);
            }
            if let Some(f) = a
                .format
                .as_deref()
                .filter(|f| !crate::listfmt::is_default(Some(f)))
            {
                let rows: Vec<serde_json::Value> = r.volumes.iter().map(|v| serde_json::json!({"Name": v.name, "Driver": v.driver, "Mountpoint": v.mountpoint, "Scope": v.scope,
                        "Labels": v.labels.iter().map(|(k, x)| format!("{k}={x}")).collect::<Vec<_>>().join(",")})).collect();
                const TITLES: &[(&str, &str)] = &[
                    ("Name", "VOLUME NAME"),
                    ("Driver", "DRIVER"),
                    ("Mountpoint", "MOUNTPOINT"),
                    ("Scope", "SCOPE"),
                    ("Labels", "LABELS"),
                ];
                print!("{}", crate::listfmt::render(f, &rows, TITLES)?);
                return Ok(0);
            }
            let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".into()]];
            for v in &r.volumes {
                rows.push(vec![v.driver.clone(), v.name.clone()]);
            }
            crate::table::print(&rows);
            Ok(0)
        }
        VolumeCommand::Inspect(a) => {
            let mut out = Vec::new();
            let mut failed = false;
            for n in &a.names {
                match c
                    .get_json::<serde_json::Value>(&format!("/volumes/{n}"))
                    .await
                {
                    Ok(v) => out.push(v),
                    Err(e) => {
                        eprintln!("Error: {}", e.message());
                        failed = true;
                    }
                }
            }
            match &a.format {
                Some(f) => {
                    for v in &out {
                        println!("{}", format_value(f, v)?);
                    }
                }
                None => println!(
                    "{}",
                    super::inspect::pretty(&serde_json::Value::Array(out))?
                ),
            }
            Ok(if failed { 1 } else { 0 })
        }
        VolumeCommand::Rm(a) => {
            let q = Query::new().flag("force", a.force).encode();
            let mut failed = false;
            for n in &a.names {
                match c.delete(&format!("/volumes/{n}{q}")).await {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("{e}");
                        failed = true;
                    }
                }
            }
            Ok(if failed { 1 } else { 0 })
        }
        VolumeCommand::Prune(a) => {
            let mut filters = a.prune.filter.clone();
            if a.all {
                filters.push("all=true".into());
            }
            let q = Query::new()
                .opt("filters", filters_json(&filters)?)
                .encode();
            let r: VolumePruneResponse = c
                .post_json::<(), _>(&format!("/volumes/prune{q}"), None)
                .await?;
            if !r.volumes_deleted.is_empty() {
                println!("Deleted Volumes:");
                for v in &r.volumes_deleted {
                    println!("{v}");
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                crate::units::human_size(r.space_reclaimed as f64)
            );
            Ok(0)
        }
    }
}
