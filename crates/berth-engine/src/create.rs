//! `create`: resolve the image, merge its defaults with the caller's config, reserve the
//! name, prepare the rootfs and volumes, and store the record.

use crate::engine::Container;
use crate::error::{EngineError, Result};
use crate::images::image_config_of;
use crate::names;
use crate::oci;
use crate::options::CreateResult;
use crate::record::{ContainerRecord, ContainerState, MountPoint};
use crate::spec::ContainerSpec;
use crate::Engine;
use std::collections::BTreeMap;

/// What every container mounts over (the runtime's /proc, /sys, /dev and the engine's /etc
/// files): kept in the image's shared init layer when the image lacks them, so no start
/// creates them in the container's upper dir.
const MOUNT_POINTS: &[berth_image::MountPoint] = &[
    berth_image::MountPoint::Dir("proc"),
    berth_image::MountPoint::Dir("sys"),
    berth_image::MountPoint::Dir("dev"),
    berth_image::MountPoint::File("etc/hosts"),
    berth_image::MountPoint::File("etc/hostname"),
    berth_image::MountPoint::File("etc/resolv.conf"),
];

/// Merge the image's defaults into the caller's config (moby `merge`): env by key, labels,
/// exposed ports, volumes; cmd/entrypoint/workdir/user/stop signal when unset. A
/// user-given entrypoint drops the image's cmd.
pub(crate) fn merge_image_defaults(spec: &mut ContainerSpec, img: &crate::images::ImageConfig) {
    spec.env = oci::merge_env(&img.env, &spec.env);
    let user_ep = spec
        .entrypoint
        .as_ref()
        .map(|e| !e.is_empty())
        .unwrap_or(false);
    if !user_ep {
        if spec.cmd.as_ref().map(|c| c.is_empty()).unwrap_or(true) {
            spec.cmd = img.cmd.clone();
        }
        if spec.entrypoint.is_none() {
            spec.entrypoint = img.entrypoint.clone();
        }
    }
    if spec.working_dir.as_deref().unwrap_or("").is_empty() && !img.working_dir.is_empty() {
        spec.working_dir = Some(img.working_dir.clone());
    }
    if spec.user.as_deref().unwrap_or("").is_empty() && !img.user.is_empty() {
        spec.user = Some(img.user.clone());
    }
    let mut labels = img.labels.clone();
    labels.extend(std::mem::take(&mut spec.labels));
    spec.labels = labels;
    for p in &img.exposed_ports {
        if !spec.exposed_ports.contains(p) {
            spec.exposed_ports.push(p.clone());
        }
    }
    for v in &img.volumes {
        if !spec.volumes.contains(v) {
            spec.volumes.push(v.clone());
        }
    }
    if spec.stop_signal.as_deref().unwrap_or("").is_empty() {
        spec.stop_signal = img.stop_signal.clone();
    }
    if spec.shell.is_empty() {
        spec.shell = img.shell.clone();
    }
}

/// argv of the container's process.
pub(crate) fn process_args(spec: &ContainerSpec) -> Vec<String> {
    let mut a = spec.entrypoint.clone().unwrap_or_default();
    a.extend(spec.cmd.clone().unwrap_or_default());
    a
}

