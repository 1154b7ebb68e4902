//! # berth-image: references, registry client, content store, layer unpack, overlay snapshots
//!
//! Vocabulary: an **image reference** (`busybox`, `127.0.0.1:5000/app:v1@sha256:…`) names
//! an image in a registry. The registry serves a **manifest** (or a manifest list / index
//! with one manifest per platform) that lists a **config** blob and **layer** blobs (tars,
//! usually gzip-compressed). The config holds the container defaults and the **diff IDs**
//! (digests of the uncompressed layer tars). Each layer is unpacked once into a
//! **snapshot** keyed by its **chain ID**; a container's root filesystem is an overlayfs of
//! those snapshots under a writable upper directory.
//!
//! ## Worked example (what the engine does for `docker run busybox`)
//! ```no_run
//! # async fn ex() -> Result<(), berth_image::ImageError> {
//! use berth_image::{ImageRef, ImageStore, PullOptions, RegistryConfig};
//! let store = ImageStore::open("/var/lib/berth".as_ref(), RegistryConfig::default())?;
//! let r = ImageRef::parse("127.0.0.1:5000/busybox")?; // → 127.0.0.1:5000/busybox:latest
//! let image = store.pull(&r, &PullOptions::default(), &|ev| println!("{ev:?}")).await?;
//! let rootfs = store.prepare_container_rootfs("c0ffee", &image)?; // upper + work dirs
//! std::fs::create_dir_all("/run/berth/c0ffee/rootfs").unwrap();
//! berth_image::mount(&rootfs, "/run/berth/c0ffee/rootfs".as_ref())?;
//! // … run the container, then:
//! berth_image::unmount("/run/berth/c0ffee/rootfs".as_ref())?;
//! store.remove_container_rootfs("c0ffee")?;
//! # Ok(()) }
//! ```
//!
//! ## Where things are
//! - the on-disk layout and crash safety: `store.rs` (blobs by digest, records written
//!   temp + fsync + rename; layer blobs are re-verified whenever read);
//! - why a hostile layer cannot write outside its directory: [`unpack`] (`openat2`
//!   `RESOLVE_IN_ROOT`, `*at` calls that never follow the last component);
//! - the streamed pull (parallel layers, hash + decompress + unpack while downloading,
//!   resume from kept partial files): `pull.rs` and `pull/layer.rs`;
//! - overlay mounts (`mount(2)` when the options fit a page, `fsconfig lowerdir+` beyond):
//!   [`snapshot`].
//!
//! ## Public API (stable; extended, not broken)
//! - [`ImageRef::parse`] — Docker normalisation; [`ImageRef::familiar`] for display.
//! - [`ImageStore::open`]`(data_root, RegistryConfig { insecure, auth_file, certs_dir })`.
//! - [`ImageStore::pull`]`(&ImageRef, &PullOptions { platform, credentials }, &dyn Fn(PullEvent))`
//!   → [`ImageRecord`] `{ id, repo_tags, repo_digests, created, size, config, layers, manifest }`.
//! - [`ImageStore::list`], [`ImageStore::get`] (reference, full ID or ID prefix),
//!   [`ImageStore::tag`], [`ImageStore::remove`]`(name, force, in_use)` → [`RemoveEvent`]s,
//!   [`ImageStore::import`] (rootfs tarball), [`ImageStore::gc`] (skipped while a pull,
//!   load or import runs).
//! - [`ImageStore::save`]`(names, &mut dyn Write)` / [`ImageStore::load`]`(&mut dyn Read)`:
//!   OCI layout + Docker `manifest.json` in one tar (what Docker 25+ writes); load also
//!   reads classic docker-archives. [`ImageStore::push`]`(name, credentials, &dyn Fn(PushEvent))`.
//! - [`ImageStore::prepare_container_rootfs`] → [`RootfsMount`] `{ lowerdirs (top first),
//!   upper, work }`; [`mount`], [`unmount`], [`ImageStore::remove_container_rootfs`].
//! - The pull and push futures are `Send`; `progress` callbacks must be `Send + Sync`.
//! - [`ImageError::kind`] → [`ErrorKind`] for the daemon's status codes.
//! - `store.registry().login(registry, &Credentials)` / `.logout(registry)` (`berth login`,
//!   checked against the registry, stored in Docker's `config.json` format);
//!   [`registry::decode_x_registry_auth`] for the daemon's `X-Registry-Auth` header.
//! - `store.registry().login_check(registry, &Credentials)` → `Option<identity token>`: what
//!   `POST /auth` does (ping `/v2/`, answer the challenge; refusals in dockerd's words as
//!   `RegistryError::LoginRefused`; at most [`registry::LOGIN_TIMEOUT`]);
//!   [`registry::login_registry`] maps a server address (`https://index.docker.io/v1/`,
//!   `http://host:5000/`) to a registry. Identity tokens are [`Credentials::from_identity_token`]
//!   (user `<token>`, as Docker's credential helpers keep them) and use the OAuth2
//!   refresh-token grant. Registry tokens are cached per credentials, never shared.

#![forbid(unsafe_code)]

mod archive;
pub mod change;
pub mod config;
pub mod digest;
mod error;
mod fsutil;
mod import;
pub mod init_layer;
pub mod manifest;
pub mod progress;
mod pull;
mod push;
pub mod reference;
pub mod registry;
pub mod snapshot;
mod store;
pub mod unpack;

pub use config::{ContainerConfig, Healthcheck, ImageConfig};
pub use digest::{ChainId, DiffId, Digest, ImageId};
pub use error::{ErrorKind, ImageError};
pub use import::{fetch_url, import_url, FetchError};
pub use init_layer::MountPoint;
pub use manifest::Platform;
pub use progress::{LayerStatus, PullEvent};
pub use pull::{PullOptions, StreamError};
pub use push::PushEvent;
pub use reference::ImageRef;
pub use registry::{Credentials, RegistryConfig};
pub use snapshot::{mount, unmount, RootfsMount, Snapshots};
pub use store::{GcStats, ImageRecord, ImageStore, Layer, RemoveEvent};
