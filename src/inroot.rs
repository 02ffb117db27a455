//! Files inside `--root`, opened relative to directory descriptors so a write can never leave it.
//!
//! Every path given here is a node path already resolved by [`crate::root::NodeFs`] (no
//! symlinks, no `..`). It is walked again from a descriptor of the root, one component at a
//! time with `O_NOFOLLOW | O_DIRECTORY`, and the file is then opened, created, renamed or
//! removed relative to its directory's descriptor: a component swapped for a symlink (or a
//! FIFO, a device) between the plan and the write is refused instead of followed. Plain
//! `openat` walks work on every kernel a node runs (openat2's RESOLVE_* needs Linux 5.6; EKS
//! Amazon Linux 2 ships older ones). Opens use `O_NONBLOCK` and check the descriptor with
//! `fstat`, so a FIFO swapped in can never block, and reads are bounded.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// A directory inside the root, held open.
pub struct Dir {
    fd: OwnedFd,
    /// Its node path, for messages.
    pub node: String,
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a path"))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The components of a node path, refusing `.`, `..` and empty names (paths here are
/// resolved, so either would be an attempt to walk somewhere else).
fn components(node: &str) -> io::Result<Vec<&str>> {
    if !node.starts_with('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{node}: not an absolute path"),
        ));
    }
    let comps: Vec<&str> = node.split('/').filter(|c| !c.is_empty()).collect();
    if comps.iter().any(|c| *c == "." || *c == "..") || node.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{node}: '.' or '..' (or a NUL) in a path that must be resolved"),
        ));
    }
    Ok(comps)
}

/// A name inside one directory: no '/', not '.' or '..', no NUL.
pub fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?}: not a plain file name"),
        ));
    }
    Ok(())
}

impl Dir {
    /// The root itself (`--root`, which may be a symlink the operator named: it is followed).
    pub fn root(root: &Path) -> io::Result<Dir> {
        Ok(Dir {
            fd: open_host(root, libc::O_RDONLY | libc::O_DIRECTORY)?,
            node: "/".into(),
        })
    }

