//! systemd over D-Bus: the few Manager, Unit and Service members the restart uses.
//!
//! Hand-written proxies for just those members (as afterburn does). The connection is tried on
//! systemd's private socket first (peer-to-peer, as root, through `private.rs`, so a node whose
//! dbus-daemon is down or restarting is still reached), then on the system bus. Method calls
//! never allow interactive authorization, so polkit cannot prompt under `--yes`; a refusal is
//! reported as "permission denied".

use std::time::{Duration, Instant};
use zbus::OwnedObjectPath;

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
trait Manager {
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn reload(&self) -> zbus::Result<()>;
    fn subscribe(&self) -> zbus::Result<()>;
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: OwnedObjectPath,
        unit: String,
        result: String,
    ) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
trait Unit {
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn need_daemon_reload(&self) -> zbus::Result<bool>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1"
)]
trait Service {
    #[zbus(property, name = "MainPID")]
    fn main_pid(&self) -> zbus::Result<u32>;
    #[zbus(property, name = "NRestarts")]
    fn n_restarts(&self) -> zbus::Result<u32>;
}

/// What systemd says about a unit right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    pub active_state: String,
    pub sub_state: String,
    pub main_pid: u32,
    pub n_restarts: u32,
    pub need_daemon_reload: bool,
}

/// A failure talking to systemd, already phrased for the operator.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct DbusError(pub String);

fn explain(what: &str, e: zbus::Error) -> DbusError {
    if let zbus::Error::MethodError(name, msg, _) = &e {
        let n = name.as_str();
        if n.ends_with(".AccessDenied") || n.ends_with(".InteractiveAuthorizationRequired") {
            return DbusError(format!(
                "{what}: permission denied by systemd ({n}{}): run as root",
                msg.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
            ));
        }
    }
    DbusError(format!("{what}: {e}"))
}

/// A connection to the node's systemd.
pub struct Systemd {
    conn: zbus::Connection,
    /// The address that answered.
    pub address: String,
    /// Who signals come from: on the private socket, the unique name the adapter writes as
    /// their sender (there is no bus to resolve `org.freedesktop.systemd1` to an owner).
    signal_sender: &'static str,
}

/// How long one method call may take before it is abandoned.
const METHOD_TIMEOUT: Duration = Duration::from_secs(30);

impl Systemd {
    /// Connect to the first address that answers a real call. `p2p` marks systemd's private
    /// socket (no bus daemon, no Hello).
    pub fn connect(candidates: &[(String, bool)]) -> Result<Systemd, DbusError> {
        let mut tried = Vec::new();
        for (address, p2p) in candidates {
            match zbus::block_on(Self::try_connect(address, *p2p)) {
                Ok(conn) => {
                    return Ok(Systemd {
                        conn,
                        address: address.clone(),
                        signal_sender: if *p2p && address.starts_with("unix:path=") {
                            super::private::SENDER
                        } else {
                            "org.freedesktop.systemd1"
                        },
                    });
                }
                Err(e) => tried.push(format!("{address}: {e}")),
            }
        }
        Err(DbusError(format!(
            "cannot reach systemd over D-Bus ({})",
            tried.join("; ")
        )))
    }

    async fn try_connect(address: &str, p2p: bool) -> zbus::Result<zbus::Connection> {
        let conn = match address.strip_prefix("unix:path=") {
            // systemd's private socket: through the adapter that makes its replies acceptable
            // to zbus (private.rs).
            Some(path) if p2p => super::private::connect(path, METHOD_TIMEOUT).await?,
            _ => {
                zbus::connection::Builder::address(address)
                    .method_timeout(METHOD_TIMEOUT)
                    .build()
                    .await?
            }
        };
        // A connection is only useful if systemd answers on it. Subscribing (once per
        // connection) makes systemd send the JobRemoved signals the restart waits for.
        let m = ManagerProxy::new(&conn).await?;
        m.load_unit("init.scope").await?;
        m.subscribe().await?;
        Ok(conn)
    }

    async fn paths(&self, unit: &str) -> zbus::Result<(UnitProxy<'_>, ServiceProxy<'_>)> {
        let path = ManagerProxy::new(&self.conn).await?.load_unit(unit).await?;
        let no_cache = zbus::proxy::CacheProperties::No;
        let u = UnitProxy::builder(&self.conn)
            .path(path.clone())
            .cache_properties(no_cache)
            .build()
            .await?;
        let s = ServiceProxy::builder(&self.conn)
            .path(path)
            .cache_properties(no_cache)
            .build()
            .await?;
        Ok((u, s))
    }

