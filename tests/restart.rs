//! The whole job against a real systemd: plan, write, reload, restart over D-Bus, settle, verify,
//! and roll back by itself when the kubelet does not come back compliant. Each test boots its
//! own throwaway systemd + dbus-daemon (tests/common/sandbox.rs) with a stand-in kubelet.

mod common;
use common::sandbox::{Sandbox, unavailable};
use common::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn skip() -> bool {
    skip_without(unavailable())
}

/// `kubelet-remediate ARGS --root ROOT AFTER`, with no terminal.
fn run(args: &[&str], root: &Path, after: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args(args)
        .arg("--root")
        .arg(root)
        .args(after)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn apply(sb: &Sandbox, extra: &[&str]) -> Output {
    let args = ["apply", "--yes", "--settle", "1", "--output", "json"];
    run(&args, &sb.root, extra)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The record on stdout, valid against docs/report.schema.json, with the process's exit status.
fn json(o: &Output) -> serde_json::Value {
    let j: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)));
    assert_valid_record(&j);
    assert_eq!(j["exit_code"].as_i64(), o.status.code().map(i64::from));
    j
}

fn kubeadm(case: &str, dropin: &str) -> Sandbox {
    Sandbox::kubeadm(case, dropin)
}

/// `apply --control CONTROLS` that rolls back: exit 1, result rolled-back; its record.
fn rolled_back(sb: &Sandbox, controls: &str) -> serde_json::Value {
    let o = apply(sb, &["--control", controls]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j = json(&o);
    assert_eq!(j["result"], "rolled-back");
    j
}

/// After a roll-back: the env file byte for byte, and the old kubelet active again.
fn assert_restored(sb: &Sandbox, original: &str) {
    assert_eq!(
        sb.file("/etc/default/kubelet"),
        original,
        "restored byte for byte"
    );
    let st = sb.systemd().state("kubelet.service").unwrap();
    assert_eq!(st.active_state, "active");
    assert_eq!(
        sb.live_value(),
        Some(false),
        "running with its old arguments"
    );
}

/// The kubeadm-deb node with this `/etc/default/kubelet`, booted, its kubelet's health endpoint
/// on a port of its own (sandboxes share the host's network).
fn kubeadm_with(env_file: &str, dropin: &str) -> Sandbox {
    let t = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("testdata/nodes/kubeadm-deb"), t.path());
    std::fs::write(t.path().join("etc/default/kubelet"), env_file).unwrap();
    own_healthz_port(t.path());
    Sandbox::boot(t.path(), "kubelet.service", "/usr/bin/kubelet", dropin, &[])
}

#[test]
fn kubeadm_env_file_false_needs_a_restart_only() {
    if skip() {
        return;
    }
    let sb = kubeadm("kubeadm-deb", "");
    assert_eq!(
        sb.live_value(),
        Some(false),
        "the stand-in starts with the flag"
    );
    assert_eq!(
        verify(&sb).status.code(),
        Some(2),
        "verify sees the live false"
    );
    let pid_before = sb.systemd().state("kubelet.service").unwrap().main_pid;
    let t = std::time::Instant::now();
    let o = apply(&sb, &[]);
    let total = t.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = json(&o);
    assert_eq!(j["restart"]["done"], true);
    let r = &j["restart"]["result"];
    assert_eq!(
        r["reloaded"], false,
        "an env file change needs no daemon-reload"
    );
    assert_eq!(
        sb.live_value(),
        Some(true),
        "the restarted stand-in reports true"
    );
    let st = sb.systemd().state("kubelet.service").unwrap();
    assert_eq!(st.active_state, "active");
    assert_ne!(st.main_pid, pid_before);
    assert!(!sb.file("/etc/default/kubelet").contains("make-iptables"));
    let v = verify(&sb);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    // Figures for docs/benchmarks.md (printed, never asserted).
    let ms = |k: &str| r[k].as_u64().unwrap_or(0);
    let systemd = ms("reload_ms") + ms("restart_ms");
    println!(
        "figures: apply to verified {} ms = systemd reload+restart {} ms + settle window {} ms + tool's own work {} ms (writes {} ms, read-back {} ms)",
        total.as_millis(),
        systemd,
        ms("settle_ms"),
        (total.as_millis() as u64).saturating_sub(systemd + ms("settle_ms")),
        j["write_ms"],
        ms("verify_ms")
    );
}

fn verify(sb: &Sandbox) -> Output {
    run(&["verify"], &sb.root, &[])
}

