//! The properties the fuzz targets check, one function per target, shared with
//! `tests/fuzz_corpus.rs` (which replays every corpus file under plain `cargo test`, no nightly).
//!
//! Node files are fuzzed in memory: a shipped `testdata/` tree is the node, and the fuzzed text
//! replaces one of its files through the planner's own overlay (`NodeFs::with_overlay`), so an
//! input costs no disk write. Every target asserts "no panic"; the node targets also assert the
//! planner's promise: when it proposes edits, the edited node judges compliant and needs no
//! further edit (the re-evaluation `plan` itself does, checked from outside).
#![allow(dead_code)]

use kubelet_remediate::flow::{self, Eval};
use kubelet_remediate::root::NodeFs;
use kubelet_remediate::{flags, saved, scan, summary, txn};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The repository's `testdata/`, found from the including crate's manifest (the project's or
/// `fuzz/`'s).
pub fn testdata() -> PathBuf {
    let mut d = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let t = d.join("testdata/nodes");
        if t.is_dir() {
            return d.join("testdata");
        }
        assert!(d.pop(), "no testdata/ above {}", env!("CARGO_MANIFEST_DIR"));
    }
}

fn tree(name: &str) -> NodeFs {
    NodeFs::new(testdata().join("nodes").join(name))
}

fn file(tree: &str, node_path: &str) -> Arc<str> {
    let p = testdata().join("nodes").join(tree).join(&node_path[1..]);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .into()
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Plan `tree` with `overlay`, for the first control alone and for every control; when edits
/// are proposed, the edited node must be readable, every control they fix must pass, and
/// planning again must propose nothing. The reports must render.
fn plan_and_prove(tree_name: &str, overlay: HashMap<String, Arc<str>>) {
    let base = tree(tree_name);
    let all = kubelet_remediate::controls::select(Some("all"), None).expect("all is a selection");
    for controls in [Default::default(), all] {
        let eval = Eval {
            offline: true,
            controls,
            ..Eval::default()
        };
        let Ok((_, report, plan)) = flow::evaluate(&base.with_overlay(overlay.clone()), &eval)
        else {
            return; // a refusal naming the place: what bad input should get
        };
        let _ = (report.to_text(false), report.to_json(), report.refused_at());
        if plan.changes.is_empty() {
            continue;
        }
        let mut edited = overlay.clone();
        for c in &plan.changes {
            assert!(
                !c.diff.is_empty() || !c.meta.is_empty(),
                "{}: a change with neither a diff nor a mode or owner change",
                c.path
            );
            edited.insert(c.path.clone(), c.after.clone());
        }
        let (_, after, again) = flow::evaluate(&base.with_overlay(edited), &eval)
            .unwrap_or_else(|e| panic!("the planned edits made the node unreadable: {e}"));
        if eval.controls.default {
            assert!(
                after.compliant,
                "the planned edits do not make the node compliant: {:?}",
                after.effective
            );
        }
        // An overlay holds contents, not modes: the 4.1 controls' chmods are proved by the
        // tests that apply them (tests/files.rs).
        let file_control =
            |id: &str| kubelet_remediate::controls::get(id).is_some_and(|k| k.file.is_some());
        for c in report
            .controls
            .iter()
            .filter(|c| c.fixable && !file_control(c.id))
        {
            let now = after
                .controls
                .iter()
                .find(|a| a.id == c.id)
                .expect("judged again");
            assert_eq!(
                now.status,
                kubelet_remediate::controls::Status::Pass,
                "{}: fixed by the plan, still failing after it",
                c.id
            );
        }
        assert!(
            again.changes.iter().all(|c| !c.edits_content()),
            "the edited node still gets a plan"
        );
    }
}

/// One node file replaced by the input.
fn node_file(tree_name: &str, node_path: &str, data: &[u8], extra: &[(&str, Arc<str>)]) {
    let Some(t) = text(data) else { return };
    let mut overlay: HashMap<String, Arc<str>> = extra
        .iter()
        .map(|(p, t)| (p.to_string(), t.clone()))
        .collect();
    overlay.insert(node_path.into(), t.into());
    plan_and_prove(tree_name, overlay);
}

/// The kubeadm tree with `--config-dir`: its flag, env file and drop-in are the other sources.
const KUBEADM: &str = "config-dir-override";

/// `--config` (YAML, or JSON when it starts with `{`) as the only source of a false: the env
/// file's flag is taken away so the config's own edit path is what gets proved.
pub fn config_file(data: &[u8]) {
    let env = "/etc/default/kubelet";
    let quiet: Arc<str> = file(KUBEADM, env)
        .replace("--make-iptables-util-chains=false", "")
        .into();
    node_file(
        KUBEADM,
        "/var/lib/kubelet/config.yaml",
        data,
        &[(env, quiet)],
    );
}

/// EKS AL2's JSON `--config`.
pub fn config_json(data: &[u8]) {
    node_file(
        "eks-al2",
        "/etc/kubernetes/kubelet/kubelet-config.json",
        data,
        &[],
    );
}

/// A `--config-dir` drop-in.
pub fn config_dropin(data: &[u8]) {
    node_file(
        KUBEADM,
        "/etc/kubernetes/kubelet.conf.d/10-base.conf",
        data,
        &[],
    );
}

/// An `EnvironmentFile=` (the flags kubeadm writes).
pub fn env_file(data: &[u8]) {
    node_file(KUBEADM, "/var/lib/kubelet/kubeadm-flags.env", data, &[]);
}

/// The unit's fragment (first byte even) or its kubeadm drop-in (odd): unit syntax,
/// `Environment=`, `EnvironmentFile=`, `ExecStart=` expansion.
pub fn unit_file(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let path = if which % 2 == 0 {
        "/usr/lib/systemd/system/kubelet.service"
    } else {
        "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
    };
    node_file(KUBEADM, path, rest, &[]);
}

/// k3s's `config.yaml` (`kubelet-arg` lists).
pub fn k3s_config(data: &[u8]) {
    node_file("k3s-agent", "/etc/rancher/k3s/config.yaml", data, &[]);
}

/// The kubelet's command line, one argument a line, through pflag's rules; and every word
/// through every flag type's value parser of the settings table (a parse error is fine, a
/// panic is not; a duration that parses prints and parses back to itself).
pub fn argv(data: &[u8]) {
    use kubelet_remediate::settings::{self, FlagType, Value};
    let Some(t) = text(data) else { return };
    let words: Vec<&str> = t.split('\n').collect();
    let cmd = flags::parse(&words);
    let _ = cmd.effective();
    for w in &words {
        for ty in [
            FlagType::Bool,
            FlagType::Int32,
            FlagType::Int64,
            FlagType::String,
            FlagType::Duration,
            FlagType::StringSlice,
            FlagType::MapStringBool,
        ] {
            if let Ok(v) = settings::parse(ty, w) {
                let shown = v.to_string();
                if let Value::Duration(d) = v {
                    assert_eq!(settings::parse_duration(&shown), Ok(d), "{w:?} -> {shown}");
                }
            }
        }
    }
}

/// A saved plan (`plan --out`) applied to the files it names, as `apply --plan` does.
pub fn saved_plan(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let Ok(p) = saved::SavedPlan::parse("/plan.json", t) else {
        return;
    };
    let node = tree("kubeadm-deb");
    for f in &p.files {
        let current = node
            .read(&f.path)
            .ok()
            .flatten()
            .map_or_else(String::new, |(_, t)| t.to_string());
        let _ = p.after(f, &current);
        // A mode or owner change is read back with validation, never trusted.
        let now = kubelet_remediate::meta::Meta {
            mode: 0o644,
            uid: 0,
            gid: 0,
        };
        if f.meta.parsed().is_ok() {
            assert!(f.meta.starts_at(now).is_ok() && f.meta.target(now).is_ok());
        }
    }
}

/// A backup set's manifest, listed and rolled back (forced) in a throwaway root: no panic, and
/// nothing written outside the root.
pub fn backup_manifest(data: &[u8]) {
    const ID: &str = "20261207T000000Z-1";
    let tmp = scratch();
    let root = tmp.path().join("root");
    let host = tmp.path().join("host");
    let set = root.join("var/lib/kubelet-remediate/backups").join(ID);
    std::fs::create_dir_all(&set).unwrap();
    std::fs::create_dir_all(root.join("etc/default")).unwrap();
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("kubelet"), "host\n").unwrap();
    let host_mode = || {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(host.join("kubelet"))
            .unwrap()
            .permissions()
            .mode()
    };
    let mode = host_mode();
    std::fs::write(root.join("etc/default/kubelet"), "KUBELET_EXTRA_ARGS=\n").unwrap();
    std::fs::write(set.join("1.orig"), "KUBELET_EXTRA_ARGS=--x\n").unwrap();
    std::fs::write(set.join("manifest.json"), data).unwrap();
    let fs = NodeFs::new(&root);
    let dir = "/var/lib/kubelet-remediate/backups";
    let _ = txn::list(&fs, dir);
    let _ = txn::rollback(&fs, dir, ID, true);
    assert_eq!(
        std::fs::read_to_string(host.join("kubelet")).unwrap(),
        "host\n"
    );
    assert_eq!(std::fs::read_dir(&host).unwrap().count(), 1);
    // A manifest's mode and owner are put back inside the root only.
    assert_eq!(host_mode(), mode);
}

