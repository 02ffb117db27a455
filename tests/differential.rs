//! The planner against the kubelet's own libraries: for every node tree under testdata/nodes,
//! the kubelet argv the planner computes is handed to the Go stand-in (tests/kubelet-stand-in,
//! built on pflag, sigs.k8s.io/yaml, sigs.k8s.io/json and json-patch as the kubelet is), chrooted
//! into the tree, and its verdict (value or refusal) must equal the planner's.

mod common;
use common::kubelet_go::{self, Judged};
use common::*;
use kubelet_remediate::evidence::{self, Options};
use kubelet_remediate::root::NodeFs;
use kubelet_remediate::systemd::{exec::Service, lookup};
use kubelet_remediate::text::Files;
use kubelet_remediate::verdict::{self, Outcome};
use std::path::Path;

/// The planner's verdict on a tree, or `None` when systemd itself would not start the unit (the
/// sandbox differential test covers that part).
fn planner(root: &Path) -> Option<(Judged, Vec<String>, String)> {
    let fs = NodeFs::new(root);
    let opts = Options {
        unit: None,
        offline: true,
    };
    match evidence::gather(&fs, &opts) {
        Ok(ev) => {
            let j = match verdict::judge(&ev).outcome {
                Outcome::Value(b, _) => Judged::Value(b),
                Outcome::Refused(why) => Judged::Refused(why),
            };
            let cwd = ev.service.working_dir.clone().unwrap_or_else(|| "/".into());
            Some((j, ev.argv_text(), cwd))
        }
        Err(e) => {
            // A unit systemd loads but a kubelet config that fails: the kubelet refuses.
            let unit = kubelet_remediate::platform::detect_unit(&fs).ok()?;
            let layout = lookup::find(&fs, &unit).ok()?;
            let service = Service::load(&fs, &mut Files::default(), layout).ok()?;
            let argv = service.argv.iter().map(|a| a.value.text.clone()).collect();
            let cwd = service.working_dir.unwrap_or_else(|| "/".into());
            Some((Judged::Refused(e.to_string()), argv, cwd))
        }
    }
}

fn same(a: &Judged, b: &Judged) -> bool {
    matches!((a, b), (Judged::Value(x), Judged::Value(y)) if x == y)
        || matches!((a, b), (Judged::Refused(_), Judged::Refused(_)))
}

