//! A small JSON parser that keeps byte positions of top-level entries and reports errors with
//! line and column (RFC 8259; no comments or trailing commas, as Go's decoder).

use super::{At, Entry, Folder, Keep, Parent, Parsed, Step, Value};
use crate::error::{Error, Result};
use crate::text::SourceFile;
use std::collections::BTreeMap;

struct P<'a> {
    f: &'a SourceFile,
    b: &'a [u8],
    i: usize,
    duplicate: Option<(String, usize, usize)>,
    /// Whether collections become digests instead of trees ([`Keep::Digest`]).
    fold: bool,
    /// The table settings met so far, and the keys taken to the current object.
    entries: Vec<Entry>,
    parents: Vec<Parent>,
    written: Vec<String>,
    /// Whether the object that just ended kept anything in its digest (see yaml.rs).
    kept: bool,
}

const MAX_DEPTH: usize = 512;

pub fn parse(f: &SourceFile, keep: Keep) -> Result<Parsed> {
    let mut p = P {
        f,
        b: f.text.as_bytes(),
        i: 0,
        duplicate: None,
        fold: keep == Keep::Digest,
        entries: Vec::new(),
        parents: Vec::new(),
        written: Vec::new(),
        kept: false,
    };
    if f.text.starts_with('\u{feff}') {
        p.i = 3;
    }
    p.ws();
    let v = p.value(0, At::Path(&[]))?;
    p.ws();
    if p.i < p.b.len() {
        return Err(p.err("unexpected data after the top-level value"));
    }
    Ok(Parsed {
        value: v,
        entries: p.entries,
        parents: p.parents,
        duplicate: p.duplicate,
        later_documents: Vec::new(),
    })
}

