//! Pull an image into a store: `pull REF --root DIR [--platform os/arch] [--quiet]`.
//! Used by bench/pull.sh until the CLI does this.

use std::time::Instant;

use berth_image::{ImageRef, ImageStore, Platform, PullEvent, PullOptions, RegistryConfig};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut reference = None;
    let mut root = None;
    let mut platform = None;
    let mut quiet = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--root" => root = it.next().cloned(),
            "--platform" => {
                platform = Some(Platform::parse(
                    it.next().map(String::as_str).unwrap_or(""),
                )?)
            }
            "--quiet" | "-q" => quiet = true,
            other => reference = Some(other.to_string()),
        }
    }
    let (Some(reference), Some(root)) = (reference, root) else {
        anyhow::bail!("usage: pull REF --root DIR [--platform os/arch] [--quiet]");
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let start = Instant::now();
    let store = ImageStore::open(root.as_ref(), RegistryConfig::default())?;
    let r = ImageRef::parse(&reference)?;
    let progress = |e: PullEvent| {
        if !quiet
            && !matches!(
                e,
                PullEvent::Layer {
                    status: berth_image::LayerStatus::Downloading { .. },
                    ..
                }
            )
        {
            eprintln!("{e:?}");
        }
    };
    let rec = rt.block_on(store.pull(
        &r,
        &PullOptions {
            platform,
            credentials: None,
        },
        &progress,
    ))?;
    if !quiet {
        println!(
            "{} {} layers, {} bytes, {:.3}s",
            rec.id,
            rec.layers.len(),
            rec.size,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
