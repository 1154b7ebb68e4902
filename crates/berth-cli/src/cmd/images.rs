//! pull, images, rmi, tag, load, save, import, push.

use berth_api::image::{ImageDeleteResponseItem, ImageSummary};
use berth_client::{Client, Query};

use super::{filters_json, progress};
use crate::app::{
    ImagesArgs, ImportArgs, LoadArgs, PullArgs, PushArgs, RmiArgs, SaveArgs, TagArgs,
};
use crate::units::{ago, human_size};
use crate::{CmdResult, Failure};

/// Splits `repo[:tag|@digest]` into (repo, tag-or-digest); the tag defaults to `latest`.
pub fn split_ref(r: &str) -> (String, String) {
    if let Some((repo, digest)) = r.split_once('@') {
        return (repo.to_string(), digest.to_string());
    }
    let last_slash = r.rfind('/').map_or(0, |i| i + 1);
    match r[last_slash..].rfind(':') {
        Some(i) => (
            r[..last_slash + i].to_string(),
            r[last_slash + i + 1..].to_string(),
        ),
        None => (r.to_string(), "latest".to_string()),
    }
}

/// `POST /images/create` and show progress. Used by `pull` and by `run`'s implicit pull.
pub async fn pull_image(
    c: &Client,
    image: &str,
    quiet: bool,
    to_stderr: bool,
) -> Result<(), Failure> {
    let (repo, tag) = split_ref(image);
    let q = Query::new()
        .add("fromImage", &repo)
        .add("tag", &tag)
        .encode();
    let mut s = c
        .post_stream(
            &format!("/images/create{q}"),
            Client::empty_body(),
            None,
            &[(
                "X-Registry-Auth",
                crate::credentials::header_for_image(image),
            )],
        )
        .await?;
    let tty = if to_stderr {
        false
    } else {
        crate::tty::stdout_is_tty()
    };
    progress::display(&mut s, to_stderr, tty, quiet).await
}

pub async fn pull(c: &Client, a: PullArgs) -> CmdResult {
    if a.all_tags {
        return Err(Failure::new(
            1,
            "pulling all tags (-a) is not supported by berth yet",
        ));
    }
    pull_image(c, &a.image, a.quiet, false).await?;
    let (repo, tag) = split_ref(&a.image);
    let sep = if tag.contains(':') { "@" } else { ":" };
    println!("{repo}{sep}{tag}");
    Ok(0)
}

fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.trim_start_matches("sha256:").chars().take(12).collect()
    }
}

