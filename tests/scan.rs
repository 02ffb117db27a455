//! `scan` against a realistic repository (testdata/repos/platform-infra) and the seed's six
//! examples: what is found where, every output format as a golden, SARIF validated against the
//! official 2.1.0 schema, and fix-and-rescan. After an intended change to an output:
//! `UPDATE_GOLDEN=1 cargo test --test scan`.

mod common;

use common::{copy_tree, repo};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn scan(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .arg("scan")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn json(dir: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let mut a = vec!["--output", "json"];
    a.extend_from_slice(args);
    let o = scan(dir, &a);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code().unwrap(), v)
}

/// Every file of a tree and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// (path, line, kind) of every finding the fixture must give, and nothing else.
const EXPECTED: &[(&str, usize, &str)] = &[
    (
        "platform-infra/bootstrap/lab-kubelet-config.yaml",
        4,
        "kubelet-configuration",
    ),
    ("platform-infra/capi/workers.yaml", 15, "cluster-api"),
    (
        "platform-infra/clusters/prod/kubeadm-config.yaml",
        22,
        "kubeadm",
    ),
    (
        "platform-infra/clusters/prod/kubeadm-config.yaml",
        45,
        "kubelet-configuration",
    ),
    (
        "platform-infra/clusters/prod/kubelet-config-cm.yaml",
        26,
        "configmap",
    ),
    (
        "platform-infra/clusters/staging/kubeadm-join.yaml",
        16,
        "kubeadm",
    ),
    (
        "platform-infra/eks/nodeconfig-al2023.yaml",
        16,
        "eks-nodeconfig",
    ),
    (
        "platform-infra/json/kubelet-config.json",
        1,
        "kubelet-configuration",
    ),
    ("platform-infra/k3s/config.yaml", 9, "k3s-config"),
    (
        "platform-infra/openshift/kubeletconfig.yaml",
        12,
        "openshift-kubeletconfig",
    ),
    ("platform-infra/workloads/kind-node.yaml", 27, "workload"),
    ("platform-infra/workloads/kind-node.yaml", 74, "workload"),
];

fn found(v: &serde_json::Value) -> Vec<(String, usize, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap() as usize,
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_fixture_repository_gives_exactly_its_findings() {
    let (code, v) = json(&repo().join("testdata/repos"), &["platform-infra"]);
    assert_eq!(code, 2);
    let want: Vec<_> = EXPECTED
        .iter()
        .map(|(p, l, k)| (p.to_string(), *l, k.to_string()))
        .collect();
    assert_eq!(found(&v), want);
    let skipped: Vec<&str> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        skipped,
        [
            "platform-infra/bootstrap/broken.yaml",
            "platform-infra/charts/kubelet-exporter/templates/daemonset.yaml"
        ]
    );
    assert_eq!(v["files_scanned"], 14);
    // Every finding points at the false itself, and every one here has a fix.
    for f in v["findings"].as_array().unwrap() {
        assert!(f["diff"].is_string(), "{f}");
    }
}

#[test]
fn the_seed_examples_three_found_three_not() {
    let seed = repo().join("../shared/seeds/000_6419a7f7ee485804.txt");
    let Ok(text) = std::fs::read_to_string(&seed) else {
        panic!(
            "{} is missing (CI runs with ../shared beside the clone)",
            seed.display()
        );
    };
    let non = text.find("## Non-Compliant Code Examples").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    let mut rest = text.as_str();
    let mut at = 0;
    let mut i = 0;
    while let Some(open) = rest.find("```") {
        let lang_end = rest[open..].find('\n').unwrap() + open;
        let lang = &rest[open + 3..lang_end];
        let close = rest[lang_end..].find("```").unwrap() + lang_end;
        if lang == "yaml" || lang == "json" {
            let name = format!("example-{i}.{lang}");
            std::fs::write(tmp.path().join(&name), &rest[lang_end + 1..close]).unwrap();
            if at + open > non {
                expected.push(name);
            }
            i += 1;
        }
        at += close + 3;
        rest = &rest[close + 3..];
    }
    assert_eq!(i, 6, "the seed has six examples");
    let (code, v) = json(tmp.path(), &["."]);
    assert_eq!(code, 2);
    let got: Vec<String> = found(&v)
        .into_iter()
        .map(|(p, _, _)| p.trim_start_matches("./").to_string())
        .collect();
    assert_eq!(got, expected);
}

fn golden(name: &str, got: &str) {
    let p = repo().join("testdata/scan").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, got).unwrap();
    }
    let want = std::fs::read_to_string(&p).unwrap_or_default();
    assert!(
        want == got,
        "{name} differs from its golden (UPDATE_GOLDEN=1 to accept):\n{got}"
    );
}

