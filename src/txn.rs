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
//! 6. One JSON line per apply and rollback in `/var/log/kubelet-remediate.log`.
//!
//! Debug builds (tests) can abort at any step through `KUBELET_REMEDIATE_CRASH_AT=<point>`;
//! release builds compile the hook out.

use crate::error::{Error, Result};
use crate::root::NodeFs;
use crate::saved::sha256_hex;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// One file to replace: its resolved node path, and its content before and after.
#[derive(Debug, Clone)]
pub struct FileChange {
    pub path: String,
    pub before: String,
    pub after: String,
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
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

/// The held lock; released when dropped (or when the process dies).
pub struct Lock {
    _file: File,
}

/// Take the node's lock, waiting at most `timeout`.
pub fn lock(fs: &NodeFs, timeout: Duration) -> Result<Lock> {
    let host = host_for(fs, LOCK)?;
    mkdirs(&host, LOCK, 0o755)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&host)
        .map_err(|e| io_err(LOCK, e))?;
    let start = Instant::now();
    loop {
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            crash_point("locked");
            return Ok(Lock { _file: file });
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

/// The host path for a node path, resolved inside the root (the file may not exist yet).
fn host_for(fs: &NodeFs, node: &str) -> Result<PathBuf> {
    Ok(fs.host_path(&fs.resolve(node)?))
}

fn mkdirs(file: &Path, name: &str, mode: u32) -> Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .map_err(|e| io_err(name, e))?;
    }
    Ok(())
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("paths have no NUL")
}

/// Free bytes and whether the file system holding `p` (or its nearest existing ancestor) is
/// mounted read-only.
fn fs_state(p: &Path) -> std::io::Result<(u64, bool)> {
    let mut at = p;
    while !at.exists() {
        at = at.parent().unwrap_or(Path::new("/"));
    }
    // SAFETY: statvfs fills the struct for a valid C path.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(cstr(at).as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((
        s.f_bavail as u64 * s.f_frsize as u64,
        s.f_flag & libc::ST_RDONLY != 0,
    ))
}

/// chattr +i / +a (FS_IOC_GETFLAGS); file systems without flags say no.
fn immutable(p: &Path) -> bool {
    const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
    const FS_IMMUTABLE_FL: libc::c_long = 0x10;
    const FS_APPEND_FL: libc::c_long = 0x20;
    let Ok(f) = File::open(p) else { return false };
    let mut flags: libc::c_long = 0;
    // SAFETY: the ioctl writes one long through the pointer.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), FS_IOC_GETFLAGS as _, &mut flags) };
    r == 0 && flags & (FS_IMMUTABLE_FL | FS_APPEND_FL) != 0
}

fn writable(p: &Path) -> bool {
    // SAFETY: access on a valid C path.
    unsafe { libc::access(cstr(p).as_ptr(), libc::W_OK) == 0 }
}

/// Check that `path` (host `host`) can be replaced by `size` new bytes.
fn check_replaceable(path: &str, host: &Path, size: u64) -> Result<()> {
    let dir = host.parent().unwrap_or(Path::new("/"));
    let (free, ro) = fs_state(dir).map_err(|e| io_err(path, e))?;
    if ro {
        return Err(apply_err(format!("{path}: read-only file system")));
    }
    for p in [host, dir] {
        if immutable(p) {
            return Err(apply_err(format!(
                "{}: immutable or append-only (chattr +i/+a): remove the flag first",
                if p == host {
                    path.to_string()
                } else {
                    format!("{path} (its directory)")
                }
            )));
        }
    }
    if !writable(host) || !writable(dir) {
        return Err(apply_err(format!(
            "{path}: permission denied (run as root)"
        )));
    }
    if free < size + 4096 {
        return Err(apply_err(format!(
            "{path}: not enough space for the new copy ({size} bytes needed, {free} free)"
        )));
    }
    Ok(())
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
}

