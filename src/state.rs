//! The tool's own marks on the node that every command reads: a restart still owed.
//!
//! `apply --no-restart` (and `rollback --no-restart`) change the files the kubelet loads at
//! start, not the running kubelet. Without `/proc` (`--offline`, or a root without one) nothing
//! else shows that a restart is still owed, so a second run said "nothing to do". The marker
//! says it until a restart by the tool, or a kubelet started after the write, is seen.

use crate::root::NodeFs;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The state directory (the backup sets live under it by default).
pub const STATE_DIR: &str = "/var/lib/kubelet-remediate";
/// The pending-restart marker's name in [`STATE_DIR`].
pub const PENDING_NAME: &str = "restart-pending.json";

/// Files were written for `unit` and no restart has been seen since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub unit: String,
    pub daemon_reload: bool,
    /// `apply` or `rollback`.
    pub by: String,
    /// When the files were written (RFC 3339, microseconds).
    pub written_at: String,
    /// The same, in milliseconds since the epoch, for comparing with a process start.
    pub written_unix_ms: u64,
    pub files: Vec<String>,
}

impl Pending {
    pub fn new(by: &str, unit: &str, daemon_reload: bool, files: Vec<String>) -> Pending {
        let now = SystemTime::now();
        Pending {
            unit: unit.to_string(),
            daemon_reload,
            by: by.to_string(),
            written_at: crate::time::rfc3339_micros(now),
            written_unix_ms: now
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            files,
        }
    }

    pub fn written(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.written_unix_ms)
    }
}

/// The marker's node path.
pub fn pending_path() -> String {
    format!("{STATE_DIR}/{PENDING_NAME}")
}

/// The marker, if there is one; `Err` names a marker that cannot be read (still a restart
/// owed: it is only ever written after files changed).
pub fn pending(fs: &NodeFs) -> Option<Result<Pending, String>> {
    let path = pending_path();
    match fs.read(&path) {
        Ok(None) => None,
        Ok(Some((_, text))) => Some(
            serde_json::from_str(&text).map_err(|e| format!("{path}: not a restart marker: {e}")),
        ),
        Err(e) => Some(Err(e.to_string())),
    }
}