#[test]
fn every_output_format_matches_its_golden() {
    let dir = repo().join("testdata/repos");
    for (fmt, file) in [
        ("text", "platform-infra.txt"),
        ("json", "platform-infra.json"),
        ("sarif", "platform-infra.sarif"),
        ("junit", "platform-infra.junit.xml"),
    ] {
        let o = scan(&dir, &["--output", fmt, "platform-infra"]);
        assert_eq!(o.status.code(), Some(2), "{fmt}");
        let mut got = String::from_utf8(o.stdout).unwrap();
        if fmt == "json" {
            // The envelope names the build; the golden file does not pin one revision.
            let mut v: serde_json::Value = serde_json::from_str(&got).unwrap();
            validate_scan_json(&v);
            v["tool"]["git_revision"] = "<revision>".into();
            got = serde_json::to_string_pretty(&v).unwrap() + "\n";
        }
        golden(file, &got);
    }
}

/// `scan --output json` against docs/scan.schema.json (which must not be vacuous).
fn validate_scan_json(v: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/scan.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let mut broken = v.clone();
    broken["findings"][0]["path"] = "./x.yaml".into();
    assert!(
        !validator.is_valid(&broken),
        "the schema must refuse a ./ path"
    );
}

#[test]
fn json_files_are_strict_json_and_literal_chart_templates_are_scanned() {
    let tmp = tempfile::tempdir().unwrap();
    let chart = tmp.path().join("chart");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: node\nversion: 0.1.0\n",
    )
    .unwrap();
    // No template action: Helm renders it as itself, so it is judged (and fixable).
    std::fs::write(
        chart.join("templates/kubelet-config.yaml"),
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmakeIPTablesUtilChains: false\n",
    )
    .unwrap();
    // With actions: skipped, but its literal false line fails the scan.
    std::fs::write(
        chart.join("templates/ds.yaml"),
        "kind: DaemonSet\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  template:\n    spec:\n      containers:\n        - command: [kubelet, --make-iptables-util-chains=false]\n",
    )
    .unwrap();
    // A trailing comma: YAML would take it, the kubelet's JSON decoder refuses it.
    let json_cfg = "{\"kind\": \"KubeletConfiguration\", \"apiVersion\": \"kubelet.config.k8s.io/v1beta1\", \"makeIPTablesUtilChains\": false,}\n";
    std::fs::write(tmp.path().join("kubelet.json"), json_cfg).unwrap();
    let (code, v) = json(tmp.path(), &["."]);
    assert_eq!(code, 2, "{v}");
    validate_scan_json(&v);
    let found = found(&v);
    assert_eq!(
        found,
        [(
            "chart/templates/kubelet-config.yaml".to_string(),
            3,
            "kubelet-configuration".to_string()
        )]
    );
    let skipped = v["skipped"].as_array().unwrap();
    let reason = |p: &str| {
        skipped
            .iter()
            .find(|s| s["path"] == p)
            .unwrap_or_else(|| panic!("{p} not skipped: {v}"))
            .clone()
    };
    assert!(
        reason("kubelet.json")["reason"]
            .as_str()
            .unwrap()
            .starts_with("not valid JSON")
    );
    assert_eq!(reason("chart/templates/ds.yaml")["suspect"]["line"], 8);
    // --fix never touches the broken JSON file.
    let o = scan(tmp.path(), &["--fix", "--yes", "."]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("kubelet.json")).unwrap(),
        json_cfg
    );
}

#[test]
fn a_kustomization_inline_patch_is_judged_and_fixed_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let k = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - base\npatches:\n  - target:\n      kind: ConfigMap\n    patch: |-\n      apiVersion: kubelet.config.k8s.io/v1beta1\n      kind: KubeletConfiguration\n      makeIPTablesUtilChains: false\npatchesStrategicMerge:\n  - |-\n    apiVersion: kubeadm.k8s.io/v1beta3\n    kind: JoinConfiguration\n    nodeRegistration:\n      kubeletExtraArgs:\n        make-iptables-util-chains: \"false\"\n  - local-file.yaml\n";
    std::fs::write(tmp.path().join("kustomization.yaml"), k).unwrap();
    let (code, v) = json(tmp.path(), &["."]);
    assert_eq!(code, 2, "{v}");
    let got = found(&v);
    assert_eq!(
        got,
        [
            (
                "kustomization.yaml".to_string(),
                11,
                "kustomization".to_string()
            ),
            (
                "kustomization.yaml".to_string(),
                18,
                "kustomization".to_string()
            )
        ],
        "{v}"
    );
    let o = scan(tmp.path(), &["--fix", "--yes", "."]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let fixed = std::fs::read_to_string(tmp.path().join("kustomization.yaml")).unwrap();
    assert_eq!(
        fixed,
        k.replace("UtilChains: false", "UtilChains: true")
            .replace("chains: \"false\"", "chains: \"true\"")
    );
}

