//! The one record: every node command over every testdata tree prints exactly one JSON object
//! that validates against docs/report.schema.json, errors and refusals included, with the
//! process's exit status in it; `summarize` over those records agrees with them.

mod common;

use common::{copy_tree, node_trees, repo};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn validator() -> jsonschema::Validator {
    common::record_validator()
}

fn run(args: &[&str], root: &Path, name: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args(args)
        .arg("--root")
        .arg(root)
        .args(["--node-name", name, "--output", "json"])
        .env("KUBELET_REMEDIATE_LOCK_TIMEOUT", "2")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The one record on stdout, checked against the schema and the exit status.
fn record(v: &jsonschema::Validator, what: &str, o: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&o.stdout);
    let mut stream = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    let j = match stream.next() {
        Some(Ok(j)) => j,
        other => panic!(
            "{what}: stdout is not a record ({other:?}): {text}\nstderr: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
    };
    assert!(stream.next().is_none(), "{what}: more than one JSON value");
    let errors: Vec<String> = v
        .iter_errors(&j)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}\n{text}");
    assert_eq!(
        j["exit_code"].as_i64(),
        o.status.code().map(i64::from),
        "{what}: the record's exit_code is the process's"
    );
    j
}

#[test]
fn every_command_on_every_tree_prints_one_valid_record() {
    let v = validator();
    let t = tempfile::tempdir().unwrap();
    let records = t.path().join("records");
    std::fs::create_dir(&records).unwrap();
    let mut results = std::collections::BTreeMap::<String, usize>::new();
    let mut saw = |j: &serde_json::Value| {
        *results
            .entry(format!(
                "{} {}",
                j["command"].as_str().unwrap(),
                j["result"].as_str().unwrap()
            ))
            .or_default() += 1;
    };
    let mut compliant = 0;
    let trees = node_trees();
    assert!(trees.len() >= 30);
    for tree in &trees {
        let case = tree.file_name().unwrap().to_string_lossy().to_string();
        let root = t.path().join(&case);
        copy_tree(tree, &root);
        let mut lines = String::new();
        for (args, what) in [
            (&["plan", "--offline"][..], "plan"),
            (&["apply", "--no-restart"], "apply without --yes"),
            (&["apply", "--yes", "--no-restart"], "apply"),
            (&["apply", "--yes", "--no-restart"], "apply again"),
            (
                &["apply", "--offline", "--yes", "--no-restart"],
                "apply offline",
            ),
            (&["verify"], "verify"),
            (&["rollback", "--list"], "rollback --list"),
            (&["rollback", "--last", "--yes", "--no-restart"], "rollback"),
            (&["plan", "--offline"], "plan after rollback"),
        ] {
            let o = run(args, &root, &case);
            let j = record(&v, &format!("{case}: {what}"), &o);
            assert_eq!(j["node"]["name"], case.as_str());
            assert_eq!(j["node"]["name_from"], "--node-name");
            saw(&j);
            if what == "plan" {
                if j["result"] == "compliant" {
                    compliant += 1;
                }
                lines += &serde_json::to_string(&j).unwrap();
                lines.push('\n');
                // The report a plan prints is the one the golden file holds.
                assert!(j["report"].is_object() || j["result"] == "error", "{case}");
            }
            if what == "apply without --yes" {
                let nothing = matches!(
                    j["result"].as_str(),
                    Some("compliant" | "refused" | "managed" | "restart-needed")
                );
                // With a plan to confirm, the refusal to ask without a terminal says --yes.
                let unread = j["report"].is_null();
                assert!(
                    nothing || unread || j["error"]["message"].as_str().unwrap().contains("--yes"),
                    "{case}: {j}"
                );
                assert!(j["applied"].is_null(), "{case}: written without --yes");
                if !nothing {
                    assert_eq!(j["error"]["files_changed"], false, "{case}");
                }
            }
        }
        std::fs::write(records.join(format!("{case}.jsonl")), lines).unwrap();
    }
    // The trees cover every result a command can give without systemd.
    for want in [
        "plan compliant",
        "plan non-compliant",
        "plan refused",
        "plan managed",
        "plan error",
        "apply changed",
        "apply compliant",
        "apply error",
        "rollback listed",
        "rollback rolled-back",
        "verify error",
    ] {
        assert!(results.contains_key(want), "no {want:?} among {results:?}");
    }

    // summarize over the plan records: one node per tree, the bad ones listed.
    let s = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .arg("summarize")
        .arg(&records)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&s.stdout);
    assert_eq!(s.status.code(), Some(2), "{table}");
    assert!(
        table.starts_with(&format!(
            "{} nodes ({} records read): {compliant} compliant, {} not\n",
            trees.len(),
            trees.len(),
            trees.len() - compliant
        )),
        "{table}"
    );
    assert!(
        table.contains("\n  openshift  managed (plan, exit 3): "),
        "{table}"
    );
    let j = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args(["summarize", "--output", "junit"])
        .arg(&records)
        .output()
        .unwrap();
    let xml = String::from_utf8_lossy(&j.stdout);
    assert_eq!(j.status.code(), Some(2));
    assert_eq!(xml.matches("<testcase ").count(), trees.len(), "{xml}");
    assert_eq!(
        xml.matches("<failure ").count(),
        trees.len() - compliant,
        "{xml}"
    );
}

