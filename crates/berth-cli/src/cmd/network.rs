//! `network create/ls/inspect/rm/connect/disconnect/prune`.

use std::collections::BTreeMap;

use berth_api::network::{Ipam, IpamConfig, Network};
use berth_client::{Client, Query};
use serde_json::json;

use super::{filters_json, format_value};
use crate::app::NetworkCommand;
use crate::CmdResult;

fn short(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.chars().take(12).collect()
    }
}

pub async fn dispatch(c: &Client, cmd: NetworkCommand) -> CmdResult {
    match cmd {
        NetworkCommand::Create(a) => {
            let labels: BTreeMap<String, String> = a
                .label
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
                    (k.to_string(), v.to_string())
                })
                .collect();
            let config = if a.subnet.is_some() || a.gateway.is_some() {
                vec![IpamConfig {
                    subnet: a.subnet.clone().unwrap_or_default(),
                    gateway: a.gateway.clone().unwrap_or_default(),
                    ..Default::default()
                }]
            } else {
                vec![]
            };
            let body = json!({
                "Name": a.name,
                "Driver": a.driver,
                "Internal": a.internal,
                "Labels": labels,
                "IPAM": Ipam { driver: "default".into(), options: None, config: Some(config) },
            });
            let r: serde_json::Value = c.post_json("/networks/create", Some(&body)).await?;
            println!("{}", r["Id"].as_str().unwrap_or(""));
            Ok(0)
        }
        NetworkCommand::Ls(a) => {
            let q = Query::new()
                .opt("filters", filters_json(&a.filter)?)
                .encode();
            let nets: Vec<Network> = c.get_json(&format!("/networks{q}")).await?;
            if a.quiet {
                for n in &nets {
                    println!("{}", short(&n.id, a.no_trunc));
                }
                return Ok(0);
            }
            if let Some(f) = a
                .format
                .as_deref()
                .filter(|f| !crate::listfmt::is_default(Some(f)))
            {
                let rows: Vec<serde_json::Value> = nets.iter().map(|n| json!({"ID": short(&n.id, a.no_trunc), "Name": n.name, "Driver": n.driver, "Scope": n.scope,
                        "Internal": n.internal, "Labels": n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")})).collect();
                const TITLES: &[(&str, &str)] = &[
                    ("ID", "NETWORK ID"),
                    ("Name", "NAME"),
                    ("Driver", "DRIVER"),
                    ("Scope", "SCOPE"),
                    ("Internal", "INTERNAL"),
                    ("Labels", "LABELS"),
                ];
                print!("{}", crate::listfmt::render(f, &rows, TITLES)?);
                return Ok(0);
            }
            let mut rows = vec![vec![
                "NETWORK ID".to_string(),
                "NAME".into(),
                "DRIVER".into(),
                "SCOPE".into(),
            ]];
            for n in &nets {
                rows.push(vec![
                    short(&n.id, a.no_trunc),
                    n.name.clone(),
                    n.driver.clone(),
                    n.scope.clone(),
                ]);
            }
            crate::table::print(&rows);
            Ok(0)
        }
        NetworkCommand::Inspect(a) => {
            let mut out = Vec::new();
            let mut failed = false;
            for n in &a.names {
                match c
                    .get_json::<serde_json::Value>(&format!("/networks/{n}"))
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
        NetworkCommand::Rm(a) => {
            let mut failed = false;
            for n in &a.containers {
                match c.delete(&format!("/networks/{n}")).await {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("{e}");
                        failed = true;
                    }
                }
            }
            Ok(if failed { 1 } else { 0 })
        }
        NetworkCommand::Connect(a) => {
            let body = json!({"Container": a.container, "EndpointConfig": {"Aliases": a.alias}});
            c.post(&format!("/networks/{}/connect", a.network), Some(&body))
                .await?;
            Ok(0)
        }
        NetworkCommand::Disconnect(a) => {
            let body = json!({"Container": a.container, "Force": a.force});
            c.post(&format!("/networks/{}/disconnect", a.network), Some(&body))
                .await?;
            Ok(0)
        }
        NetworkCommand::Prune(a) => {
            let q = Query::new()
                .opt("filters", filters_json(&a.filter)?)
                .encode();
            let r: serde_json::Value = c
                .post_json::<(), _>(&format!("/networks/prune{q}"), None)
                .await?;
            let deleted = r["NetworksDeleted"].as_array().cloned().unwrap_or_default();
            if !deleted.is_empty() {
                println!("Deleted Networks:");
                for d in deleted {
                    println!("{}", d.as_str().unwrap_or(""));
                }
            }
            Ok(0)
        }
    }
}
