//! The Ansible role on a real fleet: six sandbox nodes, each a real systemd + dbus-daemon with
//! a stand-in kubelet, rolled through `deploy/ansible/remediate.yml` by ansible-core (from the
//! venv `.ci/run` creates) with `serial: 2`. A dry run (--check --diff) changes nothing; then
//! the non-compliant nodes end compliant with a new kubelet, the compliant one keeps its pid,
//! the node rigged to fail is rolled back with its kubelet active, the rollout stops after its
//! batch, and `summarize` over the saved records agrees.

mod common;
use common::sandbox::{Sandbox, unavailable};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

/// ansible-playbook from the project's venv (`.ci/run` makes it), or `ANSIBLE_PLAYBOOK`.
fn ansible_playbook() -> Option<PathBuf> {
    let p = std::env::var_os("ANSIBLE_PLAYBOOK")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/ansible-playbook"));
    built(
        p,
        "python3 -m venv .venv && .venv/bin/pip install ansible-core",
    )
}

struct Node {
    name: &'static str,
    sb: Sandbox,
    /// The file that holds the false (or, on the compliant node, the one that would).
    file: &'static str,
    before: String,
    pid: u32,
}

fn pid(sb: &Sandbox) -> u32 {
    sb.systemd().state("kubelet.service").unwrap().main_pid
}

fn boot(name: &'static str, tree: &str, dropin: &str, file: &'static str) -> Node {
    let sb = Sandbox::kubeadm(tree, dropin);
    let before = sb.file(file);
    let pid = pid(&sb);
    Node {
        name,
        sb,
        file,
        before,
        pid,
    }
}

/// Every node's file and kubelet process as they were booted.
fn untouched(nodes: &[Node], by: &str) {
    for n in nodes {
        assert_eq!(
            n.sb.file(n.file),
            n.before,
            "{}: {by} changed a file",
            n.name
        );
        assert_eq!(pid(&n.sb), n.pid, "{}: {by} restarted the kubelet", n.name);
    }
}

