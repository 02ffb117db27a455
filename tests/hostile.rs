//! Issue 10's attacks on the write path, each with a sentinel "host" directory outside the
//! root: tampered manifests, symlinked backup sets and parents, saved plans with `..` and
//! symlinked parents, special files as the log or the plan, interrupted applies, and the order
//! of sets made in one second. Nothing outside the root may change, nothing may hang, and no
//! run may say "nothing was changed" when something was.

mod common;
use common::*;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SETS: &str = "var/lib/kubelet-remediate/backups";

struct Node {
    _t: tempfile::TempDir,
    root: PathBuf,
    /// Stands for the host: outside the root, must never change.
    host: PathBuf,
}

fn node(case: &str) -> Node {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    copy_tree(&repo().join("testdata/nodes").join(case), &root);
    let host = t.path().join("host");
    std::fs::create_dir_all(host.join("etc/default")).unwrap();
    std::fs::write(host.join("etc/hostname"), "host-secret\n").unwrap();
    std::fs::write(host.join("etc/default/kubelet"), "HOST=1\n").unwrap();
    Node { _t: t, root, host }
}

impl Node {
    fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"));
        c.arg(args[0])
            .arg("--root")
            .arg(&self.root)
            .args(&args[1..]);
        c.envs(env.iter().copied())
            .env("KUBELET_REMEDIATE_LOCK_TIMEOUT", "5");
        c.stdin(Stdio::null()).output().unwrap()
    }

    fn host_unchanged(&self) {
        assert_eq!(
            std::fs::read_to_string(self.host.join("etc/hostname")).unwrap(),
            "host-secret\n"
        );
        assert_eq!(
            std::fs::read_to_string(self.host.join("etc/default/kubelet")).unwrap(),
            "HOST=1\n"
        );
        let names: Vec<_> = std::fs::read_dir(self.host.join("etc/default"))
            .unwrap()
            .collect();
        assert_eq!(names.len(), 1, "a file appeared in the host directory");
    }

    fn file(&self, p: &str) -> String {
        std::fs::read_to_string(self.root.join(p)).unwrap()
    }

    /// Apply the default plan and return the backup set's id.
    fn applied(&self) -> String {
        let o = self.run(&["apply", "--yes", "--no-restart", "--output", "json"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        j["applied"]["backup_id"].as_str().unwrap().to_string()
    }

    fn manifest(&self, id: &str) -> PathBuf {
        self.root.join(SETS).join(id).join("manifest.json")
    }

    fn edit_manifest(&self, id: &str, f: impl FnOnce(&mut serde_json::Value)) {
        let p = self.manifest(id);
        let mut m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        f(&mut m);
        std::fs::write(&p, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn refused(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(1), "{what}: {}", text(o));
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("panicked"),
        "{what}: {}",
        text(o)
    );
}

/// A change made to a manifest by someone else.
type Tamper = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn tampered_manifests_read_and_write_nothing_outside_the_root() {
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "a path with ../",
            Box::new(|m| m["files"][0]["path"] = "/etc/../../host/etc/default/kubelet".into()),
        ),
        (
            "a relative path",
            Box::new(|m| m["files"][0]["path"] = "../host/etc/default/kubelet".into()),
        ),
        (
            "a NUL in the path",
            Box::new(|m| m["files"][0]["path"] = "/etc/default/kub\u{0}elet".into()),
        ),
        (
            "a backup naming a host file",
            Box::new(|m| m["files"][0]["backup"] = "../../../../../../etc/hostname".into()),
        ),
        (
            "an absolute backup",
            Box::new(|m| m["files"][0]["backup"] = "/etc/hostname".into()),
        ),
        (
            "a bad digest",
            Box::new(|m| m["files"][0]["sha256_before"] = "../x".into()),
        ),
        (
            "a mode past 0o7777",
            Box::new(|m| m["files"][0]["mode"] = 0o104755.into()),
        ),
        (
            "setuid the file never had",
            Box::new(|m| m["files"][0]["mode"] = 0o4755.into()),
        ),
        (
            "another owner",
            Box::new(|m| m["files"][0]["uid"] = 4242.into()),
        ),
        ("another id", Box::new(|m| m["id"] = "../../x".into())),
    ];
    for (what, tamper) in cases {
        let n = node("kubeadm-deb");
        let id = n.applied();
        let fixed = n.file("etc/default/kubelet");
        n.edit_manifest(&id, |m| tamper(m));
        for force in [false, true] {
            let mut args = vec!["rollback", "--yes", "--no-restart", id.as_str()];
            if force {
                args.push("--force");
            }
            refused(&n.run(&args), what);
            n.host_unchanged();
            assert_eq!(
                n.file("etc/default/kubelet"),
                fixed,
                "{what}: the node file changed"
            );
        }
    }
}