#[test]
fn a_root_that_cannot_be_opened_is_still_one_record() {
    let v = validator();
    for cmd in ["plan", "apply", "verify", "rollback"] {
        let o = run(
            &[cmd, "--last", "--yes"][..if cmd == "rollback" { 3 } else { 1 }],
            Path::new("/nonexistent/node"),
            "n1",
        );
        let j = record(&v, cmd, &o);
        assert_eq!(j["result"], "error");
        assert_eq!(j["command"], cmd);
        assert!(
            j["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--root /nonexistent/node")
        );
        assert!(String::from_utf8_lossy(&o.stderr).contains("nothing was changed"));
    }
}

#[test]
fn a_malformed_file_is_an_error_record_with_its_location() {
    let v = validator();
    let o = run(
        &["plan"],
        &repo().join("testdata/nodes/malformed-yaml"),
        "m",
    );
    let j = record(&v, "malformed", &o);
    assert_eq!(j["result"], "error");
    assert_eq!(
        j["error"]["location"]["path"],
        "/var/lib/kubelet/config.yaml"
    );
    assert_eq!(j["error"]["location"]["line"], 17);
}

#[test]
fn the_node_name_comes_from_the_environment_then_the_nodes_hostname() {
    let root = repo().join("testdata/nodes/eks-al2");
    let name = |env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"));
        c.args(["plan", "--offline", "--output", "json", "--root"])
            .arg(&root)
            .env_remove("NODE_NAME")
            .env_remove("SYSTEM_UPGRADE_NODE_NAME");
        for (k, v) in env {
            c.env(k, v);
        }
        let j: serde_json::Value = serde_json::from_slice(&c.output().unwrap().stdout).unwrap();
        (
            j["node"]["name"].as_str().unwrap().to_string(),
            j["node"]["name_from"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(
        name(&[]),
        (
            "ip-192-168-12-34.ec2.internal".into(),
            "/etc/hostname".into()
        )
    );
    assert_eq!(
        name(&[("SYSTEM_UPGRADE_NODE_NAME", "suc-node")]),
        ("suc-node".into(), "SYSTEM_UPGRADE_NODE_NAME".into())
    );
    assert_eq!(
        name(&[
            ("NODE_NAME", "ds-node"),
            ("SYSTEM_UPGRADE_NODE_NAME", "suc-node")
        ]),
        ("ds-node".into(), "NODE_NAME".into())
    );
}

#[test]
fn version_names_the_git_revision() {
    let o = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .arg("--version")
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .unwrap();
    let rev = String::from_utf8_lossy(&head.stdout).trim().to_string();
    assert_eq!(
        line,
        format!("kubelet-remediate {} ({rev})", env!("CARGO_PKG_VERSION"))
    );
}

/// `man DIR` writes the main page and one per subcommand, each with its options and its exit
/// statuses as a table roff keeps as it is (`.nf`), not re-wrapped.
#[test]
fn every_man_page_is_written_with_its_options_and_exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .arg("man")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    for (page, option, status) in [
        ("kubelet-remediate.8", "summarize", "130"),
        ("kubelet-remediate-apply.8", "backup\\-dir", "130"),
        ("kubelet-remediate-summarize.8", "expect\\-nodes", "64"),
        ("kubelet-remediate-verify.8", "configz", "64"),
        ("kubelet-remediate-scan.8", "fix", "130"),
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(text.contains(option), "{page}: {option}");
        let exit = text
            .split(".SH \"EXIT STATUS\"\n.nf\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{page}: no preformatted exit status"));
        assert!(
            exit.lines().any(|l| l.trim_start().starts_with(status)),
            "{page}: {exit}"
        );
    }
}

