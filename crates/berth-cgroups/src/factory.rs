//! Choosing a manager: the only file that knows both implementations.

use crate::error::Result;
use crate::layout::Layout;
use crate::manager::{CgroupManager, CgroupPath};
use crate::v1::V1Manager;
use crate::v2::V2Manager;

/// Open the manager for `path` on this host's layout (detected once per process from
/// `/proc/self/mountinfo`, [`Layout::host`]). Nothing is created until [`CgroupManager::create`].
pub fn open(path: CgroupPath) -> Result<Box<dyn CgroupManager>> {
    open_at(Layout::host()?, path)
}

/// Open a manager on an explicit layout, e.g. a fake cgroupfs tree in a tempdir, or the
/// host's cgroup2 mount on a hybrid host.
pub fn open_at(layout: Layout, path: CgroupPath) -> Result<Box<dyn CgroupManager>> {
    Ok(match layout {
        Layout::V1 { hierarchies } => Box::new(V1Manager::new(hierarchies, path)?),
        Layout::V2 { root } => Box::new(V2Manager::new(root, path)?),
    })
}
