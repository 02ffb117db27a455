//! `summarize`: many nodes' JSON records in (files, JSON lines, `kubectl logs` output), one
//! fleet table or JUnit document out.

use crate::junit;
use crate::outcome::Verdict;
use crate::time;
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
    /// Schema 2: each selected control's verdict (absent in schema 1 records).
    #[serde(default)]
    pub controls: Vec<ControlPart>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ControlPart {
    pub id: String,
    #[serde(default)]
    pub cis: Option<String>,
    #[serde(default)]
    pub title: String,
    pub status: String,
    #[serde(default)]
    pub fixable: bool,
    #[serde(default)]
    pub effective: Option<ControlEffective>,
    #[serde(default)]
    pub advice: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ControlEffective {
    #[serde(default)]
    pub value: serde_json::Value,
    #[serde(default)]
    pub source: Option<ControlSource>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ControlSource {
    pub path: String,
    pub line: usize,
}

impl ControlPart {
    /// One line: the value the kubelet runs with and where it is set.
    pub fn why(&self) -> String {
        let Some(e) = &self.effective else {
            return self.status.clone();
        };
        match &e.source {
            Some(s) => format!("{} from {}:{}", e.value, s.path, s.line),
            None => format!("{} (the default)", e.value),
        }
    }
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
    /// Each control the record judged, with where it stands now: `pass`, `fixed` (failing
    /// before an apply that changed and verified the node), `fail`, `refused` or `error`.
    pub fn controls(&self) -> Vec<(&ControlPart, &'static str)> {
        let Some(r) = &self.report else {
            return Vec::new();
        };
        r.controls
            .iter()
            .map(|c| {
                let now = match c.status.as_str() {
                    "pass" => "pass",
                    "fail" if c.fixable && self.result == Verdict::Changed => "fixed",
                    "fail" => "fail",
                    "refused" => "refused",
                    _ => "error",
                };
                (c, now)
            })
            .collect()
    }

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
        let failing: Vec<&str> = self
            .controls()
            .into_iter()
            .filter(|(_, now)| !matches!(*now, "pass" | "fixed"))
            .map(|(c, _)| c.id.as_str())
            .collect();
        if r.controls.len() > 1 && !failing.is_empty() {
            return format!(
                "{} of {} controls fail: {}",
                failing.len(),
                r.controls.len(),
                failing.join(", ")
            );
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

/// The latest record of each node, by name, and what could not be read.
#[derive(Debug, Default)]
pub struct Fleet {
    pub nodes: Vec<Entry>,
    /// Records that were read (before keeping only each node's latest).
    pub read: usize,
    /// Input that holds no readable record: a cut-off record, a file of something else. A node
    /// whose record is unreadable would otherwise vanish from the fleet and the gate pass.
    pub unreadable: Vec<Unreadable>,
    /// Nodes `--expect-nodes` names that have no record.
    pub missing: Vec<String>,
}

/// Input `summarize` could not read as a record: where, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unreadable {
    pub path: String,
    pub line: Option<usize>,
    pub reason: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.path, self.reason),
            None => write!(f, "{}: {}", self.path, self.reason),
        }
    }
}

impl Fleet {
    pub fn all_compliant(&self) -> bool {
        self.nodes.iter().all(Entry::ok)
    }

    /// The gate: 1 when any input was unreadable (or nothing was read), 2 when a node is not
    /// compliant or an expected node has no record, 0 otherwise.
    pub fn exit_code(&self) -> i32 {
        if !self.unreadable.is_empty() || self.nodes.is_empty() && self.missing.is_empty() {
            1
        } else if !self.all_compliant() || !self.missing.is_empty() {
            2
        } else {
            0
        }
    }

    /// Nodes named in `expected` (one a line; blanks and `#` comments skipped) with no record.
    pub fn expect(&mut self, expected: &str) {
        let have: std::collections::HashSet<&str> = self.nodes.iter().map(Entry::name).collect();
        let mut missing: Vec<String> = expected
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter(|l| !have.contains(l))
            .map(str::to_string)
            .collect();
        missing.sort();
        missing.dedup();
        self.missing = missing;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("{path}: {cause}")]
    Io { path: String, cause: std::io::Error },
}

