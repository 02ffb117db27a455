//! Each rule of the kubelet and systemd 252 has a node tree; this names what the kubelet does
//! with each (value, or refusal and why), and the output contract for refusals: one stderr line
//! naming file:line:column, the report still on stdout, exit 1; usage errors exit 64.

mod common;
use common::*;
use kubelet_remediate::verdict::Outcome;
use std::process::{Command, Output, Stdio};

/// (tree, expected): `Ok(value)`, or `Err(a fragment of the refusal)`.
const CASES: &[(&str, Result<bool, &str>)] = &[
    ("stray-inline-comment", Err("unknown command #")),
    (
        "stray-braced-in-envfile",
        Err("unknown command ${NODE_LABELS}"),
    ),
    (
        "stray-colon-prefix",
        Err("unknown command $KUBELET_KUBECONFIG_ARGS"),
    ),
    (
        "stray-double-dollar",
        Err("unknown command $KUBELET_EXTRA_ARGS"),
    ),
    ("stray-empty-argument", Err("an empty argument")),
    ("stray-after-double-dash", Err("after \"--\"")),
    ("single-dash-flag", Err("unknown shorthand flag: 'm'")),
    (
        "colon-spelling",
        Err("unknown flag: --make-iptables-util-chains:true"),
    ),
    ("braced-two-flags", Err("invalid value \"false --v=2\"")),
    ("yaml-integer", Err("cannot be decoded into a bool")),
    ("space-form", Err("unknown command false")),
    ("dropin-duplicate-key", Err("\"maxPods\" is defined twice")),
    ("envfile-glob", Ok(false)),
    ("unset-environment", Ok(true)),
    ("at-prefix", Ok(true)),
    ("exec-prefixes", Ok(false)),
    ("lone-cr-dropin", Ok(false)),
    ("bom-dropin", Ok(false)),
    ("nul-dropin", Ok(false)),
    ("malformed-unit", Ok(true)),
    ("later-yaml-document", Ok(true)),
    ("duplicate-keys", Ok(false)),
    ("duplicate-keys-last-true", Ok(true)),
    ("dropin-miscased-key", Ok(false)),
    ("config-dir-null", Ok(false)),
    ("config-dir-symlinked-root", Ok(true)),
    ("config-dir-symlinked-file", Ok(false)),
    ("flow-mapping-dropin", Ok(false)),
];

#[test]
fn each_rule_gets_the_kubelets_verdict() {
    for (case, want) in CASES {
        let p = plan_root(&repo().join("testdata/nodes").join(case), None)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        match (&p.verdict.outcome, want) {
            (Outcome::Value(v, _), Ok(w)) => assert_eq!(v, w, "{case}"),
            (Outcome::Refused(why), Err(frag)) => {
                assert!(why.contains(frag), "{case}: {why}")
            }
            (got, _) => panic!("{case}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn unmodelled_or_unreadable_layouts_are_errors_naming_the_place() {
    for (case, at) in [
        (
            "shell-wrapper",
            "kubelet-remediate: /etc/systemd/system/kubelet.service.d/20-wrapper.conf:4:1: error: ExecStart= runs the kubelet through bash",
        ),
        (
            "config-dir-missing",
            "kubelet-remediate: /var/lib/kubelet/kubeadm-flags.env:1:149: error: --config-dir=/etc/kubernetes/kubelet.conf.d:",
        ),
    ] {
        let o = run(&["plan", "--root"], case);
        assert_eq!(o.status.code(), Some(1), "{case}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{case}: {err}");
        assert!(err.contains(at), "{case}: {err}");
    }
}

/// Run against a copy of the tree: `apply` takes its lock inside the root, and the shipped
/// trees stay untouched.
fn run(args: &[&str], case: &str) -> Output {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("testdata/nodes").join(case), tmp.path());
    let o = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args(args)
        .arg(tmp.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let unchanged = Command::new("diff")
        .args(["-r", "--no-dereference", "-x", "run"])
        .arg(repo().join("testdata/nodes").join(case))
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(unchanged.success(), "{case}: {args:?} changed the tree");
    o
}

#[test]
fn a_refusal_is_one_stderr_line_with_the_place_and_json_stays_on_stdout() {
    for (case, at) in [
        (
            "stray-inline-comment",
            "/etc/default/kubelet:2:55: refused: ",
        ),
        ("single-dash-flag", "/etc/default/kubelet:2:40: refused: "),
        (
            "stray-empty-argument",
            "/etc/systemd/system/kubelet.service.d/20-braced.conf:4:96: refused: ",
        ),
        ("quoted-false", "/var/lib/kubelet/config.yaml:37:1: "),
    ] {
        for cmd in [
            &["plan", "--output", "json", "--offline", "--root"][..],
            &[
                "apply",
                "--yes",
                "--no-restart",
                "--output",
                "json",
                "--offline",
                "--root",
            ],
        ] {
            let o = run(cmd, case);
            assert_eq!(o.status.code(), Some(1), "{case} {}", cmd[0]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(err.lines().count(), 1, "{case} {}: {err}", cmd[0]);
            assert!(err.contains(at), "{case} {}: {err}", cmd[0]);
            let j: serde_json::Value = serde_json::from_slice(&o.stdout)
                .unwrap_or_else(|e| panic!("{case} {}: stdout is not the report: {e}", cmd[0]));
            assert_eq!(j["result"], "refused", "{case}");
            assert!(j["report"]["refused"].is_string(), "{case}");
            assert_eq!(j["report"]["compliant"], false);
        }
    }
}

#[test]
fn usage_errors_exit_64_not_2() {
    for args in [
        &["plan", "--no-such-option"][..],
        &["plan", "--output", "yaml"],
        &["no-such-command"],
        &[],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(64), "{args:?}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("64   command-line usage error"));
}
