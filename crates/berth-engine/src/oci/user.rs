//! `--user` → uid, gid and supplementary groups, read from the image's `/etc/passwd` and
//! `/etc/group` (the rootfs is mounted by then). Like Docker: a numeric uid need not exist;
//! a name must; `HOME` comes from the passwd entry (`/` when there is none, `/root` for 0).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The resolved identity of the container's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Read `<rootfs>/etc/<file>` without following a symlink planted by the image (it would
/// otherwise read a host file).
fn read_etc(rootfs: &Path, file: &str) -> Option<String> {
    let etc = rootfs.join("etc");
    if std::fs::symlink_metadata(&etc)
        .ok()?
        .file_type()
        .is_symlink()
    {
        return None;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(etc.join(file))
        .ok()?;
    let mut s = String::new();
    f.by_ref().take(4 << 20).read_to_string(&mut s).ok()?;
    Some(s)
}

fn parse_passwd(s: &str) -> Vec<PasswdEntry> {
    s.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

fn parse_group(s: &str) -> Vec<GroupEntry> {
    s.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// Resolve `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`) against the rootfs.
pub fn resolve(spec: &str, rootfs: &Path) -> Result<ResolvedUser, String> {
    let passwd = read_etc(rootfs, "passwd")
        .map(|s| parse_passwd(&s))
        .unwrap_or_default();
    let groups = read_etc(rootfs, "group")
        .map(|s| parse_group(&s))
        .unwrap_or_default();
    resolve_with(spec, &passwd, &groups)
}

fn resolve_with(
    spec: &str,
    passwd: &[PasswdEntry],
    groups: &[GroupEntry],
) -> Result<ResolvedUser, String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entry = match user.parse::<u32>() {
        Ok(uid) => passwd.iter().find(|p| p.uid == uid),
        Err(_) => Some(passwd.iter().find(|p| p.name == user).ok_or_else(|| {
            format!("unable to find user {user}: no matching entries in passwd file")
        })?),
    };
    let uid = match entry {
        Some(e) => e.uid,
        None => user
            .parse::<u32>()
            .map_err(|_| format!("invalid user {user:?}"))?,
    };
    let mut gid = entry.map(|e| e.gid).unwrap_or(0);
    let home = match entry {
        Some(e) if !e.home.is_empty() => e.home.clone(),
        _ if uid == 0 => "/root".to_string(),
        _ => "/".to_string(),
    };
    let mut additional_gids = Vec::new();
    if let Some(g) = group.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        };
    } else if let Some(e) = entry {
        // Supplementary groups only when no group was given (Docker/runc behaviour).
        for g in groups {
            if g.members.iter().any(|m| m == &e.name)
                && g.gid != gid
                && !additional_gids.contains(&g.gid)
            {
                additional_gids.push(g.gid);
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# comment\nwww-data:x:33:33:www:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    const GROUP: &str = "root:x:0:\nwww-data:x:33:\nadm:x:4:www-data,other\nstaff:x:50:www-data\n";

    fn r(spec: &str) -> Result<ResolvedUser, String> {
        resolve_with(spec, &parse_passwd(PASSWD), &parse_group(GROUP))
    }

    #[test]
    fn names_and_numbers() {
        assert_eq!(
            r("").unwrap(),
            ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
                home: "/root".into()
            }
        );
        let w = r("www-data").unwrap();
        assert_eq!((w.uid, w.gid, w.home.as_str()), (33, 33, "/var/www"));
        assert_eq!(w.additional_gids, vec![4, 50]);
        assert_eq!(r("33").unwrap().uid, 33);
        let n = r("1234").unwrap();
        assert_eq!((n.uid, n.gid, n.home.as_str()), (1234, 0, "/"));
        assert_eq!(r("1234:5678").unwrap().gid, 5678);
        let g = r("www-data:adm").unwrap();
        assert_eq!((g.uid, g.gid), (33, 4));
        assert!(g.additional_gids.is_empty());
    }

    #[test]
    fn unknown_names_fail_like_docker() {
        assert_eq!(
            r("nosuch").unwrap_err(),
            "unable to find user nosuch: no matching entries in passwd file"
        );
        assert!(r("root:nogroup")
            .unwrap_err()
            .contains("unable to find group nogroup"));
    }

    #[test]
    fn reads_rootfs_files_but_not_symlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/passwd"), PASSWD).unwrap();
        assert_eq!(resolve("www-data", d.path()).unwrap().uid, 33);
        std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("etc/passwd")).unwrap();
        // The host's passwd must not be consulted: the name is not found.
        assert!(resolve("root", d.path()).is_err());
    }
}
