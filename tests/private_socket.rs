//! systemd's private socket with dbus-daemon stopped (a package upgrade restarting it): the
//! restart still goes through, over the adapter that rewrites systemd's sender field
//! (src/systemd/private.rs), against a real systemd 252 booted in throwaway namespaces.

mod common;
use common::sandbox::{Sandbox, unavailable};
use common::*;
use std::process::{Command, Stdio};

/// Ask systemd to stop `unit` over the system bus. Stopping dbus takes this very connection
/// down, so the reply may never come: the caller checks the effect instead.
fn stop(sb: &Sandbox, unit: &str) {
    let _ = zbus::block_on(async {
        let conn = zbus::connection::Builder::address(sb.bus().as_str())
            .build()
            .await
            .unwrap();
        conn.call_method(
            Some("org.freedesktop.systemd1"),
            "/org/freedesktop/systemd1",
            Some("org.freedesktop.systemd1.Manager"),
            "StopUnit",
            &(unit, "replace"),
        )
        .await
    });
}

#[test]
fn apply_restarts_over_the_private_socket_with_dbus_daemon_stopped() {
    if skip_without(unavailable()) {
        return;
    }
    let sb = Sandbox::kubeadm("kubeadm-deb", "");
    assert_eq!(sb.live_value(), Some(false));
    let pid_before = sb.systemd().state("kubelet.service").unwrap().main_pid;
    stop(&sb, "dbus.socket");
    // The system bus goes away: poll until nothing answers on it, then only the private
    // socket can.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while kubelet_remediate::systemd::dbus::Systemd::connect(&[(sb.bus(), false)]).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "dbus-daemon still answers"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // As on a node: the tool runs in systemd's pid namespace (systemd drops private-socket
    // peers it cannot see), and finds the private socket by itself.
    let o = Command::new("nsenter")
        .args(["--target", &sb.pid1.to_string(), "--pid", "--"])
        .arg(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args([
            "apply", "--yes", "--settle", "1", "--output", "json", "--root",
        ])
        .arg(&sb.root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{text}");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["restart"]["done"], true, "{text}");
    let via = j["restart"]["address"].as_str().unwrap_or("");
    assert!(via.ends_with("/run/systemd/private"), "answered on {via}");
    let pid_after = j["restart"]["result"]["main_pid"].as_u64().unwrap() as u32;
    assert_ne!(pid_after, 0);
    assert_ne!(pid_after, pid_before, "the kubelet was not restarted");
    assert_eq!(sb.live_value(), Some(true));
}
