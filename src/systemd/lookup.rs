//! Find a unit's fragment and drop-ins the way systemd 252 does.
//!
//! The fragment is the first `NAME` in the search path. Drop-in directories are collected as in
//! `unit_file_find_dropin_paths()`: `NAME.d` in every search directory, then each dash prefix
//! (`rke2-.service.d`), then the top-level type directory (`service.d`) last; `conf_files_list`
//! keeps the first file seen for each basename (so `/etc` beats `/run` beats `/usr/lib`, and a
//! specific directory beats `service.d`), then sorts the survivors by basename. A drop-in that
//! is a symlink to `/dev/null` masks that name.

use crate::error::{Error, Result};
use crate::root::{EntryKind, NodeFs};

/// systemd 252's system unit search path (`lookup_paths_init`), highest priority first.
pub const SEARCH_PATH: &[&str] = &[
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/run/systemd/generator.late",
];

#[derive(Debug, Clone, serde::Serialize)]
pub struct UnitLayout {
    pub name: String,
    /// The fragment systemd loads.
    pub fragment: String,
    /// Other files of the same name that the fragment hides.
    pub shadowed_fragments: Vec<String>,
    /// Drop-ins in the order systemd applies them.
    pub dropins: Vec<String>,
    /// Drop-in names masked by a `/dev/null` symlink (the masking path).
    pub masked_dropins: Vec<String>,
    /// (hidden file, the same-named file that wins over it).
    pub shadowed_dropins: Vec<(String, String)>,
}

fn is_masked_link(target: &str) -> bool {
    target == "/dev/null"
}

/// Search directories that exist, without duplicates (merged-usr: /lib -> /usr/lib).
fn search_dirs(fs: &NodeFs) -> Result<Vec<String>> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for d in SEARCH_PATH {
        let r = fs.resolve(d)?;
        if seen.contains(&r) || !fs.host_path(&r).is_dir() {
            continue;
        }
        seen.push(r);
        out.push(d.to_string());
    }
    Ok(out)
}

/// Whether some search directory holds a unit of this name.
pub fn unit_exists(fs: &NodeFs, name: &str) -> Result<bool> {
    for d in search_dirs(fs)? {
        if fs.read_link(&format!("{d}/{name}"))?.is_some() || fs.exists(&format!("{d}/{name}")) {
            return Ok(true);
        }
    }
    Ok(false)
}

pub fn find(fs: &NodeFs, name: &str) -> Result<UnitLayout> {
    let dirs = search_dirs(fs)?;
    let mut fragment = None;
    let mut shadowed_fragments = Vec::new();
    for d in &dirs {
        let p = format!("{d}/{name}");
        if let Some(t) = fs.read_link(&p)?
            && is_masked_link(&t)
        {
            if fragment.is_none() {
                return Err(Error::Unsupported(format!(
                    "{p}: {name} is masked (symlink to /dev/null): systemd will not start it"
                )));
            }
            continue;
        }
        // A symlink that does not resolve is reported as what it is (a loop, an escape), not
        // as a missing unit: systemd would fail to load it for the same reason.
        if fragment.is_none()
            && let Some(target) = fs.read_link(&p)?
            && let Err(e) = fs.resolve(&p)
        {
            return Err(Error::Resolve {
                path: p,
                message: format!("the unit is a symlink (to {target}) that does not resolve: {e}"),
            });
        }
        if fs.exists(&p) {
            if fragment.is_none() {
                fragment = Some(p);
            } else {
                shadowed_fragments.push(p);
            }
        }
    }
    let Some(fragment) = fragment else {
        return Err(Error::NoUnit(Box::new(crate::error::NoUnit {
            unit: name.into(),
            searched: dirs,
            also: Vec::new(),
        })));
    };

    let mut dropin_dirs = Vec::new();
    for n in dropin_names(name) {
        for d in &dirs {
            dropin_dirs.push(format!("{d}/{n}.d"));
        }
    }
    let kind = name.rsplit('.').next().unwrap_or("service");
    for d in &dirs {
        dropin_dirs.push(format!("{d}/{kind}.d"));
    }

    // basename -> (path, masked)
    let mut chosen: Vec<(String, String, bool)> = Vec::new();
    // Basename to its place in `chosen`: a name seen once is looked up, never searched for.
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut shadowed_dropins = Vec::new();
    for dir in &dropin_dirs {
        for e in fs.read_dir(dir)? {
            if !e.name.ends_with(".conf") || e.kind == EntryKind::Dir {
                continue;
            }
            let path = format!("{dir}/{}", e.name);
            if let Some(&at) = seen.get(&e.name) {
                let winner: &(String, String, bool) = &chosen[at];
                shadowed_dropins.push((path, winner.1.clone()));
                continue;
            }
            let masked = matches!(&e.kind, EntryKind::Symlink(t) if is_masked_link(t));
            seen.insert(e.name.clone(), chosen.len());
            chosen.push((e.name.clone(), path, masked));
        }
    }
    chosen.sort_by(|a, b| a.0.cmp(&b.0));
    let (masked, live): (Vec<_>, Vec<_>) = chosen.into_iter().partition(|c| c.2);
    Ok(UnitLayout {
        name: name.into(),
        fragment,
        shadowed_fragments,
        dropins: live.into_iter().map(|c| c.1).collect(),
        masked_dropins: masked.into_iter().map(|c| c.1).collect(),
        shadowed_dropins,
    })
}

