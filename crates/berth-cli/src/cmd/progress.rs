//! Showing a JSON progress stream (pull, push, load): one repainted line per layer on a
//! terminal, plain lines otherwise (moby's `jsonmessage.DisplayJSONMessagesStream`).

use std::io::Write;

use berth_api::progress::ProgressMessage;
use berth_client::BodyStream;

use crate::Failure;

fn bar(current: i64, total: i64) -> String {
    if total <= 0 {
        return crate::units::human_size(current as f64);
    }
    let width = 50usize;
    let filled = ((current.min(total) as f64 / total as f64) * width as f64) as usize;
    let arrow = if filled < width { ">" } else { "" };
    format!(
        "[{}{}{}] {}/{}",
        "=".repeat(filled.saturating_sub(if arrow.is_empty() { 0 } else { 1 })),
        arrow,
        " ".repeat(width - filled),
        crate::units::human_size(current as f64),
        crate::units::human_size(total as f64)
    )
}

fn line(m: &ProgressMessage, tty: bool) -> String {
    let mut s = String::new();
    if let Some(id) = &m.id {
        s.push_str(id);
        s.push_str(": ");
    }
    s.push_str(
        m.status
            .as_deref()
            .or(m.stream.as_deref().map(str::trim_end))
            .unwrap_or(""),
    );
    if tty {
        if let Some(d) = &m.progress_detail {
            if let Some(c) = d.current {
                s.push(' ');
                s.push_str(&bar(c, d.total.unwrap_or(0)));
            }
        } else if let Some(p) = &m.progress {
            s.push(' ');
            s.push_str(p);
        }
    }
    s
}

/// Displays the stream on `out` (stdout for `pull`, stderr for `run`'s implicit pull).
/// An in-band error ends the display with a failure.
pub async fn display(
    stream: &mut BodyStream,
    to_stderr: bool,
    tty: bool,
    quiet: bool,
) -> Result<(), Failure> {
    let mut ids: Vec<String> = Vec::new();
    let mut out: Box<dyn Write> = if to_stderr {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    while let Some(m) = stream.next_json::<ProgressMessage>().await? {
        if let Some(e) = m
            .error
            .clone()
            .or_else(|| m.error_detail.as_ref().map(|d| d.message.clone()))
        {
            return Err(Failure::new(1, e));
        }
        if quiet {
            continue;
        }
        let text = line(&m, tty);
        match (&m.id, tty) {
            (Some(id), true) => {
                let pos = ids.iter().position(|x| x == id);
                match pos {
                    Some(i) => {
                        let up = ids.len() - i;
                        let _ = write!(out, "\x1b[{up}A\r\x1b[2K{text}\r\x1b[{up}B");
                    }
                    None => {
                        ids.push(id.clone());
                        let _ = writeln!(out, "{text}");
                    }
                }
            }
            (Some(_), false) => {
                // Without a terminal, progress updates would be noise: print state changes only.
                if m.progress_detail
                    .as_ref()
                    .is_none_or(|d| d.current.is_none())
                {
                    let _ = writeln!(out, "{text}");
                }
            }
            (None, _) => {
                let _ = writeln!(out, "{text}");
            }
        }
        let _ = out.flush();
    }
    Ok(())
}
