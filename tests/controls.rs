//! `--control` and `--benchmark` on every shipped tree: one valid record with one verdict per
//! control, each status what the effective values say under the benchmark's rule, the exit
//! status the contract gives, and the selection's usage errors.

mod common;
use common::*;
use kubelet_remediate::controls::{self, CONTROLS};
use std::process::{Command, Output, Stdio};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn plan_json(tree: &std::path::Path, extra: &[&str]) -> (serde_json::Value, i32) {
    let root = tree.to_str().unwrap();
    let mut args = vec!["plan", "--offline", "-o", "json", "--root", root];
    args.extend_from_slice(extra);
    let o = run(&args);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    (j, o.status.code().unwrap())
}

#[test]
fn every_tree_gets_one_verdict_per_control_under_every_benchmark() {
    for tree in node_trees() {
        let name = tree.file_name().unwrap().to_string_lossy().into_owned();
        for benchmark in ["cis-1.12", "cis-1.24", "eks-1.8.0", "aks-1.8", "gke-1.9.0"] {
            let (j, code) = plan_json(&tree, &["--control", "all", "--benchmark", benchmark]);
            assert_valid_record(&j);
            assert_eq!(j["exit_code"], code, "{name}");
            let r = &j["report"];
            if r.is_null() {
                // The node cannot be read: an error, never a verdict.
                assert_eq!(code, 1, "{name}");
                continue;
            }
            assert_eq!(r["benchmark"], benchmark);
            let got = r["controls"].as_array().unwrap();
            let ids: Vec<&str> = got.iter().map(|c| c["id"].as_str().unwrap()).collect();
            let all: Vec<&str> = CONTROLS.iter().map(|c| c.id).collect();
            assert_eq!(ids, all, "{name}: every row, in table order");
            for c in got {
                let row = controls::get(c["id"].as_str().unwrap()).unwrap();
                let cis = row.cis_in(benchmark);
                assert_eq!(c["cis"].as_str(), cis.map(|(id, _)| id), "{name}");
                assert_eq!(c["automated"].as_bool(), cis.map(|(_, a)| a), "{name}");
                // Refused everywhere or nowhere: the kubelet starts or it does not. The 4.1
                // controls judge the files, whatever the kubelet makes of their content.
                assert_eq!(
                    c["status"] == "refused",
                    !r["refused"].is_null() && row.file.is_none(),
                    "{name}: {c}"
                );
            }
            let passing = got.iter().all(|c| c["status"] == "pass");
            assert_eq!(r["compliant"], passing, "{name} {benchmark}");
            let want = if !r["refused"].is_null() {
                1
            } else if r["platform"]["managed"] == true && !passing {
                3
            } else if passing {
                0
            } else {
                2
            };
            assert_eq!(code, want, "{name} {benchmark}: {}", j["result"]);
        }
    }
}

