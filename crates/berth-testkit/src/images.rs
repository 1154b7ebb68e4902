//! Test images built at test time from what the machine has (Debian's `busybox-static`),
//! pushed to a [`RegistryGuard`] with a small push of our own (plain HTTP/1.1; the monolithic
//! POST + PUT upload of the distribution spec), as OCI or Docker schema2 manifests, or as a
//! manifest list. One call for e2e tests: [`busybox_in_registry`].

use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use sha2::{Digest as _, Sha256};

use crate::registry::{http, RegistryGuard};

/// Fixed mtime of fixture entries (reproducible digests).
pub const MTIME: u64 = 1_700_000_000;

/// `sha256:<hex>` of bytes.
pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// Builds a layer tar entry by entry. Paths go into the header verbatim (no checks), so
/// hostile layers (`../x`, `/abs`, escaping links) can be built too.
pub struct LayerBuilder {
    b: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    pub fn new() -> Self {
        LayerBuilder {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, path: &str, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(size);
        let name = &mut h.as_old_mut().name;
        assert!(path.len() < name.len(), "fixture path too long: {path}");
        name[..path.len()].copy_from_slice(path.as_bytes());
        h
    }

    fn push(&mut self, mut h: tar::Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.b.append(&h, data).expect("append to an in-memory tar");
        self
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let p = if path.ends_with('/') {
            path.to_string()
        } else {
            format!("{path}/")
        };
        self.push(Self::header(tar::EntryType::Directory, &p, mode, 0), &[])
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.push(
            Self::header(tar::EntryType::Regular, path, mode, data.len() as u64),
            data,
        )
    }

    /// A file with owner ids.
    pub fn file_owned(
        &mut self,
        path: &str,
        mode: u32,
        uid: u64,
        gid: u64,
        data: &[u8],
    ) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, path, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.push(h, data)
    }

    /// A file with extended attributes (PAX `SCHILY.xattr.<name>` records, as Docker writes).
    pub fn file_xattrs(
        &mut self,
        path: &str,
        mode: u32,
        data: &[u8],
        xattrs: &[(&str, &[u8])],
    ) -> &mut Self {
        let keys: Vec<String> = xattrs
            .iter()
            .map(|(k, _)| format!("SCHILY.xattr.{k}"))
            .collect();
        self.b
            .append_pax_extensions(
                keys.iter()
                    .map(String::as_str)
                    .zip(xattrs.iter().map(|(_, v)| *v)),
            )
            .expect("append pax to an in-memory tar");
        self.file(path, mode, data)
    }

    fn link(&mut self, kind: tar::EntryType, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(kind, path, 0o777, 0);
        let ln = &mut h.as_old_mut().linkname;
        assert!(target.len() < ln.len());
        ln[..target.len()].copy_from_slice(target.as_bytes());
        self.push(h, &[])
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.link(tar::EntryType::Symlink, path, target)
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.link(tar::EntryType::Link, path, target)
    }

    pub fn fifo(&mut self, path: &str) -> &mut Self {
        self.push(Self::header(tar::EntryType::Fifo, path, 0o644, 0), &[])
    }

    pub fn char_device(&mut self, path: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Char, path, 0o666, 0);
        h.set_device_major(major).expect("gnu header");
        h.set_device_minor(minor).expect("gnu header");
        self.push(h, &[])
    }

    /// `dir/.wh.name`: deletes `dir/name` of lower layers.
    pub fn whiteout(&mut self, path: &str) -> &mut Self {
        let (dir, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
        let p = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&p, 0o644, &[])
    }

    /// `dir/.wh..wh..opq`: hides everything lower layers have in `dir`.
    pub fn opaque(&mut self, dir: &str) -> &mut Self {
        self.file(
            &format!("{}/.wh..wh..opq", dir.trim_end_matches('/')),
            0o644,
            &[],
        )
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().expect("finish in-memory tar")
    }
}

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

/// Manifest flavour to push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Oci,
    Docker,
}

/// A layer: its tar and its blob.
#[derive(Clone)]
pub struct TestLayer {
    pub tar: Vec<u8>,
    pub blob: Vec<u8>,
    pub compression: Compression,
}

