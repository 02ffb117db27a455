//! What the bench targets share: the release binary, and one process measured on its own.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The release binary cargo bench builds beside the bench.
pub fn bin() -> PathBuf {
    let mut p = std::env::current_exe().unwrap();
    p.pop();
    p.pop();
    p.join("kubelet-remediate")
}

/// Run `cmd` (output discarded): its wall time, its own peak RSS in KiB (from wait4, so not
/// the bench's), and its exit status; `None` if it ran past `limit` and was killed.
#[allow(dead_code)] // not every bench target measures processes
pub fn measure(mut cmd: Command, limit: Duration) -> Option<(Duration, i64, i32)> {
    let t = Instant::now();
    // Reaped with wait4 below (for this child's own rusage), not through std.
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    loop {
        let mut status = 0;
        // SAFETY: rusage is filled by wait4 for our own child.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            return Some((t.elapsed(), ru.ru_maxrss, libc::WEXITSTATUS(status)));
        }
        if t.elapsed() > limit {
            // SAFETY: our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
