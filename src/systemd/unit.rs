//! Parse a unit file or drop-in into `Key=Value` directives that remember their bytes.
//!
//! Follows systemd 252's conf-parser: lines end as `read_line_full()` ends them (`\n`, `\r`,
//! `\r\n` or `\n\r` as one end, and a NUL), and the first UTF-8 byte-order mark at the start of a
//! line is dropped; `#`/`;` start a comment only at the start of a line (after blanks); a line
//! ending in an odd number of backslashes continues on the next one, the backslash becoming a
//! space, and comment lines inside a continuation are skipped; whitespace around `=` is dropped.
//! A malformed section header stops `config_parse()`: for the fragment the unit fails to load,
//! but `unit_load_dropin()` ignores a drop-in's error, so the drop-in's lines before it apply and
//! the rest is dropped ([`Parsed::stopped`]).

use crate::error::{Error, Result};
use crate::text::{FileId, SourceFile, Traced};

/// One `Key=Value` line (possibly continued over several physical lines).
#[derive(Debug, Clone)]
pub struct Directive {
    pub file: FileId,
    pub section: String,
    pub key: String,
    pub value: Traced,
    /// 1-based line where the directive starts.
    pub line: usize,
    /// Byte range of every physical line the directive spans (for whole-line edits).
    pub start: usize,
    pub end: usize,
}

/// A directive systemd ignores with a warning (kept so the report can mention it).
#[derive(Debug, Clone)]
pub struct Ignored {
    pub line: usize,
    pub reason: String,
}

pub struct Parsed {
    pub directives: Vec<Directive>,
    pub ignored: Vec<Ignored>,
    /// Where systemd stopped reading the file, and why (the directives before it stand).
    pub stopped: Option<Error>,
}

/// The lines of a file as systemd's `read_line_full()` splits them: (start, end of content,
/// start of the next line). A NUL ends a line by itself; otherwise a run of end-of-line bytes
/// where `\n` and `\r` each appear at most once is one line end.
pub fn lines(text: &str) -> Vec<(usize, usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && !matches!(b[i], b'\n' | b'\r' | 0) {
            i += 1;
        }
        let end = i;
        if i < b.len() && b[i] == 0 {
            i += 1;
        } else if i < b.len() {
            let first = b[i];
            i += 1;
            if i < b.len() && matches!(b[i], b'\n' | b'\r') && b[i] != first {
                i += 1;
            }
        }
        out.push((start, end, i));
    }
    out
}

pub fn parse(id: FileId, file: &SourceFile) -> Result<Parsed> {
    let mut directives = Vec::new();
    let mut ignored = Vec::new();
    let mut section = String::new();
    let mut logical = Traced::default();
    let mut logical_line = 0;
    let mut logical_start = 0;
    let mut in_continuation = false;
    let mut bom_seen = false;
    let text = &file.text;
    let all = lines(text);
    for (n, &(start, end, next)) in all.iter().enumerate() {
        let lineno = n + 1;
        let mut offset = start;
        let mut line = &text[start..end];
        if !bom_seen && let Some(rest) = line.strip_prefix('\u{feff}') {
            bom_seen = true;
            offset += '\u{feff}'.len_utf8();
            line = rest;
        }
        let trimmed = line.trim_start();
        if in_continuation && (trimmed.starts_with('#') || trimmed.starts_with(';')) {
            continue;
        }
        if !in_continuation {
            logical = Traced::default();
            logical_line = lineno;
            logical_start = start;
        }
        let trailing = line.len() - line.trim_end_matches('\\').len();
        let continues = trailing % 2 == 1;
        let body = if continues {
            &line[..line.len() - 1]
        } else {
            line
        };
        logical.append(&Traced::from_file(id, offset, body));
        if continues && n + 1 < all.len() {
            logical.push(' ', None);
            in_continuation = true;
            continue;
        }
        in_continuation = false;
        if let Err(e) = handle_logical(
            id,
            file,
            &logical,
            logical_line,
            (logical_start, next),
            &mut section,
            &mut directives,
            &mut ignored,
        ) {
            return Ok(Parsed {
                directives,
                ignored,
                stopped: Some(e),
            });
        }
    }
    Ok(Parsed {
        directives,
        ignored,
        stopped: None,
    })
}

