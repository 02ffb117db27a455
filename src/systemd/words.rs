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
pub fn split(input: &Traced, mode: Mode) -> Result<Vec<Word>, (String, usize)> {
    let chars: Vec<(usize, char)> = input.text.char_indices().collect();
    let loc_at = |i: usize| input.locs[i];
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if is_ws(chars[i].1) {
            i += 1;
            continue;
        }
        let start = chars[i].0;
        let mut w = Traced::default();
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let (off, c) = chars[i];
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
                let Some(&(noff, n)) = chars.get(i + 1) else {
                    if mode.relax {
                        i += 1;
                        continue;
                    }
                    return Err(("trailing backslash".into(), off));
                };
                let mut loc = merge(loc_at(off), loc_at(noff), n.len_utf8());
                if !mode.cunescape {
                    w.push(n, loc);
                    i += 2;
                    continue;
                }
                let (decoded, used) = cunescape(&chars[i + 1..]);
                if used > 1 {
                    let (loff, lc) = chars[i + used];
                    loc = merge(loc_at(off), loc_at(loff), lc.len_utf8());
                }
                match decoded {
                    Some(d) => w.push(d, loc),
                    None => {
                        // Unknown escape: keep it literally (systemd would warn).
                        w.push('\\', loc_at(off));
                        w.push(n, loc_at(noff));
                    }
                }
                i += 1 + used;
                continue;
            }
            w.push(c, loc_at(off));
            i += 1;
        }
        if quote.is_some() && !mode.relax {
            return Err(("unbalanced quoting".into(), start));
        }
        let end = chars.get(i).map_or(input.text.len(), |&(o, _)| o);
        words.push(Word {
            value: w,
            raw: start..end,
        });
    }
    Ok(words)
}

fn merge(
    a: Option<crate::text::Loc>,
    b: Option<crate::text::Loc>,
    _len: usize,
) -> Option<crate::text::Loc> {
    match (a, b) {
        (Some(a), Some(b)) if a.file == b.file => Some(crate::text::Loc {
            file: a.file,
            start: a.start,
            end: b.end,
        }),
        _ => None,
    }
}

/// Decode one C escape (after the backslash): the char and how many input chars it used.
fn cunescape(rest: &[(usize, char)]) -> (Option<char>, usize) {
    let c = rest[0].1;
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
        if rest.len() < n + 1 {
            return None;
        }
        let s: String = rest[1..=n].iter().map(|&(_, c)| c).collect();
        u32::from_str_radix(&s, radix).ok()
    };
    match c {
        'x' => digits(2, 16).map_or((None, 1), |v| (char::from_u32(v), 3)),
        'u' => digits(4, 16).map_or((None, 1), |v| (char::from_u32(v), 5)),
        '0'..='7' => {
            let s: String = rest.iter().take(3).map(|&(_, c)| c).collect();
            match u32::from_str_radix(&s, 8) {
                Ok(v) if s.len() == 3 => (char::from_u32(v), 3),
                _ => (None, 1),
            }
        }
        _ => (None, 1),
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