#[test]
fn a_path_that_is_not_a_file_or_directory_is_a_usage_error() {
    let o = scan(Path::new("/"), &["/dev/null"]);
    assert_eq!(o.status.code(), Some(64));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("kubelet-remediate: error: /dev/null: not a regular file or a directory"),
        "{err}"
    );
}

#[test]
fn sarif_validates_against_the_official_schema_and_carries_the_fixes() {
    // The official schema (OASIS sarif-spec, as shipped in the serde-sarif 0.8.0 crate). Its
    // `run.language` pattern has a lone `]`, a literal in ECMA-262 (Annex B) but an error to
    // Rust's regex engines: escaping it keeps the same meaning.
    let text = std::fs::read_to_string(repo().join("testdata/schemas/sarif-schema-2.1.0.json"))
        .unwrap()
        .replace("[a-zA-Z]{2}]?$", "[a-zA-Z]{2}\\\\]?$");
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::draft7::new(&schema).unwrap();
    let o = scan(
        &repo().join("testdata/repos"),
        &["--output", "sarif", "platform-infra"],
    );
    let sarif: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The validator is not vacuous: a result without its message fails it.
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]
        .as_object_mut()
        .unwrap()
        .remove("message");
    assert!(!validator.is_valid(&broken));
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), EXPECTED.len());
    for (r, (path, line, _)) in results.iter().zip(EXPECTED) {
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], *path);
        assert_eq!(loc["region"]["startLine"], *line as u64);
        let rep = &r["fixes"][0]["artifactChanges"][0]["replacements"][0];
        assert_eq!(rep["insertedContent"]["text"], "true");
        assert_eq!(rep["deletedRegion"]["startLine"], *line as u64);
    }
}

#[test]
fn fix_then_rescan_finds_nothing_and_changes_only_the_false() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("platform-infra");
    copy_tree(&repo().join("testdata/repos/platform-infra"), &root);
    let k3s = root.join("k3s/config.yaml");
    std::fs::set_permissions(&k3s, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = snapshot(&root);
    let o = scan(tmp.path(), &["--fix", "--yes", "platform-infra"]);
    // Every finding is fixed; what keeps the exit at 2 is the broken file that could not be
    // judged but holds a line that looks like a false.
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("0 findings in 14 files scanned (2 skipped)"),
        "{out}"
    );
    assert!(
        out.contains(
            "platform-infra/bootstrap/broken.yaml:3: looks like it sets the value false, and was not judged"
        ),
        "{out}"
    );
    let after = snapshot(&root);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "no file added or left behind"
    );
    for (rel, old) in &before {
        let new = &after[rel];
        let lines = |b: &[u8]| -> Vec<String> {
            String::from_utf8_lossy(b)
                .split('\n')
                .map(str::to_string)
                .collect()
        };
        let (o, n) = (lines(old), lines(new));
        assert_eq!(o.len(), n.len(), "{rel}: line count");
        let changed: Vec<usize> = (0..o.len())
            .filter(|&i| o[i] != n[i])
            .map(|i| i + 1)
            .collect();
        let want: Vec<usize> = EXPECTED
            .iter()
            .filter(|(p, _, _)| p.strip_prefix("platform-infra/") == Some(rel.as_str()))
            .map(|(_, l, _)| *l)
            .collect();
        assert_eq!(changed, want, "{rel}: only the findings' lines change");
        for i in changed {
            let (a, b) = (&o[i - 1], &n[i - 1]);
            assert!(b.contains("true"), "{rel}:{i}: {b}");
            // Everything but the value is byte-identical (CRLF and quotes included).
            let common = a.len().min(b.len());
            let prefix = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
            assert!(prefix < common, "{rel}:{i}");
            assert_eq!(
                a.ends_with('\r'),
                b.ends_with('\r'),
                "{rel}:{i}: line ending"
            );
        }
    }
    let mode = std::fs::metadata(&k3s).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640, "the mode is kept");
    let (code, v) = json(tmp.path(), &["platform-infra"]);
    assert_eq!(code, 2, "the broken file's suspect line remains: {v}");
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);
}

#[test]
fn fix_without_a_terminal_or_yes_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    copy_tree(&repo().join("testdata/repos/platform-infra/k3s"), &root);
    let before = snapshot(&root);
    let o = scan(tmp.path(), &["--fix", "r"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--yes"));
    assert_eq!(snapshot(&root), before);
}

#[test]
fn exit_statuses() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("ok.yaml"),
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n",
    )
    .unwrap();
    assert_eq!(scan(tmp.path(), &[]).status.code(), Some(0), "no findings");
    let missing = scan(tmp.path(), &["nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope"));
    assert_eq!(
        scan(tmp.path(), &["--yes"]).status.code(),
        Some(64),
        "--yes needs --fix"
    );
    assert_eq!(
        scan(tmp.path(), &["--output", "xml"]).status.code(),
        Some(64)
    );
}