/// Preflight: every file still holds what was planned and can be replaced, and the backup
/// directory has room. Nothing is written.
fn preflight(fs: &NodeFs, changes: &[FileChange], backup_root: &Path) -> Result<Vec<Meta>> {
    let mut metas = Vec::new();
    let mut backup_bytes = 0u64;
    for c in changes {
        let host = fs.host_path(&c.path);
        let meta = std::fs::symlink_metadata(&host).map_err(|e| io_err(&c.path, e))?;
        if !meta.is_file() {
            return Err(apply_err(format!("{}: not a regular file", c.path)));
        }
        let now = std::fs::read(&host).map_err(|e| io_err(&c.path, e))?;
        if now != c.before.as_bytes() {
            return Err(apply_err(format!(
                "{}: changed since it was planned: make a new plan",
                c.path
            )));
        }
        check_replaceable(&c.path, &host, c.after.len() as u64)?;
        backup_bytes += c.before.len() as u64 + 4096;
        metas.push(Meta {
            mode: meta.permissions().mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        });
    }
    let (free, ro) =
        fs_state(backup_root).map_err(|e| io_err(&backup_root.display().to_string(), e))?;
    if ro {
        return Err(apply_err(format!(
            "{}: the backup directory is on a read-only file system",
            backup_root.display()
        )));
    }
    if free < backup_bytes + 65536 {
        return Err(apply_err(format!(
            "{}: not enough space for the backups ({backup_bytes} bytes needed, {free} free)",
            backup_root.display()
        )));
    }
    Ok(metas)
}

/// Copy every extended attribute (SELinux label, ACLs, ...) of `from` onto the open `to`.
fn copy_xattrs(from: &Path, to: &File) {
    let c = cstr(from);
    // SAFETY: listxattr/getxattr/fsetxattr with buffers of the sizes they are given.
    unsafe {
        let n = libc::listxattr(c.as_ptr(), std::ptr::null_mut(), 0);
        if n <= 0 {
            return;
        }
        let mut names = vec![0u8; n as usize];
        let n = libc::listxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len());
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
            let len = libc::getxattr(c.as_ptr(), cname.as_ptr(), std::ptr::null_mut(), 0);
            if len < 0 {
                continue;
            }
            let mut val = vec![0u8; len as usize];
            let len = libc::getxattr(
                c.as_ptr(),
                cname.as_ptr(),
                val.as_mut_ptr().cast(),
                val.len(),
            );
            if len < 0 {
                continue;
            }
            libc::fsetxattr(
                to.as_raw_fd(),
                cname.as_ptr(),
                val.as_ptr().cast(),
                len as usize,
                0,
            );
        }
    }
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replace `host` with `content` atomically, keeping mode, owner and xattrs. `point` names
/// the file for crash points.
fn write_atomic(
    name: &str,
    host: &Path,
    content: &[u8],
    meta: &Meta,
    point: Option<usize>,
) -> Result<()> {
    let dir = host.parent().unwrap_or(Path::new("/"));
    let base = host
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Leftovers of a crashed run for this file are ours to remove.
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&format!(".{base}.")) && n.ends_with(TMP_SUFFIX) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let tmp = dir.join(format!(".{base}.{}{TMP_SUFFIX}", std::process::id()));
    let at = |p: &str| match point {
        Some(i) => fault(&format!("{p}:{i}")),
        None => Ok(()),
    };
    let result = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(content)?;
        at("temp-written")?;
        // SAFETY: fchown on our own descriptor.
        if unsafe { libc::fchown(f.as_raw_fd(), meta.uid, meta.gid) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        f.set_permissions(std::fs::Permissions::from_mode(meta.mode))?;
        copy_xattrs(host, &f);
        f.sync_all()?;
        at("temp-synced")?;
        std::fs::rename(&tmp, host)?;
        at("renamed")?;
        fsync_dir(dir)?;
        at("dir-synced")?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(name, e));
    }
    Ok(())
}

