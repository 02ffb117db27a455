//! A plan saved by `plan --out FILE` and applied later by `apply --plan FILE`.
//!
//! It records every edit and the sha256 of each file it was computed from, so `apply` applies
//! exactly what was reviewed and refuses, naming the file, if anything changed since.

use crate::error::{Error, Result};
use crate::plan::{self, Plan};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedEdit {
    pub start: usize,
    pub end: usize,
    pub replacement: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedFile {
    /// Resolved node path: the file that is written.
    pub path: String,
    pub sha256_before: String,
    pub sha256_after: String,
    pub edits: Vec<SavedEdit>,
    /// The mode or owner change (4.1 controls), from what the file had when planned: `apply
    /// --plan` refuses a file whose mode or owner is no longer that.
    #[serde(flatten)]
    pub meta: crate::meta::MetaChange,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: u32,
    pub tool_version: String,
    /// The node it was made for (its name in the record), and the root it was read from
    /// (absolute): `apply --plan` on another node or root is refused. Absent in plans saved
    /// before they were recorded.
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub root: Option<String>,
    pub unit: String,
    pub daemon_reload: bool,
    pub files: Vec<SavedFile>,
    /// The controls it was made for (`--control`, as ids) and their benchmark; absent: the
    /// first control alone. `apply --plan` judges and verifies the same ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<String>,
    /// The controls were named one by one (opt-in fixes may be in the plan), not `all`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub named: bool,
}

/// The root as an absolute path with symlinks resolved (as given when that fails).
fn absolute(root: &std::path::Path) -> String {
    std::fs::canonicalize(root)
        .unwrap_or_else(|_| root.to_path_buf())
        .display()
        .to_string()
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl SavedPlan {
    /// The selection it was made with: `None` for the first control alone.
    pub fn selection(&self) -> std::result::Result<Option<crate::controls::Selection>, String> {
        let Some(ids) = &self.controls else {
            return Ok(None);
        };
        let mut sel = crate::controls::select(Some(&ids.join(",")), self.benchmark.as_deref())?;
        sel.explicit = self.named;
        Ok(Some(sel))
    }

    pub fn from_plan(
        unit: &str,
        p: &Plan,
        node: Option<&str>,
        root: &std::path::Path,
        sel: &crate::controls::Selection,
    ) -> SavedPlan {
        SavedPlan {
            controls: (!sel.default).then(|| sel.ids.iter().map(|i| i.to_string()).collect()),
            benchmark: (!sel.default).then(|| sel.benchmark.to_string()),
            named: !sel.default && sel.explicit,
            format: FORMAT,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            node: node.map(str::to_string),
            root: Some(absolute(root)),
            unit: unit.into(),
            daemon_reload: p.daemon_reload,
            files: p
                .changes
                .iter()
                .map(|c| SavedFile {
                    path: c.path.clone(),
                    sha256_before: sha256_hex(c.before.as_bytes()),
                    sha256_after: sha256_hex(c.after.as_bytes()),
                    edits: c
                        .edits
                        .iter()
                        .map(|(start, end, replacement)| SavedEdit {
                            start: *start,
                            end: *end,
                            replacement: replacement.clone(),
                        })
                        .collect(),
                    meta: c.meta.clone(),
                })
                .collect(),
        }
    }

    pub fn parse(path: &str, text: &str) -> Result<SavedPlan> {
        let p: SavedPlan = serde_json::from_str(text).map_err(|e| {
            Error::parse(path, e.line(), e.column(), format!("not a saved plan: {e}"))
        })?;
        if p.format != FORMAT {
            return Err(Error::parse(
                path,
                1,
                1,
                format!("saved plan format {} is not {FORMAT}", p.format),
            ));
        }
        Ok(p)
    }

    /// Refuse a plan made for another node or another root.
    pub fn check_target(
        &self,
        path: &str,
        node: Option<&str>,
        root: &std::path::Path,
    ) -> Result<()> {
        if let (Some(planned), Some(here)) = (&self.node, node)
            && planned != here
        {
            return Err(Error::Unsupported(format!(
                "{path}: the plan was made for node {planned}, and this is {here}: make a new plan here"
            )));
        }
        let here = absolute(root);
        match &self.root {
            Some(planned) if *planned != here => Err(Error::Unsupported(format!(
                "{path}: the plan was made for --root {planned}, and this is --root {here}: make a new plan for this root"
            ))),
            _ => Ok(()),
        }
    }

    /// The new content of one file, from its current content; refuses if the file changed
    /// since the plan was made.
    pub fn after(&self, f: &SavedFile, current: &str) -> Result<String> {
        let now = sha256_hex(current.as_bytes());
        if now != f.sha256_before {
            return Err(Error::Unsupported(format!(
                "{}: changed since the plan was made (sha256 {now}, the plan was computed from {}): make a new plan",
                f.path, f.sha256_before
            )));
        }
        let edits: Vec<(usize, usize, String)> = f
            .edits
            .iter()
            .map(|e| (e.start, e.end, e.replacement.clone()))
            .collect();
        let after = plan::apply_edits(current, &edits).ok_or_else(|| {
            Error::Unsupported(format!("{}: the saved edits do not fit the file", f.path))
        })?;
        if sha256_hex(after.as_bytes()) != f.sha256_after {
            return Err(Error::Unsupported(format!(
                "{}: the saved edits do not produce the planned content",
                f.path
            )));
        }
        Ok(after)
    }
}
