//! A throwaway systemd + dbus-daemon booted as PID 1 of fresh pid and mount namespaces, with a
//! node tree copied in and the stand-in kubelet as its kubelet (shared/docs/real-systemd-for-tests.md).
//!
//! The rule that keeps the host safe: the sandbox sees only the units written here and in the
//! node tree, every one gets `DefaultDependencies=no`, and its root is a tmpfs.

use kubelet_remediate::systemd::dbus::Systemd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub struct Sandbox {
    unshare: Child,
    pub pid1: u32,
    /// The node's root as the host sees it: `/proc/<pid1>/root`.
    pub root: PathBuf,
    pub unit: String,
    _dir: tempfile::TempDir,
}

/// Why sandboxes cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { geteuid() } != 0 {
        return Some("not root: a sandboxed systemd needs root".into());
    }
    for p in [
        "/lib/systemd/systemd",
        "/usr/bin/dbus-daemon",
        "/usr/bin/unshare",
    ] {
        if !Path::new(p).exists() {
            return Some(format!("{p} is missing (install systemd and dbus)"));
        }
    }
    None
}

unsafe extern "C" {
    fn geteuid() -> u32;
    fn kill(pid: i32, sig: i32) -> i32;
}

const BASE_UNITS: &[(&str, &str)] = &[
    (
        "sandbox.target",
        "[Unit]\nDefaultDependencies=no\nWants=dbus.socket dbus.service @UNIT@\n",
    ),
    (
        "dbus.socket",
        "[Unit]\nDefaultDependencies=no\n[Socket]\nListenStream=/run/dbus/system_bus_socket\n",
    ),
    (
        "dbus.service",
        "[Unit]\nDefaultDependencies=no\nRequires=dbus.socket\n[Service]\nExecStart=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only\n",
    ),
];

/// The stand-in kubelet binary. `cargo test` builds examples; a single `--test` target does
/// not, so refuse a missing or stale one rather than test old code.
fn stand_in() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_kubelet-remediate"));
    let p = bin.parent().unwrap().join("examples/stand_in_kubelet");
    let src = super::repo().join("examples/stand_in_kubelet.rs");
    let built = std::fs::metadata(&p).and_then(|m| m.modified());
    let changed = std::fs::metadata(&src).and_then(|m| m.modified()).unwrap();
    assert!(
        built.is_ok_and(|b| b >= changed),
        "{} is missing or older than its source: run `cargo build --examples` (a plain `cargo test` does)",
        p.display()
    );
    p
}

impl Sandbox {
    /// Boot `node` (a tree under testdata/nodes) with the stand-in kubelet at `kubelet_path`.
    /// `sandbox_dropin` goes into `<unit>.d/zz-sandbox.conf` after `DefaultDependencies=no`;
    /// `extra` are more files (path, content) such as dummy units the node's unit requires.
    /// Returns once the unit is active and the stand-in has published its configz.
    pub fn boot(
        node: &Path,
        unit: &str,
        kubelet_path: &str,
        sandbox_dropin: &str,
        extra: &[(&str, &str)],
    ) -> Sandbox {
        let sb = Sandbox::start(
            node,
            unit,
            &stand_in(),
            &[kubelet_path],
            sandbox_dropin,
            extra,
        );
        // Wait (poll) until the kubelet is up.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(sd) = Systemd::connect(&[(sb.bus(), false)])
                && sd
                    .state(unit)
                    .is_ok_and(|s| s.active_state == "active" && s.main_pid != 0)
                && sb.configz().is_some()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the sandboxed {unit} did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sb
    }

    /// Boot a kubeadm-style tree under testdata/nodes (`kubelet.service`, `/usr/bin/kubelet`)
    /// with `dropin` as the sandbox drop-in.
    pub fn kubeadm(tree: &str, dropin: &str) -> Sandbox {
        Sandbox::boot(
            &super::repo().join("testdata/nodes").join(tree),
            "kubelet.service",
            "/usr/bin/kubelet",
            dropin,
            &[],
        )
    }