/// Write a small file durably (backups, manifests): temp, fsync, rename, fsync the directory.
fn write_private(path: &Path, content: &[u8]) -> Result<()> {
    let name = path.display().to_string();
    let tmp = path.with_extension("tmp");
    let r = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        fsync_dir(path.parent().unwrap_or(Path::new("/")))
    })();
    r.map_err(|e| io_err(&name, e))
}

/// Seconds since the epoch as RFC 3339 UTC (Howard Hinnant's civil-from-days).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// Append one JSON line to the node's log.
fn log(fs: &NodeFs, entry: serde_json::Value) -> Result<()> {
    let host = host_for(fs, LOG)?;
    mkdirs(&host, LOG, 0o755)?;
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&host)
        .map_err(|e| io_err(LOG, e))?;
    let mut line = entry.to_string();
    line.push('\n');
    f.write_all(line.as_bytes()).map_err(|e| io_err(LOG, e))?;
    f.sync_all().map_err(|e| io_err(LOG, e))
}

fn log_files(m: &Manifest) -> serde_json::Value {
    serde_json::Value::Array(
        m.files
            .iter()
            .map(|f| {
                serde_json::json!({
                    "path": f.path, "sha256_before": f.sha256_before, "sha256_after": f.sha256_after
                })
            })
            .collect(),
    )
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let text = serde_json::to_string_pretty(m).expect("manifest serializes") + "\n";
    write_private(&dir.join("manifest.json"), text.as_bytes())
}

