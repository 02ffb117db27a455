//! Writes that never leave a node half-changed: lock, preflight, backup, atomic replace, log.
//!
//! 1. One writer per node: an advisory lock on `/run/kubelet-remediate.lock` inside the root,
//!    waited for a bounded time.
//! 2. Preflight every file before touching any: content still what was planned, writable, not
//!    on a read-only file system, not immutable or append-only, room for the backup and the new
//!    copy.
//! 3. A new backup set `<backup-dir>/<id>/` (0700; files 0600) with a manifest, written and
//!    fsynced before any file changes.
//! 4. Each file: temp file in the same directory (a dot name ending `.kubelet-remediate.tmp`,
//!    which neither systemd, the kubelet nor k3s reads), same mode, owner and extended
//!    attributes (SELinux label, ACLs), write, fsync, rename over, fsync the directory.
//! 5. All or nothing: a failed write, or a verification that fails afterwards, restores every
//!    file already written.
//! 6. One JSON line per apply and rollback in `/var/log/kubelet-remediate.log`, opened before
//!    anything is written (a log that cannot be opened aborts with nothing changed) and
//!    written after the commit point (a failure there is a warning, never "nothing changed").
//!
//! Every path is walked inside the root from a directory descriptor (`inroot.rs`): a symlink
//! swapped into a resolved path is refused, never followed. A manifest is untrusted input: its
//! id, paths, backup names, digests, mode and owner are validated before anything is read
//! through it. A set left `prepared` by a killed run is rolled back by the next run ([`recover`])
//! before it plans, so one `rollback --last` afterwards restores the original bytes.
//!
//! Debug builds (tests) can abort at any step through `KUBELET_REMEDIATE_CRASH_AT=<point>`;
//! release builds compile the hook out.

use crate::error::{Error, Result};
use crate::inroot::{self, Dir};
use crate::meta::{Meta, MetaChange};
use crate::root::NodeFs;
use crate::saved::sha256_hex;
use crate::state::{self, PENDING_NAME, Pending, STATE_DIR};
use crate::time::rfc3339;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant, SystemTime};

pub const LOCK: &str = "/run/kubelet-remediate.lock";
pub const LOG: &str = "/var/log/kubelet-remediate.log";
pub const DEFAULT_BACKUP_DIR: &str = "/var/lib/kubelet-remediate/backups";
const TMP_SUFFIX: &str = ".kubelet-remediate.tmp";

/// The crash points of an apply of `files` files, in the order they are reached.
pub fn crash_points(files: usize) -> Vec<String> {
    let mut v = vec![
        "locked".to_string(),
        "backup-copied".into(),
        "manifest-written".into(),
    ];
    for i in 0..files {
        for p in ["temp-written", "temp-synced", "renamed", "dir-synced"] {
            v.push(format!("{p}:{i}"));
        }
    }
    v.extend([
        "all-written".into(),
        "manifest-applied".into(),
        "logged".into(),
    ]);
    v
}

