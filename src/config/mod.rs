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
use crate::settings::MAKE_IPTABLES_UTIL_CHAINS;
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
        feed(&mut self.h, v, At::Off);
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
    /// Every place the file sets a table setting, in file order ([`Entry`]).
    pub entries: Vec<Entry>,
    /// The mappings on table paths, where missing keys are added ([`Parent`]).
    pub parents: Vec<Parent>,
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
    pub parents: Vec<Parent>,
    pub duplicate: Option<(String, usize, usize)>,
    pub later_documents: Vec<usize>,
}

/// A mapping on a table path (the document's top level included): where a missing key of a
/// setting is added, in the mapping's own style.
#[derive(Debug, Clone)]
pub struct Parent {
    /// The table path prefix it stands for (`&[]`: the top level).
    pub path: &'static [&'static str],
    /// Its keys as written, outermost first.
    pub written: Vec<String>,
    /// `{ ... }`: JSON, or a YAML flow mapping.
    pub flow: bool,
    /// Where a new entry goes: before the closing brace, or (block) the start of the line
    /// after its last entry; `None` when that place cannot be found exactly.
    pub end: Option<usize>,
    /// The column of its entries' keys, when it has entries.
    pub indent: Option<usize>,
    /// Whether it holds entries already.
    pub entries: bool,
}

/// The field's Go name: the internal configuration has no json tags, so `json.Marshal` writes
/// this key (pkg/kubelet/apis/config/types.go).
pub const GO_FIELD: &str = MAKE_IPTABLES_UTIL_CHAINS.internal[0];

/// Whether encoding/json matches top-level key `k` to makeIPTablesUtilChains.
pub fn folds_to_field(k: &str) -> bool {
    folds_eq(k, KEY)
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
        .iter()
        .filter(|e| Some(e.path) == MAKE_IPTABLES_UTIL_CHAINS.key && e.written.len() == 1)
        .map(|e| key_occ(e, format, f))
        .collect::<Result<_>>()?;
    let doc = ConfigDoc {
        file: id,
        format,
        occurrences,
        entries: parsed.entries,
        parents: parsed.parents,
        duplicate: parsed.duplicate,
        later_documents: parsed.later_documents,
    };
    Ok((doc, parsed.value))
}

/// A makeIPTablesUtilChains entry as the one-control verdict reads it.
fn key_occ(e: &Entry, format: Format, f: &SourceFile) -> Result<KeyOcc> {
    let key = &e.written[0];
    let value = match (&e.value, format) {
        (Value::Bool(b), _) => KeyValue::Bool(*b),
        (Value::Null, _) => KeyValue::Null,
        (other, Format::Json) => KeyValue::Invalid(format!(
            "json: cannot unmarshal {} into a bool: the kubelet refuses this file",
            json::kind(other)
        )),
        (Value::Str(s), Format::Yaml) => KeyValue::Invalid(format!(
            "the string \"{s}\" cannot be decoded into a bool: the kubelet refuses this file (write it unquoted)"
        )),
        (other, Format::Yaml) => KeyValue::Invalid(format!(
            "a {} cannot be decoded into a bool: the kubelet refuses this file",
            json::kind(other)
        )),
    };
    // Only a value measured exactly may be edited; a false one that is not is refused here,
    // before anything is planned.
    if !e.exact && value == KeyValue::Bool(false) && f.text[e.key_at..].starts_with(key.as_str()) {
        return Err(Error::parse(
            &f.path,
            e.line,
            e.column,
            "this makeIPTablesUtilChains value is written in a form the planner cannot edit safely (multi-line or unusual scalar)",
        ));
    }
    Ok(KeyOcc {
        key: key.clone(),
        value,
        line: e.line,
        column: e.column,
        value_span: e.value_span.clone(),
        removal: e.removal.clone(),
    })
}