/// What an apply did.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub backup_id: String,
    pub backup_dir: String,
    pub files: Vec<String>,
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
    let backup_root = host_for(fs, backup_dir)?;
    let metas = preflight(fs, changes, &backup_root)?;
    let now = SystemTime::now();
    let stamp = rfc3339(now).replace(['-', ':'], "");
    let mut id = format!("{stamp}-{}", std::process::id());
    let mut n = 1;
    while backup_root.join(&id).exists() {
        n += 1;
        id = format!("{stamp}-{}-{n}", std::process::id());
    }
    let set = backup_root.join(&id);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&set)
        .map_err(|e| io_err(&format!("{backup_dir}/{id}"), e))?;
    std::fs::set_permissions(&set, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io_err(&format!("{backup_dir}/{id}"), e))?;
    let mut manifest = Manifest {
        id: id.clone(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        time: rfc3339(now),
        user: uid(),
        state: "prepared".into(),
        unit: unit.into(),
        daemon_reload,
        files: Vec::new(),
    };
    for (i, (c, m)) in changes.iter().zip(&metas).enumerate() {
        let backup = format!("{i}.orig");
        write_private(&set.join(&backup), c.before.as_bytes())?;
        manifest.files.push(ManifestFile {
            path: c.path.clone(),
            backup,
            sha256_before: sha256_hex(c.before.as_bytes()),
            sha256_after: sha256_hex(c.after.as_bytes()),
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
        });
    }
    crash_point("backup-copied");
    write_manifest(&set, &manifest)?;
    fsync_dir(&backup_root).map_err(|e| io_err(backup_dir, e))?;
    crash_point("manifest-written");

    let mut failure = None;
    for (i, (c, m)) in changes.iter().zip(&metas).enumerate() {
        let host = fs.host_path(&c.path);
        if let Err(e) = write_atomic(&c.path, &host, c.after.as_bytes(), m, Some(i)) {
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
        for (c, m) in changes.iter().zip(&metas) {
            let host = fs.host_path(&c.path);
            if std::fs::read(&host).is_ok_and(|now| now == c.before.as_bytes()) {
                continue;
            }
            if let Err(e) = write_atomic(&c.path, &host, c.before.as_bytes(), m, None) {
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
        let _ = log(
            fs,
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
    manifest.state = "applied".into();
    write_manifest(&set, &manifest)?;
    crash_point("manifest-applied");
    log(
        fs,
        serde_json::json!({"time": rfc3339(SystemTime::now()), "user": uid(), "action": "apply",
            "backup_id": id, "files": log_files(&manifest), "result": "applied"}),
    )?;
    crash_point("logged");
    Ok(Applied {
        backup_id: id,
        backup_dir: format!("{}/{}", backup_dir.trim_end_matches('/'), manifest.id),
        files: changes.iter().map(|c| c.path.clone()).collect(),
    })
}

/// Every backup set, oldest first.
pub fn list(fs: &NodeFs, backup_dir: &str) -> Result<Vec<Manifest>> {
    let root = host_for(fs, backup_dir)?;
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(&root) else {
        return Ok(out);
    };
    for e in rd.flatten() {
        let p = e.path().join("manifest.json");
        if let Ok(text) = std::fs::read_to_string(&p) {
            let m: Manifest = serde_json::from_str(&text).map_err(|err| {
                Error::parse(
                    &format!(
                        "{backup_dir}/{}/manifest.json",
                        e.file_name().to_string_lossy()
                    ),
                    err.line(),
                    err.column(),
                    err.to_string(),
                )
            })?;
            out.push(m);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
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
}

/// Restore the files of one apply byte for byte. The caller holds the lock. A file changed
/// after that apply (neither its old nor its new content) is refused unless `force`.
pub fn rollback(fs: &NodeFs, backup_dir: &str, id: &str, force: bool) -> Result<Restored> {
    let set = host_for(fs, backup_dir)?.join(id);
    let mpath = format!("{backup_dir}/{id}/manifest.json");
    let text = std::fs::read_to_string(set.join("manifest.json")).map_err(|e| io_err(&mpath, e))?;
    let mut manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| Error::parse(&mpath, e.line(), e.column(), e.to_string()))?;
    let mut todo = Vec::new();
    let mut unchanged = Vec::new();
    for f in &manifest.files {
        let host = fs.host_path(&f.path);
        let original = std::fs::read(set.join(&f.backup))
            .map_err(|e| io_err(&format!("{backup_dir}/{id}/{}", f.backup), e))?;
        if sha256_hex(&original) != f.sha256_before {
            return Err(apply_err(format!(
                "{backup_dir}/{id}/{}: the backup is corrupt (sha256 mismatch)",
                f.backup
            )));
        }
        let now = std::fs::read(&host).ok();
        let now_sha = now.as_deref().map(sha256_hex);
        if now_sha.as_deref() == Some(f.sha256_before.as_str()) {
            unchanged.push(f.path.clone());
            continue;
        }
        if now_sha.as_deref() != Some(f.sha256_after.as_str()) && !force {
            return Err(apply_err(format!(
                "{}: changed after apply {id} (it holds neither the content before nor the content after it); pass --force to restore it anyway",
                f.path
            )));
        }
        check_replaceable(&f.path, &host, original.len() as u64)?;
        todo.push((f.clone(), host, original));
    }
    let mut restored = Vec::new();
    for (f, host, original) in &todo {
        let meta = Meta {
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
        };
        write_atomic(&f.path, host, original, &meta, None)?;
        restored.push(f.path.clone());
    }
    manifest.state = "rolled-back".into();
    write_manifest(&set, &manifest)?;
    log(
        fs,
        serde_json::json!({"time": rfc3339(SystemTime::now()), "user": uid(), "action": "rollback",
            "backup_id": id, "files": log_files(&manifest), "result": "restored", "forced": force}),
    )?;
    Ok(Restored {
        backup_id: id.into(),
        unit: manifest.unit.clone(),
        daemon_reload: manifest.daemon_reload,
        restored,
        unchanged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_000_000)),
            "2026-11-18T11:06:40Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn crash_points_cover_every_step_of_every_file() {
        let p = crash_points(2);
        assert_eq!(p.len(), 3 + 2 * 4 + 3);
        assert!(p.contains(&"renamed:1".to_string()));
    }
}
