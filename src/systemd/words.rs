//! systemd's word splitting (`extract_first_word`), on traced text.
//!
//! `ExecStart=` and `Environment=` split with EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE: quotes may open
//! anywhere in a word and are removed, C escapes are decoded. A whole-word `$VAR` is split with
//! EXTRACT_UNQUOTE|EXTRACT_RELAX (no C escapes; a backslash quotes the next character; an
//! unbalanced quote is closed by the end) - systemd's `replace_env_argv`.

use crate::text::Traced;
use std::ops::Range;

/// A word and the range of the input (quotes included) that produced it.
#[derive(Debug, Clone)]
pub struct Word {
    pub value: Traced,
    pub raw: Range<usize>,
}

#[derive(Debug, Clone, Copy)]
pub struct Mode {
    pub cunescape: bool,
    pub relax: bool,
}

pub const EXEC: Mode = Mode {
    cunescape: true,
    relax: false,
};
pub const VAR_SPLIT: Mode = Mode {
    cunescape: false,
    relax: true,
};

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Split `input` into words; `Err` carries a message and the byte offset of the problem.
/// Walks the text by byte offset (no per-character table: the input may be megabytes).
pub fn split(input: &Traced, mode: Mode) -> Result<Vec<Word>, (String, usize)> {
    let t = &input.text;
    let at = |i: usize| t.get(i..).and_then(|r| r.chars().next());
    let mut words = Vec::new();
    let mut i = 0;
    while let Some(c) = at(i) {
        if is_ws(c) {
            i += c.len_utf8();
            continue;
        }
        let start = i;
        let mut w = Traced::default();
        let mut quote: Option<char> = None;
        while let Some(c) = at(i) {
            if quote.is_none() && is_ws(c) {
                break;
            }
            if Some(c) == quote {
                quote = None;
                i += 1;
                continue;
            }
            if quote.is_none() && (c == '"' || c == '\'') {
                quote = Some(c);
                i += 1;
                continue;
            }
            if c == '\\' {
                let noff = i + 1;
                let Some(n) = at(noff) else {
                    if mode.relax {
                        i += 1;
                        continue;
                    }
                    return Err(("trailing backslash".into(), i));
                };
                if !mode.cunescape {
                    w.push(n, merge(input.loc(i), input.loc(noff)));
                    i = noff + n.len_utf8();
                    continue;
                }
                let (decoded, used) = cunescape(&t[noff..]);
                let end = noff + used;
                match decoded {
                    // The decoded character came from the backslash through the last byte.
                    Some(d) => w.push(d, merge(input.loc(i), input.loc(end - 1))),
                    None => {
                        // Unknown escape: keep it literally (systemd would warn).
                        w.push('\\', input.loc(i));
                        w.push(n, input.loc(noff));
                    }
                }
                i = end;
                continue;
            }
            w.push(c, input.loc(i));
            i += c.len_utf8();
        }
        if quote.is_some() && !mode.relax {
            return Err(("unbalanced quoting".into(), start));
        }
        w.shrink();
        words.push(Word {
            value: w,
            raw: start..i.min(t.len()),
        });
    }
    Ok(words)
}

fn merge(a: Option<crate::text::Loc>, b: Option<crate::text::Loc>) -> Option<crate::text::Loc> {
    match (a, b) {
        (Some(a), Some(b)) if a.file == b.file => Some(crate::text::Loc {
            file: a.file,
            start: a.start,
            end: b.end,
        }),
        _ => None,
    }
}

/// Decode one C escape (the text after the backslash): the character and how many bytes of
/// `rest` it used.
fn cunescape(rest: &str) -> (Option<char>, usize) {
    let c = rest
        .chars()
        .next()
        .expect("called with text after a backslash");
    let simple = match c {
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'f' => Some('\x0c'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0b'),
        's' => Some(' '),
        '\\' | '"' | '\'' => Some(c),
        _ => None,
    };
    if simple.is_some() {
        return (simple, 1);
    }
    let digits = |n: usize, radix: u32| -> Option<u32> {
        let d = rest.get(1..=n)?;
        d.bytes()
            .all(|b| (b as char).is_digit(radix))
            .then(|| u32::from_str_radix(d, radix).ok())
            .flatten()
    };
    match c {
        'x' => digits(2, 16).map_or((None, 1), |v| (char::from_u32(v), 3)),
        'u' => digits(4, 16).map_or((None, 1), |v| (char::from_u32(v), 5)),
        '0'..='7' => match rest
            .get(..3)
            .filter(|d| d.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        {
            Some(d) => (u32::from_str_radix(d, 8).ok().and_then(char::from_u32), 3),
            None => (None, 1),
        },
        _ => (None, c.len_utf8()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traced(s: &str) -> Traced {
        Traced::from_file(0, 0, s)
    }

    fn texts(s: &str, m: Mode) -> Vec<String> {
        split(&traced(s), m)
            .unwrap()
            .into_iter()
            .map(|w| w.value.text)
            .collect()
    }

    #[test]
    fn quotes_anywhere_and_escapes() {
        assert_eq!(
            texts(r#"A="x y" 'B=1 2' C=a\sb --f=\"q\""#, EXEC),
            vec!["A=x y", "B=1 2", "C=a b", "--f=\"q\""]
        );
        assert_eq!(texts(r#"a\tb "#, VAR_SPLIT), vec!["atb"]);
        assert_eq!(texts(r#"--x "y z"#, VAR_SPLIT), vec!["--x", "y z"]);
        assert!(split(&traced("\"open"), EXEC).is_err());
    }

    #[test]
    fn raw_ranges_include_quotes() {
        let s = r#"a "--make=false" b"#;
        let w = split(&traced(s), EXEC).unwrap();
        assert_eq!(&s[w[1].raw.clone()], "\"--make=false\"");
        let sp = w[1].value.span().unwrap();
        assert_eq!(&s[sp.start..sp.end], "--make=false");
    }
}