impl Engine {
    /// Create a container from `spec` (image defaults + overrides). Returns the id and
    /// warnings (e.g. limits clamped to what the host allows).
    pub async fn create_container(&self, mut spec: ContainerSpec) -> Result<CreateResult> {
        let mut tl = crate::explain::timeline::Recorder::new("create");
        if spec.image.trim().is_empty() {
            return Err(EngineError::invalid(
                "no image specified; give an image reference",
            ));
        }
        spec.host.restart_policy.validate()?;
        if let Some(h) = &spec.healthcheck {
            h.validate()?;
        }
        if spec.host.auto_remove && !spec.host.restart_policy.is_none() {
            return Err(EngineError::invalid(
                "can't create 'AutoRemove' container with restart policy",
            ));
        }
        oci::resources::validate(&spec.host, self.inner.facts.ncpu)
            .map_err(EngineError::invalid)?;
        let (_, mut warnings) =
            oci::parse_security_opts(&spec.host.security_opt).map_err(EngineError::invalid)?;
        self.check_network_mode(&spec.host.network_mode)?;
        // Only when networking failed: an engine started without it (`--bridge none`) gives
        // every container a loopback interface by design.
        if self.net().is_none()
            && self.inner.config.net.is_some()
            && crate::network::network_of_mode(&spec.host.network_mode).is_some()
        {
            warnings.push(
                "networking is unavailable in this engine (see the daemon log): the container gets a loopback interface only"
                    .to_string(),
            );
        }
        let caps = oci::caps::resolve(
            &spec.host.cap_add,
            &spec.host.cap_drop,
            spec.host.privileged,
        )
        .map_err(EngineError::invalid)?;
        warnings.extend(oci::caps::clamp(caps, &self.inner.facts.bounding, spec.host.privileged).1);
        warnings.extend(oci::resources::rlimits(&spec.host, &self.inner.facts.limits).1);
        if spec.host.init == Some(true) {
            crate::static_elf::check_init(&self.inner.config.init_binary())
                .map_err(EngineError::invalid)?;
        }

        tl.lap("validate config");
        // The image.
        let images = self.inner.images.clone();
        let image_name = spec.image.clone();
        let image = tokio::task::spawn_blocking(move || images.get(&image_name))
            .await
            .map_err(|e| EngineError::internal(e.to_string()))?
            .map_err(|e| match e.kind() {
                berth_image::ErrorKind::NotFound => {
                    EngineError::no_such_image(&crate::images::display_ref(&spec.image))
                }
                _ => crate::images::image_error(e),
            })?;
        tl.lap("resolve image");
        let img_cfg = image_config_of(&image.config);
        merge_image_defaults(&mut spec, &img_cfg);
        spec.healthcheck = crate::health::merge(
            spec.healthcheck.take(),
            image.config.config.healthcheck.as_ref(),
        );
        let args = process_args(&spec);
        if args.is_empty() {
            return Err(EngineError::invalid("no command specified"));
        }
        let user_mounts =
            oci::mounts::user_mounts(&spec.host, &spec.volumes).map_err(EngineError::invalid)?;

        // The id and the name (reserved before anything slow happens).
        let id = names::new_id();
        let name = self.reserve_name(spec.name.as_deref(), &id)?;
        let res = self
            .create_inner(
                &id,
                &name,
                spec,
                args,
                &image,
                user_mounts,
                warnings,
                &mut tl,
            )
            .await;
        if res.is_err() {
            let mut t = self
                .inner
                .containers
                .write()
                .unwrap_or_else(|p| p.into_inner());
            if t.names.get(&name) == Some(&id) {
                t.names.remove(&name);
            }
        }
        res
    }