/// Abort here if a test asked for it (debug builds only).
pub fn crash_point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("KUBELET_REMEDIATE_CRASH_AT").is_ok_and(|p| p == name) {
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// Crash here, or fail with an I/O error, if a test asked for it (debug builds only):
/// `KUBELET_REMEDIATE_FAIL_AT=<point>` exercises the all-or-nothing restore.
fn fault(name: &str) -> std::io::Result<()> {
    crash_point(name);
    #[cfg(debug_assertions)]
    if std::env::var("KUBELET_REMEDIATE_FAIL_AT").is_ok_and(|p| p == name) {
        return Err(std::io::Error::other(format!("injected failure at {name}")));
    }
    Ok(())
}

/// One file to change: its resolved node path, its content before and after (the same when
/// only its mode or owner changes), and the mode or owner change.
#[derive(Debug, Clone)]
pub struct FileChange {
    pub path: String,
    pub before: std::sync::Arc<str>,
    pub after: std::sync::Arc<str>,
    pub meta: MetaChange,
}

impl FileChange {
    /// Whether the content changes (not only the mode or owner).
    pub fn edits_content(&self) -> bool {
        self.before != self.after
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub backup: String,
    pub sha256_before: String,
    pub sha256_after: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The mode the apply gave the file, when it changed it (a 4.1 control); `backup` is empty
    /// when only the mode or owner changed (the content is checked by digest, not copied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode_after: Option<u32>,
    /// The owner (uid, gid) the apply gave the file, when it changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_after: Option<(u32, u32)>,
}

impl ManifestFile {
    fn original(&self) -> Meta {
        Meta {
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
        }
    }

    /// The mode and owner change the apply made (empty for a content edit alone).
    pub fn change(&self) -> MetaChange {
        let (uid, gid) = self.owner_after.unwrap_or((self.uid, self.gid));
        let after = Meta {
            mode: self.mode_after.unwrap_or(self.mode),
            uid,
            gid,
        };
        MetaChange::between(self.original(), after)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    /// Order of the sets (one more than the highest before): ids made in the same second do
    /// not sort by their pid.
    #[serde(default)]
    pub seq: u64,
    pub tool_version: String,
    pub time: String,
    pub user: u32,
    /// `prepared` (backups written, files maybe changed), `applied`, `rolled-back`.
    pub state: String,
    /// The unit to restart after restoring, and whether a daemon-reload must come first.
    pub unit: String,
    pub daemon_reload: bool,
    pub files: Vec<ManifestFile>,
}

fn apply_err(m: impl Into<String>) -> Error {
    Error::Unsupported(m.into())
}

fn io_err(path: &str, e: std::io::Error) -> Error {
    Error::io(path, e)
}

/// The held lock; released when dropped (or when the process dies). Dropping it also removes
/// the lock file, and the directories taking it made: a run leaves no file behind for the
/// lock (a node's `/run` is a tmpfs anyway, but a copied tree or an image is not).
pub struct Lock {
    file: File,
    dir: Dir,
    name: String,
    made: Vec<(Dir, String)>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Unlinked while still held: a waiter that opened this file sees, once it gets the
        // lock, that the name no longer leads to it, and starts over on a new file (lock()).
        let _ = self.dir.unlink(&self.name);
        // SAFETY: flock on a descriptor we own.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
        for (parent, name) in self.made.iter().rev() {
            // Only while empty: another run may be using it by now.
            let _ = parent.rmdir(name);
        }
    }
}

/// The largest backup or manifest read back (a node's kubelet files are far smaller).
const MAX_STATE_FILE: u64 = 64 << 20;

fn root_dir(fs: &NodeFs) -> Result<Dir> {
    Dir::root(fs.root()).map_err(|e| io_err(&fs.root().display().to_string(), e))
}

/// The directory holding state file `node` (the lock, the log), resolved inside the root and
/// made if missing, and the file's name. The file itself is never followed: a symlink planted
/// as the log would otherwise make every apply append to whatever it names.
fn state_dir(fs: &NodeFs, root: &Dir, node: &str, mode: u32) -> Result<(Dir, String)> {
    let (dir, name) = inroot::split(node).map_err(|e| io_err(node, e))?;
    let resolved = fs.resolve(dir)?;
    let d = root
        .walk(&resolved, Some(mode))
        .map_err(|e| io_err(node, e))?;
    Ok((d, name.to_string()))
}

/// Take the node's lock, waiting at most `timeout`.
pub fn lock(fs: &NodeFs, timeout: Duration) -> Result<Lock> {
    let root = root_dir(fs)?;
    let (parent, name) = inroot::split(LOCK).map_err(|e| io_err(LOCK, e))?;
    let resolved = fs.resolve(parent)?;
    let mut made = Vec::new();
    let walk = |made: &mut Vec<(Dir, String)>| {
        root.walk_noting(&resolved, Some(0o755), made)
            .map_err(|e| io_err(LOCK, e))
    };
    let mut dir = walk(&mut made)?;
    let start = Instant::now();
    loop {
        let file = match dir.open_rw(name, 0o600) {
            Ok(f) => f,
            // The run before us removed the directory it had made, as we opened it: walk
            // (and make it) again.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && start.elapsed() < timeout => {
                dir = walk(&mut made)?;
                continue;
            }
            Err(e) => return Err(io_err(LOCK, e)),
        };
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            // The holder before us removes the file before it unlocks: if the name no longer
            // leads to the file we locked, we hold a lock no one else can see. Start over.
            let meta = file.metadata().map_err(|e| io_err(LOCK, e))?;
            if dir.identity(name).map_err(|e| io_err(LOCK, e))? != Some((meta.dev(), meta.ino())) {
                continue;
            }
            crash_point("locked");
            return Ok(Lock {
                file,
                dir,
                name: name.to_string(),
                made,
            });
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::WouldBlock {
            return Err(io_err(LOCK, e));
        }
        if start.elapsed() >= timeout {
            return Err(apply_err(format!(
                "{LOCK}: another kubelet-remediate apply or rollback holds the lock (waited {} s); try again when it has finished",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// chattr +i / +a (FS_IOC_GETFLAGS); file systems without flags say no.
fn immutable(f: &File) -> bool {
    const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
    const FS_IMMUTABLE_FL: libc::c_long = 0x10;
    const FS_APPEND_FL: libc::c_long = 0x20;
    let mut flags: libc::c_long = 0;
    // SAFETY: the ioctl writes one long through the pointer.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), FS_IOC_GETFLAGS as _, &mut flags) };
    r == 0 && flags & (FS_IMMUTABLE_FL | FS_APPEND_FL) != 0
}

/// Check that file `name` of `dir` (node path `path`, open as `file`) can be replaced by
/// `size` new bytes.
fn check_replaceable(path: &str, dir: &Dir, name: &str, file: &File, size: u64) -> Result<()> {
    let (free, ro) = dir.space().map_err(|e| io_err(path, e))?;
    if ro {
        return Err(apply_err(format!("{path}: read-only file system")));
    }
    let dir_file = dir.as_file().map_err(|e| io_err(path, e))?;
    for (f, what) in [
        (file, path.to_string()),
        (&dir_file, format!("{path} (its directory)")),
    ] {
        if immutable(f) {
            return Err(apply_err(format!(
                "{what}: immutable or append-only (chattr +i/+a): remove the flag first"
            )));
        }
    }
    if !dir.writable(Some(name)) || !dir.writable(None) {
        return Err(apply_err(format!(
            "{path}: permission denied (writing it and its directory needs root)"
        )));
    }
    if free < size + 4096 {
        return Err(apply_err(format!(
            "{path}: not enough space for the new copy ({size} bytes needed, {free} free)"
        )));
    }
    Ok(())
}

/// One file about to be replaced: its directory, held open, and the file as it is now.
struct Target {
    dir: Dir,
    name: String,
    current: File,
}

impl Target {
    /// What the file holds now, read through the descriptor that was checked.
    fn content(&self, path: &str) -> Result<Vec<u8>> {
        let f = self.current.try_clone().map_err(|e| io_err(path, e))?;
        inroot::read_bounded(f, MAX_STATE_FILE, path).map_err(|e| io_err(path, e))
    }
}

/// Open resolved node path `path` for replacement: its parent walked without symlinks, the
/// file itself a regular file.
fn target(root: &Dir, path: &str) -> Result<Target> {
    let (dir, name) = inroot::split(path).map_err(|e| io_err(path, e))?;
    let dir = root.walk(dir, None).map_err(|e| io_err(path, e))?;
    let current = dir.open_read(name).map_err(|e| io_err(path, e))?;
    Ok(Target {
        dir,
        name: name.to_string(),
        current,
    })
}

/// Preflight: every file still holds what was planned and can be replaced, and the backup
/// directory has room. Nothing is written.
fn preflight(
    root: &Dir,
    changes: &[FileChange],
    backups: &Dir,
) -> Result<Vec<(Target, Meta, Meta)>> {
    let mut out = Vec::new();
    let mut backup_bytes = 0u64;
    for c in changes {
        let t = target(root, &c.path)?;
        let meta = Meta::of(&t.current.metadata().map_err(|e| io_err(&c.path, e))?);
        let now = t.content(&c.path)?;
        if now != c.before.as_bytes() {
            return Err(apply_err(format!(
                "{}: changed since it was planned: make a new plan",
                c.path
            )));
        }
        let planned = |why: String| apply_err(format!("{}: {why}", c.path));
        if !c.meta.starts_at(meta).map_err(planned)? {
            return Err(apply_err(format!(
                "{}: its mode or owner changed since it was planned (now {} {}): make a new plan",
                c.path,
                meta.mode_text(),
                meta.owner_text()
            )));
        }
        let to = c.meta.target(meta).map_err(planned)?;
        let size = if c.edits_content() { c.after.len() } else { 0 };
        check_replaceable(&c.path, &t.dir, &t.name, &t.current, size as u64)?;
        if c.edits_content() {
            backup_bytes += c.before.len() as u64 + 4096;
        }
        out.push((t, meta, to));
    }
    let (free, ro) = backups.space().map_err(|e| io_err(&backups.node, e))?;
    if ro {
        return Err(apply_err(format!(
            "{}: the backup directory is on a read-only file system",
            backups.node
        )));
    }
    if free < backup_bytes + 65536 {
        return Err(apply_err(format!(
            "{}: not enough space for the backups ({backup_bytes} bytes needed, {free} free)",
            backups.node
        )));
    }
    Ok(out)
}

/// Copy every extended attribute (SELinux label, ACLs, ...) of the open `from` onto `to`.
fn copy_xattrs(from: &File, to: &File) {
    let (src, dst) = (from.as_raw_fd(), to.as_raw_fd());
    // SAFETY: flistxattr/fgetxattr/fsetxattr on our descriptors with buffers of the sizes
    // they are given.
    unsafe {
        let n = libc::flistxattr(src, std::ptr::null_mut(), 0);
        if n <= 0 {
            return;
        }
        let mut names = vec![0u8; n as usize];
        let n = libc::flistxattr(src, names.as_mut_ptr().cast(), names.len());
        if n <= 0 {
            return;
        }
        for name in names[..n as usize]
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
        {
            let Ok(cname) = CString::new(name) else {
                continue;
            };
            let len = libc::fgetxattr(src, cname.as_ptr(), std::ptr::null_mut(), 0);
            if len < 0 {
                continue;
            }
            let mut val = vec![0u8; len as usize];
            let len = libc::fgetxattr(src, cname.as_ptr(), val.as_mut_ptr().cast(), val.len());
            if len < 0 {
                continue;
            }
            libc::fsetxattr(dst, cname.as_ptr(), val.as_ptr().cast(), len as usize, 0);
        }
    }
}

/// Replace file `name` of `dir` with `content` atomically, keeping mode, owner and the
/// xattrs of `original`. `path` names it in messages, `point` for crash points.
fn write_atomic(
    path: &str,
    dir: &Dir,
    name: &str,
    original: Option<&File>,
    content: &[u8],
    meta: &Meta,
    point: Option<usize>,
) -> Result<()> {
    // Leftovers of a crashed run for this file are ours to remove.
    for n in dir.names().unwrap_or_default() {
        if n.starts_with(&format!(".{name}.")) && n.ends_with(TMP_SUFFIX) {
            let _ = dir.unlink(&n);
        }
    }
    let tmp = format!(".{name}.{}{TMP_SUFFIX}", std::process::id());
    let at = |p: &str| match point {
        Some(i) => fault(&format!("{p}:{i}")),
        None => Ok(()),
    };
    let result = (|| -> std::io::Result<()> {
        let mut f = dir.create_new(&tmp, 0o600)?;
        f.write_all(content)?;
        at("temp-written")?;
        // SAFETY: fchown on our own descriptor.
        if unsafe { libc::fchown(f.as_raw_fd(), meta.uid, meta.gid) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        f.set_permissions(std::fs::Permissions::from_mode(meta.mode))?;
        if let Some(o) = original {
            copy_xattrs(o, &f);
        }
        f.sync_all()?;
        at("temp-synced")?;
        dir.rename(&tmp, name)?;
        at("renamed")?;
        dir.sync()?;
        at("dir-synced")?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = dir.unlink(&tmp);
        return Err(io_err(path, e));
    }
    Ok(())
}

/// Give the open file `f` (node path `path`) owner and mode `to`, through its descriptor: the
/// file checked is the file changed, whatever is swapped into its path meanwhile. The owner
/// first, then the mode: a chown clears setuid and setgid (chown(2)), the chmod sets exactly
/// `to`.
fn set_meta(path: &str, f: &File, to: Meta) -> Result<()> {
    let now = Meta::of(&f.metadata().map_err(|e| io_err(path, e))?);
    let fd = f.as_raw_fd();
    // SAFETY: fchown/fchmod on a descriptor we own.
    if (now.uid, now.gid) != (to.uid, to.gid) && unsafe { libc::fchown(fd, to.uid, to.gid) } != 0 {
        return Err(io_err(path, std::io::Error::last_os_error()));
    }
    // SAFETY: as above.
    if unsafe { libc::fchmod(fd, to.mode as libc::mode_t) } != 0 {
        return Err(io_err(path, std::io::Error::last_os_error()));
    }
    f.sync_all().map_err(|e| io_err(path, e))
}

/// Write a small private file durably (backups, manifests): temp, fsync, rename, fsync the
/// directory.
fn write_private(dir: &Dir, name: &str, content: &[u8]) -> Result<()> {
    let node = format!("{}/{name}", dir.node);
    let tmp = format!("{name}.tmp");
    let r = (|| -> std::io::Result<()> {
        let _ = dir.unlink(&tmp);
        let mut f = dir.create_new(&tmp, 0o600)?;
        f.write_all(content)?;
        f.sync_all()?;
        dir.rename(&tmp, name)?;
        dir.sync()
    })();
    r.map_err(|e| io_err(&node, e))
}

/// Write the pending-restart marker (`state::Pending`), atomically: files changed and the
/// kubelet was not restarted.
pub fn mark_pending(fs: &NodeFs, p: &Pending) -> Result<()> {
    let root = root_dir(fs)?;
    let (dir, name) = state_dir(fs, &root, &state::pending_path(), 0o700)?;
    let text = serde_json::to_string_pretty(p).expect("marker serializes") + "\n";
    write_private(&dir, &name, text.as_bytes())
}

/// Remove the pending-restart marker: a restart was made or seen.
pub fn clear_pending(fs: &NodeFs) -> Result<()> {
    let root = root_dir(fs)?;
    let resolved = fs.resolve(STATE_DIR)?;
    let dir = match root.walk(&resolved, None) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(STATE_DIR, e)),
    };
    match dir.unlink(PENDING_NAME) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io_err(&state::pending_path(), e))
        }
        _ => Ok(()),
    }
}

fn uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// The node's log, opened before anything is written: one that cannot be opened (a
/// directory, a FIFO, a symlink, a read-only mount) aborts with nothing changed.
fn open_log(fs: &NodeFs, root: &Dir) -> Result<File> {
    let (dir, name) = state_dir(fs, root, LOG, 0o755)?;
    dir.open_append(&name, 0o600).map_err(|e| io_err(LOG, e))
}

/// Append one JSON line to the opened log.
fn write_log(mut f: &File, entry: serde_json::Value) -> Result<()> {
    let mut line = entry.to_string();
    line.push('\n');
    f.write_all(line.as_bytes()).map_err(|e| io_err(LOG, e))?;
    fault("log-written").map_err(|e| io_err(LOG, e))?;
    f.sync_all().map_err(|e| io_err(LOG, e))
}

fn log_files(m: &Manifest) -> serde_json::Value {
    serde_json::Value::Array(
        m.files
            .iter()
            .map(|f| {
                let mut line = serde_json::json!({
                    "path": f.path, "sha256_before": f.sha256_before, "sha256_after": f.sha256_after
                });
                // A mode or owner change is in the audit line too, as the record shows it.
                if let (Some(l), serde_json::Value::Object(meta)) =
                    (line.as_object_mut(), serde_json::json!(f.change()))
                {
                    l.extend(meta);
                }
                line
            })
            .collect(),
    )
}

fn write_manifest(set: &Dir, m: &Manifest) -> Result<()> {
    let text = serde_json::to_string_pretty(m).expect("manifest serializes") + "\n";
    write_private(set, "manifest.json", text.as_bytes())
}

/// What an apply did.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub backup_id: String,
    pub backup_dir: String,
    pub files: Vec<String>,
    /// Problems after the commit point (the files are changed): shown, never fatal.
    pub warnings: Vec<String>,
}

/// The backup directory, made if missing (0700).
fn backups(fs: &NodeFs, root: &Dir, backup_dir: &str, create: bool) -> Result<Option<Dir>> {
    let resolved = fs.resolve(backup_dir)?;
    match root.walk(&resolved, create.then_some(0o700)) {
        Ok(d) => Ok(Some(d)),
        Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(backup_dir, e)),
    }
}

/// Back up, write every change atomically, verify, log. The caller holds the lock.
/// `verify` re-reads the node after the writes; if it fails, everything is restored.
pub fn apply(
    fs: &NodeFs,
    changes: &[FileChange],
    (unit, daemon_reload): (&str, bool),
    backup_dir: &str,
    verify: &dyn Fn() -> std::result::Result<(), String>,
) -> Result<Applied> {
    let root = root_dir(fs)?;
    let backups = backups(fs, &root, backup_dir, true)?.expect("created");
    let targets = preflight(&root, changes, &backups)?;
    let log = open_log(fs, &root)?;
    let seq = list(fs, backup_dir)?
        .iter()
        .map(|m| m.seq)
        .max()
        .unwrap_or(0)
        + 1;
    let now = SystemTime::now();
    let stamp = rfc3339(now).replace(['-', ':'], "");
    let mut id = format!("{stamp}-{}", std::process::id());
    let mut n = 1;
    while backups.exists(&id).map_err(|e| io_err(backup_dir, e))? {
        n += 1;
        id = format!("{stamp}-{}-{n}", std::process::id());
    }
    let set_node = format!("{}/{id}", backup_dir.trim_end_matches('/'));
    let set = backups
        .walk_sub(&id, 0o700)
        .map_err(|e| io_err(&set_node, e))?;
    let mut manifest = Manifest {
        id: id.clone(),
        seq,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        time: rfc3339(now),
        user: uid(),
        state: "prepared".into(),
        unit: unit.into(),
        daemon_reload,
        files: Vec::new(),
    };
    for (i, (c, (_, m, to))) in changes.iter().zip(&targets).enumerate() {
        // Only content is copied: a mode or owner change keeps the bytes (no copy of a
        // kubeconfig's credentials is made for a chmod).
        let backup = if c.edits_content() {
            let b = format!("{i}.orig");
            write_private(&set, &b, c.before.as_bytes())?;
            b
        } else {
            String::new()
        };
        manifest.files.push(ManifestFile {
            path: c.path.clone(),
            backup,
            sha256_before: sha256_hex(c.before.as_bytes()),
            sha256_after: sha256_hex(c.after.as_bytes()),
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            mode_after: (to.mode != m.mode).then_some(to.mode),
            owner_after: ((to.uid, to.gid) != (m.uid, m.gid)).then_some((to.uid, to.gid)),
        });
    }
    crash_point("backup-copied");
    write_manifest(&set, &manifest)?;
    backups.sync().map_err(|e| io_err(backup_dir, e))?;
    crash_point("manifest-written");

    let mut failure = None;
    for (i, (c, (t, _, to))) in changes.iter().zip(&targets).enumerate() {
        let r = if c.edits_content() {
            write_atomic(
                &c.path,
                &t.dir,
                &t.name,
                Some(&t.current),
                c.after.as_bytes(),
                to,
                Some(i),
            )
        } else {
            set_meta(&c.path, &t.current, *to)
                .and_then(|()| fault(&format!("meta-set:{i}")).map_err(|e| io_err(&c.path, e)))
        };
        if let Err(e) = r {
            failure = Some(e.to_string());
            break;
        }
    }
    crash_point("all-written");
    if failure.is_none()
        && let Err(why) = verify()
    {
        failure = Some(format!("the node does not verify after the writes: {why}"));
    }
    if let Some(why) = failure {
        // Restore by content, not by what the writes reported: a write can fail after its
        // rename (the directory fsync), leaving the new content in place.
        let mut restore_errors = Vec::new();
        for (c, (t, m, _)) in changes.iter().zip(&targets) {
            let r = if t
                .dir
                .read(&t.name, MAX_STATE_FILE)
                .is_ok_and(|now| now == c.before.as_bytes())
            {
                // The content is the original; the mode and owner go back too.
                restore_meta(&c.path, t, *m)
            } else {
                write_atomic(
                    &c.path,
                    &t.dir,
                    &t.name,
                    Some(&t.current),
                    c.before.as_bytes(),
                    m,
                    None,
                )
            };
            if let Err(e) = r {
                restore_errors.push(e.to_string());
            }
        }
        manifest.state = if restore_errors.is_empty() {
            "rolled-back"
        } else {
            "prepared"
        }
        .into();
        let _ = write_manifest(&set, &manifest);
        let _ = write_log(
            &log,
            serde_json::json!({"time": rfc3339(SystemTime::now()), "user": uid(), "action": "apply",
                "backup_id": id, "files": log_files(&manifest), "result": format!("failed: {why}")}),
        );
        return Err(apply_err(if restore_errors.is_empty() {
            format!("{why}; every file was restored")
        } else {
            format!(
                "{why}; restoring failed too ({}): run kubelet-remediate rollback {id}",
                restore_errors.join("; ")
            )
        }));
    }
    // The commit point: the files are written and verified. What fails from here on is a
    // warning; the next run sees the manifest state and the files as they are.
    let mut warnings = Vec::new();
    manifest.state = "applied".into();
    if let Err(e) = write_manifest(&set, &manifest) {
        warnings.push(format!(
            "the files are changed, but the manifest could not be marked applied ({e}); the next run rolls this set back and plans again"
        ));
    }
    crash_point("manifest-applied");
    if let Err(e) = write_log(
        &log,
        serde_json::json!({"time": rfc3339(SystemTime::now()), "user": uid(), "action": "apply",
            "backup_id": id, "files": log_files(&manifest), "result": "applied"}),
    ) {
        warnings.push(format!(
            "the files are changed, but the log line was not written: {e}"
        ));
    }
    crash_point("logged");
    Ok(Applied {
        backup_id: id,
        backup_dir: set_node,
        files: changes.iter().map(|c| c.path.clone()).collect(),
        warnings,
    })
}

/// Put mode and owner `m` back on the file the target's name leads to now, if it differs.
fn restore_meta(path: &str, t: &Target, m: Meta) -> Result<()> {
    let f = t.dir.open_read(&t.name).map_err(|e| io_err(path, e))?;
    let now = Meta::of(&f.metadata().map_err(|e| io_err(path, e))?);
    if now == m {
        return Ok(());
    }
    set_meta(path, &f, m)
}

/// A manifest read back is untrusted input: everything it names must be a plain name, a
/// resolved absolute node path, a digest or a plain mode before anything is read through it.
fn validate(m: &Manifest, id: &str, mpath: &str) -> Result<()> {
    let bad = |what: String| {
        Err(apply_err(format!(
            "{mpath}: {what}: the manifest does not validate, so nothing is restored from it"
        )))
    };
    if m.id != id {
        return bad(format!(
            "its id {:?} is not its directory's name {id:?}",
            m.id
        ));
    }
    let hex = |h: &str| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    for f in &m.files {
        if inroot::split(&f.path).is_err()
            || f.path.split('/').any(|c| c == "." || c == "..")
            || f.path.contains("//")
        {
            return bad(format!("path {:?} is not a resolved absolute path", f.path));
        }
        let numbered = f
            .backup
            .strip_suffix(".orig")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        // No backup only where the content did not change (a mode or owner change).
        let metadata_only = f.backup.is_empty() && f.sha256_before == f.sha256_after;
        if !numbered && !metadata_only {
            return bad(format!(
                "backup {:?} is not a backup file name (N.orig)",
                f.backup
            ));
        }
        if !hex(&f.sha256_before) || !hex(&f.sha256_after) {
            return bad(format!(
                "{}: a sha256 is not 64 lowercase hex digits",
                f.path
            ));
        }
        if f.mode & !0o7777 != 0 || f.mode_after.is_some_and(|m| m & !0o7777 != 0) {
            return bad(format!("{}: mode {:o} is not a file mode", f.path, f.mode));
        }
    }
    Ok(())
}

/// Read and validate set `id` of the open backup directory.
fn read_set(backups: &Dir, backup_dir: &str, id: &str) -> Result<(Dir, Manifest)> {
    let set_node = format!("{}/{id}", backup_dir.trim_end_matches('/'));
    inroot::check_name(id).map_err(|e| io_err(&set_node, e))?;
    let set = backups.sub(id).map_err(|e| io_err(&set_node, e))?;
    let mpath = format!("{set_node}/manifest.json");
    let bytes = set
        .read("manifest.json", MAX_STATE_FILE)
        .map_err(|e| io_err(&mpath, e))?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::parse(&mpath, e.line(), e.column(), e.to_string()))?;
    validate(&m, id, &mpath)?;
    Ok((set, m))
}

/// Every backup set, oldest first (by sequence, then time). Entries that are not directories
/// of their own (a symlink, a file) are not sets and are skipped.
pub fn list(fs: &NodeFs, backup_dir: &str) -> Result<Vec<Manifest>> {
    let root = root_dir(fs)?;
    let Some(backups) = backups(fs, &root, backup_dir, false)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for name in backups.names().map_err(|e| io_err(backup_dir, e))? {
        let Ok(set) = backups.sub(&name) else {
            continue;
        };
        if !set.exists("manifest.json").unwrap_or(false) {
            continue;
        }
        out.push(read_set(&backups, backup_dir, &name)?.1);
    }
    out.sort_by(|a, b| (a.seq, &a.time, &a.id).cmp(&(b.seq, &b.time, &b.id)));
    Ok(out)
}

/// What a rollback did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub backup_id: String,
    pub unit: String,
    pub daemon_reload: bool,
    pub restored: Vec<String>,
    /// Files already holding their original content.
    pub unchanged: Vec<String>,
    pub warnings: Vec<String>,
}

