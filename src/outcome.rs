//! The one record every node command prints (`--output json`): who ran what on which node, the
//! result, and the report. Its shape is published as `docs/report.schema.json`.

use crate::report::Report;
use crate::restart::Restarted;
use crate::root::NodeFs;
use crate::txn::{Applied, Manifest, Restored};
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// Bumped when a field changes meaning or goes away (adding a field does not bump it).
pub const SCHEMA_VERSION: u32 = 2;

/// The git revision the binary was built from (`build.rs`), when it was built from a checkout.
pub const GIT_REVISION: Option<&str> = option_env!("KUBELET_REMEDIATE_GIT_REVISION");

/// `--version`: the package version and the git revision.
pub const LONG_VERSION: &str = match option_env!("KUBELET_REMEDIATE_VERSION_LINE") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// What happened, in one word. The exit status follows from it (see `exit_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// makeIPTablesUtilChains is true on disk and in the running kubelet.
    Compliant,
    /// Not compliant, and a fix is proposed (`plan`) or `verify` found a false.
    NonCompliant,
    /// `apply` fixed it and verified the restarted kubelet.
    Changed,
    /// The files are right (or were just written) but the running kubelet is not yet.
    RestartNeeded,
    /// The kubelet would refuse its settings: nothing is proposed automatically.
    Refused,
    /// The platform owns the files (OpenShift, Bottlerocket): the advice says what to do.
    Managed,
    /// The files were restored from a backup set (`rollback`, or a failed `apply`).
    RolledBack,
    /// `rollback --list` listed the backup sets.
    Listed,
    /// It could not be done; `error` says why, and whether any file changed.
    Error,
}

impl Verdict {
    /// The word the record uses for it (serde's spelling, kept equal by a test).
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Compliant => "compliant",
            Verdict::NonCompliant => "non-compliant",
            Verdict::Changed => "changed",
            Verdict::RestartNeeded => "restart-needed",
            Verdict::Refused => "refused",
            Verdict::Managed => "managed",
            Verdict::RolledBack => "rolled-back",
            Verdict::Listed => "listed",
            Verdict::Error => "error",
        }
    }
}

/// Who wrote the record.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
    pub git_revision: Option<&'static str>,
}

pub const TOOL: Tool = Tool {
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    git_revision: GIT_REVISION,
};

/// Which node the record is about.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub name: Option<String>,
    /// Where the name came from: `--node-name`, `NODE_NAME`, `SYSTEM_UPGRADE_NODE_NAME` or
    /// `/etc/hostname` (inside the root).
    pub name_from: Option<&'static str>,
    pub root: String,
}

impl Node {
    /// `--node-name`, else the environment a DaemonSet (downward API) or system-upgrade-controller
    /// sets, else the node's own `/etc/hostname` read inside the root.
    pub fn identify(flag: Option<&str>, fs: &NodeFs) -> Node {
        let env = |k: &'static str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| (v.trim().to_string(), k))
        };
        let found = flag
            .filter(|v| !v.trim().is_empty())
            .map(|v| (v.trim().to_string(), "--node-name"))
            .or_else(|| env("NODE_NAME"))
            .or_else(|| env("SYSTEM_UPGRADE_NODE_NAME"))
            .or_else(|| {
                // Bounded and in-root like every read; a hostile file only yields no name.
                let (_, text) = fs.read("/etc/hostname").ok()??;
                let name = text.lines().next()?.trim();
                (!name.is_empty() && name.len() <= 253).then(|| (name.to_string(), "/etc/hostname"))
            });
        Node {
            name: found.as_ref().map(|(n, _)| n.clone()),
            name_from: found.map(|(_, k)| k),
            root: fs.root().display().to_string(),
        }
    }
}

/// The restart `apply` or `rollback` made (or, with `--no-restart`, the one it leaves to you).
#[derive(Debug, Clone, Serialize)]
pub struct RestartDone {
    pub unit: String,
    pub daemon_reload: bool,
    /// The shell command that does it by hand.
    pub command: String,
    /// Whether the tool restarted the unit (and saw it settle).
    pub done: bool,
    /// The D-Bus address that answered.
    pub address: Option<String>,
    pub result: Option<Restarted>,
    /// What the restarted kubelet runs with (`null` when the kubelet runs inside k3s/RKE2 or
    /// no process could be read).
    pub value: Option<bool>,
}

/// One source `verify` consulted, and what it said.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub source: String,
    /// With `--control`: the control judged (then `value` says whether it passes).
    pub control: Option<&'static str>,
    pub value: Option<bool>,
    pub detail: String,
}

/// Where the time went, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub total_ms: u128,
    pub evidence_ms: Option<u128>,
    pub write_ms: Option<u128>,
    pub restart_ms: Option<u128>,
}

/// Why it failed.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub message: String,
    /// Files were written (and, when `result` is `rolled-back`, restored).
    pub files_changed: bool,
    /// The input at fault, when it is a file's line and column.
    pub location: Option<Location>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Location {
    pub path: String,
    pub line: usize,
    pub column: usize,
}

/// What a flow produced: everything the record says apart from who, where and when.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub result: Verdict,
    pub exit_code: i32,
    /// The evidence, the verdict and the proposed changes with their diffs (`plan`, `apply`).
    pub report: Option<Report>,
    /// What `apply` wrote and where the backups are.
    pub applied: Option<Applied>,
    pub restart: Option<RestartDone>,
    /// What `rollback` (or a failed `apply`) restored.
    pub rolled_back: Option<Restored>,
    /// `verify`'s sources.
    pub checks: Option<Vec<Check>>,
    /// `rollback --list`.
    pub backups: Option<Vec<Manifest>>,
    pub timings: Timings,
    /// Problems that did not stop the command (recovered sets, post-commit warnings).
    pub warnings: Vec<String>,
    pub error: Option<Failure>,
}

impl Outcome {
    pub fn new(result: Verdict, exit_code: i32) -> Outcome {
        Outcome {
            result,
            exit_code,
            report: None,
            applied: None,
            restart: None,
            rolled_back: None,
            checks: None,
            backups: None,
            timings: Timings::default(),
            warnings: Vec::new(),
            error: None,
        }
    }
}

/// The record: one JSON object per command and node.
#[derive(Debug, Serialize)]
pub struct Record {
    pub schema_version: u32,
    pub tool: Tool,
    pub node: Node,
    pub command: &'static str,
    pub started_at: String,
    pub finished_at: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Record {
    pub fn new(node: Node, command: &'static str, started: SystemTime, outcome: Outcome) -> Self {
        Record {
            schema_version: SCHEMA_VERSION,
            tool: TOOL,
            node,
            command,
            started_at: crate::time::rfc3339_micros(started),
            finished_at: crate::time::rfc3339_micros(SystemTime::now()),
            outcome,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("record serializes") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict::{self, *};

    #[test]
    fn names_are_the_records_spelling() {
        let all: [Verdict; 9] = [
            Compliant,
            NonCompliant,
            Changed,
            RestartNeeded,
            Refused,
            Managed,
            RolledBack,
            Listed,
            Error,
        ];
        for v in all {
            assert_eq!(serde_json::to_value(v).unwrap(), v.name());
        }
    }
}