impl TestLayer {
    pub fn new(tar: Vec<u8>, compression: Compression) -> Self {
        let blob = match compression {
            Compression::None => tar.clone(),
            Compression::Gzip => {
                use std::io::Write;
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&tar).expect("gzip to memory");
                e.finish().expect("gzip to memory")
            }
            Compression::Zstd => ruzstd::encoding::compress_to_vec(
                &tar[..],
                ruzstd::encoding::CompressionLevel::Fastest,
            ),
        };
        TestLayer {
            tar,
            blob,
            compression,
        }
    }

    pub fn diff_id(&self) -> String {
        sha256(&self.tar)
    }

    fn media_type(&self, f: Format) -> &'static str {
        match (f, self.compression) {
            (Format::Docker, _) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            (Format::Oci, Compression::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
            (Format::Oci, Compression::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
            (Format::Oci, Compression::None) => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// An image: config blob and layers.
#[derive(Clone)]
pub struct TestImage {
    pub config: Vec<u8>,
    pub layers: Vec<TestLayer>,
}

impl TestImage {
    /// An image from layers with container defaults `config` (Docker's `config` object) for
    /// architecture `arch` (`amd64`, `arm64`, …).
    pub fn new(layers: Vec<TestLayer>, config: serde_json::Value, arch: &str) -> Self {
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id()).collect();
        let history: Vec<serde_json::Value> =
            layers.iter().enumerate().map(|(i, _)| serde_json::json!({"created":"2023-11-14T22:13:20Z","created_by":format!("layer {i}")})).collect();
        let cfg = serde_json::json!({
            "architecture": arch, "os": "linux", "created": "2023-11-14T22:13:20Z",
            "config": config, "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history,
        });
        TestImage {
            config: serde_json::to_vec(&cfg).expect("json"),
            layers,
        }
    }

    /// The image ID berth should report (digest of the config).
    pub fn id(&self) -> String {
        sha256(&self.config)
    }

    /// The manifest JSON in format `f`.
    pub fn manifest(&self, f: Format) -> (Vec<u8>, &'static str) {
        let (mt, cmt) = match f {
            Format::Oci => (
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.oci.image.config.v1+json",
            ),
            Format::Docker => (
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.docker.container.image.v1+json",
            ),
        };
        let layers: Vec<serde_json::Value> = self
            .layers
            .iter()
            .map(|l| serde_json::json!({"mediaType": l.media_type(f), "digest": sha256(&l.blob), "size": l.blob.len()}))
            .collect();
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": mt,
            "config": {"mediaType": cmt, "digest": sha256(&self.config), "size": self.config.len()},
            "layers": layers,
        });
        (serde_json::to_vec(&m).expect("json"), mt)
    }
}

/// The host's architecture in Go's naming.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn busybox_applets() -> Vec<String> {
    let out = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .ok();
    let list = out
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "busybox" && !l.contains('/'))
        .map(str::to_string)
        .collect()
}

/// Tar of a busybox root: `/bin/busybox` with every applet linked in `/bin`, `/etc/passwd`,
/// `/etc/group`, and the usual empty directories. Cached per process.
pub fn busybox_layer_tar() -> Result<Vec<u8>> {
    static CACHE: OnceLock<Vec<u8>> = OnceLock::new();
    if let Some(t) = CACHE.get() {
        return Ok(t.clone());
    }
    let bb = std::fs::read("/bin/busybox")
        .context("reading /bin/busybox (apt-get install busybox-static)")?;
    let mut l = LayerBuilder::new();
    for d in [
        "bin", "dev", "etc", "proc", "root", "sys", "usr", "usr/bin", "var",
    ] {
        l.dir(d, 0o755);
    }
    l.dir("tmp", 0o1777);
    l.file("bin/busybox", 0o755, &bb);
    for a in busybox_applets() {
        l.symlink(&format!("bin/{a}"), "busybox");
    }
    l.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    l.file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n");
    let t = l.finish();
    let _ = CACHE.set(t.clone());
    Ok(t)
}

