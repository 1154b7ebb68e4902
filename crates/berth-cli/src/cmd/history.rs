//! `history IMAGE`: the image's build steps, newest first (docker's formatter/history.go:
//! `IMAGE CREATED CREATED BY SIZE COMMENT`; `CREATED BY` cut to 45 columns with `…`
//! unless `--no-trunc`; `--human=false` prints RFC 3339 dates and sizes in bytes).

use berth_api::image::ImageHistoryItem;
use berth_client::Client;
use serde_json::{json, Value};

use crate::app::HistoryArgs;
use crate::CmdResult;

/// Docker's column titles for `history --format 'table …'`.
const TITLES: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

/// docker's `formatter.Ellipsis`: at most `max` characters, the last one `…` when cut.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The value templates see for one row (docker's `historyContext`).
pub fn row_value(h: &ImageHistoryItem, human: bool, trunc: bool) -> Value {
    let id = if trunc && h.id.starts_with("sha256:") {
        h.id.trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect()
    } else {
        h.id.clone()
    };
    let created_at = chrono::DateTime::from_timestamp(h.created, 0)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_default();
    let created_by = h.created_by.replace('\t', " ");
    json!({
        "ID": id,
        "CreatedSince": if human { crate::units::ago(h.created) } else { created_at.clone() },
        "CreatedAt": created_at,
        "CreatedBy": if trunc { ellipsis(&created_by, 45) } else { created_by },
        "Size": if human { crate::units::human_size(h.size as f64) } else { h.size.to_string() },
        "Comment": h.comment,
    })
}

/// docker's `history -H[=BOOL]` is `--human`, but berth's `-H` is the global host flag
/// (clap shares one short name across subcommands). The global one only comes before the
/// verb, as in docker, so after `history` / `image history` `-H` is rewritten to `--human`.
pub fn human_short_flag(args: Vec<String>) -> Vec<String> {
    let mut verbs = Vec::new();
    let mut i = 0;
    while i < args.len() && verbs.len() < 2 {
        let a = &args[i];
        if a == "-H" || a == "--host" {
            i += 2;
            continue;
        }
        if a == "--" {
            break;
        }
        if !a.starts_with('-') {
            verbs.push(a.as_str());
            if verbs[0] != "image" {
                break;
            }
        }
        i += 1;
    }
    if verbs != ["history"] && verbs != ["image", "history"] {
        return args;
    }
    let (head, tail) = args.split_at(i.min(args.len()));
    let mut out = head.to_vec();
    let mut rest = tail.iter();
    while let Some(a) = rest.next() {
        if a == "--" {
            out.push(a.clone());
            out.extend(rest.cloned());
            break;
        }
        match a.strip_prefix("-H") {
            Some("") => out.push("--human".into()),
            Some(v) if v.starts_with('=') => out.push(format!("--human{v}")),
            _ => out.push(a.clone()),
        }
    }
    out
}

pub async fn history(c: &Client, a: HistoryArgs) -> CmdResult {
    let items: Vec<ImageHistoryItem> = c.get_json(&format!("/images/{}/history", a.image)).await?;
    let rows: Vec<Value> = items
        .iter()
        .map(|h| row_value(h, a.human, !a.no_trunc))
        .collect();
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else if crate::listfmt::is_default(a.format.as_deref()) {
        let created = if a.human {
            "{{.CreatedSince}}"
        } else {
            "{{.CreatedAt}}"
        };
        format!("table {{{{.ID}}}}\t{created}\t{{{{.CreatedBy}}}}\t{{{{.Size}}}}\t{{{{.Comment}}}}")
    } else {
        a.format.clone().unwrap_or_default()
    };
    print!("{}", crate::listfmt::render(&format, &rows, TITLES)?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_h_after_history_is_human() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            human_short_flag(v(&["-H", "unix:///s", "history", "-H=false", "img"])),
            v(&["-H", "unix:///s", "history", "--human=false", "img"])
        );
        assert_eq!(
            human_short_flag(v(&["image", "history", "-H", "img"])),
            v(&["image", "history", "--human", "img"])
        );
        let ps = v(&["ps", "-H", "x"]);
        assert_eq!(human_short_flag(ps.clone()), ps);
        let img = v(&["image", "ls", "-H"]);
        assert_eq!(human_short_flag(img.clone()), img);
    }

    #[test]
    fn rows_like_docker_history() {
        let h = ImageHistoryItem {
            id: format!("sha256:{}", "ab".repeat(32)),
            created: 0,
            created_by: "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789 in /".into(),
            tags: vec!["busybox:latest".into()],
            size: 4_261_000,
            comment: "c".into(),
        };
        let v = row_value(&h, true, true);
        assert_eq!(v["ID"], "abababababab");
        assert_eq!(v["Size"], "4.26MB");
        assert_eq!(
            v["CreatedBy"],
            "/bin/sh -c #(nop) ADD file:0123456789abcdef0…"
        );
        assert_eq!(v["CreatedBy"].as_str().unwrap().chars().count(), 45);
        let raw = row_value(&h, false, false);
        assert_eq!(raw["ID"], h.id);
        assert_eq!(raw["Size"], "4261000");
        assert_eq!(raw["CreatedBy"], h.created_by);
        assert!(raw["CreatedSince"]
            .as_str()
            .unwrap()
            .starts_with("1970-01-01T"));
        let missing = ImageHistoryItem {
            id: "<missing>".into(),
            ..h
        };
        assert_eq!(row_value(&missing, true, true)["ID"], "<missing>");
    }
}