/// The rules that depend on the benchmark: event-qps needs exactly 0 in cis-1.20/1.23, aks and
/// gke-1.6.0; the cipher list of cis-1.12 drops the two TLS_RSA suites.
#[test]
fn benchmark_rules_are_read_in_the_chosen_benchmark() {
    let t = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("testdata/nodes/kubeadm-deb"), t.path());
    std::fs::write(
        t.path().join("etc/default/kubelet"),
        "KUBELET_EXTRA_ARGS=\"--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_GCM_SHA256\"\n",
    )
    .unwrap();
    let status = |benchmark: &str, id: &str| {
        let (j, _) = plan_json(t.path(), &["--control", id, "--benchmark", benchmark]);
        j["report"]["controls"][0]["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status("cis-1.12", "event-qps"), "pass");
    assert_eq!(status("cis-1.24", "event-qps"), "pass");
    assert_eq!(status("cis-1.20", "event-qps"), "fail");
    assert_eq!(status("aks-1.8", "event-qps"), "fail");
    assert_eq!(status("cis-1.11", "tls-cipher-suites"), "pass");
    assert_eq!(status("cis-1.12", "tls-cipher-suites"), "fail");
    // eks has no cipher control: judged by cis-1.12's list, with cis null.
    let (j, _) = plan_json(
        t.path(),
        &["--control", "tls-cipher-suites", "--benchmark", "eks-1.8.0"],
    );
    let c = &j["report"]["controls"][0];
    assert_eq!(c["status"], "fail");
    assert!(c["cis"].is_null());
    assert_eq!(
        c["effective"]["value"],
        serde_json::json!([
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_RSA_WITH_AES_128_GCM_SHA256"
        ])
    );
    assert_eq!(c["effective"]["source"]["kind"], "command-line");
    assert_eq!(c["effective"]["source"]["path"], "/etc/default/kubelet");
}

/// Without --control, the record judges the first control alone, and plans exactly as before:
/// the same result, exit status and changes as with `--control make-iptables-util-chains`.
#[test]
fn without_control_the_first_control_alone() {
    for tree in node_trees() {
        let (a, ca) = plan_json(&tree, &[]);
        let (b, cb) = plan_json(&tree, &["--control", "make-iptables-util-chains"]);
        assert_eq!(ca, cb, "{}", tree.display());
        assert_eq!(a["result"], b["result"]);
        assert_eq!(a["report"]["changes"], b["report"]["changes"]);
        if !a["report"].is_null() {
            assert_eq!(a["report"]["controls"].as_array().unwrap().len(), 1);
        }
    }
}

#[test]
fn controls_are_picked_by_id_cis_id_or_all_and_unknown_ones_are_usage_errors() {
    let sel = controls::select(Some("4.2.4,anonymous-auth"), Some("cis-1.12")).unwrap();
    assert_eq!(sel.ids, ["anonymous-auth", "read-only-port"]);
    assert!(sel.explicit);
    let sel = controls::select(Some("3.2.6"), Some("eks-1.8.0")).unwrap();
    assert_eq!(sel.ids, ["make-iptables-util-chains"]);
    // 4.2.6 is protect-kernel-defaults in cis-1.24 and make-iptables-util-chains in cis-1.12.
    let old = controls::select(Some("4.2.6"), Some("cis-1.24")).unwrap();
    assert_eq!(old.ids, ["protect-kernel-defaults"]);
    let all = controls::select(Some("all"), None).unwrap();
    assert_eq!(all.ids.len(), CONTROLS.len());
    assert!(!all.explicit);
    assert!(controls::select(None, None).unwrap().default);
    let root = repo().join("testdata/nodes/kubeadm-deb");
    let root = root.to_str().unwrap();
    for bad in [
        vec!["plan", "--root", root, "--control", "4.2.99"],
        vec!["plan", "--root", root, "--control", "3.2.1"],
        vec!["apply", "--root", root, "--control", "nope", "--yes"],
        vec!["verify", "--root", root, "--control", ","],
        vec!["plan", "--root", root, "--benchmark", "cis-9"],
        vec!["controls", "--benchmark", "eks"],
    ] {
        let o = run(&bad);
        assert_eq!(o.status.code(), Some(64), "{bad:?}");
        assert!(o.stdout.is_empty(), "{bad:?}");
    }
}

#[test]
fn the_controls_command_lists_the_table() {
    let o = run(&["controls", "--benchmark", "cis-1.24", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["benchmark"], "cis-1.24");
    let rows = j["controls"].as_array().unwrap();
    assert_eq!(rows.len(), CONTROLS.len());
    let pkd = rows
        .iter()
        .find(|r| r["id"] == "protect-kernel-defaults")
        .unwrap();
    assert_eq!(pkd["cis"], "4.2.6");
    assert_eq!(pkd["automated"], true);
    let pids = rows.iter().find(|r| r["id"] == "pod-max-pids").unwrap();
    assert!(pids["cis"].is_null());
    let text = String::from_utf8(run(&["controls"]).stdout).unwrap();
    assert!(text.contains("4.2.6   make-iptables-util-chains"), "{text}");
}

/// A copy of a shipped tree with some files replaced, planned with `--control`.
fn plan_modified(tree: &str, files: &[(&str, &str)], extra: &[&str]) -> serde_json::Value {
    let t = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("testdata/nodes").join(tree), t.path());
    for (path, text) in files {
        let p = t.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        if text.is_empty() {
            let _ = std::fs::remove_file(&p);
        } else {
            std::fs::write(&p, text).unwrap();
        }
    }
    plan_json(t.path(), extra).0
}

fn after(j: &serde_json::Value) -> String {
    j["report"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["diff"].as_str().unwrap())
        .collect()
}

#[test]
fn hostname_override_is_removed_only_when_it_is_the_host_name() {
    let env = "KUBELET_EXTRA_ARGS=\"--node-ip=10.0.1.23 --hostname-override=Worker-01 \"\n";
    let j = plan_modified(
        "kubeadm-deb",
        &[("/etc/default/kubelet", env)],
        &["--control", "hostname-override"],
    );
    assert_eq!(control(&j, "hostname-override")["fixable"], true, "{j}");
    assert!(
        after(&j).contains("+KUBELET_EXTRA_ARGS=\"--node-ip=10.0.1.23 \""),
        "{}",
        after(&j)
    );
    let env = "KUBELET_EXTRA_ARGS=\"--hostname-override=ip-10-0-1-23.ec2.internal\"\n";
    let j = plan_modified(
        "kubeadm-deb",
        &[("/etc/default/kubelet", env)],
        &["--control", "hostname-override"],
    );
    let c = control(&j, "hostname-override");
    assert_eq!(c["fixable"], false);
    assert!(
        c["advice"][0]
            .as_str()
            .unwrap()
            .contains("renames the node"),
        "{c}"
    );
    assert!(j["report"]["changes"].as_array().unwrap().is_empty());
}

#[test]
fn anonymous_auth_is_turned_off_only_when_the_api_server_can_still_authenticate() {
    // Legacy defaults (no --config): the flag is added where the node keeps local flags.
    let j = plan_modified(
        "controls-legacy-flags",
        &[],
        &["--control", "anonymous-auth"],
    );
    assert_eq!(control(&j, "anonymous-auth")["fixable"], true);
    assert!(
        after(&j).contains("--anonymous-auth=false\""),
        "{}",
        after(&j)
    );
    // Without the client CA flag and without webhook authentication: advice only.
    let unit = "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf";
    let text = std::fs::read_to_string(
        repo()
            .join("testdata/nodes/controls-legacy-flags")
            .join(unit),
    )
    .unwrap();
    let j = plan_modified(
        "controls-legacy-flags",
        &[(
            unit,
            &text.replace("--client-ca-file=/etc/kubernetes/pki/ca.crt ", ""),
        )],
        &["--control", "anonymous-auth"],
    );
    let c = control(&j, "anonymous-auth");
    assert_eq!(c["fixable"], false);
    assert!(c["advice"][0].as_str().unwrap().contains("401"), "{c}");
}

#[test]
fn rotate_certificates_needs_a_client_certificate_to_rotate() {
    // kubeadm: the kubeconfig user has a client certificate; the key is added to --config.
    let cfg = std::fs::read_to_string(
        repo().join("testdata/nodes/kubeadm-deb/var/lib/kubelet/config.yaml"),
    )
    .unwrap();
    let j = plan_modified(
        "kubeadm-deb",
        &[(
            "/var/lib/kubelet/config.yaml",
            &cfg.replace("rotateCertificates: true\n", ""),
        )],
        &["--control", "rotate-certificates"],
    );
    assert_eq!(control(&j, "rotate-certificates")["status"], "fail");
    assert_eq!(control(&j, "rotate-certificates")["fixable"], true, "{j}");
    assert!(
        after(&j).contains("+rotateCertificates: true"),
        "{}",
        after(&j)
    );
    // A bearer token, even with a bootstrap kubeconfig: never.
    let token = "apiVersion: v1\nkind: Config\ncurrent-context: k\ncontexts:\n- name: k\n  context: {cluster: c, user: u}\nusers:\n- name: u\n  user:\n    token: abcdef.0123456789abcdef\n";
    let j = plan_modified(
        "kubeadm-deb",
        &[
            (
                "/var/lib/kubelet/config.yaml",
                &cfg.replace("rotateCertificates: true\n", ""),
            ),
            ("/etc/kubernetes/kubelet.conf", token),
        ],
        &["--control", "rotate-certificates"],
    );
    let c = control(&j, "rotate-certificates");
    assert_eq!(c["fixable"], false);
    assert!(c["advice"][0].as_str().unwrap().contains("token"), "{c}");
    // EKS: an exec plugin (aws eks get-token): never.
    let j = plan_modified("eks-al2023", &[], &["--control", "rotate-certificates"]);
    let c = control(&j, "rotate-certificates");
    assert_eq!(c["fixable"], false);
    assert!(c["advice"][0].as_str().unwrap().contains("exec"), "{c}");
}

#[test]
fn protect_kernel_defaults_waits_for_persisted_sysctls() {
    let args = [
        "--control",
        "protect-kernel-defaults",
        "--benchmark",
        "cis-1.24",
    ];
    // Persisted in /etc/sysctl.d (hiding a vendor file of the same name): the key is added.
    let j = plan_modified("controls-config-dropins", &[], &args);
    assert_eq!(
        control(&j, "protect-kernel-defaults")["fixable"],
        true,
        "{j}"
    );
    assert!(after(&j).contains("+protectKernelDefaults: true"));
    // The /etc file gone: the vendor file's kernel.panic=0 is what boots.
    let j = plan_modified(
        "controls-config-dropins",
        &[("/etc/sysctl.d/90-kubelet.conf", "")],
        &args,
    );
    let c = control(&j, "protect-kernel-defaults");
    assert_eq!(c["fixable"], false);
    assert!(
        c["advice"][0].as_str().unwrap().contains("kernel.panic=10"),
        "{c}"
    );
}

#[test]
fn a_client_ca_file_the_kubelet_cannot_load_refuses_every_control() {
    for ca in ["", "not a certificate\n"] {
        let j = plan_modified(
            "kubeadm-deb",
            &[("/etc/kubernetes/pki/ca.crt", ca)],
            &["--control", "all"],
        );
        assert_eq!(j["exit_code"], 1, "{j}");
        assert_eq!(j["result"], "refused");
        assert!(
            j["report"]["refused"]
                .as_str()
                .unwrap()
                .contains("unable to load client CA file")
        );
        // Every setting control; the 4.1 controls judge the files, which the refusal leaves
        // as they are.
        for c in j["report"]["controls"].as_array().unwrap() {
            let file = CONTROLS.iter().any(|k| k.id == c["id"] && k.file.is_some());
            assert_eq!(c["status"] == "refused", !file, "{c}");
        }
        // Without --control the first control is judged exactly as before controls existed.
        let t = tempfile::tempdir().unwrap();
        copy_tree(&repo().join("testdata/nodes/kubeadm-deb"), t.path());
        std::fs::remove_file(t.path().join("etc/kubernetes/pki/ca.crt")).unwrap();
        assert_eq!(plan_json(t.path(), &[]).1, 2);
    }
}

/// The fleet per control: `summarize` over `--control all` records counts each control once
/// per node (table order), gives one JUnit case per node and control, and its JSON validates.
#[test]
fn summarize_counts_every_control_across_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let trees = ["kubeadm-deb", "eks-al2023", "controls-legacy-flags", "gke"];
    for t in trees {
        let (j, _) = plan_json(
            &repo().join("testdata/nodes").join(t),
            &["--control", "all", "--node-name", t],
        );
        std::fs::write(dir.path().join(format!("{t}.json")), j.to_string()).unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let o = run(&["summarize", "--output", "json", d]);
    assert_eq!(o.status.code(), Some(2));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/summary.schema.json")).unwrap(),
    )
    .unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    assert!(v.is_valid(&j), "{j}");
    let by = j["by_control"].as_array().unwrap();
    let ids: Vec<&str> = by.iter().map(|k| k["id"].as_str().unwrap()).collect();
    let all: Vec<&str> = CONTROLS.iter().map(|c| c.id).collect();
    assert_eq!(ids, all);
    for k in by {
        let n: u64 = ["pass", "fixed", "fail", "refused", "error"]
            .iter()
            .map(|s| k[*s].as_u64().unwrap())
            .sum();
        assert_eq!(n, trees.len() as u64, "{k}");
    }
    let mip = by
        .iter()
        .find(|k| k["id"] == "make-iptables-util-chains")
        .unwrap();
    assert_eq!(mip["id"], "make-iptables-util-chains");
    assert_eq!(
        (mip["pass"].as_u64(), mip["fail"].as_u64()),
        (Some(1), Some(3)),
        "{mip}"
    );
    let o = run(&["summarize", "--output", "junit", d]);
    let xml = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        xml.matches("<testcase ").count(),
        trees.len() * CONTROLS.len()
    );
    let failing: u64 = by.iter().map(|k| k["fail"].as_u64().unwrap()).sum();
    assert_eq!(xml.matches("<failure ").count() as u64, failing);
    let text = String::from_utf8(run(&["summarize", d]).stdout).unwrap();
    assert!(text.contains("\nread-only-port "), "{text}");
}