impl P<'_> {
    fn err(&self, m: impl Into<String>) -> Error {
        let (l, c) = self.f.line_col(self.i.min(self.b.len()));
        Error::parse(&self.f.path, l, c, format!("invalid JSON: {}", m.into()))
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<()> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected '{}'", c as char)))
        }
    }

    fn value(&mut self, depth: usize, at: At) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        match self.b.get(self.i) {
            Some(b'{') => self.object(depth, at),
            Some(b'[') => {
                self.i += 1;
                let mut v = Vec::new();
                let mut folder = self.fold.then(Folder::default);
                let done = |v, folder: Option<Folder>| match folder {
                    Some(f) => f.finish(false),
                    None => Value::Seq(v),
                };
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(done(v, folder));
                }
                loop {
                    self.ws();
                    let item = self.value(depth + 1, At::Off)?;
                    match &mut folder {
                        Some(f) => f.item(&item),
                        None => v.push(item),
                    }
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(done(v, folder));
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b't') => self.word("true", Value::Bool(true)),
            Some(b'f') => self.word("false", Value::Bool(false)),
            Some(b'n') => self.word("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => {
                let s = self.i;
                while self.i < self.b.len()
                    && matches!(
                        self.b[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                let t = &self.f.text[s..self.i];
                if t.parse::<f64>().is_err() {
                    self.i = s;
                    return Err(self.err(format!("invalid number '{t}'")));
                }
                Ok(Value::Num(t.to_string()))
            }
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end of file")),
        }
    }

    fn word(&mut self, w: &str, v: Value) -> Result<Value> {
        if self.b[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(self.err("expected a value"))
        }
    }

    fn object(&mut self, depth: usize, at: At) -> Result<Value> {
        let open = self.i;
        self.i += 1;
        let mut m = BTreeMap::new();
        let mut folder = self.fold.then(Folder::default);
        let mut kept = false;
        let done = |m, folder: Option<Folder>| match folder {
            Some(f) => f.finish(true),
            None => Value::Map(m),
        };
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            if let At::Path(path) = at {
                self.parents.push(self.parent(path, open + 1, None, false));
            }
            self.i += 1;
            self.kept = false;
            return Ok(done(m, folder));
        }
        let mut prev_comma: Option<usize> = None;
        let mut indent = None;
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return Err(self.err("expected a string key"));
            }
            let key_start = self.i;
            if indent.is_none() {
                // The members' column when they sit on lines of their own.
                let line = self.f.line_range(key_start);
                indent = Some((line.start > open).then(|| key_start - line.start));
            }
            let k = self.string()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            let vs = self.i;
            let step = super::step(at, &k);
            let object = self.b.get(self.i) == Some(&b'{');
            let (v, recorded) = match step {
                Step::Off => (self.value(depth + 1, At::Off)?, false),
                Step::Inner(p) if object => (self.nested(&k, depth, At::Path(p))?, false),
                Step::Leaf(p, true) if object => (self.nested(&k, depth, At::MapOf(p))?, false),
                Step::Inner(_) | Step::Leaf(..) | Step::MapKey(_) => {
                    // Judged, not digested: built as a tree whatever the mode.
                    let fold = std::mem::replace(&mut self.fold, false);
                    let v = self.value(depth + 1, At::Off);
                    self.fold = fold;
                    (v?, true)
                }
            };
            let ve = self.i;
            self.ws();
            let next = self.b.get(self.i).copied();
            if recorded && let Step::Inner(p) | Step::Leaf(p, _) | Step::MapKey(p) = step {
                let (line, column) = self.f.line_col(key_start);
                let removal = match next {
                    // Remove through the following comma; a member alone on its line goes whole.
                    Some(b',') => Some(self.whole_lines(key_start, self.i + 1)),
                    // The last member takes the comma before it.
                    _ => prev_comma.map(|c| c..ve),
                };
                let mut written = self.written.clone();
                written.push(k.clone());
                self.entries.push(Entry {
                    path: p,
                    written,
                    value: v.clone(),
                    line,
                    column,
                    key_at: key_start,
                    value_span: vs..ve,
                    exact: true,
                    removal,
                    shadowed: false,
                });
            }
            if let Some(f) = &mut folder {
                // Table settings are compared as effective values, not digested; an object on
                // a table path holding nothing else counts as absent.
                let keep = match step {
                    Step::Off => true,
                    Step::Inner(_) => !recorded && self.kept,
                    Step::Leaf(..) | Step::MapKey(_) => false,
                };
                if keep {
                    f.key(&k);
                    f.item(&v);
                    kept = true;
                }
            } else {
                if m.contains_key(&k) && self.duplicate.is_none() {
                    let (line, column) = self.f.line_col(key_start);
                    self.duplicate = Some((k.clone(), line, column));
                }
                m.insert(k, v);
            }
            match next {
                Some(b',') => {
                    prev_comma = Some(self.i);
                    self.i += 1;
                }
                Some(b'}') => {
                    if let At::Path(path) = at {
                        self.parents
                            .push(self.parent(path, ve, indent.flatten(), true));
                    }
                    self.i += 1;
                    self.kept = kept;
                    return Ok(done(m, folder));
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    /// An object on a table path: a new member goes at `end` (after its last member, or just
    /// inside an empty object), on a line of its own at `indent` when the members are so.
    fn parent(
        &self,
        path: &'static [&'static str],
        end: usize,
        indent: Option<usize>,
        entries: bool,
    ) -> Parent {
        Parent {
            path,
            written: self.written.clone(),
            flow: true,
            end: Some(end),
            indent,
            entries,
        }
    }

    /// An object on a table path, walked with `key` taken.
    fn nested(&mut self, key: &str, depth: usize, at: At) -> Result<Value> {
        self.written.push(key.to_string());
        let v = self.value(depth + 1, at);
        self.written.pop();
        v
    }

    /// Widen `s..e` to whole lines when only blanks surround it on its lines.
    fn whole_lines(&self, s: usize, e: usize) -> std::ops::Range<usize> {
        let ls = self.f.line_range(s);
        let le = self.f.line_range(e.saturating_sub(1));
        let t = &self.f.text;
        if t[ls.start..s].trim().is_empty() && t[e..le.end].trim().is_empty() {
            ls.start..le.end
        } else {
            let mut end = e;
            while end < t.len() && matches!(t.as_bytes()[end], b' ' | b'\t') {
                end += 1;
            }
            s..end
        }
    }

    fn string(&mut self) -> Result<String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => {
                    let e = self.b.get(self.i + 1).copied();
                    self.i += 2;
                    match e {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\x08'),
                        Some(b'f') => out.push('\x0c'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => {
                            let hex = self.f.text.get(self.i..self.i + 4).unwrap_or("");
                            let Ok(cp) = u32::from_str_radix(hex, 16) else {
                                return Err(self.err("invalid \\u escape"));
                            };
                            self.i += 4;
                            out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                        }
                        _ => {
                            self.i -= 1;
                            return Err(self.err("invalid escape"));
                        }
                    }
                }
                0..=0x1f => return Err(self.err("control character in string")),
                _ => {
                    let ch = self.f.text[self.i..].chars().next().unwrap();
                    out.push(ch);
                    self.i += ch.len_utf8();
                }
            }
        }
    }
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Num(_) => "number",
        Value::Str(_) => "string",
        Value::Seq(_) => "array",
        Value::Map(_) => "object",
        Value::Folded { map: true, .. } => "object",
        Value::Folded { map: false, .. } => "array",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::{KeyOcc, KeyValue};

    /// The value and the makeIPTablesUtilChains occurrences, as config::parse reports them.
    fn p(s: &str) -> Result<(Value, Vec<KeyOcc>)> {
        let f = SourceFile::new("/c.json".into(), "/c.json".into(), s);
        crate::config::parse(0, &f, Keep::Tree).map(|(d, v)| (v, d.occurrences))
    }

    #[test]
    fn a_folded_document_is_its_digest_without_the_key() {
        let digest = |s: &str| {
            let f = SourceFile::new("/c.json".into(), "/c.json".into(), s);
            let parsed = parse(&f, Keep::Digest).unwrap();
            assert!(matches!(parsed.value, Value::Folded { map: true, .. }));
            super::super::digest_without_key(&parsed.value)
        };
        let base = r#"{"kind": "K", "a": {"b": [1, "x", {"c": null}]}, "makeIPTablesUtilChains": false, "z": []}"#;
        for same in [
            base.replace("false", "true"),
            base.replace("\"makeIPTablesUtilChains\": false, ", ""),
            base.replace("makeIPTablesUtilChains", "MakeIPTablesUtilChains"),
        ] {
            assert_eq!(digest(base), digest(&same), "{same}");
        }
        for different in [
            base.replace("\"x\"", "\"y\""),
            base.replace("null", "1"),
            base.replace("[]", "{}"),
            base.replace("\"b\"", "\"b2\""),
        ] {
            assert_ne!(digest(base), digest(&different), "{different}");
        }
    }

    #[test]
    fn spans_and_removal() {
        let s = "{\n  \"a\": 1,\n  \"makeIPTablesUtilChains\": false,\n  \"b\": \"x\"\n}\n";
        let (_, e) = p(s).unwrap();
        let o = &e[0];
        assert_eq!(&s[o.value_span.clone()], "false");
        assert_eq!((o.line, o.column), (3, 3));
        let r = o.removal.clone().unwrap();
        assert_eq!(&s[r], "  \"makeIPTablesUtilChains\": false,\n");
        let s2 = "{\"a\": 1, \"makeIPTablesUtilChains\": false}";
        let (_, e) = p(s2).unwrap();
        assert_eq!(
            &s2[e[0].removal.clone().unwrap()],
            ", \"makeIPTablesUtilChains\": false"
        );
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = p("{\n  \"a\": 1,\n  \"b\": tru\n}")
            .err()
            .unwrap()
            .to_string();
        assert_eq!(e, "/c.json:3:8: invalid JSON: expected a value");
        let e = p("{\"a\": 1,}").err().unwrap().to_string();
        assert!(e.contains("expected a string key"), "{e}");
    }

    #[test]
    fn string_value_is_invalid() {
        let (_, e) = p("{\"makeIPTablesUtilChains\": \"false\"}").unwrap();
        assert!(matches!(e[0].value, KeyValue::Invalid(_)));
    }
}
