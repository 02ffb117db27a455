//! `apply` and `rollback` on copies of real node trees: atomic, backed up, serialized,
//! crash-consistent, and never a byte changed when something is wrong.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kubelet-remediate")
}

fn node(case: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("testdata/nodes").join(case), t.path());
    t
}

fn run(root: &Path, args: &[&str]) -> Output {
    run_env(root, args, &[])
}

fn run_env(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.arg(args[0]).arg("--root").arg(root).args(&args[1..]);
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(Stdio::null()).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every regular file and symlink under a root (the backups and the log excluded), with content.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if rel.starts_with("var/lib/kubelet-remediate")
                || rel.starts_with("var/log")
                || rel.starts_with("run")
            {
                continue;
            }
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&p).unwrap().display()),
                );
            } else if ft.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    rel,
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn backup_sets(root: &Path) -> usize {
    std::fs::read_dir(root.join("var/lib/kubelet-remediate/backups")).map_or(0, |d| d.count())
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc_geteuid() == 0 }
}
unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[test]
fn apply_is_idempotent_and_leaves_one_backup_and_one_log_line() {
    let t = node("false-in-two-places");
    let o = run(t.path(), &["apply", "--yes", "--no-restart"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("now run: systemctl restart kubelet.service"));
    assert!(
        text(&o).contains(&format!(
            "(undo: kubelet-remediate rollback --root {} ",
            t.path().display()
        )),
        "the undo hint carries --root: {}",
        text(&o)
    );
    let plan = run(t.path(), &["plan", "--offline"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let before = snapshot(t.path());
    let again = run(t.path(), &["apply", "--yes", "--no-restart"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(text(&again).contains("nothing to do"));
    assert_eq!(before, snapshot(t.path()));
    assert_eq!(backup_sets(t.path()), 1);
    let log = std::fs::read_to_string(t.path().join("var/log/kubelet-remediate.log")).unwrap();
    assert_eq!(log.lines().count(), 1);
    let entry: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(entry["result"], "applied");
    assert_eq!(entry["files"].as_array().unwrap().len(), 2);
    // Backups are private.
    let set = std::fs::read_dir(t.path().join("var/lib/kubelet-remediate/backups"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        std::fs::metadata(&set).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for f in ["0.orig", "1.orig", "manifest.json"] {
        assert_eq!(
            std::fs::metadata(set.join(f)).unwrap().permissions().mode() & 0o777,
            0o600,
            "{f}"
        );
    }
}

#[test]
fn refusals_change_nothing() {
    for (case, args, code, says) in [
        (
            "kubeadm-deb",
            vec!["apply", "--no-restart"],
            1,
            "pass --yes",
        ),
        (
            "kubeadm-deb",
            vec!["apply", "--yes"],
            1,
            "cannot reach systemd over D-Bus",
        ),
        (
            "openshift",
            vec!["apply", "--yes", "--no-restart"],
            3,
            "kind: KubeletConfig",
        ),
        (
            "quoted-false",
            vec!["apply", "--yes", "--no-restart"],
            1,
            "refuse",
        ),
        (
            "malformed-yaml",
            vec!["apply", "--yes", "--no-restart"],
            1,
            "config.yaml:17:14",
        ),
    ] {
        let t = node(case);
        let before = snapshot(t.path());
        let o = run(t.path(), &args);
        assert_eq!(o.status.code(), Some(code), "{case}: {}", text(&o));
        assert!(text(&o).contains(says), "{case}: {}", text(&o));
        assert_eq!(before, snapshot(t.path()), "{case}");
        assert_eq!(backup_sets(t.path()), 0, "{case}");
    }
}

/// `plan --out` beside the root; returns the saved plan's path.
fn save_plan(root: &Path) -> PathBuf {
    let saved = root.with_extension("plan.json");
    let o = run(
        root,
        &["plan", "--offline", "--out", saved.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    saved
}

fn apply_saved(root: &Path, saved: &Path) -> Output {
    run(
        root,
        &[
            "apply",
            "--yes",
            "--no-restart",
            "--plan",
            saved.to_str().unwrap(),
        ],
    )
}

#[test]
fn saved_plans_apply_exactly_and_refuse_when_stale() {
    let t = node("kubeadm-deb");
    let saved = save_plan(t.path());
    let o = apply_saved(t.path(), &saved);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let fixed = std::fs::read_to_string(t.path().join("etc/default/kubelet")).unwrap();
    assert!(!fixed.contains("make-iptables"));

    let t = node("kubeadm-deb");
    let saved = save_plan(t.path());
    let f = t.path().join("etc/default/kubelet");
    let edited = std::fs::read_to_string(&f)
        .unwrap()
        .replace("10.0.1.23", "10.0.1.24");
    std::fs::write(&f, &edited).unwrap();
    let before = snapshot(t.path());
    let o = apply_saved(t.path(), &saved);
    assert_eq!(o.status.code(), Some(1));
    let says = "/etc/default/kubelet: changed since the plan was made";
    assert!(text(&o).contains(says), "{}", text(&o));
    assert_eq!(before, snapshot(t.path()));
}

#[test]
fn rollback_restores_byte_for_byte_and_refuses_changed_files_unless_forced() {
    let t = node("false-in-two-places");
    let original = snapshot(t.path());
    assert_eq!(
        run(t.path(), &["apply", "--yes", "--no-restart"])
            .status
            .code(),
        Some(0)
    );
    let o = run(t.path(), &["rollback", "--last", "--yes", "--no-restart"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(original, snapshot(t.path()));

    assert_eq!(
        run(t.path(), &["apply", "--yes", "--no-restart"])
            .status
            .code(),
        Some(0)
    );
    let f = t.path().join("var/lib/kubelet/config.yaml");
    let changed = std::fs::read_to_string(&f)
        .unwrap()
        .replace("syncFrequency: 0s", "syncFrequency: 1m0s");
    std::fs::write(&f, &changed).unwrap();
    let before = snapshot(t.path());
    let o = run(t.path(), &["rollback", "--last", "--yes", "--no-restart"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("/var/lib/kubelet/config.yaml: changed after apply"),
        "{}",
        text(&o)
    );
    assert_eq!(before, snapshot(t.path()));
    let o = run(
        t.path(),
        &["rollback", "--last", "--yes", "--force", "--no-restart"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(original, snapshot(t.path()));
    let log = std::fs::read_to_string(t.path().join("var/log/kubelet-remediate.log")).unwrap();
    let actions: Vec<String> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(actions, ["apply", "rollback", "apply", "rollback"]);
}

#[test]
fn mode_owner_xattrs_and_symlinks_survive() {
    let t = node("config-absolute-symlink");
    let target = t.path().join("etc/kubernetes/kubelet/config.yaml");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&target, Some(1234), Some(5678)).unwrap();
    }
    let xattr = Command::new("setfattr")
        .args(["-n", "user.kubelet-remediate-test", "-v", "kept"])
        .arg(&target)
        .status();
    let has_xattr = xattr.is_ok_and(|s| s.success());
    let o = run(t.path(), &["apply", "--yes", "--no-restart"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let link = t.path().join("var/lib/kubelet/config.yaml");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("/etc/kubernetes/kubelet/config.yaml")
    );
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .contains("makeIPTablesUtilChains: true")
    );
    let m = std::fs::metadata(&target).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o640);
    if is_root() {
        assert_eq!((m.uid(), m.gid()), (1234, 5678));
    }
    if has_xattr {
        let v = Command::new("getfattr")
            .args(["--only-values", "-n", "user.kubelet-remediate-test"])
            .arg(&target)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&v.stdout), "kept");
    }
}

/// Abort the process at every step of a two-file apply: each file is old or new, never torn;
/// only our own dot-named temp files are left; rollback restores the original byte for byte.
#[test]
fn crash_at_every_step_is_consistent_and_rolls_back() {
    let points = kubelet_remediate::txn::crash_points(2);
    let mut tested = 0;
    for point in &points {
        let t = node("false-in-two-places");
        let original = snapshot(t.path());
        let o = run_env(
            t.path(),
            &["apply", "--yes", "--no-restart"],
            &[("KUBELET_REMEDIATE_CRASH_AT", point)],
        );
        assert_eq!(
            o.status.code(),
            None,
            "{point}: the process should have aborted: {}",
            text(&o)
        );
        let fixed = {
            let f = node("false-in-two-places");
            let p = plan_root(f.path(), None).unwrap();
            write_plan(f.path(), &p.plan);
            snapshot(f.path())
        };
        let now = snapshot(t.path());
        for (rel, bytes) in &now {
            let name = rel.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".kubelet-remediate.tmp") {
                assert!(
                    name.starts_with('.'),
                    "{point}: temp file {rel:?} must be hidden"
                );
                continue;
            }
            assert!(
                original.get(rel) == Some(bytes) || fixed.get(rel) == Some(bytes),
                "{point}: {rel:?} is neither its old nor its new content"
            );
        }
        let o = run(t.path(), &["rollback", "--last", "--yes", "--no-restart"]);
        if backup_sets_with_manifest(t.path()) == 0 {
            assert_eq!(o.status.code(), Some(1), "{point}");
        } else {
            assert_eq!(o.status.code(), Some(0), "{point}: {}", text(&o));
        }
        let restored: BTreeMap<_, _> = snapshot(t.path())
            .into_iter()
            .filter(|(r, _)| !r.to_string_lossy().ends_with(".kubelet-remediate.tmp"))
            .collect();
        assert_eq!(
            original, restored,
            "{point}: rollback did not restore the original"
        );
        // And the node can be fixed afterwards: the lock died with the process.
        let o = run(t.path(), &["apply", "--yes", "--no-restart"]);
        assert_eq!(o.status.code(), Some(0), "{point}: {}", text(&o));
        assert!(
            !snapshot(t.path())
                .keys()
                .any(|r| r.to_string_lossy().ends_with(".kubelet-remediate.tmp")),
            "{point}: stale temp files were not cleaned"
        );
        tested += 1;
    }
    println!("crash points tested: {tested}");
    assert_eq!(tested, 14);
}

fn backup_sets_with_manifest(root: &Path) -> usize {
    std::fs::read_dir(root.join("var/lib/kubelet-remediate/backups")).map_or(0, |d| {
        d.filter(|e| e.as_ref().unwrap().path().join("manifest.json").exists())
            .count()
    })
}

/// A write that fails after another file was already replaced: both are restored, exit 1.
#[test]
fn a_failed_second_write_restores_the_first() {
    for point in ["temp-written:1", "renamed:1", "dir-synced:1"] {
        let t = node("false-in-two-places");
        let original = snapshot(t.path());
        let o = run_env(
            t.path(),
            &["apply", "--yes", "--no-restart"],
            &[("KUBELET_REMEDIATE_FAIL_AT", point)],
        );
        assert_eq!(o.status.code(), Some(1), "{point}: {}", text(&o));
        assert!(text(&o).contains("injected failure"), "{}", text(&o));
        assert!(text(&o).contains("every file was restored"), "{}", text(&o));
        let now: BTreeMap<_, _> = snapshot(t.path())
            .into_iter()
            .filter(|(r, _)| !r.to_string_lossy().ends_with(".kubelet-remediate.tmp"))
            .collect();
        assert_eq!(original, now, "{point}");
        let log = std::fs::read_to_string(t.path().join("var/log/kubelet-remediate.log")).unwrap();
        assert!(log.contains("\"result\":\"failed: "), "{log}");
    }
}

#[test]
fn concurrent_applies_are_serialized() {
    let t = node("kubeadm-deb");
    let spawn = || {
        Command::new(bin())
            .args(["apply", "--yes", "--no-restart", "--root"])
            .arg(t.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(
        (a.status.code(), b.status.code()),
        (Some(0), Some(0)),
        "{}\n{}",
        text(&a),
        text(&b)
    );
    let outputs = format!("{}{}", text(&a), text(&b));
    assert_eq!(
        outputs.matches("applied: /etc/default/kubelet").count(),
        1,
        "{outputs}"
    );
    assert_eq!(outputs.matches("nothing to do").count(), 1, "{outputs}");
    assert_eq!(backup_sets(t.path()), 1);
    assert_eq!(
        std::fs::read_to_string(t.path().join("etc/default/kubelet")).unwrap(),
        "# Extra kubelet flags for this node (kept across kubeadm upgrades).\nKUBELET_EXTRA_ARGS=--node-ip=10.0.1.23\n"
    );
}

#[test]
fn a_held_lock_makes_apply_wait_then_fail_clearly() {
    let t = node("kubeadm-deb");
    std::fs::create_dir_all(t.path().join("run")).unwrap();
    let lock = t.path().join("run/kubelet-remediate.lock");
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["-c", "echo locked; cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "locked\n");
    let before = snapshot(t.path());
    let o = run_env(
        t.path(),
        &["apply", "--yes", "--no-restart"],
        &[("KUBELET_REMEDIATE_LOCK_TIMEOUT", "1")],
    );
    holder.stdin.take().unwrap().write_all(b"").unwrap();
    holder.wait().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("/run/kubelet-remediate.lock: another kubelet-remediate apply or rollback holds the lock"), "{}", text(&o));
    assert_eq!(before, snapshot(t.path()));
}

/// Run a shell script in a private mount namespace (so its mounts vanish with it).
fn in_mount_ns(script: &str) -> String {
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-ec", script])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn disk_full_and_read_only_mounts_change_nothing() {
    if !is_root() && std::env::var_os("CI").is_none() {
        skipped("mount namespaces need root");
        return;
    }
    let t = node("kubeadm-deb");
    let r = t.path().display();
    let b = bin();
    // A tmpfs holding /etc/default with 4 KiB free: no room for the new copy.
    let full = in_mount_ns(&format!(
        "d={r}/etc/default; cp $d/kubelet /tmp/kr-orig-$$; mount -t tmpfs -o size=64k tmpfs $d; cp /tmp/kr-orig-$$ $d/kubelet; \
         dd if=/dev/zero of=$d/fill bs=4k count=100 2>/dev/null || true; rm -f $d/fill.small; \
         set +e; {b} apply --root {r} --yes --no-restart </dev/null; echo exit=$?; \
         cmp -s /tmp/kr-orig-$$ $d/kubelet && echo same=yes; ls -A $d; rm -f /tmp/kr-orig-$$"
    ));
    assert!(full.contains("exit=1"), "{full}");
    assert!(full.contains("not enough space"), "{full}");
    assert!(full.contains("same=yes"), "{full}");
    assert!(!full.contains(".kubelet-remediate.tmp"), "{full}");
    // /etc/default bind-mounted read-only.
    let ro = in_mount_ns(&format!(
        "d={r}/etc/default; mount --bind $d $d; mount -o remount,bind,ro $d; \
         set +e; {b} apply --root {r} --yes --no-restart </dev/null; echo exit=$?"
    ));
    assert!(ro.contains("exit=1"), "{ro}");
    assert!(
        ro.contains("/etc/default/kubelet: read-only file system"),
        "{ro}"
    );
    assert_eq!(backup_sets(t.path()), 0);
    assert!(
        std::fs::read_to_string(t.path().join("etc/default/kubelet"))
            .unwrap()
            .contains("make-iptables-util-chains=false")
    );
}

#[test]
fn an_immutable_file_is_refused() {
    let t = node("kubeadm-deb");
    let f = t.path().join("etc/default/kubelet");
    if !Command::new("chattr")
        .arg("+i")
        .arg(&f)
        .status()
        .is_ok_and(|s| s.success())
    {
        skipped("chattr +i is not supported here");
        return;
    }
    let o = run(t.path(), &["apply", "--yes", "--no-restart"]);
    Command::new("chattr").arg("-i").arg(&f).status().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("immutable"), "{}", text(&o));
}

#[test]
fn escapes_from_the_root_read_and_write_nothing_outside() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("kubelet");
    std::fs::write(
        &victim,
        "KUBELET_EXTRA_ARGS=--make-iptables-util-chains=false\n",
    )
    .unwrap();
    for link in [
        victim.to_string_lossy().to_string(),
        format!("../../../../../../../../..{}", victim.display()),
    ] {
        let t = node("kubeadm-deb");
        let f = t.path().join("etc/default/kubelet");
        std::fs::remove_file(&f).unwrap();
        std::os::unix::fs::symlink(&link, &f).unwrap();
        let o = run(t.path(), &["apply", "--yes", "--no-restart"]);
        // The link resolves inside the root, where nothing exists: the optional env file is
        // absent, so the node is compliant and nothing is written anywhere.
        assert_eq!(o.status.code(), Some(0), "{link}: {}", text(&o));
        assert!(text(&o).contains("nothing to do"));
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "KUBELET_EXTRA_ARGS=--make-iptables-util-chains=false\n"
        );
    }
    if is_root() {
        // A symlink to a device: the device node inside the root is never opened.
        let t = node("kubeadm-deb");
        let dev = t.path().join("dev");
        std::fs::create_dir_all(&dev).unwrap();
        assert!(
            Command::new("mknod")
                .arg(dev.join("zero"))
                .args(["c", "1", "5"])
                .status()
                .unwrap()
                .success()
        );
        let cfg = t.path().join("var/lib/kubelet/config.yaml");
        std::fs::remove_file(&cfg).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &cfg).unwrap();
        let o = run(t.path(), &["apply", "--yes", "--no-restart"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            text(&o).contains("/var/lib/kubelet/config.yaml: not a regular file"),
            "{}",
            text(&o)
        );
    }
}

/// The prompt, answered through a real pseudo-terminal (util-linux `script`).
fn through_pty(root: &Path, answer: &str) -> (Option<i32>, String) {
    pty_command(root, answer, "")
}

/// `apply` with `extra` arguments (and redirections) on a terminal, answered with `answer`.
fn pty_command(root: &Path, answer: &str, extra: &str) -> (Option<i32>, String) {
    let mut c = on_a_terminal(root, extra);
    c.stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let o = c.wait_with_output().unwrap();
    (o.status.code(), text(&o))
}

/// `apply --no-restart` with `extra` arguments running on a pseudo-terminal (`script`), its
/// input and output piped.
fn on_a_terminal(root: &Path, extra: &str) -> std::process::Child {
    let cmd = format!(
        "{} apply --root {} --no-restart --color never {extra}",
        bin(),
        root.display()
    );
    Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn the_prompt_on_a_terminal_takes_yes_and_no() {
    let t = node("kubeadm-deb");
    let before = snapshot(t.path());
    let (code, out) = through_pty(t.path(), "n");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Apply these changes?"), "{out}");
    assert_eq!(before, snapshot(t.path()));
    let (code, out) = through_pty(t.path(), "y");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("applied: /etc/default/kubelet"), "{out}");
    assert_ne!(before, snapshot(t.path()));
}

/// With `--output json` on a terminal, stdout is the record's: the diff is shown on stderr
/// before the question, never asked blind.
#[test]
fn json_on_a_terminal_shows_the_diff_on_stderr_before_asking() {
    let t = node("kubeadm-deb");
    let out_file = t.path().join("record.json");
    let redirect = format!("--output json > {}", out_file.display());
    let (code, tty) = pty_command(t.path(), "n", &redirect);
    assert_eq!(code, Some(1), "{tty}");
    let diff = tty
        .find("-KUBELET_EXTRA_ARGS=")
        .expect("the diff on the terminal");
    let ask = tty.find("Apply these changes?").expect("the question");
    assert!(diff < ask, "the diff comes before the question: {tty}");
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(j["result"], "error");
    assert_eq!(j["error"]["message"], "not applied");
    assert_eq!(j["error"]["files_changed"], false);
    std::fs::remove_file(&out_file).unwrap();
    let (code, _) = pty_command(t.path(), "y", &redirect);
    assert_eq!(code, Some(0));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(j["result"], "changed");
}

/// A saved plan that is already applied is "nothing to do", and `apply --plan` shows its diff
/// once.
#[test]
fn a_saved_plan_applied_twice_is_nothing_to_do_and_its_diff_is_shown_once() {
    let t = node("kubeadm-deb");
    let saved = t.path().join("saved-plan.json");
    let o = run(t.path(), &["plan", "--out", saved.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let plan_arg = [
        "apply",
        "--yes",
        "--no-restart",
        "--plan",
        saved.to_str().unwrap(),
    ];
    let o = run(t.path(), &plan_arg);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        text(&o).matches("+++ b/etc/default/kubelet").count(),
        1,
        "{}",
        text(&o)
    );
    let again = run(t.path(), &plan_arg);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("nothing to do"), "{}", text(&again));
    assert_eq!(backup_sets(t.path()), 1);
}

/// `rollback --list` only reads: no lock taken (it runs while another holds it), nothing made.
#[test]
fn rollback_list_takes_no_lock_and_creates_nothing() {
    let t = node("kubeadm-deb");
    let before = snapshot(t.path());
    let o = run(t.path(), &["rollback", "--list"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("no backups in"));
    assert_eq!(before, snapshot(t.path()), "--list created something");
    assert!(!t.path().join("run/kubelet-remediate.lock").exists());
    assert_eq!(
        run(t.path(), &["apply", "--yes", "--no-restart"])
            .status
            .code(),
        Some(0)
    );
    // Nothing is left behind for the lock, not even the /run the tree lacked.
    assert!(!t.path().join("run").exists());
    std::fs::create_dir(t.path().join("run")).unwrap();
    let lock = t.path().join("run/kubelet-remediate.lock");
    let held = Command::new("flock")
        .arg(&lock)
        .args([
            "sh",
            "-c",
            &format!("{} rollback --list --root {}", bin(), t.path().display()),
        ])
        .env("KUBELET_REMEDIATE_LOCK_TIMEOUT", "1")
        .output()
        .unwrap();
    assert_eq!(held.status.code(), Some(0), "{}", text(&held));
    assert!(String::from_utf8_lossy(&held.stdout).contains("applied"));
}

/// `-q` prints nothing but errors; `-v` adds the node, the result and the timings on stderr.
#[test]
fn quiet_and_verbose() {
    let t = node("false-in-two-places");
    let q = run(t.path(), &["plan", "-q"]);
    assert_eq!(q.status.code(), Some(2));
    assert!(q.stdout.is_empty() && q.stderr.is_empty(), "{}", text(&q));
    let v = run(
        t.path(),
        &["apply", "--yes", "--no-restart", "-v", "--node-name", "n7"],
    );
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    let err = String::from_utf8_lossy(&v.stderr);
    assert!(
        err.contains("kubelet-remediate: node n7 (--node-name), apply")
            && err.contains(": changed (exit 0) in "),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&v.stdout).contains("applied: "));
}

/// `apply` on a terminal, answered with `key` once the question is on the screen.
fn answer_when_asked(root: &Path, key: &[u8]) -> (Option<i32>, String) {
    let mut c = on_a_terminal(root, "");
    let mut stdin = c.stdin.take().unwrap();
    let mut out = c.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("[y/N]") {
        let n = std::io::Read::read(&mut out, &mut buf).unwrap();
        assert!(n > 0, "no question: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    stdin.write_all(key).unwrap();
    drop(stdin);
    std::io::Read::read_to_end(&mut out, &mut seen).unwrap();
    let status = c.wait().unwrap();
    (status.code(), String::from_utf8_lossy(&seen).into_owned())
}

/// Ctrl-D at the question is "no": exit 1, nothing changed. Ctrl-C says it was interrupted and
/// that nothing changed, exits 130, and leaves the terminal as it found it (the cursor was
/// never hidden) and the tree byte for byte as it was (no lock file either).
#[test]
fn ctrl_d_is_no_and_ctrl_c_interrupts_cleanly() {
    let t = node("kubeadm-deb");
    let before = snapshot(t.path());
    let (code, out) = answer_when_asked(t.path(), b"\x04");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not applied; nothing was changed"), "{out}");
    assert_eq!(before, snapshot(t.path()));
    let (code, out) = answer_when_asked(t.path(), b"\x03");
    assert_eq!(code, Some(130), "{out}");
    assert!(
        out.contains("kubelet-remediate: error: interrupted at the question; nothing was changed"),
        "{out}"
    );
    assert!(!out.contains("\x1b[?25l"), "the cursor was hidden: {out:?}");
    assert_eq!(before, snapshot(t.path()));
    assert!(
        !t.path().join("run").exists(),
        "a lock file was left behind"
    );
}

/// Runs that change nothing leave the tree exactly as it was: a platform that manages its
/// files (exit 3), and an apply whose D-Bus connection is refused.
#[test]
fn runs_that_change_nothing_leave_no_file_behind() {
    fn all(root: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
                if p.is_dir() && !p.is_symlink() {
                    stack.push(p);
                }
            }
        }
        out.sort();
        out
    }
    let t = node("openshift");
    let before = all(t.path());
    let o = run(t.path(), &["apply", "--yes"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(before, all(t.path()));
    let t = node("kubeadm-deb");
    let before = all(t.path());
    let o = run(
        t.path(),
        &[
            "apply",
            "--yes",
            "--dbus-address",
            "unix:path=/nonexistent/bus",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("nothing was changed"), "{}", text(&o));
    assert_eq!(before, all(t.path()));
}

/// Every command a run prints to paste works when pasted: the undo hint carries --backup-dir
/// (and --root).
#[test]
fn the_undo_hint_works_when_pasted() {
    let t = node("kubeadm-deb");
    let o = run(
        t.path(),
        &[
            "apply",
            "--yes",
            "--offline",
            "--no-restart",
            "--backup-dir",
            "/srv/kr-backups",
        ],
    );
    let out = text(&o);
    let undo = out
        .lines()
        .find_map(|l| l.split("(undo: ").nth(1))
        .and_then(|l| l.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no undo hint: {out}"));
    assert!(undo.contains("--backup-dir /srv/kr-backups"), "{undo}");
    let words: Vec<&str> = undo.split_whitespace().collect();
    assert_eq!(words[0], "kubelet-remediate");
    let o = Command::new(bin())
        .args(&words[1..])
        .args(["--yes", "--no-restart"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{undo}: {}", text(&o));
    assert!(
        text(&o).contains("restored: /etc/default/kubelet"),
        "{}",
        text(&o)
    );
}

/// `apply --offline --no-restart` leaves a restart owed: until one is seen, later runs say
/// restart-needed (exit 2) instead of "nothing to do".
#[test]
fn a_restart_owed_is_remembered_until_one_is_seen() {
    let t = node("kubeadm-deb");
    let o = run(t.path(), &["apply", "--yes", "--offline", "--no-restart"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("now run: systemctl restart kubelet.service"),
        "{}",
        text(&o)
    );
    for args in [
        &[
            "apply",
            "--yes",
            "--offline",
            "--no-restart",
            "--output",
            "json",
        ][..],
        &["plan", "--offline", "--output", "json"],
    ] {
        let o = run(t.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(j["result"], "restart-needed", "{args:?}");
        assert!(
            j["report"]["notes"]
                .to_string()
                .contains("without a restart"),
            "{args:?}: {j}"
        );
    }
    // The tree has no /proc: read online, no kubelet runs, so the next start reads the new
    // files; the marker has done its job and apply removes it.
    let o = run(t.path(), &["apply", "--yes", "--no-restart"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        !t.path()
            .join("var/lib/kubelet-remediate/restart-pending.json")
            .exists()
    );
    let o = run(t.path(), &["plan", "--offline"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// After a successful apply the text ends with the state after the fix, not the old verdict.
#[test]
fn a_successful_apply_ends_with_the_new_state() {
    let t = node("kubeadm-deb");
    let o = run(
        t.path(),
        &["apply", "--yes", "--no-restart", "--color", "never"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("+KUBELET_EXTRA_ARGS=--node-ip=10.0.1.23"),
        "{out}"
    );
    // The plan shown before the write says what was; the last verdict is what is now.
    let last = out.lines().rfind(|l| l.starts_with("verdict:"));
    assert_eq!(
        last,
        Some("verdict: COMPLIANT (files; no kubelet is running)"),
        "{out}"
    );
}

/// `apply --plan` checks the plan before anything: a file that is not a plan prints no
/// evidence, and a plan made for another root or node is refused.
#[test]
fn a_saved_plan_is_checked_first_and_only_for_its_node_and_root() {
    let t = node("kubeadm-deb");
    let not_a_plan = t.path().join("notes.json");
    std::fs::write(&not_a_plan, "{\"hello\": 1}\n").unwrap();
    let o = run(
        t.path(),
        &[
            "apply",
            "--yes",
            "--no-restart",
            "--plan",
            not_a_plan.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty(), "{}", text(&o));
    assert!(text(&o).contains("not a saved plan"), "{}", text(&o));
    let saved = t.path().join("saved.json");
    let o = run(t.path(), &["plan", "--out", saved.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let other = node("kubeadm-deb");
    let before = snapshot(other.path());
    let o = run(
        other.path(),
        &[
            "apply",
            "--yes",
            "--no-restart",
            "--plan",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("the plan was made for --root"),
        "{}",
        text(&o)
    );
    assert_eq!(before, snapshot(other.path()));
    let o = run(
        t.path(),
        &[
            "apply",
            "--yes",
            "--no-restart",
            "--node-name",
            "worker-9",
            "--plan",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("the plan was made for node"),
        "{}",
        text(&o)
    );
}

/// A plan saved with `--control` is applied with those controls: the saved file names them,
/// `apply --plan` without --control adopts them (and verifies each fixed control on the
/// written files), and a different --control is refused before anything is written.
#[test]
fn a_saved_plan_keeps_its_controls() {
    let t = node("controls-legacy-flags");
    let saved = t.path().join("controls.plan.json");
    let controls = "read-only-port,make-iptables-util-chains,rotate-server-certificates";
    let o = run(
        t.path(),
        &[
            "plan",
            "--offline",
            "--control",
            controls,
            "--out",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(
        plan["controls"],
        serde_json::json!([
            "read-only-port",
            "make-iptables-util-chains",
            "rotate-server-certificates"
        ])
    );
    let before = snapshot(t.path());
    let o = run(
        t.path(),
        &[
            "apply",
            "--yes",
            "--no-restart",
            "--control",
            "read-only-port",
            "--plan",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("was made with --control"), "{}", text(&o));
    assert_eq!(
        before,
        snapshot(t.path()),
        "refused before anything was written"
    );
    let o = apply_saved(t.path(), &saved);
    assert!(matches!(o.status.code(), Some(0 | 2)), "{}", text(&o));
    let env = std::fs::read_to_string(t.path().join("etc/default/kubelet")).unwrap();
    assert!(env.contains("--read-only-port=0 "), "{env}");
    assert!(
        !env.contains("make-iptables") && !env.contains("RotateKubeletServerCertificate"),
        "{env}"
    );
}
