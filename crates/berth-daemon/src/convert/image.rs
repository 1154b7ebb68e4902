//! Images: engine summary/details → list item and inspect.

use std::collections::BTreeMap;

use berth_api::container::{DriverData, Empty};
use berth_api::image::{
    ImageConfig as WireConfig, ImageInspect, ImageMetadata, ImageSummary as WireSummary, RootFs,
};
use berth_engine::{ImageDetails, ImageSummary};

use super::rfc3339;

pub fn summary(s: &ImageSummary) -> WireSummary {
    WireSummary {
        id: s.id.clone(),
        parent_id: s.parent_id.clone(),
        repo_tags: s.repo_tags.clone(),
        repo_digests: s.repo_digests.clone(),
        created: s.created.map_or(0, |t| t.timestamp()),
        size: s.size as i64,
        shared_size: -1,
        labels: s.labels.clone(),
        containers: s.containers,
    }
}

pub fn inspect(d: &ImageDetails) -> ImageInspect {
    let c = &d.config;
    let set = |v: &Vec<String>| -> Option<BTreeMap<String, Empty>> {
        if v.is_empty() {
            None
        } else {
            Some(v.iter().map(|p| (p.clone(), Empty {})).collect())
        }
    };
    ImageInspect {
        id: d.summary.id.clone(),
        repo_tags: d.summary.repo_tags.clone(),
        repo_digests: d.summary.repo_digests.clone(),
        parent: d.summary.parent_id.clone(),
        comment: d.comment.clone(),
        created: rfc3339(d.summary.created),
        docker_version: String::new(),
        author: d.author.clone(),
        config: WireConfig {
            exposed_ports: set(&c.exposed_ports),
            env: Some(c.env.clone()),
            cmd: c.cmd.clone(),
            volumes: set(&c.volumes),
            working_dir: c.working_dir.clone(),
            entrypoint: c.entrypoint.clone(),
            labels: Some(c.labels.clone()),
            stop_signal: c.stop_signal.clone(),
            user: c.user.clone(),
            shell: (!c.shell.is_empty()).then(|| c.shell.clone()),
            healthcheck: c.healthcheck.as_ref().map(super::container::health_config),
            ..Default::default()
        },
        architecture: d.architecture.clone(),
        variant: d.variant.clone(),
        os: if d.os.is_empty() {
            "linux".into()
        } else {
            d.os.clone()
        },
        os_version: String::new(),
        size: d.summary.size as i64,
        graph_driver: DriverData {
            name: "overlay2".into(),
            data: BTreeMap::new(),
        },
        root_fs: RootFs {
            r#type: "layers".into(),
            layers: d.layers.clone(),
        },
        metadata: ImageMetadata {
            last_tag_time: rfc3339(None),
        },
    }
}
