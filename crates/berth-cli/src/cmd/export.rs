//! `berth export` (a container's filesystem as a tar) and `berth diff` (what it changed).

use std::io::Write;

use berth_client::Client;

use crate::{CmdResult, Failure};

// `berth export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    pub container: String,
}

// `berth diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    pub container: String,
}

pub async fn export(c: &Client, a: ExportArgs) -> CmdResult {
    if a.output.is_none() && crate::tty::stdout_is_tty() {
        return Err(Failure::new(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut s = c
        .get_stream(&format!("/containers/{}/export", a.container))
        .await?;
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(
            std::fs::File::create(p).map_err(|e| Failure::new(1, format!("create {p}: {e}")))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    while let Some(chunk) = s.chunk().await? {
        out.write_all(&chunk)
            .map_err(|e| Failure::new(1, e.to_string()))?;
    }
    out.flush().map_err(|e| Failure::new(1, e.to_string()))?;
    Ok(0)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Change {
    path: String,
    kind: u8,
}

/// `C /etc`, `A /tmp/x`, `D /etc/group`.
fn line(c: &Change) -> String {
    let k = match c.kind {
        0 => 'C',
        1 => 'A',
        2 => 'D',
        _ => '?',
    };
    format!("{k} {}", c.path)
}

pub async fn diff(c: &Client, a: DiffArgs) -> CmdResult {
    let list: Vec<Change> = c
        .get_json(&format!("/containers/{}/changes", a.container))
        .await?;
    let mut out = std::io::stdout().lock();
    for ch in &list {
        let _ = writeln!(out, "{}", line(ch));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lines() {
        let l: Vec<Change> = serde_json::from_str(
            r#"[{"Path":"/etc","Kind":0},{"Path":"/x","Kind":1},{"Path":"/y","Kind":2}]"#,
        )
        .unwrap();
        let got: Vec<String> = l.iter().map(line).collect();
        assert_eq!(got, vec!["C /etc", "A /x", "D /y"]);
    }
}
