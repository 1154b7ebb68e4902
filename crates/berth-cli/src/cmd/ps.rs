//! `ps`: the container table.

use berth_api::container::{ContainerSummary, Port};
use berth_client::{Client, Query};

use super::filters_json;
use crate::app::PsArgs;
use crate::units::ago;
use crate::CmdResult;

/// `0.0.0.0:8080->80/tcp, 443/tcp`.
pub fn ports_text(ports: &[Port]) -> String {
    let mut v: Vec<String> = ports
        .iter()
        .map(|p| match p.public_port {
            Some(pp) => format!(
                "{}:{}->{}/{}",
                if p.ip.is_empty() { "0.0.0.0" } else { &p.ip },
                pp,
                p.private_port,
                p.r#type
            ),
            None => format!("{}/{}", p.private_port, p.r#type),
        })
        .collect();
    v.dedup();
    v.join(", ")
}

/// The command column: quoted, truncated to 20 characters with `…` unless `--no-trunc`.
pub fn command_text(cmd: &str, no_trunc: bool) -> String {
    let c = if !no_trunc && cmd.chars().count() > 20 {
        format!("{}…", cmd.chars().take(19).collect::<String>())
    } else {
        cmd.to_string()
    };
    format!("\"{c}\"")
}

fn names(c: &ContainerSummary) -> String {
    c.names
        .iter()
        .map(|n| n.trim_start_matches('/'))
        .collect::<Vec<_>>()
        .join(",")
}

/// Docker's column titles for `ps --format 'table …'`.
const TITLES: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("Size", "SIZE"),
];

/// The value `--format` sees for a row (Docker's `ps` placeholders).
fn row_value(c: &ContainerSummary, no_trunc: bool) -> serde_json::Value {
    let id = if no_trunc {
        c.id.clone()
    } else {
        c.id.chars().take(12).collect()
    };
    serde_json::json!({
        "ID": id,
        "Image": c.image,
        "Command": command_text(&c.command, no_trunc),
        "CreatedAt": chrono::DateTime::from_timestamp(c.created, 0).map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()).unwrap_or_default(),
        "RunningFor": ago(c.created),
        "Ports": ports_text(&c.ports),
        "State": c.state,
        "Status": c.status,
        "Names": names(c),
        "Labels": c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        "Mounts": c.mounts.iter().map(|m| if m.name.is_empty() { m.source.clone() } else { m.name.clone() }).collect::<Vec<_>>().join(","),
        "Networks": c.network_settings.networks.keys().cloned().collect::<Vec<_>>().join(","),
        "Size": c.size_rw.map(|s| crate::units::human_size(s as f64)).unwrap_or_default(),
    })
}

pub async fn ps(c: &Client, a: PsArgs) -> CmdResult {
    let limit = if a.latest { 1 } else { a.last };
    let q = Query::new()
        .flag("all", a.all || limit > 0)
        .opt("limit", if limit > 0 { Some(limit) } else { None })
        .flag("size", a.size)
        .opt("filters", filters_json(&a.filter)?);
    let list: Vec<ContainerSummary> = c
        .get_json(&format!("/containers/json{}", q.encode()))
        .await?;
    if a.quiet {
        for ct in &list {
            println!(
                "{}",
                if a.no_trunc {
                    ct.id.clone()
                } else {
                    ct.id.chars().take(12).collect()
                }
            );
        }
        return Ok(0);
    }
    if let Some(f) = a
        .format
        .as_deref()
        .filter(|f| !crate::listfmt::is_default(Some(f)))
    {
        let rows: Vec<serde_json::Value> =
            list.iter().map(|ct| row_value(ct, a.no_trunc)).collect();
        print!("{}", crate::listfmt::render(f, &rows, TITLES)?);
        return Ok(0);
    }
    let mut rows = vec![vec![
        "CONTAINER ID".to_string(),
        "IMAGE".into(),
        "COMMAND".into(),
        "CREATED".into(),
        "STATUS".into(),
        "PORTS".into(),
        "NAMES".into(),
    ]];
    if a.size {
        rows[0].push("SIZE".into());
    }
    for ct in &list {
        let v = row_value(ct, a.no_trunc);
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let mut row = vec![
            s("ID"),
            s("Image"),
            s("Command"),
            s("RunningFor"),
            s("Status"),
            s("Ports"),
            s("Names"),
        ];
        if a.size {
            row.push(s("Size"));
        }
        rows.push(row);
    }
    crate::table::print(&rows);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns() {
        assert_eq!(
            command_text("httpd -f -p 80 -h /www/long", false),
            "\"httpd -f -p 80 -h /…\""
        );
        assert_eq!(command_text("echo hi", false), "\"echo hi\"");
        let p = vec![
            Port {
                ip: "0.0.0.0".into(),
                private_port: 80,
                public_port: Some(8080),
                r#type: "tcp".into(),
            },
            Port {
                ip: String::new(),
                private_port: 443,
                public_port: None,
                r#type: "tcp".into(),
            },
        ];
        assert_eq!(ports_text(&p), "0.0.0.0:8080->80/tcp, 443/tcp");
    }
}
