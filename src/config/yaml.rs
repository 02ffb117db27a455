//! YAML configs, decoded with YAML 1.1 scalars as the kubelet's sigs.k8s.io/yaml (yaml.v2) does.
//!
//! saphyr-parser supplies the structure and each node's start position; the extent of the one
//! scalar we may edit is measured here from the source text and checked against the parser's
//! value, so an edit can never land on the wrong bytes. Plain `no`, `off`, `n` are false and
//! `yes`, `on`, `y` true (yaml.v2's resolve table); a quoted "false" is a string, which the
//! kubelet refuses to decode into a bool. Only the first document of a stream is decoded
//! (yaml.v2's Unmarshal, under sigs.k8s.io/yaml, reads one document and stops).

use super::{At, Entry, Folder, Keep, Parent, Parsed, Step, Value};
use crate::error::{Error, Result};
use crate::text::{CharOffsets, SourceFile};
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span, StrInput, Tag};
use std::collections::{BTreeMap, HashMap};

const TRUE: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE",
];
const FALSE: &[&str] = &[
    "n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE",
];
const NULL: &[&str] = &["", "~", "null", "Null", "NULL"];

/// yaml.v2's resolution of a plain scalar's boolean spellings.
pub fn yaml11_bool(s: &str) -> Option<bool> {
    if TRUE.contains(&s) {
        Some(true)
    } else if FALSE.contains(&s) {
        Some(false)
    } else {
        None
    }
}

struct Ev<'a> {
    ev: Event<'a>,
    span: Span,
}

/// Builds the value tree straight from the parser's event stream (nothing is buffered, so
/// memory stays proportional to the tree, not to the events).
struct Builder<'a> {
    f: &'a SourceFile,
    parser: Parser<'a, StrInput<'a>>,
    /// The parser's positions (character indices) as byte offsets.
    pos: CharOffsets<'a>,
    /// Anchored values and how many nodes each is.
    anchors: HashMap<usize, (Value, usize)>,
    duplicate: Option<(String, usize, usize)>,
    /// Collections open around the current event.
    depth: usize,
    /// Nodes still allowed to be built, aliases expanded (a "billion laughs" stops here).
    budget: usize,
    /// Whether collections become digests instead of trees.
    fold: bool,
    /// The table settings met so far ([`Entry`]), and the keys taken to the current mapping.
    entries: Vec<Entry>,
    parents: Vec<Parent>,
    written: Vec<String>,
    /// Whether the mapping that just ended kept anything in its digest (a mapping on a table
    /// path holding only table keys digests as absent, so adding one leaves the rest equal).
    kept: bool,
}

/// As deep as the JSON reader goes: the builder recurses once per level.
const MAX_DEPTH: usize = 512;
/// Nodes an alias may add beyond the file's own (each alias expands to a copy of its anchor).
const ALIAS_NODES: usize = 1_000_000;

pub fn parse(f: &SourceFile, keep: Keep) -> Result<Parsed> {
    let mut b = Builder {
        f,
        parser: Parser::new_from_str(&f.text),
        pos: CharOffsets::new(&f.text),
        anchors: HashMap::new(),
        duplicate: None,
        depth: 0,
        budget: f.text.len() + ALIAS_NODES,
        fold: keep == Keep::Digest,
        entries: Vec::new(),
        parents: Vec::new(),
        written: Vec::new(),
        kept: false,
    };
    let mut value = Value::Null;
    let mut later_documents = Vec::new();
    loop {
        let e = b.next()?;
        match e.ev {
            Event::StreamEnd => break,
            Event::DocumentEnd => {
                // yaml.v2 stops after the first document: what follows is never decoded (not
                // even checked), so it is only looked at for a note.
                let (line, _) = f.line_col(b.at(e.span.end));
                later_documents = later_key_lines(&f.text, line);
                break;
            }
            Event::MappingStart(anchor, _) => value = b.mapping(anchor, At::Path(&[]), e.span)?.0,
            Event::Scalar(..) | Event::SequenceStart(..) | Event::Alias(_) => value = b.node(e)?.0,
            _ => {}
        }
    }
    Ok(Parsed {
        value,
        entries: b.entries,
        parents: b.parents,
        duplicate: b.duplicate,
        later_documents,
    })
}

