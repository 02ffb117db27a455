//! After the writes: daemon-reload if needed, restart the unit, watch it settle, and read the
//! new kubelet process back to prove it runs with makeIPTablesUtilChains true.

use crate::evidence;
use crate::root::NodeFs;
use crate::systemd::dbus::{Systemd, UnitState};
use crate::text::Files;
use crate::verdict::{self, Outcome};
use std::path::Path;
use std::time::{Duration, Instant};

/// Where to reach the node's systemd: `--dbus-address`, else its private socket (peer-to-peer)
/// and then its system bus, both inside the root.
pub fn candidates(root: &Path, address: Option<&str>) -> Vec<(String, bool)> {
    if let Some(a) = address {
        // systemd's private socket speaks peer to peer (no bus, no Hello).
        return vec![(a.to_string(), a.ends_with("/systemd/private"))];
    }
    let at = |p: &str| format!("unix:path={}", root.join(p).display());
    vec![
        (at("run/systemd/private"), true),
        (at("run/dbus/system_bus_socket"), false),
    ]
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub settle: Duration,
    pub job_timeout: Duration,
}

/// What the restart did, with timings (milliseconds).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Restarted {
    pub reloaded: bool,
    pub main_pid: u32,
    pub reload_ms: u128,
    pub restart_ms: u128,
    pub settle_ms: u128,
    pub verify_ms: u128,
}

/// Reload (when a unit file changed, or systemd says so), restart, settle, and check the new
/// main process with `check_process` (the flow's proof that it runs with the fix).
pub fn restart_and_verify(
    sd: &Systemd,
    unit: &str,
    units_changed: bool,
    check_process: Option<&dyn Fn(u32) -> Result<(), String>>,
    opts: Options,
    tick: &mut dyn FnMut(Duration),
) -> Result<Restarted, String> {
    let mut r = Restarted::default();
    let t = Instant::now();
    let need = units_changed || sd.state(unit).map_err(|e| e.0)?.need_daemon_reload;
    if need {
        sd.reload().map_err(|e| e.0)?;
        r.reloaded = true;
    }
    r.reload_ms = t.elapsed().as_millis();
    let t = Instant::now();
    let result = sd.restart(unit, opts.job_timeout).map_err(|e| e.0)?;
    r.restart_ms = t.elapsed().as_millis();
    if result != "done" {
        return Err(format!("the restart job of {unit} ended with \"{result}\""));
    }
    let t = Instant::now();
    let state: UnitState = sd.settle(unit, opts.settle, tick).map_err(|e| e.0)?;
    r.settle_ms = t.elapsed().as_millis();
    r.main_pid = state.main_pid;
    // k3s and RKE2 run the kubelet inside their own process: its argv says nothing about the
    // kubelet's flags, so there the files (checked before the restart) are the evidence.
    if let Some(check) = check_process {
        let t = Instant::now();
        check(state.main_pid)?;
        r.verify_ms = t.elapsed().as_millis();
    }
    Ok(r)
}

/// The effective value of the process `pid`, from its own command line and the files it names.
pub fn process_value(fs: &NodeFs, pid: u32) -> Result<bool, String> {
    process_verdict(&read_process(fs, pid)?)
}

/// The process `pid`: its command line and the configs it names, read now.
pub fn read_process(fs: &NodeFs, pid: u32) -> Result<evidence::Running, String> {
    evidence::running_at(fs, &mut Files::default(), pid, false)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the main process {pid} is gone"))
}

/// What a read process computes for makeIPTablesUtilChains.
pub fn process_verdict(running: &evidence::Running) -> Result<bool, String> {
    match verdict::effective(&running.cmdline, &running.configs) {
        Outcome::Value(v, _) => Ok(v),
        Outcome::Refused(why) => Err(format!("the kubelet (pid {}): {why}", running.pid)),
    }
}

/// The restarted kubelet must run with true.
pub fn verify_process(fs: &NodeFs, pid: u32) -> Result<(), String> {
    match process_value(fs, pid)? {
        true => Ok(()),
        false => Err(format!(
            "the new kubelet (pid {pid}) still runs with makeIPTablesUtilChains false"
        )),
    }
}
