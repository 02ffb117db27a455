//! KubeletConfiguration files (`--config` and `--config-dir` drop-ins), JSON or YAML.
//!
//! A document whose first non-blank byte is `{` is JSON (the apimachinery serializer's
//! RecognizesData); anything else is YAML decoded as YAML 1.1 (sigs.k8s.io/yaml over yaml.v2).
//! Keys are case-sensitive. Each top-level `makeIPTablesUtilChains` is kept with its byte span
//! so a fix replaces exactly its value. Drop-ins merge as RFC 7386 JSON merge patches.

pub mod json;
pub mod yaml;

use crate::error::{Error, Result};
use crate::flags::KEY;
use crate::text::{FileId, SourceFile};
use std::collections::BTreeMap;
use std::ops::Range;

/// A decoded value, enough to compare two configurations for equality.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Null,
    Bool(bool),
    /// A number, as written (canonical enough for equality of unchanged text).
    Num(String),
    Str(String),
    Seq(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Yaml,
}

/// What one `makeIPTablesUtilChains` key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue {
    Bool(bool),
    /// `null` (or an empty YAML value): the field stays unset, so the default (true) applies.
    Null,
    /// A value the kubelet refuses to decode into a bool, and why.
    Invalid(String),
}

/// One occurrence of the key at the top level of a document.
#[derive(Debug, Clone)]
pub struct KeyOcc {
    pub value: KeyValue,
    /// 1-based line and column of the key.
    pub line: usize,
    pub column: usize,
    /// Bytes of the value as written (quotes included).
    pub value_span: Range<usize>,
    /// Bytes to delete to remove the whole entry, if it can be removed cleanly.
    pub removal: Option<Range<usize>>,
}

/// What a config file says about the setting. The decoded value itself is returned beside
/// it by [`parse`], so it can be moved into the merge instead of copied (a 10 MB config makes
/// a tree of tens of MB).
#[derive(Debug, Clone)]
pub struct ConfigDoc {
    pub file: FileId,
    pub format: Format,
    pub occurrences: Vec<KeyOcc>,
    /// Keys that differ from the real one only in case (the kubelet ignores them).
    pub near_misses: Vec<(String, usize)>,
}

pub fn parse(id: FileId, f: &SourceFile) -> Result<(ConfigDoc, Value)> {
    let first = f
        .text
        .trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let (format, parsed) = if first.starts_with('{') {
        (Format::Json, json::parse(f)?)
    } else {
        (Format::Yaml, yaml::parse(f)?)
    };
    let (value, entries) = parsed;
    if !matches!(value, Value::Map(_)) {
        return Err(Error::parse(
            &f.path,
            1,
            1,
            "a KubeletConfiguration must be a mapping at the top level",
        ));
    }
    let mut occurrences = Vec::new();
    let mut near_misses = Vec::new();
    for e in entries {
        if e.key == KEY {
            occurrences.push(e.occ);
        } else if e.key.eq_ignore_ascii_case(KEY) {
            near_misses.push((e.key, e.occ.line));
        }
    }
    let doc = ConfigDoc {
        file: id,
        format,
        occurrences,
        near_misses,
    };
    Ok((doc, value))
}

/// A top-level entry with its positions, as both parsers report them.
pub struct Entry {
    pub key: String,
    pub occ: KeyOcc,
}

impl ConfigDoc {
    /// What this document says, if anything: the last occurrence (the decoders keep the last
    /// duplicate; strict decoding would refuse, so duplicates are reported as ambiguous).
    pub fn setting(&self) -> Option<&KeyOcc> {
        self.occurrences.last()
    }
}

/// `apiVersion` and `kind`, which every drop-in must carry.
pub fn require_type_meta(value: &Value, f: &SourceFile) -> Result<()> {
    let Value::Map(m) = value else {
        unreachable!("parse only returns mappings")
    };
    for k in ["apiVersion", "kind"] {
        if !matches!(m.get(k), Some(Value::Str(_))) {
            return Err(Error::parse(
                &f.path,
                1,
                1,
                format!(
                    "missing {k}: the kubelet refuses a configuration file without apiVersion and kind"
                ),
            ));
        }
    }
    Ok(())
}

/// RFC 7386 JSON merge patch, as the kubelet applies each `--config-dir` drop-in.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Map(p) = patch else {
        return patch.clone();
    };
    let mut t = match target {
        Value::Map(m) => m.clone(),
        _ => BTreeMap::new(),
    };
    for (k, v) in p {
        if *v == Value::Null {
            t.remove(k);
        } else {
            let cur = t.get(k).cloned().unwrap_or(Value::Null);
            t.insert(k.clone(), merge_patch(&cur, v));
        }
    }
    Value::Map(t)
}

/// Whether two configurations are equal apart from `makeIPTablesUtilChains`, without copying
/// either (the planner's proof compares whole merged configurations).
pub fn eq_without_key(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Map(x), Value::Map(y)) => {
            let rest = |m: &BTreeMap<String, Value>| m.len() - usize::from(m.contains_key(KEY));
            rest(x) == rest(y)
                && x.iter()
                    .filter(|(k, _)| *k != KEY)
                    .all(|(k, v)| y.get(k) == Some(v))
        }
        _ => a == b,
    }
}

/// The value without `makeIPTablesUtilChains`.
pub fn without_key(v: &Value) -> Value {
    match v {
        Value::Map(m) => {
            let mut m = m.clone();
            m.remove(KEY);
            Value::Map(m)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> ConfigDoc {
        parse(0, &SourceFile::new("/c".into(), "/c".into(), s.into()))
            .unwrap()
            .0
    }

    fn value(s: &str) -> Value {
        parse(0, &SourceFile::new("/c".into(), "/c".into(), s.into()))
            .unwrap()
            .1
    }

    #[test]
    fn merge_patch_rfc7386() {
        let a = value("a: 1\nb: {c: 1, d: 2}\nmakeIPTablesUtilChains: false\n");
        let p = value("b: {c: null, e: 3}\nmakeIPTablesUtilChains: null\n");
        let m = merge_patch(&a, &p);
        assert_eq!(m, value("a: 1\nb: {d: 2, e: 3}\n"));
        assert!(eq_without_key(&a, &value("b: {d: 2, c: 1}\na: 1\n")));
        assert!(!eq_without_key(&a, &value("b: {d: 2, c: 1}\na: 2\n")));
    }

    #[test]
    fn case_sensitive_keys() {
        let d = doc("{\"MakeIPTablesUtilChains\": false}");
        assert!(d.setting().is_none());
        assert_eq!(d.near_misses.len(), 1);
    }
}