/// Lines from `from` on (1-based) that look like a top-level makeIPTablesUtilChains key.
fn later_key_lines(text: &str, from: usize) -> Vec<usize> {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .filter(|(_, l)| {
            l.trim_start_matches(['{', ' ', '"', '\''])
                .split([':', '"', '\''])
                .next()
                .is_some_and(super::folds_to_field)
        })
        .map(|(i, _)| i + 1)
        .collect()
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<Ev<'a>> {
        match self.parser.next_event() {
            Some(Ok((ev, span))) => Ok(Ev { ev, span }),
            Some(Err(e)) => Err(self.error_at(*e.marker(), &format!("invalid YAML: {}", e.info()))),
            None => Err(Error::parse(
                &self.f.path,
                1,
                1,
                "invalid YAML: unexpected end of events",
            )),
        }
    }

    /// The byte offset of a parser position.
    fn at(&mut self, m: Marker) -> usize {
        self.pos.byte(m.index())
    }

    /// An error at a parser position, its line and column counted as every other message
    /// counts them (lines end at `\n`), so it names the same place whatever the line ends.
    fn error_at(&mut self, m: Marker, why: &str) -> Error {
        let (line, column) = self.f.line_col(self.at(m));
        Error::parse(&self.f.path, line, column, why)
    }

    fn refuse(&mut self, at: Span, why: &str) -> Error {
        self.error_at(at.start, why)
    }

    /// Count `n` more nodes against the budget.
    fn spend(&mut self, n: usize, at: Span) -> Result<()> {
        match self.budget.checked_sub(n) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(self.refuse(
                at,
                "aliases expand to more than a million nodes (a YAML alias bomb?): refused",
            )),
        }
    }

    /// Enter a collection, refusing nesting the recursion could not survive.
    fn enter(&mut self, at: Span) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.refuse(
                at,
                &format!("nesting deeper than {MAX_DEPTH} levels: refused"),
            ));
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, val: &Value, size: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (val.clone(), size));
        }
    }

    /// A node and how many nodes it is.
    fn node(&mut self, e: Ev<'a>) -> Result<(Value, usize)> {
        let at = e.span;
        match e.ev {
            Event::Scalar(v, style, anchor, tag) => {
                self.spend(1, at)?;
                let val = scalar(&v, style, tag.as_deref());
                self.remember(anchor, &val, 1);
                Ok((val, 1))
            }
            Event::Alias(id) => {
                let Some(size) = self.anchors.get(&id).map(|(_, n)| *n) else {
                    return Ok((Value::Null, 1));
                };
                // Charge before copying, so a bomb is refused before it is built.
                self.spend(size, at)?;
                Ok((self.anchors[&id].0.clone(), size))
            }
            Event::SequenceStart(anchor, _) => {
                self.enter(at)?;
                self.spend(1, at)?;
                let mut v = Vec::new();
                let mut folder = self.fold.then(Folder::default);
                let mut size = 1;
                loop {
                    let e = self.next()?;
                    if let Event::SequenceEnd = e.ev {
                        break;
                    }
                    let (item, n) = self.node(e)?;
                    size += n;
                    match &mut folder {
                        Some(f) => f.item(&item),
                        None => v.push(item),
                    }
                }
                self.depth -= 1;
                let val = match folder {
                    Some(f) => f.finish(false),
                    None => Value::Seq(v),
                };
                self.remember(anchor, &val, size);
                Ok((val, size))
            }
            Event::MappingStart(anchor, _) => self.mapping(anchor, At::Off, at),
            _ => Ok((Value::Null, 1)),
        }
    }

    fn mapping(&mut self, anchor: usize, at: At, span: Span) -> Result<(Value, usize)> {
        self.enter(span)?;
        self.spend(1, span)?;
        let mut m = BTreeMap::new();
        let mut folder = self.fold.then(Folder::default);
        let mut kept = false;
        let mut size = 1;
        // Entries each key of a watched mapping produced, to hide them if the key comes again.
        let mut seen: HashMap<String, std::ops::Range<usize>> = HashMap::new();
        let open = self.at(span.start);
        let mut indent = None;
        let end_at;
        let first_entry = self.entries.len();
        let mut keys = 0;
        loop {
            let k = self.next()?;
            if let Event::MappingEnd = k.ev {
                end_at = self.at(k.span.start);
                break;
            }
            let kstart = k.span.start;
            keys += 1;
            if indent.is_none() && at != At::Off {
                let off = self.at(kstart);
                let line = line_range(&self.f.text, off);
                // A flow mapping's members count as on lines of their own only when the first
                // is not on the brace's line.
                let own_line = line.start > open || self.f.text.as_bytes().get(open) != Some(&b'{');
                indent = Some(own_line.then_some(off - line.start));
            }
            let (key, n) = self.node(k)?;
            size += n;
            let key = match key {
                Value::Str(s) | Value::Num(s) => s,
                Value::Bool(b) => b.to_string(),
                Value::Null => "null".into(),
                _ => String::from("<complex key>"),
            };
            if at != At::Off && key == "<<" {
                return Err(self.error_at(
                    kstart,
                    "YAML merge keys (<<) where the kubelet's settings are read are not supported: inline the merged keys",
                ));
            }
            let step = super::step(at, &key);
            let v = self.next()?;
            let first_entry = self.entries.len();
            let recorded = step != Step::Off;
            let (val, n) = match (step, &v.ev) {
                (Step::Off, _) => self.node(v)?,
                (Step::Inner(p), Event::MappingStart(a, _)) => {
                    let a = *a;
                    self.nested(key.clone(), |b| b.mapping(a, At::Path(p), v.span))?
                }
                (Step::Leaf(p, true), Event::MappingStart(a, _)) => {
                    let a = *a;
                    self.nested(key.clone(), |b| b.mapping(a, At::MapOf(p), v.span))?
                }
                (Step::Inner(p) | Step::Leaf(p, _) | Step::MapKey(p), _) => {
                    self.setting(p, &key, kstart, v)?
                }
            };
            size += n;
            if recorded && let Some(old) = seen.insert(key.clone(), first_entry..self.entries.len())
            {
                for e in &mut self.entries[old] {
                    e.shadowed = true;
                }
            }
            if let Some(f) = &mut folder {
                // The digest leaves table settings out (they are compared as effective values),
                // and a mapping on a table path that holds nothing else counts as absent.
                let keep = match step {
                    Step::Off => true,
                    Step::Inner(_) => matches!(val, Value::Folded { .. }) && self.kept,
                    Step::Leaf(..) | Step::MapKey(_) => false,
                };
                if keep {
                    f.key(&key);
                    f.item(&val);
                    kept = true;
                }
                continue;
            }
            if m.contains_key(&key) && self.duplicate.is_none() {
                let (line, column) = self.f.line_col(self.at(kstart));
                self.duplicate = Some((key.clone(), line, column));
            }
            m.insert(key, val);
        }
        self.depth -= 1;
        self.kept = kept;
        // Removing a nested mapping's only entry would leave its key holding null: such an
        // entry is rewritten instead, never removed.
        if matches!(at, At::Path(p) if !p.is_empty()) && keys == 1 {
            let depth = self.written.len() + 1;
            for e in &mut self.entries[first_entry..] {
                if e.written.len() == depth {
                    e.removal = None;
                }
            }
        }
        if let At::Path(path) = at {
            self.parents.push(self.parent(path, open, end_at, indent));
        }
        let val = match folder {
            Some(f) => f.finish(true),
            None => Value::Map(m),
        };
        self.remember(anchor, &val, size);
        Ok((val, size))
    }

    /// A mapping on a table path, and where a new entry would go: before a flow mapping's
    /// closing brace, or at the start of the line that ends a block mapping (the next less
    /// indented key, or the end of the text).
    fn parent(
        &self,
        path: &'static [&'static str],
        open: usize,
        end_at: usize,
        first: Option<Option<usize>>,
    ) -> Parent {
        let text = &self.f.text;
        let flow = text.as_bytes().get(open) == Some(&b'{');
        let end = if flow {
            (text.as_bytes().get(end_at) == Some(&b'}')).then_some(end_at)
        } else if end_at >= text.len() {
            Some(text.len())
        } else {
            let start = line_range(text, end_at).start;
            text[start..end_at]
                .bytes()
                .all(|b| b == b' ')
                .then_some(start)
        };
        Parent {
            path,
            written: self.written.clone(),
            flow,
            end,
            indent: first.flatten(),
            entries: first.is_some(),
        }
    }

    /// Walk a nested mapping with `key` taken.
    fn nested(
        &mut self,
        key: String,
        walk: impl FnOnce(&mut Self) -> Result<(Value, usize)>,
    ) -> Result<(Value, usize)> {
        self.written.push(key);
        let r = walk(self);
        self.written.pop();
        r
    }

    /// A table setting's value (or a non-mapping on a table path's prefix): built as a tree
    /// whatever the mode (it is judged, not digested), and recorded with its positions.
    fn setting(
        &mut self,
        path: &'static [&'static str],
        key: &str,
        kstart: Marker,
        v: Ev<'a>,
    ) -> Result<(Value, usize)> {
        let raw = match &v.ev {
            Event::Scalar(s, style, _, _) => Some((s.to_string(), *style)),
            _ => None,
        };
        let key_at = self.at(kstart);
        let vstart = self.at(v.span.start);
        let fold = std::mem::replace(&mut self.fold, false);
        let built = self.node(v);
        self.fold = fold;
        let (val, n) = built?;
        let text = &self.f.text;
        let (line, column) = self.f.line_col(key_at);
        let (span, exact) = match (raw, &val) {
            (Some((s, style)), _) => measure(text, vstart, &s, style),
            (None, Value::Seq(items)) => match sequence_extent(text, vstart, items) {
                Some(r) => (r, true),
                None => (vstart..vstart, false),
            },
            (None, _) => (vstart..vstart, false),
        };
        let mut written = self.written.clone();
        written.push(key.to_string());
        self.entries.push(Entry {
            path,
            written,
            value: val.clone(),
            line,
            column,
            key_at,
            removal: exact
                .then(|| yaml_line(text, key_at, span.clone()))
                .flatten(),
            value_span: span,
            exact,
            shadowed: false,
        });
        Ok((val, n))
    }
}

