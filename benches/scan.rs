//! `scan` over generated repositories: `cargo bench --bench scan` prints files per second and
//! peak RSS for 2,500, 5,000 and 10,000 manifests (mixed kinds, about 3% non-compliant), one
//! fresh `kubelet-remediate scan --output json` process each (median of three, its own rusage
//! from wait4), and the same trees through checkov's CKV_K8S_145 when `CHECKOV` names a checkov
//! executable (`python3 -m venv v && v/bin/pip install checkov`, then `CHECKOV=v/bin/checkov`).
//! Figures go to docs/benchmarks.md.

mod common;

use common::bin;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Manifest `i`: one of eight kinds; every 33rd sets the value false.
fn manifest(i: usize) -> (String, String) {
    let bad = i.is_multiple_of(33);
    let v = if bad { "false" } else { "true" };
    let name = format!("app-{i:05}");
    match i % 8 {
        0 => (
            format!("apps/{name}/deployment.yaml"),
            format!(
                "# generated\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: team-{}\n  labels:\n    app: {name}\nspec:\n  replicas: 3\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n        - name: web\n          image: registry.example/{name}:1.{}\n          args: [\"--port=8080\", \"--log-level=info\"]\n          ports:\n            - containerPort: 8080\n          resources:\n            requests: {{cpu: 100m, memory: 128Mi}}\n",
                i % 17,
                i % 9
            ),
        ),
        1 => (
            format!("apps/{name}/service.yaml"),
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: {name}\n  ports:\n    - port: 80\n      targetPort: 8080\n"
            ),
        ),
        2 => (
            format!("nodes/{name}-kubelet-config.yaml"),
            format!(
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\nmaxPods: 110\nmakeIPTablesUtilChains: {v}\nevictionHard:\n  memory.available: 200Mi\n"
            ),
        ),
        3 => (
            format!("kubeadm/{name}.yaml"),
            format!(
                "apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\nnodeRegistration:\n  name: {name}\n  kubeletExtraArgs:\n    node-labels: pool=general\n    make-iptables-util-chains: \"{v}\"\n---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nrotateCertificates: true\n"
            ),
        ),
        4 => (
            format!("hollow/{name}.yaml"),
            format!(
                "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      containers:\n        - name: kubelet\n          image: registry.k8s.io/kubemark:v1.30.0\n          command: [\"/usr/local/bin/kubelet\"]\n          args:\n            - --v=2\n            - --make-iptables-util-chains={v}\n"
            ),
        ),
        5 => (
            format!("config/{name}.json"),
            format!(
                "{{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {{\"name\": \"{name}\"}}, \"data\": {{\"LOG_LEVEL\": \"info\", \"FEATURE_X\": \"on\"}}}}\n"
            ),
        ),
        6 => (
            format!("eks/{name}.yaml"),
            format!(
                "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  cluster:\n    name: {name}\n  kubelet:\n    config:\n      maxPods: 58\n      makeIPTablesUtilChains: {v}\n"
            ),
        ),
        _ => (
            format!("apps/{name}/pod.yaml"),
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n    - name: main\n      image: busybox:1.36\n      command: [\"sh\", \"-c\", \"sleep 3600\"]\n"
            ),
        ),
    }
}

fn build(dir: &Path, n: usize) -> usize {
    let mut bad = 0;
    for i in 0..n {
        let (rel, text) = manifest(i);
        bad += usize::from(i.is_multiple_of(33) && matches!(i % 8, 2 | 3 | 4 | 6));
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    bad
}

/// One process: wall time, its own peak RSS (KiB), exit status. No time limit that matters:
/// checkov takes minutes.
fn measure(cmd: Command) -> (Duration, i64, i32) {
    common::measure(cmd, Duration::from_secs(24 * 3600)).expect("finished within a day")
}

fn median3(f: impl Fn() -> (Duration, i64, i32)) -> (Duration, i64, i32) {
    let mut runs: Vec<_> = (0..3).map(|_| f()).collect();
    let rss = runs.iter().map(|r| r.1).max().unwrap_or(0);
    runs.sort_by_key(|r| r.0);
    (runs[1].0, rss, runs[1].2)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    assert!(
        bin().exists(),
        "build the binary first: cargo build --release"
    );
    let checkov = std::env::var_os("CHECKOV").map(PathBuf::from);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# kubelet-remediate scan over generated repositories (one fresh process, median of 3)\n"
    );
    let _ = writeln!(
        out,
        "| manifests | findings | scan time | files/s | peak RSS | checkov CKV_K8S_145 | ratio |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    print!("{out}");
    let mut first = None;
    for n in [2_500, 5_000, 10_000] {
        let tmp = tempfile::tempdir().unwrap();
        let bad = build(tmp.path(), n);
        let (t, rss, code) = median3(|| {
            let mut c = Command::new(bin());
            c.args(["scan", "--output", "json"]).arg(tmp.path());
            measure(c)
        });
        assert_eq!(code, 2, "findings expected");
        let growth = first.map_or(String::new(), |f: Duration| {
            format!(" ({:.1}x)", t.as_secs_f64() / f.as_secs_f64())
        });
        first.get_or_insert(t);
        let ck = checkov.as_ref().map(|c| {
            // One run: checkov takes minutes at this size.
            let mut cmd = Command::new(c);
            cmd.args([
                "--quiet",
                "--compact",
                "-o",
                "json",
                "--check",
                "CKV_K8S_145",
                "-d",
            ])
            .arg(tmp.path());
            measure(cmd)
        });
        let (ck_s, ratio) = match ck {
            Some((ct, crss, _)) => (
                format!("{:.1} s, {:.0} MiB", ct.as_secs_f64(), crss as f64 / 1024.0),
                format!("{:.0}x", ct.as_secs_f64() / t.as_secs_f64()),
            ),
            None => ("(CHECKOV unset)".into(), "-".into()),
        };
        println!(
            "| {n} | {bad} | {:.0} ms{growth} | {:.0} | {:.1} MiB | {ck_s} | {ratio} |",
            t.as_secs_f64() * 1e3,
            n as f64 / t.as_secs_f64(),
            rss as f64 / 1024.0
        );
    }
}
