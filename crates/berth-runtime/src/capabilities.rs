//! The five capability sets of the container process, intersected with what the runtime
//! itself holds (this host's root lacks CAP_SYS_RESOURCE in its bounding set; asking for a
//! capability we do not have must warn, not fail).

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

/// The sets to apply, already intersected with our bounding set.
#[derive(Debug, Clone, Default)]
pub(crate) struct CapPlan {
    pub bounding: HashSet<Capability>,
    pub effective: HashSet<Capability>,
    pub permitted: HashSet<Capability>,
    pub inheritable: HashSet<Capability>,
    pub ambient: HashSet<Capability>,
}

fn convert(
    set: &Option<Capabilities>,
    field: &str,
    have: &HashSet<Capability>,
    warnings: &mut Vec<String>,
) -> Result<HashSet<Capability>> {
    let mut out = HashSet::new();
    for c in set.iter().flatten() {
        let name = format!("CAP_{c}");
        let cap = Capability::from_str(&name)
            .map_err(|_| Error::spec(field, format!("unknown capability {name}")))?;
        if have.contains(&cap) {
            out.insert(cap);
        } else {
            warnings.push(format!(
                "{field}: {name} is not in the runtime's own bounding set; dropped"
            ));
        }
    }
    Ok(out)
}

/// Build the plan (in the parent, before any process is created).
pub(crate) fn plan(c: Option<&LinuxCapabilities>, warnings: &mut Vec<String>) -> Result<CapPlan> {
    let have = caps::read(None, CapSet::Bounding)
        .map_err(|e| Error::Init(format!("read own bounding set: {e}")))?;
    let Some(c) = c else {
        return Ok(CapPlan::default());
    };
    let mut w = Vec::new();
    let p = CapPlan {
        bounding: convert(c.bounding(), "process.capabilities.bounding", &have, &mut w)?,
        effective: convert(
            c.effective(),
            "process.capabilities.effective",
            &have,
            &mut w,
        )?,
        permitted: convert(
            c.permitted(),
            "process.capabilities.permitted",
            &have,
            &mut w,
        )?,
        inheritable: convert(
            c.inheritable(),
            "process.capabilities.inheritable",
            &have,
            &mut w,
        )?,
        ambient: convert(c.ambient(), "process.capabilities.ambient", &have, &mut w)?,
    };
    w.dedup();
    warnings.extend(w);
    Ok(p)
}

/// Step 1, while still privileged: shrink the bounding set.
pub(crate) fn apply_bounding(p: &CapPlan) -> std::io::Result<()> {
    let current = caps::read(None, CapSet::Bounding).map_err(std::io::Error::other)?;
    for c in current.difference(&p.bounding) {
        caps::drop(None, CapSet::Bounding, *c).map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// Step 2, after setuid (with keep-caps): effective, inheritable, permitted, then ambient.
/// Effective is set first so it is never larger than the new permitted set.
pub(crate) fn apply_sets(p: &CapPlan) -> std::io::Result<()> {
    let eff: HashSet<_> = p.effective.intersection(&p.permitted).copied().collect();
    caps::set(None, CapSet::Effective, &eff).map_err(std::io::Error::other)?;
    caps::set(None, CapSet::Inheritable, &p.inheritable).map_err(std::io::Error::other)?;
    caps::set(None, CapSet::Permitted, &p.permitted).map_err(std::io::Error::other)?;
    caps::clear(None, CapSet::Ambient).map_err(std::io::Error::other)?;
    for c in &p.ambient {
        // The kernel only allows ambient caps that are permitted and inheritable.
        if p.permitted.contains(c) && p.inheritable.contains(c) {
            caps::raise(None, CapSet::Ambient, *c).map_err(std::io::Error::other)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_names_map_to_caps() {
        let mut set = Capabilities::new();
        set.insert(oci_spec::runtime::Capability::NetBindService);
        set.insert(oci_spec::runtime::Capability::SysAdmin);
        let mut have = HashSet::new();
        have.insert(Capability::CAP_NET_BIND_SERVICE);
        let mut w = Vec::new();
        let out = convert(&Some(set), "x", &have, &mut w).unwrap();
        assert_eq!(out.len(), 1);
        assert!(out.contains(&Capability::CAP_NET_BIND_SERVICE));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("CAP_SYS_ADMIN"));
    }
}