#[test]
fn completions_and_the_man_page_name_every_command() {
    for (args, want) in [
        (&["completions", "bash"][..], "summarize"),
        (&["completions", "zsh"], "rollback"),
        (&["completions", "fish"], "verify"),
        (&["man"], ".TH kubelet-remediate 8"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(want),
            "{args:?}"
        );
    }
}

fn summarize(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .arg("summarize")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A plan record for `name`, made on a tree (compliant or not).
fn plan_record(tree: &str, name: &str) -> String {
    let o = run(
        &["plan", "--offline"],
        &repo().join("testdata/nodes").join(tree),
        name,
    );
    String::from_utf8(o.stdout).unwrap()
}

/// A fleet gate must not pass because a node's record is unreadable: a cut-off record and a
/// file of something else are listed (exit 1); a node --expect-nodes names that sent nothing
/// is missing (exit 2); -q prints nothing but the unreadable input; the JSON summary follows
/// docs/summary.schema.json.
#[test]
fn summarize_lists_unreadable_input_and_missing_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let ok = plan_record("gke", "ok-node");
    let bad = plan_record("kubeadm-deb", "cut-node");
    std::fs::write(dir.path().join("ok-node.json"), &ok).unwrap();
    std::fs::write(dir.path().join("cut-node.json"), &bad[..bad.len() / 2]).unwrap();
    std::fs::write(
        dir.path().join("notes.txt"),
        "rollout notes, not a record\n",
    )
    .unwrap();
    let o = summarize(&[dir.path().to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("2 unreadable inputs"), "{out}");
    assert!(
        err.contains("cut-node.json:1:1: error: a record cut off"),
        "{err}"
    );
    assert!(
        err.contains("notes.txt: no kubelet-remediate record in it"),
        "{err}"
    );
    // -q: nothing on stdout, the unreadable input still on stderr, the same gate.
    let q = summarize(&["-q", dir.path().to_str().unwrap()]);
    assert_eq!(q.status.code(), Some(1));
    assert!(q.stdout.is_empty());
    assert!(String::from_utf8_lossy(&q.stderr).contains("cut off"));

    // Readable records only: a node expected and absent fails the gate.
    let fine = tempfile::tempdir().unwrap();
    std::fs::write(fine.path().join("ok-node.json"), &ok).unwrap();
    let expect = fine.path().join("nodes.txt");
    std::fs::write(&expect, "# the pool\nok-node\nworker-7\n\n").unwrap();
    let records = fine.path().join("ok-node.json");
    let o = summarize(&[records.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = summarize(&[
        "--expect-nodes",
        expect.to_str().unwrap(),
        "-o",
        "json",
        records.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["missing"], serde_json::json!(["worker-7"]));
    assert_eq!(j["exit_code"], 2);
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/summary.schema.json")).unwrap(),
    )
    .unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(&j).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let mut broken = j.clone();
    broken["exit_code"] = 7.into();
    assert!(!v.is_valid(&broken), "the schema is not vacuous");
    // The JSON summary of the unreadable directory validates too and carries its listing.
    let o = summarize(&["--output", "json", dir.path().to_str().unwrap()]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.is_valid(&j), "{j}");
    assert_eq!(j["unreadable"].as_array().unwrap().len(), 2);
    assert_eq!(j["not_compliant_nodes"].as_array().unwrap().len(), 0);
}

/// Records made in the same second order by their microseconds: the later apply wins over the
/// plan before it.
#[test]
fn summarize_orders_records_of_the_same_second() {
    let rec = |result: &str, at: &str| {
        format!(
            r#"{{"schema_version":1,"node":{{"name":"n"}},"command":"plan","result":"{result}","exit_code":0,"finished_at":"{at}","report":null,"error":null}}"#
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.jsonl");
    std::fs::write(
        &f,
        format!(
            "{}\n{}\n",
            rec("changed", "2026-12-07T03:00:05.900000Z"),
            rec("non-compliant", "2026-12-07T03:00:05.100000Z")
        ),
    )
    .unwrap();
    let o = summarize(&[f.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // And a record's own times carry the fraction.
    let j: serde_json::Value = serde_json::from_str(&plan_record("kubeadm-deb", "x")).unwrap();
    assert!(
        j["finished_at"].as_str().unwrap().contains('.'),
        "{}",
        j["finished_at"]
    );
}