/// `summarize` input: records, JSON lines, `kubectl logs --prefix` lines, anything.
pub fn summarize(data: &[u8]) {
    let tmp = scratch();
    let p = tmp.path().join("records.json");
    std::fs::write(&p, data).unwrap();
    if let Ok(fleet) = summary::read(&[p]) {
        let _ = (summary::text(&fleet), summary::junit(&fleet));
    }
}

/// A manifest `scan` reads (first byte: a `.yaml`, a `.json`, or a chart template), rendered in
/// every format; after `--fix` no fixable finding is left and nothing else broke.
pub fn scan(data: &[u8]) {
    use scan::output;
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let tmp = scratch();
    let name = match which % 3 {
        0 => "m.yaml",
        1 => "m.json",
        _ => "chart/templates/m.yaml",
    };
    let path = tmp.path().join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, rest).unwrap();
    let paths = [tmp.path().to_path_buf()];
    let Ok(found) = scan::scan(&paths) else {
        return;
    };
    for render in [output::text, output::json, output::sarif, output::junit] {
        render(&found);
    }
    scan::write_fixes(&found).unwrap();
    let again = scan::scan(&paths).unwrap();
    let left: Vec<_> = again.findings().filter(|f| f.diff.is_some()).collect();
    assert!(
        left.is_empty(),
        "fixable findings left after --fix: {left:?}"
    );
}

/// A throwaway directory, in memory where the machine has one.
fn scratch() -> tempfile::TempDir {
    static SHM: OnceLock<bool> = OnceLock::new();
    if *SHM.get_or_init(|| Path::new("/dev/shm").is_dir()) {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}