/// Restore the files of one apply byte for byte. The caller holds the lock. A file changed
/// after that apply (neither its old nor its new content) is refused unless `force`; a path
/// that no longer resolves to a real directory inside the root, a backup that is not a
/// regular file of the set, or an owner or setuid/setgid bit that does not match the file are
/// refused even with `force`.
pub fn rollback(fs: &NodeFs, backup_dir: &str, id: &str, force: bool) -> Result<Restored> {
    restore_set(fs, backup_dir, id, force, "rolled-back")
}

/// [`rollback`], marking the set `state` when done.
fn restore_set(
    fs: &NodeFs,
    backup_dir: &str,
    id: &str,
    force: bool,
    state: &str,
) -> Result<Restored> {
    let root = root_dir(fs)?;
    let Some(backups) = backups(fs, &root, backup_dir, false)? else {
        return Err(apply_err(format!("{backup_dir}: no backups")));
    };
    let (set, mut manifest) = read_set(&backups, backup_dir, id)?;
    let set_node = format!("{}/{id}", backup_dir.trim_end_matches('/'));
    let log = open_log(fs, &root)?;
    let mut todo = Vec::new();
    let mut unchanged = Vec::new();
    let mut warnings = Vec::new();
    for f in &manifest.files {
        let original = if f.backup.is_empty() {
            None
        } else {
            let bytes = set
                .read(&f.backup, MAX_STATE_FILE)
                .map_err(|e| io_err(&format!("{set_node}/{}", f.backup), e))?;
            if sha256_hex(&bytes) != f.sha256_before {
                return Err(apply_err(format!(
                    "{set_node}/{}: the backup is corrupt (sha256 mismatch)",
                    f.backup
                )));
            }
            Some(bytes)
        };
        let t = target(&root, &f.path)?;
        let meta = Meta::of(&t.current.metadata().map_err(|e| io_err(&f.path, e))?);
        let owner_now = (meta.uid, meta.gid);
        // The owner is the one before the apply, or the one the apply gave it.
        if owner_now != (f.uid, f.gid) && Some(owner_now) != f.owner_after {
            return Err(apply_err(format!(
                "{}: owned by {}:{} now, but the manifest records {}:{}: refused",
                f.path, meta.uid, meta.gid, f.uid, f.gid
            )));
        }
        // setuid/setgid come back only onto exactly the mode this apply left.
        let special = f.mode & 0o6000;
        if special & !(meta.mode & 0o6000) != 0 && f.mode_after != Some(meta.mode) {
            return Err(apply_err(format!(
                "{}: the manifest would add setuid/setgid bits ({:o}) the file does not have: refused",
                f.path, f.mode
            )));
        }
        let now_sha = sha256_hex(&t.content(&f.path)?);
        let content_original = now_sha == f.sha256_before;
        if !content_original && now_sha != f.sha256_after && !force {
            return Err(apply_err(format!(
                "{}: changed after apply {id} (it holds neither the content before nor the content after it); pass --force to restore it anyway",
                f.path
            )));
        }
        // A mode or owner this apply set is put back; one changed since is refused (unless
        // forced) like content.
        let meta_ours = f
            .mode_after
            .is_none_or(|m| m == meta.mode || meta.mode == f.mode)
            && f.owner_after
                .is_none_or(|o| o == owner_now || owner_now == (f.uid, f.gid));
        if !meta_ours && !force {
            return Err(apply_err(format!(
                "{}: its mode or owner changed after apply {id} (now {} {}); pass --force to restore it anyway",
                f.path,
                meta.mode_text(),
                meta.owner_text()
            )));
        }
        let meta_back = !f.change().is_empty() && meta != f.original();
        let content_back = !content_original && original.is_some();
        if !content_original && original.is_none() {
            warnings.push(format!(
                "{}: its content changed after apply {id}, which changed only its mode or owner: those are restored, the content is left as it is",
                f.path
            ));
        }
        if !content_back && !meta_back {
            if content_original {
                unchanged.push(f.path.clone());
            }
            continue;
        }
        if content_back {
            let size = original.as_ref().map_or(0, |o| o.len());
            check_replaceable(&f.path, &t.dir, &t.name, &t.current, size as u64)?;
        }
        todo.push((f.clone(), t, original.filter(|_| content_back)));
    }
    let mut restored = Vec::new();
    for (f, t, original) in &todo {
        match original {
            Some(bytes) => write_atomic(
                &f.path,
                &t.dir,
                &t.name,
                Some(&t.current),
                bytes,
                &f.original(),
                None,
            )?,
            None => set_meta(&f.path, &t.current, f.original())?,
        }
        restored.push(f.path.clone());
    }
    manifest.state = state.into();
    if let Err(e) = write_manifest(&set, &manifest) {
        warnings.push(format!(
            "the files are restored, but the manifest could not be updated: {e}"
        ));
    }
    if let Err(e) = write_log(
        &log,
        serde_json::json!({"time": rfc3339(SystemTime::now()), "user": uid(), "action": "rollback",
            "backup_id": id, "files": log_files(&manifest), "result": "restored", "forced": force}),
    ) {
        warnings.push(format!(
            "the files are restored, but the log line was not written: {e}"
        ));
    }
    Ok(Restored {
        backup_id: id.into(),
        unit: manifest.unit.clone(),
        daemon_reload: manifest.daemon_reload,
        restored,
        unchanged,
        warnings,
    })
}