#[test]
fn every_tree_gets_the_kubelets_own_verdict() {
    if kubelet_go::skip() {
        return;
    }
    let bin = kubelet_go::binary();
    let cases = node_trees();
    let mut compared = 0;
    let mut disagreements = Vec::new();
    for root in &cases {
        let name = root.file_name().unwrap().to_string_lossy();
        let Some((ours, argv, cwd)) = planner(root) else {
            continue;
        };
        let mut kubelet_argv = argv.clone();
        // k3s and RKE2 run the kubelet in-process: the planner's argv is the one k3s builds.
        if !kubelet_argv[0].ends_with("kubelet") && !kubelet_argv[0].ends_with("kubenswrapper") {
            kubelet_argv[0] = "kubelet".into();
        }
        let theirs = kubelet_go::judge(&bin, root, &cwd, &kubelet_argv);
        compared += 1;
        if !same(&ours, &theirs) {
            disagreements.push(format!(
                "{name}: planner {ours:?}, kubelet libraries {theirs:?}\n  argv {argv:?}"
            ));
        }
    }
    assert!(compared >= 30, "only {compared} trees compared");
    assert!(
        disagreements.is_empty(),
        "{} of {compared} trees disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// The settings table's flags are read by their pflag types on both sides: a value its type
/// cannot parse makes the kubelet refuse to start (and so the planner), one it can parse does
/// not, whatever the spelling (base-0 integers, `0h0m0s`, a repeated stringSlice).
#[test]
fn typed_flags_of_the_settings_table_are_judged_by_their_type() {
    if kubelet_go::skip() {
        return;
    }
    let bin = kubelet_go::binary();
    for (extra, refused) in [
        ("--read-only-port=x", true),
        ("--read-only-port=010", false),
        ("--event-qps=0x0", false),
        ("--event-qps=1.5", true),
        ("--pod-max-pids=9223372036854775808", true),
        ("--streaming-connection-idle-timeout=0h0m0s", false),
        ("--streaming-connection-idle-timeout=1d", true),
        ("--tls-cipher-suites=A,\"B,C\" --tls-cipher-suites=D", true),
        (
            "--tls-cipher-suites=TLS_AES_128_GCM_SHA256 --tls-cipher-suites=TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
            false,
        ),
        ("--read-only-port=70000", true),
        ("--event-qps=-1", true),
        ("--authorization-mode=webhook", true),
        (
            "--feature-gates=RotateKubeletServerCertificate=false",
            false,
        ),
        ("--feature-gates=RotateKubeletServerCertificate", true),
        ("--feature-gates=X=yes", true),
    ] {
        let t = tempfile::tempdir().unwrap();
        copy_tree(&repo().join("testdata/nodes/kubeadm-deb"), t.path());
        std::fs::write(
            t.path().join("etc/default/kubelet"),
            // (systemd unquotes a $VAR's words as it splits them: CSV quoting is the oracle
            // test's, tests/settings_differential.rs.)
            format!("KUBELET_EXTRA_ARGS='{extra}'\n"),
        )
        .unwrap();
        let (ours, argv, cwd) = planner(t.path()).unwrap();
        let theirs = kubelet_go::judge(&bin, t.path(), &cwd, &argv);
        assert!(
            same(&ours, &theirs),
            "{extra}: planner {ours:?}, kubelet libraries {theirs:?}"
        );
        assert_eq!(
            matches!(ours, Judged::Refused(_)),
            refused,
            "{extra}: {ours:?}"
        );
    }
}

/// Every setting of the table, on every tree: the planner's effective values (or refusal)
/// equal what the stand-in computes with the kubelet's libraries, both default sets included.
#[test]
fn every_tree_gets_every_settings_value_the_kubelet_computes() {
    if kubelet_go::skip() {
        return;
    }
    let bin = kubelet_go::binary();
    let mut compared = 0;
    let mut disagreements = Vec::new();
    for root in node_trees() {
        let name = root.file_name().unwrap().to_string_lossy().into_owned();
        let fs = NodeFs::new(&root);
        let opts = Options {
            unit: None,
            offline: true,
        };
        let Ok(ev) = evidence::gather(&fs, &opts) else {
            continue;
        };
        let ours = kubelet_remediate::effective::judge(&ev);
        let mut argv = ev.argv_text();
        if !argv[0].ends_with("kubelet") && !argv[0].ends_with("kubenswrapper") {
            argv[0] = "kubelet".into();
        }
        let cwd = ev.service.working_dir.clone().unwrap_or_else(|| "/".into());
        let (_, theirs) = kubelet_go::judge_all(&bin, &root, &cwd, &argv);
        compared += 1;
        match (&ours.refused, theirs) {
            (None, Some(t)) => {
                for e in &ours.settings {
                    let mine = e.value.as_ref().unwrap().to_json();
                    if mine != t[e.id] {
                        disagreements.push(format!(
                            "{name}: {}: planner {mine}, kubelet libraries {}",
                            e.id, t[e.id]
                        ));
                    }
                }
                // The client CA file: loadable for both, or refused by both.
                let ca = kubelet_remediate::effective::client_ca_refusal(&fs, &ours);
                if ca.is_some() != (t["client_ca_error"] != "") {
                    disagreements.push(format!(
                        "{name}: client CA: planner {ca:?}, kubelet libraries {}",
                        t["client_ca_error"]
                    ));
                }
            }
            (Some(_), None) => {}
            (a, b) => disagreements.push(format!(
                "{name}: planner refused {a:?}, kubelet libraries {b:?}"
            )),
        }
    }
    assert!(compared >= 30, "only {compared} trees compared");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