/// Container defaults of the busybox fixtures.
pub fn busybox_config() -> serde_json::Value {
    serde_json::json!({"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]})
}

/// The single-layer busybox image (gzip).
pub fn busybox_image() -> Result<TestImage> {
    // gzip in a debug build takes seconds: compress once per process
    static CACHE: OnceLock<TestImage> = OnceLock::new();
    if let Some(i) = CACHE.get() {
        return Ok(i.clone());
    }
    let img = TestImage::new(
        vec![TestLayer::new(busybox_layer_tar()?, Compression::Gzip)],
        busybox_config(),
        host_arch(),
    );
    Ok(CACHE.get_or_init(|| img).clone())
}

/// A three-layer image whose upper layers delete files and replace directories:
/// - layer 1: `/bin/busybox`, `/bin/sh`, `/data/{keep,remove-me}`, `/olddir/{a,b}`,
///   `/etc/hostname`, a hardlink `/data/keep-link` → `/data/keep`;
/// - layer 2: whiteout of `/data/remove-me`, `/olddir` made opaque with new `c`;
///   `/etc/hostname` replaced by a symlink;
/// - layer 3 (zstd): brand-new `/newdir` carrying an opaque marker (as this kernel's
///   overlayfs writes), `/newdir/x`, and `/olddir/c` rewritten.
///
/// [`MULTILAYER_FILES`] lists the merged tree.
pub fn multilayer_image(compression_of_top: Compression) -> Result<TestImage> {
    let bb = std::fs::read("/bin/busybox").context("reading /bin/busybox")?;
    let mut l1 = LayerBuilder::new();
    l1.dir("bin", 0o755)
        .file("bin/busybox", 0o755, &bb)
        .symlink("bin/sh", "busybox")
        .symlink("bin/ls", "busybox")
        .symlink("bin/cat", "busybox");
    l1.dir("data", 0o755)
        .file("data/keep", 0o644, b"keep\n")
        .file("data/remove-me", 0o644, b"gone\n")
        .hardlink("data/keep-link", "data/keep");
    l1.dir("olddir", 0o755)
        .file("olddir/a", 0o644, b"a\n")
        .file("olddir/b", 0o644, b"b\n");
    l1.dir("etc", 0o755).file("etc/hostname", 0o644, b"base\n");
    let mut l2 = LayerBuilder::new();
    l2.dir("data", 0o755).whiteout("data/remove-me");
    l2.dir("olddir", 0o755)
        .opaque("olddir")
        .file("olddir/c", 0o600, b"c1\n");
    l2.dir("etc", 0o755).symlink("etc/hostname", "/data/keep");
    let mut l3 = LayerBuilder::new();
    l3.dir("newdir", 0o750)
        .opaque("newdir")
        .file_owned("newdir/x", 0o640, 1000, 1000, b"x\n");
    l3.dir("olddir", 0o755).file("olddir/c", 0o600, b"c2\n");
    Ok(TestImage::new(
        vec![
            TestLayer::new(l1.finish(), Compression::Gzip),
            TestLayer::new(l2.finish(), Compression::Gzip),
            TestLayer::new(l3.finish(), compression_of_top),
        ],
        busybox_config(),
        host_arch(),
    ))
}

/// Every path in the merged tree of [`multilayer_image`] (sorted, relative).
pub const MULTILAYER_FILES: &[&str] = &[
    "bin",
    "bin/busybox",
    "bin/cat",
    "bin/ls",
    "bin/sh",
    "data",
    "data/keep",
    "data/keep-link",
    "etc",
    "etc/hostname",
    "newdir",
    "newdir/x",
    "olddir",
    "olddir/c",
];

/// Uploads one blob (skipped when the registry has it).
pub fn push_blob(addr: &str, name: &str, data: &[u8]) -> Result<String> {
    let d = sha256(data);
    let (st, _, _) = http(addr, "HEAD", &format!("/v2/{name}/blobs/{d}"), &[], &[])?;
    if st == 200 {
        return Ok(d);
    }
    let (st, h, body) = http(
        addr,
        "POST",
        &format!("/v2/{name}/blobs/uploads/"),
        &[],
        &[],
    )?;
    if st != 202 {
        bail!(
            "starting upload to {addr}/{name}: status {st}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let loc = h
        .iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v.clone())
        .context("upload without Location")?;
    let loc = loc
        .strip_prefix(&format!("http://{addr}"))
        .unwrap_or(&loc)
        .to_string();
    let sep = if loc.contains('?') { '&' } else { '?' };
    let (st, _, body) = http(
        addr,
        "PUT",
        &format!("{loc}{sep}digest={d}"),
        &[("Content-Type", "application/octet-stream")],
        data,
    )?;
    if st != 201 {
        bail!(
            "uploading blob {d} to {addr}/{name}: status {st}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(d)
}

/// Uploads a manifest (any bytes) under `reference` with `media_type`; returns its digest.
pub fn push_manifest(
    addr: &str,
    name: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
) -> Result<String> {
    let (st, _, resp) = http(
        addr,
        "PUT",
        &format!("/v2/{name}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        body,
    )?;
    if st != 201 {
        bail!(
            "pushing manifest {name}:{reference}: status {st}: {}",
            String::from_utf8_lossy(&resp)
        );
    }
    Ok(sha256(body))
}

/// Pushes an image; returns the manifest digest.
pub fn push(addr: &str, name: &str, tag: &str, img: &TestImage, f: Format) -> Result<String> {
    for l in &img.layers {
        push_blob(addr, name, &l.blob)?;
    }
    push_blob(addr, name, &img.config)?;
    let (m, mt) = img.manifest(f);
    push_manifest(addr, name, tag, mt, &m)
}

/// Pushes a manifest list / OCI index of `images` with their `(arch, variant)`; returns its digest.
pub fn push_index(
    addr: &str,
    name: &str,
    tag: &str,
    images: &[(&TestImage, &str, Option<&str>)],
    f: Format,
) -> Result<String> {
    let mut entries = Vec::new();
    for (img, arch, variant) in images {
        for l in &img.layers {
            push_blob(addr, name, &l.blob)?;
        }
        push_blob(addr, name, &img.config)?;
        let (m, mt) = img.manifest(f);
        let d = push_manifest(addr, name, &sha256(&m), mt, &m)?;
        let mut p = serde_json::json!({"architecture": arch, "os": "linux"});
        if let Some(v) = variant {
            p["variant"] = (*v).into();
        }
        entries.push(
            serde_json::json!({"mediaType": mt, "digest": d, "size": m.len(), "platform": p}),
        );
    }
    let mt = match f {
        Format::Oci => "application/vnd.oci.image.index.v1+json",
        Format::Docker => "application/vnd.docker.distribution.manifest.list.v2+json",
    };
    let ix = serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": mt, "manifests": entries}),
    )?;
    push_manifest(addr, name, tag, mt, &ix)
}

/// One call for e2e tests: a fresh registry holding the busybox image; returns the guard
/// and `127.0.0.1:PORT/busybox:latest`.
pub fn busybox_in_registry() -> Result<(RegistryGuard, String)> {
    let reg = RegistryGuard::start()?;
    push(
        &reg.addr,
        "busybox",
        "latest",
        &busybox_image()?,
        Format::Oci,
    )?;
    let r = format!("{}/busybox:latest", reg.addr);
    Ok((reg, r))
}

/// Pushes busybox with other container defaults (Docker's `config` object, e.g.
/// `{"Entrypoint":["/bin/sh","-c"],"WorkingDir":"/tmp","User":"nobody","ExposedPorts":{"80/tcp":{}}}`)
/// as `name:tag`; returns `127.0.0.1:PORT/name:tag`. For engine tests of image defaults.
pub fn push_busybox_with_config(
    reg: &RegistryGuard,
    name: &str,
    tag: &str,
    config: serde_json::Value,
) -> Result<String> {
    let base = busybox_image()?;
    let img = TestImage::new(base.layers, config, host_arch());
    push(&reg.addr, name, tag, &img, Format::Docker)?;
    Ok(format!("{}/{name}:{tag}", reg.addr))
}