/// The bytes of a sequence of plain scalars starting near `start`, when the text is exactly
/// those items: a flow sequence `[a, b]` (its brackets included), or a block sequence's lines
/// `- a` at one indentation (from the first dash to the end of the last item, comments after
/// it excluded). What a list fix may replace; anything else (quotes, nesting, anchors) is not
/// measured.
fn sequence_extent(text: &str, start: usize, items: &[Value]) -> Option<std::ops::Range<usize>> {
    let want: Vec<&str> = items
        .iter()
        .map(|i| match i {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let plain = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    if text.as_bytes().get(start) == Some(&b'[') {
        let close = start + text[start..].find(']')?;
        let inner = &text[start + 1..close];
        let got: Vec<&str> = if inner.trim().is_empty() {
            Vec::new()
        } else {
            inner.split(',').map(str::trim).collect()
        };
        return (got == want && got.iter().all(|g| plain(g))).then_some(start..close + 1);
    }
    // A block sequence: saphyr puts its start at the first dash, or (at column 0) at the item.
    let line = line_range(text, start);
    let dash = line.start + text[line.clone()].find("- ")?;
    if text[line.start..dash].bytes().any(|b| b != b' ') || want.is_empty() {
        return None;
    }
    let col = dash - line.start;
    let mut at = line.start;
    let mut end = dash;
    for w in &want {
        let l = line_range(text, at);
        let body = text[l.clone()].trim_end_matches(['\r', '\n']);
        let item = body.strip_prefix(&" ".repeat(col))?.strip_prefix("- ")?;
        let value = item.split(" #").next()?.trim_end();
        if value != *w || !plain(value) {
            return None;
        }
        end = l.start + col + 2 + value.len();
        at = l.end;
    }
    Some(dash..end)
}

/// The whole YAML line holding the entry `key_off..value.end`, break included, when the entry
/// is all the line holds (its indentation and a trailing comment aside).
fn yaml_line(
    text: &str,
    key_off: usize,
    value: std::ops::Range<usize>,
) -> Option<std::ops::Range<usize>> {
    let line = line_range(text, key_off);
    let tail = text.get(value.end..line.end)?.trim();
    // Indentation only before the key (a nested block entry), nothing but a comment after.
    let indent = text.get(line.start..key_off)?.bytes().all(|b| b == b' ');
    (indent && value.end <= line.end && (tail.is_empty() || tail.starts_with('#'))).then_some(line)
}

/// The YAML line (its break included) holding byte `offset`. YAML breaks lines at `\n`,
/// `\r\n` and a lone `\r` (YAML 1.2 §5.4, yaml.v2's `is_break`): a line cut only at `\n`
/// could take other entries with it.
pub(crate) fn line_range(text: &str, offset: usize) -> std::ops::Range<usize> {
    let is_break = |c: char| c == '\n' || c == '\r';
    let offset = offset.min(text.len());
    let start = text.as_bytes()[..offset]
        .iter()
        .rposition(|&b| b == b'\n' || b == b'\r')
        .map_or(0, |i| i + 1);
    let brk = text[offset..]
        .find(is_break)
        .map_or(text.len(), |i| offset + i);
    let end = if text[brk..].starts_with("\r\n") {
        brk + 2
    } else {
        (brk + 1).min(text.len())
    };
    start..end
}

/// The byte extent of a scalar starting at `start` (after any anchor or tag), and whether the
/// measured text matches what the parser read.
pub(crate) fn measure(
    text: &str,
    start: usize,
    expect: &str,
    style: ScalarStyle,
) -> (std::ops::Range<usize>, bool) {
    let b = text.as_bytes();
    let mut i = start;
    // Skip node properties (&anchor, !tag) that the parser's position includes.
    while i < b.len() && (b[i] == b'&' || b[i] == b'!') {
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        while i < b.len() && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
    }
    let s = i;
    match style {
        // A one-line plain scalar is its own text (no escapes, no folding), in block and flow
        // context alike: `{a: 1, makeIPTablesUtilChains: false}` ends at the value's last byte.
        ScalarStyle::Plain => {
            let ok = !expect.is_empty()
                && text.get(s..).is_some_and(|t| t.starts_with(expect))
                && !expect.contains(['\n', '\r']);
            let e = if ok { s + expect.len() } else { s };
            (s..e, ok)
        }
        ScalarStyle::DoubleQuoted | ScalarStyle::SingleQuoted => {
            let q = b.get(s).copied().unwrap_or(0);
            let mut j = s + 1;
            while j < b.len() {
                if q == b'"' && b[j] == b'\\' {
                    j += 2;
                    continue;
                }
                if b[j] == q {
                    if q == b'\'' && b.get(j + 1) == Some(&b'\'') {
                        j += 2;
                        continue;
                    }
                    break;
                }
                if b[j] == b'\n' {
                    return (s..j, false);
                }
                j += 1;
            }
            let e = (j + 1).min(b.len());
            // `get`: a position the loop stopped at need not be a character boundary when the
            // text is not what the parser read.
            let ok = matches!(q, b'"' | b'\'')
                && text.get(s + 1..j) == Some(expect)
                && text.is_char_boundary(e);
            if ok { (s..e, true) } else { (s..s, false) }
        }
        _ => (s..s, false),
    }
}

fn scalar(v: &str, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(t) = tag
        && t.is_yaml_core_schema()
    {
        match t.suffix.as_str() {
            "str" => return Value::Str(v.to_string()),
            "bool" => {
                if let Some(b) = yaml11_bool(v) {
                    return Value::Bool(b);
                }
            }
            "null" => return Value::Null,
            _ => {}
        }
    }
    if style != ScalarStyle::Plain {
        return Value::Str(v.to_string());
    }
    match resolve(v) {
        Resolved::Null => Value::Null,
        Resolved::Bool(b) => Value::Bool(b),
        Resolved::Int | Resolved::Float => Value::Num(v.to_string()),
        Resolved::Str => Value::Str(v.to_string()),
    }
}

/// What yaml.v2 makes of a plain scalar (`resolve` in resolve.go, untagged): its first byte
/// decides what it may be (a sign or digit: a number or a timestamp; one of `yYnNtTfFoO~`: a
/// word of the bool/null table; `.`: `.inf`/`.nan` or a float); anything else is a string. A
/// timestamp is a string here, as sigs.k8s.io/yaml hands it on (JSON has no time type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    Null,
    Bool(bool),
    Int,
    Float,
    Str,
}

pub fn resolve(s: &str) -> Resolved {
    if NULL.contains(&s) {
        return Resolved::Null;
    }
    if let Some(b) = yaml11_bool(s) {
        return Resolved::Bool(b);
    }
    match s.as_bytes().first() {
        Some(b'.') => {
            if matches!(s, ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN") || go_float(s) {
                Resolved::Float
            } else {
                Resolved::Str
            }
        }
        Some(b'+' | b'-')
            if matches!(s, "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF") =>
        {
            Resolved::Float
        }
        Some(c) if c.is_ascii_digit() || matches!(c, b'+' | b'-') => {
            if looks_like_timestamp(s) {
                return Resolved::Str;
            }
            // Underscores are dropped before ParseInt (so `1__0` is 10), never placed.
            let plain = s.replace('_', "");
            if crate::settings::parse_int(&plain, 64).is_ok() || parse_uint(&plain) {
                Resolved::Int
            } else if yaml_style_float(&plain) && go_float(&plain) {
                Resolved::Float
            } else if binary_int(&plain) {
                // yaml.v2's own `0b` / `-0b` branch, from before Go's ParseInt took `0b`: it
                // reads the rest with an explicit base 2, which allows a sign (`0b+1` is 1).
                Resolved::Int
            } else {
                Resolved::Str
            }
        }
        _ => Resolved::Str,
    }
}

/// `0bREST` with `strconv.ParseInt(REST, 2, 64)` (a sign allowed) or ParseUint, or `-0bREST`
/// with `ParseInt("-" + REST, 2, 64)`.
fn binary_int(s: &str) -> bool {
    let base2 = |t: &str, signed: bool| {
        let (neg, d) = match t.as_bytes().first() {
            Some(b'-') if signed => (true, &t[1..]),
            Some(b'+') if signed => (false, &t[1..]),
            _ => (false, t),
        };
        !d.is_empty()
            && d.bytes().all(|c| c == b'0' || c == b'1')
            && match u64::from_str_radix(d, 2) {
                Ok(v) if signed => v <= i64::MAX as u64 + u64::from(neg),
                Ok(_) => true,
                Err(_) => false,
            }
    };
    if let Some(rest) = s.strip_prefix("0b") {
        base2(rest, true) || base2(rest, false)
    } else if let Some(rest) = s.strip_prefix("-0b") {
        base2(&format!("-{rest}"), true)
    } else {
        false
    }
}

/// `strconv.ParseUint(s, 0, 64)` succeeds: no sign, a base prefix as ParseInt's, fits in 64
/// bits (it matters above `i64::MAX`, which ParseInt refuses).
fn parse_uint(s: &str) -> bool {
    let (radix, digits) = crate::settings::base0(s);
    !digits.is_empty()
        && digits.bytes().all(|c| c.is_ascii_alphanumeric())
        && u64::from_str_radix(digits, radix).is_ok()
}

/// yaml.v2's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s).as_bytes();
    let digits = |i: usize| b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = 0;
    if b.first() == Some(&b'.') {
        let n = digits(1);
        if n == 0 {
            return false;
        }
        i = 1 + n;
    } else {
        let n = digits(0);
        if n == 0 {
            return false;
        }
        i += n;
        if b.get(i) == Some(&b'.') {
            i += 1 + digits(i + 1);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(i);
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == b.len()
}

/// `strconv.ParseFloat(s, 64)` accepts it: a decimal form whose value is finite (an overflow
/// is Go's ErrRange, and yaml.v2 then keeps the text as a string; the special words never reach
/// here).
/// Underscores are Go's float-literal separators, placed as `underscoreOK` allows (`.14_7` is
/// 0.147; `1_.5` is refused).
fn go_float(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    if t.contains('_') && !crate::settings::underscore_ok(t) {
        return false;
    }
    let t = t.replace('_', "");
    t.bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        && t.parse::<f64>().is_ok_and(f64::is_finite)
}

/// yaml.v2's `parseTimestamp` quick check and formats: `YYYY-M-D`, optionally followed by a time
/// (`T`, `t` or a space) as time.Parse reads them.
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let year = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if year != 4 || b.get(4) != Some(&b'-') {
        return false;
    }
    // Date: 1-2 digit month and day.
    let rest = &s[5..];
    let mut parts = rest.splitn(2, '-');
    let month = parts.next().unwrap_or("");
    let Some(tail) = parts.next() else {
        return false;
    };
    let day_len = tail.bytes().take_while(u8::is_ascii_digit).count();
    let ok_num = |t: &str, max: u32| {
        (1..=2).contains(&t.len())
            && t.bytes().all(|c| c.is_ascii_digit())
            && t.parse::<u32>().is_ok_and(|v| v >= 1 && v <= max)
    };
    if !ok_num(month, 12) || !ok_num(&tail[..day_len], 31) {
        return false;
    }
    let after = &tail[day_len..];
    if after.is_empty() {
        return true;
    }
    // Date and time: the time part must parse too (time.Parse is strict); anything else after
    // the date is not a timestamp.
    let (sep, time) = after.split_at(1);
    matches!(sep, "T" | "t" | " ") && time_of_day(time, sep != " ")
}

/// `15:4:5.999999999` then, with `zone`, `Z07:00` (`Z` or `±hh:mm`); without, nothing more.
fn time_of_day(t: &str, zone: bool) -> bool {
    let mut it = t.splitn(3, ':');
    let (Some(h), Some(m), Some(rest)) = (it.next(), it.next(), it.next()) else {
        return false;
    };
    let sec_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let mut after = &rest[sec_len..];
    if let Some(f) = after.strip_prefix('.') {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        after = &f[n..];
    }
    let two = |x: &str, max: u32| {
        (1..=2).contains(&x.len())
            && x.bytes().all(|c| c.is_ascii_digit())
            && x.parse::<u32>().is_ok_and(|v| v <= max)
    };
    if !two(h, 23) || !two(m, 59) || !two(&rest[..sec_len], 59) {
        return false;
    }
    match (zone, after) {
        (false, "") => true,
        (true, "Z") => true,
        (true, z) => {
            let b = z.as_bytes();
            b.len() == 6
                && matches!(b[0], b'+' | b'-')
                && b[3] == b':'
                && two(&z[1..3], 23)
                && two(&z[4..6], 59)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::{KeyOcc, KeyValue};

    /// The value and the makeIPTablesUtilChains occurrences, as config::parse reports them.
    fn p(s: &str) -> Result<(Value, Vec<KeyOcc>)> {
        let f = SourceFile::new("/c.yaml".into(), "/c.yaml".into(), s);
        crate::config::parse(0, &f, Keep::Tree).map(|(d, v)| (v, d.occurrences))
    }

    fn digest(s: &str) -> [u8; 32] {
        let f = SourceFile::new("/c.yaml".into(), "/c.yaml".into(), s);
        let parsed = parse(&f, Keep::Digest).unwrap();
        assert!(matches!(parsed.value, Value::Folded { map: true, .. }));
        super::super::digest_without_key(&parsed.value)
    }

    #[test]
    fn a_folded_document_is_its_digest_without_the_key() {
        let base = "kind: K
a: {b: [1, x, {c: null}]}
makeIPTablesUtilChains: false
z: &n [1]
y: *n
";
        let same = [
            base.replace("false", "true"),
            base.replace("makeIPTablesUtilChains: false\n", ""),
            base.replace("makeIPTablesUtilChains", "MakeIPTablesUtilChains"),
        ];
        for s in &same {
            assert_eq!(digest(base), digest(s), "{s}");
        }
        let different = [
            base.replace("[1, x", "[1, y"),
            base.replace("c: null", "c: ~x"),
            base.replace("[1]", "[2]"),
            base.replace("kind: K", "kind: \"K \""),
            base.replace("{b: [1, x, {c: null}]}", "{b: [1, x, {}], c: null}"),
            base.replace("a: {b", "a2: {b"),
        ];
        for s in &different {
            assert_ne!(digest(base), digest(s), "{s}");
        }
        // The same occurrences either way: only the nested collections differ.
        let f = SourceFile::new("/c.yaml".into(), "/c.yaml".into(), base);
        let (t, d) = (
            parse(&f, Keep::Tree).unwrap(),
            parse(&f, Keep::Digest).unwrap(),
        );
        assert_eq!(t.entries.len(), d.entries.len());
        assert_eq!(t.entries[0].value_span, d.entries[0].value_span);
        assert_eq!(t.entries[0].value, d.entries[0].value);
        assert_eq!(t.entries[0].written, ["makeIPTablesUtilChains"]);
    }

    #[test]
    fn deep_nesting_and_alias_bombs_are_refused() {
        let deep = format!("x:\n{}1\n", "- ".repeat(100_000));
        let e = p(&deep).err().unwrap().to_string();
        assert!(e.contains("nesting deeper than 512"), "{e}");
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = (b'a' + i - 1) as char;
            let cur = (b'a' + i) as char;
            bomb += &format!(
                "{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            );
        }
        assert!(bomb.len() < 1024);
        let e = p(&bomb).err().unwrap().to_string();
        assert!(e.contains("alias bomb"), "{e}");
        // Ordinary anchors and aliases still work.
        assert!(p("a: &x {b: 1}\nc: *x\n").is_ok());
    }

    #[test]
    fn flow_mapping_values_are_measured_exactly() {
        // (A flow mapping at the top is read as JSON by config::parse: the YAML reader alone.)
        let s = "{kind: K, makeIPTablesUtilChains: false, port: 1}\n";
        let f = SourceFile::new("/c.yaml".into(), "/c.yaml".into(), s);
        let e = parse(&f, Keep::Tree).unwrap().entries;
        assert_eq!(&s[e[0].value_span.clone()], "false");
        assert!(e[0].removal.is_none());
    }

    #[test]
    fn only_the_first_document_is_decoded() {
        let s = "kind: K\nmakeIPTablesUtilChains: true\n---\nmakeIPTablesUtilChains: false\n: [\n";
        let f = SourceFile::new("/c.yaml".into(), "/c.yaml".into(), s);
        let parsed = parse(&f, Keep::Tree).unwrap();
        assert_eq!(parsed.entries.len(), 1);
        assert_eq!(parsed.later_documents, vec![4]);
    }

    #[test]
    fn value_on_the_next_line_or_block_scalar_does_not_panic() {
        for s in [
            "makeIPTablesUtilChains:\n  false\n",
            "makeIPTablesUtilChains: |\n  false\n",
            "? makeIPTablesUtilChains\n: false\n",
            "makeIPTablesUtilChains: # c\n  false\n",
            "a: \"é\"\rmakeIPTablesUtilChains: 'x'\r",
        ] {
            let _ = p(s);
        }
    }

    #[test]
    fn yaml11_booleans_and_quotes() {
        for (src, want) in [
            ("no", KeyValue::Bool(false)),
            ("off", KeyValue::Bool(false)),
            ("n", KeyValue::Bool(false)),
            ("Yes", KeyValue::Bool(true)),
            ("~", KeyValue::Null),
            ("", KeyValue::Null),
        ] {
            let (_, e) = p(&format!("kind: K\nmakeIPTablesUtilChains: {src}\n")).unwrap();
            assert_eq!(e[0].value, want, "{src}");
        }
        let (_, e) = p("makeIPTablesUtilChains: \"false\"\n").unwrap();
        assert!(matches!(e[0].value, KeyValue::Invalid(_)));
        let (_, e) = p("makeIPTablesUtilChains: !!str false\n").unwrap();
        assert!(matches!(e[0].value, KeyValue::Invalid(_)));
    }

    #[test]
    fn value_span_is_exact_with_comments_and_unicode() {
        let s = "# é comment\nclusterDomain: \"clüster.local\"\nmakeIPTablesUtilChains:   off   # keep\nport: 10250\n";
        let (v, e) = p(s).unwrap();
        let o = &e[0];
        assert_eq!(&s[o.value_span.clone()], "off");
        assert_eq!((o.line, o.column), (3, 1));
        assert_eq!(
            &s[o.removal.clone().unwrap()],
            "makeIPTablesUtilChains:   off   # keep\n"
        );
        let Value::Map(m) = v else { panic!() };
        assert_eq!(m["port"], Value::Num("10250".into()));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = p("kind: K\nfoo: [1, 2\nbar: 1\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("/c.yaml:"), "{e}");
        assert!(e.contains("invalid YAML"), "{e}");
    }

    #[test]
    fn lone_carriage_returns_and_multibyte_text_keep_positions_exact() {
        // YAML breaks lines at a lone \r; our line table does not: positions go through the
        // parser's character index, so they land on the value, and removal takes one YAML line.
        let s = "é: \"ééé\"\rmakeIPTablesUtilChains: false # c\rport: 10250\r";
        let (_, e) = p(s).unwrap();
        let o = &e[0];
        assert_eq!(&s[o.value_span.clone()], "false");
        assert_eq!(
            &s[o.removal.clone().unwrap()],
            "makeIPTablesUtilChains: false # c\r"
        );
        assert_eq!((o.line, o.column), (1, 10));
        // The field report's input: a quoted "false" is a string the kubelet refuses.
        let s = format!(
            "é: \"{}\"\rmakeIPTablesUtilChains: \"false\"\r",
            "é".repeat(34)
        );
        let (_, e) = p(&s).unwrap();
        assert!(matches!(e[0].value, KeyValue::Invalid(_)));
        assert_eq!(&s[e[0].value_span.clone()], "\"false\"");
        // \r\n is one break; a syntax error after multibyte text names a real column.
        let s = "é: 1\r\nmakeIPTablesUtilChains: no\r\n";
        let (_, e) = p(s).unwrap();
        assert_eq!(
            &s[e[0].removal.clone().unwrap()],
            "makeIPTablesUtilChains: no\r\n"
        );
        let err = p("é: ééé\rx: [1\r").err().unwrap().to_string();
        assert!(err.starts_with("/c.yaml:1:"), "{err}");
    }

    #[test]
    fn anchored_value_is_measured_past_the_anchor() {
        let s = "makeIPTablesUtilChains: &a false\nother: *a\n";
        let (_, e) = p(s).unwrap();
        assert_eq!(&s[e[0].value_span.clone()], "false");
    }
}