    /// `openat(name)` relative to this directory with `O_NOFOLLOW | O_CLOEXEC` added: a
    /// symlink in the last place is refused, and the error names the node path.
    fn open_at(&self, name: &str, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
        check_name(name)?;
        let c = cstr(name)?;
        // SAFETY: openat relative to a directory descriptor we own.
        let fd = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        })
        .map_err(|e| self.explain(name, e))?;
        // SAFETY: fd was just opened and is owned by no one else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// `mkdir(name)` here; one that already exists is fine.
    fn make_dir(&self, name: &str, mode: u32) -> io::Result<()> {
        check_name(name)?;
        let c = cstr(name)?;
        // SAFETY: mkdirat relative to a directory descriptor we own.
        if unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), mode) } != 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(self.explain(name, e));
            }
        }
        Ok(())
    }

    /// `name` inside this directory, as a directory, never through a symlink.
    pub fn sub(&self, name: &str) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.open_at(name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?,
            node: self.join(name),
        })
    }

    /// The directory at resolved node path `node`, walked from this root; with `create`, missing
    /// components are made with `mode`.
    pub fn walk(&self, node: &str, create: Option<u32>) -> io::Result<Dir> {
        self.walk_noting(node, create, &mut Vec::new())
    }

    /// `walk`, pushing each directory it made (its parent, held open, and its name) in the
    /// order made, so a caller can take them away again.
    pub fn walk_noting(
        &self,
        node: &str,
        create: Option<u32>,
        made: &mut Vec<(Dir, String)>,
    ) -> io::Result<Dir> {
        let mut d = Dir {
            // SAFETY: dup of a descriptor we own.
            fd: unsafe {
                OwnedFd::from_raw_fd(check(libc::fcntl(
                    self.fd.as_raw_fd(),
                    libc::F_DUPFD_CLOEXEC,
                    0,
                ))?)
            },
            node: "/".into(),
        };
        for c in components(node)? {
            d = match (d.sub(c), create) {
                (Ok(sub), _) => sub,
                (Err(e), Some(mode)) if e.kind() == io::ErrorKind::NotFound => {
                    d.make_dir(c, mode)?;
                    let sub = d.sub(c)?;
                    made.push((d, c.to_string()));
                    sub
                }
                (Err(e), _) => return Err(e),
            };
        }
        Ok(d)
    }

    /// A new subdirectory `name` (made with `mode`, or taken if it exists), opened.
    pub fn walk_sub(&self, name: &str, mode: u32) -> io::Result<Dir> {
        self.make_dir(name, mode)?;
        let d = self.sub(name)?;
        // SAFETY: fchmod on a descriptor we own (mkdir's mode is masked by the umask).
        check(unsafe { libc::fchmod(d.fd.as_raw_fd(), mode) })?;
        Ok(d)
    }

    fn join(&self, name: &str) -> String {
        format!("{}/{name}", self.node.trim_end_matches('/'))
    }

    /// Say which node path failed, and what a symlink in the way means.
    fn explain(&self, name: &str, e: io::Error) -> io::Error {
        let at = self.join(name);
        match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => io::Error::new(
                e.kind(),
                format!(
                    "{at}: a symlink or not a directory where a directory was resolved: refused (it may have been swapped since)"
                ),
            ),
            Some(libc::ENXIO) => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{at}: not a regular file (a FIFO or a device): refused"),
            ),
            _ => io::Error::new(e.kind(), format!("{at}: {e}")),
        }
    }

    fn openat(&self, name: &str, flags: libc::c_int, mode: u32) -> io::Result<File> {
        let f = File::from(self.open_at(name, flags | libc::O_NONBLOCK, mode)?);
        let meta = f.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a regular file: refused", self.join(name)),
            ));
        }
        // Blocking again for the writes and reads that follow (a regular file never blocks).
        // SAFETY: fcntl on our own descriptor.
        unsafe {
            let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
        Ok(f)
    }

    /// An existing regular file, for reading.
    pub fn open_read(&self, name: &str) -> io::Result<File> {
        self.openat(name, libc::O_RDONLY, 0)
    }

    /// Read a regular file whole, refusing one larger than `max` bytes.
    pub fn read(&self, name: &str, max: u64) -> io::Result<Vec<u8>> {
        read_bounded(self.open_read(name)?, max, &self.join(name))
    }

    /// A new file that must not exist yet.
    pub fn create_new(&self, name: &str, mode: u32) -> io::Result<File> {
        self.openat(name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, mode)
    }

    /// A regular file opened for appending (created if missing).
    pub fn open_append(&self, name: &str, mode: u32) -> io::Result<File> {
        self.openat(name, libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT, mode)
    }

    /// A regular file opened read-write (created if missing), e.g. a lock.
    pub fn open_rw(&self, name: &str, mode: u32) -> io::Result<File> {
        self.openat(name, libc::O_RDWR | libc::O_CREAT, mode)
    }

    /// Whether `name` exists here (without following it).
    pub fn exists(&self, name: &str) -> io::Result<bool> {
        self.identity(name).map(|id| id.is_some())
    }

    /// `rename(from, to)` inside this directory: `to` is replaced whatever it is (a symlink
    /// swapped in is replaced, never followed).
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        check_name(from)?;
        check_name(to)?;
        let (f, t) = (cstr(from)?, cstr(to)?);
        let fd = self.fd.as_raw_fd();
        // SAFETY: renameat between names of one directory descriptor we own.
        check(unsafe { libc::renameat(fd, f.as_ptr(), fd, t.as_ptr()) })
            .map(|_| ())
            .map_err(|e| self.explain(to, e))
    }

    /// The (device, inode) that `name` names here now, not following it; `None` when missing.
    pub fn identity(&self, name: &str) -> io::Result<Option<(u64, u64)>> {
        check_name(name)?;
        let c = cstr(name)?;
        // SAFETY: fstatat into a zeroed stat we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r == 0 {
            return Ok(Some((st.st_dev, st.st_ino)));
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::NotFound {
            Ok(None)
        } else {
            Err(self.explain(name, e))
        }
    }

    /// Remove the empty directory `name` here.
    pub fn rmdir(&self, name: &str) -> io::Result<()> {
        check_name(name)?;
        let c = cstr(name)?;
        // SAFETY: unlinkat relative to a directory descriptor we own.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) })
            .map(|_| ())
    }

    pub fn unlink(&self, name: &str) -> io::Result<()> {
        check_name(name)?;
        let c = cstr(name)?;
        // SAFETY: unlinkat relative to a directory descriptor we own.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) }).map(|_| ())
    }

    /// fsync the directory (a rename is durable only then).
    pub fn sync(&self) -> io::Result<()> {
        // SAFETY: fsync on a descriptor we own.
        check(unsafe { libc::fsync(self.fd.as_raw_fd()) }).map(|_| ())
    }

    /// Names in this directory (through the descriptor, so the same directory that was
    /// checked).
    pub fn names(&self) -> io::Result<Vec<String>> {
        let mut v: Vec<String> =
            std::fs::read_dir(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
        v.sort();
        Ok(v)
    }

    /// Free bytes for an unprivileged writer and whether the file system is read-only.
    pub fn space(&self) -> io::Result<(u64, bool)> {
        // SAFETY: fstatvfs fills a zeroed struct we own.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        check(unsafe { libc::fstatvfs(self.fd.as_raw_fd(), &mut s) })?;
        Ok((
            s.f_bavail as u64 * s.f_frsize as u64,
            s.f_flag & libc::ST_RDONLY != 0,
        ))
    }

    /// The directory's own descriptor, for flags and permission checks.
    pub fn as_file(&self) -> io::Result<File> {
        Ok(File::from(self.fd.try_clone()?))
    }

    /// Whether the caller may write `name` here (faccessat, so it goes through this
    /// directory, not a path).
    pub fn writable(&self, name: Option<&str>) -> bool {
        let c = match name.map(cstr) {
            Some(Ok(c)) => c,
            Some(Err(_)) => return false,
            None => CString::from(c"."),
        };
        // SAFETY: faccessat relative to a directory descriptor we own.
        unsafe {
            libc::faccessat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::W_OK,
                libc::AT_EACCESS,
            ) == 0
        }
    }
}

