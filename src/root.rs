//! The node's file system seen through `--root`: every path resolves inside the root.
//!
//! Like openat2(2) with RESOLVE_IN_ROOT: absolute symlink targets restart at the root, `..`
//! stops at the root, and at most 40 symlinks are followed (Linux's MAXSYMLINKS). Nothing
//! outside the root is ever opened. An overlay of edited contents lets the planner re-evaluate
//! the node as it would be after the change without writing anything.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Linux's MAXSYMLINKS: the same bound the kernel applies to path walks.
const MAX_SYMLINKS: usize = 40;
/// Refuse files bigger than this: a kubelet config is kilobytes, a unit smaller still.
const MAX_FILE_SIZE: u64 = 256 << 20;

/// What a directory entry is, without following a final symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symlink and its raw target.
    Symlink(String),
    Other,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
}

/// A read-only view of the node's files.
#[derive(Debug, Clone)]
pub struct NodeFs {
    root: PathBuf,
    /// Replaced contents, keyed by resolved node path.
    overlay: HashMap<String, Arc<str>>,
}

impl NodeFs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        NodeFs {
            root: root.into(),
            overlay: HashMap::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The same node with some files' contents replaced (keyed by resolved node path).
    pub fn with_overlay(&self, overlay: HashMap<String, Arc<str>>) -> Self {
        NodeFs {
            root: self.root.clone(),
            overlay,
        }
    }

    /// The host path of a node path that is already resolved.
    pub fn host_path(&self, resolved: &str) -> PathBuf {
        self.root.join(resolved.trim_start_matches('/'))
    }

