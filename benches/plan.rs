//! Plan speed and memory: `cargo bench --bench plan` prints figures (docs/benchmarks.md).
//!
//! - a typical node (testdata/nodes/kubeadm-deb): in-process plan time, and a fresh
//!   `kubelet-remediate plan` process against a fresh `cat` of the same files;
//! - synthetic nodes with N drop-ins and an M MB config (1x and 2x), to show linear growth;
//! - the same with `--control all` (every 4.2 control judged, fixes proved together).

mod common;

use common::bin;
use kubelet_remediate::evidence::{self, Options};
use kubelet_remediate::root::NodeFs;
use kubelet_remediate::{plan, verdict};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[repr(C)]
struct Rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    maxrss: i64,
    rest: [i64; 13],
}
unsafe extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}
const RUSAGE_CHILDREN: i32 = -1;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn plan_once(root: &Path) -> usize {
    let fs = NodeFs::new(root);
    let opts = Options {
        unit: None,
        offline: true,
    };
    let ev = evidence::gather(&fs, &opts).unwrap();
    let v = verdict::judge(&ev);
    let p = plan::plan(&fs, &opts, &ev, &v, None).unwrap();
    p.changes.len()
}

fn in_process(root: &Path, n: usize) -> Duration {
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(plan_once(root));
                t.elapsed()
            })
            .collect(),
    )
}

fn spawn(n: usize, mut cmd: impl FnMut() -> Command) -> Duration {
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                let out = cmd().output().unwrap();
                assert!(out.status.code().is_some());
                t.elapsed()
            })
            .collect(),
    )
}

/// Every file the planner reads for this node, as host paths.
fn files_read(root: &Path) -> Vec<PathBuf> {
    let fs = NodeFs::new(root);
    let ev = evidence::gather(
        &fs,
        &Options {
            unit: None,
            offline: true,
        },
    )
    .unwrap();
    ev.files
        .iter()
        .map(|(_, f)| fs.host_path(&f.resolved))
        .collect()
}

fn synthetic(dir: &Path, dropins: usize, mb: usize) {
    let w = |rel: &str, s: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    };
    w(
        "usr/lib/systemd/system/kubelet.service",
        "[Service]\nExecStart=/usr/bin/kubelet\n",
    );
    let mut exec = String::from(
        "ExecStart=\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml",
    );
    for i in 0..dropins {
        let body = format!(
            "# drop-in {i}\n[Service]\nEnvironment=\"ARGS_{i}=--node-labels=pool{i}=yes\"\n"
        );
        w(
            &format!("etc/systemd/system/kubelet.service.d/{i:05}-x.conf"),
            &body,
        );
        exec.push_str(&format!(" $ARGS_{i}"));
    }
    w(
        "etc/systemd/system/kubelet.service.d/99999-exec.conf",
        &format!(
            "[Service]\nEnvironment=\"LAST=--make-iptables-util-chains=false\"\n{exec} $LAST\n"
        ),
    );
    let mut cfg = String::from(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nstaticPodURLHeader:\n",
    );
    let mut i = 0;
    while cfg.len() < mb << 20 {
        cfg.push_str(&format!(
            "  X-Header-{i:08}: [\"value-{i:08}-aaaaaaaaaaaaaaaa\"]\n"
        ));
        i += 1;
    }
    cfg.push_str("makeIPTablesUtilChains: false\nreadOnlyPort: 10255\nauthentication:\n  webhook:\n    enabled: true\n  anonymous:\n    enabled: true\n");
    w("var/lib/kubelet/config.yaml", &cfg);
}

/// A fresh `plan` process (with `extra` arguments) against a fresh `cat` of the files it reads.
fn against_cat(root: &Path, extra: &[&str], files: &[PathBuf], what: &str) {
    let tool = spawn(50, || {
        let mut c = Command::new(bin());
        c.args(["plan", "--offline", "--output", "json"])
            .args(extra)
            .arg("--root")
            .arg(root);
        c
    });
    let cat = spawn(50, || {
        let mut c = Command::new("cat");
        c.args(files);
        c
    });
    println!(
        "typical node, fresh process: {what} {:.2} ms vs cat of the same {} files {:.2} ms: ratio {:.2}",
        tool.as_secs_f64() * 1e3,
        files.len(),
        cat.as_secs_f64() * 1e3,
        tool.as_secs_f64() / cat.as_secs_f64()
    );
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let typical = repo.join("testdata/nodes/kubeadm-deb");
    assert!(
        bin().exists(),
        "build the binary first: cargo build --release"
    );
    println!("# kubelet-remediate plan benchmarks (medians)");
    let t = in_process(&typical, 200);
    println!(
        "typical node (kubeadm-deb), in-process plan: {:.3} ms",
        t.as_secs_f64() * 1e3
    );
    let files = files_read(&typical);
    against_cat(&typical, &[], &files, "plan");
    // --control all also reads the client CA, the kubeconfig and /etc/hostname.
    let mut all_files = files.clone();
    for extra in [
        "etc/kubernetes/pki/ca.crt",
        "etc/kubernetes/kubelet.conf",
        "etc/hostname",
    ] {
        let p = typical.join(extra);
        if p.exists() && !all_files.contains(&p) {
            all_files.push(p);
        }
    }
    against_cat(
        &typical,
        &["--control", "all"],
        &all_files,
        "plan --control all",
    );
    for (dropins, mb) in [(1000, 10), (2000, 20)] {
        let tmp = tempfile::tempdir().unwrap();
        synthetic(tmp.path(), dropins, mb);
        let t = in_process(tmp.path(), 5);
        let p = spawn(3, || {
            let mut c = Command::new(bin());
            c.args(["plan", "--offline", "--output", "json", "--root"])
                .arg(tmp.path());
            c
        });
        let mut ru = Rusage {
            utime: [0; 2],
            stime: [0; 2],
            maxrss: 0,
            rest: [0; 13],
        };
        // SAFETY: getrusage fills the struct it is given.
        unsafe { getrusage(RUSAGE_CHILDREN, &mut ru) };
        println!(
            "synthetic node, {dropins} drop-ins + {mb} MB config: in-process {:.1} ms, fresh process {:.1} ms, peak RSS of any child so far {:.1} MiB",
            t.as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3,
            ru.maxrss as f64 / 1024.0
        );
        let all = spawn(3, || {
            let mut c = Command::new(bin());
            c.args([
                "plan",
                "--offline",
                "--control",
                "all",
                "--output",
                "json",
                "--root",
            ])
            .arg(tmp.path());
            c
        });
        println!(
            "synthetic node, {dropins} drop-ins + {mb} MB config: plan --control all, fresh process {:.1} ms",
            all.as_secs_f64() * 1e3
        );
    }
}