/// Where a mapping sits relative to the settings table's config paths ([`settings::SETTINGS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// Under no table path: nothing below is recorded.
    Off,
    /// The keys taken so far fold to this prefix of one or more table paths (`&[]`: the
    /// document's top level).
    Path(&'static [&'static str]),
    /// Inside a map-valued setting (`featureGates`): each key is an entry of its own, matched
    /// exactly (a Go map's keys do not fold).
    MapOf(&'static [&'static str]),
}

/// What one key of a mapping at [`At`] is to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Off,
    /// A prefix of a table path (`authentication`): its mapping is walked with this prefix.
    Inner(&'static [&'static str]),
    /// A whole table path; `map` when the setting is a map (its keys are entries).
    Leaf(&'static [&'static str], bool),
    /// A key of a map-valued setting.
    MapKey(&'static [&'static str]),
}

/// Whether encoding/json matches JSON key `a` to field name `b`: case-insensitive, with the
/// two non-ASCII folds Go applies to these letters (U+212A KELVIN SIGN = k, U+017F LONG S = s).
pub fn folds_eq(a: &str, b: &str) -> bool {
    let fold = |c: char| match c {
        '\u{212A}' => 'K',
        '\u{17F}' => 'S',
        c => c.to_ascii_uppercase(),
    };
    a.chars().map(fold).eq(b.chars().map(fold))
}

/// The step key `key` takes from `at`: one pass over the table's rows (18), so a mapping costs
/// its keys times the rows, linear in the file.
pub fn step(at: At, key: &str) -> Step {
    let p = match at {
        At::Off => return Step::Off,
        At::MapOf(p) => return Step::MapKey(p),
        At::Path(p) => p,
    };
    for (_, s) in crate::settings::SETTINGS {
        let Some(k) = s.key else { continue };
        if k.len() > p.len() && k[..p.len()] == *p && folds_eq(key, k[p.len()]) {
            return if k.len() == p.len() + 1 {
                Step::Leaf(k, s.ty == crate::settings::FlagType::MapStringBool)
            } else {
                Step::Inner(&k[..=p.len()])
            };
        }
    }
    Step::Off
}

/// One place a file sets a table setting: a key on a table path (or a feature gate inside
/// `featureGates`), or a prefix of one whose value is not a mapping (`authentication: null`),
/// with its positions. Both parsers report these, in file order.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The table path the keys fold to; a prefix of one for a non-mapping at an inner level.
    pub path: &'static [&'static str],
    /// The keys as written, outermost first (a feature gate's name last).
    pub written: Vec<String>,
    pub value: Value,
    /// 1-based line and column of the (last) key, and its byte offset.
    pub line: usize,
    pub column: usize,
    pub key_at: usize,
    /// Bytes of the value as written (quotes included); `exact` when they are exactly the
    /// value's text, so an edit may replace them.
    pub value_span: Range<usize>,
    pub exact: bool,
    /// Bytes to delete to remove the whole entry, if it can be removed cleanly.
    pub removal: Option<Range<usize>>,
    /// A later key of the same spelling in a mapping on its path hides it: YAML collapses
    /// duplicate keys (yaml.v2 keeps the last), so only the lenient decode's survivor counts.
    pub shadowed: bool,
}

impl Entry {
    /// A feature gate's name (entries inside a map-valued setting).
    pub fn gate(&self) -> Option<&str> {
        (self.written.len() > self.path.len())
            .then(|| self.written.last().map(String::as_str))
            .flatten()
    }

