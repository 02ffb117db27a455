//! Parse a unit file or drop-in into `Key=Value` directives that remember their bytes.
//!
//! Follows systemd 252's conf-parser: `#`/`;` start a comment only at the start of a line
//! (after blanks); a line ending in an odd number of backslashes continues on the next one, the
//! backslash becoming a space, and comment lines inside a continuation are skipped; whitespace
//! around `=` is dropped; a malformed section header makes systemd refuse the file.

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
}

pub fn parse(id: FileId, file: &SourceFile) -> Result<Parsed> {
    let mut directives = Vec::new();
    let mut ignored = Vec::new();
    let mut section = String::new();
    let mut logical = Traced::default();
    let mut logical_line = 0;
    let mut logical_start = 0;
    let mut in_continuation = false;
    let text = &file.text;
    let mut offset = 0;
    let mut lineno = 0;
    while offset < text.len() {
        lineno += 1;
        let nl = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
        let next = (nl + 1).min(text.len());
        let mut line = &text[offset..nl];
        if let Some(s) = line.strip_suffix('\r') {
            line = s;
        }
        let trimmed = line.trim_start();
        if in_continuation && (trimmed.starts_with('#') || trimmed.starts_with(';')) {
            offset = next;
            continue;
        }
        if !in_continuation {
            logical = Traced::default();
            logical_line = lineno;
            logical_start = offset;
        }
        let trailing = line.len() - line.trim_end_matches('\\').len();
        let continues = trailing % 2 == 1;
        let body = if continues {
            &line[..line.len() - 1]
        } else {
            line
        };
        logical.append(&Traced::from_file(id, offset, body));
        if continues {
            logical.push(' ', None);
            in_continuation = true;
            offset = next;
            if offset < text.len() {
                continue;
            }
        }
        in_continuation = false;
        let end = next;
        offset = next;
        handle_logical(
            id,
            file,
            &logical,
            logical_line,
            (logical_start, end),
            &mut section,
            &mut directives,
            &mut ignored,
        )?;
    }
    Ok(Parsed {
        directives,
        ignored,
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
    let lead = t.len() - t.trim_start().len();
    let body = t.trim();
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
    let key = t[..eq].trim().to_string();
    let rest = &t[eq + 1..];
    let vstart = eq + 1 + (rest.len() - rest.trim_start().len());
    let vend = eq + 1 + rest.trim_end().len();
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
        let f = SourceFile::new("/u".into(), "/u".into(), s.into());
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
    fn bad_section_header_is_an_error() {
        let f = SourceFile::new("/u".into(), "/u".into(), "[Service\nA=1\n".into());
        let e = parse(0, &f).err().unwrap().to_string();
        assert!(e.starts_with("/u:1:1: invalid section header"), "{e}");
    }

    #[test]
    fn values_trace_back_to_file_bytes() {
        let s = "[Service]\nEnvironment=\"K=--x=false\"\n";
        let f = SourceFile::new("/u".into(), "/u".into(), s.into());
        let d = &parse(0, &f).unwrap().directives[0];
        let sp = d.value.span().unwrap();
        assert_eq!(&s[sp.start..sp.end], "\"K=--x=false\"");
    }
}
