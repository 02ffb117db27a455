//! The container image (`scripts/build-image.sh`, which `.ci/run` runs before the tests):
//! `FROM scratch` with the static binary, run by podman + runc as a pod would run it: the
//! node's root at /host (read-only for plan), and for `apply --yes` a real systemd node with
//! its bus directory mounted and the host PID namespace, from inside that node's namespaces.

mod common;
use common::sandbox::{Sandbox, unavailable};
use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

const TAG: &str = "kubelet-remediate:ci";

fn archive() -> PathBuf {
    repo().join("target/image/kubelet-remediate.oci.tar")
}

/// podman with the runtime that works here, the limits runc can set, no network.
fn podman(prefix: &[&str]) -> Command {
    let (first, rest) = prefix.split_first().unwrap();
    let mut c = Command::new(first);
    c.args(rest).args(["podman", "--runtime", "/usr/sbin/runc"]);
    c
}

fn run_args() -> Vec<&'static str> {
    vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=512:512",
    ]
}

fn missing() -> Option<String> {
    if !archive().exists() {
        return Some(format!(
            "{} is missing: run scripts/build-image.sh {TAG} (as .ci/run does)",
            archive().display()
        ));
    }
    let ok = Command::new("podman")
        .args(["image", "exists", TAG])
        .status()
        .is_ok_and(|s| s.success());
    (!ok).then(|| format!("podman has no image {TAG}: run scripts/build-image.sh {TAG}"))
}

fn record(o: &Output) -> Value {
    let j: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert_valid_record(&j);
    assert_eq!(j["exit_code"].as_i64(), o.status.code().map(i64::from));
    j
}

#[test]
fn the_image_is_the_static_binary_alone_and_plans_like_the_test_build() {
    if skip_without(missing()) {
        return;
    }
    let o = Command::new("podman")
        .args(["image", "inspect", TAG])
        .output()
        .unwrap();
    let info: Value = serde_json::from_slice(&o.stdout).unwrap();
    let cfg = &info[0]["Config"];
    assert_eq!(cfg["Entrypoint"][0], "/kubelet-remediate");
    assert_eq!(cfg["User"], "0:0");
    assert_eq!(
        info[0]["RootFS"]["Layers"].as_array().unwrap().len(),
        1,
        "one layer: the binary"
    );
    let native = env!("CARGO_BIN_EXE_kubelet-remediate");
    for case in [
        "eks-al2",
        "eks-al2023",
        "kubeadm-deb",
        "gke",
        "aks",
        "k3s-agent",
        "bottlerocket",
    ] {
        let tree = repo().join("testdata/nodes").join(case);
        let mut c = podman(&["env"]);
        c.args(run_args())
            .arg("-v")
            .arg(format!("{}:/host:ro", tree.display()))
            .args([
                TAG,
                "plan",
                "--root",
                "/host",
                "--offline",
                "--output",
                "json",
            ]);
        let j = record(&c.output().unwrap());
        let n = Command::new(native)
            .args(["plan", "--offline", "--output", "json", "--root"])
            .arg(&tree)
            .output()
            .unwrap();
        let want: Value = serde_json::from_slice(&n.stdout).unwrap();
        assert_eq!(j["report"], want["report"], "{case}");
        assert_eq!(
            j["node"]["name"], want["node"]["name"],
            "{case}: /etc/hostname under /host"
        );
        assert_eq!(j["node"]["root"], "/host");
    }
}

/// The pod's view of a real node: podman runs inside the sandbox node's mount and PID
/// namespaces (its `/` is the node's root), with `/` at /host, /run/dbus and /run/systemd
/// mounted as directories, and `--pid host`, as the system-upgrade-controller Plan does.
#[test]
fn apply_in_the_image_fixes_and_restarts_a_real_systemd_node() {
    if skip_without(missing()) || skip_without(unavailable()) {
        return;
    }
    let sb = Sandbox::kubeadm("kubeadm-deb", "");
    let before = sb.systemd().state("kubelet.service").unwrap().main_pid;
    assert_eq!(sb.live_value(), Some(false));
    // The image goes into the node's own (tmpfs) storage.
    std::fs::copy(archive(), sb.root.join("tmp/image.oci.tar")).unwrap();
    let pid = sb.pid1.to_string();
    let inside = ["nsenter", "-t", pid.as_str(), "-m", "-p", "--"];
    let load = podman(&inside)
        .args(["load", "-q", "-i", "/tmp/image.oci.tar"])
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let image = String::from_utf8_lossy(&load.stdout)
        .trim()
        .trim_start_matches("Loaded image: ")
        .to_string();
    // The audit DaemonSet's container: read-only mounts and root filesystem, every
    // capability dropped but DAC_READ_SEARCH and SYS_PTRACE, the host PID namespace: it sees
    // the running kubelet.
    let mut audit = podman(&inside);
    audit.args(run_args()).args([
        "--read-only",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "DAC_READ_SEARCH",
        "--cap-add",
        "SYS_PTRACE",
        "--security-opt",
        "no-new-privileges",
        "--pid",
        "host",
        "-v",
        "/:/host:ro",
        "-e",
        "NODE_NAME=node-1",
        &image,
        "plan",
        "--root",
        "/host",
        "--output",
        "json",
    ]);
    let j = record(&audit.output().unwrap());
    assert_eq!(j["result"], "non-compliant", "{j:#}");
    assert_eq!(
        j["report"]["running"]["pid"], before,
        "the audit sees the kubelet"
    );
    assert_eq!(j["report"]["running"]["value"], false);

    let mut c = podman(&inside);
    c.args(run_args()).args([
        // As the Plan's securityContext: privileged (the pod reads the kubelet's /proc/PID
        // links and environment, and restarts units as root).
        "--privileged",
        "--pid",
        "host",
        "-v",
        "/:/host",
        "-v",
        "/run/dbus:/host/run/dbus",
        "-v",
        "/run/systemd:/host/run/systemd",
        "-e",
        "SYSTEM_UPGRADE_NODE_NAME=node-1",
        &image,
        "apply",
        "--yes",
        "--root",
        "/host",
        "--output",
        "json",
        "--settle",
        "1",
    ]);
    let o = c.output().unwrap();
    let j = record(&o);
    assert_eq!(j["result"], "changed", "{j:#}");
    assert_eq!(j["node"]["name"], "node-1");
    assert_eq!(j["node"]["name_from"], "SYSTEM_UPGRADE_NODE_NAME");
    let after = sb.systemd().state("kubelet.service").unwrap().main_pid;
    assert_ne!(after, before, "restarted");
    assert_eq!(j["restart"]["result"]["main_pid"], after);
    assert_eq!(sb.live_value(), Some(true));
    // A re-run (SUC retries a Job) finds the node compliant: exit 0, nothing restarted.
    let again = record(&c.output().unwrap());
    assert_eq!(again["result"], "compliant");
    assert_eq!(
        sb.systemd().state("kubelet.service").unwrap().main_pid,
        after
    );
}
