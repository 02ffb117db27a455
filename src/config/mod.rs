//! KubeletConfiguration files (`--config` and `--config-dir` drop-ins), JSON or YAML.
//!
//! A document whose first non-blank byte is `{` is JSON (the apimachinery serializer's
//! RecognizesData); anything else is YAML decoded as YAML 1.1 (sigs.k8s.io/yaml over yaml.v2).
//! Every top-level key that Go's encoding/json would match to the field (case-insensitively) is
//! kept with its byte span, so a fix replaces exactly its value: `--config` is decoded
//! case-sensitively (only the exact key counts), but `--config-dir` drop-ins are merged into the
//! marshalled internal configuration and decoded by encoding/json, where a mis-cased key takes
//! effect (verdict.rs). Duplicate keys anywhere are recorded: strict decoding refuses them.

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
    /// A collection reduced to a digest of its items in file order ([`Folder`]). A `--config`
    /// with no `--config-dir` is only ever compared, never merged, so its tree is not built:
    /// a 10 MB config costs a hasher per open collection instead of a tree of tens of MB.
    Folded {
        map: bool,
        digest: [u8; 32],
    },
}

/// What a parser keeps of nested collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The whole tree: drop-ins are merged into it.
    Tree,
    /// Digests only ([`Value::Folded`]); duplicate keys are not looked for (they matter only in
    /// drop-ins, which are always trees).
    Digest,
}

/// Digests a collection as its items stream by. Entries go in file order, duplicates included:
/// equal digests still mean equal decoded values (decoding is a function of the entries), which
/// is all the proof needs; both sides of a proof are read with the same [`Keep`].
pub struct Folder {
    h: sha2::Sha256,
    n: u64,
}

impl Default for Folder {
    fn default() -> Self {
        use sha2::Digest;
        Folder {
            h: sha2::Sha256::new(),
            n: 0,
        }
    }
}

impl Folder {
    pub fn key(&mut self, k: &str) {
        tagged(&mut self.h, 6, k);
    }

    pub fn item(&mut self, v: &Value) {
        self.n += 1;
        feed(&mut self.h, v, false);
    }

    pub fn finish(mut self, map: bool) -> Value {
        use sha2::Digest;
        self.h.update([9]);
        self.h.update(self.n.to_le_bytes());
        Value::Folded {
            map,
            digest: self.h.finalize().into(),
        }
    }
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
    /// The key as written (`makeIPTablesUtilChains`, or a spelling encoding/json folds to it).
    pub key: String,
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
    /// Every top-level key encoding/json matches to the field, exact or not, in file order.
    pub occurrences: Vec<KeyOcc>,
    /// The first key defined twice in one mapping (key, line, column): strict decoding fails.
    pub duplicate: Option<(String, usize, usize)>,
    /// Lines of later YAML documents that set the key: only the first document is decoded.
    pub later_documents: Vec<usize>,
}

/// What a parser hands back: the decoded first document, its top-level entries, and what
/// strict decoding would object to.
pub struct Parsed {
    pub value: Value,
    pub entries: Vec<Entry>,
    pub duplicate: Option<(String, usize, usize)>,
    pub later_documents: Vec<usize>,
}

/// The field's Go name: the internal configuration has no json tags, so `json.Marshal` writes
/// this key (pkg/kubelet/apis/config/types.go).
pub const GO_FIELD: &str = "MakeIPTablesUtilChains";

/// Whether encoding/json matches JSON key `k` to the field: case-insensitive, with the two
/// non-ASCII folds Go applies to these letters (U+212A KELVIN SIGN = k, U+017F LONG S = s).
pub fn folds_to_field(k: &str) -> bool {
    let fold = |c: char| match c {
        '\u{212A}' => 'K',
        '\u{17F}' => 'S',
        c => c.to_ascii_uppercase(),
    };
    k.chars().map(fold).eq(KEY.chars().map(fold))
}

impl ConfigDoc {
    /// Occurrences with the exact key: all `--config` decoding sees (it is case-sensitive).
    pub fn exact(&self) -> impl Iterator<Item = (usize, &KeyOcc)> {
        self.occurrences
            .iter()
            .enumerate()
            .filter(|(_, o)| o.key == KEY)
    }

    /// Mis-cased spellings (ignored in `--config`, effective in a drop-in), with their line.
    pub fn near_misses(&self) -> impl Iterator<Item = (&str, usize)> {
        self.occurrences
            .iter()
            .filter(|o| o.key != KEY)
            .map(|o| (o.key.as_str(), o.line))
    }
}

pub fn parse(id: FileId, f: &SourceFile, keep: Keep) -> Result<(ConfigDoc, Value)> {
    let first = f
        .text
        .trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let (format, parsed) = if first.starts_with('{') {
        (Format::Json, json::parse(f, keep)?)
    } else {
        (Format::Yaml, yaml::parse(f, keep)?)
    };
    if !matches!(
        parsed.value,
        Value::Map(_) | Value::Folded { map: true, .. }
    ) {
        return Err(Error::parse(
            &f.path,
            1,
            1,
            "a KubeletConfiguration must be a mapping at the top level",
        ));
    }
    let occurrences = parsed
        .entries
        .into_iter()
        .filter(|e| folds_to_field(&e.key))
        .map(|e| e.occ)
        .collect();
    let doc = ConfigDoc {
        file: id,
        format,
        occurrences,
        duplicate: parsed.duplicate,
        later_documents: parsed.later_documents,
    };
    Ok((doc, parsed.value))
}

