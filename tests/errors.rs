//! Bad input: a clear message naming the file (and line where there is one), exit 1, and not
//! one byte read from outside the root or written anywhere.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn plan(root: &Path) -> (i32, String, String) {
    plan_with(root, &[])
}

fn plan_with(root: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args(["plan", "--offline", "--color", "never", "--root"])
        .arg(root)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn node() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("testdata/nodes/kubeadm-deb"), t.path());
    t
}

#[test]
fn a_fifo_as_config_is_refused_without_opening_it() {
    let t = node();
    let cfg = t.path().join("var/lib/kubelet/config.yaml");
    std::fs::remove_file(&cfg).unwrap();
    let c = std::ffi::CString::new(cfg.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o644) }, 0);
    let (code, out, err) = plan(t.path());
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains("/var/lib/kubelet/config.yaml: not a regular file"),
        "{err}"
    );
}

unsafe extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
}

#[test]
fn a_missing_required_environment_file_is_an_error() {
    let t = node();
    let d = t
        .path()
        .join("usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf");
    let s = std::fs::read_to_string(&d).unwrap().replace(
        "EnvironmentFile=-/etc/default/kubelet",
        "EnvironmentFile=/etc/default/kubelet-missing",
    );
    std::fs::write(&d, s).unwrap();
    let (code, _, err) = plan(t.path());
    assert_eq!(code, 1);
    assert!(err.contains("/etc/default/kubelet-missing"), "{err}");
    assert!(err.contains("10-kubeadm.conf:9"), "{err}");
}

#[test]
fn symlinks_cannot_leave_the_root() {
    // The host has /etc/os-release and /etc/passwd; the node has no such config. A symlink
    // climbing out with .. or pointing at an absolute host path must stay inside the root.
    for target in [
        "../../../../../../../../etc/passwd",
        "/etc/passwd",
        "/proc/self/cmdline",
    ] {
        let t = node();
        let cfg = t.path().join("var/lib/kubelet/config.yaml");
        std::fs::remove_file(&cfg).unwrap();
        std::os::unix::fs::symlink(target, &cfg).unwrap();
        let (code, _, err) = plan(t.path());
        assert_eq!(code, 1, "{target}");
        assert!(
            err.contains("/var/lib/kubelet/config.yaml: No such file"),
            "{target}: {err}"
        );
    }
}

#[test]
fn a_symlink_loop_is_reported() {
    let t = node();
    let cfg = t.path().join("var/lib/kubelet/config.yaml");
    std::fs::remove_file(&cfg).unwrap();
    std::os::unix::fs::symlink("config.yaml", &cfg).unwrap();
    let (code, _, err) = plan(t.path());
    assert_eq!(code, 1);
    assert!(err.contains("too many levels of symbolic links"), "{err}");
}

#[test]
fn no_kubelet_unit_is_an_error_that_says_where_it_looked() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("etc/systemd/system")).unwrap();
    let (code, _, err) = plan(t.path());
    assert_eq!(code, 1);
    assert!(
        err.contains("no kubelet unit found (looked for kubelet.service, k3s.service, k3s-agent.service, rke2-server.service, rke2-agent.service in /etc/systemd/system); pass --unit"),
        "{err}"
    );
    // A name given with --unit is not answered with "pass --unit".
    let (code, _, err) = plan_with(t.path(), &["--unit", "foo.service"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no unit foo.service found (looked in /etc/systemd/system): check the name given with --unit"),
        "{err}"
    );
    assert!(!err.contains("pass --unit"), "{err}");
    // A root with no unit directory at all says so, instead of "(looked in )".
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = plan(empty.path());
    assert_eq!(code, 1);
    assert!(
        err.contains("none of systemd's unit directories exists under the root"),
        "{err}"
    );
    assert!(!err.contains("looked in )"), "{err}");
}

#[test]
fn a_masked_unit_is_an_error() {
    let t = node();
    std::fs::create_dir_all(t.path().join("etc/systemd/system")).unwrap();
    std::os::unix::fs::symlink(
        "/dev/null",
        t.path().join("etc/systemd/system/kubelet.service"),
    )
    .unwrap();
    let (code, _, err) = plan(t.path());
    assert_eq!(code, 1);
    assert!(err.contains("kubelet.service is masked"), "{err}");
}

#[test]
fn a_bad_root_is_an_error() {
    let (code, _, err) = plan(Path::new("/nonexistent/node"));
    assert_eq!(code, 1);
    assert!(err.contains("--root /nonexistent/node"), "{err}");
}

#[test]
fn a_drop_in_without_type_meta_is_refused() {
    let t = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("testdata/nodes/config-dir-override"), t.path());
    std::fs::write(
        t.path().join("etc/kubernetes/kubelet.conf.d/10-base.conf"),
        "maxPods: 200\n",
    )
    .unwrap();
    let (code, _, err) = plan(t.path());
    assert_eq!(code, 1);
    // One line, one shape: kubelet-remediate: PATH:LINE:COL: KIND: message.
    assert!(
        err.starts_with(
            "kubelet-remediate: /etc/kubernetes/kubelet.conf.d/10-base.conf:1:1: error: missing apiVersion"
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
