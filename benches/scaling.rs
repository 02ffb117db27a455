//! Cost in every input dimension: `cargo bench --bench scaling` prints, for each dimension at
//! 1x, 2x and 4x, the median time of three fresh `kubelet-remediate plan --offline` processes
//! and their highest peak RSS (each its own rusage, from wait4), the bytes it reads, and the memory budget (8 MiB + 4 x bytes
//! read). Figures go to docs/benchmarks.md. `SCALING_ONLY=name` runs one dimension; a run past
//! `SCALING_TIMEOUT` seconds (default 120) is killed and printed as such; `SCALING_CONTROLS=all`
//! plans with `--control all` (every 4.2 control judged, their fixes proved together).

mod common;

use common::bin;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn write(dir: &Path, rel: &str, s: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

const UNIT: &str = "usr/lib/systemd/system/kubelet.service";
const CFG: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

/// A kubeadm-like node whose ExecStart is `exec` and whose /etc/default/kubelet is `env`.
fn base(dir: &Path, exec_args: &str, env: &str) {
    write(
        dir,
        UNIT,
        &format!(
            "[Service]\nEnvironmentFile=-/etc/default/kubelet\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml {exec_args} $KUBELET_EXTRA_ARGS\n"
        ),
    );
    write(dir, "etc/default/kubelet", env);
    write(dir, "var/lib/kubelet/config.yaml", CFG);
}

fn flags(n: usize) -> String {
    (0..n)
        .map(|i| format!("--node-labels=label-{i:07}=value"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The dimensions: name, unit of n, the 1x n, and how to build a node of size n.
type Build = fn(&Path, usize);
const DIMENSIONS: &[(&str, &str, usize, Build)] = &[
    ("arguments in one variable", "flags", 2_000, |d, n| {
        base(
            d,
            "",
            &format!(
                "KUBELET_EXTRA_ARGS=\"{} --make-iptables-util-chains=false\"\n",
                flags(n)
            ),
        )
    }),
    ("ExecStart= bytes", "flags", 50_000, |d, n| {
        base(
            d,
            &format!("{} --make-iptables-util-chains=false", flags(n)),
            "",
        )
    }),
    ("environment-file assignments", "lines", 25_000, |d, n| {
        let mut s = String::new();
        for i in 0..n {
            let _ = writeln!(s, "KUBELET_EXTRA_ARGS=--v={}", i % 10);
        }
        s += "KUBELET_EXTRA_ARGS=--make-iptables-util-chains=false\n";
        base(d, "", &s)
    }),
    ("systemd drop-ins", "files", 5_000, |d, n| {
        base(
            d,
            "",
            "KUBELET_EXTRA_ARGS=--make-iptables-util-chains=false\n",
        );
        for i in 0..n {
            write(
                d,
                &format!("etc/systemd/system/kubelet.service.d/{i:06}-x.conf"),
                &format!("# drop-in {i}\n[Service]\nEnvironment=\"X_{i}=1\"\n"),
            );
        }
    }),
    ("--config-dir drop-ins", "files", 5_000, |d, n| {
        base(d, "--config-dir=/etc/kubernetes/kubelet.conf.d", "");
        for i in 0..n {
            write(
                d,
                &format!("etc/kubernetes/kubelet.conf.d/{i:06}.conf"),
                &format!("{CFG}maxPods: {}\n", 100 + i % 50),
            );
        }
        write(
            d,
            "etc/kubernetes/kubelet.conf.d/999999.conf",
            &format!("{CFG}makeIPTablesUtilChains: false\n"),
        );
    }),
    ("config bytes (YAML)", "MiB", 10, |d, n| {
        base(d, "", "");
        let mut cfg = format!("{CFG}staticPodURLHeader:\n");
        let mut i = 0;
        while cfg.len() < n << 20 {
            let _ = writeln!(
                cfg,
                "  X-Header-{i:08}: [\"value-{i:08}-aaaaaaaaaaaaaaaa\"]"
            );
            i += 1;
        }
        cfg += "makeIPTablesUtilChains: false\n";
        write(d, "var/lib/kubelet/config.yaml", &cfg);
    }),
    (
        "flow-mapping entries (one line)",
        "entries",
        25_000,
        |d, n| {
            base(d, "", "");
            // A leading comment: a file starting with `{` is JSON to the kubelet.
            let mut cfg = String::from(
                "# generated\n{apiVersion: kubelet.config.k8s.io/v1beta1, kind: KubeletConfiguration",
            );
            for i in 0..n {
                let _ = write!(cfg, ", key{i}: {i}");
            }
            cfg += ", makeIPTablesUtilChains: false}\n";
            write(d, "var/lib/kubelet/config.yaml", &cfg);
        },
    ),
];

fn dir_bytes(d: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(d).unwrap().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            dir_bytes(&e.path())
        } else {
            m.len()
        };
    }
    total
}

/// Run one plan process; its wall time and its own peak RSS in KiB, or None past the limit.
fn measure(root: &Path, limit: Duration) -> Option<(Duration, i64, i32)> {
    let mut cmd = Command::new(bin());
    cmd.args(["plan", "--offline", "--output", "json", "--root"])
        .arg(root);
    if let Ok(c) = std::env::var("SCALING_CONTROLS") {
        cmd.args(["--control", &c]);
    }
    common::measure(cmd, limit)
}

/// Build one tree in a child process: a child's peak RSS includes its parent's at the time of
/// the fork (the kernel carries it across exec), so the process that spawns the measured
/// plans must never hold a large input itself.
fn build_in_child(dim: usize, n: usize, dir: &Path) {
    let st = Command::new(std::env::current_exe().unwrap())
        .env("SCALING_BUILD", format!("{dim}:{n}:{}", dir.display()))
        .status()
        .unwrap();
    assert!(st.success());
}

fn main() {
    if let Ok(spec) = std::env::var("SCALING_BUILD") {
        let mut it = spec.splitn(3, ':');
        let dim: usize = it.next().unwrap().parse().unwrap();
        let n: usize = it.next().unwrap().parse().unwrap();
        (DIMENSIONS[dim].3)(Path::new(it.next().unwrap()), n);
        return;
    }
    assert!(
        bin().exists(),
        "build the binary first: cargo build --release"
    );
    let only = std::env::var("SCALING_ONLY").ok();
    let limit = Duration::from_secs(
        std::env::var("SCALING_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(120),
    );
    println!("# kubelet-remediate plan: cost per input dimension (one fresh process each)\n");
    println!("| dimension | n | input | time | peak RSS | budget (8 MiB + 4 x input) | exit |");
    println!("|---|---|---|---|---|---|---|");
    for (dim, (name, unit, n1, _)) in DIMENSIONS.iter().enumerate() {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let mut first: Option<Duration> = None;
        for k in [1, 2, 4] {
            let n = n1 * k;
            let tmp = tempfile::tempdir().unwrap();
            build_in_child(dim, n, tmp.path());
            let bytes = dir_bytes(tmp.path());
            let budget = 8.0 + 4.0 * bytes as f64 / (1 << 20) as f64;
            // The median of three runs (the machine is shared), the highest peak RSS.
            let runs: Vec<_> = (0..3).map_while(|_| measure(tmp.path(), limit)).collect();
            let best = (runs.len() == 3).then(|| {
                let mut times: Vec<Duration> = runs.iter().map(|r| r.0).collect();
                times.sort();
                let rss = runs.iter().map(|r| r.1).max().unwrap_or(0);
                (times[1], rss, runs[0].2)
            });
            match best {
                Some((t, rss_kib, code)) => {
                    let rss = rss_kib as f64 / 1024.0;
                    let growth = first.map_or(String::new(), |f| {
                        format!(" ({:.1}x)", t.as_secs_f64() / f.as_secs_f64())
                    });
                    first.get_or_insert(t);
                    println!(
                        "| {name} | {n} {unit} ({k}x) | {:.1} MiB | {:.0} ms{growth} | {rss:.1} MiB{} | {budget:.1} MiB | {code} |",
                        bytes as f64 / (1 << 20) as f64,
                        t.as_secs_f64() * 1e3,
                        if rss > budget { " OVER" } else { "" },
                    );
                }
                None => println!(
                    "| {name} | {n} {unit} ({k}x) | {:.1} MiB | killed after {} s | - | {budget:.1} MiB | - |",
                    bytes as f64 / (1 << 20) as f64,
                    limit.as_secs()
                ),
            }
        }
    }
}