    pub fn state(&self, unit: &str) -> Result<UnitState, DbusError> {
        zbus::block_on(async {
            let (u, s) = self.paths(unit).await?;
            Ok(UnitState {
                active_state: u.active_state().await?,
                sub_state: u.sub_state().await?,
                main_pid: s.main_pid().await?,
                n_restarts: s.n_restarts().await?,
                need_daemon_reload: u.need_daemon_reload().await?,
            })
        })
        .map_err(|e: zbus::Error| explain(&format!("reading the state of {unit}"), e))
    }

    /// `systemctl daemon-reload`: returns once systemd has reloaded.
    pub fn reload(&self) -> Result<(), DbusError> {
        zbus::block_on(async { ManagerProxy::new(&self.conn).await?.reload().await })
            .map_err(|e| explain("daemon-reload", e))
    }

    /// Restart a unit and wait for its own job to finish; returns the job's result (`done`,
    /// `failed`, `timeout`, ...). The JobRemoved stream exists before the call, so the signal
    /// cannot be missed, and only our job path is matched.
    pub fn restart(&self, unit: &str, timeout: Duration) -> Result<String, DbusError> {
        use futures_util::StreamExt;
        zbus::block_on(async {
            let m = ManagerProxy::new(&self.conn).await?;
            let signals = ManagerProxy::builder(&self.conn)
                .destination(self.signal_sender)
                .build()
                .await?;
            let mut removed = signals.receive_job_removed().await?;
            let job = m.restart_unit(unit, "replace").await?;
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let next =
                    futures_util::future::select(removed.next(), Box::pin(async_sleep(left))).await;
                match next {
                    futures_util::future::Either::Left((Some(sig), _)) => {
                        let a = sig.args()?;
                        if *a.job() == job {
                            return Ok(a.result().to_string());
                        }
                    }
                    futures_util::future::Either::Left((None, _)) => {
                        return Err(zbus::Error::Failure("the signal stream ended".into()));
                    }
                    futures_util::future::Either::Right(_) => {
                        return Ok("timeout (no JobRemoved for our job)".into());
                    }
                }
            }
        })
        .map_err(|e| explain(&format!("restarting {unit}"), e))
    }

    /// Watch a restarted unit for `window`: it must stay active with the same main process and
    /// no automatic restarts. `tick` is called about every 100 ms (progress display).
    pub fn settle(
        &self,
        unit: &str,
        window: Duration,
        tick: &mut dyn FnMut(Duration),
    ) -> Result<UnitState, DbusError> {
        let start = Instant::now();
        let first = self.state(unit)?;
        loop {
            let now = self.state(unit)?;
            if now.active_state != "active" {
                return Err(DbusError(format!(
                    "{unit} is {} ({}) after the restart",
                    now.active_state, now.sub_state
                )));
            }
            if now.main_pid != first.main_pid || now.n_restarts != first.n_restarts {
                return Err(DbusError(format!(
                    "{unit} restarted by itself during the settle window (main PID {} -> {}, restarts {} -> {})",
                    first.main_pid, now.main_pid, first.n_restarts, now.n_restarts
                )));
            }
            let spent = start.elapsed();
            if spent >= window {
                return Ok(now);
            }
            tick(spent);
            std::thread::sleep(Duration::from_millis(100).min(window - spent));
        }
    }
}

/// A timer that works on whatever runtime drives `zbus::block_on`.
async fn async_sleep(d: Duration) {
    let (tx, rx) = futures_channel::oneshot::channel();
    std::thread::spawn(move || {
        std::thread::sleep(d);
        let _ = tx.send(());
    });
    let _ = rx.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method_error(name: &str) -> zbus::Error {
        let msg = zbus::Message::method_call("/org/freedesktop/systemd1", "RestartUnit")
            .build(&())
            .unwrap();
        zbus::Error::MethodError(
            zbus::names::OwnedErrorName::try_from(name).unwrap(),
            Some("Access denied".into()),
            msg,
        )
    }

    #[test]
    fn systemd_refusals_read_as_permission_denied() {
        for name in [
            "org.freedesktop.DBus.Error.AccessDenied",
            "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
        ] {
            let e = explain("restarting kubelet.service", method_error(name));
            assert!(
                e.0.starts_with("restarting kubelet.service: permission denied by systemd"),
                "{}",
                e.0
            );
            assert!(e.0.contains("run as root"), "{}", e.0);
        }
        let other = explain(
            "reload",
            method_error("org.freedesktop.systemd1.NoSuchUnit"),
        );
        assert!(!other.0.contains("permission denied"), "{}", other.0);
    }
}