    /// Resolve `path` (absolute, as the node names it) to its final node path, following every
    /// symlink inside the root. A missing final component is fine (the caller decides).
    pub fn resolve(&self, path: &str) -> Result<String> {
        if !path.starts_with('/') {
            return Err(Error::Resolve {
                path: path.into(),
                message: "path is not absolute".into(),
            });
        }
        let mut done: Vec<String> = Vec::new();
        let mut todo: Vec<String> = components_rev(path);
        let mut links = 0;
        // Once a component is missing nothing below it exists: the rest is joined lexically.
        let mut missing = false;
        while let Some(comp) = todo.pop() {
            match comp.as_str() {
                "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ if missing => {
                    done.push(comp);
                    continue;
                }
                _ => {}
            }
            let node = if done.is_empty() {
                format!("/{comp}")
            } else {
                format!("/{}/{comp}", done.join("/"))
            };
            match fs::symlink_metadata(self.host_path(&node)) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(Error::Resolve {
                            path: path.into(),
                            message: "too many levels of symbolic links".into(),
                        });
                    }
                    let target = fs::read_link(self.host_path(&node))
                        .map_err(|e| Error::io(node.clone(), e))?;
                    let target = target.to_string_lossy().into_owned();
                    if target.starts_with('/') {
                        done.clear();
                    }
                    todo.extend(components_rev(&target));
                }
                Ok(_) => done.push(comp),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    // Keep walking so `..` after a missing part still behaves; the open fails later.
                    missing = true;
                    done.push(comp);
                }
                Err(e) => return Err(Error::io(node, e)),
            }
        }
        Ok(format!("/{}", done.join("/")))
    }

    /// Read a regular file. `Ok(None)` when it does not exist. The text is shared, not copied,
    /// by everything that holds it (the evidence, an overlay, a plan's change).
    pub fn read(&self, path: &str) -> Result<Option<(String, Arc<str>)>> {
        let resolved = self.resolve(path)?;
        if let Some(text) = self.overlay.get(&resolved) {
            return Ok(Some((resolved, text.clone())));
        }
        let host = self.host_path(&resolved);
        // Open first, then look at what was opened: a FIFO swapped in after a stat would block
        // a plain open. O_NOFOLLOW: the resolved path has no symlink left, so one now was
        // swapped in.
        let f = match crate::inroot::open_host(
            &host,
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW,
        ) {
            Ok(fd) => fs::File::from(fd),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(Error::Resolve {
                    path: path.into(),
                    message: format!("became a symlink while it was read (resolves to {resolved})"),
                });
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let meta = f.metadata().map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            // Never read a FIFO or device: reading one could block or have side effects.
            return Err(Error::Resolve {
                path: path.into(),
                message: format!("not a regular file (resolves to {resolved})"),
            });
        }
        let bytes =
            crate::inroot::read_bounded(f, MAX_FILE_SIZE, path).map_err(|e| Error::Resolve {
                path: path.into(),
                message: e.to_string(),
            })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            Error::io(
                path,
                io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8: {e}")),
            )
        })?;
        Ok(Some((resolved, text.into())))
    }

    /// What `path` is, followed inside the root (a symlink is judged at its target, never
    /// outside the root): its resolved node path and metadata; `Ok(None)` when it does not
    /// exist. The file is not opened, so a FIFO or a device is described, never read.
    pub fn stat(&self, path: &str) -> Result<Option<(String, fs::Metadata)>> {
        let resolved = self.resolve(path)?;
        match fs::symlink_metadata(self.host_path(&resolved)) {
            Ok(m) => Ok(Some((resolved, m))),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// The raw target of `path` if it is itself a symlink (its parents are resolved in root).
    pub fn read_link(&self, path: &str) -> Result<Option<String>> {
        let (parent, name) = split_parent(path);
        let dir = self.resolve(parent)?;
        let node = format!("{}/{}", dir.trim_end_matches('/'), name);
        match fs::symlink_metadata(self.host_path(&node)) {
            Ok(m) if m.file_type().is_symlink() => Ok(Some(
                fs::read_link(self.host_path(&node))
                    .map_err(|e| Error::io(path, e))?
                    .to_string_lossy()
                    .into_owned(),
            )),
            _ => Ok(None),
        }
    }

    /// Whether `path` exists (following symlinks inside the root).
    pub fn exists(&self, path: &str) -> bool {
        self.resolve(path)
            .map(|r| self.overlay.contains_key(&r) || self.host_path(&r).exists())
            .unwrap_or(false)
    }

    /// Last modification time of a resolved node path (edited overlay files count as now).
    pub fn mtime(&self, resolved: &str) -> Option<std::time::SystemTime> {
        if self.overlay.contains_key(resolved) {
            return Some(std::time::SystemTime::now());
        }
        fs::metadata(self.host_path(resolved)).ok()?.modified().ok()
    }

    pub fn is_dir(&self, path: &str) -> bool {
        self.resolve(path)
            .map(|r| self.host_path(&r).is_dir())
            .unwrap_or(false)
    }

    /// Entries of a directory, sorted by name (byte order, as Go's os.ReadDir and systemd do).
    /// A missing directory has no entries.
    pub fn read_dir(&self, path: &str) -> Result<Vec<Entry>> {
        let resolved = self.resolve(path)?;
        let host = self.host_path(&resolved);
        let iter = match fs::read_dir(&host) {
            Ok(it) => it,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(Vec::new());
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut out = Vec::new();
        // An entry can vanish between readdir and the look at it (a process leaving /proc):
        // it is simply not there any more.
        let gone = |e: &io::Error| e.kind() == io::ErrorKind::NotFound;
        for ent in iter {
            let ent = ent.map_err(|e| Error::io(path, e))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            let ft = match ent.file_type() {
                Ok(ft) => ft,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(Error::io(path, e)),
            };
            let kind = if ft.is_symlink() {
                let t = match fs::read_link(ent.path()) {
                    Ok(t) => t,
                    Err(e) if gone(&e) => continue,
                    Err(e) => return Err(Error::io(path, e)),
                };
                EntryKind::Symlink(t.to_string_lossy().into_owned())
            } else if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File
            } else {
                EntryKind::Other
            };
            out.push(Entry { name, kind });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// Path components, reversed so the next one is `pop()`ed.
fn components_rev(path: &str) -> Vec<String> {
    let mut v: Vec<String> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    v.reverse();
    v
}

/// Split an absolute path into its parent and last name.
pub fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

/// Join a relative path onto a directory, lexically (resolution happens later, inside root).
pub fn join(dir: &str, rel: &str) -> String {
    if rel.starts_with('/') {
        rel.to_string()
    } else {
        format!("{}/{}", dir.trim_end_matches('/'), rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_and_dotdot_stay_inside_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("etc/k")).unwrap();
        fs::write(r.join("etc/k/real.yaml"), "x").unwrap();
        symlink("/etc/k/real.yaml", r.join("etc/abs")).unwrap();
        symlink("k/real.yaml", r.join("etc/rel")).unwrap();
        symlink("../../../../../etc/passwd", r.join("etc/escape")).unwrap();
        symlink("loop", r.join("etc/loop")).unwrap();
        let fs = NodeFs::new(r);
        assert_eq!(fs.resolve("/etc/abs").unwrap(), "/etc/k/real.yaml");
        assert_eq!(fs.resolve("/etc/rel").unwrap(), "/etc/k/real.yaml");
        assert_eq!(
            fs.resolve("/../../etc/k/../k/real.yaml").unwrap(),
            "/etc/k/real.yaml"
        );
        // The escape lands on the root's own /etc/passwd, which does not exist in the tempdir.
        assert_eq!(fs.resolve("/etc/escape").unwrap(), "/etc/passwd");
        assert!(fs.read("/etc/escape").unwrap().is_none());
        assert!(matches!(
            fs.resolve("/etc/loop"),
            Err(Error::Resolve { .. })
        ));
        assert_eq!(fs.read("/etc/abs").unwrap().unwrap().1.as_ref(), "x");
    }

    #[test]
    fn special_files_are_refused() {
        let t = tempfile::tempdir().unwrap();
        symlink("/dev/null", t.path().join("null")).unwrap();
        let fs = NodeFs::new(t.path());
        // /dev/null inside an empty root does not exist: no host device is ever opened.
        assert!(fs.read("/null").unwrap().is_none());
        let host = NodeFs::new("/");
        assert!(matches!(host.read("/dev/null"), Err(Error::Resolve { .. })));
    }
}
