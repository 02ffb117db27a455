//! Manifests as trees whose every node knows the byte where it starts, one per YAML document.
//!
//! saphyr-parser supplies events with character positions; they are turned into byte offsets
//! through their character index (`text::CharOffsets`: YAML also breaks lines at a lone `\r`,
//! so the parser's line and column do not fit the file's line table). A scalar's exact extent is measured from the
//! source and checked against the parser's value (`config::yaml::measure`), so an edit lands
//! only on bytes that are known to spell that value. JSON is read as the YAML it is.

use crate::config::yaml::measure;
use crate::text::{CharOffsets, SourceFile};
use saphyr_parser::{Event, Parser, ScalarStyle, Span, StrInput};

/// As deep as the config readers go.
const MAX_DEPTH: usize = 512;

#[derive(Debug, Clone)]
pub enum Kind {
    Scalar(String, ScalarStyle),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
    /// An alias: not expanded (a scan judges what is written, and an alias bomb stays small).
    Alias,
}

#[derive(Debug, Clone)]
pub struct Node {
    /// Byte offset of the node's first character (its anchor or tag, if any).
    pub start: usize,
    pub kind: Kind,
}

impl Node {
    pub fn str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    /// The value of key `k` of a mapping (the last one: later keys win in every decoder here).
    pub fn get(&self, k: &str) -> Option<&Node> {
        self.entries()
            .iter()
            .rev()
            .find(|(key, _)| key.str() == Some(k))
            .map(|(_, v)| v)
    }

    /// Follow a path of keys.
    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, k| n.get(k))
    }

    pub fn entries(&self) -> &[(Node, Node)] {
        match &self.kind {
            Kind::Map(m) => m,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[Node] {
        match &self.kind {
            Kind::Seq(s) => s,
            _ => &[],
        }
    }

    /// Where the scalar's characters sit in the file, byte for byte: `Some((start, quoted))`
    /// when the text from `start` spells the value exactly (no escapes, no folding), so byte `i`
    /// of the value is byte `start + i` of the file. `quoted` tells whether quotes surround it.
    pub fn exact(&self, f: &SourceFile) -> Option<(usize, bool)> {
        let range = self.extent(f)?;
        let Kind::Scalar(v, style) = &self.kind else {
            return None;
        };
        match style {
            ScalarStyle::Plain => Some((range.start, false)),
            ScalarStyle::SingleQuoted if v.contains('\'') => None,
            _ => Some((range.start + 1, true)),
        }
    }

    /// The scalar's whole extent in the file, quotes included, when measured exactly.
    pub fn extent(&self, f: &SourceFile) -> Option<std::ops::Range<usize>> {
        let Kind::Scalar(v, style) = &self.kind else {
            return None;
        };
        let (range, ok) = measure(&f.text, self.start, v, *style);
        ok.then_some(range)
    }
}

/// A YAML document of a stream: its root node, and the 1-based line where it starts.
pub struct Document {
    pub root: Node,
    pub line: usize,
}

struct Builder<'a> {
    f: &'a SourceFile,
    parser: Parser<'a, StrInput<'a>>,
    pos: CharOffsets<'a>,
    depth: usize,
}

/// Every document of the stream, or why the file is not YAML.
pub fn parse(f: &SourceFile) -> Result<Vec<Document>, String> {
    let mut b = Builder {
        f,
        parser: Parser::new_from_str(&f.text),
        pos: CharOffsets::new(&f.text),
        depth: 0,
    };
    let mut docs = Vec::new();
    let mut line = 1;
    loop {
        let (ev, span) = b.next()?;
        match ev {
            Event::StreamEnd => break,
            Event::DocumentStart(_) => line = f.line_col(b.pos.byte(span.start.index())).0,
            Event::Scalar(..)
            | Event::SequenceStart(..)
            | Event::MappingStart(..)
            | Event::Alias(_) => {
                let root = b.node(ev, span)?;
                docs.push(Document { root, line });
            }
            _ => {}
        }
    }
    Ok(docs)
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), String> {
        match self.parser.next_event() {
            Some(Ok(e)) => Ok(e),
            Some(Err(e)) => {
                let (line, column) = self.f.line_col(self.pos.byte(e.marker().index()));
                Err(format!(
                    "line {line}, column {column}: invalid YAML: {}",
                    e.info()
                ))
            }
            None => Err("invalid YAML: unexpected end of events".into()),
        }
    }

    fn offset(&mut self, span: Span) -> usize {
        self.pos.byte(span.start.index())
    }

    fn node(&mut self, ev: Event<'a>, span: Span) -> Result<Node, String> {
        let start = self.offset(span);
        let kind = match ev {
            Event::Scalar(v, style, _, _) => Kind::Scalar(v.into_owned(), style),
            Event::SequenceStart(..) => {
                self.enter(span)?;
                let mut items = Vec::new();
                loop {
                    let (e, s) = self.next()?;
                    if let Event::SequenceEnd = e {
                        break;
                    }
                    items.push(self.node(e, s)?);
                }
                self.depth -= 1;
                Kind::Seq(items)
            }
            Event::MappingStart(..) => {
                self.enter(span)?;
                let mut entries = Vec::new();
                loop {
                    let (e, s) = self.next()?;
                    if let Event::MappingEnd = e {
                        break;
                    }
                    let k = self.node(e, s)?;
                    let (e, s) = self.next()?;
                    let v = self.node(e, s)?;
                    entries.push((k, v));
                }
                self.depth -= 1;
                Kind::Map(entries)
            }
            _ => Kind::Alias,
        };
        Ok(Node { start, kind })
    }

    fn enter(&mut self, span: Span) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let line = self.f.line_col(self.offset(span)).0;
            return Err(format!(
                "line {line}: nesting deeper than {MAX_DEPTH} levels"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_know_their_bytes() {
        let s = "a: 1\n---\nk:\n  - \"x y\"\n  - plain\n  - 'it''s'\nj: {\"m\": false}\n";
        let f = SourceFile::new("/f".into(), "/f".into(), s);
        let docs = parse(&f).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].line, 2);
        let k = docs[1].root.get("k").unwrap().items();
        assert_eq!(k[0].exact(&f), Some((s.find("x y").unwrap(), true)));
        assert_eq!(k[1].exact(&f), Some((s.find("plain").unwrap(), false)));
        assert_eq!(
            k[2].exact(&f),
            None,
            "an escaped quote is not byte for byte"
        );
        let m = docs[1].root.at(&["j", "m"]).unwrap();
        assert_eq!(&s[m.extent(&f).unwrap()], "false");
    }
}