/// Read an open file whole, refusing more than `max` bytes (a device or a growing file never
/// makes this read without end).
pub fn read_bounded(f: File, max: u64, name: &str) -> io::Result<Vec<u8>> {
    // Sized from fstat like fs::read (one read for a regular file); /proc files say 0.
    let hint = f.metadata().map_or(0, |m| m.len()).min(max) as usize;
    let mut buf = Vec::with_capacity(hint + 1);
    f.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{name}: larger than {max} bytes: refused"),
        ));
    }
    Ok(buf)
}

/// Read a file the operator named on the host (a saved plan): opened non-blocking, checked to
/// be a regular file on the descriptor itself, read up to `max` bytes. A FIFO or `/dev/zero`
/// is refused at once.
pub fn read_host_file(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    read_host_file_with(path, max, 0)
}

/// [`read_host_file`] with more open flags (`O_NOFOLLOW`: `scan` never reads through a link).
pub fn read_host_file_with(path: &Path, max: u64, flags: libc::c_int) -> io::Result<Vec<u8>> {
    let f = File::from(open_host(path, libc::O_RDONLY | libc::O_NONBLOCK | flags)?);
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a regular file: refused", path.display()),
        ));
    }
    read_bounded(f, max, &path.display().to_string())
}

/// `open(2)` of a host path with `flags` (and O_CLOEXEC).
pub fn open_host(path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a path"))?;
    // SAFETY: open on a valid C path; the descriptor is owned below.
    let fd = check(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: fd was just opened and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Split a resolved node path into its directory and file name.
pub fn split(node: &str) -> io::Result<(&str, &str)> {
    let (dir, name) = node.rsplit_once('/').ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{node}: not an absolute path"),
        )
    })?;
    check_name(name)?;
    Ok((if dir.is_empty() { "/" } else { dir }, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_refuse_symlinks_dots_and_nul() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", t.path().join("a/link")).unwrap();
        let root = Dir::root(t.path()).unwrap();
        assert!(root.walk("/a/b", None).is_ok());
        let e = root.walk("/a/link", None).err().unwrap().to_string();
        assert!(e.contains("/a/link: a symlink"), "{e}");
        assert!(root.walk("/a/../..", None).is_err());
        assert!(root.walk("/a/b\0c", None).is_err());
        assert!(root.walk("/x/y", Some(0o700)).is_ok());
        assert!(t.path().join("x/y").is_dir());
        assert!(split("/a/..").is_err());
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let fifo = CString::new(t.path().join("fifo").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo on a valid C path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let root = Dir::root(t.path()).unwrap();
        let e = root.open_append("fifo", 0o600).err().unwrap().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        std::os::unix::fs::symlink("/etc/hostname", t.path().join("l")).unwrap();
        assert!(root.read("l", 100).is_err());
        std::fs::write(t.path().join("big"), vec![b'x'; 101]).unwrap();
        assert!(root.read("big", 100).is_err());
        assert_eq!(root.read("big", 101).unwrap().len(), 101);
    }
}
