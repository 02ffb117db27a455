//! Golden tests: every node tree under testdata/nodes is planned (text and JSON) and compared
//! with testdata/golden/. After an intended change: `UPDATE_GOLDEN=1 cargo test --test golden`.

mod common;

use common::{copy_tree, repo, snapshot};
use std::path::Path;
use std::process::Command;

fn cases() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo().join("testdata/nodes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// stdout, then stderr and the exit status, as one comparable text.
fn run(case: &str, extra: &[&str]) -> String {
    run_at(&repo().join("testdata/nodes").join(case), extra)
}

/// [`run`] on the node at `root`.
fn run_at(root: &Path, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args(["plan", "--root"])
        .arg(root)
        .args(["--color", "never"])
        .args(extra)
        .env_remove("NODE_NAME")
        .env_remove("SYSTEM_UPGRADE_NODE_NAME")
        .output()
        .unwrap();
    let mut s = String::from_utf8(out.stdout).unwrap();
    if extra.contains(&"json") {
        s = stable(&s);
    }
    let err = String::from_utf8(out.stderr).unwrap();
    if !err.is_empty() {
        s.push_str("--- stderr\n");
        s.push_str(&err.replace(root.to_str().unwrap(), "<root>"));
    }
    s.push_str(&format!("--- exit {}\n", out.status.code().unwrap()));
    s
}

/// The record with what differs from run to run (times, durations, the checkout's path and
/// revision) replaced by placeholders; everything the node decides stays.
fn stable(json: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    for k in ["started_at", "finished_at"] {
        assert!(v[k].as_str().is_some_and(|t| t.ends_with('Z')), "{k}");
        v[k] = "<time>".into();
    }
    for (_, t) in v["timings"].as_object_mut().unwrap() {
        if !t.is_null() {
            *t = 0.into();
        }
    }
    v["node"]["root"] = "<root>".into();
    v["tool"]["version"] = "<version>".into();
    v["tool"]["git_revision"] = "<revision>".into();
    serde_json::to_string_pretty(&v).unwrap() + "\n"
}

fn check(name: &str, got: &str, failures: &mut Vec<String>) {
    let path = repo().join("testdata/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want != got {
        let diff = similar::TextDiff::from_lines(&want, got)
            .unified_diff()
            .header(&format!("golden/{name}"), "got")
            .to_string();
        failures.push(diff);
    }
}

fn assert_no_mismatch(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "golden mismatches (UPDATE_GOLDEN=1 to accept):\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_node_tree_matches_its_golden_plan() {
    let mut failures = Vec::new();
    let cases = cases();
    assert!(
        cases.len() >= 30,
        "expected the full set of node trees, found {}",
        cases.len()
    );
    for c in &cases {
        check(&format!("{c}.txt"), &run(c, &[]), &mut failures);
        check(
            &format!("{c}.json"),
            &run(c, &["--output", "json"]),
            &mut failures,
        );
    }
    assert_no_mismatch(&failures);
}

#[test]
fn exit_codes_follow_the_contract() {
    let code = |c: &str| run(c, &[]).lines().last().unwrap().to_string();
    assert_eq!(code("gke"), "--- exit 0");
    assert_eq!(code("kubeadm-deb"), "--- exit 2");
    assert_eq!(code("quoted-false"), "--- exit 1");
    assert_eq!(code("malformed-yaml"), "--- exit 1");
}

#[test]
fn json_carries_the_contract_fields() {
    let out = run("false-in-two-places", &["--output", "json"]);
    let json = out.split("--- exit").next().unwrap();
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["schema_version"], 2);
    assert_eq!(v["command"], "plan");
    assert_eq!(v["result"], "non-compliant");
    assert_eq!(v["exit_code"], 2);
    let v = &v["report"];
    assert_eq!(v["compliant"], false);
    assert_eq!(v["effective"]["value"], false);
    // Without --control: the first control alone, in the controls array too.
    assert_eq!(v["benchmark"], "cis-1.12");
    assert_eq!(v["controls"].as_array().unwrap().len(), 1);
    assert_eq!(v["controls"][0]["id"], "make-iptables-util-chains");
    assert_eq!(v["controls"][0]["cis"], "4.2.6");
    assert_eq!(v["controls"][0]["status"], "fail");
    assert_eq!(v["controls"][0]["fixable"], true);
    assert_eq!(v["changes"][0]["controls"][0], "make-iptables-util-chains");
    assert_eq!(v["effective"]["source"]["path"], "/etc/default/kubelet");
    assert_eq!(v["effective"]["source"]["line"], 1);
    let changes = v["changes"].as_array().unwrap();
    let paths: Vec<&str> = changes
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/etc/default/kubelet", "/var/lib/kubelet/config.yaml"]
    );
    assert!(
        changes
            .iter()
            .all(|c| c["diff"].as_str().unwrap().starts_with("--- a/"))
    );
    assert_eq!(v["findings"].as_array().unwrap().len(), 2);
    assert!(!v["advice"].as_array().unwrap().is_empty());
    assert_eq!(v["restart"]["unit"], "kubelet.service");
    assert_eq!(v["restart"]["daemon_reload"], false);
}