/// Finish what a killed run left: every set still `prepared` (backups written, files maybe
/// changed, never verified) is rolled back by content (a file holding the new content gets
/// its backup back; one holding the old content is left; one holding anything else is left
/// and reported) and marked `interrupted`. Called under the lock before planning, so the
/// next apply starts from the original files and one `rollback --last` after it restores
/// them. Returns what it did, for the report.
pub fn recover(fs: &NodeFs, backup_dir: &str) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for m in list(fs, backup_dir)?
        .into_iter()
        .filter(|m| m.state == "prepared")
    {
        let r = restore_set(fs, backup_dir, &m.id, false, "interrupted").map_err(|e| {
            apply_err(format!(
                "backup set {} was left unfinished by an interrupted run and cannot be rolled back ({e}); resolve it with kubelet-remediate rollback {} [--force] first",
                m.id, m.id
            ))
        })?;
        notes.push(format!(
            "backup set {} was left unfinished by an interrupted run: rolled back ({} restored, {} already original) before planning",
            m.id,
            r.restored.len(),
            r.unchanged.len()
        ));
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_points_cover_every_step_of_every_file() {
        let p = crash_points(2);
        assert_eq!(p.len(), 3 + 2 * 4 + 3);
        assert!(p.contains(&"renamed:1".to_string()));
    }
}
