//! `summarize`: many nodes' JSON records in (files, JSON lines, `kubectl logs` output), one
//! fleet table or JUnit document out.

use crate::junit;
use crate::outcome::Verdict;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The parts of a record the summary reads; everything else is ignored, so records from newer
/// versions with more fields still read.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub schema_version: u32,
    #[serde(default)]
    pub node: NodePart,
    pub command: String,
    pub result: Verdict,
    pub exit_code: i32,
    #[serde(default)]
    pub finished_at: String,
    #[serde(default)]
    pub report: Option<ReportPart>,
    #[serde(default)]
    pub error: Option<ErrorPart>,
    /// Where it was read (file, and record number in it).
    #[serde(skip)]
    pub from: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodePart {
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReportPart {
    pub platform: PlatformPart,
    #[serde(default)]
    pub refused: Option<String>,
    #[serde(default)]
    pub effective: Option<EffectivePart>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlatformPart {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EffectivePart {
    pub source: Option<SourcePart>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SourcePart {
    pub path: Option<String>,
    pub line: Option<usize>,
    pub text: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorPart {
    pub message: String,
}

impl Entry {
    /// Compliant now: true on disk and in the running kubelet, or fixed and verified.
    pub fn ok(&self) -> bool {
        matches!(self.result, Verdict::Compliant | Verdict::Changed)
    }

    pub fn name(&self) -> &str {
        self.node.name.as_deref().unwrap_or(&self.from)
    }

    pub fn platform(&self) -> &str {
        self.report
            .as_ref()
            .map_or("(unknown)", |r| r.platform.name.as_str())
    }

    /// One line: why this node is not compliant.
    pub fn why(&self) -> String {
        if let Some(e) = &self.error {
            return e.message.clone();
        }
        let Some(r) = &self.report else {
            return self.result.name().into();
        };
        if let Some(why) = &r.refused {
            return format!("the kubelet would refuse its settings: {why}");
        }
        match r.effective.as_ref().and_then(|e| e.source.as_ref()) {
            _ if self.result == Verdict::RestartNeeded => {
                "the files are right; the running kubelet has not been restarted".into()
            }
            Some(SourcePart {
                path: Some(p),
                line: Some(l),
                text,
            }) => format!(
                "false from {} at {p}:{l}",
                text.as_deref().unwrap_or("a setting")
            ),
            _ => self.result.name().into(),
        }
    }
}

/// The latest record of each node, by name.
#[derive(Debug, Default)]
pub struct Fleet {
    pub nodes: Vec<Entry>,
    /// Records that were read (before keeping only each node's latest).
    pub read: usize,
}

impl Fleet {
    pub fn all_compliant(&self) -> bool {
        self.nodes.iter().all(Entry::ok)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("{path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Record {
        path: String,
        line: usize,
        message: String,
    },
    #[error(
        "no records found in {0} (expected the JSON that plan, apply, rollback and verify print with --output json)"
    )]
    Empty(String),
}

/// Every record in `paths` (files, or directories walked in name order; none or `-` is
/// standard input), then each node's latest.
pub fn read(paths: &[PathBuf]) -> Result<Fleet, SummaryError> {
    let mut files = Vec::new();
    let stdin = Path::new("-");
    if paths.is_empty() {
        files.push(stdin.to_path_buf());
    }
    for p in paths {
        collect(p, &mut files)?;
    }
    let mut all = Vec::new();
    for f in &files {
        let shown = f.display().to_string();
        let mut text = String::new();
        let got = if f == stdin {
            std::io::stdin().read_to_string(&mut text)
        } else {
            std::fs::File::open(f).and_then(|mut h| h.read_to_string(&mut text))
        };
        got.map_err(|cause| SummaryError::Io {
            path: shown.clone(),
            cause,
        })?;
        records(&shown, &text, &mut all)?;
    }
    if all.is_empty() {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        return Err(SummaryError::Empty(names.join(", ")));
    }
    let read = all.len();
    // The latest record per node wins (RFC 3339 UTC sorts as text); a tie goes to the later
    // one read. `rollback --list` says nothing about compliance and is left out.
    let mut latest: BTreeMap<String, Entry> = BTreeMap::new();
    for e in all.into_iter().filter(|e| e.result != Verdict::Listed) {
        let key = e.name().to_string();
        match latest.get(&key) {
            Some(old) if old.finished_at > e.finished_at => {}
            _ => {
                latest.insert(key, e);
            }
        }
    }
    Ok(Fleet {
        nodes: latest.into_values().collect(),
        read,
    })
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) -> Result<(), SummaryError> {
    let io = |cause| SummaryError::Io {
        path: p.display().to_string(),
        cause,
    };
    if p == Path::new("-") || !std::fs::metadata(p).map_err(io)?.is_dir() {
        out.push(p.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|e| {
            !e.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for e in entries {
        collect(&e, out)?;
    }
    Ok(())
}

/// The records in one text: one JSON object, several (JSON lines or pretty-printed one after
/// another), or lines with a prefix before the `{` (`kubectl logs --prefix`). Lines that hold
/// no JSON object (a log line, a blank) are skipped; a JSON object that is not a record is an
/// error naming its line.
fn records(path: &str, text: &str, out: &mut Vec<Entry>) -> Result<(), SummaryError> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut pos = 0;
    while pos < text.len() {
        let Some(start) = text[pos..].find('{').map(|i| pos + i) else {
            break;
        };
        let mut stream =
            serde_json::Deserializer::from_str(&text[start..]).into_iter::<serde_json::Value>();
        match stream.next() {
            Some(Ok(v)) => {
                let end = start + stream.byte_offset();
                let line = line_of(start);
                let mut e: Entry = serde_json::from_value(v).map_err(|e| SummaryError::Record {
                    path: path.into(),
                    line,
                    message: format!("not a kubelet-remediate record: {e}"),
                })?;
                e.from = format!("{path}:{line}");
                out.push(e);
                pos = end;
            }
            // Not JSON from this brace: skip the rest of its line.
            _ => {
                pos = text[start..]
                    .find('\n')
                    .map_or(text.len(), |i| start + i + 1);
            }
        }
    }
    Ok(())
}

/// The fleet table: counts per result and per platform, then every node that is not compliant
/// and why.
pub fn text(f: &Fleet) -> String {
    let mut by_result: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_platform: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for e in &f.nodes {
        *by_result.entry(e.result.name()).or_default() += 1;
        let p = by_platform.entry(e.platform()).or_default();
        p.0 += 1;
        if !e.ok() {
            p.1 += 1;
        }
    }
    let bad: Vec<&Entry> = f.nodes.iter().filter(|e| !e.ok()).collect();
    let mut o = format!(
        "{} nodes ({} records read): {} compliant, {} not\n\n",
        f.nodes.len(),
        f.read,
        f.nodes.len() - bad.len(),
        bad.len()
    );
    o += &format!("{:<16} {:>6}\n", "result", "nodes");
    for (r, n) in &by_result {
        o += &format!("{r:<16} {n:>6}\n");
    }
    let width = by_platform
        .keys()
        .map(|k| k.len())
        .max()
        .unwrap_or(8)
        .max(8);
    o += &format!(
        "\n{:<width$} {:>6} {:>14}\n",
        "platform", "nodes", "not compliant"
    );
    for (p, (n, b)) in &by_platform {
        o += &format!("{p:<width$} {n:>6} {b:>14}\n");
    }
    if !bad.is_empty() {
        o += "\nnot compliant:\n";
        for e in bad {
            o += &format!(
                "  {}  {} ({}, exit {}): {}\n",
                e.name(),
                e.result.name(),
                e.command,
                e.exit_code,
                e.why()
            );
        }
    }
    o
}

/// One test case per node (as kube-bench's `--junit` has one per check): a failure for every
/// node that is not compliant, with why.
pub fn junit(f: &Fleet) -> String {
    let class = "CIS Kubernetes 4.2.7 / 4.2.6, EKS/AKS/GKE 3.2.6: makeIPTablesUtilChains is true";
    let mut cases = String::new();
    let mut failures = 0;
    for e in &f.nodes {
        let name = junit::escape(e.name());
        if e.ok() {
            cases += &format!("    <testcase classname=\"{class}\" name=\"{name}\"/>\n");
            continue;
        }
        failures += 1;
        cases += &format!(
            "    <testcase classname=\"{class}\" name=\"{name}\">\n      <failure type=\"{}\" message=\"{}\">{} on {} ({}): {}</failure>\n    </testcase>\n",
            e.result.name(),
            junit::escape(&e.why()),
            junit::escape(&e.command),
            name,
            junit::escape(e.platform()),
            junit::escape(&e.why()),
        );
    }
    junit::document(
        "kubelet-remediate fleet",
        f.nodes.len(),
        failures,
        0,
        &cases,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, result: &str, at: &str) -> String {
        format!(
            r#"{{"schema_version":1,"node":{{"name":"{name}"}},"command":"plan","result":"{result}","exit_code":0,"finished_at":"{at}","report":null,"error":null}}"#
        )
    }

    #[test]
    fn reads_pretty_lines_and_prefixed_records_and_keeps_each_nodes_latest() {
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(&rec(
                "a",
                "non-compliant",
                "2026-01-01T00:00:00Z",
            ))
            .unwrap(),
        )
        .unwrap();
        let text = format!(
            "{pretty}\n{}\nsome log line {{ not json\n[pod/audit-x/audit] {}\n",
            rec("a", "compliant", "2026-01-02T00:00:00Z"),
            rec("b", "error", "2026-01-01T00:00:00Z"),
        );
        let mut all = Vec::new();
        records("t", &text, &mut all).unwrap();
        assert_eq!(all.len(), 3);
        // After the pretty record's lines, the JSON line and the log line.
        assert_eq!(all[2].from, format!("t:{}", pretty.lines().count() + 3));
        assert_eq!(all[2].name(), "b");
    }

    #[test]
    fn a_json_object_that_is_not_a_record_names_its_line() {
        let mut all = Vec::new();
        let e = records("t", "\n\n{\"kind\": \"Pod\"}\n", &mut all).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t:3: not a kubelet-remediate record"),
            "{e}"
        );
    }
}
