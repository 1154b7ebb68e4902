//! `logs`: inspect (for `Config.Tty`), then the log stream, demultiplexed without a TTY.

use std::io::Write;

use berth_api::container::ContainerInspect;
use berth_api::stream::{FrameDecoder, StreamType};
use berth_client::{Client, Query};

use crate::app::LogsArgs;
use crate::units::parse_timestamp;
use crate::{CmdResult, Failure};

pub async fn logs(c: &Client, a: LogsArgs) -> CmdResult {
    let i: ContainerInspect = c
        .get_json(&format!("/containers/{}/json", a.container))
        .await?;
    let mut q = Query::new()
        .add("stdout", 1)
        .add("stderr", 1)
        .add("tail", &a.tail)
        .flag("follow", a.follow)
        .flag("timestamps", a.timestamps);
    if let Some(s) = &a.since {
        q = q.add("since", parse_timestamp(s).map_err(|e| Failure::new(1, e))?);
    }
    if let Some(u) = &a.until {
        q = q.add("until", parse_timestamp(u).map_err(|e| Failure::new(1, e))?);
    }
    let mut s = c
        .get_stream(&format!("/containers/{}/logs{}", i.id, q.encode()))
        .await?;
    let mut dec = FrameDecoder::new();
    while let Some(chunk) = s.chunk().await? {
        if i.config.tty {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(&chunk);
            let _ = o.flush();
            continue;
        }
        dec.push(&chunk);
        while let Some((st, p)) = dec
            .next_frame()
            .map_err(|e| Failure::new(1, e.to_string()))?
        {
            match st {
                StreamType::Stderr => {
                    let _ = std::io::stderr().lock().write_all(&p);
                }
                StreamType::SystemErr => {
                    return Err(Failure::new(1, String::from_utf8_lossy(&p).to_string()))
                }
                _ => {
                    let mut o = std::io::stdout().lock();
                    let _ = o.write_all(&p);
                    let _ = o.flush();
                }
            }
        }
    }
    Ok(0)
}
