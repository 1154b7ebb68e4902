//! `stats`: a table refreshed every second, or one sample with `--no-stream`.

use berth_api::container::ContainerSummary;
use berth_api::stats::StatsResponse;
use berth_client::Client;

use crate::app::StatsArgs;
use crate::units::{bytes_size, human_size};
use crate::{CmdResult, Failure};

fn row(s: &StatsResponse, no_trunc: bool) -> serde_json::Value {
    let (rx, tx) = s.network_io();
    let (r, w) = s.block_io();
    let running = s.memory_stats.usage.is_some();
    let id: String = if no_trunc {
        s.id.clone()
    } else {
        s.id.chars().take(12).collect()
    };
    serde_json::json!({
        "ID": id,
        "Container": id,
        "Name": s.name.trim_start_matches('/'),
        "CPUPerc": if running { format!("{:.2}%", s.cpu_percent()) } else { "--".into() },
        "MemUsage": if running { format!("{} / {}", bytes_size(s.memory_usage() as f64), bytes_size(s.memory_stats.limit.unwrap_or(0) as f64)) } else { "-- / --".into() },
        "MemPerc": if running { format!("{:.2}%", s.memory_percent()) } else { "--".into() },
        "NetIO": if running { format!("{} / {}", human_size(rx as f64), human_size(tx as f64)) } else { "--".into() },
        "BlockIO": if running { format!("{} / {}", human_size(r as f64), human_size(w as f64)) } else { "--".into() },
        "PIDs": if running { s.pids_stats.current.unwrap_or(0).to_string() } else { "--".into() },
    })
}

async fn targets(c: &Client, a: &StatsArgs) -> Result<Vec<String>, Failure> {
    if !a.containers.is_empty() {
        return Ok(a.containers.clone());
    }
    let list: Vec<ContainerSummary> = c
        .get_json(if a.all {
            "/containers/json?all=1"
        } else {
            "/containers/json"
        })
        .await?;
    Ok(list.into_iter().map(|c| c.id).collect())
}

/// Docker's column titles for `stats --format 'table …'`.
const TITLES: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

async fn render(c: &Client, a: &StatsArgs, names: &[String]) -> Result<(String, bool), Failure> {
    let mut values = Vec::new();
    let mut failed = false;
    for n in names {
        match c
            .get_json::<StatsResponse>(&format!("/containers/{n}/stats?stream=0&one-shot=1"))
            .await
        {
            Ok(s) => values.push(row(&s, a.no_trunc)),
            Err(e) => {
                if !a.containers.is_empty() {
                    eprintln!("{e}");
                    failed = true;
                }
            }
        }
    }
    if let Some(f) = a
        .format
        .as_deref()
        .filter(|f| !crate::listfmt::is_default(Some(f)))
    {
        return Ok((crate::listfmt::render(f, &values, TITLES)?, failed));
    }
    let cols = [
        "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs",
    ];
    let mut rows = vec![cols
        .iter()
        .map(|k| {
            TITLES
                .iter()
                .find(|(f, _)| f == k)
                .map_or(String::new(), |(_, t)| t.to_string())
        })
        .collect::<Vec<String>>()];
    for v in &values {
        rows.push(
            cols.iter()
                .map(|k| v[*k].as_str().unwrap_or("").to_string())
                .collect(),
        );
    }
    Ok((crate::table::render(&rows), failed))
}

pub async fn stats(c: &Client, a: StatsArgs) -> CmdResult {
    if a.no_stream {
        let names = targets(c, &a).await?;
        let (text, failed) = render(c, &a, &names).await?;
        print!("{text}");
        return Ok(if failed { 1 } else { 0 });
    }
    loop {
        let names = targets(c, &a).await?;
        let (text, failed) = render(c, &a, &names).await?;
        if failed && !a.containers.is_empty() {
            return Ok(1);
        }
        if crate::tty::stdout_is_tty() {
            print!("\x1b[2J\x1b[H{text}");
        } else {
            print!("{text}");
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