/// Planning reads only: the whole testdata tree is byte-identical (modes and owners too) after
/// every case ran.
#[test]
fn planning_writes_nothing() {
    let nodes = repo().join("testdata/nodes");
    let before = snapshot(&nodes, &[]);
    for c in cases() {
        run(&c, &[]);
        run(&c, &["--strategy", "set-true"]);
        run(&c, &["--strategy", "remove"]);
    }
    let after = snapshot(&nodes, &[]);
    assert_eq!(before.len(), after.len());
    assert!(before == after, "a plan run modified testdata/nodes");
}

/// The platforms' real layouts and the controls trees, planned with `--control all`: the text
/// report (every control's verdict, the one diff per file) and, for every file the plan
/// changes, its whole text after the edits (`<tree>.after/<path>`), so a reviewer reads each
/// multi-control fix before and after.
#[test]
fn every_platform_matches_its_golden_controls_plan() {
    let trees = [
        "aks",
        "bottlerocket",
        "config-absolute-symlink",
        "controls-base0-timeouts",
        "controls-config-dropins",
        "controls-feature-gates-ciphers",
        "controls-flags-over-config",
        "controls-hostname-equal",
        "controls-legacy-flags",
        "controls-refused-authz",
        "controls-refused-port",
        "eks-al2",
        "eks-al2023",
        "files-hardened",
        "files-wrong-owners",
        "gke",
        "k3s-agent",
        "kops",
        "kubeadm-deb",
        "kubeadm-rpm",
        "openshift",
        "rke2-server",
    ];
    let mut failures = Vec::new();
    for t in trees {
        // A copy with the platform's modes and owners (`<tree>.modes`): the 4.1 controls judge
        // what a node has, not what a checkout happens to have.
        let copy = tempfile::tempdir().unwrap();
        copy_tree(&repo().join("testdata/nodes").join(t), copy.path());
        check(
            &format!("controls/{t}.txt"),
            &run_at(copy.path(), &["--control", "all", "--offline"]),
            &mut failures,
        );
        let fs = kubelet_remediate::root::NodeFs::new(copy.path());
        let eval = kubelet_remediate::flow::Eval {
            offline: true,
            controls: kubelet_remediate::controls::select(Some("all"), None).unwrap(),
            ..Default::default()
        };
        let (_, _, plan) = kubelet_remediate::flow::evaluate(&fs, &eval).unwrap();
        for c in plan.changes.iter().filter(|c| c.edits_content()) {
            check(
                &format!("controls/{t}.after{}", c.path),
                &c.after,
                &mut failures,
            );
        }
    }
    assert_no_mismatch(&failures);
}

/// The trees with a running kubelet in `/proc` judge the same from a fresh copy (every file
/// written now, as in a fresh clone on a machine up for hours): their process started after
/// any file's time, so no config looks modified after the start.
#[test]
fn running_trees_judge_the_same_from_a_fresh_copy() {
    for case in ["running-config-edited", "running-stale"] {
        let t = tempfile::tempdir().unwrap();
        let src = repo().join("testdata/nodes").join(case);
        let status = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", src.display()))
            .arg(t.path())
            .status()
            .unwrap();
        assert!(status.success());
        let fresh = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
            .args(["plan", "--color", "never", "--root"])
            .arg(t.path())
            .output()
            .unwrap();
        let want =
            std::fs::read_to_string(repo().join(format!("testdata/golden/{case}.txt"))).unwrap();
        let code = want.lines().last().unwrap().trim_start_matches("--- exit ");
        assert_eq!(
            fresh.status.code().unwrap().to_string(),
            code,
            "{case}: {}",
            String::from_utf8_lossy(&fresh.stdout)
        );
    }
}