    /// Boot `node` with `binary` copied to each of `exec_paths`, and return as soon as systemd
    /// answers on the node's bus (whether the unit starts is the caller's question).
    pub fn start(
        node: &Path,
        unit: &str,
        binary: &Path,
        exec_paths: &[&str],
        sandbox_dropin: &str,
        extra: &[(&str, &str)],
    ) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        super::copy_tree(node, &src);
        let units = src.join("etc/systemd/system");
        std::fs::create_dir_all(units.join(format!("{unit}.d"))).unwrap();
        for (name, body) in BASE_UNITS {
            std::fs::write(units.join(name), body.replace("@UNIT@", unit)).unwrap();
        }
        std::fs::write(
            units.join(format!("{unit}.d/zz-sandbox.conf")),
            format!("[Unit]\nDefaultDependencies=no\n{sandbox_dropin}"),
        )
        .unwrap();
        for (p, body) in extra {
            let f = src.join(p.trim_start_matches('/'));
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, body).unwrap();
        }
        for p in exec_paths {
            // The sandbox's /bin, /sbin and /lib are links into /usr (merged-usr).
            let p = ["/bin/", "/sbin/", "/lib/"]
                .iter()
                .find_map(|d| p.strip_prefix(d).map(|rest| format!("/usr{d}{rest}")))
                .unwrap_or_else(|| p.to_string());
            let k = src.join(p.trim_start_matches('/'));
            std::fs::create_dir_all(k.parent().unwrap()).unwrap();
            let _ = std::fs::remove_file(&k);
            std::fs::copy(binary, &k).unwrap();
        }
        let root_dir = dir.path().join("root");
        std::fs::create_dir_all(&root_dir).unwrap();
        let boot = super::repo().join("tests/sandbox/boot.sh");
        let unshare = Command::new("unshare")
            .args([
                "--mount",
                "--pid",
                "--fork",
                "--propagation",
                "private",
                "--kill-child",
            ])
            .arg(&boot)
            .arg(&root_dir)
            .arg(&src)
            .spawn()
            .unwrap();
        let children = format!("/proc/{0}/task/{0}/children", unshare.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid1 = loop {
            let c = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(p) = c.split_whitespace().next() {
                break p.parse::<u32>().unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "the sandbox's PID 1 did not appear"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let sb = Sandbox {
            unshare,
            pid1,
            root: PathBuf::from(format!("/proc/{pid1}/root")),
            unit: unit.into(),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Systemd::connect(&[(sb.bus(), false)]).is_err() {
            assert!(
                Instant::now() < deadline,
                "the sandboxed systemd did not answer on its bus"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sb
    }

    /// The node's system bus, as the host reaches it.
    pub fn bus(&self) -> String {
        format!(
            "unix:path={}",
            self.root.join("run/dbus/system_bus_socket").display()
        )
    }

    pub fn systemd(&self) -> Systemd {
        Systemd::connect(&[(self.bus(), false)]).unwrap()
    }

    /// What the running stand-in kubelet published.
    pub fn configz(&self) -> Option<serde_json::Value> {
        let t =
            std::fs::read_to_string(self.root.join("run/stand-in-kubelet/configz.json")).ok()?;
        serde_json::from_str(&t).ok()
    }

    /// The stand-in's current makeIPTablesUtilChains.
    pub fn live_value(&self) -> Option<bool> {
        self.configz()?["kubeletconfig"]["makeIPTablesUtilChains"].as_bool()
    }

    pub fn file(&self, p: &str) -> String {
        std::fs::read_to_string(self.root.join(p.trim_start_matches('/'))).unwrap()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // SAFETY: SIGKILL to the sandbox's PID 1 takes every process of the sandbox with it.
        unsafe { kill(self.pid1 as i32, 9) };
        let _ = self.unshare.wait();
    }
}