pub async fn images(c: &Client, a: ImagesArgs) -> CmdResult {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let q = Query::new()
        .flag("all", a.all)
        .opt("filters", filters_json(&filters)?)
        .encode();
    let list: Vec<ImageSummary> = c.get_json(&format!("/images/json{q}")).await?;
    let mut rows_data = Vec::new();
    for img in &list {
        let tags = if img.repo_tags.is_empty() {
            vec!["<none>:<none>".to_string()]
        } else {
            img.repo_tags.clone()
        };
        for t in tags {
            let (repo, tag) = match t.rsplit_once(':') {
                Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
                _ => (t.clone(), "<none>".into()),
            };
            let digest = img
                .repo_digests
                .iter()
                .find_map(|d| d.split_once('@').map(|x| x.1.to_string()))
                .unwrap_or_else(|| "<none>".into());
            rows_data.push(serde_json::json!({
                "ID": short_id(&img.id, a.no_trunc),
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "CreatedSince": ago(img.created),
                "CreatedAt": chrono::DateTime::from_timestamp(img.created, 0).map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()).unwrap_or_default(),
                "Size": human_size(img.size as f64),
                // docker's imageContext: -1 (not computed) reads "N/A".
                "Containers": if img.containers < 0 { "N/A".to_string() } else { img.containers.to_string() },
                "VirtualSize": crate::units::human_size_4(img.size as f64),
                "SharedSize": if img.shared_size < 0 { "N/A".to_string() } else { crate::units::human_size_4(img.shared_size as f64) },
                "UniqueSize": if img.shared_size < 0 { "N/A".to_string() } else { crate::units::human_size_4((img.size - img.shared_size) as f64) },
            }));
        }
    }
    if a.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for img in &list {
            let id = short_id(&img.id, a.no_trunc);
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    if let Some(f) = a
        .format
        .as_deref()
        .filter(|f| !crate::listfmt::is_default(Some(f)))
    {
        const TITLES: &[(&str, &str)] = &[
            ("ID", "IMAGE ID"),
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("Digest", "DIGEST"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("Size", "SIZE"),
            ("Containers", "CONTAINERS"),
            ("VirtualSize", "VIRTUAL SIZE"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
        ];
        print!("{}", crate::listfmt::render(f, &rows_data, TITLES)?);
        return Ok(0);
    }
    let mut header = vec!["REPOSITORY".to_string(), "TAG".into()];
    if a.digests {
        header.push("DIGEST".into());
    }
    header.extend(["IMAGE ID".to_string(), "CREATED".into(), "SIZE".into()]);
    let mut rows = vec![header];
    for v in &rows_data {
        let g = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let mut r = vec![g("Repository"), g("Tag")];
        if a.digests {
            r.push(g("Digest"));
        }
        r.extend([g("ID"), g("CreatedSince"), g("Size")]);
        rows.push(r);
    }
    crate::table::print(&rows);
    Ok(0)
}

pub async fn rmi(c: &Client, a: RmiArgs) -> CmdResult {
    let q = Query::new()
        .flag("force", a.force)
        .flag("noprune", a.no_prune)
        .encode();
    let mut failed = false;
    for i in &a.images {
        match c.delete(&format!("/images/{i}{q}")).await {
            Ok(body) => {
                let items: Vec<ImageDeleteResponseItem> =
                    serde_json::from_slice(&body).unwrap_or_default();
                for it in items {
                    if let Some(u) = it.untagged {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = it.deleted {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub async fn tag(c: &Client, a: TagArgs) -> CmdResult {
    let (repo, tag) = split_ref(&a.target);
    let q = Query::new().add("repo", repo).add("tag", tag).encode();
    c.post_status(&format!("/images/{}/tag{q}", a.source))
        .await?;
    Ok(0)
}

pub async fn import(c: &Client, a: ImportArgs) -> CmdResult {
    // An http(s) URL is fetched by the daemon (as docker's CLI does); anything else is read here.
    let url = a.source.starts_with("http://") || a.source.starts_with("https://");
    let mut q = Query::new()
        .add("fromSrc", if url { a.source.as_str() } else { "-" })
        .opt("message", a.message.clone());
    for ch in &a.change {
        q = q.add("changes", ch);
    }
    if let Some(r) = &a.reference {
        let (repo, tag) = split_ref(r);
        q = q.add("repo", repo).add("tag", tag);
    }
    let body = if url {
        Client::empty_body()
    } else if a.source == "-" {
        Client::body_from_reader(tokio::io::stdin())
    } else {
        let f = tokio::fs::File::open(&a.source)
            .await
            .map_err(|e| Failure::new(1, format!("open {}: {e}", a.source)))?;
        Client::body_from_reader(f)
    };
    let mut s = c
        .post_stream(
            &format!("/images/create{}", q.encode()),
            body,
            Some("application/x-tar"),
            &[],
        )
        .await?;
    while let Some(m) = s
        .next_json::<berth_api::progress::ProgressMessage>()
        .await?
    {
        if let Some(e) = m.error {
            return Err(Failure::new(1, e));
        }
        // `Importing` byte counts of a URL import: only the final id is printed.
        if m.progress_detail.is_some() {
            continue;
        }
        if let Some(st) = m.status {
            println!("{st}");
        }
    }
    Ok(0)
}

pub async fn load(c: &Client, a: LoadArgs) -> CmdResult {
    let body = match &a.input {
        Some(p) => Client::body_from_reader(
            tokio::fs::File::open(p)
                .await
                .map_err(|e| Failure::new(1, format!("open {p}: {e}")))?,
        ),
        None => {
            if crate::tty::stdin_is_tty() {
                return Err(Failure::new(
                    1,
                    "requested load from stdin, but stdin is empty",
                ));
            }
            Client::body_from_reader(tokio::io::stdin())
        }
    };
    let q = Query::new().flag("quiet", a.quiet).encode();
    let mut s = c
        .post_stream(
            &format!("/images/load{q}"),
            body,
            Some("application/x-tar"),
            &[],
        )
        .await?;
    progress::display(&mut s, false, false, a.quiet).await?;
    Ok(0)
}

pub async fn save(c: &Client, a: SaveArgs) -> CmdResult {
    let mut q = Query::new();
    for i in &a.images {
        q = q.add("names", i);
    }
    if a.output.is_none() && crate::tty::stdout_is_tty() {
        return Err(Failure::new(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut s = c.get_stream(&format!("/images/get{}", q.encode())).await?;
    let mut out: Box<dyn std::io::Write> = match &a.output {
        Some(p) => Box::new(
            std::fs::File::create(p).map_err(|e| Failure::new(1, format!("create {p}: {e}")))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    while let Some(chunk) = s.chunk().await? {
        out.write_all(&chunk)
            .map_err(|e| Failure::new(1, e.to_string()))?;
    }
    Ok(0)
}

pub async fn push(c: &Client, a: PushArgs) -> CmdResult {
    let (repo, tag) = split_ref(&a.image);
    let q = Query::new().add("tag", tag).encode();
    let mut s = c
        .post_stream(
            &format!("/images/{repo}/push{q}"),
            Client::empty_body(),
            None,
            &[(
                "X-Registry-Auth",
                crate::credentials::header_for_image(&a.image),
            )],
        )
        .await?;
    progress::display(&mut s, false, crate::tty::stdout_is_tty(), a.quiet).await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn refs() {
        assert_eq!(
            super::split_ref("127.0.0.1:5000/busybox"),
            ("127.0.0.1:5000/busybox".into(), "latest".into())
        );
        assert_eq!(
            super::split_ref("127.0.0.1:5000/busybox:1.36"),
            ("127.0.0.1:5000/busybox".into(), "1.36".into())
        );
        assert_eq!(
            super::split_ref("busybox@sha256:ab"),
            ("busybox".into(), "sha256:ab".into())
        );
    }
}
