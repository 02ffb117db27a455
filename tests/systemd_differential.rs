//! The planner against the real systemd 252: every node tree under testdata/nodes is booted in a
//! throwaway systemd + dbus-daemon (tests/common/sandbox.rs) with the Go stand-in kubelet
//! (tests/kubelet-stand-in) at the unit's executable. The argv systemd actually passed must equal
//! the argv the planner computed (or both must refuse: systemd does not start the unit exactly
//! when the planner cannot load it), and the stand-in's verdict, reading the node's files from
//! inside the sandbox, must equal the planner's.

mod common;
use common::kubelet_go;
use common::sandbox::{self, Sandbox};
use common::*;
use kubelet_remediate::evidence::{self, Options};
use kubelet_remediate::root::NodeFs;
use kubelet_remediate::systemd::{exec::Service, lookup};
use kubelet_remediate::text::Files;
use kubelet_remediate::verdict::{self, Outcome};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

fn skip() -> bool {
    kubelet_go::skip() || skip_without(sandbox::unavailable())
}

/// Executables a tree's units may start: the planner's, and the usual kubelet places (so a
/// unit the planner cannot load still finds a stand-in where systemd looks).
const USUAL: &[&str] = &[
    "/usr/bin/kubelet",
    "/usr/local/bin/kubelet",
    "/home/kubernetes/bin/kubelet",
    "/usr/local/bin/k3s",
    "/usr/local/bin/rke2",
];

/// Units a tree's unit requires but the tree does not ship: harmless dummies, so systemd's
/// dependency checks do not decide the test.
fn dummies(root: &Path) -> Vec<(String, String)> {
    let mut names = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else if let Ok(t) = std::fs::read_to_string(&p) {
                for l in t.lines() {
                    if let Some(v) = ["Requires=", "BindsTo=", "Requisite="]
                        .iter()
                        .find_map(|k| l.strip_prefix(k))
                    {
                        names.extend(v.split_whitespace().map(str::to_string));
                    }
                }
            }
        }
    }
    names
        .into_iter()
        .map(|n| {
            let body = if n.ends_with(".service") {
                "[Unit]\nDefaultDependencies=no\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"
            } else {
                "[Unit]\nDefaultDependencies=no\n"
            };
            (format!("/run/systemd/system/{n}"), body.to_string())
        })
        .collect()
}

struct Ours {
    unit: String,
    /// The argv systemd passes, or why the planner says systemd will not start the unit.
    argv: Result<Vec<String>, String>,
    exec: Option<String>,
    /// The kubelet's verdict: value, or refused (`None`), when it concerns a kubelet.
    verdict: Option<Option<bool>>,
}

fn ours(root: &Path) -> Ours {
    let fs = NodeFs::new(root);
    let unit = kubelet_remediate::platform::detect_unit(&fs).unwrap();
    let service = lookup::find(&fs, &unit)
        .and_then(|l| Service::load(&fs, &mut Files::default(), l))
        .map_err(|e| e.to_string());
    let exec = service.as_ref().ok().map(|s| {
        let t = s
            .exec
            .value
            .text
            .trim_start_matches(['@', '-', ':', '+', '!']);
        t.split_whitespace().next().unwrap_or("").to_string()
    });
    let argv = service.map(|s| s.argv.iter().map(|a| a.value.text.clone()).collect());
    let opts = Options {
        unit: None,
        offline: true,
    };
    let verdict = match evidence::gather(&fs, &opts) {
        Ok(ev) if ev.platform.kubelet_in_process() => None,
        Ok(ev) => Some(match verdict::judge(&ev).outcome {
            Outcome::Value(b, _) => Some(b),
            Outcome::Refused(_) => None,
        }),
        Err(_) => argv.is_ok().then_some(None),
    };
    Ours {
        unit,
        argv,
        exec,
        verdict,
    }
}

/// What happened in the sandbox: the stand-in's result, or `None` if systemd never ran it.
fn theirs(root: &Path, o: &Ours, bin: &Path) -> Option<serde_json::Value> {
    let mut exec: Vec<&str> = USUAL.to_vec();
    if let Some(e) = &o.exec
        && e.starts_with('/')
    {
        exec.push(e);
    }
    let extra = dummies(root);
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    // Nothing here changes the command line: no restarts, no pre-start commands that need a
    // real host, and a job that is done once the process has been executed.
    let sb = Sandbox::start(
        root,
        &o.unit,
        bin,
        &exec,
        "[Service]\nType=exec\nRestart=no\nExecStartPre=\n",
        &extra,
    );
    let result = sb.root.join("run/stand-in-kubelet/result.json");
    let job = sb.systemd().restart(&o.unit, Duration::from_secs(20));
    if job.as_deref().is_ok_and(|r| r == "done") {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !result.exists() {
            assert!(Instant::now() < deadline, "the stand-in wrote no result");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let text = std::fs::read_to_string(&result).ok()?;
    Some(serde_json::from_str(&text).unwrap())
}

#[test]
fn systemd_passes_the_argv_the_planner_computes() {
    if skip() {
        return;
    }
    let bin = kubelet_go::binary();
    let cases = node_trees();
    let mut failures = Vec::new();
    let mut started = 0;
    for root in &cases {
        let name = root.file_name().unwrap().to_string_lossy().to_string();
        let o = ours(root);
        let t = theirs(root, &o, &bin);
        match (&o.argv, &t) {
            (Ok(argv), Some(r)) => {
                started += 1;
                let got: Vec<String> = serde_json::from_value(r["argv"].clone()).unwrap();
                if &got != argv {
                    failures.push(format!(
                        "{name}: systemd passed {got:?}\n  the planner computed {argv:?}"
                    ));
                } else if let Some(v) = o.verdict
                    && r["kubelet"] == true
                    && r["value"].as_bool() != v
                {
                    failures.push(format!(
                        "{name}: in the sandbox the kubelet libraries say {} ({}), the planner {v:?}",
                        r["value"], r["refused"]
                    ));
                }
            }
            (Err(_), None) => {}
            (Ok(argv), None) => failures.push(format!(
                "{name}: systemd did not start the unit; the planner computed {argv:?}"
            )),
            (Err(e), Some(r)) => failures.push(format!(
                "{name}: systemd passed {}; the planner refused: {e}",
                r["argv"]
            )),
        }
    }
    assert!(started >= 25, "only {started} trees started");
    assert!(
        failures.is_empty(),
        "{} of {} trees disagree with systemd:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
