//! deploy/kubernetes: every manifest validated against the Kubernetes schemas
//! (kubernetes-validate from PyPI, strict), the system-upgrade-controller Plan against the
//! upgrade.cattle.io/v1 fields (and the Job pod SUC makes from it against core/v1), and what
//! each one promises checked: the audit is read-only and prints records, the Plan applies
//! with --yes at /host with the bus directory, small concurrency and no drain.

mod common;
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn kubernetes_validate() -> Option<PathBuf> {
    built(
        repo().join(".venv/bin/kubernetes-validate"),
        "python3 -m venv .venv && .venv/bin/pip install kubernetes-validate",
    )
}

/// A command's stdout and stderr, for messages.
fn both(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn manifest(name: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("deploy/kubernetes").join(name)).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// kubernetes-validate --strict on `files` for Kubernetes `version`: (exit status, output).
fn validate(kv: &Path, version: &str, files: &[PathBuf]) -> (i32, String) {
    let o = Command::new(kv)
        .args(["--strict", "-k", version])
        .args(files)
        .output()
        .unwrap();
    let out = both(&o);
    (o.status.code().unwrap_or(-1), out)
}

#[test]
fn core_manifests_pass_strict_kubernetes_validation() {
    let Some(kv) = kubernetes_validate() else {
        return;
    };
    let dir = repo().join("deploy/kubernetes");
    let files = vec![dir.join("namespace.yaml"), dir.join("audit-daemonset.yaml")];
    // The oldest version EKS still supports and the validator's newest.
    for version in ["1.28", "1.33"] {
        let (code, out) = validate(&kv, version, &files);
        assert_eq!(code, 0, "{version}: {out}");
        assert_eq!(out.matches(" passed for resource ").count(), 2, "{out}");
    }
    // Non-vacuous: a misspelled field fails strict validation.
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("bad.yaml");
    let text = std::fs::read_to_string(dir.join("audit-daemonset.yaml"))
        .unwrap()
        .replace("readOnlyRootFilesystem", "readOnlyRootFilesytem");
    std::fs::write(&bad, text).unwrap();
    let (code, out) = validate(&kv, "1.33", &[bad]);
    assert_ne!(code, 0, "a misspelled field passed: {out}");
}

#[test]
fn the_audit_daemonset_is_read_only_and_prints_one_record_per_run() {
    let ds = manifest("audit-daemonset.yaml");
    let pod = &ds["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    for m in c["volumeMounts"].as_array().unwrap() {
        assert_eq!(m["readOnly"], true, "{m}");
    }
    assert_eq!(
        c["env"][0],
        json!({"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}})
    );
    // The container's arguments, run here on a node tree once (without --every): one record.
    let args: Vec<String> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(&args[..4], ["plan", "--root", "/host", "--output"]);
    let i = args.iter().position(|a| a == "--every").unwrap();
    let mut once: Vec<String> = args[..i].to_vec();
    once[2] = repo().join("testdata/nodes/eks-al2").display().to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args(&once)
        .env("NODE_NAME", "ip-10-0-0-1.ec2.internal")
        .output()
        .unwrap();
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_valid_record(&j);
    assert_eq!(j["node"]["name"], "ip-10-0-0-1.ec2.internal");
    assert_eq!(j["node"]["name_from"], "NODE_NAME");
}

#[test]
fn the_plan_has_only_upgrade_cattle_io_v1_fields_and_its_job_pod_is_valid() {
    let plan = manifest("remediate-plan.yaml");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo().join("testdata/schemas/upgrade.cattle.io-v1-plan.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let v = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(&plan).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let mut typo = plan.clone();
    typo["spec"]["concurency"] = 1.into();
    assert!(!v.is_valid(&typo), "the Plan schema accepts unknown fields");

    let spec = &plan["spec"];
    assert!(
        spec["concurrency"].as_i64().unwrap() <= 2,
        "concurrency is small"
    );
    assert!(
        spec.get("drain").is_none(),
        "no drain: pods survive a kubelet restart"
    );
    let up = &spec["upgrade"];
    let args: Vec<&str> = up["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(&args[..4], ["apply", "--yes", "--root", "/host"]);
    let dbus = up["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["source"] == "/run/dbus")
        .expect("the bus socket's directory is mounted");
    assert_eq!(dbus["destination"], "/host/run/dbus");

    // The pod SUC makes for a node: its securityContext, tolerations and the host mounts,
    // checked against core/v1 by kubernetes-validate.
    let Some(kv) = kubernetes_validate() else {
        return;
    };
    let mut volumes =
        vec![json!({"name": "host-root", "hostPath": {"path": "/", "type": "Directory"}})];
    let mut mounts = vec![json!({"name": "host-root", "mountPath": "/host"})];
    for v in up["volumes"].as_array().unwrap() {
        volumes.push(
            json!({"name": v["name"], "hostPath": {"path": v["source"], "type": "Directory"}}),
        );
        mounts.push(json!({"name": v["name"], "mountPath": v["destination"]}));
    }
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "apply-kubelet-remediate-on-node-1", "namespace": plan["metadata"]["namespace"]},
        "spec": {
            "hostPID": true, "hostIPC": true, "hostNetwork": true,
            "serviceAccountName": spec["serviceAccountName"],
            "tolerations": spec["tolerations"],
            "restartPolicy": "Never",
            "containers": [{
                "name": "upgrade",
                "image": format!("{}:{}", up["image"].as_str().unwrap(), spec["version"].as_str().unwrap()),
                "args": up["args"],
                "env": [{"name": "SYSTEM_UPGRADE_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                "securityContext": up["securityContext"],
                "volumeMounts": mounts,
            }],
            "volumes": volumes,
        }
    });
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("job-pod.yaml");
    std::fs::write(&f, serde_json::to_string_pretty(&pod).unwrap()).unwrap();
    let (code, out) = validate(&kv, "1.33", &[f]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("passed for resource pod/"), "{out}");
}

/// The Ansible collection is distributable: `ansible-test sanity` (every test ansible-core
/// ships: validate-modules, pylint, yamllint, ansible-doc, ...) is clean on a copy of it,
/// `ansible-doc` renders the module's documentation, and `ansible-galaxy collection build`
/// makes its tarball. ansible-test needs its pip bootstrap in its cache (`.ci/run` puts a
/// stand-in there: the upstream download host is not reachable).
#[test]
fn the_ansible_collection_passes_ansible_test_sanity_and_builds() {
    let Some(ansible_test) = built(
        repo().join(".venv/bin/ansible-test"),
        "python3 -m venv .venv && .venv/bin/pip install ansible-core",
    ) else {
        return;
    };
    let bin = ansible_test.parent().unwrap();
    let src = repo().join("deploy/ansible/collections/ansible_collections/kubelet_remediate/cis");
    // A copy: ansible-test writes tests/output inside the collection.
    let work = tempfile::tempdir().unwrap();
    let copy = work
        .path()
        .join("ansible_collections/kubelet_remediate/cis");
    copy_tree(&src, &copy);
    let _ = std::fs::remove_dir_all(copy.join("tests/output"));
    let o = Command::new(&ansible_test)
        .args([
            "sanity",
            "--python",
            "3.11",
            "--requirements",
            "--color",
            "no",
        ])
        .current_dir(&copy)
        .output()
        .unwrap();
    let out = both(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("Running sanity test \"validate-modules\""),
        "{out}"
    );

    let o = Command::new(bin.join("ansible-doc"))
        .args(["-t", "module", "kubelet_remediate.cis.kubelet_remediate"])
        .env("ANSIBLE_COLLECTIONS_PATH", work.path())
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .unwrap();
    let doc = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{doc}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for want in ["dbus_address", "EXAMPLES", "RETURN VALUES", "check_mode"] {
        assert!(doc.contains(want), "ansible-doc lacks {want}: {doc}");
    }

    let o = Command::new(bin.join("ansible-galaxy"))
        .args(["collection", "build", "--output-path"])
        .arg(work.path())
        .arg(&src)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        work.path()
            .join("kubelet_remediate-cis-0.1.0.tar.gz")
            .is_file()
    );
}
