//! The CIS 4.1 file controls end to end: judged on the files the kubelet names (with the
//! platforms' real modes from `testdata/nodes/<tree>.modes`), fixed by chmod and chown inside
//! the transaction, restored by rollback, checked by saved plans, and refused when the file
//! is swapped, special, or outside the root.

mod common;
use common::sandbox;
use common::*;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn run(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .arg(args[0])
        .arg("--root")
        .arg(root)
        .args(&args[1..])
        .env("KUBELET_REMEDIATE_LOCK_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `apply --yes -o json ARGS` on the node at `root`: its output and its record.
fn apply(root: &Path, args: &[&str]) -> (Output, serde_json::Value) {
    let mut all = vec!["apply", "--yes", "-o", "json"];
    all.extend_from_slice(args);
    let o = run(root, &all);
    let j = json(&o);
    (o, j)
}

/// `plan --control all --out DIR/plan.json` on the node at `root` (it proposes changes).
fn save_plan(root: &Path, dir: &Path) -> PathBuf {
    let saved = dir.join("plan.json");
    let o = run(
        root,
        &[
            "plan",
            "--offline",
            "--control",
            "all",
            "--out",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    saved
}

/// `apply --yes --control all --plan SAVED` on the node at `root`.
fn apply_saved(root: &Path, saved: &Path) -> Output {
    let args = ["apply", "--yes", "--control", "all", "--plan"];
    let mut all: Vec<&str> = args.to_vec();
    all.push(saved.to_str().unwrap());
    run(root, &all)
}

/// `plan --offline -o json ARGS` on the node at `root`.
fn plan(root: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["plan", "--offline", "-o", "json"];
    all.extend_from_slice(args);
    json(&run(root, &all))
}

fn json(o: &Output) -> serde_json::Value {
    let j: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    assert_valid_record(&j);
    j
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A copy of `tree` with its platform's modes, and where it is.
fn node(tree: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    copy_tree(&repo().join("testdata/nodes").join(tree), &root);
    (t, root)
}

fn files(root: &Path, p: &str) -> (u32, u32, u32) {
    mode_owner(&root.join(p.trim_start_matches('/')))
}

/// The files of the backup sets (manifests and copies).
fn set_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let sets = root.join("var/lib/kubelet-remediate/backups");
    for s in std::fs::read_dir(sets).unwrap() {
        for f in std::fs::read_dir(s.unwrap().path()).unwrap() {
            out.push(f.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

fn manifest(root: &Path) -> serde_json::Value {
    let sets = root.join("var/lib/kubelet-remediate/backups");
    let s = std::fs::read_dir(sets).unwrap().next().unwrap().unwrap();
    serde_json::from_str(&std::fs::read_to_string(s.path().join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn the_platforms_real_modes_are_judged_per_benchmark() {
    // kubeadm: config.yaml 0644 fails the 600 rules and passes cis-1.20's 644; its
    // kubeconfig (0600) passes; ca.crt 0644 passes cis-1.12 and fails cis-1.24's 600.
    let (_t, root) = node("kubeadm-deb");
    let status = |bench: &str, id: &str| {
        let j = plan(&root, &["--control", "all", "--benchmark", bench]);
        control(&j, id)["status"].as_str().unwrap().to_string()
    };
    assert_eq!(status("cis-1.12", "config-file-mode"), "fail");
    assert_eq!(status("cis-1.20", "config-file-mode"), "pass");
    assert_eq!(status("eks-1.8.0", "config-file-mode"), "pass");
    assert_eq!(status("cis-1.12", "kubeconfig-file-mode"), "pass");
    assert_eq!(status("cis-1.12", "client-ca-file-mode"), "pass");
    assert_eq!(status("cis-1.24", "client-ca-file-mode"), "fail");
    assert_eq!(status("cis-1.12", "service-file-owner"), "pass");
    // The value lists every file the control covers, as the kubelet names them.
    let j = plan(&root, &["--control", "service-file-mode"]);
    assert_eq!(
        control(&j, "service-file-mode")["effective"]["value"],
        serde_json::json!([
            {"path": "/usr/lib/systemd/system/kubelet.service", "mode": "0644", "owner": "0:0"},
            {"path": "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", "mode": "0644", "owner": "0:0"}
        ])
    );
    // A kubeconfig that does not exist has nothing to protect: left out, with a note.
    let (_t, rpm) = node("kubeadm-rpm");
    let j = plan(&rpm, &["--control", "kubeconfig-file-mode"]);
    let c = control(&j, "kubeconfig-file-mode");
    assert_eq!(c["status"], "pass");
    assert_eq!(c["effective"]["value"], serde_json::json!([]));
    assert!(
        c["advice"][0].as_str().unwrap().contains("does not exist"),
        "{c}"
    );
}

/// Modes and owners fixed in one transaction without a restart (no systemd needed), with no
/// copy of any file's content in the backup set; `rollback --last` restores every mode and
/// owner exactly.
#[test]
fn chmod_and_chown_are_applied_and_rolled_back_exactly() {
    let (_t, root) = node("files-wrong-owners");
    let before = snapshot(&root, STATE);
    let (o, j) = apply(&root, &["--control", "all"]);
    // Controls that need a person (tls-cert-file, ...) remain: exit 2, files changed.
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(j["result"], "non-compliant");
    assert!(
        j["restart"].is_null(),
        "no restart for modes and owners: {}",
        j["restart"]
    );
    assert_eq!(files(&root, "/var/lib/kubelet/config.yaml"), (0o600, 0, 0));
    assert_eq!(files(&root, "/etc/kubernetes/pki/ca.crt"), (0o644, 0, 0));
    // setuid dropped with the extra bits: 4640 & 0600.
    assert_eq!(files(&root, "/etc/kubernetes/kubelet.conf"), (0o600, 0, 0));
    assert_eq!(
        files(
            &root,
            "/etc/systemd/system/kubelet.service.d/20-workdir.conf"
        ),
        (0o600, 0, 0)
    );
    let changes = j["report"]["changes"].as_array().unwrap();
    let config = changes
        .iter()
        .find(|c| c["path"] == "/var/lib/kubelet/config.yaml")
        .unwrap();
    assert_eq!(
        config["mode"],
        serde_json::json!({"from": "0664", "to": "0600"})
    );
    assert_eq!(
        config["owner"],
        serde_json::json!({"from": "1000:1000", "to": "0:0"})
    );
    assert_eq!(config["diff"], "");
    assert_eq!(
        config["controls"],
        serde_json::json!(["config-file-mode", "config-file-owner"])
    );
    // The backup set holds the manifest alone: a chmod copies no kubeconfig.
    assert_eq!(set_files(&root), ["manifest.json"]);
    let m = manifest(&root);
    let kc = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/etc/kubernetes/kubelet.conf")
        .unwrap();
    assert_eq!(
        (kc["mode"].as_u64(), kc["mode_after"].as_u64()),
        (Some(0o4640), Some(0o600))
    );
    assert_eq!(kc["backup"], "");
    // The node's audit log says it too.
    let log = std::fs::read_to_string(root.join("var/log/kubelet-remediate.log")).unwrap();
    assert!(
        log.contains(r#""mode":{"from":"4640","to":"0600"}"#),
        "{log}"
    );
    // Judged again: every file control passes.
    let j = plan(&root, &["--control", "all"]);
    for c in j["report"]["controls"].as_array().unwrap() {
        if c["cis"].as_str().is_some_and(|id| id.starts_with("4.1.")) {
            assert_eq!(c["status"], "pass", "{c}");
        }
    }
    // Back, exactly: contents, modes (the setuid bit included) and owners.
    let o = run(&root, &["rollback", "--last", "--yes", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = json(&o);
    assert!(j["restart"].is_null(), "no restart for modes and owners");
    assert_eq!(snapshot(&root, STATE), before);
}

/// An edit and a chmod of one file (a symlinked --config: the target) are one change, one
/// backup; a content edit alone keeps the file's mode and owner.
#[test]
fn an_edit_and_a_chmod_of_one_file_are_one_change() {
    let (_t, root) = node("config-absolute-symlink");
    let target = "/etc/kubernetes/kubelet/config.yaml";
    // The env file gets a mode and owner of its own: a plain edit must keep them.
    let env = root.join("etc/default/kubelet");
    std::fs::write(&env, "KUBELET_EXTRA_ARGS=--read-only-port=10255\n").unwrap();
    std::os::unix::fs::chown(&env, Some(7), Some(8)).unwrap();
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o604)).unwrap();
    let before = snapshot(&root, STATE);
    let controls = "config-file-mode,make-iptables-util-chains,read-only-port";
    let (o, j) = apply(&root, &["--no-restart", "--control", controls]);
    assert_eq!(j["result"], "changed", "{}", text(&o));
    let changes = j["report"]["changes"].as_array().unwrap();
    let c: Vec<_> = changes.iter().filter(|c| c["path"] == target).collect();
    assert_eq!(c.len(), 1, "one change for the file");
    assert_eq!(c[0]["via"], "/var/lib/kubelet/config.yaml");
    assert!(c[0]["diff"].as_str().unwrap().starts_with("--- a/"));
    assert_eq!(c[0]["mode"]["to"], "0600");
    assert_eq!(
        c[0]["controls"],
        serde_json::json!(["config-file-mode", "make-iptables-util-chains"])
    );
    assert_eq!(files(&root, target), (0o600, 0, 0));
    assert!(
        std::fs::symlink_metadata(root.join("var/lib/kubelet/config.yaml"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the symlink stays a symlink"
    );
    assert!(!std::fs::read_to_string(&env).unwrap().contains("10255"));
    assert_eq!(
        mode_owner(&env),
        (0o604, 7, 8),
        "an edit keeps mode and owner"
    );
    assert_eq!(set_files(&root), ["0.orig", "1.orig", "manifest.json"]);
    let o = run(&root, &["rollback", "--last", "--yes", "--no-restart"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(snapshot(&root, STATE), before);
}

/// The client CA below 644 is opt-in: `all` leaves it (with the reason), naming it fixes it.
#[test]
fn taking_read_from_the_client_ca_is_opt_in() {
    let (_t, root) = node("kubeadm-deb");
    let plan_with =
        |controls: &str| plan(&root, &["--benchmark", "cis-1.24", "--control", controls]);
    let j = plan_with("all");
    let c = control(&j, "client-ca-file-mode");
    assert_eq!(
        (c["status"].as_str(), c["fixable"].as_bool()),
        (Some("fail"), Some(false))
    );
    assert!(c["advice"][0].as_str().unwrap().contains("opt-in"), "{c}");
    let j = plan_with("client-ca-file-mode");
    let c = control(&j, "client-ca-file-mode");
    assert_eq!(c["fixable"], true);
    assert_eq!(
        j["report"]["changes"][0]["mode"],
        serde_json::json!({"from": "0644", "to": "0600"})
    );
}

/// A saved plan counts modes and owners: a file chmodded since is refused with nothing
/// changed; applied as planned it works, and again it is nothing to do.
#[test]
fn saved_plans_check_modes_and_owners() {
    let (t, root) = node("files-wrong-owners");
    let saved = save_plan(&root, t.path());
    let cfg = root.join("var/lib/kubelet/config.yaml");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o666)).unwrap();
    let before = snapshot(&root, STATE);
    let apply = || apply_saved(&root, &saved);
    let o = apply();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("mode or owner changed since the plan"),
        "{}",
        text(&o)
    );
    assert_eq!(snapshot(&root, STATE), before, "nothing changed");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o664)).unwrap();
    let o = apply();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(mode_owner(&cfg), (0o600, 0, 0));
    let sets = set_files(&root).len();
    let o = apply();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(set_files(&root).len(), sets, "nothing left to write");
}

/// Swapped, special and escaping files: refused or left alone, nothing changed, no hang.
#[test]
fn swapped_special_and_escaping_files_are_refused() {
    // A symlink swapped in for a planned file between `plan --out` and `apply --plan`.
    let (t, root) = node("files-wrong-owners");
    let saved = save_plan(&root, t.path());
    // It leads to a copy of the same text: the node still reads, only the swap is wrong.
    let cfg = root.join("var/lib/kubelet/config.yaml");
    std::fs::rename(&cfg, root.join("var/lib/kubelet/config.yaml.moved")).unwrap();
    symlink("/var/lib/kubelet/config.yaml.moved", &cfg).unwrap();
    let before = snapshot(&root, STATE);
    let o = apply_saved(&root, &saved);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("now a symlink"), "{}", text(&o));
    assert_eq!(snapshot(&root, STATE), before, "nothing changed");

    // The same swap inside one run, after the plan and before the write: the transaction
    // opens the planned path without following it.
    let (_t, root) = node("files-wrong-owners");
    let fs = kubelet_remediate::root::NodeFs::new(&root);
    let eval = kubelet_remediate::flow::Eval {
        offline: true,
        controls: kubelet_remediate::controls::select(Some("all"), None).unwrap(),
        ..Default::default()
    };
    let (_, _, p) = kubelet_remediate::flow::evaluate(&fs, &eval).unwrap();
    let changes: Vec<_> = p
        .changes
        .iter()
        .map(|c| kubelet_remediate::txn::FileChange {
            path: c.path.clone(),
            before: c.before.clone(),
            after: c.after.clone(),
            meta: c.meta.clone(),
        })
        .collect();
    let cfg = root.join("var/lib/kubelet/config.yaml");
    std::fs::rename(&cfg, root.join("var/lib/kubelet/config.yaml.moved")).unwrap();
    symlink("/etc/kubernetes/pki/ca.crt", &cfg).unwrap();
    let before = snapshot(&root, STATE);
    let r = kubelet_remediate::txn::apply(
        &fs,
        &changes,
        ("kubelet.service", false),
        "/var/lib/kubelet-remediate/backups",
        &|| Ok(()),
    );
    let e = r.expect_err("refused").to_string();
    assert!(e.contains("/var/lib/kubelet/config.yaml"), "{e}");
    assert_eq!(snapshot(&root, STATE), before, "nothing changed");

    // A FIFO where the kubeconfig is and a directory where the CA is: errors, not passes,
    // never read (no hang), never changed.
    let (_t, root) = node("files-wrong-owners");
    let kc = root.join("etc/kubernetes/kubelet.conf");
    std::fs::remove_file(&kc).unwrap();
    let c = std::ffi::CString::new(kc.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo on a valid C path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
    let ca = root.join("etc/kubernetes/pki/ca.crt");
    std::fs::remove_file(&ca).unwrap();
    std::fs::create_dir(&ca).unwrap();
    let before = snapshot(&root, STATE);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args(["plan", "--offline", "-o", "json", "--control"])
        .arg("kubeconfig-file-mode,kubeconfig-file-owner,client-ca-file-owner")
        .arg("--root")
        .arg(&root)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "plan hung on a FIFO");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    let j = json(&o);
    for id in [
        "kubeconfig-file-mode",
        "kubeconfig-file-owner",
        "client-ca-file-owner",
    ] {
        let c = control(&j, id);
        assert_eq!(c["status"], "error", "{c}");
        assert_eq!(c["fixable"], false);
    }
    assert!(
        control(&j, "kubeconfig-file-mode")["advice"][0]
            .as_str()
            .unwrap()
            .contains("a FIFO"),
    );
    assert!(j["report"]["changes"].as_array().unwrap().is_empty());
    assert_eq!(snapshot(&root, STATE), before);

    // A kubeconfig path that climbs out of the root, and a symlink to a host path: both
    // resolve inside the root (where nothing is), the host file is never touched.
    let (t, root) = node("files-wrong-owners");
    let host = t.path().join("host-kubeconfig");
    std::fs::write(&host, "secret\n").unwrap();
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o666)).unwrap();
    let climb = format!("../../../../../../..{}", host.display());
    let dropin = root.join("etc/systemd/system/kubelet.service.d/20-workdir.conf");
    let text_before = std::fs::read_to_string(&dropin).unwrap();
    std::fs::write(
        &dropin,
        text_before.replace(
            "--kubeconfig=kubelet.conf",
            &format!("--kubeconfig={climb}"),
        ),
    )
    .unwrap();
    let ca = root.join("etc/kubernetes/pki/ca.crt");
    std::fs::remove_file(&ca).unwrap();
    symlink(&host, &ca).unwrap();
    let (o, j) = apply(&root, &["--control", "all"]);
    assert_eq!(j["exit_code"], o.status.code().unwrap());
    assert_eq!(
        mode_owner(&host),
        (0o666, 0, 0),
        "the host file is untouched"
    );
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "secret\n");
}

/// The tool's trees in a node booted under a real systemd, minus what the sandbox mounts.
fn node_files(root: &Path) -> Vec<(String, Vec<u8>, u32, u32, u32)> {
    [
        "etc/default",
        "etc/kubernetes",
        "etc/systemd/system",
        "usr/lib/systemd/system",
        "var/lib/kubelet",
    ]
    .iter()
    .flat_map(|d| snapshot(&root.join(d), &[]))
    .collect()
}

/// Under a real systemd: a settings fix and the file controls' chmods and chowns in one apply
/// (one restart), then `rollback --last` restores contents, modes and owners byte for byte and
/// the old kubelet runs again.
#[test]
fn settings_and_files_fixed_in_one_apply_then_rolled_back_exactly() {
    if skip_without(sandbox::unavailable()) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("testdata/nodes/files-wrong-owners"), t.path());
    let env = t.path().join("etc/default/kubelet");
    let original = "KUBELET_EXTRA_ARGS=--node-ip=10.0.1.25 --make-iptables-util-chains=false\n";
    std::fs::write(&env, original).unwrap();
    // No health endpoint (healthzPort 0: the kubelet serves none and apply waits for none):
    // this test is about files, and a chosen port can be taken before the restart binds it.
    let cfg = t.path().join("var/lib/kubelet/config.yaml");
    let text_now = std::fs::read_to_string(&cfg).unwrap();
    assert!(text_now.contains("healthzPort: 10248\n"));
    std::fs::write(
        &cfg,
        text_now.replace("healthzPort: 10248\n", "healthzPort: 0\n"),
    )
    .unwrap();
    let sb = sandbox::Sandbox::boot(t.path(), "kubelet.service", "/usr/bin/kubelet", "", &[]);
    let before = node_files(&sb.root);
    let pid = sb.systemd().state("kubelet.service").unwrap().main_pid;
    let (o, j) = apply(&sb.root, &["--settle", "1", "--control", "all"]);
    assert_eq!(j["result"], "non-compliant", "{}", text(&o));
    assert_eq!(j["restart"]["done"], true, "one restart for the edit");
    assert!(!sb.file("/etc/default/kubelet").contains("make-iptables"));
    assert_eq!(
        files(&sb.root, "/var/lib/kubelet/config.yaml"),
        (0o600, 0, 0)
    );
    assert_eq!(files(&sb.root, "/etc/kubernetes/pki/ca.crt"), (0o644, 0, 0));
    assert_eq!(
        files(&sb.root, "/etc/kubernetes/kubelet.conf"),
        (0o600, 0, 0)
    );
    assert_eq!(sb.live_value(), Some(true), "the new kubelet runs the fix");
    let st = sb.systemd().state("kubelet.service").unwrap();
    assert_ne!(st.main_pid, pid, "restarted");
    let o = run(&sb.root, &["rollback", "--last", "--yes", "--settle", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        node_files(&sb.root),
        before,
        "contents, modes and owners restored"
    );
    assert_eq!(sb.live_value(), Some(false), "the old settings run again");
}

/// `verify --control` with file controls alone judges the files: no kubelet or configz needed.
#[test]
fn verify_judges_file_controls_on_the_files() {
    let (_t, root) = node("kubeadm-deb");
    let verify = || {
        run(
            &root,
            &[
                "verify",
                "--offline",
                "-o",
                "json",
                "--control",
                "4.1.9,4.1.10",
            ],
        )
    };
    let o = verify();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let j = json(&o);
    let checks = j["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2);
    assert_eq!(checks[0]["control"], "config-file-mode");
    assert_eq!(checks[0]["value"], false);
    assert_eq!(checks[1]["value"], true);
    let cfg = root.join("var/lib/kubelet/config.yaml");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o400)).unwrap();
    let o = verify();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// A run killed between two chmods leaves a `prepared` set: the next apply puts the first
/// file's mode and owner back before it plans, applies again, and one `rollback --last` then
/// restores the node exactly.
#[test]
fn a_kill_between_two_chmods_is_recovered_exactly() {
    let (_t, root) = node("files-wrong-owners");
    let before = snapshot(&root, STATE);
    let o = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args(["apply", "--yes", "--control", "all", "--root"])
        .arg(&root)
        .env("KUBELET_REMEDIATE_CRASH_AT", "meta-set:1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.code().is_none(), "aborted: {}", text(&o));
    assert_ne!(snapshot(&root, STATE), before, "the first chmod was made");
    let (_, j) = apply(&root, &["--control", "all"]);
    assert!(
        j["warnings"][0]
            .as_str()
            .unwrap()
            .contains("left unfinished by an interrupted run"),
        "{}",
        j["warnings"]
    );
    assert_eq!(files(&root, "/var/lib/kubelet/config.yaml"), (0o600, 0, 0));
    let o = run(&root, &["rollback", "--last", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(snapshot(&root, STATE), before);
}

/// The files the 4.1 controls cover in `files-wrong-owners`.
const COVERED: &[&str] = &[
    "/usr/lib/systemd/system/kubelet.service",
    "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
    "/etc/systemd/system/kubelet.service.d/20-workdir.conf",
    "/etc/kubernetes/kubelet.conf",
    "/etc/kubernetes/pki/ca.crt",
    "/var/lib/kubelet/config.yaml",
];

const FILE_CONTROLS: &str = "service-file-mode,service-file-owner,kubeconfig-file-mode,kubeconfig-file-owner,client-ca-file-mode,client-ca-file-owner,config-file-mode,config-file-owner";

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(24),
        ..Default::default()
    })]

    /// Any modes and owners, any benchmark: `apply` with the eight file controls named makes
    /// every one pass, only ever takes bits away (and gives the files to 0:0), leaves every
    /// byte alone, and `rollback --last` restores the node exactly.
    #[test]
    fn any_modes_and_owners_are_fixed_by_taking_bits_away_and_rolled_back_exactly(
        metas in proptest::collection::vec((0u32..0o10000, proptest::sample::select(vec![0u32, 1000]), proptest::sample::select(vec![0u32, 5])), COVERED.len()),
        bench in proptest::sample::select(kubelet_remediate::controls::BENCHMARKS.to_vec()),
    ) {
        let (_t, root) = node("files-wrong-owners");
        for (p, (mode, uid, gid)) in COVERED.iter().zip(&metas) {
            let f = root.join(p.trim_start_matches('/'));
            std::os::unix::fs::chown(&f, Some(*uid), Some(*gid)).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        let before = snapshot(&root, STATE);
        let (o, _) = apply(&root, &["--benchmark", bench, "--control", FILE_CONTROLS]);
        proptest::prop_assert!(matches!(o.status.code(), Some(0 | 2)), "{}", text(&o));
        let j = plan(&root, &["--benchmark", bench, "--control", FILE_CONTROLS]);
        for c in j["report"]["controls"].as_array().unwrap() {
            proptest::prop_assert_eq!(&c["status"], "pass", "{}", c);
        }
        for (p, (mode, _, _)) in COVERED.iter().zip(&metas) {
            let f = root.join(p.trim_start_matches('/'));
            let (now, uid, gid) = mode_owner(&f);
            proptest::prop_assert_eq!(now & !mode, 0, "{} gained bits: {:o} -> {:o}", p, mode, now);
            proptest::prop_assert_eq!((uid, gid), (0, 0));
        }
        let after = snapshot(&root, STATE);
        for (b, a) in before.iter().zip(&after) {
            proptest::prop_assert_eq!(&b.1, &a.1, "{}: content changed", b.0);
        }
        let o = run(&root, &["rollback", "--last", "--yes"]);
        if o.status.code() == Some(0) {
            proptest::prop_assert_eq!(snapshot(&root, STATE), before);
        } else {
            // Nothing was failing: no backup set was made.
            proptest::prop_assert!(text(&o).contains("nothing to roll back"), "{}", text(&o));
            proptest::prop_assert_eq!(snapshot(&root, STATE), before);
        }
    }
}