/// authorization-mode is an opt-in fix: proposed when named, never under `all`, and only with
/// a --config file, webhook authentication and a client CA.
#[test]
fn authorization_mode_is_fixed_only_when_named_and_safe() {
    let env = "KUBELET_EXTRA_ARGS=\"--authorization-mode=AlwaysAllow --node-ip=10.0.1.23\"\n";
    let files = [("/etc/default/kubelet", env)];
    let j = plan_modified("kubeadm-deb", &files, &["--control", "authorization-mode"]);
    assert_eq!(control(&j, "authorization-mode")["fixable"], true, "{j}");
    assert!(
        after(&j).contains("+KUBELET_EXTRA_ARGS=\"--node-ip=10.0.1.23\""),
        "{}",
        after(&j)
    );
    let j = plan_modified("kubeadm-deb", &files, &["--control", "4.2.2"]);
    assert_eq!(control(&j, "authorization-mode")["fixable"], true);
    let j = plan_modified("kubeadm-deb", &files, &["--control", "all"]);
    let c = control(&j, "authorization-mode");
    assert_eq!(
        (c["status"].as_str(), c["fixable"].as_bool()),
        (Some("fail"), Some(false))
    );
    assert!(c["advice"][0].as_str().unwrap().contains("opt-in"), "{c}");
    // Without a --config file (legacy defaults: no webhook authentication): advice only.
    let j = plan_modified(
        "controls-legacy-flags",
        &[("/etc/default/kubelet", env)],
        &["--control", "authorization-mode"],
    );
    let c = control(&j, "authorization-mode");
    assert_eq!(c["fixable"], false);
    assert!(
        c["advice"][0].as_str().unwrap().contains("a --config file"),
        "{c}"
    );
}

