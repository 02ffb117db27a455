//! Fuzzing every input the tool reads, for a bounded number of cases (FUZZ_CASES, default
//! 256 per kind): a unit, a drop-in, an environment file, a YAML and a JSON config, a
//! `--config-dir` drop-in, a backup manifest and a saved plan, each either arbitrary bytes or a
//! real file with hostile fragments spliced in (CR, NUL, BOM, quotes, escapes, `$`, YAML
//! indicators, deep nesting). Asserted: no panic, an exit status in the documented set, and
//! nothing outside the state locations changed (a host directory beside the root never is).
//! `scan` gets the same treatment over every manifest of its fixture repository, with `--fix`:
//! no panic in the scan or any rendering, and no fixable finding left after the fix.

mod common;
use common::*;
use proptest::prelude::*;
use std::path::Path;
use std::process::{Command, Stdio};

const FRAGMENTS: &[&str] = &[
    "\r",
    "\n",
    "\r\n",
    "\0",
    "\u{feff}",
    "\"",
    "'",
    "\\",
    "\\\n",
    "$",
    "${",
    "$$",
    "}",
    "{",
    "[",
    "]",
    ":",
    ": ",
    "- ",
    "? ",
    "|",
    ">",
    "&a ",
    "*a",
    "!!str ",
    "#",
    " # ",
    "---\n",
    "...\n",
    "=",
    "%n",
    "é",
    "\t",
    "makeIPTablesUtilChains: ",
    "--make-iptables-util-chains=false ",
    "-make-iptables-util-chains",
    "--",
    "[Service]\n",
    "ExecStart=",
    "[[[[[[[[[[",
    "{{{{{{{{{{",
    "- - - - - - - - - -",
];

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

/// Arbitrary bytes, or `base` with fragments spliced in at arbitrary places.
fn hostile(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop::sample::select(FRAGMENTS)
            ),
            1..8
        )
        .prop_map(move |edits| {
            let mut b = base.as_bytes().to_vec();
            for (at, frag) in edits {
                let i = at.index(b.len() + 1);
                b.splice(i..i, frag.bytes());
            }
            b
        }),
    ]
}

/// Which file of the kubeadm tree (config-dir variant) a fuzzed input replaces.
const KINDS: &[(&str, &str)] = &[
    ("unit", "usr/lib/systemd/system/kubelet.service"),
    (
        "drop-in",
        "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
    ),
    ("env file", "var/lib/kubelet/kubeadm-flags.env"),
    ("yaml config", "var/lib/kubelet/config.yaml"),
    (
        "config-dir drop-in",
        "etc/kubernetes/kubelet.conf.d/10-base.conf",
    ),
];

/// A file of a shipped tree, as the base that fragments are spliced into.
fn base_of(tree: &str, rel: &str) -> &'static str {
    let text = std::fs::read_to_string(repo().join("testdata/nodes").join(tree).join(rel)).unwrap();
    Box::leak(text.into_boxed_str())
}

