//! Source files and text that remembers, byte by byte, which file bytes produced it.
//!
//! Provenance is what makes the edits minimal: every argument the kubelet would see and every
//! config value is traced back to a byte span of a file, and a fix replaces exactly that span.

use smallvec::SmallVec;
use std::ops::Range;
use std::sync::Arc;

/// Index of a file in [`Files`].
pub type FileId = usize;

/// A file read from the node, with its node path (the absolute path the node itself uses).
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as it was named (unit search path, flag value, EnvironmentFile=...).
    pub path: String,
    /// Where that path resolved inside the root, after symlinks; edits are written here.
    pub resolved: String,
    pub text: Arc<str>,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: String, resolved: String, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            path,
            resolved,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let column = self.text[start..offset.min(self.text.len())]
            .chars()
            .count()
            + 1;
        (line, column)
    }

    /// The byte offset where each line starts.
    pub fn line_starts(&self) -> &[usize] {
        &self.line_starts
    }

    /// The byte range of the whole line (including its newline) containing `offset`.
    pub fn line_range(&self, offset: usize) -> Range<usize> {
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        start..end
    }
}

/// Byte offsets of character indices, for a parser that counts characters (saphyr's markers).
///
/// A marker's line and column cannot be mapped through our line table: YAML also
/// breaks lines at a lone `\r` (YAML 1.2 §5.4, and yaml.v2's `is_break`), which our line index
/// does not, and a column counted on the parser's line then lands inside another line, or
/// inside a character. The character index is unambiguous. The cursor walks from the last
/// position asked, so a document's positions, asked in order, cost one pass over its text.
pub struct CharOffsets<'a> {
    text: &'a str,
    chars: usize,
    byte: usize,
}

impl<'a> CharOffsets<'a> {
    pub fn new(text: &'a str) -> Self {
        CharOffsets {
            text,
            chars: 0,
            byte: 0,
        }
    }

    /// The byte offset of character `index` (the text's length past its end): always a
    /// character boundary.
    pub fn byte(&mut self, index: usize) -> usize {
        while self.chars < index {
            let Some(c) = self.text[self.byte..].chars().next() else {
                break;
            };
            self.byte += c.len_utf8();
            self.chars += 1;
        }
        while self.chars > index {
            let c = self.text[..self.byte].chars().next_back().unwrap_or('\0');
            self.byte -= c.len_utf8();
            self.chars -= 1;
        }
        self.byte
    }
}

/// Every file read while evaluating a node, so provenance can refer to them by id.
#[derive(Debug, Default, Clone)]
pub struct Files {
    files: Vec<SourceFile>,
    /// Resolved path to id, so adding a file is not a scan of every file read so far.
    by_resolved: std::collections::HashMap<String, FileId>,
}

impl Files {
    /// Register a file read from the node. One file reached under two names (a symlink and its
    /// target) is one entry, so edits to it can never be planned twice.
    pub fn add(&mut self, file: SourceFile) -> FileId {
        if let Some(&id) = self.by_resolved.get(&file.resolved) {
            return id;
        }
        self.by_resolved
            .insert(file.resolved.clone(), self.files.len());
        self.files.push(file);
        self.files.len() - 1
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id]
    }

    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate()
    }

    /// The file read at this resolved path, if any.
    pub fn by_resolved(&self, resolved: &str) -> Option<FileId> {
        self.by_resolved.get(resolved).copied()
    }
}

/// Where one byte of a value came from: the file bytes `start..end` produced it (an escape
/// sequence produces one byte from several; every byte of a multi-byte character maps to the
/// whole character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

/// A span of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

/// Bytes `at..at + len` of a [`Traced`] text and where they came from: copied from file bytes
/// `start..start + len` (`copied`), made from file bytes `start..end` by an escape (one
/// character), or made up (`src: None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    at: usize,
    len: usize,
    src: Option<Src>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Src {
    file: FileId,
    start: usize,
    end: usize,
    copied: bool,
}

/// Text with the origin of its bytes, stored as runs: a stretch copied from a file is one run
/// whatever its length, so provenance costs a few words per piece of a file, never per byte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traced {
    pub text: String,
    /// Almost every argument is one stretch of one file: that run is stored inline, so an
    /// argument costs no allocation beyond its text.
    runs: SmallVec<[Run; 1]>,
}

impl Traced {
    /// `s`, found at byte `start` of file `file`, with every byte traced to itself.
    pub fn from_file(file: FileId, start: usize, s: &str) -> Traced {
        let mut t = Traced {
            text: s.to_string(),
            runs: SmallVec::new(),
        };
        if !s.is_empty() {
            t.runs.push(Run {
                at: 0,
                len: s.len(),
                src: Some(Src {
                    file,
                    start,
                    end: start + s.len(),
                    copied: true,
                }),
            });
        }
        t
    }

    /// Text with no file behind it.
    pub fn made_up(s: &str) -> Traced {
        let mut t = Traced::default();
        t.add_run(s.len(), None);
        t.text.push_str(s);
        t
    }

    /// Add a run for `len` bytes about to be appended, merging it into the last one when it
    /// continues it.
    fn add_run(&mut self, len: usize, src: Option<Src>) {
        if len == 0 {
            return;
        }
        let at = self.text.len();
        if let Some(last) = self.runs.last_mut()
            && last.at + last.len == at
        {
            match (&mut last.src, src) {
                (None, None) => {
                    last.len += len;
                    return;
                }
                (Some(l), Some(s))
                    if l.copied && s.copied && l.file == s.file && l.end == s.start =>
                {
                    l.end = s.end;
                    last.len += len;
                    return;
                }
                _ => {}
            }
        }
        self.runs.push(Run { at, len, src });
    }

