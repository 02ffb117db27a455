//! Source files and text that remembers, byte by byte, which file bytes produced it.
//!
//! Provenance is what makes the edits minimal: every argument the kubelet would see and every
//! config value is traced back to a byte span of a file, and a fix replaces exactly that span.

use std::ops::Range;

/// Index of a file in [`Files`].
pub type FileId = usize;

/// A file read from the node, with its node path (the absolute path the node itself uses).
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as it was named (unit search path, flag value, EnvironmentFile=...).
    pub path: String,
    /// Where that path resolved inside the root, after symlinks; edits are written here.
    pub resolved: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: String, resolved: String, text: String) -> Self {
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

    /// Byte offset of a 1-based line and a 0-based character column.
    pub fn offset_of(&self, line: usize, char_col: usize) -> usize {
        let start = self.line_starts[(line - 1).min(self.line_starts.len() - 1)];
        self.text[start..]
            .char_indices()
            .nth(char_col)
            .map_or(self.text.len(), |(i, _)| start + i)
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

/// Every file read while evaluating a node, so provenance can refer to them by id.
#[derive(Debug, Default, Clone)]
pub struct Files {
    files: Vec<SourceFile>,
}

impl Files {
    /// Register a file read from the node. One file reached under two names (a symlink and its
    /// target) is one entry, so edits to it can never be planned twice.
    pub fn add(&mut self, file: SourceFile) -> FileId {
        if let Some(id) = self.files.iter().position(|f| f.resolved == file.resolved) {
            return id;
        }
        self.files.push(file);
        self.files.len() - 1
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id]
    }

    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate()
    }
}

/// Where one byte of a value came from: the file bytes `start..end` produced it (an escape
/// sequence produces one byte from several).
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

/// Text with the origin of each byte (`None`: made up, e.g. an expanded `%%` specifier).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traced {
    pub text: String,
    pub locs: Vec<Option<Loc>>,
}

impl Traced {
    /// `s`, found at byte `start` of file `file`, with every byte traced to itself.
    pub fn from_file(file: FileId, start: usize, s: &str) -> Traced {
        let mut t = Traced::default();
        for (i, c) in s.char_indices() {
            let at = start + i;
            t.push(
                c,
                Some(Loc {
                    file,
                    start: at,
                    end: at + c.len_utf8(),
                }),
            );
        }
        t
    }

    pub fn push(&mut self, c: char, loc: Option<Loc>) {
        self.text.push(c);
        for _ in 0..c.len_utf8() {
            self.locs.push(loc);
        }
    }

    pub fn append(&mut self, other: &Traced) {
        self.text.push_str(&other.text);
        self.locs.extend_from_slice(&other.locs);
    }

    pub fn slice(&self, r: Range<usize>) -> Traced {
        Traced {
            text: self.text[r.clone()].to_string(),
            locs: self.locs[r].to_vec(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The single contiguous file span that produced bytes `r`, if there is one.
    pub fn span_of(&self, r: Range<usize>) -> Option<Span> {
        let locs = &self.locs[r];
        let first = (*locs.first()?)?;
        let mut end = first.end;
        for loc in locs {
            let loc = (*loc)?;
            if loc.file != first.file || loc.start < first.start {
                return None;
            }
            end = end.max(loc.end);
        }
        Some(Span {
            file: first.file,
            start: first.start,
            end,
        })
    }

    /// The span of the whole text.
    pub fn span(&self) -> Option<Span> {
        self.span_of(0..self.text.len())
    }

    /// The first file location of this text, for "file:line" reports.
    pub fn first_loc(&self) -> Option<Loc> {
        self.locs.iter().flatten().next().copied()
    }
}