/// A runner for `cases` cases that does not write regression files into the tree.
fn runner(cases: u32) -> proptest::test_runner::TestRunner {
    proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

/// The planner, in-process: a panic fails the test; any result maps to a documented status.
fn plan_status(root: &Path) -> i32 {
    let eval = kubelet_remediate::flow::Eval {
        offline: true,
        ..Default::default()
    };
    let fs = kubelet_remediate::root::NodeFs::new(root);
    match std::panic::catch_unwind(|| kubelet_remediate::flow::evaluate(&fs, &eval)) {
        Ok(Ok((_, r, _))) => r.exit_code(),
        Ok(Err(_)) => 1,
        Err(_) => panic!("the planner panicked"),
    }
}

#[test]
fn every_node_file_kind_survives_hostile_bytes() {
    // The node-file kinds of a config-dir tree, and a JSON config through the same door.
    let kinds = KINDS
        .iter()
        .map(|(kind, rel)| (*kind, "config-dir-override", *rel))
        .chain([(
            "json config",
            "eks-al2",
            "etc/kubernetes/kubelet/kubelet-config.json",
        )]);
    for (kind, tree, rel) in kinds {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        copy_tree(&repo().join("testdata/nodes").join(tree), &root);
        runner(cases())
            .run(&hostile(base_of(tree, rel)), |bytes| {
                std::fs::write(root.join(rel), &bytes).unwrap();
                let status = plan_status(&root);
                prop_assert!([0, 1, 2].contains(&status), "{kind}: status {status}");
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
}

/// The CLI with a fuzzed manifest or saved plan: exit 0 or 1, no panic, and the host
/// directory beside the root untouched.
#[test]
fn manifests_and_saved_plans_survive_hostile_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let host = tmp.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("hostname"), "host\n").unwrap();
    copy_tree(&repo().join("testdata/nodes/kubeadm-deb"), &root);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
            .arg(args[0])
            .arg("--root")
            .arg(&root)
            .args(&args[1..])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let plan = tmp.path().join("plan.json");
    assert_eq!(
        run(&["plan", "--out", plan.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    let o = run(&["apply", "--yes", "--no-restart", "--output", "json"]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = j["applied"]["backup_id"].as_str().unwrap().to_string();
    let manifest = root
        .join("var/lib/kubelet-remediate/backups")
        .join(&id)
        .join("manifest.json");
    let m_base: &'static str =
        Box::leak(std::fs::read_to_string(&manifest).unwrap().into_boxed_str());
    let p_base: &'static str = Box::leak(std::fs::read_to_string(&plan).unwrap().into_boxed_str());
    let fixed = std::fs::read(root.join("etc/default/kubelet")).unwrap();
    let n = (cases() / 4).max(16);
    runner(n)
        .run(&(hostile(m_base), hostile(p_base)), |(m, p)| {
            std::fs::write(&manifest, &m).unwrap();
            let o = run(&["rollback", "--yes", "--force", "--no-restart", &id]);
            let err = String::from_utf8_lossy(&o.stderr);
            prop_assert!(!err.contains("panicked"), "rollback panicked: {err}");
            prop_assert!(
                [Some(0), Some(1)].contains(&o.status.code()),
                "rollback: {:?}",
                o.status
            );
            std::fs::write(&plan, &p).unwrap();
            let o = run(&[
                "apply",
                "--yes",
                "--no-restart",
                "--plan",
                plan.to_str().unwrap(),
            ]);
            let err = String::from_utf8_lossy(&o.stderr);
            prop_assert!(!err.contains("panicked"), "apply --plan panicked: {err}");
            prop_assert!(
                [Some(0), Some(1)].contains(&o.status.code()),
                "apply --plan: {:?}",
                o.status
            );
            prop_assert_eq!(
                std::fs::read_to_string(host.join("hostname")).unwrap(),
                "host\n"
            );
            prop_assert_eq!(std::fs::read_dir(&host).unwrap().count(), 1);
            // Only the planned file (and the state locations) may differ from the fixed tree.
            std::fs::write(root.join("etc/default/kubelet"), &fixed).unwrap();
            Ok(())
        })
        .unwrap();
}

/// `scan` and `scan --fix` over hostile manifests: every fixture file of the repository, with
/// fragments spliced in (or arbitrary bytes). No panic, in the scan or in any rendering; after
/// the fixes are written, no fixable finding is left (each fix made the value true).
#[test]
fn scan_and_fix_survive_hostile_manifests() {
    use kubelet_remediate::scan::{self, output};
    let fixture = repo().join("testdata/repos/platform-infra");
    let mut bases: Vec<(&'static str, String)> = Vec::new();
    let mut stack = vec![fixture.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.to_string_lossy().contains("/templates/") {
                let text = std::fs::read_to_string(&p).unwrap();
                let ext = p.extension().unwrap().to_string_lossy().to_string();
                bases.push((Box::leak(text.into_boxed_str()), ext));
            }
        }
    }
    bases.sort();
    let tmp = tempfile::tempdir().unwrap();
    for (base, ext) in bases {
        let file = tmp.path().join(format!("m.{ext}"));
        runner((cases() / 8).max(16))
            .run(&hostile(base), |bytes| {
                std::fs::write(&file, &bytes).unwrap();
                let paths = [file.clone()];
                let found = std::panic::catch_unwind(|| {
                    let s = scan::scan(&paths).unwrap();
                    for render in [output::text, output::json, output::sarif, output::junit] {
                        render(&s);
                    }
                    s
                })
                .map_err(|_| TestCaseError::fail("scan panicked"))?;
                scan::write_fixes(&found).unwrap();
                let again = scan::scan(&paths).unwrap();
                let left: Vec<_> = again.findings().filter(|f| f.diff.is_some()).collect();
                prop_assert!(left.is_empty(), "after --fix: {left:?}");
                Ok(())
            })
            .unwrap();
    }
}
