//! `scan`'s renderings: text for a person, JSON, SARIF 2.1.0 for code scanning, JUnit for CI.

use super::{Finding, Scan};
use crate::junit::escape;
use crate::report::{IDS, TITLE};
use crate::text::SourceFile;
use serde_json::{Value, json};

const RULE: &str = "make-iptables-util-chains";

/// The JSON document's shape (`docs/scan.schema.json`); bumped when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

pub fn json(scan: &Scan) -> String {
    let v = json!({
        "schema_version": SCHEMA_VERSION,
        "tool": crate::outcome::TOOL,
        "exit_code": if scan.blocks() { 2 } else { 0 },
        "findings": scan.findings().collect::<Vec<_>>(),
        "skipped": scan.skipped,
        "files_scanned": scan.files.len(),
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

pub fn text(scan: &Scan) -> String {
    let mut out = String::new();
    for f in scan.files.iter().filter(|f| !f.findings.is_empty()) {
        out += &format!("{}\n", f.path);
        for x in &f.findings {
            out += &format!(
                "  {}:{}:{}: [{}] {}\n    | {}\n",
                x.path, x.line, x.column, x.kind, x.message, x.evidence
            );
            if x.edit.is_none() {
                out += "    (no exact edit: fix by hand)\n";
            }
        }
        if let Some(after) = f.fixed() {
            out += &crate::plan::unified(super::diff_path(&f.path), &f.text, &after);
        }
        out += "\n";
    }
    for s in &scan.skipped {
        out += &format!("skipped {}: {}\n", s.path, s.reason);
        if let Some(x) = &s.suspect {
            out += &format!(
                "  {}:{}: looks like it sets the value false, and was not judged: check it by hand\n    | {}\n",
                s.path, x.line, x.text
            );
        }
    }
    let n = scan.findings().count();
    out += &format!(
        "{n} finding{} in {} file{} scanned ({} skipped)\n",
        if n == 1 { "" } else { "s" },
        scan.files.len(),
        if scan.files.len() == 1 { "" } else { "s" },
        scan.skipped.len()
    );
    out
}

/// A path as a SARIF artifact URI: relative paths stay relative (to the scanned checkout, as
/// GitHub code scanning expects), with `/` separators and percent-encoded specials.
fn uri(path: &str) -> String {
    let p = path.strip_prefix("./").unwrap_or(path);
    let mut s = String::new();
    for b in p.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                s.push(b as char)
            }
            _ => s += &format!("%{b:02X}"),
        }
    }
    if path.starts_with('/') {
        format!("file://{s}")
    } else {
        s
    }
}

fn region(f: &SourceFile, start: usize, end: usize) -> Value {
    let (sl, sc) = f.line_col(start);
    let (el, ec) = f.line_col(end);
    json!({"startLine": sl, "startColumn": sc, "endLine": el, "endColumn": ec})
}

pub fn sarif(scan: &Scan) -> String {
    let mut results = Vec::new();
    for f in scan.files.iter().filter(|f| !f.findings.is_empty()) {
        // Columns in characters, as in the findings (runs[0].columnKind).
        let source = SourceFile::new(f.path.clone(), f.path.clone(), f.text.as_str());
        for x in &f.findings {
            results.push(result(&source, x));
        }
    }
    let v = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "kubelet-remediate",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://www.cisecurity.org/benchmark/kubernetes",
                "rules": [{
                    "id": RULE,
                    "name": "KubeletMakeIptablesUtilChains",
                    "shortDescription": {"text": TITLE},
                    "fullDescription": {"text": "The kubelet must run with makeIPTablesUtilChains true (the default): a manifest that sets it false, or that the kubelet cannot decode, regenerates non-compliant nodes."},
                    "defaultConfiguration": {"level": "error"},
                    "properties": {"cis": IDS, "tags": ["security", "kubernetes", "CIS"]},
                }],
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

fn result(f: &SourceFile, x: &Finding) -> Value {
    let mut r = json!({
        "ruleId": RULE,
        "ruleIndex": 0,
        "level": "error",
        "message": {"text": x.message},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": uri(&x.path)},
            "region": {"startLine": x.line, "startColumn": x.column},
        }}],
    });
    if let Some((s, e, rep)) = &x.edit {
        r["fixes"] = json!([{
            "description": {"text": format!("set it to true: replace \"{}\" with \"{rep}\"", &f.text[*s..*e])},
            "artifactChanges": [{
                "artifactLocation": {"uri": uri(&x.path)},
                "replacements": [{
                    "deletedRegion": region(f, *s, *e),
                    "insertedContent": {"text": rep},
                }],
            }],
        }]);
    }
    r
}

/// One test case per scanned document, a failure per finding; skipped files are skipped cases.
pub fn junit(scan: &Scan) -> String {
    let mut cases = String::new();
    let (mut tests, mut failures) = (0, 0);
    for f in &scan.files {
        for d in 0..f.documents {
            tests += 1;
            let name = format!("{} (document {})", f.path, d + 1);
            let fails: Vec<_> = f.findings.iter().filter(|x| x.document == d).collect();
            if fails.is_empty() {
                cases += &format!(
                    "    <testcase classname=\"{RULE}\" name=\"{}\"/>\n",
                    escape(&name)
                );
                continue;
            }
            failures += fails.len();
            cases += &format!(
                "    <testcase classname=\"{RULE}\" name=\"{}\">\n",
                escape(&name)
            );
            for x in fails {
                cases += &format!(
                    "      <failure type=\"{}\" message=\"{}\">{}:{}:{}: {}</failure>\n",
                    x.kind,
                    escape(&x.message),
                    escape(&x.path),
                    x.line,
                    x.column,
                    escape(&x.message)
                );
            }
            cases += "    </testcase>\n";
        }
    }
    for s in &scan.skipped {
        tests += 1;
        let body = match &s.suspect {
            // Not judged, but not to be passed over either.
            Some(x) => {
                failures += 1;
                format!(
                    "<failure type=\"unjudged\" message=\"{}\">{}:{}: {}</failure>",
                    escape(&s.reason),
                    escape(&s.path),
                    x.line,
                    escape(&x.text)
                )
            }
            None => format!("<skipped message=\"{}\"/>", escape(&s.reason)),
        };
        cases += &format!(
            "    <testcase classname=\"{RULE}\" name=\"{}\">\n      {body}\n    </testcase>\n",
            escape(&s.path)
        );
    }
    let skipped = scan.skipped.iter().filter(|s| s.suspect.is_none()).count();
    crate::junit::document("kubelet-remediate scan", tests, failures, skipped, &cases)
}