    pub fn push(&mut self, c: char, loc: Option<Loc>) {
        let len = c.len_utf8();
        let src = loc.map(|l| Src {
            file: l.file,
            start: l.start,
            end: l.end,
            copied: l.end - l.start == len,
        });
        self.add_run(len, src);
        self.text.push(c);
    }

    pub fn append(&mut self, other: &Traced) {
        // Runs cover a text contiguously from its start: replay them (the first may continue
        // our last one).
        for r in &other.runs {
            self.add_run(r.len, r.src);
            self.text.push_str(&other.text[r.at..r.at + r.len]);
        }
    }

    pub fn slice(&self, r: Range<usize>) -> Traced {
        let mut out = Traced {
            text: self.text[r.clone()].to_string(),
            runs: SmallVec::new(),
        };
        for run in self.runs_in(r.clone()) {
            let (s, e) = (run.at.max(r.start), (run.at + run.len).min(r.end));
            let src = run.src.map(|src| {
                if src.copied {
                    Src {
                        start: src.start + (s - run.at),
                        end: src.start + (e - run.at),
                        ..src
                    }
                } else {
                    src
                }
            });
            out.runs.push(Run {
                at: s - r.start,
                len: e - s,
                src,
            });
        }
        out
    }

    /// The runs overlapping bytes `r`.
    fn runs_in(&self, r: Range<usize>) -> impl Iterator<Item = &Run> {
        let first = self.runs.partition_point(|run| run.at + run.len <= r.start);
        self.runs[first..]
            .iter()
            .take_while(move |run| run.at < r.end)
    }

    /// Release the spare capacity that building the text char by char left (a command line of
    /// 200,000 arguments is held by the plan and by its proof).
    pub fn shrink(&mut self) {
        self.text.shrink_to_fit();
        self.runs.shrink_to_fit();
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Where byte `i` came from (the whole character it belongs to).
    pub fn loc(&self, i: usize) -> Option<Loc> {
        let run = self.runs_in(i..i + 1).next()?;
        let src = run.src?;
        if !src.copied {
            return Some(Loc {
                file: src.file,
                start: src.start,
                end: src.end,
            });
        }
        let mut cs = i;
        while !self.text.is_char_boundary(cs) {
            cs -= 1;
        }
        let clen = self.text[cs..].chars().next().map_or(1, char::len_utf8);
        let start = src.start + (cs - run.at);
        Some(Loc {
            file: src.file,
            start,
            end: start + clen,
        })
    }

    /// The single contiguous file span that produced bytes `r`, if there is one.
    pub fn span_of(&self, r: Range<usize>) -> Option<Span> {
        if r.is_empty() {
            return self.loc(r.start).map(|l| Span {
                file: l.file,
                start: l.start,
                end: l.end,
            });
        }
        let mut out: Option<Span> = None;
        let mut covered = r.start;
        for run in self.runs_in(r.clone()) {
            let src = run.src?;
            let (s, e) = (run.at.max(r.start), (run.at + run.len).min(r.end));
            if s != covered {
                return None;
            }
            covered = e;
            let (ps, pe) = if src.copied {
                (src.start + (s - run.at), src.start + (e - run.at))
            } else {
                (src.start, src.end)
            };
            match &mut out {
                None => {
                    out = Some(Span {
                        file: src.file,
                        start: ps,
                        end: pe,
                    })
                }
                Some(o) => {
                    if src.file != o.file || ps < o.start {
                        return None;
                    }
                    o.end = o.end.max(pe);
                }
            }
        }
        (covered >= r.end).then_some(out).flatten()
    }

    /// The span of the whole text.
    pub fn span(&self) -> Option<Span> {
        self.span_of(0..self.text.len())
    }

    /// The first file location of this text, for "file:line" reports.
    pub fn first_loc(&self) -> Option<Loc> {
        let run = self.runs.iter().find(|r| r.src.is_some())?;
        self.loc(run.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_and_map_back() {
        let mut t = Traced::from_file(0, 10, "ab");
        t.push(
            'c',
            Some(Loc {
                file: 0,
                start: 12,
                end: 13,
            }),
        );
        t.push(
            'é',
            Some(Loc {
                file: 0,
                start: 13,
                end: 15,
            }),
        );
        assert_eq!(t.runs.len(), 1, "a continued copy is one run");
        t.push(
            '\n',
            Some(Loc {
                file: 0,
                start: 15,
                end: 17,
            }),
        );
        t.push(' ', None);
        t.append(&Traced::from_file(0, 17, "xy"));
        assert_eq!(t.text, "abcé\n xy");
        assert_eq!(
            t.span_of(0..5),
            Some(Span {
                file: 0,
                start: 10,
                end: 15
            })
        );
        assert_eq!(
            t.loc(4),
            Some(Loc {
                file: 0,
                start: 13,
                end: 15
            }),
            "a byte inside é"
        );
        assert_eq!(
            t.loc(5),
            Some(Loc {
                file: 0,
                start: 15,
                end: 17
            }),
            "an escape"
        );
        assert_eq!(t.loc(6), None);
        assert_eq!(t.span_of(5..7), None, "a made-up byte has no span");
        let s = t.slice(7..9);
        assert_eq!(s.text, "xy");
        assert_eq!(
            s.span(),
            Some(Span {
                file: 0,
                start: 17,
                end: 19
            })
        );
        assert_eq!(t.first_loc().unwrap().start, 10);
    }
}