fn playbook(
    bin: &Path,
    work: &Path,
    inventory: &Path,
    reports: &Path,
    extra: &[&str],
) -> (Output, f64) {
    let t = Instant::now();
    let o = Command::new(bin)
        .arg("-i")
        .arg(inventory)
        .arg(repo().join("deploy/ansible/remediate.yml"))
        .args([
            "-e",
            &format!(
                "kubelet_remediate_binary={}",
                env!("CARGO_BIN_EXE_kubelet-remediate")
            ),
            "-e",
            &format!("kubelet_remediate_report_dir={}", reports.display()),
            "-e",
            "kubelet_remediate_mode=apply",
            "-e",
            "kubelet_remediate_serial=2",
            "-e",
            "kubelet_remediate_settle=1",
        ])
        .args(extra)
        .env("ANSIBLE_HOME", work.join("ansible-home"))
        .env("ANSIBLE_LOCAL_TEMP", work.join("ansible-tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOST_KEY_CHECKING", "0")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .output()
        .unwrap();
    (o, t.elapsed().as_secs_f64())
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// What the role's module task said for `host`: `ok`, `changed`, `fatal` (None: not run).
fn module_status(out: &str, host: &str) -> Option<String> {
    let mut in_task = false;
    for l in out.lines() {
        if l.starts_with("TASK [") {
            in_task =
                l.starts_with("TASK [kubelet_remediate.cis.remediate : Run kubelet-remediate");
            continue;
        }
        if in_task
            && let Some((status, rest)) = l.split_once(": [")
            && rest.starts_with(&format!("{host}]"))
        {
            return Some(status.to_string());
        }
    }
    None
}

/// `PLAY RECAP` line of one host: (ok, changed, failed).
fn recap(out: &str, host: &str) -> Option<(u32, u32, u32)> {
    let line = out
        .lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .find(|l| l.split_whitespace().next() == Some(host))?;
    let field = |k: &str| -> u32 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some((field("ok"), field("changed"), field("failed")))
}

#[test]
fn the_role_rolls_the_fix_through_a_fleet_and_stops_at_the_first_failure() {
    if skip_without(unavailable()) {
        return;
    }
    let Some(bin) = ansible_playbook() else {
        return;
    };
    let fail_start = "[Service]\nExecStartPre=/bin/grep -q make-iptables-util-chains=false /etc/default/kubelet\nRestart=no\n";
    // Inventory order is rollout order: batches [a b] [c d] [e f].
    let nodes = [
        boot("node-a", "kubeadm-deb", "", "/etc/default/kubelet"),
        boot("node-b", "last-wins-true-last", "", "/etc/default/kubelet"),
        boot("node-c", "kubeadm-deb", fail_start, "/etc/default/kubelet"),
        boot("node-d", "kubeadm-rpm", "", "/var/lib/kubelet/config.yaml"),
        boot("node-e", "kubeadm-deb", "", "/etc/default/kubelet"),
        boot("node-f", "kubeadm-rpm", "", "/var/lib/kubelet/config.yaml"),
    ];
    let work = tempfile::tempdir().unwrap();
    let reports = work.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    let python = bin.parent().unwrap().join("python3");
    let mut inv = String::from("kubelet_nodes:\n  hosts:\n");
    for n in &nodes {
        let install = work.path().join(n.name).join("kubelet-remediate");
        inv += &format!(
            "    {}:\n      ansible_connection: local\n      ansible_python_interpreter: {}\n      kubelet_remediate_root: {}\n      kubelet_remediate_dbus_address: \"{}\"\n      kubelet_remediate_install_path: {}\n",
            n.name,
            python.display(),
            n.sb.root.display(),
            n.sb.bus(),
            install.display()
        );
        std::fs::create_dir_all(install.parent().unwrap()).unwrap();
    }
    let inventory = work.path().join("inventory.yml");
    std::fs::write(&inventory, inv).unwrap();

    // 1. Plan mode installs the tool and reports; the kubelets' files and processes stay.
    let (o, _) = playbook(
        &bin,
        work.path(),
        &inventory,
        &reports,
        &["-e", "kubelet_remediate_mode=plan"],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    untouched(&nodes, "plan mode");

    // 2. --check --diff in apply mode: every host evaluated, nothing changed, the diffs shown.
    let (o, _) = playbook(
        &bin,
        work.path(),
        &inventory,
        &reports,
        &["--check", "--diff"],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("-KUBELET_EXTRA_ARGS="), "no diff shown: {out}");
    untouched(&nodes, "--check");
    for n in &nodes {
        let (_, _, failed) = recap(&out, n.name).unwrap_or_else(|| panic!("{}: {out}", n.name));
        assert_eq!(failed, 0, "{}", n.name);
        // Would change: all but node-b.
        let want = if n.name == "node-b" { "ok" } else { "changed" };
        assert_eq!(
            module_status(&out, n.name).as_deref(),
            Some(want),
            "{}: {out}",
            n.name
        );
        let j: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(reports.join(format!("{}.json", n.name))).unwrap(),
        )
        .unwrap_or_else(|_| panic!("{}: no record saved under --check", n.name));
        assert_eq!(j["command"], "plan");
    }

    // 3. The rollout.
    let (o, wall) = playbook(&bin, work.path(), &inventory, &reports, &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "failed hosts: {out}");
    let record = |name: &str| -> serde_json::Value {
        let j: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(reports.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        assert_valid_record(&j);
        j
    };
    let mut tool_ms = Vec::new();
    for n in &nodes {
        let j = record(n.name);
        let now = pid(&n.sb);
        let (_, _, failed) = recap(&out, n.name).unwrap_or((0, 0, 0));
        let status = module_status(&out, n.name);
        match n.name {
            "node-a" | "node-d" => {
                assert_eq!(j["result"], "changed", "{}: {out}", n.name);
                assert_ne!(now, n.pid, "{}: not restarted", n.name);
                assert_eq!(n.sb.live_value(), Some(true), "{}", n.name);
                assert_ne!(n.sb.file(n.file), n.before, "{}", n.name);
                assert_eq!(status.as_deref(), Some("changed"), "{}: {out}", n.name);
                assert_eq!(failed, 0, "{}: {out}", n.name);
                tool_ms.push(j["timings"]["total_ms"].as_u64().unwrap());
            }
            "node-b" => {
                assert_eq!(j["result"], "compliant", "{out}");
                assert_eq!(now, n.pid, "node-b: a compliant kubelet was restarted");
                assert_eq!(status.as_deref(), Some("ok"), "{out}");
                assert_eq!(failed, 0);
                // Saving its record is the controller's bookkeeping, not a change.
                assert_eq!(recap(&out, "node-b").map(|r| r.1), Some(0), "{out}");
                tool_ms.push(j["timings"]["total_ms"].as_u64().unwrap());
            }
            "node-c" => {
                assert_eq!(j["result"], "rolled-back", "{out}");
                assert_eq!(failed, 1, "{out}");
                assert_eq!(status.as_deref(), Some("fatal"), "{out}");
                assert_eq!(n.sb.file(n.file), n.before, "node-c: not restored");
                let st = n.sb.systemd().state("kubelet.service").unwrap();
                assert_eq!(st.active_state, "active", "node-c: kubelet not back");
                assert_eq!(n.sb.live_value(), Some(false));
                tool_ms.push(j["timings"]["total_ms"].as_u64().unwrap());
            }
            _ => {
                // After node-c's batch the play stopped: untouched, their record the dry run's.
                assert_eq!(
                    j["command"], "plan",
                    "{}: the rollout went on: {out}",
                    n.name
                );
                assert_eq!(now, n.pid, "{}", n.name);
                assert_eq!(n.sb.file(n.file), n.before, "{}", n.name);
                assert_eq!(status, None, "{}: {out}", n.name);
            }
        }
    }

    // 4. summarize over the report dir agrees.
    let s = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .arg("summarize")
        .arg(&reports)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&s.stdout);
    assert_eq!(s.status.code(), Some(2), "{table}");
    assert!(
        table.starts_with("6 nodes (6 records read): 3 compliant, 3 not\n"),
        "{table}"
    );
    assert!(
        table.contains("\n  node-c  rolled-back (apply, exit 1): "),
        "{table}"
    );
    assert!(
        table.contains("\n  node-e  non-compliant (plan, exit 2): "),
        "{table}"
    );
    println!(
        "fleet: {} nodes, rollout wall time {wall:.1} s (serial 2, settle 1 s), per-node tool time {:?} ms",
        nodes.len(),
        tool_ms
    );

    // 5. Again over the compliant hosts: nothing to do, so every host is ok with changed=0.
    let (o, _) = playbook(
        &bin,
        work.path(),
        &inventory,
        &reports,
        &["--limit", "node-a,node-b,node-d"],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for name in ["node-a", "node-b", "node-d"] {
        let (ok, changed, failed) = recap(&out, name).unwrap_or_else(|| panic!("{name}: {out}"));
        assert_eq!(
            (changed, failed),
            (0, 0),
            "{name}: a second run is not nothing to do: {out}"
        );
        assert!(ok > 0, "{name}: {out}");
    }

    // 6. With controls: what needs a person (a serving certificate) is reported, not a failed
    // host, and every record carries each control's verdict.
    let (o, _) = playbook(
        &bin,
        work.path(),
        &inventory,
        &reports,
        &[
            "--limit",
            "node-a,node-d",
            "-e",
            r#"{"kubelet_remediate_controls": ["read-only-port", "tls-cert-file"]}"#,
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("controls that need a person: tls-cert-file"),
        "{out}"
    );
    for name in ["node-a", "node-d"] {
        let j = record(name);
        assert_eq!(j["result"], "non-compliant", "{name}");
        let ids: Vec<&str> = j["report"]["controls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["read-only-port", "tls-cert-file"], "{name}");
        assert_eq!(recap(&out, name).map(|r| r.2), Some(0), "{name}: {out}");
    }
}