    /// Whether every key is the table's own spelling: all `--config` decoding sees (it is
    /// case-sensitive, sigs.k8s.io/json).
    pub fn exact_keys(&self) -> bool {
        self.path.iter().zip(&self.written).all(|(p, w)| p == w)
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

/// Hash `v`, a value at `at`; table settings are left out (they are compared as effective
/// values), and a mapping on a table path that holds nothing else counts as absent. Returns
/// whether anything was hashed.
fn feed(h: &mut sha2::Sha256, v: &Value, at: At) -> bool {
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
                feed(h, i, At::Off);
            }
        }
        Value::Map(m) => {
            let mut kept = 0u64;
            let mut inner = sha2::Sha256::new();
            for (k, v) in m {
                let step = step(at, k);
                let mut item = sha2::Sha256::new();
                let any = match (step, v) {
                    (Step::Off, _) => {
                        feed(&mut item, v, At::Off);
                        true
                    }
                    (Step::Inner(p), Value::Map(_)) => feed(&mut item, v, At::Path(p)),
                    _ => false,
                };
                if any {
                    kept += 1;
                    tagged(&mut inner, 6, k);
                    inner.update(item.finalize());
                }
            }
            if at != At::Off && kept == 0 {
                return false;
            }
            h.update([5]);
            h.update(kept.to_le_bytes());
            h.update(inner.finalize());
        }
        Value::Folded { map, digest } => {
            h.update([7, u8::from(*map)]);
            h.update(digest);
        }
    }
    true
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
    feed(&mut h, v, At::Path(&[]));
    h.finalize().into()
}