#[allow(clippy::too_many_arguments)]
fn handle_logical(
    id: FileId,
    file: &SourceFile,
    logical: &Traced,
    line: usize,
    (start, end): (usize, usize),
    section: &mut String,
    directives: &mut Vec<Directive>,
    ignored: &mut Vec<Ignored>,
) -> Result<()> {
    let t = &logical.text;
    // systemd's WHITESPACE is " \t\n\r", not Unicode's.
    let ws: &[char] = &[' ', '\t', '\n', '\r'];
    let lead = t.len() - t.trim_start_matches(ws).len();
    let body = t.trim_matches(ws);
    if body.is_empty() || body.starts_with('#') || body.starts_with(';') {
        return Ok(());
    }
    if body.starts_with('[') {
        if !body.ends_with(']') || body.len() < 3 {
            return Err(Error::parse(
                &file.path,
                line,
                lead + 1,
                format!("invalid section header '{body}': systemd refuses this file"),
            ));
        }
        *section = body[1..body.len() - 1].to_string();
        return Ok(());
    }
    let Some(eq) = t.find('=') else {
        ignored.push(Ignored {
            line,
            reason: format!("missing '=' in '{body}' (systemd ignores the line)"),
        });
        return Ok(());
    };
    if section.is_empty() {
        ignored.push(Ignored {
            line,
            reason: "assignment outside of any section (systemd ignores it)".into(),
        });
        return Ok(());
    }
    let key = t[..eq].trim_matches(ws).to_string();
    let rest = &t[eq + 1..];
    let vstart = eq + 1 + (rest.len() - rest.trim_start_matches(ws).len());
    let vend = eq + 1 + rest.trim_end_matches(ws).len();
    let value = logical.slice(vstart..vend.max(vstart));
    let _ = file;
    directives.push(Directive {
        file: id,
        section: section.clone(),
        key,
        value,
        line,
        start,
        end,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<(String, String, String, usize)> {
        let f = SourceFile::new("/u".into(), "/u".into(), s);
        parse(0, &f)
            .unwrap()
            .directives
            .into_iter()
            .map(|d| (d.section, d.key, d.value.text, d.line))
            .collect()
    }

    #[test]
    fn continuation_comments_and_spaces() {
        let d = p(
            "[Service]\n# c\n  ; c2\nExecStart = /bin/k \\\n  --a=1 \\\n# skipped\n  --b=2\nEnvironment=X=1 # not a comment\r\n",
        );
        assert_eq!(d[0].1, "ExecStart");
        assert_eq!(d[0].2, "/bin/k    --a=1    --b=2");
        assert_eq!(d[0].3, 4);
        assert_eq!(d[1].2, "X=1 # not a comment");
    }

    #[test]
    fn escaped_backslash_does_not_continue() {
        let d = p("[Service]\nA=x\\\\\nB=y\n");
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].2, "x\\\\");
    }

    #[test]
    fn bad_section_header_stops_the_file() {
        let f = SourceFile::new("/u".into(), "/u".into(), "[Service]\nA=1\n[Service\nB=1\n");
        let p = parse(0, &f).unwrap();
        assert_eq!(p.directives.len(), 1);
        let e = p.stopped.unwrap().to_string();
        assert!(e.starts_with("/u:3:1: invalid section header"), "{e}");
    }

    #[test]
    fn lone_cr_nul_and_bom_end_lines_as_systemd_does() {
        let d = p("\u{feff}[Service]\rA=1\0B=2\n\rC=3\r\n\r\nD=4");
        let keys: Vec<(&str, usize)> = d.iter().map(|x| (x.1.as_str(), x.3)).collect();
        assert_eq!(keys, vec![("A", 2), ("B", 3), ("C", 4), ("D", 6)]);
        assert_eq!(d[0].2, "1");
    }

    #[test]
    fn values_trace_back_to_file_bytes() {
        let s = "[Service]\nEnvironment=\"K=--x=false\"\n";
        let f = SourceFile::new("/u".into(), "/u".into(), s);
        let d = &parse(0, &f).unwrap().directives[0];
        let sp = d.value.span().unwrap();
        assert_eq!(&s[sp.start..sp.end], "\"K=--x=false\"");
    }
}