/// A top-level entry with its positions, as both parsers report them.
pub struct Entry {
    pub key: String,
    pub occ: KeyOcc,
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
    let mut t = target.clone();
    merge_into(&mut t, patch.clone());
    t
}

/// [`merge_patch`] in place, consuming the patch: applying N drop-ins costs their size, not N
/// copies of the merged configuration.
pub fn merge_into(target: &mut Value, patch: Value) {
    let Value::Map(p) = patch else {
        *target = patch;
        return;
    };
    if !matches!(target, Value::Map(_)) {
        *target = Value::Map(BTreeMap::new());
    }
    let Value::Map(t) = target else {
        unreachable!("made a map above")
    };
    for (k, v) in p {
        if v == Value::Null {
            t.remove(&k);
        } else {
            merge_into(t.entry(k).or_insert(Value::Null), v);
        }
    }
}

fn tagged(h: &mut sha2::Sha256, tag: u8, t: &str) {
    use sha2::Digest;
    h.update([tag]);
    h.update((t.len() as u64).to_le_bytes());
    h.update(t.as_bytes());
}

fn feed(h: &mut sha2::Sha256, v: &Value, top: bool) {
    use sha2::Digest;
    match v {
        Value::Null => h.update([0]),
        Value::Bool(b) => h.update([1, u8::from(*b)]),
        Value::Num(n) => tagged(h, 2, n),
        Value::Str(t) => tagged(h, 3, t),
        Value::Seq(items) => {
            h.update([4]);
            h.update((items.len() as u64).to_le_bytes());
            for i in items {
                feed(h, i, false);
            }
        }
        Value::Map(m) => {
            let keep = |k: &String| !(top && folds_to_field(k));
            h.update([5]);
            h.update((m.keys().filter(|k| keep(k)).count() as u64).to_le_bytes());
            for (k, v) in m.iter().filter(|(k, _)| keep(k)) {
                tagged(h, 6, k);
                feed(h, v, false);
            }
        }
        Value::Folded { map, digest } => {
            h.update([7, u8::from(*map)]);
            h.update(digest);
        }
    }
}

/// A digest of a configuration apart from `makeIPTablesUtilChains` in any spelling at the top
/// level: equal digests, equal configurations for the proof, without keeping either tree. A
/// folded document's digest already leaves the key out (the parser skips it).
pub fn digest_without_key(v: &Value) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    if let Value::Folded { digest, .. } = v {
        return *digest;
    }
    let mut h = Sha256::new();
    feed(&mut h, v, true);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> ConfigDoc {
        parse(0, &SourceFile::new("/c".into(), "/c".into(), s), Keep::Tree)
            .unwrap()
            .0
    }

    fn value(s: &str) -> Value {
        parse(0, &SourceFile::new("/c".into(), "/c".into(), s), Keep::Tree)
            .unwrap()
            .1
    }

    #[test]
    fn merge_patch_rfc7386() {
        let a = value("a: 1\nb: {c: 1, d: 2}\nmakeIPTablesUtilChains: false\n");
        let p = value("b: {c: null, e: 3}\nmakeIPTablesUtilChains: null\n");
        let m = merge_patch(&a, &p);
        assert_eq!(m, value("a: 1\nb: {d: 2, e: 3}\n"));
        assert_eq!(
            digest_without_key(&a),
            digest_without_key(&value("b: {d: 2, c: 1}\na: 1\nMakeIPTablesUtilChains: x\n"))
        );
        assert_ne!(
            digest_without_key(&a),
            digest_without_key(&value("b: {d: 2, c: 1}\na: 2\n"))
        );
    }

    #[test]
    fn keys_fold_as_encoding_json_does() {
        let d = doc("{\"MakeIPTablesUtilChains\": false}");
        assert_eq!(d.exact().count(), 0);
        assert_eq!(d.near_misses().count(), 1);
        assert!(folds_to_field("makeiptablesutilchains"));
        assert!(folds_to_field("ma\u{212A}eIPTable\u{17F}UtilChains"));
        assert!(!folds_to_field("makeIPTablesUtilChain"));
    }

    #[test]
    fn duplicates_anywhere_are_recorded() {
        let d = doc("kind: K\nauthentication:\n  x: 1\n  x: 2\n");
        assert_eq!(d.duplicate, Some(("x".into(), 4, 3)));
        let d = doc("{\"kind\": \"K\", \"a\": {\"b\": 1, \"b\": 2}}");
        assert_eq!(d.duplicate.as_ref().map(|d| d.0.as_str()), Some("b"));
    }
}