/// Where and what to insert so that `path` (a table path, spelled as the table spells it) is
/// set to `value` (a literal, the same in YAML and JSON: `false`, `0`, `true`) in this file, in
/// the file's own style: under the deepest mapping of the path that exists (its last
/// occurrence: the one the kubelet keeps), the missing parents created, block YAML at the
/// file's indentation, flow mappings and JSON inline (JSON members on their own lines when the
/// object's are), the file's line ends. `None` when the place cannot be found exactly.
pub fn add_key(doc: &ConfigDoc, text: &str, path: &[&str], value: &str) -> Option<(usize, String)> {
    let exact = |p: &Parent, k: usize| {
        p.written.len() == k && p.written.iter().zip(path).all(|(w, c)| w == c)
    };
    let (k, parent) = (0..path.len()).rev().find_map(|k| {
        doc.parents
            .iter()
            .rev()
            .find(|p| exact(p, k))
            .map(|p| (k, p))
    })?;
    let end = parent.end?;
    let rest = &path[k..];
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let json = doc.format == Format::Json;
    let quote = |c: &str| {
        if json {
            format!("\"{c}\"")
        } else {
            c.to_string()
        }
    };
    // The rest of the path as one flow value: `{anonymous: {enabled: false}}`.
    let nested = rest[1..]
        .iter()
        .rev()
        .fold(value.to_string(), |v, c| format!("{{{}: {v}}}", quote(c)));
    let member = format!("{}: {nested}", quote(rest[0]));
    if parent.flow {
        let insert = match (parent.entries, parent.indent) {
            (true, Some(col)) => format!(",{nl}{}{member}", " ".repeat(col)),
            (true, None) => format!(", {member}"),
            (false, _) => member,
        };
        return Some((end, insert));
    }
    // Block YAML: one line per missing level, at the file's indentation unit.
    let col = parent.indent?;
    let unit = doc
        .parents
        .iter()
        .filter_map(|p| {
            let outer = doc.parents.iter().find(|q| {
                q.written.len() + 1 == p.written.len()
                    && p.written.starts_with(&q.written)
                    && !q.flow
            })?;
            p.indent?.checked_sub(outer.indent?).filter(|u| *u > 0)
        })
        .next()
        .unwrap_or(2);
    // Blank lines and less-indented comments before the next key belong to what follows.
    let mut end = end;
    while end > 0 && text.as_bytes()[end - 1] == b'\n' {
        let prev = yaml::line_range(text, end - 1);
        let line = text[prev.clone()].trim_end_matches(['\r', '\n']);
        let trimmed = line.trim_start();
        let outer_comment = trimmed.starts_with('#') && line.len() - trimmed.len() < col;
        if !(trimmed.is_empty() || outer_comment) || prev.start == 0 {
            break;
        }
        end = prev.start;
    }
    let mut lines = String::new();
    if end == text.len() && !text.is_empty() && !text.ends_with('\n') {
        lines.push_str(nl);
    }
    for (i, c) in rest.iter().enumerate() {
        let pad = " ".repeat(col + i * unit);
        if i + 1 == rest.len() {
            lines.push_str(&format!("{pad}{c}: {value}{nl}"));
        } else {
            lines.push_str(&format!("{pad}{c}:{nl}"));
        }
    }
    Some((end, lines))
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

    fn entries(s: &str, keep: Keep) -> Vec<Entry> {
        parse(0, &SourceFile::new("/c".into(), "/c".into(), s), keep)
            .unwrap()
            .0
            .entries
    }

    #[test]
    fn every_table_path_is_recorded_with_its_spelling_and_position() {
        let yaml = "kind: K\nauthentication:\n  webhook: {cacheTTL: 2m}\n  Anonymous:\n    enabled: false # c\nreadOnlyPort: 0x0\nfeatureGates:\n  RotateKubeletServerCertificate: false\n  Other: true\ntlsCipherSuites: [A, B]\nauthorization: null\n";
        let json = r#"{"kind": "K", "authentication": {"webhook": {"cacheTTL": "2m"}, "Anonymous": {"enabled": false}}, "readOnlyPort": 0, "featureGates": {"RotateKubeletServerCertificate": false, "Other": true}, "tlsCipherSuites": ["A", "B"], "authorization": null}"#;
        for (src, keep) in [
            (yaml, Keep::Tree),
            (yaml, Keep::Digest),
            (json, Keep::Digest),
        ] {
            let e = entries(src, keep);
            let written: Vec<String> = e.iter().map(|e| e.written.join(".")).collect();
            assert_eq!(
                written,
                [
                    "authentication.Anonymous.enabled",
                    "readOnlyPort",
                    "featureGates.RotateKubeletServerCertificate",
                    "featureGates.Other",
                    "tlsCipherSuites",
                    "authorization"
                ],
                "{src}"
            );
            assert_eq!(e[0].path, ["authentication", "anonymous", "enabled"]);
            assert!(!e[0].exact_keys());
            assert_eq!(e[2].gate(), Some("RotateKubeletServerCertificate"));
            assert_eq!(
                e[4].value,
                Value::Seq(vec![Value::Str("A".into()), Value::Str("B".into())])
            );
            assert_eq!(e[5].path, ["authorization"]);
            assert_eq!(&src[e[0].value_span.clone()], "false");
        }
        let e = entries(yaml, Keep::Tree);
        assert_eq!((e[0].line, e[0].column), (5, 5));
        // The only entry of its mapping: removing it would leave `Anonymous:` holding null.
        assert!(e[0].removal.is_none());
        let two = "authentication:\n  webhook:\n    enabled: true # c\n    cacheTTL: 2m\n";
        let e = entries(two, Keep::Tree);
        assert_eq!(
            &two[e[0].removal.clone().unwrap()],
            "    enabled: true # c\n"
        );
    }

    #[test]
    fn a_yaml_duplicate_hides_what_the_earlier_key_held() {
        let e = entries(
            "authentication:\n  anonymous: {enabled: false}\nauthentication:\n  webhook: {enabled: true}\n",
            Keep::Tree,
        );
        assert_eq!(e.len(), 2);
        assert!(e[0].shadowed && !e[1].shadowed);
    }

    #[test]
    fn the_digest_leaves_table_settings_out_and_an_emptied_parent_counts_as_absent() {
        let d = |s: &str| {
            let f = SourceFile::new("/c".into(), "/c".into(), s);
            let (tree, digest) = (
                parse(0, &f, Keep::Tree).unwrap().1,
                parse(0, &f, Keep::Digest).unwrap().1,
            );
            (digest_without_key(&tree), digest_without_key(&digest))
        };
        let base = "kind: K\nauthentication:\n  webhook: {cacheTTL: 2m}\nport: 1\n";
        for same in [
            "kind: K\nauthentication:\n  webhook: {cacheTTL: 2m}\n  anonymous: {enabled: false}\nport: 1\nreadOnlyPort: 5\n",
            "kind: K\nauthentication:\n  webhook: {cacheTTL: 2m, enabled: true}\nport: 1\nauthorization: {mode: Webhook}\n",
        ] {
            assert_eq!(d(base), d(same), "{same}");
        }
        for different in [
            "kind: K\nauthentication:\n  webhook: {cacheTTL: 3m}\nport: 1\n",
            "kind: K\nauthentication:\n  webhook: {cacheTTL: 2m}\n  x509: {other: 1}\nport: 1\n",
        ] {
            assert_ne!(d(base).0, d(different).0, "{different}");
            assert_ne!(d(base).1, d(different).1, "{different}");
        }
    }

    fn added(src: &str, path: &[&str], value: &str) -> String {
        let f = SourceFile::new("/c".into(), "/c".into(), src);
        let doc = parse(0, &f, Keep::Digest).unwrap().0;
        let (at, text) = add_key(&doc, src, path, value).unwrap();
        let out = format!("{}{text}{}", &src[..at], &src[at..]);
        // What was added parses, and sets exactly the path.
        let f = SourceFile::new("/c".into(), "/c".into(), out.clone());
        let again = parse(0, &f, Keep::Tree).unwrap().0;
        let e = again
            .entries
            .iter()
            .find(|e| e.written == path)
            .expect("the key is there");
        assert_eq!(&out[e.value_span.clone()], value);
        out
    }

    #[test]
    fn keys_are_added_in_the_files_own_style() {
        // Block YAML: under the existing parent, at its indentation; a missing parent made.
        let y = "kind: K\nauthentication:\n    webhook:\n        enabled: true\n# tail\nport: 1\n";
        assert_eq!(
            added(y, &["authentication", "anonymous", "enabled"], "false"),
            "kind: K\nauthentication:\n    webhook:\n        enabled: true\n    anonymous:\n        enabled: false\n# tail\nport: 1\n"
        );
        assert_eq!(
            added(y, &["rotateCertificates"], "true"),
            format!("{y}rotateCertificates: true\n")
        );
        // No trailing newline, CRLF line ends.
        assert_eq!(
            added("kind: K\r\nport: 1", &["readOnlyPort"], "0"),
            "kind: K\r\nport: 1\r\nreadOnlyPort: 0\r\n"
        );
        // Flow YAML and JSON, one line or one member per line.
        assert_eq!(
            added(
                "kind: K\nauthentication: {webhook: {enabled: true}}\n",
                &["authentication", "anonymous", "enabled"],
                "false"
            ),
            "kind: K\nauthentication: {webhook: {enabled: true}, anonymous: {enabled: false}}\n"
        );
        assert_eq!(
            added("{\"kind\": \"K\"}", &["protectKernelDefaults"], "true"),
            "{\"kind\": \"K\", \"protectKernelDefaults\": true}"
        );
        assert_eq!(
            added(
                "{\n  \"kind\": \"K\",\n  \"authentication\": {}\n}\n",
                &["authentication", "anonymous", "enabled"],
                "false"
            ),
            "{\n  \"kind\": \"K\",\n  \"authentication\": {\"anonymous\": {\"enabled\": false}}\n}\n"
        );
        assert_eq!(
            added("{\n  \"kind\": \"K\"\n}\n", &["rotateCertificates"], "true"),
            "{\n  \"kind\": \"K\",\n  \"rotateCertificates\": true\n}\n"
        );
        // A later document is never where the key goes.
        assert_eq!(
            added("kind: K\n---\nkind: L\n", &["readOnlyPort"], "0"),
            "kind: K\nreadOnlyPort: 0\n---\nkind: L\n"
        );
    }
}