/// Every record in `paths` (files, or directories walked in name order; none or `-` is
/// standard input), then each node's latest. Only a path that cannot be opened is an error;
/// anything that is not a record is listed in `unreadable`.
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
    let mut unreadable = Vec::new();
    for f in &files {
        let shown = f.display().to_string();
        let mut bytes = Vec::new();
        let got = if f == stdin {
            std::io::stdin().read_to_end(&mut bytes)
        } else {
            std::fs::File::open(f).and_then(|mut h| h.read_to_end(&mut bytes))
        };
        if let Err(cause) = got {
            unreadable.push(Unreadable {
                path: shown,
                line: None,
                reason: cause.to_string(),
            });
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        let before = all.len();
        records(&shown, &text, &mut all, &mut unreadable);
        if all.len() == before && !unreadable.iter().any(|u| u.path == shown) {
            unreadable.push(Unreadable {
                path: shown,
                line: None,
                reason: "no kubelet-remediate record in it (expected the JSON that plan, apply, rollback and verify print with --output json)".into(),
            });
        }
    }
    let read = all.len();
    // The latest record per node wins; a tie goes to the later one read. `rollback --list`
    // says nothing about compliance and is left out.
    let mut latest: BTreeMap<String, Entry> = BTreeMap::new();
    for e in all.into_iter().filter(|e| e.result != Verdict::Listed) {
        let key = e.name().to_string();
        match latest.get(&key) {
            Some(old) if time::parse(&old.finished_at) > time::parse(&e.finished_at) => {}
            _ => {
                latest.insert(key, e);
            }
        }
    }
    Ok(Fleet {
        nodes: latest.into_values().collect(),
        read,
        unreadable,
        missing: Vec::new(),
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

/// Whether the text at a `{` starts a JSON object (`{"` or `{}` after blanks), as a record
/// does: a brace in a log line (`map{...}`, `{{ }}`) does not.
fn starts_object(t: &str) -> bool {
    let rest = t[1..].trim_start();
    rest.starts_with('"') || rest.starts_with('}')
}

/// The records in one text: one JSON object, several (JSON lines or pretty-printed one after
/// another), or lines with a prefix before the `{` (`kubectl logs --prefix`). Lines that hold
/// no JSON object (a log line, a blank) are skipped; a JSON object that is cut off, malformed
/// or not a record is listed as unreadable with its line.
pub fn records(path: &str, text: &str, out: &mut Vec<Entry>, bad: &mut Vec<Unreadable>) {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut pos = 0;
    while pos < text.len() {
        let Some(start) = text[pos..].find('{').map(|i| pos + i) else {
            break;
        };
        let line = line_of(start);
        let next_line = text[start..]
            .find('\n')
            .map_or(text.len(), |i| start + i + 1);
        let mut stream =
            serde_json::Deserializer::from_str(&text[start..]).into_iter::<serde_json::Value>();
        match stream.next() {
            Some(Ok(v)) => {
                let end = start + stream.byte_offset();
                match serde_json::from_value::<Entry>(v) {
                    Ok(mut e) => {
                        e.from = format!("{path}:{line}");
                        out.push(e);
                    }
                    Err(e) => bad.push(Unreadable {
                        path: path.into(),
                        line: Some(line),
                        reason: format!("not a kubelet-remediate record: {e}"),
                    }),
                }
                pos = end;
            }
            Some(Err(e)) if starts_object(&text[start..]) => {
                bad.push(Unreadable {
                    path: path.into(),
                    line: Some(line),
                    reason: if e.is_eof() {
                        "a record cut off before its end (truncated)".into()
                    } else {
                        format!("a malformed record: {e}")
                    },
                });
                // A cut-off record runs to the end: nothing after it is a record of its own.
                pos = if e.is_eof() { text.len() } else { next_line };
            }
            // Not JSON from this brace: skip the rest of its line.
            _ => pos = next_line,
        }
    }
}

/// The fleet table: counts per result and per platform, then every node that is not compliant
/// and why.
pub fn text(f: &Fleet) -> String {
    // The same counts as the JSON summary, counted once.
    let s = summary(f);
    let mut o = format!(
        "{} nodes ({} records read): {} compliant, {} not",
        s.nodes, s.records_read, s.compliant, s.not_compliant
    );
    if !f.missing.is_empty() {
        o += &format!(", {} missing", f.missing.len());
    }
    if !f.unreadable.is_empty() {
        o += &format!(", {} unreadable inputs", f.unreadable.len());
    }
    o += "\n\n";
    o += &format!("{:<16} {:>6}\n", "result", "nodes");
    for (r, n) in &s.by_result {
        o += &format!("{r:<16} {n:>6}\n");
    }
    let width = s
        .by_platform
        .keys()
        .map(|k| k.len())
        .max()
        .unwrap_or(8)
        .max(8);
    o += &format!(
        "\n{:<width$} {:>6} {:>14}\n",
        "platform", "nodes", "not compliant"
    );
    for (p, c) in &s.by_platform {
        o += &format!("{p:<width$} {:>6} {:>14}\n", c.nodes, c.not_compliant);
    }
    if !s.by_control.is_empty() {
        o += &format!(
            "\n{:<34} {:<7} {:>6} {:>6} {:>6} {:>8} {:>6}\n",
            "control", "cis", "pass", "fixed", "fail", "refused", "error"
        );
        for k in &s.by_control {
            o += &format!(
                "{:<34} {:<7} {:>6} {:>6} {:>6} {:>8} {:>6}\n",
                k.id,
                k.cis.unwrap_or("-"),
                k.pass,
                k.fixed,
                k.fail,
                k.refused,
                k.error
            );
        }
    }
    if !s.not_compliant_nodes.is_empty() {
        o += "\nnot compliant:\n";
        for n in &s.not_compliant_nodes {
            o += &format!(
                "  {}  {} ({}, exit {}): {}\n",
                n.name,
                n.result.name(),
                n.command,
                n.exit_code,
                n.reason
            );
        }
    }
    if !f.missing.is_empty() {
        o += "\nmissing (expected, no record):\n";
        for n in &f.missing {
            o += &format!("  {n}\n");
        }
    }
    if !f.unreadable.is_empty() {
        o += "\nunreadable (not counted above):\n";
        for u in &f.unreadable {
            o += &format!("  {u}\n");
        }
    }
    o
}

/// `summarize --output json`: one object for dashboards and CI gates
/// (`docs/summary.schema.json`).
#[derive(Debug, serde::Serialize)]
pub struct Summary<'a> {
    pub schema_version: u32,
    pub tool: crate::outcome::Tool,
    pub nodes: usize,
    pub records_read: usize,
    pub compliant: usize,
    pub not_compliant: usize,
    pub exit_code: i32,
    pub by_result: BTreeMap<&'static str, usize>,
    pub by_platform: BTreeMap<&'a str, PlatformCount>,
    /// Per control (schema 2 records), in the table's order: how many nodes stand where.
    pub by_control: Vec<ControlCount<'a>>,
    /// Every node that is not compliant, by name.
    pub not_compliant_nodes: Vec<NodeLine<'a>>,
    pub missing: &'a [String],
    pub unreadable: &'a [Unreadable],
}

/// One control across the fleet.
#[derive(Debug, serde::Serialize)]
pub struct ControlCount<'a> {
    pub id: &'a str,
    /// Its CIS id as the records give it (the benchmark they were judged in).
    pub cis: Option<&'a str>,
    pub pass: usize,
    pub fixed: usize,
    pub fail: usize,
    pub refused: usize,
    pub error: usize,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct PlatformCount {
    pub nodes: usize,
    pub not_compliant: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct NodeLine<'a> {
    pub name: &'a str,
    pub result: Verdict,
    pub command: &'a str,
    pub exit_code: i32,
    pub platform: &'a str,
    pub reason: String,
    /// The record's `finished_at`.
    pub time: &'a str,
    /// Where the record was read (`FILE:LINE`).
    pub from: &'a str,
}

pub fn summary(f: &Fleet) -> Summary<'_> {
    let mut by_result = BTreeMap::new();
    let mut by_platform: BTreeMap<&str, PlatformCount> = BTreeMap::new();
    for e in &f.nodes {
        *by_result.entry(e.result.name()).or_default() += 1;
        let p = by_platform.entry(e.platform()).or_default();
        p.nodes += 1;
        p.not_compliant += usize::from(!e.ok());
    }
    let mut by_control: Vec<ControlCount> = Vec::new();
    for e in &f.nodes {
        for (c, now) in e.controls() {
            let i = match by_control.iter().position(|k| k.id == c.id) {
                Some(i) => i,
                None => {
                    by_control.push(ControlCount {
                        id: &c.id,
                        cis: c.cis.as_deref(),
                        pass: 0,
                        fixed: 0,
                        fail: 0,
                        refused: 0,
                        error: 0,
                    });
                    by_control.len() - 1
                }
            };
            let k = &mut by_control[i];
            match now {
                "pass" => k.pass += 1,
                "fixed" => k.fixed += 1,
                "fail" => k.fail += 1,
                "refused" => k.refused += 1,
                _ => k.error += 1,
            }
        }
    }
    // The table's order; ids this version does not know last.
    let order = |id: &str| {
        crate::controls::CONTROLS
            .iter()
            .position(|c| c.id == id)
            .unwrap_or(usize::MAX)
    };
    by_control.sort_by_key(|k| order(k.id));
    let bad: Vec<NodeLine> = f
        .nodes
        .iter()
        .filter(|e| !e.ok())
        .map(|e| NodeLine {
            name: e.name(),
            result: e.result,
            command: &e.command,
            exit_code: e.exit_code,
            platform: e.platform(),
            reason: e.why(),
            time: &e.finished_at,
            from: &e.from,
        })
        .collect();
    Summary {
        schema_version: 1,
        tool: crate::outcome::TOOL,
        nodes: f.nodes.len(),
        records_read: f.read,
        compliant: f.nodes.len() - bad.len(),
        not_compliant: bad.len(),
        exit_code: f.exit_code(),
        by_result,
        by_platform,
        by_control,
        not_compliant_nodes: bad,
        missing: &f.missing,
        unreadable: &f.unreadable,
    }
}

pub fn json(f: &Fleet) -> String {
    serde_json::to_string_pretty(&summary(f)).expect("summary serializes") + "\n"
}

/// One test case per node (as kube-bench's `--junit` has one per check): a failure for every
/// node that is not compliant, with why.
pub fn junit(f: &Fleet) -> String {
    let class = "CIS Kubernetes 4.2.7 / 4.2.6, EKS/AKS/GKE 3.2.6: makeIPTablesUtilChains is true";
    let mut cases = String::new();
    let mut failures = 0;
    let mut cases_n = 0;
    for e in &f.nodes {
        let name = junit::escape(e.name());
        let controls = e.controls();
        if !controls.is_empty() {
            // Schema 2: one case per node and control.
            for (c, now) in controls {
                let class = junit::escape(&format!(
                    "{} {}: {}",
                    c.cis.as_deref().unwrap_or("-"),
                    c.id,
                    c.title
                ));
                cases_n += 1;
                if matches!(now, "pass" | "fixed") {
                    cases += &format!("    <testcase classname=\"{class}\" name=\"{name}\"/>\n");
                    continue;
                }
                failures += 1;
                let why = c.why();
                cases += &format!(
                    "    <testcase classname=\"{class}\" name=\"{name}\">\n      <failure type=\"{now}\" message=\"{}\">{} on {} ({}): {now}: {}</failure>\n    </testcase>\n",
                    junit::escape(&why),
                    junit::escape(&e.command),
                    name,
                    junit::escape(e.platform()),
                    junit::escape(&why),
                );
            }
            continue;
        }
        cases_n += 1;
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
    for n in &f.missing {
        failures += 1;
        let name = junit::escape(n);
        cases += &format!(
            "    <testcase classname=\"{class}\" name=\"{name}\">\n      <failure type=\"missing\" message=\"no record from this node\">expected by --expect-nodes, no record read</failure>\n    </testcase>\n"
        );
    }
    for u in &f.unreadable {
        let text = junit::escape(&u.to_string());
        cases += &format!(
            "    <testcase classname=\"{class}\" name=\"{}\">\n      <error type=\"unreadable\" message=\"{text}\">{text}</error>\n    </testcase>\n",
            junit::escape(&u.path)
        );
    }
    junit::document(
        "kubelet-remediate fleet",
        cases_n + f.missing.len() + f.unreadable.len(),
        failures,
        f.unreadable.len(),
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
        let (mut all, mut bad) = (Vec::new(), Vec::new());
        records("t", &text, &mut all, &mut bad);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(all.len(), 3);
        // After the pretty record's lines, the JSON line and the log line.
        assert_eq!(all[2].from, format!("t:{}", pretty.lines().count() + 3));
        assert_eq!(all[2].name(), "b");
    }

    #[test]
    fn a_json_object_that_is_not_a_record_or_is_cut_off_is_unreadable_with_its_line() {
        let (mut all, mut bad) = (Vec::new(), Vec::new());
        let good = rec("a", "compliant", "2026-01-01T00:00:00Z");
        let text = format!("\n\n{{\"kind\": \"Pod\"}}\n{good}\n{}\n", &good[..40]);
        records("t", &text, &mut all, &mut bad);
        assert_eq!(all.len(), 1);
        let bad: Vec<String> = bad.iter().map(|u| u.to_string()).collect();
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0].starts_with("t:3: not a kubelet-remediate record"),
            "{bad:?}"
        );
        assert!(bad[1].starts_with("t:5: a record cut off"), "{bad:?}");
    }
}