#[test]
fn ids_and_sets_that_point_elsewhere_are_refused() {
    let n = node("kubeadm-deb");
    let id = n.applied();
    for bad in ["../../../../host", "..", "a/b"] {
        refused(&n.run(&["rollback", "--yes", "--no-restart", bad]), bad);
    }
    // A set that is a symlink to a directory outside the root holding a "manifest".
    let evil = n.host.join("evil-set");
    std::fs::create_dir_all(&evil).unwrap();
    std::fs::copy(n.manifest(&id), evil.join("manifest.json")).unwrap();
    std::fs::copy(
        n.root.join(SETS).join(&id).join("0.orig"),
        evil.join("0.orig"),
    )
    .unwrap();
    n.edit_manifest(&id, |_| {});
    let link = n.root.join(SETS).join("20990101T000000Z-1");
    symlink(&evil, &link).unwrap();
    refused(
        &n.run(&["rollback", "--yes", "--no-restart", "20990101T000000Z-1"]),
        "symlinked set",
    );
    // --last does not pick it either: it is not a set.
    let o = n.run(&["rollback", "--list", "--output", "json"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("20990101T000000Z-1"));
    n.host_unchanged();
}

#[test]
fn rollback_force_after_a_parent_became_a_symlink_to_the_host_is_refused() {
    let n = node("kubeadm-deb");
    let id = n.applied();
    let etc_default = n.root.join("etc/default");
    std::fs::remove_dir_all(&etc_default).unwrap();
    symlink(n.host.join("etc/default"), &etc_default).unwrap();
    for args in [
        &["rollback", "--yes", "--no-restart", id.as_str()][..],
        &["rollback", "--yes", "--force", "--no-restart", id.as_str()],
    ] {
        let o = n.run(args);
        refused(&o, "symlinked parent");
        assert!(text(&o).contains("symlink"), "{}", text(&o));
    }
    n.host_unchanged();
}

#[test]
fn saved_plans_resolve_inside_the_root() {
    for (what, path) in [
        (
            "../ in the saved path",
            "/etc/../../../../../../etc/default/kubelet",
        ),
        ("an absolute symlinked parent", "/etc/default/kubelet"),
    ] {
        let n = node("kubeadm-deb");
        let plan = n.root.parent().unwrap().join("plan.json");
        let o = n.run(&["plan", "--out", plan.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let mut saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
        saved["files"][0]["path"] = path.into();
        std::fs::write(&plan, saved.to_string()).unwrap();
        if what.contains("symlinked") {
            // /etc/default inside the node is a symlink to the host's: in the root it resolves
            // to /etc/default of... the host path, which does not exist inside the root.
            let d = n.root.join("etc/default");
            let inside = n.root.join("etc/default.real");
            std::fs::rename(&d, &inside).unwrap();
            symlink(n.host.join("etc/default"), &d).unwrap();
        }
        let o = n.run(&[
            "apply",
            "--yes",
            "--no-restart",
            "--plan",
            plan.to_str().unwrap(),
        ]);
        n.host_unchanged();
        if what.contains("../") {
            // `..` stops at the root: the plan names the node's own /etc/default/kubelet.
            assert_eq!(o.status.code(), Some(0), "{what}: {}", text(&o));
            assert!(
                !n.file("etc/default/kubelet")
                    .contains("make-iptables-util-chains=false")
            );
        } else {
            refused(&o, what);
        }
    }
}

/// Spawn and wait at most `limit`: a run that hangs is killed and fails the test.
fn run_bounded(n: &Node, args: &[&str], limit: Duration) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"));
    c.arg(args[0]).arg("--root").arg(&n.root).args(&args[1..]);
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo on a valid C path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn special_files_as_the_log_or_the_plan_never_hang_and_change_nothing() {
    let limit = Duration::from_secs(30);
    // The log as a FIFO, a directory, a symlink to the host: refused before any write.
    for kind in ["fifo", "dir", "symlink"] {
        let n = node("kubeadm-deb");
        let before = n.file("etc/default/kubelet");
        let log = n.root.join("var/log/kubelet-remediate.log");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        match kind {
            "fifo" => mkfifo(&log),
            "dir" => std::fs::create_dir(&log).unwrap(),
            _ => symlink(n.host.join("etc/hostname"), &log).unwrap(),
        }
        let o = run_bounded(&n, &["apply", "--yes", "--no-restart"], limit);
        refused(&o, kind);
        assert!(text(&o).contains("nothing was changed"), "{}", text(&o));
        assert_eq!(n.file("etc/default/kubelet"), before, "{kind}: changed");
        assert!(
            !n.root.join(SETS).exists()
                || std::fs::read_dir(n.root.join(SETS)).unwrap().count() == 0
        );
        n.host_unchanged();
    }
    // --plan a FIFO, /dev/zero: refused at once.
    let n = node("kubeadm-deb");
    let fifo = n.root.parent().unwrap().join("plan.fifo");
    mkfifo(&fifo);
    for p in [fifo.to_str().unwrap(), "/dev/zero"] {
        let o = run_bounded(&n, &["apply", "--yes", "--no-restart", "--plan", p], limit);
        refused(&o, p);
        assert!(text(&o).contains("not a regular file"), "{}", text(&o));
    }
}

#[test]
fn a_log_that_fails_after_the_commit_is_a_warning_not_nothing_changed() {
    let n = node("kubeadm-deb");
    let o = n.run_env(
        &["apply", "--yes", "--no-restart", "--output", "json"],
        &[("KUBELET_REMEDIATE_FAIL_AT", "log-written")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: the files are changed, but the log line was not written"),
        "{err}"
    );
    assert!(!err.contains("nothing was changed"), "{err}");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m =
        std::fs::read_to_string(n.manifest(j["applied"]["backup_id"].as_str().unwrap())).unwrap();
    assert!(m.contains("\"state\": \"applied\""));
    assert!(
        !n.file("etc/default/kubelet")
            .contains("make-iptables-util-chains=false")
    );
}

/// After a kill at any step, the next apply ends compliant and ONE rollback --last restores
/// the original bytes exactly.
#[test]
fn after_a_kill_at_any_step_the_next_apply_and_one_rollback_are_exact() {
    let points = kubelet_remediate::txn::crash_points(2);
    for point in &points {
        let n = node("false-in-two-places");
        let orig = (
            n.file("etc/default/kubelet"),
            n.file("var/lib/kubelet/config.yaml"),
        );
        let o = n.run_env(
            &["apply", "--yes", "--no-restart"],
            &[("KUBELET_REMEDIATE_CRASH_AT", point)],
        );
        assert_eq!(o.status.code(), None, "{point}: should have aborted");
        let o = n.run(&["apply", "--yes", "--no-restart"]);
        assert_eq!(o.status.code(), Some(0), "{point}: {}", text(&o));
        let p = plan_root(&n.root, None).unwrap();
        assert!(
            p.verdict.compliant(),
            "{point}: not compliant after the next apply"
        );
        let o = n.run(&["rollback", "--last", "--yes", "--no-restart"]);
        assert_eq!(o.status.code(), Some(0), "{point}: {}", text(&o));
        assert_eq!(
            (
                n.file("etc/default/kubelet"),
                n.file("var/lib/kubelet/config.yaml")
            ),
            orig,
            "{point}: one rollback --last did not restore the original bytes"
        );
    }
}

#[test]
fn rollback_last_follows_the_order_of_applies_not_of_names() {
    let n = node("kubeadm-deb");
    let first = n.applied();
    // A second apply in the same second by pid 1: its id sorts before the first's by name.
    let sets = n.root.join(SETS);
    let second = format!("{}-1", first.rsplit_once('-').unwrap().0);
    std::fs::rename(sets.join(&first), sets.join(&second)).unwrap();
    n.edit_manifest(&second, |m| {
        m["id"] = second.clone().into();
        m["seq"] = 2.into();
    });
    std::fs::create_dir_all(sets.join(&first)).unwrap();
    std::fs::copy(
        sets.join(&second).join("0.orig"),
        sets.join(&first).join("0.orig"),
    )
    .unwrap();
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(n.manifest(&second)).unwrap()).unwrap();
    m["id"] = first.clone().into();
    m["seq"] = 1.into();
    m["state"] = "rolled-back".into();
    std::fs::write(n.manifest(&first), m.to_string()).unwrap();
    let o = n.run(&[
        "rollback",
        "--last",
        "--yes",
        "--no-restart",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        j["rolled_back"]["backup_id"],
        second.as_str(),
        "--last picked by name, not by order"
    );
}

#[test]
fn a_unit_symlink_loop_is_named_as_a_loop() {
    let n = node("kubeadm-deb");
    let units = n.root.join("etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    symlink("a.service", units.join("kubelet.service")).unwrap();
    symlink("kubelet.service", units.join("a.service")).unwrap();
    let o = n.run(&["plan"]);
    refused(&o, "loop");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/etc/systemd/system/kubelet.service"), "{err}");
    assert!(err.contains("too many levels of symbolic links"), "{err}");
    assert!(!err.contains("no unit kubelet.service found"), "{err}");
}

#[test]
fn backup_directory_errors_name_the_node_path() {
    if skip_without(common::sandbox::unavailable()) {
        return;
    }
    // The backup directory on a read-only mount (a private mount namespace).
    let n = node("kubeadm-deb");
    let sets = n.root.join("var/lib/kubelet-remediate/backups");
    std::fs::create_dir_all(&sets).unwrap();
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-ec"])
        .arg(format!(
            "d={}; mount --bind $d $d; mount -o remount,bind,ro $d; set +e; {} apply --root {} --yes --no-restart </dev/null",
            sets.display(),
            env!("CARGO_BIN_EXE_kubelet-remediate"),
            n.root.display()
        ))
        .output()
        .unwrap();
    refused(&o, "read-only backups");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/var/lib/kubelet-remediate/backups"), "{err}");
    assert!(err.contains("read-only"), "{err}");
    assert!(
        !err.contains(n.root.to_str().unwrap()),
        "the host path leaked: {err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
}

#[test]
fn a_missing_file_is_missing_not_permission_denied() {
    let n = node("kubeadm-deb");
    let id = n.applied();
    std::fs::remove_file(n.root.join("etc/default/kubelet")).unwrap();
    let o = n.run(&["rollback", "--yes", "--force", "--no-restart", &id]);
    refused(&o, "missing");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/etc/default/kubelet"), "{err}");
    assert!(err.contains("No such file"), "{err}");
    assert!(!err.contains("permission denied"), "{err}");
}
