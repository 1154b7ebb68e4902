//! `inspect`: containers, then images, networks, volumes (the docker CLI's probing order);
//! `-f` renders a Go template per object.

use berth_client::{Client, ClientError};
use serde_json::Value;

use super::format_value;
use crate::app::InspectArgs;
use crate::{CmdResult, Failure};

fn image_path(name: &str) -> String {
    format!("/images/{name}/json")
}

async fn find(
    c: &Client,
    name: &str,
    kind: Option<&str>,
    size: bool,
) -> Result<Value, ClientError> {
    let paths: Vec<(&str, String)> = vec![
        (
            "container",
            format!(
                "/containers/{name}/json{}",
                if size { "?size=1" } else { "" }
            ),
        ),
        ("image", image_path(name)),
        ("network", format!("/networks/{name}")),
        ("volume", format!("/volumes/{name}")),
    ];
    let mut last = None;
    for (k, p) in paths {
        if kind.is_some_and(|want| want != k) {
            continue;
        }
        match c.get_json::<Value>(&p).await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_not_found() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    let _ = last;
    Err(ClientError::Api {
        status: 404,
        message: format!("No such object: {name}"),
    })
}

pub async fn inspect(c: &Client, a: InspectArgs) -> CmdResult {
    let mut found = Vec::new();
    let mut failed = false;
    for n in &a.names {
        match find(c, n, a.kind.as_deref(), a.size).await {
            Ok(v) => found.push(v),
            Err(e) => {
                eprintln!("Error: {}", e.message());
                failed = true;
            }
        }
    }
    match &a.format {
        Some(f) => {
            for v in &found {
                println!("{}", format_value(f, v)?);
            }
        }
        None => {
            println!("{}", pretty(&Value::Array(found))?);
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// JSON indented by 4 spaces, as `docker inspect` prints it.
pub fn pretty(v: &Value) -> Result<String, Failure> {
    use serde::Serialize;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser)
        .map_err(|e| Failure::new(1, e.to_string()))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
