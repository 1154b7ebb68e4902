//! Builds a multi-layer benchmark image from host files and pushes it to a registry:
//! `bench_fixture ADDR NAME:TAG --layers N --layer-mb M [--max-file-kb K] --source DIR [--source DIR…]`.
//! Files are taken in sorted order, so the image is the same on the same machine.

use std::path::{Path, PathBuf};

use berth_testkit::images::{self, Compression, Format, TestImage, TestLayer};

fn walk(dir: &Path, max_len: u64, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut v: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    v.sort();
    for p in v {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => walk(&p, max_len, out),
            Ok(m) if m.is_file() && m.len() <= max_len => out.push(p),
            _ => {}
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut layers, mut layer_mb, mut sources, mut pos) = (3usize, 40u64, Vec::new(), Vec::new());
    let mut max_file_kb = 4096u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--layers" => layers = it.next().unwrap().parse()?,
            "--layer-mb" => layer_mb = it.next().unwrap().parse()?,
            "--source" => sources.push(PathBuf::from(it.next().unwrap())),
            "--max-file-kb" => max_file_kb = it.next().unwrap().parse()?,
            other => pos.push(other.to_string()),
        }
    }
    let [addr, name_tag] = &pos[..] else {
        anyhow::bail!(
            "usage: bench_fixture ADDR NAME:TAG [--layers N] [--layer-mb M] --source DIR…"
        )
    };
    let (name, tag) = name_tag.split_once(':').unwrap_or((name_tag, "latest"));
    let mut files = Vec::new();
    for s in &sources {
        walk(s, max_file_kb << 10, &mut files);
    }
    let mut it = files.into_iter();
    let mut built = Vec::new();
    for _ in 0..layers {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Deterministic);
        let mut size = 0u64;
        for f in it.by_ref() {
            let Ok(data) = std::fs::read(&f) else {
                continue;
            };
            let rel = f.strip_prefix("/").unwrap_or(&f);
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(images::MTIME);
            b.append_data(&mut h, rel, &data[..])?;
            size += data.len() as u64;
            if size >= layer_mb << 20 {
                break;
            }
        }
        built.push(TestLayer::new(b.into_inner()?, Compression::Gzip));
    }
    let img = TestImage::new(built, images::busybox_config(), images::host_arch());
    let total: usize = img.layers.iter().map(|l| l.blob.len()).sum();
    let raw: usize = img.layers.iter().map(|l| l.tar.len()).sum();
    images::push(addr, name, tag, &img, Format::Docker)?;
    println!(
        "pushed {addr}/{name}:{tag}: {} layers, {:.1} MB compressed, {:.1} MB uncompressed",
        img.layers.len(),
        total as f64 / 1e6,
        raw as f64 / 1e6
    );
    Ok(())
}