/// tls-cipher-suites (opt-in): the list written once where the kubelet reads it, the allowed
/// suites of the current list kept in order, in the place's own style.
#[test]
fn cipher_suites_are_rewritten_in_the_places_own_style_when_named() {
    let j = plan_modified(
        "controls-config-dropins",
        &[],
        &["--control", "tls-cipher-suites"],
    );
    assert_eq!(control(&j, "tls-cipher-suites")["fixable"], true, "{j}");
    let d = after(&j);
    assert!(d.contains("-  - TLS_RSA_WITH_AES_128_GCM_SHA256\n"), "{d}");
    assert!(
        !d.lines()
            .any(|l| l.starts_with('+') && !l.starts_with("+++")),
        "only the disallowed suite goes: {d}"
    );
    let j = plan_modified(
        "kubeadm-deb",
        &[],
        &["--control", "4.2.12", "--benchmark", "cis-1.11"],
    );
    let d = after(&j);
    assert!(
        d.contains("+tlsCipherSuites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,"),
        "{d}"
    );
    assert!(
        d.contains("TLS_RSA_WITH_AES_128_GCM_SHA256]"),
        "cis-1.11 allows the RSA suites: {d}"
    );
    let j = plan_modified("kubeadm-deb", &[], &["--control", "all"]);
    assert_eq!(control(&j, "tls-cipher-suites")["fixable"], false);
}