    /// Reserve `name` (or a random one) for `id`.
    fn reserve_name(&self, name: Option<&str>, id: &str) -> Result<String> {
        let mut t = self
            .inner
            .containers
            .write()
            .unwrap_or_else(|p| p.into_inner());
        match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = names::normalize_name(n)?;
                if let Some(other) = t.names.get(&n) {
                    return Err(EngineError::name_in_use(&n, other));
                }
                t.names.insert(n.clone(), id.to_string());
                Ok(n)
            }
            None => {
                for retry in 0..10 {
                    let n = format!("/{}", names::random_name(retry));
                    if !t.names.contains_key(&n) {
                        t.names.insert(n.clone(), id.to_string());
                        return Ok(n);
                    }
                }
                Err(EngineError::internal("could not find a free random name"))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_inner(
        &self,
        id: &str,
        name: &str,
        mut spec: ContainerSpec,
        args: Vec<String>,
        image: &berth_image::ImageRecord,
        user_mounts: Vec<oci::mounts::UserMount>,
        warnings: Vec<String>,
        tl: &mut crate::explain::timeline::Recorder,
    ) -> Result<CreateResult> {
        let dir = self.container_dir(id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::io(format!("create {}", dir.display()), e))?;
        let cleanup = |e: EngineError| {
            let _ = std::fs::remove_dir_all(&dir);
            e
        };

        // Volumes and binds (anonymous volumes get their names now, so restarts reuse them).
        let mut mounts = Vec::new();
        for um in user_mounts.iter().filter(|m| m.kind != "tmpfs") {
            let mp = match um.kind.as_str() {
                "bind" => MountPoint {
                    kind: "bind".into(),
                    name: String::new(),
                    source: um.source.clone(),
                    destination: um.destination.clone(),
                    driver: String::new(),
                    mode: um.mode.clone(),
                    rw: !um.read_only,
                    propagation: um.propagation.clone(),
                    no_copy: true,
                },
                _ => {
                    let vol = self
                        .ensure_volume(&um.source, um.source.is_empty())
                        .await
                        .map_err(cleanup)?;
                    MountPoint {
                        kind: "volume".into(),
                        name: vol.name.clone(),
                        source: vol.mountpoint.clone(),
                        destination: um.destination.clone(),
                        driver: "local".into(),
                        mode: um.mode.clone(),
                        rw: !um.read_only,
                        propagation: String::new(),
                        no_copy: !um.copy_image_data,
                    }
                }
            };
            mounts.push(mp);
        }

        tl.lap("volumes");
        // The rootfs (upper/work over the image's layers).
        let images = self.inner.images.clone();
        let (img, cid) = (image.clone(), id.to_string());
        // Without fsyncs: the container's record (fsync'd below) is the truth about its layers,
        // and the daemon rewrites a lost layer list from it at start (reconcile).
        let rootfs = tokio::task::spawn_blocking(move || {
            images.prepare_container_rootfs_with(&cid, &img, false, MOUNT_POINTS)
        })
        .await
        .map_err(|e| EngineError::internal(e.to_string()))
        .map_err(cleanup)?
        .map_err(|e| cleanup(EngineError::internal(format!("prepare rootfs: {e}"))))?;
        let mut graph = BTreeMap::new();
        graph.insert(
            "LowerDir".to_string(),
            rootfs
                .lowerdirs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
        );
        graph.insert("UpperDir".to_string(), rootfs.upper.display().to_string());
        graph.insert("WorkDir".to_string(), rootfs.work.display().to_string());
        graph.insert(
            "MergedDir".to_string(),
            self.rootfs_dir(id).display().to_string(),
        );

        tl.lap("snapshot");
        spec.name = Some(name.to_string());
        if spec.hostname.as_deref().unwrap_or("").is_empty() {
            spec.hostname = Some(id[..12].to_string());
        }
        if spec.host.network_mode.is_empty() {
            spec.host.network_mode = "bridge".into();
        }
        // The network of the mode, attached at each start (see `network.rs`).
        let mut networks = BTreeMap::new();
        if let Some(n) = crate::network::network_of_mode(&spec.host.network_mode) {
            let id = self
                .net()
                .and_then(|m| m.network(n).ok())
                .map(|x| x.id)
                .unwrap_or_default();
            networks.insert(
                n.to_string(),
                crate::record::NetworkEndpoint {
                    network_id: id,
                    aliases: spec.network_aliases.clone(),
                    ..Default::default()
                },
            );
        }
        let etc_dir = self.state_dir(id);
        let record = ContainerRecord {
            networks,
            id: id.to_string(),
            name: name.to_string(),
            created: chrono::Utc::now(),
            path: args[0].clone(),
            args: args[1..].to_vec(),
            config: spec,
            image_id: image.id.to_string(),
            state: ContainerState::default(),
            mounts,
            log_path: dir.join(format!("{id}-json.log")).display().to_string(),
            // In the exec root (a tmpfs), not the data root: they are written anew at every
            // start, and three fewer inodes per container on the data root's filesystem cost
            // ~0.5 ms per `run` where it has seen much churn (ext4's inode allocator).
            hostname_path: etc_dir.join("hostname").display().to_string(),
            hosts_path: etc_dir.join("hosts").display().to_string(),
            resolv_conf_path: etc_dir.join("resolv.conf").display().to_string(),
            graph_driver: graph,
            cgroup_path: self.cgroup_path_of(id),
            ..Default::default()
        };
        let c = Container::new(record);
        if let Err(e) = self.save(&c) {
            let _ = self.inner.images.remove_container_rootfs(id);
            return Err(cleanup(e));
        }
        tl.lap("save record");
        c.timeline.lock().unwrap_or_else(|p| p.into_inner()).create =
            Some(crate::explain::timeline::create_timeline(tl));
        {
            let mut t = self
                .inner
                .containers
                .write()
                .unwrap_or_else(|p| p.into_inner());
            t.by_id.insert(id.to_string(), c.clone());
        }
        self.emit_container(&c, "create", &[]);
        Ok(CreateResult {
            id: id.to_string(),
            warnings,
        })
    }

    /// Publish a container event with Docker's attributes (name, image, labels + extra).
    pub(crate) fn emit_container(&self, c: &Container, action: &str, extra: &[(&str, String)]) {
        let rec = c.snapshot();
        let mut attrs: BTreeMap<String, String> = rec.config.labels.clone();
        attrs.insert("name".into(), rec.bare_name().to_string());
        attrs.insert("image".into(), rec.config.image.clone());
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        self.emit("container", action, &rec.id, attrs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::ImageConfig;

    fn img() -> ImageConfig {
        ImageConfig {
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["serve".into()]),
            env: vec!["PATH=/img".into(), "A=1".into()],
            working_dir: "/app".into(),
            user: "www".into(),
            exposed_ports: vec!["80/tcp".into()],
            volumes: vec!["/data".into()],
            stop_signal: Some("SIGQUIT".into()),
            labels: [("a".to_string(), "img".to_string())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn image_defaults_fill_unset_fields() {
        let mut s = ContainerSpec {
            env: vec!["A=2".into()],
            ..Default::default()
        };
        s.labels.insert("a".into(), "user".into());
        merge_image_defaults(&mut s, &img());
        assert_eq!(process_args(&s), vec!["/entry", "serve"]);
        assert_eq!(s.env, vec!["PATH=/img", "A=2"]);
        assert_eq!(s.working_dir.as_deref(), Some("/app"));
        assert_eq!(s.user.as_deref(), Some("www"));
        assert_eq!(s.labels["a"], "user");
        assert_eq!(s.volumes, vec!["/data"]);
        assert_eq!(s.stop_signal.as_deref(), Some("SIGQUIT"));
    }

    #[test]
    fn cmd_and_entrypoint_overrides() {
        let mut s = ContainerSpec {
            cmd: Some(vec!["echo".into(), "hi".into()]),
            ..Default::default()
        };
        merge_image_defaults(&mut s, &img());
        assert_eq!(process_args(&s), vec!["/entry", "echo", "hi"]);
        // A user entrypoint drops the image's cmd.
        let mut s = ContainerSpec {
            entrypoint: Some(vec!["sh".into()]),
            ..Default::default()
        };
        merge_image_defaults(&mut s, &img());
        assert_eq!(process_args(&s), vec!["sh"]);
        // --entrypoint "" clears the image's entrypoint but keeps its cmd.
        let mut s = ContainerSpec {
            entrypoint: Some(vec![]),
            ..Default::default()
        };
        merge_image_defaults(&mut s, &img());
        assert_eq!(process_args(&s), vec!["serve"]);
    }
}