#[test]
fn eks_al2_dropin_false_needs_reload_and_restart() {
    if skip() {
        return;
    }
    let dummy = "[Unit]\nDefaultDependencies=no\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n";
    let slice = "[Unit]\nDefaultDependencies=no\n";
    let sb = Sandbox::boot(
        &repo().join("testdata/nodes/eks-al2"),
        "kubelet.service",
        "/usr/bin/kubelet",
        // The node's ExecStartPre runs iptables, which the sandbox has no business touching.
        "[Service]\nExecStartPre=\n",
        &[
            ("/etc/systemd/system/containerd.service", dummy),
            ("/etc/systemd/system/sandbox-image.service", dummy),
            ("/etc/systemd/system/runtime.slice", slice),
        ],
    );
    assert_eq!(sb.live_value(), Some(false));
    let o = apply(&sb, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = json(&o);
    assert_eq!(
        j["restart"]["result"]["reloaded"], true,
        "a drop-in changed: daemon-reload first"
    );
    assert_eq!(sb.live_value(), Some(true));
    assert!(
        !sb.systemd()
            .state("kubelet.service")
            .unwrap()
            .need_daemon_reload
    );
}

#[test]
fn config_file_false_and_false_in_two_places() {
    if skip() {
        return;
    }
    for case in ["kubeadm-rpm", "false-in-two-places"] {
        let sb = kubeadm(case, "");
        assert_eq!(sb.live_value(), Some(false), "{case}");
        let o = apply(&sb, &[]);
        assert_eq!(o.status.code(), Some(0), "{case}: {}", text(&o));
        assert_eq!(sb.live_value(), Some(true), "{case}");
        assert!(
            sb.file("/var/lib/kubelet/config.yaml")
                .contains("makeIPTablesUtilChains: true"),
            "{case}"
        );
    }
}

/// The kubelet cannot start once the change is in place: the tool restores the files, restarts
/// the old configuration, sees it active again, and exits 1 pointing at the journal.
#[test]
fn a_kubelet_that_fails_after_the_change_is_rolled_back() {
    if skip() {
        return;
    }
    // This node's kubelet refuses to start without the flag (a stand-in for any start failure).
    let sb = kubeadm(
        "kubeadm-deb",
        "[Service]\nExecStartPre=/bin/grep -q make-iptables-util-chains=false /etc/default/kubelet\nRestart=no\n",
    );
    let original = sb.file("/etc/default/kubelet");
    let o = apply(&sb, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("rolled back /etc/default/kubelet"), "{out}");
    assert!(
        out.contains("is active again with its old settings"),
        "{out}"
    );
    assert!(out.contains("journalctl -u kubelet.service"), "{out}");
    assert!(
        !out.contains("nothing was changed"),
        "files were written and restored: {out}"
    );
    let j = json(&o);
    assert_eq!(j["result"], "rolled-back");
    assert_eq!(j["error"]["files_changed"], true);
    assert_eq!(j["rolled_back"]["restored"][0], "/etc/default/kubelet");
    assert_eq!(j["restart"]["done"], true);
    assert_restored(&sb, &original);
}

/// The new kubelet starts but does not stay up: the settle window sees it, and the tool rolls
/// back and brings the old configuration up again.
#[test]
fn a_kubelet_that_dies_after_starting_is_rolled_back() {
    if skip() {
        return;
    }
    let sb = kubeadm(
        "kubeadm-deb",
        "[Service]\nEnvironment=STAND_IN_CRASH_WHEN_TRUE=1\nRestart=always\nRestartSec=100ms\n",
    );
    let original = sb.file("/etc/default/kubelet");
    let o = apply(&sb, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("restarted by itself during the settle window")
            || out.contains("after the restart"),
        "{out}"
    );
    assert!(
        out.contains("is active again with its old settings"),
        "{out}"
    );
    assert_eq!(sb.file("/etc/default/kubelet"), original);
    assert_eq!(sb.live_value(), Some(false));
    assert_eq!(
        sb.systemd().state("kubelet.service").unwrap().active_state,
        "active"
    );
}

/// The files were fixed by hand but the kubelet was never restarted: `apply` writes nothing
/// and restarts it, and the live value becomes true.
#[test]
fn a_stale_running_kubelet_is_only_restarted() {
    if skip() {
        return;
    }
    let sb = kubeadm("kubeadm-deb", "");
    let f = sb.root.join("etc/default/kubelet");
    let fixed = sb
        .file("/etc/default/kubelet")
        .replace(" --make-iptables-util-chains=false", "");
    std::fs::write(&f, &fixed).unwrap();
    assert_eq!(
        sb.live_value(),
        Some(false),
        "still running with the old flag"
    );
    let o = apply(&sb, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = json(&o);
    assert_eq!(j["applied"], serde_json::Value::Null);
    assert_eq!(j["result"], "changed");
    assert_eq!(j["restart"]["done"], true);
    assert_eq!(sb.live_value(), Some(true));
    assert_eq!(sb.file("/etc/default/kubelet"), fixed, "nothing written");
    assert!(
        !sb.root.join("var/lib/kubelet-remediate/backups").exists(),
        "no backup: nothing was written"
    );
}

#[test]
fn no_reachable_bus_changes_nothing() {
    let t = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("testdata/nodes/kubeadm-deb"), t.path());
    let before = std::fs::read(t.path().join("etc/default/kubelet")).unwrap();
    let o = run(&["apply", "--yes"], t.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(out.contains("cannot reach systemd over D-Bus"), "{out}");
    assert!(
        out.contains(&format!(
            "unix:path={}/run/systemd/private",
            t.path().display()
        )),
        "{out}"
    );
    assert!(out.contains("run/dbus/system_bus_socket"), "{out}");
    assert_eq!(
        std::fs::read(t.path().join("etc/default/kubelet")).unwrap(),
        before
    );
    assert!(
        !t.path().join("var/lib/kubelet-remediate").exists(),
        "no backup either"
    );
}

/// A second `apply --yes` right after a fix must see the restarted kubelet as compliant: the
/// config file was written just before the restart, and must not look modified after it.
#[test]
fn a_second_apply_does_not_restart_again() {
    if skip() {
        return;
    }
    let sb = kubeadm("kubeadm-rpm", "");
    assert_eq!(sb.live_value(), Some(false));
    let o = apply(&sb, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let pid = sb.systemd().state("kubelet.service").unwrap().main_pid;
    let again = apply(&sb, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let j = json(&again);
    assert_eq!(j["result"], "compliant", "{}", text(&again));
    assert_eq!(j["report"]["compliant"], true, "{}", text(&again));
    assert!(
        j["report"]["changes"]
            .as_array()
            .is_some_and(|c| c.is_empty())
    );
    assert_eq!(
        sb.systemd().state("kubelet.service").unwrap().main_pid,
        pid,
        "the second apply restarted the kubelet again"
    );
}

/// `verify` reports the files too: after a rollback without a restart the running kubelet
/// still has true, but the next restart brings false back, so the node is not compliant.
#[test]
fn verify_reports_files_that_say_false() {
    if skip() {
        return;
    }
    let sb = kubeadm("kubeadm-rpm", "");
    let o = apply(&sb, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(verify(&sb).status.code(), Some(0));
    let id = json(&o)["applied"]["backup_id"]
        .as_str()
        .unwrap()
        .to_string();
    let rb = run(&["rollback", "--yes", "--no-restart"], &sb.root, &[&id]);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb));
    assert_eq!(sb.live_value(), Some(true), "no restart happened");
    let v = verify(&sb);
    let out = text(&v);
    assert_eq!(v.status.code(), Some(2), "{out}");
    // Both sources are reported: the process (whose config changed under it, so what it
    // loaded is unknown from disk) and the files, which say false.
    let line = |src: &str| {
        out.lines()
            .find(|l| l.starts_with(src))
            .unwrap_or("")
            .to_string()
    };
    assert!(
        line("the running kubelet").contains("changed since it started"),
        "{out}"
    );
    assert!(
        line("the files on disk").contains("makeIPTablesUtilChains false"),
        "{out}"
    );
}

/// `rollback` restarts the kubelet with the restored files and watches it settle, like `apply`.
#[test]
fn rollback_restarts_the_kubelet_with_the_restored_files() {
    if skip() {
        return;
    }
    let sb = kubeadm("kubeadm-rpm", "");
    let original = sb.file("/etc/sysconfig/kubelet");
    let o = apply(&sb, &[]);
    assert_eq!(json(&o)["result"], "changed", "{}", text(&o));
    let fixed_pid = sb.systemd().state("kubelet.service").unwrap().main_pid;
    assert_eq!(sb.live_value(), Some(true));
    let rollback = [
        "rollback", "--last", "--yes", "--settle", "1", "--output", "json",
    ];
    let rb = run(&rollback, &sb.root, &[]);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb));
    let j = json(&rb);
    assert_eq!(j["result"], "rolled-back");
    assert_eq!(j["restart"]["done"], true);
    assert_eq!(j["restart"]["value"], false, "the restored files say false");
    let pid = sb.systemd().state("kubelet.service").unwrap().main_pid;
    assert_ne!(pid, fixed_pid, "restarted");
    assert_eq!(j["restart"]["result"]["main_pid"], pid);
    assert_eq!(sb.file("/etc/sysconfig/kubelet"), original);
    assert_eq!(sb.live_value(), Some(false));
}

/// Several controls in one apply: one transaction, one restart, and the restarted kubelet runs
/// without every offending flag (`--control` names them; the flags are in one env file).
#[test]
fn several_controls_are_fixed_with_one_restart() {
    if skip() {
        return;
    }
    let sb = kubeadm_with(
        "# Extra kubelet flags for this node (kept across kubeadm upgrades).\nKUBELET_EXTRA_ARGS=--node-ip=10.0.1.23 --read-only-port=10255 --make-iptables-util-chains=false --feature-gates=RotateKubeletServerCertificate=false,KubeletTracing=true --streaming-connection-idle-timeout=0s\n",
        "",
    );
    let controls = "make-iptables-util-chains,read-only-port,rotate-server-certificates,streaming-connection-idle-timeout";
    let o = apply(&sb, &["--control", controls]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = json(&o);
    assert_eq!(j["result"], "changed");
    let changes = j["report"]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "one diff for the one file");
    assert_eq!(changes[0]["controls"].as_array().unwrap().len(), 4);
    assert_eq!(j["restart"]["done"], true);
    assert_eq!(
        sb.file("/etc/default/kubelet"),
        "# Extra kubelet flags for this node (kept across kubeadm upgrades).\nKUBELET_EXTRA_ARGS=--node-ip=10.0.1.23 --feature-gates=KubeletTracing=true\n"
    );
    // The restarted stand-in got exactly the remaining flags.
    let argv: Vec<String> = serde_json::from_value(sb.configz().unwrap()["argv"].clone()).unwrap();
    assert!(
        argv.contains(&"--feature-gates=KubeletTracing=true".to_string()),
        "{argv:?}"
    );
    assert!(
        !argv.iter().any(|a| a.contains("read-only-port")),
        "{argv:?}"
    );
    // Every control passes now, in every source.
    let v = run(
        &["verify", "--output", "json", "--control", controls],
        &sb.root,
        &[],
    );
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
}

/// When the kubelet does not come back after a multi-control apply, every file is restored
/// and the old kubelet runs again.
#[test]
fn a_multi_control_apply_is_rolled_back_whole() {
    if skip() {
        return;
    }
    // This node's kubelet refuses to start without its read-only port flag.
    let original = "KUBELET_EXTRA_ARGS=--node-ip=10.0.1.23 --read-only-port=10255 --make-iptables-util-chains=false\n";
    let sb = kubeadm_with(
        original,
        "[Service]\nExecStartPre=/bin/grep -q read-only-port=10255 /etc/default/kubelet\nRestart=no\n",
    );
    let modes = |sb: &Sandbox| {
        [
            "/usr/lib/systemd/system/kubelet.service",
            "/var/lib/kubelet/config.yaml",
            "/etc/kubernetes/kubelet.conf",
        ]
        .map(|p| mode_owner(&sb.root.join(p.trim_start_matches('/'))))
    };
    let before = modes(&sb);
    let j = rolled_back(&sb, "all");
    let changes = j["report"]["changes"].as_array().unwrap();
    assert_eq!(
        changes[0]["controls"],
        serde_json::json!(["read-only-port", "make-iptables-util-chains"])
    );
    // The 4.1 chmods were part of the same apply, and are rolled back with it.
    assert!(
        changes.iter().any(|c| c["mode"]["to"] == "0600"),
        "{changes:?}"
    );
    assert_restored(&sb, original);
    assert_eq!(modes(&sb), before, "modes and owners restored");
}

/// A kubelet that comes back active but does not serve its health endpoint (a broken TLS or
/// authentication change looks like this): with --control, apply rolls everything back.
#[test]
fn a_kubelet_that_runs_but_does_not_serve_is_rolled_back() {
    if skip() {
        return;
    }
    let original = "KUBELET_EXTRA_ARGS=--node-ip=10.0.1.23 --read-only-port=10255\n";
    // Only the new process (started without the flag) stops serving: the drop-in's
    // ExecStartPre marks it.
    let sb = kubeadm_with(
        original,
        "[Service]\nExecStartPre=/bin/sh -c 'grep -q read-only-port=10255 /etc/default/kubelet || echo STAND_IN_NO_HEALTHZ=1 > /run/stand-in-env'\nExecStartPre=/bin/touch /run/stand-in-env\nEnvironmentFile=-/run/stand-in-env\n",
    );
    let j = rolled_back(&sb, "read-only-port");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not healthy"),
        "{}",
        j["error"]
    );
    assert_eq!(
        sb.file("/etc/default/kubelet"),
        original,
        "restored byte for byte"
    );
    let st = sb.systemd().state("kubelet.service").unwrap();
    assert_eq!(st.active_state, "active");
}