/// `a-b-c.service` -> [`a-b-c.service`, `a-b-.service`, `a-.service`] (systemd's prefix drop-ins).
fn dropin_names(name: &str) -> Vec<String> {
    let mut out = vec![name.to_string()];
    let Some((stem, suffix)) = name.rsplit_once('.') else {
        return out;
    };
    let mut s = stem;
    while let Some(i) = s.rfind('-') {
        let prefix = &s[..=i];
        out.push(format!("{prefix}.{suffix}"));
        s = &s[..i];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn precedence_masking_and_order() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let w = |p: &str, s: &str| {
            let p = r.join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, s).unwrap();
        };
        w("usr/lib/systemd/system/kubelet.service", "[Service]\n");
        w("etc/systemd/system/kubelet.service", "[Service]\n");
        w("usr/lib/systemd/system/kubelet.service.d/10-a.conf", "");
        w("etc/systemd/system/kubelet.service.d/10-a.conf", "");
        w(
            "usr/lib/systemd/system/kubelet.service.d/20-masked.conf",
            "",
        );
        w("run/systemd/system/kubelet.service.d/05-run.conf", "");
        w("etc/systemd/system/service.d/00-all.conf", "");
        w("etc/systemd/system/service.d/05-run.conf", "");
        w("etc/systemd/system/kubelet.service.d/notconf.txt", "");
        symlink(
            "/dev/null",
            r.join("etc/systemd/system/kubelet.service.d/20-masked.conf"),
        )
        .unwrap();
        let u = find(&NodeFs::new(r), "kubelet.service").unwrap();
        assert_eq!(u.fragment, "/etc/systemd/system/kubelet.service");
        assert_eq!(
            u.shadowed_fragments,
            vec!["/usr/lib/systemd/system/kubelet.service"]
        );
        assert_eq!(
            u.dropins,
            vec![
                "/etc/systemd/system/service.d/00-all.conf",
                "/run/systemd/system/kubelet.service.d/05-run.conf",
                "/etc/systemd/system/kubelet.service.d/10-a.conf",
            ]
        );
        assert_eq!(
            u.masked_dropins,
            vec!["/etc/systemd/system/kubelet.service.d/20-masked.conf"]
        );
        assert_eq!(u.shadowed_dropins.len(), 3);
    }

    #[test]
    fn prefix_names() {
        assert_eq!(
            dropin_names("rke2-agent.service"),
            vec!["rke2-agent.service", "rke2-.service"]
        );
    }
}
